//! Failed jobs: a failure that retrying cannot mend ends the job at once, one that it can is
//! retried, and either way `last_error` keeps the whole cause chain. The queue under load: batch
//! claims take each job once, wake-ups are not lost, expired leases are reaped on a timer, and
//! concurrent writers all get through.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use std::{collections::HashSet, time::Duration};

use idshare_store::jobs;

use crate::{
    helpers::{Backend, TestApp, expect_status, spawn_app, spawn_app_with},
    resilience::{Provider, inquiry_checked_by_the_provider, jobs_of_kind, status_of, submit},
};

/// The one job of `kind`: its status, attempts and last error.
async fn job(app: &TestApp, kind: &str) -> (String, i64, String) {
    let sql = "SELECT status, attempts, COALESCE(last_error, '') FROM jobs WHERE kind = $1";
    let rows: Vec<(String, i64, String)> = match app.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query_as(sql)
                .bind(kind)
                .fetch_all(&mut conn)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query_as(sql)
                .bind(kind)
                .fetch_all(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(rows.len(), 1, "one {kind} job: {rows:?}");
    rows.into_iter().next().unwrap()
}

/// Tampers with `victim`'s sealed data: it now holds `other`'s, which its own data key cannot
/// open (as if the row had been altered behind the server's back).
async fn tamper(app: &TestApp, victim: &str, other: &str) {
    let sql = "UPDATE inquiries SET data_sealed = \
               (SELECT data_sealed FROM inquiries WHERE id = $1) WHERE id = $2";
    let changed = match app.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query(sql)
                .bind(other)
                .bind(victim)
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query(sql)
                .bind(other)
                .bind(victim)
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected()
        }
    };
    assert_eq!(changed, 1);
}

fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

/// Data that can no longer be decrypted fails the same way however often it is read: the job
/// is `dead` after its first attempt, with the real cause, both for a job that reads the store
/// itself (the pipeline) and for one whose failure comes through a service (a workflow step).
async fn a_failure_retrying_cannot_mend_ends_the_job_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let tenant = app.tenant("Bank").await;
    let key = &tenant.sandbox;
    let template = app.create_template(key).await;
    let fields = json!({"name-first": "Ada", "name-last": "Lovelace"});
    let other = id_of(&app.create_inquiry(key, &template, fields.clone()).await);

    // The pipeline of a submitted inquiry whose data was altered after the submission.
    let submitted = id_of(&app.create_inquiry(key, &template, fields.clone()).await);
    expect_status(
        app.post(
            key,
            &format!("/api/v1/inquiries/{submitted}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    tamper(&app, &submitted, &other).await;
    app.drain().await;
    let (status, attempts, last_error) = job(&app, "inquiry-pipeline").await;
    assert_eq!(
        (status.as_str(), attempts),
        ("dead", 1),
        "given up at once: {last_error}"
    );
    assert!(
        last_error.contains("encryption error"),
        "the real cause: {last_error}"
    );

    // A workflow step that tags a new inquiry whose data was altered before the step ran.
    let created = expect_status(
        app.post(
            key,
            "/api/v1/workflows",
            &json!({"data": {"attributes": {"name": "Tagger", "definition": {
                "trigger": {"event": "inquiry.created"},
                "steps": [{"id": "tag", "action": "add-tag", "with": {"tag": "seen"}}]}}}}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let workflow = id_of(&created);
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
    let tagged = id_of(&app.create_inquiry(key, &template, fields).await);
    tamper(&app, &tagged, &other).await;
    app.drain().await;
    let (status, attempts, last_error) = job(&app, "workflow-run").await;
    assert_eq!(
        (status.as_str(), attempts),
        ("dead", 1),
        "given up at once: {last_error}"
    );
    assert!(
        last_error.contains("step `tag`") && last_error.contains("encryption error"),
        "the real cause: {last_error}"
    );
    assert!(
        !last_error.contains("Internal Server Error"),
        "not an HTTP status: {last_error}"
    );
    let runs = expect_status(
        app.get(
            key,
            &format!("/api/v1/workflow-runs?filter[workflow-id]={workflow}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let run = &runs["data"][0]["attributes"];
    assert_eq!(run["status"], "errored", "{run}");
    assert!(
        !run["error"].as_str().unwrap().contains("encryption"),
        "the cause stays out of the run's record: {run}"
    );
}

/// A provider that does not answer may answer later: the job goes back to the queue, is tried
/// again, and its `last_error` says why down to the refused connection.
async fn a_retryable_failure_keeps_its_cause_and_is_retried(backend: Backend) {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let app = spawn_app_with(backend, |config| {
        config.database_provider_url = Some(format!("http://{closed}/database"));
    })
    .await;
    let tenant = app.tenant("Bank").await;
    let key = &tenant.sandbox;
    let template = id_of(
        &expect_status(
            app.post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": {"name": "Records",
                    "field-schemas": [{"key": "name-first", "type": "string"},
                                      {"key": "name-last", "type": "string"},
                                      {"key": "birthdate", "type": "date"}],
                    "verifications": [{"type": "database", "config": {"provider": "http"}}]}}}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await,
    );
    let inquiry = id_of(
        &app.create_inquiry(
            key,
            &template,
            json!({"name-first": "Ada", "name-last": "Lovelace", "birthdate": "1985-03-14"}),
        )
        .await,
    );
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
    let (status, attempts, last_error) = job(&app, "inquiry-pipeline").await;
    assert_eq!((status.as_str(), attempts), ("queued", 1), "{last_error}");
    assert!(
        last_error.contains("provider unreachable") && last_error.contains("Connection refused"),
        "the whole cause chain: {last_error}"
    );

    // Due again after its backoff: tried a second time, and still queued.
    app.state.advance_clock(time::Duration::hours(2));
    app.drain().await;
    let (status, attempts, last_error) = job(&app, "inquiry-pipeline").await;
    assert_eq!((status.as_str(), attempts), ("queued", 2), "{last_error}");
    assert!(last_error.contains("Connection refused"), "{last_error}");
}

/// Waits (at most a minute) until `inquiry` has `wanted` status.
async fn wait_for_status(app: &TestApp, key: &str, inquiry: &str, wanted: &str) {
    let mut status = String::new();
    for _ in 0..600 {
        status = status_of(app, key, inquiry).await;
        if status == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{inquiry} is {status}, not {wanted}");
}

/// The only worker is busy with a job when another job of its queue is committed: the wake-up
/// is kept for it, so the second job runs as soon as the first is done, although the worker
/// would otherwise look for work only once an hour.
async fn a_job_enqueued_while_the_only_worker_is_busy_runs_without_waiting_for_the_poll(
    backend: Backend,
) {
    let provider = Provider::start().await;
    let app = spawn_app_with(backend, |config| {
        config.workers = 1;
        config.job_poll_seconds = 3600.try_into().unwrap();
        config.database_provider_url = Some(provider.url.clone());
    })
    .await;
    let t = app.tenant("Bank").await;
    let key = &t.production;
    let first = inquiry_checked_by_the_provider(&app, key).await;
    let second = inquiry_checked_by_the_provider(&app, key).await;
    provider.hold();
    submit(&app, key, &first).await;
    provider.wait_for_calls(1).await;
    submit(&app, key, &second).await;
    provider.release();
    wait_for_status(&app, key, &first, "completed").await;
    wait_for_status(&app, key, &second, "completed").await;
    assert_eq!(provider.calls(), 2);
}

/// Closing the store while the workers and the `NOTIFY` relay run: they let go of their
/// connections, so the close finishes (the relay used to meet the closed pool as an interrupted
/// listener and wait a whole poll interval before retrying, holding its connection, and the close
/// waited on it: the teardown of a test, or a shutdown, hung).
async fn closing_the_store_while_workers_run_lets_go_of_every_connection(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.workers = 1;
        config.webhook_workers = 1;
        config.job_poll_seconds = 3600.try_into().unwrap();
    })
    .await;
    if backend == Backend::Postgres {
        let listening = "SELECT COUNT(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND query LIKE 'LISTEN%'";
        let mut waited = 0;
        while app.count_rows(listening).await == 0 {
            assert!(waited < 100, "the relay never listened");
            waited += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::timeout(Duration::from_secs(10), app.store.close())
        .await
        .expect("the store closes: nobody holds a connection");
}

/// Many claimers take batches of one queue at once: every job is claimed, and none twice.
async fn a_batch_claim_claims_each_job_once_under_concurrent_claimers(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = app.state.store();
    let now = app.state.now();
    let payload = json!({});
    let mut tx = store.begin_write().await.unwrap();
    for _ in 0..60 {
        let job = jobs::NewJob {
            queue: "claim-test",
            kind: "claim-test",
            payload: &payload,
            dedupe_key: None,
            run_at: now,
            max_attempts: 1,
        };
        jobs::enqueue(&mut tx, job, now).await.unwrap();
    }
    tx.commit().await.unwrap();
    let claimers = (0..8).map(|n| async move {
        let worker = format!("claimer-{n}");
        let mut claimed = vec![];
        loop {
            let batch = jobs::claim_batch(
                store,
                &worker,
                Some("claim-test"),
                3,
                now,
                time::Duration::minutes(1),
            )
            .await
            .unwrap();
            if batch.is_empty() {
                return claimed;
            }
            assert!(batch.len() <= 3);
            claimed.extend(batch.into_iter().map(|job| job.id.to_string()));
        }
    });
    let claimed: Vec<String> = futures::future::join_all(claimers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let distinct: HashSet<&String> = claimed.iter().collect();
    assert_eq!(claimed.len(), 60, "every job claimed once: {claimed:?}");
    assert_eq!(distinct.len(), 60);
    let rows = jobs_of_kind(&app.database_url, "claim-test").await;
    assert!(
        rows.iter()
            .all(|(status, attempts, _)| status == "running" && *attempts == 1)
    );
}

/// A worker that died holding a job (here: a claim nobody runs, whose lease ends a second from
/// now): the background worker, which looks for expired leases on its poll timer, hands the
/// job back to the queue and runs it.
async fn a_dead_workers_job_is_reaped_on_the_timer_and_run(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.workers = 1;
        config.job_poll_seconds = 1.try_into().unwrap();
    })
    .await;
    let store = app.state.store();
    let now = app.state.now();
    // Due in an hour, so that the live worker does not take it first; the dead worker claims it
    // as if it were an hour later, with a lease that ends a second from now.
    let later = now + time::Duration::hours(1);
    let payload = json!({"kind": "no-such-kind"});
    let mut tx = store.begin_write().await.unwrap();
    let job = jobs::NewJob {
        queue: "default",
        kind: "reap-test",
        payload: &payload,
        dedupe_key: None,
        run_at: later,
        max_attempts: 3,
    };
    jobs::enqueue(&mut tx, job, now).await.unwrap();
    tx.commit().await.unwrap();
    let lease = time::Duration::seconds(1) - time::Duration::hours(1);
    let claimed = jobs::claim_batch(store, "dead", Some("default"), 1, later, lease)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    // Reaped, then run by the live worker: its payload names no job kind, so it ends dead,
    // after its second attempt.
    let mut rows = vec![];
    for _ in 0..600 {
        rows = jobs_of_kind(&app.database_url, "reap-test").await;
        if rows[0].0 == "dead" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, attempts, last_error) = &rows[0];
    assert_eq!((status.as_str(), *attempts), ("dead", 2), "{rows:?}");
    assert!(
        last_error
            .as_deref()
            .unwrap_or_default()
            .contains("bad payload"),
        "{rows:?}"
    );
}

/// Many requests write at once (each a write transaction, with its idempotency claim): on
/// SQLite they take turns in order instead of sleeping in the busy handler, so none waits out
/// the database timeout and is refused with 503.
async fn many_concurrent_writers_all_get_through(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.tenant("Bank").await;
    let key = &t.sandbox;
    let template = app.create_template(key).await;
    // Well within what the database can write in its timeout, even on a loaded machine: in
    // line, every writer gets through. PostgreSQL's bound is its connection pool (16), not a
    // write lock: as many writers as it can serve at once, and a few more.
    let writers = match backend {
        Backend::Sqlite => 120,
        Backend::Postgres => 24,
    };
    let bodies: Vec<Value> = (0..writers)
        .map(|i| {
            json!({"data": {"attributes": {"inquiry-template-id": template,
                                           "fields": {"name-first": format!("Ada {i}")}}}})
        })
        .collect();
    let writes = bodies
        .iter()
        .map(|body| app.post(key, "/api/v1/inquiries", body));
    let statuses: Vec<StatusCode> = futures::future::join_all(writes)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
}

backend_tests!(
    a_failure_retrying_cannot_mend_ends_the_job_at_once,
    a_retryable_failure_keeps_its_cause_and_is_retried,
    a_job_enqueued_while_the_only_worker_is_busy_runs_without_waiting_for_the_poll,
    closing_the_store_while_workers_run_lets_go_of_every_connection,
    a_batch_claim_claims_each_job_once_under_concurrent_claimers,
    a_dead_workers_job_is_reaped_on_the_timer_and_run,
    many_concurrent_writers_all_get_through,
);
