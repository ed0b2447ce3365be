//! Verifications: what an inquiry holds (the [`Subject`]), the checks each verification type
//! runs over it, and the outcome. Each type lives in its own module and is pure: inputs in,
//! checks out. Providers that need the network (selfie, database) are called by the server and
//! their answers passed in.

pub mod document;
pub mod email;
pub mod government_id;
pub mod phone;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::Date;

use crate::field::FieldValue;

string_enum! {
    /// Lifecycle of a verification (DESIGN §1.3).
    pub enum VerificationStatus ("verification status", all: slice) {
        Initiated = "initiated",
        Submitted = "submitted",
        Passed = "passed",
        Failed = "failed",
        RequiresRetry = "requires_retry",
        Canceled = "canceled",
        Confirmed = "confirmed",
    }
}

string_enum! {
    pub enum CheckStatus ("check status", all: slice) {
        Passed = "passed",
        Failed = "failed",
        NotApplicable = "not_applicable",
    }
}

string_enum! {
    pub enum CheckRequirement ("check requirement", all: slice) {
        Required = "required",
        NotRequired = "not_required",
    }
}

/// One check of a verification, as Persona reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// snake_case, e.g. `id_mrz_check_digits`.
    pub name: String,
    pub status: CheckStatus,
    /// Why it failed or did not apply, as short sentences.
    pub reasons: Vec<String>,
    pub requirement: CheckRequirement,
    pub metadata: Map<String, Value>,
}

impl Check {
    pub fn passed(name: &str, requirement: CheckRequirement) -> Self {
        Self {
            name: name.to_owned(),
            status: CheckStatus::Passed,
            reasons: vec![],
            requirement,
            metadata: Map::new(),
        }
    }

    pub fn failed(name: &str, requirement: CheckRequirement, reason: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            status: CheckStatus::Failed,
            reasons: vec![reason.into()],
            requirement,
            metadata: Map::new(),
        }
    }

    pub fn not_applicable(
        name: &str,
        requirement: CheckRequirement,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            status: CheckStatus::NotApplicable,
            reasons: vec![reason.into()],
            requirement,
            metadata: Map::new(),
        }
    }

    /// Passed when `ok`, failed with `reason` otherwise.
    pub fn from_bool(
        name: &str,
        requirement: CheckRequirement,
        ok: bool,
        reason: impl Into<String>,
    ) -> Self {
        if ok {
            Self::passed(name, requirement)
        } else {
            Self::failed(name, requirement, reason)
        }
    }

    pub fn with_metadata(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }
}

/// What running a verification concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationOutcome {
    /// `passed`, `failed` or `requires_retry`.
    pub status: VerificationStatus,
    pub checks: Vec<Check>,
    /// Values the verification read or derived (e.g. the parsed MRZ), no secrets.
    pub attributes: Map<String, Value>,
}

impl VerificationOutcome {
    /// `failed` when any required check failed, `passed` otherwise.
    pub fn from_checks(checks: Vec<Check>, attributes: Map<String, Value>) -> Self {
        let failed = checks.iter().any(|c| {
            c.requirement == CheckRequirement::Required && c.status == CheckStatus::Failed
        });
        Self {
            status: if failed {
                VerificationStatus::Failed
            } else {
                VerificationStatus::Passed
            },
            checks,
            attributes,
        }
    }
}

string_enum! {
    /// What an uploaded file is for.
    pub enum FileKind ("file kind", all: slice) {
        GovernmentIdFront = "government-id-front",
        GovernmentIdBack = "government-id-back",
        Selfie = "selfie",
        ProofOfAddress = "proof-of-address",
    }
}

/// An uploaded file, as the rules see it (the bytes stay in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub id: String,
    pub kind: FileKind,
    /// Sniffed from the bytes: `image/jpeg`, `image/png` or `application/pdf`.
    pub content_type: String,
    pub size: u64,
}

/// The identity document as read from it (by the end user, an SDK, or an operator): the visual
/// zone and the machine-readable zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GovernmentIdDocument {
    /// `pp` passport, `dl` driver licence, `id` identity card, `rp` residence permit, `visa`.
    pub id_class: String,
    /// ISO 3166-1 alpha-2 country that issued the document.
    pub issuing_country: String,
    pub document_number: String,
    pub name_first: String,
    pub name_last: String,
    #[serde(default, with = "crate::time_format::serde_opt_date")]
    pub birthdate: Option<Date>,
    #[serde(default, with = "crate::time_format::serde_opt_date")]
    pub expiration_date: Option<Date>,
    /// The machine-readable zone, one string per line (2 lines TD2/TD3, 3 lines TD1); empty when
    /// the document has none (most driver licences).
    #[serde(default)]
    pub mrz: Vec<String>,
}

/// A proof-of-address document as read from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AddressDocument {
    /// e.g. `utility-bill`, `bank-statement`, `tax-letter`, `government-letter`.
    pub document_kind: String,
    #[serde(default, with = "crate::time_format::serde_opt_date")]
    pub issue_date: Option<Date>,
    pub address_street_1: String,
    #[serde(default)]
    pub address_street_2: Option<String>,
    pub address_city: String,
    #[serde(default)]
    pub address_subdivision: Option<String>,
    pub address_postal_code: String,
    pub address_country_code: String,
}

/// Everything an inquiry holds that verifications and requirements look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subject {
    pub fields: BTreeMap<String, FieldValue>,
    pub government_id: Option<GovernmentIdDocument>,
    pub proof_of_address: Option<AddressDocument>,
    pub files: Vec<FileRef>,
    /// Field keys confirmed by a code (`phone-number`, `email-address`).
    pub confirmed: Vec<String>,
}

impl Subject {
    /// The string value of a field, when set.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.fields.get(key)? {
            FieldValue::String(s) | FieldValue::Choices(s) => Some(s.as_str()),
            _ => None,
        }
    }

    pub fn date(&self, key: &str) -> Option<Date> {
        match self.fields.get(key)? {
            FieldValue::Date(d) => Some(*d),
            _ => None,
        }
    }

    pub fn has_file(&self, kind: FileKind) -> bool {
        self.files.iter().any(|f| f.kind == kind)
    }
}
