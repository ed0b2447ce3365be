//! Background workers: claim due jobs, run them, record the outcome. Jobs are enqueued in the
//! transaction of the change that calls for them ([`crate::jobs`]); workers are woken in-process (SQLite, and the
//! enqueuing node on PostgreSQL) or by `LISTEN/NOTIFY` (other PostgreSQL nodes), with a polling
//! fallback. Tests run with no background workers and call [`drain`] instead of sleeping.

use std::time::Duration as StdDuration;

use idshare_domain::id::JobId;
use idshare_store::jobs::{self, Job};
use time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

use crate::{
    ServiceContext,
    jobs::{
        Completion, JobError, REDEMPTION, WEBHOOK_QUEUE, execute, execute_redemptions, give_up,
    },
};

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

/// Claims the next due jobs of `queue` (every queue when `None`, at most a batch) and runs them
/// under leases that a heartbeat keeps extending; returns whether there were any.
pub async fn run_next(
    state: &ServiceContext,
    worker: &str,
    queue: Option<&str>,
) -> Result<bool, JobError> {
    Ok(run_batch(state, worker, queue, None).await? > 0)
}

/// Claims a batch of due jobs and runs them one after another; when `stop` turns true, gives
/// back those not started yet. Returns how many were claimed.
async fn run_batch(
    state: &ServiceContext,
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
    // Redemptions claimed together run together: several in one write transaction.
    let redemptions: Vec<&Job> = claimed.iter().filter(|j| j.kind == REDEMPTION).collect();
    let together = redemptions.len() > 1;
    let run = async {
        if together {
            // Each job of the batch is timed as the batch: they ran together.
            let started = std::time::Instant::now();
            let outcomes = execute_redemptions(state, &redemptions, worker).await;
            for (job, outcome) in redemptions.iter().zip(outcomes) {
                finish(state, worker, job, outcome, started).await;
            }
        }
        let rest = claimed
            .iter()
            .filter(|j| !(together && j.kind == REDEMPTION));
        let rest: Vec<&Job> = rest.collect();
        for (n, job) in rest.iter().copied().enumerate() {
            if stop.is_some_and(|stop| *stop.borrow()) {
                let unstarted: Vec<JobId> = rest[n..].iter().map(|j| j.id.clone()).collect();
                if let Err(e) = jobs::release(state.store(), &unstarted, worker, state.now()).await
                {
                    // Their leases run out and the reaper hands them on.
                    tracing::warn!(error = ?e, "could not give back the jobs of a stopping worker");
                }
                return;
            }
            let mut held = held.clone();
            let run = async {
                let started = std::time::Instant::now();
                let outcome = execute(state, job, worker).await;
                finish(state, worker, job, outcome, started).await;
            }
            .instrument(crate::telemetry::job_span(job));
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
    state: &ServiceContext,
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

impl Disposition {
    /// The outcome label of the job-run metric.
    fn label(&self) -> &'static str {
        match self {
            Disposition::Done => "done",
            Disposition::Postponed(_) => "postponed",
            Disposition::Failed(Some(_)) => "retry",
            Disposition::Failed(None) => "dead",
        }
    }
}

/// Records a job's outcome. While the database is unavailable it keeps trying (the heartbeat
/// keeps the lease meanwhile), so that a job that finished is not run again after an outage.
async fn finish(
    state: &ServiceContext,
    worker: &str,
    job: &Job,
    outcome: Result<Completion, JobError>,
    started: std::time::Instant,
) {
    let now = state.now();
    let disposition = match &outcome {
        Ok(Completion::InJob) => {
            crate::telemetry::job_ran(&job.kind, "done", started.elapsed());
            return;
        }
        Ok(Completion::ByWorker) => Disposition::Done,
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
    crate::telemetry::job_ran(&job.kind, disposition.label(), started.elapsed());
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

/// A background worker loop over one queue: runs due jobs a batch at a time (claiming again
/// at once only after a full batch), sleeps until woken (a wake-up given while it was busy is
/// kept for it) or until the poll interval has passed, and returns jobs whose lease ran out to the queue once per poll interval (not before
/// every claim). A claim that fails (the database unavailable for a moment) is tried again after
/// a short backoff, not after a whole poll interval. When `stop` turns true it finishes the job
/// in hand, gives back the rest of its batch and returns; it also returns once the store is
/// closed.
pub async fn work(
    state: ServiceContext,
    worker: String,
    queue: &'static str,
    mut stop: watch::Receiver<bool>,
) {
    let poll = StdDuration::from_secs(u64::from(state.config().job_poll_seconds.get()));
    let wakeup = state.job_wakeup(queue);
    let mut next_reap = tokio::time::Instant::now();
    let mut retry = Backoff::new(poll);
    while !*stop.borrow() {
        if tokio::time::Instant::now() >= next_reap {
            reap(&state).await;
            next_reap = tokio::time::Instant::now() + poll;
        }
        let limit = batch_size(Some(queue)) as usize;
        let wait = match run_batch(&state, &worker, Some(queue), Some(&stop)).await {
            // A full batch: more may be due.
            Ok(claimed) if claimed == limit => {
                retry.reset();
                continue;
            }
            // Nothing else was due at the claim: a job enqueued since has left a wake-up,
            // so wait for one instead of claiming again for nothing.
            Ok(_) => {
                retry.reset();
                None
            }
            Err(_) if state.store().is_closed() => return,
            Err(e) => {
                let wait = retry.next();
                tracing::warn!(error = %e, retry_in = ?wait, "could not claim jobs");
                Some(wait)
            }
        };
        match wait {
            Some(wait) => tokio::select! {
                changed = stop.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(wait) => {}
            },
            None => tokio::select! {
                () = wakeup.notified() => {}
                // A dropped sender means the server is gone: stop as well.
                changed = stop.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(poll) => {}
            },
        }
    }
}

/// The wait before trying again something that failed because the database was unavailable:
/// 100 ms, doubling after each failure in a row, at most `max`.
struct Backoff {
    next: StdDuration,
    max: StdDuration,
}

impl Backoff {
    const FIRST: StdDuration = StdDuration::from_millis(100);

    fn new(max: StdDuration) -> Self {
        Self {
            next: Self::FIRST.min(max),
            max,
        }
    }

    fn next(&mut self) -> StdDuration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }
}

/// On PostgreSQL, relays `NOTIFY` from other nodes to this process's workers (one connection
/// per process, not per worker). Returns at once on SQLite, where enqueuing is in-process.
/// While the listener cannot reconnect it tries again after a short backoff (the workers poll
/// meanwhile); it returns when `stop` turns true or is dropped, or once the store is closed,
/// letting go of its connection (closing the store waits for every connection to come back).
pub async fn relay_notifications(state: ServiceContext, mut stop: watch::Receiver<bool>) {
    let poll = StdDuration::from_secs(u64::from(state.config().job_poll_seconds.get()));
    let mut listener = match state.store().job_listener().await {
        Ok(Some(listener)) => listener,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = ?e, "cannot LISTEN for jobs; workers poll instead");
            return;
        }
    };
    let mut retry = Backoff::new(poll);
    loop {
        let wait = tokio::select! {
            notification = listener.recv() => match notification {
                Ok(notification) => {
                    retry.reset();
                    state.store().job_wakeups().wake_for_notification(notification.payload());
                    continue;
                }
                Err(_) if state.store().is_closed() => return,
                Err(e) => {
                    let wait = retry.next();
                    tracing::warn!(error = ?e, retry_in = ?wait, "job notifications interrupted; retrying");
                    wait
                }
            },
            _ = stop.changed() => return,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    #[test]
    fn the_backoff_doubles_up_to_its_limit_and_starts_again_after_a_success() {
        let mut backoff = Backoff::new(Duration::from_millis(500));
        let waits: Vec<u128> = (0..5).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(100));
        assert_eq!(
            Backoff::new(Duration::from_millis(50)).next(),
            Duration::from_millis(50)
        );
    }
}
