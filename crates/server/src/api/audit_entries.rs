//! `/api/v1/audit-entries` and its CSV export `/api/v1/audit-entries.csv`: the audit log of the
//! key's organization and environment, for keys with `audit.read`.

use axum::{
    extract::{RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use idshare_domain::time_format::parse_timestamp;
use idshare_service::{
    audit as service,
    render::{self, AuditEntryAttributes},
};
use idshare_store::audit::AuditFilter;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AuditRead, Auth};
use crate::{
    http::{
        error::{ApiError, ApiResult, ErrorDocument},
        jsonapi::{ApiJson, ListDocument},
        query::{Accepts, QueryParams},
    },
    state::AppState,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit_entries))
        .routes(routes!(export_audit_entries))
}

const FILTERS: &[&str] = &[
    "action",
    "object-id",
    "actor-id",
    "created-at-start",
    "created-at-end",
];

const LIST_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: FILTERS,
    includes: &[],
    flags: &[],
};

const EXPORT_ACCEPTS: Accepts = Accepts {
    paginated: false,
    filters: FILTERS,
    includes: &[],
    flags: &[],
};

fn filter_of(params: &QueryParams) -> Result<AuditFilter, ApiError> {
    let time = |name: &str| {
        params
            .filter(name)
            .map(|raw| {
                parse_timestamp(raw)
                    .map_err(|e| ApiError::bad_request(e).parameter(format!("filter[{name}]")))
            })
            .transpose()
    };
    Ok(AuditFilter {
        action: params.filter("action").map(str::to_owned),
        object_id: params.filter("object-id").map(str::to_owned),
        actor_id: params.filter("actor-id").map(str::to_owned),
        created_at_start: time("created-at-start")?,
        created_at_end: time("created-at-end")?,
    })
}

/// List audit entries, newest first: who (a dashboard user, an API key, or the system) looked
/// at or changed what, when, and in which request.
#[utoipa::path(
    get, path = "/api/v1/audit-entries", tag = "Audit log",
    params(
        ("filter[action]" = Option<String>, Query, description = "e.g. inquiry.viewed"),
        ("filter[object-id]" = Option<String>, Query, description = "e.g. inq_…"),
        ("filter[actor-id]" = Option<String>, Query, description = "a user's (user_…) or an API key's (api_…) id"),
        ("filter[created-at-start]" = Option<String>, Query, description = "RFC 3339 or YYYY-MM-DD"),
        ("filter[created-at-end]" = Option<String>, Query, description = "RFC 3339 or YYYY-MM-DD"),
        ("page[size]" = Option<u32>, Query), ("page[after]" = Option<String>, Query), ("page[before]" = Option<String>, Query),
    ),
    responses(
        (status = 200, body = ListDocument<AuditEntryAttributes>),
        (status = 400, body = ErrorDocument, description = "an unknown parameter, a malformed time, or a cursor of another list"),
        (status = 401, body = ErrorDocument),
        (status = 403, body = ErrorDocument, description = "the key lacks audit.read"),
    ),
    security(("bearer" = []))
)]
async fn list_audit_entries(
    State(state): State<AppState>,
    Auth(caller, _): Auth<AuditRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let filter = filter_of(&params)?;
    let page = service::list(
        &state,
        &caller.scope,
        &filter,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let data = page.items.iter().map(render::audit_entry).collect();
    let links = params.links("/api/v1/audit-entries", &page, |e| e.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

/// Export audit entries as CSV (RFC 4180, a header row, newest first), with the list's filters;
/// at most 50 000 rows (the newest), the answer saying `Idshare-Truncated: true` when more matched.
#[utoipa::path(
    get, path = "/api/v1/audit-entries.csv", tag = "Audit log",
    params(
        ("filter[action]" = Option<String>, Query, description = "e.g. inquiry.viewed"),
        ("filter[object-id]" = Option<String>, Query, description = "e.g. inq_…"),
        ("filter[actor-id]" = Option<String>, Query, description = "a user's (user_…) or an API key's (api_…) id"),
        ("filter[created-at-start]" = Option<String>, Query, description = "RFC 3339 or YYYY-MM-DD"),
        ("filter[created-at-end]" = Option<String>, Query, description = "RFC 3339 or YYYY-MM-DD"),
    ),
    responses(
        (status = 200, content_type = "text/csv", body = String, description = "created-at, action, actor-type, actor-id, object-type, object-id, request-id, client-address"),
        (status = 400, body = ErrorDocument, description = "an unknown parameter or a malformed time"),
        (status = 401, body = ErrorDocument),
        (status = 403, body = ErrorDocument, description = "the key lacks audit.read"),
    ),
    security(("bearer" = []))
)]
async fn export_audit_entries(
    State(state): State<AppState>,
    Auth(caller, _): Auth<AuditRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let params = QueryParams::parse(query.as_deref(), EXPORT_ACCEPTS)?;
    let filter = filter_of(&params)?;
    let (csv, truncated) = service::export_csv(&state, &caller.scope, &filter).await?;
    let mut response = (StatusCode::OK, csv).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit-entries.csv\""),
    );
    if truncated {
        headers.insert("idshare-truncated", HeaderValue::from_static("true"));
    }
    Ok(response)
}
