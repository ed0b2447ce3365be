//! Persona conformance: a full scenario on the real server, every answer validated against the
//! schema Persona's published OpenAPI document gives for that operation and status (JSON Schema
//! 2020-12, as OpenAPI 3.1 defines it). The document is not part of this repository: the test
//! reads it from the path in `IDSHARE_PERSONA_OPENAPI` (`scripts/test` sets it when the file is
//! beside the checkout) and says that it is skipped when the variable is unset.

use std::collections::{BTreeMap, HashMap};

use jsonschema::{Draft, Registry, ValidationError, Validator, error::ValidationErrorKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use idshare_service::jsonapi;

use crate::helpers::{Backend, TestApp, spawn_app};

const SPEC_VARIABLE: &str = "IDSHARE_PERSONA_OPENAPI";
const SPEC_URI: &str = "urn:persona:openapi";
const EMAIL: &str = "ada.lovelace@example.com";

/// What a violation is, as the issue counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    MissingRequired,
    WrongType,
    WrongTypeString,
    OutsideEnum,
    UnknownMember,
    UndocumentedStatus,
    Other,
}

impl Kind {
    const ALL: [Self; 7] = [
        Self::MissingRequired,
        Self::WrongType,
        Self::WrongTypeString,
        Self::OutsideEnum,
        Self::UnknownMember,
        Self::UndocumentedStatus,
        Self::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::MissingRequired => "missing required member",
            Self::WrongType => "wrong JSON type",
            Self::WrongTypeString => "wrong `type` string",
            Self::OutsideEnum => "value outside enum/const",
            Self::UnknownMember => "unknown member",
            Self::UndocumentedStatus => "status not documented",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone)]
struct Violation {
    operation: String,
    kind: Kind,
    /// An unknown member that is a documented extension.
    documented: bool,
    /// Where in the answer (a JSON pointer).
    at: String,
    /// The member names concerned (unknown or missing members), else a description.
    detail: String,
}

/// Persona's OpenAPI document, with its schemas ready to validate against.
struct Spec {
    document: Value,
    registry: Registry<'static>,
    validators: HashMap<String, Validator>,
}

impl Spec {
    fn load() -> Option<Self> {
        let path = std::env::var_os(SPEC_VARIABLE)?;
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{SPEC_VARIABLE}={}: {e}", path.to_string_lossy()));
        let document: Value = serde_json::from_str(&text).expect("Persona's OpenAPI is JSON");
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(
                SPEC_URI,
                Draft::Draft202012.create_resource(document.clone()),
            )
            .expect("register Persona's document")
            .prepare()
            .expect("prepare Persona's document");
        Some(Self {
            document,
            registry,
            validators: HashMap::new(),
        })
    }

    /// The Persona path template `path` (without `/api/v1` and the query) answers to, a literal
    /// segment winning over a parameter (`/inquiries/search` over `/inquiries/{inquiry-id}`).
    fn operation_path(&self, method: &Method, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = method.as_str().to_ascii_lowercase();
        self.document["paths"]
            .as_object()?
            .iter()
            .filter(|(_, operations)| operations.get(&method).is_some())
            .filter_map(|(template, _)| {
                let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (part, segment) in parts.iter().zip(&segments) {
                    if part.starts_with('{') {
                        continue;
                    }
                    if part != segment {
                        return None;
                    }
                    literal += 1;
                }
                Some((literal, template.clone()))
            })
            .max()
            .map(|(_, template)| template)
    }

    /// The JSON pointer of the schema of `template`'s `method` answer with `status`, following
    /// a `$ref` to a shared response; `None` when Persona documents no such status.
    fn schema_pointer(&self, template: &str, method: &Method, status: u16) -> Option<String> {
        let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
        let method = method.as_str().to_ascii_lowercase();
        let mut at = format!("/paths/{}/{method}/responses/{status}", escape(template));
        let mut response = self.document.pointer(&at)?;
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            at = reference.trim_start_matches('#').to_owned();
            response = self.document.pointer(&at)?;
        }
        response.pointer("/content/application~1json/schema")?;
        Some(format!("{at}/content/application~1json/schema"))
    }

    fn validator(&mut self, pointer: &str) -> &Validator {
        let registry = &self.registry;
        self.validators
            .entry(pointer.to_owned())
            .or_insert_with(|| {
                // A URI fragment carries no braces: the path template's are percent-encoded.
                let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
                jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .with_registry(registry)
                    .build(&json!({"$ref": format!("{SPEC_URI}#{fragment}")}))
                    .unwrap_or_else(|e| panic!("Persona's schema at {pointer}: {e}"))
            })
    }
}

/// Sorts one validation error into the kinds (the closest branch of a `oneOf`/`anyOf`).
fn classify(error: &ValidationError<'_>, out: &mut Vec<(Kind, String, String)>) {
    let at = error.instance_path().as_str().to_owned();
    match error.kind() {
        ValidationErrorKind::Required { property } => out.push((
            Kind::MissingRequired,
            at,
            property.as_str().unwrap_or_default().to_owned(),
        )),
        ValidationErrorKind::Type { .. } => out.push((Kind::WrongType, at, error.to_string())),
        ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. } => {
            let kind = if at.ends_with("/type") {
                Kind::WrongTypeString
            } else {
                Kind::OutsideEnum
            };
            out.push((kind, at, error.to_string()));
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for member in unexpected {
                out.push((Kind::UnknownMember, at.clone(), member.clone()));
            }
        }
        ValidationErrorKind::FalseSchema => {
            let member = at.rsplit('/').next().unwrap_or_default().to_owned();
            let parent = at[..at.len() - member.len()]
                .trim_end_matches('/')
                .to_owned();
            out.push((Kind::UnknownMember, parent, member));
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            // The branch meant is the one whose `type` matched, then the one closest to valid.
            let closest = context.iter().min_by_key(|branch| {
                let other_type = branch.iter().any(|e| {
                    e.instance_path().as_str().ends_with("/type")
                        && matches!(
                            e.kind(),
                            ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. }
                        )
                });
                (other_type, branch.len())
            });
            match closest {
                Some(branch) if !branch.is_empty() => {
                    for e in branch {
                        classify(e, out);
                    }
                }
                _ => out.push((Kind::Other, at, error.to_string())),
            }
        }
        _ => out.push((Kind::Other, at, error.to_string())),
    }
}

/// How the scenario asks for answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// idshare's default: Persona's shape plus idshare's documented extensions.
    Default,
    /// `Idshare-Shape: persona`: exactly Persona's shape.
    Exact,
}

/// Whether the unknown `member` of the object at `at` in `answer` (of `status`) is one of
/// idshare's documented extensions (idshare_service::jsonapi's tables, which
/// docs/persona-compatibility.md lists).
fn documented_extension(answer: &Value, status: u16, at: &str, member: &str) -> bool {
    let kind_at = |pointer: &str| {
        answer
            .pointer(pointer)
            .and_then(|r| r.get("type"))
            .and_then(Value::as_str)
            .and_then(jsonapi::extension_of)
    };
    if let Some(resource) = at.strip_suffix("/attributes") {
        return kind_at(resource).is_some_and(|e| e.attributes.contains(&member));
    }
    if member == "relationships" {
        return kind_at(at).is_some_and(|e| e.relationships);
    }
    let parent = at.rsplit('/').nth(1).unwrap_or_default();
    match member {
        "included" => at.is_empty(),
        _ if at.ends_with("/meta") || at == "/meta" => jsonapi::META_EXTENSIONS.contains(&member),
        _ if parent == "field-schemas" => jsonapi::FIELD_SCHEMA_EXTENSIONS.contains(&member),
        // Where an error points (`source`), and a 401's `details`.
        "source" => parent == "errors" && status != 422,
        "details" => parent == "errors" && status == 401,
        _ => false,
    }
}

/// Drives the scenario: sends each request, checks its status, validates the answer.
struct Conformance<'a> {
    app: &'a TestApp,
    spec: Option<Spec>,
    shape: Shape,
    validated: usize,
    per_operation: BTreeMap<String, (usize, usize)>,
    not_in_persona: BTreeMap<String, usize>,
    violations: Vec<Violation>,
}

impl<'a> Conformance<'a> {
    fn new(app: &'a TestApp, spec: Option<Spec>, shape: Shape) -> Self {
        Self {
            app,
            spec,
            shape,
            validated: 0,
            per_operation: BTreeMap::new(),
            not_in_persona: BTreeMap::new(),
            violations: vec![],
        }
    }

    async fn call(
        &mut self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
        status: StatusCode,
    ) -> Value {
        let mut request = match key {
            Some(key) => self.app.request(method.clone(), key, path),
            None => self.app.client.request(method.clone(), self.app.url(path)),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        if self.shape == Shape::Exact {
            request = request.header("idshare-shape", "persona");
        }
        let response = request.send().await.expect("request");
        let actual = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(actual, status, "{method} {path}: {text}");
        let answer: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
        };
        self.validate(&method, path, status.as_u16(), &answer);
        answer
    }

    fn validate(&mut self, method: &Method, path: &str, status: u16, answer: &Value) {
        let Some(spec) = self.spec.as_mut() else {
            return;
        };
        let path = path.split('?').next().unwrap_or(path);
        let path = path.strip_prefix("/api/v1").unwrap_or(path);
        let Some(template) = spec.operation_path(method, path) else {
            let path: Vec<&str> = path
                .split('/')
                .map(|s| if s.contains('_') { "{id}" } else { s })
                .collect();
            *self
                .not_in_persona
                .entry(format!("{method} {}", path.join("/")))
                .or_default() += 1;
            return;
        };
        let operation = format!("{method} {template} {status}");
        self.validated += 1;
        let mut found = vec![];
        match spec.schema_pointer(&template, method, status) {
            None => found.push((Kind::UndocumentedStatus, String::new(), status.to_string())),
            Some(pointer) => {
                for error in spec.validator(&pointer).iter_errors(answer) {
                    classify(&error, &mut found);
                }
            }
        }
        let entry = self.per_operation.entry(operation.clone()).or_default();
        entry.0 += 1;
        entry.1 += found.len();
        self.violations
            .extend(found.into_iter().map(|(kind, at, detail)| Violation {
                operation: operation.clone(),
                kind,
                documented: kind == Kind::UnknownMember
                    && documented_extension(answer, status, &at, &detail),
                at,
                detail,
            }));
    }

    fn count(&self, kind: Kind) -> usize {
        self.violations.iter().filter(|v| v.kind == kind).count()
    }

    /// The counts, for the test's output.
    fn print(&self) {
        println!(
            "Persona conformance ({:?} shape): {} responses validated, {} violations",
            self.shape,
            self.validated,
            self.violations.len()
        );
        for kind in Kind::ALL {
            println!("  {:<26} {}", kind.label(), self.count(kind));
        }
        println!(
            "  of the unknown members, documented extensions: {}",
            self.violations.iter().filter(|v| v.documented).count()
        );
        println!("per operation (responses, violations):");
        for (operation, (responses, violations)) in &self.per_operation {
            println!("  {operation:<62} {responses:>3} {violations:>4}");
        }
        let mut distinct: BTreeMap<(String, Kind, String, String), usize> = BTreeMap::new();
        for v in &self.violations {
            let at =
                v.at.split('/')
                    .map(|s| if s.parse::<usize>().is_ok() { "N" } else { s })
                    .collect::<Vec<_>>()
                    .join("/");
            *distinct
                .entry((v.operation.clone(), v.kind, at, v.detail.clone()))
                .or_default() += 1;
        }
        println!("violations (operation, kind, where, what, times):");
        for ((operation, kind, at, detail), times) in &distinct {
            let detail: String = detail.chars().take(140).collect();
            println!(
                "  {operation} | {} | {at} | {detail} | {times}",
                kind.label()
            );
        }
        println!("idshare operations Persona does not have (answers):");
        for (operation, answers) in &self.not_in_persona {
            println!("  {operation} {answers}");
        }
    }
}

fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

/// Every area idshare shares with Persona, from two organizations: templates and versions,
/// inquiries through their whole life, verifications, reports, documents, events, webhooks,
/// connections and share tokens (peeked, redeemed, expired), and refusals.
async fn scenario(c: &mut Conformance<'_>, bank: &str, fintech: &str, fintech_org: &str) {
    use Method as M;
    use StatusCode as S;

    // Templates and versions.
    let template = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/inquiry-templates",
            Some(&json!({"data": {"attributes": {"name": "Onboarding",
                "field-schemas": [
                    {"key": "name-first", "type": "string"},
                    {"key": "name-last", "type": "string"},
                    {"key": "birthdate", "type": "date"},
                    {"key": "email-address", "type": "string"},
                    {"key": "tier", "type": "choices", "config": {"options": ["basic", "premium"]}},
                    {"key": "interests", "type": "multi_choices", "config": {"options": ["a", "b"]}},
                    {"key": "score", "type": "number"},
                    {"key": "consent", "type": "boolean"}
                ],
                "verifications": [{"type": "email-address", "required": true}],
                "reports": [{"type": "watchlist", "on-match": "needs_review"}]}}})),
            S::CREATED,
        )
        .await,
    );
    c.call(Some(bank), M::GET, "/api/v1/inquiry-templates", None, S::OK)
        .await;
    c.call(
        Some(bank),
        M::GET,
        &format!("/api/v1/inquiry-templates/{template}?include=latest-published-version"),
        None,
        S::OK,
    )
    .await;
    let version = id_of(
        &c.call(
            Some(bank),
            M::POST,
            &format!("/api/v1/inquiry-templates/{template}/versions"),
            Some(&json!({"data": {"attributes": {
                "field-schemas": [
                    {"key": "name-first", "type": "string"},
                    {"key": "name-last", "type": "string"},
                    {"key": "birthdate", "type": "date"},
                    {"key": "email-address", "type": "string"}
                ],
                "verifications": [{"type": "email-address", "required": true}]}}})),
            S::CREATED,
        )
        .await,
    );
    c.call(
        Some(bank),
        M::GET,
        &format!("/api/v1/inquiry-template-versions?filter[inquiry-template-id]={template}"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::GET,
        &format!("/api/v1/inquiry-template-versions/{version}"),
        None,
        S::OK,
    )
    .await;

    // Inquiries: create, list, retrieve, update, submit, and each decision.
    let fields = json!({"name-first": "Ada", "name-last": "Lovelace", "birthdate": "1985-03-14",
        "email-address": EMAIL, "tier": "basic", "interests": ["a"], "score": 7, "consent": true});
    let create = |fields: &Value| {
        json!({"data": {"attributes": {"inquiry-template-id": template, "reference-id": "ref-1",
            "fields": fields}}})
    };
    let mut inquiries = vec![];
    for _ in 0..4 {
        inquiries.push(id_of(
            &c.call(
                Some(bank),
                M::POST,
                "/api/v1/inquiries",
                Some(&create(&fields)),
                S::CREATED,
            )
            .await,
        ));
    }
    let inquiry = inquiries[0].clone();
    c.call(Some(bank), M::GET, "/api/v1/inquiries", None, S::OK)
        .await;
    c.call(
        Some(bank),
        M::GET,
        "/api/v1/inquiries?filter[reference-id]=ref-1&page[size]=2",
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::GET,
        &format!("/api/v1/inquiries/{inquiry}?include=inquiry-template,inquiry-template-version"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::PATCH,
        &format!("/api/v1/inquiries/{inquiry}"),
        Some(
            &json!({"data": {"attributes": {"note": "checked", "fields": {"name-first": "Ada"}}}}),
        ),
        S::OK,
    )
    .await;
    for id in &inquiries {
        c.call(
            Some(bank),
            M::POST,
            &format!("/api/v1/inquiries/{id}/submit"),
            None,
            S::ACCEPTED,
        )
        .await;
    }
    c.app.drain().await;
    c.call(
        Some(bank),
        M::GET,
        &format!("/api/v1/inquiries/{inquiry}"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{}/approve", inquiries[1]),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{}/mark-for-review", inquiries[2]),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{}/decline", inquiries[2]),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::DELETE,
        &format!("/api/v1/inquiries/{}", inquiries[3]),
        None,
        S::OK,
    )
    .await;
    let pending = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/inquiries",
            Some(&create(&json!({"name-first": "Grace"}))),
            S::CREATED,
        )
        .await,
    );
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{pending}/generate-one-time-link"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{pending}/expire"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{pending}/resume"),
        None,
        S::OK,
    )
    .await;

    // Verifications, reports, documents.
    let verifications = c
        .call(
            Some(bank),
            M::GET,
            &format!("/api/v1/verifications?filter[inquiry-id]={inquiry}"),
            None,
            S::OK,
        )
        .await;
    let verification = verifications["data"][0]["id"].as_str().unwrap().to_owned();
    c.call(
        Some(bank),
        M::GET,
        &format!("/api/v1/verifications/{verification}"),
        None,
        S::OK,
    )
    .await;
    let reports = c
        .call(
            Some(bank),
            M::GET,
            &format!("/api/v1/reports?filter[inquiry-id]={inquiry}"),
            None,
            S::OK,
        )
        .await;
    let report = reports["data"][0]["id"].as_str().unwrap().to_owned();
    c.call(
        Some(bank),
        M::GET,
        &format!("/api/v1/reports/{report}"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{pending}/documents"),
        Some(
            &json!({"data": {"type": "document/government-id", "attributes": {
            "id-class": "pp", "issuing-country": "GB", "document-number": "123456789",
            "name-first": "Grace", "name-last": "Hopper", "birthdate": "1985-03-14",
            "expiration-date": "2099-01-01"}}}),
        ),
        S::CREATED,
    )
    .await;

    // Events.
    let events = c
        .call(Some(bank), M::GET, "/api/v1/events", None, S::OK)
        .await;
    for event in events["data"].as_array().unwrap().iter().take(40) {
        let id = event["id"].as_str().unwrap();
        c.call(
            Some(bank),
            M::GET,
            &format!("/api/v1/events/{id}"),
            None,
            S::OK,
        )
        .await;
    }

    // Webhooks.
    let webhook = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/webhooks",
            Some(
                &json!({"data": {"attributes": {"url": "https://hooks.example.invalid/idshare",
                "enabled-events": ["inquiry.approved", "inquiry.completed"]}}}),
            ),
            S::CREATED,
        )
        .await,
    );
    c.call(Some(bank), M::GET, "/api/v1/webhooks", None, S::OK)
        .await;
    let webhook_path = format!("/api/v1/webhooks/{webhook}");
    c.call(Some(bank), M::GET, &webhook_path, None, S::OK).await;
    c.call(
        Some(bank),
        M::PATCH,
        &webhook_path,
        Some(&json!({"data": {"attributes": {"enabled-events": ["inquiry.declined"]}}})),
        S::OK,
    )
    .await;
    for action in ["disable", "enable", "rotate-secret", "archive"] {
        c.call(
            Some(bank),
            M::POST,
            &format!("{webhook_path}/{action}"),
            None,
            S::OK,
        )
        .await;
    }

    // Connect: a connection, share tokens peeked, redeemed and expired.
    let connection = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/connect/connections",
            Some(&json!({"data": {"attributes": {"destination-organization-id": fintech_org}}})),
            S::CREATED,
        )
        .await,
    );
    let connection_path = format!("/api/v1/connect/connections/{connection}");
    c.call(
        Some(fintech),
        M::POST,
        &format!("{connection_path}/activate"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::GET,
        "/api/v1/connect/connections",
        None,
        S::OK,
    )
    .await;
    c.call(Some(fintech), M::GET, &connection_path, None, S::OK)
        .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("{connection_path}/deactivate"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("{connection_path}/reactivate"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(fintech),
        M::POST,
        &format!("{connection_path}/activate"),
        None,
        S::OK,
    )
    .await;
    let token_body = |source: &str| json!({"data": {"attributes": {"connection-id": connection, "source-id": source}}});
    let token = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/connect/share-tokens",
            Some(&token_body(&inquiries[1])),
            S::CREATED,
        )
        .await,
    );
    let other = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/connect/share-tokens",
            Some(&token_body(&inquiries[1])),
            S::CREATED,
        )
        .await,
    );
    let tokens = "/api/v1/connect/share-tokens";
    c.call(Some(bank), M::GET, tokens, None, S::OK).await;
    c.call(Some(fintech), M::GET, tokens, None, S::OK).await;
    c.call(
        Some(bank),
        M::GET,
        &format!("{tokens}/{token}"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(fintech),
        M::GET,
        &format!("{tokens}/{token}?peek-source-data=true"),
        None,
        S::OK,
    )
    .await;
    let destination_template = id_of(
        &c.call(
            Some(fintech),
            M::POST,
            "/api/v1/inquiry-templates",
            Some(&json!({"data": {"attributes": {"name": "Fintech",
                "field-schemas": [{"key": "name-first", "type": "string"},
                                  {"key": "email-address", "type": "string"}],
                "verifications": [{"type": "email-address", "required": true,
                                   "reuse": {"max-age-days": 30}}]}}})),
            S::CREATED,
        )
        .await,
    );
    c.call(
        Some(fintech),
        M::POST,
        &format!("{tokens}/{token}/redeem"),
        Some(&json!({"data": {"attributes": {"inquiry-template-id": destination_template}}})),
        S::ACCEPTED,
    )
    .await;
    c.app.drain().await;
    c.call(
        Some(fintech),
        M::GET,
        &format!("{tokens}/{token}"),
        None,
        S::OK,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("{tokens}/{other}/expire"),
        None,
        S::OK,
    )
    .await;
    let events = c
        .call(Some(fintech), M::GET, "/api/v1/events", None, S::OK)
        .await;
    for event in events["data"].as_array().unwrap() {
        let id = event["id"].as_str().unwrap();
        c.call(
            Some(fintech),
            M::GET,
            &format!("/api/v1/events/{id}"),
            None,
            S::OK,
        )
        .await;
    }

    // A watchlist match, dismissed.
    crate::pipeline::import_sample_lists(c.app).await;
    let screening = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/inquiry-templates",
            Some(&json!({"data": {"attributes": {"name": "Screen only",
                "field-schemas": [{"key": "name-first", "type": "string"},
                                  {"key": "name-last", "type": "string"}],
                "reports": [{"type": "watchlist", "on-match": "needs_review",
                             "config": {"lists": ["sample-watchlist"]}}]}}})),
            S::CREATED,
        )
        .await,
    );
    let screened = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/inquiries",
            Some(
                &json!({"data": {"attributes": {"inquiry-template-id": screening,
                "fields": {"name-first": "Claire", "name-last": "Richman"}}}}),
            ),
            S::CREATED,
        )
        .await,
    );
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{screened}/submit"),
        None,
        S::ACCEPTED,
    )
    .await;
    c.app.drain().await;
    let matched = c
        .call(
            Some(bank),
            M::GET,
            &format!("/api/v1/reports?filter[inquiry-id]={screened}"),
            None,
            S::OK,
        )
        .await;
    let matched = matched["data"][0]["id"].as_str().unwrap().to_owned();
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/reports/{matched}/dismiss"),
        Some(&json!({"data": {"attributes": {"reason": "x", "entity-id": "nobody"}}})),
        S::UNPROCESSABLE_ENTITY,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/reports/{matched}/dismiss"),
        Some(&json!({"data": {"attributes": {"reason": "Different birth year"}}})),
        S::OK,
    )
    .await;

    // A redemption that fails: the source is redacted before the job runs.
    let doomed = id_of(
        &c.call(
            Some(bank),
            M::POST,
            "/api/v1/connect/share-tokens",
            Some(&token_body(&inquiries[0])),
            S::CREATED,
        )
        .await,
    );
    c.call(
        Some(fintech),
        M::POST,
        &format!("{tokens}/{doomed}/redeem"),
        Some(&json!({"data": {"attributes": {"inquiry-template-id": destination_template}}})),
        S::ACCEPTED,
    )
    .await;
    c.call(
        Some(bank),
        M::DELETE,
        &format!("/api/v1/inquiries/{}", inquiries[0]),
        None,
        S::OK,
    )
    .await;
    c.app.drain().await;
    let failed = c
        .call(
            Some(fintech),
            M::GET,
            &format!("{tokens}/{doomed}"),
            None,
            S::OK,
        )
        .await;
    assert_eq!(
        failed["data"]["attributes"]["failure-reason"], "source_redacted",
        "{failed}"
    );
    // Refusals: 400, 401, 403, 404, 409, 422.
    c.call(
        Some(bank),
        M::GET,
        &format!("{tokens}/{token}?peek-source-data=true"),
        None,
        S::FORBIDDEN,
    )
    .await;
    c.call(None, M::GET, "/api/v1/inquiries", None, S::UNAUTHORIZED)
        .await;
    c.call(
        Some("idsk_sandbox_not_a_key"),
        M::GET,
        "/api/v1/inquiries",
        None,
        S::UNAUTHORIZED,
    )
    .await;
    c.call(
        Some(bank),
        M::GET,
        "/api/v1/inquiries?page[size]=0",
        None,
        S::BAD_REQUEST,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        "/api/v1/inquiries",
        Some(&json!({"data": {"attributes": {"inquiry-template-id": template, "colour": 1}}})),
        S::BAD_REQUEST,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        "/api/v1/inquiries",
        Some(&create(&json!({"birthdate": "yesterday"}))),
        S::UNPROCESSABLE_ENTITY,
    )
    .await;
    c.call(
        Some(fintech),
        M::GET,
        &format!("/api/v1/inquiries/{inquiry}"),
        None,
        S::NOT_FOUND,
    )
    .await;
    c.call(
        Some(bank),
        M::GET,
        &format!("{tokens}/cnst_notatoken"),
        None,
        S::NOT_FOUND,
    )
    .await;
    c.call(
        Some(bank),
        M::POST,
        &format!("/api/v1/inquiries/{}/approve", inquiries[2]),
        None,
        S::CONFLICT,
    )
    .await;
    c.call(
        Some(fintech),
        M::POST,
        &format!("{tokens}/{token}/redeem"),
        Some(&json!({"data": {"attributes": {"inquiry-template-id": destination_template}}})),
        S::CONFLICT,
    )
    .await;
}

/// Runs the scenario in `shape`, prints its counts and checks them; says so when skipped.
async fn run(backend: Backend, shape: Shape) {
    let Some(spec) = Spec::load() else {
        println!(
            "SKIPPED: Persona conformance needs Persona's OpenAPI document; set {SPEC_VARIABLE} to \
             its path (scripts/test does when ../shared/reference/persona-openapi/ holds it)."
        );
        return;
    };
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let fintech = app.tenant("Fintech").await;
    let mut c = Conformance::new(&app, Some(spec), shape);
    scenario(
        &mut c,
        &bank.sandbox,
        &fintech.sandbox,
        fintech.org_id.as_str(),
    )
    .await;
    c.print();
    assert!(c.validated >= 70, "the scenario validated {}", c.validated);
    let wrong: Vec<&Violation> = match shape {
        // Persona's shape plus extensions: every difference is a documented extension member.
        Shape::Default => c.violations.iter().filter(|v| !v.documented).collect(),
        // Exactly Persona's shape: no violation of any kind.
        Shape::Exact => c.violations.iter().collect(),
    };
    assert!(wrong.is_empty(), "{wrong:#?}");
}

async fn default_shape_differs_only_by_documented_extensions(backend: Backend) {
    run(backend, Shape::Default).await;
}

async fn exact_shape_has_no_violation(backend: Backend) {
    run(backend, Shape::Exact).await;
}

/// `Idshare-Shape: persona` without Persona's document: the extensions are left out, errors
/// take Persona's shape, and another value is refused.
async fn exact_shape_leaves_extensions_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let template = app.create_template(&bank.sandbox).await;
    let inquiry = id_of(
        &app.create_inquiry(&bank.sandbox, &template, json!({"name-first": "Ada"}))
            .await,
    );
    let path = format!("/api/v1/inquiries/{inquiry}");
    let send = |key: &str, path: &str, shape: &str| {
        app.request(Method::GET, key, path)
            .header("idshare-shape", shape)
            .send()
    };
    let default = crate::helpers::expect_status(
        send(&bank.sandbox, &path, "idshare").await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(default["data"]["attributes"]["missing-requirements"].is_array());
    assert_eq!(default["included"], json!([]));
    let exact = crate::helpers::expect_status(
        send(&bank.sandbox, &path, "persona").await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let attributes = exact["data"]["attributes"].as_object().unwrap();
    for extension in ["missing-requirements", "field-provenance"] {
        assert!(!attributes.contains_key(extension), "{exact}");
    }
    assert_eq!(attributes["creator"], "api");
    assert!(exact.get("included").is_none(), "{exact}");
    // Event payloads are shaped too, and events lose `sequence` and `relationships`.
    let events = crate::helpers::expect_status(
        send(&bank.sandbox, "/api/v1/events", "persona")
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let created = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["attributes"]["payload"]["data"]["id"] == inquiry.as_str())
        .unwrap();
    assert!(created.get("relationships").is_none(), "{created}");
    assert!(created["attributes"].get("sequence").is_none(), "{created}");
    assert!(
        created["attributes"]["payload"]["data"]["attributes"]
            .get("missing-requirements")
            .is_none(),
        "{created}"
    );
    // Errors: a 401 has only a title; a 400 says where in `meta.source`.
    let unauthorized = crate::helpers::expect_status(
        send("idsk_sandbox_nope", "/api/v1/inquiries", "persona")
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let error = unauthorized["errors"][0].as_object().unwrap();
    assert_eq!(
        error.keys().collect::<Vec<_>>(),
        ["title"],
        "{unauthorized}"
    );
    let bad = crate::helpers::expect_status(
        send(&bank.sandbox, "/api/v1/inquiries?page[size]=0", "persona")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(bad["errors"][0].get("source").is_none(), "{bad}");
    assert_eq!(
        bad["errors"][0]["meta"]["source"]["parameter"], "page[size]",
        "{bad}"
    );
    let refused = crate::helpers::expect_status(
        send(&bank.sandbox, &path, "camel").await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        refused["errors"][0]["details"]
            .as_str()
            .unwrap()
            .contains("Idshare-Shape"),
        "{refused}"
    );
}

/// A webhook with `idshare-shape: persona` gets its bodies without extensions; another, with
/// the default, gets them with; a third value is refused.
async fn a_webhook_can_ask_for_persona_shaped_bodies(backend: Backend) {
    use crate::webhooks::{Receiver, create_webhook};
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let key = &bank.sandbox;
    let exact = Receiver::start().await;
    let default = Receiver::start().await;
    let (exact_id, _) = create_webhook(
        &app,
        key,
        json!({"url": exact.url, "enabled-events": ["inquiry.created"], "idshare-shape": "persona"}),
    )
    .await;
    create_webhook(
        &app,
        key,
        json!({"url": default.url, "enabled-events": ["inquiry.created"]}),
    )
    .await;
    let shown = crate::helpers::expect_status(
        app.get(key, &format!("/api/v1/webhooks/{exact_id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["data"]["attributes"]["idshare-shape"], "persona");
    let refused = app
        .post(
            key,
            "/api/v1/webhooks",
            &json!({"data": {"attributes": {"url": exact.url, "enabled-events": ["*"],
                "idshare-shape": "camel"}}}),
        )
        .await;
    let error = crate::helpers::expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["source"]["pointer"], "/data/attributes/idshare-shape");
    let template = app.create_template(key).await;
    app.create_inquiry(key, &template, json!({"name-first": "Ada"}))
        .await;
    app.drain().await;
    let exact = exact.received()[0].json();
    assert!(exact["data"].get("relationships").is_none(), "{exact}");
    assert!(
        exact["data"]["attributes"].get("sequence").is_none(),
        "{exact}"
    );
    let inquiry = &exact["data"]["attributes"]["payload"]["data"]["attributes"];
    assert!(inquiry.get("missing-requirements").is_none(), "{exact}");
    assert_eq!(inquiry["fields"]["name-first"]["value"], "Ada");
    let default = default.received()[0].json();
    assert!(
        default["data"]["attributes"]["sequence"].is_number(),
        "{default}"
    );
    assert!(
        default["data"]["attributes"]["payload"]["data"]["attributes"]["missing-requirements"]
            .is_array()
    );
}

backend_tests!(
    default_shape_differs_only_by_documented_extensions,
    exact_shape_has_no_violation,
    exact_shape_leaves_extensions_out,
    a_webhook_can_ask_for_persona_shaped_bodies
);
