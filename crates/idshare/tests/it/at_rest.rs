//! Personal data at rest: no name, note or comment appears in the database or the data
//! directory in plaintext — not in the inquiries table, nor in side tables (events, stored
//! idempotent responses) — and after a redaction no copy of what was sealed under the
//! inquiry's data key, nor of the wrapped key, is left in any file or row.

use std::collections::HashSet;

use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

use idshare_store::{MasterKey, MasterKeyError, MasterKeySource, Store, StoreError};

use crate::{
    helpers::{Backend, TestApp, expect_status, spawn_app},
    pipeline::upload,
};

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

/// Whether a 32-byte piece of `needle` is in `haystack`, as bytes (SQLite files, where a long
/// value is split across overflow pages) or as lowercase hex (PostgreSQL rows as text, where
/// `bytea` reads `\\x…`). 32 random bytes do not occur by chance.
fn holds_a_piece_of(haystack: &[u8], needle: &[u8]) -> bool {
    const PIECE: usize = 32;
    assert!(
        needle.len() >= PIECE,
        "a sealed value is longer than its nonce and tag"
    );
    let hex: Vec<u8> = needle
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect();
    find_any(haystack, needle.chunks_exact(PIECE), |w| {
        Some(u16::from_be_bytes([w[0], w[1]]))
    }) || find_any(haystack, hex.chunks_exact(2 * PIECE), |w| {
        std::str::from_utf8(&w[..4])
            .ok()
            .and_then(|s| u16::from_str_radix(s, 16).ok())
    })
}

/// Whether one of `pieces` (all of one length) is in `haystack`. `prefix` turns the start of a
/// window into a 16-bit key; only windows whose key starts a piece are compared in full, which
/// keeps the scan of a few megabytes fast in a debug build.
fn find_any<'a>(
    haystack: &[u8],
    pieces: impl Iterator<Item = &'a [u8]>,
    prefix: impl Fn(&[u8]) -> Option<u16>,
) -> bool {
    let pieces: HashSet<&[u8]> = pieces.collect();
    let Some(len) = pieces.iter().next().map(|p| p.len()) else {
        return false;
    };
    let mut starts = vec![false; 1 << 16];
    for piece in &pieces {
        starts[usize::from(prefix(piece).expect("a piece has a key"))] = true;
    }
    haystack
        .windows(len)
        .any(|w| prefix(w).is_some_and(|key| starts[usize::from(key)]) && pieces.contains(w))
}

/// What is stored for `inquiry` under its data key, read straight from the database: the
/// wrapped key, the sealed data, file contents and event payloads.
async fn sealed_copies(app: &TestApp, inquiry: &str) -> Vec<(&'static str, Vec<u8>)> {
    const QUERIES: [(&str, &str); 4] = [
        (
            "the wrapped data key",
            "SELECT wrapped_key FROM data_keys WHERE owner_id = $1",
        ),
        (
            "the sealed inquiry data",
            "SELECT data_sealed FROM inquiries WHERE id = $1",
        ),
        (
            "a sealed file",
            "SELECT content_sealed FROM files WHERE inquiry_id = $1",
        ),
        (
            "a sealed event payload",
            "SELECT payload FROM events WHERE key_owner_id = $1",
        ),
    ];
    let mut copies = vec![];
    for (what, query) in QUERIES {
        let values: Vec<Option<Vec<u8>>> = match app.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                    .await
                    .unwrap();
                let values = sqlx::query_scalar(query)
                    .bind(inquiry)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                values
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&app.database_url)
                    .await
                    .unwrap();
                let values = sqlx::query_scalar(query)
                    .bind(inquiry)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                values
            }
        };
        let values: Vec<Vec<u8>> = values.into_iter().flatten().collect();
        assert!(!values.is_empty(), "{what} is stored before the redaction");
        copies.extend(values.into_iter().map(|value| (what, value)));
    }
    copies
}

async fn redaction_leaves_no_sealed_copy_in_any_file_or_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let created = app
        .create_inquiry(
            key,
            &template,
            json!({"name-first": CANARY_NAME, "name-last": CANARY_NAME}),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    expect_status(
        app.patch(
            key,
            &format!("/api/v1/inquiries/{id}"),
            &json!({"data": {"attributes": {"note": CANARY_NOTE}}}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // A file larger than a database page: its ciphertext spans overflow pages.
    let mut image = b"\x89PNG\r\n\x1a\n".to_vec();
    image.extend((0..20_000).map(|_| rand::rng().random::<u8>()));
    upload(&app, key, &id, "government-id-front", &image).await;

    let copies = sealed_copies(&app, &id).await;
    let before = stored_bytes(&app).await;
    for (what, bytes) in &copies {
        assert!(
            holds_a_piece_of(&before, bytes),
            "sanity: the scan finds {what} before the redaction"
        );
    }

    expect_status(
        app.delete(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await;

    let after = stored_bytes(&app).await;
    for (what, bytes) in &copies {
        assert!(
            !holds_a_piece_of(&after, bytes),
            "{what} ({} bytes) survives the redaction in the data directory or the database",
            bytes.len()
        );
    }
    // The events are still listed: the ones that were sealed without their payload.
    let events = expect_status(
        app.get(key, &format!("/api/v1/events?filter[object-id]={id}"))
            .await,
        StatusCode::OK,
    )
    .await;
    let events = events["data"].as_array().unwrap();
    let name = |e: &serde_json::Value| e["attributes"]["name"].as_str().unwrap().to_owned();
    assert_eq!(name(&events[0]), "inquiry.redacted", "{events:?}");
    let created = events
        .iter()
        .find(|e| name(e) == "inquiry.created")
        .expect("the inquiry.created event is still listed");
    // The payload stays an object (Persona's shape) naming the object, with nothing of it.
    let payload = &created["attributes"]["payload"];
    assert_eq!(payload["data"]["type"], "inquiry", "{created}");
    assert!(payload["data"].get("attributes").is_none(), "{created}");
}

/// Runs `sql` on the app's database, outside the app; returns how many rows it changed.
async fn execute(app: &TestApp, sql: &'static str) -> u64 {
    match app.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            done.rows_affected()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            done.rows_affected()
        }
    }
}

async fn a_database_from_before_the_key_check_is_checked_against_its_sealed_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let template = app.create_template(&tenant.sandbox).await;
    app.create_inquiry(
        &tenant.sandbox,
        &template,
        json!({"name-first": "Ada", "name-last": "Lovelace"}),
    )
    .await;
    // As the database was before the check value and key ids existed.
    assert_eq!(execute(&app, "DELETE FROM master_key_check").await, 1);
    assert_eq!(execute(&app, "UPDATE data_keys SET key_id = NULL").await, 1);

    let wait = app.state.config().database_timeout();
    let open = |source| Store::open(&app.database_url, false, source, wait);
    let another = open(MasterKeySource::Value(MasterKey::generate())).await;
    assert!(
        matches!(
            another,
            Err(StoreError::MasterKey(MasterKeyError::Mismatch { .. }))
        ),
        "a key that does not open the wrapped data keys: {another:?}"
    );
    let absent = app.data_dir.join("absent.key");
    let missing = open(MasterKeySource::File(absent.clone())).await;
    assert!(
        matches!(
            missing,
            Err(StoreError::MasterKey(MasterKeyError::Missing { .. }))
        ),
        "no key file while sealed data exists: {missing:?}"
    );
    assert!(!absent.exists(), "no new key is created");

    // The key that sealed the data is recorded again, once.
    let key_file = app.data_dir.join("master.key");
    open(MasterKeySource::File(key_file))
        .await
        .unwrap()
        .close()
        .await;
    let recorded = app
        .count_rows("SELECT COUNT(*) FROM master_key_check WHERE key_id IS NOT NULL")
        .await;
    assert_eq!(recorded, 1);
    // The data keys written before key ids are named after the key that opens them.
    let named = app
        .count_rows(
            "SELECT COUNT(*) FROM data_keys JOIN master_key_check \
             ON data_keys.key_id = master_key_check.key_id",
        )
        .await;
    assert_eq!(named, 1);
}

backend_tests!(
    personal_data_is_encrypted_at_rest,
    redaction_leaves_no_sealed_copy_in_any_file_or_row,
    a_database_from_before_the_key_check_is_checked_against_its_sealed_data,
);
