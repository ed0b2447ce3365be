//! Connect redemption preview (`POST /api/v1/connect/share-tokens/{id}/preview`, DESIGN §2.5):
//! what redeeming under a destination template would do — satisfied, reused, to run, missing,
//! outcome — without personal values, its refusals, and that it changes nothing but its
//! events. The destination's reads of the source (peek and preview) are no oracle: a bisection
//! over template constraints learns nothing, they stop with the connection, the source sees
//! each one, and each token's reads are limited, across nodes.

use idshare_store::users::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dashboard::{TOKENS as DASHBOARD_TOKENS, add_user, signed_in};
use crate::helpers::{
    Backend, Tenant, TestApp, expect_error, expect_status, spawn_app, spawn_app_with,
};

const TOKENS: &str = "/api/v1/connect/share-tokens";
const EMAIL: &str = "ada.lovelace@example.com";
const BIRTHDATE: &str = "1990-06-15";

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

/// S with a completed inquiry (email, first and last name, birthdate, email verification
/// passed), an active connection S→D, and a token for that inquiry; C is a stranger.
async fn setup(backend: Backend) -> Setup {
    setup_on(spawn_app(backend).await).await
}

async fn setup_on(app: TestApp) -> Setup {
    let s = app.tenant("Source").await;
    let d = app.tenant("Destination").await;
    let c = app.tenant("Stranger").await;
    let t = id_of(
        &expect_status(
            app.post(
                &s.sandbox,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Onboarding", "field-schemas": [
                    {"key": "email-address", "type": "string"},
                    {"key": "name-first", "type": "string"},
                    {"key": "name-last", "type": "string"},
                    {"key": "birthdate", "type": "date"},
                ], "verifications": [{"type": "email-address", "required": true}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    let source = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &t,
            json!({"email-address": EMAIL, "name-first": "Zebulonia", "name-last": "Lovelace",
                   "birthdate": BIRTHDATE}),
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
    for secret in [EMAIL, "Zebulonia", "Lovelace", BIRTHDATE] {
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

    // An expired token, and a redeemed one: 409.
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
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
    for (gone, status) in [(&expired, "expired"), (&redeemed, "redeemed")] {
        let error = expect_error(
            app.post(&d.sandbox, &preview_path(gone), &body(&own)).await,
            StatusCode::CONFLICT,
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

/// The events about `token` in the organization of `key`, oldest first, by name.
async fn token_events(app: &TestApp, key: &str, token: &str) -> Vec<String> {
    let body = expect_status(
        app.get(
            key,
            &format!("/api/v1/events?filter[object-id]={token}&page[size]=100"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let mut names: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.reverse();
    names
}

async fn preview_changes_nothing_but_its_events(backend: Backend) {
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
    // Three previews, three events on each side, and nothing else.
    assert_eq!(events(d.sandbox.clone()).await[3..], d_events);
    assert_eq!(events(s.sandbox.clone()).await[3..], s_events);
    assert_eq!(
        token_events(&app, &s.sandbox, &token).await,
        [
            "connect/share-token.outbound-created",
            "connect/share-token.outbound-previewed",
            "connect/share-token.outbound-previewed",
            "connect/share-token.outbound-previewed",
        ]
    );
}

/// The attack of the security review: a `connect.read` key recovers the source's birthdate by
/// bisection, previewing templates whose birthdate field accepts ever narrower date ranges. Every
/// answer is the same whatever the constraint, so the bisection learns nothing; and neither
/// does one over `reuse.max-age-days` (how long ago the source verified).
async fn bisection_over_template_constraints_learns_nothing(backend: Backend) {
    let Setup { app, d, token, .. } = setup(backend).await;
    let birthdate_template = |range: Value| {
        let mut config = json!({"required": true});
        config.as_object_mut().unwrap().extend(
            range
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        json!({"data": {"attributes": {"name": "Bisect", "field-schemas": [
            {"key": "birthdate", "type": "date", "config": config},
            {"key": "email-address", "type": "string"},
        ], "verifications": [
            {"type": "email-address", "required": true, "reuse": {"max-age-days": 30}},
        ]}}})
    };
    // Ranges that hold the birthdate and ranges that do not, as a bisection would try them.
    let ranges = [
        json!({}),
        json!({"min-date": "1900-01-01", "max-date": "1989-12-31"}),
        json!({"min-date": "1990-01-01", "max-date": "2009-12-31"}),
        json!({"min-date": "1990-01-01", "max-date": "1990-06-30"}),
        json!({"min-date": "1990-06-16", "max-date": "1990-06-30"}),
        json!({"min-date": "1990-06-01", "max-date": "1990-06-14"}),
        json!({"min-date": BIRTHDATE, "max-date": BIRTHDATE}),
    ];
    let mut answers = Vec::new();
    for range in ranges {
        let t = id_of(
            &expect_status(
                app.post(
                    &d.sandbox,
                    "/api/v1/inquiry-templates",
                    &birthdate_template(range.clone()),
                )
                .await,
                StatusCode::CREATED,
            )
            .await,
        );
        let mut attributes = preview(&app, &d.sandbox, &token, &body(&t)).await;
        attributes
            .as_object_mut()
            .unwrap()
            .remove("inquiry-template-id");
        answers.push((range, attributes));
    }
    let (_, first) = &answers[0];
    assert_eq!(first["outcome"], "will-complete", "{first}");
    assert_eq!(
        keys(&first["satisfied"]),
        ["field:birthdate", "field:email-address"]
    );
    for (range, answer) in &answers {
        assert_eq!(answer, first, "the answer depends on the range {range}");
    }

    // Ten days later, a template that reuses verifications up to 5 days old and one that
    // reuses them up to 10 years old get the same answer: the age is decided at redemption.
    app.state.advance_clock(time::Duration::days(10));
    let mut reuse_answers = Vec::new();
    for days in [5, 3650] {
        let t = template(
            &app,
            &d.sandbox,
            &["email-address"],
            json!([{"type": "email-address", "required": true, "reuse": {"max-age-days": days}}]),
        )
        .await;
        let mut attributes = preview(&app, &d.sandbox, &token, &body(&t)).await;
        attributes
            .as_object_mut()
            .unwrap()
            .remove("inquiry-template-id");
        reuse_answers.push(attributes);
    }
    assert_eq!(reuse_answers[0], reuse_answers[1]);
    assert_eq!(reuse_answers[0]["reused"], json!(["email-address"]));
}

async fn deactivate(app: &TestApp, key: &str, connection: &str) {
    expect_status(
        app.post(
            key,
            &format!("/api/v1/connect/connections/{connection}/deactivate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
}

/// Once either side deactivated the connection, the destination can neither peek nor preview
/// (409, as for redeem), and the refusals record nothing; once it is active again, both work.
async fn peek_and_preview_need_an_active_connection(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        connection,
        token,
        ..
    } = setup(backend).await;
    let t = template(&app, &d.sandbox, &["email-address"], json!([])).await;
    let peek_path = format!("{TOKENS}/{token}?peek-source-data=true");
    for deactivating in [&s.sandbox, &d.sandbox] {
        deactivate(&app, deactivating, &connection).await;
        let events_before = token_events(&app, &s.sandbox, &token).await;
        let refused =
            expect_error(app.get(&d.sandbox, &peek_path).await, StatusCode::CONFLICT).await;
        assert_eq!(refused["title"], "Connection not active", "{refused}");
        assert!(
            refused["details"]
                .as_str()
                .unwrap()
                .contains(&format!("`{connection}` is `inactive`")),
            "{refused}"
        );
        let refused = expect_error(
            app.post(&d.sandbox, &preview_path(&token), &body(&t)).await,
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(refused["title"], "Connection not active", "{refused}");
        assert_eq!(token_events(&app, &s.sandbox, &token).await, events_before);
        // The source reactivates, the destination activates again.
        expect_status(
            app.post(
                &s.sandbox,
                &format!("/api/v1/connect/connections/{connection}/reactivate"),
                &json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        let pending =
            expect_error(app.get(&d.sandbox, &peek_path).await, StatusCode::CONFLICT).await;
        assert!(pending["details"].as_str().unwrap().contains("`pending`"));
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
        expect_status(app.get(&d.sandbox, &peek_path).await, StatusCode::OK).await;
        preview(&app, &d.sandbox, &token, &body(&t)).await;
    }
}

/// Every peek and preview is an event of the source (and of the destination), which a
/// webhook can subscribe to.
async fn the_source_sees_every_peek_and_preview(backend: Backend) {
    let Setup {
        app, s, d, token, ..
    } = setup(backend).await;
    let webhook = expect_status(
        app.post(
            &s.sandbox,
            "/api/v1/webhooks",
            &json!({"data": {"attributes": {"url": "https://hooks.example.invalid/idshare",
                "enabled-events": ["connect/share-token.outbound-peeked",
                                   "connect/share-token.outbound-previewed"]}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let webhook = id_of(&webhook);
    let t = template(&app, &d.sandbox, &["email-address"], json!([])).await;
    expect_status(
        app.get(
            &d.sandbox,
            &format!("{TOKENS}/{token}?peek-source-data=true"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    preview(&app, &d.sandbox, &token, &body(&t)).await;
    // A plain retrieval is no read of the source: no event.
    expect_status(
        app.get(&d.sandbox, &format!("{TOKENS}/{token}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        token_events(&app, &s.sandbox, &token).await,
        [
            "connect/share-token.outbound-created",
            "connect/share-token.outbound-peeked",
            "connect/share-token.outbound-previewed",
        ]
    );
    assert_eq!(
        token_events(&app, &d.sandbox, &token).await,
        [
            "connect/share-token.inbound-created",
            "connect/share-token.inbound-peeked",
            "connect/share-token.inbound-previewed",
        ]
    );
    // The payload is the token as the source sees it: no source data, no value.
    let listed = expect_status(
        app.get(
            &s.sandbox,
            "/api/v1/events?filter[name]=connect/share-token.outbound-peeked",
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let payload = &listed["data"][0]["attributes"]["payload"]["data"];
    assert_eq!(payload["id"], token.as_str(), "{listed}");
    assert_eq!(payload["attributes"]["direction"], "outbound");
    assert!(payload["attributes"].get("source-data").is_none());
    assert!(!listed.to_string().contains(EMAIL));
    let deliveries = expect_status(
        app.get(
            &s.sandbox,
            &format!("/api/v1/webhooks/{webhook}/deliveries?page[size]=100"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        deliveries["data"].as_array().unwrap().len(),
        2,
        "{deliveries}"
    );
}

/// A second node on the same database as `app`, with its own limit of reads.
async fn second_node(app: &TestApp, limit: u32) -> TestApp {
    let database_url = app.database_url.clone();
    let data_dir = app.data_dir.clone();
    spawn_app_with(app.backend, move |config| {
        config.database_url = Some(idshare_server::config::Secret::new(database_url));
        config.data_dir = data_dir;
        config.share_token_peeks_and_previews_per_hour = limit.try_into().unwrap();
    })
    .await
}

/// Peeks and previews of one token are limited (here to 3 an hour), counted across two nodes
/// of one database: the fourth is a 429 with `Retry-After`, records nothing, and does not
/// touch another token's count; an hour later the token may be read again.
async fn peeks_and_previews_are_limited_per_token_across_nodes(backend: Backend) {
    let node_a = spawn_app_with(backend, |config| {
        config.share_token_peeks_and_previews_per_hour = 3.try_into().unwrap();
    })
    .await;
    let Setup {
        app,
        s,
        d,
        connection,
        source,
        token,
        ..
    } = setup_on(node_a).await;
    let node_b = second_node(&app, 3).await;
    let t = template(&app, &d.sandbox, &["email-address"], json!([])).await;
    let peek_path = format!("{TOKENS}/{token}?peek-source-data=true");
    expect_status(app.get(&d.sandbox, &peek_path).await, StatusCode::OK).await;
    preview(&app, &d.sandbox, &token, &body(&t)).await;
    preview(&node_b, &d.sandbox, &token, &body(&t)).await;
    for node in [&node_b, &app] {
        let response = node.get(&d.sandbox, &peek_path).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3600).contains(&retry_after), "{retry_after}");
        let error = expect_error(response, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(error["title"], "Rate limit exceeded", "{error}");
        assert!(
            error["details"]
                .as_str()
                .unwrap()
                .contains(&format!("retry in {retry_after} s")),
            "{error}"
        );
        let error = expect_error(
            node.post(&d.sandbox, &preview_path(&token), &body(&t))
                .await,
            StatusCode::TOO_MANY_REQUESTS,
        )
        .await;
        assert_eq!(error["title"], "Rate limit exceeded", "{error}");
    }
    assert_eq!(
        token_events(&app, &s.sandbox, &token).await.len(),
        4,
        "created and three reads: the refused ones recorded nothing"
    );
    // Another token of the same inquiry has its own count.
    let other = new_token(&app, &s, &connection, &source).await;
    preview(&node_b, &d.sandbox, &other, &body(&t)).await;
    // A refused preview sent with an Idempotency-Key is not kept: the same key runs once the
    // limit allows again.
    let keyed = || {
        app.client
            .post(app.url(&preview_path(&token)))
            .bearer_auth(&d.sandbox)
            .header("idempotency-key", "preview-when-allowed")
            .json(&body(&t))
    };
    assert_eq!(
        keyed().send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // An hour later (the clock of each node moves on), the token may be read again.
    for node in [&app, &node_b] {
        node.state
            .advance_clock(time::Duration::hours(1) + time::Duration::seconds(1));
    }
    let retried = keyed().send().await.unwrap();
    assert!(retried.headers().get("idempotent-replayed").is_none());
    let retried = expect_status(retried, StatusCode::OK).await;
    assert_eq!(retried["data"]["type"], "connect/share-token-preview");
    preview(&node_b, &d.sandbox, &token, &body(&t)).await;
    expect_status(app.get(&d.sandbox, &peek_path).await, StatusCode::OK).await;
}

/// The dashboard's preview is the same read as the API's: refused over an inactive connection
/// with the reason on the page, and seen by the source when it is answered.
async fn dashboard_preview_follows_the_same_rules(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        connection,
        token,
        ..
    } = setup(backend).await;
    let t = template(&app, &d.sandbox, &["email-address"], json!([])).await;
    add_user(&app, &d.org_id, "ops@destination.example", Role::Admin).await;
    let mut browser = signed_in(&app, "ops@destination.example").await;
    let page = format!("{DASHBOARD_TOKENS}/{token}?template={t}");
    let shown = browser.get(&page).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(shown.body.contains("will-complete"), "{}", shown.body);
    assert_eq!(
        token_events(&app, &s.sandbox, &token).await,
        [
            "connect/share-token.outbound-created",
            "connect/share-token.outbound-previewed",
        ]
    );
    deactivate(&app, &s.sandbox, &connection).await;
    let refused = browser.get(&page).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains("only over an active connection"),
        "{}",
        refused.body
    );
    assert!(
        !refused.body.contains("will-complete"),
        "no preview is shown"
    );
    assert_eq!(token_events(&app, &s.sandbox, &token).await.len(), 2);
}

backend_tests!(
    satisfied_template_reuses_or_runs,
    proof_of_address_template_will_be_stuck,
    refusals,
    preview_changes_nothing_but_its_events,
    bisection_over_template_constraints_learns_nothing,
    peek_and_preview_need_an_active_connection,
    the_source_sees_every_peek_and_preview,
    peeks_and_previews_are_limited_per_token_across_nodes,
    dashboard_preview_follows_the_same_rules,
);
