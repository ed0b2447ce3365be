//! Dashboard users: email + Argon2id password hash + role in one organization.

use argon2::{Argon2, PasswordHasher};
use idshare_domain::{
    id::{OrgId, UserId},
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
    let user = User {
        id: UserId::generate(),
        org_id: org_id.clone(),
        email: email.trim().to_lowercase(),
        role,
        created_at: now,
    };
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO users (id, org_id, email, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_str())
        .bind(org_id.as_str())
        .bind(&user.email)
        .bind(&password.0)
        .bind(role.as_str())
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(user)
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

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    org_id: String,
    email: String,
    role: String,
    created_at: i64,
}

impl UserRow {
    fn user(self) -> Result<User, StoreError> {
        Ok(User {
            id: UserId::parse(&self.id).map_err(StoreError::corrupt)?,
            org_id: OrgId::parse(&self.org_id).map_err(StoreError::corrupt)?,
            email: self.email,
            role: self.role.parse::<Role>().map_err(StoreError::corrupt)?,
            created_at: from_unix_micros(self.created_at),
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

/// Checks `password` against the account's hash, or (no account) against a decoy so that both
/// take as long. Slow on purpose: call it in the blocking thread pool, outside any transaction.
pub fn verify_password(credentials: Option<&Credentials>, password: &str) -> bool {
    match credentials {
        Some(c) => password_matches(&c.password_hash.0, password),
        None => {
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

/// The account with `email` (any case), if there is one. Verifying the password is up to the
/// caller ([`verify_password`]), after this transaction has ended.
pub async fn credentials(tx: &mut Tx, email: &str) -> Result<Option<Credentials>, StoreError> {
    let row: Option<CredentialsRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, org_id, email, role, created_at, password_hash, failed_sign_ins, \
             last_failed_sign_in_at FROM users WHERE email = $1",
        )
        .bind(email.trim().to_lowercase())
        .fetch_optional(conn)
        .await?
    });
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

/// The users of an organization, oldest first (few: the people who sign in to the dashboard).
pub async fn list_in_org(tx: &mut Tx, org_id: &OrgId) -> Result<Vec<User>, StoreError> {
    let rows: Vec<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, org_id, email, role, created_at FROM users \
             WHERE org_id = $1 ORDER BY created_at, id",
        )
        .bind(org_id.as_str())
        .fetch_all(conn)
        .await?
    });
    rows.into_iter().map(UserRow::user).collect()
}

/// Every user of every organization, or of `org_id` only, by organization then oldest first
/// (operator command).
pub async fn list_all(tx: &mut Tx, org_id: Option<&OrgId>) -> Result<Vec<User>, StoreError> {
    let rows: Vec<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, org_id, email, role, created_at FROM users \
             WHERE $1 IS NULL OR org_id = $1 ORDER BY org_id, created_at, id",
        )
        .bind(org_id.map(OrgId::as_str))
        .fetch_all(conn)
        .await?
    });
    rows.into_iter().map(UserRow::user).collect()
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
