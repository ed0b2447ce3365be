//! Connect preview (DESIGN §2.5): what redeeming a share token under a destination template
//! would do, computed from what the source holds without copying or changing anything.
//!
//! It mirrors the redemption job: [`copied_subject`] is what the copy step would put in a fresh
//! inquiry of the template (declared fields after the mappings; the documents and files the
//! template's verifications need; no confirmations), and [`preview`] tells which requirements
//! that satisfies ([`requirements::satisfied`]), which passed source verifications the template
//! would reuse (within `reuse.max-age-days`), which verifications would run (those not reused
//! whose inputs are present, as the pipeline runs them), what stays missing
//! ([`requirements::missing`]), and the predicted [`Outcome`].

use std::collections::BTreeMap;

use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use crate::{
    decision,
    field::{self, FieldValue},
    requirements::{self, Requirement},
    template::{TemplateDefinition, VerificationType},
    verification::{FileKind, Subject},
};

string_enum! {
    /// What redemption under the template is predicted to end in.
    pub enum Outcome ("preview outcome", all: slice) {
        /// Nothing is missing and every verification would be reused: the inquiry completes.
        WillComplete = "will-complete",
        /// Requirements are missing: the destination inquiry would stay `pending` (stuck) until
        /// the end user supplies them.
        WillBeStuck = "will-be-stuck",
        /// Nothing is missing, but verifications would run, and their result is not known in
        /// advance.
        MayFail = "may-fail",
    }
}

/// A verification the source inquiry passed, and when it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassedVerification {
    pub verification_type: VerificationType,
    pub completed_at: OffsetDateTime,
}

/// The prediction. Requirements carry keys and labels only, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Preview {
    /// Requirements of the template the copied data satisfies, in requirement order.
    pub satisfied: Vec<Requirement>,
    /// Verification types the template would reuse from the source, in template order.
    pub reused: Vec<VerificationType>,
    /// Verification types that would run, in template order.
    pub to_run: Vec<VerificationType>,
    /// Requirements still missing after the copy, in requirement order.
    pub missing: Vec<Requirement>,
    pub outcome: Outcome,
}

/// The files a verification of `kind` reads, which the copy brings along.
fn files_for(kind: VerificationType) -> &'static [FileKind] {
    match kind {
        VerificationType::GovernmentId => {
            &[FileKind::GovernmentIdFront, FileKind::GovernmentIdBack]
        }
        VerificationType::Document => &[FileKind::ProofOfAddress],
        VerificationType::Selfie => &[FileKind::Selfie],
        _ => &[],
    }
}

/// One field value the copy writes.
#[derive(Debug, Clone, PartialEq)]
pub struct CopiedField {
    /// The destination field.
    pub key: String,
    pub value: FieldValue,
    /// The source field it came from, when a mapping named one other than `key`.
    pub mapped_from: Option<String>,
}

/// The field values a copy into an inquiry of `definition` writes: each declared field takes
/// the source field of the same name, or of the name `mappings` (destination key → source key)
/// gives it, when the value satisfies the destination's schema ([`field::conform`]); a value
/// that does not is left out, so the field counts as missing.
pub fn copied_fields(
    definition: &TemplateDefinition,
    source: &BTreeMap<String, FieldValue>,
    mappings: &BTreeMap<String, String>,
    today: Date,
) -> Vec<CopiedField> {
    definition
        .field_schemas
        .iter()
        .filter_map(|schema| {
            let key = schema.key.as_str();
            let mapped = mappings.get(key).filter(|source_key| *source_key != key);
            let source_key = mapped.map_or(key, String::as_str);
            let value = field::conform(schema, source.get(source_key)?, today)?;
            Some(CopiedField {
                key: key.to_owned(),
                value,
                mapped_from: mapped.cloned(),
            })
        })
        .collect()
}

/// What a fresh inquiry of `definition` would hold after the copy from `source`: each declared
/// field from the source field of that name, or of the name `mappings` (destination key →
/// source key) gives it; the government-ID and proof-of-address details and files when a
/// verification of the template needs them (the latest file of each kind); no confirmation
/// (confirmations are not copied).
pub fn copied_subject(
    definition: &TemplateDefinition,
    source: &Subject,
    mappings: &BTreeMap<String, String>,
    today: Date,
) -> Subject {
    let mut subject = Subject::default();
    for copied in copied_fields(definition, &source.fields, mappings, today) {
        subject.fields.insert(copied.key, copied.value);
    }
    for config in &definition.verifications {
        match config.verification_type {
            VerificationType::GovernmentId => {
                subject.government_id.clone_from(&source.government_id);
            }
            VerificationType::Document => {
                subject
                    .proof_of_address
                    .clone_from(&source.proof_of_address);
            }
            _ => {}
        }
        for kind in files_for(config.verification_type) {
            if subject.has_file(*kind) {
                continue;
            }
            if let Some(file) = source.files.iter().rev().find(|f| f.kind == *kind) {
                subject.files.push(file.clone());
            }
        }
    }
    subject
}

/// The prediction for `subject` (see [`copied_subject`]) under `definition`, with the source's
/// passed verifications, at `now`.
///
/// A verification is reused when the template allows it (`reuse`) and the source passed one of
/// that type within `max-age-days` of `now`; otherwise it runs when its inputs are present.
/// Outcome: anything missing → [`Outcome::WillBeStuck`]; else any verification to run →
/// [`Outcome::MayFail`]; else [`Outcome::WillComplete`].
pub fn preview(
    definition: &TemplateDefinition,
    subject: &Subject,
    passed: &[PassedVerification],
    now: OffsetDateTime,
) -> Preview {
    let (satisfied, missing): (Vec<_>, Vec<_>) = requirements::requirements(definition)
        .into_iter()
        .partition(|r| requirements::satisfied(r, subject));
    let mut reused = Vec::new();
    let mut to_run = Vec::new();
    for config in &definition.verifications {
        let kind = config.verification_type;
        let reusable = config.reuse.is_some_and(|reuse| {
            let window = now - Duration::days(i64::from(reuse.max_age_days));
            passed
                .iter()
                .any(|p| p.verification_type == kind && p.completed_at >= window)
        });
        if reusable {
            reused.push(kind);
        } else if decision::inputs_present(config, subject) {
            to_run.push(kind);
        }
    }
    let outcome = if !missing.is_empty() {
        Outcome::WillBeStuck
    } else if !to_run.is_empty() {
        Outcome::MayFail
    } else {
        Outcome::WillComplete
    };
    Preview {
        satisfied,
        reused,
        to_run,
        missing,
        outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::{AddressDocument, FileRef};
    use serde_json::{Value, json};

    fn def(value: Value) -> TemplateDefinition {
        TemplateDefinition::parse(&value).expect("valid template")
    }

    fn text(s: &str) -> FieldValue {
        FieldValue::String(s.to_owned())
    }

    fn source() -> Subject {
        let mut subject = Subject::default();
        for (k, v) in [
            ("email-address", "ada@example.com"),
            ("name-first", "Ada"),
            ("name-last", "Lovelace"),
            ("favorite-color", "blue"),
        ] {
            subject.fields.insert(k.to_owned(), text(v));
        }
        subject
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn today() -> Date {
        now().date()
    }

    fn passed_email(days_ago: i64) -> PassedVerification {
        PassedVerification {
            verification_type: VerificationType::EmailAddress,
            completed_at: now() - Duration::days(days_ago),
        }
    }

    fn email_template(reuse: Option<u32>) -> TemplateDefinition {
        let mut verification = json!({"type": "email-address", "required": true});
        if let Some(days) = reuse {
            verification["reuse"] = json!({"max-age-days": days});
        }
        def(json!({
            "field-schemas": [
                {"key": "email-address", "type": "string"},
                {"key": "name-first", "type": "string", "config": {"required": true}},
            ],
            "verifications": [verification],
        }))
    }

    fn keys(requirements: &[Requirement]) -> Vec<&str> {
        requirements.iter().map(|r| r.key.as_str()).collect()
    }

    #[test]
    fn copies_only_declared_fields_after_mappings() {
        let definition = def(json!({"field-schemas": [
            {"key": "email-address", "type": "string"},
            {"key": "given-name", "type": "string"},
        ]}));
        let mappings = BTreeMap::from([("given-name".to_owned(), "name-first".to_owned())]);
        let subject = copied_subject(&definition, &source(), &mappings, today());
        let copied: Vec<&str> = subject.fields.keys().map(String::as_str).collect();
        assert_eq!(copied, ["email-address", "given-name"]);
        assert_eq!(subject.text("given-name"), Some("Ada"));
        assert!(subject.confirmed.is_empty());
    }

    #[test]
    fn values_the_destination_schema_refuses_are_not_copied() {
        let definition = def(json!({"field-schemas": [
            {"key": "email-address", "type": "string"},
            {"key": "name-first", "type": "date"},
            {"key": "name-last", "type": "string", "config": {"max-char-length": 3}},
            {"key": "favorite-color", "type": "choices", "config": {"options": ["red", "blue"]}},
        ]}));
        let mut source = source();
        source.fields.insert(
            "email-address".to_owned(),
            FieldValue::Number(serde_json::Number::from(7)),
        );
        let copied = copied_fields(&definition, &source.fields, &BTreeMap::new(), today());
        let keys: Vec<&str> = copied.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["favorite-color"], "{copied:?}");
        assert_eq!(copied[0].value, FieldValue::Choices("blue".to_owned()));
        assert_eq!(copied[0].mapped_from, None);
    }

    #[test]
    fn a_mapping_records_its_source_field() {
        let definition = def(json!({"field-schemas": [
            {"key": "given-name", "type": "string"},
            {"key": "name-last", "type": "string"},
        ]}));
        let mappings = BTreeMap::from([
            ("given-name".to_owned(), "name-first".to_owned()),
            ("name-last".to_owned(), "name-last".to_owned()),
        ]);
        let copied = copied_fields(&definition, &source().fields, &mappings, today());
        assert_eq!(copied[0].mapped_from.as_deref(), Some("name-first"));
        assert_eq!(
            copied[1].mapped_from, None,
            "a mapping onto itself is no mapping"
        );
    }

    #[test]
    fn documents_and_files_only_for_the_templates_verifications() {
        let mut source = source();
        source.proof_of_address = Some(AddressDocument::default());
        for (id, kind) in [
            ("fil_old", FileKind::ProofOfAddress),
            ("fil_selfie", FileKind::Selfie),
            ("fil_new", FileKind::ProofOfAddress),
        ] {
            source.files.push(FileRef {
                id: id.to_owned(),
                kind,
                content_type: "application/pdf".to_owned(),
                size: 1,
            });
        }
        let without = copied_subject(&email_template(None), &source, &BTreeMap::new(), today());
        assert!(without.proof_of_address.is_none() && without.files.is_empty());
        let definition = def(json!({
            "field-schemas": [
                {"key": "address-street-1", "type": "string"},
                {"key": "address-city", "type": "string"},
                {"key": "address-postal-code", "type": "string"},
                {"key": "address-country-code", "type": "string"},
            ],
            "verifications": [{"type": "document"}],
        }));
        let with = copied_subject(&definition, &source, &BTreeMap::new(), today());
        assert!(with.proof_of_address.is_some());
        let files: Vec<&str> = with.files.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(files, ["fil_new"], "the latest of the kind, no selfie");
    }

    #[test]
    fn fresh_reuse_completes_stale_reuse_runs() {
        let definition = email_template(Some(30));
        let subject = copied_subject(&definition, &source(), &BTreeMap::new(), today());
        let fresh = preview(&definition, &subject, &[passed_email(3)], now());
        assert_eq!(fresh.reused, [VerificationType::EmailAddress]);
        assert!(fresh.to_run.is_empty() && fresh.missing.is_empty());
        assert_eq!(keys(&fresh.satisfied), ["name-first", "email-address"]);
        assert_eq!(fresh.outcome, Outcome::WillComplete);

        let stale = preview(&definition, &subject, &[passed_email(31)], now());
        assert!(stale.reused.is_empty());
        assert_eq!(stale.to_run, [VerificationType::EmailAddress]);
        assert_eq!(stale.outcome, Outcome::MayFail);

        let not_allowed = preview(&email_template(None), &subject, &[passed_email(0)], now());
        assert_eq!(not_allowed.to_run, [VerificationType::EmailAddress]);
        assert_eq!(not_allowed.outcome, Outcome::MayFail);
    }

    #[test]
    fn missing_requirements_make_it_stuck() {
        let definition = def(json!({
            "field-schemas": [
                {"key": "email-address", "type": "string"},
                {"key": "address-street-1", "type": "string"},
                {"key": "address-city", "type": "string"},
                {"key": "address-postal-code", "type": "string"},
                {"key": "address-country-code", "type": "string"},
            ],
            "verifications": [{"type": "email-address"}, {"type": "document"}],
        }));
        let subject = copied_subject(&definition, &source(), &BTreeMap::new(), today());
        let p = preview(&definition, &subject, &[], now());
        assert_eq!(p.outcome, Outcome::WillBeStuck);
        assert_eq!(keys(&p.satisfied), ["email-address"]);
        assert_eq!(
            keys(&p.missing),
            [
                "proof-of-address",
                "proof-of-address",
                "address-street-1",
                "address-city",
                "address-postal-code",
                "address-country-code",
            ]
        );
        // The email verification can run; the document one lacks its inputs.
        assert_eq!(p.to_run, [VerificationType::EmailAddress]);
    }

    #[test]
    fn nothing_to_verify_and_nothing_missing_completes() {
        let definition = def(json!({"field-schemas": [{"key": "name-first", "type": "string"}]}));
        let subject = copied_subject(&definition, &source(), &BTreeMap::new(), today());
        let p = preview(&definition, &subject, &[], now());
        assert_eq!(p.outcome, Outcome::WillComplete);
        assert!(p.satisfied.is_empty() && p.missing.is_empty());
    }

    #[test]
    fn serializes_keys_and_labels_only() {
        let definition = email_template(Some(30));
        let subject = copied_subject(&definition, &source(), &BTreeMap::new(), today());
        let p = preview(&definition, &subject, &[passed_email(1)], now());
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains("\"to-run\":[]"), "{text}");
        assert!(text.contains("\"outcome\":\"will-complete\""), "{text}");
        for secret in ["ada@example.com", "Ada", "Lovelace"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
