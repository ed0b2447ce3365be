//! Inquiries: creation, updates, status actions and redaction, each with its event.

use idshare_domain::{
    event::names,
    field::validate_fields,
    id::{InquiryId, InquiryTemplateId, InquiryTemplateVersionId},
    inquiry::{InquiryAction, InquiryStatus, transition},
    requirements::{self, Requirement},
    tags::validate_tags,
    template::TemplateDefinition,
    verification::Subject,
};
use idshare_store::{
    Scope, Tx, audit, events,
    inquiries::{self, Inquiry, InquiryData, NewInquiry},
    templates::{self, VersionStatus},
};
use serde_json::{Map, Value};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

use super::{Problem, ServiceError};
use crate::{ServiceContext, audit::Actor, render};

const MAX_NOTE_CHARS: usize = 10_000;
const MAX_REFERENCE_ID_CHARS: usize = 255;
const MAX_COMMENT_CHARS: usize = 10_000;

/// Which template a new inquiry uses.
#[derive(Debug)]
pub enum TemplateRef {
    /// The template's currently published version.
    Template(InquiryTemplateId),
    /// A pinned version.
    Version(InquiryTemplateVersionId),
}

#[derive(Debug)]
pub struct CreateInquiry {
    pub template: TemplateRef,
    pub reference_id: Option<String>,
    pub fields: Map<String, Value>,
    pub note: Option<String>,
    pub tags: Vec<String>,
    pub expires_in_seconds: Option<u32>,
}

#[derive(Debug, Default)]
pub struct UpdateInquiry {
    pub fields: Option<Map<String, Value>>,
    pub note: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
}

/// An inquiry with the template definition that gives its fields their types, and what it
/// still lacks to be complete.
#[derive(Debug)]
pub struct InquiryView {
    pub inquiry: Inquiry,
    pub definition: Option<Arc<TemplateDefinition>>,
    pub missing: Vec<Requirement>,
    /// Its verifications, reports, documents and selfies (the to-many relationships).
    pub related: inquiries::Related,
}

impl InquiryView {
    /// Loads what the inquiry holds to work out its missing requirements.
    pub async fn load(
        state: &ServiceContext,
        tx: &mut Tx,
        scope: &Scope,
        inquiry: Inquiry,
        definition: Option<Arc<TemplateDefinition>>,
    ) -> Result<Self, ServiceError> {
        let missing = match &definition {
            Some(definition) if inquiry.redacted_at.is_none() => {
                let subject = crate::pipeline::load_subject(tx, state, scope, &inquiry).await?;
                requirements::missing(definition, &subject)
            }
            _ => vec![],
        };
        let related = inquiries::related(tx, scope, &inquiry.id).await?;
        Ok(Self {
            inquiry,
            definition,
            missing,
            related,
        })
    }

    pub fn resource(&self) -> crate::jsonapi::ResourceObject<render::InquiryAttributes> {
        render::inquiry(
            &self.inquiry,
            self.definition.as_deref(),
            &self.missing,
            Some(&self.related),
        )
    }
}

/// Loads the definition an inquiry is locked to (parsed once per process, see the store).
pub async fn definition_for(
    tx: &mut Tx,
    scope: &Scope,
    inquiry: &Inquiry,
) -> Result<Option<Arc<TemplateDefinition>>, ServiceError> {
    let Some(version_id) = &inquiry.template_version_id else {
        return Ok(None);
    };
    if let Some(definition) = templates::cached_definition(version_id) {
        return Ok(Some(definition));
    }
    let version = templates::get_version(tx, scope, version_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!(
                "inquiry {} lost its template version",
                inquiry.id
            ))
        })?;
    Ok(Some(version.definition))
}

/// `input` (a text of at most `max` characters), or why not.
fn text_limit(
    value: Option<String>,
    max: usize,
    input: &str,
) -> Result<Option<String>, ServiceError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ServiceError::invalid(
            "Invalid attribute",
            format!("`{input}` must be at most {max} characters."),
        )
        .at(input)),
        other => Ok(other),
    }
}

fn field_errors(errors: Vec<idshare_domain::field::FieldError>) -> ServiceError {
    ServiceError::Invalid(
        errors
            .into_iter()
            .map(|e| {
                Problem::new("Invalid field", format!("`{}` {}", e.key, e.message))
                    .at(format!("fields/{}", e.key))
            })
            .collect(),
    )
}

fn apply_fields(
    data: &mut InquiryData,
    definition: &TemplateDefinition,
    input: &Map<String, Value>,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let values =
        validate_fields(&definition.field_schemas, input, now.date()).map_err(field_errors)?;
    for (key, value) in values {
        match value {
            Some(value) => data.fields.insert(key.as_str().to_owned(), value),
            None => data.fields.remove(key.as_str()),
        };
    }
    Ok(())
}

fn tags(input: Vec<String>) -> Result<Vec<String>, ServiceError> {
    validate_tags(&input).map_err(|message| {
        ServiceError::invalid("Invalid attribute", format!("`tags` {message}")).at("tags")
    })
}

pub async fn create(
    state: &ServiceContext,
    scope: &Scope,
    request: CreateInquiry,
) -> Result<InquiryView, ServiceError> {
    let mut tx = state.store().begin_write().await?;
    let view = create_in(state, &mut tx, scope, request).await?;
    tx.commit().await?;
    Ok(view)
}

/// Creates an inquiry and its event in the caller's transaction, so that a change made with
/// it (a redemption into the new inquiry) commits or rolls back together with it.
pub async fn create_in(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    request: CreateInquiry,
) -> Result<InquiryView, ServiceError> {
    let now = state.now();
    let reference_id = text_limit(request.reference_id, MAX_REFERENCE_ID_CHARS, "reference-id")?;
    let note = text_limit(request.note, MAX_NOTE_CHARS, "note")?;
    let tags = tags(request.tags)?;
    let version = match &request.template {
        TemplateRef::Template(id) => {
            let template = templates::get(tx, scope, id)
                .await?
                .ok_or_else(|| ServiceError::not_found().at("inquiry-template-id"))?;
            let version_id = template.published_version_id.ok_or_else(|| {
                ServiceError::invalid(
                    "Template not published",
                    "This template has no published version.",
                )
                .at("inquiry-template-id")
            })?;
            templates::get_version(tx, scope, &version_id)
                .await?
                .ok_or_else(|| {
                    ServiceError::internal(anyhow::anyhow!(
                        "published version {version_id} missing"
                    ))
                })?
        }
        TemplateRef::Version(id) => {
            let version = templates::get_version(tx, scope, id)
                .await?
                .ok_or_else(|| ServiceError::not_found().at("inquiry-template-version-id"))?;
            if version.status == VersionStatus::Draft {
                return Err(ServiceError::invalid(
                    "Template version not published",
                    "Inquiries can only use a published (or previously published) template version.",
                )
                .at("inquiry-template-version-id"));
            }
            version
        }
    };
    let definition = version.definition;
    let mut data = InquiryData {
        note,
        ..InquiryData::default()
    };
    apply_fields(&mut data, &definition, &request.fields, now)?;
    let lifetime = request
        .expires_in_seconds
        .unwrap_or(definition.expiration.inquiry_seconds);
    let inquiry = inquiries::create(
        tx,
        state.store().crypto(),
        scope,
        NewInquiry {
            template_id: Some(version.template_id.clone()),
            template_version_id: Some(version.id.clone()),
            reference_id,
            tags,
            data,
            expires_at: Some(now + Duration::seconds(i64::from(lifetime))),
        },
        now,
    )
    .await?;
    // A new inquiry holds nothing but its fields: no documents, files or confirmations to read.
    let missing = requirements::missing(
        &definition,
        &Subject {
            fields: inquiry.data.fields.clone(),
            ..Subject::default()
        },
    );
    let view = InquiryView {
        inquiry,
        definition: Some(definition),
        missing,
        related: inquiries::Related::default(),
    };
    record(state, tx, scope, names::INQUIRY_CREATED, &view).await?;
    Ok(view)
}

pub async fn get(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
) -> Result<InquiryView, ServiceError> {
    let mut tx = state.store().begin_read().await?;
    let inquiry = inquiries::get(&mut tx, state.store().crypto(), scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let definition = definition_for(&mut tx, scope, &inquiry).await?;
    InquiryView::load(state, &mut tx, scope, inquiry, definition).await
}

async fn lock(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    id: &InquiryId,
) -> Result<InquiryView, ServiceError> {
    let inquiry = inquiries::get_for_update(tx, state.store().crypto(), scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    let definition = definition_for(tx, scope, &inquiry).await?;
    InquiryView::load(state, tx, scope, inquiry, definition).await
}

pub async fn update(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    request: UpdateInquiry,
) -> Result<InquiryView, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let mut view = lock(state, &mut tx, scope, id).await?;
    let inquiry = &mut view.inquiry;
    if inquiry.redacted_at.is_some() {
        return Err(ServiceError::conflict(
            "Inquiry redacted",
            "This inquiry was redacted; its data can no longer be changed.",
        ));
    }
    let mut data_changed = false;
    if let Some(fields) = &request.fields {
        if !inquiry.status.accepts_field_updates() {
            return Err(ServiceError::conflict(
                "Inquiry finished",
                format!(
                    "Fields can only change while the inquiry is `created` or `pending`; its status is `{}`.",
                    inquiry.status
                ),
            )
            .at("fields"));
        }
        let definition = view.definition.as_ref().ok_or_else(|| {
            ServiceError::invalid(
                "No template",
                "This inquiry has no template, so it has no editable fields.",
            )
            .at("fields")
        })?;
        apply_fields(&mut inquiry.data, definition, fields, now)?;
        data_changed = true;
    }
    if let Some(note) = request.note {
        inquiry.data.note = text_limit(note, MAX_NOTE_CHARS, "note")?;
        data_changed = true;
    }
    let tags_changed = match request.tags {
        Some(new_tags) => {
            let new_tags = tags(new_tags)?;
            let changed = new_tags != inquiry.tags;
            inquiry.tags = new_tags;
            changed
        }
        None => false,
    };
    inquiry.updated_at = now;
    inquiries::save(&mut tx, state.store().crypto(), scope, &view.inquiry).await?;
    let view = InquiryView::load(state, &mut tx, scope, view.inquiry, view.definition).await?;
    if data_changed {
        record(state, &mut tx, scope, names::INQUIRY_UPDATED, &view).await?;
    }
    if tags_changed {
        record(state, &mut tx, scope, names::INQUIRY_UPDATED_TAGS, &view).await?;
    }
    tx.commit().await?;
    Ok(view)
}

/// Applies a status action (approve, decline, mark for review, expire, …) and its event.
pub async fn act(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    action: InquiryAction,
    comment: Option<String>,
    actor: &Actor,
) -> Result<InquiryView, ServiceError> {
    let now = state.now();
    let comment = text_limit(comment, MAX_COMMENT_CHARS, "comment")?;
    let mut tx = state.store().begin_write().await?;
    let mut view = lock(state, &mut tx, scope, id).await?;
    let inquiry = &mut view.inquiry;
    inquiry.status = transition(inquiry.status, action)
        .map_err(|e| ServiceError::conflict("Invalid transition", format!("{e}.")))?;
    let at = Some(now);
    match action {
        InquiryAction::Start => inquiry.started_at = at,
        InquiryAction::Complete => inquiry.completed_at = at,
        InquiryAction::Fail => inquiry.failed_at = at,
        InquiryAction::Expire => inquiry.expired_at = at,
        InquiryAction::MarkForReview => inquiry.marked_for_review_at = at,
        InquiryAction::Approve | InquiryAction::Decline => inquiry.decisioned_at = at,
        InquiryAction::Resume => {}
    }
    if comment.is_some() && inquiry.redacted_at.is_none() {
        inquiry.data.reviewer_comment = comment;
    }
    inquiry.updated_at = now;
    inquiries::save(&mut tx, state.store().crypto(), scope, &view.inquiry).await?;
    if action == InquiryAction::Expire {
        idshare_store::sessions::expire_all(&mut tx, id, now).await?;
    }
    record(state, &mut tx, scope, action.event_name(), &view).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        action.event_name(),
        ("inquiry", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// Redacts: erases the personal data for good. A second redaction is a conflict.
pub async fn redact(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    actor: &Actor,
) -> Result<InquiryView, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let view = lock(state, &mut tx, scope, id).await?;
    if view.inquiry.redacted_at.is_some() {
        return Err(ServiceError::conflict(
            "Inquiry already redacted",
            "This inquiry was already redacted.",
        ));
    }
    inquiries::redact(&mut tx, scope, id, now).await?;
    let mut inquiry = view.inquiry;
    inquiry.data = InquiryData::default();
    inquiry.redacted_at = Some(now);
    inquiry.updated_at = now;
    let view = InquiryView {
        inquiry,
        definition: view.definition,
        missing: vec![],
        related: inquiries::related(&mut tx, scope, id).await?,
    };
    record(state, &mut tx, scope, names::INQUIRY_REDACTED, &view).await?;
    audit::record_by(
        &mut tx,
        scope,
        actor,
        names::INQUIRY_REDACTED,
        ("inquiry", id.as_str()),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// Records an inquiry event; the payload is sealed under the inquiry's data key unless the
/// inquiry is redacted (its payload then holds no personal data, and the key is gone).
async fn record(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    name: &str,
    view: &InquiryView,
) -> Result<(), ServiceError> {
    let payload = render::payload(&view.resource());
    let id = view.inquiry.id.as_str();
    crate::events::record(
        state,
        tx,
        scope,
        events::NewEvent {
            name,
            object_type: "inquiry",
            object_id: id,
            payload: &payload,
            sealed_by: view.inquiry.redacted_at.is_none().then_some(id),
        },
    )
    .await?;
    Ok(())
}

/// Submits the inquiry to the verification pipeline: `created` becomes `pending`, and a job
/// runs the template's verifications and reports. A second submission while one is being
/// processed is a conflict.
pub async fn submit(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
) -> Result<InquiryView, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let mut view = lock(state, &mut tx, scope, id).await?;
    let inquiry = &mut view.inquiry;
    if inquiry.redacted_at.is_some() {
        return Err(ServiceError::conflict(
            "Inquiry redacted",
            "A redacted inquiry cannot be submitted.",
        ));
    }
    if inquiry.status == InquiryStatus::Created {
        inquiry.status = transition(inquiry.status, InquiryAction::Start)
            .map_err(|e| ServiceError::conflict("Invalid transition", format!("{e}.")))?;
        inquiry.started_at = Some(now);
        record(
            state,
            &mut tx,
            scope,
            InquiryAction::Start.event_name(),
            &view,
        )
        .await?;
    } else if view.inquiry.status != InquiryStatus::Pending {
        return Err(ServiceError::conflict(
            "Inquiry not submittable",
            format!(
                "Only a created or pending inquiry can be submitted; its status is `{}`.",
                view.inquiry.status
            ),
        ));
    }
    let inquiry = &mut view.inquiry;
    if inquiry.submissions > inquiry.processed_submission {
        return Err(ServiceError::conflict(
            "Already submitted",
            "The inquiry's last submission is still being processed; wait for it to finish.",
        ));
    }
    inquiry.submissions += 1;
    inquiry.updated_at = now;
    let submission = inquiry.submissions;
    inquiries::save(&mut tx, state.store().crypto(), scope, inquiry).await?;
    let job = crate::jobs::JobKind::InquiryPipeline {
        org_id: scope.org_id.to_string(),
        environment: scope.environment.to_string(),
        inquiry_id: id.to_string(),
        submission,
    };
    crate::jobs::enqueue(
        state,
        &mut tx,
        &job,
        Some(&format!("pipeline:{id}:{submission}")),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// Opens (or re-opens) the inquiry for its end user: an `expired` inquiry goes back to
/// `pending` with a new expiry, and a credential of `kind` is issued. Returns the token.
pub async fn open_for_end_user(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    kind: idshare_store::sessions::SessionKind,
    lifetime: Option<u32>,
    actor: &Actor,
) -> Result<(InquiryView, String, OffsetDateTime), ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let mut view = lock(state, &mut tx, scope, id).await?;
    if view.inquiry.redacted_at.is_some() {
        return Err(ServiceError::conflict(
            "Inquiry redacted",
            "A redacted inquiry cannot be resumed.",
        ));
    }
    let expiration = view
        .definition
        .as_ref()
        .map(|d| d.expiration)
        .unwrap_or_default();
    match view.inquiry.status {
        InquiryStatus::Created | InquiryStatus::Pending => {}
        InquiryStatus::Expired => {
            let inquiry = &mut view.inquiry;
            inquiry.status = transition(inquiry.status, InquiryAction::Resume)
                .map_err(|e| ServiceError::conflict("Invalid transition", format!("{e}.")))?;
            inquiry.expires_at =
                Some(now + Duration::seconds(i64::from(expiration.inquiry_seconds)));
            inquiry.updated_at = now;
            inquiries::save(&mut tx, state.store().crypto(), scope, inquiry).await?;
            record(
                state,
                &mut tx,
                scope,
                InquiryAction::Resume.event_name(),
                &view,
            )
            .await?;
        }
        other => {
            return Err(ServiceError::conflict(
                "Inquiry not resumable",
                format!(
                    "Only a created, pending or expired inquiry can be resumed; its status is `{other}`."
                ),
            ));
        }
    }
    let seconds = lifetime.unwrap_or(expiration.one_time_link_seconds);
    let expires_at = now + Duration::seconds(i64::from(seconds));
    let (_, token) =
        idshare_store::sessions::create(&mut tx, scope, id, kind, expires_at, now).await?;
    let action = match kind {
        idshare_store::sessions::SessionKind::OneTimeLink => "inquiry.one-time-link-created",
        _ => "inquiry.session-created",
    };
    audit::record_by(&mut tx, scope, actor, action, ("inquiry", id.as_str()), now).await?;
    tx.commit().await?;
    Ok((view, token, expires_at))
}

/// Expires every unfinished inquiry past its expiry time (the expiry job, the system's act in
/// the audit log); returns how many.
pub async fn expire_due(state: &ServiceContext) -> Result<usize, ServiceError> {
    let system = Actor::system();
    let mut expired = 0;
    loop {
        let due = {
            let mut tx = state.store().begin_read().await?;
            inquiries::due_to_expire(&mut tx, state.now(), 100).await?
        };
        if due.is_empty() {
            return Ok(expired);
        }
        for (scope, id) in due {
            match act(state, &scope, &id, InquiryAction::Expire, None, &system).await {
                Ok(_) => expired += 1,
                // Finished or resumed meanwhile: the transition no longer applies.
                Err(ServiceError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
