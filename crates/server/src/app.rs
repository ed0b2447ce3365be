//! Wiring: shared state, the router with its layers, and the server loop.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use idshare_store::{Store, StoreError};
use serde_json::json;
use time::OffsetDateTime;
use tower::ServiceBuilder;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::{
    api, auth, config::Config, error::ApiError, idempotency, middleware as mw,
    middleware::CurrentRequestId, ratelimit::RateLimiter,
};

/// Parsed workflow definitions by version (versions are immutable).
pub(crate) type WorkflowDefinitions = std::sync::Mutex<
    std::collections::HashMap<
        idshare_domain::id::WorkflowVersionId,
        Arc<idshare_domain::workflow::WorkflowDefinition>,
    >,
>;

/// State shared by every request handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: Config,
    rate_limiter: RateLimiter,
    login_limiter: crate::dashboard::LoginLimiter,
    workflow_definitions: WorkflowDefinitions,
    screening: crate::service::screening::ScreeningCache,
    http: reqwest::Client,
    webhook_http: reqwest::Client,
    /// Added to the wall clock by [`AppState::advance_clock`].
    clock_offset_micros: std::sync::atomic::AtomicI64,
    code_sender: Arc<dyn crate::sender::CodeSender>,
    memory_sender: Option<Arc<crate::sender::MemorySender>>,
}

impl AppState {
    pub fn new(store: Store, config: Config) -> Self {
        let (code_sender, memory_sender) = crate::sender::build(config.code_sender);
        Self::build(store, config, code_sender, memory_sender)
    }

    /// [`AppState::new`] with another confirmation-code sender (an SMS or email gateway).
    pub fn with_code_sender(
        store: Store,
        config: Config,
        code_sender: Arc<dyn crate::sender::CodeSender>,
    ) -> Self {
        Self::build(store, config, code_sender, None)
    }

    fn build(
        store: Store,
        config: Config,
        code_sender: Arc<dyn crate::sender::CodeSender>,
        memory_sender: Option<Arc<crate::sender::MemorySender>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                rate_limiter: RateLimiter::default(),
                login_limiter: Default::default(),
                workflow_definitions: Default::default(),
                screening: Default::default(),
                http: outbound_client(),
                webhook_http: crate::service::webhooks::client(
                    config.allow_private_webhook_targets,
                ),
                clock_offset_micros: Default::default(),
                config,
                code_sender,
                memory_sender,
            }),
        }
    }

    /// Delivers confirmation codes.
    pub fn code_sender(&self) -> &dyn crate::sender::CodeSender {
        self.inner.code_sender.as_ref()
    }

    /// The last confirmation code sent to `to` (E.164 number or normalized address), when the
    /// configuration says `code_sender = "memory"`; always `None` otherwise.
    pub fn sent_code(&self, to: &str) -> Option<String> {
        self.inner.memory_sender.as_ref()?.last_code(to)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.rate_limiter
    }

    pub(crate) fn login_limiter(&self) -> &crate::dashboard::LoginLimiter {
        &self.inner.login_limiter
    }

    pub(crate) fn workflow_definitions(&self) -> &WorkflowDefinitions {
        &self.inner.workflow_definitions
    }

    pub(crate) fn screening_cache(&self) -> &crate::service::screening::ScreeningCache {
        &self.inner.screening
    }

    /// The client for outgoing calls (providers): no redirects, explicit timeouts per call.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Wakes an idle worker of `queue` in this process (or the next one to go idle):
    /// committing a transaction that enqueued jobs to it does it (see
    /// [`idshare_store::Tx::commit`]); so does a `NOTIFY` from another node.
    pub(crate) fn job_wakeup(&self, queue: &str) -> Arc<tokio::sync::Notify> {
        self.inner.store.job_wakeups().of(queue)
    }

    /// The client for webhook deliveries and workflow HTTPS requests: no redirects, and
    /// (unless the configuration allows them) no private, loopback or link-local targets.
    pub fn webhook_http(&self) -> &reqwest::Client {
        &self.inner.webhook_http
    }

    /// The current time; the one clock every rule reads.
    pub fn now(&self) -> OffsetDateTime {
        let offset = self
            .inner
            .clock_offset_micros
            .load(std::sync::atomic::Ordering::Relaxed);
        OffsetDateTime::now_utc() + time::Duration::microseconds(offset)
    }

    /// Moves this process's clock forward, so that tests and simulations reach retry times and
    /// expiries without waiting. The server itself never calls it.
    pub fn advance_clock(&self, by: time::Duration) {
        let micros = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX);
        self.inner
            .clock_offset_micros
            .fetch_add(micros, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Installs the TLS crypto provider (ring): rustls is built without a default one to keep the
/// build small. Call before building any HTTP client; calling it again is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn outbound_client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// Opens the store named by the configuration as the server uses it: a missing SQLite database
/// is created, migrations run, and the master key is checked against the database (its file is
/// created only on the first start of a fresh database).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let source = config.master_key_source()?;
    Store::open(
        &config.database_url(),
        true,
        source,
        config.database_timeout(),
    )
    .await
    .map_err(open_error)
}

/// An error of [`Store::open`] as the operator reads it: master key and missing database
/// errors say all there is to say; others are about opening the database.
pub fn open_error(error: StoreError) -> anyhow::Error {
    match error {
        StoreError::MasterKey(_) | StoreError::NoDatabase(_) => error.into(),
        other => anyhow::Error::new(other).context("cannot open the database"),
    }
}

/// [`open_store`], waiting for a database that is unavailable (not reachable yet, or its write
/// lock held) with growing pauses, one log line per attempt; any other failure is returned at
/// once. `serve` starts this way, so that a node started before its database comes up.
pub async fn open_store_when_available(config: &Config) -> anyhow::Result<Store> {
    let mut attempt: u32 = 1;
    loop {
        match open_store(config).await {
            Ok(store) => return Ok(store),
            Err(e) if StoreError::is_unavailable_cause(&*e) => {
                let pause = Duration::from_secs(1 << (attempt - 1).min(5)).min(STARTUP_RETRY_CAP);
                tracing::warn!(
                    attempt,
                    retry_in_seconds = pause.as_secs(),
                    error = %format!("{e:#}").replace('\n', " "),
                    "the database is unavailable; retrying"
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The longest pause between two attempts to reach the database at startup.
const STARTUP_RETRY_CAP: Duration = Duration::from_secs(30);

/// The API routes, each documented in the OpenAPI document by construction.
pub fn api_routes(upload_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(api::inquiry_templates::routes())
        .merge(api::inquiries::routes())
        .merge(api::files::routes(upload_limit))
        .merge(api::checks::routes())
        .merge(api::events::routes())
        .merge(api::confirmations::routes())
        .merge(api::connections::routes())
        .merge(api::share_tokens::routes())
        .merge(api::webhooks::routes())
        .merge(api::workflows::routes())
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api_routes(state.config().upload_body_limit_bytes).split_for_parts();
    let openapi = Arc::new(openapi);
    // The layer added last runs first: inflection, authentication, rate limit, idempotency.
    let api = api
        .layer(DefaultBodyLimit::max(state.config().body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn(mw::key_inflection));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/files/{id}", get(api::files::download))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let openapi = Arc::clone(&openapi);
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .merge(api)
        .merge(crate::flow::routes(&state))
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(mw::request_id))
                .layer(middleware::from_fn(mw::no_store_for_api))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let request_id = req
                        .extensions()
                        .get::<CurrentRequestId>()
                        .map(|r| r.0.to_string())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id,
                        org = tracing::field::Empty,
                    )
                }))
                .layer(middleware::from_fn(mw::refuse_control_characters))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
                })),
        )
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database: a load balancer must hear "not ready" promptly,
/// not after the pool's own timeout.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READINESS_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => return Json(json!({ "status": "ready" })).into_response(),
        Ok(Err(e)) => tracing::warn!(error = ?e, "readiness check failed"),
        Err(_) => tracing::warn!(
            timeout_ms = READINESS_TIMEOUT.as_millis(),
            "readiness check failed: the database did not answer in time"
        ),
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "details": "the database does not answer" })),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "No such endpoint. The API reference is at /api/v1/openapi.json.",
    )
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = router(state.clone());
    let maintenance = tokio::spawn(maintenance(state.clone()));
    let (stop_workers, stop) = tokio::sync::watch::channel(false);
    // Worker names hold the lease on the jobs they run: unique across nodes, even where every
    // node's process id is the same (containers).
    let node = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let queues = [
        (crate::jobs::DEFAULT_QUEUE, state.config().workers),
        (crate::jobs::WEBHOOK_QUEUE, state.config().webhook_workers),
    ];
    let mut workers: Vec<_> = queues
        .into_iter()
        .flat_map(|(queue, count)| (0..count).map(move |n| (queue, n)))
        .map(|(queue, n)| {
            let name = format!("{node}-{queue}-{n}");
            tokio::spawn(crate::jobs::work(state.clone(), name, queue, stop.clone()))
        })
        .collect();
    if state.config().workers + state.config().webhook_workers > 0 {
        workers.push(tokio::spawn(crate::jobs::relay_notifications(
            state.clone(),
            stop.clone(),
        )));
    }
    // Connection info gives the dashboard's sign-in the client address it limits failures by.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("server error");
    // Workers finish the job in hand; one that outlives the grace period is abandoned and its
    // lease returns the job to the queue.
    let _ = stop_workers.send(true);
    for worker in workers {
        if tokio::time::timeout(Duration::from_secs(25), worker)
            .await
            .is_err()
        {
            tracing::warn!("a worker did not finish in time; its job will be retried");
        }
    }
    maintenance.abort();
    state.store().close().await;
    served
}

/// How often housekeeping runs.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// Periodic housekeeping: expires unfinished inquiries past their expiry time, and prunes
/// idempotency records past their retention.
async fn maintenance(state: AppState) {
    let mut interval = tokio::time::interval(MAINTENANCE_INTERVAL);
    loop {
        interval.tick().await;
        match crate::service::inquiries::expire_due(&state).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired unfinished inquiries"),
            Err(e) => tracing::warn!(error = %e, "could not expire inquiries"),
        }
        match crate::service::share_tokens::expire_due(&state).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired share tokens past their TTL"),
            Err(e) => tracing::warn!(error = %e, "could not expire share tokens"),
        }
        let retention = time::Duration::seconds(
            i64::try_from(state.config().idempotency_retention_seconds).unwrap_or(i64::MAX),
        );
        match idshare_store::idempotency::purge(state.store(), state.now() - retention, state.now())
            .await
        {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned expired idempotency records"),
            Err(e) => tracing::warn!(error = ?e, "could not prune idempotency records"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    // In-flight requests get a bounded grace period before the process ends.
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        tracing::warn!("grace period over; exiting");
        std::process::exit(0);
    });
}
