//! Signed-in dashboard browsers. The cookie carries a random token; only its SHA-256 is
//! stored. A session ends when it has been idle too long, when it reaches its absolute limit,
//! or when its user signs out.

use idshare_domain::{
    environment::Environment,
    id::{DashboardSessionId, OrgId, UserId},
    time_format::{from_unix_micros, to_unix_micros},
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::{
    StoreError, Tx,
    db::on_conn,
    users::{Role, User},
};

/// How long a session lasts without being used.
pub const IDLE_LIMIT: Duration = Duration::minutes(30);
/// How long a session lasts at most, however busy.
pub const ABSOLUTE_LIMIT: Duration = Duration::hours(12);

/// A live session with its user.
#[derive(Debug, Clone)]
pub struct DashboardSession {
    pub id: DashboardSessionId,
    pub user: User,
    pub environment: Environment,
    pub expires_at: OffsetDateTime,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Signs `user` in: a new session in `environment`; returns it and the cookie token.
pub async fn create(
    tx: &mut Tx,
    user: &User,
    environment: Environment,
    now: OffsetDateTime,
) -> Result<(DashboardSession, String), StoreError> {
    let token = crate::random_secret("dash");
    let id = DashboardSessionId::generate();
    let expires_at = now + IDLE_LIMIT;
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO dashboard_sessions (id, token_hash, user_id, environment, created_at, \
             last_seen_at, expires_at, absolute_expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
        )
        .bind(id.as_str())
        .bind(hash(&token))
        .bind(user.id.as_str())
        .bind(environment.as_str())
        .bind(to_unix_micros(now))
        .bind(to_unix_micros(expires_at))
        .bind(to_unix_micros(now + ABSOLUTE_LIMIT))
        .execute(conn)
        .await?
        .rows_affected()
    });
    let session = DashboardSession {
        id,
        user: user.clone(),
        environment,
        expires_at,
    };
    Ok((session, token))
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    environment: String,
    user_id: String,
    org_id: String,
    email: String,
    role: String,
    user_created_at: i64,
}

/// The live session of a cookie token, its idle expiry moved forward; `None` for an unknown,
/// expired or signed-out token.
pub async fn touch(
    tx: &mut Tx,
    token: &str,
    now: OffsetDateTime,
) -> Result<Option<DashboardSession>, StoreError> {
    let micros = to_unix_micros(now);
    let row: Option<Row> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT s.id, s.environment, u.id AS user_id, u.org_id, u.email, \
             u.role, u.created_at AS user_created_at \
             FROM dashboard_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.signed_out_at IS NULL \
             AND s.expires_at > $2 AND s.absolute_expires_at > $2",
        )
        .bind(hash(token))
        .bind(micros)
        .fetch_optional(conn)
        .await?
    });
    let Some(row) = row else {
        return Ok(None);
    };
    let expires_at = now + IDLE_LIMIT;
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE dashboard_sessions SET last_seen_at = $1, \
             expires_at = CASE WHEN absolute_expires_at < $2 THEN absolute_expires_at ELSE $2 END \
             WHERE id = $3",
        )
        .bind(micros)
        .bind(to_unix_micros(expires_at))
        .bind(&row.id)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(Some(DashboardSession {
        id: DashboardSessionId::parse(&row.id).map_err(StoreError::corrupt)?,
        user: User {
            id: UserId::parse(&row.user_id).map_err(StoreError::corrupt)?,
            org_id: OrgId::parse(&row.org_id).map_err(StoreError::corrupt)?,
            email: row.email,
            role: row.role.parse::<Role>().map_err(StoreError::corrupt)?,
            created_at: from_unix_micros(row.user_created_at),
        },
        environment: row.environment.parse().map_err(StoreError::corrupt)?,
        expires_at,
    }))
}

/// Switches the environment the session shows.
pub async fn set_environment(
    tx: &mut Tx,
    id: &DashboardSessionId,
    environment: Environment,
) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE dashboard_sessions SET environment = $1 WHERE id = $2")
            .bind(environment.as_str())
            .bind(id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Ends a session (sign-out).
pub async fn sign_out(
    tx: &mut Tx,
    id: &DashboardSessionId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE dashboard_sessions SET signed_out_at = $1 WHERE id = $2")
            .bind(to_unix_micros(now))
            .bind(id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}
