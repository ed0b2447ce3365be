//! The redemption job: one read transaction (the token, the source, the destination), the copy
//! or clone and the pipeline computed in memory, one write transaction that records it all with
//! the token `redeemed` and the job completed; or ends the token `failed` (see the module
//! documentation of [`super`]).

use idshare_domain::{
    connect::ConnectionStatus,
    id::ShareTokenId,
    share_token::{self, ShareTokenStatus, failure},
};
use idshare_store::{
    DataKey, Scope, checks, connections, documents, files,
    inquiries::{self, Inquiry},
    share_tokens::{self, ShareToken},
};
use time::Duration;

use super::{
    FieldMapping,
    clone::cloned,
    copy::{hydrated, load_source},
    hydratable,
};
use crate::{
    ServiceContext, ServiceError,
    events::Announcement,
    jobs::{Claim, Completion},
    pipeline,
    share_tokens::{announcements as token_announcements, record as record_token},
};

/// How many times the job starts over when the destination changed between its read and its
/// write (an edit, an expiry, a redaction), before it lets the queue try again later.
const READS_PER_RUN: usize = 3;

/// Runs the redemption of one token (the job held by `claim`): one read transaction, the copy
/// and the pipeline computed in memory (provider calls outside any transaction), one write
/// transaction that also completes the job.
pub async fn run(
    state: &ServiceContext,
    claim: Claim<'_>,
    token_id: &str,
    mappings: &[FieldMapping],
) -> Result<Completion, ServiceError> {
    let id = ShareTokenId::parse(token_id).map_err(ServiceError::internal)?;
    for _ in 0..READS_PER_RUN {
        if let Outcome::Done(completion) = attempt(state, claim, &id, mappings).await? {
            return Ok(completion);
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
    Done(Completion),
    /// The destination changed after it was read: nothing was written.
    Raced,
}

/// What the write transaction writes into the destination, computed in memory.
pub(super) struct Work {
    /// The destination as the write leaves it.
    pub inquiry: Inquiry,
    /// `(kind, document as JSON)`.
    pub documents: Vec<(&'static str, Vec<u8>)>,
    pub files: Vec<(files::StoredFile, Vec<u8>)>,
    /// Reused or cloned verifications, each announced when recorded.
    pub verifications: Vec<checks::StoredVerification>,
    pub reports: Vec<checks::StoredReport>,
    /// The inquiry's own events, after those of the verifications.
    pub announced: Vec<Announcement>,
    /// The pipeline's results for a submission, recorded with the rest.
    pub evaluation: Option<(i64, pipeline::Evaluation)>,
}

impl Work {
    /// Nothing to copy: only what the pipeline finds, if anything.
    pub(super) fn none(inquiry: Inquiry) -> Self {
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
    state: &ServiceContext,
    claim: Claim<'_>,
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
        return Ok(Outcome::Done(Completion::ByWorker));
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
        return fail(state, Some(claim), id, failure::DESTINATION_NOT_HYDRATABLE).await;
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
            return fail(state, Some(claim), id, failure::SOURCE_REDACTED).await;
        };
        let connection = connections::get(&mut tx, &source_scope, &token.connection_id).await?;
        if connection.is_none_or(|c| c.status != ConnectionStatus::Active) {
            drop(tx);
            return fail(state, Some(claim), id, failure::CONNECTION_INACTIVE).await;
        }
        if !clone && !hydratable(&destination) {
            drop(tx);
            return fail(state, Some(claim), id, failure::DESTINATION_NOT_HYDRATABLE).await;
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
    write(state, claim, &token, &scope, &key, &destination, work).await
}

/// The write transaction: the token `redeemed` (which also re-checks, under its row lock, that
/// it is still `pending`), the copy, the pipeline's results, the destination (only if it did
/// not change since it was read), every event with its deliveries and workflow runs, and the
/// job completed.
async fn write(
    state: &ServiceContext,
    claim: Claim<'_>,
    token: &ShareToken,
    scope: &Scope,
    key: &DataKey,
    seen: &Inquiry,
    work: Work,
) -> Result<Outcome, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    if !share_tokens::finish_redemption(&mut tx, &token.id, now).await? {
        return Ok(Outcome::Done(Completion::ByWorker));
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
    crate::events::record_batch(state, &mut tx, Some((inquiry.id.as_str(), key)), &announced)
        .await?;
    let outcome = commit_completing(state, tx, claim).await?;
    if outcome == Outcome::Done(Completion::InJob) {
        crate::telemetry::redemption_ended(token.pending_at, now, None);
        if work.evaluation.is_some() {
            crate::telemetry::pipeline_decided(inquiry.status);
        }
    }
    Ok(outcome)
}

/// Commits the job's write together with the job's completion. A job no longer held (its lease
/// ran out and another worker took it over) writes nothing: its new holder does the work.
async fn commit_completing(
    state: &ServiceContext,
    mut tx: idshare_store::Tx,
    claim: Claim<'_>,
) -> Result<Outcome, ServiceError> {
    if !claim.complete_in(&mut tx, state.now()).await? {
        return Ok(Outcome::Done(Completion::ByWorker));
    }
    tx.commit().await?;
    Ok(Outcome::Done(Completion::InJob))
}

/// The token ends `failed` with `reason`, with its events, and the job held by `claim` (if
/// any: a job given up is recorded by its worker) completed, in one transaction.
async fn fail(
    state: &ServiceContext,
    claim: Option<Claim<'_>>,
    id: &ShareTokenId,
    reason: &str,
) -> Result<Outcome, ServiceError> {
    let now = state.now();
    let mut tx = state.store().begin_write().await?;
    let Some(mut token) = share_tokens::get_any_for_update(&mut tx, id).await? else {
        return Ok(Outcome::Done(Completion::ByWorker));
    };
    if !share_tokens::fail_redemption(&mut tx, id, reason, now).await? {
        return Ok(Outcome::Done(Completion::ByWorker));
    }
    token.status = ShareTokenStatus::Failed;
    token.failed_at = Some(now);
    token.failure_reason = Some(reason.to_owned());
    token.updated_at = now;
    record_token(state, &mut tx, share_token::failed_event, &token).await?;
    let outcome = match claim {
        Some(claim) => commit_completing(state, tx, claim).await?,
        None => {
            tx.commit().await?;
            Outcome::Done(Completion::ByWorker)
        }
    };
    // Through a claim, `ByWorker` means the job was no longer held and nothing was written.
    if claim.is_none() || outcome == Outcome::Done(Completion::InJob) {
        crate::telemetry::redemption_ended(token.pending_at, now, Some(reason));
    }
    Ok(outcome)
}

/// Called when a redemption job is given up: the token ends `failed` instead of `pending`
/// forever.
pub async fn give_up(state: &ServiceContext, token_id: &str) -> Result<(), ServiceError> {
    let id = ShareTokenId::parse(token_id).map_err(ServiceError::internal)?;
    fail(state, None, &id, failure::INTERNAL_ERROR).await?;
    Ok(())
}
