//! ICAO Doc 9303 machine-readable zones: TD1 (3 × 30, identity cards), TD2 (2 × 36), TD3
//! (2 × 44, passports), and the visa layouts MRV-A (2 × 44) and MRV-B (2 × 36), which are
//! parsed as TD3 and TD2 with a document code starting with `V`.
//!
//! [`parse`] reads the fields, recomputes every check digit and checks that each field has the
//! form ICAO 9303 prescribes (a state code from its list, a name of letters, dates that are
//! dates, …). It never rejects an MRZ because a check digit is wrong or a field is malformed
//! (those are findings, reported in [`Mrz::checks`] and [`Mrz::field_checks`]), only because the
//! text is not an MRZ at all (line count, line length, characters outside `A–Z 0–9 <`).
//!
//! Check digits alone do not make an MRZ genuine: anyone can compute them for `WTO` as an
//! issuing state or `ERIK5SON` as a name. The field checks catch what the digits cannot.
//!
//! # What the check digits catch
//! A check digit is `Σ wᵢ·vᵢ mod 10` with weights 7, 3, 1 repeating, `<` = 0, `0–9` = 0–9 and
//! `A–Z` = 10–35. Every weight is coprime to 10, so substituting one character of a protected
//! field changes the sum by `w·Δv`, which is a multiple of 10 exactly when `Δv` is. Hence a single
//! substitution is detected unless the two characters' values differ by a multiple of 10 — `0`,
//! `<`, `A`, `K`, `U` are interchangeable, as are `1`, `B`, `L`, `V`, and so on. The composite
//! digit runs over the same characters with the same kind of weights and shares that blind spot.
//! A digit replaced by another digit is therefore always caught; a check digit replaced by
//! anything but `<` is always caught (a check digit is a digit).

use serde::{Serialize, Serializer};
use time::{Date, Month};

use crate::time_format::format_date;

string_enum! {
    /// The layout of a machine-readable zone.
    pub enum MrzFormat ("MRZ format", all: array) {
        /// 3 lines of 30 characters (identity cards).
        Td1 = "td1",
        /// 2 lines of 36 characters (cards; also visas MRV-B).
        Td2 = "td2",
        /// 2 lines of 44 characters (passports; also visas MRV-A).
        Td3 = "td3",
    }
}

impl MrzFormat {
    pub fn line_count(self) -> usize {
        match self {
            Self::Td1 => 3,
            Self::Td2 | Self::Td3 => 2,
        }
    }

    pub fn line_length(self) -> usize {
        match self {
            Self::Td1 => 30,
            Self::Td2 => 36,
            Self::Td3 => 44,
        }
    }
}

/// One check digit as printed and as recomputed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckDigit {
    /// `document-number`, `birth-date`, `expiry-date`, `optional-data` (the TD3 personal
    /// number) or `composite`.
    pub field: &'static str,
    /// The character printed in the check digit position.
    pub expected: char,
    pub computed: char,
    pub valid: bool,
}

/// Whether one field has the form ICAO 9303 prescribes, whatever its check digit says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldCheck {
    /// `document-code`, `issuing-state`, `name`, `document-number`, `nationality`,
    /// `birth-date`, `sex` or `expiry-date`.
    pub field: &'static str,
    pub valid: bool,
    /// Why the field is malformed, as a sentence without the field's value; absent when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<&'static str>,
}

impl FieldCheck {
    fn new(field: &'static str, problem: Option<&'static str>) -> Self {
        Self {
            field,
            valid: problem.is_none(),
            problem,
        }
    }
}

/// A parsed machine-readable zone. Text fields have their trailing fillers removed; inner fillers
/// of names become spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mrz {
    pub format: MrzFormat,
    /// `P`, `PD`, `I`, `ID`, `AC`, `V`, … (fillers removed).
    pub document_code: String,
    /// ICAO code of the issuing state or organization: 3 letters, or `D` for Germany.
    pub issuing_state: String,
    /// The primary identifier, inner fillers as spaces (`VAN DER BERG`).
    pub surname: String,
    pub given_names: Vec<String>,
    /// Including the TD1/TD2 overflow continued in the optional data.
    pub document_number: String,
    pub nationality: String,
    /// `None` when the six characters are not a calendar date (or, as ICAO 9303 allows for a
    /// birth date, its unknown parts are fillers).
    #[serde(serialize_with = "serialize_date")]
    pub birth_date: Option<Date>,
    /// The six characters `YYMMDD` as printed.
    pub birth_date_raw: String,
    /// `M`, `F`, `X` or `<` (unspecified); any other character fails the `sex` field check.
    pub sex: char,
    #[serde(serialize_with = "serialize_date")]
    pub expiry_date: Option<Date>,
    pub expiry_date_raw: String,
    /// TD1: upper line after the document number (without any document number overflow);
    /// TD2: the optional data; TD3: the personal number; visas: the optional data.
    pub optional_data: String,
    /// TD1 only: the optional data of the middle line.
    pub optional_data_2: Option<String>,
    pub checks: Vec<CheckDigit>,
    /// One entry per field, in the order of the list in [`FieldCheck::field`].
    pub field_checks: Vec<FieldCheck>,
}

impl Mrz {
    /// Whether every check digit holds.
    pub fn all_check_digits_valid(&self) -> bool {
        self.checks.iter().all(|c| c.valid)
    }

    /// Whether every field has its ICAO 9303 form.
    pub fn all_fields_valid(&self) -> bool {
        self.field_checks.iter().all(|c| c.valid)
    }

    /// Whether every check digit holds and every field has its form: the MRZ can be trusted as
    /// far as its own text allows.
    pub fn is_valid(&self) -> bool {
        self.all_check_digits_valid() && self.all_fields_valid()
    }

    /// Visas (MRV-A, MRV-B) have no composite and no optional data check digit.
    pub fn is_visa(&self) -> bool {
        self.document_code.starts_with('V')
    }

    /// The check digit of one field, when the layout has one.
    pub fn check(&self, field: &str) -> Option<&CheckDigit> {
        self.checks.iter().find(|c| c.field == field)
    }

    /// The given names joined by spaces.
    pub fn given_names_joined(&self) -> String {
        self.given_names.join(" ")
    }
}

fn serialize_date<S: Serializer>(date: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(d) => s.serialize_str(&format_date(*d)),
        None => s.serialize_none(),
    }
}

/// Why a text is not a machine-readable zone. Lines and columns count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrzError {
    #[error("an MRZ has 2 lines (TD2, TD3) or 3 lines (TD1), not {0}")]
    LineCount(usize),
    #[error(
        "line {line}, column {column}: `{found}` is not an MRZ character (only A-Z, 0-9 and <{})",
        if .found.is_lowercase() { "; MRZ letters are uppercase" } else { "" }
    )]
    InvalidCharacter {
        line: usize,
        column: usize,
        found: char,
    },
    #[error("line {line} has {length} characters; {expected}")]
    LineLength {
        line: usize,
        length: usize,
        expected: &'static str,
    },
}

/// The value of one MRZ character in check digit sums. Characters outside the MRZ alphabet
/// count as 0, like the filler.
fn char_value(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'Z' => u32::from(c - b'A') + 10,
        _ => 0,
    }
}

fn check_digit_of(bytes: impl Iterator<Item = u8>) -> char {
    const WEIGHTS: [u32; 3] = [7, 3, 1];
    let sum: u32 = bytes
        .zip(WEIGHTS.iter().cycle())
        .map(|(c, w)| char_value(c) * w)
        .sum();
    // `sum % 10` is below 10.
    char::from_digit(sum % 10, 10).unwrap_or('0')
}

/// The ICAO 9303 check digit of `s` (weights 7, 3, 1; `<` = 0; `A–Z` = 10–35).
pub fn check_digit(s: &str) -> char {
    check_digit_of(s.bytes())
}

/// Characters `from..=to` of an ASCII line, counted from 1. Empty when out of range (cannot
/// happen once the layout is checked).
fn cols(line: &str, from: usize, to: usize) -> &str {
    line.get(from - 1..to).unwrap_or("")
}

fn col(line: &str, at: usize) -> char {
    line.as_bytes().get(at - 1).map_or('<', |&b| char::from(b))
}

fn strip(s: &str) -> String {
    s.trim_end_matches('<').to_owned()
}

fn check(field: &'static str, data: &str, expected: char) -> CheckDigit {
    let computed = check_digit(data);
    CheckDigit {
        field,
        expected,
        computed,
        valid: expected == computed,
    }
}

/// Parses a machine-readable zone given as its lines. Surrounding whitespace of each line is
/// ignored. `today` resolves two-digit years: a birth date is the latest one not after `today`;
/// an expiry date is the one within 50 years of `today`.
pub fn parse(lines: &[&str], today: Date) -> Result<Mrz, MrzError> {
    let lines: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
    if !(2..=3).contains(&lines.len()) {
        return Err(MrzError::LineCount(lines.len()));
    }
    for (i, line) in lines.iter().enumerate() {
        if let Some((j, found)) = line
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, 'A'..='Z' | '0'..='9' | '<'))
        {
            return Err(MrzError::InvalidCharacter {
                line: i + 1,
                column: j + 1,
                found,
            });
        }
    }
    let format = detect_format(&lines)?;
    match format {
        MrzFormat::Td1 => parse_td1(&lines, today),
        MrzFormat::Td2 | MrzFormat::Td3 => parse_two_line(format, &lines, today),
    }
}

fn detect_format(lines: &[&str]) -> Result<MrzFormat, MrzError> {
    if lines.len() == 3 {
        for (i, line) in lines.iter().enumerate() {
            if line.len() != 30 {
                return Err(MrzError::LineLength {
                    line: i + 1,
                    length: line.len(),
                    expected: "a 3-line MRZ (TD1) has lines of 30 characters",
                });
            }
        }
        return Ok(MrzFormat::Td1);
    }
    let format = match lines[0].len() {
        36 => MrzFormat::Td2,
        44 => MrzFormat::Td3,
        length => {
            return Err(MrzError::LineLength {
                line: 1,
                length,
                expected: "a 2-line MRZ has lines of 36 (TD2) or 44 (TD3) characters",
            });
        }
    };
    if lines[1].len() != format.line_length() {
        return Err(MrzError::LineLength {
            line: 2,
            length: lines[1].len(),
            expected: "both lines of a 2-line MRZ have the same length",
        });
    }
    Ok(format)
}

/// Splits `SURNAME<<GIVEN<NAMES<<<` into the surname and the given names.
fn split_names(field: &str) -> (String, Vec<String>) {
    let field = field.trim_end_matches('<');
    let (primary, secondary) = field.split_once("<<").unwrap_or((field, ""));
    let surname = primary
        .split('<')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let given = secondary
        .split('<')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    (surname, given)
}

/// The document number and its check digit, following the overflow rule of ICAO 9303 (TD1
/// part 5 §4.2.2, TD2 part 6 §4.2.2, note j): when the number is longer than 9 characters, the
/// check digit position holds `<`, the remaining characters continue at the start of the
/// optional data, followed by the check digit (computed over the whole number) and fillers.
///
/// Returns the number's characters as printed, the check digit and the optional data left.
fn document_number<'a>(
    principal: &'a str,
    check: char,
    optional: &'a str,
) -> (String, char, &'a str) {
    if check == '<' && !optional.starts_with('<') && !optional.is_empty() {
        let run = optional.find('<').unwrap_or(optional.len());
        // `run >= 1`: the run ends with the check digit.
        let overflow = &optional[..run - 1];
        let digit = col(optional, run);
        (format!("{principal}{overflow}"), digit, &optional[run..])
    } else {
        (principal.to_owned(), check, optional)
    }
}

fn parse_td1(lines: &[&str], today: Date) -> Result<Mrz, MrzError> {
    let (l1, l2, l3) = (lines[0], lines[1], lines[2]);
    let (number, number_check, optional) =
        document_number(cols(l1, 6, 14), col(l1, 15), cols(l1, 16, 30));
    let birth_raw = cols(l2, 1, 6);
    let expiry_raw = cols(l2, 9, 14);
    let composite: String = [
        cols(l1, 6, 30),
        cols(l2, 1, 7),
        cols(l2, 9, 15),
        cols(l2, 19, 29),
    ]
    .concat();
    let checks = vec![
        check("document-number", &number, number_check),
        check("birth-date", birth_raw, col(l2, 7)),
        check("expiry-date", expiry_raw, col(l2, 15)),
        check("composite", &composite, col(l2, 30)),
    ];
    let (surname, given_names) = split_names(l3);
    let printed = Printed {
        document_code: cols(l1, 1, 2),
        issuing_state: cols(l1, 3, 5),
        name: l3,
        document_number: &number,
        nationality: cols(l2, 16, 18),
        birth_date: birth_raw,
        sex: col(l2, 8),
        expiry_date: expiry_raw,
    };
    Ok(Mrz {
        format: MrzFormat::Td1,
        document_code: strip(printed.document_code),
        issuing_state: strip(printed.issuing_state),
        surname,
        given_names,
        document_number: strip(&number),
        nationality: strip(printed.nationality),
        birth_date: birth_date(birth_raw, today),
        birth_date_raw: birth_raw.to_owned(),
        sex: printed.sex,
        expiry_date: expiry_date(expiry_raw, today),
        expiry_date_raw: expiry_raw.to_owned(),
        optional_data: strip(optional),
        optional_data_2: Some(strip(cols(l2, 19, 29))),
        checks,
        field_checks: printed.field_checks(MrzFormat::Td1, today),
    })
}

fn parse_two_line(format: MrzFormat, lines: &[&str], today: Date) -> Result<Mrz, MrzError> {
    let (l1, l2) = (lines[0], lines[1]);
    let len = format.line_length();
    let document_code = strip(cols(l1, 1, 2));
    let visa = document_code.starts_with('V');
    let birth_raw = cols(l2, 14, 19);
    let expiry_raw = cols(l2, 22, 27);

    let (number, number_check, optional) = match (format, visa) {
        // TD3 and MRV-A have no overflow rule: the number is at most 9 characters.
        (MrzFormat::Td3, false) => (cols(l2, 1, 9).to_owned(), col(l2, 10), cols(l2, 29, 42)),
        (MrzFormat::Td3, true) => (cols(l2, 1, 9).to_owned(), col(l2, 10), cols(l2, 29, 44)),
        (_, false) => document_number(cols(l2, 1, 9), col(l2, 10), cols(l2, 29, 35)),
        (_, true) => document_number(cols(l2, 1, 9), col(l2, 10), cols(l2, 29, 36)),
    };
    let mut checks = vec![
        check("document-number", &number, number_check),
        check("birth-date", birth_raw, col(l2, 20)),
        check("expiry-date", expiry_raw, col(l2, 28)),
    ];
    if !visa {
        if format == MrzFormat::Td3 {
            // The personal number's check digit may be `<` when the field is all fillers.
            let personal = cols(l2, 29, 42);
            let mut digit = check("optional-data", personal, col(l2, 43));
            if digit.expected == '<' && personal.bytes().all(|b| b == b'<') {
                digit.valid = true;
            }
            checks.push(digit);
        }
        let composite: String = [cols(l2, 1, 10), cols(l2, 14, 20), cols(l2, 22, len - 1)].concat();
        checks.push(check("composite", &composite, col(l2, len)));
    }
    let printed = Printed {
        document_code: cols(l1, 1, 2),
        issuing_state: cols(l1, 3, 5),
        name: cols(l1, 6, len),
        document_number: &number,
        nationality: cols(l2, 11, 13),
        birth_date: birth_raw,
        sex: col(l2, 21),
        expiry_date: expiry_raw,
    };
    let (surname, given_names) = split_names(printed.name);
    Ok(Mrz {
        format,
        document_code,
        issuing_state: strip(printed.issuing_state),
        surname,
        given_names,
        document_number: strip(&number),
        nationality: strip(printed.nationality),
        birth_date: birth_date(birth_raw, today),
        birth_date_raw: birth_raw.to_owned(),
        sex: printed.sex,
        expiry_date: expiry_date(expiry_raw, today),
        expiry_date_raw: expiry_raw.to_owned(),
        optional_data: strip(optional),
        optional_data_2: None,
        checks,
        field_checks: printed.field_checks(format, today),
    })
}

/// The fields that have a prescribed form, as printed (fillers included).
struct Printed<'a> {
    document_code: &'a str,
    issuing_state: &'a str,
    name: &'a str,
    /// Including a TD1/TD2 overflow.
    document_number: &'a str,
    nationality: &'a str,
    birth_date: &'a str,
    sex: char,
    expiry_date: &'a str,
}

impl Printed<'_> {
    fn field_checks(&self, format: MrzFormat, today: Date) -> Vec<FieldCheck> {
        let code =
            |printed: &str, problem: &'static str| (!is_state_code(printed)).then_some(problem);
        vec![
            FieldCheck::new(
                "document-code",
                document_code_problem(format, self.document_code),
            ),
            FieldCheck::new(
                "issuing-state",
                code(
                    self.issuing_state,
                    "The issuing state is not an ICAO 9303 code of a state or an organization.",
                ),
            ),
            FieldCheck::new("name", name_problem(self.name)),
            FieldCheck::new(
                "document-number",
                self.document_number
                    .starts_with('<')
                    .then_some("The document number is empty or starts with a filler."),
            ),
            FieldCheck::new(
                "nationality",
                code(
                    self.nationality,
                    "The nationality is not an ICAO 9303 code of a state, an organization \
                     or a nationality status.",
                ),
            ),
            FieldCheck::new("birth-date", birth_date_problem(self.birth_date, today)),
            FieldCheck::new(
                "sex",
                (!matches!(self.sex, 'M' | 'F' | 'X' | '<'))
                    .then_some("The sex is not M, F, X or < (unspecified)."),
            ),
            FieldCheck::new(
                "expiry-date",
                expiry_date(self.expiry_date, today)
                    .is_none()
                    .then_some("The expiry date is not a calendar date (YYMMDD)."),
            ),
        ]
    }
}

/// The first character says what the document is, and which layouts carry it: passports (`P`)
/// use TD3, cards (`A`, `C`, `I`) TD1 or TD2, visas (`V`) TD3 or TD2. The second is the
/// issuer's choice of letter, or a filler.
fn document_code_problem(format: MrzFormat, code: &str) -> Option<&'static str> {
    let mut chars = code.chars();
    let (kind, variant) = (chars.next().unwrap_or('<'), chars.next().unwrap_or('<'));
    let kind_fits = match format {
        MrzFormat::Td3 => matches!(kind, 'P' | 'V'),
        MrzFormat::Td2 => matches!(kind, 'A' | 'C' | 'I' | 'V'),
        MrzFormat::Td1 => matches!(kind, 'A' | 'C' | 'I'),
    };
    if !kind_fits {
        Some(
            "The document code does not start with a letter this layout allows \
             (TD3: P or V; TD2: A, C, I or V; TD1: A, C or I).",
        )
    } else if !(variant.is_ascii_uppercase() || variant == '<') {
        Some("The document code's second character is not a letter or a filler.")
    } else {
        None
    }
}

/// A name is letters separated by fillers, and starts with the primary identifier.
fn name_problem(printed: &str) -> Option<&'static str> {
    if printed.bytes().any(|b| b.is_ascii_digit()) {
        Some("The name contains a digit; an MRZ name has only letters and fillers.")
    } else if printed.starts_with('<') {
        Some("The name starts with a filler: the primary identifier is missing.")
    } else {
        None
    }
}

/// ICAO 9303 fills the unknown parts of a birth date with fillers: the day, the day and the
/// month, or the whole date. What is known must be digits that can be a date.
fn birth_date_problem(printed: &str, today: Date) -> Option<&'static str> {
    let known = printed.trim_end_matches('<');
    let digits = known.bytes().all(|b| b.is_ascii_digit());
    let month_fits = || {
        known
            .get(2..4)
            .and_then(|m| m.parse::<u8>().ok())
            .is_some_and(|m| (1..=12).contains(&m))
    };
    let fits = digits
        && match known.len() {
            0 | 2 => true,
            4 => month_fits(),
            6 => birth_date(printed, today).is_some(),
            _ => false,
        };
    (!fits).then_some(
        "The birth date is not a calendar date (YYMMDD, unknown parts as trailing fillers).",
    )
}

/// `YYMMDD` split into a two-digit year, a month and a day; `None` unless all digits.
fn split_date(raw: &str) -> Option<(i32, Month, u8)> {
    if raw.len() != 6 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i32 = raw.get(0..2)?.parse().ok()?;
    let mm: u8 = raw.get(2..4)?.parse().ok()?;
    let dd: u8 = raw.get(4..6)?.parse().ok()?;
    Some((yy, Month::try_from(mm).ok()?, dd))
}

/// The latest date with these `YYMMDD` that is not after `today` (people over 100 years old
/// are read as newborns: the format cannot tell them apart).
fn birth_date(raw: &str, today: Date) -> Option<Date> {
    let (yy, month, day) = split_date(raw)?;
    let century = today.year().div_euclid(100) * 100;
    [century, century - 100]
        .into_iter()
        .filter_map(|c| Date::from_calendar_date(c + yy, month, day).ok())
        .find(|d| *d <= today)
}

/// The date with these `YYMMDD` whose year is within 50 years of `today`.
fn expiry_date(raw: &str, today: Date) -> Option<Date> {
    let (yy, month, day) = split_date(raw)?;
    let century = today.year().div_euclid(100) * 100;
    let year = [century - 100, century, century + 100]
        .into_iter()
        .map(|c| c + yy)
        .find(|y| (today.year() - 50..today.year() + 50).contains(y))?;
    Date::from_calendar_date(year, month, day).ok()
}

/// ISO 3166-1 alpha-2 and alpha-3 codes of every country, in alpha-2 order.
#[rustfmt::skip]
pub const COUNTRIES: [(&str, &str); 249] = [
    ("AD", "AND"), ("AE", "ARE"), ("AF", "AFG"), ("AG", "ATG"), ("AI", "AIA"), ("AL", "ALB"),
    ("AM", "ARM"), ("AO", "AGO"), ("AQ", "ATA"), ("AR", "ARG"), ("AS", "ASM"), ("AT", "AUT"),
    ("AU", "AUS"), ("AW", "ABW"), ("AX", "ALA"), ("AZ", "AZE"), ("BA", "BIH"), ("BB", "BRB"),
    ("BD", "BGD"), ("BE", "BEL"), ("BF", "BFA"), ("BG", "BGR"), ("BH", "BHR"), ("BI", "BDI"),
    ("BJ", "BEN"), ("BL", "BLM"), ("BM", "BMU"), ("BN", "BRN"), ("BO", "BOL"), ("BQ", "BES"),
    ("BR", "BRA"), ("BS", "BHS"), ("BT", "BTN"), ("BV", "BVT"), ("BW", "BWA"), ("BY", "BLR"),
    ("BZ", "BLZ"), ("CA", "CAN"), ("CC", "CCK"), ("CD", "COD"), ("CF", "CAF"), ("CG", "COG"),
    ("CH", "CHE"), ("CI", "CIV"), ("CK", "COK"), ("CL", "CHL"), ("CM", "CMR"), ("CN", "CHN"),
    ("CO", "COL"), ("CR", "CRI"), ("CU", "CUB"), ("CV", "CPV"), ("CW", "CUW"), ("CX", "CXR"),
    ("CY", "CYP"), ("CZ", "CZE"), ("DE", "DEU"), ("DJ", "DJI"), ("DK", "DNK"), ("DM", "DMA"),
    ("DO", "DOM"), ("DZ", "DZA"), ("EC", "ECU"), ("EE", "EST"), ("EG", "EGY"), ("EH", "ESH"),
    ("ER", "ERI"), ("ES", "ESP"), ("ET", "ETH"), ("FI", "FIN"), ("FJ", "FJI"), ("FK", "FLK"),
    ("FM", "FSM"), ("FO", "FRO"), ("FR", "FRA"), ("GA", "GAB"), ("GB", "GBR"), ("GD", "GRD"),
    ("GE", "GEO"), ("GF", "GUF"), ("GG", "GGY"), ("GH", "GHA"), ("GI", "GIB"), ("GL", "GRL"),
    ("GM", "GMB"), ("GN", "GIN"), ("GP", "GLP"), ("GQ", "GNQ"), ("GR", "GRC"), ("GS", "SGS"),
    ("GT", "GTM"), ("GU", "GUM"), ("GW", "GNB"), ("GY", "GUY"), ("HK", "HKG"), ("HM", "HMD"),
    ("HN", "HND"), ("HR", "HRV"), ("HT", "HTI"), ("HU", "HUN"), ("ID", "IDN"), ("IE", "IRL"),
    ("IL", "ISR"), ("IM", "IMN"), ("IN", "IND"), ("IO", "IOT"), ("IQ", "IRQ"), ("IR", "IRN"),
    ("IS", "ISL"), ("IT", "ITA"), ("JE", "JEY"), ("JM", "JAM"), ("JO", "JOR"), ("JP", "JPN"),
    ("KE", "KEN"), ("KG", "KGZ"), ("KH", "KHM"), ("KI", "KIR"), ("KM", "COM"), ("KN", "KNA"),
    ("KP", "PRK"), ("KR", "KOR"), ("KW", "KWT"), ("KY", "CYM"), ("KZ", "KAZ"), ("LA", "LAO"),
    ("LB", "LBN"), ("LC", "LCA"), ("LI", "LIE"), ("LK", "LKA"), ("LR", "LBR"), ("LS", "LSO"),
    ("LT", "LTU"), ("LU", "LUX"), ("LV", "LVA"), ("LY", "LBY"), ("MA", "MAR"), ("MC", "MCO"),
    ("MD", "MDA"), ("ME", "MNE"), ("MF", "MAF"), ("MG", "MDG"), ("MH", "MHL"), ("MK", "MKD"),
    ("ML", "MLI"), ("MM", "MMR"), ("MN", "MNG"), ("MO", "MAC"), ("MP", "MNP"), ("MQ", "MTQ"),
    ("MR", "MRT"), ("MS", "MSR"), ("MT", "MLT"), ("MU", "MUS"), ("MV", "MDV"), ("MW", "MWI"),
    ("MX", "MEX"), ("MY", "MYS"), ("MZ", "MOZ"), ("NA", "NAM"), ("NC", "NCL"), ("NE", "NER"),
    ("NF", "NFK"), ("NG", "NGA"), ("NI", "NIC"), ("NL", "NLD"), ("NO", "NOR"), ("NP", "NPL"),
    ("NR", "NRU"), ("NU", "NIU"), ("NZ", "NZL"), ("OM", "OMN"), ("PA", "PAN"), ("PE", "PER"),
    ("PF", "PYF"), ("PG", "PNG"), ("PH", "PHL"), ("PK", "PAK"), ("PL", "POL"), ("PM", "SPM"),
    ("PN", "PCN"), ("PR", "PRI"), ("PS", "PSE"), ("PT", "PRT"), ("PW", "PLW"), ("PY", "PRY"),
    ("QA", "QAT"), ("RE", "REU"), ("RO", "ROU"), ("RS", "SRB"), ("RU", "RUS"), ("RW", "RWA"),
    ("SA", "SAU"), ("SB", "SLB"), ("SC", "SYC"), ("SD", "SDN"), ("SE", "SWE"), ("SG", "SGP"),
    ("SH", "SHN"), ("SI", "SVN"), ("SJ", "SJM"), ("SK", "SVK"), ("SL", "SLE"), ("SM", "SMR"),
    ("SN", "SEN"), ("SO", "SOM"), ("SR", "SUR"), ("SS", "SSD"), ("ST", "STP"), ("SV", "SLV"),
    ("SX", "SXM"), ("SY", "SYR"), ("SZ", "SWZ"), ("TC", "TCA"), ("TD", "TCD"), ("TF", "ATF"),
    ("TG", "TGO"), ("TH", "THA"), ("TJ", "TJK"), ("TK", "TKL"), ("TL", "TLS"), ("TM", "TKM"),
    ("TN", "TUN"), ("TO", "TON"), ("TR", "TUR"), ("TT", "TTO"), ("TV", "TUV"), ("TW", "TWN"),
    ("TZ", "TZA"), ("UA", "UKR"), ("UG", "UGA"), ("UM", "UMI"), ("US", "USA"), ("UY", "URY"),
    ("UZ", "UZB"), ("VA", "VAT"), ("VC", "VCT"), ("VE", "VEN"), ("VG", "VGB"), ("VI", "VIR"),
    ("VN", "VNM"), ("VU", "VUT"), ("WF", "WLF"), ("WS", "WSM"), ("YE", "YEM"), ("YT", "MYT"),
    ("ZA", "ZAF"), ("ZM", "ZMB"), ("ZW", "ZWE"),
];

/// ICAO 9303 part 3 codes that are not ISO 3166-1 alpha-3, with the alpha-2 code a visual zone
/// carries for those that stand for a country. `UTO` is Utopia, the fictional state of the ICAO
/// specimen documents; `UT` is not assigned to any country by ISO 3166-1, so the mapping cannot
/// match a real document. `RKS` (Kosovo) is not in ICAO's list but is what Kosovo issues.
#[rustfmt::skip]
const ICAO_CODES: [(&str, Option<&str>); 27] = [
    // Germany, and the classes of British nationality.
    ("D", Some("DE")), ("GBD", Some("GB")), ("GBN", Some("GB")), ("GBO", Some("GB")),
    ("GBP", Some("GB")), ("GBS", Some("GB")),
    ("RKS", Some("XK")), ("EUE", Some("EU")), ("UTO", Some("UT")),
    // The United Nations, its agencies and its mission in Kosovo.
    ("UNO", None), ("UNA", None), ("UNK", None),
    // Other issuing organizations.
    ("XBA", None), ("XIM", None), ("XCC", None), ("XCE", None), ("XCO", None), ("XEC", None),
    ("XPO", None), ("XES", None), ("XMP", None), ("XOM", None), ("XDC", None),
    // Stateless persons, refugees, and an unspecified nationality.
    ("XXA", None), ("XXB", None), ("XXC", None), ("XXX", None),
];

/// Whether an MRZ state or nationality field (`DEU`, `D<<`, `UNO`, `XXA`, …) holds a code of
/// ICAO 9303 part 3: ISO 3166-1 alpha-3 or one of ICAO's own.
pub fn is_state_code(code: &str) -> bool {
    let code = code.trim_end_matches('<');
    COUNTRIES.iter().any(|(_, a3)| *a3 == code) || ICAO_CODES.iter().any(|(c, _)| *c == code)
}

/// The ISO 3166-1 alpha-2 code for an MRZ state code (`DEU`, `D`, `D<<`, `GBR`, `UTO`, …).
/// `None` for organizations and statuses without a country (`UNO`, `XXA`, …) and unknown codes.
pub fn alpha3_to_alpha2(code: &str) -> Option<&'static str> {
    let code = code.trim_end_matches('<');
    COUNTRIES
        .iter()
        .find(|(_, a3)| *a3 == code)
        .map(|(a2, _)| *a2)
        .or_else(|| {
            ICAO_CODES
                .iter()
                .find(|(a3, _)| *a3 == code)
                .and_then(|(_, a2)| *a2)
        })
}

/// The ISO 3166-1 alpha-3 code of an alpha-2 code.
pub fn alpha2_to_alpha3(code: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(a2, _)| *a2 == code)
        .map(|(_, a3)| *a3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2024 - 01 - 01);
    const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<";

    fn parse_ok(lines: &[&str]) -> Mrz {
        parse(lines, TODAY).unwrap()
    }

    fn digits(mrz: &Mrz) -> Vec<(&'static str, char, bool)> {
        mrz.checks
            .iter()
            .map(|c| (c.field, c.expected, c.valid))
            .collect()
    }

    fn invalid_fields(mrz: &Mrz) -> Vec<&'static str> {
        mrz.field_checks
            .iter()
            .filter(|c| !c.valid)
            .map(|c| c.field)
            .collect()
    }

    #[test]
    fn check_digits_of_known_values() {
        assert_eq!(check_digit("L898902C3"), '6');
        assert_eq!(check_digit("740812"), '2');
        assert_eq!(check_digit("120415"), '9');
        assert_eq!(check_digit("ZE184226B<<<<<"), '1');
        assert_eq!(check_digit("D23145890"), '7');
        assert_eq!(check_digit(""), '0');
        assert_eq!(check_digit("<<<<"), '0');
    }

    #[test]
    fn icao_specimen_td3() {
        let mrz = parse_ok(&[
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ]);
        assert_eq!(mrz.format, MrzFormat::Td3);
        assert_eq!(mrz.document_code, "P");
        assert_eq!(mrz.issuing_state, "UTO");
        assert_eq!(mrz.surname, "ERIKSSON");
        assert_eq!(mrz.given_names, ["ANNA", "MARIA"]);
        assert_eq!(mrz.document_number, "L898902C3");
        assert_eq!(mrz.nationality, "UTO");
        assert_eq!(mrz.birth_date, Some(date!(1974 - 08 - 12)));
        assert_eq!(mrz.sex, 'F');
        assert_eq!(mrz.expiry_date, Some(date!(2012 - 04 - 15)));
        assert_eq!(mrz.optional_data, "ZE184226B");
        assert_eq!(mrz.optional_data_2, None);
        assert_eq!(
            digits(&mrz),
            [
                ("document-number", '6', true),
                ("birth-date", '2', true),
                ("expiry-date", '9', true),
                ("optional-data", '1', true),
                ("composite", '0', true),
            ]
        );
        assert!(mrz.all_check_digits_valid());
        assert!(mrz.all_fields_valid(), "{:?}", mrz.field_checks);
        assert!(mrz.is_valid());
        assert!(!mrz.is_visa());
    }

    #[test]
    fn icao_specimen_td1() {
        let mrz = parse_ok(&[
            "I<UTOD231458907<<<<<<<<<<<<<<<",
            "7408122F1204159UTO<<<<<<<<<<<6",
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
        ]);
        assert_eq!(mrz.format, MrzFormat::Td1);
        assert_eq!(mrz.document_code, "I");
        assert_eq!(mrz.document_number, "D23145890");
        assert_eq!(mrz.surname, "ERIKSSON");
        assert_eq!(mrz.given_names, ["ANNA", "MARIA"]);
        assert_eq!(mrz.birth_date, Some(date!(1974 - 08 - 12)));
        assert_eq!(mrz.expiry_date, Some(date!(2012 - 04 - 15)));
        assert_eq!(mrz.optional_data, "");
        assert_eq!(mrz.optional_data_2.as_deref(), Some(""));
        assert_eq!(
            digits(&mrz),
            [
                ("document-number", '7', true),
                ("birth-date", '2', true),
                ("expiry-date", '9', true),
                ("composite", '6', true),
            ]
        );
        assert!(mrz.is_valid(), "{:?}", mrz.field_checks);
    }

    #[test]
    fn icao_specimen_td2() {
        let mrz = parse_ok(&[
            "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
            "D231458907UTO7408122F1204159<<<<<<<6",
        ]);
        assert_eq!(mrz.format, MrzFormat::Td2);
        assert_eq!(mrz.document_number, "D23145890");
        assert_eq!(mrz.given_names, ["ANNA", "MARIA"]);
        assert_eq!(
            digits(&mrz),
            [
                ("document-number", '7', true),
                ("birth-date", '2', true),
                ("expiry-date", '9', true),
                ("composite", '6', true),
            ]
        );
        assert!(mrz.is_valid(), "{:?}", mrz.field_checks);
    }

    #[test]
    fn icao_specimen_visas() {
        let mrv_a = parse_ok(&[
            "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L8988901C4XXX4009078F96121096ZE184226B<<<<<<",
        ]);
        assert_eq!(mrv_a.format, MrzFormat::Td3);
        assert!(mrv_a.is_visa());
        assert_eq!(mrv_a.document_number, "L8988901C");
        assert_eq!(mrv_a.nationality, "XXX");
        assert_eq!(mrv_a.birth_date, Some(date!(1940 - 09 - 07)));
        assert_eq!(mrv_a.expiry_date, Some(date!(1996 - 12 - 10)));
        assert_eq!(mrv_a.optional_data, "6ZE184226B");
        assert_eq!(mrv_a.checks.len(), 3);
        assert!(mrv_a.is_valid(), "{:?}", mrv_a.field_checks);

        let mrv_b = parse_ok(&[
            "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
            "L8988901C4XXX4009078F9612109<<<<<<<<",
        ]);
        assert_eq!(mrv_b.format, MrzFormat::Td2);
        assert!(mrv_b.is_visa());
        assert_eq!(mrv_b.checks.len(), 3);
        assert!(mrv_b.is_valid(), "{:?}", mrv_b.field_checks);
    }

    #[test]
    fn td1_document_number_overflow() {
        // ICAO 9303 part 5: D23145890734 with check digit 9.
        assert_eq!(check_digit("D23145890734"), '9');
        let l1 = "I<UTOD23145890<7349<<<<<<<<<<<";
        let l2_head = "7408122F1204159UTO<<<<<<<<<<<";
        let composite = check_digit(&format!(
            "{}{}{}{}",
            &l1[5..30],
            &l2_head[0..7],
            &l2_head[8..15],
            &l2_head[18..29]
        ));
        let l2 = format!("{}{composite}", &l2_head[..29]);
        let mrz = parse_ok(&[l1, &l2, "ERIKSSON<<ANNA<MARIA<<<<<<<<<<"]);
        assert_eq!(mrz.document_number, "D23145890734");
        assert_eq!(mrz.optional_data, "");
        assert!(mrz.all_check_digits_valid(), "{:?}", mrz.checks);

        // The check digit moved into the optional data must match the whole number.
        let bad = parse_ok(&[
            "I<UTOD23145890<7348<<<<<<<<<<<",
            &l2,
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
        ]);
        assert!(!bad.check("document-number").unwrap().valid);
    }

    #[test]
    fn trims_whitespace_and_splits_names() {
        let mrz = parse_ok(&[
            "  P<D<<VAN<DER<BERG<<JAN<PIETER<<<<<<<<<<<<<<<\n",
            "\tL898902C36UTO7408122F1204159ZE184226B<<<<<10 ",
        ]);
        assert_eq!(mrz.issuing_state, "D");
        assert_eq!(mrz.surname, "VAN DER BERG");
        assert_eq!(mrz.given_names, ["JAN", "PIETER"]);
        // A name without the `<<` separator is all surname.
        let (surname, given) = split_names("MADONNA<<<<<");
        assert_eq!((surname.as_str(), given.len()), ("MADONNA", 0));
    }

    #[test]
    fn rejects_what_is_not_an_mrz() {
        let td3 = [
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ];
        assert_eq!(parse(&td3[..1], TODAY), Err(MrzError::LineCount(1)));
        assert_eq!(
            parse(&[td3[0], td3[1], td3[1], td3[1]], TODAY),
            Err(MrzError::LineCount(4))
        );

        let lower = "P<UTOEriksson<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<";
        let err = parse(&[lower, td3[1]], TODAY).unwrap_err();
        assert_eq!(
            err,
            MrzError::InvalidCharacter {
                line: 1,
                column: 7,
                found: 'r'
            }
        );
        assert!(
            err.to_string().starts_with("line 1, column 7: `r`"),
            "{err}"
        );
        assert!(err.to_string().contains("uppercase"), "{err}");

        let err = parse(
            &[td3[0], "L898902C36UTO7408122F1204159ZE184226B<<<<-10"],
            TODAY,
        )
        .unwrap_err();
        assert_eq!(
            err,
            MrzError::InvalidCharacter {
                line: 2,
                column: 42,
                found: '-'
            }
        );

        assert!(matches!(
            parse(&[td3[0], &td3[1][..43]], TODAY),
            Err(MrzError::LineLength {
                line: 2,
                length: 43,
                ..
            })
        ));
        assert!(matches!(
            parse(&[&td3[0][..40], td3[1]], TODAY),
            Err(MrzError::LineLength {
                line: 1,
                length: 40,
                ..
            })
        ));
        assert!(matches!(
            parse(
                &[
                    "I<UTOD231458907<<<<<<<<<<<<<<<",
                    "7408122F1204159UTO<<<<<<<<<<<6",
                    "ERIKSSON"
                ],
                TODAY
            ),
            Err(MrzError::LineLength {
                line: 3,
                length: 8,
                ..
            })
        ));
        // A sex outside M, F, X, < is a malformed field, not a text that is no MRZ.
        let mrz = parse_ok(&[td3[0], "L898902C36UTO7408122Q1204159ZE184226B<<<<<10"]);
        assert_eq!(mrz.sex, 'Q');
        assert!(mrz.all_check_digits_valid());
        assert_eq!(invalid_fields(&mrz), ["sex"]);
    }

    #[test]
    fn impossible_dates_are_none_but_still_checked() {
        // 31 February, and a month 13.
        let l2 = format!(
            "L898902C36UTO740231{}F121315{}ZE184226B<<<<<1",
            check_digit("740231"),
            check_digit("121315")
        );
        let composite = check_digit(&format!("{}{}{}", &l2[0..10], &l2[13..20], &l2[21..43]));
        let l2 = format!("{l2}{composite}");
        let mrz = parse_ok(&["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", &l2]);
        assert_eq!(mrz.birth_date, None);
        assert_eq!(mrz.birth_date_raw, "740231");
        assert_eq!(mrz.expiry_date, None);
        assert!(mrz.all_check_digits_valid());
        assert_eq!(invalid_fields(&mrz), ["birth-date", "expiry-date"]);
        assert!(!mrz.is_valid());
        let letters = parse_ok(&[
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO74O8122F1204159ZE184226B<<<<<10",
        ]);
        assert_eq!(letters.birth_date, None);
        assert!(!letters.check("birth-date").unwrap().valid);
    }

    #[test]
    fn two_digit_years() {
        assert_eq!(birth_date("231231", TODAY), Some(date!(2023 - 12 - 31)));
        assert_eq!(birth_date("240102", TODAY), Some(date!(1924 - 01 - 02)));
        assert_eq!(birth_date("240101", TODAY), Some(date!(2024 - 01 - 01)));
        assert_eq!(birth_date("000101", TODAY), Some(date!(2000 - 01 - 01)));
        assert_eq!(birth_date("990101", TODAY), Some(date!(1999 - 01 - 01)));
        assert_eq!(birth_date("000229", TODAY), Some(date!(2000 - 02 - 29)));
        assert_eq!(expiry_date("340101", TODAY), Some(date!(2034 - 01 - 01)));
        assert_eq!(expiry_date("730101", TODAY), Some(date!(2073 - 01 - 01)));
        assert_eq!(expiry_date("740101", TODAY), Some(date!(1974 - 01 - 01)));
        assert_eq!(expiry_date("12AB01", TODAY), None);
    }

    #[test]
    fn country_codes() {
        let mut a2: Vec<_> = COUNTRIES.iter().map(|c| c.0).collect();
        let mut a3: Vec<_> = COUNTRIES.iter().map(|c| c.1).collect();
        a2.dedup();
        a3.sort_unstable();
        a3.dedup();
        assert_eq!((a2.len(), a3.len()), (249, 249));
        assert!(COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(alpha3_to_alpha2("DEU"), Some("DE"));
        assert_eq!(alpha3_to_alpha2("D<<"), Some("DE"));
        assert_eq!(alpha3_to_alpha2("D"), Some("DE"));
        assert_eq!(alpha3_to_alpha2("GBD"), Some("GB"));
        assert_eq!(alpha3_to_alpha2("UTO"), Some("UT"));
        assert_eq!(alpha3_to_alpha2("UNO"), None);
        assert_eq!(alpha2_to_alpha3("US"), Some("USA"));
        assert_eq!(alpha2_to_alpha3("UT"), None);

        for code in [
            "DEU", "D<<", "D", "GBR", "GBD", "UTO", "UNO", "UNK", "XOM", "XXA", "XXX", "EUE", "RKS",
        ] {
            assert!(is_state_code(code), "{code}");
        }
        // Every code of ICAO's own list is one, whether or not it stands for a country.
        assert!(ICAO_CODES.iter().all(|(code, _)| is_state_code(code)));
        for code in [
            "WTO", "UT", "DE", "", "<<<", "D<E", "<DE", "GB", "XYZ", "EU",
        ] {
            assert!(!is_state_code(code), "{code}");
        }
    }

    /// The zones of issue 10: every check digit holds, yet the fields are not what ICAO 9303
    /// allows. Each malformation fails its own field check and nothing else.
    #[test]
    fn malformed_fields_fail_their_checks_although_the_digits_hold() {
        let zone = |code: &str, state: &str, names: &str, number: &str, nationality: &str| {
            gen_td3(
                &Parts {
                    state: state.into(),
                    nationality: nationality.into(),
                    number: number.into(),
                    names: names.into(),
                    ..specimen_parts()
                },
                code == "V<",
            )
            .lines
        };
        let failing = |lines: Vec<String>| {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let mrz = parse_ok(&lines);
            assert!(mrz.all_check_digits_valid(), "{lines:?} {:?}", mrz.checks);
            invalid_fields(&mrz)
        };
        let specimen = |state: &str, names: &str, number: &str, nationality: &str| {
            failing(zone("P<", state, names, number, nationality))
        };
        assert!(specimen("UTO", "ERIKSSON<<ANNA<MARIA", "L898902C3", "UTO").is_empty());
        assert_eq!(
            specimen("WTO", "ERIKSSON<<ANNA<MARIA", "L898902C3", "UTO"),
            ["issuing-state"]
        );
        assert_eq!(
            specimen("UTO", "ERIKSSON<<ANNA<MARIA", "L898902C3", "WTO"),
            ["nationality"]
        );
        assert_eq!(
            specimen("UTO", "ERIK5SON<<ANNA<MARIA", "L898902C3", "UTO"),
            ["name"]
        );
        assert_eq!(
            specimen("UTO", "<ERIKSSON<<ANNA", "L898902C3", "UTO"),
            ["name"]
        );
        assert_eq!(
            specimen("UTO", "ERIKSSON<<ANNA", "", "UTO"),
            ["document-number"]
        );
        assert_eq!(
            specimen("WTO", "ERIK5SON<<ANNA", "L898902C3", "D<<"),
            ["issuing-state", "name"]
        );
        assert!(specimen("D<<", "MUSTERMANN<<ERIKA", "C01X00T47", "GBD").is_empty());

        // A passport layout with a card's document code, and a card layout with a passport's.
        let mut card_code = zone("P<", "UTO", "ERIKSSON<<ANNA", "L898902C3", "UTO");
        card_code[0].replace_range(0..2, "I<");
        assert_eq!(failing(card_code), ["document-code"]);
        let mut td1 = gen_td1(&specimen_parts()).lines;
        assert!(failing(td1.clone()).is_empty());
        td1[0].replace_range(0..2, "P<");
        assert_eq!(failing(td1.clone()), ["document-code"]);
        td1[0].replace_range(0..2, "I4");
        assert_eq!(failing(td1), ["document-code"]);

        // Sex, and dates that are not dates.
        for (parts, field) in [
            (
                Parts {
                    sex: 'Q',
                    ..specimen_parts()
                },
                "sex",
            ),
            (
                Parts {
                    birth: "741308".into(),
                    ..specimen_parts()
                },
                "birth-date",
            ),
            (
                Parts {
                    birth: "7408<2".into(),
                    ..specimen_parts()
                },
                "birth-date",
            ),
            (
                Parts {
                    expiry: "120431".into(),
                    ..specimen_parts()
                },
                "expiry-date",
            ),
            (
                Parts {
                    expiry: "12<<<<".into(),
                    ..specimen_parts()
                },
                "expiry-date",
            ),
        ] {
            for g in [
                gen_td3(&parts, false),
                gen_td2(&parts, false),
                gen_td1(&parts),
            ] {
                assert_eq!(failing(g.lines), [field], "{parts:?}");
            }
        }
    }

    /// ICAO 9303 writes the unknown parts of a birth date as fillers; such a date is well formed
    /// and unknown.
    #[test]
    fn unknown_parts_of_a_birth_date_are_fillers() {
        for (birth, valid) in [
            ("74<<<<", true),
            ("7408<<", true),
            ("<<<<<<", true),
            ("7413<<", false),
            ("7<0812", false),
            ("<<0812", false),
            ("74081<", false),
        ] {
            let g = gen_td3(
                &Parts {
                    birth: birth.into(),
                    ..specimen_parts()
                },
                false,
            );
            let lines: Vec<&str> = g.lines.iter().map(String::as_str).collect();
            let mrz = parse_ok(&lines);
            assert_eq!(mrz.birth_date, None, "{birth}");
            assert!(mrz.all_check_digits_valid());
            assert_eq!(
                mrz.all_fields_valid(),
                valid,
                "{birth}: {:?}",
                mrz.field_checks
            );
        }
    }

    #[test]
    fn serializes_for_the_cli() {
        let mrz = parse_ok(&[
            "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
            "D231458907UTO7408122F1204159<<<<<<<6",
        ]);
        let json = serde_json::to_value(&mrz).unwrap();
        assert_eq!(json["format"], "td2");
        assert_eq!(json["birth-date"], "1974-08-12");
        assert_eq!(json["given-names"], serde_json::json!(["ANNA", "MARIA"]));
        assert_eq!(
            json["checks"][0],
            serde_json::json!({"field": "document-number", "expected": "7", "computed": "7", "valid": true})
        );
        assert_eq!(
            json["field-checks"][1],
            serde_json::json!({"field": "issuing-state", "valid": true})
        );
        let malformed = parse_ok(&[
            "I<WTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
            "D231458907UTO7408122F1204159<<<<<<<6",
        ]);
        assert_eq!(
            serde_json::to_value(&malformed).unwrap()["field-checks"][1],
            serde_json::json!({"field": "issuing-state", "valid": false,
                "problem": "The issuing state is not an ICAO 9303 code of a state or an organization."})
        );
    }

    /// The blind spot of the 7-3-1 scheme: `3` (3) and `D` (13) differ by 10, so swapping them
    /// changes no check digit — neither the document number's nor the composite.
    #[test]
    fn substitutions_differing_by_ten_are_undetectable() {
        let mrz = parse_ok(&[
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902CD6UTO7408122F1204159ZE184226B<<<<<10",
        ]);
        assert_eq!(mrz.document_number, "L898902CD");
        assert!(mrz.all_check_digits_valid());
    }

    // ---- generated MRZs ------------------------------------------------------------------

    /// `s` padded with fillers or cut to `len` characters.
    fn pad(s: &str, len: usize) -> String {
        format!("{s:<<len$}").chars().take(len).collect()
    }

    /// A valid MRZ with the 1-based (line, column) positions that check digits protect and,
    /// among them, the positions of the check digits.
    #[derive(Debug)]
    struct Generated {
        lines: Vec<String>,
        protected: Vec<(usize, usize)>,
        check_positions: Vec<(usize, usize)>,
        visa: bool,
    }

    #[derive(Debug, Clone)]
    struct Parts {
        state: String,
        nationality: String,
        names: String,
        number: String,
        birth: String,
        expiry: String,
        sex: char,
        optional: String,
        optional_2: String,
        filler_check: bool,
    }

    /// The fields of the ICAO specimens (TD3 names and dates).
    fn specimen_parts() -> Parts {
        Parts {
            state: "UTO".into(),
            nationality: "UTO".into(),
            names: "ERIKSSON<<ANNA<MARIA".into(),
            number: "L898902C3".into(),
            birth: "740812".into(),
            expiry: "120415".into(),
            sex: 'F',
            optional: "ZE184226B".into(),
            optional_2: String::new(),
            filler_check: false,
        }
    }

    /// Every code ICAO 9303 allows in a state or nationality field, as printed (`D<<`).
    fn state_codes() -> Vec<String> {
        COUNTRIES
            .iter()
            .map(|(_, a3)| *a3)
            .chain(ICAO_CODES.iter().map(|(code, _)| *code))
            .map(|code| pad(code, 3))
            .collect()
    }

    /// A `YYMMDD` that is a date in every century.
    fn date_text() -> impl Strategy<Value = String> {
        (0..100u32, 1..=12u32, 1..=28u32).prop_map(|(y, m, d)| format!("{y:02}{m:02}{d:02}"))
    }

    /// A birth date, known or with its unknown parts as fillers.
    fn birth_text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => date_text(),
            1 => date_text().prop_map(|d| format!("{}<<<<", &d[..2])),
            1 => date_text().prop_map(|d| format!("{}<<", &d[..4])),
            1 => Just("<<<<<<".to_owned()),
        ]
    }

    /// Well-formed fields: every field check passes on a zone generated from them.
    fn parts(max_number: usize) -> impl Strategy<Value = Parts> {
        let codes = prop::sample::select(state_codes());
        (
            (codes.clone(), codes),
            "[A-Z]{1,12}(<[A-Z]{1,5})?<<[A-Z]{1,8}(<[A-Z]{1,8})?",
            proptest::string::string_regex(&format!("[A-Z0-9]{{1,{max_number}}}")).unwrap(),
            birth_text(),
            date_text(),
            prop::sample::select(vec!['M', 'F', 'X', '<']),
            "[A-Z0-9<]{0,14}",
            "[A-Z0-9<]{0,11}",
            any::<bool>(),
        )
            .prop_map(
                |(
                    (state, nationality),
                    names,
                    number,
                    birth,
                    expiry,
                    sex,
                    optional,
                    optional_2,
                    filler_check,
                )| Parts {
                    state,
                    nationality,
                    names,
                    number,
                    birth,
                    expiry,
                    sex,
                    optional,
                    optional_2,
                    filler_check,
                },
            )
    }

    fn range(line: usize, from: usize, to: usize) -> impl Iterator<Item = (usize, usize)> {
        (from..=to).map(move |c| (line, c))
    }

    /// Document number and optional data of TD1/TD2, with the overflow rule. Returns the
    /// 10 characters of number + check, the optional data (`len` characters) and the column
    /// (relative to the optional data, from 1) of the overflow check digit, if any.
    fn number_and_optional(p: &Parts, len: usize) -> (String, String, Option<usize>) {
        let cd = check_digit(&pad(&p.number, 9));
        if p.number.len() <= 9 {
            let optional: String = p.optional.chars().take(len).collect();
            (
                format!("{}{cd}", pad(&p.number, 9)),
                pad(&optional, len),
                None,
            )
        } else {
            let overflow = &p.number[9..];
            let cd = check_digit(&p.number);
            let optional = format!("{overflow}{cd}");
            (
                format!("{}<", &p.number[..9]),
                pad(&optional, len),
                Some(overflow.len() + 1),
            )
        }
    }

    fn gen_td3(p: &Parts, visa: bool) -> Generated {
        let code = if visa { "V<" } else { "P<" };
        let l1 = format!("{code}{}{}", p.state, pad(&p.names, 39));
        let number = pad(&p.number, 9);
        let mut l2 = format!(
            "{number}{}{}{}{}{}{}{}",
            check_digit(&number),
            p.nationality,
            p.birth,
            check_digit(&p.birth),
            p.sex,
            p.expiry,
            check_digit(&p.expiry)
        );
        let mut protected: Vec<_> = range(2, 1, 10)
            .chain(range(2, 14, 20))
            .chain(range(2, 22, 28))
            .collect();
        let mut check_positions = vec![(2, 10), (2, 20), (2, 28)];
        if visa {
            l2.push_str(&pad(&p.optional, 16));
        } else {
            let personal = pad(&p.optional, 14);
            let cd = check_digit(&personal);
            let cd = if p.filler_check && personal == "<<<<<<<<<<<<<<" {
                '<'
            } else {
                cd
            };
            l2.push_str(&format!("{personal}{cd}"));
            let composite = check_digit(&format!("{}{}{}", &l2[0..10], &l2[13..20], &l2[21..43]));
            l2.push(composite);
            protected.extend(range(2, 29, 44));
            check_positions.extend([(2, 43), (2, 44)]);
        }
        Generated {
            lines: vec![l1, l2],
            protected,
            check_positions,
            visa,
        }
    }

    fn gen_td2(p: &Parts, visa: bool) -> Generated {
        let code = if visa { "V<" } else { "I<" };
        let l1 = format!("{code}{}{}", p.state, pad(&p.names, 31));
        let optional_len = if visa { 8 } else { 7 };
        let (number, optional, overflow_check) = number_and_optional(p, optional_len);
        let mut l2 = format!(
            "{number}{}{}{}{}{}{}{optional}",
            p.nationality,
            p.birth,
            check_digit(&p.birth),
            p.sex,
            p.expiry,
            check_digit(&p.expiry)
        );
        let mut protected: Vec<_> = range(2, 1, 10)
            .chain(range(2, 14, 20))
            .chain(range(2, 22, 28))
            .collect();
        let mut check_positions = vec![(2, 10), (2, 20), (2, 28)];
        if !visa {
            let composite = check_digit(&format!("{}{}{}", &l2[0..10], &l2[13..20], &l2[21..35]));
            l2.push(composite);
            protected.extend(range(2, 29, 36));
            check_positions.push((2, 36));
            check_positions.extend(overflow_check.map(|c| (2, 28 + c)));
        }
        Generated {
            lines: vec![l1, l2],
            protected,
            check_positions,
            visa,
        }
    }

    fn gen_td1(p: &Parts) -> Generated {
        let (number, optional, overflow_check) = number_and_optional(p, 15);
        let l1 = format!("I<{}{number}{optional}", p.state);
        let head = format!(
            "{}{}{}{}{}{}{}",
            p.birth,
            check_digit(&p.birth),
            p.sex,
            p.expiry,
            check_digit(&p.expiry),
            p.nationality,
            pad(&p.optional_2, 11)
        );
        let composite = check_digit(&format!(
            "{}{}{}{}",
            &l1[5..30],
            &head[0..7],
            &head[8..15],
            &head[18..29]
        ));
        let l2 = format!("{head}{composite}");
        let l3 = pad(&p.names, 30);
        let mut check_positions = vec![(1, 15), (2, 7), (2, 15), (2, 30)];
        check_positions.extend(overflow_check.map(|c| (1, 15 + c)));
        Generated {
            lines: vec![l1, l2, l3],
            protected: range(1, 6, 30)
                .chain(range(2, 1, 7))
                .chain(range(2, 9, 15))
                .chain(range(2, 19, 30))
                .collect(),
            check_positions,
            visa: false,
        }
    }

    fn value(c: char) -> i64 {
        i64::from(char_value(c as u8))
    }

    /// Every single substitution that the standard guarantees to catch is caught:
    /// - in any protected position, by a character whose value differs by other than a multiple
    ///   of 10 (the field digit and the composite both see it);
    /// - in a check digit position holding a digit, by any character but `<` (a check digit is
    ///   a digit). `<` there is the TD1/TD2 document number overflow marker (the number then
    ///   reads on into the optional data, whose first characters may happen to check) and the
    ///   allowed check digit of an all-filler TD3 personal number, so only the composite, which
    ///   visas lack, still guarantees to catch it (unless the digit was `0`, worth as much as `<`).
    ///
    /// Substitutions outside these cases may go unnoticed (see
    /// `substitutions_differing_by_ten_are_undetectable`) and are not asserted on.
    fn assert_corruptions_caught(g: &Generated) {
        let lines: Vec<&str> = g.lines.iter().map(String::as_str).collect();
        let mrz = parse(&lines, TODAY).unwrap();
        assert!(mrz.all_check_digits_valid(), "{lines:?} {:?}", mrz.checks);
        assert!(mrz.all_fields_valid(), "{lines:?} {:?}", mrz.field_checks);
        assert_eq!(mrz.is_visa(), g.visa);
        for &(line, column) in &g.protected {
            let original = g.lines[line - 1].as_bytes()[column - 1] as char;
            for c in ALPHABET.chars().filter(|&c| c != original) {
                let mut corrupted = g.lines.clone();
                corrupted[line - 1].replace_range(column - 1..column, &c.to_string());
                let lines: Vec<&str> = corrupted.iter().map(String::as_str).collect();
                let parsed = parse(&lines, TODAY).unwrap();
                let at_check =
                    g.check_positions.contains(&(line, column)) && original.is_ascii_digit();
                let differs = (value(c) - value(original)) % 10 != 0;
                let guaranteed = if at_check {
                    c != '<' || (differs && !g.visa)
                } else {
                    differs
                };
                if guaranteed {
                    assert!(
                        !parsed.all_check_digits_valid(),
                        "{original}→{c} at line {line} column {column} went unnoticed: {lines:?}"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn td3_corruptions_are_caught(p in parts(9), visa in any::<bool>()) {
            assert_corruptions_caught(&gen_td3(&p, visa));
        }

        #[test]
        fn td2_corruptions_are_caught(p in parts(15), visa in any::<bool>()) {
            // Visas are generated without the overflow (no composite to cover it).
            let mut p = p;
            if visa {
                p.number.truncate(9);
            }
            assert_corruptions_caught(&gen_td2(&p, visa));
        }

        #[test]
        fn td1_corruptions_are_caught(p in parts(20)) {
            assert_corruptions_caught(&gen_td1(&p));
        }

        /// Check digits computed over a malformed field hold, yet that field's check fails and
        /// no other does, in every layout.
        #[test]
        fn a_malformed_field_fails_its_check_whatever_the_digits(
            p in parts(9),
            malformation in malformation(),
            layout in 0..5u8,
        ) {
            let mut p = p;
            let field = malformation.apply(&mut p);
            let g = match layout {
                0 => gen_td3(&p, false),
                1 => gen_td3(&p, true),
                2 => gen_td2(&p, false),
                3 => gen_td2(&p, true),
                _ => gen_td1(&p),
            };
            let lines: Vec<&str> = g.lines.iter().map(String::as_str).collect();
            let mrz = parse(&lines, TODAY).unwrap();
            prop_assert!(mrz.all_check_digits_valid(), "{:?} {:?}", lines, mrz.checks);
            prop_assert_eq!(invalid_fields(&mrz), [field], "{:?}", lines);
            prop_assert!(!mrz.is_valid());
        }
    }

    /// One field made malformed.
    #[derive(Debug, Clone)]
    enum Malformation {
        State(String),
        Nationality(String),
        /// A digit at this position of the name (wrapped into its first 30 characters).
        NameDigit(usize, char),
        Sex(char),
        Birth(String),
        Expiry(String),
    }

    impl Malformation {
        /// Applies it and returns the field whose check must fail.
        fn apply(self, p: &mut Parts) -> &'static str {
            match self {
                Self::State(code) => {
                    p.state = code;
                    "issuing-state"
                }
                Self::Nationality(code) => {
                    p.nationality = code;
                    "nationality"
                }
                Self::NameDigit(at, digit) => {
                    let at = at % p.names.len().min(30);
                    p.names.replace_range(at..=at, &digit.to_string());
                    "name"
                }
                Self::Sex(sex) => {
                    p.sex = sex;
                    "sex"
                }
                Self::Birth(date) => {
                    p.birth = date;
                    "birth-date"
                }
                Self::Expiry(date) => {
                    p.expiry = date;
                    "expiry-date"
                }
            }
        }
    }

    /// Six characters that are not a date: a month or a day out of range, or a letter.
    fn not_a_date() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{2}(00|1[3-9]|[2-9][0-9])[0-9]{2}",
            "[0-9]{2}(0[1-9]|1[0-2])(00|3[2-9]|[4-9][0-9])",
            "[0-9]{5}[A-Z]",
            "[A-Z][0-9]{5}",
        ]
    }

    fn malformation() -> impl Strategy<Value = Malformation> {
        let not_a_code = "[A-Z]{3}|[A-Z]{2}<|[A-Z]<<|<[A-Z]{2}|<<<"
            .prop_filter("not an ICAO code", |code: &String| !is_state_code(code));
        prop_oneof![
            not_a_code.clone().prop_map(Malformation::State),
            not_a_code.prop_map(Malformation::Nationality),
            (any::<usize>(), prop::char::range('0', '9'))
                .prop_map(|(at, digit)| Malformation::NameDigit(at, digit)),
            prop::sample::select(
                ALPHABET
                    .chars()
                    .filter(|c| !matches!(c, 'M' | 'F' | 'X' | '<'))
                    .collect::<Vec<_>>()
            )
            .prop_map(Malformation::Sex),
            not_a_date().prop_map(Malformation::Birth),
            prop_oneof![not_a_date(), Just("<<<<<<".to_owned())].prop_map(Malformation::Expiry),
        ]
    }
}
