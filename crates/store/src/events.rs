//! Events: written in the transaction of the change they describe (transactional outbox).
//!
//! `seq` orders the feed, and a reader paging forward from an event must never miss one that
//! commits later with a smaller number. There is no counter row that every writer would queue
//! on; instead:
//!
//! - SQLite: `AUTOINCREMENT`. There is one writer at a time, holding the write lock from its
//!   first write to its commit, so numbers are handed out in commit order.
//! - PostgreSQL: the writing transaction's id (`pg_current_xact_id()`, an xid8 that never
//!   wraps) times [`PER_TRANSACTION`], plus the event's rank in its transaction. [`list`] serves
//!   only events below the oldest transaction of this database still running: every
//!   transaction that could still write a smaller number has ended, so what is served never
//!   gains an event below it. A transaction that committed before another made its first write
//!   has the smaller id, so its events come first.
//!
//! Payloads that carry personal data are sealed under the data key of the object they describe;
//! redacting the object deletes the key and empties those payloads.

use idshare_domain::{
    id::EventId,
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{
    Backend, Crypto, DataKey, Page, Scope, StoreError, Tx, db::on_conn, row_placeholders,
    values_list,
};

/// How many events one PostgreSQL transaction may write (its sequence numbers are
/// `xid * PER_TRANSACTION + rank`); small enough that sequences stay below 2^53, exact as
/// JSON numbers everywhere, for the first 2^37 transactions of the database.
pub const PER_TRANSACTION: i64 = 65_536;

/// PostgreSQL: the first sequence of the current transaction.
const TRANSACTION_BASE: &str = "(pg_current_xact_id()::text::bigint * 65536)";

/// PostgreSQL: the sequences below this are final: every transaction of this database that
/// could still commit one has ended. That is the oldest transaction in progress in the
/// statement's snapshot (or the next transaction id when none is), leaving out those that
/// `pg_stat_activity` shows in another database: they cannot write these events, and other
/// databases of the server must not hold this feed back. A transaction it cannot place (not
/// visible to this role, prepared, just begun) counts as this database's.
const SERVED_BELOW: &str = "(COALESCE(\
    (SELECT MIN(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) x \
     WHERE x::text::bigint % 4294967296 NOT IN ( \
       SELECT backend_xid::text::bigint FROM pg_stat_activity \
       WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database())), \
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint) * 65536)";

#[derive(Debug, Clone)]
pub struct Event {
    pub id: EventId,
    pub seq: i64,
    pub name: String,
    pub object_type: String,
    pub object_id: String,
    /// `None` once the object it describes was redacted.
    pub payload: Option<serde_json::Value>,
    pub created_at: OffsetDateTime,
}

/// An event to record. `sealed_by` names the owner whose data key seals the payload.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub name: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub payload: &'a serde_json::Value,
    pub sealed_by: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub name: Option<String>,
    pub object_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    seq: i64,
    id: String,
    name: String,
    object_type: String,
    object_id: String,
    key_owner_id: Option<String>,
    payload: Vec<u8>,
    wrapped_key: Option<Vec<u8>>,
    created_at: i64,
}

const COLUMNS: &str = "seq, id, name, object_type, object_id, key_owner_id, payload, \
    (SELECT wrapped_key FROM data_keys WHERE owner_id = events.key_owner_id) AS wrapped_key, \
    created_at";

fn payload_context(event_id: &str) -> String {
    format!("{event_id}:event-payload")
}

fn decode(row: EventRow, crypto: &Crypto) -> Result<Event, StoreError> {
    let payload = match (&row.key_owner_id, &row.wrapped_key) {
        (None, _) => Some(serde_json::from_slice(&row.payload).map_err(StoreError::corrupt)?),
        (Some(owner), Some(wrapped)) => {
            let key = crypto.unwrap_data_key(owner, wrapped)?;
            let plain = key.open(&row.payload, &payload_context(&row.id))?;
            Some(serde_json::from_slice(&plain).map_err(StoreError::corrupt)?)
        }
        (Some(_), None) => None,
    };
    Ok(Event {
        id: EventId::parse(&row.id).map_err(StoreError::corrupt)?,
        seq: row.seq,
        name: row.name,
        object_type: row.object_type,
        object_id: row.object_id,
        payload,
        created_at: from_unix_micros(row.created_at),
    })
}

pub async fn record(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    event: NewEvent<'_>,
    now: OffsetDateTime,
) -> Result<EventId, StoreError> {
    let ids = record_batch(tx, crypto, None, &[(scope.clone(), event)], now).await?;
    ids.into_iter()
        .next()
        .ok_or_else(|| StoreError::corrupt("an event recorded without an id"))
}

/// Records several events, each in its own scope, in one statement, in order (their `seq`s
/// follow it, after any the transaction recorded before). A payload sealed by `key`'s owner
/// is sealed under that already unwrapped key; any other owner's key is read and unwrapped.
pub async fn record_batch(
    tx: &mut Tx,
    crypto: &Crypto,
    key: Option<(&str, &DataKey)>,
    batch: &[(Scope, NewEvent<'_>)],
    now: OffsetDateTime,
) -> Result<Vec<EventId>, StoreError> {
    if batch.is_empty() {
        return Ok(vec![]);
    }
    let mut rows = Vec::with_capacity(batch.len());
    for (_, event) in batch {
        let id = EventId::generate();
        let plain = serde_json::to_vec(event.payload).map_err(StoreError::corrupt)?;
        let payload = match (event.sealed_by, key) {
            (None, _) => plain,
            (Some(owner), Some((key_owner, key))) if owner == key_owner => {
                key.seal(&plain, &payload_context(id.as_str()))?
            }
            (Some(owner), _) => {
                let wrapped: Option<Vec<u8>> = on_conn!(tx, |conn| {
                    sqlx::query_scalar("SELECT wrapped_key FROM data_keys WHERE owner_id = $1")
                        .bind(owner)
                        .fetch_optional(conn)
                        .await?
                });
                let wrapped =
                    wrapped.ok_or_else(|| StoreError::corrupt("event owner has no data key"))?;
                crypto
                    .unwrap_data_key(owner, &wrapped)?
                    .seal(&plain, &payload_context(id.as_str()))?
            }
        };
        rows.push((id, payload));
    }
    const COLUMNS_PER_EVENT: usize = 9;
    let sql = sqlx::AssertSqlSafe(match tx.backend() {
        Backend::Sqlite => format!(
            "INSERT INTO events (id, org_id, environment, name, object_type, object_id, \
             key_owner_id, payload, created_at) VALUES {}",
            values_list(rows.len(), COLUMNS_PER_EVENT)
        ),
        // The next ranks in this transaction's range (no other transaction writes in it): the
        // statement's snapshot holds the same maximum for every row, the position adds to it.
        Backend::Postgres => {
            let next = format!(
                "(SELECT COALESCE(MAX(seq) + 1, {TRANSACTION_BASE}) FROM events \
                 WHERE seq >= {TRANSACTION_BASE} AND seq < {TRANSACTION_BASE} + {PER_TRANSACTION})"
            );
            let rows = (0..rows.len())
                .map(|position| {
                    let params = row_placeholders(position, COLUMNS_PER_EVENT);
                    format!("({next} + {position}, {params})")
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "INSERT INTO events (seq, id, org_id, environment, name, object_type, \
                 object_id, key_owner_id, payload, created_at) VALUES {rows}"
            )
        }
    });
    let micros = to_unix_micros(now);
    on_conn!(tx, |conn| {
        let mut query = sqlx::query(sql);
        for ((scope, event), (id, payload)) in batch.iter().zip(&rows) {
            query = query
                .bind(id.as_str())
                .bind(scope.org_id.as_str())
                .bind(scope.environment.as_str())
                .bind(event.name)
                .bind(event.object_type)
                .bind(event.object_id)
                .bind(event.sealed_by)
                .bind(payload.as_slice())
                .bind(micros);
        }
        query.execute(conn).await?.rows_affected()
    });
    Ok(rows.into_iter().map(|(id, _)| id).collect())
}

/// Empties the payloads sealed under `owner_id`'s data key, in the transaction that deletes the
/// key (redaction). The events stay, listed with a `None` payload.
pub(crate) async fn erase_sealed_payloads(tx: &mut Tx, owner_id: &str) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE events SET payload = $1 WHERE key_owner_id = $2")
            .bind(Vec::<u8>::new())
            .bind(owner_id)
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

pub async fn get(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &EventId,
) -> Result<Option<Event>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE id = $1 AND org_id = $2 AND environment = $3"
    ));
    let row: Option<EventRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(|r| decode(r, crypto)).transpose()
}

/// Events newest first (by `seq`); `Ok(None)` when the cursor names no event of this scope.
/// On PostgreSQL only the events below the oldest running transaction are listed (see the
/// module's documentation), so that paging forward never skips one.
pub async fn list(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    filter: &EventFilter,
    cursor: crate::Cursor<'_>,
    size: u32,
) -> Result<Option<Page<Event>>, StoreError> {
    let cursor_seq = match cursor {
        crate::Cursor::Start => None,
        crate::Cursor::After(id) | crate::Cursor::Before(id) => {
            let seq: Option<i64> = on_conn!(tx, |conn| {
                sqlx::query_scalar(
                    "SELECT seq FROM events WHERE id = $1 AND org_id = $2 AND environment = $3",
                )
                .bind(id)
                .bind(scope.org_id.as_str())
                .bind(scope.environment.as_str())
                .fetch_optional(conn)
                .await?
            });
            match seq {
                Some(seq) => Some(seq),
                None => return Ok(None),
            }
        }
    };
    let (comparison, order) = match cursor {
        crate::Cursor::Before(_) => ("seq > $3", "seq ASC"),
        _ => ("seq < $3", "seq DESC"),
    };
    let served = match tx.backend() {
        Backend::Sqlite => String::new(),
        Backend::Postgres => format!("AND seq < {SERVED_BELOW} "),
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE org_id = $1 AND environment = $2 {served}\
         AND (CAST($3 AS BIGINT) IS NULL OR {comparison}) \
         AND (CAST($4 AS TEXT) IS NULL OR name = $4) \
         AND (CAST($5 AS TEXT) IS NULL OR object_id = $5) \
         ORDER BY {order} LIMIT $6"
    ));
    let rows: Vec<EventRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(cursor_seq)
            .bind(filter.name.as_deref())
            .bind(filter.object_id.as_deref())
            .bind(i64::from(size) + 1)
            .fetch_all(conn)
            .await?
    });
    let items = rows
        .into_iter()
        .map(|r| decode(r, crypto))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(crate::templates::paginate(items, cursor, size)))
}

/// The name and time of each event about `object_id` in `scope` since `since`, oldest first,
/// without their payloads (to count recent events of one object).
pub async fn names_since(
    tx: &mut Tx,
    scope: &Scope,
    object_id: &str,
    since: OffsetDateTime,
) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
    let rows: Vec<(String, i64)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT name, created_at FROM events WHERE org_id = $1 AND environment = $2 \
             AND object_id = $3 AND created_at > $4 ORDER BY seq",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(object_id)
        .bind(to_unix_micros(since))
        .fetch_all(conn)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(name, at)| (name, from_unix_micros(at)))
        .collect())
}
