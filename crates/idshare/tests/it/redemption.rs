//! Connect redemption: hydrate, clone and template extension through the public API, the
//! redemption job (copy only what the destination declares, reuse, run, decide), stuck
//! destinations, field mappings, 50 concurrent redeems, refusals that change nothing, and a
//! token that fails because its source was redacted meanwhile.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Tenant, TestApp, expect_error, expect_status, spawn_app};
use crate::pipeline::{PDF, upload};

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

fn email_verification() -> Value {
    json!([{"type": "email-address", "required": true}])
}

async fn inquiry(app: &TestApp, key: &str, id: &str) -> Value {
    expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await
}

async fn get_token(app: &TestApp, key: &str, id: &str) -> Value {
    expect_status(
        app.get(key, &format!("{TOKENS}/{id}")).await,
        StatusCode::OK,
    )
    .await
}

async fn events_named(app: &TestApp, key: &str, object: &str) -> Vec<String> {
    let body = expect_status(
        app.get(
            key,
            &format!("/api/v1/events?filter[object-id]={object}&page[size]=100"),
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
    names.sort();
    names
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
        email_verification(),
    )
    .await;
    let source = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &t,
            json!({"email-address": EMAIL, "name-first": "Ada", "name-last": "Lovelace"}),
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
    assert_eq!(
        inquiry(&app, &s.sandbox, &source).await["data"]["attributes"]["status"],
        "completed"
    );
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

fn redeem_path(token: &str) -> String {
    format!("{TOKENS}/{token}/redeem")
}

fn hydrate_body(destination: &str) -> Value {
    json!({"data": {"attributes": {"destination-id": destination}}})
}

async fn hydrate_copies_declared_fields_reuses_and_completes(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        token,
        source,
        ..
    } = setup(backend).await;
    let t = template(
        &app,
        &d.sandbox,
        &["email-address", "name-first"],
        json!([{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}}]),
    )
    .await;
    let destination = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    let redeemed = expect_status(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &hydrate_body(&destination),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let attributes = &redeemed["data"]["attributes"];
    assert_eq!(attributes["status"], "pending", "{redeemed}");
    assert!(attributes["pending-at"].is_string());
    assert_eq!(
        redeemed["data"]["relationships"]["destination"]["data"]["id"],
        destination.as_str()
    );
    app.drain().await;
    assert_eq!(app.drain().await, 0);

    let t_now = get_token(&app, &d.sandbox, &token).await;
    assert_eq!(t_now["data"]["attributes"]["status"], "redeemed", "{t_now}");
    assert!(t_now["data"]["attributes"]["redeemed-at"].is_string());
    let dest = inquiry(&app, &d.sandbox, &destination).await;
    let attributes = &dest["data"]["attributes"];
    assert_eq!(attributes["status"], "completed", "{dest}");
    assert_eq!(attributes["fields"]["email-address"]["value"], EMAIL);
    assert_eq!(attributes["fields"]["name-first"]["value"], "Ada");
    // Only the declared fields were copied: name-last is nowhere.
    let provenance = attributes["field-provenance"].as_object().unwrap();
    let mut keys: Vec<&String> = provenance.keys().collect();
    keys.sort();
    assert_eq!(keys, ["email-address", "name-first"]);
    assert_eq!(provenance["email-address"]["share-token"], token.as_str());
    assert_eq!(
        provenance["email-address"]["source-inquiry"],
        source.as_str()
    );
    assert!(!dest.to_string().contains("Lovelace"));
    // The email verification was reused, not run again.
    let verifications = expect_status(
        app.get(
            &d.sandbox,
            &format!("/api/v1/verifications?filter[inquiry-id]={destination}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let list = verifications["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{verifications}");
    assert_eq!(list[0]["attributes"]["status"], "passed");
    assert!(
        list[0].to_string().contains("reused-from"),
        "{verifications}"
    );
    // It counts in this inquiry, so it is announced like one that ran.
    assert_eq!(
        events_named(&app, &d.sandbox, list[0]["id"].as_str().unwrap()).await,
        ["verification.passed"]
    );
    // Events exactly once on each side.
    assert_eq!(
        events_named(&app, &d.sandbox, &token).await,
        [
            "connect/share-token.inbound-created",
            "connect/share-token.inbound-redeemed"
        ]
    );
    assert_eq!(
        events_named(&app, &s.sandbox, &token).await,
        [
            "connect/share-token.outbound-created",
            "connect/share-token.outbound-redeemed"
        ]
    );
    let inquiry_events = events_named(&app, &d.sandbox, &destination).await;
    assert_eq!(
        inquiry_events,
        ["inquiry.completed", "inquiry.created", "inquiry.started"]
    );
    // Redeeming again: 409.
    expect_error(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &hydrate_body(&destination),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
}

async fn clone_copies_everything_marked_cloned(backend: Backend) {
    let Setup { app, d, token, .. } = setup(backend).await;
    let redeemed = expect_status(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &json!({"data": {"attributes": {}}}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let destination = redeemed["data"]["relationships"]["destination"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.drain().await;
    assert_eq!(
        get_token(&app, &d.sandbox, &token).await["data"]["attributes"]["status"],
        "redeemed"
    );
    let dest = inquiry(&app, &d.sandbox, &destination).await;
    let attributes = &dest["data"]["attributes"];
    assert_eq!(attributes["status"], "completed", "{dest}");
    assert_eq!(attributes["fields"]["name-last"]["value"], "Lovelace");
    assert!(dest["data"]["relationships"]["inquiry-template"]["data"].is_null());
    let verifications = expect_status(
        app.get(
            &d.sandbox,
            &format!("/api/v1/verifications?filter[inquiry-id]={destination}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let list = verifications["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{verifications}");
    assert_eq!(list[0]["attributes"]["status"], "passed");
    assert!(
        list[0].to_string().contains("cloned-from"),
        "{verifications}"
    );
    assert_eq!(
        events_named(&app, &d.sandbox, list[0]["id"].as_str().unwrap()).await,
        ["verification.passed"],
        "a cloned verification is announced like a reused one"
    );
}

async fn template_extension_and_field_mappings(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        connection,
        source,
        token,
        ..
    } = setup(backend).await;
    let t = template(
        &app,
        &d.sandbox,
        &["email-address", "given-name"],
        email_verification(),
    )
    .await;
    let redeemed = expect_status(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &json!({"data": {"attributes": {"inquiry-template-id": t}},
                    "meta": {"field-mappings": [{"source-field-name": "name-first",
                                                  "destination-field-name": "given-name"}]}}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let destination = redeemed["data"]["relationships"]["destination"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.drain().await;
    let dest = inquiry(&app, &d.sandbox, &destination).await;
    let attributes = &dest["data"]["attributes"];
    assert_eq!(attributes["status"], "completed", "{dest}");
    assert_eq!(attributes["fields"]["given-name"]["value"], "Ada");
    assert_eq!(
        attributes["field-provenance"]["given-name"]["source-field"],
        "name-first"
    );
    assert_eq!(
        dest["data"]["relationships"]["inquiry-template"]["data"]["id"],
        t.as_str()
    );

    // Stuck: D's template needs a proof of address the source never had.
    let stuck_template = template(
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
    let second = new_token(&app, &s, &connection, &source).await;
    let stuck = id_of(
        &app.create_inquiry(&d.sandbox, &stuck_template, json!({}))
            .await,
    );
    expect_status(
        app.post(&d.sandbox, &redeem_path(&second), &hydrate_body(&stuck))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
    assert_eq!(
        get_token(&app, &d.sandbox, &second).await["data"]["attributes"]["status"],
        "redeemed"
    );
    let dest = inquiry(&app, &d.sandbox, &stuck).await;
    let attributes = &dest["data"]["attributes"];
    assert_eq!(attributes["status"], "pending", "{dest}");
    let missing = attributes["missing-requirements"].to_string();
    assert!(missing.contains("proof-of-address"), "{missing}");
}

async fn fifty_concurrent_redeems_one_wins(backend: Backend) {
    let Setup {
        app, s, d, token, ..
    } = setup(backend).await;
    let path = redeem_path(&token);
    let body = json!({"data": {"attributes": {}}});
    let calls = (0..50).map(|_| app.post(&d.sandbox, &path, &body));
    let responses = futures::future::join_all(calls).await;
    let mut accepted = 0;
    let mut conflict = 0;
    for response in responses {
        match response.status() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::CONFLICT => conflict += 1,
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    assert_eq!((accepted, conflict), (1, 49));
    app.drain().await;
    assert_eq!(
        get_token(&app, &d.sandbox, &token).await["data"]["attributes"]["status"],
        "redeemed"
    );
    assert_eq!(app.list_ids(&d.sandbox, "/api/v1/inquiries").await.len(), 1);
    assert_eq!(
        events_named(&app, &s.sandbox, &token).await,
        [
            "connect/share-token.outbound-created",
            "connect/share-token.outbound-redeemed"
        ]
    );
}

async fn refusals_change_nothing(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        c,
        connection,
        source,
        token,
    } = setup(backend).await;
    let t = template(&app, &d.sandbox, &["email-address"], email_verification()).await;
    let destination = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    let path = redeem_path(&token);
    let hydrate = hydrate_body(&destination);
    let before = token_status(&app, &d, &token).await;
    let s_inquiries = app.list_ids(&s.sandbox, "/api/v1/inquiries").await.len();

    let e = expect_error(
        app.post(&s.sandbox, &path, &hydrate).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        e.to_string()
            .contains("Only the destination organization can redeem"),
        "{e}"
    );
    expect_error(
        app.post(&c.sandbox, &path, &hydrate).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_error(
        app.post(&d.production, &path, &hydrate).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Malformed mappings.
    for mappings in [
        json!("x"),
        json!([{"source-field-name": "a"}]),
        json!([{"source-field-name": "a", "destination-field-name": "b"},
               {"source-field-name": "c", "destination-field-name": "b"}]),
    ] {
        let e = expect_error(
            app.post(
                &d.sandbox,
                &path,
                &json!({"data": {"attributes": {"destination-id": destination}},
                        "meta": {"field-mappings": mappings}}),
            )
            .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            e["source"]["pointer"]
                .as_str()
                .unwrap()
                .starts_with("/meta/field-mappings"),
            "{e}"
        );
    }
    // Both attributes.
    expect_error(
        app.post(
            &d.sandbox,
            &path,
            &json!({"data": {"attributes": {"destination-id": destination, "inquiry-template-id": t}}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A destination inquiry of another organization.
    let s_template = template(&app, &s.sandbox, &["email-address"], json!([])).await;
    let foreign = id_of(&app.create_inquiry(&s.sandbox, &s_template, json!({})).await);
    let e = expect_error(
        app.post(&d.sandbox, &path, &hydrate_body(&foreign)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(e["source"]["pointer"], "/data/attributes/destination-id");
    // A finished destination.
    let finished = id_of(
        &app.create_inquiry(&d.sandbox, &t, json!({"email-address": EMAIL}))
            .await,
    );
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/inquiries/{finished}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
    expect_error(
        app.post(&d.sandbox, &path, &hydrate_body(&finished)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // Expired token.
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
    let e = expect_error(
        app.post(&d.sandbox, &redeem_path(&expired), &hydrate).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(token_status(&app, &d, &token).await, before);
    // Connection inactive.
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/connect/connections/{connection}/deactivate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let e = expect_error(
        app.post(&d.sandbox, &path, &hydrate).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(e.to_string().contains("inactive"), "{e}");
    assert_eq!(token_status(&app, &d, &token).await, before);
    assert_eq!(app.drain().await, 0, "no job was enqueued");
    assert_eq!(
        inquiry(&app, &d.sandbox, &destination).await["data"]["attributes"]["status"],
        "created"
    );
    assert_eq!(
        app.list_ids(&s.sandbox, "/api/v1/inquiries").await.len(),
        s_inquiries + 1
    );
}

async fn token_status(app: &TestApp, d: &Tenant, token_id: &str) -> Value {
    get_token(app, &d.sandbox, token_id).await["data"]["attributes"].clone()
}

async fn post_ok(app: &TestApp, key: &str, path: &str) {
    expect_status(app.post(key, path, &json!({})).await, StatusCode::OK).await;
}

fn connection_path(connection: &str, action: &str) -> String {
    format!("/api/v1/connect/connections/{connection}/{action}")
}

/// A token that is being (or was) redeemed, a destination another token targets, and a
/// connection back to `pending`: each refused, with nothing created or changed.
async fn busy_tokens_and_destinations_are_refused(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        connection,
        source,
        token,
        ..
    } = setup(backend).await;
    let other = new_token(&app, &s, &connection, &source).await;
    let later = new_token(&app, &s, &connection, &source).await;
    let t = template(&app, &d.sandbox, &["email-address"], email_verification()).await;
    let destination = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    expect_status(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &hydrate_body(&destination),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let inquiries = app.list_ids(&d.sandbox, "/api/v1/inquiries").await.len();

    // The same token again, while pending: 409, even when it would create an inquiry.
    let e = expect_error(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &json!({"data": {"attributes": {"inquiry-template-id": t}}}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(e.to_string().contains("already being redeemed"), "{e}");
    // Another token into the destination the first one targets.
    let e = expect_error(
        app.post(
            &d.sandbox,
            &redeem_path(&other),
            &hydrate_body(&destination),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(e["source"]["pointer"], "/data/attributes/destination-id");
    assert!(
        e.to_string()
            .contains("already the destination of another share token"),
        "{e}"
    );
    assert_eq!(token_status(&app, &d, &other).await["status"], "created");

    // Once redeemed, the token is final.
    assert_eq!(app.drain().await, 1);
    assert_eq!(token_status(&app, &d, &token).await["status"], "redeemed");
    let e = expect_error(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &json!({"data": {"attributes": {"inquiry-template-id": t}}}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(e.to_string().contains("already redeemed"), "{e}");

    // A connection deactivated and reactivated is `pending` until the destination activates it.
    post_ok(
        &app,
        &d.sandbox,
        &connection_path(&connection, "deactivate"),
    )
    .await;
    post_ok(
        &app,
        &s.sandbox,
        &connection_path(&connection, "reactivate"),
    )
    .await;
    let e = expect_error(
        app.post(
            &d.sandbox,
            &redeem_path(&later),
            &json!({"data": {"attributes": {"inquiry-template-id": t}}}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(e.to_string().contains("`pending`"), "{e}");
    assert_eq!(token_status(&app, &d, &later).await["status"], "created");

    assert_eq!(
        app.list_ids(&d.sandbox, "/api/v1/inquiries").await.len(),
        inquiries,
        "no refused call left an inquiry behind"
    );
    assert_eq!(app.drain().await, 0, "no refused call enqueued a job");
}

async fn redeem_into(app: &TestApp, d: &Tenant, token: &str, destination: &str) {
    expect_status(
        app.post(&d.sandbox, &redeem_path(token), &hydrate_body(destination))
            .await,
        StatusCode::ACCEPTED,
    )
    .await;
}

async fn failed_token(app: &TestApp, d: &Tenant, token: &str, reason: &str) {
    let attributes = token_status(app, d, token).await;
    assert_eq!(attributes["status"], "failed", "{attributes}");
    // idshare's precise reason is an extension; `failure-reason` is Persona's.
    assert_eq!(attributes["failure-detail"], reason);
    let persona = match reason {
        "source-redacted" => "source_redacted",
        "internal-error" => "unrecoverable_error",
        _ => "import_failed",
    };
    assert_eq!(attributes["failure-reason"], persona);
    assert!(attributes["failed-at"].is_string());
    assert!(
        events_named(app, &d.sandbox, token)
            .await
            .contains(&"connect/share-token.inbound-failed".to_owned())
    );
}

/// What changes between the redeem call and the job — the destination redacted, the
/// connection deactivated, the source redacted — fails the token with its reason, and the
/// destination inquiry is left as it was.
async fn the_job_fails_tokens_it_cannot_process(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        connection,
        token,
        source,
        ..
    } = setup(backend).await;
    let for_redacted_destination = new_token(&app, &s, &connection, &source).await;
    let for_deactivated_connection = new_token(&app, &s, &connection, &source).await;
    let t = template(&app, &d.sandbox, &["email-address"], email_verification()).await;
    let redacted = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    redeem_into(&app, &d, &for_redacted_destination, &redacted).await;
    expect_status(
        app.delete(&d.sandbox, &format!("/api/v1/inquiries/{redacted}"))
            .await,
        StatusCode::OK,
    )
    .await;
    app.drain().await;
    failed_token(
        &app,
        &d,
        &for_redacted_destination,
        "destination-not-hydratable",
    )
    .await;

    let untouched = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    redeem_into(&app, &d, &for_deactivated_connection, &untouched).await;
    post_ok(
        &app,
        &d.sandbox,
        &connection_path(&connection, "deactivate"),
    )
    .await;
    app.drain().await;
    failed_token(&app, &d, &for_deactivated_connection, "connection-inactive").await;
    assert_eq!(
        inquiry(&app, &d.sandbox, &untouched).await["data"]["attributes"]["status"],
        "created"
    );

    post_ok(
        &app,
        &s.sandbox,
        &connection_path(&connection, "reactivate"),
    )
    .await;
    post_ok(&app, &d.sandbox, &connection_path(&connection, "activate")).await;
    let kept = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    redeem_into(&app, &d, &token, &kept).await;
    expect_status(
        app.delete(&s.sandbox, &format!("/api/v1/inquiries/{source}"))
            .await,
        StatusCode::OK,
    )
    .await;
    app.drain().await;
    failed_token(&app, &d, &token, "source-redacted").await;
    let kept = inquiry(&app, &d.sandbox, &kept).await;
    assert_eq!(kept["data"]["attributes"]["status"], "created");
    assert!(
        kept["data"]["attributes"]["fields"]["email-address"]["value"].is_null(),
        "nothing was copied: {kept}"
    );
}

const ADDRESS_FIELDS: [&str; 6] = [
    "name-first",
    "name-last",
    "address-street-1",
    "address-city",
    "address-postal-code",
    "address-country-code",
];

/// The destination's proof-of-address verification gets the source's document and file,
/// each with provenance, and the copied file is the source's bytes.
async fn copied_documents_and_files_carry_provenance(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        connection,
        ..
    } = setup(backend).await;
    let document_verification = json!([{"type": "document", "required": true}]);
    let t = template(
        &app,
        &s.sandbox,
        &ADDRESS_FIELDS,
        document_verification.clone(),
    )
    .await;
    let source = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &t,
            json!({"name-first": "Ada", "name-last": "Lovelace",
                   "address-street-1": "12 High Street", "address-city": "London",
                   "address-postal-code": "SW1A 1AA", "address-country-code": "GB"}),
        )
        .await,
    );
    let issued = idshare_domain::time_format::format_date(
        time::OffsetDateTime::now_utc().date() - time::Duration::days(20),
    );
    expect_status(
        app.post(
            &s.sandbox,
            &format!("/api/v1/inquiries/{source}/documents"),
            &json!({"data": {"type": "document/proof-of-address", "attributes": {
                "document-kind": "utility-bill", "issue-date": issued,
                "address-street-1": "12 High Street", "address-city": "London",
                "address-postal-code": "SW1A 1AA", "address-country-code": "GB"}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    upload(&app, &s.sandbox, &source, "proof-of-address", PDF).await;
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
    assert_eq!(
        inquiry(&app, &s.sandbox, &source).await["data"]["attributes"]["status"],
        "completed"
    );
    let token = new_token(&app, &s, &connection, &source).await;

    let t = template(&app, &d.sandbox, &ADDRESS_FIELDS, document_verification).await;
    let destination = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    redeem_into(&app, &d, &token, &destination).await;
    app.drain().await;
    let dest = inquiry(&app, &d.sandbox, &destination).await;
    let attributes = &dest["data"]["attributes"];
    assert_eq!(attributes["status"], "completed", "{dest}");
    for key in ["document:proof-of-address", "file:proof-of-address"] {
        let provenance = &attributes["field-provenance"][key];
        assert_eq!(provenance["share-token"], token.as_str(), "{key}: {dest}");
        assert_eq!(provenance["source-inquiry"], source.as_str());
        assert!(provenance["copied-at"].is_string());
    }
    let files = expect_status(
        app.get(
            &d.sandbox,
            &format!("/api/v1/inquiries/{destination}/files"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let files = files["data"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["attributes"]["kind"], "proof-of-address");
    let url = files[0]["attributes"]["download-url"].as_str().unwrap();
    let download = app.client.get(url).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().as_ref(), PDF);
}

/// The verifications of an inquiry: `(type, submission, reused-from)`, in submission order.
async fn verifications_of(app: &TestApp, key: &str, inquiry: &str) -> Vec<Value> {
    let list = expect_status(
        app.get(
            key,
            &format!("/api/v1/verifications?filter[inquiry-id]={inquiry}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let mut list = list["data"].as_array().unwrap().clone();
    list.sort_by_key(|v| v["attributes"]["submission"].as_i64());
    list
}

/// The `verification.*` events about the verifications `ids`, as `(name, verification id)`.
async fn verification_events(app: &TestApp, key: &str, ids: &[String]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for id in ids {
        for name in events_named(app, key, id).await {
            found.push((name, id.clone()));
        }
    }
    found
}

/// A destination inquiry stuck after a redemption that reused the source's email verification:
/// its template also needs a proof of address, which the source never had.
async fn stuck_after_reuse(app: &TestApp, d: &Tenant, token: &str) -> String {
    let mut fields = vec!["email-address"];
    fields.extend(ADDRESS_FIELDS);
    let t = template(
        app,
        &d.sandbox,
        &fields,
        json!([{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}},
               {"type": "document", "required": true}]),
    )
    .await;
    let destination = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    redeem_into(app, d, token, &destination).await;
    app.drain().await;
    let stuck = inquiry(app, &d.sandbox, &destination).await;
    assert_eq!(stuck["data"]["attributes"]["status"], "pending", "{stuck}");
    assert!(
        stuck["data"]["attributes"]["missing-requirements"]
            .to_string()
            .contains("proof-of-address")
    );
    destination
}

/// What the end user supplies to finish the stuck inquiry (through the API here; the hosted
/// flow does the same in `connect_e2e`), then submits.
async fn finish_stuck(app: &TestApp, d: &Tenant, destination: &str, fields: Value) {
    expect_status(
        app.patch(
            &d.sandbox,
            &format!("/api/v1/inquiries/{destination}"),
            &json!({"data": {"attributes": {"fields": fields}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let issued = idshare_domain::time_format::format_date(
        time::OffsetDateTime::now_utc().date() - time::Duration::days(20),
    );
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/inquiries/{destination}/documents"),
            &json!({"data": {"type": "document/proof-of-address", "attributes": {
                "document-kind": "utility-bill", "issue-date": issued,
                "address-street-1": "12 High Street", "address-city": "London",
                "address-postal-code": "SW1A 1AA", "address-country-code": "GB"}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    upload(app, &d.sandbox, destination, "proof-of-address", PDF).await;
    expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/inquiries/{destination}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    app.drain().await;
}

fn address() -> Value {
    json!({"name-first": "Ada", "name-last": "Lovelace",
           "address-street-1": "12 High Street", "address-city": "London",
           "address-postal-code": "SW1A 1AA", "address-country-code": "GB"})
}

/// A verification reused by a redemption counts when the end user finishes the stuck inquiry:
/// it is not run again (one email verification, the reused one, from the first submission),
/// its result decides with the document's, and each verification wrote its
/// `verification.passed` once.
async fn a_reused_verification_counts_when_the_end_user_finishes(backend: Backend) {
    let Setup { app, d, token, .. } = setup(backend).await;
    let destination = stuck_after_reuse(&app, &d, &token).await;
    let reused = verifications_of(&app, &d.sandbox, &destination).await;
    assert_eq!(reused.len(), 1, "{reused:?}");
    assert!(reused[0]["attributes"]["details"]["reused-from"].is_string());
    assert!(
        reused[0]["attributes"]["details"]
            .get("reused-basis")
            .is_none()
            && !reused[0].to_string().contains("reused-basis"),
        "the digest of the inputs is not shown"
    );

    finish_stuck(&app, &d, &destination, address()).await;
    let done = inquiry(&app, &d.sandbox, &destination).await;
    assert_eq!(done["data"]["attributes"]["status"], "completed", "{done}");
    let verifications = verifications_of(&app, &d.sandbox, &destination).await;
    let summary: Vec<(String, i64)> = verifications
        .iter()
        .map(|v| {
            (
                v["attributes"]["verification-type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                v["attributes"]["submission"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("email-address".to_owned(), 1), ("document".to_owned(), 2)],
        "the reused email verification was not run again: {verifications:?}"
    );
    assert_eq!(verifications[0]["id"], reused[0]["id"]);
    let ids: Vec<String> = verifications
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        verification_events(&app, &d.sandbox, &ids).await,
        [
            ("verification.passed".to_owned(), ids[0].clone()),
            ("verification.passed".to_owned(), ids[1].clone()),
        ]
    );
}

/// A reused verification vouches for the inputs it was copied with: once the destination
/// changed the email address, finishing the inquiry runs the email verification again.
async fn a_reused_verification_whose_input_changed_runs_again(backend: Backend) {
    let Setup { app, d, token, .. } = setup(backend).await;
    let destination = stuck_after_reuse(&app, &d, &token).await;
    let mut fields = address();
    fields["email-address"] = json!("grace.hopper@example.com");
    finish_stuck(&app, &d, &destination, fields).await;
    let done = inquiry(&app, &d.sandbox, &destination).await;
    assert_eq!(done["data"]["attributes"]["status"], "completed", "{done}");
    let emails: Vec<Value> = verifications_of(&app, &d.sandbox, &destination)
        .await
        .into_iter()
        .filter(|v| v["attributes"]["verification-type"] == "email-address")
        .collect();
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert_eq!(emails[1]["attributes"]["submission"], 2);
    assert!(emails[1]["attributes"]["details"]["reused-from"].is_null());
    assert_eq!(
        emails[1]["attributes"]["details"]["email-address"],
        "grace.hopper@example.com"
    );
}

/// The copy, the reused verification, the pipeline's decision, every event and webhook
/// delivery and the token `redeemed` commit together: a failure before the commit (here, the
/// token's `redeemed` event refused by the database) leaves none of them.
async fn a_redemption_commits_all_or_nothing(backend: Backend) {
    let Setup { app, d, token, .. } = setup(backend).await;
    let t = template(
        &app,
        &d.sandbox,
        &["email-address", "name-first"],
        json!([{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}}]),
    )
    .await;
    let destination = id_of(&app.create_inquiry(&d.sandbox, &t, json!({})).await);
    expect_status(
        app.post(
            &d.sandbox,
            "/api/v1/webhooks",
            &json!({"data": {"attributes": {"url": "http://127.0.0.1:9/hook", "enabled-events": ["*"]}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let refuse = match backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_redeemed BEFORE INSERT ON events \
             WHEN NEW.name = 'connect/share-token.inbound-redeemed' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_redeemed() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
            "CREATE TRIGGER refuse_redeemed BEFORE INSERT ON events FOR EACH ROW \
             WHEN (NEW.name = 'connect/share-token.inbound-redeemed') \
             EXECUTE FUNCTION refuse_redeemed()",
        ],
    };
    app.run_sql(&refuse).await;
    expect_status(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &hydrate_body(&destination),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let before = app
        .count_rows("SELECT COUNT(*) FROM webhook_deliveries")
        .await;
    app.drain().await;

    // The failure is not one a retry can help with: the job is given up, the token `failed`.
    let token_now = get_token(&app, &d.sandbox, &token).await;
    assert_eq!(
        token_now["data"]["attributes"]["status"], "failed",
        "{token_now}"
    );
    let dest = inquiry(&app, &d.sandbox, &destination).await;
    let attributes = &dest["data"]["attributes"];
    assert_eq!(attributes["status"], "created", "{dest}");
    assert!(
        attributes["fields"]["email-address"]["value"].is_null(),
        "{dest}"
    );
    assert!(
        verifications_of(&app, &d.sandbox, &destination)
            .await
            .is_empty()
    );
    assert_eq!(
        events_named(&app, &d.sandbox, &destination).await,
        ["inquiry.created"]
    );
    assert_eq!(
        events_named(&app, &d.sandbox, &token).await,
        [
            "connect/share-token.inbound-created",
            "connect/share-token.inbound-failed"
        ]
    );
    // Only the failure is delivered.
    assert_eq!(
        app.count_rows("SELECT COUNT(*) FROM webhook_deliveries")
            .await,
        before + 1
    );
}

/// The job completes itself in the transaction that redeems the token: a run whose job was
/// handed on to another worker (its lease ran out) writes nothing; the holder's run redeems
/// and leaves the job done, with nothing for its worker to record.
async fn a_redemption_completes_its_job_in_its_write_transaction(backend: Backend) {
    use idshare_service::jobs::{Claim, Completion};
    use idshare_store::jobs;

    let Setup { app, d, token, .. } = setup(backend).await;
    expect_status(
        app.post(
            &d.sandbox,
            &redeem_path(&token),
            &json!({"data": {"attributes": {}}}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    let store = app.state.store();
    let now = app.state.now();
    let claimed = jobs::claim_batch(store, "first", None, 10, now, time::Duration::minutes(1))
        .await
        .unwrap();
    let job = claimed
        .iter()
        .find(|j| j.kind == "share-token-redemption")
        .unwrap();
    // The lease of "first" ran out and "second" took the job over.
    let takeover = format!(
        "UPDATE jobs SET locked_by = 'second' WHERE id = '{}'",
        job.id.as_str()
    );
    app.run_sql(&[takeover.as_str()]).await;
    let services = app.state.services();
    let run_as = |worker| {
        idshare_service::redemption::run(
            services,
            Claim {
                job: &job.id,
                worker,
            },
            &token,
            &[],
        )
    };

    assert_eq!(run_as("first").await.unwrap(), Completion::ByWorker);
    assert_eq!(
        get_token(&app, &d.sandbox, &token).await["data"]["attributes"]["status"],
        "pending"
    );
    assert_eq!(
        events_named(&app, &d.sandbox, &token).await,
        ["connect/share-token.inbound-created"]
    );

    assert_eq!(run_as("second").await.unwrap(), Completion::InJob);
    assert_eq!(
        get_token(&app, &d.sandbox, &token).await["data"]["attributes"]["status"],
        "redeemed"
    );
    // Done already: neither its holder nor anyone else can complete it again.
    for worker in ["first", "second"] {
        assert!(!jobs::complete(store, &job.id, worker, now).await.unwrap());
    }
    assert!(
        jobs::claim_batch(store, "third", None, 10, now, time::Duration::minutes(1))
            .await
            .unwrap()
            .iter()
            .all(|j| j.id != job.id)
    );
}

/// A worker that claims several redemptions writes them in one transaction, each under a
/// savepoint of its own: one that fails (here, its `redeemed` event refused by the database)
/// is rolled back alone and failed on its own, while the others are redeemed, their jobs done,
/// in that one transaction.
async fn a_batch_with_one_failing_redemption_redeems_the_others(backend: Backend) {
    let Setup {
        app,
        s,
        d,
        connection,
        source,
        token,
        ..
    } = setup(backend).await;
    let failing = new_token(&app, &s, &connection, &source).await;
    let other = new_token(&app, &s, &connection, &source).await;
    let refuse = match backend {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_redeemed BEFORE INSERT ON events \
             WHEN NEW.name = 'connect/share-token.inbound-redeemed' AND NEW.object_id = '{failing}' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_redeemed() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER refuse_redeemed BEFORE INSERT ON events FOR EACH ROW \
                 WHEN (NEW.name = 'connect/share-token.inbound-redeemed' \
                       AND NEW.object_id = '{failing}') \
                 EXECUTE FUNCTION refuse_redeemed()"
            ),
        ],
    };
    let refuse: Vec<&str> = refuse.iter().map(String::as_str).collect();
    app.run_sql(&refuse).await;
    for t in [&token, &failing, &other] {
        expect_status(
            app.post(
                &d.sandbox,
                &redeem_path(t),
                &json!({"data": {"attributes": {}}}),
            )
            .await,
            StatusCode::ACCEPTED,
        )
        .await;
    }
    let before = app.store.counters();
    let services = app.state.services();
    assert!(
        idshare_service::worker::run_next(services, "batch", Some("default"))
            .await
            .unwrap()
    );
    let after = app.store.counters();
    // The claim, the shared write of the two redeemed, and for the failed one the token
    // `failed` and its job's outcome.
    assert_eq!(after.write_commits - before.write_commits, 4);

    for t in [&token, &other] {
        let status = token_status(&app, &d, t).await;
        assert_eq!(status["status"], "redeemed", "{status}");
        assert_eq!(
            events_named(&app, &d.sandbox, t).await,
            [
                "connect/share-token.inbound-created",
                "connect/share-token.inbound-redeemed"
            ]
        );
    }
    let status = token_status(&app, &d, &failing).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(
        events_named(&app, &d.sandbox, &failing).await,
        [
            "connect/share-token.inbound-created",
            "connect/share-token.inbound-failed"
        ]
    );
    assert_eq!(
        app.count_rows(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'share-token-redemption' AND status = 'done'"
        )
        .await,
        2
    );
    assert_eq!(
        app.count_rows(&format!(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'share-token-redemption' \
             AND status = 'dead' AND payload LIKE '%{failing}%' AND last_error LIKE '%injected failure%'"
        ))
        .await,
        1
    );
}

backend_tests!(
    hydrate_copies_declared_fields_reuses_and_completes,
    clone_copies_everything_marked_cloned,
    template_extension_and_field_mappings,
    fifty_concurrent_redeems_one_wins,
    refusals_change_nothing,
    busy_tokens_and_destinations_are_refused,
    the_job_fails_tokens_it_cannot_process,
    copied_documents_and_files_carry_provenance,
    a_reused_verification_counts_when_the_end_user_finishes,
    a_reused_verification_whose_input_changed_runs_again,
    a_redemption_commits_all_or_nothing,
    a_redemption_completes_its_job_in_its_write_transaction,
    a_batch_with_one_failing_redemption_redeems_the_others,
);
