//! The form of the missing requirements: which inputs to ask for, reading and validating what
//! the browser sent (before anything is saved), and the inputs to render back.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use idshare_domain::{
    field::{FieldSchema, FieldType, validate_fields},
    files::{allowed, sniff},
    requirements::{self, Requirement, RequirementKind},
    template::TemplateDefinition,
    time_format::parse_date,
    verification::{
        AddressDocument, FileKind, GovernmentIdDocument, document::PROOF_OF_ADDRESS_KINDS,
    },
};
use serde_json::{Map, Number, Value};
use time::Date;

use super::pages::{Group, Input};

/// An uploaded file as the browser sent it.
#[derive(Debug)]
pub(super) struct Upload {
    pub filename: String,
    pub bytes: Bytes,
}

/// Everything the browser sent, by form field name.
#[derive(Debug, Default)]
pub(super) struct Entered {
    pub texts: HashMap<String, Vec<String>>,
    pub files: HashMap<String, Upload>,
}

impl Entered {
    fn values(&self, name: &str) -> &[String] {
        self.texts.get(name).map_or(&[], Vec::as_slice)
    }

    /// The first value, trimmed ("" when absent).
    fn text(&self, name: &str) -> &str {
        self.values(name).first().map_or("", |v| v.trim())
    }
}

/// Errors by input name.
pub(super) type Errors = BTreeMap<String, String>;

/// What the form asks for: the missing requirements it can collect, and those it cannot.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub fields: Vec<(Requirement, Option<FieldSchema>)>,
    pub government_id: bool,
    pub proof_of_address: bool,
    /// Missing files, and whether each is required (the back of an ID is offered, optional,
    /// while the document's class is not known yet).
    pub files: Vec<(FileKind, bool)>,
    /// Requirements that cannot be completed in the flow yet (confirmations, file-typed fields).
    pub notices: Vec<String>,
}

impl Plan {
    pub fn new(definition: &TemplateDefinition, missing: &[Requirement]) -> Self {
        let mut plan = Self::default();
        for requirement in missing {
            match requirement.kind {
                RequirementKind::Field => {
                    let schema = definition.field_schema(&requirement.key).cloned();
                    let uploaded_type = schema.as_ref().is_some_and(|s| {
                        matches!(
                            s.field_type,
                            FieldType::GovernmentId | FieldType::Selfie | FieldType::Document
                        )
                    });
                    if uploaded_type {
                        plan.notices.push(format!(
                            "{}: this can't be completed here yet; the organization that sent \
                             you this link will tell you how to provide it.",
                            requirement.label
                        ));
                    } else {
                        plan.fields.push((requirement.clone(), schema));
                    }
                }
                RequirementKind::Document => match requirement.key.as_str() {
                    requirements::GOVERNMENT_ID => plan.government_id = true,
                    requirements::PROOF_OF_ADDRESS => plan.proof_of_address = true,
                    _ => plan.notices.push(format!(
                        "{}: this can't be completed here yet.",
                        requirement.label
                    )),
                },
                RequirementKind::File => {
                    if let Ok(kind) = requirement.key.parse::<FileKind>() {
                        plan.files.push((kind, true));
                    }
                }
                RequirementKind::Confirmation => plan.notices.push(format!(
                    "{}: confirming by code can't be completed here yet; the organization that \
                     sent you this link will contact you about it.",
                    requirement.label
                )),
            }
        }
        // While the ID's class is unknown the back is not listed as missing; offer it anyway
        // (optional) so that a two-sided document needs no second round.
        let back_possible = requirements::requirements(definition).iter().any(|r| {
            r.kind == RequirementKind::File && r.key == FileKind::GovernmentIdBack.as_str()
        });
        if plan.government_id
            && back_possible
            && !plan
                .files
                .iter()
                .any(|(k, _)| *k == FileKind::GovernmentIdBack)
        {
            let at = plan
                .files
                .iter()
                .position(|(k, _)| *k == FileKind::GovernmentIdFront)
                .map_or(0, |i| i + 1);
            plan.files.insert(at, (FileKind::GovernmentIdBack, false));
        }
        plan
    }

    /// Whether there is anything to enter.
    pub fn has_inputs(&self) -> bool {
        !self.fields.is_empty()
            || self.government_id
            || self.proof_of_address
            || !self.files.is_empty()
    }
}

/// What a valid form carries, ready for the services.
#[derive(Debug, Default)]
pub(super) struct Collected {
    pub fields: Map<String, Value>,
    pub government_id: Option<GovernmentIdDocument>,
    pub proof_of_address: Option<AddressDocument>,
    pub files: Vec<(FileKind, Bytes)>,
}

pub(super) fn field_name(key: &str) -> String {
    format!("field.{key}")
}

pub(super) fn file_name(kind: FileKind) -> String {
    format!("file.{kind}")
}

const ID_CLASSES: &[(&str, &str)] = &[
    ("pp", "Passport"),
    ("dl", "Driver's license"),
    ("id", "National identity card"),
    ("rp", "Residence permit"),
    ("visa", "Visa"),
];

fn document_kind_label(kind: &str) -> &str {
    match kind {
        "utility-bill" => "Utility bill",
        "bank-statement" => "Bank statement",
        "tax-letter" => "Tax letter",
        "government-letter" => "Government letter",
        "lease-agreement" => "Lease agreement",
        other => other,
    }
}

/// Reads and validates the form against the plan. Nothing is saved here; the result is either
/// everything to save or the errors to show.
pub(super) fn collect(
    plan: &Plan,
    definition: &TemplateDefinition,
    entered: &Entered,
    today: Date,
    file_limit: usize,
) -> Result<Collected, Errors> {
    let mut errors = Errors::new();
    let mut out = Collected::default();

    // Fields: only the missing ones are read, so the flow never overwrites what the
    // organization already set.
    let mut labels = HashMap::new();
    for (requirement, schema) in &plan.fields {
        let key = requirement.key.as_str();
        let name = field_name(key);
        labels.insert(key.to_owned(), requirement.label.clone());
        let text = entered.text(&name);
        let value = match schema.as_ref().map(|s| s.field_type) {
            Some(FieldType::Boolean) => Value::Bool(text == "true"),
            Some(FieldType::MultiChoices) => {
                // Checkboxes send one value each; free text separates values with commas.
                let free_text = schema.as_ref().is_some_and(|s| s.config.options.is_empty());
                let chosen: Vec<Value> = entered
                    .values(&name)
                    .iter()
                    .flat_map(|v| {
                        if free_text {
                            v.split(',').collect()
                        } else {
                            vec![v.as_str()]
                        }
                    })
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(v.to_owned()))
                    .collect();
                if chosen.is_empty() {
                    continue;
                }
                Value::Array(chosen)
            }
            _ if text.is_empty() => continue,
            Some(FieldType::Number) => match parse_number(text) {
                Some(n) => Value::Number(n),
                None => {
                    errors.insert(name, format!("{} must be a number.", requirement.label));
                    continue;
                }
            },
            Some(FieldType::Json) => match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) => {
                    errors.insert(name, format!("{} must be valid JSON.", requirement.label));
                    continue;
                }
            },
            _ => Value::String(text.to_owned()),
        };
        out.fields.insert(key.to_owned(), value);
    }
    if let Err(field_errors) = validate_fields(&definition.field_schemas, &out.fields, today) {
        for e in field_errors {
            let label = labels.get(&e.key).cloned().unwrap_or_else(|| e.key.clone());
            errors
                .entry(field_name(&e.key))
                .or_insert_with(|| format!("{label} {}.", e.message));
        }
    }

    if plan.government_id {
        out.government_id = government_id(entered, &mut errors);
    }
    if plan.proof_of_address {
        out.proof_of_address = proof_of_address(entered, &mut errors);
    }

    for (kind, _) in &plan.files {
        let name = file_name(*kind);
        let Some(upload) = entered.files.get(&name) else {
            continue;
        };
        if upload.bytes.is_empty() {
            // A file input left empty sends no file name and no bytes: skipped.
            if !upload.filename.is_empty() {
                errors.insert(name, "The selected file is empty.".to_owned());
            }
            continue;
        }
        if upload.bytes.len() > file_limit {
            errors.insert(
                name,
                format!(
                    "The file is too large: at most {} MB.",
                    file_limit / (1024 * 1024)
                ),
            );
            continue;
        }
        let accepted = if *kind == FileKind::ProofOfAddress {
            "a JPEG or PNG image or a PDF document"
        } else {
            "a JPEG or PNG image"
        };
        match sniff(&upload.bytes) {
            Some(content_type) if allowed(*kind, content_type) => {
                out.files.push((*kind, upload.bytes.clone()));
            }
            _ => {
                errors.insert(
                    name,
                    format!(
                        "This file is not {accepted}. Its content is checked, not its name: \
                         choose a photo or scan in one of these formats."
                    ),
                );
            }
        }
    }

    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn parse_number(text: &str) -> Option<Number> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Number::from(i));
    }
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

fn optional_date(entered: &Entered, name: &str, what: &str, errors: &mut Errors) -> Option<Date> {
    let text = entered.text(name);
    if text.is_empty() {
        return None;
    }
    let date = parse_date(text);
    if date.is_none() {
        errors.insert(
            name.to_owned(),
            format!("{what} must be a real date in the form YYYY-MM-DD."),
        );
    }
    date
}

fn country(entered: &Entered, name: &str, errors: &mut Errors) -> String {
    let text = entered.text(name);
    let well_formed = text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic());
    if !text.is_empty() && !well_formed {
        errors.insert(
            name.to_owned(),
            "Enter a two-letter country code, such as US or FR.".to_owned(),
        );
    }
    text.to_ascii_uppercase()
}

/// The government ID details; `None` when the fieldset was left blank or is invalid.
fn government_id(entered: &Entered, errors: &mut Errors) -> Option<GovernmentIdDocument> {
    const NAMES: &[&str] = &[
        "gid.id-class",
        "gid.issuing-country",
        "gid.document-number",
        "gid.name-first",
        "gid.name-last",
        "gid.birthdate",
        "gid.expiration-date",
        "gid.mrz",
    ];
    if NAMES.iter().all(|n| entered.text(n).is_empty()) {
        return None;
    }
    let before = errors.len();
    let id_class = entered.text("gid.id-class").to_owned();
    if !ID_CLASSES.iter().any(|(v, _)| *v == id_class) {
        errors.insert(
            "gid.id-class".to_owned(),
            "Choose the type of document.".to_owned(),
        );
    }
    let issuing_country = country(entered, "gid.issuing-country", errors);
    let birthdate = optional_date(entered, "gid.birthdate", "The date of birth", errors);
    let expiration_date = optional_date(
        entered,
        "gid.expiration-date",
        "The expiration date",
        errors,
    );
    let mrz: Vec<String> = entered
        .text("gid.mrz")
        .lines()
        .map(|line| {
            line.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase()
        })
        .filter(|line| !line.is_empty())
        .collect();
    if !mrz.is_empty() && !(2..=3).contains(&mrz.len()) {
        errors.insert(
            "gid.mrz".to_owned(),
            "The machine-readable zone has 2 or 3 lines; enter each on its own line.".to_owned(),
        );
    }
    let document_number = entered.text("gid.document-number").to_owned();
    if document_number.is_empty() && mrz.is_empty() {
        errors.insert(
            "gid.document-number".to_owned(),
            "Enter the document number (or the machine-readable lines below).".to_owned(),
        );
    }
    (errors.len() == before).then(|| GovernmentIdDocument {
        id_class,
        issuing_country,
        document_number,
        name_first: entered.text("gid.name-first").to_owned(),
        name_last: entered.text("gid.name-last").to_owned(),
        birthdate,
        expiration_date,
        mrz,
    })
}

/// The proof-of-address details; `None` when the fieldset was left blank or is invalid.
fn proof_of_address(entered: &Entered, errors: &mut Errors) -> Option<AddressDocument> {
    const REQUIRED: &[(&str, &str)] = &[
        ("poa.address-street-1", "Enter the street address."),
        ("poa.address-city", "Enter the city."),
        ("poa.address-postal-code", "Enter the postal code."),
        ("poa.address-country-code", "Enter the country code."),
    ];
    const OPTIONAL: &[&str] = &[
        "poa.document-kind",
        "poa.issue-date",
        "poa.address-street-2",
        "poa.address-subdivision",
    ];
    if REQUIRED
        .iter()
        .map(|(n, _)| *n)
        .chain(OPTIONAL.iter().copied())
        .all(|n| entered.text(n).is_empty())
    {
        return None;
    }
    let before = errors.len();
    let document_kind = entered.text("poa.document-kind").to_owned();
    if !PROOF_OF_ADDRESS_KINDS.contains(&document_kind.as_str()) {
        errors.insert(
            "poa.document-kind".to_owned(),
            "Choose the type of document.".to_owned(),
        );
    }
    let issue_date = optional_date(entered, "poa.issue-date", "The issue date", errors);
    if entered.text("poa.issue-date").is_empty() {
        errors.insert(
            "poa.issue-date".to_owned(),
            "Enter the date the document was issued.".to_owned(),
        );
    }
    for (name, message) in REQUIRED {
        if entered.text(name).is_empty() {
            errors.insert((*name).to_owned(), (*message).to_owned());
        }
    }
    let address_country_code = country(entered, "poa.address-country-code", errors);
    let optional = |name: &str| Some(entered.text(name).to_owned()).filter(|s| !s.is_empty());
    (errors.len() == before).then(|| AddressDocument {
        document_kind,
        issue_date,
        address_street_1: entered.text("poa.address-street-1").to_owned(),
        address_street_2: optional("poa.address-street-2"),
        address_city: entered.text("poa.address-city").to_owned(),
        address_subdivision: optional("poa.address-subdivision"),
        address_postal_code: entered.text("poa.address-postal-code").to_owned(),
        address_country_code,
    })
}

fn autocomplete(key: &str) -> Option<&'static str> {
    Some(match key {
        "name-first" => "given-name",
        "name-middle" => "additional-name",
        "name-last" => "family-name",
        "birthdate" => "bday",
        "email-address" => "email",
        "phone-number" => "tel",
        "address-street-1" => "address-line1",
        "address-street-2" => "address-line2",
        "address-city" => "address-level2",
        "address-subdivision" => "address-level1",
        "address-postal-code" => "postal-code",
        "address-country-code" => "country",
        _ => return None,
    })
}

fn field_input(requirement: &Requirement, schema: Option<&FieldSchema>) -> Input {
    let key = requirement.key.as_str();
    let name = field_name(key);
    let label = requirement.label.clone();
    let field_type = schema.map_or(FieldType::String, |s| s.field_type);
    let options = schema.map(|s| s.config.options.clone()).unwrap_or_default();
    let input = match field_type {
        FieldType::Date => Input::new(name, label, "date").hint("For example 1990-05-17."),
        FieldType::Number => Input::new(name, label, "number"),
        FieldType::Boolean => Input::new(name, label, "checkbox").optional(),
        FieldType::Choices if !options.is_empty() => Input::new(name, label, "select")
            .choices(options.iter().map(|o| (o.as_str(), o.as_str()))),
        FieldType::MultiChoices if !options.is_empty() => Input::new(name, label, "checkboxes")
            .choices(options.iter().map(|o| (o.as_str(), o.as_str()))),
        FieldType::MultiChoices => {
            Input::new(name, label, "text").hint("Separate several values with commas.")
        }
        FieldType::Json => Input::new(name, label, "textarea").hint("A JSON value."),
        _ => match key {
            "email-address" => Input::new(name, label, "email"),
            "phone-number" => Input::new(name, label, "tel")
                .hint("In international format, such as +14155550123."),
            "address-country-code" => {
                Input::new(name, label, "text").hint("Two letters, such as US or FR.")
            }
            _ => Input::new(name, label, "text"),
        },
    };
    input.autocomplete(autocomplete(key))
}

fn file_input(kind: FileKind, required: bool) -> Input {
    let label = match kind {
        FileKind::GovernmentIdFront => "Photo of the front of your ID",
        FileKind::GovernmentIdBack => "Photo of the back of your ID",
        FileKind::Selfie => "A photo of your face (selfie)",
        FileKind::ProofOfAddress => "The document (photo or scan)",
    };
    let mut input = Input::new(file_name(kind), label.to_owned(), "file");
    input.accept = if kind == FileKind::ProofOfAddress {
        "image/jpeg,image/png,application/pdf"
    } else {
        "image/jpeg,image/png"
    };
    input = input.hint(if kind == FileKind::ProofOfAddress {
        "A JPEG or PNG image, or a PDF."
    } else if kind == FileKind::GovernmentIdBack {
        "A JPEG or PNG image. Not needed for a passport or a visa."
    } else {
        "A JPEG or PNG image."
    });
    if required { input } else { input.optional() }
}

fn government_id_inputs() -> Vec<Input> {
    vec![
        Input::new("gid.id-class".into(), "Type of document".into(), "select")
            .choices(ID_CLASSES.iter().copied()),
        Input::new(
            "gid.issuing-country".into(),
            "Issuing country".into(),
            "text",
        )
        .hint("Two letters, such as US or FR.")
        .optional(),
        Input::new(
            "gid.document-number".into(),
            "Document number".into(),
            "text",
        )
        .optional()
        .autocomplete(Some("off")),
        Input::new(
            "gid.name-first".into(),
            "First name(s), as printed".into(),
            "text",
        )
        .optional(),
        Input::new(
            "gid.name-last".into(),
            "Last name, as printed".into(),
            "text",
        )
        .optional(),
        Input::new(
            "gid.birthdate".into(),
            "Date of birth, as printed".into(),
            "date",
        )
        .optional(),
        Input::new(
            "gid.expiration-date".into(),
            "Expiration date".into(),
            "date",
        )
        .optional(),
        Input::new(
            "gid.mrz".into(),
            "Machine-readable lines".into(),
            "textarea",
        )
        .hint(
            "The 2 or 3 lines of letters, digits and < signs at the bottom of a passport or on \
                 the back of an ID card, one line per row. Leave empty if your document has none.",
        )
        .optional(),
    ]
}

fn proof_of_address_inputs() -> Vec<Input> {
    vec![
        Input::new(
            "poa.document-kind".into(),
            "Type of document".into(),
            "select",
        )
        .choices(
            PROOF_OF_ADDRESS_KINDS
                .iter()
                .map(|k| (*k, document_kind_label(k))),
        ),
        Input::new("poa.issue-date".into(), "Date of issue".into(), "date")
            .hint("The date printed on the document."),
        Input::new(
            "poa.address-street-1".into(),
            "Street address".into(),
            "text",
        )
        .autocomplete(Some("address-line1")),
        Input::new(
            "poa.address-street-2".into(),
            "Address line 2".into(),
            "text",
        )
        .optional()
        .autocomplete(Some("address-line2")),
        Input::new("poa.address-city".into(), "City".into(), "text")
            .autocomplete(Some("address-level2")),
        Input::new(
            "poa.address-subdivision".into(),
            "State, province or region".into(),
            "text",
        )
        .optional()
        .autocomplete(Some("address-level1")),
        Input::new(
            "poa.address-postal-code".into(),
            "Postal code".into(),
            "text",
        )
        .autocomplete(Some("postal-code")),
        Input::new("poa.address-country-code".into(), "Country".into(), "text")
            .hint("Two letters, such as US or FR.")
            .autocomplete(Some("country")),
    ]
}

/// The inputs of the plan in form order, filled with what was entered and the errors.
pub(super) fn groups(plan: &Plan, entered: &Entered, errors: &Errors) -> Vec<Group> {
    let mut groups = vec![];
    let finish = |inputs: Vec<Input>| -> Vec<Input> {
        inputs
            .into_iter()
            .map(|input| {
                let values = entered.values(&input.name).to_vec();
                let error = errors.get(&input.name);
                input.finish(&values, error)
            })
            .collect()
    };
    let files = |kinds: &[FileKind]| -> Vec<Input> {
        plan.files
            .iter()
            .filter(|(k, _)| kinds.contains(k))
            .map(|(k, required)| file_input(*k, *required))
            .collect()
    };
    if !plan.fields.is_empty() {
        groups.push(Group {
            legend: Some("Your details".to_owned()),
            intro: None,
            inputs: finish(
                plan.fields
                    .iter()
                    .map(|(r, s)| field_input(r, s.as_ref()))
                    .collect(),
            ),
        });
    }
    let id_files = files(&[FileKind::GovernmentIdFront, FileKind::GovernmentIdBack]);
    if plan.government_id || !id_files.is_empty() {
        let mut inputs = if plan.government_id {
            government_id_inputs()
        } else {
            vec![]
        };
        inputs.extend(id_files);
        groups.push(Group {
            legend: Some("Your government ID".to_owned()),
            intro: plan.government_id.then(|| {
                "Copy the details exactly as they are printed on your passport, driver's license, \
                 ID card, residence permit or visa."
                    .to_owned()
            }),
            inputs: finish(inputs),
        });
    }
    let address_files = files(&[FileKind::ProofOfAddress]);
    if plan.proof_of_address || !address_files.is_empty() {
        let mut inputs = if plan.proof_of_address {
            proof_of_address_inputs()
        } else {
            vec![]
        };
        inputs.extend(address_files);
        groups.push(Group {
            legend: Some("Proof of address".to_owned()),
            intro: Some(
                "A recent utility bill, bank statement, tax or government letter, or lease \
                 agreement showing your name and address."
                    .to_owned(),
            ),
            inputs: finish(inputs),
        });
    }
    let selfie = files(&[FileKind::Selfie]);
    if !selfie.is_empty() {
        groups.push(Group {
            legend: Some("Selfie".to_owned()),
            intro: Some(
                "A clear photo of your face, looking at the camera, in good light.".to_owned(),
            ),
            inputs: finish(selfie),
        });
    }
    groups
}
