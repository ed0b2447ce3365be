//! The audit log: who (a dashboard user, an API key, or the server itself) looked at or acted on
//! what, when, and in which HTTP request. Entries hold ids and action names, and for sign-ins
//! the client address, never data of end users. Every entry is written in the transaction of
//! the action it records, so a rolled-back action leaves none.

use idshare_domain::{
    environment::Environment,
    id::{ApiKeyId, AuditEntryId, OrgId, RequestId, UserId},
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{
    Cursor, Page, Scope, StoreError, Tx,
    db::on_conn,
    templates::{cursor_position, page_sql, paginate},
    users::User,
};

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(UserId),
    ApiKey(ApiKeyId),
    /// The server on its own: the expiry of share tokens, retention.
    System,
}

impl Principal {
    /// `user`, `api-key` or `system`, as the API and the CSV export name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::ApiKey(_) => "api-key",
            Self::System => "system",
        }
    }

    /// The user's or key's id; none for the system.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::User(id) => Some(id.as_str()),
            Self::ApiKey(id) => Some(id.as_str()),
            Self::System => None,
        }
    }

    fn columns(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::User(id) => (Some(id.as_str()), None),
            Self::ApiKey(id) => (None, Some(id.as_str())),
            Self::System => (None, None),
        }
    }
}

/// Who acts, and in which HTTP request (none for the server's own work): what the edge knows of
/// a request and every audited use case records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub principal: Principal,
    pub request_id: Option<RequestId>,
}

impl Actor {
    pub fn user(id: UserId, request_id: Option<RequestId>) -> Self {
        Self {
            principal: Principal::User(id),
            request_id,
        }
    }

    pub fn api_key(id: ApiKeyId, request_id: Option<RequestId>) -> Self {
        Self {
            principal: Principal::ApiKey(id),
            request_id,
        }
    }

    /// The server on its own (housekeeping, background jobs).
    pub fn system() -> Self {
        Self {
            principal: Principal::System,
            request_id: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub actor: Principal,
    /// The HTTP request the action was made in; none for the server's own work.
    pub request_id: Option<RequestId>,
    /// e.g. `inquiry.viewed`, `inquiry.approved`, `share-token.redeemed`.
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    /// Where the request came from (sign-ins).
    pub client_address: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Records that `actor` did `action` on an object, in the caller's transaction: one statement.
pub async fn record_by(
    tx: &mut Tx,
    scope: &Scope,
    actor: &Actor,
    action: &str,
    (object_type, object_id): (&str, &str),
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (user_id, api_key_id) = actor.principal.columns();
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO audit_entries (id, org_id, environment, user_id, api_key_id, request_id, \
             action, object_type, object_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(AuditEntryId::generate().as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(user_id)
        .bind(api_key_id)
        .bind(actor.request_id.as_ref().map(RequestId::as_str))
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

/// Records that the dashboard user `user` did `action` ([`record_by`] without a request id).
pub async fn record(
    tx: &mut Tx,
    scope: &Scope,
    user: &UserId,
    action: &str,
    object: (&str, &str),
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    record_by(
        tx,
        scope,
        &Actor::user(user.clone(), None),
        action,
        object,
        now,
    )
    .await
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

/// Records a sign-in attempt of `user` (its password was checked), with the client address and
/// the request, in both environments of its organization: signing in opens both to the user.
pub async fn record_sign_in(
    tx: &mut Tx,
    user: &User,
    outcome: SignIn,
    client_address: &str,
    request_id: Option<&RequestId>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for environment in Environment::ALL {
        on_conn!(tx, |conn| {
            sqlx::query(
                "INSERT INTO audit_entries (id, org_id, environment, user_id, action, \
                 object_type, object_id, client_address, request_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'user', $4, $6, $7, $8)",
            )
            .bind(AuditEntryId::generate().as_str())
            .bind(user.org_id.as_str())
            .bind(environment.as_str())
            .bind(user.id.as_str())
            .bind(outcome.action())
            .bind(client_address)
            .bind(request_id.map(RequestId::as_str))
            .bind(to_unix_micros(now))
            .execute(conn)
            .await?
            .rows_affected()
        });
    }
    Ok(())
}

/// Which entries a list shows; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub object_id: Option<String>,
    /// A user's or an API key's id.
    pub actor_id: Option<String>,
    pub created_at_start: Option<OffsetDateTime>,
    pub created_at_end: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    user_id: Option<String>,
    api_key_id: Option<String>,
    request_id: Option<String>,
    action: String,
    object_type: String,
    object_id: String,
    client_address: Option<String>,
    created_at: i64,
}

impl Row {
    fn entry(self) -> Result<AuditEntry, StoreError> {
        let actor = match (self.user_id, self.api_key_id) {
            (Some(user), _) => Principal::User(UserId::parse(&user).map_err(StoreError::corrupt)?),
            (None, Some(key)) => {
                Principal::ApiKey(ApiKeyId::parse(&key).map_err(StoreError::corrupt)?)
            }
            (None, None) => Principal::System,
        };
        Ok(AuditEntry {
            id: AuditEntryId::parse(&self.id).map_err(StoreError::corrupt)?,
            actor,
            request_id: self
                .request_id
                .map(|r| RequestId::parse(&r))
                .transpose()
                .map_err(StoreError::corrupt)?,
            action: self.action,
            object_type: self.object_type,
            object_id: self.object_id,
            client_address: self.client_address,
            created_at: from_unix_micros(self.created_at),
        })
    }
}

const COLUMNS: &str = "id, user_id, api_key_id, request_id, action, object_type, object_id, \
                       client_address, created_at";

/// The newest entry on `object_id` whose action is one of `actions` (e.g. the last decision on
/// an inquiry), read through the `(object_id, created_at)` index.
pub async fn latest(
    tx: &mut Tx,
    scope: &Scope,
    object_id: &str,
    actions: &[&str],
) -> Result<Option<AuditEntry>, StoreError> {
    let placeholders = (0..actions.len())
        .map(|i| format!("${}", i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_entries WHERE object_id = $1 AND org_id = $2 \
         AND environment = $3 AND action IN ({placeholders}) \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    ));
    let row: Option<Row> = on_conn!(tx, |conn| {
        let mut query = sqlx::query_as(sql)
            .bind(object_id)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str());
        for action in actions {
            query = query.bind(*action);
        }
        query.fetch_optional(conn).await?
    });
    row.map(Row::entry).transpose()
}

/// The scope's entries, newest first; `object_id` and `user_id` filter ([`search`] with those).
pub async fn list(
    tx: &mut Tx,
    scope: &Scope,
    object_id: Option<&str>,
    user_id: Option<&str>,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<AuditEntry>>, StoreError> {
    let filter = AuditFilter {
        object_id: object_id.map(str::to_owned),
        actor_id: user_id.map(str::to_owned),
        ..AuditFilter::default()
    };
    search(tx, scope, &filter, cursor, size).await
}

/// The scope's entries that match `filter`, newest first; `None` for a cursor that is not an
/// entry of the scope.
pub async fn search(
    tx: &mut Tx,
    scope: &Scope,
    filter: &AuditFilter,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<AuditEntry>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "audit_entries", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(
        COLUMNS,
        "audit_entries",
        "AND (CAST($6 AS TEXT) IS NULL OR action = $6) \
         AND (CAST($7 AS TEXT) IS NULL OR object_id = $7) \
         AND (CAST($8 AS TEXT) IS NULL OR user_id = $8 OR api_key_id = $8) \
         AND (CAST($9 AS BIGINT) IS NULL OR created_at >= $9) \
         AND (CAST($10 AS BIGINT) IS NULL OR created_at <= $10)",
        cursor,
    ));
    let rows: Vec<Row> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1.clone())
            .bind(i64::from(size) + 1)
            .bind(filter.action.as_deref())
            .bind(filter.object_id.as_deref())
            .bind(filter.actor_id.as_deref())
            .bind(filter.created_at_start.map(to_unix_micros))
            .bind(filter.created_at_end.map(to_unix_micros))
            .fetch_all(conn)
            .await?
    });
    let entries = rows
        .into_iter()
        .map(Row::entry)
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(paginate(entries, cursor, size)))
}

/// Deletes up to `batch` entries (of every organization) written before `cutoff`; returns how
/// many.
pub async fn delete_older_than(
    tx: &mut Tx,
    cutoff: OffsetDateTime,
    batch: u32,
) -> Result<u64, StoreError> {
    let deleted = on_conn!(tx, |conn| {
        sqlx::query(
            "DELETE FROM audit_entries WHERE id IN \
             (SELECT id FROM audit_entries WHERE created_at < $1 LIMIT $2)",
        )
        .bind(to_unix_micros(cutoff))
        .bind(i64::from(batch))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(deleted)
}
