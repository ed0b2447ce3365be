//! `/api/v1/verifications` and `/api/v1/reports`.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use idshare_domain::id::{InquiryId, ReportId, VerificationId};
use idshare_store::checks;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, ReportRead, ReportWrite, VerificationRead, parse_id};
use crate::{
    http::{
        error::{ApiError, ApiResult, ErrorDocument},
        jsonapi::{ApiJson, Document, JsonBody, Links, ListDocument, SingleDocument},
        query::{Accepts, QueryParams},
    },
    state::AppState,
};
use idshare_service::{
    self as service,
    render::{self, ReportAttributes, VerificationAttributes},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_verifications))
        .routes(routes!(get_verification))
        .routes(routes!(list_reports))
        .routes(routes!(get_report))
        .routes(routes!(dismiss_report))
}

const BY_INQUIRY: Accepts = Accepts {
    paginated: false,
    filters: &["inquiry-id"],
    includes: &[],
    flags: &[],
};

fn inquiry_filter(params: &QueryParams) -> Result<InquiryId, ApiError> {
    let raw = params.filter("inquiry-id").ok_or_else(|| {
        ApiError::bad_request("`filter[inquiry-id]` is required.").parameter("filter[inquiry-id]")
    })?;
    InquiryId::parse(raw)
        .map_err(|e| ApiError::bad_request(e.to_string()).parameter("filter[inquiry-id]"))
}

const NO_LINKS: Links = Links {
    prev: None,
    next: None,
};

/// The verifications of one inquiry (`filter[inquiry-id]` is required), oldest first.
#[utoipa::path(
    get, path = "/api/v1/verifications", tag = "Verifications and reports",
    params(("filter[inquiry-id]" = String, Query, description = "inq_…")),
    responses((status = 200, body = ListDocument<VerificationAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_verifications(
    State(state): State<AppState>,
    Auth(caller, _): Auth<VerificationRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), BY_INQUIRY)?;
    let inquiry = inquiry_filter(&params)?;
    let mut tx = state.store().begin_read().await?;
    let data = checks::verifications_of(&mut tx, state.store().crypto(), &caller.scope, &inquiry)
        .await?
        .iter()
        .map(render::verification)
        .collect();
    ApiJson::new(
        StatusCode::OK,
        &ListDocument {
            data,
            links: NO_LINKS,
        },
        &params.fields,
    )
}

/// Retrieve a verification with its checks.
#[utoipa::path(
    get, path = "/api/v1/verifications/{id}", tag = "Verifications and reports",
    params(("id" = String, Path, description = "ver_…")),
    responses((status = 200, body = SingleDocument<VerificationAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_verification(
    State(state): State<AppState>,
    Auth(caller, _): Auth<VerificationRead>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, VerificationId::parse)?;
    let mut tx = state.store().begin_read().await?;
    let verification =
        checks::get_verification(&mut tx, state.store().crypto(), &caller.scope, &id)
            .await?
            .ok_or_else(ApiError::not_found)?;
    let document = SingleDocument {
        data: render::verification(&verification),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &Default::default())
}

/// The reports of one inquiry (`filter[inquiry-id]` is required), oldest first.
#[utoipa::path(
    get, path = "/api/v1/reports", tag = "Verifications and reports",
    params(("filter[inquiry-id]" = String, Query, description = "inq_…")),
    responses((status = 200, body = ListDocument<ReportAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_reports(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ReportRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), BY_INQUIRY)?;
    let inquiry = inquiry_filter(&params)?;
    let mut tx = state.store().begin_read().await?;
    let data = checks::reports_of(&mut tx, state.store().crypto(), &caller.scope, &inquiry)
        .await?
        .iter()
        .map(render::report)
        .collect();
    ApiJson::new(
        StatusCode::OK,
        &ListDocument {
            data,
            links: NO_LINKS,
        },
        &params.fields,
    )
}

/// Retrieve a report with its matches.
#[utoipa::path(
    get, path = "/api/v1/reports/{id}", tag = "Verifications and reports",
    params(("id" = String, Path, description = "rep_…")),
    responses((status = 200, body = SingleDocument<ReportAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_report(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ReportRead>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, ReportId::parse)?;
    let mut tx = state.store().begin_read().await?;
    let report = checks::get_report(&mut tx, state.store().crypto(), &caller.scope, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let document = SingleDocument {
        data: render::report(&report),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &Default::default())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DismissAttributes {
    /// Why the match is a false positive (kept with the dismissal).
    pub reason: String,
    /// The list entity to dismiss; all matches when absent.
    pub entity_id: Option<String>,
}

/// Dismiss a false-positive match (or all matches) of a report.
#[utoipa::path(
    post, path = "/api/v1/reports/{id}/dismiss", tag = "Verifications and reports",
    params(("id" = String, Path, description = "rep_…")),
    request_body = Document<DismissAttributes>,
    responses(
        (status = 200, body = SingleDocument<ReportAttributes>),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn dismiss_report(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ReportWrite>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<Document<DismissAttributes>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, ReportId::parse)?;
    let attributes = doc.data.attributes;
    let reason = attributes.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(ApiError::unprocessable(
            "Invalid attribute",
            "`reason` must be 1 to 1000 characters.",
        )
        .pointer("/data/attributes/reason"));
    }
    let report = service::reports::dismiss(
        &state,
        &caller.scope,
        &id,
        attributes.entity_id.as_deref(),
        reason,
        &caller.actor(),
    )
    .await?;
    let document = SingleDocument {
        data: render::report(&report),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &Default::default())
}
