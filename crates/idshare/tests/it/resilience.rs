//! Outages and long jobs. While the database is unreachable (PostgreSQL behind a loopback proxy
//! that the test cuts) or its write lock cannot be had (SQLite, a write transaction held open by
//! the test), the API answers 503 with `Retry-After`, never 500 and never after a long hang; it
//! heals without a restart; a job cut off from the database is postponed, not failed; and
//! `idshare serve` started during the outage waits for the database instead of exiting. A job
//! that runs longer than its lease keeps it by its heartbeat. (A node killed with jobs in flight:
//! `connect_e2e::redemptions_survive_a_killed_server`.)

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use idshare_store::users::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::helpers::{
    Backend, TestApp, create_postgres_database, expect_error, expect_status, postgres_admin_url,
    spawn_app_with,
};

/// A loopback TCP proxy in front of PostgreSQL. Cutting it closes every open connection and
/// holds new ones unanswered, as a database that dropped off the network; restoring lets
/// connections through again.
struct DatabaseProxy {
    address: SocketAddr,
    up: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl DatabaseProxy {
    async fn start() -> Self {
        let target = url::Url::parse(&postgres_admin_url())
            .unwrap()
            .socket_addrs(|| Some(5432))
            .unwrap()[0];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (up, watching) = watch::channel(true);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, target, watching.clone()));
            }
        });
        Self {
            address,
            up,
            accept,
        }
    }

    /// `database_url` with its host and port replaced by the proxy's.
    fn url(&self, database_url: &str) -> String {
        let mut url = url::Url::parse(database_url).unwrap();
        url.set_host(Some(&self.address.ip().to_string())).unwrap();
        url.set_port(Some(self.address.port())).unwrap();
        url.to_string()
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, mut up: watch::Receiver<bool>) {
    if !*up.borrow_and_update() {
        // Unanswered until the cut ends; then closed, as a connection attempt that failed.
        let _ = up.wait_for(|up| *up).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

/// What makes the database unavailable on each backend.
enum Outage {
    /// PostgreSQL behind the proxy.
    Unreachable(DatabaseProxy),
    /// SQLite with a write transaction held open by this connection while the outage lasts.
    Locked {
        url: String,
        holder: Option<sqlx::SqliteConnection>,
    },
}

impl Outage {
    async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Self::Unreachable(DatabaseProxy::start().await),
            Backend::Sqlite => Self::Locked {
                url: String::new(),
                holder: None,
            },
        }
    }

    /// Points `config` at the database through the outage (on PostgreSQL: through the proxy)
    /// and makes every use of the database wait at most `seconds` for it.
    fn configure(&mut self, config: &mut idshare_server::config::Config, seconds: u32) {
        let direct = config.database_url.as_ref().unwrap().expose().to_owned();
        match self {
            Self::Unreachable(proxy) => {
                config.database_url = Some(idshare_server::config::Secret::new(proxy.url(&direct)));
            }
            Self::Locked { url, .. } => *url = direct,
        }
        config.database_timeout_seconds = seconds.try_into().unwrap();
    }

    async fn begin(&mut self) {
        match self {
            Self::Unreachable(proxy) => proxy.cut(),
            Self::Locked { url, holder } => {
                let mut conn = url
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .connect()
                    .await
                    .unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                *holder = Some(conn);
            }
        }
    }

    async fn end(&mut self) {
        match self {
            Self::Unreachable(proxy) => proxy.restore(),
            Self::Locked { holder, .. } => {
                let mut conn = holder.take().expect("the lock is held");
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// A client that gives up after 20 s: a request that takes that long has hung (the database
/// waits are configured to a second or two).
fn impatient_client() -> reqwest::Client {
    idshare_service::install_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Asserts a 503 JSON:API error with a `Retry-After` of at least one second.
async fn expect_unavailable(response: reqwest::Response) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let error = expect_error(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(error["title"], "Service unavailable", "{error}");
    let seconds: u64 = retry_after
        .expect("a 503 says when to retry")
        .parse()
        .unwrap();
    assert!(seconds >= 1, "Retry-After: {seconds}");
}

fn template_body() -> Value {
    json!({"data": {"attributes": {"name": "KYC", "field-schemas": [{"key": "name-first", "type": "string"}]}}})
}

async fn an_unavailable_database_answers_503_and_heals(backend: Backend) {
    let mut outage = Outage::new(backend).await;
    let app = spawn_app_with(backend, |config| outage.configure(config, 2)).await;
    let t = app.tenant("Bank").await;
    let client = impatient_client();
    let templates = app.url("/api/v1/inquiry-templates");
    let create = || {
        client
            .post(&templates)
            .bearer_auth(&t.sandbox)
            .json(&template_body())
    };
    expect_status(create().send().await.unwrap(), StatusCode::CREATED).await;
    crate::dashboard::add_user(&app, &t.org_id, "ops@bank.example", Role::Admin).await;
    let mut browser = crate::dashboard::signed_in(&app, "ops@bank.example").await;
    let csrf = crate::dashboard::csrf(&mut browser).await;

    outage.begin().await;
    for _ in 0..3 {
        expect_unavailable(create().send().await.expect("no hang")).await;
    }
    // The dashboard says so too: a page that writes is a 503 with Retry-After, not a 500.
    let switched = browser
        .submit(
            "/dashboard/environment",
            &[("csrf", &csrf), ("environment", "production")],
        )
        .await;
    assert_eq!(
        switched.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        switched.body
    );
    assert!(
        switched.body.contains("Temporarily unavailable"),
        "{}",
        switched.body
    );
    let list = || client.get(&templates).bearer_auth(&t.sandbox);
    let ready = || client.get(app.url("/readyz"));
    match backend {
        Backend::Postgres => {
            // Nothing answers: reads too, and the node is not ready.
            expect_unavailable(list().send().await.expect("no hang")).await;
            let readiness = ready().send().await.expect("no hang");
            assert_eq!(readiness.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        Backend::Sqlite => {
            // Only the write lock is held: reads go on, and the node is ready.
            expect_status(list().send().await.unwrap(), StatusCode::OK).await;
            expect_status(ready().send().await.unwrap(), StatusCode::OK).await;
        }
    }

    outage.end().await;
    // The same server, not restarted, serves again as soon as the database is back.
    let mut readiness = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        readiness = ready().send().await.unwrap().status();
        if readiness == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(readiness, StatusCode::OK);
    expect_status(create().send().await.unwrap(), StatusCode::CREATED).await;
    let listed = expect_status(list().send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        2,
        "the refused creations created nothing: {listed}"
    );
}

/// An identity-records provider on loopback (docs/providers.md) that counts its calls and, while
/// held, answers none of them: a job calling it is in flight for as long as the test wants.
pub(crate) struct Provider {
    pub url: String,
    calls: watch::Sender<usize>,
    held: watch::Sender<bool>,
}

impl Provider {
    pub async fn start() -> Self {
        use axum::{Json, Router, routing::post};
        let (calls, _) = watch::channel(0);
        let (held, _) = watch::channel(false);
        let (counted, holding) = (calls.clone(), held.clone());
        let app = Router::new().route(
            "/database",
            post(move |Json(body): Json<Value>| async move {
                counted.send_modify(|calls| *calls += 1);
                let _ = holding.subscribe().wait_for(|held| !*held).await;
                Json(json!({"found": true, "name-first": body["name-first"], "name-last": body["name-last"]}))
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{address}/database"),
            calls,
            held,
        }
    }

    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    pub fn release(&self) {
        self.held.send_replace(false);
    }

    pub fn calls(&self) -> usize {
        *self.calls.borrow()
    }

    /// Waits (at most a minute) until the provider has been called `count` times.
    pub async fn wait_for_calls(&self, count: usize) {
        let mut calls = self.calls.subscribe();
        tokio::time::timeout(Duration::from_secs(60), calls.wait_for(|c| *c >= count))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the provider was called {} times, not {count}",
                    self.calls()
                )
            })
            .unwrap();
    }
}

/// `(status, attempts, last_error)` of every job of `kind`, read directly from the database at
/// `database_url`.
pub(crate) async fn jobs_of_kind(
    database_url: &str,
    kind: &str,
) -> Vec<(String, i64, Option<String>)> {
    let sql = "SELECT status, attempts, last_error FROM jobs WHERE kind = $1";
    if database_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query_as(sql)
            .bind(kind)
            .fetch_all(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query_as(sql)
            .bind(kind)
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }
}

/// A production inquiry whose template asks for a `database` verification through the `http`
/// provider (so that its pipeline calls the test's [`Provider`]); returns its id.
pub(crate) async fn inquiry_checked_by_the_provider(app: &TestApp, key: &str) -> String {
    let template = expect_status(
        app.post(key, "/api/v1/inquiry-templates", &json!({"data": {"attributes": {"name": "Records",
            "field-schemas": [{"key": "name-first", "type": "string"}, {"key": "name-last", "type": "string"},
                              {"key": "birthdate", "type": "date"}],
            "verifications": [{"type": "database", "config": {"provider": "http"}}]}}}))
            .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_inquiry(
        key,
        &template,
        json!({"name-first": "Ada", "name-last": "Lovelace", "birthdate": "1985-03-14"}),
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn submit(app: &TestApp, key: &str, inquiry: &str) {
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
}

pub(crate) async fn status_of(app: &TestApp, key: &str, inquiry: &str) -> String {
    let inquiry = expect_status(
        app.get(key, &format!("/api/v1/inquiries/{inquiry}")).await,
        StatusCode::OK,
    )
    .await;
    inquiry["data"]["attributes"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_job_cut_off_from_the_database_is_postponed_not_failed(backend: Backend) {
    let provider = Provider::start().await;
    let mut outage = Outage::new(backend).await;
    let app = spawn_app_with(backend, |config| {
        outage.configure(config, 1);
        config.database_provider_url = Some(provider.url.clone());
    })
    .await;
    let t = app.tenant("Bank").await;
    let key = &t.production;
    let inquiry = inquiry_checked_by_the_provider(&app, key).await;
    submit(&app, key, &inquiry).await;

    // The pipeline runs; while the provider is being asked, the database goes away, so the
    // job cannot record what it found. The database comes back a few seconds later.
    let state = app.state.clone();
    provider.hold();
    let run = tokio::spawn(async move { idshare_service::worker::drain(&state).await });
    provider.wait_for_calls(1).await;
    outage.begin().await;
    provider.release();
    tokio::time::sleep(Duration::from_secs(3)).await;
    outage.end().await;
    run.await.unwrap().expect("the worker kept going");

    // Postponed: back in the queue, the attempt not used up, the cause kept.
    let jobs = jobs_of_kind(&app.database_url, "inquiry-pipeline").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let (status, attempts, last_error) = &jobs[0];
    assert_eq!((status.as_str(), *attempts), ("queued", 0), "{jobs:?}");
    let last_error = last_error.as_deref().unwrap_or_default();
    let cause = match backend {
        Backend::Sqlite => "database is locked",
        Backend::Postgres => "no connection to the database within the database timeout",
    };
    assert!(last_error.contains(cause), "{last_error}");

    // Its retry finishes the inquiry.
    app.state.advance_clock(time::Duration::hours(1));
    assert_eq!(app.drain().await, 1);
    assert_eq!(status_of(&app, key, &inquiry).await, "completed");
    assert_eq!(provider.calls(), 2);
    let jobs = jobs_of_kind(&app.database_url, "inquiry-pipeline").await;
    assert_eq!((jobs[0].0.as_str(), jobs[0].1), ("done", 1), "{jobs:?}");
}

async fn a_job_outlives_its_lease_while_its_heartbeat_runs(backend: Backend) {
    let provider = Provider::start().await;
    let app = spawn_app_with(backend, |config| {
        // Two background workers: while one runs the job, the other reaps expired leases and
        // claims what is due.
        config.workers = 2;
        config.job_lease_seconds = 3.try_into().unwrap();
        config.database_provider_url = Some(provider.url.clone());
    })
    .await;
    let t = app.tenant("Bank").await;
    let key = &t.production;
    let inquiry = inquiry_checked_by_the_provider(&app, key).await;
    provider.hold();
    submit(&app, key, &inquiry).await;
    provider.wait_for_calls(1).await;
    // The job runs for three of its leases; the other worker looks for expired leases at least
    // every 2 s meanwhile.
    tokio::time::sleep(Duration::from_secs(9)).await;
    provider.release();
    let mut status = String::new();
    for _ in 0..300 {
        status = status_of(&app, key, &inquiry).await;
        if status == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "completed");

    assert_eq!(provider.calls(), 1, "nobody took the job over while it ran");
    let jobs = jobs_of_kind(&app.database_url, "inquiry-pipeline").await;
    assert_eq!(jobs, [("done".to_owned(), 1, None)]);
}

/// `idshare serve` as a child process whose log lines arrive on a channel; killed when dropped.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Serve {
    fn start(storage: &[String]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_idshare"))
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .args(storage)
            .env_remove("IDSHARE_DATABASE_URL")
            .env("IDSHARE_DATABASE_TIMEOUT_SECONDS", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start idshare serve");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let log = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if send.send(log).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The next log line whose message is `message` (panics, with what was logged instead, if
    /// the process ends or says nothing for a minute).
    fn wait_for(&self, message: &str) -> Value {
        let mut seen = vec![];
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(log) if log["fields"]["message"] == message => return log,
                Ok(log) => seen.push(log),
                Err(e) => panic!("no `{message}` ({e}); the server logged: {seen:#?}"),
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve_waits_for_its_database(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    let mut outage = Outage::new(backend).await;
    let (database_url, postgres_database) = match backend {
        Backend::Sqlite => (idshare_store::Store::sqlite_url(dir.path()), None),
        Backend::Postgres => {
            let (url, name) = create_postgres_database().await;
            (url, Some(name))
        }
    };
    let mut config = idshare_server::config::Config {
        data_dir: dir.path().to_path_buf(),
        database_url: Some(idshare_server::config::Secret::new(database_url)),
        ..Default::default()
    };
    outage.configure(&mut config, 1);
    storage.extend([
        "--database-url".to_owned(),
        config.database_url.unwrap().expose().to_owned(),
    ]);

    outage.begin().await;
    let server = Serve::start(&storage);
    for attempt in 1..=2 {
        let retry = server.wait_for("the database is unavailable; retrying");
        assert_eq!(retry["fields"]["attempt"], attempt, "{retry}");
        assert!(retry["fields"]["error"].is_string(), "{retry}");
    }
    outage.end().await;

    let serving = server.wait_for("idshare is serving");
    let address = serving["fields"]["address"].as_str().unwrap();
    let ready = impatient_client()
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

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
    an_unavailable_database_answers_503_and_heals,
    a_job_cut_off_from_the_database_is_postponed_not_failed,
    serve_waits_for_its_database,
    a_job_outlives_its_lease_while_its_heartbeat_runs,
);
