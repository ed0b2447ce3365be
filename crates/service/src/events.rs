//! Writing an event, and what an event sets in motion: a delivery (with its job) for each of
//! the organization's enabled webhooks subscribed to it, and for each enabled workflow it
//! triggers a run (with its job), or, when the trigger has a condition, the job that evaluates
//! it. All of it in the caller's transaction, so an event is announced, and acted on, exactly
//! when the change it describes commits; no condition is evaluated in that transaction.

use idshare_domain::{event::names, id::EventId, webhook::EnabledEvents};
use idshare_store::{DataKey, Scope, StoreError, Tx, events, orgs, webhooks};
use serde_json::Value;

use crate::{ServiceContext, jobs::JobKind};

/// Records `event` for `scope`, creates its webhook deliveries and starts the workflow runs it
/// triggers (each run announced by a `workflow-run.created` event; the runs of triggers with a
/// condition start later, from their job).
pub async fn record(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    event: events::NewEvent<'_>,
) -> Result<EventId, StoreError> {
    let id = record_without_workflows(state, tx, scope, event).await?;
    start_workflows(state, tx, scope, &id, event).await?;
    Ok(id)
}

/// Records `event` and creates its webhook deliveries, but starts no workflow: for the events
/// of workflow runs themselves, which must not trigger runs.
pub async fn record_without_workflows(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    event: events::NewEvent<'_>,
) -> Result<EventId, StoreError> {
    let id = events::record(tx, state.store().crypto(), scope, event, state.now()).await?;
    create_deliveries(state, tx, scope, &id, event).await?;
    Ok(id)
}

/// An event a unit of work gathers while it computes its changes, to record them all at once
/// with [`record_batch`].
#[derive(Debug, Clone)]
pub struct Announcement {
    pub scope: Scope,
    pub name: String,
    pub object_type: &'static str,
    pub object_id: String,
    pub payload: Value,
    /// The owner whose data key seals the payload.
    pub sealed_by: Option<String>,
}

/// Records several events (each in its own scope) in one statement, in order, then acts on
/// each as [`record`] does. `key` is the already unwrapped data key of the owner that seals
/// most of their payloads (the inquiry a unit of work is about).
pub async fn record_batch(
    state: &ServiceContext,
    tx: &mut Tx,
    key: Option<(&str, &DataKey)>,
    announced: &[Announcement],
) -> Result<Vec<EventId>, StoreError> {
    let batch: Vec<(Scope, events::NewEvent<'_>)> = announced
        .iter()
        .map(|a| {
            (
                a.scope.clone(),
                events::NewEvent {
                    name: &a.name,
                    object_type: a.object_type,
                    object_id: &a.object_id,
                    payload: &a.payload,
                    sealed_by: a.sealed_by.as_deref(),
                },
            )
        })
        .collect();
    let batch = batch.as_slice();
    let ids = events::record_batch(tx, state.store().crypto(), key, batch, state.now()).await?;
    for ((scope, event), id) in batch.iter().zip(&ids) {
        create_deliveries(state, tx, scope, id, *event).await?;
        start_workflows(state, tx, scope, id, *event).await?;
    }
    Ok(ids)
}

/// Starts the workflow runs a recorded event triggers, each announced by a
/// `workflow-run.created` event.
async fn start_workflows(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    id: &EventId,
    event: events::NewEvent<'_>,
) -> Result<(), StoreError> {
    for run in crate::workflows::start_runs(state, tx, scope, id, event).await? {
        crate::workflows::record_run_event(state, tx, &run, names::WORKFLOW_RUN_CREATED).await?;
    }
    Ok(())
}

/// A delivery (with its job) of a recorded event to each of the scope's enabled webhooks
/// subscribed to it.
async fn create_deliveries(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    id: &EventId,
    event: events::NewEvent<'_>,
) -> Result<(), StoreError> {
    let now = state.now();
    let reactions = orgs::event_reactions(tx, scope).await?;
    for (webhook_id, enabled_events) in &reactions.subscriptions {
        // Stored lists were validated on save; one that no longer parses matches nothing.
        let subscribed =
            EnabledEvents::parse(enabled_events).is_ok_and(|enabled| enabled.matches(event.name));
        if !subscribed {
            continue;
        }
        if let Some(delivery) =
            webhooks::create_delivery(tx, scope, webhook_id, id, event.name, now).await?
        {
            let job = JobKind::WebhookDelivery {
                delivery_id: delivery.to_string(),
            };
            crate::jobs::enqueue(state, tx, &job, None).await?;
        }
    }
    Ok(())
}
