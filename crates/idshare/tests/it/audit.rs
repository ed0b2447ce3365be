//! The audit log as an auditor reads it: every action that moves or reveals personal data or
//! changes configuration, through the API and the dashboard, with its actor (a user, an API key
//! or the system), its object and the request it was made in; `GET /api/v1/audit-entries` and
//! its CSV export behind `audit.read`, confined to the key's organization and environment;
//! retention; and nothing recorded for an action that was rolled back.

use idshare_domain::environment::Environment;
use idshare_store::{Scope, api_keys, audit, users::Role};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::{
    dashboard::{add_user, csrf, sign_in_attempt, signed_in, text_of},
    helpers::{Backend, TestApp, expect_error, expect_status, spawn_app},
    pipeline::PNG,
};

const ENTRIES: &str = "/api/v1/audit-entries";
const CONNECTIONS: &str = "/api/v1/connect/connections";
const TOKENS: &str = "/api/v1/connect/share-tokens";
const EMAIL: &str = "ada.lovelace@example.com";

fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

/// The response's body (checked against `status`) and its `Request-Id`.
async fn answered(response: Response, status: StatusCode) -> (Value, String) {
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (expect_status(response, status).await, request_id)
}

/// The id of the API key whose secret is `secret`.
async fn key_id(app: &TestApp, secret: &str) -> String {
    let mut tx = app.store.begin_read().await.unwrap();
    api_keys::find_by_secret(&mut tx, secret)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

/// The id of the dashboard user with `email`.
async fn user_id(app: &TestApp, org: &idshare_domain::id::OrgId, email: &str) -> String {
    let mut tx = app.store.begin_read().await.unwrap();
    idshare_store::users::list_in_org(&mut tx, org)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email == email)
        .unwrap()
        .id
        .to_string()
}

/// Every entry the key may read, following `links.next`.
async fn all_entries(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let mut entries = vec![];
    let mut next = Some(format!("{ENTRIES}?page[size]=100{query}"));
    while let Some(path) = next {
        let body = expect_status(app.get(key, &path).await, StatusCode::OK).await;
        entries.extend(body["data"].as_array().unwrap().iter().cloned());
        next = body["links"]["next"].as_str().map(str::to_owned);
    }
    entries
}

/// The request an expected entry names.
#[derive(Debug, Clone)]
enum Request {
    /// The API request whose `Request-Id` the test read.
    Exactly(String),
    /// A dashboard request (the test's browser does not keep the header): any `req_…`.
    Any,
    /// The server's own work: none.
    Absent,
}

#[derive(Debug)]
struct Expected {
    action: &'static str,
    actor_type: &'static str,
    actor_id: Option<String>,
    /// `None`: any object of the type.
    object: (&'static str, Option<String>),
    request: Request,
}

impl Expected {
    fn matches(&self, entry: &Value) -> bool {
        let a = &entry["attributes"];
        let request_matches = match &self.request {
            Request::Exactly(id) => a["request-id"] == json!(id),
            Request::Any => a["request-id"]
                .as_str()
                .is_some_and(|id| id.starts_with("req_")),
            Request::Absent => a["request-id"].is_null(),
        };
        entry["type"] == "audit-entry"
            && a["action"] == self.action
            && a["actor-type"] == self.actor_type
            && a["actor-id"] == json!(self.actor_id)
            && a["object-type"] == self.object.0
            && self
                .object
                .1
                .as_ref()
                .is_none_or(|id| a["object-id"] == json!(id))
            && request_matches
    }
}

/// Asserts that every expected entry is among `entries`.
fn assert_recorded(entries: &[Value], expected: &[Expected]) {
    let missing: Vec<&Expected> = expected
        .iter()
        .filter(|e| !entries.iter().any(|entry| e.matches(entry)))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the audit log: {missing:#?}\nentries: {}",
        serde_json::to_string_pretty(entries).unwrap()
    );
}

/// A template asking for an email address with a required email verification: its inquiries
/// complete on submission in the sandbox.
fn email_template() -> Value {
    json!({"name": "Email",
        "field-schemas": [{"key": "email-address", "type": "string"},
                          {"key": "name-first", "type": "string"}],
        "verifications": [{"type": "email-address", "required": true}]})
}

/// An inquiry of `template`, submitted and run to `completed`.
async fn completed_inquiry(app: &TestApp, key: &str, template: &str) -> String {
    let id = id_of(
        &app.create_inquiry(key, template, json!({"email-address": EMAIL}))
            .await,
    );
    expect_status(
        app.post(key, &format!("/api/v1/inquiries/{id}/submit"), &json!({}))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
    id
}

async fn every_action_is_audited_with_actor_object_and_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let fintech = app.tenant("Fintech").await;
    let bank_key = key_id(&app, &bank.sandbox).await;
    let fintech_key = key_id(&app, &fintech.sandbox).await;
    let key = &bank.sandbox;
    let mut bank_expects: Vec<Expected> = vec![];
    let mut fintech_expects: Vec<Expected> = vec![];
    let by_bank = |action, object: (&'static str, &str), request: String| Expected {
        action,
        actor_type: "api-key",
        actor_id: Some(bank_key.clone()),
        object: (object.0, Some(object.1.to_owned())),
        request: Request::Exactly(request),
    };
    let by_fintech = |action, object: (&'static str, &str), request: String| Expected {
        action,
        actor_type: "api-key",
        actor_id: Some(fintech_key.clone()),
        object: (object.0, Some(object.1.to_owned())),
        request: Request::Exactly(request),
    };

    // Templates: created, a new version, published.
    let (created, request) = answered(
        app.post(
            key,
            "/api/v1/inquiry-templates",
            &json!({"data": {"attributes": email_template()}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let template = id_of(&created);
    bank_expects.push(by_bank(
        "inquiry-template.created",
        ("inquiry-template", &template),
        request,
    ));
    let mut definition = email_template();
    definition.as_object_mut().unwrap().remove("name");
    let (version, request) = answered(
        app.post(
            key,
            &format!("/api/v1/inquiry-templates/{template}/versions"),
            &json!({"data": {"attributes": definition}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let version = id_of(&version);
    bank_expects.push(by_bank(
        "inquiry-template-version.created",
        ("inquiry-template-version", &version),
        request,
    ));
    let (_, request) = answered(
        app.post(
            key,
            &format!("/api/v1/inquiry-template-versions/{version}/publish"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank(
        "inquiry-template-version.published",
        ("inquiry-template-version", &version),
        request,
    ));

    // An inquiry viewed through the API, then approved.
    let inquiry = completed_inquiry(&app, key, &template).await;
    let (viewed, request) = answered(
        app.get(key, &format!("/api/v1/inquiries/{inquiry}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(viewed["data"]["attributes"]["status"], "completed");
    bank_expects.push(by_bank("inquiry.viewed", ("inquiry", &inquiry), request));

    // Connect: a connection, activated by the destination; a token created, peeked, previewed
    // and redeemed; another expired by its source; the connection deactivated at the end.
    let (connection, request) = answered(
        app.post(
            key,
            CONNECTIONS,
            &json!({"data": {"attributes": {"destination-organization-id": fintech.org_id.as_str()}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let connection = id_of(&connection);
    bank_expects.push(by_bank(
        "connection.created",
        ("connection", &connection),
        request,
    ));
    let (_, request) = answered(
        app.post(
            &fintech.sandbox,
            &format!("{CONNECTIONS}/{connection}/activate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    fintech_expects.push(by_fintech(
        "connection.activated",
        ("connection", &connection),
        request,
    ));
    let token_body = |ttl: Option<i64>| {
        let mut attributes = json!({"connection-id": connection, "source-id": inquiry});
        if let Some(ttl) = ttl {
            attributes["expires-in-seconds"] = json!(ttl);
        }
        json!({"data": {"attributes": attributes}})
    };
    let (token, request) = answered(
        app.post(key, TOKENS, &token_body(None)).await,
        StatusCode::CREATED,
    )
    .await;
    let token = id_of(&token);
    bank_expects.push(by_bank(
        "share-token.created",
        ("share-token", &token),
        request,
    ));
    let (_, request) = answered(
        app.get(
            &fintech.sandbox,
            &format!("{TOKENS}/{token}?peek-source-data=true"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    fintech_expects.push(by_fintech(
        "share-token.peeked",
        ("share-token", &token),
        request,
    ));
    let destination_template = app.create_template(&fintech.sandbox).await;
    let (_, request) = answered(
        app.post(
            &fintech.sandbox,
            &format!("{TOKENS}/{token}/preview"),
            &json!({"data": {"attributes": {"inquiry-template-id": destination_template}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    fintech_expects.push(by_fintech(
        "share-token.previewed",
        ("share-token", &token),
        request,
    ));
    let (_, request) = answered(
        app.post(
            &fintech.sandbox,
            &format!("{TOKENS}/{token}/redeem"),
            &json!({"data": {"attributes": {"inquiry-template-id": destination_template}}}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    fintech_expects.push(by_fintech(
        "share-token.redeemed",
        ("share-token", &token),
        request,
    ));
    app.drain().await;
    let (revoked, _) = answered(
        app.post(key, TOKENS, &token_body(None)).await,
        StatusCode::CREATED,
    )
    .await;
    let revoked = id_of(&revoked);
    let (_, request) = answered(
        app.post(key, &format!("{TOKENS}/{revoked}/expire"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank(
        "share-token.expired",
        ("share-token", &revoked),
        request,
    ));
    let (lapsing, _) = answered(
        app.post(key, TOKENS, &token_body(Some(60))).await,
        StatusCode::CREATED,
    )
    .await;
    let lapsing = id_of(&lapsing);

    // Decisions: approved.
    let (_, request) = answered(
        app.post(
            key,
            &format!("/api/v1/inquiries/{inquiry}/approve"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank("inquiry.approved", ("inquiry", &inquiry), request));

    // Another inquiry: a one-time link, a file uploaded and downloaded (the signed link is the
    // credential: the system serves it, in its request), then redacted.
    let other = id_of(&app.create_inquiry(key, &template, json!({})).await);
    let (_, request) = answered(
        app.post(
            key,
            &format!("/api/v1/inquiries/{other}/generate-one-time-link"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank(
        "inquiry.one-time-link-created",
        ("inquiry", &other),
        request,
    ));
    let stored = crate::pipeline::upload(&app, key, &other, "selfie", PNG).await;
    let file = id_of(&stored);
    let url = stored["data"]["attributes"]["download-url"]
        .as_str()
        .unwrap()
        .to_owned();
    let download = app.client.get(&url).send().await.unwrap();
    let download_request = download.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(download.status(), StatusCode::OK);
    bank_expects.push(Expected {
        action: "file.downloaded",
        actor_type: "system",
        actor_id: None,
        object: ("file", Some(file)),
        request: Request::Exactly(download_request),
    });
    let (_, request) = answered(
        app.delete(key, &format!("/api/v1/inquiries/{other}")).await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank("inquiry.redacted", ("inquiry", &other), request));

    // Webhooks: created, changed, disabled, its secret rotated.
    let (webhook, request) = answered(
        app.post(
            key,
            "/api/v1/webhooks",
            &json!({"data": {"attributes": {"url": "https://hooks.example.invalid/idshare",
                "enabled-events": ["inquiry.completed"]}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let webhook = id_of(&webhook);
    bank_expects.push(by_bank("webhook.created", ("webhook", &webhook), request));
    let (_, request) = answered(
        app.patch(
            key,
            &format!("/api/v1/webhooks/{webhook}"),
            &json!({"data": {"attributes": {"enabled-events": ["inquiry.approved"]}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank("webhook.updated", ("webhook", &webhook), request));
    let (_, request) = answered(
        app.post(
            key,
            &format!("/api/v1/webhooks/{webhook}/disable"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank("webhook.disabled", ("webhook", &webhook), request));
    let (_, request) = answered(
        app.post(
            key,
            &format!("/api/v1/webhooks/{webhook}/rotate-secret"),
            &json!({"meta": {}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank(
        "webhook.secret-rotated",
        ("webhook", &webhook),
        request,
    ));

    // Workflows: created, a new version, published, disabled.
    let workflow_definition = json!({
        "trigger": {"event": "inquiry.created"},
        "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "audited"}}]
    });
    let (workflow, request) = answered(
        app.post(
            key,
            "/api/v1/workflows",
            &json!({"data": {"attributes": {"name": "Tagger", "definition": workflow_definition}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let workflow = id_of(&workflow);
    bank_expects.push(by_bank(
        "workflow.created",
        ("workflow", &workflow),
        request,
    ));
    let (_, request) = answered(
        app.post(
            key,
            &format!("/api/v1/workflows/{workflow}/versions"),
            &json!({"data": {"attributes": {"definition": workflow_definition}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    bank_expects.push(by_bank(
        "workflow.version-created",
        ("workflow", &workflow),
        request,
    ));
    for (step, action) in [
        ("publish", "workflow.published"),
        ("disable", "workflow.disabled"),
    ] {
        let (_, request) = answered(
            app.post(
                key,
                &format!("/api/v1/workflows/{workflow}/{step}"),
                &json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        bank_expects.push(by_bank(action, ("workflow", &workflow), request));
    }

    let (_, request) = answered(
        app.post(
            key,
            &format!("{CONNECTIONS}/{connection}/deactivate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    bank_expects.push(by_bank(
        "connection.deactivated",
        ("connection", &connection),
        request,
    ));

    // The dashboard: a failed and a good sign-in, an inquiry viewed, an inquiry expired, an
    // API key created and revoked.
    add_user(&app, &bank.org_id, "ops@bank.example", Role::Admin).await;
    let ops = user_id(&app, &bank.org_id, "ops@bank.example").await;
    let by_ops = |action, object: (&'static str, Option<String>)| Expected {
        action,
        actor_type: "user",
        actor_id: Some(ops.clone()),
        object,
        request: Request::Any,
    };
    let mut stranger = crate::browser::Browser::new(&app);
    let refused = sign_in_attempt(&mut stranger, "ops@bank.example", "not the password").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    bank_expects.push(by_ops("user.sign-in-failed", ("user", Some(ops.clone()))));
    let mut admin = signed_in(&app, "ops@bank.example").await;
    bank_expects.push(by_ops("user.signed-in", ("user", Some(ops.clone()))));
    let page = admin.get(&format!("/dashboard/inquiries/{inquiry}")).await;
    assert_eq!(page.status, StatusCode::OK);
    bank_expects.push(by_ops("inquiry.viewed", ("inquiry", Some(inquiry.clone()))));
    let token = csrf(&mut admin).await;
    let unfinished = id_of(&app.create_inquiry(key, &template, json!({})).await);
    let expired = admin
        .submit(
            &format!("/dashboard/inquiries/{unfinished}/expire"),
            &[("csrf", &token), ("comment", ""), ("confirm", "yes")],
        )
        .await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER, "{}", expired.body);
    bank_expects.push(by_ops("inquiry.expired", ("inquiry", Some(unfinished))));
    let made = admin
        .submit(
            "/dashboard/api-keys",
            &[
                ("csrf", &token),
                ("name", "crm"),
                ("permissions", "inquiry.read"),
            ],
        )
        .await;
    let crm = text_of(&made, "created-key");
    bank_expects.push(by_ops("api-key.created", ("api-key", Some(crm.clone()))));
    let revoked_key = admin
        .submit(
            &format!("/dashboard/api-keys/{crm}/revoke"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    assert_eq!(revoked_key.status, StatusCode::SEE_OTHER);
    bank_expects.push(by_ops("api-key.revoked", ("api-key", Some(crm.clone()))));

    // The system: a token expired by its TTL, with no request.
    app.state.advance_clock(time::Duration::minutes(2));
    idshare_service::share_tokens::expire_due(&app.state)
        .await
        .unwrap();
    bank_expects.push(Expected {
        action: "share-token.expired",
        actor_type: "system",
        actor_id: None,
        object: ("share-token", Some(lapsing)),
        request: Request::Absent,
    });

    // Each organization reads its own, through the API.
    let bank_entries = all_entries(&app, key, "").await;
    assert_recorded(&bank_entries, &bank_expects);
    let fintech_entries = all_entries(&app, &fintech.sandbox, "").await;
    assert_recorded(&fintech_entries, &fintech_expects);
    assert!(
        fintech_entries
            .iter()
            .all(|e| e["attributes"]["actor-id"] != json!(bank_key)),
        "the bank's entries stay in the bank's log"
    );

    // The dashboard's log names the key by its name, and offers the CSV.
    let log = admin.get("/dashboard/audit").await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.body.contains("<td>API key “test”</td>"), "{}", log.body);
    assert!(log.body.contains("<td>System</td>"));
    assert!(
        log.body
            .contains("href=\"/dashboard/audit.csv?object=&#38;user=\"")
    );
    let export = admin.get("/dashboard/audit.csv?object=&user=").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.content_type.starts_with("text/csv"));
    assert!(
        export
            .body
            .contains(&format!("api-key.revoked,user,{ops},api-key,{crm},req_"))
    );
}

async fn the_log_needs_audit_read_and_stays_in_its_organization_and_environment(backend: Backend) {
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let stranger = app.tenant("Stranger").await;
    let template = app.create_template(&bank.sandbox).await;
    let inquiry = id_of(
        &app.create_inquiry(&bank.sandbox, &template, json!({}))
            .await,
    );
    expect_status(
        app.get(&bank.sandbox, &format!("/api/v1/inquiries/{inquiry}"))
            .await,
        StatusCode::OK,
    )
    .await;

    // Without `audit.read`: 403, list and export alike; without a key: 401.
    let reader = app
        .create_key(&bank.org_id, Environment::Sandbox, Some("inquiry.read"))
        .await;
    for path in [ENTRIES, "/api/v1/audit-entries.csv"] {
        let refused = expect_error(app.get(&reader, path).await, StatusCode::FORBIDDEN).await;
        assert!(refused["details"].as_str().unwrap().contains("audit.read"));
        let anonymous = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }
    let auditor = app
        .create_key(&bank.org_id, Environment::Sandbox, Some("audit.read"))
        .await;
    let mine = all_entries(&app, &auditor, "").await;
    assert!(
        mine.iter()
            .any(|e| e["attributes"]["object-id"] == json!(inquiry)),
        "{mine:?}"
    );

    // Another organization and the other environment see none of it.
    let theirs = all_entries(&app, &stranger.sandbox, "").await;
    assert!(
        theirs
            .iter()
            .all(|e| e["attributes"]["object-id"] != json!(inquiry)),
        "{theirs:?}"
    );
    let production = all_entries(&app, &bank.production, "").await;
    assert!(
        production
            .iter()
            .all(|e| e["attributes"]["object-id"] != json!(inquiry))
    );
    let filtered = all_entries(
        &app,
        &stranger.sandbox,
        &format!("&filter[object-id]={inquiry}"),
    )
    .await;
    assert!(filtered.is_empty());
    // A cursor from another organization's log is refused, not followed.
    let cursor = mine[0]["id"].as_str().unwrap();
    let error = expect_error(
        app.get(
            &stranger.sandbox,
            &format!("{ENTRIES}?page[after]={cursor}"),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["source"]["parameter"], "page[after]");
    let csv = app
        .get(
            &stranger.sandbox,
            &format!("/api/v1/audit-entries.csv?filter[object-id]={inquiry}"),
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let body = csv.text().await.unwrap();
    assert_eq!(body.lines().count(), 1, "only the header: {body}");

    // Filters: by action, by actor, by time; a malformed time is a 400 naming it.
    let viewed = all_entries(
        &app,
        &auditor,
        &format!("&filter[action]=inquiry.viewed&filter[object-id]={inquiry}"),
    )
    .await;
    assert_eq!(viewed.len(), 1);
    let actor = viewed[0]["attributes"]["actor-id"].as_str().unwrap();
    let by_actor = all_entries(&app, &auditor, &format!("&filter[actor-id]={actor}")).await;
    assert!(
        by_actor
            .iter()
            .all(|e| e["attributes"]["actor-id"] == json!(actor))
    );
    assert!(!by_actor.is_empty());
    let future = all_entries(&app, &auditor, "&filter[created-at-start]=2999-01-01").await;
    assert!(future.is_empty());
    let past = all_entries(&app, &auditor, "&filter[created-at-end]=2000-01-01").await;
    assert!(past.is_empty());
    let error = expect_error(
        app.get(
            &auditor,
            &format!("{ENTRIES}?filter[created-at-start]=yesterday"),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["source"]["parameter"], "filter[created-at-start]");
    expect_error(
        app.get(&auditor, &format!("{ENTRIES}?filter[colour]=red"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

async fn the_csv_export_holds_the_filtered_entries(backend: Backend) {
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let key = &bank.sandbox;
    let template = app.create_template(key).await;
    let inquiry = id_of(&app.create_inquiry(key, &template, json!({})).await);
    let (_, request) = answered(
        app.get(key, &format!("/api/v1/inquiries/{inquiry}")).await,
        StatusCode::OK,
    )
    .await;
    let key_id = key_id(&app, key).await;

    let response = app
        .get(
            key,
            &format!("/api/v1/audit-entries.csv?filter[object-id]={inquiry}"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("audit-entries.csv")
    );
    assert!(response.headers().get("idshare-truncated").is_none());
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "created-at,action,actor-type,actor-id,object-type,object-id,request-id,client-address"
    );
    assert_eq!(lines.len(), 2, "{body}");
    let cells: Vec<&str> = lines[1].split(',').collect();
    assert!(cells[0].ends_with('Z'), "{cells:?}");
    assert_eq!(
        &cells[1..],
        &[
            "inquiry.viewed",
            "api-key",
            key_id.as_str(),
            "inquiry",
            inquiry.as_str(),
            request.as_str(),
            ""
        ]
    );

    // The same entries as the list, and paged like the other lists.
    let listed = all_entries(&app, key, "").await;
    let all_csv = app
        .get(key, "/api/v1/audit-entries.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(all_csv.lines().count(), listed.len() + 1);
    let first = expect_status(
        app.get(key, &format!("{ENTRIES}?page[size]=1")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    let next = first["links"]["next"].as_str().expect("an older page");
    let second = expect_status(app.get(key, next).await, StatusCode::OK).await;
    let back = second["links"]["prev"].as_str().expect("a newer page");
    let again = expect_status(app.get(key, back).await, StatusCode::OK).await;
    assert_eq!(again["data"][0]["id"], first["data"][0]["id"]);
}

async fn retention_deletes_only_entries_past_the_period(backend: Backend) {
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let scope = Scope::new(bank.org_id.clone(), Environment::Sandbox);
    let key = idshare_domain::id::ApiKeyId::parse(&key_id(&app, &bank.sandbox).await).unwrap();
    let actor = audit::Actor::api_key(key, None);
    let now = app.state.now();
    let mut tx = app.store.begin_write().await.unwrap();
    // 1 200 old entries (more than one batch) and 3 recent ones.
    for i in 0..1200 {
        let at = now - time::Duration::days(31) - time::Duration::seconds(i);
        audit::record_by(
            &mut tx,
            &scope,
            &actor,
            "inquiry.viewed",
            ("inquiry", "old"),
            at,
        )
        .await
        .unwrap();
    }
    for days in [0, 10, 29] {
        let at = now - time::Duration::days(days);
        audit::record_by(
            &mut tx,
            &scope,
            &actor,
            "inquiry.viewed",
            ("inquiry", "recent"),
            at,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    // What the hourly housekeeping runs with `audit_retention_days = 30`.
    let days = 30;
    let deleted = idshare_service::audit::delete_expired(&app.state, days)
        .await
        .unwrap();
    assert_eq!(deleted, 1200);
    let left = all_entries(&app, &bank.sandbox, "").await;
    assert_eq!(left.len(), 3);
    assert!(
        left.iter()
            .all(|e| e["attributes"]["object-id"] == "recent")
    );
    let again = idshare_service::audit::delete_expired(&app.state, days)
        .await
        .unwrap();
    assert_eq!(again, 0);
}

async fn an_action_rolled_back_leaves_no_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let key = &bank.sandbox;
    let template = app.create_template(key).await;
    let inquiry = id_of(&app.create_inquiry(key, &template, json!({})).await);
    expect_status(
        app.delete(key, &format!("/api/v1/inquiries/{inquiry}"))
            .await,
        StatusCode::OK,
    )
    .await;
    // Refused: a second redaction, a decision the status forbids, a share token over no
    // connection, a webhook without a URL. None of them leaves an entry.
    expect_error(
        app.delete(key, &format!("/api/v1/inquiries/{inquiry}"))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    expect_error(
        app.post(
            key,
            &format!("/api/v1/inquiries/{inquiry}/approve"),
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    expect_error(
        app.post(
            key,
            TOKENS,
            &json!({"data": {"attributes": {"connection-id": "cxn_1111111111111111111111", "source-id": inquiry}}}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_error(
        app.post(
            key,
            "/api/v1/webhooks",
            &json!({"data": {"attributes": {"enabled-events": ["*"]}}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A failing write after the entry: the inquiry's change and its entry go together. The
    // audit table refuses new rows for a moment, so the redaction's transaction fails whole.
    let second = id_of(&app.create_inquiry(key, &template, json!({})).await);
    let breaker = match app.backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries \
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
    };
    app.run_sql(&breaker).await;
    let failed = app
        .delete(key, &format!("/api/v1/inquiries/{second}"))
        .await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    app.run_sql(&[match app.backend {
        Backend::Sqlite => "DROP TRIGGER refuse_audit",
        Backend::Postgres => "DROP TRIGGER refuse_audit ON audit_entries",
    }])
    .await;
    let still = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{second}")).await,
        StatusCode::OK,
    )
    .await;
    assert!(
        still["data"]["attributes"]["redacted-at"].is_null(),
        "the redaction rolled back with its entry: {still}"
    );

    let entries = all_entries(&app, key, "&filter[action]=inquiry.redacted").await;
    assert_eq!(
        entries.len(),
        1,
        "the one redaction that happened: {entries:?}"
    );
    assert_eq!(entries[0]["attributes"]["object-id"], json!(inquiry));
    let approvals = all_entries(&app, key, "&filter[action]=inquiry.approved").await;
    assert!(approvals.is_empty());
    for action in ["share-token.created", "webhook.created"] {
        let entries = all_entries(&app, key, &format!("&filter[action]={action}")).await;
        assert!(entries.is_empty(), "{action}: {entries:?}");
    }
}

async fn the_dashboard_export_is_for_admins_and_reviewers_and_filtered(backend: Backend) {
    let app = spawn_app(backend).await;
    let bank = app.tenant("Bank").await;
    let stranger = app.tenant("Stranger").await;
    add_user(&app, &bank.org_id, "ops@bank.example", Role::Admin).await;
    add_user(&app, &bank.org_id, "review@bank.example", Role::Reviewer).await;
    add_user(&app, &bank.org_id, "viewer@bank.example", Role::Viewer).await;
    add_user(&app, &stranger.org_id, "eve@stranger.example", Role::Admin).await;
    let template = app.create_template(&bank.sandbox).await;
    let inquiry = id_of(
        &app.create_inquiry(&bank.sandbox, &template, json!({}))
            .await,
    );
    let mut reviewer = signed_in(&app, "review@bank.example").await;
    let page = reviewer
        .get(&format!("/dashboard/inquiries/{inquiry}"))
        .await;
    assert_eq!(page.status, StatusCode::OK);

    // Filtered by object: the view only, by the reviewer.
    let export = reviewer
        .get(&format!("/dashboard/audit.csv?object={inquiry}&user="))
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let rows: Vec<&str> = export.body.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", export.body);
    let reviewer_id = user_id(&app, &bank.org_id, "review@bank.example").await;
    assert!(
        rows[0].contains(&format!(
            ",inquiry.viewed,user,{reviewer_id},inquiry,{inquiry},req_"
        )),
        "{}",
        rows[0]
    );
    // Filtered by user: the admin did nothing here.
    let admins = reviewer
        .get("/dashboard/audit.csv?object=&user=ops%40bank.example")
        .await;
    assert_eq!(admins.body.lines().count(), 1, "{}", admins.body);
    // A bad filter is a page saying why, not a file.
    let bad = reviewer
        .get("/dashboard/audit.csv?object=%3Cscript%3E&user=")
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.content_type.starts_with("text/csv"));
    assert!(!bad.body.contains("<script>"));

    // A viewer may not export; another organization's admin exports none of it.
    let mut viewer = signed_in(&app, "viewer@bank.example").await;
    let refused = viewer.get("/dashboard/audit.csv?object=&user=").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains(&inquiry));
    let mut eve = signed_in(&app, "eve@stranger.example").await;
    let theirs = eve
        .get(&format!("/dashboard/audit.csv?object={inquiry}&user="))
        .await;
    assert_eq!(theirs.status, StatusCode::OK);
    assert_eq!(theirs.body.lines().count(), 1, "{}", theirs.body);
}

backend_tests!(
    every_action_is_audited_with_actor_object_and_request_id,
    the_log_needs_audit_read_and_stays_in_its_organization_and_environment,
    the_csv_export_holds_the_filtered_entries,
    retention_deletes_only_entries_past_the_period,
    an_action_rolled_back_leaves_no_entry,
    the_dashboard_export_is_for_admins_and_reviewers_and_filtered,
);
