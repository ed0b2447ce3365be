//! Confirmation codes for phone numbers and email addresses: only a salted hash of the code is
//! kept, with an attempt counter and an expiry, and the value the code was sent to, sealed under
//! the inquiry's data key (so a confirmation can be tied to the value it confirmed, and is
//! crypto-shredded with the inquiry).

use idshare_domain::{
    id::InquiryId,
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{Crypto, StoreError, Tx, db::on_conn, inquiries};

#[derive(Debug, Clone)]
pub struct Confirmation {
    /// SHA-256 of the salt and the code, lowercase hex.
    pub code_hash: String,
    pub code_salt: String,
    /// The normalized value the code was sent to; `None` once the inquiry is redacted (or for a
    /// row written before values were kept).
    pub value: Option<String>,
    pub attempts: u32,
    pub expires_at: OffsetDateTime,
    pub confirmed_at: Option<OffsetDateTime>,
    /// When this code was sent.
    pub created_at: OffsetDateTime,
}

/// What [`start`] stores.
#[derive(Debug, Clone, Copy)]
pub struct NewCode<'a> {
    pub code_hash: &'a str,
    pub code_salt: &'a str,
    /// The normalized destination (E.164 number, normalized address); sealed before storing.
    pub value: &'a str,
    pub expires_at: OffsetDateTime,
}

fn context(inquiry_id: &InquiryId, field_key: &str) -> String {
    format!("{inquiry_id}:confirmation:{field_key}")
}

/// Starts (or restarts, resetting attempts and any earlier confirmation) a confirmation for
/// `field_key`.
pub async fn start(
    tx: &mut Tx,
    crypto: &Crypto,
    inquiry_id: &InquiryId,
    field_key: &str,
    code: NewCode<'_>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let key = inquiries::data_key(tx, crypto, inquiry_id.as_str())
        .await?
        .ok_or_else(|| StoreError::corrupt("inquiry has no data key"))?;
    let sealed = key.seal(code.value.as_bytes(), &context(inquiry_id, field_key))?;
    on_conn!(tx, |conn| {
        sqlx::query("DELETE FROM confirmation_codes WHERE inquiry_id = $1 AND field_key = $2")
            .bind(inquiry_id.as_str())
            .bind(field_key)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO confirmation_codes (inquiry_id, field_key, code_hash, code_salt, \
             value_sealed, attempts, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
        )
        .bind(inquiry_id.as_str())
        .bind(field_key)
        .bind(code.code_hash)
        .bind(code.code_salt)
        .bind(sealed)
        .bind(to_unix_micros(code.expires_at))
        .bind(to_unix_micros(now))
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

type Row = (
    String,
    String,
    String,
    Option<Vec<u8>>,
    i64,
    i64,
    Option<i64>,
    i64,
);

const COLUMNS: &str = "field_key, code_hash, code_salt, value_sealed, attempts, expires_at, \
                       confirmed_at, created_at";

fn decode(
    inquiry_id: &InquiryId,
    key: Option<&crate::DataKey>,
    row: Row,
) -> Result<(String, Confirmation), StoreError> {
    let (field_key, code_hash, code_salt, sealed, attempts, expires_at, confirmed_at, created_at) =
        row;
    let value = match (key, sealed) {
        (Some(key), Some(sealed)) => {
            let plain = key.open(&sealed, &context(inquiry_id, &field_key))?;
            Some(String::from_utf8(plain).map_err(StoreError::corrupt)?)
        }
        _ => None,
    };
    let confirmation = Confirmation {
        code_hash,
        code_salt,
        value,
        attempts: u32::try_from(attempts).map_err(StoreError::corrupt)?,
        expires_at: from_unix_micros(expires_at),
        confirmed_at: confirmed_at.map(from_unix_micros),
        created_at: from_unix_micros(created_at),
    };
    Ok((field_key, confirmation))
}

/// The current code of `field_key`, with its value decrypted.
pub async fn get(
    tx: &mut Tx,
    crypto: &Crypto,
    inquiry_id: &InquiryId,
    field_key: &str,
) -> Result<Option<Confirmation>, StoreError> {
    let row: Option<Row> = on_conn!(tx, |conn| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM confirmation_codes WHERE inquiry_id = $1 AND field_key = $2"
        )))
        .bind(inquiry_id.as_str())
        .bind(field_key)
        .fetch_optional(conn)
        .await?
    });
    let Some(row) = row else {
        return Ok(None);
    };
    let key = inquiries::data_key(tx, crypto, inquiry_id.as_str()).await?;
    decode(inquiry_id, key.as_ref(), row).map(|(_, c)| Some(c))
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

/// Removes the code of `field_key` if it is still the one hashed as `code_hash` (a code that
/// could not be delivered).
pub async fn discard(
    tx: &mut Tx,
    inquiry_id: &InquiryId,
    field_key: &str,
    code_hash: &str,
) -> Result<bool, StoreError> {
    let removed = on_conn!(tx, |conn| {
        sqlx::query(
            "DELETE FROM confirmation_codes WHERE inquiry_id = $1 AND field_key = $2 \
             AND code_hash = $3 AND confirmed_at IS NULL",
        )
        .bind(inquiry_id.as_str())
        .bind(field_key)
        .bind(code_hash)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(removed > 0)
}

/// The field keys of an inquiry confirmed by code, whatever value they were confirmed for.
/// Prefer [`confirmed_values`] and compare with the inquiry's current values: a confirmation
/// is only worth something for the value the code was sent to.
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

/// The confirmed fields of an inquiry with the (normalized) value each was confirmed for, by
/// field key. Empty once the inquiry is redacted.
pub async fn confirmed_values(
    tx: &mut Tx,
    crypto: &Crypto,
    inquiry_id: &InquiryId,
) -> Result<Vec<(String, Confirmation)>, StoreError> {
    let rows: Vec<Row> = on_conn!(tx, |conn| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM confirmation_codes \
             WHERE inquiry_id = $1 AND confirmed_at IS NOT NULL ORDER BY field_key"
        )))
        .bind(inquiry_id.as_str())
        .fetch_all(conn)
        .await?
    });
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let Some(key) = inquiries::data_key(tx, crypto, inquiry_id.as_str()).await? else {
        return Ok(vec![]);
    };
    rows.into_iter()
        .map(|row| decode(inquiry_id, Some(&key), row))
        .collect()
}
