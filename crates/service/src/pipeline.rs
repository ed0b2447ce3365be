//! The verification pipeline of one inquiry submission (a job): read what the inquiry holds,
//! run the template's verifications and reports outside any transaction, then record results,
//! events and the decision in one short transaction. Idempotent: a submission is processed at
//! most once (`processed_submission`), and results are unique per submission.

use idshare_domain::{
    decision::{self, ReportResult, VerificationResult},
    event::names,
    id::{InquiryId, OrgId},
    inquiry::{InquiryAction, InquiryStatus, transition},
    preview::reuse_basis,
    requirements,
    template::{TemplateDefinition, VerificationType},
    verification::{
        AddressDocument, GovernmentIdDocument, Subject, VerificationOutcome, VerificationStatus,
        document, email, government_id, phone,
    },
};
use idshare_store::{
    DataKey, Scope, Tx, checks, documents, files,
    inquiries::{self, Inquiry},
};
use serde_json::{Value, json};

use super::ServiceError;
use crate::{
    ServiceContext,
    events::{self, Announcement},
    providers, render, screening,
};

/// Everything an inquiry holds that the rules look at, read in one transaction.
pub async fn load_subject(
    tx: &mut Tx,
    state: &ServiceContext,
    scope: &Scope,
    inquiry: &Inquiry,
) -> Result<Subject, idshare_store::StoreError> {
    let crypto = state.store().crypto();
    let government_id =
        documents::get::<GovernmentIdDocument>(tx, crypto, scope, &inquiry.id, "government-id")
            .await?
            .map(|(_, d)| d);
    let proof_of_address =
        documents::get::<AddressDocument>(tx, crypto, scope, &inquiry.id, "proof-of-address")
            .await?
            .map(|(_, d)| d);
    let files = files::for_inquiry(tx, scope, &inquiry.id)
        .await?
        .iter()
        .map(files::StoredFile::as_ref)
        .collect();
    let confirmed = crate::confirmations::confirmed_keys(tx, state, inquiry).await?;
    Ok(Subject {
        fields: inquiry.data.fields.clone(),
        government_id,
        proof_of_address,
        files,
        confirmed,
    })
}

/// One verification run: what to record.
struct Ran {
    verification_type: VerificationType,
    required: bool,
    outcome: VerificationOutcome,
    needs_review: bool,
}

/// One report run.
struct Screened {
    report_type: &'static str,
    on_match: idshare_domain::template::OnMatch,
    matches: Vec<Value>,
}

pub async fn run(
    state: &ServiceContext,
    org_id: &str,
    environment: &str,
    inquiry_id: &str,
    submission: i64,
) -> Result<(), ServiceError> {
    let scope = Scope::new(
        OrgId::parse(org_id).map_err(ServiceError::internal)?,
        environment
            .parse()
            .map_err(|e: idshare_domain::UnknownValueError| ServiceError::internal(e))?,
    );
    let id = InquiryId::parse(inquiry_id).map_err(ServiceError::internal)?;

    let mut tx = state.store().begin_read().await?;
    let inquiry = inquiries::get(&mut tx, state.store().crypto(), &scope, &id)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("inquiry {id} does not exist")))?;
    drop(tx);
    if !needs_processing(&inquiry, submission) {
        return Ok(());
    }
    let evaluation = evaluate(state, &scope, &inquiry, submission).await?;
    record(state, &scope, &id, submission, &evaluation).await
}

/// What the pipeline found for one submission, ready to record.
pub(crate) struct Evaluation {
    definition: std::sync::Arc<TemplateDefinition>,
    ran: Vec<Ran>,
    /// Verifications reused by a Connect redemption, recorded for this submission or standing
    /// from an earlier one ([`reused_standing`]): not run again, but they count in the
    /// decision.
    prior: Vec<VerificationResult>,
    screened: Vec<Screened>,
    missing: Vec<requirements::Requirement>,
}

/// Where a verification reused by a redemption keeps the digest of its inputs at the copy
/// ([`reuse_basis`]); beside `checks` and `attributes`, so it is never shown.
pub(crate) const REUSED_BASIS: &str = "reused-basis";

/// A verification of `kind` that a redemption reused in an earlier submission and that still
/// stands: its inputs in `subject` are those it was copied with. The end user finishing a
/// stuck inquiry does not make it run again; once its inputs changed, it does.
fn reused_standing<'a>(
    recorded: &'a [checks::StoredVerification],
    kind: VerificationType,
    submission: i64,
    subject: &Subject,
) -> Option<&'a checks::StoredVerification> {
    let basis = reuse_basis(kind, subject);
    recorded
        .iter()
        .filter(|v| v.submission < submission && v.verification_type == kind.as_str())
        .rfind(|v| {
            v.result
                .as_ref()
                .and_then(|result| result.get(REUSED_BASIS))
                .and_then(Value::as_str)
                == Some(basis.as_str())
        })
}

/// The event a verification that ended in `status` writes.
pub(crate) fn verification_event(status: VerificationStatus) -> &'static str {
    match status {
        VerificationStatus::Passed => names::VERIFICATION_PASSED,
        VerificationStatus::RequiresRetry => names::VERIFICATION_REQUIRES_RETRY,
        VerificationStatus::Submitted => names::VERIFICATION_SUBMITTED,
        _ => names::VERIFICATION_FAILED,
    }
}

/// Runs the template's verifications (those not yet recorded for `submission`, and not reused
/// by a redemption and still standing) and reports on what the inquiry holds, outside any
/// transaction.
pub(crate) async fn evaluate(
    state: &ServiceContext,
    scope: &Scope,
    inquiry: &Inquiry,
    submission: i64,
) -> Result<Evaluation, ServiceError> {
    let id = &inquiry.id;
    let mut tx = state.store().begin_read().await?;
    let definition = crate::inquiries::definition_for(&mut tx, scope, inquiry)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("inquiry {id} has no template")))?;
    let subject = load_subject(&mut tx, state, scope, inquiry).await?;
    let recorded = checks::verifications_of(&mut tx, state.store().crypto(), scope, id).await?;
    drop(tx);
    let loaded = Loaded {
        definition,
        subject,
        recorded,
        images: None,
    };
    evaluate_loaded(state, scope, id, loaded, submission).await
}

/// The selfie and ID front a face comparison looks at, when the caller has them in memory.
pub(crate) struct Images {
    pub selfie: Option<Vec<u8>>,
    pub id_front: Option<Vec<u8>>,
}

/// What an evaluation looks at, read (or computed in memory) by the caller.
pub(crate) struct Loaded {
    pub definition: std::sync::Arc<TemplateDefinition>,
    pub subject: Subject,
    /// The inquiry's verifications, oldest first.
    pub recorded: Vec<checks::StoredVerification>,
    /// `None`: a face comparison reads the inquiry's stored files.
    pub images: Option<Images>,
}

/// [`evaluate`] on what the caller loaded: no transaction of its own.
pub(crate) async fn evaluate_loaded(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    loaded: Loaded,
    submission: i64,
) -> Result<Evaluation, ServiceError> {
    let Loaded {
        definition,
        subject,
        recorded,
        images,
    } = loaded;
    let today = state.now().date();
    let mut ran = Vec::new();
    let mut prior = Vec::new();
    for config in &definition.verifications {
        let kind = config.verification_type;
        if let Some(done) = recorded
            .iter()
            .find(|v| v.submission == submission && v.verification_type == kind.as_str())
            .or_else(|| reused_standing(&recorded, kind, submission, &subject))
        {
            prior.push(VerificationResult {
                required: config.required,
                status: done.status.parse().unwrap_or(VerificationStatus::Failed),
                needs_review: false,
            });
            continue;
        }
        if !decision::inputs_present(config, &subject) {
            continue;
        }
        let (outcome, needs_review) = match config.verification_type {
            VerificationType::GovernmentId => {
                let Some(document) = &subject.government_id else {
                    continue;
                };
                let settings = government_id::GovernmentIdConfig::from_config(&config.config);
                (
                    government_id::verify(document, &subject, &settings, today),
                    false,
                )
            }
            VerificationType::Document => {
                let Some(document) = &subject.proof_of_address else {
                    continue;
                };
                let settings = document::DocumentConfig::from_config(&config.config);
                (
                    document::verify(document, &subject, &settings, today),
                    false,
                )
            }
            VerificationType::PhoneNumber => (phone::verify(&subject, confirmation(config)), false),
            VerificationType::EmailAddress => {
                (email::verify(&subject, confirmation(config)), false)
            }
            VerificationType::Selfie => match &images {
                Some(images) => {
                    providers::compare_selfie(
                        state,
                        scope,
                        config,
                        images.selfie.clone(),
                        images.id_front.clone(),
                    )
                    .await?
                }
                None => providers::selfie(state, scope, id, config).await?,
            },
            VerificationType::Database => {
                providers::database(state, scope, config, &subject).await?
            }
        };
        ran.push(Ran {
            verification_type: config.verification_type,
            required: config.required,
            outcome,
            needs_review,
        });
    }
    let mut screened = Vec::new();
    for config in &definition.reports {
        let matches = screening::screen(state, config, &subject).await?;
        screened.push(Screened {
            report_type: config.report_type.as_str(),
            on_match: config.on_match,
            matches,
        });
    }
    let missing = requirements::missing(&definition, &subject);
    Ok(Evaluation {
        definition,
        ran,
        prior,
        screened,
        missing,
    })
}

fn confirmation(config: &idshare_domain::template::VerificationConfig) -> bool {
    config
        .config
        .get("confirmation")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// A submission is processed once, and only while the inquiry waits for it.
pub(crate) fn needs_processing(inquiry: &Inquiry, submission: i64) -> bool {
    inquiry.processed_submission < submission
        && inquiry.redacted_at.is_none()
        && inquiry.status == InquiryStatus::Pending
}

async fn record(
    state: &ServiceContext,
    scope: &Scope,
    id: &InquiryId,
    submission: i64,
    evaluation: &Evaluation,
) -> Result<(), ServiceError> {
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    let Some(mut inquiry) = inquiries::get_for_update(&mut tx, crypto, scope, id).await? else {
        return Ok(());
    };
    // Another run (or a redaction, an expiry) got here first: nothing to do.
    if !needs_processing(&inquiry, submission) {
        return Ok(());
    }
    let key = inquiries::data_key(&mut tx, crypto, id.as_str())
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("inquiry {id} has no data key")))?;
    let mut announced = Vec::new();
    record_in(
        state,
        &mut tx,
        scope,
        &key,
        &mut inquiry,
        submission,
        evaluation,
        &mut announced,
    )
    .await?;
    inquiries::save(&mut tx, crypto, scope, &inquiry).await?;
    events::record_batch(state, &mut tx, Some((id.as_str(), &key)), &announced).await?;
    tx.commit().await?;
    crate::telemetry::pipeline_decided(inquiry.status);
    Ok(())
}

/// Writes an evaluation's results in the caller's transaction (sealed under the inquiry's
/// `key`), applies its decision to `inquiry` in memory, and adds its events to `announced`:
/// the caller locked (or will check) the inquiry, saves it and records the events.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_in(
    state: &ServiceContext,
    tx: &mut Tx,
    scope: &Scope,
    key: &DataKey,
    inquiry: &mut Inquiry,
    submission: i64,
    evaluation: &Evaluation,
    announced: &mut Vec<Announcement>,
) -> Result<(), ServiceError> {
    let now = state.now();
    let id = &inquiry.id.clone();
    let Evaluation {
        definition,
        ran,
        prior,
        screened,
        missing,
    } = evaluation;
    let verifications: Vec<_> = ran
        .iter()
        .map(|run| {
            let result =
                json!({ "checks": run.outcome.checks, "attributes": run.outcome.attributes });
            checks::prepare_verification(
                checks::NewVerification {
                    inquiry_id: id,
                    verification_type: run.verification_type.as_str(),
                    submission,
                    status: run.outcome.status.as_str(),
                    required: run.required,
                    result: &result,
                },
                now,
            )
        })
        .collect();
    let recorded = checks::record_verifications(tx, key, scope, &verifications).await?;
    for (run, verification) in ran.iter().zip(&verifications) {
        if recorded.contains(&verification.id) {
            announced.push(verification_announcement(
                scope,
                run.outcome.status,
                verification,
            ));
        }
    }
    let reports: Vec<_> = screened
        .iter()
        .map(|report| {
            let result = json!({ "matches": report.matches, "dismissed": [] });
            checks::prepare_report(
                checks::NewReport {
                    inquiry_id: id,
                    report_type: report.report_type,
                    submission,
                    status: "ready",
                    has_match: !report.matches.is_empty(),
                    result: &result,
                },
                now,
            )
        })
        .collect();
    let recorded = checks::record_reports(tx, key, scope, &reports).await?;
    for stored in reports.iter().filter(|r| recorded.contains(&r.id)) {
        let payload = render::payload(&render::report(stored));
        let ready = format!("report/{}.ready", stored.report_type);
        announced.push(announcement(
            scope,
            &ready,
            "report",
            stored.id.as_str(),
            id,
            payload.clone(),
        ));
        if stored.has_match {
            let matched = format!("report/{}.matched", stored.report_type);
            announced.push(announcement(
                scope,
                &matched,
                "report",
                stored.id.as_str(),
                id,
                payload,
            ));
        }
    }
    let verification_results: Vec<_> = prior
        .iter()
        .cloned()
        .chain(ran.iter().map(|r| VerificationResult {
            required: r.required,
            status: r.outcome.status,
            needs_review: r.needs_review,
        }))
        .collect();
    let report_results: Vec<_> = screened
        .iter()
        .map(|r| ReportResult {
            has_match: !r.matches.is_empty(),
            on_match: r.on_match,
        })
        .collect();
    inquiry.processed_submission = submission;
    inquiry.updated_at = now;
    let actions = decision::decide(&verification_results, &report_results, missing.len());
    // Each transition is announced in turn, so every event carries the inquiry as it was at
    // that step (`inquiry.completed` shows `completed`, even when review follows); the caller
    // saves the last.
    for action in actions {
        inquiry.status = transition(inquiry.status, action).map_err(|e| {
            ServiceError::internal(anyhow::Error::new(e).context("pipeline decision"))
        })?;
        match action {
            InquiryAction::Complete => inquiry.completed_at = Some(now),
            InquiryAction::Fail => inquiry.failed_at = Some(now),
            InquiryAction::MarkForReview => inquiry.marked_for_review_at = Some(now),
            _ => {}
        }
        let payload = render::payload(&render::inquiry(inquiry, Some(definition), missing, None));
        announced.push(announcement(
            scope,
            action.event_name(),
            "inquiry",
            id.as_str(),
            id,
            payload,
        ));
    }
    Ok(())
}

/// The event of a verification recorded in the caller's transaction, sealed under its
/// inquiry's key.
pub(crate) fn verification_announcement(
    scope: &Scope,
    status: VerificationStatus,
    verification: &checks::StoredVerification,
) -> Announcement {
    announcement(
        scope,
        verification_event(status),
        "verification",
        verification.id.as_str(),
        &verification.inquiry_id,
        render::payload(&render::verification(verification)),
    )
}

/// An event about an inquiry or one of its parts, sealed under the inquiry's key.
pub(crate) fn announcement(
    scope: &Scope,
    name: &str,
    object_type: &'static str,
    object_id: &str,
    inquiry_id: &InquiryId,
    payload: Value,
) -> Announcement {
    Announcement {
        scope: scope.clone(),
        name: name.to_owned(),
        object_type,
        object_id: object_id.to_owned(),
        payload,
        sealed_by: Some(inquiry_id.to_string()),
    }
}

/// Called when a pipeline job is given up (fatal error, or out of attempts): the submission
/// counts as processed, so the inquiry can be submitted again instead of waiting forever.
pub async fn give_up(
    state: &ServiceContext,
    org_id: &str,
    environment: &str,
    inquiry_id: &str,
    submission: i64,
) -> Result<(), ServiceError> {
    let scope = Scope::new(
        OrgId::parse(org_id).map_err(ServiceError::internal)?,
        environment
            .parse()
            .map_err(|e: idshare_domain::UnknownValueError| ServiceError::internal(e))?,
    );
    let id = InquiryId::parse(inquiry_id).map_err(ServiceError::internal)?;
    let crypto = state.store().crypto();
    let mut tx = state.store().begin_write().await?;
    if let Some(mut inquiry) = inquiries::get_for_update(&mut tx, crypto, &scope, &id).await?
        && inquiry.processed_submission < submission
    {
        inquiry.processed_submission = submission;
        inquiry.updated_at = state.now();
        inquiries::save(&mut tx, crypto, &scope, &inquiry).await?;
    }
    tx.commit().await?;
    Ok(())
}
