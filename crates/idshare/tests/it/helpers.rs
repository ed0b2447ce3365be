//! `spawn_app()`: the real server on port 0 against a fresh database, plus request helpers.

use std::path::PathBuf;

use idshare_domain::{environment::Environment, id::OrgId, permission::PermissionSet};
use idshare_server::{
    app,
    config::{Config, Secret},
    state::AppState,
};
use idshare_store::{Scope, Store, api_keys, orgs};
use rand::RngExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::oneshot;

/// Generates `sqlite` and `postgres` test modules calling each `async fn name(Backend)`.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )+
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the suite creates its databases in.
pub fn postgres_admin_url() -> String {
    std::env::var("IDSHARE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(url: &str, database: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let (prefix, _) = base.rsplit_once('/').expect("database url has a path");
    format!("{prefix}/{database}")
}

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub store: Store,
    pub backend: Backend,
    pub data_dir: PathBuf,
    pub database_url: String,
    postgres_database: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn create_postgres_database() -> (String, String) {
    let admin = postgres_admin_url();
    let name = format!(
        "idshare_test_{}",
        rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(16)
            .map(|c| char::from(c).to_ascii_lowercase())
            .collect::<String>()
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed by the test suite: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    (with_database(&admin, &name), name)
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_path_buf();
    let (database_url, postgres_database) = match backend {
        Backend::Sqlite => (Store::sqlite_url(&data_dir), None),
        Backend::Postgres => {
            let (url, name) = create_postgres_database().await;
            (url, Some(name))
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let mut config = Config {
        data_dir: data_dir.clone(),
        database_url: Some(Secret::new(database_url.clone())),
        listen: listener.local_addr().expect("address"),
        public_url: Some(address.clone()),
        // Tests run jobs with `drain()`, deterministically, instead of background workers.
        workers: 0,
        webhook_workers: 0,
        // Test receivers listen on loopback; `webhooks::private_targets_are_refused` checks
        // the default.
        allow_private_webhook_targets: true,
        ..Config::default()
    };
    configure(&mut config);
    let store = app::open_store(&config).await.expect("open store");
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let state = AppState::new(store.clone(), config);
    let server_state = state.clone();
    let server = tokio::spawn(async move {
        let state = server_state;
        app::serve(listener, state, async {
            let _ = shutdown_rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        address,
        state,
        client: reqwest::Client::new(),
        store,
        backend,
        data_dir,
        database_url,
        postgres_database,
        shutdown: Some(shutdown),
        server: Some(server),
        _dir: dir,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(name) = self.postgres_database.take() {
            let store = self.store.clone();
            // Drop runs inside the test's runtime; the clean-up needs one of its own.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    store.close().await;
                    if let Ok(mut conn) =
                        <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url())
                            .await
                    {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join()
            .ok();
        }
    }
}

/// An organization with a full-permission key in each environment.
pub struct Tenant {
    pub org_id: OrgId,
    pub sandbox: String,
    pub production: String,
}

impl TestApp {
    /// Runs `statements` on the app's database, outside the server (to set up or inject a
    /// failure the API cannot cause).
    pub async fn run_sql(&self, statements: &[&str]) {
        use sqlx::Connection;
        async fn run<C: Connection>(url: &str, statements: &[&str])
        where
            for<'c> &'c mut C: sqlx::Executor<'c>,
        {
            let mut conn = C::connect(url).await.unwrap();
            for statement in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        match self.backend {
            Backend::Sqlite => run::<sqlx::SqliteConnection>(&self.database_url, statements).await,
            Backend::Postgres => run::<sqlx::PgConnection>(&self.database_url, statements).await,
        }
    }

    /// The number a `SELECT COUNT(*) …` reads from the app's database, outside the server.
    pub async fn count_rows(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.database_url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// Runs every due job (the pipeline, …) to completion; returns how many ran.
    pub async fn drain(&self) -> usize {
        idshare_service::worker::drain(&self.state)
            .await
            .expect("jobs run")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn create_org(&self, name: &str) -> OrgId {
        let mut tx = self.store.begin_write().await.unwrap();
        let org = orgs::create(&mut tx, name, OffsetDateTime::now_utc())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        org.id
    }

    pub async fn create_key(
        &self,
        org: &OrgId,
        environment: Environment,
        permissions: Option<&str>,
    ) -> String {
        let permissions = permissions.map_or_else(PermissionSet::all, |p| {
            PermissionSet::parse_list(p).unwrap()
        });
        let mut tx = self.store.begin_write().await.unwrap();
        let (_, secret) = api_keys::create(
            &mut tx,
            &Scope::new(org.clone(), environment),
            "test",
            &permissions,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        secret
    }

    pub async fn tenant(&self, name: &str) -> Tenant {
        let org_id = self.create_org(name).await;
        Tenant {
            sandbox: self.create_key(&org_id, Environment::Sandbox, None).await,
            production: self
                .create_key(&org_id, Environment::Production, None)
                .await,
            org_id,
        }
    }

    /// A request with the API key. On SQLite every `POST` also carries a fresh
    /// `Idempotency-Key`, so that the suite runs each handler both ways: as an idempotent
    /// request (its commit waits for its stored answer; a handler that read or wrote again after
    /// its commit would show here) and, on PostgreSQL, without a key.
    pub fn request(&self, method: Method, key: &str, path: &str) -> RequestBuilder {
        let idempotent = method == Method::POST && self.backend == Backend::Sqlite;
        let request = self.client.request(method, self.url(path)).bearer_auth(key);
        if idempotent {
            request.header("idempotency-key", random_idempotency_key())
        } else {
            request
        }
    }

    pub async fn get(&self, key: &str, path: &str) -> Response {
        self.request(Method::GET, key, path)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, key: &str, path: &str, body: &Value) -> Response {
        self.request(Method::POST, key, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch(&self, key: &str, path: &str, body: &Value) -> Response {
        self.request(Method::PATCH, key, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, key: &str, path: &str) -> Response {
        self.request(Method::DELETE, key, path)
            .send()
            .await
            .expect("request")
    }

    /// Creates the standard test template and returns its id.
    pub async fn create_template(&self, key: &str) -> String {
        let response = self
            .post(
                key,
                "/api/v1/inquiry-templates",
                &json!({"data": {"attributes": standard_template("KYC")}}),
            )
            .await;
        let body = expect_status(response, StatusCode::CREATED).await;
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates an inquiry on `template` with `fields` and returns the response document.
    pub async fn create_inquiry(&self, key: &str, template: &str, fields: Value) -> Value {
        let response = self
            .post(
                key,
                "/api/v1/inquiries",
                &json!({"data": {"attributes": {"inquiry-template-id": template, "fields": fields}}}),
            )
            .await;
        expect_status(response, StatusCode::CREATED).await
    }

    /// All ids of a list endpoint, following `links.next` to the end.
    pub async fn list_ids(&self, key: &str, path: &str) -> Vec<String> {
        let mut ids = vec![];
        let mut next = Some(path.to_owned());
        while let Some(path) = next {
            let body = expect_status(self.get(key, &path).await, StatusCode::OK).await;
            ids.extend(
                body["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().to_owned()),
            );
            next = body["links"]["next"].as_str().map(str::to_owned);
        }
        ids
    }
}

fn random_idempotency_key() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// The attributes of the standard test template.
pub fn standard_template(name: &str) -> Value {
    json!({
        "name": name,
        "field-schemas": [
            {"key": "name-first", "type": "string", "config": {"required": true}},
            {"key": "name-last", "type": "string", "config": {"required": true}},
            {"key": "birthdate", "type": "date"},
            {"key": "address-country-code", "type": "string"},
            {"key": "email-address", "type": "string"},
            {"key": "tier", "type": "choices", "config": {"options": ["basic", "premium"]}},
            {"key": "score", "type": "number", "config": {"min": 0, "max": 100}}
        ],
        "verifications": [{"type": "government-id", "required": true, "config": {"minimum-age": 18}}],
        "reports": [{"type": "watchlist", "on-match": "needs_review"}]
    })
}

/// Asserts the status (printing the body when it differs) and returns the JSON body.
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
    }
}

/// Asserts a JSON:API error answer and returns its first error object.
pub async fn expect_error(response: Response, status: StatusCode) -> Value {
    let has_request_id = response.headers().contains_key("request-id");
    let body = expect_status(response, status).await;
    assert!(has_request_id, "errors carry a Request-Id too");
    let error = body["errors"][0].clone();
    assert!(
        error["title"].is_string() && error["details"].is_string(),
        "JSON:API error: {body}"
    );
    error
}

/// The rate limiter counts requests in fixed one-minute windows of the wall clock: a test that
/// fills a window waits here first when the current window is about to end, so that its
/// requests all fall in one window.
pub async fn at_the_start_of_a_rate_window() {
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
        % 60.0;
    if into_minute > 45.0 {
        tokio::time::sleep(std::time::Duration::from_secs_f64(60.1 - into_minute)).await;
    }
}
