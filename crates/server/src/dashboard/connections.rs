//! Connect > Connections: both directions, creating one (as its source), accepting a pending
//! inbound one, deactivating and reactivating.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use idshare_domain::{alignment, id::InquiryTemplateId, template::TemplateDefinition};
use idshare_domain::{
    connect::{ConnectionAction, ConnectionStatus, Direction, Side},
    id::{ConnectionId, OrgId},
};
use idshare_store::{
    Cursor, Scope,
    connections::{self, Connection, ConnectionFilter},
    orgs, templates,
    users::Role,
};
use serde::Deserialize;
use std::collections::HashMap;

use super::{Chrome, Moment, Notice, PageError, Signed, share_tokens::org_name};
use crate::{state::AppState, web};
use idshare_service::{Creator, connections as service};

const PATH: &str = "/dashboard/connect/connections";
/// Who may create and change connections.
const CONNECT_WRITERS: &[Role] = &[Role::Admin];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(list).post(create))
        .route("/dashboard/connect/connections/{id}", get(show))
        .route("/dashboard/connect/connections/{id}/{action}", post(act))
}

/// One connection as a row, with the actions the viewer may take on it.
#[derive(Debug)]
struct Row {
    id: String,
    direction: &'static str,
    status: &'static str,
    /// The other organization, by name.
    partner: String,
    partner_id: String,
    created_at: Moment,
    activated_at: Option<Moment>,
    deactivated_at: Option<Moment>,
    actions: Vec<(&'static str, &'static str)>,
}

impl Row {
    fn new(
        c: &Connection,
        signed: &Signed,
        can_write: bool,
        names: &HashMap<OrgId, String>,
        now: time::OffsetDateTime,
    ) -> Self {
        let mine = &signed.session.user.org_id;
        let side = if &c.source_org_id == mine {
            Side::Source
        } else {
            Side::Destination
        };
        // Only what the side and the status allow (the service checks it again).
        let actions = if !can_write {
            vec![]
        } else {
            let self_connection = c.source_org_id == c.destination_org_id;
            let is_destination = side == Side::Destination || self_connection;
            let is_source = side == Side::Source;
            match c.status {
                ConnectionStatus::Pending if is_destination => {
                    vec![("activate", "Accept"), ("deactivate", "Decline")]
                }
                ConnectionStatus::Pending | ConnectionStatus::Active => {
                    vec![("deactivate", "Deactivate")]
                }
                ConnectionStatus::Inactive if is_source => vec![("reactivate", "Reactivate")],
                ConnectionStatus::Inactive => vec![],
            }
        };
        let partner = match side {
            Side::Source => &c.destination_org_id,
            Side::Destination => &c.source_org_id,
        };
        let moment = |t| Moment::new(t, now);
        Self {
            id: c.id.to_string(),
            direction: side.direction().as_str(),
            status: c.status.as_str(),
            partner: org_name(names, partner),
            partner_id: partner.to_string(),
            created_at: moment(c.created_at),
            activated_at: c.activated_at.map(moment),
            deactivated_at: c.deactivated_at.map(moment),
            actions,
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "dashboard/connections.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    direction: String,
    can_write: bool,
    error: Option<String>,
    destination: String,
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    direction: Option<String>,
}

async fn list_page(
    state: &AppState,
    signed: &Signed,
    direction: Option<&str>,
    error: Option<String>,
    destination: String,
) -> Result<ListPage, PageError> {
    let parsed = direction
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<Direction>().map_err(|_| PageError::NotFound))
        .transpose()?;
    let filter = ConnectionFilter {
        status: None,
        destination_org_id: None,
        direction: parsed,
    };
    let mut tx = state.store().begin_read().await?;
    let page = connections::list(&mut tx, &signed.scope(), &filter, Cursor::Start, 100)
        .await?
        .ok_or(PageError::NotFound)?;
    let names = orgs::partner_names(&mut tx, &signed.scope()).await?;
    drop(tx);
    let can_write = CONNECT_WRITERS.contains(&signed.role());
    let now = state.now();
    Ok(ListPage {
        chrome: signed.chrome("connections"),
        rows: page
            .items
            .iter()
            .map(|c| Row::new(c, signed, can_write, &names, now))
            .collect(),
        direction: parsed.map(|d| d.as_str().to_owned()).unwrap_or_default(),
        can_write,
        error,
        destination,
    })
}

async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let page = list_page(
        &state,
        &signed,
        query.direction.as_deref(),
        None,
        String::new(),
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    csrf: String,
    destination_organization_id: String,
}

async fn create(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(CONNECT_WRITERS)?;
    let created = service::create(
        &state,
        &signed.scope(),
        Creator::User(&signed.session.user.id),
        &signed.actor(),
        &form.destination_organization_id,
    )
    .await;
    match created {
        Ok(_) => Ok(super::done(&state, PATH, Notice::ConnectionRequested)),
        Err(e) if !e.is_failure() => {
            let reason = e.to_string();
            let page = list_page(
                &state,
                &signed,
                None,
                Some(reason),
                form.destination_organization_id.clone(),
            )
            .await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(e) => Err(e.into()),
    }
}

async fn act(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(CONNECT_WRITERS)?;
    let id = ConnectionId::parse(&id).map_err(|_| PageError::NotFound)?;
    let action = ConnectionAction::ALL
        .iter()
        .copied()
        .find(|a| a.verb() == action)
        .ok_or(PageError::NotFound)?;
    service::act(&state, &signed.scope(), &id, action, &signed.actor()).await?;
    let notice = match action {
        ConnectionAction::Activate => Notice::ConnectionActivated,
        ConnectionAction::Deactivate => Notice::ConnectionDeactivated,
        ConnectionAction::Reactivate => Notice::ConnectionReactivated,
    };
    Ok(super::done(&state, PATH, notice))
}

#[derive(Debug)]
struct TemplateChoice {
    id: String,
    name: String,
    selected: bool,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/connection.html")]
struct ConnectionPage {
    chrome: Chrome,
    row: Row,
    active: bool,
    source_templates: Vec<TemplateChoice>,
    destination_templates: Vec<TemplateChoice>,
    /// The destination requirements the chosen source template never collects (labels), when
    /// a pair was chosen.
    never_collected: Option<Vec<(&'static str, String)>>,
}

#[derive(Debug, Default, Deserialize)]
struct AlignmentQuery {
    source_template: Option<String>,
    destination_template: Option<String>,
}

/// The published templates of an end of the connection, with their definitions.
async fn published_templates(
    state: &AppState,
    scope: &Scope,
) -> Result<Vec<(InquiryTemplateId, String, TemplateDefinition)>, PageError> {
    let mut tx = state.store().begin_read().await?;
    let all = templates::list(&mut tx, scope, Cursor::Start, 100)
        .await?
        .map(|p| p.items)
        .unwrap_or_default();
    let mut published = Vec::new();
    for template in all {
        let Some(version_id) = &template.published_version_id else {
            continue;
        };
        if let Some(version) = templates::get_version(&mut tx, scope, version_id).await? {
            published.push((
                template.id.clone(),
                template.name.clone(),
                (*version.definition).clone(),
            ));
        }
    }
    Ok(published)
}

/// A connection's page, with the template alignment: for an **active** connection, either end
/// picks one of the source's published templates and one of the destination's, and sees which
/// destination requirements the source template never collects. Only template names and
/// requirement labels cross between the two organizations, and only over an active connection.
async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(query): Query<AlignmentQuery>,
) -> Result<Response, PageError> {
    let id = ConnectionId::parse(&id).map_err(|_| PageError::NotFound)?;
    let scope = signed.scope();
    let mut tx = state.store().begin_read().await?;
    let connection = connections::get(&mut tx, &scope, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let names = orgs::partner_names(&mut tx, &scope).await?;
    drop(tx);
    let can_write = CONNECT_WRITERS.contains(&signed.role());
    let active = connection.status == ConnectionStatus::Active;
    let (mut sources, mut destinations) = (vec![], vec![]);
    let mut never_collected = None;
    if active {
        let source_scope = Scope::new(connection.source_org_id.clone(), connection.environment);
        let destination_scope = Scope::new(
            connection.destination_org_id.clone(),
            connection.environment,
        );
        sources = published_templates(&state, &source_scope).await?;
        destinations = published_templates(&state, &destination_scope).await?;
        let chosen = |list: &[(InquiryTemplateId, String, TemplateDefinition)],
                      wanted: &Option<String>| {
            wanted
                .as_deref()
                .and_then(|w| list.iter().find(|(id, _, _)| id.as_str() == w))
                .map(|(_, _, d)| d.clone())
        };
        if let (Some(source), Some(destination)) = (
            chosen(&sources, &query.source_template),
            chosen(&destinations, &query.destination_template),
        ) {
            never_collected = Some(
                alignment::never_collected(&source, &destination)
                    .into_iter()
                    .map(|r| (r.kind.as_str(), r.label))
                    .collect(),
            );
        }
    }
    let choices = |list: &[(InquiryTemplateId, String, TemplateDefinition)],
                   wanted: &Option<String>| {
        list.iter()
            .map(|(id, name, _)| TemplateChoice {
                id: id.to_string(),
                name: name.clone(),
                selected: wanted.as_deref() == Some(id.as_str()),
            })
            .collect()
    };
    let page = ConnectionPage {
        chrome: signed.chrome("connections"),
        row: Row::new(&connection, &signed, can_write, &names, state.now()),
        active,
        source_templates: choices(&sources, &query.source_template),
        destination_templates: choices(&destinations, &query.destination_template),
        never_collected,
    };
    Ok(web::html(StatusCode::OK, page.render()))
}
