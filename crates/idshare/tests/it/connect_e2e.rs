//! Connect redemption end to end: a stuck destination inquiry finished by the end user in the
//! hosted flow (driven exactly as a browser would), and redemptions that survive a SIGKILL of
//! the real `idshare serve` process.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::{
    browser::{Browser, Form},
    helpers::{Backend, TestApp, create_postgres_database, expect_status, spawn_app},
};

const TOKENS: &str = "/api/v1/connect/share-tokens";
const EMAIL: &str = "ada.lovelace@example.com";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n";

fn id_of(doc: &Value) -> String {
    doc["data"]["id"].as_str().unwrap().to_owned()
}

fn template_body(fields: &[&str], verifications: Value) -> Value {
    let schemas: Vec<Value> = fields
        .iter()
        .map(|k| json!({"key": k, "type": if *k == "birthdate" { "date" } else { "string" }}))
        .collect();
    json!({"data": {"attributes": {"name": "T", "field-schemas": schemas,
        "verifications": verifications}}})
}

fn email_verification() -> Value {
    json!([{"type": "email-address", "required": true}])
}

fn connection_body(destination_org: &str) -> Value {
    json!({"data": {"attributes": {"destination-organization-id": destination_org}}})
}

fn token_body(connection: &str, source: &str) -> Value {
    json!({"data": {"attributes": {"connection-id": connection, "source-id": source}}})
}

// ---------------------------------------------------------------------------------------------
// A browser without JavaScript (copied from flow.rs): no automatic redirects, one cookie kept
// by hand, multipart forms built by hand.

// ---------------------------------------------------------------------------------------------

async fn created(app: &TestApp, key: &str, path: &str, body: &Value) -> String {
    id_of(&expect_status(app.post(key, path, body).await, StatusCode::CREATED).await)
}

async fn inquiry_attributes(app: &TestApp, key: &str, id: &str) -> Value {
    expect_status(
        app.get(key, &format!("/api/v1/inquiries/{id}")).await,
        StatusCode::OK,
    )
    .await["data"]["attributes"]
        .clone()
}

async fn a_stuck_redemption_is_finished_by_the_end_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.tenant("Source").await;
    let d = app.tenant("Destination").await;

    // The source holds a completed inquiry: email (verified), first and last name. No address,
    // no proof of address.
    let source_template = created(
        &app,
        &s.sandbox,
        "/api/v1/inquiry-templates",
        &template_body(
            &["email-address", "name-first", "name-last"],
            email_verification(),
        ),
    )
    .await;
    let source = id_of(
        &app.create_inquiry(
            &s.sandbox,
            &source_template,
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
        inquiry_attributes(&app, &s.sandbox, &source).await["status"],
        "completed"
    );
    let connection = created(
        &app,
        &s.sandbox,
        "/api/v1/connect/connections",
        &connection_body(d.org_id.as_str()),
    )
    .await;
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
    let token = created(&app, &s.sandbox, TOKENS, &token_body(&connection, &source)).await;

    // The destination's template also wants an address and a proof-of-address document, and
    // accepts the source's email verification (`reuse`), as in docs/connect.md.
    let destination_template = created(
        &app,
        &d.sandbox,
        "/api/v1/inquiry-templates",
        &template_body(
            &[
                "email-address",
                "name-first",
                "address-street-1",
                "address-city",
                "address-postal-code",
                "address-country-code",
            ],
            json!([{"type": "email-address", "required": true, "reuse": {"max-age-days": 30}},
                   {"type": "document", "required": true}]),
        ),
    )
    .await;
    let redeemed = expect_status(
        app.post(
            &d.sandbox,
            &format!("{TOKENS}/{token}/redeem"),
            &json!({"data": {"attributes": {"inquiry-template-id": destination_template}}}),
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
    let token_now = expect_status(
        app.get(&d.sandbox, &format!("{TOKENS}/{token}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        token_now["data"]["attributes"]["status"], "redeemed",
        "{token_now}"
    );
    let stuck = inquiry_attributes(&app, &d.sandbox, &destination).await;
    assert_eq!(stuck["status"], "pending", "{stuck}");
    let missing = stuck["missing-requirements"].to_string();
    assert!(missing.contains("proof-of-address"), "{missing}");
    assert_eq!(stuck["fields"]["name-first"]["value"], "Ada");
    assert_eq!(stuck["fields"]["email-address"]["value"], EMAIL);

    // The destination sends the end user a one-time link.
    let link = expect_status(
        app.post(
            &d.sandbox,
            &format!("/api/v1/inquiries/{destination}/generate-one-time-link"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await["meta"]["one-time-link"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut browser = Browser::new(&app);
    browser.open(&link).await;
    let form = browser.get("/flow/inquiry").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let inputs = form.inputs();
    // Exactly the missing requirements: the address the source never had and the document.
    assert_eq!(
        inputs,
        [
            "field.address-city",
            "field.address-country-code",
            "field.address-postal-code",
            "field.address-street-1",
            "file.proof-of-address",
            "poa.address-city",
            "poa.address-country-code",
            "poa.address-postal-code",
            "poa.address-street-1",
            "poa.address-street-2",
            "poa.address-subdivision",
            "poa.document-kind",
            "poa.issue-date",
        ],
        "{}",
        form.body
    );
    for copied in ["field.name-first", "field.email-address"] {
        assert!(
            !inputs.contains(&copied.to_owned()),
            "{copied} was copied and is not asked again: {inputs:?}"
        );
    }

    let issued = time::OffsetDateTime::now_utc().date().to_string();
    let mut submission = Form::default().text("csrf", &form.csrf());
    for (name, value) in [
        ("poa.document-kind", "utility-bill"),
        ("poa.issue-date", issued.as_str()),
        ("poa.address-street-1", "1 Main St"),
        ("poa.address-city", "Springfield"),
        ("poa.address-postal-code", "12345"),
        ("poa.address-country-code", "US"),
        ("field.address-street-1", "1 Main St"),
        ("field.address-city", "Springfield"),
        ("field.address-postal-code", "12345"),
        ("field.address-country-code", "US"),
    ] {
        submission = submission.text(name, value);
    }
    let saved = browser
        .post(submission.file("file.proof-of-address", "bill.pdf", "application/pdf", PDF))
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(saved.location.as_deref(), Some("/flow/inquiry"));

    // The server's own workers are off in tests: drain runs the pipeline.
    app.drain().await;
    let outcome = browser.get("/flow/inquiry").await;
    assert_eq!(outcome.status, StatusCode::OK);
    assert!(
        outcome.body.contains("You&#39;re verified"),
        "{}",
        outcome.body
    );
    let done = inquiry_attributes(&app, &d.sandbox, &destination).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["fields"]["name-first"]["value"], "Ada");
    // The reused email verification counted; only the document verification ran for the end
    // user's submission.
    let verifications = expect_status(
        app.get(
            &d.sandbox,
            &format!("/api/v1/verifications?filter[inquiry-id]={destination}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let mut ran: Vec<(String, i64, bool)> = verifications["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let attributes = &v["attributes"];
            (
                attributes["verification-type"].as_str().unwrap().to_owned(),
                attributes["submission"].as_i64().unwrap(),
                attributes["details"]["reused-from"].is_string(),
            )
        })
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        [
            ("document".to_owned(), 2, false),
            ("email-address".to_owned(), 1, true)
        ],
        "{verifications}"
    );
}

// ---------------------------------------------------------------------------------------------
// The real binary, killed with SIGKILL while redemptions are in flight.

/// `idshare serve` as a child process; killed with SIGKILL when dropped (even on a panic).
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts with the default job lease and workers, and `provider` as the identity-records
    /// service.
    fn start(storage: &[String], provider: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_idshare"))
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .args(storage)
            .env_remove("IDSHARE_DATABASE_URL")
            // The test polls; the default per-environment limit (300/min) is not under test.
            .env("IDSHARE_RATE_LIMIT_PER_MINUTE", "1000000")
            .env("IDSHARE_DATABASE_PROVIDER_URL", provider)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start idshare serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("server logs").unwrap();
            let Ok(log) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if log["fields"]["message"] == "idshare is serving" {
                break log["fields"]["address"].as_str().unwrap().to_owned();
            }
        };
        // Keep reading the logs so that a full pipe never blocks the server.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Self {
            child,
            base: format!("http://{address}"),
        }
    }

    fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
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

fn org_with_key(name: &str, storage: &[String]) -> (String, String) {
    let org = idshare(&["admin", "org", "create", "--name", name], storage);
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
        storage,
    );
    (org, key)
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, key: &str, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        expect_status(response, StatusCode::OK).await
    }

    async fn post(&self, key: &str, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    async fn create(&self, key: &str, path: &str, body: &Value) -> String {
        id_of(&expect_status(self.post(key, path, body).await, StatusCode::CREATED).await)
    }

    async fn status_of(&self, key: &str, path: &str) -> String {
        self.get(key, path).await["data"]["attributes"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Polls `path` (bounded: 100 × 100 ms) until its status is `wanted`.
    async fn wait_for(&self, key: &str, path: &str, wanted: &str) {
        let mut status = String::new();
        for _ in 0..300 {
            status = self.status_of(key, path).await;
            if status == wanted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} is still {status}, not {wanted}");
    }
}

const N: usize = 5;

/// A node dies with redemptions in flight: another takes over the ones it had claimed (running,
/// or waiting their turn in a worker's batch) once their (short, heartbeat-kept) lease runs out,
/// runs the ones it had not claimed at once, and every redemption happens exactly once.
async fn redemptions_survive_a_killed_server(backend: Backend) {
    idshare_service::install_tls_provider();
    // The destination's identity-records service: held, so that the killed server's workers
    // are busy with a redemption each when it dies.
    let provider = crate::resilience::Provider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    let (postgres_database, database_url) = match backend {
        Backend::Sqlite => (None, idshare_store::Store::sqlite_url(dir.path())),
        Backend::Postgres => {
            let (url, name) = create_postgres_database().await;
            storage.extend(["--database-url".to_owned(), url.clone()]);
            (Some(name), url)
        }
    };
    idshare(&["migrate"], &storage);
    let (_, s) = org_with_key("Source", &storage);
    let (d_org, d) = org_with_key("Destination", &storage);

    let mut server = Server::start(&storage, &provider.url);
    let api = Api {
        client: reqwest::Client::new(),
        base: server.base.clone(),
    };

    // A completed source inquiry: the server's own workers run its pipeline.
    let source_template = api
        .create(
            &s,
            "/api/v1/inquiry-templates",
            &template_body(
                &["email-address", "name-first", "name-last", "birthdate"],
                email_verification(),
            ),
        )
        .await;
    let source = api
        .create(
            &s,
            "/api/v1/inquiries",
            &json!({"data": {"attributes": {"inquiry-template-id": source_template,
                "fields": {"email-address": EMAIL, "name-first": "Ada", "name-last": "Lovelace",
                    "birthdate": "1985-03-14"}}}}),
        )
        .await;
    expect_status(
        api.post(
            &s,
            &format!("/api/v1/inquiries/{source}/submit"),
            &json!({}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    api.wait_for(&s, &format!("/api/v1/inquiries/{source}"), "completed")
        .await;

    let connection = api
        .create(&s, "/api/v1/connect/connections", &connection_body(&d_org))
        .await;
    expect_status(
        api.post(
            &d,
            &format!("/api/v1/connect/connections/{connection}/activate"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let mut tokens = vec![];
    for _ in 0..N {
        tokens.push(
            api.create(&s, TOKENS, &token_body(&connection, &source))
                .await,
        );
    }
    // The destination re-runs the email verification (no reuse) and asks its identity-records
    // service: each redemption has work to do, a call that takes as long as the test wants,
    // and verifications that must not be duplicated by a second run after the crash.
    let destination_template = api
        .create(
            &d,
            "/api/v1/inquiry-templates",
            &template_body(
                &["email-address", "name-first", "name-last", "birthdate"],
                json!([{"type": "email-address", "required": true},
                       {"type": "database", "required": true, "config": {"provider": "http"}}]),
            ),
        )
        .await;

    // Fire the N redeems together; once both workers of the server are in the middle of a
    // redemption (asking the held provider), SIGKILL it.
    let body = json!({"data": {"attributes": {"inquiry-template-id": destination_template}}});
    let paths: Vec<String> = tokens
        .iter()
        .map(|token| format!("{TOKENS}/{token}/redeem"))
        .collect();
    provider.hold();
    let calls = paths.iter().map(|path| api.post(&d, path, &body));
    let responses = futures::future::join_all(calls).await;
    let workers = 2;
    provider.wait_for_calls(workers).await;
    server.kill();
    let killed_at = std::time::Instant::now();
    provider.release();
    let mut destinations = vec![];
    for response in responses {
        let redeemed = expect_status(response, StatusCode::ACCEPTED).await;
        destinations.push(
            redeemed["data"]["relationships"]["destination"]["data"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // Another node (on SQLite, a new process on the same data directory) with the default
    // lease: the jobs the killed one was running stay `running` until their lease runs out,
    // then its reaper hands them back to the queue; the others it runs at once.
    let server = Server::start(&storage, &provider.url);
    let api = Api {
        client: reqwest::Client::new(),
        base: server.base.clone(),
    };
    for token in &tokens {
        api.wait_for(&d, &format!("{TOKENS}/{token}"), "redeemed")
            .await;
    }
    let took = killed_at.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the redemptions were finished {took:?} after the kill"
    );
    // The jobs the killed node held (the ones it was running, and any others of the batches
    // its workers had claimed) were taken over when their lease ran out; the rest were never
    // claimed by it.
    let jobs = crate::resilience::jobs_of_kind(&database_url, "share-token-redemption").await;
    let taken_over = jobs
        .iter()
        .filter(|(_, _, error)| {
            error
                .as_deref()
                .is_some_and(|e| e.starts_with("lease expired"))
        })
        .count();
    assert!((workers..=N).contains(&taken_over), "{jobs:?}");
    assert!(
        jobs.iter().all(|(status, _, _)| status == "done"),
        "{jobs:?}"
    );

    // Each token has exactly one destination inquiry, and they are all different.
    let mut distinct = destinations.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), N, "{destinations:?}");
    for (token, destination) in tokens.iter().zip(&destinations) {
        let now = api.get(&d, &format!("{TOKENS}/{token}")).await;
        assert_eq!(
            now["data"]["relationships"]["destination"]["data"]["id"],
            destination.as_str(),
            "{now}"
        );
        api.wait_for(&d, &format!("/api/v1/inquiries/{destination}"), "completed")
            .await;
        // No duplicate verification: one per type.
        let verifications = api
            .get(
                &d,
                &format!("/api/v1/verifications?filter[inquiry-id]={destination}"),
            )
            .await;
        let mut types: Vec<String> = verifications["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["type"].as_str().unwrap().to_owned())
            .collect();
        types.sort();
        let mut unique = types.clone();
        unique.dedup();
        assert_eq!(types, unique, "{verifications}");
        assert_eq!(
            types,
            ["verification/database", "verification/email-address"],
            "{verifications}"
        );
    }
    let inquiries = api.get(&d, "/api/v1/inquiries?page[size]=100").await;
    assert_eq!(
        inquiries["data"].as_array().unwrap().len(),
        N,
        "no destination inquiry was created twice: {inquiries}"
    );
    let events = api
        .get(
            &d,
            "/api/v1/events?filter[name]=connect/share-token.inbound-redeemed&page[size]=100",
        )
        .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), N, "{events:?}");
    for event in events {
        assert_eq!(
            event["attributes"]["name"],
            "connect/share-token.inbound-redeemed"
        );
    }
    // One event per token, none twice.
    for token in &tokens {
        let about: Vec<&Value> = events
            .iter()
            .filter(|e| e.to_string().contains(token.as_str()))
            .collect();
        assert_eq!(about.len(), 1, "{token}: {about:?}");
    }

    drop(server);
    if let Some(name) = postgres_database
        && let Ok(mut conn) =
            sqlx::PgConnection::connect(&crate::helpers::postgres_admin_url()).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

backend_tests!(
    a_stuck_redemption_is_finished_by_the_end_user,
    redemptions_survive_a_killed_server,
);
