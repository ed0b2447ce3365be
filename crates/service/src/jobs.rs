//! The background jobs: their kinds and payloads, enqueueing in the caller's transaction, and
//! what each kind runs (and releases when it will not run again). The loop that claims and runs
//! them is [`crate::worker`].

use idshare_domain::id::JobId;
use idshare_store::jobs::{self, Job};
use serde::{Serialize, de::DeserializeOwned};

use crate::{ServiceContext, ServiceError};

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later (database unavailable, provider down, …).
    #[error("{0:#}")]
    Retryable(anyhow::Error),
    /// Trying again cannot help (the payload names nothing, corrupt data, …): the job ends
    /// `dead` at once.
    #[error("{0:#}")]
    Fatal(anyhow::Error),
    /// Try again at the given time (a schedule of the job's own, e.g. webhook retries).
    #[error("{error:#}")]
    RetryAt {
        at: time::OffsetDateTime,
        error: anyhow::Error,
    },
}

impl From<idshare_store::StoreError> for JobError {
    fn from(e: idshare_store::StoreError) -> Self {
        Self::Retryable(e.into())
    }
}

/// Whether a job is tried again is the service error's to say; its whole cause chain is kept
/// (for `last_error` and the log).
impl From<ServiceError> for JobError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Later { at, cause } => Self::RetryAt { at, error: cause },
            e if e.is_retryable() => Self::Retryable(e.into()),
            e => Self::Fatal(e.into()),
        }
    }
}

/// The job kinds and their payloads (ids only: no personal data in the queue).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JobKind {
    /// Run the verification pipeline of one inquiry submission.
    InquiryPipeline {
        org_id: String,
        environment: String,
        inquiry_id: String,
        submission: i64,
    },
    /// Redeem one Connect share token (copy, reuse, run, mark `redeemed`).
    ShareTokenRedemption {
        token_id: String,
        #[serde(default)]
        field_mappings: Vec<crate::redemption::FieldMapping>,
        /// The chain of workflow runs that asked for it (0: an API call), carried so that the
        /// events it writes continue that chain.
        #[serde(default)]
        workflow_chain: u32,
    },
    /// Send (or retry) one webhook delivery.
    WebhookDelivery { delivery_id: String },
    /// Evaluate one published workflow version's trigger condition for one event, and start
    /// the run when it holds.
    WorkflowTrigger {
        org_id: String,
        environment: String,
        version_id: String,
        event_id: String,
        /// The chain the run would continue (see `workflows::MAX_CHAIN`).
        chain: u32,
    },
    /// Run (or continue) one workflow run.
    WorkflowRun { run_id: String },
}

/// The queue of verification, redemption and other work.
pub const DEFAULT_QUEUE: &str = "default";
/// Webhook deliveries have workers of their own, so that slow receivers never hold up the
/// verification pipeline or redemptions.
pub const WEBHOOK_QUEUE: &str = "webhooks";

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::InquiryPipeline { .. } => "inquiry-pipeline",
            JobKind::ShareTokenRedemption { .. } => REDEMPTION,
            JobKind::WebhookDelivery { .. } => "webhook-delivery",
            JobKind::WorkflowTrigger { .. } => "workflow-trigger",
            JobKind::WorkflowRun { .. } => "workflow-run",
        }
    }

    fn queue(&self) -> &'static str {
        match self {
            JobKind::WebhookDelivery { .. } => WEBHOOK_QUEUE,
            _ => DEFAULT_QUEUE,
        }
    }
}

pub(crate) fn decode<T: DeserializeOwned>(job: &Job) -> Result<T, JobError> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| JobError::Fatal(anyhow::anyhow!("job {} has a bad payload: {e}", job.id)))
}

/// The hold of `worker` on the job it runs, for a job that completes itself in the
/// transaction that commits its outcome.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub job: &'a JobId,
    pub worker: &'a str,
}

impl Claim<'_> {
    /// Marks the job `done` in `tx`; false when the worker no longer holds it.
    pub async fn complete_in(
        &self,
        tx: &mut idshare_store::Tx,
        now: time::OffsetDateTime,
    ) -> Result<bool, idshare_store::StoreError> {
        jobs::complete_in(tx, self.job, self.worker, now).await
    }
}

/// Who records that a job which ran without error is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The worker, once the job returns.
    ByWorker,
    /// The job itself, in the transaction that committed its outcome: nothing is left to
    /// record.
    InJob,
}

pub(crate) async fn execute(
    state: &ServiceContext,
    job: &Job,
    worker: &str,
) -> Result<Completion, JobError> {
    let by_worker = |done: Result<(), ServiceError>| done.map(|()| Completion::ByWorker);
    let outcome = match decode::<JobKind>(job)? {
        JobKind::InquiryPipeline {
            org_id,
            environment,
            inquiry_id,
            submission,
        } => by_worker(
            crate::pipeline::run(state, &org_id, &environment, &inquiry_id, submission).await,
        ),
        JobKind::ShareTokenRedemption {
            token_id,
            field_mappings,
            workflow_chain,
        } => {
            let claim = Claim {
                job: &job.id,
                worker,
            };
            // Boxed: the redemption's future is large, and this one holds it.
            let work = Box::pin(crate::redemption::run(
                state,
                claim,
                &token_id,
                &field_mappings,
            ));
            crate::workflows::within_chain(workflow_chain, work).await
        }
        JobKind::WebhookDelivery { delivery_id } => {
            by_worker(crate::webhooks::deliver(state, &delivery_id, job).await)
        }
        JobKind::WorkflowTrigger {
            org_id,
            environment,
            version_id,
            event_id,
            chain,
        } => {
            let trigger = crate::workflows::Trigger {
                org_id: &org_id,
                environment: &environment,
                version_id: &version_id,
                event_id: &event_id,
                chain,
            };
            by_worker(crate::workflows::evaluate_trigger(state, &trigger).await)
        }
        JobKind::WorkflowRun { run_id } => {
            by_worker(Box::pin(crate::workflows::run(state, &run_id, job)).await)
        }
    };
    Ok(outcome?)
}

/// The kind of the redemption jobs [`execute_redemptions`] runs together.
pub(crate) const REDEMPTION: &str = "share-token-redemption";

/// Runs several redemption jobs held by `worker` together (see
/// [`crate::redemption::run_batch`]); returns each job's outcome, in order.
pub(crate) async fn execute_redemptions(
    state: &ServiceContext,
    jobs: &[&Job],
    worker: &str,
) -> Vec<Result<Completion, JobError>> {
    let decoded: Vec<Result<(&Job, JobKind), JobError>> = jobs
        .iter()
        .map(|job| decode::<JobKind>(job).map(|kind| (*job, kind)))
        .collect();
    let batch: Vec<crate::redemption::Batched<'_>> = decoded
        .iter()
        .filter_map(|decoded| match decoded {
            Ok((
                job,
                JobKind::ShareTokenRedemption {
                    token_id,
                    field_mappings,
                    workflow_chain,
                },
            )) => Some(crate::redemption::Batched {
                claim: Claim {
                    job: &job.id,
                    worker,
                },
                token_id,
                mappings: field_mappings,
                chain: *workflow_chain,
            }),
            _ => None,
        })
        .collect();
    // Boxed: the batch's future is large.
    let mut outcomes = Box::pin(crate::redemption::run_batch(state, &batch))
        .await
        .into_iter();
    decoded
        .into_iter()
        .map(|decoded| match decoded {
            Ok((_, JobKind::ShareTokenRedemption { .. })) => match outcomes.next() {
                Some(outcome) => Ok(outcome?),
                None => Err(JobError::Fatal(anyhow::anyhow!(
                    "no outcome for a redemption"
                ))),
            },
            Ok((job, _)) => Err(JobError::Fatal(anyhow::anyhow!(
                "job {} is not a redemption",
                job.id
            ))),
            Err(e) => Err(e),
        })
        .collect()
}

/// What a job that will not run again leaves behind must not block anyone.
pub(crate) async fn give_up(state: &ServiceContext, job: &Job) {
    let Ok(kind) = decode::<JobKind>(job) else {
        return;
    };
    let outcome = match kind {
        JobKind::InquiryPipeline {
            org_id,
            environment,
            inquiry_id,
            submission,
        } => crate::pipeline::give_up(state, &org_id, &environment, &inquiry_id, submission).await,
        JobKind::ShareTokenRedemption { token_id, .. } => {
            crate::redemption::give_up(state, &token_id).await
        }
        JobKind::WebhookDelivery { delivery_id } => {
            crate::webhooks::give_up(state, &delivery_id).await
        }
        JobKind::WorkflowTrigger {
            org_id,
            environment,
            version_id,
            event_id,
            chain,
        } => {
            let trigger = crate::workflows::Trigger {
                org_id: &org_id,
                environment: &environment,
                version_id: &version_id,
                event_id: &event_id,
                chain,
            };
            crate::workflows::give_up_trigger(state, &trigger).await
        }
        JobKind::WorkflowRun { run_id } => crate::workflows::give_up(state, &run_id).await,
    };
    if let Err(e) = outcome {
        let e = JobError::from(e);
        tracing::error!(job = %job.id, error = %e, "could not release what a dead job held");
    }
}

/// Enqueues `kind` in the caller's transaction (see [`JobKind`]).
pub async fn enqueue(
    state: &ServiceContext,
    tx: &mut idshare_store::Tx,
    kind: &JobKind,
    dedupe_key: Option<&str>,
) -> Result<Option<JobId>, idshare_store::StoreError> {
    let mut payload = serde_json::to_value(kind)
        .map_err(|e| idshare_store::StoreError::Corrupt(e.to_string()))?;
    // Decoding ignores it: the job's span continues the enqueuing request's trace.
    if let (Some(traceparent), Some(fields)) = (
        crate::telemetry::current_traceparent(),
        payload.as_object_mut(),
    ) {
        fields.insert(crate::telemetry::TRACEPARENT.to_owned(), traceparent.into());
    }
    jobs::enqueue(
        tx,
        jobs::NewJob {
            queue: kind.queue(),
            kind: kind.name(),
            payload: &payload,
            dedupe_key,
            run_at: state.now(),
            max_attempts: 8,
        },
        state.now(),
    )
    .await
}
