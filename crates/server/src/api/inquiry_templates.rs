//! `/api/v1/inquiry-templates` and `/api/v1/inquiry-template-versions`.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use idshare_domain::{
    id::{InquiryTemplateId, InquiryTemplateVersionId},
    permission::Permission,
};
use idshare_store::templates;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, TemplateRead, TemplateWrite, parse_id};
use crate::{
    http::{
        error::{ApiError, ApiResult, ErrorDocument},
        jsonapi::{ApiJson, Document, JsonBody, ListDocument, SingleDocument},
        query::{Accepts, Include, QueryParams},
    },
    state::AppState,
};
use idshare_service::{
    self as service,
    render::{self, TemplateAttributes, TemplateVersionAttributes},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_template, list_templates))
        .routes(routes!(get_template))
        .routes(routes!(create_version))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(publish_version))
}

/// The template definition sections, as sent in a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DefinitionInput {
    /// `[{key, type, label?, config: {required, min-date, max-date, options, max-char-length, min, max}}]`
    #[schema(value_type = Vec<Object>)]
    pub field_schemas: Value,
    /// `[{type, required, reuse?: {max-age-days}, config}]`
    #[schema(value_type = Option<Vec<Object>>)]
    pub verifications: Option<Value>,
    /// `[{type, config, on-match}]`
    #[schema(value_type = Option<Vec<Object>>)]
    pub reports: Option<Value>,
    /// `{inquiry-seconds, one-time-link-seconds}`
    #[schema(value_type = Option<Object>)]
    pub expiration: Option<Value>,
}

impl DefinitionInput {
    fn into_value(self) -> Value {
        let mut map = Map::new();
        map.insert("field-schemas".into(), self.field_schemas);
        for (key, value) in [
            ("verifications", self.verifications),
            ("reports", self.reports),
            ("expiration", self.expiration),
        ] {
            if let Some(value) = value {
                map.insert(key.into(), value);
            }
        }
        Value::Object(map)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CreateTemplateAttributes {
    pub name: String,
    #[serde(flatten)]
    pub definition: DefinitionInput,
}

/// Create an inquiry template; its first version is published at once.
#[utoipa::path(
    post, path = "/api/v1/inquiry-templates", tag = "Inquiry templates",
    request_body = Document<CreateTemplateAttributes>,
    responses(
        (status = 201, body = SingleDocument<TemplateAttributes>),
        (status = 400, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn create_template(
    State(state): State<AppState>,
    Auth(caller, _): Auth<TemplateWrite>,
    JsonBody(doc): JsonBody<Document<CreateTemplateAttributes>>,
) -> ApiResult<ApiJson> {
    let attributes = doc.data.attributes;
    let (template, version) = service::templates::create(
        &state,
        &caller.scope,
        &attributes.name,
        &attributes.definition.into_value(),
        &caller.actor(),
    )
    .await?;
    let document = SingleDocument {
        data: render::template(&template, Some(&version)),
        included: vec![],
    };
    ApiJson::new(StatusCode::CREATED, &document, &Default::default())
}

const LIST_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &[],
    includes: &[],
    flags: &[],
};

/// List inquiry templates, newest first.
#[utoipa::path(
    get, path = "/api/v1/inquiry-templates", tag = "Inquiry templates",
    params(
        ("page[size]" = Option<u32>, Query, description = "1–100, default 10"),
        ("page[after]" = Option<String>, Query, description = "id of the last object of the previous page"),
        ("page[before]" = Option<String>, Query, description = "id of the first object of the next page"),
    ),
    responses((status = 200, body = ListDocument<TemplateAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_templates(
    State(state): State<AppState>,
    Auth(caller, _): Auth<TemplateRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let mut tx = state.store().begin_read().await?;
    let page = templates::list(&mut tx, &caller.scope, params.cursor(), params.page_size)
        .await?
        .ok_or_else(|| params.bad_cursor())?;
    let mut data = Vec::with_capacity(page.items.len());
    for template in &page.items {
        let published = match &template.published_version_id {
            Some(id) => templates::get_version(&mut tx, &caller.scope, id).await?,
            None => None,
        };
        data.push(render::template(template, published.as_ref()));
    }
    let links = params.links("/api/v1/inquiry-templates", &page, |t| t.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

const ONE_ACCEPTS: Accepts = Accepts {
    paginated: false,
    filters: &[],
    includes: &[Include {
        path: "latest-published-version",
        permission: Permission::InquiryTemplateRead,
    }],
    flags: &[],
};

/// Retrieve an inquiry template.
#[utoipa::path(
    get, path = "/api/v1/inquiry-templates/{id}", tag = "Inquiry templates",
    params(("id" = String, Path, description = "itmpl_…"), ("include" = Option<String>, Query, description = "latest-published-version", pattern = "^(latest-published-version)?$")),
    responses((status = 200, body = SingleDocument<TemplateAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_template(
    State(state): State<AppState>,
    Auth(caller, _): Auth<TemplateRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse_for(&caller, query.as_deref(), ONE_ACCEPTS)?;
    let id = parse_id(&id, InquiryTemplateId::parse)?;
    let mut tx = state.store().begin_read().await?;
    let template = templates::get(&mut tx, &caller.scope, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let published = match &template.published_version_id {
        Some(id) => templates::get_version(&mut tx, &caller.scope, id).await?,
        None => None,
    };
    let mut included = vec![];
    if params.includes("latest-published-version")
        && let Some(version) = &published
    {
        included.push(serde_json::to_value(render::version(version)).map_err(ApiError::internal)?);
    }
    let document = SingleDocument {
        data: render::template(&template, published.as_ref()),
        included,
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}

/// Create a new (draft) version of a template. Publish it to make new inquiries use it.
#[utoipa::path(
    post, path = "/api/v1/inquiry-templates/{id}/versions", tag = "Inquiry templates",
    params(("id" = String, Path, description = "itmpl_…")),
    request_body = Document<DefinitionInput>,
    responses(
        (status = 201, body = SingleDocument<TemplateVersionAttributes>),
        (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn create_version(
    State(state): State<AppState>,
    Auth(caller, _): Auth<TemplateWrite>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<Document<DefinitionInput>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryTemplateId::parse)?;
    let version = service::templates::create_version(
        &state,
        &caller.scope,
        &id,
        &doc.data.attributes.into_value(),
        &caller.actor(),
    )
    .await?;
    let document = SingleDocument {
        data: render::version(&version),
        included: vec![],
    };
    ApiJson::new(StatusCode::CREATED, &document, &Default::default())
}

const VERSIONS_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &["inquiry-template-id"],
    includes: &[],
    flags: &[],
};

/// List the versions of one template (`filter[inquiry-template-id]` is required), newest first.
#[utoipa::path(
    get, path = "/api/v1/inquiry-template-versions", tag = "Inquiry templates",
    params(
        ("filter[inquiry-template-id]" = String, Query, description = "itmpl_…"),
        ("page[size]" = Option<u32>, Query), ("page[after]" = Option<String>, Query), ("page[before]" = Option<String>, Query),
    ),
    responses((status = 200, body = ListDocument<TemplateVersionAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_versions(
    State(state): State<AppState>,
    Auth(caller, _): Auth<TemplateRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), VERSIONS_ACCEPTS)?;
    let template_id = params
        .filter("inquiry-template-id")
        .ok_or_else(|| {
            ApiError::bad_request("`filter[inquiry-template-id]` is required.")
                .parameter("filter[inquiry-template-id]")
        })
        .map(|raw| {
            InquiryTemplateId::parse(raw).map_err(|e| {
                ApiError::bad_request(e.to_string()).parameter("filter[inquiry-template-id]")
            })
        })??;
    let mut tx = state.store().begin_read().await?;
    let page = templates::list_versions(
        &mut tx,
        &caller.scope,
        &template_id,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let data = page.items.iter().map(render::version).collect();
    let links = params.links("/api/v1/inquiry-template-versions", &page, |v| {
        v.id.as_str()
    });
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

/// Retrieve a template version.
#[utoipa::path(
    get, path = "/api/v1/inquiry-template-versions/{id}", tag = "Inquiry templates",
    params(("id" = String, Path, description = "itmplv_…")),
    responses((status = 200, body = SingleDocument<TemplateVersionAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_version(
    State(state): State<AppState>,
    Auth(caller, _): Auth<TemplateRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), Accepts::default())?;
    let id = parse_id(&id, InquiryTemplateVersionId::parse)?;
    let mut tx = state.store().begin_read().await?;
    let version = templates::get_version(&mut tx, &caller.scope, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let document = SingleDocument {
        data: render::version(&version),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}

/// Publish a draft version: new inquiries of the template use it from now on.
#[utoipa::path(
    post, path = "/api/v1/inquiry-template-versions/{id}/publish", tag = "Inquiry templates",
    params(("id" = String, Path, description = "itmplv_…")),
    responses(
        (status = 200, body = SingleDocument<TemplateVersionAttributes>),
        (status = 404, body = ErrorDocument), (status = 422, body = ErrorDocument),
    ),
    security(("bearer" = []))
)]
async fn publish_version(
    State(state): State<AppState>,
    Auth(caller, _): Auth<TemplateWrite>,
    Path(id): Path<String>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, InquiryTemplateVersionId::parse)?;
    let version =
        service::templates::publish_version(&state, &caller.scope, &id, &caller.actor()).await?;
    let document = SingleDocument {
        data: render::version(&version),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &Default::default())
}
