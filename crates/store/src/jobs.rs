//! The job queue: one `jobs` table in the application database, so a job is enqueued in the
//! same transaction as the change that calls for it. A worker claims a few due jobs at once
//! under a short lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so any number of nodes share the
//! queue; SQLite: the single writer lock of `BEGIN IMMEDIATE`) and extends the leases of the
//! jobs it holds while it runs them; a lease that runs out (a crashed worker) returns the job to
//! the queue; failures retry with exponential backoff and jitter until `max_attempts`, then the
//! job is kept as `dead`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use idshare_domain::{
    id::JobId,
    time_format::{from_unix_micros, to_unix_micros},
};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::{Backend, Store, StoreError, Tx, db::on_conn};

/// The PostgreSQL channel workers listen on; a notification, whose payload names a queue,
/// means "there may be work in that queue".
pub const NOTIFY_CHANNEL: &str = "idshare_jobs";

/// This process's wake-ups of idle workers, one per queue. A wake-up is a permit
/// ([`Notify::notify_one`]): given while every worker of the queue is busy, it is kept, and the
/// next worker to go idle finds it and looks for work at once instead of sleeping until its
/// poll. A commit wakes one worker per queue it enqueued to; a worker that claims a full batch
/// wakes the next one, so more join in while work remains.
#[derive(Debug, Clone)]
pub struct JobWakeups(Arc<Wakeups>);

#[derive(Debug)]
struct Wakeups {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
    /// Tags this process's `NOTIFY`s, so that its listener skips what its commits already woke.
    origin: String,
}

impl Default for JobWakeups {
    fn default() -> Self {
        Self(Arc::new(Wakeups {
            queues: Mutex::default(),
            origin: format!("{:016x}", rand::random::<u64>()),
        }))
    }
}

impl JobWakeups {
    /// The wake-up the idle workers of `queue` wait on.
    pub fn of(&self, queue: &str) -> Arc<Notify> {
        let mut queues = self.0.queues.lock().unwrap_or_else(PoisonError::into_inner);
        queues.entry(queue.to_owned()).or_default().clone()
    }

    /// Wakes one idle worker of `queue`, or the next one to go idle.
    pub fn wake(&self, queue: &str) {
        self.of(queue).notify_one();
    }

    /// Wakes a worker for a `NOTIFY` payload (`<queue> <origin>`) from another process; one of
    /// this process's own is skipped.
    pub fn wake_for_notification(&self, payload: &str) {
        let (queue, origin) = payload.split_once(' ').unwrap_or((payload, ""));
        if origin != self.0.origin {
            self.wake(queue);
        }
    }

    fn notification(&self, queue: &str) -> String {
        format!("{queue} {}", self.0.origin)
    }
}

#[derive(Debug)]
pub struct NewJob<'a> {
    pub queue: &'a str,
    pub kind: &'a str,
    pub payload: &'a serde_json::Value,
    /// At most one job with this key ever exists (e.g. one pipeline run per submission).
    pub dedupe_key: Option<&'a str>,
    pub run_at: OffsetDateTime,
    pub max_attempts: u32,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Including the current one.
    pub attempts: u32,
    pub max_attempts: u32,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    queue: String,
    kind: String,
    payload: String,
    attempts: i64,
    max_attempts: i64,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(row: JobRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: JobId::parse(&row.id).map_err(StoreError::corrupt)?,
            queue: row.queue,
            kind: row.kind,
            payload: serde_json::from_str(&row.payload).map_err(StoreError::corrupt)?,
            attempts: u32::try_from(row.attempts).map_err(StoreError::corrupt)?,
            max_attempts: u32::try_from(row.max_attempts).map_err(StoreError::corrupt)?,
        })
    }
}

/// Enqueues a job in the caller's transaction. Returns `None` when a job with the same
/// dedupe key already exists.
pub async fn enqueue(
    tx: &mut Tx,
    job: NewJob<'_>,
    now: OffsetDateTime,
) -> Result<Option<JobId>, StoreError> {
    let id = JobId::generate();
    let micros = to_unix_micros(now);
    let inserted = on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO jobs (id, queue, kind, payload, status, attempts, max_attempts, run_at, \
             dedupe_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(job.queue)
        .bind(job.kind)
        .bind(job.payload.to_string())
        .bind(i64::from(job.max_attempts))
        .bind(to_unix_micros(job.run_at))
        .bind(job.dedupe_key)
        .bind(micros)
        .execute(conn)
        .await?
        .rows_affected()
    });
    if inserted == 0 {
        return Ok(None);
    }
    wake_on_commit(tx, job.queue).await?;
    Ok(Some(id))
}

/// Has the commit of `tx` wake a worker of `queue`: this process's at once, other PostgreSQL
/// nodes' through `NOTIFY` (delivered to listeners only if the transaction commits). Once per
/// queue and transaction.
async fn wake_on_commit(tx: &mut Tx, queue: &str) -> Result<(), StoreError> {
    if tx.enqueued_to.iter().any(|q| q == queue) {
        return Ok(());
    }
    tx.enqueued_to.push(queue.to_owned());
    let notification = tx.job_wakeups.notification(queue);
    if let crate::db::TxConn::Postgres(conn) = &mut tx.conn {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFY_CHANNEL)
            .bind(notification)
            .execute(&mut **conn)
            .await?;
    }
    Ok(())
}

/// Claims up to `limit` due jobs of `queue` (every queue when `None`) for `worker`, oldest
/// first, leasing each until `now + lease`, in one statement. Under concurrent claimers each job
/// is claimed by one of them only (PostgreSQL: the rows are locked, and rows another claimer
/// locked are skipped; SQLite: claims are serialized by the write lock).
pub async fn claim_batch(
    store: &Store,
    worker: &str,
    queue: Option<&str>,
    limit: u32,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Vec<Job>, StoreError> {
    let mut tx = store.begin_write().await?;
    let skip_locked = if tx.backend() == Backend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $3 \
                      AND (CAST($4 AS TEXT) IS NULL OR queue = $4) \
                      ORDER BY run_at, id LIMIT $5{skip_locked}) \
         RETURNING id, queue, kind, payload, attempts, max_attempts, run_at"
    ));
    let rows: Vec<ClaimedRow> = on_conn!(&mut tx, |conn| {
        sqlx::query_as(sql)
            .bind(worker)
            .bind(to_unix_micros(now + lease))
            .bind(to_unix_micros(now))
            .bind(queue)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?
    });
    tx.commit().await?;
    // RETURNING gives no order: run them oldest first, as claimed.
    let mut rows = rows;
    rows.sort_by(|a, b| (a.run_at, &a.job.id).cmp(&(b.run_at, &b.job.id)));
    rows.into_iter().map(|row| Job::try_from(row.job)).collect()
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    job: JobRow,
    run_at: i64,
}

/// Extends the leases of every job `worker` holds to `until` (the heartbeat of the worker
/// running them) and returns those it still holds: a job missing from the answer ran out of its
/// lease and was handed on.
pub async fn extend_held(
    store: &Store,
    worker: &str,
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Vec<JobId>, StoreError> {
    let mut tx = store.begin_write().await?;
    let held: Vec<String> = on_conn!(&mut tx, |conn| {
        sqlx::query_scalar(
            "UPDATE jobs SET locked_until = $1, updated_at = $2 \
             WHERE locked_by = $3 AND status = 'running' RETURNING id",
        )
        .bind(to_unix_micros(until))
        .bind(to_unix_micros(now))
        .bind(worker)
        .fetch_all(conn)
        .await?
    });
    tx.commit().await?;
    held.iter()
        .map(|id| JobId::parse(id).map_err(StoreError::corrupt))
        .collect()
}

/// Gives back jobs `worker` claimed but did not start (it is stopping): queued again, due at
/// once, without using up the attempt they were claimed with.
pub async fn release(
    store: &Store,
    ids: &[JobId],
    worker: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin_write().await?;
    for id in ids {
        on_conn!(&mut tx, |conn| {
            sqlx::query(
                "UPDATE jobs SET status = 'queued', attempts = attempts - 1, locked_by = NULL, \
                 locked_until = NULL, updated_at = $1 \
                 WHERE id = $2 AND locked_by = $3 AND status = 'running'",
            )
            .bind(to_unix_micros(now))
            .bind(id.as_str())
            .bind(worker)
            .execute(conn)
            .await?
            .rows_affected()
        });
    }
    tx.commit().await
}

/// Marks a job done, if `worker` still holds it.
pub async fn complete(
    store: &Store,
    id: &JobId,
    worker: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let completed = complete_in(&mut tx, id, worker, now).await?;
    tx.commit().await?;
    Ok(completed)
}

/// Marks a job `done` in the caller's transaction, for a job that commits its outcome and its
/// completion together; false when `worker` no longer holds it.
pub async fn complete_in(
    tx: &mut Tx,
    id: &JobId,
    worker: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE jobs SET status = 'done', locked_by = NULL, locked_until = NULL, updated_at = $1 \
             WHERE id = $2 AND locked_by = $3 AND status = 'running'",
        )
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .bind(worker)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Records a failure: back to the queue at `retry_at`, or `dead` when `retry_at` is `None`.
pub async fn fail(
    store: &Store,
    id: &JobId,
    worker: &str,
    error: &str,
    retry_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (status, run_at) = match retry_at {
        Some(at) => ("queued", to_unix_micros(at)),
        None => ("dead", to_unix_micros(now)),
    };
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE jobs SET status = $1, run_at = $2, last_error = $3, locked_by = NULL, \
             locked_until = NULL, updated_at = $4 WHERE id = $5 AND locked_by = $6",
        )
        .bind(status)
        .bind(run_at)
        .bind(error)
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .bind(worker)
        .execute(conn)
        .await?
        .rows_affected()
    });
    tx.commit().await
}

/// Returns a job to the queue at `retry_at` without using up the attempt it was claimed with:
/// for a run cut short by the database being unavailable, which says nothing about the job.
pub async fn postpone(
    store: &Store,
    id: &JobId,
    worker: &str,
    error: &str,
    retry_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at = $1, \
             last_error = $2, locked_by = NULL, locked_until = NULL, updated_at = $3 \
             WHERE id = $4 AND locked_by = $5 AND status = 'running'",
        )
        .bind(to_unix_micros(retry_at))
        .bind(error)
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .bind(worker)
        .execute(conn)
        .await?
        .rows_affected()
    });
    tx.commit().await
}

/// Returns jobs whose lease ran out (their worker died) to the queue; exhausted ones go dead
/// and are returned, so that what they held can be released.
pub async fn reap(store: &Store, now: OffsetDateTime) -> Result<Vec<Job>, StoreError> {
    let micros = to_unix_micros(now);
    let mut tx = store.begin_write().await?;
    let rows: Vec<JobRow> = on_conn!(&mut tx, |conn| {
        sqlx::query_as(
            "UPDATE jobs SET \
               status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
               last_error = 'lease expired: the worker stopped before finishing', \
               locked_by = NULL, locked_until = NULL, run_at = $1, updated_at = $1 \
             WHERE status = 'running' AND locked_until < $1 \
             RETURNING id, queue, kind, payload, attempts, max_attempts",
        )
        .bind(micros)
        .fetch_all(conn)
        .await?
    });
    tx.commit().await?;
    rows.into_iter()
        .map(Job::try_from)
        .filter(|job| job.as_ref().map_or(true, |j| j.attempts >= j.max_attempts))
        .collect()
}

/// A job as an operator sees it (`idshare jobs list`).
#[derive(Debug, Clone)]
pub struct JobSummary {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    /// `queued`, `running`, `done` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The cause of the last failure, as the worker recorded it.
    pub last_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct JobSummaryRow {
    id: String,
    queue: String,
    kind: String,
    status: String,
    attempts: i64,
    max_attempts: i64,
    run_at: i64,
    updated_at: i64,
    last_error: Option<String>,
}

impl TryFrom<JobSummaryRow> for JobSummary {
    type Error = StoreError;
    fn try_from(row: JobSummaryRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: JobId::parse(&row.id).map_err(StoreError::corrupt)?,
            queue: row.queue,
            kind: row.kind,
            status: row.status,
            attempts: u32::try_from(row.attempts).map_err(StoreError::corrupt)?,
            max_attempts: u32::try_from(row.max_attempts).map_err(StoreError::corrupt)?,
            run_at: from_unix_micros(row.run_at),
            updated_at: from_unix_micros(row.updated_at),
            last_error: row.last_error,
        })
    }
}

/// The jobs not yet `done` (or only the `dead` ones), the most recently changed first, at most
/// `limit`.
pub async fn list_unfinished(
    tx: &mut Tx,
    dead_only: bool,
    limit: u32,
) -> Result<Vec<JobSummary>, StoreError> {
    let rows: Vec<JobSummaryRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, queue, kind, status, attempts, max_attempts, run_at, updated_at, \
             last_error FROM jobs \
             WHERE status <> 'done' AND ($1 = 0 OR status = 'dead') \
             ORDER BY updated_at DESC, id LIMIT $2",
        )
        .bind(i64::from(dead_only))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?
    });
    rows.into_iter().map(JobSummary::try_from).collect()
}

/// Puts a `dead` job back in its queue with a fresh set of attempts, due at `now` (its last
/// error is kept until it runs again). Returns the job's queue, or `None` when `id` names no dead
/// job. The commit wakes a worker of that queue, here and on other PostgreSQL nodes.
pub async fn retry_dead(
    tx: &mut Tx,
    id: &JobId,
    now: OffsetDateTime,
) -> Result<Option<String>, StoreError> {
    let queue: Option<String> = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'dead' RETURNING queue",
        )
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
    });
    let Some(queue) = queue else {
        return Ok(None);
    };
    wake_on_commit(tx, &queue).await?;
    Ok(Some(queue))
}

/// The exponential backoff before attempt `attempts + 1`: 2^attempts seconds (capped at one
/// hour) plus up to 25 % random jitter, so retries of many jobs do not arrive in step.
pub fn backoff(attempts: u32) -> Duration {
    let base = 2_i64.saturating_pow(attempts.min(12)).min(3600);
    let jitter_ms = rand::random_range(0..=base * 250);
    Duration::seconds(base) + Duration::milliseconds(jitter_ms)
}

impl Store {
    /// A PostgreSQL listener on [`NOTIFY_CHANNEL`]; `None` on SQLite (woken in-process).
    pub async fn job_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        match self.pg_pool() {
            Some(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                Ok(Some(listener))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        pin::pin,
        task::{Context, Poll, Waker},
    };

    use super::{JobWakeups, backoff};

    /// Whether `future` is ready at its first poll.
    fn ready_at_once(future: impl Future<Output = ()>) -> bool {
        let mut context = Context::from_waker(Waker::noop());
        pin!(future).poll(&mut context) == Poll::Ready(())
    }

    #[test]
    fn a_wake_up_given_while_no_worker_waits_is_kept_for_the_next_one_of_its_queue() {
        let wakeups = JobWakeups::default();
        let default = wakeups.of("default");
        // Every worker is busy: nobody waits when the commit wakes the queue.
        wakeups.wake("default");
        assert!(!ready_at_once(wakeups.of("webhooks").notified()));
        assert!(ready_at_once(default.notified()));
        // Used up by the worker that found it.
        assert!(!ready_at_once(default.notified()));
    }

    #[test]
    fn a_process_skips_its_own_notifications() {
        let wakeups = JobWakeups::default();
        wakeups.wake_for_notification(&wakeups.notification("default"));
        assert!(!ready_at_once(wakeups.of("default").notified()));
        wakeups.wake_for_notification("default 0123456789abcdef");
        assert!(ready_at_once(wakeups.of("default").notified()));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0).whole_seconds() >= 1);
        assert!(backoff(3).whole_seconds() >= 8);
        assert!(backoff(30).whole_seconds() <= 3600 + 900);
        assert!(backoff(30).whole_seconds() >= 3600);
    }
}
