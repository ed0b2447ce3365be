//! `/api/v1/webhooks`: subscriptions to the organization's events, their secrets and their
//! deliveries.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use idshare_domain::{
    id::{WebhookDeliveryId, WebhookId},
    webhook::{WebhookAction, WebhookStatus},
};
use idshare_store::webhooks::{self, Webhook};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, WebhookRead, WebhookWrite, parse_id};
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
    render::{self, WebhookAttributes, WebhookDeliveryAttributes},
    webhooks::{self as service, Settings},
};

const PATH: &str = "/api/v1/webhooks";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook))
        .routes(routes!(archive))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(redeliver))
}

/// `Some(value)` for a present attribute, `null` included (`Some(None)`), so an update can
/// tell "clear it" from "leave it".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WebhookSettings {
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    /// `https://…` (or `http://…`). Private, loopback and link-local addresses are refused
    /// unless the server allows them.
    pub url: Option<String>,
    /// Event names (e.g. `inquiry.completed`), or `["*"]` for all.
    pub enabled_events: Option<Vec<String>>,
    /// `kebab` (default), `camel` or `snake`.
    pub api_key_inflection: Option<String>,
    /// Attributes to leave out of payloads, e.g. `address-*`, `name-last`,
    /// `/data/attributes/fields/*-number`.
    pub api_attributes_blocklist: Option<Vec<String>>,
    /// `idshare` (default) or `persona`: deliveries in exactly Persona's shape, without
    /// idshare's extensions (an extension, as the `Idshare-Shape` header is for answers).
    pub idshare_shape: Option<String>,
}

impl From<WebhookSettings> for Settings {
    fn from(s: WebhookSettings) -> Self {
        Settings {
            name: s.name,
            description: s.description,
            url: s.url,
            enabled_events: s.enabled_events,
            api_key_inflection: s.api_key_inflection,
            api_attributes_blocklist: s.api_attributes_blocklist,
            idshare_shape: s.idshare_shape,
        }
    }
}

fn respond(status: StatusCode, webhook: &Webhook, with_secrets: bool) -> ApiResult<ApiJson> {
    let document = SingleDocument {
        data: render::webhook(webhook, with_secrets),
        included: vec![],
    };
    ApiJson::new(status, &document, &Default::default())
}

/// Create a webhook. It starts `enabled`; the answer is the only time its secret is shown
/// (besides `rotate-secret`).
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "Webhooks",
    request_body(content = Document<WebhookSettings>, description = "`url` and `enabled-events` are required"),
    responses(
        (status = 201, body = SingleDocument<WebhookAttributes>),
        (status = 400, body = ErrorDocument), (status = 403, body = ErrorDocument),
        (status = 422, body = ErrorDocument, description = "invalid or private URL, unknown event, bad blocklist pattern"),
    ),
    security(("bearer" = []))
)]
async fn create_webhook(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookWrite>,
    JsonBody(doc): JsonBody<Document<WebhookSettings>>,
) -> ApiResult<ApiJson> {
    let webhook = service::create(
        &state,
        &caller.scope,
        doc.data.attributes.into(),
        &caller.actor(),
    )
    .await?;
    respond(StatusCode::CREATED, &webhook, true)
}

const LIST_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &["status"],
    includes: &[],
    flags: &[],
};

/// List the webhooks of this key's organization and environment, newest first.
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "Webhooks",
    params(
        ("filter[status]" = Option<String>, Query, description = "enabled, disabled or archived"),
        ("page[size]" = Option<u32>, Query, description = "1–100, default 10"),
        ("page[after]" = Option<String>, Query, description = "id of the last object of the previous page"),
        ("page[before]" = Option<String>, Query, description = "id of the first object of the next page"),
        ("fields[webhook]" = Option<String>, Query, description = "comma-separated attributes"),
    ),
    responses((status = 200, body = ListDocument<WebhookAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_webhooks(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let statuses: Vec<&str> = WebhookStatus::ALL.iter().map(|s| s.as_str()).collect();
    let status = params.filter_one_of("status", &statuses)?;
    let mut tx = state.store().begin_read().await?;
    let page = webhooks::list(
        &mut tx,
        state.store().crypto(),
        &caller.scope,
        status,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let data = page
        .items
        .iter()
        .map(|w| render::webhook(w, false))
        .collect();
    let links = params.links(PATH, &page, |w| w.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

/// Retrieve a webhook (without its secrets).
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}", tag = "Webhooks",
    params(("id" = String, Path, description = "wbh_…")),
    responses((status = 200, body = SingleDocument<WebhookAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_webhook(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), Accepts::default())?;
    let id = parse_id(&id, WebhookId::parse)?;
    let webhook = service::get(&state, &caller.scope, &id).await?;
    let document = SingleDocument {
        data: render::webhook(&webhook, false),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}

/// Change a webhook's settings (the attributes given; `null` clears `name` or `description`).
#[utoipa::path(
    patch, path = "/api/v1/webhooks/{id}", tag = "Webhooks",
    params(("id" = String, Path, description = "wbh_…")),
    request_body(content = Document<WebhookSettings>, description = "only the attributes to change"),
    responses(
        (status = 200, body = SingleDocument<WebhookAttributes>),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "the webhook is archived"),
        (status = 422, body = ErrorDocument, description = "invalid settings"),
    ),
    security(("bearer" = []))
)]
async fn update_webhook(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookWrite>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<Document<WebhookSettings>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, WebhookId::parse)?;
    let webhook = service::update(
        &state,
        &caller.scope,
        &id,
        doc.data.attributes.into(),
        &caller.actor(),
    )
    .await?;
    respond(StatusCode::OK, &webhook, false)
}

async fn act(
    state: AppState,
    caller: Caller,
    id: String,
    action: WebhookAction,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, WebhookId::parse)?;
    let webhook = service::act(&state, &caller.scope, &id, action, &caller.actor()).await?;
    respond(StatusCode::OK, &webhook, false)
}

/// Archive a webhook: it sends nothing more and can no longer change. Final.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/archive", tag = "Webhooks",
    params(("id" = String, Path, description = "wbh_…")),
    responses(
        (status = 200, body = SingleDocument<WebhookAttributes>), (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "already archived"),
    ),
    security(("bearer" = []))
)]
async fn archive(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, WebhookAction::Archive).await
}

/// Enable a disabled webhook: events from now on are delivered.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/enable", tag = "Webhooks",
    params(("id" = String, Path, description = "wbh_…")),
    responses(
        (status = 200, body = SingleDocument<WebhookAttributes>), (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "not disabled"),
    ),
    security(("bearer" = []))
)]
async fn enable(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, WebhookAction::Enable).await
}

/// Disable a webhook: no deliveries are created for new events, and pending ones are not sent
/// (they end `failed` and can be redelivered once the webhook is enabled again).
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/disable", tag = "Webhooks",
    params(("id" = String, Path, description = "wbh_…")),
    responses(
        (status = 200, body = SingleDocument<WebhookAttributes>), (status = 404, body = ErrorDocument),
        (status = 422, body = ErrorDocument, description = "not enabled"),
    ),
    security(("bearer" = []))
)]
async fn disable(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    act(state, caller, id, WebhookAction::Disable).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RotateMeta {
    /// How long the current secret keeps signing next to the new one: 0–604800 seconds,
    /// default 86400.
    #[schema(minimum = 0, maximum = 604800)]
    pub expires_in_seconds: Option<i64>,
}

/// Replace the signing secret. Until `meta.expires-in-seconds` has passed both secrets sign
/// every delivery (two `t=…,v1=…` pairs). The answer shows both secrets.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "Webhooks",
    params(("id" = String, Path, description = "wbh_…")),
    request_body(content = MetaOnly<RotateMeta>, description = "optional"),
    responses(
        (status = 200, body = SingleDocument<WebhookAttributes>), (status = 404, body = ErrorDocument),
        (status = 422, body = ErrorDocument, description = "expiry out of range, or the webhook is archived"),
    ),
    security(("bearer" = []))
)]
async fn rotate_secret(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookWrite>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MetaOnly<RotateMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, WebhookId::parse)?;
    let webhook = service::rotate_secret(
        &state,
        &caller.scope,
        &id,
        body.meta.expires_in_seconds,
        &caller.actor(),
    )
    .await
    .map_err(|e| ApiError::from_service(e, ErrorSource::meta))?;
    respond(StatusCode::OK, &webhook, true)
}

/// List a webhook's deliveries, newest first: each event sent to it, with its attempts.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "Webhooks",
    params(
        ("id" = String, Path, description = "wbh_…"),
        ("filter[status]" = Option<String>, Query, description = "pending, delivered or failed"),
        ("page[size]" = Option<u32>, Query, description = "1–100, default 10"),
        ("page[after]" = Option<String>, Query, description = "id of the last object of the previous page"),
        ("page[before]" = Option<String>, Query, description = "id of the first object of the next page"),
    ),
    responses((status = 200, body = ListDocument<WebhookDeliveryAttributes>), (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_deliveries(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let id = parse_id(&id, WebhookId::parse)?;
    let status = params.filter_one_of("status", &["pending", "delivered", "failed"])?;
    let webhook = service::get(&state, &caller.scope, &id).await?;
    let mut tx = state.store().begin_read().await?;
    let page = webhooks::list_deliveries(
        &mut tx,
        &caller.scope,
        &webhook.id,
        status,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let data = page.items.iter().map(render::webhook_delivery).collect();
    let links = params.links(&format!("{PATH}/{id}/deliveries"), &page, |d| d.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

/// Retrieve one delivery of a webhook.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}", tag = "Webhooks",
    params(("id" = String, Path, description = "wbh_…"), ("delivery_id" = String, Path, description = "wbhd_…")),
    responses((status = 200, body = SingleDocument<WebhookDeliveryAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_delivery(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookRead>,
    Path((id, delivery_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), Accepts::default())?;
    let id = parse_id(&id, WebhookId::parse)?;
    let delivery_id = parse_id(&delivery_id, WebhookDeliveryId::parse)?;
    let mut tx = state.store().begin_read().await?;
    let delivery = webhooks::get_delivery(&mut tx, &caller.scope, &id, &delivery_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let document = SingleDocument {
        data: render::webhook_delivery(&delivery),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}

/// Send a delivered or failed delivery again, with a new series of attempts.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "Webhooks",
    params(("id" = String, Path, description = "wbh_…"), ("delivery_id" = String, Path, description = "wbhd_…")),
    responses(
        (status = 200, body = SingleDocument<WebhookDeliveryAttributes>), (status = 404, body = ErrorDocument),
        (status = 409, body = ErrorDocument, description = "the delivery is still pending"),
        (status = 422, body = ErrorDocument, description = "the webhook is not enabled"),
    ),
    security(("bearer" = []))
)]
async fn redeliver(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WebhookWrite>,
    Path((id, delivery_id)): Path<(String, String)>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, WebhookId::parse)?;
    let delivery_id = parse_id(&delivery_id, WebhookDeliveryId::parse)?;
    let delivery =
        service::redeliver(&state, &caller.scope, &id, &delivery_id, &caller.actor()).await?;
    let document = SingleDocument {
        data: render::webhook_delivery(&delivery),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &Default::default())
}
