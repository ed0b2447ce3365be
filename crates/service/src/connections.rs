//! Connect connections: creation by the source, and the status actions (activate by the
//! destination, deactivate by either side, reactivate by the source). Every change writes its
//! event to *both* organizations, each seeing the connection from its own side.

use idshare_domain::{
    connect::{ConnectionAction, ConnectionStatus, Side, TransitionError, transition},
    event::names,
    id::{ConnectionId, OrgId},
};
use idshare_store::{
    Scope, StoreError, Tx, audit,
    connections::{self, Connection},
    events, orgs,
};

use super::ServiceError;
use crate::{ServiceContext, audit::Actor, render};

const DESTINATION_INPUT: &str = "destination-organization-id";

/// Creates a `pending` connection from the caller's organization (the source) to
/// `destination` (an organization id as sent), in the caller's environment.
pub async fn create(
    state: &ServiceContext,
    scope: &Scope,
    creator: super::Creator<'_>,
    actor: &Actor,
    destination: &str,
) -> Result<Connection, ServiceError> {
    let unknown = || {
        ServiceError::invalid(
            "Unknown organization",
            format!(
                "No organization `{}` exists. Ask your partner for its organization id (`org_…`).",
                destination.chars().take(64).collect::<String>()
            ),
        )
        .at(DESTINATION_INPUT)
    };
    let destination = OrgId::parse(destination.trim()).map_err(|_| unknown())?;
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    orgs::get(&mut tx, &destination)
        .await?
        .ok_or_else(unknown)?;
    if let Some(live) =
        connections::find_live(&mut tx, scope.environment, &scope.org_id, &destination).await?
    {
        return Err(duplicate(&live));
    }
    let connection = Connection {
        id: ConnectionId::generate(),
        environment: scope.environment,
        source_org_id: scope.org_id.clone(),
        destination_org_id: destination,
        status: ConnectionStatus::Pending,
        creator_type: creator.kind().to_owned(),
        creator_id: creator.id().to_owned(),
        created_at: now,
        updated_at: now,
        activated_at: None,
        deactivated_at: None,
    };
    match connections::insert(&mut tx, &connection).await {
        Ok(()) => {}
        // A concurrent create won the race between our check and our insert.
        Err(e) if e.is_unique_violation() => return Err(duplicate_after_race()),
        Err(e) => return Err(e.into()),
    }
    record(state, &mut tx, names::CONNECTION_CREATED, &connection).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "connection.created",
        ("connection", connection.id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(connection)
}

fn duplicate(live: &Connection) -> ServiceError {
    ServiceError::conflict(
        "Connection already exists",
        format!(
            "A connection to this organization already exists in this environment: `{}` is `{}`. \
             Use it, or deactivate it first. An inactive connection can be reactivated by its \
             source (`POST /api/v1/connect/connections/{{id}}/reactivate`) instead of creating a new one.",
            live.id, live.status
        ),
    )
}

fn duplicate_after_race() -> ServiceError {
    ServiceError::conflict(
        "Connection already exists",
        "A connection to this organization already exists in this environment (created just now). \
         An inactive connection can be reactivated by its source instead of creating a new one.",
    )
}

/// A connection the caller's organization is an end of, in the caller's environment.
pub async fn get(
    state: &ServiceContext,
    scope: &Scope,
    id: &ConnectionId,
) -> Result<Connection, ServiceError> {
    let mut tx = state.store().begin_read().await?;
    connections::get(&mut tx, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)
}

/// The side the caller's organization holds for `action`. An organization connected to
/// itself holds both, and acts from the one the action needs.
fn side_of(connection: &Connection, org: &OrgId, action: ConnectionAction) -> Side {
    if connection.source_org_id == connection.destination_org_id {
        action.only_side().unwrap_or(Side::Source)
    } else if &connection.source_org_id == org {
        Side::Source
    } else {
        Side::Destination
    }
}

/// Applies a status action taken by the caller's organization, with its events.
pub async fn act(
    state: &ServiceContext,
    scope: &Scope,
    id: &ConnectionId,
    action: ConnectionAction,
    actor: &Actor,
) -> Result<Connection, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let mut connection = connections::get_for_update(&mut tx, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let side = side_of(&connection, &scope.org_id, action);
    connection.status = transition(connection.status, action, side).map_err(|e| match e {
        TransitionError::WrongSide { .. } => ServiceError::forbidden(format!("{}.", sentence(&e))),
        TransitionError::WrongStatus { .. } => {
            ServiceError::conflict("Invalid transition", format!("{}.", sentence(&e)))
        }
    })?;
    match action {
        ConnectionAction::Activate => connection.activated_at = Some(now),
        ConnectionAction::Deactivate => connection.deactivated_at = Some(now),
        ConnectionAction::Reactivate => {
            if let Some(live) = connections::find_live(
                &mut tx,
                connection.environment,
                &connection.source_org_id,
                &connection.destination_org_id,
            )
            .await?
            {
                return Err(live_sibling(&live));
            }
        }
    }
    connection.updated_at = now;
    match connections::save(&mut tx, &connection).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => return Err(duplicate_after_race()),
        Err(e) => return Err(e.into()),
    }
    record(state, &mut tx, action.event_name(), &connection).await?;
    let name = match action {
        ConnectionAction::Activate => "connection.activated",
        ConnectionAction::Deactivate => "connection.deactivated",
        ConnectionAction::Reactivate => "connection.reactivated",
    };
    audit::record_by(
        &mut tx,
        scope,
        actor,
        name,
        ("connection", connection.id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(connection)
}

fn live_sibling(live: &Connection) -> ServiceError {
    ServiceError::conflict(
        "Connection already exists",
        format!(
            "Another connection to this organization is already `{}` in this environment (`{}`); \
             only one can be pending or active at a time. Use that one, or deactivate it first.",
            live.status, live.id
        ),
    )
}

/// The error as a sentence: capitalized (the domain writes it lower-case, to embed).
fn sentence(e: &TransitionError) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Records the event in each organization of the connection (once when it connects an
/// organization to itself); each payload is the connection as that organization sees it. A
/// connection holds no personal data, so the payloads are not sealed.
async fn record(
    state: &ServiceContext,
    tx: &mut Tx,
    name: &str,
    connection: &Connection,
) -> Result<(), StoreError> {
    let mut ends = vec![&connection.source_org_id];
    if connection.destination_org_id != connection.source_org_id {
        ends.push(&connection.destination_org_id);
    }
    for org in ends {
        let payload = render::payload(&render::connection(connection, org));
        crate::events::record(
            state,
            tx,
            &Scope::new(org.clone(), connection.environment),
            events::NewEvent {
                name,
                object_type: "connect/connection",
                object_id: connection.id.as_str(),
                payload: &payload,
                sealed_by: None,
            },
        )
        .await?;
    }
    Ok(())
}
