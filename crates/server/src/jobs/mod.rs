//! Background workers: claim due jobs, run them, record the outcome. Jobs are enqueued in the
//! transaction of the change that calls for them; workers are woken in-process (SQLite, and the
//! enqueuing node on PostgreSQL) or by `LISTEN/NOTIFY` (other PostgreSQL nodes), with a polling
//! fallback. Tests run with no background workers and call [`drain`] instead of sleeping.

use std::time::Duration as StdDuration;

use idshare_domain::id::JobId;
use idshare_store::jobs::{self, Job};
use serde::{Serialize, de::DeserializeOwned};
use time::Duration;
use tokio::sync::watch;

use crate::{app::AppState, service::ServiceError};

/// The longest wait between tries to record a job's outcome while the database is unavailable.
const RECORD_RETRY_MAX: StdDuration = StdDuration::from_secs(2);

/// How many due jobs a worker claims at once (one claim transaction for all of them), and runs
/// one after another. Webhook deliveries one at a time: a batch would wait on its slowest
/// receiver while other webhook workers idle.
fn batch_size(queue: Option<&str>) -> u32 {
    match queue {
        Some(WEBHOOK_QUEUE) => 1,
        _ => 4,
    }
}

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later (database unavailable, provider down, …).
    #[error("{0:#}")]
    Retryable(anyhow::Error),
    /// Trying again cannot help (the payload names nothing, corrupt data, …): the job ends
    /// `dead` at once.
    #[error("{0:#}")]
    Fatal(anyhow::Error),
    /// Try again at the given time (a schedule of the job's own, e.g. webhook retries).
    #[error("{error:#}")]
    RetryAt {
        at: time::OffsetDateTime,
        error: anyhow::Error,
    },
}

impl From<idshare_store::StoreError> for JobError {
    fn from(e: idshare_store::StoreError) -> Self {
        Self::Retryable(e.into())
    }
}

/// Whether a job is tried again is the service error's to say; its whole cause chain is kept
/// (for `last_error` and the log).
impl From<ServiceError> for JobError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Later { at, cause } => Self::RetryAt { at, error: cause },
            e if e.is_retryable() => Self::Retryable(e.into()),
            e => Self::Fatal(e.into()),
        }
    }
}

/// The job kinds and their payloads (ids only: no personal data in the queue).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JobKind {
    /// Run the verification pipeline of one inquiry submission.
    InquiryPipeline {
        org_id: String,
        environment: String,
        inquiry_id: String,
        submission: i64,
    },
    /// Redeem one Connect share token (copy, reuse, run, mark `redeemed`).
    ShareTokenRedemption {
        token_id: String,
        #[serde(default)]
        field_mappings: Vec<crate::service::redemption::FieldMapping>,
        /// The chain of workflow runs that asked for it (0: an API call), carried so that the
        /// events it writes continue that chain.
        #[serde(default)]
        workflow_chain: u32,
    },
    /// Send (or retry) one webhook delivery.
    WebhookDelivery { delivery_id: String },
    /// Evaluate one published workflow version's trigger condition for one event, and start
    /// the run when it holds.
    WorkflowTrigger {
        org_id: String,
        environment: String,
        version_id: String,
        event_id: String,
        /// The chain the run would continue (see `service::workflows::MAX_CHAIN`).
        chain: u32,
    },
    /// Run (or continue) one workflow run.
    WorkflowRun { run_id: String },
}

/// The queue of verification, redemption and other work.
pub const DEFAULT_QUEUE: &str = "default";
/// Webhook deliveries have workers of their own, so that slow receivers never hold up the
/// verification pipeline or redemptions.
pub const WEBHOOK_QUEUE: &str = "webhooks";

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::InquiryPipeline { .. } => "inquiry-pipeline",
            JobKind::ShareTokenRedemption { .. } => "share-token-redemption",
            JobKind::WebhookDelivery { .. } => "webhook-delivery",
            JobKind::WorkflowTrigger { .. } => "workflow-trigger",
            JobKind::WorkflowRun { .. } => "workflow-run",
        }
    }

    fn queue(&self) -> &'static str {
        match self {
            JobKind::WebhookDelivery { .. } => WEBHOOK_QUEUE,
            _ => DEFAULT_QUEUE,
        }
    }
}

pub(crate) fn decode<T: DeserializeOwned>(job: &Job) -> Result<T, JobError> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::Fatal(anyhow::anyhow!("job {} has a bad payload: {e}", job.id)))
}

async fn execute(state: &AppState, job: &Job) -> Result<(), JobError> {
    let outcome = match decode::<JobKind>(job)? {
        JobKind::InquiryPipeline {
            org_id,
            environment,
            inquiry_id,
            submission,
        } => {
            crate::service::pipeline::run(state, &org_id, &environment, &inquiry_id, submission)
                .await
        }
        JobKind::ShareTokenRedemption {
            token_id,
            field_mappings,
            workflow_chain,
        } => {
            // Boxed: the redemption's future is large, and this one holds it.
            let work = Box::pin(crate::service::redemption::run(
                state,
                &token_id,
                &field_mappings,
            ));
            crate::service::workflows::within_chain(workflow_chain, work).await
        }
        JobKind::WebhookDelivery { delivery_id } => {
            crate::service::webhooks::deliver(state, &delivery_id, job).await
        }
        JobKind::WorkflowTrigger {
            org_id,
            environment,
            version_id,
            event_id,
            chain,
        } => {
            let trigger = crate::service::workflows::Trigger {
                org_id: &org_id,
                environment: &environment,
                version_id: &version_id,
                event_id: &event_id,
                chain,
            };
            crate::service::workflows::evaluate_trigger(state, &trigger).await
        }
        JobKind::WorkflowRun { run_id } => {
            Box::pin(crate::service::workflows::run(state, &run_id, job)).await
        }
    };
    Ok(outcome?)
}

/// Claims the next due jobs of `queue` (every queue when `None`, at most a batch) and runs them
/// under leases that a heartbeat keeps extending; returns whether there were any.
pub async fn run_next(
    state: &AppState,
    worker: &str,
    queue: Option<&str>,
) -> Result<bool, JobError> {
    Ok(run_batch(state, worker, queue, None).await? > 0)
}

/// Claims a batch of due jobs and runs them one after another; when `stop` turns true, gives
/// back those not started yet. Returns how many were claimed.
async fn run_batch(
    state: &AppState,
    worker: &str,
    queue: Option<&str>,
    stop: Option<&watch::Receiver<bool>>,
) -> Result<usize, JobError> {
    let lease = Duration::seconds(i64::from(state.config().job_lease_seconds.get()));
    let limit = batch_size(queue);
    let claimed =
        jobs::claim_batch(state.store(), worker, queue, limit, state.now(), lease).await?;
    if let Some(queue) = queue
        && claimed.len() == limit as usize
    {
        // More may be due: another idle worker of the queue joins in.
        state.job_wakeup(queue).notify_one();
    }
    let (held_tx, held) = watch::channel(claimed.iter().map(|job| job.id.clone()).collect());
    let run = async {
        for (n, job) in claimed.iter().enumerate() {
            if stop.is_some_and(|stop| *stop.borrow()) {
                let unstarted: Vec<JobId> = claimed[n..].iter().map(|j| j.id.clone()).collect();
                if let Err(e) = jobs::release(state.store(), &unstarted, worker, state.now()).await
                {
                    // Their leases run out and the reaper hands them on.
                    tracing::warn!(error = ?e, "could not give back the jobs of a stopping worker");
                }
                return;
            }
            let mut held = held.clone();
            let run = async {
                let outcome = execute(state, job).await;
                finish(state, worker, job, outcome).await;
            };
            tokio::select! {
                // A run that has recorded its outcome has finished, whatever the heartbeat says.
                biased;
                () = run => {}
                _ = held.wait_for(|held: &Vec<JobId>| !held.contains(&job.id)) => {
                    // Dropping the run rolls back whatever it had not committed; the new holder
                    // runs the job again (jobs are idempotent).
                    tracing::warn!(job = %job.id, kind = %job.kind, "job abandoned: its lease ran out and another worker took it over");
                }
            }
        }
    };
    tokio::select! {
        biased;
        () = run => {}
        () = keep_leased(state, worker, lease, &held_tx) => {}
    }
    Ok(claimed.len())
}

/// The heartbeat of a worker running a batch: extends the leases of every job it holds to a
/// full lease from now, three times per lease, so that a job may run longer than its lease (and
/// the jobs waiting their turn in the batch keep theirs) while a worker that dies lets go of
/// them within one lease. Publishes the jobs still held after each beat (one missing ran out of
/// its lease while the database could not be reached, and was handed on). Runs until dropped.
async fn keep_leased(
    state: &AppState,
    worker: &str,
    lease: Duration,
    held: &watch::Sender<Vec<JobId>>,
) {
    let mut beats = tokio::time::interval(lease.unsigned_abs() / 3);
    beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beats.tick().await;
    loop {
        beats.tick().await;
        let now = state.now();
        match jobs::extend_held(state.store(), worker, now + lease, now).await {
            Ok(still_held) => {
                held.send_replace(still_held);
            }
            Err(e) => {
                tracing::warn!(worker, error = ?e, "could not extend the leases of running jobs; trying again");
            }
        }
    }
}

/// Whether the job stopped because the database was unavailable (unreachable, or its write lock
/// busy): that says nothing about the job, so it is postponed without using up an attempt.
fn database_unavailable(error: &JobError) -> bool {
    let (JobError::Retryable(cause)
    | JobError::Fatal(cause)
    | JobError::RetryAt { error: cause, .. }) = error;
    idshare_store::StoreError::is_unavailable_cause(&**cause)
}

/// What becomes of a job once it ran.
enum Disposition {
    Done,
    /// Back to the queue, this long after the database is back, without using up an attempt.
    Postponed(Duration),
    /// Back to the queue at the given time, or `dead` when `None`.
    Failed(Option<time::OffsetDateTime>),
}

/// Records a job's outcome. While the database is unavailable it keeps trying (the heartbeat
/// keeps the lease meanwhile), so that a job that finished is not run again after an outage.
async fn finish(state: &AppState, worker: &str, job: &Job, outcome: Result<(), JobError>) {
    let now = state.now();
    let disposition = match &outcome {
        Ok(()) => Disposition::Done,
        Err(error) if database_unavailable(error) => {
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %error, "job postponed: the database is unavailable");
            Disposition::Postponed(jobs::backoff(job.attempts))
        }
        Err(error) => {
            let retry_at = match error {
                _ if job.attempts >= job.max_attempts => None,
                JobError::Retryable(_) => Some(now + jobs::backoff(job.attempts)),
                JobError::RetryAt { at, .. } => Some(*at),
                JobError::Fatal(_) => None,
            };
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, retry = retry_at.is_some(), error = %error, "job failed");
            if retry_at.is_none() {
                give_up(state, job).await;
            }
            Disposition::Failed(retry_at)
        }
    };
    let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
    let mut wait = StdDuration::from_millis(250);
    loop {
        let now = state.now();
        let store = state.store();
        let recorded = match disposition {
            Disposition::Done => jobs::complete(store, &job.id, worker, now)
                .await
                .map(|_| ()),
            Disposition::Postponed(delay) => {
                jobs::postpone(store, &job.id, worker, &error, now + delay, now).await
            }
            Disposition::Failed(retry_at) => {
                jobs::fail(store, &job.id, worker, &error, retry_at, now).await
            }
        };
        match recorded {
            Ok(()) => return,
            Err(e) if e.is_unavailable() => {
                tracing::warn!(job = %job.id, error = %e, "could not record a job outcome: the database is unavailable; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECORD_RETRY_MAX);
            }
            Err(e) => {
                // The lease runs out and the reaper hands the job to another worker.
                tracing::error!(job = %job.id, error = ?e, "could not record a job outcome");
                return;
            }
        }
    }
}

/// What a job that will not run again leaves behind must not block anyone.
async fn give_up(state: &AppState, job: &Job) {
    let Ok(kind) = decode::<JobKind>(job) else {
        return;
    };
    let outcome = match kind {
        JobKind::InquiryPipeline {
            org_id,
            environment,
            inquiry_id,
            submission,
        } => {
            crate::service::pipeline::give_up(state, &org_id, &environment, &inquiry_id, submission)
                .await
        }
        JobKind::ShareTokenRedemption { token_id, .. } => {
            crate::service::redemption::give_up(state, &token_id).await
        }
        JobKind::WebhookDelivery { delivery_id } => {
            crate::service::webhooks::give_up(state, &delivery_id).await
        }
        JobKind::WorkflowTrigger {
            org_id,
            environment,
            version_id,
            event_id,
            chain,
        } => {
            let trigger = crate::service::workflows::Trigger {
                org_id: &org_id,
                environment: &environment,
                version_id: &version_id,
                event_id: &event_id,
                chain,
            };
            crate::service::workflows::give_up_trigger(state, &trigger).await
        }
        JobKind::WorkflowRun { run_id } => crate::service::workflows::give_up(state, &run_id).await,
    };
    if let Err(e) = outcome {
        let e = JobError::from(e);
        tracing::error!(job = %job.id, error = %e, "could not release what a dead job held");
    }
}

/// Returns jobs whose worker died to the queue, and releases what the exhausted ones held (a
/// redemption, a delivery, a run must not stay `pending` forever).
pub async fn reap(state: &AppState) {
    match jobs::reap(state.store(), state.now()).await {
        Ok(dead) => {
            for job in dead {
                tracing::warn!(job = %job.id, kind = %job.kind, "job given up: its last lease ran out");
                give_up(state, &job).await;
            }
        }
        Err(e) => tracing::warn!(error = ?e, "could not reap expired job leases"),
    }
}

/// Runs every due job until none is left (tests, and `idshare` one-shot commands).
pub async fn drain(state: &AppState) -> Result<usize, JobError> {
    let mut total = 0;
    while run_next(state, "drain", None).await? {
        total += 1;
    }
    Ok(total)
}

/// Enqueues `kind` in the caller's transaction (see [`JobKind`]).
pub async fn enqueue(
    state: &AppState,
    tx: &mut idshare_store::Tx,
    kind: &JobKind,
    dedupe_key: Option<&str>,
) -> Result<Option<JobId>, idshare_store::StoreError> {
    let payload = serde_json::to_value(kind)
        .map_err(|e| idshare_store::StoreError::Corrupt(e.to_string()))?;
    jobs::enqueue(
        tx,
        jobs::NewJob {
            queue: kind.queue(),
            kind: kind.name(),
            payload: &payload,
            dedupe_key,
            run_at: state.now(),
            max_attempts: 8,
        },
        state.now(),
    )
    .await
}

/// A background worker loop over one queue: runs due jobs a batch at a time, sleeps until
/// woken (a wake-up given while it was busy is kept for it) or until the poll interval has
/// passed, and returns jobs whose lease ran out to the queue once per poll interval (not before
/// every claim). When `stop` turns true it finishes the job in hand, gives back the rest of its
/// batch and returns.
pub async fn work(
    state: AppState,
    worker: String,
    queue: &'static str,
    mut stop: watch::Receiver<bool>,
) {
    let poll = StdDuration::from_secs(u64::from(state.config().job_poll_seconds.get()));
    let wakeup = state.job_wakeup(queue);
    let mut next_reap = tokio::time::Instant::now();
    while !*stop.borrow() {
        if tokio::time::Instant::now() >= next_reap {
            reap(&state).await;
            next_reap = tokio::time::Instant::now() + poll;
        }
        match run_batch(&state, &worker, Some(queue), Some(&stop)).await {
            Ok(0) => {}
            Ok(_) => continue,
            Err(e) => tracing::warn!(error = %e, "could not claim jobs"),
        }
        tokio::select! {
            () = wakeup.notified() => {}
            // A dropped sender means the server is gone: stop as well.
            changed = stop.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// On PostgreSQL, relays `NOTIFY` from other nodes to this process's workers (one connection
/// per process, not per worker). Returns at once on SQLite, where enqueuing is in-process.
pub async fn relay_notifications(state: AppState, mut stop: watch::Receiver<bool>) {
    let poll = StdDuration::from_secs(u64::from(state.config().job_poll_seconds.get()));
    let mut listener = match state.store().job_listener().await {
        Ok(Some(listener)) => listener,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = ?e, "cannot LISTEN for jobs; workers poll instead");
            return;
        }
    };
    loop {
        tokio::select! {
            notification = listener.recv() => match notification {
                Ok(notification) => {
                    state.store().job_wakeups().wake_for_notification(notification.payload());
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "job notifications interrupted; retrying");
                    tokio::time::sleep(poll).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}
