//! `/api/v1/connect/connections`: Connect connections, seen by both of their organizations.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use idshare_domain::{
    connect::{ConnectionAction, ConnectionStatus, Direction},
    id::{ConnectionId, OrgId},
};
use idshare_store::connections::{self, Connection, ConnectionFilter};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, ConnectRead, ConnectWrite, parse_id};
use crate::{
    http::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorDocument},
        jsonapi::{ApiJson, Document, EmptyMeta, JsonBody, ListDocument, MetaOnly, SingleDocument},
        query::{Accepts, QueryParams},
    },
    state::AppState,
};
use idshare_service::{
    connections as service,
    render::{self, ConnectionAttributes},
};

const PATH: &str = "/api/v1/connect/connections";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_connection, list_connections))
        .routes(routes!(get_connection))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(reactivate))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CreateConnectionAttributes {
    /// The partner organization that will receive data (`org_…`). It may be the caller's own
    /// organization, for testing.
    #[schema(pattern = "^org_[1-9A-HJ-NP-Za-km-z]{24}$")]
    pub destination_organization_id: String,
}

fn respond(status: StatusCode, caller: &Caller, connection: &Connection) -> ApiResult<ApiJson> {
    let document = SingleDocument {
        data: render::connection(connection, &caller.scope.org_id),
        included: vec![],
    };
    ApiJson::new(status, &document, &Default::default())
}

/// Create a connection from your organization (the source) to a destination organization, in
/// this key's environment. It starts `pending` until the destination activates it.
#[utoipa::path(
    post, path = "/api/v1/connect/connections", tag = "Connect",
    request_body = Document<CreateConnectionAttributes>,
    responses(
        (status = 201, body = SingleDocument<ConnectionAttributes>),
        (status = 400, body = ErrorDocument), (status = 403, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "a pending or active connection to this organization exists"),
        (status = 422, body = ErrorDocument, description = "no such organization"),
    ),
    security(("bearer" = []))
)]
async fn create_connection(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectWrite>,
    JsonBody(doc): JsonBody<Document<CreateConnectionAttributes>>,
) -> ApiResult<ApiJson> {
    let connection = service::create(
        &state,
        &caller.scope,
        idshare_service::Creator::ApiKey(&caller.api_key_id),
        &caller.actor(),
        &doc.data.attributes.destination_organization_id,
    )
    .await?;
    respond(StatusCode::CREATED, &caller, &connection)
}

const LIST_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &["status", "destination-organization-id", "direction"],
    includes: &[],
    flags: &[],
};

fn list_filter(params: &QueryParams) -> Result<ConnectionFilter, ApiError> {
    let invalid = |name: &str, details: String| {
        ApiError::bad_request(details).parameter(format!("filter[{name}]"))
    };
    Ok(ConnectionFilter {
        status: params
            .filter("status")
            .map(|raw| {
                raw.parse::<ConnectionStatus>()
                    .map_err(|e| invalid("status", e.to_string()))
            })
            .transpose()?,
        destination_org_id: params
            .filter("destination-organization-id")
            .map(|raw| {
                OrgId::parse(raw).map_err(|e| invalid("destination-organization-id", e.to_string()))
            })
            .transpose()?,
        direction: params
            .filter("direction")
            .map(|raw| {
                raw.parse::<Direction>()
                    .map_err(|e| invalid("direction", e.to_string()))
            })
            .transpose()?,
    })
}

/// List the connections your organization is an end of — outbound (you are the source) and
/// inbound (you are the destination) — in this key's environment, newest first.
#[utoipa::path(
    get, path = "/api/v1/connect/connections", tag = "Connect",
    params(
        ("filter[status]" = Option<String>, Query, description = "pending, active or inactive"),
        ("filter[destination-organization-id]" = Option<String>, Query, description = "org_…"),
        ("filter[direction]" = Option<String>, Query, description = "outbound (you are the source) or inbound (you are the destination)"),
        ("page[size]" = Option<u32>, Query, description = "1–100, default 10"),
        ("page[after]" = Option<String>, Query, description = "id of the last object of the previous page"),
        ("page[before]" = Option<String>, Query, description = "id of the first object of the next page"),
        ("fields[connect/connection]" = Option<String>, Query, description = "comma-separated attributes"),
    ),
    responses((status = 200, body = ListDocument<ConnectionAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_connections(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let filter = list_filter(&params)?;
    let mut tx = state.store().begin_read().await?;
    let page = connections::list(
        &mut tx,
        &caller.scope,
        &filter,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let data = page
        .items
        .iter()
        .map(|c| render::connection(c, &caller.scope.org_id))
        .collect();
    let links = params.links(PATH, &page, |c| c.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

/// Retrieve a connection your organization is an end of.
#[utoipa::path(
    get, path = "/api/v1/connect/connections/{id}", tag = "Connect",
    params(("id" = String, Path, description = "cxn_…")),
    responses((status = 200, body = SingleDocument<ConnectionAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_connection(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), Accepts::default())?;
    let id = parse_id(&id, ConnectionId::parse)?;
    let connection = service::get(&state, &caller.scope, &id).await?;
    let document = SingleDocument {
        data: render::connection(&connection, &caller.scope.org_id),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}

async fn act(
    state: AppState,
    caller: Caller,
    id: String,
    action: ConnectionAction,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, ConnectionId::parse)?;
    let connection = service::act(&state, &caller.scope, &id, action, &caller.actor()).await?;
    respond(StatusCode::OK, &caller, &connection)
}

/// Activate a pending connection (destination only): share tokens can then travel over it.
/// An extension: Persona activates connections only in its dashboard.
#[utoipa::path(
    post, path = "/api/v1/connect/connections/{id}/activate", tag = "Connect",
    params(("id" = String, Path, description = "cxn_…")),
    responses(
        (status = 200, body = SingleDocument<ConnectionAttributes>),
        (status = 403, body = ErrorDocument, description = "the caller is the source"),
        (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "the connection is not pending"),
    ),
    security(("bearer" = []))
)]
async fn activate(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, ConnectionAction::Activate).await
}

/// Deactivate a pending or active connection (either side). Nothing more can be shared over it
/// until the source reactivates it and the destination activates it again.
#[utoipa::path(
    post, path = "/api/v1/connect/connections/{id}/deactivate", tag = "Connect",
    params(("id" = String, Path, description = "cxn_…")),
    responses(
        (status = 200, body = SingleDocument<ConnectionAttributes>),
        (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "the connection is already inactive"),
    ),
    security(("bearer" = []))
)]
async fn deactivate(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, ConnectionAction::Deactivate).await
}

/// Reactivate an inactive connection (source only): it goes back to `pending`, for the
/// destination to activate again.
#[utoipa::path(
    post, path = "/api/v1/connect/connections/{id}/reactivate", tag = "Connect",
    params(("id" = String, Path, description = "cxn_…")),
    responses(
        (status = 200, body = SingleDocument<ConnectionAttributes>),
        (status = 403, body = ErrorDocument, description = "the caller is the destination"),
        (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "the connection is not inactive, or another connection between the pair is pending or active"),
    ),
    security(("bearer" = []))
)]
async fn reactivate(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, ConnectionAction::Reactivate).await
}
