//! API keys. The secret is shown once at creation; only its SHA-256 is stored (the secret is
//! 256 random bits, so a fast hash is safe and gives an indexed lookup).

use idshare_domain::{
    environment::Environment,
    id::{ApiKeyId, OrgId},
    permission::PermissionSet,
    time_format::{from_unix_micros, to_unix_micros},
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{
    Cursor, Page, Scope, StoreError, Tx,
    db::on_conn,
    templates::{cursor_position, page_sql, paginate},
};

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub scope: Scope,
    pub name: String,
    pub permissions: PermissionSet,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    org_id: String,
    environment: String,
    name: String,
    permissions: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: ApiKeyId::parse(&row.id).map_err(StoreError::corrupt)?,
            scope: Scope::new(
                OrgId::parse(&row.org_id).map_err(StoreError::corrupt)?,
                row.environment
                    .parse::<Environment>()
                    .map_err(StoreError::corrupt)?,
            ),
            name: row.name,
            permissions: PermissionSet::parse_list(&row.permissions)
                .map_err(StoreError::corrupt)?,
            created_at: from_unix_micros(row.created_at),
            revoked_at: row.revoked_at.map(from_unix_micros),
        })
    }
}

const COLUMNS: &str = "id, org_id, environment, name, permissions, created_at, revoked_at";

fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn generate_secret(environment: Environment) -> String {
    crate::crypto::random_secret(&format!("idsk_{}", environment.as_str()))
}

/// Creates a key and returns it with its secret, which is never retrievable again.
pub async fn create(
    tx: &mut Tx,
    scope: &Scope,
    name: &str,
    permissions: &PermissionSet,
    now: OffsetDateTime,
) -> Result<(ApiKey, String), StoreError> {
    let secret = generate_secret(scope.environment);
    let key = ApiKey {
        id: ApiKeyId::generate(),
        scope: scope.clone(),
        name: name.to_owned(),
        permissions: permissions.clone(),
        created_at: now,
        revoked_at: None,
    };
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO api_keys (id, org_id, environment, name, secret_hash, permissions, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(name)
        .bind(hash_secret(&secret))
        .bind(permissions.to_list_string())
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?.rows_affected()
    });
    Ok((key, secret))
}

/// The key a presented secret belongs to, revoked or not (the caller decides).
pub async fn find_by_secret(tx: &mut Tx, secret: &str) -> Result<Option<ApiKey>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1"
    ));
    let row: Option<ApiKeyRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(hash_secret(secret))
            .fetch_optional(conn)
            .await?
    });
    row.map(ApiKey::try_from).transpose()
}

/// A key of the scope, revoked or not.
pub async fn get(tx: &mut Tx, scope: &Scope, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND org_id = $2 AND environment = $3"
    ));
    let row: Option<ApiKeyRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(ApiKey::try_from).transpose()
}

/// The scope's keys (revoked ones too), newest first; `None` when the cursor names no key of
/// the scope.
pub async fn list(
    tx: &mut Tx,
    scope: &Scope,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<ApiKey>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "api_keys", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(COLUMNS, "api_keys", "", cursor));
    let rows: Vec<ApiKeyRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1)
            .bind(i64::from(size) + 1)
            .fetch_all(conn)
            .await?
    });
    let keys = rows
        .into_iter()
        .map(ApiKey::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(paginate(keys, cursor, size)))
}

/// Revokes a key (operator command). Returns false when no such active key exists.
pub async fn revoke(tx: &mut Tx, id: &ApiKeyId, now: OffsetDateTime) -> Result<bool, StoreError> {
    let result = on_conn!(tx, |conn| {
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(to_unix_micros(now))
            .bind(id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(result == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_name_their_environment_and_are_unique() {
        let a = generate_secret(Environment::Sandbox);
        let b = generate_secret(Environment::Sandbox);
        assert!(a.starts_with("idsk_sandbox_"));
        assert!(generate_secret(Environment::Production).starts_with("idsk_production_"));
        assert_ne!(a, b);
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }
}
