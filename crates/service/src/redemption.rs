//! Connect redemption (DESIGN §2.2–2.3): the destination's `redeem` call, which only moves the
//! token to `pending` and enqueues the work, and the redemption job, which copies what the
//! destination template asks for (or everything, for a clone), reuses passed verifications,
//! runs the rest through the pipeline, and marks the token `redeemed`.
//!
//! The job is idempotent. Hydration happens in two short transactions: the copy (fields,
//! documents, files, reused verifications, the inquiry to `pending` with one more submission,
//! and the marker `hydrated_by` in the sealed data), then the pipeline's results with the token
//! `redeemed` and its events. A retry re-reads the token (no longer `pending`: nothing to do)
//! and the marker (copy already committed: skip it). A clone is one transaction.

use std::collections::BTreeMap;

use idshare_domain::{
    connect::ConnectionStatus,
    event::names,
    id::{InquiryId, InquiryTemplateId, ShareTokenId},
    inquiry::{InquiryAction, InquiryStatus, transition},
    preview,
    share_token::{self, ShareTokenStatus, failure},
    template::VerificationType,
    time_format::format_timestamp,
    verification::{AddressDocument, FileKind, GovernmentIdDocument, VerificationStatus},
};
use idshare_store::{
    Scope, Tx, checks, connections, documents, events, files,
    inquiries::{self, Inquiry, InquiryData, NewInquiry, Provenance},
    share_tokens::{self, ShareToken},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::Duration;

use super::ServiceError;
use crate::{
    ServiceContext,
    inquiries::{CreateInquiry, TemplateRef},
    jobs::JobKind,
    pipeline, render,
    share_tokens::{ensure_connection_active, record as record_token},
};

const DESTINATION_INPUT: &str = "destination-id";
const TEMPLATE_INPUT: &str = "inquiry-template-id";

/// `meta.field-mappings[]`: a source field copied under another name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FieldMapping {
    pub source_field_name: String,
    pub destination_field_name: String,
}

/// The input that holds the field mappings; its problems are at paths below it.
pub const FIELD_MAPPINGS_INPUT: &str = "field-mappings";

/// Parses the field mappings: an array of objects with two non-empty strings, no destination
/// named twice.
pub fn parse_mappings(raw: Option<&Value>) -> Result<Vec<FieldMapping>, ServiceError> {
    const AT: &str = FIELD_MAPPINGS_INPUT;
    let Some(raw) = raw else {
        return Ok(vec![]);
    };
    let Some(items) = raw.as_array() else {
        return Err(ServiceError::malformed(
            "`field-mappings` must be an array of {source-field-name, destination-field-name}.",
        )
        .at(AT));
    };
    let mut mappings: Vec<FieldMapping> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let text = |name: &str| -> Result<String, ServiceError> {
            match item.get(name).and_then(Value::as_str).map(str::trim) {
                Some(s) if !s.is_empty() => Ok(s.to_owned()),
                _ => Err(
                    ServiceError::malformed(format!("`{name}` must be a non-empty string."))
                        .at(format!("{AT}/{i}/{name}")),
                ),
            }
        };
        let Some(object) = item.as_object() else {
            return Err(ServiceError::malformed(
                "Each field mapping is an object {source-field-name, destination-field-name}.",
            )
            .at(format!("{AT}/{i}")));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| *k != "source-field-name" && *k != "destination-field-name")
        {
            return Err(ServiceError::malformed(format!(
                "Unknown member `{}` in a field mapping.",
                unknown.chars().take(64).collect::<String>()
            ))
            .at(format!("{AT}/{i}")));
        }
        let mapping = FieldMapping {
            source_field_name: text("source-field-name")?,
            destination_field_name: text("destination-field-name")?,
        };
        if mappings
            .iter()
            .any(|m| m.destination_field_name == mapping.destination_field_name)
        {
            return Err(ServiceError::malformed(format!(
                "`{}` is the destination of more than one field mapping.",
                mapping.destination_field_name
            ))
            .at(format!("{AT}/{i}/destination-field-name")));
        }
        mappings.push(mapping);
    }
    Ok(mappings)
}

/// What the destination asked for.
#[derive(Debug)]
pub struct Redeem {
    pub destination_id: Option<String>,
    pub inquiry_template_id: Option<String>,
    pub field_mappings: Vec<FieldMapping>,
}

/// The mappings as a table from destination field to source field.
pub fn mapping_table(mappings: &[FieldMapping]) -> BTreeMap<String, String> {
    mappings
        .iter()
        .map(|m| {
            (
                m.destination_field_name.clone(),
                m.source_field_name.clone(),
            )
        })
        .collect()
}

/// Locks the token and checks everything about it and its connection that does not depend on
/// the destination inquiry.
async fn lock_redeemable(
    tx: &mut Tx,
    state: &ServiceContext,
    scope: &Scope,
    id: &ShareTokenId,
) -> Result<ShareToken, ServiceError> {
    let token = share_tokens::get_for_update(tx, scope, id)
        .await?
        .ok_or_else(ServiceError::not_found)?;
    if token.destination_org_id != scope.org_id {
        return Err(ServiceError::forbidden(
            "Only the destination organization can redeem a share token; yours is its source.",
        ));
    }
    ensure_connection_active(tx, scope, &token, "redeemed").await?;
    match token.status {
        ShareTokenStatus::Created if token.expires_at > state.now() => Ok(token),
        ShareTokenStatus::Created | ShareTokenStatus::Expired => Err(ServiceError::invalid(
            "Share token expired",
            format!(
                "Share token `{}` expired; ask the source organization for a new one.",
                token.id
            ),
        )),
        ShareTokenStatus::Pending => Err(ServiceError::conflict(
            "Share token being redeemed",
            "This share token is already being redeemed.",
        )),
        ShareTokenStatus::Redeemed | ShareTokenStatus::Failed => Err(ServiceError::conflict(
            "Share token already redeemed",
            format!(
                "This share token was already redeemed (status `{}`); a token is redeemed at most once.",
                token.status
            ),
        )),
    }
}

/// Whether data may still be copied into an inquiry: created (or pending with nothing
/// submitted), not redacted, with a template.
fn hydratable(inquiry: &Inquiry) -> bool {
    inquiry.redacted_at.is_none()
        && inquiry.template_version_id.is_some()
        && (inquiry.status == InquiryStatus::Created
            || (inquiry.status == InquiryStatus::Pending && inquiry.submissions == 0))
}

/// Accepts a redemption: the token goes `pending` towards its destination inquiry and the job
/// is enqueued, in one transaction under the token's row lock.
pub async fn redeem(
    state: &ServiceContext,
    scope: &Scope,
    id: &ShareTokenId,
    request: Redeem,
) -> Result<ShareToken, ServiceError> {
    if request.destination_id.is_some() && request.inquiry_template_id.is_some() {
        return Err(ServiceError::malformed(
            "Give `destination-id` (hydrate an inquiry of yours) or `inquiry-template-id` \
             (create one from that template), not both; neither clones the source inquiry.",
        )
        .at(TEMPLATE_INPUT));
    }
    let destination = request
        .destination_id
        .as_deref()
        .map(|raw| {
            InquiryId::parse(raw.trim()).map_err(|_| {
                ServiceError::invalid(
                    "Invalid destination",
                    "`destination-id` names no inquiry of yours.",
                )
                .at(DESTINATION_INPUT)
            })
        })
        .transpose()?;
    let template = request
        .inquiry_template_id
        .as_deref()
        .map(|raw| {
            InquiryTemplateId::parse(raw.trim())
                .map_err(|_| ServiceError::not_found().at(TEMPLATE_INPUT))
        })
        .transpose()?;
    let now = state.now();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let mut token = lock_redeemable(&mut tx, state, scope, id).await?;
    let destination = match (destination, template) {
        (Some(destination), _) => {
            let inquiry = inquiries::get_for_update(&mut tx, crypto, scope, &destination)
                .await?
                .ok_or_else(|| {
                    ServiceError::invalid(
                        "Invalid destination",
                        format!("`{destination}` is not an inquiry of yours."),
                    )
                    .at(DESTINATION_INPUT)
                })?;
            if !hydratable(&inquiry) {
                return Err(ServiceError::invalid(
                    "Destination not hydratable",
                    format!(
                        "Data can be copied only into an unredacted inquiry with a template that \
                         is `created`, or `pending` with nothing submitted; `{}` is `{}`{}.",
                        inquiry.id,
                        inquiry.status,
                        if inquiry.redacted_at.is_some() {
                            " and redacted"
                        } else {
                            ""
                        }
                    ),
                )
                .at(DESTINATION_INPUT));
            }
            if share_tokens::targets(&mut tx, &inquiry.id, &token.id).await? {
                return Err(ServiceError::invalid(
                    "Destination already targeted",
                    format!(
                        "`{}` is already the destination of another share token.",
                        inquiry.id
                    ),
                )
                .at(DESTINATION_INPUT));
            }
            inquiry.id
        }
        (None, Some(template)) => {
            // Created in this transaction: a refused or lost redeem leaves no inquiry behind.
            let created = crate::inquiries::create_in(
                state,
                &mut tx,
                scope,
                CreateInquiry {
                    template: TemplateRef::Template(template),
                    reference_id: None,
                    fields: Default::default(),
                    note: None,
                    tags: vec![],
                    expires_in_seconds: None,
                },
            )
            .await?;
            created.inquiry.id
        }
        (None, None) => {
            // Clone: a new inquiry with no template, filled by the job.
            let inquiry = inquiries::create(
                &mut tx,
                crypto,
                scope,
                NewInquiry {
                    template_id: None,
                    template_version_id: None,
                    reference_id: None,
                    tags: vec![],
                    data: InquiryData::default(),
                    expires_at: None,
                },
                now,
            )
            .await?;
            emit_inquiry(state, &mut tx, scope, names::INQUIRY_CREATED, &inquiry, &[]).await?;
            inquiry.id
        }
    };
    if !share_tokens::start_redemption(&mut tx, &token.id, &destination, now).await? {
        return Err(ServiceError::conflict(
            "Share token being redeemed",
            "This share token is already being redeemed.",
        ));
    }
    token.status = ShareTokenStatus::Pending;
    token.pending_at = Some(now);
    token.updated_at = now;
    token.destination_inquiry_id = Some(destination);
    let job = JobKind::ShareTokenRedemption {
        token_id: token.id.to_string(),
        field_mappings: request.field_mappings,
        workflow_chain: crate::workflows::current_chain(),
    };
    crate::jobs::enqueue(state, &mut tx, &job, Some(&format!("redeem:{}", token.id))).await?;
    tx.commit().await?;
    Ok(token)
}

/// An inquiry event, sealed under the inquiry's key.
async fn emit_inquiry(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    name: &str,
    inquiry: &Inquiry,
    missing: &[idshare_domain::requirements::Requirement],
) -> Result<(), idshare_store::StoreError> {
    let definition = crate::inquiries::definition_for(tx, scope, inquiry)
        .await
        .ok()
        .flatten();
    let payload = render::payload(&render::inquiry(inquiry, definition.as_deref(), missing));
    crate::events::record(
        state,
        tx,
        scope,
        events::NewEvent {
            name,
            object_type: "inquiry",
            object_id: inquiry.id.as_str(),
            payload: &payload,
            sealed_by: Some(inquiry.id.as_str()),
        },
    )
    .await?;
    Ok(())
}

/// Everything copied from the source, read (and decrypted) in one read transaction.
struct SourceData {
    inquiry: Inquiry,
    government_id: Option<GovernmentIdDocument>,
    proof_of_address: Option<AddressDocument>,
    /// The latest file of each kind, with its bytes.
    files: BTreeMap<&'static str, (FileKind, String, Vec<u8>)>,
    verifications: Vec<checks::StoredVerification>,
    reports: Vec<checks::StoredReport>,
}

async fn load_source(
    state: &ServiceContext,
    scope: &Scope,
    inquiry: Inquiry,
) -> Result<SourceData, ServiceError> {
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_read().await?;
    let id = &inquiry.id;
    let government_id = documents::get(&mut tx, crypto, scope, id, "government-id")
        .await?
        .map(|(_, d)| d);
    let proof_of_address = documents::get(&mut tx, crypto, scope, id, "proof-of-address")
        .await?
        .map(|(_, d)| d);
    let mut copied = BTreeMap::new();
    for file in files::for_inquiry(&mut tx, scope, id).await? {
        if let Some((stored, bytes)) = files::content(&mut tx, crypto, scope, &file.id).await? {
            // Oldest first: the latest of each kind wins.
            copied.insert(
                stored.kind.as_str(),
                (stored.kind, stored.content_type, bytes),
            );
        }
    }
    let verifications = checks::verifications_of(&mut tx, crypto, scope, id).await?;
    let reports = checks::reports_of(&mut tx, crypto, scope, id).await?;
    Ok(SourceData {
        inquiry,
        government_id,
        proof_of_address,
        files: copied,
        verifications,
        reports,
    })
}

/// Runs the redemption of one token (the job).
pub async fn run(
    state: &ServiceContext,
    token_id: &str,
    mappings: &[FieldMapping],
) -> Result<(), ServiceError> {
    let id = ShareTokenId::parse(token_id).map_err(ServiceError::internal)?;
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_read().await?;
    let Some(token) = share_tokens::get_any(&mut tx, &id).await? else {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "share token {id} does not exist"
        )));
    };
    if token.status != ShareTokenStatus::Pending {
        return Ok(());
    }
    let source_scope = Scope::new(token.source_org_id.clone(), token.environment);
    let destination_scope = Scope::new(token.destination_org_id.clone(), token.environment);
    let destination_id = token.destination_inquiry_id.clone().ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!(
            "pending share token {id} has no destination"
        ))
    })?;
    let source = inquiries::get(&mut tx, crypto, &source_scope, &token.source_inquiry_id).await?;
    let connection = connections::get(&mut tx, &source_scope, &token.connection_id).await?;
    let destination = inquiries::get(&mut tx, crypto, &destination_scope, &destination_id).await?;
    drop(tx);

    let Some(destination) = destination.filter(|d| d.redacted_at.is_none()) else {
        return fail(state, &id, failure::DESTINATION_NOT_HYDRATABLE).await;
    };
    // Once the copy is in (a retried job), what happens to the source or the connection
    // afterwards no longer matters: the redemption finishes.
    let already_copied = destination.data.hydrated_by.as_deref() == Some(id.as_str());
    let source = if already_copied {
        None
    } else {
        let Some(source) = source.filter(|s| s.redacted_at.is_none()) else {
            return fail(state, &id, failure::SOURCE_REDACTED).await;
        };
        if connection.is_none_or(|c| c.status != ConnectionStatus::Active) {
            return fail(state, &id, failure::CONNECTION_INACTIVE).await;
        }
        Some(source)
    };
    if destination.template_version_id.is_none() {
        let Some(source) = source else {
            return finish(state, &id, &destination_scope, &destination_id, None).await;
        };
        let source = load_source(state, &source_scope, source).await?;
        return clone(state, &token, &destination_scope, &destination_id, &source).await;
    }
    if let Some(source) = source {
        if !hydratable(&destination) {
            return fail(state, &id, failure::DESTINATION_NOT_HYDRATABLE).await;
        }
        let source = load_source(state, &source_scope, source).await?;
        if !copy(
            state,
            &token,
            &destination_scope,
            &destination_id,
            &source,
            mappings,
        )
        .await?
        {
            return fail(state, &id, failure::DESTINATION_NOT_HYDRATABLE).await;
        }
    }
    // Run what was not reused, then record it with the token `redeemed`.
    let mut tx = state.store().begin_read().await?;
    let destination = inquiries::get(&mut tx, crypto, &destination_scope, &destination_id)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("destination {destination_id} vanished"))
        })?;
    drop(tx);
    let submission = destination.submissions;
    let evaluation = if pipeline::needs_processing(&destination, submission) {
        Some(pipeline::evaluate(state, &destination_scope, &destination, submission).await?)
    } else {
        None
    };
    finish(
        state,
        &id,
        &destination_scope,
        &destination_id,
        evaluation.map(|e| (submission, e)),
    )
    .await
}

/// The token ends `failed` with `reason`, with its events.
async fn fail(state: &ServiceContext, id: &ShareTokenId, reason: &str) -> Result<(), ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let Some(mut token) = share_tokens::get_any_for_update(&mut tx, id).await? else {
        return Ok(());
    };
    if !share_tokens::fail_redemption(&mut tx, id, reason, now).await? {
        return Ok(());
    }
    token.status = ShareTokenStatus::Failed;
    token.failed_at = Some(now);
    token.failure_reason = Some(reason.to_owned());
    token.updated_at = now;
    record_token(state, &mut tx, share_token::failed_event, &token).await?;
    tx.commit().await?;
    Ok(())
}

/// The final transaction: the pipeline's results (when there are any), the token `redeemed`,
/// and its events. Nothing happens when the token is no longer `pending`.
async fn finish(
    state: &ServiceContext,
    id: &ShareTokenId,
    scope: &Scope,
    destination_id: &InquiryId,
    evaluation: Option<(i64, pipeline::Evaluation)>,
) -> Result<(), ServiceError> {
    let now = state.now();
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let Some(mut token) = share_tokens::get_any_for_update(&mut tx, id).await? else {
        return Ok(());
    };
    if token.status != ShareTokenStatus::Pending {
        return Ok(());
    }
    if let Some((submission, evaluation)) = evaluation
        && let Some(mut inquiry) =
            inquiries::get_for_update(&mut tx, crypto, scope, destination_id).await?
        && pipeline::needs_processing(&inquiry, submission)
    {
        pipeline::record_in(state, &mut tx, scope, &mut inquiry, submission, &evaluation).await?;
    }
    if !share_tokens::finish_redemption(&mut tx, id, now).await? {
        return Ok(());
    }
    token.status = ShareTokenStatus::Redeemed;
    token.redeemed_at = Some(now);
    token.updated_at = now;
    record_token(state, &mut tx, share_token::redeemed_event, &token).await?;
    tx.commit().await?;
    Ok(())
}

fn provenance(token: &ShareToken, source_field: Option<&str>, now: &str) -> Provenance {
    Provenance {
        share_token: token.id.to_string(),
        source_inquiry: token.source_inquiry_id.to_string(),
        source_field: source_field.map(str::to_owned),
        copied_at: now.to_owned(),
    }
}

/// Writes a copied file and its provenance.
async fn copy_file(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    inquiry: &mut Inquiry,
    token: &ShareToken,
    (kind, content_type, bytes): &(FileKind, String, Vec<u8>),
    now_text: &str,
) -> Result<(), ServiceError> {
    files::create(
        tx,
        state.store().crypto(),
        scope,
        &inquiry.id,
        files::NewFile {
            kind: *kind,
            content_type,
            bytes,
        },
        state.now(),
    )
    .await?;
    inquiry.data.provenance.insert(
        format!("file:{}", kind.as_str()),
        provenance(token, None, now_text),
    );
    Ok(())
}

/// Hydrate, first transaction: copies what the destination template declares (fields after
/// the mappings; documents and files its verifications need), copies passed verifications it
/// allows to reuse, and submits the inquiry (pending, one more submission). Returns false when
/// the destination can no longer be hydrated.
async fn copy(
    state: &ServiceContext,
    token: &ShareToken,
    scope: &Scope,
    destination_id: &InquiryId,
    source: &SourceData,
    mappings: &[FieldMapping],
) -> Result<bool, ServiceError> {
    let now = state.now();
    let now_text = format_timestamp(now);
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    match share_tokens::get_any_for_update(&mut tx, &token.id).await? {
        Some(t) if t.status == ShareTokenStatus::Pending => {}
        _ => return Ok(true),
    }
    let Some(mut inquiry) =
        inquiries::get_for_update(&mut tx, crypto, scope, destination_id).await?
    else {
        return Ok(false);
    };
    if inquiry.data.hydrated_by.as_deref() == Some(token.id.as_str()) {
        return Ok(true);
    }
    if !hydratable(&inquiry) {
        return Ok(false);
    }
    let definition = crate::inquiries::definition_for(&mut tx, scope, &inquiry)
        .await?
        .ok_or_else(|| {
            ServiceError::internal(anyhow::anyhow!("inquiry {destination_id} has no template"))
        })?;
    // Fields: only those the destination declares, and only values its schema accepts.
    for copied in preview::copied_fields(
        &definition,
        &source.inquiry.data.fields,
        &mapping_table(mappings),
        now.date(),
    ) {
        inquiry.data.provenance.insert(
            copied.key.clone(),
            provenance(token, copied.mapped_from.as_deref(), &now_text),
        );
        inquiry.data.fields.insert(copied.key, copied.value);
    }
    // Documents and files: only those the destination's verifications need.
    for config in &definition.verifications {
        let kinds: &[FileKind] = match config.verification_type {
            VerificationType::GovernmentId => {
                if let Some(document) = &source.government_id {
                    documents::upsert(
                        &mut tx,
                        crypto,
                        scope,
                        &inquiry.id,
                        "government-id",
                        document,
                        now,
                    )
                    .await?;
                    inquiry.data.provenance.insert(
                        "document:government-id".to_owned(),
                        provenance(token, None, &now_text),
                    );
                }
                &[FileKind::GovernmentIdFront, FileKind::GovernmentIdBack]
            }
            VerificationType::Document => {
                if let Some(document) = &source.proof_of_address {
                    documents::upsert(
                        &mut tx,
                        crypto,
                        scope,
                        &inquiry.id,
                        "proof-of-address",
                        document,
                        now,
                    )
                    .await?;
                    inquiry.data.provenance.insert(
                        "document:proof-of-address".to_owned(),
                        provenance(token, None, &now_text),
                    );
                }
                &[FileKind::ProofOfAddress]
            }
            VerificationType::Selfie => &[FileKind::Selfie],
            _ => &[],
        };
        for kind in kinds {
            let key = format!("file:{}", kind.as_str());
            if inquiry.data.provenance.contains_key(&key) {
                continue;
            }
            if let Some(file) = source.files.get(kind.as_str()) {
                copy_file(state, &mut tx, scope, &mut inquiry, token, file, &now_text).await?;
            }
        }
    }
    // Submit: pending, one more submission, which the reused verifications belong to.
    if inquiry.status == InquiryStatus::Created {
        inquiry.status =
            transition(inquiry.status, InquiryAction::Start).map_err(ServiceError::internal)?;
        inquiry.started_at = Some(now);
    }
    inquiry.submissions += 1;
    let submission = inquiry.submissions;
    inquiry.data.hydrated_by = Some(token.id.to_string());
    inquiry.updated_at = now;
    inquiries::save(&mut tx, crypto, scope, &inquiry).await?;
    // What the reused verifications vouch for: they keep counting for later submissions only
    // while these inputs are unchanged.
    let copied = pipeline::load_subject(&mut tx, state, scope, &inquiry).await?;
    for config in &definition.verifications {
        let Some(reuse) = config.reuse else {
            continue;
        };
        let window = now - Duration::days(i64::from(reuse.max_age_days));
        let Some(passed) = source
            .verifications
            .iter()
            .filter(|v| {
                v.verification_type == config.verification_type.as_str()
                    && v.status == "passed"
                    && v.completed_at.is_some_and(|at| at >= window)
            })
            .max_by_key(|v| v.completed_at)
        else {
            continue;
        };
        let mut result = passed
            .result
            .clone()
            .unwrap_or_else(|| json!({"checks": [], "attributes": {}}));
        mark(&mut result, "reused-from", passed.id.as_str());
        result[pipeline::REUSED_BASIS] =
            json!(preview::reuse_basis(config.verification_type, &copied));
        if let Some(recorded) = checks::record_verification(
            &mut tx,
            crypto,
            scope,
            checks::NewVerification {
                inquiry_id: &inquiry.id,
                verification_type: &passed.verification_type,
                submission,
                status: "passed",
                required: config.required,
                result: &result,
            },
            now,
        )
        .await?
        {
            // A verification that comes to count in this inquiry is announced like one that
            // ran; `details.reused-from` tells them apart.
            pipeline::record_verification_event(
                state,
                &mut tx,
                scope,
                VerificationStatus::Passed,
                &recorded,
            )
            .await?;
        }
    }
    if inquiry.started_at == Some(now) && submission == 1 {
        emit_inquiry(
            state,
            &mut tx,
            scope,
            InquiryAction::Start.event_name(),
            &inquiry,
            &[],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Adds `key: value` to a result's `attributes`.
fn mark(result: &mut Value, key: &str, value: &str) {
    if !result.get("attributes").is_some_and(Value::is_object) {
        result["attributes"] = json!({});
    }
    result["attributes"][key] = json!(value);
}

/// Clone, in one transaction: the source's data, documents, files, verifications and reports
/// as they were (marked `cloned-from`), the source's status (approved counts as completed),
/// and the token `redeemed`.
async fn clone(
    state: &ServiceContext,
    token: &ShareToken,
    scope: &Scope,
    destination_id: &InquiryId,
    source: &SourceData,
) -> Result<(), ServiceError> {
    let now = state.now();
    let now_text = format_timestamp(now);
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let Some(mut locked) = share_tokens::get_any_for_update(&mut tx, &token.id).await? else {
        return Ok(());
    };
    if locked.status != ShareTokenStatus::Pending {
        return Ok(());
    }
    let Some(mut inquiry) =
        inquiries::get_for_update(&mut tx, crypto, scope, destination_id).await?
    else {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "clone {destination_id} vanished"
        )));
    };
    if inquiry.data.hydrated_by.is_none() {
        inquiry.data.fields = source.inquiry.data.fields.clone();
        for key in source.inquiry.data.fields.keys() {
            inquiry
                .data
                .provenance
                .insert(key.clone(), provenance(token, None, &now_text));
        }
        if let Some(document) = &source.government_id {
            documents::upsert(
                &mut tx,
                crypto,
                scope,
                &inquiry.id,
                "government-id",
                document,
                now,
            )
            .await?;
        }
        if let Some(document) = &source.proof_of_address {
            documents::upsert(
                &mut tx,
                crypto,
                scope,
                &inquiry.id,
                "proof-of-address",
                document,
                now,
            )
            .await?;
        }
        for file in source.files.values() {
            copy_file(state, &mut tx, scope, &mut inquiry, token, file, &now_text).await?;
        }
        for v in &source.verifications {
            let mut result = v
                .result
                .clone()
                .unwrap_or_else(|| json!({"checks": [], "attributes": {}}));
            mark(&mut result, "cloned-from", v.id.as_str());
            let recorded = checks::record_verification(
                &mut tx,
                crypto,
                scope,
                checks::NewVerification {
                    inquiry_id: &inquiry.id,
                    verification_type: &v.verification_type,
                    submission: v.submission,
                    status: &v.status,
                    required: v.required,
                    result: &result,
                },
                now,
            )
            .await?;
            // Announced like a reused verification; `details.cloned-from` tells it apart.
            if let Some(recorded) = recorded
                && let Ok(status) = v.status.parse()
            {
                pipeline::record_verification_event(state, &mut tx, scope, status, &recorded)
                    .await?;
            }
        }
        for r in &source.reports {
            let mut result = r
                .result
                .clone()
                .unwrap_or_else(|| json!({"matches": [], "dismissed": []}));
            result["cloned-from"] = json!(r.id.as_str());
            checks::record_report(
                &mut tx,
                crypto,
                scope,
                checks::NewReport {
                    inquiry_id: &inquiry.id,
                    report_type: &r.report_type,
                    submission: r.submission,
                    status: &r.status,
                    has_match: r.has_match,
                    result: &result,
                },
                now,
            )
            .await?;
        }
        let status = match source.inquiry.status {
            InquiryStatus::Approved => InquiryStatus::Completed,
            other => other,
        };
        inquiry.status = status;
        inquiry.started_at = Some(now);
        inquiry.submissions = source.inquiry.submissions;
        inquiry.processed_submission = source.inquiry.processed_submission;
        let action = match status {
            InquiryStatus::Completed => {
                inquiry.completed_at = Some(now);
                Some(InquiryAction::Complete)
            }
            InquiryStatus::Failed => {
                inquiry.failed_at = Some(now);
                Some(InquiryAction::Fail)
            }
            InquiryStatus::NeedsReview => {
                inquiry.completed_at = Some(now);
                inquiry.marked_for_review_at = Some(now);
                Some(InquiryAction::MarkForReview)
            }
            InquiryStatus::Declined => {
                inquiry.decisioned_at = Some(now);
                Some(InquiryAction::Decline)
            }
            _ => None,
        };
        inquiry.data.hydrated_by = Some(token.id.to_string());
        inquiry.updated_at = now;
        inquiries::save(&mut tx, crypto, scope, &inquiry).await?;
        if let Some(action) = action {
            emit_inquiry(state, &mut tx, scope, action.event_name(), &inquiry, &[]).await?;
        }
    }
    if !share_tokens::finish_redemption(&mut tx, &token.id, now).await? {
        return Ok(());
    }
    locked.status = ShareTokenStatus::Redeemed;
    locked.redeemed_at = Some(now);
    locked.updated_at = now;
    record_token(state, &mut tx, share_token::redeemed_event, &locked).await?;
    tx.commit().await?;
    Ok(())
}

/// Called when a redemption job is given up: the token ends `failed` instead of `pending`
/// forever.
pub async fn give_up(state: &ServiceContext, token_id: &str) -> Result<(), ServiceError> {
    let id = ShareTokenId::parse(token_id).map_err(ServiceError::internal)?;
    fail(state, &id, failure::INTERNAL_ERROR).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_checked() {
        assert_eq!(parse_mappings(None).unwrap(), vec![]);
        let ok = json!([{"source-field-name": "a", "destination-field-name": "b"}]);
        assert_eq!(parse_mappings(Some(&ok)).unwrap().len(), 1);
        for bad in [
            json!({}),
            json!(["x"]),
            json!([{"source-field-name": "", "destination-field-name": "b"}]),
            json!([{"source-field-name": "a"}]),
            json!([{"source-field-name": "a", "destination-field-name": "b", "x": 1}]),
            json!([{"source-field-name": "a", "destination-field-name": "b"},
                   {"source-field-name": "c", "destination-field-name": "b"}]),
        ] {
            let e = parse_mappings(Some(&bad)).unwrap_err();
            assert!(matches!(e, ServiceError::Malformed { .. }), "{bad}");
        }
    }
}
