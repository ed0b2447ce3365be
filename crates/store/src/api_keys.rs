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
    /// To the minute ([`LAST_USE_RESOLUTION`]); `None` for a key never used.
    pub last_used_at: Option<OffsetDateTime>,
}

/// How stale a key's recorded last use may be: authentication records a use only when the
/// recorded one is older, so a busy key costs one small write a minute, not one per request.
pub const LAST_USE_RESOLUTION: time::Duration = time::Duration::minutes(1);

impl ApiKey {
    /// True when a use at `now` should be recorded ([`record_use`]).
    pub fn use_is_unrecorded(&self, now: OffsetDateTime) -> bool {
        self.last_used_at
            .is_none_or(|used| now - used >= LAST_USE_RESOLUTION)
    }
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
    last_used_at: Option<i64>,
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
            last_used_at: row.last_used_at.map(from_unix_micros),
        })
    }
}

const COLUMNS: &str =
    "id, org_id, environment, name, permissions, created_at, revoked_at, last_used_at";

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
        last_used_at: None,
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

/// Records that the key was used at `now`, unless a use within [`LAST_USE_RESOLUTION`] is
/// already recorded (by a concurrent request, say).
pub async fn record_use(tx: &mut Tx, id: &ApiKeyId, now: OffsetDateTime) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .bind(to_unix_micros(now - LAST_USE_RESOLUTION))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Every key of every organization, or of `org_id` only, by organization, environment and
/// creation (operator command; revoked keys too).
pub async fn list_all(tx: &mut Tx, org_id: Option<&OrgId>) -> Result<Vec<ApiKey>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE $1 IS NULL OR org_id = $1 \
         ORDER BY org_id, environment, created_at, id"
    ));
    let rows: Vec<ApiKeyRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(org_id.map(OrgId::as_str))
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(ApiKey::try_from).collect()
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
