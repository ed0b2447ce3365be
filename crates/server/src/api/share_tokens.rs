//! `/api/v1/connect/share-tokens`: Connect share tokens, seen by both organizations of their
//! connection (`direction` tells which end the caller is), and their redemption.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use idshare_domain::{
    connect::Direction,
    id::{ConnectionId, ShareTokenId},
    share_token::ShareTokenStatus,
};
use idshare_store::share_tokens::{self, ShareToken, ShareTokenFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, ConnectRead, ConnectWrite, parse_id};
use crate::{
    http::{
        auth::Caller,
        error::{ApiError, ApiResult, ErrorDocument, ErrorSource},
        jsonapi::{ApiJson, Document, EmptyMeta, JsonBody, ListDocument, MetaOnly, SingleDocument},
        query::{Accepts, QueryParams},
    },
    state::AppState,
};
use idshare_service::{
    render::{self, ShareTokenAttributes},
    share_tokens as service,
};

const PATH: &str = "/api/v1/connect/share-tokens";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_share_token, list_share_tokens))
        .routes(routes!(get_share_token))
        .routes(routes!(expire))
        .routes(routes!(redeem))
        .routes(routes!(preview))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CreateShareTokenAttributes {
    /// An active connection your organization is the source of (`cxn_…`).
    #[schema(pattern = "^cxn_[1-9A-HJ-NP-Za-km-z]{24}$")]
    pub connection_id: String,
    /// A `completed` or `approved`, unredacted inquiry of yours (`inq_…`).
    #[schema(pattern = "^inq_[1-9A-HJ-NP-Za-km-z]{24}$")]
    pub source_id: String,
    /// Lifetime: 60 (1 minute) to 1814400 (21 days); default 1209600 (14 days).
    #[serde(default)]
    #[schema(minimum = 60, maximum = 1814400)]
    pub expires_in_seconds: Option<i64>,
}

fn respond(status: StatusCode, caller: &Caller, token: &ShareToken) -> ApiResult<ApiJson> {
    let document = SingleDocument {
        data: render::share_token(token, &caller.scope.org_id, None),
        included: vec![],
    };
    ApiJson::new(status, &document, &Default::default())
}

/// Create a share token (source only) over an active connection, offering one completed or
/// approved inquiry to the connection's destination. Writes
/// `connect/share-token.outbound-created` (source) and `…inbound-created` (destination).
#[utoipa::path(
    post, path = "/api/v1/connect/share-tokens", tag = "Connect",
    request_body = Document<CreateShareTokenAttributes>,
    responses(
        (status = 201, body = SingleDocument<ShareTokenAttributes>),
        (status = 400, body = ErrorDocument),
        (status = 403, body = ErrorDocument, description = "the caller is the connection's destination"),
        (status = 404, body = ErrorDocument, description = "no such connection or inquiry for the caller"),
        (status = 422, body = ErrorDocument, description = "connection not active, inquiry not completed/approved or redacted, or expiry out of range"),
    ),
    security(("bearer" = []))
)]
async fn create_share_token(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectWrite>,
    JsonBody(doc): JsonBody<Document<CreateShareTokenAttributes>>,
) -> ApiResult<ApiJson> {
    let attributes = &doc.data.attributes;
    let token = service::create(
        &state,
        &caller.scope,
        idshare_service::Creator::ApiKey(&caller.api_key_id),
        &caller.actor(),
        service::NewShareToken {
            connection_id: &attributes.connection_id,
            source_id: &attributes.source_id,
            expires_in_seconds: attributes.expires_in_seconds,
        },
    )
    .await?;
    respond(StatusCode::CREATED, &caller, &token)
}

const LIST_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &["connection-id", "status", "direction"],
    includes: &[],
    flags: &[],
};

fn list_filter(params: &QueryParams) -> Result<ShareTokenFilter, ApiError> {
    let invalid = |name: &str, details: String| {
        ApiError::bad_request(details).parameter(format!("filter[{name}]"))
    };
    Ok(ShareTokenFilter {
        connection_id: params
            .filter("connection-id")
            .map(|raw| {
                ConnectionId::parse(raw).map_err(|e| invalid("connection-id", e.to_string()))
            })
            .transpose()?,
        status: params
            .filter("status")
            .map(|raw| {
                raw.parse::<ShareTokenStatus>()
                    .map_err(|e| invalid("status", e.to_string()))
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

/// List the share tokens your organization is an end of — outbound (you are the source) and
/// inbound (you are the destination) — in this key's environment, newest first. Never
/// carries `source-data`.
#[utoipa::path(
    get, path = "/api/v1/connect/share-tokens", tag = "Connect",
    params(
        ("filter[connection-id]" = Option<String>, Query, description = "cxn_…"),
        ("filter[status]" = Option<String>, Query, description = "created, pending, redeemed, expired or failed"),
        ("filter[direction]" = Option<String>, Query, description = "outbound (you are the source) or inbound (you are the destination)"),
        ("page[size]" = Option<u32>, Query, description = "1–100, default 10"),
        ("page[after]" = Option<String>, Query, description = "id of the last object of the previous page"),
        ("page[before]" = Option<String>, Query, description = "id of the first object of the next page"),
        ("fields[connect/share-token]" = Option<String>, Query, description = "comma-separated attributes"),
    ),
    responses((status = 200, body = ListDocument<ShareTokenAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_share_tokens(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let filter = list_filter(&params)?;
    let mut tx = state.store().begin_read().await?;
    let page = share_tokens::list(
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
        .map(|t| render::share_token(t, &caller.scope.org_id, None))
        .collect();
    let links = params.links(PATH, &page, |t| t.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

const GET_ACCEPTS: Accepts = Accepts {
    paginated: false,
    filters: &[],
    includes: &[],
    flags: &["peek-source-data"],
};

/// Retrieve a share token your organization is an end of. With `peek-source-data=true` the
/// destination also gets `source-data`: which fields and verification types the source
/// inquiry holds, never a value (the source gets a 403 for the peek). A peek needs an active
/// connection, writes `connect/share-token.outbound-peeked` (source) and `…inbound-peeked`
/// (destination), and counts against the token's limit of peeks and previews.
#[utoipa::path(
    get, path = "/api/v1/connect/share-tokens/{id}", tag = "Connect",
    params(
        ("id" = String, Path, description = "cnst_…"),
        ("peek-source-data" = Option<bool>, Query, description = "destination only: show what the source inquiry holds, without values"),
    ),
    responses(
        (status = 200, body = SingleDocument<ShareTokenAttributes>),
        (status = 400, body = ErrorDocument),
        (status = 403, body = ErrorDocument, description = "the source asked to peek"),
        (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "a peek over a connection that is not active"),
        (status = 429, body = ErrorDocument, description = "too many peeks and previews of this token within the last hour; `Retry-After` says when to try again"),
    ),
    security(("bearer" = []))
)]
async fn get_share_token(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), GET_ACCEPTS)?;
    let peek = match params.flag("peek-source-data") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`peek-source-data` is `true` or `false`, not `{}`.",
                other.chars().take(32).collect::<String>()
            ))
            .parameter("peek-source-data"));
        }
    };
    let id = parse_id(&id, ShareTokenId::parse)?;
    let (token, peek) = service::get(&state, &caller.scope, &id, peek, &caller.actor())
        .await
        .map_err(|e| ApiError::from_service(e, |input| ErrorSource::parameter(input)))?;
    let document = SingleDocument {
        data: render::share_token(&token, &caller.scope.org_id, peek),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}

/// Expire a `created` share token (source only): it can no longer be redeemed. Writes
/// `connect/share-token.outbound-expired` and `…inbound-expired` (an extension).
#[utoipa::path(
    post, path = "/api/v1/connect/share-tokens/{id}/expire", tag = "Connect",
    params(("id" = String, Path, description = "cnst_…")),
    responses(
        (status = 200, body = SingleDocument<ShareTokenAttributes>),
        (status = 403, body = ErrorDocument, description = "the caller is the destination"),
        (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "the token is not `created`"),
    ),
    security(("bearer" = []))
)]
async fn expire(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, ShareTokenId::parse)?;
    let token = service::expire(&state, &caller.scope, &id, &caller.actor()).await?;
    respond(StatusCode::OK, &caller, &token)
}

/// The document's schema of `meta.field-mappings`, which the handler reads by hand.
fn field_mappings_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Type};
    let name = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[a-z0-9]+(-[a-z0-9]+)*$"))
    };
    let mapping = ObjectBuilder::new()
        .property("source-field-name", name())
        .required("source-field-name")
        .property("destination-field-name", name())
        .required("destination-field-name")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    ArrayBuilder::new().items(mapping).build()
}

/// `meta.field-mappings`, parsed: its problems point into `meta`.
fn field_mappings(
    raw: Option<&serde_json::Value>,
) -> ApiResult<Vec<idshare_service::redemption::FieldMapping>> {
    idshare_service::redemption::parse_mappings(raw)
        .map_err(|e| ApiError::from_service(e, ErrorSource::meta))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RedeemAttributes {
    /// Hydrate: an inquiry of yours, `created` (or `pending` with nothing submitted).
    #[serde(default)]
    #[schema(pattern = "^inq_[1-9A-HJ-NP-Za-km-z]{24}$")]
    pub destination_id: Option<String>,
    /// Extension: create the destination inquiry from this template of yours, then hydrate.
    #[serde(default)]
    #[schema(pattern = "^itmpl_[1-9A-HJ-NP-Za-km-z]{24}$")]
    pub inquiry_template_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RedeemData {
    #[serde(default)]
    pub attributes: RedeemAttributes,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct RedeemMeta {
    /// `[{"source-field-name": "name-first", "destination-field-name": "given-name"}]`.
    /// Checked by hand, so a malformed mapping gets a pointer.
    #[serde(default)]
    #[schema(schema_with = field_mappings_schema)]
    pub field_mappings: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RedeemDocument {
    #[serde(default)]
    pub data: RedeemData,
    #[serde(default)]
    pub meta: RedeemMeta,
}

/// Redeem a share token (destination only). Hydrate an inquiry of yours (`destination-id`),
/// create one from a template of yours and hydrate it (`inquiry-template-id`, an extension), or
/// clone the source inquiry (neither). Answers `202 Accepted` at once (as Persona does) with the
/// token `pending`; the
/// redemption job copies what the destination template asks for, reuses passed verifications
/// it allows, runs the rest, and marks the token `redeemed` (or `failed`, with
/// `failure-reason`). Writes `connect/share-token.outbound-redeemed` and `…inbound-redeemed`.
#[utoipa::path(
    post, path = "/api/v1/connect/share-tokens/{id}/redeem", tag = "Connect",
    params(("id" = String, Path, description = "cnst_…")),
    request_body(content = RedeemDocument, description = "optional: without `destination-id` or `inquiry-template-id` the source inquiry is cloned"),
    responses(
        (status = 202, body = SingleDocument<ShareTokenAttributes>, description = "the token, `pending`, with `relationships.destination`"),
        (status = 400, body = ErrorDocument, description = "malformed field mappings, or both `destination-id` and `inquiry-template-id`"),
        (status = 403, body = ErrorDocument, description = "the caller is the source"),
        (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "the token is being or was redeemed, its connection is not active, or it expired"),
        (status = 422, body = ErrorDocument, description = "the destination is not an inquiry of yours that can be hydrated (unfinished, unredacted, no other token's), or the template is not one of yours with a published version"),
    ),
    security(("bearer" = []))
)]
async fn redeem(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectWrite>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<RedeemDocument>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, ShareTokenId::parse)?;
    let field_mappings = field_mappings(doc.meta.field_mappings.as_ref())?;
    let attributes = doc.data.attributes;
    let token = idshare_service::redemption::redeem(
        &state,
        &caller.scope,
        &id,
        idshare_service::redemption::Redeem {
            destination_id: attributes.destination_id,
            inquiry_template_id: attributes.inquiry_template_id,
            field_mappings,
        },
        &caller.actor(),
    )
    .await?;
    respond(StatusCode::ACCEPTED, &caller, &token)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PreviewAttributes {
    /// A template of yours (`itmpl_…`) with a published version.
    #[serde(default)]
    #[schema(required = true, pattern = "^itmpl_[1-9A-HJ-NP-Za-km-z]{24}$")]
    pub inquiry_template_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct PreviewData {
    #[serde(default)]
    #[schema(required = true)]
    pub attributes: PreviewAttributes,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PreviewDocument {
    #[serde(default)]
    #[schema(required = true)]
    pub data: PreviewData,
    #[serde(default)]
    pub meta: RedeemMeta,
}

/// `connect/share-token-preview`: what redemption under a template would do. Requirements are
/// `{kind, key, label, for-verification}` — never a value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SharePreviewAttributes {
    pub inquiry_template_id: String,
    /// Requirements of the template the copied data satisfies (the source holds a value for
    /// them; whether the value passes the field's constraints is decided at redemption).
    #[schema(value_type = Vec<Object>)]
    pub satisfied: Vec<idshare_domain::requirements::Requirement>,
    /// Verification types whose passed source result would be reused (if still within
    /// `reuse.max-age-days` at redemption; otherwise they run).
    #[schema(value_type = Vec<String>)]
    pub reused: Vec<idshare_domain::template::VerificationType>,
    /// Verification types that would run.
    #[schema(value_type = Vec<String>)]
    pub to_run: Vec<idshare_domain::template::VerificationType>,
    /// Requirements still missing after the copy (the end user would be asked for them).
    #[schema(value_type = Vec<Object>)]
    pub missing: Vec<idshare_domain::requirements::Requirement>,
    /// `will-complete`, `will-be-stuck` or `may-fail`.
    #[schema(value_type = String)]
    pub outcome: idshare_domain::preview::Outcome,
}

/// Preview a redemption (destination only; an extension, DESIGN §2.5): what redeeming this
/// `created` token under a template of yours would do — requirements satisfied by the copied
/// data, verifications reused and to run, requirements missing — and the predicted `outcome`:
/// `will-be-stuck` when anything is missing, else `may-fail` when any verification would run,
/// else `will-complete`. Told from what the source holds, never from its values: whether a
/// value passes your field's constraints, or a verification is young enough to reuse, is
/// decided at redemption. Needs an active connection; writes
/// `connect/share-token.outbound-previewed` (source) and `…inbound-previewed` (destination)
/// and counts against the token's limit of peeks and previews; copies, creates and changes
/// nothing else.
#[utoipa::path(
    post, path = "/api/v1/connect/share-tokens/{id}/preview", tag = "Connect",
    params(("id" = String, Path, description = "cnst_…")),
    request_body = PreviewDocument,
    responses(
        (status = 200, body = SingleDocument<SharePreviewAttributes>),
        (status = 400, body = ErrorDocument, description = "malformed field mappings"),
        (status = 403, body = ErrorDocument, description = "the caller is the source"),
        (status = 404, body = ErrorDocument, description = "no such token, or no such template of yours"),
        (status = 409, body = ErrorDocument, description = "connection not active, or the token is not `created` or has expired"),
        (status = 422, body = ErrorDocument, description = "the template is not published, or the source was redacted"),
        (status = 429, body = ErrorDocument, description = "too many peeks and previews of this token within the last hour; `Retry-After` says when to try again"),
    ),
    security(("bearer" = []))
)]
async fn preview(
    State(state): State<AppState>,
    Auth(caller, _): Auth<ConnectRead>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<PreviewDocument>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, ShareTokenId::parse)?;
    let field_mappings = field_mappings(doc.meta.field_mappings.as_ref())?;
    let Some(template) = doc.data.attributes.inquiry_template_id else {
        return Err(ApiError::bad_request(
            "`inquiry-template-id` is required: the template to preview.",
        )
        .pointer("/data/attributes/inquiry-template-id"));
    };
    let (token, template_id, prediction) = service::preview(
        &state,
        &caller.scope,
        &id,
        &template,
        &field_mappings,
        &caller.actor(),
    )
    .await?;
    let document = SingleDocument {
        data: crate::http::jsonapi::ResourceObject::new(
            "connect/share-token-preview",
            token.id.as_str(),
            SharePreviewAttributes {
                inquiry_template_id: template_id.to_string(),
                satisfied: prediction.satisfied,
                reused: prediction.reused,
                to_run: prediction.to_run,
                missing: prediction.missing,
                outcome: prediction.outcome,
            },
        ),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &Default::default())
}
