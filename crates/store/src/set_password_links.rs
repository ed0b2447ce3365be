//! One-time links that set a user's password: an invitation's or a reset's. The link carries a
//! random token; only its SHA-256 is stored, so the database holds nothing that opens it. A
//! link works once, until it expires; a newer link of the same user replaces it.

use idshare_domain::{
    id::{SetPasswordLinkId, UserId},
    people::SET_PASSWORD_LINK_LIFETIME,
    time_format::{from_unix_micros, to_unix_micros},
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{StoreError, Tx, db::on_conn};

/// The path of the dashboard page a link's token opens.
pub fn path(token: &str) -> String {
    format!("/dashboard/set-password/{token}")
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new link for `user`, valid for [`SET_PASSWORD_LINK_LIFETIME`]; the user's earlier unused
/// links stop working. Returns the token, which is shown once and never stored.
pub async fn create(tx: &mut Tx, user: &UserId, now: OffsetDateTime) -> Result<String, StoreError> {
    retire(tx, user, now).await?;
    let token = crate::random_secret("spl");
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO set_password_links (id, token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(SetPasswordLinkId::generate().as_str())
        .bind(hash(&token))
        .bind(user.as_str())
        .bind(to_unix_micros(now))
        .bind(to_unix_micros(now + SET_PASSWORD_LINK_LIFETIME))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(token)
}

/// Ends the user's unused links (a newer one, a removal, a disabling).
pub async fn retire(tx: &mut Tx, user: &UserId, now: OffsetDateTime) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE set_password_links SET expires_at = $2 \
             WHERE user_id = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(user.as_str())
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// What a token opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Usable by the user it was made for.
    Usable {
        id: SetPasswordLinkId,
        user_id: UserId,
    },
    Used,
    Expired,
    Unknown,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    user_id: String,
    expires_at: i64,
    used_at: Option<i64>,
}

/// The state of the link with `token` at `now`; `lock` keeps its row until the transaction
/// ends (PostgreSQL `FOR UPDATE`), so that it is used once.
pub async fn find(
    tx: &mut Tx,
    token: &str,
    now: OffsetDateTime,
    lock: bool,
) -> Result<LinkState, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT id, user_id, expires_at, used_at FROM set_password_links WHERE token_hash = $1{}",
        tx.lock_clause(lock)
    ));
    let row: Option<Row> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(hash(token))
            .fetch_optional(conn)
            .await?
    });
    Ok(match row {
        None => LinkState::Unknown,
        Some(row) if row.used_at.is_some() => LinkState::Used,
        Some(row) if from_unix_micros(row.expires_at) <= now => LinkState::Expired,
        Some(row) => LinkState::Usable {
            id: SetPasswordLinkId::parse(&row.id).map_err(StoreError::corrupt)?,
            user_id: UserId::parse(&row.user_id).map_err(StoreError::corrupt)?,
        },
    })
}

/// Marks the link used; `false` when it was already.
pub async fn consume(
    tx: &mut Tx,
    id: &SetPasswordLinkId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let used = on_conn!(tx, |conn| {
        sqlx::query("UPDATE set_password_links SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(id.as_str())
            .bind(to_unix_micros(now))
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(used > 0)
}
