//! Connect redemption preview (`POST /api/v1/connect/share-tokens/{id}/preview`, DESIGN §2.5):
//! what redeeming under a destination template would do — satisfied, reused, to run, missing,
//! outcome — without personal values, its refusals, and that it changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Tenant, TestApp, expect_error, expect_status, spawn_app};

const TOKENS: &str = "/api/v1/connect/share-tokens";
const EMAIL: &str = "ada.lovelace@example.com";

fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

async fn template(app: &TestApp, key: &str, fields: &[&str], verifications: Value) -> String {
    let schemas: Vec<Value> = fields
        .iter()
        .map(|k| json!({"key": k, "type": "string"}))
        .collect();
    id_of(
        &expect_status(
            app.post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "T", "field-schemas": schemas,
                    "verifications": verifications}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    )
}

struct Setup {
    app: TestApp,
    s: Tenant,
    d: Tenant,
    c: Tenant,
    connection: String,
    source: String,
    token: String,
}

/// S with a completed inquiry (email, first and last name, email verification passed), an
/// active connection S→D, and a token for that inquiry; C is a stranger.
async fn setup(backend: Backend) -> Setup {
    let app = spawn_app(backend).await;
    let s = app.tenant("Source").await;
    let d = app.tenant("Destination").await;
    let c = app.tenant("Stranger").await;
    let t = template(
        &app,
        &s.sandbox,
        &["email-address", "name-first", "name-last"],
        json!([{"type": "email-address", "required": true}]),
    )
    .await;
    let source = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &t,
            json!({"email-address": EMAIL, "name-first": "Zebulonia", "name-last": "Lovelace"}),
        )
        .await,
    );
    expect_status(
        app.post(
            &s.sandbox,
            &format!("/api/v1/inquiries/{source}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
    let connection = id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                "/api/v1/connect/connections",
                &json!({"data": {"attributes": {"destination-organization-id": d.org_id.as_str()}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/connect/connections/{connection}/activate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let token = new_token(&app, &s, &connection, &source).await;
    Setup {
        app,
        s,
        d,
        c,
        connection,
        source,
        token,
    }
}

async fn new_token(app: &TestApp, s: &Tenant, connection: &str, source: &str) -> String {
    id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                TOKENS,
                &json!({"data": {"attributes": {"connection-id": connection, "source-id": source}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    )
}

fn preview_path(token: &str) -> String {
    format!("{TOKENS}/{token}/preview")
}

fn body(template: &str) -> Value {
    json!({"data": {"attributes": {"inquiry-template-id": template}}})
}

/// Previews and checks the envelope; returns the attributes.
async fn preview(app: &TestApp, key: &str, token: &str, body: &Value) -> Value {
    let response = app.post(key, &preview_path(token), body).await;
    let text = response.text().await.unwrap();
    for secret in [EMAIL, "Zebulonia", "Lovelace"] {
        assert!(!text.contains(secret), "preview leaks `{secret}`: {text}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["data"]["type"], "connect/share-token-preview", "{doc}");
    assert_eq!(doc["data"]["id"], token);
    assert_eq!(
        doc["data"]["attributes"]["inquiry-template-id"],
        body["data"]["attributes"]["inquiry-template-id"]
    );
    doc["data"]["attributes"].clone()
}

fn keys(requirements: &Value) -> Vec<String> {
    requirements
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["kind"].as_str().unwrap(),
                r["key"].as_str().unwrap()
            )
        })
        .collect()
}

async fn satisfied_template_reuses_or_runs(backend: Backend) {
    let Setup { app, d, token, .. } = setup(backend).await;
    // Reuse allowed, and the source's email verification passed just now: will complete.
    let reusing = template(
        &app,
        &d.sandbox,
        &["email-address", "name-first"],
        json!([{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}}]),
    )
    .await;
    let attributes = preview(&app, &d.sandbox, &token, &body(&reusing)).await;
    assert_eq!(attributes["outcome"], "will-complete", "{attributes}");
    assert_eq!(attributes["reused"], json!(["email-address"]));
    assert_eq!(attributes["to-run"], json!([]));
    assert_eq!(attributes["missing"], json!([]));
    assert_eq!(keys(&attributes["satisfied"]), ["field:email-address"]);
    assert_eq!(attributes["satisfied"][0]["label"], "Email address");

    // No reuse: the verification runs again, and its result is not known in advance.
    let running = template(
        &app,
        &d.sandbox,
        &["email-address", "name-first"],
        json!([{"type": "email-address", "required": true}]),
    )
    .await;
    let attributes = preview(&app, &d.sandbox, &token, &body(&running)).await;
    assert_eq!(attributes["outcome"], "may-fail", "{attributes}");
    assert_eq!(attributes["reused"], json!([]));
    assert_eq!(attributes["to-run"], json!(["email-address"]));

    // Field mappings: a required `given-name` is satisfied by the source's `name-first`.
    let mapped = id_of(
        &expect_status(
            app.post(
                &d.sandbox,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Mapped", "field-schemas": [
                    {"key": "given-name", "type": "string", "config": {"required": true}},
                ]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    let unmapped = preview(&app, &d.sandbox, &token, &body(&mapped)).await;
    assert_eq!(unmapped["outcome"], "will-be-stuck");
    assert_eq!(keys(&unmapped["missing"]), ["field:given-name"]);
    let mut with_mappings = body(&mapped);
    with_mappings["meta"] = json!({"field-mappings": [
        {"source-field-name": "name-first", "destination-field-name": "given-name"}]});
    let attributes = preview(&app, &d.sandbox, &token, &with_mappings).await;
    assert_eq!(attributes["outcome"], "will-complete", "{attributes}");
    assert_eq!(keys(&attributes["satisfied"]), ["field:given-name"]);

    // Malformed mappings are a 400 with a pointer.
    let mut bad = body(&mapped);
    bad["meta"] = json!({"field-mappings": {}});
    let error = expect_error(
        app.post(&d.sandbox, &preview_path(&token), &bad).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["source"]["pointer"], "/meta/field-mappings");
}

async fn proof_of_address_template_will_be_stuck(backend: Backend) {
    let Setup { app, d, token, .. } = setup(backend).await;
    let t = template(
        &app,
        &d.sandbox,
        &[
            "email-address",
            "address-street-1",
            "address-city",
            "address-postal-code",
            "address-country-code",
        ],
        json!([{"type": "email-address", "required": true},
               {"type": "document", "required": true}]),
    )
    .await;
    let attributes = preview(&app, &d.sandbox, &token, &body(&t)).await;
    assert_eq!(attributes["outcome"], "will-be-stuck", "{attributes}");
    assert_eq!(keys(&attributes["satisfied"]), ["field:email-address"]);
    assert_eq!(
        keys(&attributes["missing"]),
        [
            "document:proof-of-address",
            "file:proof-of-address",
            "field:address-street-1",
            "field:address-city",
            "field:address-postal-code",
            "field:address-country-code",
        ]
    );
    assert_eq!(attributes["missing"][0]["for-verification"], "document");
    assert_eq!(attributes["to-run"], json!(["email-address"]));
    assert_eq!(attributes["reused"], json!([]));
}

async fn refusals(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        c,
        connection,
        source,
        token,
    } = setup(backend).await;
    let own = template(&app, &d.sandbox, &["email-address"], json!([])).await;
    let foreign = template(&app, &s.sandbox, &["email-address"], json!([])).await;

    // The source may not preview: 403.
    let error = expect_error(
        app.post(&s.sandbox, &preview_path(&token), &body(&foreign))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(error["details"].as_str().unwrap().contains("destination"));
    // A third organization, and the destination's production key, do not see the token.
    for key in [&c.sandbox, &d.production] {
        let error = expect_error(
            app.post(key, &preview_path(&token), &body(&own)).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(error["title"], "Record not found");
    }
    // A template that is not the caller's, or no template at all.
    for template in [foreign.as_str(), "itmpl_nope"] {
        let error = expect_error(
            app.post(&d.sandbox, &preview_path(&token), &body(template))
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(
            error["source"]["pointer"],
            "/data/attributes/inquiry-template-id"
        );
    }
    let error = expect_error(
        app.post(
            &d.sandbox,
            &preview_path(&token),
            &json!({"data": {"attributes": {}}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        error["source"]["pointer"],
        "/data/attributes/inquiry-template-id"
    );

    // An expired token, and a redeemed one: 422.
    let expired = new_token(&app, &s, &connection, &source).await;
    expect_status(
        app.post(
            &s.sandbox,
            &format!("{TOKENS}/{expired}/expire"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let redeemed = new_token(&app, &s, &connection, &source).await;
    expect_status(
        app.post(
            &d.sandbox,
            &format!("{TOKENS}/{redeemed}/redeem"),
            &json!({"data": {"attributes": {"inquiry-template-id": own}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    app.drain().await;
    for (gone, status) in [(&expired, "expired"), (&redeemed, "redeemed")] {
        let error = expect_error(
            app.post(&d.sandbox, &preview_path(gone), &body(&own)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            error["details"].as_str().unwrap().contains(status),
            "{error}"
        );
    }
    // The original token still previews fine.
    let attributes = preview(&app, &d.sandbox, &token, &body(&own)).await;
    assert_eq!(attributes["outcome"], "will-complete", "{attributes}");
}

async fn preview_changes_nothing(backend: Backend) {
    let Setup {
        app, s, d, token, ..
    } = setup(backend).await;
    let t = template(
        &app,
        &d.sandbox,
        &["email-address", "name-first"],
        json!([{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}}]),
    )
    .await;
    let token_before = expect_status(
        app.get(&d.sandbox, &format!("{TOKENS}/{token}")).await,
        StatusCode::OK,
    )
    .await;
    let events = |key: String| {
        let app = &app;
        async move { app.list_ids(&key, "/api/v1/events?page[size]=100").await }
    };
    let d_events = events(d.sandbox.clone()).await;
    let s_events = events(s.sandbox.clone()).await;
    for _ in 0..3 {
        preview(&app, &d.sandbox, &token, &body(&t)).await;
    }
    assert_eq!(app.drain().await, 0, "no job was enqueued");
    let token_after = expect_status(
        app.get(&d.sandbox, &format!("{TOKENS}/{token}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(token_after["data"]["attributes"]["status"], "created");
    assert_eq!(token_after, token_before);
    assert!(
        app.list_ids(&d.sandbox, "/api/v1/inquiries")
            .await
            .is_empty(),
        "no destination inquiry was created"
    );
    assert_eq!(events(d.sandbox.clone()).await, d_events);
    assert_eq!(events(s.sandbox.clone()).await, s_events);
}

backend_tests!(
    satisfied_template_reuses_or_runs,
    proof_of_address_template_will_be_stuck,
    refusals,
    preview_changes_nothing,
);
