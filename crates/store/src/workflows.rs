//! Workflows, their versions and their runs. A workflow belongs to one organization and
//! environment; its definition lives in numbered versions, one of which is published; a run is
//! one published version's answer to one event, recorded step by step.

use idshare_domain::{
    id::{EventId, WorkflowId, WorkflowRunId, WorkflowVersionId},
    time_format::{from_unix_micros, to_unix_micros},
};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    Cursor, Page, Scope, StoreError, Tx,
    crypto::Crypto,
    db::on_conn,
    templates::{cursor_position, page_sql, paginate},
};

#[derive(Debug, Clone)]
pub struct Workflow {
    pub id: WorkflowId,
    pub scope: Scope,
    pub name: String,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Signs the workflow's HTTPS requests (`wflsec_…`).
    pub secret: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct WorkflowRow {
    id: String,
    org_id: String,
    environment: String,
    name: String,
    status: String,
    secret: Vec<u8>,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "id, org_id, environment, name, status, secret, created_at, updated_at";

pub(crate) fn secret_context(id: &str) -> String {
    format!("{id}:workflow-secret")
}

fn decode(row: WorkflowRow, crypto: &Crypto) -> Result<Workflow, StoreError> {
    let secret = crypto.open_system(&row.secret, &secret_context(&row.id))?;
    Ok(Workflow {
        id: WorkflowId::parse(&row.id).map_err(StoreError::corrupt)?,
        scope: Scope::of_row(&row.org_id, &row.environment)?,
        name: row.name,
        status: row.status,
        secret: String::from_utf8(secret).map_err(StoreError::corrupt)?,
        created_at: from_unix_micros(row.created_at),
        updated_at: from_unix_micros(row.updated_at),
    })
}

pub async fn insert(tx: &mut Tx, crypto: &Crypto, workflow: &Workflow) -> Result<(), StoreError> {
    let id = workflow.id.as_str();
    let secret = crypto.seal_system(workflow.secret.as_bytes(), &secret_context(id))?;
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO workflows ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ));
    on_conn!(tx, |conn| {
        sqlx::query(sql)
            .bind(id)
            .bind(workflow.scope.org_id.as_str())
            .bind(workflow.scope.environment.as_str())
            .bind(&workflow.name)
            .bind(&workflow.status)
            .bind(secret.clone())
            .bind(to_unix_micros(workflow.created_at))
            .bind(to_unix_micros(workflow.updated_at))
            .execute(conn)
            .await?
            .rows_affected()
    });
    crate::orgs::config_changed(tx, "workflows", id).await
}

/// Writes the name and status.
pub async fn save(tx: &mut Tx, workflow: &Workflow) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE workflows SET name = $1, status = $2, updated_at = $3 WHERE id = $4")
            .bind(&workflow.name)
            .bind(&workflow.status)
            .bind(to_unix_micros(workflow.updated_at))
            .bind(workflow.id.as_str())
            .execute(conn)
            .await?
            .rows_affected()
    });
    crate::orgs::config_changed(tx, "workflows", workflow.id.as_str()).await
}

async fn fetch_one(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &WorkflowId,
    lock: bool,
) -> Result<Option<Workflow>, StoreError> {
    let lock = tx.lock_clause(lock);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM workflows WHERE org_id = $1 AND environment = $2 AND id = $3{lock}"
    ));
    let row: Option<WorkflowRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(|row| decode(row, crypto)).transpose()
}

pub async fn get(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &WorkflowId,
) -> Result<Option<Workflow>, StoreError> {
    fetch_one(tx, crypto, scope, id, false).await
}

/// Like [`get`], and locks the row until the transaction ends.
pub async fn get_for_update(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    id: &WorkflowId,
) -> Result<Option<Workflow>, StoreError> {
    fetch_one(tx, crypto, scope, id, true).await
}

/// The scope's workflows, newest first.
pub async fn list(
    tx: &mut Tx,
    crypto: &Crypto,
    scope: &Scope,
    status: Option<&str>,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<Workflow>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "workflows", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(
        COLUMNS,
        "workflows",
        "AND (CAST($6 AS TEXT) IS NULL OR status = $6)",
        cursor,
    ));
    let rows: Vec<WorkflowRow> = on_conn!(tx, |conn| {
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

// ---------------------------------------------------------------------------------------------
// Versions

#[derive(Debug, Clone)]
pub struct Version {
    pub id: WorkflowVersionId,
    pub workflow_id: WorkflowId,
    pub number: i64,
    /// `draft`, `published` or `superseded`.
    pub status: String,
    /// The validated definition, as JSON.
    pub definition: Value,
    pub trigger_event: String,
    pub created_at: OffsetDateTime,
    pub published_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    id: String,
    workflow_id: String,
    number: i64,
    status: String,
    definition: String,
    trigger_event: String,
    created_at: i64,
    published_at: Option<i64>,
}

impl TryFrom<VersionRow> for Version {
    type Error = StoreError;
    fn try_from(row: VersionRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: WorkflowVersionId::parse(&row.id).map_err(StoreError::corrupt)?,
            workflow_id: WorkflowId::parse(&row.workflow_id).map_err(StoreError::corrupt)?,
            number: row.number,
            status: row.status,
            definition: serde_json::from_str(&row.definition).map_err(StoreError::corrupt)?,
            trigger_event: row.trigger_event,
            created_at: from_unix_micros(row.created_at),
            published_at: row.published_at.map(from_unix_micros),
        })
    }
}

const VERSION_COLUMNS: &str =
    "id, workflow_id, number, status, definition, trigger_event, created_at, published_at";

/// Adds a draft version numbered after the workflow's last one.
pub async fn insert_version(
    tx: &mut Tx,
    scope: &Scope,
    workflow_id: &WorkflowId,
    definition: &Value,
    trigger_event: &str,
    now: OffsetDateTime,
) -> Result<Version, StoreError> {
    let number: i64 = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM workflow_versions WHERE workflow_id = $1",
        )
        .bind(workflow_id.as_str())
        .fetch_one(conn)
        .await?
    });
    let version = Version {
        id: WorkflowVersionId::generate(),
        workflow_id: workflow_id.clone(),
        number,
        status: "draft".to_owned(),
        definition: definition.clone(),
        trigger_event: trigger_event.to_owned(),
        created_at: now,
        published_at: None,
    };
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO workflow_versions (id, workflow_id, org_id, environment, number, status, \
             definition, trigger_event, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8)",
        )
        .bind(version.id.as_str())
        .bind(workflow_id.as_str())
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .bind(number)
        .bind(definition.to_string())
        .bind(trigger_event)
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(version)
}

/// A workflow's versions, newest first.
pub async fn versions(tx: &mut Tx, workflow_id: &WorkflowId) -> Result<Vec<Version>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM workflow_versions WHERE workflow_id = $1 \
         ORDER BY number DESC"
    ));
    let rows: Vec<VersionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(workflow_id.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Version::try_from).collect()
}

/// A version by id alone (a run's job).
pub async fn get_version(
    tx: &mut Tx,
    id: &WorkflowVersionId,
) -> Result<Option<Version>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM workflow_versions WHERE id = $1"
    ));
    let row: Option<VersionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Version::try_from).transpose()
}

/// Publishes `version`: the published one before it becomes `superseded`.
pub async fn publish(
    tx: &mut Tx,
    version: &WorkflowVersionId,
    workflow_id: &WorkflowId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE workflow_versions SET status = 'superseded' \
             WHERE workflow_id = $1 AND status = 'published'",
        )
        .bind(workflow_id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE workflow_versions SET status = 'published', published_at = $1 WHERE id = $2",
        )
        .bind(to_unix_micros(now))
        .bind(version.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    crate::orgs::config_changed(tx, "workflows", workflow_id.as_str()).await
}

/// The published versions of the scope's enabled workflows, by workflow (read into
/// [`crate::orgs::event_reactions`]).
pub(crate) async fn enabled_triggers(
    tx: &mut Tx,
    scope: &Scope,
) -> Result<Vec<Version>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM workflow_versions v JOIN workflows w ON w.id = v.workflow_id \
         WHERE v.org_id = $1 AND v.environment = $2 \
         AND v.status = 'published' AND w.status = 'enabled' ORDER BY v.workflow_id",
        VERSION_COLUMNS
            .split(", ")
            .map(|c| format!("v.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let rows: Vec<VersionRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Version::try_from).collect()
}

// ---------------------------------------------------------------------------------------------
// Runs

#[derive(Debug, Clone)]
pub struct Run {
    pub id: WorkflowRunId,
    pub workflow_id: WorkflowId,
    pub version_id: WorkflowVersionId,
    pub scope: Scope,
    pub event_id: EventId,
    pub event_name: String,
    /// How many runs led to this one: 1 when the triggering event was not caused by a run.
    pub chain: u32,
    /// `created`, `in_progress`, `completed` or `errored`.
    pub status: String,
    /// One record per step reached.
    pub steps: Vec<Value>,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub completed_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    workflow_id: String,
    version_id: String,
    org_id: String,
    environment: String,
    event_id: String,
    event_name: String,
    chain: i64,
    status: String,
    steps: String,
    error: Option<String>,
    created_at: i64,
    updated_at: i64,
    completed_at: Option<i64>,
}

impl TryFrom<RunRow> for Run {
    type Error = StoreError;
    fn try_from(row: RunRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: WorkflowRunId::parse(&row.id).map_err(StoreError::corrupt)?,
            workflow_id: WorkflowId::parse(&row.workflow_id).map_err(StoreError::corrupt)?,
            version_id: WorkflowVersionId::parse(&row.version_id).map_err(StoreError::corrupt)?,
            scope: Scope::of_row(&row.org_id, &row.environment)?,
            event_id: EventId::parse(&row.event_id).map_err(StoreError::corrupt)?,
            event_name: row.event_name,
            chain: u32::try_from(row.chain).map_err(StoreError::corrupt)?,
            status: row.status,
            steps: serde_json::from_str(&row.steps).map_err(StoreError::corrupt)?,
            error: row.error,
            created_at: from_unix_micros(row.created_at),
            updated_at: from_unix_micros(row.updated_at),
            completed_at: row.completed_at.map(from_unix_micros),
        })
    }
}

const RUN_COLUMNS: &str = "id, workflow_id, version_id, org_id, environment, event_id, \
    event_name, chain, status, steps, error, created_at, updated_at, completed_at";

/// Creates the run of `version` for `event_id`; `None` when it already exists (an event runs
/// a workflow version once).
pub async fn insert_run(tx: &mut Tx, run: &Run) -> Result<bool, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO workflow_runs ({RUN_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT DO NOTHING"
    ));
    let inserted = on_conn!(tx, |conn| {
        sqlx::query(sql)
            .bind(run.id.as_str())
            .bind(run.workflow_id.as_str())
            .bind(run.version_id.as_str())
            .bind(run.scope.org_id.as_str())
            .bind(run.scope.environment.as_str())
            .bind(run.event_id.as_str())
            .bind(&run.event_name)
            .bind(i64::from(run.chain))
            .bind(&run.status)
            .bind(Value::from(run.steps.clone()).to_string())
            .bind(run.error.as_deref())
            .bind(to_unix_micros(run.created_at))
            .bind(to_unix_micros(run.updated_at))
            .bind(run.completed_at.map(to_unix_micros))
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(inserted == 1)
}

/// Writes a run's progress.
pub async fn save_run(tx: &mut Tx, run: &Run) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query(
            "UPDATE workflow_runs SET status = $1, steps = $2, error = $3, updated_at = $4, \
             completed_at = $5 WHERE id = $6",
        )
        .bind(&run.status)
        .bind(Value::from(run.steps.clone()).to_string())
        .bind(run.error.as_deref())
        .bind(to_unix_micros(run.updated_at))
        .bind(run.completed_at.map(to_unix_micros))
        .bind(run.id.as_str())
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

async fn fetch_run(
    tx: &mut Tx,
    scope: Option<&Scope>,
    id: &WorkflowRunId,
    lock: bool,
) -> Result<Option<Run>, StoreError> {
    let lock = tx.lock_clause(lock);
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = $1 \
         AND (CAST($2 AS TEXT) IS NULL OR (org_id = $2 AND environment = $3)){lock}"
    ));
    let row: Option<RunRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(scope.map(|s| s.org_id.as_str()))
            .bind(scope.map(|s| s.environment.as_str()))
            .fetch_optional(conn)
            .await?
    });
    row.map(Run::try_from).transpose()
}

/// A run of the scope.
pub async fn get_run(
    tx: &mut Tx,
    scope: &Scope,
    id: &WorkflowRunId,
) -> Result<Option<Run>, StoreError> {
    fetch_run(tx, Some(scope), id, false).await
}

/// A run by id alone (the run's job).
pub async fn get_run_any(tx: &mut Tx, id: &WorkflowRunId) -> Result<Option<Run>, StoreError> {
    fetch_run(tx, None, id, false).await
}

/// A run by id alone, locked until the transaction ends.
pub async fn get_run_for_update(
    tx: &mut Tx,
    id: &WorkflowRunId,
) -> Result<Option<Run>, StoreError> {
    fetch_run(tx, None, id, true).await
}

/// List filters; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub workflow_id: Option<WorkflowId>,
    pub status: Option<String>,
}

/// The scope's runs, newest first.
pub async fn list_runs(
    tx: &mut Tx,
    scope: &Scope,
    filter: &RunFilter,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<Run>>, StoreError> {
    let Some(position) = cursor_position(tx, scope, "workflow_runs", cursor).await? else {
        return Ok(None);
    };
    let sql = sqlx::AssertSqlSafe(page_sql(
        RUN_COLUMNS,
        "workflow_runs",
        "AND (CAST($6 AS TEXT) IS NULL OR workflow_id = $6) \
         AND (CAST($7 AS TEXT) IS NULL OR status = $7)",
        cursor,
    ));
    let rows: Vec<RunRow> = on_conn!(tx, |conn| {
        sqlx::query_as(sql)
            .bind(scope.org_id.as_str())
            .bind(scope.environment.as_str())
            .bind(position.0)
            .bind(position.1.clone())
            .bind(i64::from(size) + 1)
            .bind(filter.workflow_id.as_ref().map(|w| w.as_str()))
            .bind(filter.status.as_deref())
            .fetch_all(conn)
            .await?
    });
    let rows = rows
        .into_iter()
        .map(Run::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(paginate(rows, cursor, size)))
}
