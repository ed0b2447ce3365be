//! Tenant isolation, table-driven: every API endpoint is a row of [`ENDPOINTS`] and every test
//! runs over the whole table, so a new endpoint is isolated (and authenticated, and
//! permission-checked) as soon as it joins the table. The OpenAPI test makes sure it does.

use idshare_domain::{environment::Environment, id::ApiKeyId};
use idshare_store::{Scope, api_keys};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{
    Backend, Tenant, TestApp, expect_error, expect_status, spawn_app, standard_template,
};

/// One API endpoint. Placeholders `{inquiry}`, `{template}`, `{version}`, `{event}`,
/// `{connection}`, … in `path`, `query` and `body` are replaced by ids of the object under test.
#[derive(Debug)]
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    /// Query string that makes the request valid (without `?`), or "".
    pub query: &'static str,
    /// A valid JSON body, if the endpoint takes one.
    pub body: Option<&'static str>,
    /// The permission the endpoint requires.
    pub permission: &'static str,
}

const fn row(
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    permission: &'static str,
) -> Endpoint {
    Endpoint {
        method,
        path,
        query: "",
        body,
        permission,
    }
}

const TEMPLATE_BODY: &str = r#"{"data": {"attributes": {"name": "Other", "field-schemas": [{"key": "name-first", "type": "string"}]}}}"#;
const VERSION_BODY: &str =
    r#"{"data": {"attributes": {"field-schemas": [{"key": "name-first", "type": "string"}]}}}"#;
const INQUIRY_BODY: &str = r#"{"data": {"attributes": {"inquiry-template-id": "{template}", "fields": {"name-first": "Bo", "name-last": "Bee"}}}}"#;
const UPDATE_BODY: &str = r#"{"data": {"attributes": {"tags": ["intruder"], "note": "intruder"}}}"#;
const COMMENT_BODY: &str = r#"{"meta": {"comment": "intruder"}}"#;
const DOCUMENT_BODY: &str = r#"{"data": {"type": "document/government-id", "attributes": {"id-class": "pp", "issuing-country": "GB", "document-number": "X1", "name-first": "Bo", "name-last": "Bee"}}}"#;
const DISMISS_BODY: &str = r#"{"data": {"attributes": {"reason": "intruder"}}}"#;
const CONFIRMATION_BODY: &str = r#"{"data": {"attributes": {"field": "email-address"}}}"#;
const CONFIRMATION_CODE_BODY: &str =
    r#"{"data": {"attributes": {"field": "email-address", "code": "000000"}}}"#;
const CONNECTION_BODY: &str =
    r#"{"data": {"attributes": {"destination-organization-id": "{peer}"}}}"#;
const SHARE_TOKEN_BODY: &str =
    r#"{"data": {"attributes": {"connection-id": "{connection}", "source-id": "{checked}"}}}"#;

const WEBHOOK_BODY: &str =
    r#"{"data": {"attributes": {"url": "http://127.0.0.1:9/intruder", "enabled-events": ["*"]}}}"#;
const WEBHOOK_UPDATE_BODY: &str = r#"{"data": {"attributes": {"name": "intruder"}}}"#;

const WORKFLOW_BODY: &str = r#"{"data": {"attributes": {"name": "intruder", "definition": {"trigger": {"event": "inquiry.created"}, "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "intruder"}}]}}}}"#;
const WORKFLOW_VERSION_BODY: &str = r#"{"data": {"attributes": {"definition": {"trigger": {"event": "inquiry.created"}, "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "intruder"}}]}}}}"#;

const REDEEM_BODY: &str = r#"{"data": {"attributes": {}}}"#;
const PREVIEW_BODY: &str = r#"{"data": {"attributes": {"inquiry-template-id": "{template}"}}}"#;

const TEMPLATE_READ: &str = "inquiry-template.read";
const TEMPLATE_WRITE: &str = "inquiry-template.write";
const INQUIRY_READ: &str = "inquiry.read";
const INQUIRY_WRITE: &str = "inquiry.write";
const EVENT_READ: &str = "event.read";
const FILE_READ: &str = "file.read";
const FILE_WRITE: &str = "file.write";
const VERIFICATION_READ: &str = "verification.read";
const REPORT_READ: &str = "report.read";
const REPORT_WRITE: &str = "report.write";
const CONNECT_READ: &str = "connect.read";
const CONNECT_WRITE: &str = "connect.write";
const WEBHOOK_READ: &str = "webhook.read";
const WEBHOOK_WRITE: &str = "webhook.write";
const WORKFLOW_READ: &str = "workflow.read";
const WORKFLOW_WRITE: &str = "workflow.write";
const AUDIT_READ: &str = "audit.read";

/// Every endpoint of the API (the OpenAPI test checks this against the served document).
pub const ENDPOINTS: &[Endpoint] = &[
    row(
        Method::POST,
        "/api/v1/inquiry-templates",
        Some(TEMPLATE_BODY),
        TEMPLATE_WRITE,
    ),
    row(
        Method::GET,
        "/api/v1/inquiry-templates",
        None,
        TEMPLATE_READ,
    ),
    row(
        Method::GET,
        "/api/v1/inquiry-templates/{template}",
        None,
        TEMPLATE_READ,
    ),
    row(
        Method::POST,
        "/api/v1/inquiry-templates/{template}/versions",
        Some(VERSION_BODY),
        TEMPLATE_WRITE,
    ),
    Endpoint {
        method: Method::GET,
        path: "/api/v1/inquiry-template-versions",
        query: "filter[inquiry-template-id]={template}",
        body: None,
        permission: TEMPLATE_READ,
    },
    row(
        Method::GET,
        "/api/v1/inquiry-template-versions/{version}",
        None,
        TEMPLATE_READ,
    ),
    row(
        Method::POST,
        "/api/v1/inquiry-template-versions/{version}/publish",
        None,
        TEMPLATE_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries",
        Some(INQUIRY_BODY),
        INQUIRY_WRITE,
    ),
    row(Method::GET, "/api/v1/inquiries", None, INQUIRY_READ),
    row(
        Method::GET,
        "/api/v1/inquiries/{inquiry}",
        None,
        INQUIRY_READ,
    ),
    row(
        Method::PATCH,
        "/api/v1/inquiries/{inquiry}",
        Some(UPDATE_BODY),
        INQUIRY_WRITE,
    ),
    row(
        Method::DELETE,
        "/api/v1/inquiries/{inquiry}",
        None,
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/approve",
        Some(COMMENT_BODY),
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/decline",
        Some(COMMENT_BODY),
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/mark-for-review",
        Some(COMMENT_BODY),
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/expire",
        None,
        INQUIRY_WRITE,
    ),
    row(Method::GET, "/api/v1/events", None, EVENT_READ),
    row(Method::GET, "/api/v1/events/{event}", None, EVENT_READ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/submit",
        None,
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/resume",
        None,
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/generate-one-time-link",
        None,
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/files",
        None,
        FILE_WRITE,
    ),
    row(
        Method::GET,
        "/api/v1/inquiries/{inquiry}/files",
        None,
        FILE_READ,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/documents",
        Some(DOCUMENT_BODY),
        INQUIRY_WRITE,
    ),
    Endpoint {
        method: Method::GET,
        path: "/api/v1/verifications",
        query: "filter[inquiry-id]={checked}",
        body: None,
        permission: VERIFICATION_READ,
    },
    row(
        Method::GET,
        "/api/v1/verifications/{verification}",
        None,
        VERIFICATION_READ,
    ),
    Endpoint {
        method: Method::GET,
        path: "/api/v1/reports",
        query: "filter[inquiry-id]={checked}",
        body: None,
        permission: REPORT_READ,
    },
    row(Method::GET, "/api/v1/reports/{report}", None, REPORT_READ),
    row(
        Method::POST,
        "/api/v1/reports/{report}/dismiss",
        Some(DISMISS_BODY),
        REPORT_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/confirmations",
        Some(CONFIRMATION_BODY),
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/inquiries/{inquiry}/confirmations/verify",
        Some(CONFIRMATION_CODE_BODY),
        INQUIRY_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/connect/connections",
        Some(CONNECTION_BODY),
        CONNECT_WRITE,
    ),
    row(
        Method::GET,
        "/api/v1/connect/connections",
        None,
        CONNECT_READ,
    ),
    row(
        Method::GET,
        "/api/v1/connect/connections/{connection}",
        None,
        CONNECT_READ,
    ),
    row(
        Method::POST,
        "/api/v1/connect/connections/{connection}/activate",
        None,
        CONNECT_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/connect/connections/{connection}/deactivate",
        None,
        CONNECT_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/connect/connections/{connection}/reactivate",
        None,
        CONNECT_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/connect/share-tokens",
        Some(SHARE_TOKEN_BODY),
        CONNECT_WRITE,
    ),
    row(
        Method::GET,
        "/api/v1/connect/share-tokens",
        None,
        CONNECT_READ,
    ),
    row(
        Method::GET,
        "/api/v1/connect/share-tokens/{share-token}",
        None,
        CONNECT_READ,
    ),
    row(
        Method::POST,
        "/api/v1/connect/share-tokens/{share-token}/expire",
        None,
        CONNECT_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/connect/share-tokens/{share-token}/redeem",
        Some(REDEEM_BODY),
        CONNECT_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/connect/share-tokens/{share-token}/preview",
        Some(PREVIEW_BODY),
        CONNECT_READ,
    ),
    row(
        Method::POST,
        "/api/v1/webhooks",
        Some(WEBHOOK_BODY),
        WEBHOOK_WRITE,
    ),
    row(Method::GET, "/api/v1/webhooks", None, WEBHOOK_READ),
    row(
        Method::GET,
        "/api/v1/webhooks/{webhook}",
        None,
        WEBHOOK_READ,
    ),
    row(
        Method::PATCH,
        "/api/v1/webhooks/{webhook}",
        Some(WEBHOOK_UPDATE_BODY),
        WEBHOOK_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/webhooks/{webhook}/archive",
        None,
        WEBHOOK_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/webhooks/{webhook}/enable",
        None,
        WEBHOOK_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/webhooks/{webhook}/disable",
        None,
        WEBHOOK_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/webhooks/{webhook}/rotate-secret",
        None,
        WEBHOOK_WRITE,
    ),
    row(
        Method::GET,
        "/api/v1/webhooks/{webhook}/deliveries",
        None,
        WEBHOOK_READ,
    ),
    row(
        Method::GET,
        "/api/v1/webhooks/{webhook}/deliveries/{delivery}",
        None,
        WEBHOOK_READ,
    ),
    row(
        Method::POST,
        "/api/v1/webhooks/{webhook}/deliveries/{delivery}/redeliver",
        None,
        WEBHOOK_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/workflows",
        Some(WORKFLOW_BODY),
        WORKFLOW_WRITE,
    ),
    row(Method::GET, "/api/v1/workflows", None, WORKFLOW_READ),
    row(
        Method::GET,
        "/api/v1/workflows/{workflow}",
        None,
        WORKFLOW_READ,
    ),
    row(
        Method::POST,
        "/api/v1/workflows/{workflow}/versions",
        Some(WORKFLOW_VERSION_BODY),
        WORKFLOW_WRITE,
    ),
    row(
        Method::GET,
        "/api/v1/workflows/{workflow}/versions",
        None,
        WORKFLOW_READ,
    ),
    row(
        Method::POST,
        "/api/v1/workflows/{workflow}/publish",
        None,
        WORKFLOW_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/workflows/{workflow}/enable",
        None,
        WORKFLOW_WRITE,
    ),
    row(
        Method::POST,
        "/api/v1/workflows/{workflow}/disable",
        None,
        WORKFLOW_WRITE,
    ),
    row(Method::GET, "/api/v1/workflow-runs", None, WORKFLOW_READ),
    row(Method::GET, "/api/v1/audit-entries", None, AUDIT_READ),
    row(Method::GET, "/api/v1/audit-entries.csv", None, AUDIT_READ),
    row(
        Method::GET,
        "/api/v1/workflow-runs/{workflow-run}",
        None,
        WORKFLOW_READ,
    ),
];

impl Endpoint {
    pub fn has_object_in_path(&self) -> bool {
        self.path.contains('{')
    }

    fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Sends the request with `objects` substituted; `key` None sends no `Authorization`.
    async fn send(&self, app: &TestApp, key: Option<&str>, objects: &Objects) -> Response {
        let mut url = objects.fill(self.path);
        if !self.query.is_empty() {
            url = format!("{url}?{}", objects.fill(self.query));
        }
        let mut request = app.client.request(self.method.clone(), app.url(&url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = self.body {
            request = request
                .header("content-type", "application/json")
                .body(objects.fill(body));
        }
        request.send().await.expect("request")
    }
}

/// Org A's objects, the ones other callers must not reach.
struct Objects {
    template: String,
    version: String,
    inquiry: String,
    event: String,
    /// An inquiry that went through the pipeline, and its verification and report.
    checked: String,
    verification: String,
    report: String,
    /// A's connection to a fresh organization C (activated by C), and C's id.
    connection: String,
    peer: String,
    /// A's share token over that connection, offering `checked`.
    share_token: String,
    /// A's webhook (subscribed to everything) and a delivery of it.
    webhook: String,
    delivery: String,
    /// A's workflow (tags inquiries when they are updated) and a run of it.
    workflow: String,
    workflow_run: String,
}

/// Values of A's inquiry that must never appear in another caller's answer.
const SECRETS: &[&str] = &["Zelda", "Quixotic", "zelda@example.com", "vip-a"];

impl Objects {
    fn fill(&self, text: &str) -> String {
        text.replace("{template}", &self.template)
            .replace("{version}", &self.version)
            .replace("{inquiry}", &self.inquiry)
            .replace("{event}", &self.event)
            .replace("{checked}", &self.checked)
            .replace("{verification}", &self.verification)
            .replace("{report}", &self.report)
            .replace("{connection}", &self.connection)
            .replace("{peer}", &self.peer)
            .replace("{share-token}", &self.share_token)
            .replace("{webhook}", &self.webhook)
            .replace("{delivery}", &self.delivery)
            .replace("{workflow-run}", &self.workflow_run)
            .replace("{workflow}", &self.workflow)
    }

    fn ids(&self) -> [&str; 13] {
        [
            &self.template,
            &self.version,
            &self.inquiry,
            &self.event,
            &self.checked,
            &self.verification,
            &self.report,
            &self.connection,
            &self.share_token,
            &self.webhook,
            &self.delivery,
            &self.workflow,
            &self.workflow_run,
        ]
    }

    /// Panics if `text` mentions any of A's ids or field values.
    fn assert_absent(&self, text: &str, context: &str) {
        for needle in self.ids().into_iter().chain(SECRETS.iter().copied()) {
            assert!(
                !text.contains(needle),
                "{context}: answer leaks `{needle}`: {text}"
            );
        }
    }
}

/// Creates A's template, a draft version, an inquiry (and so events).
async fn create_objects(app: &TestApp, key: &str) -> Objects {
    let template = app.create_template(key).await;
    let version = expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiry-templates/{template}/versions"),
            &json!({"data": {"attributes": {"field-schemas": standard_template("KYC")["field-schemas"]}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inquiry = expect_status(
        app.post(
            key,
            "/api/v1/inquiries",
            &json!({"data": {"attributes": {
                "inquiry-template-id": template,
                "fields": {"name-first": "Zelda", "name-last": "Quixotic", "email-address": "zelda@example.com"},
                "tags": ["vip-a"],
            }}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (checked, verification, report) = checked_inquiry(app, key).await;
    let peer_org = app.create_org("C").await;
    let peer_key = app.create_key(&peer_org, Environment::Sandbox, None).await;
    let peer = peer_org.to_string();
    let connection = expect_status(
        app.post(
            key,
            "/api/v1/connect/connections",
            &json!({"data": {"attributes": {"destination-organization-id": peer}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_status(
        app.post(
            &peer_key,
            &format!("/api/v1/connect/connections/{connection}/activate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let share_token = expect_status(
        app.post(
            key,
            "/api/v1/connect/share-tokens",
            &json!({"data": {"attributes": {"connection-id": connection, "source-id": checked}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let webhook = expect_status(
        app.post(
            key,
            "/api/v1/webhooks",
            &json!({"data": {"attributes": {"url": "http://127.0.0.1:9/a", "enabled-events": ["*"]}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let workflow = expect_status(
        app.post(
            key,
            "/api/v1/workflows",
            &json!({"data": {"attributes": {"name": "Tag updates", "definition": {
                "trigger": {"event": "inquiry.updated"},
                "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "updated"}}]}}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_status(
        app.post(
            key,
            &format!("/api/v1/workflows/{workflow}/publish"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.patch(
            key,
            &format!("/api/v1/inquiries/{inquiry}"),
            &json!({"data": {"attributes": {"note": "for the webhook and the workflow"}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // Nothing listens on port 9: the attempt fails and the delivery waits for its retry.
    app.drain().await;
    let deliveries = app
        .list_ids(key, &format!("/api/v1/webhooks/{webhook}/deliveries"))
        .await;
    let delivery = deliveries[0].clone();
    let workflow_run = app.list_ids(key, "/api/v1/workflow-runs").await[0].clone();
    let run = expect_status(
        app.get(key, &format!("/api/v1/workflow-runs/{workflow_run}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(run["data"]["attributes"]["status"], "completed", "{run}");
    let events = app.list_ids(key, "/api/v1/events").await;
    let event = events
        .first()
        .expect("creating objects records events")
        .clone();
    Objects {
        template,
        version,
        inquiry,
        event,
        checked,
        verification,
        report,
        connection,
        peer,
        share_token,
        webhook,
        delivery,
        workflow,
        workflow_run,
    }
}

/// An inquiry of A that went through the pipeline: one verification and one report.
async fn checked_inquiry(app: &TestApp, key: &str) -> (String, String, String) {
    let template = expect_status(
        app.post(
            key,
            "/api/v1/inquiry-templates",
            &json!({"data": {"attributes": {"name": "Checked",
                "field-schemas": [{"key": "name-first", "type": "string"}, {"key": "name-last", "type": "string"},
                                  {"key": "email-address", "type": "string"}],
                "verifications": [{"type": "email-address", "required": true}],
                "reports": [{"type": "watchlist"}]}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inquiry = app
        .create_inquiry(
            key,
            &template,
            json!({"name-first": "Zelda", "name-last": "Quixotic", "email-address": "zelda@example.com"}),
        )
        .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiries/{inquiry}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
    let verification = app
        .list_ids(
            key,
            &format!("/api/v1/verifications?filter[inquiry-id]={inquiry}"),
        )
        .await;
    let report = app
        .list_ids(
            key,
            &format!("/api/v1/reports?filter[inquiry-id]={inquiry}"),
        )
        .await;
    (inquiry, verification[0].clone(), report[0].clone())
}

/// What the owner sees of its objects: compared before and after an attack.
#[derive(Debug, PartialEq)]
struct Snapshot {
    inquiry: Value,
    version_status: Value,
    connection: Value,
    share_token: Value,
    webhook: Value,
    deliveries: Value,
    workflow: Value,
    workflow_runs: Vec<String>,
    templates: Vec<String>,
    inquiries: Vec<String>,
    events: Vec<String>,
}

async fn snapshot(app: &TestApp, key: &str, objects: &Objects) -> Snapshot {
    let inquiry = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{}", objects.inquiry))
            .await,
        StatusCode::OK,
    )
    .await;
    let version = expect_status(
        app.get(
            key,
            &format!("/api/v1/inquiry-template-versions/{}", objects.version),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let version_status = version["data"]["attributes"]["status"].clone();
    assert_eq!(version_status, "draft");
    let connection = expect_status(
        app.get(
            key,
            &format!("/api/v1/connect/connections/{}", objects.connection),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(connection["data"]["attributes"]["status"], "active");
    let share_token = expect_status(
        app.get(
            key,
            &format!("/api/v1/connect/share-tokens/{}", objects.share_token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(share_token["data"]["attributes"]["status"], "created");
    let webhook = expect_status(
        app.get(key, &format!("/api/v1/webhooks/{}", objects.webhook))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(webhook["data"]["attributes"]["status"], "enabled");
    let deliveries = expect_status(
        app.get(
            key,
            &format!("/api/v1/webhooks/{}/deliveries", objects.webhook),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    Snapshot {
        inquiry: inquiry["data"].clone(),
        version_status,
        connection: connection["data"].clone(),
        share_token: share_token["data"].clone(),
        webhook: webhook["data"].clone(),
        deliveries: deliveries["data"].clone(),
        workflow: expect_status(
            app.get(key, &format!("/api/v1/workflows/{}", objects.workflow))
                .await,
            StatusCode::OK,
        )
        .await["data"]
            .clone(),
        workflow_runs: app.list_ids(key, "/api/v1/workflow-runs").await,
        templates: app.list_ids(key, "/api/v1/inquiry-templates").await,
        inquiries: app.list_ids(key, "/api/v1/inquiries").await,
        events: app.list_ids(key, "/api/v1/events").await,
    }
}

async fn foreign_objects_are_404_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let objects = create_objects(&app, &a.sandbox).await;
    let before = snapshot(&app, &a.sandbox, &objects).await;
    assert_eq!(
        before.inquiry["attributes"]["tags"],
        json!(["vip-a", "updated"])
    );

    let callers = [("org B", &b.sandbox), ("A's production key", &a.production)];
    let mut tried = 0;
    for endpoint in ENDPOINTS.iter().filter(|e| e.has_object_in_path()) {
        for (who, key) in callers {
            let context = format!("{} as {who}", endpoint.describe());
            let response = endpoint.send(&app, Some(key), &objects).await;
            let status = response.status();
            let text = response.text().await.expect("body");
            assert_eq!(status, StatusCode::NOT_FOUND, "{context}: {text}");
            let body: Value = serde_json::from_str(&text).expect("JSON body");
            assert_eq!(
                body["errors"][0]["title"], "Record not found",
                "{context}: {text}"
            );
            assert!(
                body["errors"][0]["details"].is_string(),
                "{context}: {text}"
            );
            objects.assert_absent(&text, &context);
            tried += 1;
        }
    }
    let object_endpoints = ENDPOINTS.iter().filter(|e| e.has_object_in_path()).count();
    assert!(object_endpoints >= 27);
    assert_eq!(
        tried,
        2 * object_endpoints,
        "every object endpoint was tried"
    );

    assert_eq!(
        snapshot(&app, &a.sandbox, &objects).await,
        before,
        "A's objects changed"
    );
    for key in [&b.sandbox, &a.production] {
        assert!(app.list_ids(key, "/api/v1/events").await.is_empty());
        assert!(
            app.list_ids(key, "/api/v1/inquiry-templates")
                .await
                .is_empty()
        );
    }
}

async fn lists_show_only_own_objects(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    // B has objects of its own, so an empty answer is not the only way to pass.
    let b_template = app.create_template(&b.sandbox).await;
    app.create_inquiry(
        &b.sandbox,
        &b_template,
        json!({"name-first": "Bo", "name-last": "Bee"}),
    )
    .await;
    let objects = create_objects(&app, &a.sandbox).await;

    let lists: Vec<&Endpoint> = ENDPOINTS
        .iter()
        .filter(|e| e.method == Method::GET && !e.has_object_in_path())
        .filter(|e| !e.path.ends_with(".csv"))
        .collect();
    assert_eq!(
        lists.len(),
        12,
        "inquiries, templates, versions, events, verifications, reports, connections, share tokens, \
         webhooks, workflows, workflow runs, audit entries"
    );
    for endpoint in &lists {
        // The owner's list shows the object the other callers must not see.
        let own = endpoint.send(&app, Some(&a.sandbox), &objects).await;
        let own = expect_status(own, StatusCode::OK).await;
        assert!(
            !own["data"].as_array().unwrap().is_empty(),
            "{}",
            endpoint.describe()
        );
        for (who, key) in [("org B", &b.sandbox), ("A's production key", &a.production)] {
            let context = format!("{} as {who}", endpoint.describe());
            let response = endpoint.send(&app, Some(key), &objects).await;
            let status = response.status();
            let text = response.text().await.expect("body");
            assert_eq!(status, StatusCode::OK, "{context}: {text}");
            objects.assert_absent(&text, &context);
        }
    }

    // The audit log's CSV export: A's holds A's objects, the others' none of them.
    let export = "/api/v1/audit-entries.csv";
    let own = app.get(&a.sandbox, export).await.text().await.unwrap();
    assert!(own.contains(&objects.template), "{own}");
    for key in [&b.sandbox, &a.production] {
        let response = app.get(key, export).await;
        assert_eq!(response.status(), StatusCode::OK);
        objects.assert_absent(&response.text().await.unwrap(), export);
    }

    // Filters naming A's objects find nothing for B.
    for path in [
        format!(
            "/api/v1/inquiries?filter[inquiry-template-id]={}",
            objects.template
        ),
        format!("/api/v1/events?filter[object-id]={}", objects.inquiry),
        format!(
            "/api/v1/inquiry-template-versions?filter[inquiry-template-id]={}",
            objects.template
        ),
        format!(
            "/api/v1/connect/connections?filter[destination-organization-id]={}",
            objects.peer
        ),
        format!(
            "/api/v1/connect/share-tokens?filter[connection-id]={}",
            objects.connection
        ),
    ] {
        let body = expect_status(app.get(&b.sandbox, &path).await, StatusCode::OK).await;
        assert_eq!(body["data"], json!([]), "{path}");
    }

    // A cursor naming A's object is a bad cursor for everyone else.
    for (list, cursor) in [
        ("/api/v1/inquiries?", &objects.inquiry),
        ("/api/v1/inquiry-templates?", &objects.template),
        ("/api/v1/events?", &objects.event),
        ("/api/v1/connect/connections?", &objects.connection),
        ("/api/v1/connect/share-tokens?", &objects.share_token),
        (
            &format!(
                "/api/v1/inquiry-template-versions?filter[inquiry-template-id]={}&",
                objects.template
            ),
            &objects.version,
        ),
    ] {
        for parameter in ["page[after]", "page[before]"] {
            for key in [&b.sandbox, &a.production] {
                let path = format!("{list}{parameter}={cursor}");
                let response = app.get(key, &path).await;
                let status = response.status();
                let text = response.text().await.expect("body");
                assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {text}");
                let body: Value = serde_json::from_str(&text).expect("JSON body");
                assert_eq!(
                    body["errors"][0]["source"]["parameter"], parameter,
                    "{path}: {text}"
                );
                // The cursor itself is echoed by no one; A's data in any case is not.
                for secret in SECRETS {
                    assert!(!text.contains(secret), "{path} leaks `{secret}`: {text}");
                }
            }
        }
    }
}

async fn references_in_bodies_to_foreign_objects_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    let objects = create_objects(&app, &a.sandbox).await;
    let before = snapshot(&app, &a.sandbox, &objects).await;

    for (attribute, id) in [
        ("inquiry-template-id", &objects.template),
        ("inquiry-template-version-id", &objects.version),
    ] {
        for (who, key) in [("org B", &b.sandbox), ("A's production key", &a.production)] {
            let body = json!({"data": {"attributes": {attribute: id, "fields": {"name-first": "Bo", "name-last": "Bee"}}}});
            let error = expect_error(
                app.post(key, "/api/v1/inquiries", &body).await,
                StatusCode::NOT_FOUND,
            )
            .await;
            assert_eq!(error["title"], "Record not found", "{attribute} as {who}");
            objects.assert_absent(&error.to_string(), &format!("{attribute} as {who}"));
        }
    }

    for key in [&b.sandbox, &a.production] {
        assert!(
            app.list_ids(key, "/api/v1/inquiries").await.is_empty(),
            "nothing was created"
        );
        assert!(
            app.list_ids(key, "/api/v1/events").await.is_empty(),
            "nothing was recorded"
        );
    }
    assert_eq!(snapshot(&app, &a.sandbox, &objects).await, before);
}

/// Creates a full-permission sandbox key and returns its id and secret.
async fn create_key_with_id(app: &TestApp, tenant: &Tenant) -> (ApiKeyId, String) {
    let mut tx = app.store.begin_write().await.unwrap();
    let (key, secret) = api_keys::create(
        &mut tx,
        &Scope::new(tenant.org_id.clone(), Environment::Sandbox),
        "to be revoked",
        &idshare_domain::permission::PermissionSet::all(),
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (key.id, secret)
}

async fn unauthenticated_and_bad_keys_are_401_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("A").await;
    let objects = create_objects(&app, &a.sandbox).await;
    let (revoked_id, revoked) = create_key_with_id(&app, &a).await;
    // The key works until it is revoked.
    expect_status(app.get(&revoked, "/api/v1/inquiries").await, StatusCode::OK).await;
    let mut tx = app.store.begin_write().await.unwrap();
    assert!(
        api_keys::revoke(&mut tx, &revoked_id, OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let before = snapshot(&app, &a.sandbox, &objects).await;

    for endpoint in ENDPOINTS {
        for (what, key) in [
            ("no key", None),
            ("unknown key", Some("idsk_sandbox_nope")),
            ("revoked key", Some(revoked.as_str())),
        ] {
            let context = format!("{} with {what}", endpoint.describe());
            let response = endpoint.send(&app, key, &objects).await;
            let request_id = response
                .headers()
                .get("request-id")
                .map(|v| v.to_str().unwrap().to_owned());
            assert!(
                request_id
                    .as_deref()
                    .is_some_and(|id| id.starts_with("req_")),
                "{context}: request-id {request_id:?}"
            );
            let status = response.status();
            let text = response.text().await.expect("body");
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}: {text}");
            let body: Value = serde_json::from_str(&text).expect("JSON body");
            assert_eq!(
                body["errors"][0]["title"], "Unauthorized",
                "{context}: {text}"
            );
            assert!(
                body["errors"][0]["details"].is_string(),
                "{context}: {text}"
            );
            objects.assert_absent(&text, &context);
        }
    }
    assert_eq!(
        snapshot(&app, &a.sandbox, &objects).await,
        before,
        "401 changed nothing"
    );
}

async fn missing_permission_is_403_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.tenant("A").await;
    let objects = create_objects(&app, &a.sandbox).await;
    let reader = app
        .create_key(&a.org_id, Environment::Sandbox, Some(INQUIRY_READ))
        .await;
    let before = snapshot(&app, &a.sandbox, &objects).await;

    let mut refused = 0;
    for endpoint in ENDPOINTS {
        let response = endpoint.send(&app, Some(&reader), &objects).await;
        if endpoint.permission == INQUIRY_READ {
            expect_status(response, StatusCode::OK).await;
            continue;
        }
        let context = endpoint.describe();
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, StatusCode::FORBIDDEN, "{context}: {text}");
        let body: Value = serde_json::from_str(&text).expect("JSON body");
        let details = body["errors"][0]["details"].as_str().unwrap_or_default();
        assert!(
            details.contains(&format!("`{}`", endpoint.permission)),
            "{context}: details should name `{}`: {text}",
            endpoint.permission
        );
        refused += 1;
    }
    assert_eq!(
        refused,
        ENDPOINTS.len() - 2,
        "all but the two inquiry.read rows refused"
    );
    assert_eq!(
        snapshot(&app, &a.sandbox, &objects).await,
        before,
        "403 changed nothing"
    );
}

backend_tests!(
    foreign_objects_are_404_everywhere,
    lists_show_only_own_objects,
    references_in_bodies_to_foreign_objects_are_404,
    unauthenticated_and_bad_keys_are_401_everywhere,
    missing_permission_is_403_and_changes_nothing,
);
