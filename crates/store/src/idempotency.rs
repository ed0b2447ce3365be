//! Idempotency records: the first response to a POST with an `Idempotency-Key`, per caller,
//! replayed for the retention period. The record is claimed before the request runs, so
//! concurrent requests with one key produce one effect. Stored bodies are sealed.

use idshare_domain::time_format::to_unix_micros;
use time::OffsetDateTime;

use crate::{Store, StoreError, db::on_conn};

/// What a caller presenting a key must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or expired): run the request, then [`complete`] or [`release`].
    Fresh,
    /// The first request finished: replay its answer.
    Replay { status: u16, body: Vec<u8> },
    /// The first request with this key is still running.
    InProgress,
    /// The key was used with different parameters.
    Mismatch,
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    request_hash: Vec<u8>,
    status_code: Option<i64>,
    response_sealed: Option<Vec<u8>>,
    created_at: i64,
}

fn body_context(caller_id: &str, key: &str) -> String {
    format!("idempotency:{caller_id}:{key}")
}

/// Claims `key` for `caller_id`, in its own short transaction.
pub async fn claim(
    store: &Store,
    caller_id: &str,
    key: &str,
    request_hash: &[u8],
    now: OffsetDateTime,
    expired_before: OffsetDateTime,
) -> Result<Claim, StoreError> {
    let mut tx = store.begin_write().await?;
    let existing: Option<RecordRow> = on_conn!(&mut tx, |conn| {
        sqlx::query_as(
            "SELECT request_hash, status_code, response_sealed, created_at FROM idempotency_records \
             WHERE caller_id = $1 AND idempotency_key = $2",
        )
        .bind(caller_id)
        .bind(key)
        .fetch_optional(conn)
        .await?
    });
    let claim = match existing {
        Some(row) if row.created_at < to_unix_micros(expired_before) => {
            on_conn!(&mut tx, |conn| {
                sqlx::query(
                    "UPDATE idempotency_records SET request_hash = $1, status_code = NULL, \
                     response_sealed = NULL, object_id = NULL, created_at = $2 \
                     WHERE caller_id = $3 AND idempotency_key = $4",
                )
                .bind(request_hash)
                .bind(to_unix_micros(now))
                .bind(caller_id)
                .bind(key)
                .execute(conn)
                .await?
                .rows_affected()
            });
            Claim::Fresh
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
        Some(_) => Claim::InProgress,
        None => {
            // Two first requests can race to here on PostgreSQL; the primary key lets one win.
            let inserted = on_conn!(&mut tx, |conn| {
                sqlx::query(
                    "INSERT INTO idempotency_records (caller_id, idempotency_key, request_hash, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(caller_id)
                .bind(key)
                .bind(request_hash)
                .bind(to_unix_micros(now))
                .execute(conn)
                .await?
                .rows_affected()
            });
            if inserted == 1 {
                Claim::Fresh
            } else {
                Claim::InProgress
            }
        }
    };
    tx.commit().await?;
    Ok(claim)
}

/// Stores the answer of a claimed request. `object_id` lets redaction find and drop it.
pub async fn complete(
    store: &Store,
    caller_id: &str,
    key: &str,
    status: u16,
    body: &[u8],
    object_id: Option<&str>,
) -> Result<(), StoreError> {
    let sealed = store
        .crypto()
        .seal_system(body, &body_context(caller_id, key))?;
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE idempotency_records SET status_code = $1, response_sealed = $2, object_id = $3 \
             WHERE caller_id = $4 AND idempotency_key = $5",
        )
        .bind(i64::from(status))
        .bind(sealed)
        .bind(object_id)
        .bind(caller_id)
        .bind(key)
        .execute(conn)
        .await?
        .rows_affected()
    });
    tx.commit().await
}

/// Forgets a claim whose request did not produce an answer worth replaying.
pub async fn release(store: &Store, caller_id: &str, key: &str) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |conn| {
        sqlx::query("DELETE FROM idempotency_records WHERE caller_id = $1 AND idempotency_key = $2")
            .bind(caller_id)
            .bind(key)
            .execute(conn)
            .await?
            .rows_affected()
    });
    tx.commit().await
}

/// Deletes records older than `before` (retention).
pub async fn purge(store: &Store, before: OffsetDateTime) -> Result<u64, StoreError> {
    let mut tx = store.begin_write().await?;
    let deleted = on_conn!(&mut tx, |conn| {
        sqlx::query("DELETE FROM idempotency_records WHERE created_at < $1")
            .bind(to_unix_micros(before))
            .execute(conn)
            .await?
            .rows_affected()
    });
    tx.commit().await?;
    Ok(deleted)
}
