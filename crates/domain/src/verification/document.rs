//! The `document` verification (proof of address): the file is present, the document is of an
//! allowed kind, it was issued recently enough, and the address on it matches the inquiry's
//! address after normalization.

use serde_json::{Map, Value};
use time::Date;

use super::{AddressDocument, Check, CheckRequirement, FileKind, Subject, VerificationOutcome};
use crate::time_format::format_date;

/// The only document category a template may ask for today (`config.kinds`).
pub const PROOF_OF_ADDRESS: &str = "proof-of-address";

/// Document kinds (`document-kind`) accepted as proof of address.
pub const PROOF_OF_ADDRESS_KINDS: &[&str] = &[
    "utility-bill",
    "bank-statement",
    "tax-letter",
    "government-letter",
    "lease-agreement",
];

const DEFAULT_MAX_AGE_DAYS: u32 = 90;

/// The options of a `document` verification (`config` of its template entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentConfig {
    /// Document categories accepted; default `["proof-of-address"]`.
    pub kinds: Vec<String>,
    /// How old (since its issue date) a document may be; default 90.
    pub max_age_days: u32,
}

impl Default for DocumentConfig {
    fn default() -> Self {
        Self {
            kinds: vec![PROOF_OF_ADDRESS.to_owned()],
            max_age_days: DEFAULT_MAX_AGE_DAYS,
        }
    }
}

impl DocumentConfig {
    /// Reads `kinds` and `max-age-days`; absent (or, since templates are validated when saved,
    /// malformed) options take their defaults.
    pub fn from_config(config: &Map<String, Value>) -> Self {
        let defaults = Self::default();
        let kinds = config
            .get("kinds")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|kinds| !kinds.is_empty())
            .unwrap_or(defaults.kinds);
        let max_age_days = config
            .get("max-age-days")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(defaults.max_age_days);
        Self {
            kinds,
            max_age_days,
        }
    }
}

/// The category a document kind belongs to (`proof-of-address` for every kind of
/// [`PROOF_OF_ADDRESS_KINDS`]), after normalizing case, spaces and underscores.
pub fn document_category(document_kind: &str) -> Option<&'static str> {
    let kind = normalize_kind(document_kind);
    PROOF_OF_ADDRESS_KINDS
        .contains(&kind.as_str())
        .then_some(PROOF_OF_ADDRESS)
}

fn normalize_kind(kind: &str) -> String {
    kind.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == '_' || c == ' ' { '-' } else { c })
        .collect()
}

/// Runs the proof-of-address verification.
///
/// Checks, all required: `document_file_present` (a `proof-of-address` file is attached),
/// `document_kind_allowed` (the kind is one of [`PROOF_OF_ADDRESS_KINDS`] and its category is in
/// `config.kinds`), `document_issue_date_recent` (an issue date, not in the future, at most
/// `config.max_age_days` before `today`) and `document_address_match` (see
/// [`address_mismatches`] for the rules; metadata `mismatches` lists the parts that differ).
/// Attributes: the document's kind, issue date and address as read.
pub fn verify(
    document: &AddressDocument,
    subject: &Subject,
    config: &DocumentConfig,
    today: Date,
) -> VerificationOutcome {
    let checks = vec![
        Check::from_bool(
            "document_file_present",
            CheckRequirement::Required,
            subject.has_file(FileKind::ProofOfAddress),
            "No proof-of-address file was uploaded.",
        ),
        kind_check(document, config),
        issue_date_check(document, config, today),
        address_check(document, subject),
    ];
    let attributes = match serde_json::to_value(document) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    VerificationOutcome::from_checks(checks, attributes)
}

fn kind_check(document: &AddressDocument, config: &DocumentConfig) -> Check {
    const NAME: &str = "document_kind_allowed";
    let kind = normalize_kind(&document.document_kind);
    let check = match document_category(&kind) {
        None if kind.is_empty() => Check::failed(
            NAME,
            CheckRequirement::Required,
            "The document kind is not given.",
        ),
        None => Check::failed(
            NAME,
            CheckRequirement::Required,
            format!(
                "A {kind} is not accepted as a document (accepted: {}).",
                PROOF_OF_ADDRESS_KINDS.join(", ")
            ),
        ),
        Some(category) => Check::from_bool(
            NAME,
            CheckRequirement::Required,
            config.kinds.iter().any(|k| k == category),
            format!(
                "The template does not accept {category} documents (accepted: {}).",
                config.kinds.join(", ")
            ),
        )
        .with_metadata("category", category),
    };
    check.with_metadata("document-kind", kind)
}

fn issue_date_check(document: &AddressDocument, config: &DocumentConfig, today: Date) -> Check {
    const NAME: &str = "document_issue_date_recent";
    let max = config.max_age_days;
    let Some(issued) = document.issue_date else {
        return Check::failed(
            NAME,
            CheckRequirement::Required,
            "The issue date is not given.",
        )
        .with_metadata("max-age-days", max);
    };
    let age = (today - issued).whole_days();
    let check = if age < 0 {
        Check::failed(
            NAME,
            CheckRequirement::Required,
            format!("The issue date {} is in the future.", format_date(issued)),
        )
    } else {
        Check::from_bool(
            NAME,
            CheckRequirement::Required,
            age <= i64::from(max),
            format!("The document was issued {age} days ago, more than the {max} days allowed."),
        )
    };
    check
        .with_metadata("issue-date", format_date(issued))
        .with_metadata("age-days", age)
        .with_metadata("max-age-days", max)
}

fn address_check(document: &AddressDocument, subject: &Subject) -> Check {
    const NAME: &str = "document_address_match";
    let missing: Vec<&str> = INQUIRY_ADDRESS_KEYS
        .iter()
        .copied()
        .filter(|key| subject.text(key).is_none_or(|v| v.trim().is_empty()))
        .collect();
    if !missing.is_empty() {
        return Check::failed(
            NAME,
            CheckRequirement::Required,
            format!(
                "The inquiry has no address to compare with (missing: {}).",
                missing.join(", ")
            ),
        );
    }
    let inquiry = InquiryAddress {
        street_1: subject.text("address-street-1").unwrap_or_default(),
        street_2: subject.text("address-street-2"),
        city: subject.text("address-city").unwrap_or_default(),
        postal_code: subject.text("address-postal-code").unwrap_or_default(),
        country_code: subject.text("address-country-code").unwrap_or_default(),
    };
    let mismatches = address_mismatches(document, &inquiry);
    let check = if mismatches.is_empty() {
        Check::passed(NAME, CheckRequirement::Required)
    } else {
        Check::failed(
            NAME,
            CheckRequirement::Required,
            format!(
                "The address on the document does not match the inquiry's ({} differ{}).",
                mismatches.join(", "),
                if mismatches.len() == 1 { "s" } else { "" }
            ),
        )
    };
    check.with_metadata(
        "mismatches",
        Value::Array(mismatches.into_iter().map(Value::from).collect()),
    )
}

/// The inquiry fields the document's address is compared with.
pub const INQUIRY_ADDRESS_KEYS: &[&str] = &[
    "address-street-1",
    "address-city",
    "address-postal-code",
    "address-country-code",
];

/// An address as the inquiry holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InquiryAddress<'a> {
    pub street_1: &'a str,
    pub street_2: Option<&'a str>,
    pub city: &'a str,
    pub postal_code: &'a str,
    pub country_code: &'a str,
}

/// Whether the document's address matches the inquiry's; see [`address_mismatches`].
pub fn address_matches(document: &AddressDocument, inquiry: &InquiryAddress<'_>) -> bool {
    address_mismatches(document, inquiry).is_empty()
}

/// The parts (`street`, `city`, `postal-code`, `country-code`) on which the document's address
/// differs from the inquiry's.
///
/// Streets and cities are compared after folding case and accents (`ß` → `ss`, `ä`/`ae` → `a`),
/// turning punctuation into spaces (where words are split does not matter: `O'Connell` =
/// `OConnell`) and expanding common abbreviations (`St` → street, `Rd` → road, `Ave` → avenue,
/// `Apt` → apartment, `Str.`/`…str.` → strasse, `N` → north, …; in cities `St` → saint, `Mt` →
/// mount, `Ft` → fort).
///
/// House numbers must be the same, in the same order. Unit numbers (after apartment, suite,
/// floor, room, building) must be the same with the same unit word, anywhere in the line
/// (`Apt 4, 12 Elm St` = `12 Elm Street Apartment 4`). The other words may come in another
/// order (`12 Main St` = `Main Street 12`). When line 1 differs, lines 1 and 2 are compared
/// together (a unit written on either line).
///
/// Postal codes are compared without spaces and hyphens, case-insensitively (a US ZIP matches
/// its ZIP+4). Countries must be the same code.
pub fn address_mismatches(
    document: &AddressDocument,
    inquiry: &InquiryAddress<'_>,
) -> Vec<&'static str> {
    let mut mismatches = Vec::new();
    let street_1_matches = streets_match(&document.address_street_1, inquiry.street_1);
    let street_matches = street_1_matches || {
        let doc = join_lines(
            &document.address_street_1,
            document.address_street_2.as_deref(),
        );
        let inq = join_lines(inquiry.street_1, inquiry.street_2);
        streets_match(&doc, &inq)
    };
    if !street_matches {
        mismatches.push("street");
    }
    if !cities_match(&document.address_city, inquiry.city) {
        mismatches.push("city");
    }
    let country = inquiry.country_code.trim().to_ascii_uppercase();
    if !postal_codes_match(&document.address_postal_code, inquiry.postal_code, &country) {
        mismatches.push("postal-code");
    }
    if !document
        .address_country_code
        .trim()
        .eq_ignore_ascii_case(&country)
    {
        mismatches.push("country-code");
    }
    mismatches
}

fn join_lines(line_1: &str, line_2: Option<&str>) -> String {
    match line_2 {
        Some(line_2) => format!("{line_1} {line_2}"),
        None => line_1.to_owned(),
    }
}

fn streets_match(a: &str, b: &str) -> bool {
    let a = StreetParts::of(a);
    let b = StreetParts::of(b);
    if a.numbers.is_empty() && a.units.is_empty() && a.words.is_empty() {
        return false;
    }
    a.numbers == b.numbers && a.units == b.units && {
        a.words.concat() == b.words.concat() || {
            let (mut a_words, mut b_words) = (a.words, b.words);
            a_words.sort_unstable();
            b_words.sort_unstable();
            a_words == b_words
        }
    }
}

/// Words that introduce a unit number (`Apt 4`, `Suite 200`).
const UNIT_WORDS: &[&str] = &["apartment", "building", "floor", "room", "suite"];

/// A street line split into house numbers (in order), units (`apartment 4`, sorted) and the
/// remaining words (in order, umlaut digraphs folded).
struct StreetParts {
    numbers: Vec<String>,
    units: Vec<String>,
    words: Vec<String>,
}

impl StreetParts {
    fn of(line: &str) -> Self {
        let mut parts = Self {
            numbers: Vec::new(),
            units: Vec::new(),
            words: Vec::new(),
        };
        let mut unit_word: Option<String> = None;
        for token in words(line, STREET_ABBREVIATIONS) {
            if token.bytes().any(|b| b.is_ascii_digit()) {
                match unit_word.take() {
                    Some(unit) => parts.units.push(format!("{unit} {token}")),
                    None => parts.numbers.push(token),
                }
            } else {
                if let Some(unit) = unit_word.take() {
                    parts.words.push(unit);
                }
                if UNIT_WORDS.contains(&token.as_str()) {
                    unit_word = Some(token);
                } else {
                    parts.words.push(umlaut_digraphs(&token));
                }
            }
        }
        parts.words.extend(unit_word);
        parts.units.sort_unstable();
        parts
    }
}

/// Same words in the same order, ignoring where they are split (`O'Connell` = `OConnell`,
/// `Saint-Denis` = `Saintdenis`).
fn cities_match(a: &str, b: &str) -> bool {
    let joined = |s: &str| umlaut_digraphs(&words(s, CITY_ABBREVIATIONS).concat());
    let a = joined(a);
    !a.is_empty() && a == joined(b)
}

fn postal_codes_match(a: &str, b: &str, country: &str) -> bool {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .flat_map(char::to_uppercase)
            .collect()
    };
    let (a, b) = (clean(a), clean(b));
    if a.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    // ZIP vs ZIP+4.
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    country == "US"
        && is_digits(&a)
        && is_digits(&b)
        && matches!((a.len(), b.len()), (5, 9) | (9, 5))
        && a[..5] == b[..5]
}

/// Abbreviations expanded in street lines (after folding, without the dot).
const STREET_ABBREVIATIONS: &[(&str, &str)] = &[
    ("apt", "apartment"),
    ("av", "avenue"),
    ("ave", "avenue"),
    ("blvd", "boulevard"),
    ("ct", "court"),
    ("dr", "drive"),
    ("e", "east"),
    ("fl", "floor"),
    ("hwy", "highway"),
    ("ln", "lane"),
    ("n", "north"),
    ("ne", "northeast"),
    ("no", "number"),
    ("nr", "number"),
    ("nw", "northwest"),
    ("pl", "place"),
    ("rd", "road"),
    ("s", "south"),
    ("se", "southeast"),
    ("sq", "square"),
    ("st", "street"),
    ("ste", "suite"),
    ("str", "strasse"),
    ("sw", "southwest"),
    ("unit", "apartment"),
    ("w", "west"),
];

/// Abbreviations expanded in city names.
const CITY_ABBREVIATIONS: &[(&str, &str)] = &[
    ("ft", "fort"),
    ("mt", "mount"),
    ("st", "saint"),
    ("ste", "sainte"),
];

/// Folded, abbreviation-expanded tokens of an address line. Letters and digits are split apart
/// (`12a` = `12 a`, `4B` = `4 b`); `#` and `no.` before a number are dropped (`Apt #4` =
/// `Apt 4`).
fn words(s: &str, abbreviations: &[(&str, &str)]) -> Vec<String> {
    let folded = fold(s);
    let mut tokens: Vec<String> = Vec::new();
    for chunk in folded.split_whitespace() {
        for piece in digit_runs(chunk) {
            let token = match abbreviations.binary_search_by(|(abbr, _)| (*abbr).cmp(piece)) {
                Ok(i) => abbreviations[i].1.to_owned(),
                Err(_) => expand_compound(piece),
            };
            if token != "number" {
                tokens.push(token);
            }
        }
    }
    tokens
}

/// Splits an ASCII token into maximal runs of digits and of letters.
fn digit_runs(token: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = 0;
    let bytes = token.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i].is_ascii_digit() != bytes[i - 1].is_ascii_digit() {
            runs.push(&token[start..i]);
            start = i;
        }
    }
    if start < token.len() {
        runs.push(&token[start..]);
    }
    runs
}

/// German compounds written with `str.`: `hauptstr` → `hauptstrasse`.
fn expand_compound(token: &str) -> String {
    match token.strip_suffix("str") {
        Some(stem) if !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_alphabetic()) => {
            format!("{stem}strasse")
        }
        _ => token.to_owned(),
    }
}

/// `ae`, `oe`, `ue` → `a`, `o`, `u`, so `Müller` (folded `muller`) equals `Mueller`.
fn umlaut_digraphs(token: &str) -> String {
    token
        .replace("ae", "a")
        .replace("oe", "o")
        .replace("ue", "u")
}

/// Lowercase ASCII letters, digits and single spaces: accents folded, every other character a
/// separator.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if let Ok(i) = FOLDED.binary_search_by(|(from, _)| from.cmp(&c)) {
            out.push_str(FOLDED[i].1);
        } else {
            out.push(' ');
        }
    }
    out
}

/// Lowercase Latin letters with diacritics (and ligatures) and their ASCII folding, sorted.
const FOLDED: &[(char, &str)] = &[
    ('ª', "a"),
    ('º', "o"),
    ('ß', "ss"),
    ('à', "a"),
    ('á', "a"),
    ('â', "a"),
    ('ã', "a"),
    ('ä', "a"),
    ('å', "a"),
    ('æ', "ae"),
    ('ç', "c"),
    ('è', "e"),
    ('é', "e"),
    ('ê', "e"),
    ('ë', "e"),
    ('ì', "i"),
    ('í', "i"),
    ('î', "i"),
    ('ï', "i"),
    ('ð', "d"),
    ('ñ', "n"),
    ('ò', "o"),
    ('ó', "o"),
    ('ô', "o"),
    ('õ', "o"),
    ('ö', "o"),
    ('ø', "o"),
    ('ù', "u"),
    ('ú', "u"),
    ('û', "u"),
    ('ü', "u"),
    ('ý', "y"),
    ('þ', "th"),
    ('ÿ', "y"),
    ('ā', "a"),
    ('ă', "a"),
    ('ą', "a"),
    ('ć', "c"),
    ('ĉ', "c"),
    ('ċ', "c"),
    ('č', "c"),
    ('ď', "d"),
    ('đ', "d"),
    ('ē', "e"),
    ('ĕ', "e"),
    ('ė', "e"),
    ('ę', "e"),
    ('ě', "e"),
    ('ĝ', "g"),
    ('ğ', "g"),
    ('ġ', "g"),
    ('ģ', "g"),
    ('ĥ', "h"),
    ('ħ', "h"),
    ('ĩ', "i"),
    ('ī', "i"),
    ('ĭ', "i"),
    ('į', "i"),
    ('ı', "i"),
    ('ĳ', "ij"),
    ('ĵ', "j"),
    ('ķ', "k"),
    ('ĸ', "k"),
    ('ĺ', "l"),
    ('ļ', "l"),
    ('ľ', "l"),
    ('ŀ', "l"),
    ('ł', "l"),
    ('ń', "n"),
    ('ņ', "n"),
    ('ň', "n"),
    ('ŋ', "n"),
    ('ō', "o"),
    ('ŏ', "o"),
    ('ő', "o"),
    ('œ', "oe"),
    ('ŕ', "r"),
    ('ŗ', "r"),
    ('ř', "r"),
    ('ś', "s"),
    ('ŝ', "s"),
    ('ş', "s"),
    ('š', "s"),
    ('ţ', "t"),
    ('ť', "t"),
    ('ŧ', "t"),
    ('ũ', "u"),
    ('ū', "u"),
    ('ŭ', "u"),
    ('ů', "u"),
    ('ű', "u"),
    ('ų', "u"),
    ('ŵ', "w"),
    ('ŷ', "y"),
    ('ź', "z"),
    ('ż', "z"),
    ('ž', "z"),
    ('ſ', "s"),
    ('ƒ', "f"),
    ('ơ', "o"),
    ('ư', "u"),
    ('ǆ', "dz"),
    ('ǉ', "lj"),
    ('ǌ', "nj"),
    ('ǎ', "a"),
    ('ǐ', "i"),
    ('ǒ', "o"),
    ('ǔ', "u"),
    ('ǖ', "u"),
    ('ǘ', "u"),
    ('ǚ', "u"),
    ('ǜ', "u"),
    ('ǟ', "a"),
    ('ǡ', "a"),
    ('ǧ', "g"),
    ('ǩ', "k"),
    ('ǫ', "o"),
    ('ǭ', "o"),
    ('ǰ', "j"),
    ('ǵ', "g"),
    ('ǹ', "n"),
    ('ǻ', "a"),
    ('ȁ', "a"),
    ('ȃ', "a"),
    ('ȅ', "e"),
    ('ȇ', "e"),
    ('ȉ', "i"),
    ('ȋ', "i"),
    ('ȍ', "o"),
    ('ȏ', "o"),
    ('ȑ', "r"),
    ('ȓ', "r"),
    ('ȕ', "u"),
    ('ȗ', "u"),
    ('ș', "s"),
    ('ț', "t"),
    ('ȟ', "h"),
    ('ȧ', "a"),
    ('ȩ', "e"),
    ('ȫ', "o"),
    ('ȭ', "o"),
    ('ȯ', "o"),
    ('ȱ', "o"),
    ('ȳ', "y"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldValue;
    use crate::verification::{CheckStatus, FileRef, VerificationStatus};
    use serde_json::json;
    use time::macros::date;

    const TODAY: Date = date!(2024 - 06 - 15);

    fn document() -> AddressDocument {
        AddressDocument {
            document_kind: "utility-bill".to_owned(),
            issue_date: Some(date!(2024 - 05 - 20)),
            address_street_1: "123 Main St.".to_owned(),
            address_street_2: Some("Apt 4B".to_owned()),
            address_city: "San Francisco".to_owned(),
            address_subdivision: Some("CA".to_owned()),
            address_postal_code: "94103".to_owned(),
            address_country_code: "US".to_owned(),
        }
    }

    fn subject() -> Subject {
        let mut s = Subject::default();
        for (key, value) in [
            ("address-street-1", "123 main street"),
            ("address-street-2", "Apartment 4b"),
            ("address-city", "SAN FRANCISCO"),
            ("address-postal-code", "94103-1234"),
            ("address-country-code", "US"),
        ] {
            s.fields
                .insert(key.to_owned(), FieldValue::String(value.to_owned()));
        }
        s.files.push(FileRef {
            id: "fil_1".to_owned(),
            kind: FileKind::ProofOfAddress,
            content_type: "application/pdf".to_owned(),
            size: 1000,
        });
        s
    }

    fn run(document: &AddressDocument, subject: &Subject) -> VerificationOutcome {
        verify(document, subject, &DocumentConfig::default(), TODAY)
    }

    fn check<'a>(outcome: &'a VerificationOutcome, name: &str) -> &'a Check {
        outcome
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
    }

    fn failed_only(outcome: &VerificationOutcome) -> Vec<&str> {
        outcome
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Failed)
            .map(|c| c.name.as_str())
            .collect()
    }

    fn inquiry<'a>(
        street: &'a str,
        city: &'a str,
        postal: &'a str,
        country: &'a str,
    ) -> InquiryAddress<'a> {
        InquiryAddress {
            street_1: street,
            street_2: None,
            city,
            postal_code: postal,
            country_code: country,
        }
    }

    fn doc(street: &str, city: &str, postal: &str, country: &str) -> AddressDocument {
        AddressDocument {
            address_street_1: street.to_owned(),
            address_street_2: None,
            address_city: city.to_owned(),
            address_postal_code: postal.to_owned(),
            address_country_code: country.to_owned(),
            ..document()
        }
    }

    #[test]
    fn config_defaults_and_reading() {
        assert_eq!(
            DocumentConfig::from_config(&Map::new()),
            DocumentConfig {
                kinds: vec!["proof-of-address".to_owned()],
                max_age_days: 90
            }
        );
        let config = json!({"kinds": ["proof-of-address"], "max-age-days": 30});
        let config = DocumentConfig::from_config(config.as_object().unwrap());
        assert_eq!(config.max_age_days, 30);
        let odd = json!({"kinds": [], "max-age-days": 0});
        assert_eq!(
            DocumentConfig::from_config(odd.as_object().unwrap()),
            DocumentConfig::default()
        );
    }

    #[test]
    fn a_good_document_passes() {
        let outcome = run(&document(), &subject());
        assert_eq!(outcome.status, VerificationStatus::Passed, "{outcome:#?}");
        let names: Vec<&str> = outcome.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "document_file_present",
                "document_kind_allowed",
                "document_issue_date_recent",
                "document_address_match"
            ]
        );
        assert!(
            outcome
                .checks
                .iter()
                .all(|c| c.requirement == CheckRequirement::Required)
        );
        assert_eq!(
            check(&outcome, "document_issue_date_recent").metadata["age-days"],
            26
        );
        assert_eq!(outcome.attributes["document-kind"], "utility-bill");
        assert_eq!(outcome.attributes["issue-date"], "2024-05-20");
    }

    #[test]
    fn every_proof_of_address_kind_is_allowed() {
        for kind in PROOF_OF_ADDRESS_KINDS
            .iter()
            .chain(&["Bank Statement", "TAX_LETTER"])
        {
            let d = AddressDocument {
                document_kind: (*kind).to_owned(),
                ..document()
            };
            assert_eq!(
                run(&d, &subject()).status,
                VerificationStatus::Passed,
                "{kind}"
            );
        }
    }

    #[test]
    fn missing_file_fails() {
        let mut s = subject();
        s.files.clear();
        let outcome = run(&document(), &s);
        assert_eq!(outcome.status, VerificationStatus::Failed);
        assert_eq!(failed_only(&outcome), ["document_file_present"]);
        // A file of another kind does not count.
        s.files.push(FileRef {
            id: "fil_2".to_owned(),
            kind: FileKind::Selfie,
            content_type: "image/jpeg".to_owned(),
            size: 10,
        });
        assert_eq!(
            failed_only(&run(&document(), &s)),
            ["document_file_present"]
        );
    }

    #[test]
    fn unknown_kind_fails() {
        for kind in ["passport", "", "gym-membership"] {
            let d = AddressDocument {
                document_kind: kind.to_owned(),
                ..document()
            };
            let outcome = run(&d, &subject());
            assert_eq!(failed_only(&outcome), ["document_kind_allowed"], "{kind}");
        }
        let kinds_elsewhere = DocumentConfig {
            kinds: vec!["other".to_owned()],
            ..DocumentConfig::default()
        };
        let outcome = verify(&document(), &subject(), &kinds_elsewhere, TODAY);
        assert_eq!(failed_only(&outcome), ["document_kind_allowed"]);
    }

    #[test]
    fn issue_date_must_be_given_past_and_recent() {
        let with_date = |issue_date| AddressDocument {
            issue_date,
            ..document()
        };
        for (issue_date, reason) in [
            (None, "The issue date is not given."),
            (
                Some(date!(2024 - 06 - 16)),
                "The issue date 2024-06-16 is in the future.",
            ),
            (
                Some(date!(2024 - 03 - 16)),
                "The document was issued 91 days ago, more than the 90 days allowed.",
            ),
        ] {
            let outcome = run(&with_date(issue_date), &subject());
            assert_eq!(failed_only(&outcome), ["document_issue_date_recent"]);
            assert_eq!(
                check(&outcome, "document_issue_date_recent").reasons,
                [reason]
            );
        }
        // Boundaries: issued today, and exactly max-age-days ago.
        for issue_date in [TODAY, date!(2024 - 03 - 17)] {
            assert_eq!(
                run(&with_date(Some(issue_date)), &subject()).status,
                VerificationStatus::Passed
            );
        }
        let strict = DocumentConfig {
            max_age_days: 7,
            ..DocumentConfig::default()
        };
        let outcome = verify(&document(), &subject(), &strict, TODAY);
        assert_eq!(failed_only(&outcome), ["document_issue_date_recent"]);
    }

    #[test]
    fn address_must_match() {
        let mut d = document();
        d.address_street_1 = "125 Main St".to_owned();
        let outcome = run(&d, &subject());
        assert_eq!(failed_only(&outcome), ["document_address_match"]);
        let address = check(&outcome, "document_address_match");
        assert_eq!(address.metadata["mismatches"], json!(["street"]));
        assert_eq!(
            address.reasons,
            ["The address on the document does not match the inquiry's (street differs)."]
        );

        let d = AddressDocument {
            address_city: "Oakland".to_owned(),
            address_postal_code: "94607".to_owned(),
            address_country_code: "CA".to_owned(),
            ..document()
        };
        let outcome = run(&d, &subject());
        assert_eq!(
            check(&outcome, "document_address_match").metadata["mismatches"],
            json!(["city", "postal-code", "country-code"])
        );
    }

    #[test]
    fn address_check_fails_without_an_inquiry_address() {
        let mut s = subject();
        s.fields.remove("address-city");
        s.fields.insert(
            "address-postal-code".to_owned(),
            FieldValue::String("  ".to_owned()),
        );
        let outcome = run(&document(), &s);
        assert_eq!(failed_only(&outcome), ["document_address_match"]);
        assert_eq!(
            check(&outcome, "document_address_match").reasons,
            [
                "The inquiry has no address to compare with (missing: address-city, \
              address-postal-code)."
            ]
        );
    }

    #[test]
    fn street_normalization() {
        for (a, b) in [
            ("123 Main St.", "123 MAIN STREET"),
            ("10 Downing St", "10, Downing Street"),
            ("742 Evergreen Ter.", "742 evergreen ter"),
            ("5 Abbey Rd", "5 Abbey Road"),
            ("350 Fifth Ave", "350 Fifth Avenue"),
            (
                "1600 Pennsylvania Ave NW",
                "1600 Pennsylvania Avenue Northwest",
            ),
            ("100 N. Main St.", "100 North Main Street"),
            ("Hauptstr. 5", "Hauptstraße 5"),
            ("Hauptstr. 5", "HAUPTSTRASSE 5"),
            ("Berliner Str. 12a", "Berliner Straße 12 A"),
            ("42nd St", "42 nd Street"),
            ("Müllerstraße 3", "Muellerstrasse 3"),
            ("Rue de l'Église 7", "7 rue de l eglise"),
            ("Calle Mayor, nº 4", "Calle Mayor 4"),
            ("Apt #4, 12 Elm St", "12 Elm St Apartment 4"),
            ("Unit 4, 12 Elm St", "Apt 4 12 Elm Street"),
            ("Main Street 12", "12 Main Street"),
            ("Łódzka 8", "Lodzka 8"),
            ("4 O'Connell St", "4 OConnell Street"),
        ] {
            assert!(streets_match(a, b), "{a:?} vs {b:?}");
            assert!(streets_match(b, a), "{b:?} vs {a:?}");
        }
        for (a, b) in [
            ("123 Main St", "124 Main St"),
            ("123 Main St", "123 Main Rd"),
            ("12 Elm St Apt 4", "12 Elm St Apt 5"),
            ("12 Elm St Apt 4", "4 Elm St Apt 12"),
            ("12 Elm St Apt 4", "12 Elm St Suite 4"),
            ("12 Elm St Apt 4", "12 4 Elm St Apt"),
            ("12 Elm St", "12 Elm St Apt 4"),
            ("12a Elm St", "12b Elm St"),
            ("12 Elm St", "12 Oak St"),
            ("", ""),
            ("...", "..."),
        ] {
            assert!(!streets_match(a, b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn unit_on_either_line() {
        let d = AddressDocument {
            address_street_1: "12 Elm St, Apt 4".to_owned(),
            address_street_2: None,
            ..doc("", "Springfield", "12345", "US")
        };
        let mut i = inquiry("12 Elm Street", "Springfield", "12345", "US");
        i.street_2 = Some("Apartment 4");
        assert!(address_matches(&d, &i));
        i.street_2 = Some("Apartment 5");
        assert_eq!(address_mismatches(&d, &i), ["street"]);
    }

    #[test]
    fn city_postal_code_and_country_normalization() {
        let d = doc("1 Rue de Rivoli", "Saint-Étienne", "42 000", "fr");
        assert!(address_matches(
            &d,
            &inquiry("1 rue de rivoli", "St Etienne", "42000", "FR")
        ));
        let d = doc("2 Quai d'Orsay", "L'Haÿ-les-Roses", "94240", "FR");
        assert!(address_matches(
            &d,
            &inquiry("2 quai dorsay", "LHay les Roses", "94240", "FR")
        ));
        let d = doc("1 Baker St", "London", "nw1 6xe", "GB");
        assert!(address_matches(
            &d,
            &inquiry("1 Baker Street", "LONDON", "NW16XE", "GB")
        ));
        assert_eq!(
            address_mismatches(&d, &inquiry("1 Baker Street", "London", "NW1 6XF", "GB")),
            ["postal-code"]
        );
        let d = doc("1 Market St", "Mt. Vernon", "10550", "US");
        assert!(address_matches(
            &d,
            &inquiry("1 Market Street", "Mount Vernon", "10550-1234", "US")
        ));
        // ZIP+4 tolerance is for the US only, and both ZIPs must agree.
        assert_eq!(
            address_mismatches(
                &d,
                &inquiry("1 Market Street", "Mount Vernon", "10551-1234", "US")
            ),
            ["postal-code"]
        );
        let d = doc("Hauptstr. 1", "München", "80331", "DE");
        assert!(address_matches(
            &d,
            &inquiry("Hauptstraße 1", "Muenchen", "80331", "DE")
        ));
        assert_eq!(
            address_mismatches(&d, &inquiry("Hauptstraße 1", "München", "80331-00", "AT")),
            ["postal-code", "country-code"]
        );
        assert_eq!(
            address_mismatches(&d, &inquiry("Hauptstraße 1", "Münster", "80331", "DE")),
            ["city"]
        );
        let empty = doc("Hauptstr. 1", "München", "", "DE");
        assert_eq!(
            address_mismatches(&empty, &inquiry("Hauptstraße 1", "München", "", "DE")),
            ["postal-code"]
        );
    }

    #[test]
    fn tables_are_sorted() {
        assert!(FOLDED.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(STREET_ABBREVIATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(CITY_ABBREVIATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(fold("Ærø Straße Œuvre Çà"), "aero strasse oeuvre ca");
        assert_eq!(digit_runs("12ab3"), ["12", "ab", "3"]);
        assert_eq!(digit_runs("x"), ["x"]);
        assert!(digit_runs("").is_empty());
        assert_eq!(document_category("Utility Bill"), Some("proof-of-address"));
        assert_eq!(document_category("passport"), None);
    }
}
