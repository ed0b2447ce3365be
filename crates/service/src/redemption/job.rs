//! The redemption job: one read transaction (the token, the source, the destination), the copy
//! or clone and the pipeline computed in memory, one write transaction that records it all with
//! the token `redeemed` and the job completed; or ends the token `failed` (see the module
//! documentation of [`super`]).

use idshare_domain::{
    connect::ConnectionStatus,
    id::ShareTokenId,
    inquiry::InquiryStatus,
    share_token::{self, ShareTokenStatus, failure},
};
use idshare_store::{
    DataKey, Scope, checks, connections, documents, files,
    inquiries::{self, Inquiry},
    share_tokens::{self, ShareToken},
};
use time::{Duration, OffsetDateTime};

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
    workflows::within_chain,
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

/// One redemption job of a batch (see [`run_batch`]).
#[derive(Debug, Clone, Copy)]
pub struct Batched<'a> {
    pub claim: Claim<'a>,
    pub token_id: &'a str,
    pub mappings: &'a [FieldMapping],
    /// The chain of workflow runs the job continues (see [`crate::workflows::within_chain`]).
    pub chain: u32,
}

/// Runs several redemption jobs together: each one's read phase, then one write transaction
/// for all of them, where each redemption keeps its guarantees: under a savepoint of its own,
/// one that fails or finds its destination changed is rolled back alone (its events and job
/// completion with it) while the others commit. Those that raced, or that the shared
/// transaction could not commit, run again alone ([`run`]). Returns each job's outcome, in
/// order.
pub async fn run_batch(
    state: &ServiceContext,
    batch: &[Batched<'_>],
) -> Vec<Result<Completion, ServiceError>> {
    let mut outcomes: Vec<Option<Result<Completion, ServiceError>>> =
        batch.iter().map(|_| None).collect();
    let mut prepared = Vec::with_capacity(batch.len());
    for (n, item) in batch.iter().enumerate() {
        // Boxed, as the futures below: they are large.
        let step = Box::pin(within_chain(item.chain, async {
            let id = ShareTokenId::parse(item.token_id).map_err(ServiceError::internal)?;
            read(state, item.claim, &id, item.mappings).await
        }))
        .await;
        match step {
            Ok(Step::Write(ready)) => prepared.push((n, ready)),
            Ok(Step::Done(completion)) => outcomes[n] = Some(Ok(completion)),
            Err(e) => outcomes[n] = Some(Err(e)),
        }
    }
    for n in write_batch(state, batch, prepared, &mut outcomes).await {
        let item = &batch[n];
        let alone = run(state, item.claim, item.token_id, item.mappings);
        outcomes[n] = Some(Box::pin(within_chain(item.chain, alone)).await);
    }
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| {
                Err(ServiceError::internal(anyhow::anyhow!(
                    "a redemption of the batch has no outcome"
                )))
            })
        })
        .collect()
}

/// The shared write transaction of [`run_batch`]: records the outcome of each redemption it
/// settles in `outcomes`, and returns those to run again alone.
async fn write_batch(
    state: &ServiceContext,
    batch: &[Batched<'_>],
    prepared: Vec<(usize, Box<Prepared>)>,
    outcomes: &mut [Option<Result<Completion, ServiceError>>],
) -> Vec<usize> {
    let mut alone = vec![];
    let mut written = vec![];
    let mut tx = None;
    for (n, ready) in prepared {
        if tx.is_none() {
            match state.store().begin_write().await {
                Ok(begun) => tx = Some(begun),
                Err(_) => {
                    alone.push(n);
                    continue;
                }
            }
        }
        let Some(shared) = tx.as_mut() else {
            continue;
        };
        // The first redemption of the transaction needs no savepoint: undoing it is rolling
        // the whole transaction back.
        let savepoint = format!("redemption_{n}");
        if !written.is_empty() && shared.savepoint(&savepoint).await.is_err() {
            alone.push(n);
            continue;
        }
        let item = &batch[n];
        let outcome = within_chain(item.chain, write_in(state, shared, item.claim, *ready)).await;
        let outcome = match outcome {
            Ok(Outcome::Written(settled)) => {
                written.push((n, settled));
                continue;
            }
            other => other,
        };
        let undone = if written.is_empty() {
            tx = None;
            true
        } else {
            shared.rollback_to(&savepoint).await.is_ok()
        };
        match outcome {
            Ok(Outcome::Raced) => alone.push(n),
            Ok(Outcome::Done(completion)) => outcomes[n] = Some(Ok(completion)),
            Ok(Outcome::Written(_)) => unreachable!("taken above"),
            Err(e) => outcomes[n] = Some(Err(e)),
        }
        if !undone {
            // The transaction cannot be trusted any more: nothing of it commits.
            tx = None;
            alone.extend(written.drain(..).map(|(n, _)| n));
        }
    }
    let committed = match tx {
        Some(tx) if !written.is_empty() => tx.commit().await.is_ok(),
        _ => true,
    };
    for (n, settled) in written {
        if committed {
            settled.committed();
            outcomes[n] = Some(Ok(Completion::InJob));
        } else {
            alone.push(n);
        }
    }
    alone.sort_unstable();
    alone
}

/// How one attempt of the job ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Redeemed, failed, or nothing left to do.
    Done(Completion),
    /// Redeemed and its job completed in the caller's transaction, which is to be committed.
    Written(Settled),
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

/// One attempt alone: the read, then the write in a transaction of its own.
async fn attempt(
    state: &ServiceContext,
    claim: Claim<'_>,
    id: &ShareTokenId,
    mappings: &[FieldMapping],
) -> Result<Outcome, ServiceError> {
    match read(state, claim, id, mappings).await? {
        Step::Done(completion) => Ok(Outcome::Done(completion)),
        Step::Write(prepared) => {
            let mut tx = state.store().begin_write().await?;
            match write_in(state, &mut tx, claim, *prepared).await? {
                Outcome::Written(settled) => {
                    tx.commit().await?;
                    settled.committed();
                    Ok(Outcome::Done(Completion::InJob))
                }
                other => Ok(other),
            }
        }
    }
}

/// What the read phase of one redemption found.
enum Step {
    /// Nothing to write (failed in its own transaction, or nothing left to do).
    Done(Completion),
    /// What the write transaction records.
    Write(Box<Prepared>),
}

/// A redemption read and computed, ready to be written.
struct Prepared {
    token: ShareToken,
    scope: Scope,
    key: DataKey,
    /// The destination as read: the write happens only if it is still so.
    seen: Inquiry,
    work: Work,
}

/// The read phase: one read transaction, then the copy or clone and the pipeline in memory (a
/// redemption that cannot go on ends `failed` here, in a write transaction of its own).
async fn read(
    state: &ServiceContext,
    claim: Claim<'_>,
    id: &ShareTokenId,
    mappings: &[FieldMapping],
) -> Result<Step, ServiceError> {
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_read().await?;
    let Some(token) = share_tokens::get_any(&mut tx, id).await? else {
        return Err(ServiceError::internal(anyhow::anyhow!(
            "share token {id} does not exist"
        )));
    };
    if token.status != ShareTokenStatus::Pending {
        return Ok(Step::Done(Completion::ByWorker));
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
        return failed(state, claim, id, failure::DESTINATION_NOT_HYDRATABLE).await;
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
            return failed(state, claim, id, failure::SOURCE_REDACTED).await;
        };
        let connection = connections::get(&mut tx, &source_scope, &token.connection_id).await?;
        if connection.is_none_or(|c| c.status != ConnectionStatus::Active) {
            drop(tx);
            return failed(state, claim, id, failure::CONNECTION_INACTIVE).await;
        }
        if !clone && !hydratable(&destination) {
            drop(tx);
            return failed(state, claim, id, failure::DESTINATION_NOT_HYDRATABLE).await;
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
    Ok(Step::Write(Box::new(Prepared {
        token,
        scope,
        key,
        seen: destination,
        work,
    })))
}

/// The token ends `failed` in a transaction of its own (see [`fail`]).
async fn failed(
    state: &ServiceContext,
    claim: Claim<'_>,
    id: &ShareTokenId,
    reason: &str,
) -> Result<Step, ServiceError> {
    match fail(state, Some(claim), id, reason).await? {
        Outcome::Done(completion) => Ok(Step::Done(completion)),
        Outcome::Raced | Outcome::Written(_) => Err(ServiceError::internal(anyhow::anyhow!(
            "failing share token {id} raced"
        ))),
    }
}

/// The write, in `tx`: the token `redeemed` (which also re-checks, under its row lock, that
/// it is still `pending`), the copy, the pipeline's results, the destination (only if it did
/// not change since it was read), every event with its deliveries and workflow runs, and the
/// job completed. Only `Done(InJob)` is to be committed: anything else has to be rolled back
/// (it may have written part of the redemption).
async fn write_in(
    state: &ServiceContext,
    tx: &mut idshare_store::Tx,
    claim: Claim<'_>,
    prepared: Prepared,
) -> Result<Outcome, ServiceError> {
    let Prepared {
        token,
        scope,
        key,
        seen,
        work,
    } = prepared;
    let (scope, key) = (&scope, &key);
    let now = state.now();
    if !share_tokens::finish_redemption(tx, &token.id, now).await? {
        return Ok(Outcome::Done(Completion::ByWorker));
    }
    let mut inquiry = work.inquiry;
    documents::upsert_all(tx, key, scope, &inquiry.id, &work.documents, now).await?;
    let copied_files: Vec<(files::StoredFile, &[u8])> = work
        .files
        .iter()
        .map(|(file, bytes)| (file.clone(), bytes.as_slice()))
        .collect();
    files::insert_all(tx, key, scope, &copied_files).await?;
    let recorded = checks::record_verifications(tx, key, scope, &work.verifications).await?;
    checks::record_reports(tx, key, scope, &work.reports).await?;
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
            tx,
            scope,
            key,
            &mut inquiry,
            *submission,
            evaluation,
            &mut announced,
        )
        .await?;
    }
    if !inquiries::save_if_unchanged(tx, state.store().crypto(), key, scope, &inquiry, &seen)
        .await?
    {
        return Ok(Outcome::Raced);
    }
    let mut redeemed = token;
    redeemed.status = ShareTokenStatus::Redeemed;
    redeemed.redeemed_at = Some(now);
    redeemed.updated_at = now;
    announced.extend(token_announcements(share_token::redeemed_event, &redeemed));
    crate::events::record_batch(state, tx, Some((inquiry.id.as_str(), key)), &announced).await?;
    if !claim.complete_in(tx, state.now()).await? {
        // Another worker holds the job now (this one's lease ran out): it does the work.
        return Ok(Outcome::Done(Completion::ByWorker));
    }
    Ok(Outcome::Written(Settled {
        pending_at: redeemed.pending_at,
        redeemed_at: now,
        decided: work.evaluation.is_some().then_some(inquiry.status),
    }))
}

/// A redemption written, to be counted in the metrics once its transaction commits.
#[derive(Debug, PartialEq, Eq)]
struct Settled {
    pending_at: Option<OffsetDateTime>,
    redeemed_at: OffsetDateTime,
    /// The destination's status, when the pipeline decided it.
    decided: Option<InquiryStatus>,
}

impl Settled {
    fn committed(self) {
        crate::telemetry::redemption_ended(self.pending_at, self.redeemed_at, None);
        if let Some(status) = self.decided {
            crate::telemetry::pipeline_decided(status);
        }
    }
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
