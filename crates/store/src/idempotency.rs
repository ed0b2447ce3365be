//! Idempotency records: the first answer to a POST with an `Idempotency-Key`, per caller,
//! replayed for the retention period. Stored answers are sealed.
//!
//! A key is claimed before its request runs, in its own short transaction, so that a duplicate
//! arriving meanwhile sees the claim. The claim is held under a lease that its node renews
//! while the request runs ([`renew`]); a retry after the lease ran out (the node died, or lost
//! the database) takes the claim over. The request runs inside [`Held::run`]: a write
//! transaction it commits is parked there instead, and commits together with the stored answer
//! ([`finish`]), so that no change is committed without its answer, and none is committed by a
//! request whose claim was taken over.

use std::{
    future::Future,
    sync::{Arc, Mutex, PoisonError},
};

use idshare_domain::time_format::to_unix_micros;
use time::{Duration, OffsetDateTime};

use crate::{Backend, Store, StoreError, Tx, db::on_conn};

/// What a caller presenting a key must do.
#[derive(Debug)]
pub enum Claim {
    /// The key is new, expired, or no longer held by its first request (the lease ran out):
    /// run the request inside [`Held::run`], then [`finish`], [`release`] or [`discard`].
    Fresh(Held),
    /// The first request finished: replay its answer.
    Replay { status: u16, body: Vec<u8> },
    /// The first request with this key is still running.
    InProgress,
    /// The key was used with different parameters.
    Mismatch,
}

/// A claim this process holds while its request runs, and the transaction the request
/// committed, parked until the answer is stored with it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Held(Arc<HeldClaim>);

#[derive(Debug)]
struct HeldClaim {
    caller_id: String,
    key: String,
    /// Tells this holder from one that took the claim over.
    token: String,
    parked: Mutex<Option<Tx>>,
}

tokio::task_local! {
    static REQUEST: Held;
}

impl Held {
    /// Runs the request with this claim in force: write transactions it commits are parked.
    pub async fn run<F: Future>(&self, request: F) -> F::Output {
        REQUEST.scope(self.clone(), request).await
    }

    /// Whether the request committed a change that is parked until its answer is stored.
    pub fn wrote(&self) -> bool {
        self.parked().is_some()
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, Option<Tx>> {
        self.0.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_parked(&self) -> Option<Tx> {
        self.parked().take()
    }
}

fn current() -> Option<Held> {
    REQUEST.try_with(Held::clone).ok()
}

/// [`Tx::commit`]: parks a write transaction of an idempotent request; commits anything else.
pub(crate) async fn commit_or_park(tx: Tx) -> Result<(), StoreError> {
    match current() {
        Some(held) if tx.writes() => {
            commit_parked_of(&held).await?;
            *held.parked() = Some(tx);
            Ok(())
        }
        _ => tx.commit_now().await,
    }
}

/// Commits the transaction the current request parked, if any: a request that begins another
/// transaction after it committed one must not wait on its own write lock (SQLite), and must
/// read what it wrote.
pub(crate) async fn commit_parked() -> Result<(), StoreError> {
    match current() {
        Some(held) => commit_parked_of(&held).await,
        None => Ok(()),
    }
}

async fn commit_parked_of(held: &Held) -> Result<(), StoreError> {
    let Some(mut tx) = held.take_parked() else {
        return Ok(());
    };
    tracing::debug!("an idempotent request began a transaction after it committed one");
    // A request whose claim was taken over commits nothing; its answer is then a conflict.
    if holds(&mut tx, held).await? {
        tx.commit_now().await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    request_hash: Vec<u8>,
    status_code: Option<i64>,
    response_sealed: Option<Vec<u8>>,
    created_at: i64,
    lease_expires_at: Option<i64>,
}

pub(crate) fn body_context(caller_id: &str, key: &str) -> String {
    format!("idempotency:{caller_id}:{key}")
}

/// Claims `key` for `caller_id` until `now + lease`, in its own short transaction. A record
/// created before `expired_before` counts as absent.
pub async fn claim(
    store: &Store,
    caller_id: &str,
    key: &str,
    request_hash: &[u8],
    now: OffsetDateTime,
    expired_before: OffsetDateTime,
    lease: Duration,
) -> Result<Claim, StoreError> {
    let token = crate::random_secret("claim");
    let now_micros = to_unix_micros(now);
    let lease_until = to_unix_micros(now + lease);
    let mut tx = store.begin_write_now().await?;
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT request_hash, status_code, response_sealed, created_at, lease_expires_at \
         FROM idempotency_records WHERE caller_id = $1 AND idempotency_key = $2{}",
        tx.lock_clause(true)
    ));
    let existing: Option<RecordRow> = on_conn!(&mut tx, |conn| {
        sqlx::query_as(sql)
            .bind(caller_id)
            .bind(key)
            .fetch_optional(conn)
            .await?
    });
    let fresh = || {
        Claim::Fresh(Held(Arc::new(HeldClaim {
            caller_id: caller_id.to_owned(),
            key: key.to_owned(),
            token: token.clone(),
            parked: Mutex::new(None),
        })))
    };
    let claim = match existing {
        Some(row) if row.created_at < to_unix_micros(expired_before) => {
            // Deleting also drops the links of the old answer to the inquiries it concerned.
            on_conn!(&mut tx, |conn| {
                sqlx::query(
                    "DELETE FROM idempotency_records WHERE caller_id = $1 AND idempotency_key = $2",
                )
                .bind(caller_id)
                .bind(key)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO idempotency_records \
                     (caller_id, idempotency_key, request_hash, created_at, claim_token, lease_expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(caller_id)
                .bind(key)
                .bind(request_hash)
                .bind(now_micros)
                .bind(&token)
                .bind(lease_until)
                .execute(&mut *conn)
                .await?
                .rows_affected()
            });
            fresh()
        }
        Some(row) if row.request_hash != request_hash => Claim::Mismatch,
        Some(RecordRow {
            status_code: Some(status),
            response_sealed: Some(sealed),
            ..
        }) => {
            let body = store
                .crypto()
                .open_system(&sealed, &body_context(caller_id, key))?;
            Claim::Replay {
                status: u16::try_from(status).map_err(StoreError::corrupt)?,
                body,
            }
        }
        // Unfinished, and its holder stopped renewing: take it over. (No lease at all: a claim
        // made before leases existed.)
        Some(row) if row.lease_expires_at.is_none_or(|until| until <= now_micros) => {
            on_conn!(&mut tx, |conn| {
                sqlx::query(
                    "UPDATE idempotency_records SET claim_token = $1, lease_expires_at = $2, \
                     created_at = $3 WHERE caller_id = $4 AND idempotency_key = $5",
                )
                .bind(&token)
                .bind(lease_until)
                .bind(now_micros)
                .bind(caller_id)
                .bind(key)
                .execute(conn)
                .await?
                .rows_affected()
            });
            fresh()
        }
        Some(_) => Claim::InProgress,
        None => {
            // Two first requests can race to here on PostgreSQL; the primary key lets one win.
            let inserted = on_conn!(&mut tx, |conn| {
                sqlx::query(
                    "INSERT INTO idempotency_records \
                     (caller_id, idempotency_key, request_hash, created_at, claim_token, lease_expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                )
                .bind(caller_id)
                .bind(key)
                .bind(request_hash)
                .bind(now_micros)
                .bind(&token)
                .bind(lease_until)
                .execute(conn)
                .await?
                .rows_affected()
            });
            if inserted == 1 {
                fresh()
            } else {
                Claim::InProgress
            }
        }
    };
    tx.commit_now().await?;
    Ok(claim)
}

/// Extends the lease of a claim whose request is still running (the heartbeat). False when the
/// claim is no longer held: it was taken over or has finished.
pub async fn renew(store: &Store, held: &Held, until: OffsetDateTime) -> Result<bool, StoreError> {
    let mut tx = store.begin_write_now().await?;
    let renewed = on_conn!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE idempotency_records SET lease_expires_at = $1 \
             WHERE caller_id = $2 AND idempotency_key = $3 AND claim_token = $4",
        )
        .bind(to_unix_micros(until))
        .bind(&held.0.caller_id)
        .bind(&held.0.key)
        .bind(&held.0.token)
        .execute(conn)
        .await?
        .rows_affected()
    });
    tx.commit_now().await?;
    Ok(renewed == 1)
}

/// Whether `held` still holds its claim; on PostgreSQL the record stays locked until `tx`
/// ends, so that no retry takes the claim over before the commit.
async fn holds(tx: &mut Tx, held: &Held) -> Result<bool, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT claim_token FROM idempotency_records \
         WHERE caller_id = $1 AND idempotency_key = $2 AND claim_token = $3{}",
        tx.lock_clause(true)
    ));
    let found: Option<String> = on_conn!(tx, |conn| {
        sqlx::query_scalar(sql)
            .bind(&held.0.caller_id)
            .bind(&held.0.key)
            .bind(&held.0.token)
            .fetch_optional(conn)
            .await?
    });
    Ok(found.is_some())
}

/// The answer of a claimed request, to be stored.
#[derive(Debug)]
pub struct Answer<'a> {
    pub status: u16,
    pub body: &'a [u8],
    /// The inquiries the answer concerns: redacting one of them deletes the answer.
    pub inquiry_ids: &'a [String],
}

/// How [`finish`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    /// The answer is stored, and what the request wrote is committed with it.
    Stored,
    /// The claim was taken over by a retry: nothing the request wrote is committed.
    TakenOver,
    /// An inquiry the answer concerns was redacted meanwhile: what the request wrote is
    /// committed, the answer is not kept, and the key is free again.
    Withheld,
}

/// Stores the answer of a claimed request, in the transaction the request parked (or in a new
/// one when it wrote nothing), and commits them together. On an error nothing is committed.
pub async fn finish(
    store: &Store,
    held: &Held,
    answer: Answer<'_>,
) -> Result<Finished, StoreError> {
    let (caller_id, key) = (&held.0.caller_id, &held.0.key);
    let sealed = store
        .crypto()
        .seal_system(answer.body, &body_context(caller_id, key))?;
    let mut tx = match held.take_parked() {
        Some(tx) => tx,
        None => store.begin_write_now().await?,
    };
    if !holds(&mut tx, held).await? {
        return Ok(Finished::TakenOver);
    }
    if any_redacted(&mut tx, answer.inquiry_ids).await? {
        delete_claim(&mut tx, held).await?;
        tx.commit_now().await?;
        return Ok(Finished::Withheld);
    }
    on_conn!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE idempotency_records SET status_code = $1, response_sealed = $2, \
             claim_token = NULL, lease_expires_at = NULL \
             WHERE caller_id = $3 AND idempotency_key = $4",
        )
        .bind(i64::from(answer.status))
        .bind(sealed)
        .bind(caller_id)
        .bind(key)
        .execute(&mut *conn)
        .await?;
        for inquiry_id in answer.inquiry_ids {
            sqlx::query(
                "INSERT INTO idempotency_record_inquiries (caller_id, idempotency_key, inquiry_id) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(caller_id)
            .bind(key)
            .bind(inquiry_id)
            .execute(&mut *conn)
            .await?;
        }
    });
    tx.commit_now().await?;
    Ok(Finished::Stored)
}

/// Whether one of `inquiry_ids` is redacted. On PostgreSQL the rows are share-locked until the
/// transaction ends, so that a redaction running meanwhile either finished before (and is seen
/// here) or starts after the commit (and deletes the answer).
async fn any_redacted(tx: &mut Tx, inquiry_ids: &[String]) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT redacted_at FROM inquiries WHERE id = $1{}",
        if tx.backend() == Backend::Postgres {
            " FOR SHARE"
        } else {
            ""
        }
    );
    for inquiry_id in inquiry_ids {
        let redacted_at: Option<Option<i64>> = on_conn!(tx, |conn| {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
                .bind(inquiry_id)
                .fetch_optional(conn)
                .await?
        });
        if redacted_at.flatten().is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn delete_claim(tx: &mut Tx, held: &Held) -> Result<bool, StoreError> {
    let deleted = on_conn!(tx, |conn| {
        sqlx::query(
            "DELETE FROM idempotency_records \
             WHERE caller_id = $1 AND idempotency_key = $2 AND claim_token = $3",
        )
        .bind(&held.0.caller_id)
        .bind(&held.0.key)
        .bind(&held.0.token)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(deleted == 1)
}

/// Frees the key of a request whose answer is not worth replaying (a server error), so that a
/// retry runs again. What the request wrote commits with it, as it would without a key —
/// unless the claim was taken over meanwhile.
pub async fn release(store: &Store, held: &Held) -> Result<(), StoreError> {
    let mut tx = match held.take_parked() {
        Some(tx) => tx,
        None => store.begin_write_now().await?,
    };
    if delete_claim(&mut tx, held).await? {
        tx.commit_now().await?;
    }
    Ok(())
}

/// Rolls back what the request wrote and frees its key (its answer could not be stored).
pub async fn discard(store: &Store, held: &Held) -> Result<(), StoreError> {
    drop(held.take_parked());
    release(store, held).await
}

/// Deletes every stored answer that concerns `inquiry_id` (redaction).
pub async fn forget_inquiry(tx: &mut Tx, inquiry_id: &str) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "DELETE FROM idempotency_records WHERE EXISTS (\
             SELECT 1 FROM idempotency_record_inquiries l WHERE l.inquiry_id = $1 \
             AND l.caller_id = idempotency_records.caller_id \
             AND l.idempotency_key = idempotency_records.idempotency_key)",
        )
        .bind(inquiry_id)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Deletes records created before `before` (retention), except a claim whose request still
/// runs at `now` (its lease is held): deleting it would make that request's change look taken
/// over, and be refused.
pub async fn purge(
    store: &Store,
    before: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut tx = store.begin_write_now().await?;
    let deleted = on_conn!(&mut tx, |conn| {
        sqlx::query(
            "DELETE FROM idempotency_records WHERE created_at < $1 \
             AND (status_code IS NOT NULL OR lease_expires_at IS NULL OR lease_expires_at <= $2)",
        )
        .bind(to_unix_micros(before))
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    tx.commit_now().await?;
    Ok(deleted)
}
