//! Confirmation codes for phone numbers and email addresses: only a salted hash is kept, with
//! an attempt counter and an expiry.

use idshare_domain::{
    id::InquiryId,
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{StoreError, Tx, db::on_conn};

#[derive(Debug, Clone)]
pub struct Confirmation {
    pub code_hash: String,
    pub attempts: u32,
    pub expires_at: OffsetDateTime,
    pub confirmed_at: Option<OffsetDateTime>,
}

/// Starts (or restarts, resetting attempts) a confirmation for `field_key`.
pub async fn start(
    tx: &mut Tx,
    inquiry_id: &InquiryId,
    field_key: &str,
    code_hash: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("DELETE FROM confirmation_codes WHERE inquiry_id = $1 AND field_key = $2")
            .bind(inquiry_id.as_str())
            .bind(field_key)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO confirmation_codes (inquiry_id, field_key, code_hash, attempts, expires_at, created_at) \
             VALUES ($1, $2, $3, 0, $4, $5)",
        )
        .bind(inquiry_id.as_str())
        .bind(field_key)
        .bind(code_hash)
        .bind(to_unix_micros(expires_at))
        .bind(to_unix_micros(now))
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

pub async fn get(
    tx: &mut Tx,
    inquiry_id: &InquiryId,
    field_key: &str,
) -> Result<Option<Confirmation>, StoreError> {
    let row: Option<(String, i64, i64, Option<i64>)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT code_hash, attempts, expires_at, confirmed_at FROM confirmation_codes \
             WHERE inquiry_id = $1 AND field_key = $2",
        )
        .bind(inquiry_id.as_str())
        .bind(field_key)
        .fetch_optional(conn)
        .await?
    });
    row.map(|(code_hash, attempts, expires_at, confirmed_at)| {
        Ok(Confirmation {
            code_hash,
            attempts: u32::try_from(attempts).map_err(StoreError::corrupt)?,
            expires_at: from_unix_micros(expires_at),
            confirmed_at: confirmed_at.map(from_unix_micros),
        })
    })
    .transpose()
}

/// Counts one attempt; when `confirmed`, records the confirmation.
pub async fn record_attempt(
    tx: &mut Tx,
    inquiry_id: &InquiryId,
    field_key: &str,
    confirmed: bool,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let confirmed_at = confirmed.then(|| to_unix_micros(now));
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE confirmation_codes SET attempts = attempts + 1, \
             confirmed_at = COALESCE(confirmed_at, $1) WHERE inquiry_id = $2 AND field_key = $3",
        )
        .bind(confirmed_at)
        .bind(inquiry_id.as_str())
        .bind(field_key)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// The field keys of an inquiry confirmed by code.
pub async fn confirmed_keys(
    tx: &mut Tx,
    inquiry_id: &InquiryId,
) -> Result<Vec<String>, StoreError> {
    let keys: Vec<String> = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT field_key FROM confirmation_codes WHERE inquiry_id = $1 AND confirmed_at IS NOT NULL \
             ORDER BY field_key",
        )
        .bind(inquiry_id.as_str())
        .fetch_all(conn)
        .await?
    });
    Ok(keys)
}
