//! Connect preview (DESIGN §2.5): what redeeming a share token under a destination template
//! would do, told from the *structure* of what the source holds, without copying or changing
//! anything — and the rule by which a reused verification keeps counting.
//!
//! The preview sees the source only as a [`SourceShape`]: which fields hold a value, which
//! documents and files exist, which verification types passed. No value, and no property of a
//! value (its date, its length, whether it is one of the template's options, how old a
//! verification is), reaches its answer, so no sequence of templates can learn a value from it.
//! [`preview`] puts a stand-in of each field the copy would bring into a fresh inquiry of the
//! template, and tells which requirements that satisfies ([`requirements::satisfied`]), which
//! verifications the template would reuse, which would run (those not reused whose inputs are
//! present, as the pipeline runs them), what stays missing, and the predicted [`Outcome`].
//!
//! The redemption job copies real values with [`copied_fields`], which re-validates each value
//! against the destination's schema: a value the schema refuses is not copied (the field is then
//! missing on the redeemed inquiry), and a passed source verification older than the template's
//! `reuse.max-age-days` runs again instead of being reused. The preview cannot foresee either
//! without revealing something about the value, and does not try.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::Date;

use crate::{
    decision,
    field::{self, FieldType, FieldValue},
    requirements::{self, Requirement},
    template::{TemplateDefinition, VerificationType},
    verification::{AddressDocument, FileKind, FileRef, GovernmentIdDocument, Subject},
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

/// What the source inquiry holds, as structure only: the preview's whole view of the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceShape {
    /// The fields that hold a value ([`requirements::has_value`]); file references, which a
    /// copy never sets as field values, are left out.
    pub fields: BTreeSet<String>,
    /// The class (`pp`, `dl`, …) of the government ID when the source holds one: it decides
    /// whether the document has a back side to ask for, as it does at redemption.
    pub government_id_class: Option<String>,
    pub proof_of_address: bool,
    pub files: BTreeSet<FileKind>,
    /// The verification types the source passed.
    pub passed: BTreeSet<VerificationType>,
}

impl SourceShape {
    /// The shape of `subject`, whose passed verifications are of the types in `passed`.
    pub fn of(subject: &Subject, passed: impl IntoIterator<Item = VerificationType>) -> Self {
        Self {
            fields: subject
                .fields
                .iter()
                .filter(|(_, value)| {
                    !matches!(value, FieldValue::File(_)) && requirements::has_value(value)
                })
                .map(|(key, _)| key.clone())
                .collect(),
            government_id_class: subject
                .government_id
                .as_ref()
                .map(|document| document.id_class.clone()),
            proof_of_address: subject.proof_of_address.is_some(),
            files: subject.files.iter().map(|file| file.kind).collect(),
            passed: passed.into_iter().collect(),
        }
    }
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

/// The files a verification of `kind` needs, which the copy brings along.
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

/// The source field that the destination field `key` is copied from: the one `mappings`
/// (destination key → source key) names, or the field of the same name.
fn source_key<'a>(key: &'a str, mappings: &'a BTreeMap<String, String>) -> (&'a str, bool) {
    match mappings.get(key).filter(|source_key| *source_key != key) {
        Some(mapped) => (mapped.as_str(), true),
        None => (key, false),
    }
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
            let (source_key, mapped) = source_key(key, mappings);
            let value = field::conform(schema, source.get(source_key)?, today)?;
            Some(CopiedField {
                key: key.to_owned(),
                value,
                mapped_from: mapped.then(|| source_key.to_owned()),
            })
        })
        .collect()
}

/// A value of `field_type` that holds something, standing in for a value the preview does not
/// see; `None` for the file types, which a copy never sets as a field value.
fn stand_in(field_type: FieldType) -> Option<FieldValue> {
    Some(match field_type {
        FieldType::String => FieldValue::String("…".to_owned()),
        FieldType::Choices => FieldValue::Choices("…".to_owned()),
        FieldType::MultiChoices => FieldValue::MultiChoices(vec!["…".to_owned()]),
        FieldType::Date => FieldValue::Date(Date::MIN),
        FieldType::Number => FieldValue::Number(0.into()),
        FieldType::Boolean => FieldValue::Boolean(true),
        FieldType::Json => FieldValue::Json(json!({})),
        FieldType::GovernmentId | FieldType::Selfie | FieldType::Document => return None,
    })
}

/// What a fresh inquiry of `definition` would hold after the copy from a source of `shape`,
/// with stand-ins for values: each declared field whose source field (after `mappings`) holds
/// a value; the government-ID and proof-of-address details and files when a verification of
/// the template needs them; no confirmation (confirmations are not copied).
fn copied_structure(
    definition: &TemplateDefinition,
    shape: &SourceShape,
    mappings: &BTreeMap<String, String>,
) -> Subject {
    let mut subject = Subject::default();
    for schema in &definition.field_schemas {
        let key = schema.key.as_str();
        let (source_key, _) = source_key(key, mappings);
        if shape.fields.contains(source_key)
            && let Some(value) = stand_in(schema.field_type)
        {
            subject.fields.insert(key.to_owned(), value);
        }
    }
    for config in &definition.verifications {
        match config.verification_type {
            VerificationType::GovernmentId => {
                subject.government_id =
                    shape
                        .government_id_class
                        .as_ref()
                        .map(|id_class| GovernmentIdDocument {
                            id_class: id_class.clone(),
                            ..GovernmentIdDocument::default()
                        });
            }
            VerificationType::Document if shape.proof_of_address => {
                subject.proof_of_address = Some(AddressDocument::default());
            }
            _ => {}
        }
        for kind in files_for(config.verification_type) {
            if shape.files.contains(kind) && !subject.has_file(*kind) {
                subject.files.push(FileRef {
                    id: String::new(),
                    kind: *kind,
                    content_type: String::new(),
                    size: 0,
                });
            }
        }
    }
    subject
}

/// The prediction for redeeming a source of `shape` into a fresh inquiry of `definition`, with
/// `mappings` (destination key → source key).
///
/// A verification is reused when the template allows it (`reuse`) and the source passed one of
/// that type (whether it is still within `max-age-days` is decided at redemption); otherwise it
/// runs when its inputs are present. Outcome: anything missing → [`Outcome::WillBeStuck`]; else
/// any verification to run → [`Outcome::MayFail`]; else [`Outcome::WillComplete`].
pub fn preview(
    definition: &TemplateDefinition,
    shape: &SourceShape,
    mappings: &BTreeMap<String, String>,
) -> Preview {
    let subject = copied_structure(definition, shape, mappings);
    let (satisfied, missing): (Vec<_>, Vec<_>) = requirements::requirements(definition)
        .into_iter()
        .partition(|r| requirements::satisfied(r, &subject));
    let mut reused = Vec::new();
    let mut to_run = Vec::new();
    for config in &definition.verifications {
        let kind = config.verification_type;
        if config.reuse.is_some() && shape.passed.contains(&kind) {
            reused.push(kind);
        } else if decision::inputs_present(config, &subject) {
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

/// The files a verification of `kind` reads (a selfie is compared with the ID's front).
fn files_read_by(kind: VerificationType) -> &'static [FileKind] {
    match kind {
        VerificationType::Selfie => &[FileKind::Selfie, FileKind::GovernmentIdFront],
        other => files_for(other),
    }
}

/// A digest of what a verification of `kind` reads in `subject`: the fields
/// ([`requirements::fields_read_by`]), its document and the ids of its files. A verification
/// reused by a redemption keeps counting for the inquiry's later submissions (the end user
/// finishing a stuck inquiry) only while this is unchanged since the copy: once its inputs
/// changed, it vouches for nothing and runs again.
pub fn reuse_basis(kind: VerificationType, subject: &Subject) -> String {
    let fields: BTreeMap<&str, Option<&FieldValue>> = requirements::fields_read_by(kind)
        .iter()
        .map(|key| (*key, subject.fields.get(*key)))
        .collect();
    let document = match kind {
        VerificationType::GovernmentId => json!(subject.government_id),
        VerificationType::Document => json!(subject.proof_of_address),
        _ => Value::Null,
    };
    let mut files: Vec<(&str, &str)> = subject
        .files
        .iter()
        .filter(|file| files_read_by(kind).contains(&file.kind))
        .map(|file| (file.kind.as_str(), file.id.as_str()))
        .collect();
    files.sort_unstable();
    let basis = json!({"fields": fields, "document": document, "files": files});
    hex::encode(Sha256::digest(basis.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn today() -> Date {
        time::macros::date!(2027 - 01 - 15)
    }

    fn file(id: &str, kind: FileKind) -> FileRef {
        FileRef {
            id: id.to_owned(),
            kind,
            content_type: "application/pdf".to_owned(),
            size: 1,
        }
    }

    fn shape(subject: &Subject, passed: &[VerificationType]) -> SourceShape {
        SourceShape::of(subject, passed.iter().copied())
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
    fn the_shape_holds_names_and_kinds_never_values() {
        let mut subject = source();
        subject.fields.insert("blank".to_owned(), text("  "));
        subject
            .fields
            .insert("upload".to_owned(), FieldValue::File("fil_1".to_owned()));
        subject.government_id = Some(GovernmentIdDocument {
            id_class: "pp".to_owned(),
            document_number: "L898902C3".to_owned(),
            ..GovernmentIdDocument::default()
        });
        subject.files.push(file("fil_2", FileKind::Selfie));
        let shape = shape(&subject, &[VerificationType::EmailAddress]);
        let fields: Vec<&str> = shape.fields.iter().map(String::as_str).collect();
        assert_eq!(
            fields,
            ["email-address", "favorite-color", "name-first", "name-last"]
        );
        assert_eq!(shape.government_id_class.as_deref(), Some("pp"));
        assert!(!shape.proof_of_address);
        assert_eq!(shape.files, BTreeSet::from([FileKind::Selfie]));
        assert_eq!(
            shape.passed,
            BTreeSet::from([VerificationType::EmailAddress])
        );
    }

    #[test]
    fn copies_only_declared_fields_after_mappings() {
        let definition = def(json!({"field-schemas": [
            {"key": "email-address", "type": "string"},
            {"key": "given-name", "type": "string"},
        ]}));
        let mappings = BTreeMap::from([("given-name".to_owned(), "name-first".to_owned())]);
        let copied = copied_fields(&definition, &source().fields, &mappings, today());
        let keys: Vec<&str> = copied.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["email-address", "given-name"]);
        assert_eq!(copied[1].value, text("Ada"));
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

    /// The preview's answer is the same whatever the destination's constraints on a value:
    /// a birthdate bracketed by a template's min and max, or outside them, is "satisfied" alike.
    #[test]
    fn constraints_on_values_do_not_change_the_answer() {
        let mut subject = source();
        subject.fields.insert(
            "birthdate".to_owned(),
            FieldValue::Date(time::macros::date!(1990 - 06 - 15)),
        );
        let shape = shape(&subject, &[]);
        let with = |config: Value| {
            def(json!({"field-schemas": [
                {"key": "birthdate", "type": "date", "config": config},
                {"key": "name-last", "type": "string", "config": {"required": true}},
                {"key": "favorite-color", "type": "choices", "config": {"options": ["red"]}},
            ]}))
        };
        let unconstrained = preview(&with(json!({"required": true})), &shape, &BTreeMap::new());
        assert_eq!(unconstrained.outcome, Outcome::WillComplete);
        for (config, copied) in [
            (json!({"required": true, "min-date": "1990-06-16"}), false),
            (json!({"required": true, "max-date": "1990-06-14"}), false),
            (
                json!({"required": true, "min-date": "1990-06-15", "max-date": "1990-06-15"}),
                true,
            ),
        ] {
            let definition = with(config.clone());
            assert_eq!(
                copied_fields(&definition, &subject.fields, &BTreeMap::new(), today())
                    .iter()
                    .any(|c| c.key == "birthdate"),
                copied,
                "the copy itself still refuses what the schema refuses: {config}"
            );
            assert_eq!(
                preview(&definition, &shape, &BTreeMap::new()),
                unconstrained,
                "{config}"
            );
        }
    }

    #[test]
    fn documents_and_files_come_with_the_verification_that_needs_them() {
        let mut source = source();
        source.proof_of_address = Some(AddressDocument::default());
        source.files.push(file("fil_poa", FileKind::ProofOfAddress));
        source.files.push(file("fil_selfie", FileKind::Selfie));
        let shape = shape(&source, &[]);
        let address_fields = json!([
            {"key": "address-street-1", "type": "string"},
            {"key": "address-city", "type": "string"},
            {"key": "address-postal-code", "type": "string"},
            {"key": "address-country-code", "type": "string"},
        ]);
        let with = preview(
            &def(json!({"field-schemas": address_fields,
                "verifications": [{"type": "document", "required": true}]})),
            &shape,
            &BTreeMap::new(),
        );
        assert_eq!(
            keys(&with.satisfied),
            ["proof-of-address", "proof-of-address"]
        );
        assert_eq!(with.outcome, Outcome::WillBeStuck, "the address is missing");
        assert_eq!(with.to_run, [VerificationType::Document]);
    }

    #[test]
    fn the_back_of_a_passport_is_not_asked_for() {
        let template = def(
            json!({"verifications": [{"type": "government-id", "required": true}],
            "field-schemas": [{"key": "name-first", "type": "string"},
                              {"key": "name-last", "type": "string"}]}),
        );
        let mut source = source();
        source
            .files
            .push(file("fil_front", FileKind::GovernmentIdFront));
        for (class, missing) in [("pp", vec![]), ("dl", vec!["government-id-back"])] {
            source.government_id = Some(GovernmentIdDocument {
                id_class: class.to_owned(),
                ..GovernmentIdDocument::default()
            });
            let p = preview(&template, &shape(&source, &[]), &BTreeMap::new());
            assert_eq!(keys(&p.missing), missing, "{class}");
        }
    }

    #[test]
    fn reuse_when_allowed_and_passed_whatever_its_age() {
        let subject = source();
        let passed = shape(&subject, &[VerificationType::EmailAddress]);
        for days in [1, 30, 3650] {
            let p = preview(&email_template(Some(days)), &passed, &BTreeMap::new());
            assert_eq!(p.reused, [VerificationType::EmailAddress]);
            assert!(p.to_run.is_empty() && p.missing.is_empty());
            assert_eq!(keys(&p.satisfied), ["name-first", "email-address"]);
            assert_eq!(p.outcome, Outcome::WillComplete);
        }
        let not_passed = preview(
            &email_template(Some(30)),
            &shape(&subject, &[]),
            &BTreeMap::new(),
        );
        assert_eq!(not_passed.to_run, [VerificationType::EmailAddress]);
        assert_eq!(not_passed.outcome, Outcome::MayFail);
        let not_allowed = preview(&email_template(None), &passed, &BTreeMap::new());
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
        let p = preview(&definition, &shape(&source(), &[]), &BTreeMap::new());
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
    fn mappings_name_the_source_field() {
        let definition = def(json!({"field-schemas": [
            {"key": "given-name", "type": "string", "config": {"required": true}},
        ]}));
        let shape = shape(&source(), &[]);
        let unmapped = preview(&definition, &shape, &BTreeMap::new());
        assert_eq!(keys(&unmapped.missing), ["given-name"]);
        let mappings = BTreeMap::from([("given-name".to_owned(), "name-first".to_owned())]);
        let mapped = preview(&definition, &shape, &mappings);
        assert_eq!(keys(&mapped.satisfied), ["given-name"]);
        assert_eq!(mapped.outcome, Outcome::WillComplete);
    }

    #[test]
    fn nothing_to_verify_and_nothing_missing_completes() {
        let definition = def(json!({"field-schemas": [{"key": "name-first", "type": "string"}]}));
        let p = preview(&definition, &shape(&source(), &[]), &BTreeMap::new());
        assert_eq!(p.outcome, Outcome::WillComplete);
        assert!(p.satisfied.is_empty() && p.missing.is_empty());
    }

    #[test]
    fn serializes_keys_and_labels_only() {
        let p = preview(
            &email_template(Some(30)),
            &shape(&source(), &[VerificationType::EmailAddress]),
            &BTreeMap::new(),
        );
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains("\"to-run\":[]"), "{text}");
        assert!(text.contains("\"outcome\":\"will-complete\""), "{text}");
        for secret in ["ada@example.com", "Ada", "Lovelace"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn the_reuse_basis_changes_with_the_inputs_only() {
        let subject = source();
        let email = VerificationType::EmailAddress;
        let basis = reuse_basis(email, &subject);
        assert_eq!(basis.len(), 64);
        assert!(!basis.contains("ada"), "a digest, not the value");
        let mut other_field = subject.clone();
        other_field
            .fields
            .insert("favorite-color".to_owned(), text("red"));
        assert_eq!(reuse_basis(email, &other_field), basis);
        let mut changed = subject.clone();
        changed
            .fields
            .insert("email-address".to_owned(), text("eve@example.com"));
        assert_ne!(reuse_basis(email, &changed), basis);

        let document = VerificationType::Document;
        let mut with_file = subject.clone();
        with_file
            .files
            .push(file("fil_1", FileKind::ProofOfAddress));
        let before = reuse_basis(document, &with_file);
        with_file.files.push(file("fil_selfie", FileKind::Selfie));
        assert_eq!(reuse_basis(document, &with_file), before);
        with_file
            .files
            .push(file("fil_2", FileKind::ProofOfAddress));
        assert_ne!(reuse_basis(document, &with_file), before);
    }
}
