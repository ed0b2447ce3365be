//! The `phone-number` verification: the number is parsed and validated for its region with
//! libphonenumber's metadata (the `phonenumber` crate) and stored in E.164; optionally the end
//! user confirms it with a code sent by a pluggable sender.
//!
//! This module also holds the confirmation-code rules shared with `email-address`:
//! [`generate_code`], [`hash_code`], [`check_code`] with [`CodeAttempts`], and [`CodeChallenge`]
//! (a stored code with its salt, expiry and attempt count). Codes are never stored in clear.

use phonenumber::{Mode, PhoneNumber, Type, country};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Check, CheckRequirement, Subject, VerificationOutcome};

/// The field a phone-number verification reads.
pub const FIELD_KEY: &str = "phone-number";

/// A phone number that parsed and is valid for its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPhone {
    /// `+` and the digits, e.g. `+14155552671`.
    pub e164: String,
    /// ISO 3166-1 alpha-2 region the number belongs to (from the metadata), when known.
    pub region: Option<String>,
    /// libphonenumber's number type in kebab-case: `mobile`, `fixed-line`,
    /// `fixed-line-or-mobile`, `toll-free`, `voip`, … or `unknown`.
    pub number_type: &'static str,
}

/// Parses `raw` (international form `+…`, or national form when `default_region` is given,
/// e.g. `Some("GB")`) and checks it is a valid number for its region. Returns the E.164 form.
pub fn parse_e164(raw: &str, default_region: Option<&str>) -> Result<String, String> {
    parse(raw, default_region).map(|p| p.e164)
}

/// [`parse_e164`] with the region and number type read from the metadata.
pub fn parse(raw: &str, default_region: Option<&str>) -> Result<ParsedPhone, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("is empty".to_owned());
    }
    // libphonenumber reads letters as keypad digits (1-800-FLOWERS) and `ext.` as an
    // extension; neither belongs in an identity phone number.
    if raw.chars().any(char::is_alphabetic) {
        return Err("must contain only digits, spaces and the signs + ( ) - .".to_owned());
    }
    let region = match default_region {
        Some(code) => Some(
            code.trim()
                .to_ascii_uppercase()
                .parse::<country::Id>()
                .map_err(|_| format!("`{code}` is not a known region"))?,
        ),
        None => None,
    };
    let number: PhoneNumber = phonenumber::parse(region, raw).map_err(|e| match e {
        phonenumber::ParseError::InvalidCountryCode => {
            "has no valid country code (write it in international format, such as +14155552671)"
                .to_owned()
        }
        phonenumber::ParseError::TooLong => "is too long".to_owned(),
        phonenumber::ParseError::TooShortNsn | phonenumber::ParseError::TooShortAfterIdd => {
            "is too short".to_owned()
        }
        _ => "is not a phone number".to_owned(),
    })?;
    if number.extension().is_some() {
        return Err("must not have an extension".to_owned());
    }
    let region_id = number.country().id().map(|id| id.as_ref().to_owned());
    if !number.is_valid() {
        return Err(match region_id {
            Some(region) => format!("is not a valid phone number for {region}"),
            None => "is not a valid phone number".to_owned(),
        });
    }
    let number_type = type_name(number.number_type(&phonenumber::metadata::DATABASE));
    Ok(ParsedPhone {
        e164: number.format().mode(Mode::E164).to_string(),
        region: region_id,
        number_type,
    })
}

fn type_name(kind: Type) -> &'static str {
    match kind {
        Type::FixedLine => "fixed-line",
        Type::Mobile => "mobile",
        Type::FixedLineOrMobile => "fixed-line-or-mobile",
        Type::TollFree => "toll-free",
        Type::PremiumRate => "premium-rate",
        Type::SharedCost => "shared-cost",
        Type::PersonalNumber => "personal-number",
        Type::Voip => "voip",
        Type::Pager => "pager",
        Type::Uan => "uan",
        Type::Emergency => "emergency",
        Type::Voicemail => "voicemail",
        Type::ShortCode => "short-code",
        Type::StandardRate => "standard-rate",
        Type::Carrier => "carrier",
        Type::NoInternational => "no-international",
        Type::Unknown => "unknown",
    }
}

/// Runs the phone-number verification over the subject's `phone-number` field.
///
/// Checks: `phone_number_valid` (required; metadata `e164`, `region`, `number-type`) and
/// `phone_number_confirmed` (required and checked only when `confirmation_required`, otherwise
/// `not_applicable`). The subject's `address-country-code`, when set, is the region for a number
/// written without `+`. Attributes: `phone-number` (E.164) when valid.
pub fn verify(subject: &Subject, confirmation_required: bool) -> VerificationOutcome {
    let mut attributes = Map::new();
    let raw = subject.text(FIELD_KEY).map(str::trim).unwrap_or_default();
    let valid = if raw.is_empty() {
        Check::failed(
            "phone_number_valid",
            CheckRequirement::Required,
            "No phone number was given.",
        )
    } else {
        match parse(raw, subject.text("address-country-code")) {
            Ok(parsed) => {
                attributes.insert(FIELD_KEY.to_owned(), Value::String(parsed.e164.clone()));
                Check::passed("phone_number_valid", CheckRequirement::Required)
                    .with_metadata("e164", parsed.e164)
                    .with_metadata("region", parsed.region.map_or(Value::Null, Value::String))
                    .with_metadata("number-type", parsed.number_type)
            }
            Err(message) => Check::failed(
                "phone_number_valid",
                CheckRequirement::Required,
                format!("The phone number {message}."),
            ),
        }
    };
    let confirmed = confirmation_check(
        "phone_number_confirmed",
        FIELD_KEY,
        "phone number",
        subject,
        confirmation_required,
    );
    VerificationOutcome::from_checks(vec![valid, confirmed], attributes)
}

/// The `*_confirmed` check shared by phone and email: required and passed only when `key` is in
/// `subject.confirmed`, `not_applicable` when the template does not ask for confirmation.
pub(super) fn confirmation_check(
    name: &str,
    key: &str,
    what: &str,
    subject: &Subject,
    confirmation_required: bool,
) -> Check {
    if !confirmation_required {
        return Check::not_applicable(
            name,
            CheckRequirement::NotRequired,
            format!("The template does not ask to confirm the {what}."),
        );
    }
    Check::from_bool(
        name,
        CheckRequirement::Required,
        subject.confirmed.iter().any(|k| k == key),
        format!("The {what} has not been confirmed with a code."),
    )
}

// ---------------------------------------------------------------------------------------------
// Confirmation codes (phone and email)
// ---------------------------------------------------------------------------------------------

/// Number of digits of a confirmation code.
pub const CODE_DIGITS: usize = 6;
/// Wrong codes accepted before a code is locked (a new code must be sent).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// A fresh random code of [`CODE_DIGITS`] digits, leading zeros kept (`"004217"`).
pub fn generate_code() -> String {
    let n: u32 = rand::rng().random_range(0..1_000_000);
    format!("{n:06}")
}

/// A fresh random salt (32 hex characters) for [`hash_code`].
pub fn generate_salt() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes[..]);
    to_hex(&bytes)
}

/// SHA-256 of `salt`, a `:` and the code (after [`normalize_code`]), as lowercase hex. What is
/// stored instead of the code.
pub fn hash_code(code: &str, salt: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(b":");
    hasher.update(normalize_code(code).as_bytes());
    to_hex(&hasher.finalize())
}

/// The code as typed, without spaces and hyphens (`"123 456"` and `"123-456"` are `"123456"`).
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Compares two strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How many codes were tried against one sent code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CodeAttempts {
    pub used: u32,
    pub max: u32,
}

impl Default for CodeAttempts {
    fn default() -> Self {
        Self {
            used: 0,
            max: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl CodeAttempts {
    pub fn remaining(&self) -> u32 {
        self.max.saturating_sub(self.used)
    }

    pub fn exhausted(&self) -> bool {
        self.used >= self.max
    }
}

/// The result of trying a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The code is right: the field is confirmed.
    Confirmed,
    /// The code is wrong; `remaining` more tries are allowed.
    Wrong { remaining: u32 },
    /// No tries are left (this try was not compared); a new code must be sent.
    Locked,
    /// The code expired (this try was not compared); a new code must be sent.
    Expired,
}

/// Tries `submitted` against the stored `hash` and `salt`. Once `attempts` is exhausted nothing
/// is compared; otherwise every comparison, right or wrong, counts as an attempt. The hashes are
/// compared in constant time.
pub fn check_code(
    submitted: &str,
    hash: &str,
    salt: &str,
    attempts: &mut CodeAttempts,
) -> CodeCheck {
    if attempts.exhausted() {
        return CodeCheck::Locked;
    }
    attempts.used = attempts.used.saturating_add(1);
    if constant_time_eq(hash_code(submitted, salt).as_bytes(), hash.as_bytes()) {
        CodeCheck::Confirmed
    } else {
        CodeCheck::Wrong {
            remaining: attempts.remaining(),
        }
    }
}

/// A sent confirmation code as the server stores it: hash, salt, expiry and attempts (the code
/// itself only goes to the sender).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CodeChallenge {
    pub hash: String,
    pub salt: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub attempts: CodeAttempts,
}

impl CodeChallenge {
    /// A new random code and its challenge; send the code, store the challenge.
    pub fn generate(expires_at: OffsetDateTime) -> (String, Self) {
        let code = generate_code();
        (code.clone(), Self::for_code(&code, expires_at))
    }

    /// The challenge for a given code (with a fresh salt).
    pub fn for_code(code: &str, expires_at: OffsetDateTime) -> Self {
        let salt = generate_salt();
        Self {
            hash: hash_code(code, &salt),
            salt,
            expires_at,
            attempts: CodeAttempts::default(),
        }
    }

    /// Tries a code at `now`; updates the attempt count (persist the challenge afterwards).
    pub fn check(&mut self, submitted: &str, now: OffsetDateTime) -> CodeCheck {
        if now >= self.expires_at {
            return CodeCheck::Expired;
        }
        check_code(submitted, &self.hash, &self.salt, &mut self.attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldValue;
    use crate::verification::{CheckStatus, VerificationStatus};
    use time::Duration;
    use time::macros::datetime;

    fn subject(number: &str) -> Subject {
        let mut s = Subject::default();
        s.fields
            .insert(FIELD_KEY.to_owned(), FieldValue::String(number.to_owned()));
        s
    }

    #[test]
    fn parses_real_numbers_to_e164() {
        for (raw, region, e164, expected_region) in [
            ("+14155552671", None, "+14155552671", "US"),
            ("+1 (415) 555-2671", None, "+14155552671", "US"),
            // +44 7911 1… is a Guernsey mobile range within the +44 plan.
            ("+447911123456", None, "+447911123456", "GG"),
            ("+447400123456", None, "+447400123456", "GB"),
            ("07400 123456", Some("GB"), "+447400123456", "GB"),
            ("+4915123456789", None, "+4915123456789", "DE"),
            ("0151 23456789", Some("de"), "+4915123456789", "DE"),
            ("+33 6 12 34 56 78", None, "+33612345678", "FR"),
        ] {
            let parsed = parse(raw, region).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(parsed.e164, e164, "{raw}");
            assert_eq!(parsed.region.as_deref(), Some(expected_region), "{raw}");
            assert_eq!(parse_e164(raw, region).unwrap(), e164);
        }
        assert_eq!(parse("+447911123456", None).unwrap().number_type, "mobile");
        assert_eq!(parse("+4915123456789", None).unwrap().number_type, "mobile");
    }

    #[test]
    fn rejects_invalid_numbers() {
        for (raw, region) in [
            ("+1 555 000", None),
            ("", None),
            ("   ", None),
            ("+1 800 FLOWERS", None),
            ("call me", None),
            ("abc", Some("US")),
            ("+999 1234567", None),
            ("+1 415 555 2671 ext. 12", None),
            ("+44 1234", None),
            ("+49 1512345678901234567", None),
            ("4155552671", None),
            ("+1 (011) 555-2671", None),
        ] {
            assert!(
                parse_e164(raw, region).is_err(),
                "{raw:?} should be rejected"
            );
        }
        assert_eq!(
            parse_e164("0151 23456789", Some("XX")).unwrap_err(),
            "`XX` is not a known region"
        );
        // A number valid in one region is not valid as a national number of another.
        assert!(parse_e164("07400 123456", Some("US")).is_err());
    }

    #[test]
    fn verify_passes_a_valid_number_without_confirmation() {
        let outcome = verify(&subject("+447400123456"), false);
        assert_eq!(outcome.status, VerificationStatus::Passed);
        let valid = &outcome.checks[0];
        assert_eq!(valid.name, "phone_number_valid");
        assert_eq!(valid.status, CheckStatus::Passed);
        assert_eq!(valid.metadata["e164"], "+447400123456");
        assert_eq!(valid.metadata["region"], "GB");
        assert_eq!(valid.metadata["number-type"], "mobile");
        let confirmed = &outcome.checks[1];
        assert_eq!(confirmed.name, "phone_number_confirmed");
        assert_eq!(confirmed.status, CheckStatus::NotApplicable);
        assert_eq!(confirmed.requirement, CheckRequirement::NotRequired);
        assert_eq!(outcome.attributes["phone-number"], "+447400123456");
    }

    #[test]
    fn verify_fails_invalid_or_missing_numbers() {
        for s in [
            subject("+1 555 000"),
            subject("letters"),
            Subject::default(),
        ] {
            let outcome = verify(&s, false);
            assert_eq!(outcome.status, VerificationStatus::Failed);
            assert_eq!(outcome.checks[0].status, CheckStatus::Failed);
            assert_eq!(outcome.checks[0].reasons.len(), 1);
            assert!(outcome.attributes.is_empty());
        }
    }

    #[test]
    fn verify_uses_the_address_country_for_national_numbers() {
        let mut s = subject("0151 23456789");
        s.fields.insert(
            "address-country-code".to_owned(),
            FieldValue::String("DE".to_owned()),
        );
        assert_eq!(verify(&s, false).status, VerificationStatus::Passed);
    }

    #[test]
    fn confirmation_is_required_when_configured() {
        let mut s = subject("+14155552671");
        let outcome = verify(&s, true);
        assert_eq!(outcome.status, VerificationStatus::Failed);
        assert_eq!(outcome.checks[1].status, CheckStatus::Failed);
        assert_eq!(outcome.checks[1].requirement, CheckRequirement::Required);

        s.confirmed.push("phone-number".to_owned());
        let outcome = verify(&s, true);
        assert_eq!(outcome.status, VerificationStatus::Passed);
        assert_eq!(outcome.checks[1].status, CheckStatus::Passed);
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let code = generate_code();
            assert_eq!(code.len(), CODE_DIGITS);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(generate_salt().len(), 32);
        assert_ne!(generate_salt(), generate_salt());
    }

    #[test]
    fn hashes_depend_on_code_and_salt() {
        let h = hash_code("123456", "salt");
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_code("123 456", "salt"));
        assert_eq!(h, hash_code(" 123-456 ", "salt"));
        assert_ne!(h, hash_code("123457", "salt"));
        assert_ne!(h, hash_code("123456", "pepper"));
        assert!(!h.contains("123456"));
        // Known answer: SHA-256("salt:123456").
        assert_eq!(
            h,
            "089bb10f6570c66ccad4e24fd550529ff1bcef9284b3c6560e41322e9fa812b5"
        );
    }

    #[test]
    fn attempts_are_limited() {
        let hash = hash_code("654321", "s");
        let mut attempts = CodeAttempts::default();
        assert_eq!(attempts.max, 5);
        for remaining in (0..5).rev() {
            assert_eq!(
                check_code("000000", &hash, "s", &mut attempts),
                CodeCheck::Wrong { remaining }
            );
        }
        assert!(attempts.exhausted());
        // Even the right code is refused once locked.
        assert_eq!(
            check_code("654321", &hash, "s", &mut attempts),
            CodeCheck::Locked
        );
        assert_eq!(attempts.used, 5);

        let mut fresh = CodeAttempts::default();
        assert_eq!(
            check_code("000000", &hash, "s", &mut fresh),
            CodeCheck::Wrong { remaining: 4 }
        );
        assert_eq!(
            check_code("654 321", &hash, "s", &mut fresh),
            CodeCheck::Confirmed
        );
    }

    #[test]
    fn challenges_expire_and_round_trip() {
        let now = datetime!(2024-06-15 12:00 UTC);
        let (code, mut challenge) = CodeChallenge::generate(now + Duration::minutes(10));
        assert_ne!(challenge.hash, code);
        let json = serde_json::to_value(&challenge).unwrap();
        assert!(json.get("expires-at").is_some());
        let back: CodeChallenge = serde_json::from_value(json).unwrap();
        assert_eq!(back, challenge);

        let wrong = if code == "000000" { "000001" } else { "000000" };
        assert_eq!(
            challenge.check(wrong, now),
            CodeCheck::Wrong { remaining: 4 }
        );
        let mut later = challenge.clone();
        assert_eq!(
            later.check(&code, now + Duration::minutes(10)),
            CodeCheck::Expired
        );
        assert_eq!(later.attempts.used, 1);
        assert_eq!(challenge.check(&code, now), CodeCheck::Confirmed);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
