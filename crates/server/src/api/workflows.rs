//! `/api/v1/workflows` and `/api/v1/workflow-runs`: no-code automation on events.

use axum::{
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use idshare_domain::id::{WorkflowId, WorkflowRunId};
use idshare_store::workflows::{self, RunFilter};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Auth, WorkflowRead, WorkflowWrite, parse_id};
use crate::{
    http::{
        error::{ApiError, ApiResult, ErrorDocument},
        jsonapi::{ApiJson, Document, EmptyMeta, JsonBody, ListDocument, MetaOnly, SingleDocument},
        query::{Accepts, QueryParams},
    },
    state::AppState,
};
use idshare_service::{
    render::{self, WorkflowAttributes, WorkflowRunAttributes, WorkflowVersionAttributes},
    workflows::{self as service, WorkflowView},
};

const PATH: &str = "/api/v1/workflows";
const RUNS_PATH: &str = "/api/v1/workflow-runs";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workflow, list_workflows))
        .routes(routes!(get_workflow))
        .routes(routes!(create_version, list_versions))
        .routes(routes!(publish))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CreateWorkflowAttributes {
    pub name: String,
    /// The definition: `trigger` and `steps` (see docs/workflows.md).
    #[schema(value_type = Object)]
    pub definition: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CreateVersionAttributes {
    #[schema(value_type = Object)]
    pub definition: Value,
}

fn respond(status: StatusCode, view: &WorkflowView, with_secret: bool) -> ApiResult<ApiJson> {
    let document = SingleDocument {
        data: render::workflow(view, with_secret),
        included: vec![],
    };
    ApiJson::new(status, &document, &Default::default())
}

/// Create a workflow: it is `enabled`, and its definition becomes version 1, a draft — nothing
/// runs until it is published. The answer is the only time the workflow's signing secret is
/// shown.
#[utoipa::path(
    post, path = "/api/v1/workflows", tag = "Workflows",
    request_body = Document<CreateWorkflowAttributes>,
    responses(
        (status = 201, body = SingleDocument<WorkflowAttributes>),
        (status = 400, body = ErrorDocument), (status = 403, body = ErrorDocument),
        (status = 422, body = ErrorDocument, description = "invalid definition (each error points into it) or name"),
    ),
    security(("bearer" = []))
)]
async fn create_workflow(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowWrite>,
    JsonBody(doc): JsonBody<Document<CreateWorkflowAttributes>>,
) -> ApiResult<ApiJson> {
    let attributes = doc.data.attributes;
    let view = service::create(
        &state,
        &caller.scope,
        &attributes.name,
        &attributes.definition,
        &caller.actor(),
    )
    .await?;
    respond(StatusCode::CREATED, &view, true)
}

const LIST_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &["status"],
    includes: &[],
    flags: &[],
};

/// List the workflows of this key's organization and environment, newest first.
#[utoipa::path(
    get, path = "/api/v1/workflows", tag = "Workflows",
    params(
        ("filter[status]" = Option<String>, Query, description = "enabled or disabled"),
        ("page[size]" = Option<u32>, Query, description = "1–100, default 10"),
        ("page[after]" = Option<String>, Query, description = "id of the last object of the previous page"),
        ("page[before]" = Option<String>, Query, description = "id of the first object of the next page"),
    ),
    responses((status = 200, body = ListDocument<WorkflowAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_workflows(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), LIST_ACCEPTS)?;
    let status = params.filter_one_of("status", &["enabled", "disabled"])?;
    let mut tx = state.store().begin_read().await?;
    let page = workflows::list(
        &mut tx,
        state.store().crypto(),
        &caller.scope,
        status,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let mut data = Vec::with_capacity(page.items.len());
    for workflow in &page.items {
        let versions = workflows::versions(&mut tx, &workflow.id).await?;
        let view = WorkflowView {
            workflow: workflow.clone(),
            versions,
        };
        data.push(render::workflow(&view, false));
    }
    let links = params.links(PATH, &page, |w| w.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

/// Retrieve a workflow.
#[utoipa::path(
    get, path = "/api/v1/workflows/{id}", tag = "Workflows",
    params(("id" = String, Path, description = "wfl_…")),
    responses((status = 200, body = SingleDocument<WorkflowAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_workflow(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), Accepts::default())?;
    let id = parse_id(&id, WorkflowId::parse)?;
    let view = service::get(&state, &caller.scope, &id).await?;
    let document = SingleDocument {
        data: render::workflow(&view, false),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}

/// Add a version with a new definition, as a draft; the published version keeps running until
/// this one is published.
#[utoipa::path(
    post, path = "/api/v1/workflows/{id}/versions", tag = "Workflows",
    params(("id" = String, Path, description = "wfl_…")),
    request_body = Document<CreateVersionAttributes>,
    responses(
        (status = 201, body = SingleDocument<WorkflowVersionAttributes>),
        (status = 400, body = ErrorDocument), (status = 404, body = ErrorDocument),
        (status = 422, body = ErrorDocument, description = "invalid definition"),
    ),
    security(("bearer" = []))
)]
async fn create_version(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowWrite>,
    Path(id): Path<String>,
    JsonBody(doc): JsonBody<Document<CreateVersionAttributes>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, WorkflowId::parse)?;
    let version = service::new_version(
        &state,
        &caller.scope,
        &id,
        &doc.data.attributes.definition,
        &caller.actor(),
    )
    .await?;
    let document = SingleDocument {
        data: render::workflow_version(&version),
        included: vec![],
    };
    ApiJson::new(StatusCode::CREATED, &document, &Default::default())
}

/// List a workflow's versions, newest first, with their definitions.
#[utoipa::path(
    get, path = "/api/v1/workflows/{id}/versions", tag = "Workflows",
    params(("id" = String, Path, description = "wfl_…")),
    responses((status = 200, body = ListDocument<WorkflowVersionAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_versions(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), Accepts::default())?;
    let id = parse_id(&id, WorkflowId::parse)?;
    let view = service::get(&state, &caller.scope, &id).await?;
    let data = view.versions.iter().map(render::workflow_version).collect();
    ApiJson::new(
        StatusCode::OK,
        &ListDocument {
            data,
            links: Default::default(),
        },
        &params.fields,
    )
}

/// Publish the newest version: from now on, its trigger starts runs.
#[utoipa::path(
    post, path = "/api/v1/workflows/{id}/publish", tag = "Workflows",
    params(("id" = String, Path, description = "wfl_…")),
    responses(
        (status = 200, body = SingleDocument<WorkflowAttributes>), (status = 404, body = ErrorDocument),
        (status = 422, body = ErrorDocument, description = "the newest version is already published"),
    ),
    security(("bearer" = []))
)]
async fn publish(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, WorkflowId::parse)?;
    let view = service::publish(&state, &caller.scope, &id, &caller.actor()).await?;
    respond(StatusCode::OK, &view, false)
}

/// Enable a disabled workflow.
#[utoipa::path(
    post, path = "/api/v1/workflows/{id}/enable", tag = "Workflows",
    params(("id" = String, Path, description = "wfl_…")),
    responses(
        (status = 200, body = SingleDocument<WorkflowAttributes>), (status = 404, body = ErrorDocument),
        (status = 422, body = ErrorDocument, description = "already enabled"),
    ),
    security(("bearer" = []))
)]
async fn enable(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, WorkflowId::parse)?;
    let view = service::set_enabled(&state, &caller.scope, &id, true, &caller.actor()).await?;
    respond(StatusCode::OK, &view, false)
}

/// Disable a workflow: events start no new runs (runs already started finish).
#[utoipa::path(
    post, path = "/api/v1/workflows/{id}/disable", tag = "Workflows",
    params(("id" = String, Path, description = "wfl_…")),
    responses(
        (status = 200, body = SingleDocument<WorkflowAttributes>), (status = 404, body = ErrorDocument),
        (status = 422, body = ErrorDocument, description = "already disabled"),
    ),
    security(("bearer" = []))
)]
async fn disable(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowWrite>,
    Path(id): Path<String>,
    _body: JsonBody<MetaOnly<EmptyMeta>>,
) -> ApiResult<ApiJson> {
    let id = parse_id(&id, WorkflowId::parse)?;
    let view = service::set_enabled(&state, &caller.scope, &id, false, &caller.actor()).await?;
    respond(StatusCode::OK, &view, false)
}

const RUNS_ACCEPTS: Accepts = Accepts {
    paginated: true,
    filters: &["status", "workflow-id"],
    includes: &[],
    flags: &[],
};

/// List workflow runs, newest first, each with its steps.
#[utoipa::path(
    get, path = "/api/v1/workflow-runs", tag = "Workflows",
    params(
        ("filter[workflow-id]" = Option<String>, Query, description = "wfl_…"),
        ("filter[status]" = Option<String>, Query, description = "created, in_progress, completed or errored"),
        ("page[size]" = Option<u32>, Query, description = "1–100, default 10"),
        ("page[after]" = Option<String>, Query, description = "id of the last object of the previous page"),
        ("page[before]" = Option<String>, Query, description = "id of the first object of the next page"),
    ),
    responses((status = 200, body = ListDocument<WorkflowRunAttributes>), (status = 400, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn list_runs(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowRead>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), RUNS_ACCEPTS)?;
    let filter = RunFilter {
        workflow_id: params
            .filter("workflow-id")
            .map(|raw| {
                WorkflowId::parse(raw).map_err(|e| {
                    ApiError::bad_request(e.to_string()).parameter("filter[workflow-id]")
                })
            })
            .transpose()?,
        status: params
            .filter_one_of(
                "status",
                &["created", "in_progress", "completed", "errored"],
            )?
            .map(str::to_owned),
    };
    let mut tx = state.store().begin_read().await?;
    let page = workflows::list_runs(
        &mut tx,
        &caller.scope,
        &filter,
        params.cursor(),
        params.page_size,
    )
    .await?
    .ok_or_else(|| params.bad_cursor())?;
    let data = page.items.iter().map(render::workflow_run).collect();
    let links = params.links(RUNS_PATH, &page, |r| r.id.as_str());
    ApiJson::new(
        StatusCode::OK,
        &ListDocument { data, links },
        &params.fields,
    )
}

/// Retrieve a workflow run: its status, and each step's input, output, status and error.
#[utoipa::path(
    get, path = "/api/v1/workflow-runs/{id}", tag = "Workflows",
    params(("id" = String, Path, description = "wfr_…")),
    responses((status = 200, body = SingleDocument<WorkflowRunAttributes>), (status = 404, body = ErrorDocument)),
    security(("bearer" = []))
)]
async fn get_run(
    State(state): State<AppState>,
    Auth(caller, _): Auth<WorkflowRead>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<ApiJson> {
    let params = QueryParams::parse(query.as_deref(), Accepts::default())?;
    let id = parse_id(&id, WorkflowRunId::parse)?;
    let mut tx = state.store().begin_read().await?;
    let run = workflows::get_run(&mut tx, &caller.scope, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let document = SingleDocument {
        data: render::workflow_run(&run),
        included: vec![],
    };
    ApiJson::new(StatusCode::OK, &document, &params.fields)
}
