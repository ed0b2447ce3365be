//! Typed, prefixed, random identifiers (`inq_…`, `itmplv_…`, …).
//!
//! The body is 24 characters of the bitcoin base58 alphabet (about 140 bits): never sequential,
//! never guessable, and free of look-alike characters when read aloud or copied by hand.

use std::fmt;
use std::str::FromStr;

use rand::RngExt;

/// The bitcoin base58 alphabet.
const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BODY_LEN: usize = 24;
/// Inputs echoed in error messages are cut to this many characters.
const MAX_ECHO_CHARS: usize = 64;

/// A string that is not a well-formed id of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {noun} id (expected `{prefix}_` followed by 24 characters)")]
pub struct IdError {
    pub input: String,
    /// Human name of the expected type, e.g. "inquiry template".
    pub noun: &'static str,
    pub prefix: &'static str,
}

impl IdError {
    fn new(input: &str, noun: &'static str, prefix: &'static str) -> Self {
        // Bounded and without control characters: the input is echoed into logs and responses.
        let input = input
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_ECHO_CHARS)
            .collect();
        Self {
            input,
            noun,
            prefix,
        }
    }
}

fn generate(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 1 + BODY_LEN);
    s.push_str(prefix);
    s.push('_');
    s.extend((0..BODY_LEN).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])));
    s
}

fn is_valid(s: &str, prefix: &str) -> bool {
    // Requiring `_` right after the prefix keeps `itmpl_` and `itmplv_` apart.
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == BODY_LEN && body.bytes().all(|b| ALPHABET.contains(&b)))
}

macro_rules! ids {
    ($($(#[$meta:meta])* $name:ident = $prefix:literal, $noun:literal;)+) => {$(
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            /// Human name of this type, used in error messages.
            pub const NOUN: &'static str = $noun;

            /// A new random id.
            pub fn generate() -> Self {
                Self(generate(Self::PREFIX))
            }

            pub fn parse(s: &str) -> Result<Self, IdError> {
                if is_valid(s, Self::PREFIX) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::new(s, Self::NOUN, Self::PREFIX))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                if is_valid(&s, Self::PREFIX) {
                    Ok(Self(s))
                } else {
                    Err(serde::de::Error::custom(IdError::new(&s, Self::NOUN, Self::PREFIX)))
                }
            }
        }
    )+};
}

ids! {
    OrgId = "org", "organization";
    ApiKeyId = "api", "API key";
    UserId = "user", "user";
    InquiryTemplateId = "itmpl", "inquiry template";
    InquiryTemplateVersionId = "itmplv", "inquiry template version";
    InquiryId = "inq", "inquiry";
    EventId = "evt", "event";
    RequestId = "req", "request";
    VerificationId = "ver", "verification";
    ReportId = "rep", "report";
    DocumentId = "doc", "document";
    FileId = "file", "file";
    ConnectionId = "cxn", "connection";
    ShareTokenId = "cnst", "share token";
    WebhookId = "wbh", "webhook";
    WebhookDeliveryId = "wbhd", "webhook delivery";
    WorkflowId = "wfl", "workflow";
    WorkflowVersionId = "wfv", "workflow version";
    WorkflowRunId = "wfr", "workflow run";
    InquirySessionId = "iqse", "inquiry session";
    DashboardSessionId = "dses", "dashboard session";
    OneTimeLinkId = "otl", "one-time link";
    SetPasswordLinkId = "spl", "set-password link";
    AuditEntryId = "aud", "audit entry";
    JobId = "job", "job";
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_have_the_documented_shape() {
        let id = InquiryTemplateVersionId::generate();
        let body = id.as_str().strip_prefix("itmplv_").unwrap();
        assert_eq!(body.len(), 24);
        assert_ne!(id, InquiryTemplateVersionId::generate());
        assert_eq!(format!("{id:?}"), id.to_string());
    }

    #[test]
    fn similar_prefixes_are_not_confused() {
        let version = InquiryTemplateVersionId::generate();
        let template = InquiryTemplateId::generate();
        assert!(InquiryTemplateId::parse(version.as_str()).is_err());
        assert!(InquiryTemplateVersionId::parse(template.as_str()).is_err());
        assert!(InquiryId::parse(template.as_str()).is_err());
    }

    #[test]
    fn rejects_malformed_ids_with_a_clear_message() {
        let err = InquiryId::parse("xyz").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`xyz` is not a valid inquiry id (expected `inq_` followed by 24 characters)"
        );
        const BODY: &str = "123456789ABCDEFGHJKLMNPQ";
        assert!(InquiryId::parse(&format!("inq_{BODY}")).is_ok());
        for bad in [
            "inq_".to_owned(),
            format!("inq_{BODY}R"),
            format!("inq_{}", &BODY[1..]),
            format!("inq_0{}", &BODY[1..]), // `0` is not base58
            format!("inq-{BODY}"),
            format!("INQ_{BODY}"),
            format!("inq_é{}", &BODY[2..]),
            format!(" inq_{BODY}"),
        ] {
            assert!(InquiryId::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_is_a_plain_validated_string() {
        let id = ShareTokenId::generate();
        let json = serde_json::to_value(&id).unwrap();
        assert_eq!(json, serde_json::Value::String(id.to_string()));
        assert_eq!(serde_json::from_value::<ShareTokenId>(json).unwrap(), id);
        let err = serde_json::from_value::<ShareTokenId>("cxn_x".into()).unwrap_err();
        assert!(err.to_string().contains("not a valid share token id"));
    }

    proptest! {
        #[test]
        fn generated_ids_round_trip(_seed in 0u8..) {
            let id = WorkflowRunId::generate();
            prop_assert_eq!(WorkflowRunId::parse(id.as_str()), Ok(id.clone()));
            prop_assert_eq!(id.as_str().parse::<WorkflowRunId>(), Ok(id));
        }

        #[test]
        fn parse_accepts_exactly_prefix_and_base58_body(body in "[1-9A-HJ-NP-Za-km-z]{24}") {
            let s = format!("evt_{body}");
            prop_assert_eq!(EventId::parse(&s).map(|id| id.to_string()), Ok(s));
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = OrgId::parse(&s);
        }
    }
}
