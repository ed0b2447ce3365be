//! Writing an event, and what an event sets in motion: a delivery (with its job) for each of
//! the organization's enabled webhooks subscribed to it, and for each enabled workflow it
//! triggers a run (with its job), or, when the trigger has a condition, the job that evaluates
//! it. All of it in the caller's transaction, so an event is announced, and acted on, exactly
//! when the change it describes commits; no condition is evaluated in that transaction.

use idshare_domain::{event::names, id::EventId, webhook::EnabledEvents};
use idshare_store::{Scope, StoreError, Tx, events, orgs, webhooks};

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
    for run in crate::workflows::start_runs(state, tx, scope, &id, event).await? {
        crate::workflows::record_run_event(state, tx, &run, names::WORKFLOW_RUN_CREATED).await?;
    }
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
    let now = state.now();
    let id = events::record(tx, state.store().crypto(), scope, event, now).await?;
    let reactions = orgs::event_reactions(tx, scope).await?;
    for (webhook_id, enabled_events) in &reactions.subscriptions {
        // Stored lists were validated on save; one that no longer parses matches nothing.
        let subscribed =
            EnabledEvents::parse(enabled_events).is_ok_and(|enabled| enabled.matches(event.name));
        if !subscribed {
            continue;
        }
        if let Some(delivery) =
            webhooks::create_delivery(tx, scope, webhook_id, &id, event.name, now).await?
        {
            let job = JobKind::WebhookDelivery {
                delivery_id: delivery.to_string(),
            };
            crate::jobs::enqueue(state, tx, &job, None).await?;
        }
    }
    Ok(id)
}
