//! The metrics services record where things change: job runs, redemptions, webhook delivery
//! attempts and pipeline decisions. They go through the `metrics` facade (a no-op until the
//! server installs its Prometheus recorder). Labels are small fixed sets (kinds, outcomes,
//! statuses, failure reasons): never an organization, an id or personal data.

use std::time::Duration;

use idshare_domain::inquiry::InquiryStatus;
use time::OffsetDateTime;

/// Histogram: seconds one job run took, by `kind` and `outcome` (`done`, `retry`, `postponed`,
/// `dead`).
pub const JOB_RUN_SECONDS: &str = "idshare_job_run_duration_seconds";
/// Histogram: seconds from the redeem call (the token `pending`) to the token `redeemed` or
/// `failed`, by `outcome`, and `reason` for a failure.
pub const REDEMPTION_SECONDS: &str = "idshare_redemption_duration_seconds";
/// Histogram: seconds one webhook delivery attempt took (the HTTP exchange), by `outcome`
/// (`delivered`; `retry`: failed, tried again later; `failed`: failed for good).
pub const WEBHOOK_DELIVERY_SECONDS: &str = "idshare_webhook_delivery_duration_seconds";
/// Counter: pipeline runs recorded, by the inquiry's `status` they left it in.
pub const PIPELINE_DECISIONS: &str = "idshare_pipeline_decisions_total";

/// A job run ended with `outcome`.
pub fn job_ran(kind: &str, outcome: &'static str, took: Duration) {
    metrics::histogram!(JOB_RUN_SECONDS, "kind" => kind.to_owned(), "outcome" => outcome)
        .record(took);
}

/// A redemption that went pending at `pending_at` ended at `at`: `reason` is `None` when the
/// token was redeemed, the failure reason otherwise.
pub fn redemption_ended(
    pending_at: Option<OffsetDateTime>,
    at: OffsetDateTime,
    reason: Option<&str>,
) {
    let took = pending_at.map_or(0.0, |pending| (at - pending).as_seconds_f64().max(0.0));
    match reason {
        None => metrics::histogram!(REDEMPTION_SECONDS, "outcome" => "redeemed").record(took),
        Some(reason) => metrics::histogram!(
            REDEMPTION_SECONDS,
            "outcome" => "failed",
            "reason" => reason.to_owned()
        )
        .record(took),
    }
}

/// A webhook delivery attempt ended with `outcome` (the delivery's status after it).
pub fn webhook_attempted(outcome: &'static str, took: Duration) {
    metrics::histogram!(WEBHOOK_DELIVERY_SECONDS, "outcome" => outcome).record(took);
}

/// The pipeline's results for a submission were committed, leaving the inquiry `status`.
pub fn pipeline_decided(status: InquiryStatus) {
    metrics::counter!(PIPELINE_DECISIONS, "status" => status.as_str()).increment(1);
}

/// The key of a job's payload that carries the W3C `traceparent` of the span that enqueued it.
pub const TRACEPARENT: &str = "traceparent";

/// How a job continues the trace of the request that enqueued it, when traces are exported:
/// the binary installs it (it knows the tracing backend; services know only `tracing`).
#[derive(Debug, Clone, Copy)]
pub struct TracePropagation {
    /// The W3C `traceparent` of the current span, when it belongs to an exported trace.
    pub current: fn() -> Option<String>,
    /// Makes `span` a child of the span a `traceparent` names.
    pub adopt: fn(&tracing::Span, &str),
}

static PROPAGATION: std::sync::OnceLock<TracePropagation> = std::sync::OnceLock::new();

/// Installs the propagation (once per process; later calls change nothing).
pub fn install_trace_propagation(propagation: TracePropagation) {
    let _ = PROPAGATION.set(propagation);
}

/// The `traceparent` to store with a job enqueued now, if traces are exported.
pub(crate) fn current_traceparent() -> Option<String> {
    PROPAGATION.get().and_then(|p| (p.current)())
}

/// The span a job runs in: a child of the span that enqueued it when its payload carries a
/// `traceparent`, so that one trace follows a redemption from the redeem call through its job.
pub(crate) fn job_span(job: &idshare_store::jobs::Job) -> tracing::Span {
    let span = tracing::info_span!("job", kind = %job.kind, job = %job.id);
    if let (Some(propagation), Some(parent)) = (
        PROPAGATION.get(),
        job.payload
            .get(TRACEPARENT)
            .and_then(serde_json::Value::as_str),
    ) {
        (propagation.adopt)(&span, parent);
    }
    span
}
