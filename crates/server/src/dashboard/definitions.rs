//! Templates and workflows: definitions edited as JSON, validated on the server, with each
//! problem listed next to the editor with the place in the JSON it points at; versions and
//! publishing; and for workflows, enabling and their runs with each step's status.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use idshare_domain::{
    id::{InquiryTemplateId, InquiryTemplateVersionId, WorkflowId},
    retention::{RetentionDays, RetentionSource},
};
use idshare_store::{
    Cursor, templates,
    users::Role,
    workflows::{self, RunFilter},
};
use serde::Deserialize;
use serde_json::Value;

use super::{Chrome, Moment, Notice, PageError, Signed};
use crate::{state::AppState, web};
use idshare_service::{self as service, ServiceError};

/// Who may create and change templates and workflows.
const EDITORS: &[Role] = &[Role::Admin];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard/templates",
            get(templates_list).post(template_create),
        )
        .route(
            "/dashboard/templates/{id}",
            get(template_show).post(template_version),
        )
        .route(
            "/dashboard/templates/{id}/versions/{version}/publish",
            post(template_publish),
        )
        .route(
            "/dashboard/templates/{id}/retention",
            post(template_retention),
        )
        .route(
            "/dashboard/templates/default-retention",
            post(default_retention),
        )
        .route(
            "/dashboard/workflows",
            get(workflows_list).post(workflow_create),
        )
        .route(
            "/dashboard/workflows/{id}",
            get(workflow_show).post(workflow_version),
        )
        .route("/dashboard/workflows/{id}/{action}", post(workflow_act))
}

/// One problem of a submitted definition: where (a JSON pointer into the definition) and what.
#[derive(Debug)]
struct Problem {
    place: String,
    message: String,
}

/// The problems of a refused save, placed in the definition (the input `definition` of the
/// use case; `""` when the definition is the input itself), or named by their other input.
fn problems(e: &ServiceError, definition: &str) -> Vec<Problem> {
    e.reasons()
        .iter()
        .map(|reason| {
            let place = match reason.input {
                None => String::new(),
                Some(input) => match below(input, definition) {
                    Some("") => "(the whole definition)".to_owned(),
                    Some(path) => format!("/{path}"),
                    None => input.to_owned(),
                },
            };
            // Details may repeat the pointer ("/steps/0/action: …"): keep the message only.
            let message = reason
                .details
                .split_once(": ")
                .filter(|(head, _)| head.starts_with('/'))
                .map_or(reason.details.to_owned(), |(_, rest)| rest.to_owned());
            Problem { place, message }
        })
        .collect()
}

/// The path of `input` below the input `base` (`""`: below the use case's input itself).
fn below<'a>(input: &'a str, base: &str) -> Option<&'a str> {
    if base.is_empty() {
        return Some(input);
    }
    match input.strip_prefix(base)? {
        "" => Some(""),
        rest => rest.strip_prefix('/'),
    }
}

/// Parses the editor's text as JSON, or says where it is not JSON.
fn parse_json(text: &str) -> Result<Value, Vec<Problem>> {
    serde_json::from_str(text).map_err(|e| {
        vec![Problem {
            place: format!("line {}, column {}", e.line(), e.column()),
            message: format!("This is not valid JSON: {e}."),
        }]
    })
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Templates

#[derive(Debug)]
struct TemplateRow {
    id: String,
    name: String,
    published: bool,
    updated_at: Moment,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/templates.html")]
struct TemplatesPage {
    chrome: Chrome,
    rows: Vec<TemplateRow>,
    can_edit: bool,
    name: String,
    definition: String,
    problems: Vec<Problem>,
    /// The organization's default retention period, in days ("" for none), as the form shows it.
    default_retention: String,
    /// What the saved default means, in words.
    default_retention_words: String,
    retention_problem: Option<String>,
}

const EXAMPLE_TEMPLATE: &str = r#"{
  "field-schemas": [
    {"key": "name-first", "type": "string", "config": {"required": true}},
    {"key": "name-last", "type": "string", "config": {"required": true}},
    {"key": "email-address", "type": "string"}
  ],
  "verifications": [{"type": "email-address", "required": true}],
  "reports": [{"type": "watchlist", "on-match": "needs_review"}]
}"#;

async fn templates_page(
    state: &AppState,
    signed: &Signed,
    name: String,
    definition: String,
    problems: Vec<Problem>,
) -> Result<TemplatesPage, PageError> {
    let mut tx = state.store().begin_read().await?;
    let page = templates::list(&mut tx, &signed.scope(), Cursor::Start, 100)
        .await?
        .ok_or(PageError::NotFound)?;
    drop(tx);
    let default = service::retention::organization_default(state, &signed.scope()).await?;
    let default_retention_words = match default {
        Some(days) => format!(
            "Inquiries of templates without a retention period of their own are redacted \
             automatically {} after they end (completed, failed, expired, approved or declined).",
            plural_days(days.get())
        ),
        None => "No default: inquiries of templates without a retention period of their own \
                 keep their data until someone redacts them."
            .to_owned(),
    };
    Ok(TemplatesPage {
        chrome: signed.chrome("templates"),
        rows: page
            .items
            .iter()
            .map(|t| TemplateRow {
                id: t.id.to_string(),
                name: t.name.clone(),
                published: t.published_version_id.is_some(),
                updated_at: Moment::new(t.updated_at, state.now()),
            })
            .collect(),
        can_edit: EDITORS.contains(&signed.role()),
        name,
        definition,
        problems,
        default_retention: default
            .map(|days| days.get().to_string())
            .unwrap_or_default(),
        default_retention_words,
        retention_problem: None,
    })
}

async fn templates_list(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Response, PageError> {
    let page = templates_page(
        &state,
        &signed,
        String::new(),
        EXAMPLE_TEMPLATE.to_owned(),
        vec![],
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

#[derive(Debug, Deserialize)]
struct CreateForm {
    csrf: String,
    name: String,
    definition: String,
}

async fn template_create(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(EDITORS)?;
    let refused = |problems: Vec<Problem>| async {
        let page = templates_page(
            &state,
            &signed,
            form.name.clone(),
            form.definition.clone(),
            problems,
        )
        .await?;
        Ok::<_, PageError>(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
    };
    let definition = match parse_json(&form.definition) {
        Ok(definition) => definition,
        Err(problems) => return refused(problems).await,
    };
    match service::templates::create(
        &state,
        &signed.scope(),
        &form.name,
        &definition,
        &signed.actor(),
    )
    .await
    {
        Ok((template, _)) => Ok(super::done(
            &state,
            &format!("/dashboard/templates/{}", template.id),
            Notice::TemplateCreated,
        )),
        Err(e) if !e.is_failure() => refused(problems(&e, "")).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug)]
struct VersionView {
    id: String,
    number: i64,
    status: &'static str,
    created_at: Moment,
    published_at: Option<Moment>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/template.html")]
struct TemplatePage {
    chrome: Chrome,
    id: String,
    name: String,
    versions: Vec<VersionView>,
    can_edit: bool,
    definition: String,
    problems: Vec<Problem>,
    /// The template's own retention period in days ("" for none), as the form shows it.
    retention: String,
    /// What applies, in words.
    retention_effective: String,
    retention_problem: Option<String>,
}

/// What a retention policy means, in words.
fn retention_words(policy: &service::retention::TemplateRetention) -> String {
    match policy.effective() {
        Some((days, RetentionSource::Template)) => format!(
            "Inquiries of this template are redacted automatically {} after they end.",
            plural_days(days.get())
        ),
        Some((days, RetentionSource::Organization)) => format!(
            "Inquiries of this template are redacted automatically {} after they end (the \
             organization's default).",
            plural_days(days.get())
        ),
        None => "Inquiries of this template keep their data until someone redacts them (no \
                 retention period is set here or as the organization's default)."
            .to_owned(),
    }
}

fn plural_days(days: u32) -> String {
    if days == 1 {
        "1 day".to_owned()
    } else {
        format!("{days} days")
    }
}

async fn template_page(
    state: &AppState,
    signed: &Signed,
    id: &InquiryTemplateId,
    edited: Option<String>,
    problems: Vec<Problem>,
) -> Result<TemplatePage, PageError> {
    let scope = signed.scope();
    let mut tx = state.store().begin_read().await?;
    let template = templates::get(&mut tx, &scope, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let versions = templates::list_versions(&mut tx, &scope, id, Cursor::Start, 100)
        .await?
        .map(|p| p.items)
        .unwrap_or_default();
    let latest = versions
        .first()
        .map(|v| pretty(&v.definition_json()))
        .unwrap_or_default();
    drop(tx);
    let policy = service::retention::of_template(state, &scope, id).await?;
    Ok(TemplatePage {
        chrome: signed.chrome("templates"),
        id: id.to_string(),
        name: template.name,
        versions: versions
            .iter()
            .map(|v| VersionView {
                id: v.id.to_string(),
                number: v.version_number,
                status: v.status.as_str(),
                created_at: Moment::new(v.created_at, state.now()),
                published_at: v.published_at.map(|t| Moment::new(t, state.now())),
            })
            .collect(),
        can_edit: EDITORS.contains(&signed.role()),
        definition: edited.unwrap_or(latest),
        problems,
        retention: policy
            .template
            .map(|days| days.get().to_string())
            .unwrap_or_default(),
        retention_effective: retention_words(&policy),
        retention_problem: None,
    })
}

#[derive(Debug, Deserialize)]
struct RetentionForm {
    csrf: String,
    /// Whole days; empty for none.
    days: String,
}

/// Sets the template's own retention period (empty: the organization's default applies).
async fn template_retention(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<RetentionForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    let id = InquiryTemplateId::parse(&id).map_err(|_| PageError::NotFound)?;
    signed.require(EDITORS)?;
    match RetentionDays::parse_optional(&form.days) {
        Ok(days) => {
            service::retention::set_template(&state, &signed.scope(), &id, days, &signed.actor())
                .await?;
            Ok(super::done(
                &state,
                &format!("/dashboard/templates/{id}#retention"),
                Notice::RetentionSaved,
            ))
        }
        Err(e) => {
            let mut page = template_page(&state, &signed, &id, None, vec![]).await?;
            page.retention = form.days;
            page.retention_problem = Some(format!("{}.", capitalized(&e.to_string())));
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
    }
}

/// Sets the organization's default retention period (empty: none).
async fn default_retention(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<RetentionForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(EDITORS)?;
    match RetentionDays::parse_optional(&form.days) {
        Ok(days) => {
            let actor = signed.actor();
            service::retention::set_organization_default(&state, &signed.scope(), days, &actor)
                .await?;
            Ok(super::done(
                &state,
                "/dashboard/templates#retention",
                Notice::RetentionSaved,
            ))
        }
        Err(e) => {
            let mut page = templates_page(
                &state,
                &signed,
                String::new(),
                EXAMPLE_TEMPLATE.to_owned(),
                vec![],
            )
            .await?;
            page.default_retention = form.days;
            page.retention_problem = Some(format!("{}.", capitalized(&e.to_string())));
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

async fn template_show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = InquiryTemplateId::parse(&id).map_err(|_| PageError::NotFound)?;
    let page = template_page(&state, &signed, &id, None, vec![]).await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

#[derive(Debug, Deserialize)]
struct VersionForm {
    csrf: String,
    definition: String,
}

/// Saves the editor's definition as a new draft version.
async fn template_version(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<VersionForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(EDITORS)?;
    let id = InquiryTemplateId::parse(&id).map_err(|_| PageError::NotFound)?;
    let result = match parse_json(&form.definition) {
        Ok(definition) => service::templates::create_version(
            &state,
            &signed.scope(),
            &id,
            &definition,
            &signed.actor(),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            if super::explainable(&e) {
                Ok(problems(&e, ""))
            } else {
                Err(e)
            }
        }),
        Err(problems) => Err(Ok(problems)),
    };
    match result {
        Ok(()) => Ok(super::done(
            &state,
            &format!("/dashboard/templates/{id}"),
            Notice::TemplateVersionSaved,
        )),
        Err(Ok(problems)) => {
            let page = template_page(&state, &signed, &id, Some(form.definition), problems).await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(Err(e)) => Err(e.into()),
    }
}

async fn template_publish(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, version)): Path<(String, String)>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(EDITORS)?;
    let id = InquiryTemplateId::parse(&id).map_err(|_| PageError::NotFound)?;
    let version = InquiryTemplateVersionId::parse(&version).map_err(|_| PageError::NotFound)?;
    let scope = signed.scope();
    let mut tx = state.store().begin_read().await?;
    let belongs = templates::get_version(&mut tx, &scope, &version)
        .await?
        .is_some_and(|v| v.template_id == id);
    drop(tx);
    if !belongs {
        return Err(PageError::NotFound);
    }
    service::templates::publish_version(&state, &scope, &version, &signed.actor()).await?;
    Ok(super::done(
        &state,
        &format!("/dashboard/templates/{id}"),
        Notice::TemplatePublished,
    ))
}

// ---------------------------------------------------------------------------------------------
// Workflows

#[derive(Debug)]
struct WorkflowRow {
    id: String,
    name: String,
    status: String,
    published: Option<i64>,
    trigger: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/workflows.html")]
struct WorkflowsPage {
    chrome: Chrome,
    rows: Vec<WorkflowRow>,
    can_edit: bool,
    name: String,
    definition: String,
    problems: Vec<Problem>,
    secret: Option<String>,
}

const EXAMPLE_WORKFLOW: &str = r#"{
  "trigger": {"event": "inquiry.completed"},
  "steps": [{"id": "approve", "action": "approve-inquiry"}]
}"#;

async fn workflows_page(
    state: &AppState,
    signed: &Signed,
    name: String,
    definition: String,
    problems: Vec<Problem>,
) -> Result<WorkflowsPage, PageError> {
    let scope = signed.scope();
    let mut tx = state.store().begin_read().await?;
    let page = workflows::list(
        &mut tx,
        state.store().crypto(),
        &scope,
        None,
        Cursor::Start,
        100,
    )
    .await?
    .ok_or(PageError::NotFound)?;
    let mut rows = Vec::with_capacity(page.items.len());
    for workflow in &page.items {
        let versions = workflows::versions(&mut tx, &workflow.id).await?;
        let published = versions.iter().find(|v| v.status == "published");
        rows.push(WorkflowRow {
            id: workflow.id.to_string(),
            name: workflow.name.clone(),
            status: workflow.status.clone(),
            published: published.map(|v| v.number),
            trigger: published.map(|v| v.trigger_event.clone()),
        });
    }
    Ok(WorkflowsPage {
        chrome: signed.chrome("workflows"),
        rows,
        can_edit: EDITORS.contains(&signed.role()),
        name,
        definition,
        problems,
        secret: None,
    })
}

async fn workflows_list(
    State(state): State<AppState>,
    signed: Signed,
) -> Result<Response, PageError> {
    let page = workflows_page(
        &state,
        &signed,
        String::new(),
        EXAMPLE_WORKFLOW.to_owned(),
        vec![],
    )
    .await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

async fn workflow_create(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CreateForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(EDITORS)?;
    let refused = |problems: Vec<Problem>| async {
        let page = workflows_page(
            &state,
            &signed,
            form.name.clone(),
            form.definition.clone(),
            problems,
        )
        .await?;
        Ok::<_, PageError>(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
    };
    let definition = match parse_json(&form.definition) {
        Ok(definition) => definition,
        Err(problems) => return refused(problems).await,
    };
    match service::workflows::create(
        &state,
        &signed.scope(),
        &form.name,
        &definition,
        &signed.actor(),
    )
    .await
    {
        Ok(view) => {
            // The signing secret is shown once, on the page that follows creation.
            let mut page = workflows_page(
                &state,
                &signed,
                String::new(),
                EXAMPLE_WORKFLOW.to_owned(),
                vec![],
            )
            .await?;
            page.secret = Some(view.workflow.secret.clone());
            Ok(web::html(StatusCode::CREATED, page.render()))
        }
        Err(e) if !e.is_failure() => {
            refused(problems(&e, service::workflows::DEFINITION_INPUT)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug)]
struct StepView {
    id: String,
    action: String,
    status: String,
    error: Option<String>,
}

#[derive(Debug)]
struct RunView {
    id: String,
    status: String,
    event: String,
    created_at: Moment,
    error: Option<String>,
    steps: Vec<StepView>,
}

#[derive(Debug, Template)]
#[template(path = "dashboard/workflow.html")]
struct WorkflowPage {
    chrome: Chrome,
    id: String,
    name: String,
    status: String,
    versions: Vec<(i64, String)>,
    can_edit: bool,
    can_publish: bool,
    definition: String,
    problems: Vec<Problem>,
    runs: Vec<RunView>,
}

async fn workflow_page(
    state: &AppState,
    signed: &Signed,
    id: &WorkflowId,
    edited: Option<String>,
    problems: Vec<Problem>,
) -> Result<WorkflowPage, PageError> {
    let scope = signed.scope();
    let view = service::workflows::get(state, &scope, id).await?;
    let mut tx = state.store().begin_read().await?;
    let filter = RunFilter {
        workflow_id: Some(id.clone()),
        status: None,
    };
    let runs = workflows::list_runs(&mut tx, &scope, &filter, Cursor::Start, 25)
        .await?
        .map(|p| p.items)
        .unwrap_or_default();
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Ok(WorkflowPage {
        chrome: signed.chrome("workflows"),
        id: id.to_string(),
        name: view.workflow.name.clone(),
        status: view.workflow.status.clone(),
        versions: view
            .versions
            .iter()
            .map(|v| (v.number, v.status.clone()))
            .collect(),
        can_edit: EDITORS.contains(&signed.role()),
        can_publish: view.latest().is_some_and(|v| v.status == "draft"),
        definition: edited.unwrap_or_else(|| {
            view.latest()
                .map(|v| pretty(&v.definition))
                .unwrap_or_default()
        }),
        problems,
        runs: runs
            .iter()
            .map(|r| RunView {
                id: r.id.to_string(),
                status: r.status.clone(),
                event: r.event_name.clone(),
                created_at: Moment::new(r.created_at, state.now()),
                error: r.error.clone(),
                steps: r
                    .steps
                    .iter()
                    .map(|s| StepView {
                        id: text(&s["id"]).unwrap_or_default(),
                        action: text(&s["action"]).unwrap_or_else(|| "branch".to_owned()),
                        status: text(&s["status"]).unwrap_or_default(),
                        error: text(&s["error"]),
                    })
                    .collect(),
            })
            .collect(),
    })
}

async fn workflow_show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = WorkflowId::parse(&id).map_err(|_| PageError::NotFound)?;
    let page = workflow_page(&state, &signed, &id, None, vec![]).await?;
    Ok(web::html(StatusCode::OK, page.render()))
}

async fn workflow_version(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<VersionForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(EDITORS)?;
    let id = WorkflowId::parse(&id).map_err(|_| PageError::NotFound)?;
    let result = match parse_json(&form.definition) {
        Ok(definition) => service::workflows::new_version(
            &state,
            &signed.scope(),
            &id,
            &definition,
            &signed.actor(),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            if super::explainable(&e) {
                Ok(problems(&e, service::workflows::DEFINITION_INPUT))
            } else {
                Err(e)
            }
        }),
        Err(problems) => Err(Ok(problems)),
    };
    match result {
        Ok(()) => Ok(super::done(
            &state,
            &format!("/dashboard/workflows/{id}"),
            Notice::WorkflowVersionSaved,
        )),
        Err(Ok(problems)) => {
            let page = workflow_page(&state, &signed, &id, Some(form.definition), problems).await?;
            Ok(web::html(StatusCode::UNPROCESSABLE_ENTITY, page.render()))
        }
        Err(Err(e)) => Err(e.into()),
    }
}

async fn workflow_act(
    State(state): State<AppState>,
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<super::CsrfForm>,
) -> Result<Response, PageError> {
    signed.check_csrf(&state, &form.csrf)?;
    signed.require(EDITORS)?;
    let id = WorkflowId::parse(&id).map_err(|_| PageError::NotFound)?;
    let scope = signed.scope();
    let actor = signed.actor();
    let notice = match action.as_str() {
        "publish" => {
            service::workflows::publish(&state, &scope, &id, &actor).await?;
            Notice::WorkflowPublished
        }
        "enable" => {
            service::workflows::set_enabled(&state, &scope, &id, true, &actor).await?;
            Notice::WorkflowEnabled
        }
        "disable" => {
            service::workflows::set_enabled(&state, &scope, &id, false, &actor).await?;
            Notice::WorkflowDisabled
        }
        _ => return Err(PageError::NotFound),
    };
    Ok(super::done(
        &state,
        &format!("/dashboard/workflows/{id}"),
        notice,
    ))
}
