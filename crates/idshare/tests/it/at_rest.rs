//! Personal data at rest: no name, note or comment appears in the database or the data
//! directory in plaintext — not in the inquiries table, nor in side tables (events, stored
//! idempotent responses).

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, TestApp, expect_status, spawn_app};

const CANARY_NAME: &str = "Zebulonia";
const CANARY_NOTE: &str = "Quillfeather-Vantablack";

/// Every byte the server stored: the data directory's files (SQLite database, WAL, key file)
/// and, on PostgreSQL, every row of every table as text.
pub(crate) async fn stored_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = vec![];
    for entry in std::fs::read_dir(&app.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    if app.backend == Backend::Postgres {
        let mut conn = sqlx::PgConnection::connect(&app.database_url)
            .await
            .unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(tables.len() >= 8, "{tables:?}");
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(t AS TEXT) FROM {table} t"
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for row in rows {
                bytes.extend(row.into_bytes());
            }
        }
    }
    bytes
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    let hex_needle = hex_of(needle);
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
        || haystack
            .windows(hex_needle.len())
            .any(|w| w == hex_needle.as_bytes())
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

async fn personal_data_is_encrypted_at_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let body = json!({"data": {"attributes": {"inquiry-template-id": template, "note": CANARY_NOTE,
        "fields": {"name-first": CANARY_NAME, "name-last": CANARY_NAME}}}});
    let created = app
        .request(Method::POST, key, "/api/v1/inquiries")
        .header("idempotency-key", "canary")
        .json(&body)
        .send()
        .await
        .unwrap();
    let created = expect_status(created, StatusCode::CREATED).await;
    let id = created["data"]["id"].as_str().unwrap();
    expect_status(
        app.patch(
            key,
            &format!("/api/v1/inquiries/{id}"),
            &json!({"data": {"attributes": {"tags": ["x"]}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    // The canary is really stored (the API returns it) …
    let fetched = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        fetched["data"]["attributes"]["fields"]["name-first"]["value"],
        CANARY_NAME
    );
    let events = expect_status(
        app.get(key, &format!("/api/v1/events?filter[object-id]={id}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        events["data"][0]["attributes"]["payload"]["data"]["attributes"]["note"],
        CANARY_NOTE
    );

    // … and never in plaintext.
    let bytes = stored_bytes(&app).await;
    assert!(
        bytes.len() > 10_000,
        "the scan read the stored data ({} bytes)",
        bytes.len()
    );
    assert!(
        contains(&bytes, &template),
        "sanity: plaintext ids are found by the scan"
    );
    assert!(
        !contains(&bytes, CANARY_NAME),
        "the name is stored in plaintext"
    );
    assert!(
        !contains(&bytes, CANARY_NOTE),
        "the note is stored in plaintext"
    );

    // Redaction: the API answers null fields and a redaction time.
    let redacted = expect_status(
        app.delete(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert!(redacted["data"]["attributes"]["fields"]["name-first"]["value"].is_null());
    assert!(redacted["data"]["attributes"]["note"].is_null());
    assert!(redacted["data"]["attributes"]["redacted-at"].is_string());
}

backend_tests!(personal_data_is_encrypted_at_rest);
