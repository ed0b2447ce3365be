//! Dashboard users: email + Argon2id password hash + role in one organization; invitations,
//! disabling and removing, and the sealed TOTP secret of two-factor authentication.

use argon2::{Argon2, PasswordHasher};
use idshare_domain::{
    id::{OrgId, UserId},
    people::UserStatus,
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{StoreError, Tx, db::on_conn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Reviewer,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "reviewer" => Ok(Role::Reviewer),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "unknown role `{other}` (expected admin, reviewer or viewer)"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub email: String,
    pub role: Role,
    pub created_at: OffsetDateTime,
    pub status: UserStatus,
    /// Two-factor authentication is on (a code confirmed the secret).
    pub two_factor: bool,
    pub last_signed_in_at: Option<OffsetDateTime>,
}

/// A password hashed with Argon2id and a random salt, as a PHC string. Hashing is deliberately
/// slow: make one with [`hash_password`] off the async runtime's threads and before any
/// transaction begins.
#[derive(Clone)]
pub struct PasswordHash(String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(…)")
    }
}

/// Hashes a password in the blocking thread pool, so that the async runtime's threads keep
/// serving while it runs.
pub async fn hash_password(password: String) -> Result<PasswordHash, StoreError> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| StoreError::Crypto(format!("password hashing did not finish: {e}")))?
}

fn hash_now(password: &str) -> Result<PasswordHash, StoreError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| PasswordHash(hash.to_string()))
        .map_err(|e| StoreError::Crypto(format!("password hashing failed: {e}")))
}

pub async fn create(
    tx: &mut Tx,
    org_id: &OrgId,
    email: &str,
    password: &PasswordHash,
    role: Role,
    now: OffsetDateTime,
) -> Result<User, StoreError> {
    insert(tx, org_id, email, Some(password), role, now).await
}

/// Invites a user: no password until it follows a set-password link.
pub async fn invite(
    tx: &mut Tx,
    org_id: &OrgId,
    email: &str,
    role: Role,
    now: OffsetDateTime,
) -> Result<User, StoreError> {
    insert(tx, org_id, email, None, role, now).await
}

async fn insert(
    tx: &mut Tx,
    org_id: &OrgId,
    email: &str,
    password: Option<&PasswordHash>,
    role: Role,
    now: OffsetDateTime,
) -> Result<User, StoreError> {
    let user = User {
        id: UserId::generate(),
        org_id: org_id.clone(),
        email: email.trim().to_lowercase(),
        role,
        created_at: now,
        status: if password.is_some() {
            UserStatus::Active
        } else {
            UserStatus::Invited
        },
        two_factor: false,
        last_signed_in_at: None,
    };
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO users (id, org_id, email, password_hash, role, created_at, \
             password_set_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id.as_str())
        .bind(org_id.as_str())
        .bind(&user.email)
        .bind(password.map_or("", |p| p.0.as_str()))
        .bind(role.as_str())
        .bind(to_unix_micros(now))
        .bind(password.map(|_| to_unix_micros(now)))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(user)
}

/// Whether any user, of any organization and removed ones included, has this address.
pub async fn email_taken(tx: &mut Tx, email: &str) -> Result<bool, StoreError> {
    let count: i64 = on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_one(conn)
            .await?
    });
    Ok(count > 0)
}

/// A hash to verify against when the email is unknown, so that answering takes as long as for
/// a wrong password and timing does not tell which emails have accounts.
static DECOY_HASH: std::sync::LazyLock<Option<PasswordHash>> =
    std::sync::LazyLock::new(|| hash_now("decoy password").ok());

fn password_matches(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::password_hash::phc::PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The columns of a [`UserRow`], of the table `users` aliased `u`.
pub(crate) const USER_COLUMNS: &str = "u.id, u.org_id, u.email, u.role, u.created_at, \
     u.password_set_at, u.disabled_at, u.last_signed_in_at, u.totp_enabled_at";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    org_id: String,
    email: String,
    role: String,
    created_at: i64,
    password_set_at: Option<i64>,
    disabled_at: Option<i64>,
    last_signed_in_at: Option<i64>,
    totp_enabled_at: Option<i64>,
}

impl UserRow {
    pub(crate) fn user(self) -> Result<User, StoreError> {
        let status = if self.disabled_at.is_some() {
            UserStatus::Disabled
        } else if self.password_set_at.is_none() {
            UserStatus::Invited
        } else {
            UserStatus::Active
        };
        Ok(User {
            id: UserId::parse(&self.id).map_err(StoreError::corrupt)?,
            org_id: OrgId::parse(&self.org_id).map_err(StoreError::corrupt)?,
            email: self.email,
            role: self.role.parse::<Role>().map_err(StoreError::corrupt)?,
            created_at: from_unix_micros(self.created_at),
            status,
            two_factor: self.totp_enabled_at.is_some(),
            last_signed_in_at: self.last_signed_in_at.map(from_unix_micros),
        })
    }
}

/// What signing in needs to know of an account: the user, its password hash, and its failed
/// sign-ins since the last success.
#[derive(Clone)]
pub struct Credentials {
    pub user: User,
    password_hash: PasswordHash,
    pub failed_sign_ins: u32,
    pub last_failed_sign_in_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("failed_sign_ins", &self.failed_sign_ins)
            .field("last_failed_sign_in_at", &self.last_failed_sign_in_at)
            .finish_non_exhaustive()
    }
}

/// Checks `password` against the account's hash, or (no account, or no password yet) against a
/// decoy so that both take as long. Slow on purpose: call it in the blocking thread pool,
/// outside any transaction.
pub fn verify_password(credentials: Option<&Credentials>, password: &str) -> bool {
    match credentials {
        Some(c) if !c.password_hash.0.is_empty() => password_matches(&c.password_hash.0, password),
        _ => {
            if let Some(decoy) = DECOY_HASH.as_ref() {
                password_matches(&decoy.0, password);
            }
            false
        }
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
    failed_sign_ins: i64,
    last_failed_sign_in_at: Option<i64>,
}

/// The account with `email` (any case), if there is one and it is not removed. Verifying the
/// password is up to the caller ([`verify_password`]), after this transaction has ended.
pub async fn credentials(tx: &mut Tx, email: &str) -> Result<Option<Credentials>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, u.password_hash, u.failed_sign_ins, u.last_failed_sign_in_at \
         FROM users u WHERE u.email = $1 AND u.removed_at IS NULL"
    ));
    let row: Option<CredentialsRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(email.trim().to_lowercase())
            .fetch_optional(conn)
            .await?
    });
    credentials_of(row)
}

/// The credentials of a user by id (changing one's own password checks the current one).
pub async fn credentials_by_id(
    tx: &mut Tx,
    id: &UserId,
) -> Result<Option<Credentials>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS}, u.password_hash, u.failed_sign_ins, u.last_failed_sign_in_at \
         FROM users u WHERE u.id = $1 AND u.removed_at IS NULL"
    ));
    let row: Option<CredentialsRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    credentials_of(row)
}

fn credentials_of(row: Option<CredentialsRow>) -> Result<Option<Credentials>, StoreError> {
    row.map(|row| {
        Ok(Credentials {
            user: row.user.user()?,
            password_hash: PasswordHash(row.password_hash),
            failed_sign_ins: u32::try_from(row.failed_sign_ins).unwrap_or(u32::MAX),
            last_failed_sign_in_at: row.last_failed_sign_in_at.map(from_unix_micros),
        })
    })
    .transpose()
}

/// Counts a failed sign-in of `user` at `now` and returns the count; failures before
/// `forget_before` are forgotten first. One statement, so concurrent failures all count.
pub async fn record_failed_sign_in(
    tx: &mut Tx,
    user: &UserId,
    forget_before: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u32, StoreError> {
    let failures: i64 = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "UPDATE users SET failed_sign_ins = CASE \
             WHEN last_failed_sign_in_at IS NULL OR last_failed_sign_in_at <= $2 THEN 1 \
             ELSE failed_sign_ins + 1 END, last_failed_sign_in_at = $3 \
             WHERE id = $1 RETURNING failed_sign_ins",
        )
        .bind(user.as_str())
        .bind(to_unix_micros(forget_before))
        .bind(to_unix_micros(now))
        .fetch_one(conn)
        .await?
    });
    Ok(u32::try_from(failures).unwrap_or(u32::MAX))
}

/// Forgets the failed sign-ins of the user with `email` (after a success, or an administrator's
/// unlock); `false` when there is no such user.
pub async fn clear_failed_sign_ins(tx: &mut Tx, email: &str) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE users SET failed_sign_ins = 0, last_failed_sign_in_at = NULL WHERE email = $1",
        )
        .bind(email.trim().to_lowercase())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated > 0)
}

/// The users of an organization, removed ones too (the audit log names them), oldest first
/// (few: the people who sign in to the dashboard).
pub async fn list_in_org(tx: &mut Tx, org_id: &OrgId) -> Result<Vec<User>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.org_id = $1 ORDER BY u.created_at, u.id"
    ));
    let rows: Vec<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(org_id.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(UserRow::user).collect()
}

/// The users of an organization who are not removed, oldest first (the People page).
pub async fn list_people(tx: &mut Tx, org_id: &OrgId) -> Result<Vec<User>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.org_id = $1 AND u.removed_at IS NULL \
         ORDER BY u.created_at, u.id"
    ));
    let rows: Vec<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(org_id.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(UserRow::user).collect()
}

/// Every user (removed ones excepted) of every organization, or of `org_id` only, by
/// organization then oldest first (operator command).
pub async fn list_all(tx: &mut Tx, org_id: Option<&OrgId>) -> Result<Vec<User>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE ($1 IS NULL OR u.org_id = $1) \
         AND u.removed_at IS NULL ORDER BY u.org_id, u.created_at, u.id"
    ));
    let rows: Vec<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(org_id.map(OrgId::as_str))
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(UserRow::user).collect()
}

/// A user of `org_id` who is not removed; `lock` keeps the row until the transaction ends
/// (PostgreSQL `FOR UPDATE`).
pub async fn get_in_org(
    tx: &mut Tx,
    org_id: &OrgId,
    id: &UserId,
    lock: bool,
) -> Result<Option<User>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 AND u.org_id = $2 \
         AND u.removed_at IS NULL{}",
        tx.lock_clause(lock)
    ));
    let row: Option<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(org_id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(UserRow::user).transpose()
}

/// The user with `email` (any case) who is not removed (operator commands name users so).
pub async fn get_by_email(tx: &mut Tx, email: &str) -> Result<Option<User>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1 AND u.removed_at IS NULL"
    ));
    let row: Option<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(email.trim().to_lowercase())
            .fetch_optional(conn)
            .await?
    });
    row.map(UserRow::user).transpose()
}

/// The organization's administrators who can sign in (who set a password, are not disabled nor
/// removed; an invited admin may never come), after
/// locking the organization's row so that two changes cannot each leave the other's admin
/// the last one (PostgreSQL; a SQLite write transaction is alone already).
pub async fn lock_and_count_active_admins(tx: &mut Tx, org_id: &OrgId) -> Result<u64, StoreError> {
    let lock = sqlx::AssertSqlSafe(format!(
        "SELECT id FROM organizations WHERE id = $1{}",
        tx.lock_clause(true)
    ));
    let _: Option<String> = on_conn!(tx, |conn| {
        sqlx::query_scalar(lock)
            .bind(org_id.as_str())
            .fetch_optional(conn)
            .await?
    });
    let count: i64 = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE org_id = $1 AND role = 'admin' \
             AND password_set_at IS NOT NULL AND disabled_at IS NULL AND removed_at IS NULL",
        )
        .bind(org_id.as_str())
        .fetch_one(conn)
        .await?
    });
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Runs `sql` with the user's id as `$1`; whether it changed the user.
async fn change(tx: &mut Tx, sql: &'static str, id: &UserId) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(sql)
            .bind(id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(updated > 0)
}

/// Runs `sql` with the user's id as `$1` and `value` as `$2`; whether it changed the user.
async fn update(
    tx: &mut Tx,
    sql: &'static str,
    id: &UserId,
    value: Option<i64>,
) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(sql)
            .bind(id.as_str())
            .bind(value)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(updated > 0)
}

pub async fn set_role(tx: &mut Tx, id: &UserId, role: Role) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query("UPDATE users SET role = $2 WHERE id = $1 AND removed_at IS NULL")
            .bind(id.as_str())
            .bind(role.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(updated > 0)
}

/// Disables the user from `now` (`Some`) or enables it again (`None`).
pub async fn set_disabled(
    tx: &mut Tx,
    id: &UserId,
    disabled_at: Option<OffsetDateTime>,
) -> Result<bool, StoreError> {
    update(
        tx,
        "UPDATE users SET disabled_at = $2 WHERE id = $1 AND removed_at IS NULL",
        id,
        disabled_at.map(to_unix_micros),
    )
    .await
}

/// Removes the user: its row stays for the audit log, without password or second factor.
pub async fn remove(tx: &mut Tx, id: &UserId, now: OffsetDateTime) -> Result<bool, StoreError> {
    update(
        tx,
        "UPDATE users SET removed_at = $2, password_hash = '', totp_secret = NULL, \
         totp_enabled_at = NULL, totp_last_step = NULL WHERE id = $1 AND removed_at IS NULL",
        id,
        Some(to_unix_micros(now)),
    )
    .await
}

/// Forgets the user's password and second factor (a reset, also for a lost authenticator): it
/// cannot sign in until a set-password link gives it a new password.
pub async fn clear_credentials(tx: &mut Tx, id: &UserId) -> Result<bool, StoreError> {
    change(
        tx,
        "UPDATE users SET password_hash = '', totp_secret = NULL, totp_enabled_at = NULL, \
         totp_last_step = NULL WHERE id = $1 AND removed_at IS NULL",
        id,
    )
    .await
}

/// Sets the user's password (hashed beforehand, outside the transaction).
pub async fn set_password(
    tx: &mut Tx,
    id: &UserId,
    password: &PasswordHash,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE users SET password_hash = $2, password_set_at = $3, failed_sign_ins = 0, \
             last_failed_sign_in_at = NULL WHERE id = $1 AND removed_at IS NULL",
        )
        .bind(id.as_str())
        .bind(&password.0)
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated > 0)
}

/// Notes a completed sign-in.
pub async fn signed_in(tx: &mut Tx, id: &UserId, now: OffsetDateTime) -> Result<bool, StoreError> {
    update(
        tx,
        "UPDATE users SET last_signed_in_at = $2 WHERE id = $1",
        id,
        Some(to_unix_micros(now)),
    )
    .await
}

/// The user's TOTP secret (sealed) and the last time step a code was accepted for.
#[derive(Clone)]
pub struct TotpState {
    pub sealed_secret: Vec<u8>,
    pub enabled: bool,
    pub last_step: Option<u64>,
}

impl std::fmt::Debug for TotpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpState")
            .field("enabled", &self.enabled)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// The sealing context of a user's TOTP secret: a ciphertext of one user is no use to another.
pub fn totp_context(id: &str) -> String {
    format!("user-totp-secret:{id}")
}

#[derive(sqlx::FromRow)]
struct TotpRow {
    totp_secret: Option<Vec<u8>>,
    totp_enabled_at: Option<i64>,
    totp_last_step: Option<i64>,
}

pub async fn totp_state(tx: &mut Tx, id: &UserId) -> Result<Option<TotpState>, StoreError> {
    let row: Option<TotpRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT totp_secret, totp_enabled_at, totp_last_step FROM users \
             WHERE id = $1 AND removed_at IS NULL",
        )
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
    });
    Ok(row.and_then(|row| {
        Some(TotpState {
            sealed_secret: row.totp_secret?,
            enabled: row.totp_enabled_at.is_some(),
            last_step: row.totp_last_step.and_then(|s| u64::try_from(s).ok()),
        })
    }))
}

/// Keeps a new secret for enrolment; two-factor stays off until [`enable_totp`].
pub async fn set_pending_totp(
    tx: &mut Tx,
    id: &UserId,
    sealed_secret: &[u8],
) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE users SET totp_secret = $2, totp_enabled_at = NULL, totp_last_step = NULL \
             WHERE id = $1 AND removed_at IS NULL AND totp_enabled_at IS NULL",
        )
        .bind(id.as_str())
        .bind(sealed_secret)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated > 0)
}

/// Accepts a code of time step `step`, once: `false` when a code of this step or a later one
/// was accepted already (a replay).
pub async fn use_totp_step(tx: &mut Tx, id: &UserId, step: u64) -> Result<bool, StoreError> {
    let step = i64::try_from(step).map_err(StoreError::corrupt)?;
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_secret IS NOT NULL \
             AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(id.as_str())
        .bind(step)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated > 0)
}

pub async fn enable_totp(
    tx: &mut Tx,
    id: &UserId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    update(
        tx,
        "UPDATE users SET totp_enabled_at = $2 WHERE id = $1 AND totp_secret IS NOT NULL",
        id,
        Some(to_unix_micros(now)),
    )
    .await
}

pub async fn disable_totp(tx: &mut Tx, id: &UserId) -> Result<bool, StoreError> {
    change(
        tx,
        "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL \
         WHERE id = $1 AND totp_enabled_at IS NOT NULL",
        id,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_now("correct horse").unwrap();
        assert!(password_matches(&hash.0, "correct horse"));
        assert!(!password_matches(&hash.0, "correct horse "));
        assert!(!password_matches("not a hash", "correct horse"));
    }
}
