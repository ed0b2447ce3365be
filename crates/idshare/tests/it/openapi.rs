//! The served OpenAPI document: valid 3.1, self-consistent, and the same list of routes as the
//! router serves and the tenancy table covers.

use std::collections::BTreeSet;

use idshare_domain::id::{EventId, InquiryId, InquiryTemplateId, InquiryTemplateVersionId};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{
    helpers::{Backend, TestApp, spawn_app},
    tenancy::ENDPOINTS,
};

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// GETs the document (no key) and returns it as text and as JSON.
async fn fetch_document(app: &TestApp) -> (String, Value) {
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{text}");
    let value = serde_json::from_str(&text).expect("the document is JSON");
    (text, value)
}

/// Replaces every `{placeholder}` in a path by `{id}`.
fn normalize(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `(METHOD, path)` of every operation in the document.
fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("`paths` is an object");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item is an object");
            item.keys()
                .filter(|key| HTTP_METHODS.contains(&key.as_str()))
                .map(|method| (method.to_uppercase(), normalize(path)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every `"$ref"` string anywhere in `value`.
fn collect_refs<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(target)) => refs.push(target),
                    _ => collect_refs(child, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

async fn served_document_is_valid_openapi_3_1(backend: Backend) {
    let app = spawn_app(backend).await;
    let (text, document) = fetch_document(&app).await;
    let version = document["openapi"].as_str().expect("`openapi` is a string");
    assert!(version.starts_with("3.1"), "openapi version {version}");
    let spec = oas3::from_json(&text).expect("the document parses as OpenAPI 3.1");
    assert!(
        !spec.paths.as_ref().is_none_or(|p| p.is_empty()),
        "the document has paths"
    );

    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("components/schemas is an object");
    let mut refs = vec![];
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty(), "the document uses $ref");
    let dangling: Vec<&str> = refs
        .into_iter()
        .filter(|target| {
            target
                .strip_prefix("#/components/schemas/")
                .is_none_or(|name| !schemas.contains_key(name))
        })
        .collect();
    assert!(
        dangling.is_empty(),
        "$refs that name no schema in components/schemas: {dangling:?}"
    );
}

async fn document_lists_exactly_the_routes_in_the_tenancy_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, document) = fetch_document(&app).await;
    let documented = documented_routes(&document);
    let table: BTreeSet<(String, String)> = ENDPOINTS
        .iter()
        .map(|e| (e.method.as_str().to_owned(), normalize(e.path)))
        .collect();
    assert_eq!(
        table.len(),
        ENDPOINTS.len(),
        "the tenancy table has duplicate rows"
    );

    let undocumented: Vec<_> = table.difference(&documented).collect();
    let untested: Vec<_> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty() && untested.is_empty(),
        "the OpenAPI document and tenancy::ENDPOINTS differ.\n\
         In the document but missing from the tenancy table (add a row): {untested:?}\n\
         In the tenancy table but missing from the document: {undocumented:?}"
    );
}

/// A well-formed id nobody has, of the type the collection before it holds.
fn unknown_id(collection: &str) -> String {
    match collection {
        "inquiries" => InquiryId::generate().to_string(),
        "inquiry-templates" => InquiryTemplateId::generate().to_string(),
        "inquiry-template-versions" => InquiryTemplateVersionId::generate().to_string(),
        "events" => EventId::generate().to_string(),
        other => format!("{other}_123456789ABCDEFGHJKLMNPQ"),
    }
}

/// `path` with each `{…}` replaced by an unknown id of the right type.
fn concrete(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            if segment.starts_with('{') {
                unknown_id(segments[i - 1])
            } else {
                (*segment).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn every_documented_route_is_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, document) = fetch_document(&app).await;
    let routes = documented_routes(&document);
    assert!(!routes.is_empty());
    for (method, path) in routes {
        let url = concrete(&path);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let response = app
            .client
            .request(method.clone(), app.url(&url))
            .send()
            .await
            .expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {url} (documented as {path}) without a key: {text}"
        );
    }
}

/// The statuses the document lists for `method path`.
fn documented_statuses(document: &Value, method: &str, path: &str) -> Vec<String> {
    document["paths"][path][method.to_lowercase()]["responses"]
        .as_object()
        .map(|responses| responses.keys().cloned().collect())
        .unwrap_or_default()
}

/// What every client can be answered whatever it sends — no key, a malformed id, an unknown id,
/// an unknown query parameter — is in the document, each response has a description, and each
/// typed path id has the pattern that tells a malformed id from an unknown one.
async fn every_answer_of_the_pipeline_is_documented(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Documented").await;
    let (_, document) = fetch_document(&app).await;
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                assert!(
                    response["description"].is_string(),
                    "{method} {path}: the {status} response has no description"
                );
            }
            let documented = documented_statuses(&document, method, path);
            for status in ["400", "401", "403", "429", "503"] {
                assert!(
                    documented.iter().any(|s| s == status),
                    "{method} {path} does not document {status}: {documented:?}"
                );
            }
            let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let params = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let path_ids: Vec<&Value> = params.iter().filter(|p| p["in"] == "path").collect();
            for id in &path_ids {
                let schema = &id["schema"];
                assert!(
                    schema["pattern"].is_string(),
                    "{method} {path}: the path parameter {} has no pattern",
                    id["name"]
                );
                let validator = jsonschema::validator_for(schema).expect("a valid schema");
                let prefix = id["description"]
                    .as_str()
                    .expect("described")
                    .trim_end_matches("_…");
                assert!(
                    !validator.is_valid(&serde_json::json!("not-an-id")),
                    "{method} {path}"
                );
                assert!(
                    validator.is_valid(&serde_json::json!(format!(
                        "{prefix}_123456789ABCDEFGHJKLMNPQ"
                    ))),
                    "{method} {path}: {schema}"
                );
                assert!(
                    documented.iter().any(|s| s == "404"),
                    "{method} {path}: 404"
                );
            }
            // A malformed id and an unknown query parameter: answers the document lists.
            let malformed = if path_ids.is_empty() {
                format!("{path}?unknown-parameter=1")
            } else {
                path.split('/')
                    .map(|segment| {
                        if segment.starts_with('{') {
                            "not-an-id"
                        } else {
                            segment
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let response = app
                .request(http_method.clone(), &tenant.sandbox, &malformed)
                .send()
                .await
                .expect("request");
            let status = response.status().as_str().to_owned();
            assert!(
                documented.contains(&status),
                "{method} {malformed} answered {status}, which {path} does not document: {documented:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} operations checked");

    // Text in request bodies says which characters it may hold (no control characters but tab
    // and line breaks), down to nested members and array items.
    let mut unconstrained = vec![];
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            free_text(
                &document,
                body,
                &format!("{method} {path}"),
                &mut unconstrained,
            );
        }
    }
    assert!(
        unconstrained.is_empty(),
        "free text without a pattern: {unconstrained:#?}"
    );
}

/// Where `schema` (followed through `$ref`s) holds a string without pattern, enum or format.
fn free_text(document: &Value, schema: &Value, at: &str, found: &mut Vec<String>) {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.trim_start_matches("#/components/schemas/");
        return free_text(
            document,
            &document["components"]["schemas"][name],
            at,
            found,
        );
    }
    let is_text = schema["type"] == "string"
        || schema["type"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "string"));
    let constrained = ["pattern", "enum", "format", "const"]
        .iter()
        .any(|keyword| schema.get(keyword).is_some());
    if is_text && !constrained {
        found.push(at.to_owned());
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, member) in properties {
            free_text(document, member, &format!("{at}/{name}"), found);
        }
    }
    if schema.get("items").is_some() {
        free_text(document, &schema["items"], &format!("{at}/items"), found);
    }
}

backend_tests!(
    every_answer_of_the_pipeline_is_documented,
    served_document_is_valid_openapi_3_1,
    document_lists_exactly_the_routes_in_the_tenancy_table,
    every_documented_route_is_served,
);
