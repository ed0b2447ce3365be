//! `/api/v1/inquiries`.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use idshare_domain::{
    id::{InquiryId, InquiryTemplateId, InquiryTemplateVersionId},
    inquiry::{InquiryAction, InquiryStatus},
    permission::Permission,
    time_format::parse_timestamp,
};
use idshare_store::{
    inquiries::{self, InquiryFilter},
    templates,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, InquiryRead, InquiryWrite, parse_id};
use crate::{
    http::{
        error::{ApiError, ApiResult, ErrorDocument, ErrorSource},
        jsonapi::{ApiJson, Document, JsonBody, ListDocument, MetaOnly, SingleDocument},
        query::{Accepts, Include, QueryParams},
    },
    state::AppState,
};
use idshare_service::{
    inquiries::{self as service, CreateInquiry, InquiryView, TemplateRef, UpdateInquiry},
    render::{self, InquiryAttributes},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_inquiry, list_inquiries))
        .routes(routes!(get_inquiry, update_inquiry, redact_inquiry))
        .routes(routes!(approve))
        .routes(routes!(decline))
        .routes(routes!(mark_for_review))
        .routes(routes!(expire))
        .routes(routes!(submit))
        .routes(routes!(resume))
        .routes(routes!(generate_one_time_link))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CreateInquiryAttributes {
    /// `itmpl_…`: use the template's published version. Give this or `inquiry-template-version-id`.
    #[schema(pattern = "^itmpl_[1-9A-HJ-NP-Za-km-z]{24}$")]
    pub inquiry_template_id: Option<String>,
    /// `itmplv_…`: pin a version.
    #[schema(pattern = "^itmplv_[1-9A-HJ-NP-Za-km-z]{24}$")]
    pub inquiry_template_version_id: Option<String>,
    pub reference_id: Option<String>,
    /// Prefilled values, flat: `{"name-first": "Jane", "birthdate": "1990-01-31"}`.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Map<String, Value>>,
    pub note: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CreateInquiryMeta {
    /// Seconds until an unfinished inquiry expires (60 s – 30 days; default: the template's).
    #[schema(minimum = 60, maximum = 2592000)]
    pub expiration_after_create_interval_seconds: Option<u32>,
}

const MIN_EXPIRY_SECONDS: u32 = 60;
const MAX_EXPIRY_SECONDS: u32 = 30 * 24 * 60 * 60;

/// Create an inquiry from a template (prefilled fields are validated against its field schemas).
#[utoipa::path(
    post, path = "/api/v1/inquiries", tag = "Inquiries",
    request_body = Document<CreateInquiryAttributes, CreateInquiryMeta>,
    responses(
        (status = 201, body = SingleDocument<InquiryAttributes>, description = "with `meta` `session-token`, `one-time-link` and `one-time-link-short`, each `null`"),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn create_inquiry(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    JsonBody(doc): JsonBody<Document<CreateInquiryAttributes, CreateInquiryMeta>>,
) -> ApiResult<ApiJson> {
    let attributes = doc.data.attributes;
    let template = match (
        attributes.inquiry_template_id,
        attributes.inquiry_template_version_id,
    ) {
        (Some(id), None) => TemplateRef::Template(InquiryTemplateId::parse(&id).map_err(|e| {
            ApiError::bad_request(e.to_string()).pointer("/data/attributes/inquiry-template-id")
        })?),
        (None, Some(id)) => {
            TemplateRef::Version(InquiryTemplateVersionId::parse(&id).map_err(|e| {
                ApiError::bad_request(e.to_string())
                    .pointer("/data/attributes/inquiry-template-version-id")
            })?)
        }
        _ => {
            return Err(ApiError::bad_request(
                "Give exactly one of `inquiry-template-id` and `inquiry-template-version-id`.",
            )
            .pointer("/data/attributes/inquiry-template-id"));
        }
    };
    let expires_in_seconds = doc.meta.expiration_after_create_interval_seconds;
    if let Some(seconds) = expires_in_seconds
        && !(MIN_EXPIRY_SECONDS..=MAX_EXPIRY_SECONDS).contains(&seconds)
    {
        return Err(ApiError::bad_request(format!(
            "Must be from {MIN_EXPIRY_SECONDS} to {MAX_EXPIRY_SECONDS} seconds."
        ))
        .pointer("/meta/expiration-after-create-interval-seconds"));
    }
    let view = service::create(
        &state,
        &caller.scope,
        CreateInquiry {
            template,
            reference_id: attributes.reference_id,
            fields: attributes.fields.unwrap_or_default(),
            note: attributes.note,
            tags: attributes.tags.unwrap_or_default(),
            expires_in_seconds,
        },
    )
    .await?;
    let json = respond(StatusCode::CREATED, &view, vec![], &QueryParams::default())?;
    // Persona's create answer always names the session and one-time link it may have made;
    // idshare makes neither at creation (`resume` and `generate-one-time-link` do).
    Ok(with_meta(
        json,
        serde_json::json!({
            "session-token": null,
            "one-time-link": null,
            "one-time-link-short": null,
        }),
    ))
}

fn respond(
    status: StatusCode,
    view: &InquiryView,
    included: Vec<Value>,
    params: &QueryParams,
) -> ApiResult<ApiJson> {
    let document = SingleDocument {
        data: view.resource(),
        included,
    };
    ApiJson::new(status, &document, &params.fields)
}

const LIST_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &[
        "status",
        "reference-id",
        "inquiry-template-id",
        "created-at-start",
        "created-at-end",
    ],
    includes: &[],
    flags: &[],
};

fn list_filter(params: &QueryParams) -> Result<InquiryFilter, ApiError> {
    let invalid = |name: &str, details: String| {
        ApiError::bad_request(details).parameter(format!("filter[{name}]"))
    };
    let time = |name: &str| {
        params
            .filter(name)
            .map(|raw| parse_timestamp(raw).map_err(|e| invalid(name, e)))
            .transpose()
    };
    Ok(InquiryFilter {
        search: None,
        status: params
            .filter("status")
            .map(|raw| {
                raw.parse::<InquiryStatus>()
                    .map_err(|e| invalid("status", e.to_string()))
            })
            .transpose()?,
        reference_id: params.filter("reference-id").map(str::to_owned),
        template_id: params
            .filter("inquiry-template-id")
            .map(|raw| {
                InquiryTemplateId::parse(raw)
                    .map_err(|e| invalid("inquiry-template-id", e.to_string()))
            })
            .transpose()?,
        created_at_start: time("created-at-start")?,
        created_at_end: time("created-at-end")?,
    })
}

/// List inquiries, newest first.
#[utoipa::path(
    get, path = "/api/v1/inquiries", tag = "Inquiries",
    params(
        ("filter[status]" = Option<String>, Query), ("filter[reference-id]" = Option<String>, Query),
        ("filter[inquiry-template-id]" = Option<String>, Query),
        ("filter[created-at-start]" = Option<String>, Query, description = "RFC 3339 or YYYY-MM-DD"),
        ("filter[created-at-end]" = Option<String>, Query, description = "RFC 3339 or YYYY-MM-DD"),
        ("page[size]" = Option<u32>, Query), ("page[after]" = Option<String>, Query), ("page[before]" = Option<String>, Query),
        ("fields[inquiry]" = Option<String>, Query, description = "comma-separated attributes"),
    ),
    responses((status = 200, body = ListDocument<InquiryAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_inquiries(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let filter = list_filter(&params)?;
    let mut tx = state.store().begin_read().await?;
    let page = inquiries::list(
        &mut tx,
        state.store().crypto(),
        &caller.scope,
        &filter,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let page_ids = idshare_store::Page {
        items: page
            .items
            .iter()
            .map(|i| i.id.to_string())
            .collect::<Vec<_>>(),
        has_newer: page.has_newer,
        has_older: page.has_older,
    };
    let mut data = Vec::with_capacity(page.items.len());
    let mut definitions = std::collections::HashMap::new();
    for inquiry in page.items {
        let key = inquiry.template_version_id.clone();
        if !definitions.contains_key(&key) {
            let definition = service::definition_for(&mut tx, &caller.scope, &inquiry).await?;
            definitions.insert(key.clone(), definition);
        }
        let definition = definitions.get(&key).cloned().flatten();
        let view = InquiryView::load(&state, &mut tx, &caller.scope, inquiry, definition).await?;
        data.push(view.resource());
    }
    let links = params.links("/api/v1/inquiries", &page_ids, |id| id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

const ONE_ACCEPTS: Accepts = Accepts {
    paginated: false,
    filters: &[],
    includes: &[
        Include {
            path: "inquiry-template",
            permission: Permission::InquiryTemplateRead,
        },
        Include {
            path: "inquiry-template-version",
            permission: Permission::InquiryTemplateRead,
        },
    ],
    flags: &[],
};

/// Retrieve an inquiry.
#[utoipa::path(
    get, path = "/api/v1/inquiries/{id}", tag = "Inquiries",
    params(
        ("id" = String, Path, description = "inq_…"),
        ("include" = Option<String>, Query, description = "inquiry-template, inquiry-template-version (each needs inquiry-template.read)",
            pattern = "^((inquiry-template|inquiry-template-version)(,(inquiry-template|inquiry-template-version))*)?$"),
        ("fields[inquiry]" = Option<String>, Query),
    ),
    responses(
        (status = 200, body = SingleDocument<InquiryAttributes>),
        (status = 403, body = ErrorDocument, description = "the key lacks inquiry.read, or the permission of an included type"),
        (status = 404, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn get_inquiry(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse_for(&caller, query.as_deref(), ONE_ACCEPTS)?;
    let id = parse_id(&id, InquiryId::parse)?;
    let view = service::get(&state, &caller.scope, &id).await?;
    idshare_service::audit::record_view(
        &state,
        &caller.scope,
        &caller.actor(),
        "inquiry.viewed",
        ("inquiry", id.as_str()),
    )
    .await?;
    let mut included = vec![];
    if !params.include.is_empty() {
        let mut tx = state.store().begin_read().await?;
        if params.includes("inquiry-template")
            && let Some(template_id) = &view.inquiry.template_id
            && let Some(template) = templates::get(&mut tx, &caller.scope, template_id).await?
        {
            let published = match &template.published_version_id {
                Some(v) => templates::get_version(&mut tx, &caller.scope, v).await?,
                None => None,
            };
            included.push(
                serde_json::to_value(render::template(&template, published.as_ref()))
                    .map_err(ApiError::internal)?,
            );
        }
        if params.includes("inquiry-template-version")
            && let Some(version_id) = &view.inquiry.template_version_id
            && let Some(version) =
                templates::get_version(&mut tx, &caller.scope, version_id).await?
        {
            included
                .push(serde_json::to_value(render::version(&version)).map_err(ApiError::internal)?);
        }
    }
    respond(StatusCode::OK, &view, included, &params)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UpdateInquiryAttributes {
    /// Values to set (`null` clears a field); only while `created` or `pending`.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Map<String, Value>>,
    /// `null` clears the note.
    #[serde(default, deserialize_with = "present")]
    pub note: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
}

/// Distinguishes an absent attribute (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Update an inquiry's fields, note or tags.
#[utoipa::path(
    patch, path = "/api/v1/inquiries/{id}", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    request_body = Document<UpdateInquiryAttributes>,
    responses(
        (status = 200, body = SingleDocument<InquiryAttributes>),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn update_inquiry(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<Document<UpdateInquiryAttributes>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let attributes = doc.data.attributes;
    let view = service::update(
        &state,
        &caller.scope,
        &id,
        UpdateInquiry {
            fields: attributes.fields,
            note: attributes.note,
            tags: attributes.tags,
        },
    )
    .await?;
    respond(StatusCode::OK, &view, vec![], &QueryParams::default())
}

/// Redact an inquiry: its personal data is erased for good (crypto-shredded).
#[utoipa::path(
    delete, path = "/api/v1/inquiries/{id}", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    responses(
        (status = 200, body = SingleDocument<InquiryAttributes>),
        (status = 404, body = ErrorDocument), (status = 409, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn redact_inquiry(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let view = service::redact(&state, &caller.scope, &id, &caller.actor()).await?;
    respond(StatusCode::OK, &view, vec![], &QueryParams::default())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ActionMeta {
    /// A reviewer's comment, kept as `reviewer-comment`.
    pub comment: Option<String>,
}

async fn act(
    state: AppState,
    caller: crate::http::auth::Caller,
    id: String,
    action: InquiryAction,
    comment: Option<String>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    // The action's only input, the comment, is sent in `meta`.
    let view = service::act(&state, &caller.scope, &id, action, comment, &caller.actor())
        .await
        .map_err(|e| ApiError::from_service(e, ErrorSource::meta))?;
    respond(StatusCode::OK, &view, vec![], &QueryParams::default())
}

/// Approve a completed, failed or reviewed inquiry.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/approve", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    request_body(content = MetaOnly<ActionMeta>, description = "optional"),
    responses((status = 200, body = SingleDocument<InquiryAttributes>), (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn approve(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MetaOnly<ActionMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, InquiryAction::Approve, body.meta.comment).await
}

/// Decline a completed, failed or reviewed inquiry.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/decline", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    request_body(content = MetaOnly<ActionMeta>, description = "optional"),
    responses((status = 200, body = SingleDocument<InquiryAttributes>), (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn decline(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MetaOnly<ActionMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, InquiryAction::Decline, body.meta.comment).await
}

/// Mark a completed or failed inquiry for review.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/mark-for-review", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    request_body(content = MetaOnly<ActionMeta>, description = "optional"),
    responses((status = 200, body = SingleDocument<InquiryAttributes>), (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn mark_for_review(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MetaOnly<ActionMeta>>,
) -> ApiResult<ApiJson> {
    act(
        state,
        caller,
        id,
        InquiryAction::MarkForReview,
        body.meta.comment,
    )
    .await
}

/// Expire a created or pending inquiry (it can be resumed later).
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/expire", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    responses((status = 200, body = SingleDocument<InquiryAttributes>), (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn expire(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<crate::http::jsonapi::EmptyMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, InquiryAction::Expire, None).await
}

/// Submit the inquiry: a `created` inquiry becomes `pending`, and the template's verifications
/// and reports run asynchronously. Poll the inquiry (or listen for events) for the outcome.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/submit", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    responses(
        (status = 202, body = SingleDocument<InquiryAttributes>),
        (status = 404, body = ErrorDocument), (status = 409, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn submit(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<crate::http::jsonapi::EmptyMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let view = service::submit(&state, &caller.scope, &id).await?;
    respond(StatusCode::ACCEPTED, &view, vec![], &QueryParams::default())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LinkMeta {
    /// How long the credential stays valid (60 s – 7 days; default: the template's setting).
    #[schema(minimum = 60, maximum = 604800)]
    pub expires_in_seconds: Option<u32>,
}

const MIN_LINK_SECONDS: u32 = 60;
const MAX_LINK_SECONDS: u32 = 7 * 24 * 60 * 60;

fn link_lifetime(meta: &LinkMeta) -> Result<Option<u32>, ApiError> {
    match meta.expires_in_seconds {
        Some(s) if !(MIN_LINK_SECONDS..=MAX_LINK_SECONDS).contains(&s) => {
            Err(ApiError::bad_request(format!(
                "Must be from {MIN_LINK_SECONDS} to {MAX_LINK_SECONDS} seconds."
            ))
            .pointer("/meta/expires-in-seconds"))
        }
        other => Ok(other),
    }
}

fn with_meta(mut json: ApiJson, meta: Value) -> ApiJson {
    if let Value::Object(map) = &mut json.1 {
        map.insert("meta".into(), meta);
    }
    json
}

/// Resume an inquiry for its end user: returns `meta.session-token` for the hosted flow or an
/// SDK. An expired inquiry goes back to `pending`.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/resume", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    responses(
        (status = 200, body = SingleDocument<InquiryAttributes>, description = "with `meta.session-token`"),
        (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn resume(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MetaOnly<LinkMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let lifetime = link_lifetime(&body.meta)?;
    let (view, token, expires_at) = service::open_for_end_user(
        &state,
        &caller.scope,
        &id,
        idshare_store::sessions::SessionKind::Session,
        lifetime,
        &caller.actor(),
    )
    .await?;
    let json = respond(StatusCode::OK, &view, vec![], &QueryParams::default())?;
    Ok(with_meta(
        json,
        serde_json::json!({
            "session-token": token,
            "session-token-expires-at": idshare_domain::time_format::format_timestamp(expires_at),
            "flow-url": format!("{}/flow/session/{token}", state.config().public_url()),
        }),
    ))
}

/// Create a single-use link to the hosted flow, where the end user supplies only what is missing.
#[utoipa::path(
    post, path = "/api/v1/inquiries/{id}/generate-one-time-link", tag = "Inquiries",
    params(("id" = String, Path, description = "inq_…")),
    responses(
        (status = 200, body = SingleDocument<InquiryAttributes>, description = "with `meta.one-time-link`"),
        (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn generate_one_time_link(
    State(state): State<AppState>,
    Auth(caller, _): Auth<InquiryWrite>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MetaOnly<LinkMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryId::parse)?;
    let lifetime = link_lifetime(&body.meta)?;
    let (view, token, expires_at) = service::open_for_end_user(
        &state,
        &caller.scope,
        &id,
        idshare_store::sessions::SessionKind::OneTimeLink,
        lifetime,
        &caller.actor(),
    )
    .await?;
    let link = format!("{}/flow/link/{token}", state.config().public_url());
    let json = respond(StatusCode::OK, &view, vec![], &QueryParams::default())?;
    Ok(with_meta(
        json,
        serde_json::json!({
            "one-time-link": link,
            "one-time-link-short": link,
            "one-time-link-expires-at": idshare_domain::time_format::format_timestamp(expires_at),
        }),
    ))
}
