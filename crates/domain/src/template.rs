//! Inquiry template definitions: what a template version asks for, and its validation.
//!
//! Validation is linear in the size of the definition, and the size is capped
//! ([`MAX_DEFINITION_BYTES`], [`MAX_FIELD_SCHEMAS`], [`MAX_OPTIONS`], [`MAX_OPTION_CHARS`]):
//! a definition is read on every inquiry write, so one tenant's template must not be able to
//! make that slow.

use std::collections::{HashMap, HashSet};
use std::{fmt, io};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::field::{FieldSchema, FieldType};

/// The content of an inquiry template version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TemplateDefinition {
    pub field_schemas: Vec<FieldSchema>,
    #[serde(default)]
    pub verifications: Vec<VerificationConfig>,
    #[serde(default)]
    pub reports: Vec<ReportConfig>,
    #[serde(default)]
    pub expiration: ExpirationConfig,
}

/// One verification the template runs, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct VerificationConfig {
    #[serde(rename = "type")]
    pub verification_type: VerificationType,
    #[serde(default = "yes")]
    pub required: bool,
    /// Accept a passed verification of this type copied from a share token instead of running it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<ReuseConfig>,
    /// Type-specific options, checked by [`TemplateDefinition::parse`].
    #[serde(default)]
    pub config: Map<String, Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ReuseConfig {
    /// How old (since it passed) a copied verification may be; 1..=3650.
    pub max_age_days: u32,
}

string_enum! {
    pub enum VerificationType ("verification type", all: slice) {
        GovernmentId = "government-id",
        Selfie = "selfie",
        Document = "document",
        PhoneNumber = "phone-number",
        EmailAddress = "email-address",
        Database = "database",
    }
}

/// One screening report the template runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ReportConfig {
    #[serde(rename = "type")]
    pub report_type: ReportType,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub on_match: OnMatch,
}

string_enum! {
    pub enum ReportType ("report type", all: slice) {
        Watchlist = "watchlist",
        PoliticallyExposedPerson = "politically-exposed-person",
    }
}

string_enum! {
    /// What a report match does to the inquiry.
    #[derive(Default)]
    pub enum OnMatch ("on-match action", all: slice) {
        #[default]
        None = "none",
        NeedsReview = "needs_review",
    }
}

const DEFAULT_EXPIRATION_SECONDS: u32 = 86_400;

/// Lifetimes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExpirationConfig {
    /// How long an unfinished inquiry lives.
    #[serde(default = "default_expiration")]
    pub inquiry_seconds: u32,
    /// How long an unused one-time link lives.
    #[serde(default = "default_expiration")]
    pub one_time_link_seconds: u32,
}

fn default_expiration() -> u32 {
    DEFAULT_EXPIRATION_SECONDS
}

impl Default for ExpirationConfig {
    fn default() -> Self {
        Self {
            inquiry_seconds: DEFAULT_EXPIRATION_SECONDS,
            one_time_link_seconds: DEFAULT_EXPIRATION_SECONDS,
        }
    }
}

/// The largest definition, as compact JSON.
pub const MAX_DEFINITION_BYTES: usize = 256 * 1024;
/// The most field schemas a definition declares.
pub const MAX_FIELD_SCHEMAS: usize = 200;
/// The most options of one `choices` or `multi_choices` field.
pub const MAX_OPTIONS: usize = 1_000;
/// The longest option, in characters.
pub const MAX_OPTION_CHARS: usize = 200;

/// A problem in a template definition, located by a JSON pointer relative to the definition
/// (e.g. `/field-schemas/2/key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateError {
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

impl TemplateDefinition {
    /// Deserializes and checks a definition. The size caps are checked first, on the JSON as
    /// given, so an oversized definition is not even deserialized. A shape error stops at the
    /// first problem (serde cannot go on); semantic problems are all reported.
    pub fn parse(value: &Value) -> Result<Self, Vec<TemplateError>> {
        let over = over_limits(value);
        if !over.is_empty() {
            return Err(over);
        }
        let definition: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let pointer = e
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
                    serde_path_to_error::Segment::Map { key } => Some(format!("/{}", escape(key))),
                    serde_path_to_error::Segment::Enum { variant } => {
                        Some(format!("/{}", escape(variant)))
                    }
                    serde_path_to_error::Segment::Unknown => None,
                })
                .collect();
            vec![TemplateError {
                pointer,
                message: e.inner().to_string(),
            }]
        })?;
        let errors = definition.check();
        if errors.is_empty() {
            Ok(definition)
        } else {
            Err(errors)
        }
    }

    /// Reads a definition as stored by a template version: validated when it was saved (perhaps
    /// under older limits, which must not make its inquiries unreadable), so only deserialized.
    pub fn from_stored_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn field_schema(&self, key: &str) -> Option<&FieldSchema> {
        self.field_schemas.iter().find(|s| s.key.as_str() == key)
    }

    fn check(&self) -> Vec<TemplateError> {
        let mut errors = Vec::new();
        let mut err = |pointer: String, message: String| {
            errors.push(TemplateError { pointer, message });
        };

        // Each key, option and list is looked up in a set: checking against every earlier one
        // would be quadratic.
        let mut first_with_key: HashMap<&str, usize> = HashMap::new();
        for (i, schema) in self.field_schemas.iter().enumerate() {
            let at = format!("/field-schemas/{i}");
            let first = *first_with_key.entry(schema.key.as_str()).or_insert(i);
            if first != i {
                err(
                    format!("{at}/key"),
                    format!(
                        "`{}` is already the key of /field-schemas/{first}",
                        schema.key
                    ),
                );
            }
            let config = &schema.config;
            if matches!(
                schema.field_type,
                FieldType::Choices | FieldType::MultiChoices
            ) && config.options.is_empty()
            {
                err(
                    format!("{at}/config/options"),
                    format!("a {} field needs at least one option", schema.field_type),
                );
            }
            let mut listed: HashSet<&str> = HashSet::with_capacity(config.options.len());
            for (j, option) in config.options.iter().enumerate() {
                if option.trim().is_empty() {
                    err(
                        format!("{at}/config/options/{j}"),
                        "options must not be blank".to_owned(),
                    );
                } else if option.chars().count() > MAX_OPTION_CHARS {
                    err(
                        format!("{at}/config/options/{j}"),
                        format!("an option is at most {MAX_OPTION_CHARS} characters"),
                    );
                } else if !listed.insert(option) {
                    err(
                        format!("{at}/config/options/{j}"),
                        format!("`{option}` is listed twice"),
                    );
                }
            }
            if let (Some(min), Some(max)) = (config.min_date, config.max_date)
                && min > max
            {
                err(
                    format!("{at}/config/min-date"),
                    "must not be after max-date".to_owned(),
                );
            }
            if let (Some(min), Some(max)) = (config.min, config.max)
                && min > max
            {
                err(
                    format!("{at}/config/min"),
                    "must not be greater than max".to_owned(),
                );
            }
            if config.max_char_length == Some(0) {
                err(
                    format!("{at}/config/max-char-length"),
                    "must be at least 1".to_owned(),
                );
            }
            if config.required
                && matches!(
                    schema.field_type,
                    FieldType::GovernmentId | FieldType::Selfie | FieldType::Document
                )
            {
                err(
                    format!("{at}/config/required"),
                    format!(
                        "a {} field is filled by uploads, not set: require a verification instead",
                        schema.field_type
                    ),
                );
            }
        }

        let keys: HashSet<&str> = first_with_key.into_keys().collect();
        for (i, verification) in self.verifications.iter().enumerate() {
            let at = format!("/verifications/{i}");
            let kind = verification.verification_type;
            if self.verifications[..i]
                .iter()
                .any(|v| v.verification_type == kind)
            {
                err(
                    format!("{at}/type"),
                    format!("a {kind} verification is already configured"),
                );
            }
            if let Some(reuse) = verification.reuse
                && !(1..=3650).contains(&reuse.max_age_days)
            {
                err(
                    format!("{at}/reuse/max-age-days"),
                    "must be between 1 and 3650".to_owned(),
                );
            }
            check_config(
                &verification.config,
                verification_options(kind),
                &format!("a {kind} verification"),
                &at,
                &mut err,
            );
            // A verification compares what it reads with the inquiry's fields; a field the
            // template lacks could never be supplied, and every inquiry would stay stuck.
            let absent: Vec<&str> = crate::requirements::fields_read_by(kind)
                .iter()
                .copied()
                .filter(|key| !keys.contains(key))
                .collect();
            if !absent.is_empty() {
                err(
                    format!("{at}/type"),
                    format!(
                        "a {kind} verification reads the inquiry fields {}; add them to field-schemas",
                        absent.join(", ")
                    ),
                );
            }
        }

        for (i, report) in self.reports.iter().enumerate() {
            let at = format!("/reports/{i}");
            let kind = report.report_type;
            if self.reports[..i].iter().any(|r| r.report_type == kind) {
                err(
                    format!("{at}/type"),
                    format!("a {kind} report is already configured"),
                );
            }
            check_config(
                &report.config,
                REPORT_OPTIONS,
                &format!("a {kind} report"),
                &at,
                &mut err,
            );
        }

        let expiration = self.expiration;
        if !(60..=2_592_000).contains(&expiration.inquiry_seconds) {
            err(
                "/expiration/inquiry-seconds".to_owned(),
                "must be between 60 (one minute) and 2592000 (30 days)".to_owned(),
            );
        }
        if !(60..=604_800).contains(&expiration.one_time_link_seconds) {
            err(
                "/expiration/one-time-link-seconds".to_owned(),
                "must be between 60 (one minute) and 604800 (7 days)".to_owned(),
            );
        }
        errors
    }
}

/// The caps on a definition as given: its size, the number of field schemas and of each
/// field's options (counting is cheap, so all are reported). Sections of an unexpected shape
/// are left to deserialization.
fn over_limits(value: &Value) -> Vec<TemplateError> {
    let Some(sections) = value.as_object() else {
        return vec![];
    };
    // Each section's size, counted up to the cap (so a huge one costs no more than the cap).
    let sizes: Vec<(&String, usize)> = sections
        .iter()
        .map(|(key, section)| (key, json_size_up_to(section, MAX_DEFINITION_BYTES + 1)))
        .collect();
    let total: usize = sizes.iter().map(|(key, size)| key.len() + size).sum();
    let mut errors = Vec::new();
    if total > MAX_DEFINITION_BYTES {
        // The biggest section is where to cut.
        let biggest = sizes
            .iter()
            .max_by_key(|(_, size)| *size)
            .map_or("", |(key, _)| key.as_str());
        errors.push(TemplateError {
            pointer: format!("/{}", escape(biggest)),
            message: format!(
                "a definition is at most {} KiB as JSON; this one is larger",
                MAX_DEFINITION_BYTES / 1024
            ),
        });
    }
    let Some(schemas) = value.get("field-schemas").and_then(Value::as_array) else {
        return errors;
    };
    if schemas.len() > MAX_FIELD_SCHEMAS {
        errors.push(TemplateError {
            pointer: "/field-schemas".to_owned(),
            message: format!(
                "a definition declares at most {MAX_FIELD_SCHEMAS} fields; this one has {}",
                schemas.len()
            ),
        });
    }
    for (i, schema) in schemas.iter().enumerate() {
        if let Some(options) = schema.pointer("/config/options").and_then(Value::as_array)
            && options.len() > MAX_OPTIONS
        {
            errors.push(TemplateError {
                pointer: format!("/field-schemas/{i}/config/options"),
                message: format!(
                    "a field has at most {MAX_OPTIONS} options; this one has {}",
                    options.len()
                ),
            });
        }
    }
    errors
}

/// The length of `value` as compact JSON, or `limit` when it is at least that long (the count
/// stops there).
fn json_size_up_to(value: &Value, limit: usize) -> usize {
    struct Counter {
        bytes: usize,
        limit: usize,
    }
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes += buf.len();
            if self.bytes >= self.limit {
                return Err(io::Error::other("limit reached"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { bytes: 0, limit };
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.bytes,
        Err(_) => limit,
    }
}

/// JSON pointer escaping (RFC 6901) of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Checks a config value; the error completes "…/config/<key> ".
type OptionCheck = fn(&Value) -> Result<(), String>;

fn verification_options(kind: VerificationType) -> &'static [(&'static str, OptionCheck)] {
    match kind {
        VerificationType::GovernmentId => &[
            ("allowed-countries", country_codes),
            ("allowed-id-classes", id_classes),
            ("minimum-age", minimum_age),
            ("require-mrz", boolean),
        ],
        VerificationType::Document => &[("kinds", document_kinds), ("max-age-days", age_days)],
        VerificationType::Selfie | VerificationType::Database => &[("provider", provider)],
        VerificationType::PhoneNumber | VerificationType::EmailAddress => {
            &[("confirmation", boolean)]
        }
    }
}

const REPORT_OPTIONS: &[(&str, OptionCheck)] =
    &[("lists", list_names), ("match-threshold", match_threshold)];

fn check_config(
    config: &Map<String, Value>,
    options: &[(&str, OptionCheck)],
    owner: &str,
    at: &str,
    err: &mut impl FnMut(String, String),
) {
    for (key, value) in config {
        let pointer = format!("{at}/config/{}", escape(key));
        match options.iter().find(|(name, _)| name == key) {
            Some((_, check)) => {
                if let Err(message) = check(value) {
                    err(pointer, message);
                }
            }
            None => {
                let allowed: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
                err(
                    pointer,
                    format!(
                        "`{key}` is not an option of {owner} (options: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
}

/// Every item of a JSON array of strings must pass `ok`.
fn string_list(value: &Value, ok: impl Fn(&str) -> bool, expected: &str) -> Result<(), String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("must be a list of {expected}"))?;
    for item in items {
        match item.as_str() {
            Some(s) if ok(s) => {}
            _ => return Err(format!("must be a list of {expected}; `{item}` is not one")),
        }
    }
    Ok(())
}

fn int_between(value: &Value, min: u64, max: u64) -> Result<(), String> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(format!("must be a whole number between {min} and {max}")),
    }
}

fn country_codes(value: &Value) -> Result<(), String> {
    string_list(
        value,
        |s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()),
        "two-letter uppercase country codes such as \"US\"",
    )
}

fn id_classes(value: &Value) -> Result<(), String> {
    const CLASSES: &[&str] = &["pp", "dl", "id", "rp", "visa"];
    string_list(
        value,
        |s| CLASSES.contains(&s),
        "id classes among pp, dl, id, rp, visa",
    )
}

fn document_kinds(value: &Value) -> Result<(), String> {
    string_list(
        value,
        |s| s == "proof-of-address",
        "document kinds among proof-of-address",
    )
}

fn list_names(value: &Value) -> Result<(), String> {
    string_list(value, |s| !s.trim().is_empty(), "non-empty list names")
}

fn minimum_age(value: &Value) -> Result<(), String> {
    int_between(value, 0, 150)
}

fn age_days(value: &Value) -> Result<(), String> {
    int_between(value, 1, 3650)
}

fn boolean(value: &Value) -> Result<(), String> {
    value
        .as_bool()
        .map(drop)
        .ok_or_else(|| "must be true or false".to_owned())
}

fn provider(value: &Value) -> Result<(), String> {
    match value.as_str() {
        Some("sandbox" | "http") => Ok(()),
        _ => Err("must be \"sandbox\" or \"http\"".to_owned()),
    }
}

fn match_threshold(value: &Value) -> Result<(), String> {
    match value.as_f64() {
        Some(x) if (0.5..=1.0).contains(&x) => Ok(()),
        _ => Err("must be a number between 0.5 and 1.0".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Every inquiry field some verification reads, so definitions under test are complete.
    fn read_fields() -> Vec<Value> {
        [
            "name-last",
            "address-street-1",
            "address-city",
            "address-postal-code",
            "address-country-code",
            "phone-number",
            "email-address",
        ]
        .iter()
        .map(|key| json!({"key": key, "type": "string"}))
        .collect()
    }

    fn full() -> Value {
        let mut schemas = vec![
            json!({"key": "name-first", "type": "string", "config": {"required": true}}),
            json!({"key": "birthdate", "type": "date", "label": "Date of birth"}),
            json!({"key": "plan", "type": "choices", "config": {"options": ["basic", "pro"]}}),
        ];
        schemas.extend(read_fields());
        json!({
            "field-schemas": schemas,
            "verifications": [
                {
                    "type": "government-id",
                    "reuse": {"max-age-days": 365},
                    "config": {
                        "allowed-countries": ["US", "DE"],
                        "allowed-id-classes": ["pp", "dl"],
                        "minimum-age": 18,
                        "require-mrz": false
                    }
                },
                {"type": "document", "required": false,
                 "config": {"kinds": ["proof-of-address"], "max-age-days": 90}},
                {"type": "selfie", "config": {"provider": "sandbox"}},
                {"type": "phone-number", "config": {"confirmation": true}}
            ],
            "reports": [
                {"type": "watchlist", "config": {"lists": ["ofac"], "match-threshold": 0.8},
                 "on-match": "needs_review"}
            ],
            "expiration": {"inquiry-seconds": 3600}
        })
    }

    fn errors(value: Value) -> Vec<(String, String)> {
        TemplateDefinition::parse(&value)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.pointer, e.message))
            .collect()
    }

    fn pointers(value: Value) -> Vec<String> {
        errors(value).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn parses_a_full_definition_with_defaults() {
        let def = TemplateDefinition::parse(&full()).unwrap();
        assert_eq!(def.field_schemas.len(), 10);
        assert!(def.verifications[0].required);
        assert!(!def.verifications[1].required);
        assert_eq!(
            def.verifications[0].reuse,
            Some(ReuseConfig { max_age_days: 365 })
        );
        assert_eq!(def.reports[0].on_match, OnMatch::NeedsReview);
        assert_eq!(def.expiration.inquiry_seconds, 3600);
        assert_eq!(def.expiration.one_time_link_seconds, 86_400);
        assert_eq!(
            def.field_schema("plan").map(|s| s.field_type),
            Some(FieldType::Choices)
        );
        assert!(def.field_schema("nope").is_none());
        let again = TemplateDefinition::parse(&serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(again, def);
    }

    #[test]
    fn verifications_need_the_fields_they_read_and_file_fields_cannot_be_required() {
        let errs = errors(
            json!({"field-schemas": [{"key": "name-first", "type": "string"}],
            "verifications": [{"type": "government-id"}]}),
        );
        assert_eq!(errs[0].0, "/verifications/0/type");
        assert!(errs[0].1.contains("name-last"), "{errs:?}");
        let errs = errors(
            json!({"field-schemas": [{"key": "id", "type": "government_id", "config": {"required": true}}]}),
        );
        assert_eq!(errs[0].0, "/field-schemas/0/config/required");
    }

    #[test]
    fn minimal_definition_uses_defaults() {
        let def = TemplateDefinition::parse(&json!({"field-schemas": []})).unwrap();
        assert!(def.verifications.is_empty() && def.reports.is_empty());
        assert_eq!(def.expiration, ExpirationConfig::default());
    }

    #[test]
    fn shape_errors_carry_a_pointer() {
        let mut bad_key = full();
        bad_key["field-schemas"][2]["key"] = json!("Plan");
        assert_eq!(pointers(bad_key), ["/field-schemas/2/key"]);

        let mut bad_type = full();
        bad_type["verifications"][1]["type"] = json!("nfc");
        let errs = errors(bad_type);
        assert_eq!(errs[0].0, "/verifications/1/type");
        assert!(errs[0].1.contains("`nfc` is not a valid verification type"));

        let mut unknown = full();
        unknown["expiration"]["forever"] = json!(true);
        let errs = errors(unknown);
        assert!(errs[0].0.starts_with("/expiration"), "{errs:?}");
        assert!(errs[0].1.contains("unknown field `forever`"));

        assert_eq!(pointers(json!({})), [""]);
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let def = json!({
            "field-schemas": [
                {"key": "a", "type": "choices"},
                {"key": "a", "type": "number", "config": {"min": 5, "max": 1}},
                {"key": "d", "type": "date",
                 "config": {"min-date": "2020-01-02", "max-date": "2020-01-01"}},
                {"key": "s", "type": "string", "config": {"max-char-length": 0}},
                {"key": "m", "type": "multi_choices", "config": {"options": ["x", "x", " "]}}
            ],
            "verifications": [
                {"type": "selfie", "reuse": {"max-age-days": 0}},
                {"type": "selfie", "config": {"provider": "magic", "foo/bar": 1}}
            ],
            "reports": [
                {"type": "watchlist", "config": {"lists": [""], "match-threshold": 0.2}},
                {"type": "watchlist"}
            ],
            "expiration": {"inquiry-seconds": 59, "one-time-link-seconds": 604_801}
        });
        assert_eq!(
            pointers(def),
            [
                "/field-schemas/0/config/options",
                "/field-schemas/1/key",
                "/field-schemas/1/config/min",
                "/field-schemas/2/config/min-date",
                "/field-schemas/3/config/max-char-length",
                "/field-schemas/4/config/options/1",
                "/field-schemas/4/config/options/2",
                "/verifications/0/reuse/max-age-days",
                "/verifications/1/type",
                "/verifications/1/config/provider",
                "/verifications/1/config/foo~1bar",
                "/reports/0/config/lists",
                "/reports/0/config/match-threshold",
                "/reports/1/type",
                "/expiration/inquiry-seconds",
                "/expiration/one-time-link-seconds",
            ]
        );
    }

    #[test]
    fn verification_config_options_are_checked_per_type() {
        let mut schemas = read_fields();
        schemas.push(json!({"key": "name-first", "type": "string"}));
        schemas.push(json!({"key": "birthdate", "type": "date"}));
        let with_config = |kind: &str, config: Value| json!({"field-schemas": schemas, "verifications": [{"type": kind, "config": config}]});
        let errs = errors(with_config("government-id", json!({"foo": 1})));
        assert_eq!(errs[0].0, "/verifications/0/config/foo");
        assert_eq!(
            errs[0].1,
            "`foo` is not an option of a government-id verification (options: \
             allowed-countries, allowed-id-classes, minimum-age, require-mrz)"
        );
        for (kind, config) in [
            ("government-id", json!({"allowed-countries": ["us"]})),
            ("government-id", json!({"allowed-id-classes": ["passport"]})),
            ("government-id", json!({"minimum-age": 151})),
            ("government-id", json!({"minimum-age": 18.5})),
            ("government-id", json!({"require-mrz": "yes"})),
            ("document", json!({"kinds": ["utility-bill"]})),
            ("document", json!({"max-age-days": -1})),
            ("database", json!({"provider": 1})),
            ("email-address", json!({"confirmation": null})),
            ("phone-number", json!({"provider": "http"})),
        ] {
            let pointer = format!(
                "/verifications/0/config/{}",
                config.as_object().unwrap().keys().next().unwrap()
            );
            assert_eq!(
                pointers(with_config(kind, config.clone())),
                [pointer],
                "{config}"
            );
        }
        assert!(
            TemplateDefinition::parse(&with_config("database", json!({"provider": "http"})))
                .is_ok()
        );
    }

    fn choices_field(key: &str, options: &[String]) -> Value {
        json!({"key": key, "type": "choices", "config": {"options": options}})
    }

    fn numbered(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn field_and_option_caps_are_pointed_at() {
        let at_cap: Vec<Value> = (0..MAX_FIELD_SCHEMAS)
            .map(|i| json!({"key": format!("f-{i}"), "type": "string"}))
            .collect();
        assert!(TemplateDefinition::parse(&json!({"field-schemas": at_cap})).is_ok());
        let over: Vec<Value> = (0..=MAX_FIELD_SCHEMAS)
            .map(|i| json!({"key": format!("f-{i}"), "type": "string"}))
            .collect();
        let errs = errors(json!({"field-schemas": over}));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "/field-schemas");
        assert!(
            errs[0].1.contains("at most 200 fields; this one has 201"),
            "{errs:?}"
        );

        let ok = choices_field("plan", &numbered("o", MAX_OPTIONS));
        assert!(TemplateDefinition::parse(&json!({"field-schemas": [ok]})).is_ok());
        let too_many = choices_field("plan", &numbered("o", MAX_OPTIONS + 1));
        let errs = errors(json!({"field-schemas": [{"key": "a", "type": "string"}, too_many]}));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "/field-schemas/1/config/options");
        assert!(
            errs[0]
                .1
                .contains("at most 1000 options; this one has 1001"),
            "{errs:?}"
        );

        let long = "x".repeat(MAX_OPTION_CHARS);
        let longer = "é".repeat(MAX_OPTION_CHARS + 1);
        assert_eq!(
            pointers(json!({"field-schemas": [choices_field("plan", &[long, longer])]})),
            ["/field-schemas/0/config/options/1"]
        );
    }

    #[test]
    fn the_definition_size_is_capped_at_its_biggest_section() {
        // Labels make a definition big without breaking any other cap.
        let labelled = |n: usize, label_chars: usize| -> Vec<Value> {
            (0..n)
                .map(|i| {
                    json!({"key": format!("f-{i}"), "type": "string",
                           "label": "l".repeat(label_chars)})
                })
                .collect()
        };
        let small = json!({"field-schemas": labelled(100, 2_000)});
        assert!(json_size_up_to(&small, usize::MAX) < MAX_DEFINITION_BYTES);
        assert!(TemplateDefinition::parse(&small).is_ok());
        let big = json!({"field-schemas": labelled(200, 1_400), "expiration": {}});
        assert!(serde_json::to_vec(&big).unwrap().len() > MAX_DEFINITION_BYTES);
        let errs = errors(big);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "/field-schemas");
        assert!(errs[0].1.contains("at most 256 KiB"), "{errs:?}");
        // Counting is cheap: the issue's 50,000 options are over both caps, and both are said.
        let issue = json!({"field-schemas": [choices_field("plan", &numbered("o", 50_000))]});
        assert_eq!(
            pointers(issue),
            ["/field-schemas", "/field-schemas/0/config/options"]
        );
        // An oversized section is refused whatever its shape.
        let errs =
            errors(json!({"field-schemas": [], "reports": "r".repeat(MAX_DEFINITION_BYTES)}));
        assert_eq!(errs[0].0, "/reports");
    }

    /// What was stored under older (or no) limits still reads, so its inquiries stay readable.
    #[test]
    fn stored_definitions_are_read_back_without_the_caps() {
        let parsed = TemplateDefinition::parse(&full()).unwrap();
        let stored = serde_json::to_string(&parsed).unwrap();
        assert_eq!(
            TemplateDefinition::from_stored_json(&stored).unwrap(),
            parsed
        );
        let legacy = json!({"field-schemas": [choices_field("plan", &numbered("o", 5_000))]});
        assert!(TemplateDefinition::parse(&legacy).is_err());
        let read = TemplateDefinition::from_stored_json(&legacy.to_string()).unwrap();
        assert_eq!(read.field_schemas[0].config.options.len(), 5_000);
        assert!(TemplateDefinition::from_stored_json("{\"field-schemas\": 1}").is_err());
    }

    /// Duplicates the pairwise way validation used to find them, as the reference for the
    /// set-based one.
    fn pairwise_duplicates(items: &[String]) -> Vec<(usize, usize)> {
        (0..items.len())
            .filter_map(|i| {
                items[..i]
                    .iter()
                    .position(|earlier| *earlier == items[i])
                    .map(|first| (i, first))
            })
            .collect()
    }

    proptest! {
        #[test]
        fn repeated_keys_and_options_are_found_as_pairwise(
            keys in prop::collection::vec("[a-c]{1,2}", 0..12),
            options in prop::collection::vec("[xyz]{1,2}", 1..12),
        ) {
            let mut schemas: Vec<Value> = keys
                .iter()
                .map(|key| json!({"key": key, "type": "string"}))
                .collect();
            schemas.push(choices_field("options", &options));
            let found = match TemplateDefinition::parse(&json!({"field-schemas": schemas})) {
                Ok(_) => vec![],
                Err(errors) => errors.into_iter().map(|e| (e.pointer, e.message)).collect(),
            };
            let mut expected: Vec<(String, String)> = pairwise_duplicates(&keys)
                .into_iter()
                .map(|(i, first)| (
                    format!("/field-schemas/{i}/key"),
                    format!("`{}` is already the key of /field-schemas/{first}", keys[i]),
                ))
                .collect();
            let at = keys.len();
            expected.extend(pairwise_duplicates(&options).into_iter().map(|(j, _)| (
                format!("/field-schemas/{at}/config/options/{j}"),
                format!("`{}` is listed twice", options[j]),
            )));
            prop_assert_eq!(found, expected);
        }

        #[test]
        fn the_size_count_is_the_compact_length_up_to_the_limit(
            values in prop::collection::vec(("[a-z\"\\\\é]{0,8}", any::<i32>(), any::<bool>()), 0..20),
            limit in 1usize..400,
        ) {
            let value: Value = values
                .iter()
                .map(|(s, n, b)| json!({"s": s, "n": n, "b": b, "a": [s, null]}))
                .collect();
            let length = serde_json::to_vec(&value).unwrap().len();
            prop_assert_eq!(json_size_up_to(&value, usize::MAX), length);
            prop_assert_eq!(json_size_up_to(&value, limit), length.min(limit));
        }
    }
}
