//! Wiring: opening the store, the router with its layers, and the server loop.

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
use idshare_service::worker;
use idshare_store::{Store, StoreError};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use utoipa_axum::router::OpenApiRouter;

use crate::{
    api,
    config::Config,
    http::{auth, error::ApiError, idempotency, middleware as mw, middleware::CurrentRequestId},
    state::AppState,
};

/// Opens the store named by the configuration as the server uses it: a missing SQLite database
/// is created, migrations run, and the master key is checked against the database (its file is
/// created only on the first start of a fresh database).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let keys = config.master_keys()?;
    Store::open(
        &config.database_url(),
        true,
        keys,
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
    OpenApiRouter::with_openapi(crate::http::openapi::base())
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
        .merge(api::audit_entries::routes())
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api_routes(state.config().upload_body_limit_bytes).split_for_parts();
    let mut openapi = serde_json::to_value(openapi).expect("the OpenAPI document serializes");
    crate::http::openapi::complete(&mut openapi);
    let openapi = Arc::new(openapi);
    // The layer added last runs first: inflection, shape, authentication, rate limit,
    // idempotency.
    let api = api
        .layer(DefaultBodyLimit::max(state.config().body_limit_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http::ratelimit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn(api::shape))
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
        .merge(crate::metrics::main_routes(&state))
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
                    // The matched route, not the path: paths hold ids and one-time link tokens.
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        route = mw::route_of(req),
                        request_id,
                        org = tracing::field::Empty,
                    )
                }))
                .layer(middleware::from_fn(mw::observe))
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
    if crate::metrics::enabled(&state) {
        crate::metrics::recorder();
    }
    let metrics_server = match state.config().metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (metrics_listen)"))?;
            tracing::info!(address = %listener.local_addr()?, "metrics are served on their own listener");
            let metrics = crate::metrics::listener_router(state.clone());
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, metrics).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            }))
        }
        None => None,
    };
    let app = router(state.clone());
    let maintenance = tokio::spawn(maintenance(state.clone()));
    let (stop_workers, stop) = tokio::sync::watch::channel(false);
    // Worker names hold the lease on the jobs they run: unique across nodes, even where every
    // node's process id is the same (containers).
    let node = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let queues = [
        (idshare_service::jobs::DEFAULT_QUEUE, state.config().workers),
        (
            idshare_service::jobs::WEBHOOK_QUEUE,
            state.config().webhook_workers,
        ),
    ];
    let mut workers: Vec<_> = queues
        .into_iter()
        .flat_map(|(queue, count)| (0..count).map(move |n| (queue, n)))
        .map(|(queue, n)| {
            let name = format!("{node}-{queue}-{n}");
            tokio::spawn(worker::work(
                state.services().clone(),
                name,
                queue,
                stop.clone(),
            ))
        })
        .collect();
    if state.config().workers + state.config().webhook_workers > 0 {
        workers.push(tokio::spawn(worker::relay_notifications(
            state.services().clone(),
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
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    state.store().close().await;
    served
}

/// How often housekeeping runs.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// How often housekeeping looks for inquiries past their retention period (at start, then every
/// this many runs): redaction is due days after an inquiry ends, so an hour late is on time,
/// and the search reads every ended inquiry not yet redacted.
const RETENTION_EVERY_RUNS: u32 = 60;

/// Periodic housekeeping: redacts inquiries past their retention period and deletes audit
/// entries past theirs (hourly), expires unfinished inquiries past their expiry time, and
/// prunes idempotency records past their retention.
async fn maintenance(state: AppState) {
    let mut interval = tokio::time::interval(MAINTENANCE_INTERVAL);
    for run in 0_u32.. {
        interval.tick().await;
        if run % RETENTION_EVERY_RUNS == 0 {
            match idshare_service::retention::redact_overdue(&state).await {
                Ok(0) => {}
                Ok(redacted) => {
                    tracing::info!(redacted, "redacted inquiries past their retention period");
                }
                Err(e) => tracing::warn!(error = %e, "could not redact inquiries past retention"),
            }
            if let Some(days) = state.config().audit_retention_days {
                match idshare_service::audit::delete_expired(&state, days.get()).await {
                    Ok(0) => {}
                    Ok(deleted) => {
                        tracing::info!(deleted, "deleted audit entries past their retention");
                    }
                    Err(e) => tracing::warn!(error = %e, "could not delete old audit entries"),
                }
            }
        }
        match idshare_service::inquiries::expire_due(&state).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired unfinished inquiries"),
            Err(e) => tracing::warn!(error = %e, "could not expire inquiries"),
        }
        match idshare_service::share_tokens::expire_due(&state).await {
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
