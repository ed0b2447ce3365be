//! Dashboard users: email + Argon2id password hash + role in one organization.

use argon2::{Argon2, PasswordHasher};
use idshare_domain::{
    id::{OrgId, UserId},
    time_format::to_unix_micros,
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

/// Hashes a password with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Crypto(format!("password hashing failed: {e}")))
}

pub async fn create(
    tx: &mut Tx,
    org_id: &OrgId,
    email: &str,
    password: &str,
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
    let password_hash = hash_password(password)?;
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO users (id, org_id, email, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_str())
        .bind(org_id.as_str())
        .bind(&user.email)
        .bind(password_hash)
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
static DECOY_HASH: std::sync::LazyLock<Option<String>> =
    std::sync::LazyLock::new(|| hash_password("decoy password").ok());

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
    password_hash: String,
    role: String,
    created_at: i64,
}

/// The user with `email` (any case) whose password is `password`; `None` otherwise.
pub async fn authenticate(
    tx: &mut Tx,
    email: &str,
    password: &str,
) -> Result<Option<User>, StoreError> {
    let row: Option<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, org_id, email, password_hash, role, created_at FROM users WHERE email = $1",
        )
        .bind(email.trim().to_lowercase())
        .fetch_optional(conn)
        .await?
    });
    let Some(row) = row else {
        if let Some(decoy) = DECOY_HASH.as_deref() {
            password_matches(decoy, password);
        }
        return Ok(None);
    };
    if !password_matches(&row.password_hash, password) {
        return Ok(None);
    }
    Ok(Some(User {
        id: UserId::parse(&row.id).map_err(StoreError::corrupt)?,
        org_id: OrgId::parse(&row.org_id).map_err(StoreError::corrupt)?,
        email: row.email,
        role: row.role.parse::<Role>().map_err(StoreError::corrupt)?,
        created_at: idshare_domain::time_format::from_unix_micros(row.created_at),
    }))
}

/// The users of an organization, oldest first (few: the people who sign in to the dashboard).
pub async fn list_in_org(tx: &mut Tx, org_id: &OrgId) -> Result<Vec<User>, StoreError> {
    let rows: Vec<UserRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, org_id, email, password_hash, role, created_at FROM users \
             WHERE org_id = $1 ORDER BY created_at, id",
        )
        .bind(org_id.as_str())
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|row| {
            Ok(User {
                id: UserId::parse(&row.id).map_err(StoreError::corrupt)?,
                org_id: OrgId::parse(&row.org_id).map_err(StoreError::corrupt)?,
                email: row.email,
                role: row.role.parse::<Role>().map_err(StoreError::corrupt)?,
                created_at: idshare_domain::time_format::from_unix_micros(row.created_at),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(password_matches(&hash, "correct horse"));
        assert!(!password_matches(&hash, "correct horse "));
        assert!(!password_matches("not a hash", "correct horse"));
    }
}
