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
use idshare_domain::{
    connect::{ConnectionAction, ConnectionStatus, Direction, Side},
    id::ConnectionId,
    time_format::format_timestamp,
};
use idshare_store::{
    Cursor,
    connections::{self, Connection, ConnectionFilter},
    users::Role,
};
use serde::Deserialize;

use super::{Chrome, PageError, Signed};
use crate::{
    app::AppState,
    service::{Creator, connections as service},
    web,
};

const PATH: &str = "/dashboard/connect/connections";
/// Who may create and change connections.
const CONNECT_WRITERS: &[Role] = &[Role::Admin];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(list).post(create))
        .route("/dashboard/connect/connections/{id}/{action}", post(act))
}

/// One connection as a row, with the actions the viewer may take on it.
#[derive(Debug)]
struct Row {
    id: String,
    direction: &'static str,
    status: &'static str,
    partner: String,
    created_at: String,
    activated_at: Option<String>,
    deactivated_at: Option<String>,
    actions: Vec<(&'static str, &'static str)>,
}

impl Row {
    fn new(c: &Connection, signed: &Signed, can_write: bool) -> Self {
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
        Self {
            id: c.id.to_string(),
            direction: side.direction().as_str(),
            status: c.status.as_str(),
            partner: match side {
                Side::Source => c.destination_org_id.to_string(),
                Side::Destination => c.source_org_id.to_string(),
            },
            created_at: format_timestamp(c.created_at),
            activated_at: c.activated_at.map(format_timestamp),
            deactivated_at: c.deactivated_at.map(format_timestamp),
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
    let can_write = CONNECT_WRITERS.contains(&signed.role());
    Ok(ListPage {
        chrome: signed.chrome("connections"),
        rows: page
            .items
            .iter()
            .map(|c| Row::new(c, signed, can_write))
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
        &form.destination_organization_id,
    )
    .await;
    match created {
        Ok(_) => Ok(web::see_other(PATH, None)),
        Err(e) if e.status.is_client_error() => {
            let reason = e
                .errors
                .iter()
                .map(|e| e.details.as_str())
                .collect::<Vec<_>>()
                .join(" ");
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
    service::act(&state, &signed.scope(), &id, action).await?;
    Ok(web::see_other(PATH, None))
}
