//! Connect redemption (DESIGN §2.2–2.3): the destination's `redeem` call, which only moves the
//! token to `pending` and enqueues the work, and the redemption job, which copies what the
//! destination template asks for (or everything, for a clone), reuses passed verifications,
//! runs the rest through the pipeline, and marks the token `redeemed`.
//!
//! The job reads once and writes once. One read transaction loads the token, the connection,
//! the source (its data, documents, files, verifications; reports for a clone) and the
//! destination (what its rules look at, its verifications), each inquiry's data key unwrapped
//! once; the template definition comes from the store's cache. The copy and the pipeline's
//! evaluation are then computed in memory on the destination as the write will leave it
//! (provider calls happen there, outside any transaction). One write transaction then moves
//! the token `pending` → `redeemed` under its row lock (a token no longer `pending` stops the
//! job: another run finished it), writes the copy and the results with multi-row inserts,
//! saves the destination only if it did not change since it was read (otherwise nothing is
//! written and the job reads again), and records every event with its webhook deliveries and
//! workflow runs. A crash before that commit leaves nothing and the retry redoes everything;
//! after it, the retry finds the token `redeemed`.
//!
//! Versions before this one committed the copy first, marked by `hydrated_by` in the sealed
//! data: a database upgraded between the two commits holds a destination with that marker and
//! its token still `pending`, which the job finishes without copying again.

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
    verification::{AddressDocument, FileKind, GovernmentIdDocument, Subject},
};
use idshare_store::{
    DataKey, Scope, Tx, checks, connections, documents, events, files,
    inquiries::{self, Inquiry, InquiryData, NewInquiry, Provenance},
    share_tokens::{self, ShareToken},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::Duration;

use super::ServiceError;
use crate::{
    app::AppState,
    jobs::JobKind,
    render,
    service::{
        events::Announcement,
        inquiries::{CreateInquiry, TemplateRef},
        pipeline,
        share_tokens::{
            announcements as token_announcements, ensure_connection_active, record as record_token,
        },
    },
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
    state: &AppState,
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
    state: &AppState,
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
            let created = crate::service::inquiries::create_in(
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
        workflow_chain: crate::service::workflows::current_chain(),
    };
    crate::jobs::enqueue(state, &mut tx, &job, Some(&format!("redeem:{}", token.id))).await?;
    tx.commit().await?;
    Ok(token)
}

/// An inquiry event, sealed under the inquiry's key.
async fn emit_inquiry(
    state: &AppState,
    tx: &mut Tx,
    scope: &Scope,
    name: &str,
    inquiry: &Inquiry,
    missing: &[idshare_domain::requirements::Requirement],
) -> Result<(), idshare_store::StoreError> {
    let definition = crate::service::inquiries::definition_for(tx, scope, inquiry)
        .await
        .ok()
        .flatten();
    let payload = render::payload(&render::inquiry(inquiry, definition.as_deref(), missing));
    crate::service::events::record(
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

/// Everything copied from the source, read (and decrypted) in the job's read transaction.
struct SourceData {
    inquiry: Inquiry,
    documents: documents::Documents,
    /// The latest file of each kind, with its bytes.
    files: BTreeMap<&'static str, (FileKind, String, Vec<u8>)>,
    verifications: Vec<checks::StoredVerification>,
    /// Read for a clone only.
    reports: Vec<checks::StoredReport>,
}

async fn load_source(
    tx: &mut Tx,
    scope: &Scope,
    inquiry: Inquiry,
    key: &DataKey,
    with_reports: bool,
) -> Result<SourceData, ServiceError> {
    let id = &inquiry.id;
    let documents = documents::all(tx, key, scope, id).await?;
    let mut copied = BTreeMap::new();
    for (stored, bytes) in files::all_with_content(tx, key, scope, id).await? {
        // Oldest first: the latest of each kind wins.
        copied.insert(
            stored.kind.as_str(),
            (stored.kind, stored.content_type, bytes),
        );
    }
    let verifications = checks::verifications_keyed(tx, key, scope, id).await?;
    let reports = if with_reports {
        checks::reports_keyed(tx, key, scope, id).await?
    } else {
        vec![]
    };
    Ok(SourceData {
        inquiry,
        documents,
        files: copied,
        verifications,
        reports,
    })
}

/// How many times the job starts over when the destination changed between its read and its
/// write (an edit, an expiry, a redaction), before it lets the queue try again later.
const READS_PER_RUN: usize = 3;

/// Runs the redemption of one token (the job): one read transaction, the copy and the
/// pipeline computed in memory (provider calls outside any transaction), one write
/// transaction (see the module documentation).
pub async fn run(
    state: &AppState,
    token_id: &str,
    mappings: &[FieldMapping],
) -> Result<(), ServiceError> {
    let id = ShareTokenId::parse(token_id).map_err(ServiceError::internal)?;
    for _ in 0..READS_PER_RUN {
        if attempt(state, &id, mappings).await? == Outcome::Done {
            return Ok(());
        }
    }
    Err(ServiceError::Later {
        at: state.now() + Duration::seconds(5),
        cause: anyhow::anyhow!("the destination of share token {id} kept changing"),
    })
}

/// How one attempt of the job ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Redeemed, failed, or nothing left to do.
    Done,
    /// The destination changed after it was read: nothing was written.
    Raced,
}

/// What the write transaction writes into the destination, computed in memory.
struct Work {
    /// The destination as the write leaves it.
    inquiry: Inquiry,
    /// `(kind, document as JSON)`.
    documents: Vec<(&'static str, Vec<u8>)>,
    files: Vec<(files::StoredFile, Vec<u8>)>,
    /// Reused or cloned verifications, each announced when recorded.
    verifications: Vec<checks::StoredVerification>,
    reports: Vec<checks::StoredReport>,
    /// The inquiry's own events, after those of the verifications.
    announced: Vec<Announcement>,
    /// The pipeline's results for a submission, recorded with the rest.
    evaluation: Option<(i64, pipeline::Evaluation)>,
}

impl Work {
    /// Nothing to copy: only what the pipeline finds, if anything.
    fn none(inquiry: Inquiry) -> Self {
        Self {
            inquiry,
            documents: vec![],
            files: vec![],
            verifications: vec![],
            reports: vec![],
            announced: vec![],
            evaluation: None,
        }
    }
}

async fn attempt(
    state: &AppState,
    id: &ShareTokenId,
    mappings: &[FieldMapping],
) -> Result<Outcome, ServiceError> {
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_read().await?;
    let Some(token) = share_tokens::get_any(&mut tx, id).await? else {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "share token {id} does not exist"
        )));
    };
    if token.status != ShareTokenStatus::Pending {
        return Ok(Outcome::Done);
    }
    let source_scope = Scope::new(token.source_org_id.clone(), token.environment);
    let scope = Scope::new(token.destination_org_id.clone(), token.environment);
    let destination_id = token.destination_inquiry_id.clone().ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!(
            "pending share token {id} has no destination"
        ))
    })?;
    let Some((destination, Some(key))) =
        inquiries::get_keyed(&mut tx, crypto, &scope, &destination_id)
            .await?
            .filter(|(d, _)| d.redacted_at.is_none())
    else {
        drop(tx);
        return fail(state, id, failure::DESTINATION_NOT_HYDRATABLE).await;
    };
    // Written by versions that committed the copy before the rest: once it is in, what happens
    // to the source or the connection afterwards no longer matters, the redemption finishes.
    let copied_before = destination.data.hydrated_by.as_deref() == Some(id.as_str());
    let clone = destination.template_version_id.is_none();
    let source = if copied_before {
        None
    } else {
        let source = inquiries::get_keyed(&mut tx, crypto, &source_scope, &token.source_inquiry_id)
            .await?
            .filter(|(s, _)| s.redacted_at.is_none());
        let Some((source, Some(source_key))) = source else {
            drop(tx);
            return fail(state, id, failure::SOURCE_REDACTED).await;
        };
        let connection = connections::get(&mut tx, &source_scope, &token.connection_id).await?;
        if connection.is_none_or(|c| c.status != ConnectionStatus::Active) {
            drop(tx);
            return fail(state, id, failure::CONNECTION_INACTIVE).await;
        }
        if !clone && !hydratable(&destination) {
            drop(tx);
            return fail(state, id, failure::DESTINATION_NOT_HYDRATABLE).await;
        }
        Some(load_source(&mut tx, &source_scope, source, &source_key, clone).await?)
    };
    let work = if clone {
        drop(tx);
        match &source {
            Some(source) => cloned(state, &token, &destination, source)?,
            None => Work::none(destination.clone()),
        }
    } else {
        hydrated(
            state,
            tx,
            &token,
            &scope,
            &key,
            &destination,
            source.as_ref(),
            mappings,
        )
        .await?
    };
    write(state, &token, &scope, &key, &destination, work).await
}

/// The write transaction: the token `redeemed` (which also re-checks, under its row lock, that
/// it is still `pending`), the copy, the pipeline's results, the destination (only if it did
/// not change since it was read), and every event with its deliveries and workflow runs.
async fn write(
    state: &AppState,
    token: &ShareToken,
    scope: &Scope,
    key: &DataKey,
    seen: &Inquiry,
    work: Work,
) -> Result<Outcome, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    if !share_tokens::finish_redemption(&mut tx, &token.id, now).await? {
        return Ok(Outcome::Done);
    }
    let mut inquiry = work.inquiry;
    documents::upsert_all(&mut tx, key, scope, &inquiry.id, &work.documents, now).await?;
    let copied_files: Vec<(files::StoredFile, &[u8])> = work
        .files
        .iter()
        .map(|(file, bytes)| (file.clone(), bytes.as_slice()))
        .collect();
    files::insert_all(&mut tx, key, scope, &copied_files).await?;
    let recorded = checks::record_verifications(&mut tx, key, scope, &work.verifications).await?;
    checks::record_reports(&mut tx, key, scope, &work.reports).await?;
    // A verification that comes to count in this inquiry is announced like one that ran;
    // `details.reused-from` or `details.cloned-from` tells them apart.
    let mut announced: Vec<Announcement> = work
        .verifications
        .iter()
        .filter(|v| recorded.contains(&v.id))
        .filter_map(|v| {
            let status = v.status.parse().ok()?;
            Some(pipeline::verification_announcement(scope, status, v))
        })
        .collect();
    announced.extend(work.announced);
    if let Some((submission, evaluation)) = &work.evaluation {
        pipeline::record_in(
            state,
            &mut tx,
            scope,
            key,
            &mut inquiry,
            *submission,
            evaluation,
            &mut announced,
        )
        .await?;
    }
    if !inquiries::save_if_unchanged(&mut tx, key, scope, &inquiry, seen).await? {
        return Ok(Outcome::Raced);
    }
    let mut redeemed = token.clone();
    redeemed.status = ShareTokenStatus::Redeemed;
    redeemed.redeemed_at = Some(now);
    redeemed.updated_at = now;
    announced.extend(token_announcements(share_token::redeemed_event, &redeemed));
    crate::service::events::record_batch(
        state,
        &mut tx,
        Some((inquiry.id.as_str(), key)),
        &announced,
    )
    .await?;
    tx.commit().await?;
    Ok(Outcome::Done)
}

/// The token ends `failed` with `reason`, with its events.
async fn fail(state: &AppState, id: &ShareTokenId, reason: &str) -> Result<Outcome, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let Some(mut token) = share_tokens::get_any_for_update(&mut tx, id).await? else {
        return Ok(Outcome::Done);
    };
    if !share_tokens::fail_redemption(&mut tx, id, reason, now).await? {
        return Ok(Outcome::Done);
    }
    token.status = ShareTokenStatus::Failed;
    token.failed_at = Some(now);
    token.failure_reason = Some(reason.to_owned());
    token.updated_at = now;
    record_token(state, &mut tx, share_token::failed_event, &token).await?;
    tx.commit().await?;
    Ok(Outcome::Done)
}

fn provenance(token: &ShareToken, source_field: Option<&str>, now: &str) -> Provenance {
    Provenance {
        share_token: token.id.to_string(),
        source_inquiry: token.source_inquiry_id.to_string(),
        source_field: source_field.map(str::to_owned),
        copied_at: now.to_owned(),
    }
}

/// A copied file, with its id chosen now (a reused verification's basis names it).
fn copied_file(
    inquiry_id: &InquiryId,
    (kind, content_type, bytes): &(FileKind, String, Vec<u8>),
    now: time::OffsetDateTime,
) -> Result<(files::StoredFile, Vec<u8>), ServiceError> {
    let file = files::prepare(inquiry_id, *kind, content_type, bytes.len(), now)?;
    Ok((file, bytes.clone()))
}

/// A hydration, computed in memory from the job's read transaction (which it ends): copies
/// what the destination template declares (fields after the mappings; documents and files its
/// verifications need), reuses the passed verifications it allows to, submits the inquiry
/// (pending, one more submission, which the reused verifications belong to), and evaluates
/// that submission as the write will leave it. With nothing to copy (a copy committed by an
/// older version), only the evaluation.
#[allow(clippy::too_many_arguments)]
async fn hydrated(
    state: &AppState,
    mut tx: Tx,
    token: &ShareToken,
    scope: &Scope,
    key: &DataKey,
    destination: &Inquiry,
    source: Option<&SourceData>,
    mappings: &[FieldMapping],
) -> Result<Work, ServiceError> {
    let now = state.now();
    let now_text = format_timestamp(now);
    let id = &destination.id;
    let definition = crate::service::inquiries::definition_for(&mut tx, scope, destination)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("inquiry {id} has no template")))?;
    let mut work = Work::none(destination.clone());
    let inquiry = &mut work.inquiry;
    // Fields: only those the destination declares, and only values its schema accepts.
    if let Some(source) = source {
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
    }
    // What the destination holds, as the rules will see it after the copy.
    let stored_documents = documents::all(&mut tx, key, scope, id).await?;
    let face_comparison = definition
        .verifications
        .iter()
        .any(|c| c.verification_type == VerificationType::Selfie);
    let stored_files = if face_comparison {
        files::all_with_content(&mut tx, key, scope, id).await?
    } else {
        files::for_inquiry(&mut tx, scope, id)
            .await?
            .into_iter()
            .map(|file| (file, vec![]))
            .collect()
    };
    let confirmed = crate::service::confirmations::confirmed_keys(&mut tx, state, inquiry).await?;
    let mut recorded = checks::verifications_keyed(&mut tx, key, scope, id).await?;
    drop(tx);
    let mut subject = Subject {
        fields: inquiry.data.fields.clone(),
        government_id: stored_documents.get("government-id")?,
        proof_of_address: stored_documents.get("proof-of-address")?,
        files: stored_files.iter().map(|(f, _)| f.as_ref()).collect(),
        confirmed,
    };
    // Documents and files: only those the destination's verifications need.
    if let Some(source) = source {
        for config in &definition.verifications {
            let kinds: &[FileKind] = match config.verification_type {
                VerificationType::GovernmentId => {
                    if let Some(document) = source
                        .documents
                        .get::<GovernmentIdDocument>("government-id")?
                    {
                        work.documents
                            .push(("government-id", json_bytes(&document)?));
                        work.inquiry.data.provenance.insert(
                            "document:government-id".to_owned(),
                            provenance(token, None, &now_text),
                        );
                        subject.government_id = Some(document);
                    }
                    &[FileKind::GovernmentIdFront, FileKind::GovernmentIdBack]
                }
                VerificationType::Document => {
                    if let Some(document) = source
                        .documents
                        .get::<AddressDocument>("proof-of-address")?
                    {
                        work.documents
                            .push(("proof-of-address", json_bytes(&document)?));
                        work.inquiry.data.provenance.insert(
                            "document:proof-of-address".to_owned(),
                            provenance(token, None, &now_text),
                        );
                        subject.proof_of_address = Some(document);
                    }
                    &[FileKind::ProofOfAddress]
                }
                VerificationType::Selfie => &[FileKind::Selfie],
                _ => &[],
            };
            for kind in kinds {
                let provenance_key = format!("file:{}", kind.as_str());
                if work.inquiry.data.provenance.contains_key(&provenance_key) {
                    continue;
                }
                if let Some(file) = source.files.get(kind.as_str()) {
                    let copied = copied_file(id, file, now)?;
                    subject.files.push(copied.0.as_ref());
                    work.files.push(copied);
                    work.inquiry
                        .data
                        .provenance
                        .insert(provenance_key, provenance(token, None, &now_text));
                }
            }
        }
        // Submit: pending, one more submission, which the reused verifications belong to.
        let inquiry = &mut work.inquiry;
        if inquiry.status == InquiryStatus::Created {
            inquiry.status =
                transition(inquiry.status, InquiryAction::Start).map_err(ServiceError::internal)?;
            inquiry.started_at = Some(now);
        }
        inquiry.submissions += 1;
        inquiry.updated_at = now;
        let submission = inquiry.submissions;
        // What the reused verifications vouch for: they keep counting for later submissions
        // only while these inputs are unchanged.
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
                json!(preview::reuse_basis(config.verification_type, &subject));
            let reused = checks::prepare_verification(
                checks::NewVerification {
                    inquiry_id: id,
                    verification_type: &passed.verification_type,
                    submission,
                    status: "passed",
                    required: config.required,
                    result: &result,
                },
                now,
            );
            recorded.push(reused.clone());
            work.verifications.push(reused);
        }
        if inquiry.started_at == Some(now) && submission == 1 {
            work.announced.push(inquiry_announcement(
                scope,
                InquiryAction::Start.event_name(),
                inquiry,
                Some(&definition),
            ));
        }
    }
    // Run what was not reused, on the inquiry as the write will leave it.
    let submission = work.inquiry.submissions;
    if pipeline::needs_processing(&work.inquiry, submission) {
        let images = face_comparison.then(|| {
            let latest = |kind: FileKind| {
                work.files
                    .iter()
                    .chain(stored_files.iter().rev())
                    .find(|(file, _)| file.kind == kind)
                    .map(|(_, bytes)| bytes.clone())
            };
            pipeline::Images {
                selfie: latest(FileKind::Selfie),
                id_front: latest(FileKind::GovernmentIdFront),
            }
        });
        let loaded = pipeline::Loaded {
            definition,
            subject,
            recorded,
            images,
        };
        let evaluation = pipeline::evaluate_loaded(state, scope, id, loaded, submission).await?;
        work.evaluation = Some((submission, evaluation));
    }
    Ok(work)
}

fn json_bytes(value: &impl Serialize) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(value).map_err(ServiceError::internal)
}

/// An inquiry event, sealed under the inquiry's key.
fn inquiry_announcement(
    scope: &Scope,
    name: &str,
    inquiry: &Inquiry,
    definition: Option<&idshare_domain::template::TemplateDefinition>,
) -> Announcement {
    pipeline::announcement(
        scope,
        name,
        "inquiry",
        inquiry.id.as_str(),
        &inquiry.id,
        render::payload(&render::inquiry(inquiry, definition, &[])),
    )
}

/// Adds `key: value` to a result's `attributes`.
fn mark(result: &mut Value, key: &str, value: &str) {
    if !result.get("attributes").is_some_and(Value::is_object) {
        result["attributes"] = json!({});
    }
    result["attributes"][key] = json!(value);
}

/// A clone, computed in memory: the source's data, documents, files, verifications and
/// reports as they were (marked `cloned-from`), and the source's status (approved counts as
/// completed).
fn cloned(
    state: &AppState,
    token: &ShareToken,
    destination: &Inquiry,
    source: &SourceData,
) -> Result<Work, ServiceError> {
    let now = state.now();
    let now_text = format_timestamp(now);
    let id = &destination.id;
    let mut work = Work::none(destination.clone());
    let inquiry = &mut work.inquiry;
    inquiry.data.fields = source.inquiry.data.fields.clone();
    for key in source.inquiry.data.fields.keys() {
        inquiry
            .data
            .provenance
            .insert(key.clone(), provenance(token, None, &now_text));
    }
    if let Some(document) = source
        .documents
        .get::<GovernmentIdDocument>("government-id")?
    {
        work.documents
            .push(("government-id", json_bytes(&document)?));
    }
    if let Some(document) = source
        .documents
        .get::<AddressDocument>("proof-of-address")?
    {
        work.documents
            .push(("proof-of-address", json_bytes(&document)?));
    }
    for file in source.files.values() {
        work.files.push(copied_file(id, file, now)?);
        inquiry.data.provenance.insert(
            format!("file:{}", file.0.as_str()),
            provenance(token, None, &now_text),
        );
    }
    for v in &source.verifications {
        let mut result = v
            .result
            .clone()
            .unwrap_or_else(|| json!({"checks": [], "attributes": {}}));
        mark(&mut result, "cloned-from", v.id.as_str());
        work.verifications.push(checks::prepare_verification(
            checks::NewVerification {
                inquiry_id: id,
                verification_type: &v.verification_type,
                submission: v.submission,
                status: &v.status,
                required: v.required,
                result: &result,
            },
            now,
        ));
    }
    for r in &source.reports {
        let mut result = r
            .result
            .clone()
            .unwrap_or_else(|| json!({"matches": [], "dismissed": []}));
        result["cloned-from"] = json!(r.id.as_str());
        work.reports.push(checks::prepare_report(
            checks::NewReport {
                inquiry_id: id,
                report_type: &r.report_type,
                submission: r.submission,
                status: &r.status,
                has_match: r.has_match,
                result: &result,
            },
            now,
        ));
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
    inquiry.updated_at = now;
    if let Some(action) = action {
        let scope = Scope::new(token.destination_org_id.clone(), token.environment);
        work.announced.push(inquiry_announcement(
            &scope,
            action.event_name(),
            inquiry,
            None,
        ));
    }
    Ok(work)
}

/// Called when a redemption job is given up: the token ends `failed` instead of `pending`
/// forever.
pub async fn give_up(state: &AppState, token_id: &str) -> Result<(), ServiceError> {
    let id = ShareTokenId::parse(token_id).map_err(ServiceError::internal)?;
    fail(state, &id, failure::INTERNAL_ERROR).await?;
    Ok(())
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
