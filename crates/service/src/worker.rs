//! Background workers: claim due jobs, run them, record the outcome. Jobs are enqueued in the
//! transaction of the change that calls for them ([`crate::jobs`]); workers are woken in-process (SQLite, and the
//! enqueuing node on PostgreSQL) or by `LISTEN/NOTIFY` (other PostgreSQL nodes), with a polling
//! fallback. Tests run with no background workers and call [`drain`] instead of sleeping.

use std::time::Duration as StdDuration;

use idshare_store::jobs::{self, Job};
use time::Duration;

use crate::{
    ServiceContext,
    jobs::{JobError, execute, give_up},
};

/// How often an idle worker looks for due jobs even without a wake-up.
const POLL: StdDuration = StdDuration::from_secs(2);

/// Claims the next due job of `queue` (every queue when `None`) and runs it under a lease that
/// a heartbeat keeps extending; returns whether there was one.
pub async fn run_next(
    state: &ServiceContext,
    worker: &str,
    queue: Option<&str>,
) -> Result<bool, JobError> {
    let lease = Duration::seconds(i64::from(state.config().job_lease_seconds.get()));
    let Some(job) = jobs::claim(state.store(), worker, queue, state.now(), lease).await? else {
        return Ok(false);
    };
    let run = async {
        let outcome = execute(state, &job).await;
        finish(state, worker, &job, outcome).await;
    };
    tokio::select! {
        // A run that has recorded its outcome has finished, whatever the heartbeat says.
        biased;
        () = run => {}
        () = keep_leased(state, worker, &job, lease) => {
            // Dropping the run rolls back whatever it had not committed; the new holder runs
            // the job again (jobs are idempotent).
            tracing::warn!(job = %job.id, kind = %job.kind, "job abandoned: its lease ran out and another worker took it over");
        }
    }
    Ok(true)
}

/// The heartbeat of a running job: extends its lease to a full lease from now, three times per
/// lease, so that a job may run longer than its lease while a worker that dies lets go of it
/// within one lease. Returns only when the lease was lost (it ran out while the database could
/// not be reached, and the job was handed on).
async fn keep_leased(state: &ServiceContext, worker: &str, job: &Job, lease: Duration) {
    let mut beats = tokio::time::interval(lease.unsigned_abs() / 3);
    beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beats.tick().await;
    loop {
        beats.tick().await;
        let now = state.now();
        match jobs::extend(state.store(), &job.id, worker, now + lease, now).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(job = %job.id, error = ?e, "could not extend a job's lease; trying again");
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
async fn finish(state: &ServiceContext, worker: &str, job: &Job, outcome: Result<(), JobError>) {
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
                wait = (wait * 2).min(POLL);
            }
            Err(e) => {
                // The lease runs out and the reaper hands the job to another worker.
                tracing::error!(job = %job.id, error = ?e, "could not record a job outcome");
                return;
            }
        }
    }
}

/// Returns jobs whose worker died to the queue, and releases what the exhausted ones held (a
/// redemption, a delivery, a run must not stay `pending` forever).
pub async fn reap(state: &ServiceContext) {
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
pub async fn drain(state: &ServiceContext) -> Result<usize, JobError> {
    let mut total = 0;
    while run_next(state, "drain", None).await? {
        total += 1;
    }
    Ok(total)
}

/// A background worker loop over one queue: reaps expired leases, runs due jobs, sleeps until
/// woken. When `stop` turns true it finishes the job in hand and returns.
pub async fn work(
    state: ServiceContext,
    worker: String,
    queue: &'static str,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        reap(&state).await;
        match run_next(&state, &worker, Some(queue)).await {
            Ok(false) => {}
            Ok(true) => continue,
            Err(e) => tracing::warn!(error = %e, "could not claim a job"),
        }
        tokio::select! {
            () = state.job_wakeup().notified() => {}
            // A dropped sender means the server is gone: stop as well.
            changed = stop.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// On PostgreSQL, relays `NOTIFY` from other nodes to this process's workers (one connection
/// per process, not per worker). Returns at once on SQLite, where enqueuing is in-process.
pub async fn relay_notifications(
    state: ServiceContext,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
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
                Ok(_) => state.job_wakeup().notify_waiters(),
                Err(e) => {
                    tracing::warn!(error = ?e, "job notifications interrupted; retrying");
                    tokio::time::sleep(POLL).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}
