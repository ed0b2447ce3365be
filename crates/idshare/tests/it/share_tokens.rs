//! Connect share tokens: creation by the connection's source with events to both
//! organizations, lists and retrieval from both ends with the right `direction`, the
//! destination's peek (names, never values), expiry by the source and by the TTL job, refusals
//! that change nothing, and isolation from third organizations and the other environment.

use idshare_domain::id::ShareTokenId;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::helpers::{Backend, Tenant, TestApp, expect_error, expect_status, spawn_app};

const TOKENS: &str = "/api/v1/connect/share-tokens";
const CONNECTIONS: &str = "/api/v1/connect/connections";
const EMAIL: &str = "ada.lovelace@example.com";

fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

/// A template asking for an email address and a required email verification.
async fn email_template(app: &TestApp, key: &str) -> String {
    id_of(
        &expect_status(
            app.post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Email",
                    "field-schemas": [{"key": "email-address", "type": "string"},
                                      {"key": "name-first", "type": "string"}],
                    "verifications": [{"type": "email-address", "required": true}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    )
}

/// An inquiry of `key`'s organization, submitted and run: `completed`.
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
    let done = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(done["data"]["attributes"]["status"], "completed", "{done}");
    id
}

/// A connection from `source` to `destination`, activated by the destination when `activate`.
async fn connect(app: &TestApp, source: &Tenant, destination: &Tenant, activate: bool) -> String {
    let id = id_of(
        &expect_status(
            app.post(
                &source.sandbox,
                CONNECTIONS,
                &json!({"data": {"attributes": {"destination-organization-id": destination.org_id.as_str()}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    if activate {
        expect_status(
            app.post(
                &destination.sandbox,
                &format!("{CONNECTIONS}/{id}/activate"),
                &json!({}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    }
    id
}

fn create_body(connection: &str, source: &str, ttl: Option<i64>) -> Value {
    let mut attributes = json!({"connection-id": connection, "source-id": source});
    if let Some(ttl) = ttl {
        attributes["expires-in-seconds"] = json!(ttl);
    }
    json!({"data": {"attributes": attributes}})
}

async fn create_token(app: &TestApp, key: &str, connection: &str, source: &str) -> Value {
    expect_status(
        app.post(key, TOKENS, &create_body(connection, source, None))
            .await,
        StatusCode::CREATED,
    )
    .await
}

/// `(name, direction in the payload)` of the events about `object`, newest first.
async fn events_about(app: &TestApp, key: &str, object: &str) -> Vec<(String, String)> {
    let body = expect_status(
        app.get(
            key,
            &format!("/api/v1/events?filter[object-id]={object}&page[size]=100"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let attributes = &e["attributes"];
            assert_eq!(
                e["relationships"]["object"]["data"]["type"],
                "connect/share-token"
            );
            assert_eq!(attributes["payload"]["data"]["id"], object);
            assert!(
                attributes["payload"]["data"]["attributes"]
                    .get("source-data")
                    .is_none()
            );
            (
                attributes["name"].as_str().unwrap().to_owned(),
                attributes["payload"]["data"]["attributes"]["direction"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

fn named(names: &[&str], direction: &str) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| {
            (
                format!("connect/share-token.{direction}-{n}"),
                direction.to_owned(),
            )
        })
        .collect()
}

fn timestamp(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

struct Setup {
    app: TestApp,
    a: Tenant,
    b: Tenant,
    c: Tenant,
    connection: String,
    template: String,
    source: String,
}

/// A (source) with a completed inquiry, B (destination) with an active connection from A,
/// and a third organization C.
async fn setup(backend: Backend) -> Setup {
    let app = spawn_app(backend).await;
    let a = app.tenant("Source").await;
    let b = app.tenant("Destination").await;
    let c = app.tenant("Stranger").await;
    let template = email_template(&app, &a.sandbox).await;
    let source = completed_inquiry(&app, &a.sandbox, &template).await;
    let connection = connect(&app, &a, &b, true).await;
    Setup {
        app,
        a,
        b,
        c,
        connection,
        template,
        source,
    }
}

async fn lifecycle_from_both_sides_with_events_to_both(backend: Backend) {
    let Setup {
        app,
        a,
        b,
        connection,
        source,
        ..
    } = setup(backend).await;
    let created = create_token(&app, &a.sandbox, &connection, &source).await;
    let data = &created["data"];
    let id = id_of(&created);
    assert!(id.starts_with("cnst_"), "{id}");
    assert_eq!(data["type"], "connect/share-token");
    let attributes = &data["attributes"];
    assert_eq!(attributes["status"], "created");
    assert_eq!(attributes["direction"], "outbound");
    assert_eq!(attributes["created-at"], attributes["updated-at"]);
    for absent in ["pending-at", "redeemed-at", "failed-at", "failure-reason"] {
        assert_eq!(attributes[absent], Value::Null, "{absent}");
    }
    assert!(attributes.get("source-data").is_none());
    let relationships = &data["relationships"];
    assert_eq!(
        relationships["connection"]["data"],
        json!({"type": "connect/connection", "id": connection})
    );
    assert_eq!(relationships["creator"]["data"]["type"], "api-key");
    assert!(
        relationships["creator"]["data"]["id"]
            .as_str()
            .unwrap()
            .starts_with("api_")
    );
    assert_eq!(
        relationships["source"]["data"],
        json!({"type": "inquiry", "id": source})
    );
    assert_eq!(relationships["destination"]["data"], Value::Null);

    // Both ends retrieve it, each from its own side.
    let path = format!("{TOKENS}/{id}");
    let as_source = expect_status(app.get(&a.sandbox, &path).await, StatusCode::OK).await;
    assert_eq!(as_source["data"], *data);
    let as_destination = expect_status(app.get(&b.sandbox, &path).await, StatusCode::OK).await;
    assert_eq!(as_destination["data"]["attributes"]["direction"], "inbound");
    assert_eq!(as_destination["data"]["relationships"], *relationships);
    assert!(
        as_destination["data"]["attributes"]
            .get("source-data")
            .is_none()
    );

    // Both lists, with the right direction.
    for (key, direction, other) in [
        (&a.sandbox, "outbound", "inbound"),
        (&b.sandbox, "inbound", "outbound"),
    ] {
        let list = expect_status(app.get(key, TOKENS).await, StatusCode::OK).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        assert_eq!(list["data"][0]["id"], id.as_str());
        assert_eq!(list["data"][0]["attributes"]["direction"], direction);
        assert!(list["data"][0]["attributes"].get("source-data").is_none());
        for (query, found) in [
            (format!("filter[direction]={direction}"), true),
            (format!("filter[direction]={other}"), false),
            (format!("filter[connection-id]={connection}"), true),
            (
                "filter[connection-id]=cxn_123456789ABCDEFGHJKLMNPQ".to_owned(),
                false,
            ),
            ("filter[status]=created".to_owned(), true),
            ("filter[status]=expired".to_owned(), false),
        ] {
            let ids = app.list_ids(key, &format!("{TOKENS}?{query}")).await;
            assert_eq!(ids.len(), usize::from(found), "{query} as {direction}");
        }
    }

    // Expire: the destination may not, the source may, once.
    let error = expect_error(
        app.post(&b.sandbox, &format!("{path}/expire"), &json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        error["details"],
        "Only the source organization of a share token can expire it; yours is its destination."
    );
    let expired = expect_status(
        app.post(&a.sandbox, &format!("{path}/expire"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(expired["data"]["attributes"]["status"], "expired");
    assert_eq!(expired["data"]["attributes"]["direction"], "outbound");
    let error = expect_error(
        app.post(&a.sandbox, &format!("{path}/expire"), &json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        error["details"],
        "Cannot expire a share token whose status is `expired`."
    );
    let seen = expect_status(app.get(&b.sandbox, &path).await, StatusCode::OK).await;
    assert_eq!(seen["data"]["attributes"]["status"], "expired");
    assert_eq!(
        app.list_ids(&b.sandbox, &format!("{TOKENS}?filter[status]=expired"))
            .await,
        vec![id.clone()]
    );

    assert_eq!(
        events_about(&app, &a.sandbox, &id).await,
        named(&["expired", "created"], "outbound")
    );
    assert_eq!(
        events_about(&app, &b.sandbox, &id).await,
        named(&["expired", "created"], "inbound")
    );
}

async fn peek_shows_names_and_types_never_values(backend: Backend) {
    let Setup {
        app,
        a,
        b,
        connection,
        source,
        ..
    } = setup(backend).await;
    let id = id_of(&create_token(&app, &a.sandbox, &connection, &source).await);
    let path = format!("{TOKENS}/{id}?peek-source-data=true");
    let response = app.get(&b.sandbox, &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.contains(EMAIL), "the peek leaks the value: {text}");
    assert!(!text.contains("ada.lovelace"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let envelope = &body["data"]["attributes"]["source-data"];
    // Persona's `connect/source-data/inquiry`: each field's presence, never its value.
    assert_eq!(envelope["type"], "connect/source-data/inquiry");
    assert_eq!(envelope["id"], source.as_str());
    assert_eq!(
        envelope["peekable-attributes"]["fields"]["email-address"],
        json!({"visibility": "presence", "value": true})
    );
    assert_eq!(
        envelope["peekable-attributes"]["status"],
        json!({"visibility": "full", "value": "completed"})
    );
    let related = envelope["related-objects"].as_array().unwrap();
    assert_eq!(related.len(), 1, "{envelope}");
    assert_eq!(
        related[0]["type"],
        "connect/source-data/verification/email-address"
    );
    assert!(related[0]["id"].as_str().unwrap().starts_with("ver_"));
    assert_eq!(
        related[0]["peekable-attributes"],
        json!({"status": {"visibility": "full", "value": "passed"}})
    );
    // `false` is no peek.
    let plain = expect_status(
        app.get(&b.sandbox, &format!("{TOKENS}/{id}?peek-source-data=false"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(plain["data"]["attributes"].get("source-data").is_none());
    let error = expect_error(
        app.get(&b.sandbox, &format!("{TOKENS}/{id}?peek-source-data=yes"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(error["source"]["parameter"], "peek-source-data");
    // The source may not peek (it owns the inquiry).
    let error = expect_error(app.get(&a.sandbox, &path).await, StatusCode::FORBIDDEN).await;
    assert!(
        error["details"]
            .as_str()
            .unwrap()
            .starts_with("Only the destination organization"),
        "{error}"
    );
    // Once the source is redacted, the peek shows nothing, and says why.
    expect_status(
        app.delete(&a.sandbox, &format!("/api/v1/inquiries/{source}"))
            .await,
        StatusCode::OK,
    )
    .await;
    let body = expect_status(app.get(&b.sandbox, &path).await, StatusCode::OK).await;
    let attributes = &body["data"]["attributes"];
    assert!(attributes.get("source-data").is_none(), "{attributes}");
    assert_eq!(
        attributes["source-data-unavailable-reason"],
        "source-redacted"
    );
}

async fn ttl_is_validated_defaulted_and_enforced_by_the_job(backend: Backend) {
    let Setup {
        app,
        a,
        b,
        connection,
        source,
        ..
    } = setup(backend).await;
    for ttl in [59, 21 * 86_400 + 1, 0, -5] {
        let error = expect_error(
            app.post(
                &a.sandbox,
                TOKENS,
                &create_body(&connection, &source, Some(ttl)),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            error["source"]["pointer"], "/data/attributes/expires-in-seconds",
            "{ttl}"
        );
        assert!(
            error["details"]
                .as_str()
                .unwrap()
                .contains("must be between 60 (1 minute) and 1814400 (21 days)"),
            "{error}"
        );
    }
    let error = expect_error(
        app.post(
            &a.sandbox,
            TOKENS,
            &json!({"data": {"attributes": {"connection-id": connection, "source-id": source, "expires-in-seconds": "soon"}}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        error["source"]["pointer"],
        "/data/attributes/expires-in-seconds"
    );
    assert!(app.list_ids(&a.sandbox, TOKENS).await.is_empty());

    let default = create_token(&app, &a.sandbox, &connection, &source).await;
    let attributes = &default["data"]["attributes"];
    assert_eq!(
        timestamp(&attributes["expires-at"]) - timestamp(&attributes["created-at"]),
        time::Duration::days(14)
    );
    for (ttl, expected) in [
        (60, time::Duration::minutes(1)),
        (21 * 86_400, time::Duration::days(21)),
    ] {
        let token = expect_status(
            app.post(
                &a.sandbox,
                TOKENS,
                &create_body(&connection, &source, Some(ttl)),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let attributes = &token["data"]["attributes"];
        assert_eq!(
            timestamp(&attributes["expires-at"]) - timestamp(&attributes["created-at"]),
            expected
        );
    }

    // Nothing is due yet.
    assert_eq!(
        idshare_service::share_tokens::expire_due(&app.state)
            .await
            .unwrap(),
        0
    );
    // Move the default token's expiry into the past: the job expires it, and only it.
    let id = id_of(&default);
    let mut tx = app.store.begin_write().await.unwrap();
    assert!(
        idshare_store::share_tokens::set_expires_at(
            &mut tx,
            &ShareTokenId::parse(&id).unwrap(),
            OffsetDateTime::now_utc() - time::Duration::seconds(1),
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        idshare_service::share_tokens::expire_due(&app.state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        idshare_service::share_tokens::expire_due(&app.state)
            .await
            .unwrap(),
        0
    );
    let seen = expect_status(
        app.get(&b.sandbox, &format!("{TOKENS}/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(seen["data"]["attributes"]["status"], "expired");
    assert_eq!(
        app.list_ids(&a.sandbox, &format!("{TOKENS}?filter[status]=created"))
            .await
            .len(),
        2
    );
    assert_eq!(
        events_about(&app, &a.sandbox, &id).await,
        named(&["expired", "created"], "outbound")
    );
    assert_eq!(
        events_about(&app, &b.sandbox, &id).await,
        named(&["expired", "created"], "inbound")
    );
}

/// What every party sees: compared before and after refused requests.
#[derive(Debug, PartialEq)]
struct Seen {
    lists: Vec<Vec<String>>,
    events: Vec<Vec<String>>,
}

async fn seen(app: &TestApp, keys: &[&str]) -> Seen {
    let mut lists = vec![];
    let mut events = vec![];
    for key in keys {
        lists.push(app.list_ids(key, TOKENS).await);
        events.push(app.list_ids(key, "/api/v1/events").await);
    }
    Seen { lists, events }
}

async fn refusals_are_clear_and_change_nothing(backend: Backend) {
    let Setup {
        app,
        a,
        b,
        c,
        connection,
        template,
        source,
    } = setup(backend).await;
    // Another token exists, so the lists compared are not empty.
    create_token(&app, &a.sandbox, &connection, &source).await;
    let unfinished = id_of(
        &app.create_inquiry(&a.sandbox, &template, json!({"email-address": EMAIL}))
            .await,
    );
    let redacted = completed_inquiry(&app, &a.sandbox, &template).await;
    expect_status(
        app.delete(&a.sandbox, &format!("/api/v1/inquiries/{redacted}"))
            .await,
        StatusCode::OK,
    )
    .await;
    let pending = connect(&app, &a, &c, false).await;
    let b_template = email_template(&app, &b.sandbox).await;
    let b_inquiry = completed_inquiry(&app, &b.sandbox, &b_template).await;
    // An inactive connection from A to a fourth organization.
    let d = app.tenant("D").await;
    let inactive = connect(&app, &a, &d, true).await;
    expect_status(
        app.post(
            &a.sandbox,
            &format!("{CONNECTIONS}/{inactive}/deactivate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let keys = [
        a.sandbox.as_str(),
        b.sandbox.as_str(),
        c.sandbox.as_str(),
        d.sandbox.as_str(),
    ];
    let before = seen(&app, &keys).await;

    let cases: Vec<(&str, &str, &str, StatusCode, &str, &str)> = vec![
        (
            "pending connection",
            &a.sandbox,
            &pending,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/data/attributes/connection-id",
            "is `pending`",
        ),
        (
            "inactive connection",
            &a.sandbox,
            &inactive,
            StatusCode::UNPROCESSABLE_ENTITY,
            "/data/attributes/connection-id",
            "is `inactive`",
        ),
        (
            "destination creating",
            &b.sandbox,
            &connection,
            StatusCode::FORBIDDEN,
            "/data/attributes/connection-id",
            "Only the source organization of a connection",
        ),
        (
            "third organization",
            &c.sandbox,
            &connection,
            StatusCode::NOT_FOUND,
            "/data/attributes/connection-id",
            "No object with this id",
        ),
        (
            "other environment",
            &a.production,
            &connection,
            StatusCode::NOT_FOUND,
            "/data/attributes/connection-id",
            "No object with this id",
        ),
        (
            "malformed connection id",
            &a.sandbox,
            "nope",
            StatusCode::NOT_FOUND,
            "/data/attributes/connection-id",
            "No object with this id",
        ),
    ];
    for (what, key, cxn, status, pointer, details) in cases {
        let error = expect_error(
            app.post(key, TOKENS, &create_body(cxn, &source, None))
                .await,
            status,
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{what}");
        assert!(
            error["details"].as_str().unwrap().contains(details),
            "{what}: {error}"
        );
    }
    for (what, inquiry, status, details) in [
        (
            "unfinished",
            unfinished.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "is `created`",
        ),
        (
            "redacted",
            redacted.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "was redacted",
        ),
        (
            "another org's",
            b_inquiry.as_str(),
            StatusCode::NOT_FOUND,
            "No object with this id",
        ),
        (
            "malformed",
            "inq_nope",
            StatusCode::NOT_FOUND,
            "No object with this id",
        ),
    ] {
        let error = expect_error(
            app.post(&a.sandbox, TOKENS, &create_body(&connection, inquiry, None))
                .await,
            status,
        )
        .await;
        assert_eq!(
            error["source"]["pointer"], "/data/attributes/source-id",
            "{what}"
        );
        assert!(
            error["details"].as_str().unwrap().contains(details),
            "{what}: {error}"
        );
        assert!(!error.to_string().contains(EMAIL));
    }
    // Malformed bodies: 400 with a pointer.
    for (body, pointer) in [
        (
            json!({"data": {"attributes": {"source-id": source}}}),
            "/data/attributes",
        ),
        (
            json!({"data": {"attributes": {"connection-id": connection, "source-id": source, "extra": 1}}}),
            "/data/attributes/extra",
        ),
    ] {
        let error = expect_error(
            app.post(&a.sandbox, TOKENS, &body).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(error["source"]["pointer"], pointer, "{body}");
    }
    // Bad filters are 400s naming the parameter.
    for (query, parameter) in [
        ("filter[status]=used", "filter[status]"),
        ("filter[direction]=sideways", "filter[direction]"),
        ("filter[connection-id]=acme", "filter[connection-id]"),
        ("peek-source-data=true", "peek-source-data"),
        ("page[after]=cnst_123456789ABCDEFGHJKLMNPQ", "page[after]"),
    ] {
        let error = expect_error(
            app.get(&a.sandbox, &format!("{TOKENS}?{query}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(error["source"]["parameter"], parameter, "{query}");
    }
    assert_eq!(seen(&app, &keys).await, before, "refusals changed nothing");
}

async fn strangers_and_the_other_environment_get_404(backend: Backend) {
    let Setup {
        app,
        a,
        b,
        c,
        connection,
        source,
        ..
    } = setup(backend).await;
    let id = id_of(&create_token(&app, &a.sandbox, &connection, &source).await);
    let before = expect_status(
        app.get(&a.sandbox, &format!("{TOKENS}/{id}")).await,
        StatusCode::OK,
    )
    .await;
    for key in [&c.sandbox, &a.production, &b.production] {
        for path in [
            format!("{TOKENS}/{id}"),
            format!("{TOKENS}/{id}?peek-source-data=true"),
        ] {
            let error = expect_error(app.get(key, &path).await, StatusCode::NOT_FOUND).await;
            assert_eq!(error["title"], "Record not found");
        }
        let error = expect_error(
            app.post(key, &format!("{TOKENS}/{id}/expire"), &json!({}))
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(!error.to_string().contains(&id));
        assert!(app.list_ids(key, TOKENS).await.is_empty());
        assert!(
            app.list_ids(key, &format!("{TOKENS}?filter[connection-id]={connection}"))
                .await
                .is_empty()
        );
        // Not even a cursor.
        expect_error(
            app.get(key, &format!("{TOKENS}?page[after]={id}")).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(app.list_ids(key, "/api/v1/events").await.is_empty());
    }
    let after = expect_status(
        app.get(&a.sandbox, &format!("{TOKENS}/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(after, before);
}

backend_tests!(
    lifecycle_from_both_sides_with_events_to_both,
    peek_shows_names_and_types_never_values,
    ttl_is_validated_defaulted_and_enforced_by_the_job,
    refusals_are_clear_and_change_nothing,
    strangers_and_the_other_environment_get_404,
);
