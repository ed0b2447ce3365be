//! Workflows: managing them and their versions, starting runs when an event matches a
//! published trigger, and running them (the `workflow-run` job), step by step.
//!
//! A trigger without a condition starts its run in the event's own transaction. One with a
//! condition is only matched there, by event name: the `workflow-trigger` job evaluates the
//! condition and starts the run (or not) in a transaction of its own. Conditions — trigger,
//! step and branch — are user-supplied programs: they are never evaluated inside a write
//! transaction nor on the async runtime's threads, but on the blocking pool, a few at a time,
//! each within its budget ([`Budget::STANDARD`](idshare_domain::workflow::Budget::STANDARD)).
//!
//! A run is unique per (published version, event), so an event never runs a workflow version
//! twice. Each step's record (input, output, status, error) is saved as soon as the step
//! finishes; a retried run skips the steps it already finished and reuses their outputs.

use std::sync::{Arc, LazyLock};

use idshare_domain::{
    event::names,
    id::{EventId, InquiryId, OrgId, ShareTokenId, WorkflowId, WorkflowRunId, WorkflowVersionId},
    inquiry::InquiryAction,
    time_format::format_timestamp,
    webhook::{next_attempt_delay, parse_webhook_url},
    webhook_signature::{HEADER_NAME, signature_header},
    workflow::{
        Action, ActionStep, BranchStep, ConditionError, HttpMethod, HttpsRequest, Step,
        WorkflowDefinition,
    },
};
use idshare_store::{
    Scope, StoreError, Tx, audit, events,
    jobs::Job,
    workflows::{self, Run, Version, Workflow},
};
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};
use tokio::sync::Semaphore;

use super::{Problem, ServiceError};
use crate::{
    Creator, ServiceContext,
    audit::Actor,
    inquiries::{CreateInquiry, TemplateRef, UpdateInquiry},
    jobs::JobKind,
    redemption::{FieldMapping, Redeem},
    render,
    share_tokens::NewShareToken,
};

const MAX_NAME_CHARS: usize = 200;

/// The longest chain of runs, each started by an event the one before caused: a run that would
/// be longer is recorded `errored` instead of started, so workflows that trigger each other (or
/// themselves) stop.
pub const MAX_CHAIN: u32 = 5;

tokio::task_local! {
    /// The chain of the run whose step is executing (also set while a redemption that a step
    /// asked for runs), read when events start new runs.
    static CHAIN: u32;
}

/// The chain length of the work in progress: 0 outside any workflow run.
pub fn current_chain() -> u32 {
    CHAIN.try_with(|chain| *chain).unwrap_or(0)
}

/// Runs `work` as part of a chain of `chain` runs (see [`current_chain`]).
pub async fn within_chain<F: Future>(chain: u32, work: F) -> F::Output {
    CHAIN.scope(chain, work).await
}

/// The input that holds a workflow's definition; its problems are at paths below it.
pub const DEFINITION_INPUT: &str = "definition";

/// Parses and validates a definition; every problem is at its place in the definition.
fn parse_definition(raw: &Value) -> Result<WorkflowDefinition, Vec<Problem>> {
    WorkflowDefinition::parse(raw).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| {
                Problem::new(
                    "Invalid workflow definition",
                    format!("{}: {}", e.pointer, e.message),
                )
                .at(format!("{DEFINITION_INPUT}{}", e.pointer))
            })
            .collect()
    })
}

fn check_name(name: &str) -> Result<String, Problem> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(Problem::new(
            "Invalid name",
            format!("A workflow name is 1 to {MAX_NAME_CHARS} characters."),
        )
        .at("name"));
    }
    Ok(name.to_owned())
}

/// A workflow with its versions, newest first.
#[derive(Debug)]
pub struct WorkflowView {
    pub workflow: Workflow,
    pub versions: Vec<Version>,
}

impl WorkflowView {
    pub fn published(&self) -> Option<&Version> {
        self.versions.iter().find(|v| v.status == "published")
    }

    pub fn latest(&self) -> Option<&Version> {
        self.versions.first()
    }
}

async fn view(tx: &mut Tx, workflow: Workflow) -> Result<WorkflowView, ServiceError> {
    let versions = workflows::versions(tx, &workflow.id).await?;
    Ok(WorkflowView { workflow, versions })
}

/// Creates an enabled workflow whose version 1 is a draft: nothing runs until it is published.
pub async fn create(
    state: &ServiceContext,
    scope: &Scope,
    name: &str,
    definition: &Value,
    actor: &Actor,
) -> Result<WorkflowView, ServiceError> {
    let (name, parsed) = match (check_name(name), parse_definition(definition)) {
        (Ok(name), Ok(parsed)) => (name, parsed),
        (name, parsed) => {
            let problems = name
                .err()
                .into_iter()
                .chain(parsed.err().into_iter().flatten());
            return Err(ServiceError::Invalid(problems.collect()));
        }
    };
    let now = state.now();
    let workflow = Workflow {
        id: WorkflowId::generate(),
        scope: scope.clone(),
        name,
        status: "enabled".to_owned(),
        secret: idshare_store::random_secret("wflsec"),
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.store().begin_write().await?;
    workflows::insert(&mut tx, state.store().crypto(), &workflow).await?;
    workflows::insert_version(
        &mut tx,
        scope,
        &workflow.id,
        &canonical(&parsed)?,
        parsed.trigger().event,
        now,
    )
    .await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "workflow.created",
        ("workflow", workflow.id.as_str()),
        now,
    )
    .await?;
    let view = view(&mut tx, workflow).await?;
    tx.commit().await?;
    Ok(view)
}

/// The definition as stored: its own serialization (defaults written out).
fn canonical(definition: &WorkflowDefinition) -> Result<Value, ServiceError> {
    serde_json::to_value(definition).map_err(ServiceError::internal)
}

pub async fn get(
    state: &ServiceContext,
    scope: &Scope,
    id: &WorkflowId,
) -> Result<WorkflowView, ServiceError> {
    let mut tx = state.store().begin_read().await?;
    let workflow = workflows::get(&mut tx, state.store().crypto(), scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    view(&mut tx, workflow).await
}

async fn lock(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    id: &WorkflowId,
) -> Result<Workflow, ServiceError> {
    workflows::get_for_update(tx, state.store().crypto(), scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)
}

/// Adds a draft version with a new definition (the published one keeps running until this one
/// is published).
pub async fn new_version(
    state: &ServiceContext,
    scope: &Scope,
    id: &WorkflowId,
    definition: &Value,
    actor: &Actor,
) -> Result<Version, ServiceError> {
    let parsed = parse_definition(definition).map_err(ServiceError::Invalid)?;
    let mut tx = state.store().begin_write().await?;
    let workflow = lock(state, &mut tx, scope, id).await?;
    let version = workflows::insert_version(
        &mut tx,
        scope,
        &workflow.id,
        &canonical(&parsed)?,
        parsed.trigger().event,
        state.now(),
    )
    .await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "workflow.version-created",
        ("workflow", workflow.id.as_str()),
        state.now(),
    )
    .await?;
    tx.commit().await?;
    Ok(version)
}

/// Publishes the newest version; the one published before is superseded.
pub async fn publish(
    state: &ServiceContext,
    scope: &Scope,
    id: &WorkflowId,
    actor: &Actor,
) -> Result<WorkflowView, ServiceError> {
    let mut tx = state.store().begin_write().await?;
    let workflow = lock(state, &mut tx, scope, id).await?;
    let versions = workflows::versions(&mut tx, &workflow.id).await?;
    let latest = versions
        .first()
        .filter(|v| v.status == "draft")
        .ok_or_else(|| {
            ServiceError::conflict(
                "Nothing to publish",
                "The newest version of this workflow is already published; add a version first.",
            )
        })?;
    workflows::publish(&mut tx, &latest.id, &workflow.id, state.now()).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        "workflow.published",
        ("workflow", workflow.id.as_str()),
        state.now(),
    )
    .await?;
    let view = view(&mut tx, workflow).await?;
    tx.commit().await?;
    Ok(view)
}

/// Enables or disables a workflow (a disabled workflow starts no runs; runs already started
/// finish).
pub async fn set_enabled(
    state: &ServiceContext,
    scope: &Scope,
    id: &WorkflowId,
    enabled: bool,
    actor: &Actor,
) -> Result<WorkflowView, ServiceError> {
    let (to, action) = if enabled {
        ("enabled", "enable")
    } else {
        ("disabled", "disable")
    };
    let mut tx = state.store().begin_write().await?;
    let mut workflow = lock(state, &mut tx, scope, id).await?;
    if workflow.status == to {
        return Err(ServiceError::conflict(
            "Invalid status change",
            format!(
                "Cannot {action} a workflow whose status is `{}`.",
                workflow.status
            ),
        ));
    }
    workflow.status = to.to_owned();
    workflow.updated_at = state.now();
    workflows::save(&mut tx, &workflow).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        &format!("workflow.{to}"),
        ("workflow", workflow.id.as_str()),
        state.now(),
    )
    .await?;
    let view = view(&mut tx, workflow).await?;
    tx.commit().await?;
    Ok(view)
}

/// A version's parsed definition (its CEL conditions compiled), kept by the process: versions
/// never change, and every event matching a trigger would otherwise compile them again. The
/// error is why a stored definition no longer passes validation (it did when it was saved;
/// limits may have tightened since).
fn compiled(state: &ServiceContext, version: &Version) -> Result<Arc<WorkflowDefinition>, String> {
    let mut cache = state
        .workflow_definitions()
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(definition) = cache.get(&version.id) {
        return Ok(Arc::clone(definition));
    }
    let definition = WorkflowDefinition::parse(&version.definition).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.pointer, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let definition = Arc::new(definition);
    cache.insert(version.id.clone(), Arc::clone(&definition));
    Ok(definition)
}

/// Why a version that no longer passes validation does not run.
fn invalid_definition(reason: &str) -> String {
    format!(
        "not run: the published definition no longer passes validation ({reason}); publish a new version"
    )
}

/// How many conditions a process evaluates at once. Each is bounded by its budget; the cap
/// keeps a burst of them from taking every core.
const CONDITION_SLOTS: usize = 2;

static CONDITIONS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(CONDITION_SLOTS)));

/// Runs `evaluation` (of conditions) on the blocking pool, once one of the
/// [`CONDITION_SLOTS`] is free. The slot is held by the evaluation itself, so one whose caller
/// went away still counts until it ends.
async fn off_runtime<T: Send + 'static>(
    evaluation: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    let slot = Arc::clone(&CONDITIONS)
        .acquire_owned()
        .await
        .map_err(ServiceError::internal)?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        evaluation()
    })
    .await
    .map_err(ServiceError::internal)
}

/// What a condition sees: `object` (the event's object as the API serializes it), `event`
/// (`id`, `name`, `created-at`) and `steps` (the outputs of the steps run so far, by id).
fn context(
    event_id: &str,
    name: &str,
    created_at: OffsetDateTime,
    payload: Option<&Value>,
) -> Value {
    json!({
        "object": payload.and_then(|p| p.get("data")).cloned().unwrap_or(Value::Null),
        "event": {"id": event_id, "name": name, "created-at": format_timestamp(created_at)},
        "steps": {},
    })
}

/// Starts the runs `event` triggers, in the event's transaction: for each enabled workflow
/// whose published version's trigger names the event, a run and its job when the trigger has
/// no condition, else a `workflow-trigger` job that evaluates the condition (nothing is
/// evaluated here). Returns the runs created, for their `workflow-run.created` events.
pub async fn start_runs(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    event_id: &EventId,
    event: events::NewEvent<'_>,
) -> Result<Vec<Run>, StoreError> {
    let chain = current_chain() + 1;
    let mut started = Vec::new();
    let reactions = idshare_store::orgs::event_reactions(tx, scope).await?;
    for version in reactions.triggered_by(event.name) {
        // Read from the stored definition: compiling it is no work for a write transaction.
        if version.definition.pointer("/trigger/condition").is_some() {
            let job = JobKind::WorkflowTrigger {
                org_id: scope.org_id.to_string(),
                environment: scope.environment.as_str().to_owned(),
                version_id: version.id.to_string(),
                event_id: event_id.to_string(),
                chain,
            };
            crate::jobs::enqueue(state, tx, &job, None).await?;
            continue;
        }
        let run = new_run(state, scope, version, event_id, event.name, chain, Ok(()));
        if insert_run(state, tx, &run).await? {
            started.push(run);
        }
    }
    Ok(started)
}

/// A run of `version` for the event: `created`, or `errored` at once with `not_started`'s
/// reason, or because the chain that led to it is too long.
fn new_run(
    state: &ServiceContext,
    scope: &Scope,
    version: &Version,
    event_id: &EventId,
    event_name: &str,
    chain: u32,
    not_started: Result<(), String>,
) -> Run {
    let now = state.now();
    let error = match not_started {
        Err(reason) => Some(reason),
        Ok(()) if chain > MAX_CHAIN => Some(format!(
            "not run: {MAX_CHAIN} workflow runs in a row, each started by an event the one \
             before caused, led here; stopped so that workflows cannot loop"
        )),
        Ok(()) => None,
    };
    let status = if error.is_some() {
        "errored"
    } else {
        "created"
    };
    Run {
        id: WorkflowRunId::generate(),
        workflow_id: version.workflow_id.clone(),
        version_id: version.id.clone(),
        scope: scope.clone(),
        event_id: event_id.clone(),
        event_name: event_name.to_owned(),
        chain,
        status: status.to_owned(),
        steps: vec![],
        error,
        created_at: now,
        updated_at: now,
        completed_at: (status == "errored").then_some(now),
    }
}

/// Saves a new run, with its job when it is to run; `false` when the event already has its
/// run of this version.
async fn insert_run(state: &ServiceContext, tx: &mut Tx, run: &Run) -> Result<bool, StoreError> {
    if !workflows::insert_run(tx, run).await? {
        return Ok(false);
    }
    if run.status == "created" {
        let job = JobKind::WorkflowRun {
            run_id: run.id.to_string(),
        };
        crate::jobs::enqueue(state, tx, &job, None).await?;
    }
    Ok(true)
}

/// What a `workflow-trigger` job is about.
#[derive(Debug)]
pub struct Trigger<'a> {
    pub org_id: &'a str,
    pub environment: &'a str,
    pub version_id: &'a str,
    pub event_id: &'a str,
    pub chain: u32,
}

impl Trigger<'_> {
    fn parse(&self) -> Result<(Scope, WorkflowVersionId, EventId), ServiceError> {
        let scope = Scope::new(
            OrgId::parse(self.org_id).map_err(ServiceError::internal)?,
            self.environment
                .parse()
                .map_err(|e: idshare_domain::UnknownValueError| ServiceError::internal(e))?,
        );
        let version = WorkflowVersionId::parse(self.version_id).map_err(ServiceError::internal)?;
        let event = EventId::parse(self.event_id).map_err(ServiceError::internal)?;
        Ok((scope, version, event))
    }
}

/// Starts `run` (when the event has no run of its version yet) and announces it, in a
/// transaction of its own.
async fn start(state: &ServiceContext, run: &Run) -> Result<(), ServiceError> {
    let mut tx = state.store().begin_write().await?;
    if insert_run(state, &mut tx, run).await? {
        record_run_event(state, &mut tx, run, names::WORKFLOW_RUN_CREATED).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The `workflow-trigger` job: evaluates a trigger condition for an event, off the runtime and
/// outside any transaction, then starts the run when it holds. A condition that fails or
/// exceeds its budget gives a run that is `errored` at once, with the reason.
pub async fn evaluate_trigger(
    state: &ServiceContext,
    trigger: &Trigger<'_>,
) -> Result<(), ServiceError> {
    let (scope, version_id, event_id) = trigger.parse()?;
    let mut tx = state.store().begin_read().await?;
    let version = workflows::get_version(&mut tx, &version_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("workflow version {version_id} vanished"))
        })?;
    let event = events::get(&mut tx, state.store().crypto(), &scope, &event_id)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("event {event_id} vanished")))?;
    drop(tx);
    let verdict = match (compiled(state, &version), &event.payload) {
        (Err(reason), _) => Err(invalid_definition(&reason)),
        (Ok(_), None) => Err(
            "not run: the event's object was redacted before the trigger condition was \
             evaluated"
                .to_owned(),
        ),
        (Ok(definition), Some(payload)) => {
            let context = context(
                event.id.as_str(),
                &event.name,
                event.created_at,
                Some(payload),
            );
            let name = event.name.clone();
            match off_runtime(move || definition.trigger().fires(&name, &context)).await? {
                Ok(false) => return Ok(()),
                Ok(true) => Ok(()),
                Err(e) => Err(format!("trigger condition: {e}")),
            }
        }
    };
    let run = new_run(
        state,
        &scope,
        &version,
        &event_id,
        &event.name,
        trigger.chain,
        verdict,
    );
    start(state, &run).await
}

/// Called when a `workflow-trigger` job is given up: the event gets an `errored` run, so the
/// lost trigger is visible.
pub async fn give_up_trigger(
    state: &ServiceContext,
    trigger: &Trigger<'_>,
) -> Result<(), ServiceError> {
    let (scope, version_id, event_id) = trigger.parse()?;
    let mut tx = state.store().begin_read().await?;
    let version = workflows::get_version(&mut tx, &version_id).await?;
    let event = events::get(&mut tx, state.store().crypto(), &scope, &event_id).await?;
    drop(tx);
    let (Some(version), Some(event)) = (version, event) else {
        return Ok(());
    };
    let run = new_run(
        state,
        &scope,
        &version,
        &event_id,
        &event.name,
        trigger.chain,
        Err(
            "not run: the trigger condition could not be evaluated after an internal error \
             (see the server log)"
                .to_owned(),
        ),
    );
    start(state, &run).await
}

/// Evaluates the condition of an action step: whether it runs.
async fn step_runs(
    step: &ActionStep,
    context: &Value,
) -> Result<Result<bool, ConditionError>, ServiceError> {
    if step.condition.is_none() {
        return Ok(Ok(true));
    }
    let (step, context) = (step.clone(), context.clone());
    off_runtime(move || step.runs(&context)).await
}

/// Evaluates the conditions of a branch step: the index of the route taken.
async fn route(
    branch: &BranchStep,
    context: &Value,
) -> Result<Result<Option<usize>, ConditionError>, ServiceError> {
    let (branch, context) = (branch.clone(), context.clone());
    off_runtime(move || branch.route(&context)).await
}

/// Why a step failed.
enum StepError {
    /// Worth trying again later; the reason goes into the step's record.
    Transient(anyhow::Error),
    /// Trying again cannot help; the run ends `errored` with the reason.
    Permanent(String),
    /// A service failed in a way that no retry mends (corrupt data, a broken invariant): the
    /// run's job fails with the cause, which stays out of the run's record.
    Failed(ServiceError),
}

impl From<ServiceError> for StepError {
    fn from(e: ServiceError) -> Self {
        if e.is_retryable() {
            StepError::Transient(e.into())
        } else if e.is_failure() {
            StepError::Failed(e)
        } else {
            StepError::Permanent(e.to_string())
        }
    }
}

/// The id of the triggering object, parsed as `T`.
fn object_id<T>(
    context: &Value,
    parse: impl Fn(&str) -> Result<T, idshare_domain::id::IdError>,
) -> Result<T, StepError> {
    context
        .pointer("/object/id")
        .and_then(Value::as_str)
        .and_then(|id| parse(id).ok())
        .ok_or_else(|| {
            StepError::Permanent(
                "the triggering event's object is not the kind this action acts on".to_owned(),
            )
        })
}

/// Runs one action for the workflow; returns the step's output.
async fn execute(
    state: &ServiceContext,
    workflow: &Workflow,
    step: &ActionStep,
    context: &Value,
    body: &[u8],
    attempts: u32,
) -> Result<Value, StepError> {
    let scope = &workflow.scope;
    let creator = Creator::Workflow(&workflow.id);
    match &step.action {
        Action::CreateShareToken {
            connection_id,
            expires_in_seconds,
        } => {
            let source = object_id(context, InquiryId::parse)?;
            let token = crate::share_tokens::create(
                state,
                scope,
                creator,
                &Actor::system(),
                NewShareToken {
                    connection_id: connection_id.as_str(),
                    source_id: source.as_str(),
                    expires_in_seconds: *expires_in_seconds,
                },
            )
            .await?;
            Ok(json!({"share-token-id": token.id}))
        }
        Action::RedeemShareToken {
            inquiry_template_id,
            field_mappings,
        } => {
            let token = object_id(context, ShareTokenId::parse)?;
            let redeemed = crate::redemption::redeem(
                state,
                scope,
                &token,
                Redeem {
                    destination_id: None,
                    inquiry_template_id: Some(inquiry_template_id.to_string()),
                    field_mappings: field_mappings
                        .iter()
                        .map(|m| FieldMapping {
                            source_field_name: m.source_field_name.as_str().to_owned(),
                            destination_field_name: m.destination_field_name.as_str().to_owned(),
                        })
                        .collect(),
                },
                &Actor::system(),
            )
            .await?;
            Ok(json!({
                "share-token-id": redeemed.id,
                "destination-inquiry-id": redeemed.destination_inquiry_id,
            }))
        }
        Action::ApproveInquiry { comment }
        | Action::DeclineInquiry { comment }
        | Action::MarkInquiryForReview { comment } => {
            let action = match &step.action {
                Action::ApproveInquiry { .. } => InquiryAction::Approve,
                Action::DeclineInquiry { .. } => InquiryAction::Decline,
                _ => InquiryAction::MarkForReview,
            };
            let id = object_id(context, InquiryId::parse)?;
            // The workflow acts for its organization: the system's act in the audit log.
            let view =
                crate::inquiries::act(state, scope, &id, action, comment.clone(), &Actor::system())
                    .await?;
            Ok(json!({"inquiry-id": id, "status": view.inquiry.status.as_str()}))
        }
        Action::AddTag { tag } => {
            let id = object_id(context, InquiryId::parse)?;
            let current = crate::inquiries::get(state, scope, &id).await?;
            let mut tags = current.inquiry.tags.clone();
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
            let view = crate::inquiries::update(
                state,
                scope,
                &id,
                UpdateInquiry {
                    fields: None,
                    note: None,
                    tags: Some(tags),
                },
            )
            .await?;
            Ok(json!({"inquiry-id": id, "tags": view.inquiry.tags}))
        }
        Action::MakeHttpsRequest(request) => {
            https_request(state, workflow, request, body, attempts).await
        }
        Action::CreateInquiry {
            inquiry_template_id,
            reference_id,
        } => {
            let view = crate::inquiries::create(
                state,
                scope,
                CreateInquiry {
                    template: TemplateRef::Template(inquiry_template_id.clone()),
                    reference_id: reference_id.clone(),
                    fields: Map::new(),
                    note: None,
                    tags: vec![],
                    expires_in_seconds: None,
                },
            )
            .await?;
            Ok(json!({"inquiry-id": view.inquiry.id}))
        }
    }
}

/// Sends the triggering event's envelope, signed with the workflow's secret like a webhook
/// delivery. A failure is transient until the step's `max-attempts`.
async fn https_request(
    state: &ServiceContext,
    workflow: &Workflow,
    request: &HttpsRequest,
    body: &[u8],
    attempts: u32,
) -> Result<Value, StepError> {
    let give_up = attempts >= request.max_attempts;
    let fail = |message: String| {
        if give_up {
            StepError::Permanent(format!(
                "{message} (attempt {attempts} of {})",
                request.max_attempts
            ))
        } else {
            StepError::Transient(anyhow::anyhow!(message))
        }
    };
    let url =
        parse_webhook_url(request.url.as_str()).map_err(|e| StepError::Permanent(e.to_string()))?;
    if let Some(reason) = crate::webhooks::refused_target(state, &url) {
        return Err(StepError::Permanent(format!("not sent: {reason} address")));
    }
    let method = match request.method {
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
    };
    let now = state.now();
    let response = state
        .webhook_http()
        .request(method, url.as_str())
        .timeout(std::time::Duration::from_secs(u64::from(
            request.timeout_seconds,
        )))
        .header("Content-Type", "application/json; charset=utf-8")
        .header(
            HEADER_NAME,
            signature_header(&[workflow.secret.as_str()], now.unix_timestamp(), body),
        )
        .body(body.to_vec())
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Ok(json!({"status-code": r.status().as_u16()})),
        Ok(r) => Err(fail(format!("the receiver answered {}", r.status()))),
        Err(e) if e.is_timeout() => Err(fail(format!(
            "no answer within {} seconds",
            request.timeout_seconds
        ))),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// The record of a step that reached an end: completed, skipped or errored.
fn step_record(
    id: &str,
    action: Option<&ActionStep>,
    status: &str,
    output: Value,
    error: Option<String>,
    attempts: u32,
) -> Value {
    let mut record = json!({"id": id, "status": status, "output": output, "error": error});
    if let Some(step) = action {
        record["action"] = json!(step.action.kind().as_str());
        record["input"] = Value::Object(step.action.parameters());
        record["attempts"] = json!(attempts);
    }
    record
}

/// The body of a `make-https-request`: the triggering event as the Events API serves it.
async fn event_body(state: &ServiceContext, run: &Run) -> Result<(Vec<u8>, Value), ServiceError> {
    let mut tx = state.store().begin_read().await?;
    let event = events::get(&mut tx, state.store().crypto(), &run.scope, &run.event_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("event {} vanished", run.event_id))
        })?;
    let body = serde_json::to_vec(&json!({"data": render::event(&event)}))
        .map_err(ServiceError::internal)?;
    let context = context(
        event.id.as_str(),
        &event.name,
        event.created_at,
        event.payload.as_ref(),
    );
    Ok((body, context))
}

/// Saves the run and, when it ended, its `workflow-run.completed|errored` event.
async fn save(state: &ServiceContext, run: &Run) -> Result<(), ServiceError> {
    let mut tx = state.store().begin_write().await?;
    workflows::save_run(&mut tx, run).await?;
    let name = match run.status.as_str() {
        "completed" => Some(names::WORKFLOW_RUN_COMPLETED),
        "errored" => Some(names::WORKFLOW_RUN_ERRORED),
        _ => None,
    };
    if let Some(name) = name {
        record_run_event(state, &mut tx, run, name).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A run's own event (delivered to webhooks; it never triggers workflows).
pub async fn record_run_event(
    state: &ServiceContext,
    tx: &mut Tx,
    run: &Run,
    name: &str,
) -> Result<(), StoreError> {
    let payload = render::payload(&render::workflow_run(run));
    crate::events::record_without_workflows(
        state,
        tx,
        &run.scope,
        events::NewEvent {
            name,
            object_type: "workflow-run",
            object_id: run.id.as_str(),
            payload: &payload,
            sealed_by: None,
        },
    )
    .await?;
    Ok(())
}

/// Runs a workflow run (the job): walks the steps of its version, skipping those a retry
/// already finished.
pub async fn run(state: &ServiceContext, run_id: &str, job: &Job) -> Result<(), ServiceError> {
    let id = WorkflowRunId::parse(run_id).map_err(ServiceError::internal)?;
    let mut tx = state.store().begin_read().await?;
    let Some(mut run) = workflows::get_run_any(&mut tx, &id).await? else {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "workflow run {id} does not exist"
        )));
    };
    if matches!(run.status.as_str(), "completed" | "errored") {
        return Ok(());
    }
    let version = workflows::get_version(&mut tx, &run.version_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!(
                "workflow version {} vanished",
                run.version_id
            ))
        })?;
    let workflow = workflows::get(
        &mut tx,
        state.store().crypto(),
        &run.scope,
        &run.workflow_id,
    )
    .await?
    .ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!("workflow {} vanished", run.workflow_id))
    })?;
    drop(tx);
    let definition = match compiled(state, &version) {
        Ok(definition) => definition,
        Err(reason) => {
            let now = state.now();
            run.status = "errored".to_owned();
            run.error = Some(invalid_definition(&reason));
            run.updated_at = now;
            run.completed_at = Some(now);
            return save(state, &run).await;
        }
    };
    let (body, mut context) = event_body(state, &run).await?;
    if run.status == "created" {
        run.status = "in_progress".to_owned();
        run.updated_at = state.now();
        save(state, &run).await?;
    }

    let mut stack = vec![definition.steps().iter()];
    while let Some(top) = stack.last_mut() {
        let Some(step) = top.next() else {
            stack.pop();
            continue;
        };
        let recorded = run.steps.iter().position(|r| r["id"] == step.id());
        if let Some(index) = recorded
            && run.steps[index]["status"] != "pending"
        {
            // Finished by an earlier attempt: reuse its output, and the route it took.
            context["steps"][step.id()] = run.steps[index]["output"].clone();
            if let Step::Branch(branch) = step
                && let Some(route) = run.steps[index]["output"]["route"].as_u64()
                && let Some(chosen) = usize::try_from(route)
                    .ok()
                    .and_then(|r| branch.branches.get(r))
            {
                stack.push(chosen.steps.iter());
            }
            continue;
        }
        let now = state.now();
        let outcome: Result<(Value, &str, Option<String>), String> = match step {
            Step::Branch(branch) => match route(branch, &context).await? {
                Ok(Some(route)) => {
                    stack.push(branch.branches[route].steps.iter());
                    Ok((json!({"route": route}), "completed", None))
                }
                Ok(None) => Ok((json!({"route": null}), "skipped", None)),
                Err(e) => Err(format!("branch condition: {e}")),
            },
            Step::Action(action) => match step_runs(action, &context).await? {
                Ok(false) => Ok((Value::Null, "skipped", None)),
                Err(e) => Err(format!("step condition: {e}")),
                Ok(true) => {
                    let attempts = recorded
                        .and_then(|i| run.steps[i]["attempts"].as_u64())
                        .map_or(1, |a| {
                            u32::try_from(a).unwrap_or(u32::MAX).saturating_add(1)
                        });
                    let work = execute(state, &workflow, action, &context, &body, attempts);
                    match within_chain(run.chain, work).await {
                        Ok(output) => Ok((output, "completed", None)),
                        Err(StepError::Transient(error)) => {
                            let record = step_record(
                                step.id(),
                                Some(action),
                                "pending",
                                Value::Null,
                                Some(error.to_string()),
                                attempts,
                            );
                            match recorded {
                                Some(i) => run.steps[i] = record,
                                None => run.steps.push(record),
                            }
                            run.updated_at = now;
                            save(state, &run).await?;
                            let delay = next_attempt_delay(job.attempts, rand::random::<f64>())
                                .and_then(|d| Duration::try_from(d).ok())
                                .unwrap_or(Duration::minutes(1));
                            return Err(ServiceError::Later {
                                at: now + delay,
                                cause: error
                                    .context(format!("workflow run {id}, step `{}`", step.id())),
                            });
                        }
                        Err(StepError::Failed(e)) => {
                            return Err(ServiceError::internal(
                                anyhow::Error::from(e)
                                    .context(format!("workflow run {id}, step `{}`", step.id())),
                            ));
                        }
                        Err(StepError::Permanent(error)) => Err(error),
                    }
                }
            },
        };
        let action = match step {
            Step::Action(a) => Some(a),
            Step::Branch(_) => None,
        };
        let attempts = recorded
            .and_then(|i| run.steps[i]["attempts"].as_u64())
            .map_or(1, |a| {
                u32::try_from(a).unwrap_or(u32::MAX).saturating_add(1)
            });
        let record = match &outcome {
            Ok((output, status, _)) => {
                context["steps"][step.id()] = output.clone();
                step_record(step.id(), action, status, output.clone(), None, attempts)
            }
            Err(error) => step_record(
                step.id(),
                action,
                "errored",
                Value::Null,
                Some(error.clone()),
                attempts,
            ),
        };
        match recorded {
            Some(i) => run.steps[i] = record,
            None => run.steps.push(record),
        }
        run.updated_at = now;
        if let Err(error) = outcome {
            run.status = "errored".to_owned();
            run.error = Some(format!("step `{}`: {error}", step.id()));
            run.completed_at = Some(now);
            return save(state, &run).await;
        }
        save(state, &run).await?;
    }
    let now = state.now();
    run.status = "completed".to_owned();
    run.updated_at = now;
    run.completed_at = Some(now);
    save(state, &run).await
}

/// Called when a run's job is given up: the run ends `errored`.
pub async fn give_up(state: &ServiceContext, run_id: &str) -> Result<(), ServiceError> {
    let id = WorkflowRunId::parse(run_id).map_err(ServiceError::internal)?;
    let mut tx = state.store().begin_write().await?;
    let Some(mut run) = workflows::get_run_for_update(&mut tx, &id).await? else {
        return Ok(());
    };
    if matches!(run.status.as_str(), "completed" | "errored") {
        return Ok(());
    }
    let now = state.now();
    run.status = "errored".to_owned();
    run.error = Some("given up after an internal error (see the server log)".to_owned());
    run.updated_at = now;
    run.completed_at = Some(now);
    workflows::save_run(&mut tx, &run).await?;
    record_run_event(state, &mut tx, &run, names::WORKFLOW_RUN_ERRORED).await?;
    tx.commit().await?;
    Ok(())
}
