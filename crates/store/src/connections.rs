//! Connect connections. A connection belongs to one environment and to *two* organizations:
//! every query here is confined to the caller's environment and to connections the caller's
//! organization is an end of (source or destination), so a third organization finds nothing.

use idshare_domain::{
    connect::{ConnectionStatus, Direction},
    environment::Environment,
    id::{ConnectionId, OrgId},
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{
    Cursor, Page, Scope, StoreError, Tx, db::on_conn, templates::keyset, templates::paginate,
};

#[derive(Debug, Clone)]
pub struct Connection {
    pub id: ConnectionId,
    pub environment: Environment,
    pub source_org_id: OrgId,
    pub destination_org_id: OrgId,
    pub status: ConnectionStatus,
    /// `api-key` (or `user` once the dashboard creates connections).
    pub creator_type: String,
    pub creator_id: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub activated_at: Option<OffsetDateTime>,
    pub deactivated_at: Option<OffsetDateTime>,
}

/// List filters; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub status: Option<ConnectionStatus>,
    pub destination_org_id: Option<OrgId>,
    /// `outbound`: the caller is the source; `inbound`: the caller is the destination.
    pub direction: Option<Direction>,
}

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: String,
    environment: String,
    source_org_id: String,
    destination_org_id: String,
    status: String,
    creator_type: String,
    creator_id: String,
    created_at: i64,
    updated_at: i64,
    activated_at: Option<i64>,
    deactivated_at: Option<i64>,
}

impl TryFrom<ConnectionRow> for Connection {
    type Error = StoreError;
    fn try_from(row: ConnectionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: ConnectionId::parse(&row.id).map_err(StoreError::corrupt)?,
            environment: row.environment.parse().map_err(StoreError::corrupt)?,
            source_org_id: OrgId::parse(&row.source_org_id).map_err(StoreError::corrupt)?,
            destination_org_id: OrgId::parse(&row.destination_org_id)
                .map_err(StoreError::corrupt)?,
            status: row.status.parse().map_err(StoreError::corrupt)?,
            creator_type: row.creator_type,
            creator_id: row.creator_id,
            created_at: from_unix_micros(row.created_at),
            updated_at: from_unix_micros(row.updated_at),
            activated_at: row.activated_at.map(from_unix_micros),
            deactivated_at: row.deactivated_at.map(from_unix_micros),
        })
    }
}

const COLUMNS: &str = "id, environment, source_org_id, destination_org_id, status, creator_type, \
    creator_id, created_at, updated_at, activated_at, deactivated_at";

/// Rows the scope's organization is an end of, in the scope's environment ($1 org, $2 env).
const VISIBLE: &str = "environment = $2 AND (source_org_id = $1 OR destination_org_id = $1)";

/// Inserts a new connection. A second live (pending or active) connection between the same
/// pair in the same environment fails with a unique violation
/// ([`StoreError::is_unique_violation`]).
pub async fn insert(tx: &mut Tx, connection: &Connection) -> Result<(), StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO connections ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ));
    on_conn!(tx, |conn| {
        sqlx::query(sql)
            .bind(connection.id.as_str())
            .bind(connection.environment.as_str())
            .bind(connection.source_org_id.as_str())
            .bind(connection.destination_org_id.as_str())
            .bind(connection.status.as_str())
            .bind(&connection.creator_type)
            .bind(&connection.creator_id)
            .bind(to_unix_micros(connection.created_at))
            .bind(to_unix_micros(connection.updated_at))
            .bind(connection.activated_at.map(to_unix_micros))
            .bind(connection.deactivated_at.map(to_unix_micros))
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

async fn fetch_one(
    tx: &mut Tx,
    scope: &Scope,
    id: &ConnectionId,
    lock: bool,
) -> Result<Option<Connection>, StoreError> {
    let lock = tx.lock_clause(lock);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM connections WHERE {VISIBLE} AND id = $3{lock}"
    ));
    let row: Option<ConnectionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Connection::try_from).transpose()
}

/// A connection the scope's organization is an end of, in the scope's environment.
pub async fn get(
    tx: &mut Tx,
    scope: &Scope,
    id: &ConnectionId,
) -> Result<Option<Connection>, StoreError> {
    fetch_one(tx, scope, id, false).await
}

/// Like [`get`], and locks the row until the transaction ends (PostgreSQL `FOR UPDATE`; a
/// SQLite write transaction already holds the single write lock).
pub async fn get_for_update(
    tx: &mut Tx,
    scope: &Scope,
    id: &ConnectionId,
) -> Result<Option<Connection>, StoreError> {
    fetch_one(tx, scope, id, true).await
}

/// The pending or active connection from `source` to `destination` in `environment`, if any.
pub async fn find_live(
    tx: &mut Tx,
    environment: Environment,
    source: &OrgId,
    destination: &OrgId,
) -> Result<Option<Connection>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM connections \
         WHERE environment = $1 AND source_org_id = $2 AND destination_org_id = $3 \
         AND status IN ('pending', 'active')"
    ));
    let row: Option<ConnectionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(environment.as_str())
            .bind(source.as_str())
            .bind(destination.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Connection::try_from).transpose()
}

/// The newest inactive connection from `source` to `destination` in `environment`, if any
/// (the one to reactivate instead of creating another).
pub async fn find_inactive(
    tx: &mut Tx,
    environment: Environment,
    source: &OrgId,
    destination: &OrgId,
) -> Result<Option<Connection>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM connections \
         WHERE environment = $1 AND source_org_id = $2 AND destination_org_id = $3 \
         AND status = 'inactive' ORDER BY created_at DESC, id DESC LIMIT 1"
    ));
    let row: Option<ConnectionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(environment.as_str())
            .bind(source.as_str())
            .bind(destination.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Connection::try_from).transpose()
}

/// Writes the mutable columns (status and its timestamps). Moving back to `pending` while
/// another live connection joins the same pair fails with a unique violation.
pub async fn save(tx: &mut Tx, connection: &Connection) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE connections SET status = $1, updated_at = $2, activated_at = $3, \
             deactivated_at = $4 WHERE id = $5",
        )
        .bind(connection.status.as_str())
        .bind(to_unix_micros(connection.updated_at))
        .bind(connection.activated_at.map(to_unix_micros))
        .bind(connection.deactivated_at.map(to_unix_micros))
        .bind(connection.id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Resolves a cursor id to its `(created_at, id)` position among the connections the scope
/// sees. `Ok(None)` means the cursor names no such connection.
async fn cursor_position(
    tx: &mut Tx,
    scope: &Scope,
    cursor: Cursor<'_>,
) -> Result<Option<(Option<i64>, Option<String>)>, StoreError> {
    let id = match cursor {
        Cursor::Start => return Ok(Some((None, None))),
        Cursor::After(id) | Cursor::Before(id) => id,
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT created_at FROM connections WHERE {VISIBLE} AND id = $3"
    ));
    let created_at: Option<i64> = on_conn!(tx, |conn| {
        sqlx::query_scalar(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(id)
            .fetch_optional(conn)
            .await?
    });
    Ok(created_at.map(|c| (Some(c), Some(id.to_owned()))))
}

/// The connections the scope's organization is an end of (both directions), newest first.
pub async fn list(
    tx: &mut Tx,
    scope: &Scope,
    filter: &ConnectionFilter,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<Connection>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, cursor).await? else {
        return Ok(None);
    };
    let (comparison, order) = keyset(cursor);
    let direction = match filter.direction {
        None => "",
        Some(Direction::Outbound) => "AND source_org_id = $1",
        Some(Direction::Inbound) => "AND destination_org_id = $1",
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM connections WHERE {VISIBLE} {direction} \
         AND (CAST($6 AS TEXT) IS NULL OR status = $6) \
         AND (CAST($7 AS TEXT) IS NULL OR destination_org_id = $7) \
         AND (CAST($3 AS BIGINT) IS NULL OR CAST($4 AS TEXT) IS NULL OR {comparison}) \
         ORDER BY {order} LIMIT $5"
    ));
    let rows: Vec<ConnectionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1.clone())
            .bind(i64::from(size) + 1)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.destination_org_id.as_ref().map(|o| o.as_str()))
            .fetch_all(conn)
            .await?
    });
    let rows = rows
        .into_iter()
        .map(Connection::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(paginate(rows, cursor, size)))
}
