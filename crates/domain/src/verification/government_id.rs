//! The `government-id` verification: the document's images, its machine-readable zone (ICAO
//! 9303: every check digit, the form of every field, consistency with the visual zone), expiry, minimum age, allowed
//! countries and id classes, and the document's name and birthdate against the inquiry's fields.
//!
//! Where the visual zone leaves a value empty (an SDK may read only the MRZ), the value read from
//! the MRZ stands in for it: issuing country, names, birthdate and expiration date.

use serde_json::{Map, Value};
use time::Date;

use super::CheckRequirement::{NotRequired, Required};
use super::{Check, CheckStatus, FileKind, GovernmentIdDocument, Subject, VerificationOutcome};
use crate::mrz::{self, Mrz};
use crate::names;
use crate::time_format::format_date;

/// The template's options of a `government-id` verification (validated by `template`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GovernmentIdConfig {
    /// ISO 3166-1 alpha-2 codes; empty allows every country.
    pub allowed_countries: Vec<String>,
    /// Among `pp`, `dl`, `id`, `rp`, `visa`; empty allows every class.
    pub allowed_id_classes: Vec<String>,
    pub minimum_age: Option<u32>,
    /// Require a machine-readable zone whatever the class (passports always need one).
    pub require_mrz: bool,
}

impl GovernmentIdConfig {
    /// Reads the options from a template's `config`. Missing or malformed options (which the
    /// template's validation rejects beforehand) take the permissive default.
    pub fn from_config(map: &Map<String, Value>) -> Self {
        let strings = |key: &str| -> Vec<String> {
            map.get(key)
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            allowed_countries: strings("allowed-countries"),
            allowed_id_classes: strings("allowed-id-classes"),
            minimum_age: map
                .get("minimum-age")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
            require_mrz: map
                .get("require-mrz")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

/// Classes whose document has no back side to photograph.
const SINGLE_SIDED: &[&str] = &["pp", "visa"];

/// Runs every check of the verification over `document` (the identity document as read) and
/// `subject` (the inquiry: its files and fields). `today` decides expiry and age.
pub fn verify(
    document: &GovernmentIdDocument,
    subject: &Subject,
    config: &GovernmentIdConfig,
    today: Date,
) -> VerificationOutcome {
    let class = document.id_class.trim().to_ascii_lowercase();
    let mrz_lines: Vec<&str> = document
        .mrz
        .iter()
        .map(String::as_str)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mrz_present = !mrz_lines.is_empty();
    let mrz_required = config.require_mrz || class == "pp";
    let parsed = mrz_present.then(|| mrz::parse(&mrz_lines, today));
    let mrz = parsed.as_ref().and_then(|p| p.as_ref().ok());
    let facts = Facts::new(document, mrz);

    let mut checks = vec![
        Check::from_bool(
            "id_front_image_present",
            Required,
            subject.has_file(FileKind::GovernmentIdFront),
            "No image of the front of the document was uploaded.",
        ),
        back_image(&class, subject),
        mrz_presence(mrz_present, mrz_required),
    ];
    let mrz_requirement = if mrz_required || mrz_present {
        Required
    } else {
        NotRequired
    };
    match &parsed {
        None => {
            for name in [
                "id_mrz_parse",
                "id_mrz_check_digits",
                "id_mrz_field_formats",
                "id_mrz_visual_consistency",
            ] {
                checks.push(Check::not_applicable(
                    name,
                    mrz_requirement,
                    "The document has no MRZ.",
                ));
            }
        }
        Some(Err(err)) => {
            checks.push(Check::failed(
                "id_mrz_parse",
                Required,
                format!("The MRZ could not be read: {err}."),
            ));
            for name in [
                "id_mrz_check_digits",
                "id_mrz_field_formats",
                "id_mrz_visual_consistency",
            ] {
                checks.push(Check::not_applicable(
                    name,
                    Required,
                    "The MRZ could not be read.",
                ));
            }
        }
        Some(Ok(mrz)) => {
            checks.push(
                Check::passed("id_mrz_parse", Required)
                    .with_metadata("format", mrz.format.as_str()),
            );
            checks.push(check_digits(mrz));
            checks.push(field_formats(mrz));
            checks.push(visual_consistency(document, &class, mrz));
        }
    }
    checks.extend([
        expiry(facts.expiration_date, today),
        age(facts.birthdate, config.minimum_age, today),
        allowed(
            "id_disallowed_country_detection",
            &facts.issuing_country,
            &config.allowed_countries,
            "issuing country",
        ),
        allowed(
            "id_disallowed_type_detection",
            &class,
            &config.allowed_id_classes,
            "id class",
        ),
        inquiry_name(&facts, subject),
        inquiry_birthdate(facts.birthdate, subject),
    ]);

    let date = |d: Option<Date>| d.map_or(Value::Null, |d| Value::String(format_date(d)));
    let mut attributes = Map::new();
    attributes.insert("id-class".into(), class.into());
    attributes.insert(
        "issuing-country".into(),
        facts.issuing_country.clone().into(),
    );
    attributes.insert(
        "document-number".into(),
        facts.document_number.clone().into(),
    );
    attributes.insert("name-first".into(), facts.name_first.clone().into());
    attributes.insert("name-last".into(), facts.name_last.clone().into());
    attributes.insert("birthdate".into(), date(facts.birthdate));
    attributes.insert("expiration-date".into(), date(facts.expiration_date));
    attributes.insert(
        "mrz-format".into(),
        mrz.map_or(Value::Null, |m| m.format.as_str().into()),
    );
    VerificationOutcome::from_checks(checks, attributes)
}

/// The document's values, from the visual zone or, where it is empty, from the MRZ.
#[derive(Debug)]
struct Facts {
    issuing_country: String,
    document_number: String,
    name_first: String,
    name_last: String,
    birthdate: Option<Date>,
    expiration_date: Option<Date>,
}

impl Facts {
    fn new(document: &GovernmentIdDocument, mrz: Option<&Mrz>) -> Self {
        let or_mrz = |visual: &str, from_mrz: &dyn Fn(&Mrz) -> String| {
            let visual = visual.trim();
            if visual.is_empty() {
                mrz.map(from_mrz).unwrap_or_default()
            } else {
                visual.to_owned()
            }
        };
        let names_empty =
            document.name_first.trim().is_empty() && document.name_last.trim().is_empty();
        let (name_first, name_last) = match mrz {
            Some(m) if names_empty => (m.given_names_joined(), m.surname.clone()),
            _ => (
                document.name_first.trim().to_owned(),
                document.name_last.trim().to_owned(),
            ),
        };
        Self {
            issuing_country: or_mrz(&document.issuing_country, &|m| {
                mrz::alpha3_to_alpha2(&m.issuing_state)
                    .unwrap_or_default()
                    .to_owned()
            })
            .to_ascii_uppercase(),
            document_number: or_mrz(&document.document_number, &|m| m.document_number.clone()),
            name_first,
            name_last,
            birthdate: document
                .birthdate
                .or_else(|| mrz.and_then(|m| m.birth_date)),
            expiration_date: document
                .expiration_date
                .or_else(|| mrz.and_then(|m| m.expiry_date)),
        }
    }
}

fn back_image(class: &str, subject: &Subject) -> Check {
    const NAME: &str = "id_back_image_present";
    let present = subject.has_file(FileKind::GovernmentIdBack);
    if !SINGLE_SIDED.contains(&class) {
        Check::from_bool(
            NAME,
            Required,
            present,
            "No image of the back of the document was uploaded.",
        )
    } else if present {
        Check::passed(NAME, NotRequired)
    } else {
        Check::not_applicable(
            NAME,
            NotRequired,
            "This class of document has no back side.",
        )
    }
}

fn mrz_presence(present: bool, required: bool) -> Check {
    const NAME: &str = "id_mrz_present";
    match (present, required) {
        (_, true) => Check::from_bool(
            NAME,
            Required,
            present,
            "The document's MRZ was not provided.",
        ),
        (true, false) => Check::passed(NAME, NotRequired),
        (false, false) => Check::not_applicable(
            NAME,
            NotRequired,
            "The document has no MRZ and none is required.",
        ),
    }
}

fn check_digits(mrz: &Mrz) -> Check {
    const NAME: &str = "id_mrz_check_digits";
    let digits: Vec<Value> = mrz
        .checks
        .iter()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect();
    let reasons: Vec<String> = mrz
        .checks
        .iter()
        .filter(|c| !c.valid)
        .map(|c| {
            format!(
                "The {} check digit is `{}` but the data gives `{}`.",
                c.field, c.expected, c.computed
            )
        })
        .collect();
    let check = if reasons.is_empty() {
        Check::passed(NAME, Required)
    } else {
        Check {
            status: CheckStatus::Failed,
            reasons,
            ..Check::passed(NAME, Required)
        }
    };
    check.with_metadata("check-digits", digits)
}

/// Check digits can be computed over anything: a zone whose issuing state is no ICAO code, or
/// whose name holds digits, is not a document's even when every digit holds.
fn field_formats(mrz: &Mrz) -> Check {
    const NAME: &str = "id_mrz_field_formats";
    let invalid: Vec<&mrz::FieldCheck> = mrz.field_checks.iter().filter(|c| !c.valid).collect();
    let fields: Vec<Value> = invalid.iter().map(|c| Value::from(c.field)).collect();
    let check = if invalid.is_empty() {
        Check::passed(NAME, Required)
    } else {
        Check {
            status: CheckStatus::Failed,
            reasons: invalid
                .iter()
                .filter_map(|c| c.problem)
                .map(str::to_owned)
                .collect(),
            ..Check::passed(NAME, Required)
        }
    };
    check.with_metadata("invalid-fields", fields)
}

/// Document numbers compared without case, spaces, hyphens and fillers.
fn plain_number(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The MRZ against the visual zone. Values the visual zone leaves empty are not compared.
fn visual_consistency(document: &GovernmentIdDocument, class: &str, mrz: &Mrz) -> Check {
    const NAME: &str = "id_mrz_visual_consistency";
    let mut mismatches: Vec<(&str, String)> = vec![];

    let number = plain_number(&document.document_number);
    if !number.is_empty() && number != plain_number(&mrz.document_number) {
        mismatches.push((
            "document-number",
            "The document number differs from the MRZ's.".into(),
        ));
    }
    let (first, last) = (document.name_first.trim(), document.name_last.trim());
    let has_name = !first.is_empty() || !last.is_empty();
    if has_name && !names::names_match(first, last, &mrz.given_names_joined(), &mrz.surname) {
        mismatches.push(("name", "The name differs from the MRZ's.".into()));
    }
    for (field, visual, from_mrz, what) in [
        ("birthdate", document.birthdate, mrz.birth_date, "birthdate"),
        (
            "expiration-date",
            document.expiration_date,
            mrz.expiry_date,
            "expiration date",
        ),
    ] {
        if visual.is_some() && visual != from_mrz {
            mismatches.push((field, format!("The {what} differs from the MRZ's.")));
        }
    }
    let country = document.issuing_country.trim().to_ascii_uppercase();
    if !country.is_empty() && mrz::alpha3_to_alpha2(&mrz.issuing_state) != Some(country.as_str()) {
        mismatches.push((
            "issuing-country",
            format!(
                "The issuing country differs from the MRZ's `{}`.",
                mrz.issuing_state
            ),
        ));
    }
    // Passports carry document code P…, visas V…; cards use I, A or C in several classes.
    let code_fits = match class {
        "pp" => mrz.document_code.starts_with('P'),
        "visa" => mrz.document_code.starts_with('V'),
        _ => true,
    };
    if !code_fits {
        mismatches.push((
            "id-class",
            format!(
                "The MRZ's document code `{}` does not fit the id class.",
                mrz.document_code
            ),
        ));
    }

    let fields: Vec<Value> = mismatches.iter().map(|(f, _)| Value::from(*f)).collect();
    let check = if mismatches.is_empty() {
        Check::passed(NAME, Required)
    } else {
        Check {
            status: CheckStatus::Failed,
            reasons: mismatches.into_iter().map(|(_, r)| r).collect(),
            ..Check::passed(NAME, Required)
        }
    };
    check.with_metadata("mismatches", fields)
}

fn expiry(expiration: Option<Date>, today: Date) -> Check {
    const NAME: &str = "id_expired_detection";
    match expiration {
        None => Check::failed(NAME, Required, "The document's expiration date is unknown."),
        Some(d) => Check::from_bool(NAME, Required, d >= today, "The document has expired.")
            .with_metadata("expiration-date", format_date(d)),
    }
}

/// Whole years from `birth` to `today`.
fn age_on(birth: Date, today: Date) -> i32 {
    let years = today.year() - birth.year();
    if (u8::from(today.month()), today.day()) < (u8::from(birth.month()), birth.day()) {
        years - 1
    } else {
        years
    }
}

fn age(birthdate: Option<Date>, minimum: Option<u32>, today: Date) -> Check {
    const NAME: &str = "id_age_comparison";
    let Some(minimum) = minimum else {
        return Check::not_applicable(NAME, NotRequired, "The template sets no minimum age.");
    };
    let Some(birth) = birthdate else {
        return Check::failed(NAME, Required, "The document's birthdate is unknown.")
            .with_metadata("minimum-age", minimum);
    };
    let age = age_on(birth, today);
    Check::from_bool(
        NAME,
        Required,
        i64::from(age) >= i64::from(minimum),
        format!("The holder is under the minimum age of {minimum}."),
    )
    .with_metadata("minimum-age", minimum)
    .with_metadata("age", age)
}

fn allowed(name: &str, value: &str, allowed: &[String], what: &str) -> Check {
    if allowed.is_empty() {
        return Check::passed(name, Required);
    }
    let ok = allowed.iter().any(|a| a.eq_ignore_ascii_case(value));
    let shown = if value.is_empty() { "unknown" } else { value };
    Check::from_bool(
        name,
        Required,
        ok,
        format!(
            "The {what} `{shown}` is not among those allowed ({}).",
            allowed.join(", ")
        ),
    )
}

fn inquiry_name(facts: &Facts, subject: &Subject) -> Check {
    const NAME: &str = "id_inquiry_name_comparison";
    let first = subject.text("name-first").unwrap_or("");
    let last = subject.text("name-last").unwrap_or("");
    if first.trim().is_empty() && last.trim().is_empty() {
        return Check::not_applicable(NAME, Required, "The inquiry has no name.");
    }
    Check::from_bool(
        NAME,
        Required,
        names::names_match(&facts.name_first, &facts.name_last, first, last),
        "The name on the document differs from the inquiry's.",
    )
}

fn inquiry_birthdate(birthdate: Option<Date>, subject: &Subject) -> Check {
    const NAME: &str = "id_inquiry_birthdate_comparison";
    let Some(expected) = subject.date("birthdate") else {
        return Check::not_applicable(NAME, Required, "The inquiry has no birthdate.");
    };
    match birthdate {
        None => Check::failed(NAME, Required, "The document's birthdate is unknown."),
        Some(d) => Check::from_bool(
            NAME,
            Required,
            d == expected,
            "The birthdate on the document differs from the inquiry's.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldValue;
    use crate::verification::{FileRef, VerificationStatus};
    use serde_json::json;
    use time::macros::date;

    const TODAY: Date = date!(2010 - 06 - 01);
    const TD3: [&str; 2] = [
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ];
    const TD1: [&str; 3] = [
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        "7408122F1204159UTO<<<<<<<<<<<6",
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
    ];

    fn passport() -> GovernmentIdDocument {
        GovernmentIdDocument {
            id_class: "pp".into(),
            issuing_country: "UT".into(),
            document_number: "L898902C3".into(),
            name_first: "Anna María".into(),
            name_last: "Eriksson".into(),
            birthdate: Some(date!(1974 - 08 - 12)),
            expiration_date: Some(date!(2012 - 04 - 15)),
            mrz: TD3.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn file(kind: FileKind) -> FileRef {
        FileRef {
            id: format!("file_{kind}"),
            kind,
            content_type: "image/jpeg".into(),
            size: 1000,
        }
    }

    fn subject() -> Subject {
        let mut s = Subject {
            files: vec![file(FileKind::GovernmentIdFront)],
            ..Subject::default()
        };
        s.fields
            .insert("name-first".into(), FieldValue::String("ANNA".into()));
        s.fields
            .insert("name-last".into(), FieldValue::String("Eriksson".into()));
        s.fields
            .insert("birthdate".into(), FieldValue::Date(date!(1974 - 08 - 12)));
        s
    }

    fn failed(outcome: &VerificationOutcome) -> Vec<&str> {
        outcome
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Failed)
            .map(|c| c.name.as_str())
            .collect()
    }

    fn check<'a>(outcome: &'a VerificationOutcome, name: &str) -> &'a Check {
        outcome.checks.iter().find(|c| c.name == name).unwrap()
    }

    fn run(
        doc: &GovernmentIdDocument,
        subject: &Subject,
        config: &GovernmentIdConfig,
    ) -> VerificationOutcome {
        verify(doc, subject, config, TODAY)
    }

    /// Runs the verification and asserts that exactly `expected` failed.
    fn fails_only(
        doc: &GovernmentIdDocument,
        subject: &Subject,
        config: &GovernmentIdConfig,
        expected: &str,
    ) {
        let outcome = run(doc, subject, config);
        assert_eq!(failed(&outcome), [expected], "{:#?}", outcome.checks);
        assert_eq!(outcome.status, VerificationStatus::Failed);
    }

    #[test]
    fn reads_config() {
        let config = GovernmentIdConfig::from_config(
            json!({"allowed-countries": ["US", "DE"], "allowed-id-classes": ["pp"], "minimum-age": 18, "require-mrz": true})
                .as_object()
                .unwrap(),
        );
        assert_eq!(
            config,
            GovernmentIdConfig {
                allowed_countries: vec!["US".into(), "DE".into()],
                allowed_id_classes: vec!["pp".into()],
                minimum_age: Some(18),
                require_mrz: true,
            }
        );
        assert_eq!(
            GovernmentIdConfig::from_config(&Map::new()),
            GovernmentIdConfig::default()
        );
    }

    #[test]
    fn a_valid_passport_passes() {
        let config = GovernmentIdConfig {
            allowed_countries: vec!["UT".into()],
            allowed_id_classes: vec!["pp".into(), "id".into()],
            minimum_age: Some(18),
            require_mrz: false,
        };
        let outcome = run(&passport(), &subject(), &config);
        assert_eq!(
            outcome.status,
            VerificationStatus::Passed,
            "{:#?}",
            outcome.checks
        );
        let names: Vec<_> = outcome
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.status, c.requirement))
            .collect();
        use CheckStatus::{NotApplicable, Passed};
        assert_eq!(
            names,
            [
                ("id_front_image_present", Passed, Required),
                ("id_back_image_present", NotApplicable, NotRequired),
                ("id_mrz_present", Passed, Required),
                ("id_mrz_parse", Passed, Required),
                ("id_mrz_check_digits", Passed, Required),
                ("id_mrz_field_formats", Passed, Required),
                ("id_mrz_visual_consistency", Passed, Required),
                ("id_expired_detection", Passed, Required),
                ("id_age_comparison", Passed, Required),
                ("id_disallowed_country_detection", Passed, Required),
                ("id_disallowed_type_detection", Passed, Required),
                ("id_inquiry_name_comparison", Passed, Required),
                ("id_inquiry_birthdate_comparison", Passed, Required),
            ]
        );
        assert_eq!(check(&outcome, "id_age_comparison").metadata["age"], 35);
        assert_eq!(
            check(&outcome, "id_mrz_check_digits").metadata["check-digits"][4],
            json!({"field": "composite", "expected": "0", "computed": "0", "valid": true})
        );
        assert_eq!(
            Value::Object(outcome.attributes),
            json!({
                "id-class": "pp",
                "issuing-country": "UT",
                "document-number": "L898902C3",
                "name-first": "Anna María",
                "name-last": "Eriksson",
                "birthdate": "1974-08-12",
                "expiration-date": "2012-04-15",
                "mrz-format": "td3",
            })
        );
    }

    #[test]
    fn an_identity_card_with_both_sides_passes() {
        let doc = GovernmentIdDocument {
            id_class: "id".into(),
            document_number: "D23145890".into(),
            mrz: TD1.iter().map(|l| l.to_string()).collect(),
            ..passport()
        };
        let mut subject = subject();
        subject.files.push(file(FileKind::GovernmentIdBack));
        let outcome = run(&doc, &subject, &GovernmentIdConfig::default());
        assert_eq!(
            outcome.status,
            VerificationStatus::Passed,
            "{:#?}",
            outcome.checks
        );
        assert_eq!(outcome.attributes["mrz-format"], "td1");
        // Without the back image, only that check fails.
        fails_only(
            &doc,
            &Subject {
                files: vec![file(FileKind::GovernmentIdFront)],
                ..subject
            },
            &GovernmentIdConfig::default(),
            "id_back_image_present",
        );
    }

    #[test]
    fn a_driver_licence_without_mrz() {
        let doc = GovernmentIdDocument {
            id_class: "dl".into(),
            mrz: vec![],
            ..passport()
        };
        let mut subject = subject();
        subject.files.push(file(FileKind::GovernmentIdBack));
        let outcome = run(&doc, &subject, &GovernmentIdConfig::default());
        assert_eq!(
            outcome.status,
            VerificationStatus::Passed,
            "{:#?}",
            outcome.checks
        );
        let mrz = check(&outcome, "id_mrz_present");
        assert_eq!(
            (mrz.status, mrz.requirement),
            (CheckStatus::NotApplicable, NotRequired)
        );
        assert_eq!(
            check(&outcome, "id_mrz_parse").status,
            CheckStatus::NotApplicable
        );
        // Unless the template requires one.
        let config = GovernmentIdConfig {
            require_mrz: true,
            ..GovernmentIdConfig::default()
        };
        fails_only(&doc, &subject, &config, "id_mrz_present");
    }

    #[test]
    fn each_failure_fails_its_check() {
        let config = GovernmentIdConfig::default();
        let doc = passport();

        fails_only(
            &doc,
            &Subject {
                files: vec![],
                ..subject()
            },
            &config,
            "id_front_image_present",
        );
        fails_only(
            &GovernmentIdDocument {
                mrz: vec![],
                ..passport()
            },
            &subject(),
            &config,
            "id_mrz_present",
        );
        fails_only(
            &GovernmentIdDocument {
                mrz: vec![TD3[0].into()],
                ..passport()
            },
            &subject(),
            &config,
            "id_mrz_parse",
        );
        let corrupted = GovernmentIdDocument {
            mrz: vec![TD3[0].into(), TD3[1].replace("<10", "<11")],
            ..passport()
        };
        fails_only(&corrupted, &subject(), &config, "id_mrz_check_digits");
        let outcome = run(&corrupted, &subject(), &config);
        assert_eq!(
            check(&outcome, "id_mrz_check_digits").reasons,
            ["The composite check digit is `1` but the data gives `0`."]
        );

        // Issue 10: every check digit holds over an issuing state that is no ICAO code and a
        // name with a digit.
        let malformed = GovernmentIdDocument {
            issuing_country: String::new(),
            name_first: String::new(),
            name_last: String::new(),
            mrz: vec![
                "P<WTOERIK5SON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<".into(),
                TD3[1].into(),
            ],
            ..passport()
        };
        let outcome = run(&malformed, &subject(), &config);
        // The digit also makes the name read from the MRZ differ from the inquiry's.
        assert_eq!(
            failed(&outcome),
            ["id_mrz_field_formats", "id_inquiry_name_comparison"]
        );
        let formats = check(&outcome, "id_mrz_field_formats");
        assert_eq!(
            formats.metadata["invalid-fields"],
            json!(["issuing-state", "name"])
        );
        assert_eq!(formats.reasons.len(), 2, "{:?}", formats.reasons);
        assert_eq!(
            check(&outcome, "id_mrz_check_digits").status,
            CheckStatus::Passed
        );
        let wto = GovernmentIdDocument {
            issuing_country: String::new(),
            mrz: vec![TD3[0].replacen("UTO", "WTO", 1), TD3[1].into()],
            ..passport()
        };
        fails_only(&wto, &subject(), &config, "id_mrz_field_formats");
        // A sex outside M, F, X, < fails the same check (it used to make the MRZ unreadable).
        let odd_sex = GovernmentIdDocument {
            mrz: vec![TD3[0].into(), TD3[1].replace("2F120", "2Q120")],
            ..passport()
        };
        fails_only(&odd_sex, &subject(), &config, "id_mrz_field_formats");

        for (changed, mismatch) in [
            (
                GovernmentIdDocument {
                    document_number: "L898902C4".into(),
                    ..passport()
                },
                "document-number",
            ),
            (
                GovernmentIdDocument {
                    issuing_country: "US".into(),
                    ..passport()
                },
                "issuing-country",
            ),
            (
                GovernmentIdDocument {
                    expiration_date: Some(date!(2012 - 04 - 16)),
                    ..passport()
                },
                "expiration-date",
            ),
            (
                GovernmentIdDocument {
                    id_class: "visa".into(),
                    ..passport()
                },
                "id-class",
            ),
        ] {
            fails_only(&changed, &subject(), &config, "id_mrz_visual_consistency");
            let outcome = run(&changed, &subject(), &config);
            assert_eq!(
                check(&outcome, "id_mrz_visual_consistency").metadata["mismatches"],
                json!([mismatch])
            );
        }
        // A visual name that differs from the MRZ differs from the inquiry too.
        let outcome = run(
            &GovernmentIdDocument {
                name_first: "Hanna".into(),
                ..passport()
            },
            &subject(),
            &config,
        );
        assert_eq!(
            failed(&outcome),
            ["id_mrz_visual_consistency", "id_inquiry_name_comparison"]
        );
        // A birthdate that differs from the MRZ differs from the inquiry too.
        let outcome = run(
            &GovernmentIdDocument {
                birthdate: Some(date!(1974 - 08 - 13)),
                ..passport()
            },
            &subject(),
            &config,
        );
        assert_eq!(
            failed(&outcome),
            [
                "id_mrz_visual_consistency",
                "id_inquiry_birthdate_comparison"
            ]
        );

        let outcome = verify(&doc, &subject(), &config, date!(2012 - 04 - 16));
        assert_eq!(failed(&outcome), ["id_expired_detection"]);
        let outcome = verify(&doc, &subject(), &config, date!(2012 - 04 - 15));
        assert_eq!(
            outcome.status,
            VerificationStatus::Passed,
            "expires at the end of its last day"
        );

        let no_expiry = GovernmentIdDocument {
            id_class: "dl".into(),
            expiration_date: None,
            mrz: vec![],
            ..passport()
        };
        let mut two_sides = subject();
        two_sides.files.push(file(FileKind::GovernmentIdBack));
        fails_only(&no_expiry, &two_sides, &config, "id_expired_detection");

        let adults = GovernmentIdConfig {
            minimum_age: Some(36),
            ..GovernmentIdConfig::default()
        };
        fails_only(&doc, &subject(), &adults, "id_age_comparison");
        let outcome = verify(&doc, &subject(), &adults, date!(2010 - 08 - 12));
        assert_eq!(
            outcome.status,
            VerificationStatus::Passed,
            "36 on the birthday"
        );

        let us_only = GovernmentIdConfig {
            allowed_countries: vec!["US".into()],
            ..GovernmentIdConfig::default()
        };
        fails_only(
            &doc,
            &subject(),
            &us_only,
            "id_disallowed_country_detection",
        );
        let licences = GovernmentIdConfig {
            allowed_id_classes: vec!["dl".into()],
            ..GovernmentIdConfig::default()
        };
        fails_only(&doc, &subject(), &licences, "id_disallowed_type_detection");

        let mut other_name = subject();
        other_name
            .fields
            .insert("name-first".into(), FieldValue::String("Hanna".into()));
        fails_only(&doc, &other_name, &config, "id_inquiry_name_comparison");
        let mut other_birthdate = subject();
        other_birthdate
            .fields
            .insert("birthdate".into(), FieldValue::Date(date!(1974 - 08 - 21)));
        fails_only(
            &doc,
            &other_birthdate,
            &config,
            "id_inquiry_birthdate_comparison",
        );
    }

    #[test]
    fn inquiry_comparisons_not_applicable_without_fields() {
        let outcome = run(
            &passport(),
            &Subject {
                files: vec![file(FileKind::GovernmentIdFront)],
                ..Subject::default()
            },
            &GovernmentIdConfig::default(),
        );
        assert_eq!(outcome.status, VerificationStatus::Passed);
        assert_eq!(
            check(&outcome, "id_inquiry_name_comparison").status,
            CheckStatus::NotApplicable
        );
        assert_eq!(
            check(&outcome, "id_inquiry_birthdate_comparison").status,
            CheckStatus::NotApplicable
        );
        assert_eq!(
            check(&outcome, "id_age_comparison").status,
            CheckStatus::NotApplicable
        );
    }

    #[test]
    fn mrz_only_documents_use_the_mrz_values() {
        let doc = GovernmentIdDocument {
            id_class: "pp".into(),
            mrz: TD3.iter().map(|l| l.to_string()).collect(),
            ..GovernmentIdDocument::default()
        };
        let config = GovernmentIdConfig {
            allowed_countries: vec!["UT".into()],
            minimum_age: Some(18),
            ..GovernmentIdConfig::default()
        };
        let outcome = run(&doc, &subject(), &config);
        assert_eq!(
            outcome.status,
            VerificationStatus::Passed,
            "{:#?}",
            outcome.checks
        );
        assert_eq!(outcome.attributes["name-first"], "ANNA MARIA");
        assert_eq!(outcome.attributes["issuing-country"], "UT");
        assert_eq!(outcome.attributes["document-number"], "L898902C3");
    }
}
