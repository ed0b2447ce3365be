//! Webhooks and their deliveries. A webhook belongs to one organization and environment; its
//! signing secrets are sealed with the master key. A delivery is one event for one webhook:
//! created in the transaction that writes the event ([`create_deliveries`]), then sent and
//! retried by jobs, which record every attempt here.

use idshare_domain::{
    id::{EventId, WebhookDeliveryId, WebhookId},
    time_format::{from_unix_micros, to_unix_micros},
    webhook::{ORDER_WAIT, gives_way},
};
use time::OffsetDateTime;

use crate::{
    Cursor, Page, Scope, StoreError, Tx,
    crypto::Crypto,
    db::on_conn,
    templates::{cursor_position, page_sql, paginate},
};

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: WebhookId,
    pub scope: Scope,
    pub name: Option<String>,
    pub description: Option<String>,
    pub url: String,
    /// `enabled`, `disabled` or `archived`.
    pub status: String,
    /// Event names, or `*`.
    pub enabled_events: Vec<String>,
    pub api_attributes_blocklist: Vec<String>,
    pub api_key_inflection: idshare_domain::inflection::Inflection,
    /// `idshare` (Persona's shape plus idshare's extensions) or `persona` (exactly Persona's).
    pub shape: String,
    /// The current signing secret (`wbhsec_…`).
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_secret: Option<(String, OffsetDateTime)>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub archived_at: Option<OffsetDateTime>,
}

impl Webhook {
    /// The secrets that sign a delivery at `now`: the current one, and the previous one while
    /// its rotation overlap lasts.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some((previous, expires_at)) = &self.previous_secret
            && *expires_at > now
        {
            secrets.push(previous);
        }
        secrets
    }
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: String,
    org_id: String,
    environment: String,
    name: Option<String>,
    description: Option<String>,
    url: String,
    status: String,
    enabled_events: String,
    api_attributes_blocklist: String,
    api_key_inflection: String,
    shape: String,
    secret: Vec<u8>,
    previous_secret: Option<Vec<u8>>,
    previous_secret_expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    archived_at: Option<i64>,
}

const COLUMNS: &str = "id, org_id, environment, name, description, url, status, enabled_events, \
    api_attributes_blocklist, api_key_inflection, secret, previous_secret, \
    previous_secret_expires_at, created_at, updated_at, archived_at, shape";

/// A new signing secret: `wbhsec_` and 32 random bytes in base58.
pub fn generate_secret() -> String {
    crate::crypto::random_secret("wbhsec")
}

pub(crate) fn secret_context(id: &str) -> String {
    format!("{id}:webhook-secret")
}

fn open_secret(crypto: &Crypto, id: &str, sealed: &[u8]) -> Result<String, StoreError> {
    let plain = crypto.open_system(sealed, &secret_context(id))?;
    String::from_utf8(plain).map_err(StoreError::corrupt)
}

fn seal_secret(crypto: &Crypto, id: &str, secret: &str) -> Result<Vec<u8>, StoreError> {
    crypto.seal_system(secret.as_bytes(), &secret_context(id))
}

fn decode(row: WebhookRow, crypto: &Crypto) -> Result<Webhook, StoreError> {
    let secret = open_secret(crypto, &row.id, &row.secret)?;
    let previous_secret = match (row.previous_secret, row.previous_secret_expires_at) {
        (Some(sealed), Some(expires_at)) => Some((
            open_secret(crypto, &row.id, &sealed)?,
            from_unix_micros(expires_at),
        )),
        _ => None,
    };
    Ok(Webhook {
        id: WebhookId::parse(&row.id).map_err(StoreError::corrupt)?,
        scope: Scope::new(
            idshare_domain::id::OrgId::parse(&row.org_id).map_err(StoreError::corrupt)?,
            row.environment.parse().map_err(StoreError::corrupt)?,
        ),
        name: row.name,
        description: row.description,
        url: row.url,
        status: row.status,
        enabled_events: serde_json::from_str(&row.enabled_events).map_err(StoreError::corrupt)?,
        api_attributes_blocklist: serde_json::from_str(&row.api_attributes_blocklist)
            .map_err(StoreError::corrupt)?,
        api_key_inflection: row
            .api_key_inflection
            .parse()
            .map_err(StoreError::corrupt)?,
        shape: row.shape,
        secret,
        previous_secret,
        created_at: from_unix_micros(row.created_at),
        updated_at: from_unix_micros(row.updated_at),
        archived_at: row.archived_at.map(from_unix_micros),
    })
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

pub async fn insert(tx: &mut Tx, crypto: &Crypto, webhook: &Webhook) -> Result<(), StoreError> {
    let id = webhook.id.as_str();
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhooks ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    ));
    let secret = seal_secret(crypto, id, &webhook.secret)?;
    let previous = match &webhook.previous_secret {
        Some((s, at)) => (Some(seal_secret(crypto, id, s)?), Some(to_unix_micros(*at))),
        None => (None, None),
    };
    on_conn!(tx, |conn| {
        sqlx::query(sql)
            .bind(id)
            .bind(webhook.scope.org_id.as_str())
            .bind(webhook.scope.environment.as_str())
            .bind(webhook.name.as_deref())
            .bind(webhook.description.as_deref())
            .bind(&webhook.url)
            .bind(&webhook.status)
            .bind(json_list(&webhook.enabled_events))
            .bind(json_list(&webhook.api_attributes_blocklist))
            .bind(webhook.api_key_inflection.as_str())
            .bind(secret.clone())
            .bind(previous.0.clone())
            .bind(previous.1)
            .bind(to_unix_micros(webhook.created_at))
            .bind(to_unix_micros(webhook.updated_at))
            .bind(webhook.archived_at.map(to_unix_micros))
            .bind(&webhook.shape)
            .execute(conn)
            .await?
            .rows_affected()
    });
    crate::orgs::config_changed(tx, "webhooks", id).await
}

/// Writes every mutable column (settings, status, secrets).
pub async fn save(tx: &mut Tx, crypto: &Crypto, webhook: &Webhook) -> Result<(), StoreError> {
    let id = webhook.id.as_str();
    let secret = seal_secret(crypto, id, &webhook.secret)?;
    let previous = match &webhook.previous_secret {
        Some((s, at)) => (Some(seal_secret(crypto, id, s)?), Some(to_unix_micros(*at))),
        None => (None, None),
    };
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE webhooks SET name = $1, description = $2, url = $3, status = $4, \
             enabled_events = $5, api_attributes_blocklist = $6, api_key_inflection = $7, \
             secret = $8, previous_secret = $9, previous_secret_expires_at = $10, \
             updated_at = $11, archived_at = $12, shape = $14 WHERE id = $13",
        )
        .bind(webhook.name.as_deref())
        .bind(webhook.description.as_deref())
        .bind(&webhook.url)
        .bind(&webhook.status)
        .bind(json_list(&webhook.enabled_events))
        .bind(json_list(&webhook.api_attributes_blocklist))
        .bind(webhook.api_key_inflection.as_str())
        .bind(secret.clone())
        .bind(previous.0.clone())
        .bind(previous.1)
        .bind(to_unix_micros(webhook.updated_at))
        .bind(webhook.archived_at.map(to_unix_micros))
        .bind(id)
        .bind(&webhook.shape)
        .execute(conn)
        .await?
        .rows_affected()
    });
    crate::orgs::config_changed(tx, "webhooks", id).await
}

async fn fetch_one(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &WebhookId,
    lock: bool,
) -> Result<Option<Webhook>, StoreError> {
    let lock = tx.lock_clause(lock);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhooks WHERE org_id = $1 AND environment = $2 AND id = $3{lock}"
    ));
    let row: Option<WebhookRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(|row| decode(row, crypto)).transpose()
}

/// A webhook of the scope.
pub async fn get(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &WebhookId,
) -> Result<Option<Webhook>, StoreError> {
    fetch_one(tx, crypto, scope, id, false).await
}

/// Like [`get`], and locks the row until the transaction ends.
pub async fn get_for_update(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &WebhookId,
) -> Result<Option<Webhook>, StoreError> {
    fetch_one(tx, crypto, scope, id, true).await
}

/// The scope's webhooks, newest first; `status` filters.
pub async fn list(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    status: Option<&str>,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<Webhook>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "webhooks", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(
        COLUMNS,
        "webhooks",
        "AND (CAST($6 AS TEXT) IS NULL OR status = $6)",
        cursor,
    ));
    let rows: Vec<WebhookRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1.clone())
            .bind(i64::from(size) + 1)
            .bind(status)
            .fetch_all(conn)
            .await?
    });
    let rows = rows
        .into_iter()
        .map(|row| decode(row, crypto))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(paginate(rows, cursor, size)))
}

/// The scope's enabled webhooks with their subscriptions: `(id, enabled_events)` (read into
/// [`crate::orgs::event_reactions`]).
pub(crate) async fn enabled_subscriptions(
    tx: &mut Tx,
    scope: &Scope,
) -> Result<Vec<(WebhookId, Vec<String>)>, StoreError> {
    let rows: Vec<(String, String)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, enabled_events FROM webhooks \
             WHERE org_id = $1 AND environment = $2 AND status = 'enabled'",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|(id, events)| {
            Ok((
                WebhookId::parse(&id).map_err(StoreError::corrupt)?,
                serde_json::from_str(&events).map_err(StoreError::corrupt)?,
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Deliveries

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: WebhookDeliveryId,
    pub webhook_id: WebhookId,
    pub scope: Scope,
    pub event_id: EventId,
    pub event_name: String,
    /// The id of the object the event is about.
    pub object_id: String,
    /// The event's sequence: deliveries of one object go in this order.
    pub event_seq: i64,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts_made: u32,
    pub first_attempted_at: Option<OffsetDateTime>,
    pub last_attempted_at: Option<OffsetDateTime>,
    /// `None` while pending: waiting for an earlier delivery of the same object.
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: String,
    webhook_id: String,
    org_id: String,
    environment: String,
    event_id: String,
    event_name: String,
    object_id: String,
    event_seq: i64,
    status: String,
    attempts_made: i64,
    first_attempted_at: Option<i64>,
    last_attempted_at: Option<i64>,
    next_attempt_at: Option<i64>,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    delivered_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: WebhookDeliveryId::parse(&row.id).map_err(StoreError::corrupt)?,
            webhook_id: WebhookId::parse(&row.webhook_id).map_err(StoreError::corrupt)?,
            scope: Scope::new(
                idshare_domain::id::OrgId::parse(&row.org_id).map_err(StoreError::corrupt)?,
                row.environment.parse().map_err(StoreError::corrupt)?,
            ),
            event_id: EventId::parse(&row.event_id).map_err(StoreError::corrupt)?,
            event_name: row.event_name,
            object_id: row.object_id,
            event_seq: row.event_seq,
            status: row.status,
            attempts_made: u32::try_from(row.attempts_made).map_err(StoreError::corrupt)?,
            first_attempted_at: row.first_attempted_at.map(from_unix_micros),
            last_attempted_at: row.last_attempted_at.map(from_unix_micros),
            next_attempt_at: row.next_attempt_at.map(from_unix_micros),
            last_status_code: row
                .last_status_code
                .map(u16::try_from)
                .transpose()
                .map_err(StoreError::corrupt)?,
            last_error: row.last_error,
            delivered_at: row.delivered_at.map(from_unix_micros),
            created_at: from_unix_micros(row.created_at),
            updated_at: from_unix_micros(row.updated_at),
        })
    }
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, org_id, environment, event_id, event_name, \
    object_id, event_seq, status, attempts_made, first_attempted_at, last_attempted_at, next_attempt_at, \
    last_status_code, last_error, delivered_at, created_at, updated_at";

/// The pending deliveries to `webhook_id` of `object_id`'s events before `before_seq`, oldest
/// first, locked until the transaction ends: `(id, next_attempt_at)`.
async fn lock_pending_before(
    tx: &mut Tx,
    webhook_id: &WebhookId,
    object_id: &str,
    before_seq: i64,
) -> Result<Vec<(String, Option<i64>)>, StoreError> {
    let lock = tx.lock_clause(true);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT id, next_attempt_at FROM webhook_deliveries \
         WHERE webhook_id = $1 AND object_id = $2 AND status = 'pending' AND event_seq < $3 \
         ORDER BY event_seq{lock}"
    ));
    Ok(on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(webhook_id.as_str())
            .bind(object_id)
            .bind(before_seq)
            .fetch_all(conn)
            .await?
    }))
}

/// Why a delivery gave way to a later one of its object (see [`gives_way`]).
pub fn gave_way_reason() -> String {
    format!(
        "not retried: a later event of the same object would have waited more than {} minutes \
         for it",
        ORDER_WAIT.as_secs() / 60
    )
}

/// Creates a pending delivery of `event_id` to `webhook_id` and returns its id when its job is
/// to be enqueued now: `None` when it already exists, or when it waits for an earlier pending
/// delivery of the same object (which starts it when it ends). An earlier delivery whose next
/// attempt is due later than this one may wait ends `failed` instead ([`gives_way`]).
pub async fn create_delivery(
    tx: &mut Tx,
    scope: &Scope,
    webhook_id: &WebhookId,
    event_id: &EventId,
    event_name: &str,
    now: OffsetDateTime,
) -> Result<Option<WebhookDeliveryId>, StoreError> {
    let event: Option<(String, i64)> = on_conn!(tx, |conn| {
        sqlx::query_as("SELECT object_id, seq FROM events WHERE id = $1")
            .bind(event_id.as_str())
            .fetch_optional(conn)
            .await?
    });
    let (object_id, event_seq) =
        event.ok_or_else(|| StoreError::corrupt("a delivery of an event that does not exist"))?;
    let earlier = lock_pending_before(tx, webhook_id, &object_id, event_seq).await?;
    let waits = match earlier.last() {
        None => false,
        Some((id, Some(next))) if gives_way(from_unix_micros(*next), now) => {
            end_giving_way(tx, id, now).await?;
            false
        }
        Some(_) => true,
    };
    let id = WebhookDeliveryId::generate();
    let micros = to_unix_micros(now);
    let inserted = on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, org_id, environment, event_id, \
             event_name, object_id, event_seq, status, attempts_made, next_attempt_at, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $10, $10) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(webhook_id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(event_id.as_str())
        .bind(event_name)
        .bind(&object_id)
        .bind(event_seq)
        .bind((!waits).then_some(micros))
        .bind(micros)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok((inserted == 1 && !waits).then_some(id))
}

/// Ends a pending delivery `failed` so that a later one of its object goes: its last error is
/// kept, followed by why it is not retried.
async fn end_giving_way(tx: &mut Tx, id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', \
             last_error = COALESCE(last_error || '; ', '') || $1, next_attempt_at = NULL, \
             updated_at = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(gave_way_reason())
        .bind(to_unix_micros(now))
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Whether an earlier delivery of the same object to the same webhook is pending (read
/// without locks, to decide whether [`wait_for_earlier`] is needed).
pub async fn earlier_pending(tx: &mut Tx, delivery: &Delivery) -> Result<bool, StoreError> {
    let found: Option<String> = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT id FROM webhook_deliveries WHERE webhook_id = $1 AND object_id = $2 \
             AND status = 'pending' AND event_seq < $3 LIMIT 1",
        )
        .bind(delivery.webhook_id.as_str())
        .bind(&delivery.object_id)
        .bind(delivery.event_seq)
        .fetch_optional(conn)
        .await?
    });
    Ok(found.is_some())
}

/// Makes `delivery` wait, with no next attempt, when an earlier delivery of its object is
/// still pending (a redelivered one): that one starts it when it ends. False when none is.
pub async fn wait_for_earlier(tx: &mut Tx, delivery: &Delivery) -> Result<bool, StoreError> {
    let earlier = lock_pending_before(
        tx,
        &delivery.webhook_id,
        &delivery.object_id,
        delivery.event_seq,
    )
    .await?;
    if earlier.is_empty() {
        return Ok(false);
    }
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = NULL \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(delivery.id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(true)
}

/// Since when the next delivery of `delivery`'s object has been waiting for it, if one is.
pub async fn next_waiting_since(
    tx: &mut Tx,
    delivery: &Delivery,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let since: Option<i64> = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT created_at FROM webhook_deliveries WHERE webhook_id = $1 AND object_id = $2 \
             AND status = 'pending' AND event_seq > $3 AND next_attempt_at IS NULL \
             ORDER BY event_seq LIMIT 1",
        )
        .bind(delivery.webhook_id.as_str())
        .bind(&delivery.object_id)
        .bind(delivery.event_seq)
        .fetch_optional(conn)
        .await?
    });
    Ok(since.map(from_unix_micros))
}

/// After a delivery of `object_id` to `webhook_id` ended: starts the oldest pending delivery
/// of that object when it is waiting, and returns it (its job is to be enqueued in this
/// transaction).
pub async fn start_next(
    tx: &mut Tx,
    webhook_id: &WebhookId,
    object_id: &str,
    now: OffsetDateTime,
) -> Result<Option<WebhookDeliveryId>, StoreError> {
    let lock = tx.lock_clause(true);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT id, next_attempt_at FROM webhook_deliveries \
         WHERE webhook_id = $1 AND object_id = $2 AND status = 'pending' \
         ORDER BY event_seq LIMIT 1{lock}"
    ));
    let oldest: Option<(String, Option<i64>)> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(webhook_id.as_str())
            .bind(object_id)
            .fetch_optional(conn)
            .await?
    });
    let Some((id, None)) = oldest else {
        return Ok(None);
    };
    let micros = to_unix_micros(now);
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, updated_at = $1 \
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(micros)
        .bind(&id)
        .execute(conn)
        .await?
        .rows_affected()
    });
    WebhookDeliveryId::parse(&id)
        .map(Some)
        .map_err(StoreError::corrupt)
}

/// A delivery by id alone (the delivery job).
pub async fn get_delivery_any(
    tx: &mut Tx,
    id: &WebhookDeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    fetch_delivery(tx, id, false).await
}

/// Like [`get_delivery_any`], and locks the delivery until the transaction ends (recording an
/// attempt: a later delivery of its object being created meanwhile is seen).
pub async fn get_delivery_for_update(
    tx: &mut Tx,
    id: &WebhookDeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    fetch_delivery(tx, id, true).await
}

async fn fetch_delivery(
    tx: &mut Tx,
    id: &WebhookDeliveryId,
    lock: bool,
) -> Result<Option<Delivery>, StoreError> {
    let lock = tx.lock_clause(lock);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1{lock}"
    ));
    let row: Option<DeliveryRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Delivery::try_from).transpose()
}

/// A delivery of one of the scope's webhooks.
pub async fn get_delivery(
    tx: &mut Tx,
    scope: &Scope,
    webhook_id: &WebhookId,
    id: &WebhookDeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
         WHERE org_id = $1 AND environment = $2 AND webhook_id = $3 AND id = $4"
    ));
    let row: Option<DeliveryRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(webhook_id.as_str())
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Delivery::try_from).transpose()
}

/// A webhook's deliveries, newest first; `status` filters.
pub async fn list_deliveries(
    tx: &mut Tx,
    scope: &Scope,
    webhook_id: &WebhookId,
    status: Option<&str>,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<Delivery>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "webhook_deliveries", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(
        DELIVERY_COLUMNS,
        "webhook_deliveries",
        "AND webhook_id = $6 AND (CAST($7 AS TEXT) IS NULL OR status = $7)",
        cursor,
    ));
    let rows: Vec<DeliveryRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1.clone())
            .bind(i64::from(size) + 1)
            .bind(webhook_id.as_str())
            .bind(status)
            .fetch_all(conn)
            .await?
    });
    let rows = rows
        .into_iter()
        .map(Delivery::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(paginate(rows, cursor, size)))
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: OffsetDateTime,
    /// From sending the request to the end of the answer's excerpt (or the error).
    pub latency: std::time::Duration,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    /// The start of the receiver's answer, as text, bounded by the sender.
    pub response_excerpt: Option<String>,
    /// `delivered`, `pending` (another attempt at `next_attempt_at`) or `failed`.
    pub outcome: &'static str,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// One recorded attempt of a delivery, as its page shows it.
#[derive(Debug, Clone)]
pub struct RecordedAttempt {
    /// 1 for the first attempt; redeliveries continue the count.
    pub number: u32,
    pub at: OffsetDateTime,
    pub latency: std::time::Duration,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    number: i64,
    attempted_at: i64,
    latency_micros: i64,
    status_code: Option<i64>,
    error: Option<String>,
    response_excerpt: Option<String>,
}

/// The attempts of a delivery (found with [`get_delivery`], which checks its scope), first
/// first.
pub async fn attempts(
    tx: &mut Tx,
    id: &WebhookDeliveryId,
) -> Result<Vec<RecordedAttempt>, StoreError> {
    let rows: Vec<AttemptRow> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT number, attempted_at, latency_micros, status_code, error, response_excerpt \
             FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY number",
        )
        .bind(id.as_str())
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|row| {
            Ok(RecordedAttempt {
                number: u32::try_from(row.number).map_err(StoreError::corrupt)?,
                at: from_unix_micros(row.attempted_at),
                latency: std::time::Duration::from_micros(
                    u64::try_from(row.latency_micros).map_err(StoreError::corrupt)?,
                ),
                status_code: row
                    .status_code
                    .map(u16::try_from)
                    .transpose()
                    .map_err(StoreError::corrupt)?,
                error: row.error,
                response_excerpt: row.response_excerpt,
            })
        })
        .collect()
}

/// Records an attempt of a pending delivery, on the delivery and in its list of attempts.
/// Returns false (and changes nothing) when the delivery is no longer pending.
pub async fn record_attempt(
    tx: &mut Tx,
    id: &WebhookDeliveryId,
    attempt: &Attempt,
) -> Result<bool, StoreError> {
    let at = to_unix_micros(attempt.at);
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts_made = attempts_made + 1, \
             first_attempted_at = COALESCE(first_attempted_at, $2), last_attempted_at = $2, \
             next_attempt_at = $3, last_status_code = $4, last_error = $5, \
             delivered_at = CASE WHEN $1 = 'delivered' THEN $2 ELSE delivered_at END, \
             updated_at = $2 WHERE id = $6 AND status = 'pending'",
        )
        .bind(attempt.outcome)
        .bind(at)
        .bind(attempt.next_attempt_at.map(to_unix_micros))
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error.as_deref())
        .bind(id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    if updated != 1 {
        return Ok(false);
    }
    let latency = i64::try_from(attempt.latency.as_micros()).unwrap_or(i64::MAX);
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO webhook_delivery_attempts (delivery_id, number, attempted_at, \
             latency_micros, status_code, error, response_excerpt) \
             SELECT id, attempts_made, $1, $2, $3, $4, $5 FROM webhook_deliveries WHERE id = $6",
        )
        .bind(at)
        .bind(latency)
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error.as_deref())
        .bind(attempt.response_excerpt.as_deref())
        .bind(id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(true)
}

/// Marks a pending delivery `failed` without an attempt (its webhook was disabled or
/// archived, or its job gave up).
pub async fn abandon(
    tx: &mut Tx,
    id: &WebhookDeliveryId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = $1, \
             next_attempt_at = NULL, updated_at = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(reason)
        .bind(to_unix_micros(now))
        .bind(id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

/// Ends every pending delivery of a webhook that was disabled or archived: `failed` with
/// `reason`, redeliverable once the webhook is enabled again.
pub async fn abandon_pending(
    tx: &mut Tx,
    webhook_id: &WebhookId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = $1, \
             next_attempt_at = NULL, updated_at = $2 WHERE webhook_id = $3 AND status = 'pending'",
        )
        .bind(reason)
        .bind(to_unix_micros(now))
        .bind(webhook_id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated)
}

/// Puts a finished (delivered or failed) delivery back to `pending` for a redelivery. Returns
/// false when it is already pending, so concurrent redeliveries enqueue one job.
pub async fn reopen(
    tx: &mut Tx,
    id: &WebhookDeliveryId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let micros = to_unix_micros(now);
    let updated = on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, \
             delivered_at = NULL, updated_at = $1 WHERE id = $2 AND status <> 'pending'",
        )
        .bind(micros)
        .bind(id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}
