//! The audit log: who (a dashboard user) looked at or acted on what, and when. Entries hold ids
//! and action names only, never personal data.

use idshare_domain::{
    id::{AuditEntryId, UserId},
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{
    Cursor, Page, Scope, StoreError, Tx,
    db::on_conn,
    templates::{cursor_position, page_sql, paginate},
};

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub user_id: UserId,
    /// e.g. `inquiry.viewed`, `inquiry.approved`, `share-token.redeemed`.
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub created_at: OffsetDateTime,
}

/// Records an entry in the caller's transaction.
pub async fn record(
    tx: &mut Tx,
    scope: &Scope,
    user: &UserId,
    action: &str,
    (object_type, object_id): (&str, &str),
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO audit_entries (id, org_id, environment, user_id, action, object_type, \
             object_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(AuditEntryId::generate().as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(user.as_str())
        .bind(action)
        .bind(object_type)
        .bind(object_id)
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    user_id: String,
    action: String,
    object_type: String,
    object_id: String,
    created_at: i64,
}

const COLUMNS: &str = "id, user_id, action, object_type, object_id, created_at";

/// The scope's entries, newest first; `object_id` and `user_id` filter.
pub async fn list(
    tx: &mut Tx,
    scope: &Scope,
    object_id: Option<&str>,
    user_id: Option<&str>,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<AuditEntry>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "audit_entries", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(
        COLUMNS,
        "audit_entries",
        "AND (CAST($6 AS TEXT) IS NULL OR object_id = $6) \
         AND (CAST($7 AS TEXT) IS NULL OR user_id = $7)",
        cursor,
    ));
    let rows: Vec<Row> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1.clone())
            .bind(i64::from(size) + 1)
            .bind(object_id)
            .bind(user_id)
            .fetch_all(conn)
            .await?
    });
    let entries = rows
        .into_iter()
        .map(|row| {
            Ok(AuditEntry {
                id: AuditEntryId::parse(&row.id).map_err(StoreError::corrupt)?,
                user_id: UserId::parse(&row.user_id).map_err(StoreError::corrupt)?,
                action: row.action,
                object_type: row.object_type,
                object_id: row.object_id,
                created_at: from_unix_micros(row.created_at),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(paginate(entries, cursor, size)))
}
