//! Organizations (tenants). Not scoped: an organization is the scope. Also what an event of
//! an organization sets in motion (its webhooks' subscriptions and workflow triggers), read once
//! and cached per node under the organization's configuration generation.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use idshare_domain::{
    id::{OrgId, WebhookId},
    time_format::{from_unix_micros, to_unix_micros},
};
use time::OffsetDateTime;

use crate::{Scope, StoreError, Tx, db::on_conn, webhooks, workflows};

#[derive(Debug, Clone)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: String,
    name: String,
    created_at: i64,
}

impl TryFrom<OrgRow> for Organization {
    type Error = StoreError;
    fn try_from(row: OrgRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: OrgId::parse(&row.id).map_err(StoreError::corrupt)?,
            name: row.name,
            created_at: from_unix_micros(row.created_at),
        })
    }
}

pub async fn create(
    tx: &mut Tx,
    name: &str,
    now: OffsetDateTime,
) -> Result<Organization, StoreError> {
    let org = Organization {
        id: OrgId::generate(),
        name: name.to_owned(),
        created_at: now,
    };
    on_conn!(tx, |conn| {
        sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(org.id.as_str())
            .bind(&org.name)
            .bind(to_unix_micros(now))
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(org)
}

pub async fn get(tx: &mut Tx, id: &OrgId) -> Result<Option<Organization>, StoreError> {
    let row: Option<OrgRow> = on_conn!(tx, |conn| {
        sqlx::query_as("SELECT id, name, created_at FROM organizations WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    row.map(Organization::try_from).transpose()
}

/// The names of the organization of `scope` and of every organization connected to it in
/// either direction in the scope's environment: what its pages may call its partners. One
/// statement, whatever the page lists.
pub async fn partner_names(
    tx: &mut Tx,
    scope: &Scope,
) -> Result<HashMap<OrgId, String>, StoreError> {
    let rows: Vec<(String, String)> = on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, name FROM organizations WHERE id = $1 \
             OR id IN (SELECT destination_org_id FROM connections \
                       WHERE source_org_id = $1 AND environment = $2) \
             OR id IN (SELECT source_org_id FROM connections \
                       WHERE destination_org_id = $1 AND environment = $2)",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_all(conn)
        .await?
    });
    rows.into_iter()
        .map(|(id, name)| Ok((OrgId::parse(&id).map_err(StoreError::corrupt)?, name)))
        .collect()
}

/// Since when the organization requires two-factor authentication of every user, if it does.
pub async fn two_factor_required(
    tx: &mut Tx,
    id: &OrgId,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let at: Option<Option<i64>> = on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT two_factor_required_at FROM organizations WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(conn)
            .await?
    });
    Ok(at.flatten().map(from_unix_micros))
}

/// Requires two-factor authentication from `since` (`Some`), or no longer (`None`).
pub async fn set_two_factor_required(
    tx: &mut Tx,
    id: &OrgId,
    since: Option<OffsetDateTime>,
) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE organizations SET two_factor_required_at = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(since.map(to_unix_micros))
            .execute(conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Every organization, oldest first (operator command: there are few).
pub async fn list(tx: &mut Tx) -> Result<Vec<Organization>, StoreError> {
    let rows: Vec<OrgRow> = on_conn!(tx, |conn| {
        sqlx::query_as("SELECT id, name, created_at FROM organizations ORDER BY created_at, id")
            .fetch_all(conn)
            .await?
    });
    rows.into_iter().map(Organization::try_from).collect()
}

/// How many organizations exist (`idshare demo` sets up only a database without any).
pub async fn count(tx: &mut Tx) -> Result<i64, StoreError> {
    Ok(on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
            .fetch_one(conn)
            .await?
    }))
}

/// What an event of one scope sets in motion, as of one configuration generation.
#[derive(Debug)]
pub struct EventReactions {
    generation: i64,
    /// The enabled webhooks with their subscriptions: `(id, enabled_events)`.
    pub subscriptions: Vec<(WebhookId, Vec<String>)>,
    /// The published versions of the enabled workflows.
    triggers: Vec<workflows::Version>,
}

impl EventReactions {
    /// The published versions of the enabled workflows triggered by `event_name`, by workflow.
    pub fn triggered_by<'a>(
        &'a self,
        event_name: &'a str,
    ) -> impl Iterator<Item = &'a workflows::Version> {
        self.triggers
            .iter()
            .filter(move |version| version.trigger_event == event_name)
    }
}

/// Scopes whose reactions a node keeps at most; when full it starts again empty (a cache miss
/// costs two queries).
const CACHED_SCOPES: usize = 4096;

/// This process's [`EventReactions`] by scope, each valid while its scope's stored
/// configuration generation is the one it was read at.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReactionCache(Arc<Mutex<HashMap<Scope, Arc<EventReactions>>>>);

impl ReactionCache {
    fn get(&self, scope: &Scope, generation: i64) -> Option<Arc<EventReactions>> {
        let cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cached
            .get(scope)
            .filter(|reactions| reactions.generation == generation)
            .cloned()
    }

    fn put(&self, scope: &Scope, reactions: Arc<EventReactions>) {
        let mut cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if cached.len() >= CACHED_SCOPES && !cached.contains_key(scope) {
            cached.clear();
        }
        cached.insert(scope.clone(), reactions);
    }
}

/// Moves the configuration generation of the scope of workflow or webhook `owner_table`.`id`
/// on, in the caller's transaction: called by every change to a webhook or workflow, so that
/// every node reads the scope's [`EventReactions`] again at its next event.
pub(crate) async fn config_changed(
    tx: &mut Tx,
    owner_table: &'static str,
    id: &str,
) -> Result<(), StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO config_generations (org_id, environment, generation) \
         SELECT org_id, environment, 1 FROM {owner_table} WHERE id = $1 \
         ON CONFLICT (org_id, environment) \
         DO UPDATE SET generation = config_generations.generation + 1"
    ));
    on_conn!(tx, |conn| {
        sqlx::query(sql)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
    });
    tx.config_changed = true;
    tx.reactions_seen.clear();
    Ok(())
}

/// What an event of `scope` sets in motion. The first call in a transaction reads the scope's
/// configuration generation (one indexed row) and uses this process's cached reactions when
/// they were read at that generation, else reads them and caches them; later calls in the same
/// transaction reuse the answer. So an event sees every webhook and workflow change committed
/// before its transaction's first event, on whichever node it was made. A transaction that
/// changed the configuration itself reads it afresh every time and caches nothing (its change
/// may yet roll back).
pub async fn event_reactions(
    tx: &mut Tx,
    scope: &Scope,
) -> Result<Arc<EventReactions>, StoreError> {
    if let Some((_, reactions)) = tx.reactions_seen.iter().find(|(seen, _)| seen == scope) {
        return Ok(reactions.clone());
    }
    let generation: Option<i64> = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT generation FROM config_generations WHERE org_id = $1 AND environment = $2",
        )
        .bind(scope.org_id.as_str())
        .bind(scope.environment.as_str())
        .fetch_optional(conn)
        .await?
    });
    let generation = generation.unwrap_or(0);
    if !tx.config_changed
        && let Some(reactions) = tx.reactions.get(scope, generation)
    {
        tx.reactions_seen.push((scope.clone(), reactions.clone()));
        return Ok(reactions);
    }
    let reactions = Arc::new(EventReactions {
        generation,
        subscriptions: webhooks::enabled_subscriptions(tx, scope).await?,
        triggers: workflows::enabled_triggers(tx, scope).await?,
    });
    if !tx.config_changed {
        tx.reactions.put(scope, reactions.clone());
        tx.reactions_seen.push((scope.clone(), reactions.clone()));
    }
    Ok(reactions)
}
