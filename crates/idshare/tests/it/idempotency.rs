//! `Idempotency-Key`: replay, mismatch, concurrency, and what is not stored.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, expect_error, expect_status, spawn_app, spawn_app_with};

async fn replays_the_first_answer_and_creates_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let body = json!({"data": {"attributes": {"inquiry-template-id": template, "fields": {"name-first": "Ada"}}}});
    let send = || {
        app.request(Method::POST, key, "/api/v1/inquiries")
            .header("idempotency-key", "create-ada-1")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first = expect_status(first, StatusCode::CREATED).await;
    let second = send().await.unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second = expect_status(second, StatusCode::CREATED).await;
    assert_eq!(first, second);
    assert_eq!(app.list_ids(key, "/api/v1/inquiries").await.len(), 1);

    // The same key from another API key is another caller's key.
    let other_key = app
        .create_key(
            &tenant.org_id,
            idshare_domain::environment::Environment::Sandbox,
            None,
        )
        .await;
    let other = app
        .request(Method::POST, &other_key, "/api/v1/inquiries")
        .header("idempotency-key", "create-ada-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("idempotent-replayed"));
    expect_status(other, StatusCode::CREATED).await;

    // Refusals are replayed too (they are answers), and a different body with the key is refused.
    let changed = app
        .request(Method::POST, key, "/api/v1/inquiries")
        .header("idempotency-key", "create-ada-1")
        .json(&json!({"data": {"attributes": {"inquiry-template-id": template, "fields": {"name-first": "Eve"}}}}))
        .send()
        .await
        .unwrap();
    let error = expect_error(changed, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["title"], "Idempotency key reused");
    assert_eq!(app.list_ids(key, "/api/v1/inquiries").await.len(), 2);
}

async fn concurrent_requests_with_one_key_have_one_effect(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let body = json!({"data": {"attributes": {"inquiry-template-id": template}}});
    let requests = (0..12).map(|_| {
        app.request(Method::POST, key, "/api/v1/inquiries")
            .header("idempotency-key", "burst")
            .json(&body)
            .send()
    });
    let responses = futures::future::join_all(requests).await;
    let mut ids = std::collections::BTreeSet::new();
    for response in responses {
        let response = response.unwrap();
        match response.status() {
            StatusCode::CREATED => {
                let body = expect_status(response, StatusCode::CREATED).await;
                ids.insert(body["data"]["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => {
                expect_error(response, StatusCode::CONFLICT).await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ids.len(), 1, "every success is the same inquiry");
    assert_eq!(app.list_ids(key, "/api/v1/inquiries").await.len(), 1);
}

async fn unauthenticated_and_rate_limited_answers_are_not_stored(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.rate_limit_per_minute = 2).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await; // uses 1 of 2 requests
    let body = json!({"data": {"attributes": {"inquiry-template-id": template}}});

    let unauthenticated = app
        .client
        .post(app.url("/api/v1/inquiries"))
        .header("idempotency-key", "k1")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(unauthenticated, StatusCode::UNAUTHORIZED).await;

    let created = app
        .request(Method::POST, key, "/api/v1/inquiries")
        .header("idempotency-key", "k1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        !created.headers().contains_key("idempotent-replayed"),
        "the 401 was not stored"
    );
    expect_status(created, StatusCode::CREATED).await;

    let limited = app
        .request(Method::POST, key, "/api/v1/inquiries")
        .header("idempotency-key", "k2")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS).await;
    // Nothing was recorded for k2: claiming it now finds it fresh.
    let mut tx = app.store.begin_read().await.unwrap();
    let api_key = idshare_store::api_keys::find_by_secret(&mut tx, key)
        .await
        .unwrap()
        .unwrap();
    drop(tx);
    let now = time::OffsetDateTime::now_utc();
    let stored = idshare_store::idempotency::claim(
        &app.store,
        api_key.id.as_str(),
        "k2",
        b"probe",
        now,
        now - time::Duration::days(1),
        time::Duration::seconds(5),
    )
    .await
    .unwrap();
    assert!(
        matches!(stored, idshare_store::idempotency::Claim::Fresh(_)),
        "{stored:?}"
    );
}

async fn bad_idempotency_keys_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let template = app.create_template(&tenant.sandbox).await;
    let response = app
        .request(Method::POST, &tenant.sandbox, "/api/v1/inquiries")
        .header("idempotency-key", "x".repeat(300))
        .json(&json!({"data": {"attributes": {"inquiry-template-id": template}}}))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    assert!(
        app.list_ids(&tenant.sandbox, "/api/v1/inquiries")
            .await
            .is_empty()
    );
}

async fn keys_expire_after_the_retention_period(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.idempotency_retention_seconds = 0).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let body = json!({"data": {"attributes": {"inquiry-template-id": template}}});
    for _ in 0..2 {
        let response = app
            .request(Method::POST, key, "/api/v1/inquiries")
            .header("idempotency-key", "short-lived")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(!response.headers().contains_key("idempotent-replayed"));
        expect_status(response, StatusCode::CREATED).await;
    }
    assert_eq!(
        app.list_ids(key, "/api/v1/inquiries").await.len(),
        2,
        "an expired key runs as new"
    );
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let pruned = idshare_store::idempotency::purge(&app.store, later)
        .await
        .unwrap();
    assert_eq!(pruned, 1, "the retention job prunes the record");
}

backend_tests!(
    keys_expire_after_the_retention_period,
    replays_the_first_answer_and_creates_once,
    concurrent_requests_with_one_key_have_one_effect,
    unauthenticated_and_rate_limited_answers_are_not_stored,
    bad_idempotency_keys_are_refused,
);
