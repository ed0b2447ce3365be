//! The audit log: who (a dashboard user) looked at or acted on what, and when. Entries hold ids
//! and action names, and for sign-ins the client address, never data of end users.

use idshare_domain::{
    environment::Environment,
    id::{AuditEntryId, OrgId, UserId},
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{
    Cursor, Page, Scope, StoreError, Tx,
    db::on_conn,
    templates::{cursor_position, page_sql, paginate},
    users::User,
};

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub user_id: UserId,
    /// e.g. `inquiry.viewed`, `inquiry.approved`, `share-token.redeemed`.
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    /// Where the request came from (sign-ins).
    pub client_address: Option<String>,
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

/// Records an entry of an action on the organization's people (users belong to both
/// environments) in both environments' logs, in the caller's transaction.
pub async fn record_in_org(
    tx: &mut Tx,
    org_id: &OrgId,
    user: &UserId,
    action: &str,
    object: (&str, &str),
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for environment in Environment::ALL {
        let scope = Scope::new(org_id.clone(), environment);
        record(tx, &scope, user, action, object, now).await?;
    }
    Ok(())
}

/// What became of a sign-in, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    Succeeded,
    Failed,
}

impl SignIn {
    pub fn action(self) -> &'static str {
        match self {
            SignIn::Succeeded => "user.signed-in",
            SignIn::Failed => "user.sign-in-failed",
        }
    }
}

/// Records a sign-in attempt of `user` (its password was checked), with the client address, in
/// both environments of its organization: signing in opens both to the user.
pub async fn record_sign_in(
    tx: &mut Tx,
    user: &User,
    outcome: SignIn,
    client_address: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for environment in Environment::ALL {
        on_conn!(tx, |conn| {
            sqlx::query(
                "INSERT INTO audit_entries (id, org_id, environment, user_id, action, \
                 object_type, object_id, client_address, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'user', $4, $6, $7)",
            )
            .bind(AuditEntryId::generate().as_str())
            .bind(user.org_id.as_str())
            .bind(environment.as_str())
            .bind(user.id.as_str())
            .bind(outcome.action())
            .bind(client_address)
            .bind(to_unix_micros(now))
            .execute(conn)
            .await?
            .rows_affected()
        });
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    user_id: String,
    action: String,
    object_type: String,
    object_id: String,
    client_address: Option<String>,
    created_at: i64,
}

const COLUMNS: &str = "id, user_id, action, object_type, object_id, client_address, created_at";

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
                client_address: row.client_address,
                created_at: from_unix_micros(row.created_at),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(paginate(entries, cursor, size)))
}
