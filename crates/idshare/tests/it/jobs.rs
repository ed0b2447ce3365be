//! Failed jobs: a failure that retrying cannot mend ends the job at once, one that it can is
//! retried, and either way `last_error` keeps the whole cause chain.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Backend, TestApp, expect_status, spawn_app, spawn_app_with};

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

backend_tests!(
    a_failure_retrying_cannot_mend_ends_the_job_at_once,
    a_retryable_failure_keeps_its_cause_and_is_retried,
);
