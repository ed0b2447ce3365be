//! Inquiries. Fields and note are personal data: they are sealed together under the inquiry's
//! own data key (`data_keys`), which redaction deletes.

use std::collections::BTreeMap;

use idshare_domain::{
    field::FieldValue,
    id::{InquiryId, InquiryTemplateId, InquiryTemplateVersionId},
    inquiry::InquiryStatus,
    time_format::{from_unix_micros, to_unix_micros},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    Crypto, Cursor, DataKey, Page, Scope, StoreError, Tx,
    db::on_conn,
    templates::{cursor_position, page_sql, paginate},
};

/// The personal part of an inquiry, stored only sealed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InquiryData {
    pub fields: BTreeMap<String, FieldValue>,
    pub note: Option<String>,
    #[serde(default)]
    pub reviewer_comment: Option<String>,
    /// Where copied values and files came from (Connect redemption): keyed by field name, or
    /// `file:<kind>` / `document:<kind>` for copied files and documents.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provenance: BTreeMap<String, Provenance>,
    /// The share token whose redemption copied data into this inquiry, once the copy is
    /// committed (the redemption job's idempotency marker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hydrated_by: Option<String>,
}

/// Where one copied value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Provenance {
    pub share_token: String,
    pub source_inquiry: String,
    /// The source's field name, when a field mapping renamed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_field: Option<String>,
    /// RFC 3339.
    pub copied_at: String,
}

#[derive(Debug, Clone)]
pub struct Inquiry {
    pub id: InquiryId,
    pub template_id: Option<InquiryTemplateId>,
    pub template_version_id: Option<InquiryTemplateVersionId>,
    pub status: InquiryStatus,
    pub reference_id: Option<String>,
    pub tags: Vec<String>,
    /// Empty once redacted.
    pub data: InquiryData,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub completed_at: Option<OffsetDateTime>,
    pub failed_at: Option<OffsetDateTime>,
    pub expired_at: Option<OffsetDateTime>,
    pub marked_for_review_at: Option<OffsetDateTime>,
    pub decisioned_at: Option<OffsetDateTime>,
    pub redacted_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    /// How many times the inquiry was submitted to the verification pipeline.
    pub submissions: i64,
    /// The last submission the pipeline finished processing.
    pub processed_submission: i64,
}

/// What a new inquiry starts with. A clone (Connect redemption without a destination
/// template) has no template.
#[derive(Debug, Clone)]
pub struct NewInquiry {
    pub template_id: Option<InquiryTemplateId>,
    pub template_version_id: Option<InquiryTemplateVersionId>,
    pub reference_id: Option<String>,
    pub tags: Vec<String>,
    pub data: InquiryData,
    pub expires_at: Option<OffsetDateTime>,
}

/// A search: by reference id as typed, and by the search index's hash of it
/// ([`crate::inquiry_search::term`]; `None` when nothing is indexed).
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub reference_id: String,
    pub term: Option<Vec<u8>>,
}

/// List filters; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct InquiryFilter {
    /// Inquiries whose reference id is this search, or which the search index finds by it.
    pub search: Option<Search>,
    pub status: Option<InquiryStatus>,
    pub reference_id: Option<String>,
    pub template_id: Option<InquiryTemplateId>,
    pub created_at_start: Option<OffsetDateTime>,
    pub created_at_end: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct InquiryRow {
    id: String,
    template_id: Option<String>,
    template_version_id: Option<String>,
    status: String,
    reference_id: Option<String>,
    tags: String,
    data_sealed: Option<Vec<u8>>,
    wrapped_key: Option<Vec<u8>>,
    created_at: i64,
    updated_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    failed_at: Option<i64>,
    expired_at: Option<i64>,
    marked_for_review_at: Option<i64>,
    decisioned_at: Option<i64>,
    redacted_at: Option<i64>,
    expires_at: Option<i64>,
    submissions: i64,
    processed_submission: i64,
}

const COLUMNS: &str = "id, template_id, template_version_id, status, reference_id, tags, \
    data_sealed, (SELECT wrapped_key FROM data_keys WHERE owner_id = inquiries.id) AS wrapped_key, \
    created_at, updated_at, started_at, completed_at, failed_at, expired_at, \
    marked_for_review_at, decisioned_at, redacted_at, expires_at, submissions, processed_submission";

fn data_context(id: &str) -> String {
    format!("{id}:inquiry-data")
}

fn decode(row: InquiryRow, crypto: &Crypto) -> Result<Inquiry, StoreError> {
    decode_keyed(row, crypto).map(|(inquiry, _)| inquiry)
}

/// Decodes a row, and keeps the data key it unwrapped (`None` once redacted).
fn decode_keyed(
    row: InquiryRow,
    crypto: &Crypto,
) -> Result<(Inquiry, Option<DataKey>), StoreError> {
    let key = row
        .wrapped_key
        .as_deref()
        .map(|wrapped| crypto.unwrap_data_key(&row.id, wrapped))
        .transpose()?;
    let data = match (&row.data_sealed, &key) {
        (Some(sealed), Some(key)) => {
            let plain = key.open(sealed, &data_context(&row.id))?;
            serde_json::from_slice(&plain).map_err(StoreError::corrupt)?
        }
        _ => InquiryData::default(),
    };
    let ts = |v: Option<i64>| v.map(from_unix_micros);
    let inquiry = Inquiry {
        id: InquiryId::parse(&row.id).map_err(StoreError::corrupt)?,
        template_id: row
            .template_id
            .as_deref()
            .map(InquiryTemplateId::parse)
            .transpose()
            .map_err(StoreError::corrupt)?,
        template_version_id: row
            .template_version_id
            .as_deref()
            .map(InquiryTemplateVersionId::parse)
            .transpose()
            .map_err(StoreError::corrupt)?,
        status: row.status.parse().map_err(StoreError::corrupt)?,
        reference_id: row.reference_id,
        tags: serde_json::from_str(&row.tags).map_err(StoreError::corrupt)?,
        data,
        created_at: from_unix_micros(row.created_at),
        updated_at: from_unix_micros(row.updated_at),
        started_at: ts(row.started_at),
        completed_at: ts(row.completed_at),
        failed_at: ts(row.failed_at),
        expired_at: ts(row.expired_at),
        marked_for_review_at: ts(row.marked_for_review_at),
        decisioned_at: ts(row.decisioned_at),
        redacted_at: ts(row.redacted_at),
        expires_at: ts(row.expires_at),
        submissions: row.submissions,
        processed_submission: row.processed_submission,
    };
    Ok((inquiry, key))
}

fn seal_data(key: &DataKey, id: &str, data: &InquiryData) -> Result<Vec<u8>, StoreError> {
    let plain = serde_json::to_vec(data).map_err(StoreError::corrupt)?;
    key.seal(&plain, &data_context(id))
}

pub async fn create(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    new: NewInquiry,
    now: OffsetDateTime,
) -> Result<Inquiry, StoreError> {
    let id = InquiryId::generate();
    let (key, wrapped) = crypto.new_data_key(id.as_str())?;
    let sealed = seal_data(&key, id.as_str(), &new.data)?;
    let tags = serde_json::to_string(&new.tags).map_err(StoreError::corrupt)?;
    let micros = to_unix_micros(now);
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO data_keys (owner_id, wrapped_key, key_id, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id.as_str())
        .bind(wrapped.bytes)
        .bind(wrapped.key_id.as_str())
        .bind(micros)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO inquiries (id, org_id, environment, template_id, template_version_id, \
             status, reference_id, tags, data_sealed, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)",
        )
        .bind(id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(new.template_id.as_ref().map(|t| t.as_str()))
        .bind(new.template_version_id.as_ref().map(|v| v.as_str()))
        .bind(InquiryStatus::Created.as_str())
        .bind(&new.reference_id)
        .bind(tags)
        .bind(sealed)
        .bind(micros)
        .bind(new.expires_at.map(to_unix_micros))
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    crate::inquiry_search::index(tx, crypto, scope, &id, &new.data.fields).await?;
    Ok(Inquiry {
        id,
        template_id: new.template_id,
        template_version_id: new.template_version_id,
        status: InquiryStatus::Created,
        reference_id: new.reference_id,
        tags: new.tags,
        data: new.data,
        created_at: now,
        updated_at: now,
        started_at: None,
        completed_at: None,
        failed_at: None,
        expired_at: None,
        marked_for_review_at: None,
        decisioned_at: None,
        redacted_at: None,
        expires_at: new.expires_at,
        submissions: 0,
        processed_submission: 0,
    })
}

pub async fn get(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &InquiryId,
) -> Result<Option<Inquiry>, StoreError> {
    fetch(tx, crypto, scope, id, false).await
}

/// The objects an inquiry's to-many relationships name, each `(kind, id)` oldest first:
/// verifications and reports by their type (`email-address`, `watchlist`), documents by
/// their kind (`government-id`), and its selfie files (`selfie`).
#[derive(Debug, Clone, Default)]
pub struct Related {
    pub verifications: Vec<(String, String)>,
    pub reports: Vec<(String, String)>,
    pub documents: Vec<(String, String)>,
    pub selfies: Vec<(String, String)>,
}

/// Reads [`Related`] in one query: ids and kinds only, nothing decrypted.
pub async fn related(tx: &mut Tx, scope: &Scope, id: &InquiryId) -> Result<Related, StoreError> {
    const WHERE: &str = "WHERE inquiry_id = $1 AND org_id = $2 AND environment = $3";
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT 'v' AS relation, id, verification_type AS kind, created_at FROM verifications {WHERE} \
         UNION ALL SELECT 'r', id, report_type, created_at FROM reports {WHERE} \
         UNION ALL SELECT 'd', id, kind, created_at FROM documents {WHERE} \
         UNION ALL SELECT 's', id, kind, created_at FROM files {WHERE} \
             AND kind = 'selfie' AND content_sealed IS NOT NULL \
         ORDER BY created_at, id"
    ));
    let rows: Vec<(String, String, String, i64)> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_all(conn)
            .await?
    });
    let mut related = Related::default();
    for (relation, id, kind, _) in rows {
        let list = match relation.as_str() {
            "v" => &mut related.verifications,
            "r" => &mut related.reports,
            "d" => &mut related.documents,
            _ => &mut related.selfies,
        };
        list.push((kind, id));
    }
    Ok(related)
}

/// Reads an inquiry and locks its row until the transaction ends (PostgreSQL `FOR UPDATE`;
/// a SQLite write transaction already holds the database's single write lock).
pub async fn get_for_update(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &InquiryId,
) -> Result<Option<Inquiry>, StoreError> {
    fetch(tx, crypto, scope, id, true).await
}

/// Reads an inquiry with its unwrapped data key (`None` once redacted), for a unit of work that
/// seals more under it: the key is unwrapped once, and lives only as long as the caller keeps
/// it (never beyond its job or request).
pub async fn get_keyed(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &InquiryId,
) -> Result<Option<(Inquiry, Option<DataKey>)>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM inquiries WHERE id = $1 AND org_id = $2 AND environment = $3"
    ));
    let row: Option<InquiryRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(|r| decode_keyed(r, crypto)).transpose()
}

async fn fetch(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &InquiryId,
    for_update: bool,
) -> Result<Option<Inquiry>, StoreError> {
    let lock = tx.lock_clause(for_update);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM inquiries WHERE id = $1 AND org_id = $2 AND environment = $3{lock}"
    ));
    let row: Option<InquiryRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(|r| decode(r, crypto)).transpose()
}

/// Writes back an inquiry read with [`get_for_update`] and changed in memory.
pub async fn save(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    inquiry: &Inquiry,
) -> Result<(), StoreError> {
    let id = inquiry.id.as_str();
    let sealed = if inquiry.redacted_at.is_some() {
        None
    } else {
        let key = data_key(tx, crypto, id)
            .await?
            .ok_or_else(|| StoreError::corrupt("inquiry has no data key"))?;
        Some(seal_data(&key, id, &inquiry.data)?)
    };
    write_row(tx, scope, inquiry, sealed, None).await?;
    if inquiry.redacted_at.is_none() {
        crate::inquiry_search::index(tx, crypto, scope, &inquiry.id, &inquiry.data.fields).await?;
    }
    Ok(())
}

/// Writes back an inquiry read earlier (`seen`, in another transaction) and changed in memory,
/// sealed under its `key`, only if it did not change meanwhile (its status, submissions and
/// update time are those read, and it is not redacted). False when it changed: nothing is
/// written, and the caller starts over from a fresh read.
pub async fn save_if_unchanged(
    tx: &mut Tx,
    crypto: &Crypto,
    key: &DataKey,
    scope: &Scope,
    inquiry: &Inquiry,
    seen: &Inquiry,
) -> Result<bool, StoreError> {
    let sealed = seal_data(key, inquiry.id.as_str(), &inquiry.data)?;
    if write_row(tx, scope, inquiry, Some(sealed), Some(seen)).await? != 1 {
        return Ok(false);
    }
    crate::inquiry_search::index(tx, crypto, scope, &inquiry.id, &inquiry.data.fields).await?;
    Ok(true)
}

/// Updates the inquiry's row from `inquiry` (with its data `sealed`); with `seen`, only if the
/// row still holds what was read then and is not redacted. Returns the rows changed.
async fn write_row(
    tx: &mut Tx,
    scope: &Scope,
    inquiry: &Inquiry,
    sealed: Option<Vec<u8>>,
    seen: Option<&Inquiry>,
) -> Result<u64, StoreError> {
    let tags = serde_json::to_string(&inquiry.tags).map_err(StoreError::corrupt)?;
    let ts = |v: Option<OffsetDateTime>| v.map(to_unix_micros);
    let guard = if seen.is_some() {
        " AND redacted_at IS NULL AND status = $17 AND submissions = $18 \
         AND processed_submission = $19 AND updated_at = $20"
    } else {
        ""
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE inquiries SET status = $1, tags = $2, data_sealed = $3, updated_at = $4, \
         started_at = $5, completed_at = $6, failed_at = $7, expired_at = $8, \
         marked_for_review_at = $9, decisioned_at = $10, expires_at = $11, \
         submissions = $12, processed_submission = $13 \
         WHERE id = $14 AND org_id = $15 AND environment = $16{guard}"
    ));
    Ok(on_conn!(tx, |conn| {
        let mut query = sqlx::query(sql)
            .bind(inquiry.status.as_str())
            .bind(tags)
            .bind(sealed)
            .bind(to_unix_micros(inquiry.updated_at))
            .bind(ts(inquiry.started_at))
            .bind(ts(inquiry.completed_at))
            .bind(ts(inquiry.failed_at))
            .bind(ts(inquiry.expired_at))
            .bind(ts(inquiry.marked_for_review_at))
            .bind(ts(inquiry.decisioned_at))
            .bind(ts(inquiry.expires_at))
            .bind(inquiry.submissions)
            .bind(inquiry.processed_submission)
            .bind(inquiry.id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str());
        if let Some(seen) = seen {
            query = query
                .bind(seen.status.as_str())
                .bind(seen.submissions)
                .bind(seen.processed_submission)
                .bind(to_unix_micros(seen.updated_at));
        }
        query.execute(conn).await?.rows_affected()
    }))
}

/// Erases the inquiry's personal data for good: the data key (which also makes every copy
/// sealed under it unreadable), everything sealed under it (the data, files, documents,
/// results, event payloads), and stored responses that echoed it. On SQLite the erased bytes
/// are zeroed (`secure_delete`) and the write-ahead log is truncated after the commit, so no
/// file of the data directory keeps a copy.
pub async fn redact(
    tx: &mut Tx,
    scope: &Scope,
    id: &InquiryId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let micros = to_unix_micros(now);
    crate::idempotency::forget_inquiry(tx, id.as_str()).await?;
    crate::inquiry_search::forget(tx, id).await?;
    on_conn!(tx, |conn| {
        sqlx::query("DELETE FROM data_keys WHERE owner_id = $1")
            .bind(id.as_str())
            .execute(&mut *conn)
            .await?;
        // The key is gone, so these are unreadable already; erasing them leaves no ciphertext
        // that a copy of the key (an old backup) could open, and nothing to list.
        for statement in [
            "UPDATE files SET content_sealed = NULL WHERE inquiry_id = $1",
            "UPDATE documents SET data_sealed = NULL WHERE inquiry_id = $1",
            "DELETE FROM confirmation_codes WHERE inquiry_id = $1",
        ] {
            sqlx::query(statement)
                .bind(id.as_str())
                .execute(&mut *conn)
                .await?;
        }
        // With the scope, so that the lookup uses the tables' (org, environment, inquiry) index.
        for statement in [
            "UPDATE verifications SET result_sealed = NULL \
             WHERE org_id = $1 AND environment = $2 AND inquiry_id = $3",
            "UPDATE reports SET result_sealed = NULL \
             WHERE org_id = $1 AND environment = $2 AND inquiry_id = $3",
        ] {
            sqlx::query(statement)
                .bind(scope.org_id.as_str())
                .bind(scope.environment.as_str())
                .bind(id.as_str())
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(
            "UPDATE inquiries SET data_sealed = NULL, redacted_at = $1, updated_at = $1 \
             WHERE id = $2 AND org_id = $3 AND environment = $4",
        )
        .bind(micros)
        .bind(id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    crate::events::erase_sealed_payloads(tx, id.as_str()).await?;
    tx.erased_personal_data = true;
    Ok(())
}

/// A newest-first page; `Ok(None)` when the cursor names no inquiry of this scope.
pub async fn list(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    filter: &InquiryFilter,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<Inquiry>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "inquiries", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(
        COLUMNS,
        "inquiries",
        "AND (CAST($6 AS TEXT) IS NULL OR status = $6) \
         AND (CAST($7 AS TEXT) IS NULL OR reference_id = $7) \
         AND (CAST($8 AS TEXT) IS NULL OR template_id = $8) \
         AND (CAST($9 AS BIGINT) IS NULL OR created_at >= $9) \
         AND (CAST($10 AS BIGINT) IS NULL OR created_at <= $10) \
         AND (CAST($11 AS TEXT) IS NULL OR reference_id = $11 \
              OR id IN (SELECT inquiry_id FROM inquiry_search_terms WHERE term = $12))",
        cursor,
    ));
    let rows: Vec<InquiryRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1.clone())
            .bind(i64::from(size) + 1)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.reference_id.as_deref())
            .bind(filter.template_id.as_ref().map(|t| t.as_str()))
            .bind(filter.created_at_start.map(to_unix_micros))
            .bind(filter.created_at_end.map(to_unix_micros))
            .bind(filter.search.as_ref().map(|s| s.reference_id.as_str()))
            .bind(filter.search.as_ref().and_then(|s| s.term.clone()))
            .fetch_all(conn)
            .await?
    });
    let items = rows
        .into_iter()
        .map(|r| decode(r, crypto))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(paginate(items, cursor, size)))
}

/// The scope's inquiries among `ids` (a page's worth: each is decrypted), in no order; an id of
/// another scope is not found.
pub async fn get_many(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    ids: &[InquiryId],
) -> Result<Vec<Inquiry>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let placeholders = (0..ids.len())
        .map(|i| format!("${}", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM inquiries WHERE org_id = $1 AND environment = $2 \
         AND id IN ({placeholders})"
    ));
    let rows: Vec<InquiryRow> = on_conn!(tx, |conn| {
        let mut query = sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str());
        for id in ids {
            query = query.bind(id.as_str());
        }
        query.fetch_all(conn).await?
    });
    rows.into_iter().map(|r| decode(r, crypto)).collect()
}

/// What the overview counts of a scope's inquiries since a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InquiryCounts {
    /// Inquiries created since, by their status now.
    pub created_by_status: Vec<(InquiryStatus, i64)>,
    /// Inquiries waiting for a reviewer now, whenever they were created.
    pub needs_review: i64,
    /// Decisions made since.
    pub approved: i64,
    pub declined: i64,
}

/// Counts for the overview, in three grouped statements over the scope's rows (no personal data
/// is read).
pub async fn counts(
    tx: &mut Tx,
    scope: &Scope,
    since: OffsetDateTime,
) -> Result<InquiryCounts, StoreError> {
    let since = to_unix_micros(since);
    let created: Vec<(String, i64)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT status, COUNT(*) FROM inquiries WHERE org_id = $1 AND environment = $2 \
             AND created_at >= $3 GROUP BY status",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(since)
        .fetch_all(conn)
        .await?
    });
    let needs_review: i64 = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM inquiries WHERE org_id = $1 AND environment = $2 \
             AND status = 'needs_review'",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_one(conn)
        .await?
    });
    let decided: Vec<(String, i64)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT status, COUNT(*) FROM inquiries WHERE org_id = $1 AND environment = $2 \
             AND decisioned_at >= $3 AND status IN ('approved', 'declined') GROUP BY status",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(since)
        .fetch_all(conn)
        .await?
    });
    let decided_as = |status: &str| {
        decided
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n)
    };
    Ok(InquiryCounts {
        created_by_status: created
            .iter()
            .map(|(status, n)| Ok((status.parse().map_err(StoreError::corrupt)?, *n)))
            .collect::<Result<_, StoreError>>()?,
        needs_review,
        approved: decided_as("approved"),
        declined: decided_as("declined"),
    })
}

/// The unwrapped data key of an inquiry (`None` once redacted), for sealing its side data.
pub async fn data_key(
    tx: &mut Tx,
    crypto: &Crypto,
    owner_id: &str,
) -> Result<Option<DataKey>, StoreError> {
    let wrapped: Option<Vec<u8>> = on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT wrapped_key FROM data_keys WHERE owner_id = $1")
            .bind(owner_id)
            .fetch_optional(conn)
            .await?
    });
    wrapped
        .map(|wrapped| crypto.unwrap_data_key(owner_id, &wrapped))
        .transpose()
}

/// Unfinished inquiries past their expiry time, across tenants (for the expiry job).
pub async fn due_to_expire(
    tx: &mut Tx,
    now: OffsetDateTime,
    limit: u32,
) -> Result<Vec<(Scope, InquiryId)>, StoreError> {
    let rows: Vec<(String, String, String)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT org_id, environment, id FROM inquiries \
             WHERE status IN ('created', 'pending') AND expires_at IS NOT NULL AND expires_at < $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(to_unix_micros(now))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?
    });
    Scope::with_ids(rows, InquiryId::parse)
}
