//! Signed-in dashboard browsers. The cookie carries a random token; only its SHA-256 is
//! stored. A session ends when it has been idle too long, when it reaches its absolute limit,
//! when its user signs out or revokes it, or when an administrator disables the user or
//! revokes its sessions. A session whose second factor is still to come, or whose user must
//! enrol in two-factor authentication first, opens nothing but that step.

use idshare_domain::{
    environment::Environment,
    id::{DashboardSessionId, UserId},
    time_format::{from_unix_micros, to_unix_micros},
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::{
    StoreError, Tx,
    db::on_conn,
    users::{USER_COLUMNS, User, UserRow},
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
    /// The step still to take before the session opens the dashboard.
    pub awaiting: Option<Awaiting>,
}

/// What a session waits for after the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaiting {
    /// A code of the user's authenticator.
    Code,
    /// The organization requires two-factor authentication and the user has none yet.
    Enrolment,
}

/// Where a browser signs in from, as its user's list of sessions shows it.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub address: String,
    pub user_agent: Option<String>,
}

/// A live session as its user (or an administrator) sees it in a list.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: DashboardSessionId,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Signs `user` in from `client`: a new session in `environment` (awaiting a code when
/// `awaiting_code`); returns its id and the cookie token.
pub async fn create(
    tx: &mut Tx,
    user: &User,
    environment: Environment,
    client: &Client,
    awaiting_code: bool,
    now: OffsetDateTime,
) -> Result<(DashboardSessionId, String), StoreError> {
    let token = crate::random_secret("dash");
    let id = DashboardSessionId::generate();
    let expires_at = now + IDLE_LIMIT;
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO dashboard_sessions (id, token_hash, user_id, environment, created_at, \
             last_seen_at, expires_at, absolute_expires_at, client_address, user_agent, \
             awaiting) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id.as_str())
        .bind(hash(&token))
        .bind(user.id.as_str())
        .bind(environment.as_str())
        .bind(to_unix_micros(now))
        .bind(to_unix_micros(expires_at))
        .bind(to_unix_micros(now + ABSOLUTE_LIMIT))
        .bind(&client.address)
        .bind(client.user_agent.as_deref())
        .bind(awaiting_code.then_some("code"))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok((id, token))
}

#[derive(sqlx::FromRow)]
struct Row {
    session_id: String,
    session_environment: String,
    awaiting: Option<String>,
    two_factor_required_at: Option<i64>,
    #[sqlx(flatten)]
    user: UserRow,
}

/// The live session of a cookie token, its idle expiry moved forward; `None` for an unknown,
/// expired or signed-out token.
pub async fn touch(
    tx: &mut Tx,
    token: &str,
    now: OffsetDateTime,
) -> Result<Option<DashboardSession>, StoreError> {
    let micros = to_unix_micros(now);
    // A disabled or removed user's sessions open nothing, whether or not they were ended.
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT s.id AS session_id, s.environment AS session_environment, s.awaiting, \
         o.two_factor_required_at, {USER_COLUMNS} \
         FROM dashboard_sessions s JOIN users u ON u.id = s.user_id \
         JOIN organizations o ON o.id = u.org_id \
         WHERE s.token_hash = $1 AND s.signed_out_at IS NULL \
         AND s.expires_at > $2 AND s.absolute_expires_at > $2 \
         AND u.disabled_at IS NULL AND u.removed_at IS NULL"
    ));
    let row: Option<Row> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
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
        .bind(&row.session_id)
        .execute(conn)
        .await?
        .rows_affected()
    });
    let user = row.user.user()?;
    let awaiting = if row.awaiting.is_some() {
        Some(Awaiting::Code)
    } else if row.two_factor_required_at.is_some() && !user.two_factor {
        Some(Awaiting::Enrolment)
    } else {
        None
    };
    Ok(Some(DashboardSession {
        id: DashboardSessionId::parse(&row.session_id).map_err(StoreError::corrupt)?,
        user,
        environment: row
            .session_environment
            .parse()
            .map_err(StoreError::corrupt)?,
        expires_at,
        awaiting,
    }))
}

/// The session's second factor was given: it opens the dashboard from now on.
pub async fn code_accepted(tx: &mut Tx, id: &DashboardSessionId) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE dashboard_sessions SET awaiting = NULL WHERE id = $1")
            .bind(id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: String,
    created_at: i64,
    last_seen_at: i64,
    client_address: Option<String>,
    user_agent: Option<String>,
}

/// The user's live sessions, most recently used first.
pub async fn list_for_user(
    tx: &mut Tx,
    user: &UserId,
    now: OffsetDateTime,
) -> Result<Vec<SessionSummary>, StoreError> {
    let rows: Vec<SummaryRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, created_at, last_seen_at, client_address, user_agent \
             FROM dashboard_sessions WHERE user_id = $1 AND signed_out_at IS NULL \
             AND expires_at > $2 AND absolute_expires_at > $2 \
             ORDER BY last_seen_at DESC, id",
        )
        .bind(user.as_str())
        .bind(to_unix_micros(now))
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|row| {
            Ok(SessionSummary {
                id: DashboardSessionId::parse(&row.id).map_err(StoreError::corrupt)?,
                created_at: from_unix_micros(row.created_at),
                last_seen_at: from_unix_micros(row.last_seen_at),
                client_address: row.client_address,
                user_agent: row.user_agent,
            })
        })
        .collect()
}

/// Ends one live session of `user`; `false` when it has none with this id.
pub async fn revoke(
    tx: &mut Tx,
    user: &UserId,
    id: &DashboardSessionId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let ended = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE dashboard_sessions SET signed_out_at = $3 \
             WHERE id = $1 AND user_id = $2 AND signed_out_at IS NULL",
        )
        .bind(id.as_str())
        .bind(user.as_str())
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(ended > 0)
}

/// Ends every session of `user` but `except`; how many were live.
pub async fn revoke_all(
    tx: &mut Tx,
    user: &UserId,
    except: Option<&DashboardSessionId>,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    Ok(on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE dashboard_sessions SET signed_out_at = $3 \
             WHERE user_id = $1 AND signed_out_at IS NULL \
             AND (CAST($2 AS TEXT) IS NULL OR id <> $2) AND absolute_expires_at > $3",
        )
        .bind(user.as_str())
        .bind(except.map(DashboardSessionId::as_str))
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
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
