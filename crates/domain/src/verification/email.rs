//! The `email-address` verification: syntax (a pragmatic subset of RFC 5321/5322), a
//! disposable-domain list, and optional confirmation by code.
//!
//! Confirmation codes use the same rules as phone numbers: [`super::phone::generate_code`],
//! [`super::phone::hash_code`], [`super::phone::check_code`] and
//! [`super::phone::CodeChallenge`].

use std::collections::HashSet;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::phone::confirmation_check;
use super::{Check, CheckRequirement, Subject, VerificationOutcome};

/// The field an email-address verification reads.
pub const FIELD_KEY: &str = "email-address";

const MAX_ADDRESS: usize = 254;
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;
const MAX_LABEL: usize = 63;

/// The embedded list: one domain a line, `#` comments.
static DISPOSABLE: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("disposable_domains.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Checks the syntax of an address and returns it with its domain lowercased (the local part
/// keeps its case: it is the mail server's to interpret).
///
/// Accepted: `local@domain`, at most 254 characters; a local part of 1–64 ASCII characters
/// among letters, digits and ``!#$%&'*+-/=?^_`{|}~`` with single dots that neither start nor end
/// it (no quoted strings, no comments); a domain of at least two dot-separated labels of 1–63
/// letters, digits and inner hyphens, whose last label (the TLD) is at least two letters or an
/// `xn--` label. IP-address literals and non-ASCII domains (write them in `xn--` form) are
/// refused. Errors are predicates completing "The email address …".
pub fn normalize(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("is empty".to_owned());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".to_owned());
    }
    if s.chars().count() > MAX_ADDRESS {
        return Err(format!("must be at most {MAX_ADDRESS} characters long"));
    }
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("must contain exactly one @, as in name@example.com".to_owned());
    };
    check_local(local)?;
    let domain = domain.to_ascii_lowercase();
    check_domain(&domain)?;
    Ok(format!("{local}@{domain}"))
}

fn check_local(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("needs a name before the @".to_owned());
    }
    if local.len() > MAX_LOCAL {
        return Err(format!(
            "must have at most {MAX_LOCAL} characters before the @"
        ));
    }
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    if let Some(c) = local
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || SPECIALS.contains(*c)))
    {
        return Err(format!("must not contain `{c}` before the @"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(
            "must not start or end with a dot, or have two dots in a row, before the @".to_owned(),
        );
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("needs a domain after the @, as in name@example.com".to_owned());
    }
    if domain.starts_with('[') {
        return Err("must have a domain name, not an IP address, after the @".to_owned());
    }
    if !domain.is_ascii() {
        return Err(
            "must have an ASCII domain (write internationalized domains in their xn-- form)"
                .to_owned(),
        );
    }
    if domain.len() > MAX_DOMAIN {
        return Err(format!(
            "must have a domain of at most {MAX_DOMAIN} characters"
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("must have a full domain such as example.com after the @".to_owned());
    }
    for label in &labels {
        let well_formed = !label.is_empty()
            && label.len() <= MAX_LABEL
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !well_formed {
            return Err(format!(
                "has an invalid domain part `{label}` (1 to {MAX_LABEL} letters, digits or inner \
                 hyphens between dots)"
            ));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    let tld_ok =
        (tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())) || tld.starts_with("xn--");
    if !tld_ok {
        return Err(format!(
            "must end with a top-level domain of letters such as .com, not `.{tld}`"
        ));
    }
    Ok(())
}

/// Whether `domain` (or a domain it is a subdomain of) is on the embedded list of disposable
/// email domains. Case and a trailing dot are ignored.
pub fn is_disposable(domain: &str) -> bool {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut rest = domain.as_str();
    loop {
        if DISPOSABLE.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => return false,
        }
    }
}

/// Runs the email-address verification over the subject's `email-address` field.
///
/// Checks: `email_address_syntax` (required; metadata `domain`),
/// `email_address_disposable_domain` (required; failed when the domain is disposable,
/// `not_applicable` when the syntax check failed) and `email_address_confirmed` (required and
/// checked only when `confirmation_required`, otherwise `not_applicable`). Attributes:
/// `email-address` (normalized) when the syntax is valid.
pub fn verify(subject: &Subject, confirmation_required: bool) -> VerificationOutcome {
    let mut attributes = Map::new();
    let raw = subject.text(FIELD_KEY).map(str::trim).unwrap_or_default();
    let parsed = if raw.is_empty() {
        Err("No email address was given.".to_owned())
    } else {
        normalize(raw).map_err(|message| format!("The email address {message}."))
    };
    let (syntax, disposable) = match parsed {
        Ok(address) => {
            let domain = address.rsplit('@').next().unwrap_or_default().to_owned();
            attributes.insert(FIELD_KEY.to_owned(), Value::String(address));
            let disposable = is_disposable(&domain);
            (
                Check::passed("email_address_syntax", CheckRequirement::Required)
                    .with_metadata("domain", domain.clone()),
                Check::from_bool(
                    "email_address_disposable_domain",
                    CheckRequirement::Required,
                    !disposable,
                    format!("The domain {domain} provides disposable email addresses."),
                )
                .with_metadata("domain", domain),
            )
        }
        Err(reason) => (
            Check::failed("email_address_syntax", CheckRequirement::Required, reason),
            Check::not_applicable(
                "email_address_disposable_domain",
                CheckRequirement::Required,
                "The email address is not valid.",
            ),
        ),
    };
    let confirmed = confirmation_check(
        "email_address_confirmed",
        FIELD_KEY,
        "email address",
        subject,
        confirmation_required,
    );
    VerificationOutcome::from_checks(vec![syntax, disposable, confirmed], attributes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldValue;
    use crate::verification::{CheckStatus, VerificationStatus};

    fn subject(address: &str) -> Subject {
        let mut s = Subject::default();
        s.fields
            .insert(FIELD_KEY.to_owned(), FieldValue::String(address.to_owned()));
        s
    }

    #[test]
    fn normalizes_valid_addresses() {
        for (raw, expected) in [
            ("jane@example.com", "jane@example.com"),
            ("  Jane.Doe@Example.COM ", "Jane.Doe@example.com"),
            ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
            (
                "o'brien_{x}~!#$%&*=?^`|/-@a-b.example.org",
                "o'brien_{x}~!#$%&*=?^`|/-@a-b.example.org",
            ),
            ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),
            ("x@example.xn--p1ai", "x@example.xn--p1ai"),
            ("1@2.io", "1@2.io"),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(expected), "{raw}");
        }
        let local = "a".repeat(64);
        assert!(normalize(&format!("{local}@example.com")).is_ok());
    }

    #[test]
    fn rejects_bad_syntax() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("a@{}.com", "b".repeat(64));
        let long_address = format!("a@{}.com", vec!["c".repeat(60); 5].join("."));
        for raw in [
            "",
            "plain",
            "@example.com",
            "jane@",
            "jane@@example.com",
            "a@b@example.com",
            "jane doe@example.com",
            "jane@exa mple.com",
            ".jane@example.com",
            "jane.@example.com",
            "ja..ne@example.com",
            "\"jane\"@example.com",
            "jané@example.com",
            "jane(comment)@example.com",
            "jane@localhost",
            "jane@example",
            "jane@example.c",
            "jane@example.123",
            "jane@example.c0m",
            "jane@-example.com",
            "jane@example-.com",
            "jane@exa_mple.com",
            "jane@example..com",
            "jane@.example.com",
            "jane@example.com.",
            "jane@[192.168.0.1]",
            "jane@bücher.de",
            "jane@exam\nple.com",
            "ja\tne@example.com",
            long_local.as_str(),
            long_label.as_str(),
            long_address.as_str(),
        ] {
            assert!(normalize(raw).is_err(), "{raw:?} should be rejected");
        }
        assert_eq!(
            normalize("jane@example.c0m").unwrap_err(),
            "must end with a top-level domain of letters such as .com, not `.c0m`"
        );
    }

    #[test]
    fn disposable_domains_match_with_subdomains() {
        for domain in [
            "mailinator.com",
            "MAILINATOR.COM",
            "guerrillamail.com",
            "yopmail.fr",
            "10minutemail.com",
            "inbox.mailinator.com",
            "a.b.trashmail.de",
            "sharklasers.com.",
        ] {
            assert!(is_disposable(domain), "{domain}");
        }
        for domain in [
            "gmail.com",
            "example.com",
            "com",
            "",
            "mailinator.com.evil.org",
            "notmailinator.com.example",
            "proton.me",
            "outlook.com",
        ] {
            assert!(!is_disposable(domain), "{domain}");
        }
    }

    #[test]
    fn the_embedded_list_is_well_formed() {
        let text = include_str!("disposable_domains.txt");
        let mut seen = HashSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(normalize(&format!("x@{line}")), Ok(format!("x@{line}")));
            assert_eq!(line, line.to_ascii_lowercase());
            assert!(seen.insert(line), "{line} is listed twice");
        }
        assert!(seen.len() >= 300, "{}", seen.len());
        for common in [
            "gmail.com",
            "yahoo.com",
            "outlook.com",
            "hotmail.com",
            "icloud.com",
        ] {
            assert!(!seen.contains(common), "{common}");
        }
    }

    #[test]
    fn verify_passes_a_regular_address() {
        let outcome = verify(&subject("Jane@Example.com"), false);
        assert_eq!(outcome.status, VerificationStatus::Passed);
        let names: Vec<&str> = outcome.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "email_address_syntax",
                "email_address_disposable_domain",
                "email_address_confirmed"
            ]
        );
        assert_eq!(outcome.checks[0].metadata["domain"], "example.com");
        assert_eq!(outcome.checks[1].status, CheckStatus::Passed);
        assert_eq!(outcome.checks[2].status, CheckStatus::NotApplicable);
        assert_eq!(outcome.attributes["email-address"], "Jane@example.com");
    }

    #[test]
    fn verify_fails_a_disposable_domain() {
        let outcome = verify(&subject("someone@mail.yopmail.com"), false);
        assert_eq!(outcome.status, VerificationStatus::Failed);
        assert_eq!(outcome.checks[0].status, CheckStatus::Passed);
        let disposable = &outcome.checks[1];
        assert_eq!(disposable.status, CheckStatus::Failed);
        assert_eq!(
            disposable.reasons,
            ["The domain mail.yopmail.com provides disposable email addresses."]
        );
    }

    #[test]
    fn verify_fails_bad_or_missing_syntax() {
        for s in [subject("nope"), subject("   "), Subject::default()] {
            let outcome = verify(&s, false);
            assert_eq!(outcome.status, VerificationStatus::Failed);
            assert_eq!(outcome.checks[0].status, CheckStatus::Failed);
            assert_eq!(outcome.checks[1].status, CheckStatus::NotApplicable);
            assert!(outcome.attributes.is_empty());
        }
        assert_eq!(
            verify(&subject("nope"), false).checks[0].reasons,
            ["The email address must contain exactly one @, as in name@example.com."]
        );
    }

    #[test]
    fn confirmation_is_required_when_configured() {
        let mut s = subject("jane@example.com");
        let outcome = verify(&s, true);
        assert_eq!(outcome.status, VerificationStatus::Failed);
        assert_eq!(outcome.checks[2].status, CheckStatus::Failed);
        // Another field's confirmation does not count.
        s.confirmed.push("phone-number".to_owned());
        assert_eq!(verify(&s, true).status, VerificationStatus::Failed);
        s.confirmed.push("email-address".to_owned());
        let outcome = verify(&s, true);
        assert_eq!(outcome.status, VerificationStatus::Passed);
        assert_eq!(outcome.checks[2].status, CheckStatus::Passed);
    }
}
