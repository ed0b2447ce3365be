//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "idshare API",
        description = "Identity verification and Connect data sharing, wire-compatible with Persona's JSON:API. \
                       Every request needs `Authorization: Bearer <API key>`; keys belong to one environment. \
                       Answers add idshare's extensions to Persona's shape; send `Idshare-Shape: persona` for exactly Persona's shape.",
    ),
    servers((url = "/", description = "This server")),
    modifiers(&BearerAuth),
    // The default `meta` of request documents, which no operation names itself.
    components(schemas(crate::http::jsonapi::EmptyMeta)),
    tags(
        (name = "Inquiry templates", description = "Templates and their immutable versions"),
        (name = "Inquiries", description = "One end user's verification attempt"),
        (name = "Files", description = "Uploaded images and documents, and what was read from identity documents"),
        (name = "Verifications and reports", description = "Results of the verification pipeline"),
        (name = "Events", description = "Everything that happened, in order"),
        (name = "Connect", description = "Connections between a source and a destination organization, for sharing verified data"),
        (name = "Audit log", description = "Who (a dashboard user, an API key or the server itself) looked at or changed what, and in which request"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("idsk_<environment>_…")
                        .build(),
                ),
            );
    }
}

/// The document's fixed part; the router adds every path.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The answers every operation can give, whatever its handler: the pipeline in front of every
/// handler (authentication, permission, rate limit, query and path checks) and the database.
const EVERY_OPERATION: &[(&str, &str)] = &[
    (
        "400",
        "Bad request: an unknown or malformed query parameter, path segment or body",
    ),
    ("401", "No API key, or one that is unknown or revoked"),
    (
        "403",
        "The API key lacks the permission this operation needs",
    ),
    (
        "429",
        "Too many requests for this environment; `Retry-After` says when to try again",
    ),
    ("500", "An unexpected error; the log holds its cause"),
    (
        "503",
        "The database cannot be reached or is too busy; `Retry-After` says when to try again",
    ),
];

/// What operations that take a path id can answer besides.
const WITH_AN_ID: &[(&str, &str)] = &[
    ("404", "No such object in this organization and environment"),
    ("409", "The object's state does not allow this"),
];

/// What operations that change something can answer besides.
const CHANGING: &[(&str, &str)] = &[
    (
        "409",
        "The object's state does not allow this, or a request with the same `Idempotency-Key` is \
         still being answered",
    ),
    ("413", "The request body is larger than the server accepts"),
    (
        "415",
        "The body is not JSON (`application/json` or `application/vnd.api+json`)",
    ),
    (
        "422",
        "The body is understood but breaks a rule; each problem is listed",
    ),
];

/// Text the server accepts anywhere: no control character but tab, line feed and carriage
/// return (`idshare_domain::text`).
const TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";

/// Rules across members of a request that derived schemas cannot state, by component name.
fn member_rules() -> [(&'static str, &'static str, serde_json::Value); 2] {
    [
        (
            "CreateInquiryAttributes",
            "oneOf",
            serde_json::json!([
                {"required": ["inquiry-template-id"], "not": {"required": ["inquiry-template-version-id"]}},
                {"required": ["inquiry-template-version-id"], "not": {"required": ["inquiry-template-id"]}},
            ]),
        ),
        (
            "RedeemAttributes",
            "not",
            serde_json::json!({"required": ["destination-id", "inquiry-template-id"]}),
        ),
    ]
}

/// Completes the generated document with what holds for every operation, so that no
/// handler can forget it: the error answers of the shared pipeline, the pattern of each typed
/// id in a path (`inq_…` becomes `^inq_[1-9A-HJ-NP-Za-km-z]{24}$`), the page size's range, the
/// characters text may hold, rules across members, and attributes that are optional because a
/// sparse fieldset (`fields[type]`) may leave any of them out.
pub fn complete(document: &mut serde_json::Value) {
    let request_schemas = request_schema_names(document);
    if let Some(paths) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        for item in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            for (method, operation) in item.iter_mut() {
                let changing = method != "get";
                complete_operation(operation, changing);
            }
        }
    }
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    {
        for name in &request_schemas {
            if let Some(schema) = schemas.get_mut(name) {
                constrain_text(schema);
            }
        }
        for (name, keyword, rule) in member_rules() {
            if let Some(schema) = schemas.get_mut(name) {
                schema[keyword] = rule;
            }
        }
        for (_, schema) in schemas
            .iter_mut()
            .filter(|(name, _)| name.starts_with("ResourceObject_"))
        {
            if let Some(attributes) = schema
                .pointer_mut("/properties/attributes")
                .and_then(serde_json::Value::as_object_mut)
            {
                attributes.remove("required");
                attributes.insert(
                    "description".into(),
                    "Every attribute is present unless `fields[<type>]` names fewer.".into(),
                );
            }
        }
    }
}

/// The components a request body refers to, directly or through others.
fn request_schema_names(document: &serde_json::Value) -> std::collections::BTreeSet<String> {
    fn refs(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child.as_str()) {
                        ("$ref", Some(target)) => into.extend(
                            target
                                .strip_prefix("#/components/schemas/")
                                .map(str::to_owned),
                        ),
                        _ => refs(child, into),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| refs(item, into)),
            _ => {}
        }
    }
    let mut pending = vec![];
    if let Some(paths) = document["paths"].as_object() {
        for operation in paths
            .values()
            .filter_map(serde_json::Value::as_object)
            .flat_map(|item| item.values())
        {
            refs(&operation["requestBody"], &mut pending);
        }
    }
    let mut names = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if names.insert(name.clone()) {
            refs(&document["components"]["schemas"][&name], &mut pending);
        }
    }
    names
}

/// Gives every free text schema in `schema` (a string without pattern, enumeration or format,
/// also in members, items and alternatives) the pattern of what text may hold.
fn constrain_text(schema: &mut serde_json::Value) {
    let is_text = match &schema["type"] {
        serde_json::Value::String(kind) => kind == "string",
        serde_json::Value::Array(kinds) => kinds.iter().any(|k| k == "string"),
        _ => false,
    };
    let constrained = ["pattern", "enum", "format", "const"]
        .iter()
        .any(|keyword| schema.get(keyword).is_some());
    if is_text && !constrained {
        schema["pattern"] = TEXT_PATTERN.into();
    }
    if let Some(items) = schema.get_mut("items") {
        constrain_text(items);
    }
    if let Some(properties) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        properties.values_mut().for_each(constrain_text);
    }
    for alternatives in ["oneOf", "anyOf", "allOf"] {
        if let Some(schemas) = schema
            .get_mut(alternatives)
            .and_then(serde_json::Value::as_array_mut)
        {
            schemas.iter_mut().for_each(constrain_text);
        }
    }
}

fn complete_operation(operation: &mut serde_json::Value, changing: bool) {
    let mut has_path_id = false;
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(serde_json::Value::as_array_mut)
    {
        for parameter in parameters.iter_mut() {
            if parameter["name"] == "page[size]" {
                parameter["schema"] = serde_json::json!({
                    "type": "integer",
                    "minimum": 1,
                    "maximum": crate::http::query::MAX_PAGE_SIZE,
                    "default": crate::http::query::DEFAULT_PAGE_SIZE,
                });
            }
            has_path_id |= parameter["in"] == "path";
            let prefix = parameter["description"]
                .as_str()
                .and_then(|d| d.strip_suffix("_…"))
                .filter(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
                .map(str::to_owned);
            if let (Some(prefix), Some(schema)) = (prefix, parameter.get_mut("schema")) {
                schema["pattern"] = format!("^{prefix}_[1-9A-HJ-NP-Za-km-z]{{24}}$").into();
            }
            if let Some(schema) = parameter.get_mut("schema") {
                constrain_text(schema);
            }
        }
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let extra = EVERY_OPERATION
        .iter()
        .chain(has_path_id.then_some(WITH_AN_ID).into_iter().flatten())
        .chain(changing.then_some(CHANGING).into_iter().flatten());
    for (status, response) in responses.iter_mut() {
        if response.get("description").is_none() && response.get("$ref").is_none() {
            let reason = status
                .parse::<u16>()
                .ok()
                .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Answer");
            response["description"] = reason.into();
        }
    }
    for (status, description) in extra {
        responses.entry(*status).or_insert_with(|| {
            serde_json::json!({
                "description": description,
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorDocument"}
                }}
            })
        });
    }
}
