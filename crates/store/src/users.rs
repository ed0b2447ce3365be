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
