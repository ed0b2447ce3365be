//! Connect share tokens. Like its connection, a token belongs to one environment and to *two*
//! organizations: every query here is confined to the caller's environment and to tokens the
//! caller's organization is an end of (source or destination), so a third organization finds
//! nothing. The table holds no personal data.

use idshare_domain::{
    connect::Direction,
    environment::Environment,
    id::{ConnectionId, InquiryId, OrgId, ShareTokenId},
    share_token::ShareTokenStatus,
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{
    Cursor, Page, Scope, StoreError, Tx, db::on_conn, templates::keyset, templates::paginate,
};

#[derive(Debug, Clone)]
pub struct ShareToken {
    pub id: ShareTokenId,
    pub environment: Environment,
    pub connection_id: ConnectionId,
    pub source_org_id: OrgId,
    pub destination_org_id: OrgId,
    pub source_inquiry_id: InquiryId,
    pub status: ShareTokenStatus,
    /// `api-key` (or `user` once the dashboard creates tokens).
    pub creator_type: String,
    pub creator_id: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub pending_at: Option<OffsetDateTime>,
    pub redeemed_at: Option<OffsetDateTime>,
    pub failed_at: Option<OffsetDateTime>,
    pub failure_reason: Option<String>,
    pub expired_at: Option<OffsetDateTime>,
    /// The destination's inquiry, once redeemed.
    pub destination_inquiry_id: Option<InquiryId>,
}

/// List filters; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ShareTokenFilter {
    pub connection_id: Option<ConnectionId>,
    pub status: Option<ShareTokenStatus>,
    /// `outbound`: the caller is the source; `inbound`: the caller is the destination.
    pub direction: Option<Direction>,
}

#[derive(sqlx::FromRow)]
struct ShareTokenRow {
    id: String,
    environment: String,
    connection_id: String,
    source_org_id: String,
    destination_org_id: String,
    source_inquiry_id: String,
    status: String,
    creator_type: String,
    creator_id: String,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    pending_at: Option<i64>,
    redeemed_at: Option<i64>,
    failed_at: Option<i64>,
    failure_reason: Option<String>,
    expired_at: Option<i64>,
    destination_inquiry_id: Option<String>,
}

impl TryFrom<ShareTokenRow> for ShareToken {
    type Error = StoreError;
    fn try_from(row: ShareTokenRow) -> Result<Self, StoreError> {
        let ts = |v: Option<i64>| v.map(from_unix_micros);
        Ok(Self {
            id: ShareTokenId::parse(&row.id).map_err(StoreError::corrupt)?,
            environment: row.environment.parse().map_err(StoreError::corrupt)?,
            connection_id: ConnectionId::parse(&row.connection_id).map_err(StoreError::corrupt)?,
            source_org_id: OrgId::parse(&row.source_org_id).map_err(StoreError::corrupt)?,
            destination_org_id: OrgId::parse(&row.destination_org_id)
                .map_err(StoreError::corrupt)?,
            source_inquiry_id: InquiryId::parse(&row.source_inquiry_id)
                .map_err(StoreError::corrupt)?,
            status: row.status.parse().map_err(StoreError::corrupt)?,
            creator_type: row.creator_type,
            creator_id: row.creator_id,
            created_at: from_unix_micros(row.created_at),
            updated_at: from_unix_micros(row.updated_at),
            expires_at: from_unix_micros(row.expires_at),
            pending_at: ts(row.pending_at),
            redeemed_at: ts(row.redeemed_at),
            failed_at: ts(row.failed_at),
            failure_reason: row.failure_reason,
            expired_at: ts(row.expired_at),
            destination_inquiry_id: row
                .destination_inquiry_id
                .as_deref()
                .map(InquiryId::parse)
                .transpose()
                .map_err(StoreError::corrupt)?,
        })
    }
}

const COLUMNS: &str = "id, environment, connection_id, source_org_id, destination_org_id, \
    source_inquiry_id, status, creator_type, creator_id, created_at, updated_at, expires_at, \
    pending_at, redeemed_at, failed_at, failure_reason, expired_at, destination_inquiry_id";

/// Rows the scope's organization is an end of, in the scope's environment ($1 org, $2 env).
const VISIBLE: &str = "environment = $2 AND (source_org_id = $1 OR destination_org_id = $1)";

/// Inserts a new token.
pub async fn insert(tx: &mut Tx, token: &ShareToken) -> Result<(), StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO share_tokens ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14, $15, $16, $17, $18)"
    ));
    let ts = |v: Option<OffsetDateTime>| v.map(to_unix_micros);
    on_conn!(tx, |conn| {
        sqlx::query(sql)
            .bind(token.id.as_str())
            .bind(token.environment.as_str())
            .bind(token.connection_id.as_str())
            .bind(token.source_org_id.as_str())
            .bind(token.destination_org_id.as_str())
            .bind(token.source_inquiry_id.as_str())
            .bind(token.status.as_str())
            .bind(&token.creator_type)
            .bind(&token.creator_id)
            .bind(to_unix_micros(token.created_at))
            .bind(to_unix_micros(token.updated_at))
            .bind(to_unix_micros(token.expires_at))
            .bind(ts(token.pending_at))
            .bind(ts(token.redeemed_at))
            .bind(ts(token.failed_at))
            .bind(&token.failure_reason)
            .bind(ts(token.expired_at))
            .bind(token.destination_inquiry_id.as_ref().map(|i| i.as_str()))
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// A token the scope's organization is an end of (source or destination), in the scope's
/// environment.
pub async fn get(
    tx: &mut Tx,
    scope: &Scope,
    id: &ShareTokenId,
) -> Result<Option<ShareToken>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM share_tokens WHERE {VISIBLE} AND id = $3"
    ));
    let row: Option<ShareTokenRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(ShareToken::try_from).transpose()
}

/// Moves a `created` token to `expired`. Returns false (and changes nothing) when the token is
/// no longer `created`: the status guard is in the `UPDATE`, so a concurrent redemption or
/// expiry wins cleanly.
pub async fn expire(
    tx: &mut Tx,
    id: &ShareTokenId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let affected = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE share_tokens SET status = 'expired', expired_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'created'",
        )
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(affected == 1)
}

/// Moves a token's expiry time (for tests and operators): `expires_at` only.
pub async fn set_expires_at(
    tx: &mut Tx,
    id: &ShareTokenId,
    expires_at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let affected = on_conn!(tx, |conn| {
        sqlx::query("UPDATE share_tokens SET expires_at = $1 WHERE id = $2")
            .bind(to_unix_micros(expires_at))
            .bind(id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(affected == 1)
}

/// `created` tokens past their expiry time, across tenants (for the TTL job), each with the
/// scope of its source organization.
pub async fn due_to_expire(
    tx: &mut Tx,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<(Scope, ShareTokenId)>, StoreError> {
    let rows: Vec<(String, String, String)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT source_org_id, environment, id FROM share_tokens \
             WHERE status = 'created' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(to_unix_micros(now))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?
    });
    Scope::with_ids(rows, ShareTokenId::parse)
}

/// Resolves a cursor id to its `(created_at, id)` position among the tokens the scope sees.
/// `Ok(None)` means the cursor names no such token.
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
        "SELECT created_at FROM share_tokens WHERE {VISIBLE} AND id = $3"
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

/// The tokens the scope's organization is an end of (both directions), newest first.
pub async fn list(
    tx: &mut Tx,
    scope: &Scope,
    filter: &ShareTokenFilter,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<ShareToken>>, StoreError> {
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
        "SELECT {COLUMNS} FROM share_tokens WHERE {VISIBLE} {direction} \
         AND (CAST($6 AS TEXT) IS NULL OR status = $6) \
         AND (CAST($7 AS TEXT) IS NULL OR connection_id = $7) \
         AND (CAST($3 AS BIGINT) IS NULL OR CAST($4 AS TEXT) IS NULL OR {comparison}) \
         ORDER BY {order} LIMIT $5"
    ));
    let rows: Vec<ShareTokenRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1.clone())
            .bind(i64::from(size) + 1)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.connection_id.as_ref().map(|c| c.as_str()))
            .fetch_all(conn)
            .await?
    });
    let rows = rows
        .into_iter()
        .map(ShareToken::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(paginate(rows, cursor, size)))
}

/// A token by id alone, locked until the transaction ends (PostgreSQL `FOR UPDATE`; a SQLite
/// write transaction already holds the single write lock). For the redemption job, which acts
/// for no organization; `None` when it does not exist.
pub async fn get_any_for_update(
    tx: &mut Tx,
    id: &ShareTokenId,
) -> Result<Option<ShareToken>, StoreError> {
    fetch_by_id(tx, id, true).await
}

/// A token by id alone, unlocked (the redemption job's read phase).
pub async fn get_any(tx: &mut Tx, id: &ShareTokenId) -> Result<Option<ShareToken>, StoreError> {
    fetch_by_id(tx, id, false).await
}

async fn fetch_by_id(
    tx: &mut Tx,
    id: &ShareTokenId,
    for_update: bool,
) -> Result<Option<ShareToken>, StoreError> {
    let lock = tx.lock_clause(for_update);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM share_tokens WHERE id = $1{lock}"
    ));
    let row: Option<ShareTokenRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(ShareToken::try_from).transpose()
}

/// A token the scope's organization is an end of, locked like [`get_any_for_update`].
pub async fn get_for_update(
    tx: &mut Tx,
    scope: &Scope,
    id: &ShareTokenId,
) -> Result<Option<ShareToken>, StoreError> {
    let lock = tx.lock_clause(true);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM share_tokens WHERE {VISIBLE} AND id = $3{lock}"
    ));
    let row: Option<ShareTokenRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(ShareToken::try_from).transpose()
}

/// Moves a `created` token to `pending` towards `destination`. Returns false (and changes
/// nothing) when it is no longer `created`: the guard is in the `UPDATE`.
pub async fn start_redemption(
    tx: &mut Tx,
    id: &ShareTokenId,
    destination: &InquiryId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let affected = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE share_tokens SET status = 'pending', pending_at = $1, updated_at = $1, \
             destination_inquiry_id = $2 WHERE id = $3 AND status = 'created'",
        )
        .bind(to_unix_micros(now))
        .bind(destination.as_str())
        .bind(id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(affected == 1)
}

/// Moves a `pending` token to `redeemed`; false when it is no longer `pending`.
pub async fn finish_redemption(
    tx: &mut Tx,
    id: &ShareTokenId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let affected = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE share_tokens SET status = 'redeemed', redeemed_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(affected == 1)
}

/// Moves a `pending` token to `failed` with its reason; false when it is no longer `pending`.
pub async fn fail_redemption(
    tx: &mut Tx,
    id: &ShareTokenId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let affected = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE share_tokens SET status = 'failed', failed_at = $1, updated_at = $1, \
             failure_reason = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(to_unix_micros(now))
        .bind(reason)
        .bind(id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(affected == 1)
}

/// Whether a token other than `except` is redeeming (or redeemed) into `inquiry`.
pub async fn targets(
    tx: &mut Tx,
    inquiry: &InquiryId,
    except: &ShareTokenId,
) -> Result<bool, StoreError> {
    let count: i64 = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM share_tokens WHERE destination_inquiry_id = $1 AND id <> $2 \
             AND status IN ('pending', 'redeemed')",
        )
        .bind(inquiry.as_str())
        .bind(except.as_str())
        .fetch_one(conn)
        .await?
    });
    Ok(count > 0)
}

/// The tokens the scope's organization is an end of created since `since`, oldest first, at
/// most `limit` (the overview's charts).
pub async fn created_since(
    tx: &mut Tx,
    scope: &Scope,
    since: OffsetDateTime,
    limit: u32,
) -> Result<Vec<ShareToken>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM share_tokens WHERE {VISIBLE} AND created_at >= $3 \
         ORDER BY created_at, id LIMIT $4"
    ));
    let rows: Vec<ShareTokenRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(to_unix_micros(since))
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(ShareToken::try_from).collect()
}

/// The statuses of the destination inquiries of the scope's inbound tokens redeemed since
/// `since` (the outcomes of redemption).
pub async fn redemption_outcomes(
    tx: &mut Tx,
    scope: &Scope,
    since: OffsetDateTime,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<String> = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT i.status FROM share_tokens t \
             JOIN inquiries i ON i.id = t.destination_inquiry_id \
             WHERE t.environment = $2 AND t.destination_org_id = $1 AND t.status = 'redeemed' \
             AND t.redeemed_at >= $3",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(to_unix_micros(since))
        .fetch_all(conn)
        .await?
    });
    Ok(rows)
}
