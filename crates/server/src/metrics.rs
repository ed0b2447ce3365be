//! `GET /metrics` in the Prometheus text format. Counters and histograms are recorded where
//! things happen (HTTP requests here, jobs, redemptions, webhook deliveries and pipeline
//! decisions in `idshare_service::telemetry`) into one process-wide recorder; the job queue and
//! the connection pool are read when scraped, so they cost nothing between scrapes.
//!
//! Off unless configured: with `metrics_token` the main listener serves `/metrics` to a caller
//! with `Authorization: Bearer <token>`; with `metrics_listen` a listener of its own serves
//! only `/metrics` (also asking for the token when one is set). No label names an organization
//! or holds an id: routes are the matched templates (`/api/v1/inquiries/{id}`).

use std::{fmt::Write as _, sync::OnceLock, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};

use crate::{http::error::ApiError, state::AppState};

/// Histogram: seconds from a request's arrival to its answer's head, by `method`, `route`
/// (the matched template, `unmatched` for none) and `status`.
pub const HTTP_REQUEST_SECONDS: &str = "idshare_http_request_duration_seconds";

/// Bucket bounds of every `…_seconds` histogram: from a fast API answer (5 ms) to a slow
/// webhook receiver or a redemption waiting for the queue (a minute).
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed as the global `metrics` recorder on first use (when a
/// server with metrics enabled starts). One per process, as the `metrics` facade is.
pub fn recorder() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder was installed first: /metrics shows only the queue \
                 and the connection pool"
            );
        }
        describe();
        handle
    })
}

/// The `# HELP` lines of the recorded series.
fn describe() {
    use idshare_service::telemetry as t;
    metrics::describe_histogram!(
        HTTP_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Requests from arrival to the answer's head, by method, matched route and status."
    );
    metrics::describe_histogram!(
        t::JOB_RUN_SECONDS,
        metrics::Unit::Seconds,
        "Background job runs by kind and outcome (done, retry, postponed, dead)."
    );
    metrics::describe_histogram!(
        t::REDEMPTION_SECONDS,
        metrics::Unit::Seconds,
        "Connect redemptions from the redeem call to the token redeemed or failed, by outcome (and failure reason)."
    );
    metrics::describe_histogram!(
        t::WEBHOOK_DELIVERY_SECONDS,
        metrics::Unit::Seconds,
        "Webhook delivery attempts by outcome (delivered, retry, failed)."
    );
    metrics::describe_counter!(
        t::PIPELINE_DECISIONS,
        "Verification pipeline results committed, by the inquiry status they left."
    );
}

/// Whether this server exposes metrics at all (a token, a listener of their own, or both).
pub fn enabled(state: &AppState) -> bool {
    let config = state.config();
    config.metrics_token.is_some() || config.metrics_listen.is_some()
}

/// The `/metrics` route of the main listener: present only when a token is configured (else
/// the path is unknown there, 404).
pub fn main_routes(state: &AppState) -> Router<AppState> {
    if state.config().metrics_token.is_some() {
        Router::new().route("/metrics", get(scrape))
    } else {
        Router::new()
    }
}

/// The router of the metrics listener: `/metrics` only.
pub fn listener_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state)
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config().metrics_token
        && !bearer_matches(&headers, token.expose())
    {
        let mut response = ApiError::unauthorized(
            "Send the metrics token configured on the server as `Authorization: Bearer <token>`.",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        render(&state).await,
    )
        .into_response()
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant time
/// (over digests, so that the length is not told either).
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (given, expected) = (Sha256::digest(given.trim()), Sha256::digest(token));
    given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// The exposition: what was recorded, then the queue and the pool as they are now.
pub async fn render(state: &AppState) -> String {
    let handle = recorder();
    handle.run_upkeep();
    let mut text = handle.render();
    let queue = tokio::time::timeout(
        SCRAPE_QUERY_TIMEOUT,
        idshare_store::stats::queue_stats(state.store(), state.now()),
    )
    .await;
    let up = match queue {
        Ok(Ok(stats)) => {
            write_queue(&mut text, &stats);
            1.0
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: could not read the job queue");
            0.0
        }
        Err(_) => {
            tracing::warn!("metrics: the job queue query did not answer in time");
            0.0
        }
    };
    gauge(
        &mut text,
        "idshare_job_queue_stats_up",
        "1 when the job queue could be read for this scrape, 0 when the database did not answer.",
        &[("", up)],
    );
    let pool = state.store().pool_usage();
    gauge(
        &mut text,
        "idshare_db_pool_connections",
        "Database connections of this process's pool, by state (idle, in_use).",
        &[
            ("state=\"idle\"", f64::from(pool.idle)),
            ("state=\"in_use\"", f64::from(pool.in_use())),
        ],
    );
    gauge(
        &mut text,
        "idshare_db_pool_max_connections",
        "The most connections the pool opens.",
        &[("", f64::from(pool.max))],
    );
    text
}

/// How long a scrape waits for the queue query: a scrape must answer while the database does
/// not (the pool and the recorded series still tell something).
const SCRAPE_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

fn write_queue(text: &mut String, stats: &idshare_store::stats::QueueStats) {
    let jobs: Vec<(String, f64)> = stats
        .counts
        .iter()
        .map(|c| {
            let n = c.jobs as f64;
            (
                format!(
                    "queue=\"{}\",kind=\"{}\",status=\"{}\"",
                    escape(&c.queue),
                    escape(&c.kind),
                    escape(&c.status)
                ),
                n,
            )
        })
        .collect();
    let jobs: Vec<(&str, f64)> = jobs.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    gauge(
        text,
        "idshare_jobs",
        "Jobs in the queue by queue, kind and status (queued, running, dead); finished jobs are not counted.",
        &jobs,
    );
    let oldest: Vec<(String, f64)> = stats
        .oldest_due_seconds
        .iter()
        .map(|(queue, age)| (format!("queue=\"{}\"", escape(queue)), *age))
        .collect();
    let oldest: Vec<(&str, f64)> = oldest.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    gauge(
        text,
        "idshare_job_oldest_due_age_seconds",
        "Seconds the oldest due job of each queue has waited to be claimed (no series: none waits).",
        &oldest,
    );
}

/// Appends one gauge family: `# HELP`, `# TYPE`, then a sample per `(labels, value)` (labels
/// already formatted, empty for none). A family without samples is left out.
fn gauge(text: &mut String, name: &str, help: &str, samples: &[(&str, f64)]) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(text, "{name} {value}");
        } else {
            let _ = writeln!(text, "{name}{{{labels}}} {value}");
        }
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
