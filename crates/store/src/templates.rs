//! Inquiry templates and their immutable versions. Exactly one version of a template is
//! `published` at a time; new inquiries lock the published version current at creation.
//!
//! A version's definition never changes, and every read or write of an inquiry needs it: it is
//! parsed once per process and shared ([`TemplateVersion::definition`]), from a cache bounded
//! in entries and in definition bytes.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use hashlink::LruCache;
use idshare_domain::{
    id::{InquiryTemplateId, InquiryTemplateVersionId},
    template::TemplateDefinition,
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{Cursor, Page, Scope, StoreError, Tx, db::on_conn};

#[derive(Debug, Clone)]
pub struct Template {
    pub id: InquiryTemplateId,
    pub name: String,
    pub published_version_id: Option<InquiryTemplateVersionId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStatus {
    Draft,
    Published,
    Superseded,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "draft",
            VersionStatus::Published => "published",
            VersionStatus::Superseded => "superseded",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "draft" => Ok(Self::Draft),
            "published" => Ok(Self::Published),
            "superseded" => Ok(Self::Superseded),
            other => Err(StoreError::corrupt(format!(
                "unknown version status {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TemplateVersion {
    pub id: InquiryTemplateVersionId,
    pub template_id: InquiryTemplateId,
    pub version_number: i64,
    pub status: VersionStatus,
    /// The validated definition, shared by every lookup of this version in the process.
    pub definition: Arc<TemplateDefinition>,
    pub created_at: OffsetDateTime,
    pub published_at: Option<OffsetDateTime>,
}

impl TemplateVersion {
    /// The definition as the API shows it (and as it is stored): every default written out.
    pub fn definition_json(&self) -> serde_json::Value {
        serde_json::to_value(&*self.definition).unwrap_or_default()
    }
}

/// A validated definition ready to be stored, serialized before any transaction opens.
#[derive(Debug, Clone)]
pub struct NewDefinition {
    parsed: Arc<TemplateDefinition>,
    json: String,
}

impl NewDefinition {
    pub fn new(parsed: TemplateDefinition) -> Result<Self, serde_json::Error> {
        let json = serde_json::to_string(&parsed)?;
        Ok(Self {
            parsed: Arc::new(parsed),
            json,
        })
    }

    pub fn parsed(&self) -> &TemplateDefinition {
        &self.parsed
    }
}

/// The most definitions the cache keeps, and the most bytes of stored JSON they may add up to
/// (parsed, they take a few times that).
const CACHED_DEFINITIONS: usize = 2_048;
const CACHED_DEFINITION_BYTES: usize = 16 * 1024 * 1024;

/// Parsed definitions by version id, least recently used first, with their JSON sizes.
struct DefinitionCache {
    entries: LruCache<InquiryTemplateVersionId, (Arc<TemplateDefinition>, usize)>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl DefinitionCache {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: LruCache::new_unbounded(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    fn get(&mut self, id: &InquiryTemplateVersionId) -> Option<Arc<TemplateDefinition>> {
        self.entries
            .get(id)
            .map(|(definition, _)| Arc::clone(definition))
    }

    /// Keeps `definition` (`bytes` of JSON), evicting the least recently used ones beyond the
    /// bounds. A definition bigger than the whole budget is not kept.
    fn insert(
        &mut self,
        id: &InquiryTemplateVersionId,
        definition: &Arc<TemplateDefinition>,
        bytes: usize,
    ) {
        if bytes > self.max_bytes {
            return;
        }
        if let Some((_, replaced)) = self
            .entries
            .insert(id.clone(), (Arc::clone(definition), bytes))
        {
            self.bytes -= replaced;
        }
        self.bytes += bytes;
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            match self.entries.remove_lru() {
                Some((_, (_, evicted))) => self.bytes -= evicted,
                None => break,
            }
        }
    }
}

static DEFINITIONS: LazyLock<Mutex<DefinitionCache>> = LazyLock::new(|| {
    Mutex::new(DefinitionCache::new(
        CACHED_DEFINITIONS,
        CACHED_DEFINITION_BYTES,
    ))
});

fn definitions() -> std::sync::MutexGuard<'static, DefinitionCache> {
    // The cache holds no invariant a panic could break halfway.
    DEFINITIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The definition of a stored version: from the cache, or parsed (off the async runtime's
/// threads, since a definition stored before the caps may be large) and then cached.
async fn stored_definition(
    id: &InquiryTemplateVersionId,
    json: String,
) -> Result<Arc<TemplateDefinition>, StoreError> {
    if let Some(definition) = definitions().get(id) {
        return Ok(definition);
    }
    let bytes = json.len();
    let definition = tokio::task::spawn_blocking(move || {
        TemplateDefinition::from_stored_json(&json).map(Arc::new)
    })
    .await
    .map_err(|e| StoreError::corrupt(format!("parsing template version {id}: {e}")))?
    .map_err(|e| StoreError::corrupt(format!("template version {id} does not parse: {e}")))?;
    definitions().insert(id, &definition, bytes);
    Ok(definition)
}

/// The definition of a version whose id the caller read from a row of this scope (an inquiry's
/// pinned version), straight from the cache: versions never change, so no read is needed.
/// `None` when it is not cached; read it with [`get_version`] then.
pub fn cached_definition(id: &InquiryTemplateVersionId) -> Option<Arc<TemplateDefinition>> {
    definitions().get(id)
}

#[derive(sqlx::FromRow)]
struct TemplateRow {
    id: String,
    name: String,
    published_version_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<TemplateRow> for Template {
    type Error = StoreError;
    fn try_from(row: TemplateRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: InquiryTemplateId::parse(&row.id).map_err(StoreError::corrupt)?,
            name: row.name,
            published_version_id: row
                .published_version_id
                .as_deref()
                .map(InquiryTemplateVersionId::parse)
                .transpose()
                .map_err(StoreError::corrupt)?,
            created_at: from_unix_micros(row.created_at),
            updated_at: from_unix_micros(row.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    id: String,
    template_id: String,
    version_number: i64,
    status: String,
    definition: String,
    created_at: i64,
    published_at: Option<i64>,
}

impl VersionRow {
    async fn into_version(self) -> Result<TemplateVersion, StoreError> {
        let id = InquiryTemplateVersionId::parse(&self.id).map_err(StoreError::corrupt)?;
        Ok(TemplateVersion {
            definition: stored_definition(&id, self.definition).await?,
            id,
            template_id: InquiryTemplateId::parse(&self.template_id)
                .map_err(StoreError::corrupt)?,
            version_number: self.version_number,
            status: VersionStatus::parse(&self.status)?,
            created_at: from_unix_micros(self.created_at),
            published_at: self.published_at.map(from_unix_micros),
        })
    }
}

const TEMPLATE_COLUMNS: &str = "id, name, published_version_id, created_at, updated_at";
const VERSION_COLUMNS: &str =
    "id, template_id, version_number, status, definition, created_at, published_at";

/// Creates a template with its first version, published at once.
pub async fn create(
    tx: &mut Tx,
    scope: &Scope,
    name: &str,
    definition: &NewDefinition,
    now: OffsetDateTime,
) -> Result<(Template, TemplateVersion), StoreError> {
    let template_id = InquiryTemplateId::generate();
    let version = TemplateVersion {
        id: InquiryTemplateVersionId::generate(),
        template_id: template_id.clone(),
        version_number: 1,
        status: VersionStatus::Published,
        definition: Arc::clone(&definition.parsed),
        created_at: now,
        published_at: Some(now),
    };
    let template = Template {
        id: template_id,
        name: name.to_owned(),
        published_version_id: Some(version.id.clone()),
        created_at: now,
        updated_at: now,
    };
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO inquiry_templates \
             (id, org_id, environment, name, published_version_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, $5)",
        )
        .bind(template.id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(name)
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    insert_version(tx, scope, &version, definition).await?;
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE inquiry_templates SET published_version_id = $1 WHERE id = $2")
            .bind(version.id.as_str())
            .bind(template.id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok((template, version))
}

/// Inserts the version and caches its definition (a rolled-back insert leaves a cache entry no
/// lookup can reach: lookups start from the row).
async fn insert_version(
    tx: &mut Tx,
    scope: &Scope,
    version: &TemplateVersion,
    definition: &NewDefinition,
) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO inquiry_template_versions \
             (id, template_id, org_id, environment, version_number, status, definition, \
              created_at, published_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(version.id.as_str())
        .bind(version.template_id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(version.version_number)
        .bind(version.status.as_str())
        .bind(definition.json.as_str())
        .bind(to_unix_micros(version.created_at))
        .bind(version.published_at.map(to_unix_micros))
        .execute(conn)
        .await?
        .rows_affected()
    });
    definitions().insert(&version.id, &definition.parsed, definition.json.len());
    Ok(())
}

pub async fn get(
    tx: &mut Tx,
    scope: &Scope,
    id: &InquiryTemplateId,
) -> Result<Option<Template>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM inquiry_templates \
         WHERE id = $1 AND org_id = $2 AND environment = $3"
    ));
    let row: Option<TemplateRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Template::try_from).transpose()
}

/// Reads a template and locks its row until the transaction ends (PostgreSQL `FOR UPDATE`; a
/// SQLite write transaction already holds the single write lock).
pub async fn get_for_update(
    tx: &mut Tx,
    scope: &Scope,
    id: &InquiryTemplateId,
) -> Result<Option<Template>, StoreError> {
    let lock = tx.lock_clause(true);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM inquiry_templates \
         WHERE id = $1 AND org_id = $2 AND environment = $3{lock}"
    ));
    let row: Option<TemplateRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Template::try_from).transpose()
}

pub async fn list(
    tx: &mut Tx,
    scope: &Scope,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<Template>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "inquiry_templates", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(TEMPLATE_COLUMNS, "inquiry_templates", "", cursor));
    let rows: Vec<TemplateRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1)
            .bind(i64::from(size) + 1)
            .fetch_all(conn)
            .await?
    });
    let rows = rows
        .into_iter()
        .map(Template::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(paginate(rows, cursor, size)))
}

/// The names of the scope's templates, to label what refers to them (a page reads them once).
pub async fn names(
    tx: &mut Tx,
    scope: &Scope,
) -> Result<HashMap<InquiryTemplateId, String>, StoreError> {
    let rows: Vec<(String, String)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, name FROM inquiry_templates WHERE org_id = $1 AND environment = $2",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|(id, name)| {
            Ok((
                InquiryTemplateId::parse(&id).map_err(StoreError::corrupt)?,
                name,
            ))
        })
        .collect()
}

pub async fn get_version(
    tx: &mut Tx,
    scope: &Scope,
    id: &InquiryTemplateVersionId,
) -> Result<Option<TemplateVersion>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM inquiry_template_versions \
         WHERE id = $1 AND org_id = $2 AND environment = $3"
    ));
    let row: Option<VersionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    match row {
        Some(row) => row.into_version().await.map(Some),
        None => Ok(None),
    }
}

pub async fn list_versions(
    tx: &mut Tx,
    scope: &Scope,
    template_id: &InquiryTemplateId,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<TemplateVersion>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "inquiry_template_versions", cursor).await?
    else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(
        VERSION_COLUMNS,
        "inquiry_template_versions",
        "AND template_id = $6",
        cursor,
    ));
    let rows: Vec<VersionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1)
            .bind(i64::from(size) + 1)
            .bind(template_id.as_str())
            .fetch_all(conn)
            .await?
    });
    let mut versions = Vec::with_capacity(rows.len());
    for row in rows {
        versions.push(row.into_version().await?);
    }
    Ok(Some(paginate(versions, cursor, size)))
}

/// Adds a draft version with the next number.
pub async fn create_version(
    tx: &mut Tx,
    scope: &Scope,
    template_id: &InquiryTemplateId,
    definition: &NewDefinition,
    now: OffsetDateTime,
) -> Result<TemplateVersion, StoreError> {
    let next: i64 = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COALESCE(MAX(version_number), 0) + 1 FROM inquiry_template_versions \
             WHERE template_id = $1",
        )
        .bind(template_id.as_str())
        .fetch_one(conn)
        .await?
    });
    let version = TemplateVersion {
        id: InquiryTemplateVersionId::generate(),
        template_id: template_id.clone(),
        version_number: next,
        status: VersionStatus::Draft,
        definition: Arc::clone(&definition.parsed),
        created_at: now,
        published_at: None,
    };
    insert_version(tx, scope, &version, definition).await?;
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE inquiry_templates SET updated_at = $1 WHERE id = $2")
            .bind(to_unix_micros(now))
            .bind(template_id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(version)
}

/// Publishes a version: the previously published one becomes `superseded`.
pub async fn publish_version(
    tx: &mut Tx,
    version: &TemplateVersion,
    now: OffsetDateTime,
) -> Result<TemplateVersion, StoreError> {
    let micros = to_unix_micros(now);
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE inquiry_template_versions SET status = 'superseded' \
             WHERE template_id = $1 AND status = 'published'",
        )
        .bind(version.template_id.as_str())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE inquiry_template_versions SET status = 'published', published_at = $1 \
             WHERE id = $2",
        )
        .bind(micros)
        .bind(version.id.as_str())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE inquiry_templates SET published_version_id = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(version.id.as_str())
        .bind(micros)
        .bind(version.template_id.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(TemplateVersion {
        status: VersionStatus::Published,
        published_at: Some(now),
        ..version.clone()
    })
}

/// Resolves a cursor object id to its `(created_at, id)` position within the scope.
/// `Ok(None)` means the cursor names no object of this list.
pub(crate) async fn cursor_position(
    tx: &mut Tx,
    scope: &Scope,
    table: &'static str,
    cursor: Cursor<'_>,
) -> Result<Option<(Option<i64>, Option<String>)>, StoreError> {
    let id = match cursor {
        Cursor::Start => return Ok(Some((None, None))),
        Cursor::After(id) | Cursor::Before(id) => id,
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT created_at FROM {table} WHERE id = $1 AND org_id = $2 AND environment = $3"
    ));
    let created_at: Option<i64> = on_conn!(tx, |conn| {
        sqlx::query_scalar(sql)
            .bind(id)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_optional(conn)
            .await?
    });
    Ok(created_at.map(|c| (Some(c), Some(id.to_owned()))))
}

/// The keyset condition and order of a newest-first page: rows past the cursor position bound
/// as `$3` (created_at) and `$4` (id), in the direction the cursor walks.
pub(crate) fn keyset(cursor: Cursor<'_>) -> (&'static str, &'static str) {
    match cursor {
        Cursor::Before(_) => (
            "(created_at > $3 OR (created_at = $3 AND id > $4))",
            "created_at ASC, id ASC",
        ),
        Cursor::Start | Cursor::After(_) => (
            "(created_at < $3 OR (created_at = $3 AND id < $4))",
            "created_at DESC, id DESC",
        ),
    }
}

/// A newest-first page query. Binds: $1 org, $2 environment, $3/$4 cursor position (NULL for
/// the first page), $5 limit; `extra_filter` may use $6 and up.
pub(crate) fn page_sql(
    columns: &str,
    table: &str,
    extra_filter: &str,
    cursor: Cursor<'_>,
) -> String {
    let (comparison, order) = keyset(cursor);
    format!(
        "SELECT {columns} FROM {table} \
         WHERE org_id = $1 AND environment = $2 {extra_filter} \
         AND (CAST($3 AS BIGINT) IS NULL OR CAST($4 AS TEXT) IS NULL OR {comparison}) \
         ORDER BY {order} LIMIT $5"
    )
}

/// Trims the one look-ahead row and restores newest-first order.
pub(crate) fn paginate<T>(mut rows: Vec<T>, cursor: Cursor<'_>, size: u32) -> Page<T> {
    let size = size as usize;
    let more = rows.len() > size;
    rows.truncate(size);
    match cursor {
        Cursor::Before(_) => {
            rows.reverse();
            Page {
                items: rows,
                has_newer: more,
                has_older: true,
            }
        }
        Cursor::After(_) => Page {
            items: rows,
            has_newer: true,
            has_older: more,
        },
        Cursor::Start => Page {
            items: rows,
            has_newer: false,
            has_older: more,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(keys: usize) -> Arc<TemplateDefinition> {
        let schemas: Vec<serde_json::Value> = (0..keys)
            .map(|i| serde_json::json!({"key": format!("f-{i}"), "type": "string"}))
            .collect();
        Arc::new(TemplateDefinition::parse(&serde_json::json!({"field-schemas": schemas})).unwrap())
    }

    #[test]
    fn the_cache_shares_one_parse_and_stays_within_its_bounds() {
        let mut cache = DefinitionCache::new(3, 100);
        let ids: Vec<InquiryTemplateVersionId> = (0..5)
            .map(|_| InquiryTemplateVersionId::generate())
            .collect();
        let first = definition(1);
        cache.insert(&ids[0], &first, 10);
        assert!(Arc::ptr_eq(&cache.get(&ids[0]).unwrap(), &first));

        // By count: the least recently used goes (ids[1]; ids[0] was just read).
        for id in &ids[1..3] {
            cache.insert(id, &definition(2), 10);
        }
        assert!(cache.get(&ids[0]).is_some());
        cache.insert(&ids[3], &definition(3), 10);
        assert_eq!(cache.entries.len(), 3);
        assert!(cache.get(&ids[1]).is_none());
        assert!(cache.get(&ids[0]).is_some());

        // By bytes: a big one pushes out as many as needed; one over the budget is not kept.
        cache.insert(&ids[4], &definition(4), 85);
        assert_eq!(cache.bytes, 95);
        assert!(cache.get(&ids[4]).is_some() && cache.get(&ids[0]).is_some());
        assert!(cache.get(&ids[2]).is_none() && cache.get(&ids[3]).is_none());
        let huge = InquiryTemplateVersionId::generate();
        cache.insert(&huge, &definition(1), 101);
        assert!(cache.get(&huge).is_none());
        assert_eq!(cache.bytes, 95);

        // Inserting again replaces without counting twice.
        cache.insert(&ids[0], &first, 10);
        assert_eq!((cache.entries.len(), cache.bytes), (2, 95));
    }
}
