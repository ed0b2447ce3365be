//! Inquiry fields: schemas declared by templates, and validation of submitted values.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value, json};
use time::Date;

use crate::time_format::{format_date, parse_date};

/// Keys every template may use with their standard meaning (and format rules).
pub const STANDARD_FIELD_KEYS: &[&str] = &[
    "name-first",
    "name-middle",
    "name-last",
    "birthdate",
    "address-street-1",
    "address-street-2",
    "address-city",
    "address-subdivision",
    "address-postal-code",
    "address-country-code",
    "email-address",
    "phone-number",
    "identification-number",
];

string_enum! {
    /// The type of a field, as written in schemas and in typed field values.
    pub enum FieldType ("field type", all: slice) {
        String = "string",
        Date = "date",
        Number = "number",
        Boolean = "boolean",
        Choices = "choices",
        MultiChoices = "multi_choices",
        Json = "json",
        GovernmentId = "government_id",
        Selfie = "selfie",
        Document = "document",
    }
}

const MAX_KEY_CHARS: usize = 64;

/// A field key: 1–64 characters of lowercase words joined by single hyphens (`name-first`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FieldKey(String);

impl FieldKey {
    pub fn parse(s: &str) -> Result<Self, String> {
        let well_formed = s.len() <= MAX_KEY_CHARS
            && s.split('-').all(|word| {
                !word.is_empty()
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if well_formed {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not a valid field key (expected 1 to {MAX_KEY_CHARS} lowercase letters \
                 and digits in words joined by single hyphens, such as `name-first`)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FieldKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Type-specific validation options of a field schema. Options that do not apply to the field's
/// type are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FieldConfig {
    #[serde(default)]
    pub required: bool,
    #[serde(
        default,
        with = "crate::time_format::serde_opt_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_date: Option<Date>,
    #[serde(
        default,
        with = "crate::time_format::serde_opt_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_date: Option<Date>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_char_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// One field a template declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FieldSchema {
    pub key: FieldKey,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default)]
    pub config: FieldConfig,
}

/// A validated field value. The serde form (`{"t": …, "v": …}`) is the stored one and must stay
/// stable; the API form comes from [`FieldValue::to_typed_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum FieldValue {
    String(String),
    Date(#[serde(with = "crate::time_format::serde_date")] Date),
    Number(Number),
    Boolean(bool),
    Choices(String),
    MultiChoices(Vec<String>),
    Json(Value),
    /// The id of an uploaded file or document.
    File(String),
}

impl FieldValue {
    /// The API form: `{"type": "<field type>", "value": <value>}`.
    pub fn to_typed_json(&self, field_type: FieldType) -> Value {
        let value = match self {
            Self::String(s) | Self::Choices(s) => Value::String(s.clone()),
            Self::Date(d) => Value::String(format_date(*d)),
            Self::Number(n) => Value::Number(n.clone()),
            Self::Boolean(b) => Value::Bool(*b),
            Self::MultiChoices(items) => json!(items),
            Self::Json(v) => v.clone(),
            Self::File(id) => match file_class(field_type) {
                Some(class) => json!({ "id": id, "type": class }),
                None => json!({ "id": id }),
            },
        };
        json!({ "type": field_type.as_str(), "value": value })
    }
}

/// The object class Persona reports for file-backed field values.
fn file_class(field_type: FieldType) -> Option<&'static str> {
    match field_type {
        FieldType::GovernmentId => Some("Document::GovernmentId"),
        FieldType::Selfie => Some("Selfie::ProfileAndCenter"),
        FieldType::Document => Some("Document::Generic"),
        _ => None,
    }
}

/// A rejected field in a batch of field updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub key: String,
    /// A predicate completing the key, e.g. "must not be in the future".
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.message)
    }
}

/// Validates one submitted value against its schema; `null` clears the field (`Ok(None)`).
/// `required` is not checked here: it decides when an inquiry is complete, not what an update
/// may contain. `today` is injected so the rule "a birthdate is not in the future" is testable.
pub fn validate_value(
    schema: &FieldSchema,
    raw: &Value,
    today: Date,
) -> Result<Option<FieldValue>, String> {
    if raw.is_null() {
        return Ok(None);
    }
    let config = &schema.config;
    let value = match schema.field_type {
        FieldType::String => {
            let s = clean_string(raw, config)?;
            FieldValue::String(standard_format(schema.key.as_str(), s)?)
        }
        FieldType::Choices => {
            FieldValue::Choices(check_option(clean_string(raw, config)?, config)?)
        }
        FieldType::MultiChoices => {
            let items = raw.as_array().ok_or("must be a list of strings")?;
            // Sets, so that many items against many options stay linear.
            let offered: HashSet<&str> = config.options.iter().map(String::as_str).collect();
            let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
            let mut chosen: Vec<String> = Vec::new();
            for item in items {
                let item = clean_string(item, config)?;
                if !offered.is_empty() && !offered.contains(item.as_str()) {
                    return Err(not_an_option(config));
                }
                if seen.insert(item.clone()) {
                    chosen.push(item);
                }
            }
            FieldValue::MultiChoices(chosen)
        }
        FieldType::Date => {
            let date = raw
                .as_str()
                .and_then(|s| parse_date(s.trim()))
                .ok_or("must be a date in the form YYYY-MM-DD")?;
            check_date(schema.key.as_str(), date, config, today)?;
            FieldValue::Date(date)
        }
        FieldType::Number => {
            let n = raw.as_number().ok_or("must be a number")?;
            check_number(n, config)?;
            FieldValue::Number(n.clone())
        }
        FieldType::Boolean => FieldValue::Boolean(raw.as_bool().ok_or("must be true or false")?),
        FieldType::Json => FieldValue::Json(raw.clone()),
        FieldType::GovernmentId | FieldType::Selfie | FieldType::Document => {
            return Err("files are attached by upload, not set as a field value".to_owned());
        }
    };
    Ok(Some(value))
}

/// A value another template produced, re-validated against `schema` (a Connect copy): `None`
/// when it does not satisfy this schema (another type, an option this template does not
/// offer, a limit it sets), so a copy never stores what an update of the field would refuse.
pub fn conform(schema: &FieldSchema, value: &FieldValue, today: Date) -> Option<FieldValue> {
    let raw = match value {
        FieldValue::File(_) => return None,
        other => other.to_typed_json(schema.field_type)["value"].take(),
    };
    validate_value(schema, &raw, today).ok().flatten()
}

/// Validates a batch of field updates, reporting every bad key rather than only the first.
/// The result keeps the input's order.
pub fn validate_fields(
    schemas: &[FieldSchema],
    input: &Map<String, Value>,
    today: Date,
) -> Result<Vec<(FieldKey, Option<FieldValue>)>, Vec<FieldError>> {
    let by_key: HashMap<&str, &FieldSchema> = schemas.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut values = Vec::with_capacity(input.len());
    let mut errors = Vec::new();
    for (key, raw) in input {
        let Some(schema) = by_key.get(key.as_str()) else {
            errors.push(FieldError {
                key: key.clone(),
                message: "is not a field of this inquiry template".to_owned(),
            });
            continue;
        };
        match validate_value(schema, raw, today) {
            Ok(value) => values.push((schema.key.clone(), value)),
            Err(message) => errors.push(FieldError {
                key: key.clone(),
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// A trimmed string without control characters, within `max-char-length`.
fn clean_string(raw: &Value, config: &FieldConfig) -> Result<String, String> {
    let s = raw.as_str().ok_or("must be a string")?.trim();
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters such as line breaks".to_owned());
    }
    if let Some(max) = config.max_char_length
        && s.chars().count() > max as usize
    {
        return Err(format!("must be at most {max} characters long"));
    }
    Ok(s.to_owned())
}

fn check_option(s: String, config: &FieldConfig) -> Result<String, String> {
    if config.options.is_empty() || config.options.contains(&s) {
        Ok(s)
    } else {
        Err(not_an_option(config))
    }
}

/// The options listed in an error, at most: a field may have a thousand.
const OPTIONS_SHOWN: usize = 10;

fn not_an_option(config: &FieldConfig) -> String {
    let options = &config.options;
    if options.len() <= OPTIONS_SHOWN {
        format!("must be one of: {}", options.join(", "))
    } else {
        format!(
            "must be one of the {} options, such as: {}, …",
            options.len(),
            options[..OPTIONS_SHOWN].join(", ")
        )
    }
}

/// Format rules of standard keys typed as strings.
fn standard_format(key: &str, s: String) -> Result<String, String> {
    match key {
        "email-address" if !is_email(&s) => {
            Err("must be an email address such as name@example.com".to_owned())
        }
        "phone-number" if !is_e164(&s) => Err(
            "must be a phone number in international format: + then 8 to 15 digits, such as \
             +14155550123"
                .to_owned(),
        ),
        "address-country-code" => {
            if s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(s.to_ascii_uppercase())
            } else {
                Err("must be a two-letter country code such as US".to_owned())
            }
        }
        _ => Ok(s),
    }
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.contains(char::is_whitespace)
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn check_date(key: &str, date: Date, config: &FieldConfig, today: Date) -> Result<(), String> {
    if let Some(min) = config.min_date
        && date < min
    {
        return Err(format!("must be on or after {}", format_date(min)));
    }
    if let Some(max) = config.max_date
        && date > max
    {
        return Err(format!("must be on or before {}", format_date(max)));
    }
    if key == "birthdate" && date > today {
        return Err("must not be in the future".to_owned());
    }
    Ok(())
}

fn check_number(n: &Number, config: &FieldConfig) -> Result<(), String> {
    // Without serde_json's arbitrary precision every number has an f64 approximation;
    // bounds are compared in that space.
    let x = n.as_f64().unwrap_or_default();
    if let Some(min) = config.min
        && x < min
    {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = config.max
        && x > max
    {
        return Err(format!("must be at most {max}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2024 - 06 - 15);

    fn schema(key: &str, field_type: FieldType, config: FieldConfig) -> FieldSchema {
        FieldSchema {
            key: FieldKey::parse(key).unwrap(),
            field_type,
            label: None,
            config,
        }
    }

    fn check(schema: &FieldSchema, raw: Value) -> Result<Option<FieldValue>, String> {
        validate_value(schema, &raw, TODAY)
    }

    #[test]
    fn field_keys() {
        for good in ["a", "name-first", "address-street-1", "x9", &"a".repeat(64)] {
            assert!(FieldKey::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "Name",
            "name_first",
            "né",
            &"a".repeat(65),
        ] {
            assert!(FieldKey::parse(bad).is_err(), "{bad}");
        }
        let key: FieldKey = serde_json::from_value(json!("name-first")).unwrap();
        assert_eq!(serde_json::to_value(&key).unwrap(), json!("name-first"));
        assert!(serde_json::from_value::<FieldKey>(json!("Name")).is_err());
    }

    #[test]
    fn schema_serde_uses_kebab_case_and_rejects_unknown_keys() {
        let raw = json!({
            "key": "birthdate",
            "type": "date",
            "config": {"required": true, "min-date": "1900-01-01", "max-char-length": 3}
        });
        let parsed: FieldSchema = serde_json::from_value(raw).unwrap();
        assert_eq!(parsed.config.min_date, Some(date!(1900 - 01 - 01)));
        assert!(parsed.config.required);
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            json!({
                "key": "birthdate",
                "type": "date",
                "config": {"required": true, "min-date": "1900-01-01", "max-char-length": 3}
            })
        );
        let unknown = json!({"key": "a", "type": "string", "config": {"maximum": 1}});
        assert!(serde_json::from_value::<FieldSchema>(unknown).is_err());
        let bad_date = json!({"key": "a", "type": "date", "config": {"max-date": "2023-02-30"}});
        assert!(serde_json::from_value::<FieldSchema>(bad_date).is_err());
        let multi = json!({"key": "a", "type": "multi_choices"});
        assert_eq!(
            serde_json::from_value::<FieldSchema>(multi)
                .unwrap()
                .field_type,
            FieldType::MultiChoices
        );
    }

    #[test]
    fn null_clears_and_strings_are_trimmed() {
        let s = schema("name-first", FieldType::String, FieldConfig::default());
        assert_eq!(check(&s, Value::Null), Ok(None));
        assert_eq!(
            check(&s, json!("  Ada ")),
            Ok(Some(FieldValue::String("Ada".into())))
        );
        assert_eq!(check(&s, json!(1)), Err("must be a string".into()));
        assert!(check(&s, json!("a\nb")).is_err());
    }

    #[test]
    fn max_char_length_counts_characters() {
        let config = FieldConfig {
            max_char_length: Some(3),
            ..FieldConfig::default()
        };
        let s = schema("nickname", FieldType::String, config);
        assert!(check(&s, json!("éèà")).is_ok());
        assert_eq!(
            check(&s, json!("abcd")),
            Err("must be at most 3 characters long".into())
        );
    }

    #[test]
    fn choices_must_be_options() {
        let config = FieldConfig {
            options: vec!["a".into(), "b".into(), "c".into()],
            ..FieldConfig::default()
        };
        let one = schema("pick", FieldType::Choices, config.clone());
        assert_eq!(
            check(&one, json!("b")),
            Ok(Some(FieldValue::Choices("b".into())))
        );
        assert_eq!(
            check(&one, json!("d")),
            Err("must be one of: a, b, c".into())
        );
        let many = schema("picks", FieldType::MultiChoices, config);
        assert_eq!(
            check(&many, json!(["c", "a", "c"])),
            Ok(Some(FieldValue::MultiChoices(vec!["c".into(), "a".into()])))
        );
        assert!(check(&many, json!(["a", "z"])).is_err());
        assert_eq!(
            check(&many, json!("a")),
            Err("must be a list of strings".into())
        );
        assert!(check(&many, json!([1])).is_err());
    }

    #[test]
    fn dates_and_birthdates() {
        let config = FieldConfig {
            min_date: Some(date!(1900 - 01 - 01)),
            max_date: Some(date!(2030 - 01 - 01)),
            ..FieldConfig::default()
        };
        let d = schema("birthdate", FieldType::Date, config);
        assert_eq!(
            check(&d, json!("1990-05-17")),
            Ok(Some(FieldValue::Date(date!(1990 - 05 - 17))))
        );
        assert_eq!(
            check(&d, json!("2024-06-15")).map(|v| v.is_some()),
            Ok(true)
        );
        assert_eq!(
            check(&d, json!("2024-06-16")),
            Err("must not be in the future".into())
        );
        assert_eq!(
            check(&d, json!("1899-12-31")),
            Err("must be on or after 1900-01-01".into())
        );
        for bad in [json!("1990-02-30"), json!("17/05/1990"), json!(19900517)] {
            assert_eq!(
                check(&d, bad),
                Err("must be a date in the form YYYY-MM-DD".into())
            );
        }
        let other = schema("start-date", FieldType::Date, FieldConfig::default());
        assert!(check(&other, json!("2099-01-01")).is_ok());
    }

    #[test]
    fn numbers_booleans_and_json() {
        let config = FieldConfig {
            min: Some(0.0),
            max: Some(10.5),
            ..FieldConfig::default()
        };
        let n = schema("score", FieldType::Number, config);
        assert_eq!(
            check(&n, json!(10)),
            Ok(Some(FieldValue::Number(10.into())))
        );
        assert_eq!(check(&n, json!(-1)), Err("must be at least 0".into()));
        assert_eq!(check(&n, json!(11)), Err("must be at most 10.5".into()));
        assert_eq!(check(&n, json!("3")), Err("must be a number".into()));
        let b = schema("consent", FieldType::Boolean, FieldConfig::default());
        assert_eq!(check(&b, json!(true)), Ok(Some(FieldValue::Boolean(true))));
        assert!(check(&b, json!("true")).is_err());
        let j = schema("extra", FieldType::Json, FieldConfig::default());
        assert_eq!(
            check(&j, json!({"a": [1]})),
            Ok(Some(FieldValue::Json(json!({"a": [1]}))))
        );
    }

    #[test]
    fn file_fields_are_not_set_directly() {
        let f = schema("front", FieldType::GovernmentId, FieldConfig::default());
        assert_eq!(
            check(&f, json!("doc_x")),
            Err("files are attached by upload, not set as a field value".into())
        );
    }

    #[test]
    fn standard_key_formats() {
        let email = schema("email-address", FieldType::String, FieldConfig::default());
        assert!(check(&email, json!(" ada@example.com ")).is_ok());
        for bad in [
            "ada",
            "@example.com",
            "ada@example",
            "a@b@c.d",
            "a da@example.com",
            "a@.com",
        ] {
            assert!(check(&email, json!(bad)).is_err(), "{bad}");
        }
        let phone = schema("phone-number", FieldType::String, FieldConfig::default());
        assert!(check(&phone, json!("+14155550123")).is_ok());
        for bad in [
            "14155550123",
            "+1415555",
            "+1234567890123456",
            "+1 415 555 0123",
        ] {
            assert!(check(&phone, json!(bad)).is_err(), "{bad}");
        }
        let country = schema(
            "address-country-code",
            FieldType::String,
            FieldConfig::default(),
        );
        assert_eq!(
            check(&country, json!("de")),
            Ok(Some(FieldValue::String("DE".into())))
        );
        assert!(check(&country, json!("DEU")).is_err());
        assert!(check(&country, json!("D1")).is_err());
    }

    #[test]
    fn validate_fields_collects_every_error() {
        let schemas = vec![
            schema("name-first", FieldType::String, FieldConfig::default()),
            schema("birthdate", FieldType::Date, FieldConfig::default()),
        ];
        let input = json!({"name-first": "Ada", "birthdate": "soon", "favorite-color": "red"});
        let errors = validate_fields(&schemas, input.as_object().unwrap(), TODAY).unwrap_err();
        assert_eq!(
            errors,
            vec![
                FieldError {
                    key: "birthdate".into(),
                    message: "must be a date in the form YYYY-MM-DD".into()
                },
                FieldError {
                    key: "favorite-color".into(),
                    message: "is not a field of this inquiry template".into()
                },
            ]
        );
        assert_eq!(
            errors[1].to_string(),
            "favorite-color is not a field of this inquiry template"
        );
        let input = json!({"birthdate": null, "name-first": "Ada"});
        let ok = validate_fields(&schemas, input.as_object().unwrap(), TODAY).unwrap();
        assert_eq!(ok[0], (FieldKey::parse("birthdate").unwrap(), None));
        assert_eq!(ok[1].1, Some(FieldValue::String("Ada".into())));
    }

    #[test]
    fn stored_and_typed_forms() {
        let cases = [
            (
                FieldValue::String("Ada".into()),
                FieldType::String,
                json!("Ada"),
            ),
            (
                FieldValue::Date(date!(1990 - 05 - 17)),
                FieldType::Date,
                json!("1990-05-17"),
            ),
            (
                FieldValue::Number(Number::from_f64(1.5).unwrap()),
                FieldType::Number,
                json!(1.5),
            ),
            (FieldValue::Boolean(false), FieldType::Boolean, json!(false)),
            (
                FieldValue::Choices("a".into()),
                FieldType::Choices,
                json!("a"),
            ),
            (
                FieldValue::MultiChoices(vec!["a".into()]),
                FieldType::MultiChoices,
                json!(["a"]),
            ),
            (
                FieldValue::Json(json!({"k": 1})),
                FieldType::Json,
                json!({"k": 1}),
            ),
            (
                FieldValue::File("doc_1".into()),
                FieldType::GovernmentId,
                json!({"id": "doc_1", "type": "Document::GovernmentId"}),
            ),
        ];
        for (value, field_type, typed) in cases {
            assert_eq!(
                value.to_typed_json(field_type),
                json!({"type": field_type.as_str(), "value": typed})
            );
            let stored = serde_json::to_string(&value).unwrap();
            assert_eq!(serde_json::from_str::<FieldValue>(&stored).unwrap(), value);
        }
        assert_eq!(
            serde_json::to_value(FieldValue::Date(date!(1990 - 05 - 17))).unwrap(),
            json!({"t": "date", "v": "1990-05-17"})
        );
        assert_eq!(
            serde_json::to_value(FieldValue::MultiChoices(vec![])).unwrap(),
            json!({"t": "multi_choices", "v": []})
        );
    }

    #[test]
    fn many_choices_against_many_options() {
        let options: Vec<String> = (0..1_000).map(|i| format!("o{i}")).collect();
        let config = FieldConfig {
            options: options.clone(),
            ..FieldConfig::default()
        };
        let many = schema("picks", FieldType::MultiChoices, config.clone());
        // Every option, each many times: the repeats go, the first order stays.
        let items: Vec<&String> = options.iter().rev().cycle().take(50_000).collect();
        let Ok(Some(FieldValue::MultiChoices(chosen))) = check(&many, json!(items)) else {
            panic!("all are options");
        };
        assert_eq!(chosen.len(), 1_000);
        assert_eq!(chosen[0], "o999");
        // The error lists a few options, not a thousand.
        let err = check(&many, json!(["o1", "nope"])).unwrap_err();
        assert_eq!(
            err,
            "must be one of the 1000 options, such as: o0, o1, o2, o3, o4, o5, o6, o7, o8, o9, …"
        );
        let one = schema("pick", FieldType::Choices, config);
        assert_eq!(check(&one, json!("nope")).unwrap_err(), err);
    }

    proptest! {
        /// The set-based multi-choice check agrees with the plain definition: every item is an
        /// option (when there are options), and the first occurrence of each is kept in order.
        #[test]
        fn multi_choices_keep_first_occurrences_of_options(
            options in prop::collection::vec("[a-e]", 0..5),
            items in prop::collection::vec("[a-f]", 0..30),
        ) {
            let config = FieldConfig { options: options.clone(), ..FieldConfig::default() };
            let got = check(&schema("picks", FieldType::MultiChoices, config), json!(items));
            let all_offered = options.is_empty() || items.iter().all(|i| options.contains(i));
            if all_offered {
                let mut expected: Vec<String> = vec![];
                for item in &items {
                    if !expected.contains(item) {
                        expected.push(item.clone());
                    }
                }
                prop_assert_eq!(got, Ok(Some(FieldValue::MultiChoices(expected))));
            } else {
                prop_assert!(got.is_err());
            }
        }

        #[test]
        fn batches_are_checked_key_by_key(
            declared in prop::collection::btree_set("[a-d]", 0..4),
            given in prop::collection::btree_map("[a-f]", "[a-z]{0,3}", 0..6),
        ) {
            let schemas: Vec<FieldSchema> = declared
                .iter()
                .map(|key| schema(key, FieldType::String, FieldConfig::default()))
                .collect();
            let input: Map<String, Value> =
                given.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let unknown: Vec<&String> = given.keys().filter(|k| !declared.contains(*k)).collect();
            match validate_fields(&schemas, &input, TODAY) {
                Ok(values) => {
                    prop_assert!(unknown.is_empty());
                    prop_assert_eq!(values.len(), given.len());
                }
                Err(errors) => {
                    let keys: Vec<&String> = errors.iter().map(|e| &e.key).collect();
                    prop_assert_eq!(keys, unknown);
                }
            }
        }
    }
}
