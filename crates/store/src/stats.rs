//! What an operator's metrics read at scrape time: the job queue's size by queue, kind and
//! status, how long its oldest due job has waited, and the use of the connection pool. One
//! short read transaction; nothing here is tenant data (no organization, no ids).

use idshare_domain::time_format::to_unix_micros;
use time::OffsetDateTime;

use crate::{Store, StoreError, db::on_conn};

/// Jobs of one queue and kind in one status (`queued`, `running` or `dead`; finished jobs are
/// not counted).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCount {
    pub queue: String,
    pub kind: String,
    pub status: String,
    pub jobs: i64,
}

/// The queue as a scrape sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    pub counts: Vec<JobCount>,
    /// Per queue with a due job (`queued`, `run_at` passed): seconds since the oldest became
    /// due.
    pub oldest_due_seconds: Vec<(String, f64)>,
}

/// Counts the unfinished and dead jobs, and the age of the oldest due job of each queue.
/// Both statements read the `(status, run_at)` index.
pub async fn queue_stats(store: &Store, now: OffsetDateTime) -> Result<QueueStats, StoreError> {
    let mut tx = store.begin_read().await?;
    let counts: Vec<JobCount> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT queue, kind, status, COUNT(*) AS jobs FROM jobs \
             WHERE status IN ('queued', 'running', 'dead') \
             GROUP BY queue, kind, status ORDER BY queue, kind, status",
        )
        .fetch_all(conn)
        .await?
    });
    let now_micros = to_unix_micros(now);
    let oldest: Vec<(String, i64)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT queue, MIN(run_at) FROM jobs WHERE status = 'queued' AND run_at <= $1 \
             GROUP BY queue ORDER BY queue",
        )
        .bind(now_micros)
        .fetch_all(conn)
        .await?
    });
    drop(tx);
    let oldest_due_seconds = oldest
        .into_iter()
        .map(|(queue, run_at)| {
            let seconds = (now_micros - run_at).max(0) as f64 / 1e6;
            (queue, seconds)
        })
        .collect();
    Ok(QueueStats {
        counts,
        oldest_due_seconds,
    })
}

/// The database connection pool of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl PoolUsage {
    pub fn in_use(&self) -> u32 {
        self.open.saturating_sub(self.idle)
    }
}
