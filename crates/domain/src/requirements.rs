//! Requirements: what an inquiry must hold before its template's verifications and reports can
//! run — the required fields, and for each required verification (and each report) the inputs it
//! needs (DESIGN §1.2).
//!
//! [`missing`] is the one answer to "which requirements does this inquiry not satisfy yet". The
//! pipeline uses it to decide that an inquiry stays `pending` (and exposes the result as the
//! inquiry attribute `missing-requirements`), the hosted flow to show only the steps still to
//! do, and Connect to detect stuck redeemed inquiries and to preview alignment. Do not
//! re-derive requirements anywhere else.

use serde::Serialize;
use serde_json::Value;

use crate::field::FieldValue;
use crate::template::{TemplateDefinition, VerificationConfig, VerificationType};
use crate::verification::{FileKind, Subject};

string_enum! {
    /// What kind of input a requirement asks for.
    pub enum RequirementKind ("requirement kind", all: slice) {
        /// An inquiry field (`key` is the field key).
        Field = "field",
        /// An uploaded file (`key` is a [`FileKind`]).
        File = "file",
        /// The details read from a document (`key` is `government-id` or `proof-of-address`).
        Document = "document",
        /// A field confirmed by a code (`key` is the field key).
        Confirmation = "confirmation",
    }
}

/// One input an inquiry needs. Serialized as `{"kind", "key", "label", "for-verification"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Requirement {
    pub kind: RequirementKind,
    pub key: String,
    /// For people: the field schema's label, or a readable name.
    pub label: String,
    /// The verification that needs it; `None` for a field the template itself marks required
    /// and for the inputs of reports.
    pub for_verification: Option<VerificationType>,
}

/// `Document` key of a government-id verification's document details.
pub const GOVERNMENT_ID: &str = "government-id";
/// `Document` key of a document verification's proof-of-address details.
pub const PROOF_OF_ADDRESS: &str = "proof-of-address";

/// Id classes whose documents have no back side to photograph.
const SINGLE_SIDED_ID_CLASSES: &[&str] = &["pp", "visa"];

/// Every requirement of a template version, in order: required fields (in schema order), then
/// the inputs of each *required* verification (in template order), then the inputs of the
/// reports; each `(kind, key)` once, where it first appears.
///
/// Inputs per verification: `government-id` — document `government-id`, file
/// `government-id-front`, file `government-id-back` (not listed when `allowed-id-classes` only
/// has passports and visas; otherwise [`missing`] reports it only once the submitted document's
/// class is known to have a back); `selfie` — file `selfie`; `document` — document and file
/// `proof-of-address`; `phone-number` / `email-address` — that field, and its confirmation when
/// `config.confirmation` is true; `database` — fields `name-first`, `name-last`, `birthdate`.
/// Reports (watchlist, politically-exposed-person) need `name-first` and `name-last`.
/// The inquiry fields a government-ID verification compares the document with.
pub const GOVERNMENT_ID_FIELDS: [&str; 2] = ["name-first", "name-last"];
/// The inquiry fields a proof-of-address verification compares the document with.
pub const PROOF_OF_ADDRESS_FIELDS: [&str; 4] = [
    "address-street-1",
    "address-city",
    "address-postal-code",
    "address-country-code",
];
/// The inquiry fields an identity-database verification looks up.
pub const DATABASE_FIELDS: [&str; 3] = ["name-first", "name-last", "birthdate"];
/// The inquiry fields a screening report needs.
pub const REPORT_FIELDS: [&str; 2] = ["name-first", "name-last"];

/// The inquiry fields a verification of `kind` reads (they must be fields of its template).
pub fn fields_read_by(kind: VerificationType) -> &'static [&'static str] {
    match kind {
        VerificationType::GovernmentId => &GOVERNMENT_ID_FIELDS,
        VerificationType::Document => &PROOF_OF_ADDRESS_FIELDS,
        VerificationType::Database => &DATABASE_FIELDS,
        VerificationType::PhoneNumber => &["phone-number"],
        VerificationType::EmailAddress => &["email-address"],
        VerificationType::Selfie => &[],
    }
}

pub fn requirements(definition: &TemplateDefinition) -> Vec<Requirement> {
    let mut out = Requirements {
        definition,
        list: Vec::new(),
    };
    for schema in &definition.field_schemas {
        if schema.config.required {
            out.field(schema.key.as_str(), None);
        }
    }
    for verification in definition.verifications.iter().filter(|v| v.required) {
        let kind = verification.verification_type;
        let of = Some(kind);
        match kind {
            VerificationType::GovernmentId => {
                out.push(
                    RequirementKind::Document,
                    GOVERNMENT_ID,
                    "Government ID details",
                    of,
                );
                out.file(FileKind::GovernmentIdFront, of);
                if !single_sided_only(verification) {
                    out.file(FileKind::GovernmentIdBack, of);
                }
                // The document's name is compared with the inquiry's.
                for key in GOVERNMENT_ID_FIELDS {
                    out.field(key, of);
                }
            }
            VerificationType::Selfie => out.file(FileKind::Selfie, of),
            VerificationType::Document => {
                out.push(
                    RequirementKind::Document,
                    PROOF_OF_ADDRESS,
                    "Proof of address details",
                    of,
                );
                out.file(FileKind::ProofOfAddress, of);
                // The document's address is compared with the inquiry's.
                for key in PROOF_OF_ADDRESS_FIELDS {
                    out.field(key, of);
                }
            }
            VerificationType::PhoneNumber | VerificationType::EmailAddress => {
                let key = kind.as_str();
                out.field(key, of);
                if verification.config.get("confirmation") == Some(&Value::Bool(true)) {
                    let label = format!("{} confirmation code", out.field_label(key));
                    out.push(RequirementKind::Confirmation, key, &label, of);
                }
            }
            VerificationType::Database => {
                for key in DATABASE_FIELDS {
                    out.field(key, of);
                }
            }
        }
    }
    if !definition.reports.is_empty() {
        for key in REPORT_FIELDS {
            out.field(key, None);
        }
    }
    out.list
}

/// The requirements of `definition` that `subject` does not satisfy (see [`satisfied`]), in the
/// order of [`requirements`]. Empty means the inquiry is complete and can be decided.
///
/// This is the single function behind the pipeline's `pending` decision and the
/// `missing-requirements` attribute, the hosted flow's remaining steps, and Connect's stuck
/// detection and preview.
pub fn missing(definition: &TemplateDefinition, subject: &Subject) -> Vec<Requirement> {
    requirements(definition)
        .into_iter()
        .filter(|requirement| !satisfied(requirement, subject))
        .collect()
}

/// Whether `subject` satisfies one requirement: a field is set to a non-blank value; a file of
/// that kind is attached; the document's details are present; the field is confirmed. The back
/// of a government ID is satisfied while no document details are known, and when the document
/// is a passport or visa.
pub fn satisfied(requirement: &Requirement, subject: &Subject) -> bool {
    let key = requirement.key.as_str();
    match requirement.kind {
        RequirementKind::Field => subject.fields.get(key).is_some_and(has_value),
        RequirementKind::File => match key.parse::<FileKind>() {
            Ok(FileKind::GovernmentIdBack) => {
                subject.has_file(FileKind::GovernmentIdBack)
                    || subject.government_id.as_ref().is_none_or(|document| {
                        SINGLE_SIDED_ID_CLASSES
                            .contains(&document.id_class.trim().to_ascii_lowercase().as_str())
                    })
            }
            Ok(kind) => subject.has_file(kind),
            Err(_) => false,
        },
        RequirementKind::Document => match key {
            GOVERNMENT_ID => subject.government_id.is_some(),
            PROOF_OF_ADDRESS => subject.proof_of_address.is_some(),
            _ => false,
        },
        RequirementKind::Confirmation => subject.confirmed.iter().any(|k| k == key),
    }
}

/// Whether a field value holds something: not a blank string, not an empty list, not null.
pub fn has_value(value: &FieldValue) -> bool {
    match value {
        FieldValue::String(s) | FieldValue::Choices(s) | FieldValue::File(s) => {
            !s.trim().is_empty()
        }
        FieldValue::MultiChoices(items) => !items.is_empty(),
        FieldValue::Json(v) => !v.is_null(),
        FieldValue::Date(_) | FieldValue::Number(_) | FieldValue::Boolean(_) => true,
    }
}

/// Whether the verification only accepts documents without a back side.
fn single_sided_only(verification: &VerificationConfig) -> bool {
    verification
        .config
        .get("allowed-id-classes")
        .and_then(Value::as_array)
        .is_some_and(|classes| {
            !classes.is_empty()
                && classes.iter().all(|c| {
                    c.as_str()
                        .is_some_and(|c| SINGLE_SIDED_ID_CLASSES.contains(&c))
                })
        })
}

struct Requirements<'a> {
    definition: &'a TemplateDefinition,
    list: Vec<Requirement>,
}

impl Requirements<'_> {
    fn push(
        &mut self,
        kind: RequirementKind,
        key: &str,
        label: &str,
        for_verification: Option<VerificationType>,
    ) {
        if !self.list.iter().any(|r| r.kind == kind && r.key == key) {
            self.list.push(Requirement {
                kind,
                key: key.to_owned(),
                label: label.to_owned(),
                for_verification,
            });
        }
    }

    fn field(&mut self, key: &str, for_verification: Option<VerificationType>) {
        let label = self.field_label(key);
        self.push(RequirementKind::Field, key, &label, for_verification);
    }

    fn file(&mut self, kind: FileKind, for_verification: Option<VerificationType>) {
        self.push(
            RequirementKind::File,
            kind.as_str(),
            file_label(kind),
            for_verification,
        );
    }

    /// The schema's label when the template gives one, else a readable name for the key.
    fn field_label(&self, key: &str) -> String {
        self.definition
            .field_schema(key)
            .and_then(|schema| schema.label.as_deref())
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .map_or_else(|| humanize(key), str::to_owned)
    }
}

fn file_label(kind: FileKind) -> &'static str {
    match kind {
        FileKind::GovernmentIdFront => "Photo of the front of the government ID",
        FileKind::GovernmentIdBack => "Photo of the back of the government ID",
        FileKind::Selfie => "Selfie",
        FileKind::ProofOfAddress => "Proof of address document",
    }
}

/// A readable label for a field key: the standard keys' usual names, otherwise the key's words
/// (`favorite-color` → `Favorite color`).
pub fn humanize(key: &str) -> String {
    let standard = match key {
        "name-first" => Some("First name"),
        "name-middle" => Some("Middle name"),
        "name-last" => Some("Last name"),
        "birthdate" => Some("Date of birth"),
        "address-street-1" => Some("Street address"),
        "address-street-2" => Some("Street address (line 2)"),
        "address-city" => Some("City"),
        "address-subdivision" => Some("State or region"),
        "address-postal-code" => Some("Postal code"),
        "address-country-code" => Some("Country"),
        "email-address" => Some("Email address"),
        "phone-number" => Some("Phone number"),
        "identification-number" => Some("Identification number"),
        _ => None,
    };
    if let Some(label) = standard {
        return label.to_owned();
    }
    let words = key.replace('-', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::{AddressDocument, FileRef, GovernmentIdDocument};
    use proptest::prelude::*;
    use serde_json::json;

    /// Parses a definition, first declaring (as optional strings) any field its verifications
    /// read that it does not declare, as the template rules require.
    fn def(mut value: Value) -> TemplateDefinition {
        let mut declared: Vec<String> = value["field-schemas"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["key"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let kinds: Vec<String> = value["verifications"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v["type"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for kind in kinds {
            let kind: VerificationType = kind.parse().unwrap();
            for key in fields_read_by(kind) {
                if !declared.iter().any(|d| d == key) {
                    declared.push((*key).to_owned());
                    value["field-schemas"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"key": key, "type": "string"}));
                }
            }
        }
        TemplateDefinition::parse(&value).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn keys(list: &[Requirement]) -> Vec<String> {
        list.iter()
            .map(|r| format!("{}:{}", r.kind, r.key))
            .collect()
    }

    fn file(kind: FileKind) -> FileRef {
        FileRef {
            id: format!("fil_{kind}"),
            kind,
            content_type: "image/png".to_owned(),
            size: 1,
        }
    }

    fn id_document(class: &str) -> GovernmentIdDocument {
        GovernmentIdDocument {
            id_class: class.to_owned(),
            ..GovernmentIdDocument::default()
        }
    }

    fn full_definition() -> TemplateDefinition {
        def(json!({
            "field-schemas": [
                {"key": "name-first", "type": "string", "config": {"required": true}},
                {"key": "name-last", "type": "string", "label": "Surname"},
                {"key": "favorite-color", "type": "string", "config": {"required": true}},
                {"key": "phone-number", "type": "string", "label": "Mobile"},
                {"key": "email-address", "type": "string"},
                {"key": "birthdate", "type": "date"}
            ],
            "verifications": [
                {"type": "government-id"},
                {"type": "selfie", "required": false},
                {"type": "document"},
                {"type": "phone-number", "config": {"confirmation": true}},
                {"type": "email-address", "config": {"confirmation": false}},
                {"type": "database"}
            ],
            "reports": [{"type": "watchlist"}, {"type": "politically-exposed-person"}]
        }))
    }

    #[test]
    fn derives_requirements_in_order_without_duplicates() {
        let list = requirements(&full_definition());
        assert_eq!(
            keys(&list),
            [
                "field:name-first",
                "field:favorite-color",
                "document:government-id",
                "file:government-id-front",
                "file:government-id-back",
                "field:name-last",
                "document:proof-of-address",
                "file:proof-of-address",
                "field:address-street-1",
                "field:address-city",
                "field:address-postal-code",
                "field:address-country-code",
                "field:phone-number",
                "confirmation:phone-number",
                "field:email-address",
                "field:birthdate",
            ]
        );
        let by_key = |k: &str| {
            list.iter()
                .find(|r| format!("{}:{}", r.kind, r.key) == k)
                .unwrap()
        };
        assert_eq!(by_key("field:name-first").for_verification, None);
        assert_eq!(by_key("field:favorite-color").label, "Favorite color");
        assert_eq!(by_key("field:name-last").label, "Surname");
        assert_eq!(
            by_key("field:name-last").for_verification,
            Some(VerificationType::GovernmentId),
            "the first verification that reads it"
        );
        assert_eq!(by_key("field:phone-number").label, "Mobile");
        assert_eq!(
            by_key("confirmation:phone-number").label,
            "Mobile confirmation code"
        );
        assert_eq!(by_key("field:birthdate").label, "Date of birth");
        assert_eq!(
            by_key("document:government-id").label,
            "Government ID details"
        );
    }

    #[test]
    fn serializes_kebab_case() {
        let list = requirements(&full_definition());
        assert_eq!(
            serde_json::to_value(&list[3]).unwrap(),
            json!({
                "kind": "file",
                "key": "government-id-front",
                "label": "Photo of the front of the government ID",
                "for-verification": "government-id"
            })
        );
        assert_eq!(
            serde_json::to_value(&list[0]).unwrap()["for-verification"],
            Value::Null
        );
        assert_eq!(
            "confirmation".parse::<RequirementKind>(),
            Ok(RequirementKind::Confirmation)
        );
        assert!("photo".parse::<RequirementKind>().is_err());
    }

    #[test]
    fn optional_verifications_need_nothing_and_reports_need_names() {
        let d = def(json!({
            "field-schemas": [],
            "verifications": [{"type": "selfie", "required": false}],
            "reports": [{"type": "watchlist"}]
        }));
        let list = requirements(&d);
        assert_eq!(keys(&list), ["field:name-first", "field:name-last"]);
        assert!(list.iter().all(|r| r.for_verification.is_none()));
        assert!(requirements(&def(json!({"field-schemas": []}))).is_empty());
    }

    #[test]
    fn passport_only_templates_need_no_back() {
        let d = def(json!({
            "field-schemas": [],
            "verifications": [
                {"type": "government-id", "config": {"allowed-id-classes": ["pp", "visa"]}}
            ]
        }));
        assert_eq!(
            keys(&requirements(&d)),
            [
                "document:government-id",
                "file:government-id-front",
                "field:name-first",
                "field:name-last"
            ]
        );
        let d = def(json!({
            "field-schemas": [],
            "verifications": [
                {"type": "government-id", "config": {"allowed-id-classes": ["pp", "dl"]}}
            ]
        }));
        assert!(keys(&requirements(&d)).contains(&"file:government-id-back".to_owned()));
    }

    #[test]
    fn the_back_is_missing_only_for_two_sided_documents() {
        let d = def(json!({"field-schemas": [], "verifications": [{"type": "government-id"}]}));
        let mut s = Subject::default();
        assert_eq!(
            keys(&missing(&d, &s)),
            [
                "document:government-id",
                "file:government-id-front",
                "field:name-first",
                "field:name-last"
            ]
        );
        for key in GOVERNMENT_ID_FIELDS {
            s.fields
                .insert(key.to_owned(), FieldValue::String("Ada".to_owned()));
        }
        s.files.push(file(FileKind::GovernmentIdFront));
        s.government_id = Some(id_document("pp"));
        assert!(missing(&d, &s).is_empty());
        s.government_id = Some(id_document("dl"));
        assert_eq!(keys(&missing(&d, &s)), ["file:government-id-back"]);
        s.files.push(file(FileKind::GovernmentIdBack));
        assert!(missing(&d, &s).is_empty());
    }

    #[test]
    fn missing_reports_what_the_subject_lacks() {
        let d = full_definition();
        let mut s = Subject::default();
        let mut expected = requirements(&d);
        // The back waits until the document's class is known.
        expected.retain(|r| r.key != "government-id-back");
        assert_eq!(missing(&d, &s), expected);

        for (key, value) in [
            ("name-first", FieldValue::String("Jane".to_owned())),
            ("favorite-color", FieldValue::String("   ".to_owned())),
            ("name-last", FieldValue::String("Doe".to_owned())),
            (
                "birthdate",
                FieldValue::Date(time::macros::date!(1990 - 01 - 01)),
            ),
            (
                "phone-number",
                FieldValue::String("+14155552671".to_owned()),
            ),
        ] {
            s.fields.insert(key.to_owned(), value);
        }
        s.files.push(file(FileKind::ProofOfAddress));
        s.proof_of_address = Some(AddressDocument::default());
        s.confirmed.push("email-address".to_owned());
        assert_eq!(
            keys(&missing(&d, &s)),
            [
                "field:favorite-color",
                "document:government-id",
                "file:government-id-front",
                "field:address-street-1",
                "field:address-city",
                "field:address-postal-code",
                "field:address-country-code",
                "confirmation:phone-number",
                "field:email-address",
            ]
        );
    }

    #[test]
    fn field_values_count_when_not_blank() {
        assert!(has_value(&FieldValue::Boolean(false)));
        assert!(has_value(&FieldValue::Json(json!({}))));
        assert!(!has_value(&FieldValue::Json(Value::Null)));
        assert!(!has_value(&FieldValue::MultiChoices(vec![])));
        assert!(has_value(&FieldValue::MultiChoices(vec!["a".to_owned()])));
        assert!(!has_value(&FieldValue::Choices(String::new())));
        assert!(!has_value(&FieldValue::File(" ".to_owned())));
        assert_eq!(humanize("address-street-1"), "Street address");
        assert_eq!(humanize("x"), "X");
    }

    const FIELD_POOL: &[&str] = &[
        "name-first",
        "name-last",
        "birthdate",
        "phone-number",
        "email-address",
        "address-city",
        "favorite-color",
    ];
    const CLASS_POOL: &[&str] = &["pp", "visa", "dl", "id", "rp"];

    prop_compose! {
        fn arb_definition()(
            fields in proptest::collection::vec((any::<bool>(), any::<bool>()), FIELD_POOL.len()),
            verifications in proptest::collection::vec(
                (any::<bool>(), any::<bool>(), any::<bool>()),
                VerificationType::ALL.len(),
            ),
            classes in proptest::sample::subsequence(CLASS_POOL.to_vec(), 0..=CLASS_POOL.len()),
            reports in 0usize..=2,
        ) -> TemplateDefinition {
            let schemas: Vec<Value> = FIELD_POOL
                .iter()
                .zip(&fields)
                .filter(|(_, (present, _))| *present)
                .map(|(key, (_, required))| {
                    json!({"key": key, "type": if *key == "birthdate" { "date" } else { "string" },
                           "config": {"required": required}})
                })
                .collect();
            let verifications: Vec<Value> = VerificationType::ALL
                .iter()
                .zip(&verifications)
                .filter(|(_, (present, _, _))| *present)
                .map(|(kind, (_, required, flag))| {
                    let config = match kind {
                        VerificationType::PhoneNumber | VerificationType::EmailAddress => {
                            json!({"confirmation": flag})
                        }
                        VerificationType::GovernmentId if *flag => {
                            json!({"allowed-id-classes": classes})
                        }
                        _ => json!({}),
                    };
                    json!({"type": kind.as_str(), "required": required, "config": config})
                })
                .collect();
            let reports: Vec<Value> = ["watchlist", "politically-exposed-person"][..reports]
                .iter()
                .map(|t| json!({"type": t}))
                .collect();
            def(json!({
                "field-schemas": schemas,
                "verifications": verifications,
                "reports": reports
            }))
        }
    }

    prop_compose! {
        fn arb_subject()(
            fields in proptest::sample::subsequence(FIELD_POOL.to_vec(), 0..=FIELD_POOL.len()),
            blank in any::<bool>(),
            files in proptest::sample::subsequence(FileKind::ALL.to_vec(), 0..=FileKind::ALL.len()),
            class in proptest::option::of(proptest::sample::select(CLASS_POOL.to_vec())),
            address in any::<bool>(),
            confirmed in proptest::sample::subsequence(
                vec!["phone-number", "email-address"], 0..=2),
        ) -> Subject {
            let mut s = Subject::default();
            for key in fields {
                let value = if blank { " " } else { "x" };
                s.fields.insert(key.to_owned(), FieldValue::String(value.to_owned()));
            }
            s.files = files.into_iter().map(file).collect();
            s.government_id = class.map(id_document);
            s.proof_of_address = address.then(AddressDocument::default);
            s.confirmed = confirmed.into_iter().map(str::to_owned).collect();
            s
        }
    }

    proptest! {
        #[test]
        fn missing_is_a_subset_and_filling_everything_completes(
            d in arb_definition(),
            mut s in arb_subject(),
            class in proptest::sample::select(CLASS_POOL.to_vec()),
        ) {
            let all = requirements(&d);
            let mut seen = std::collections::HashSet::new();
            for r in &all {
                prop_assert!(seen.insert((r.kind, r.key.clone())), "duplicate {:?}", r);
            }
            let lacking = missing(&d, &s);
            for r in &lacking {
                prop_assert!(all.contains(r), "{:?} is not a requirement", r);
            }
            // Order is preserved.
            let positions: Vec<usize> = lacking
                .iter()
                .filter_map(|r| all.iter().position(|a| a == r))
                .collect();
            prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));

            // Provide everything listed.
            if s.government_id.is_none() {
                s.government_id = Some(id_document(class));
            }
            for r in &all {
                match r.kind {
                    RequirementKind::Field => {
                        s.fields.insert(r.key.clone(), FieldValue::String("value".to_owned()));
                    }
                    RequirementKind::File => s.files.push(file(r.key.parse().unwrap())),
                    RequirementKind::Document if r.key == PROOF_OF_ADDRESS => {
                        s.proof_of_address = Some(AddressDocument::default());
                    }
                    RequirementKind::Document => {}
                    RequirementKind::Confirmation => s.confirmed.push(r.key.clone()),
                }
            }
            prop_assert_eq!(missing(&d, &s), vec![]);
        }
    }
}
