//! `/api/v1/events`.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use idshare_domain::id::EventId;
use idshare_store::events::{self, EventFilter};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, EventRead, parse_id};
use crate::{
    http::{
        error::{ApiError, ApiResult, ErrorDocument},
        jsonapi::{ApiJson, ListDocument, SingleDocument},
        query::{Accepts, QueryParams},
    },
    state::AppState,
};
use idshare_service::render::{self, EventAttributes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
}

const LIST_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &["name", "object-id"],
    includes: &[],
    flags: &[],
};

/// List events, newest first (by sequence). Reading forward (`page[before]`, the newest event
/// seen) returns every event once, in order: on PostgreSQL only events whose place is final are
/// listed (see `store::events`).
#[utoipa::path(
    get, path = "/api/v1/events", tag = "Events",
    params(
        ("filter[name]" = Option<String>, Query, description = "e.g. inquiry.approved"),
        ("filter[object-id]" = Option<String>, Query, description = "e.g. inq_…"),
        ("page[size]" = Option<u32>, Query), ("page[after]" = Option<String>, Query), ("page[before]" = Option<String>, Query),
    ),
    responses((status = 200, body = ListDocument<EventAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_events(
    State(state): State<AppState>,
    Auth(caller, _): Auth<EventRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let filter = EventFilter {
        name: params.filter("name").map(str::to_owned),
        object_id: params.filter("object-id").map(str::to_owned),
    };
    let mut tx = state.store().begin_read().await?;
    let page = events::list(
        &mut tx,
        state.store().crypto(),
        &caller.scope,
        &filter,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let data = page.items.iter().map(render::event).collect();
    let links = params.links("/api/v1/events", &page, |e| e.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

/// Retrieve an event.
#[utoipa::path(
    get, path = "/api/v1/events/{id}", tag = "Events",
    params(("id" = String, Path, description = "evt_…")),
    responses((status = 200, body = SingleDocument<EventAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_event(
    State(state): State<AppState>,
    Auth(caller, _): Auth<EventRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), Accepts::default())?;
    let id = parse_id(&id, EventId::parse)?;
    let mut tx = state.store().begin_read().await?;
    let event = events::get(&mut tx, state.store().crypto(), &caller.scope, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let document = SingleDocument {
        data: render::event(&event),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}
