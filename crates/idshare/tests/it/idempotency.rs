//! `Idempotency-Key`: replay, mismatch, concurrency, what is not stored, keys after a crash or
//! a failed commit, and redaction of the answers about an inquiry.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{
    Backend, TestApp, create_postgres_database, expect_error, expect_status, postgres_admin_url,
    spawn_app, spawn_app_with,
};

/// A POST with `idempotency_key` (and no other: the helpers' `request` adds its own on SQLite).
fn keyed(app: &TestApp, api_key: &str, path: &str, idempotency_key: &str) -> RequestBuilder {
    app.client
        .post(app.url(path))
        .bearer_auth(api_key)
        .header("idempotency-key", idempotency_key)
}

async fn replays_the_first_answer_and_creates_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let body = json!({"data": {"attributes": {"inquiry-template-id": template, "fields": {"name-first": "Ada"}}}});
    let send = || {
        keyed(&app, key, "/api/v1/inquiries", "create-ada-1")
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
    let other = keyed(&app, &other_key, "/api/v1/inquiries", "create-ada-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(!other.headers().contains_key("idempotent-replayed"));
    expect_status(other, StatusCode::CREATED).await;

    // Refusals are replayed too (they are answers), and a different body with the key is refused.
    let changed = keyed(&app, key, "/api/v1/inquiries", "create-ada-1")
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
        keyed(&app, key, "/api/v1/inquiries", "burst")
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
    crate::helpers::at_the_start_of_a_rate_window().await;
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

    let created = keyed(&app, key, "/api/v1/inquiries", "k1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        !created.headers().contains_key("idempotent-replayed"),
        "the 401 was not stored"
    );
    expect_status(created, StatusCode::CREATED).await;

    let limited = keyed(&app, key, "/api/v1/inquiries", "k2")
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
    let response = keyed(&app, &tenant.sandbox, "/api/v1/inquiries", &"x".repeat(300))
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
        let response = keyed(&app, key, "/api/v1/inquiries", "short-lived")
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
    // (The server's own housekeeping may have pruned it first.)
    idshare_store::idempotency::purge(&app.store, later, later)
        .await
        .unwrap();
    assert!(
        records(&app).await.iter().all(|r| r.key != "short-lived"),
        "the retention job prunes the record"
    );
}

/// Pruning old records leaves a claim whose request still runs: deleting it would make that
/// request look taken over, and its change would be refused (a retention shorter than a
/// request is an edge case, but the housekeeping must not break a request it races).
async fn pruning_spares_the_claims_of_running_requests(backend: Backend) {
    use idshare_store::idempotency::{Claim, claim, purge};
    let app = spawn_app(backend).await;
    let now = time::OffsetDateTime::now_utc();
    let lease = time::Duration::seconds(5);
    let held = claim(&app.store, "api_test", "running", b"hash", now, now, lease)
        .await
        .unwrap();
    assert!(matches!(held, Claim::Fresh(_)), "{held:?}");
    let later = now + time::Duration::seconds(1);
    assert_eq!(purge(&app.store, later, later).await.unwrap(), 0);
    assert!(records(&app).await.iter().any(|r| r.key == "running"));
    // Once its lease ran out (its node died), the claim is pruned like any expired record.
    let after_lease = now + lease + time::Duration::seconds(1);
    assert_eq!(
        purge(&app.store, after_lease, after_lease).await.unwrap(),
        1
    );
    assert!(records(&app).await.iter().all(|r| r.key != "running"));
}

/// One stored idempotency record.
#[derive(Debug)]
struct Record {
    caller_id: String,
    key: String,
    sealed: Option<Vec<u8>>,
}

async fn records(app: &TestApp) -> Vec<Record> {
    const SQL: &str = "SELECT caller_id, idempotency_key, response_sealed FROM idempotency_records";
    type Row = (String, String, Option<Vec<u8>>);
    let rows: Vec<Row> = match app.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap()
        }
    };
    rows.into_iter()
        .map(|(caller_id, key, sealed)| Record {
            caller_id,
            key,
            sealed,
        })
        .collect()
}

/// A database error while the answer is stored (a trigger refuses it): the change fails with
/// it (500, nothing created), and the key is free at once for the retry, which then runs.
async fn a_change_and_its_answer_fail_together(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let refuse_answers: &[&str] = match backend {
        Backend::Sqlite => &[
            "CREATE TRIGGER refuse_answers BEFORE UPDATE OF status_code \
             ON idempotency_records WHEN NEW.status_code IS NOT NULL \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_answers() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
            "CREATE TRIGGER refuse_answers BEFORE UPDATE OF status_code ON idempotency_records \
             FOR EACH ROW WHEN (NEW.status_code IS NOT NULL) EXECUTE FUNCTION refuse_answers()",
        ],
    };
    app.run_sql(refuse_answers).await;
    let body = json!({"data": {"attributes": {"inquiry-template-id": template}}});
    let send = || {
        keyed(&app, key, "/api/v1/inquiries", "during-outage")
            .json(&body)
            .send()
    };

    let failed = send().await.unwrap();
    expect_error(failed, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert!(
        app.list_ids(key, "/api/v1/inquiries").await.is_empty(),
        "the change did not commit without its answer"
    );

    let allow_answers = match backend {
        Backend::Sqlite => "DROP TRIGGER refuse_answers",
        Backend::Postgres => "DROP TRIGGER refuse_answers ON idempotency_records",
    };
    app.run_sql(&[allow_answers]).await;
    let retried = send().await.unwrap();
    assert!(!retried.headers().contains_key("idempotent-replayed"));
    let created = expect_status(retried, StatusCode::CREATED).await;
    let replayed = send().await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_status(replayed, StatusCode::CREATED).await, created);
    assert_eq!(
        app.list_ids(key, "/api/v1/inquiries").await,
        [created["data"]["id"].as_str().unwrap()]
    );
}

/// A request that runs longer than the lease keeps its key: its heartbeat renews the lease, so
/// a retry meanwhile is told the request is in progress instead of running it again.
async fn a_running_request_keeps_its_key_past_the_lease(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.idempotency_lease_seconds = std::num::NonZeroU32::new(1).unwrap();
        config.idempotency_test_pause_before_commit_ms = 5_000;
    })
    .await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    // Refused without a write (no such template), so nothing holds a write lock meanwhile and
    // the heartbeat can renew on SQLite too.
    let body =
        json!({"data": {"attributes": {"inquiry-template-id": "itmpl_AAAAAAAAAAAAAAAAAAAAAAAA"}}});
    let send = || {
        keyed(&app, key, "/api/v1/inquiries", "slow")
            .json(&body)
            .send()
    };
    let first = tokio::spawn(send());
    for _ in 0..100 {
        if records(&app).await.iter().any(|r| r.key == "slow") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        records(&app).await.iter().any(|r| r.key == "slow"),
        "claimed"
    );
    // Twice the lease after the claim, while the first request still runs.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let during = send().await.unwrap();
    let error = expect_error(during, StatusCode::CONFLICT).await;
    assert_eq!(error["title"], "Request in progress");

    let first = first.await.unwrap().unwrap();
    assert!(!first.headers().contains_key("idempotent-replayed"));
    let first = expect_error(first, StatusCode::NOT_FOUND).await;
    let after = send().await.unwrap();
    assert_eq!(after.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_error(after, StatusCode::NOT_FOUND).await, first);
}

/// Redacting an inquiry deletes every stored answer about it, its confirmations included: the
/// masked phone number of a confirmation answer is in no record afterwards, and the key runs
/// again (and is refused: the inquiry is redacted) instead of replaying it.
async fn redaction_deletes_the_answers_about_the_inquiry(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.code_sender = idshare_service::sender::SenderKind::Memory;
    })
    .await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    let template = expect_status(
        app.post(
            key,
            "/api/v1/inquiry-templates",
            &json!({"data": {"attributes": {"name": "Phone",
                "field-schemas": [{"key": "phone-number", "type": "string"}],
                "verifications": [{"type": "phone-number", "required": true,
                    "config": {"confirmation": true}}]}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inquiry = app
        .create_inquiry(key, &template, json!({"phone-number": "+14155552671"}))
        .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/inquiries/{inquiry}/confirmations");
    let body = json!({"data": {"attributes": {"field": "phone-number"}}});
    let send = || keyed(&app, key, &path, "confirm-phone").json(&body).send();
    const MASKED: &str = "+1******2671";

    let sent = expect_status(send().await.unwrap(), StatusCode::ACCEPTED).await;
    assert_eq!(sent["data"]["attributes"]["destination"], MASKED);
    let replayed = send().await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true", "stored");
    expect_status(replayed, StatusCode::ACCEPTED).await;

    expect_status(
        app.delete(key, &format!("/api/v1/inquiries/{inquiry}"))
            .await,
        StatusCode::OK,
    )
    .await;
    let remaining = records(&app).await;
    assert!(
        remaining.iter().all(|r| r.key != "confirm-phone"),
        "the confirmation's answer is gone: {remaining:?}"
    );
    for record in &remaining {
        let Some(sealed) = &record.sealed else {
            continue;
        };
        let answer = app
            .store
            .crypto()
            .open_system(
                sealed,
                &format!("idempotency:{}:{}", record.caller_id, record.key),
            )
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.contains(MASKED), "{record:?}: {answer}");
        assert!(!answer.contains(&inquiry), "{record:?}: {answer}");
    }

    let again = send().await.unwrap();
    assert!(!again.headers().contains_key("idempotent-replayed"));
    let error = expect_error(again, StatusCode::CONFLICT).await;
    assert_eq!(error["title"], "Inquiry redacted");
    assert!(!error.to_string().contains(MASKED));
}

/// A request whose claim a retry took over (its node stalled past the lease) commits nothing,
/// so the change happens once: the retry's.
async fn a_request_whose_key_was_taken_over_commits_nothing(backend: Backend) {
    use idshare_store::idempotency::{self, Answer, Claim, Finished};
    let app = spawn_app(backend).await;
    let store = &app.store;
    let now = time::OffsetDateTime::now_utc();
    let lease = time::Duration::seconds(5);
    let claim = |at| {
        idempotency::claim(
            store,
            "caller",
            "key",
            b"hash",
            at,
            at - time::Duration::days(1),
            lease,
        )
    };
    let Claim::Fresh(stalled) = claim(now).await.unwrap() else {
        panic!("a new key is fresh");
    };
    assert!(matches!(claim(now).await.unwrap(), Claim::InProgress));
    let Claim::Fresh(retry) = claim(now + lease).await.unwrap() else {
        panic!("a claim past its lease is taken over");
    };

    // The stalled request commits a change (parked until its answer is stored) …
    let org = stalled
        .run(async {
            let mut tx = store.begin_write().await.unwrap();
            let org = idshare_store::orgs::create(&mut tx, "Stalled", now)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            org.id
        })
        .await;
    assert!(stalled.wrote());
    let answer = Answer {
        status: 201,
        body: b"{}",
        inquiry_ids: &[],
    };
    // … which is not committed, since its claim is gone.
    assert_eq!(
        idempotency::finish(store, &stalled, answer).await.unwrap(),
        Finished::TakenOver
    );
    let mut tx = store.begin_read().await.unwrap();
    assert!(
        idshare_store::orgs::get(&mut tx, &org)
            .await
            .unwrap()
            .is_none()
    );
    drop(tx);

    let answer = Answer {
        status: 201,
        body: b"{}",
        inquiry_ids: &[],
    };
    assert_eq!(
        idempotency::finish(store, &retry, answer).await.unwrap(),
        Finished::Stored
    );
    assert!(matches!(
        claim(now + lease).await.unwrap(),
        Claim::Replay { status: 201, .. }
    ));
}

/// A request that reads or writes again after its commit: the parked change commits first, so
/// the read sees it and the second writer does not wait on its own request's lock (SQLite).
async fn a_request_that_reads_or_writes_after_its_commit_sees_its_change(backend: Backend) {
    use idshare_store::{
        idempotency::{self, Answer, Claim, Finished},
        orgs,
    };
    let app = spawn_app(backend).await;
    let store = &app.store;
    let now = time::OffsetDateTime::now_utc();
    let claimed = idempotency::claim(
        store,
        "caller",
        "key",
        b"hash",
        now,
        now - time::Duration::days(1),
        time::Duration::seconds(5),
    )
    .await
    .unwrap();
    let Claim::Fresh(held) = claimed else {
        panic!("a new key is fresh");
    };
    let (first, second) = held
        .run(async {
            let mut tx = store.begin_write().await.unwrap();
            let first = orgs::create(&mut tx, "First", now).await.unwrap().id;
            tx.commit().await.unwrap();
            let mut read = store.begin_read().await.unwrap();
            assert!(orgs::get(&mut read, &first).await.unwrap().is_some());
            drop(read);
            let mut tx = store.begin_write().await.unwrap();
            let second = orgs::create(&mut tx, "Second", now).await.unwrap().id;
            tx.commit().await.unwrap();
            (first, second)
        })
        .await;
    let answer = Answer {
        status: 201,
        body: b"{}",
        inquiry_ids: &[],
    };
    assert_eq!(
        idempotency::finish(store, &held, answer).await.unwrap(),
        Finished::Stored
    );
    let mut tx = store.begin_read().await.unwrap();
    for org in [first, second] {
        assert!(orgs::get(&mut tx, &org).await.unwrap().is_some());
    }
}

/// An answer about an inquiry that is redacted while the request is still running (between
/// its handler and the storing of its answer) is not kept.
async fn an_answer_finished_after_its_inquiry_was_redacted_is_not_kept(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.idempotency_test_pause_before_commit_ms = 2_000;
    })
    .await;
    let tenant = app.tenant("Acme").await;
    let key = &tenant.sandbox;
    // Set up without keys (the pause is for the one request under test).
    let plain_post = |path: &str, body: Value| {
        let request = app.client.post(app.url(path)).bearer_auth(key).json(&body);
        async move { expect_status(request.send().await.unwrap(), StatusCode::CREATED).await }
    };
    let template = plain_post(
        "/api/v1/inquiry-templates",
        json!({"data": {"attributes": crate::helpers::standard_template("KYC")}}),
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inquiry = plain_post(
        "/api/v1/inquiries",
        json!({"data": {"attributes": {"inquiry-template-id": template,
            "fields": {"name-first": "Ada"}}}}),
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Refused without a write (no phone number to confirm); it pauses before its answer is
    // stored, and the inquiry is redacted meanwhile.
    let refused = tokio::spawn(
        keyed(
            &app,
            key,
            &format!("/api/v1/inquiries/{inquiry}/confirmations"),
            "about-to-be-redacted",
        )
        .json(&json!({"data": {"attributes": {"field": "phone-number"}}}))
        .send(),
    );
    for _ in 0..100 {
        if records(&app)
            .await
            .iter()
            .any(|r| r.key == "about-to-be-redacted")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    expect_status(
        app.delete(key, &format!("/api/v1/inquiries/{inquiry}"))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_error(
        refused.await.unwrap().unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let remaining = records(&app).await;
    assert!(
        remaining.iter().all(|r| r.key != "about-to-be-redacted"),
        "{remaining:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The real binary, killed with SIGKILL in the middle of an idempotent request.

/// The log line of the test pause (`idempotency_test_pause_*_commit_ms`).
const PAUSED: &str = "test pause of an idempotent request around its commit";

/// `idshare serve` as a child process, its log lines forwarded; killed when dropped.
struct Server {
    child: Child,
    base: String,
    logs: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl Server {
    async fn start(storage: &[String], settings: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_idshare"))
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .args(storage)
            .env_remove("IDSHARE_DATABASE_URL")
            .env("IDSHARE_IDEMPOTENCY_LEASE_SECONDS", "1")
            .envs(settings.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start idshare serve");
        let (sender, mut logs) = tokio::sync::mpsc::unbounded_channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(log) = serde_json::from_str::<Value>(&line) {
                    let _ = sender.send(log);
                }
            }
        });
        let base = loop {
            let log = logs.recv().await.expect("the server logs that it serves");
            if log["fields"]["message"] == "idshare is serving" {
                break format!("http://{}", log["fields"]["address"].as_str().unwrap());
            }
        };
        Self { child, base, logs }
    }

    /// Waits (bounded) for the log line of the test pause `when` ("before" or "after").
    async fn paused(&mut self, when: &str) {
        let wait = async {
            while let Some(log) = self.logs.recv().await {
                if log["fields"]["message"] == PAUSED && log["fields"]["when"] == when {
                    return;
                }
            }
            panic!("the server exited before pausing {when} a commit");
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("no request paused {when} its commit"));
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn idshare(args: &[&str], storage: &[String]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(args)
        .args(storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .output()
        .expect("run idshare");
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Sends the keyed request until it is not refused as in progress (the claim of a killed
/// server is free once its lease ran out); gives up after 100 tries, returning the last answer.
async fn send_until_not_in_progress(request: impl Fn() -> RequestBuilder) -> reqwest::Response {
    let mut response = request().send().await.expect("request");
    for _ in 0..100 {
        if response.status() != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        response = request().send().await.expect("request");
    }
    response
}

/// The node dies in the middle of a request with an `Idempotency-Key`: before its change
/// committed, the retry on the restarted server takes the key over and runs (no `409` for a
/// day); after its change and answer committed, the retry replays that answer. One inquiry.
async fn a_killed_servers_keys_run_or_replay_on_retry(backend: Backend) {
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    let postgres_database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let (url, name) = create_postgres_database().await;
            storage.extend(["--database-url".to_owned(), url]);
            Some(name)
        }
    };
    idshare(&["migrate"], &storage);
    let org = idshare(&["admin", "org", "create", "--name", "Acme"], &storage);
    let key = idshare(
        &[
            "admin",
            "api-key",
            "create",
            "--org",
            &org,
            "--environment",
            "sandbox",
        ],
        &storage,
    );
    let client = reqwest::Client::new();
    let pause = ("IDSHARE_IDEMPOTENCY_TEST_PAUSE_BEFORE_COMMIT_MS", "600000");
    let mut server = Server::start(&storage, &[pause]).await;
    let template = expect_status(
        client
            .post(format!("{}/api/v1/inquiry-templates", server.base))
            .bearer_auth(&key)
            .json(&json!({"data": {"attributes": crate::helpers::standard_template("KYC")}}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"data": {"attributes": {"inquiry-template-id": template}}});
    let create = |base: &str| {
        client
            .post(format!("{base}/api/v1/inquiries"))
            .bearer_auth(&key)
            .header("idempotency-key", "create-once")
            .json(&body)
    };

    // Killed before the commit: nothing happened, and the key is not stuck.
    let in_flight = tokio::spawn(create(&server.base).send());
    server.paused("before").await;
    server.kill();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the server died mid-request"
    );

    // The retry takes the key over; this server is killed after the commit, before answering.
    let pause = ("IDSHARE_IDEMPOTENCY_TEST_PAUSE_AFTER_COMMIT_MS", "600000");
    let mut server = Server::start(&storage, &[pause]).await;
    let base = server.base.clone();
    tokio::select! {
        () = server.paused("after") => {}
        answer = send_until_not_in_progress(|| create(&base)) => {
            panic!("the retry never ran: {} {}", answer.status(), answer.text().await.unwrap());
        }
    }
    server.kill();

    // The change committed with its answer: the next retry replays it.
    let server = Server::start(&storage, &[]).await;
    let replayed = send_until_not_in_progress(|| create(&server.base)).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let replayed = expect_status(replayed, StatusCode::CREATED).await;
    let listed = expect_status(
        client
            .get(format!("{}/api/v1/inquiries", server.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(
        ids,
        [&replayed["data"]["id"]],
        "one inquiry, the replayed one"
    );

    drop(server);
    if let Some(name) = postgres_database
        && let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

backend_tests!(
    a_killed_servers_keys_run_or_replay_on_retry,
    a_request_whose_key_was_taken_over_commits_nothing,
    a_request_that_reads_or_writes_after_its_commit_sees_its_change,
    an_answer_finished_after_its_inquiry_was_redacted_is_not_kept,
    a_change_and_its_answer_fail_together,
    a_running_request_keeps_its_key_past_the_lease,
    redaction_deletes_the_answers_about_the_inquiry,
    keys_expire_after_the_retention_period,
    pruning_spares_the_claims_of_running_requests,
    replays_the_first_answer_and_creates_once,
    concurrent_requests_with_one_key_have_one_effect,
    unauthenticated_and_rate_limited_answers_are_not_stored,
    bad_idempotency_keys_are_refused,
);
