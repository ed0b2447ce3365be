//! Verifications that need an outside opinion — face comparison (selfie) and identity records
//! (database) — through a provider: `sandbox` (deterministic, driven by documented magic
//! values, refused in production) or `http` (an external service, docs/providers.md). When no
//! usable provider exists the verification is recorded undecided and the inquiry goes to
//! review: never a fake pass.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use idshare_domain::{
    environment::Environment,
    id::InquiryId,
    names,
    template::VerificationConfig,
    verification::{
        Check, CheckRequirement, FileKind, Subject, VerificationOutcome, VerificationStatus,
    },
};
use idshare_store::{Scope, files};
use serde_json::{Map, Value, json};

use super::ServiceError;
use crate::ServiceContext;

/// In the sandbox, a selfie whose bytes contain this marker does not match its ID photo.
pub const SANDBOX_SELFIE_NO_MATCH: &[u8] = b"SANDBOX-NO-MATCH";
/// In the sandbox, this identification number has no record in the reference database.
pub const SANDBOX_DATABASE_NOT_FOUND: &str = "000000000";

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const HTTP_ATTEMPTS: u32 = 3;

fn provider_name(config: &VerificationConfig) -> &str {
    config
        .config
        .get("provider")
        .and_then(Value::as_str)
        .unwrap_or("sandbox")
}

/// An outcome nobody could decide: the check is not applicable, the inquiry needs review.
fn undecided(check: &str, reason: String) -> (VerificationOutcome, bool) {
    let outcome = VerificationOutcome {
        status: VerificationStatus::Submitted,
        checks: vec![Check::not_applicable(
            check,
            CheckRequirement::Required,
            reason,
        )],
        attributes: Map::new(),
    };
    (outcome, true)
}

pub async fn selfie(
    state: &ServiceContext,
    scope: &Scope,
    inquiry_id: &InquiryId,
    config: &VerificationConfig,
) -> Result<(VerificationOutcome, bool), ServiceError> {
    let mut tx = state.store().begin_read().await?;
    let crypto = state.store().crypto();
    let mut selfie = None;
    let mut id_front = None;
    for file in files::for_inquiry(&mut tx, scope, inquiry_id).await? {
        let slot = match file.kind {
            FileKind::Selfie => &mut selfie,
            FileKind::GovernmentIdFront => &mut id_front,
            _ => continue,
        };
        // The most recent upload of each kind counts.
        *slot = files::content(&mut tx, crypto, scope, &file.id)
            .await?
            .map(|(_, bytes)| bytes);
    }
    drop(tx);
    compare_selfie(state, scope, config, selfie, id_front).await
}

/// The face comparison of a selfie with the ID's front, given their bytes (an inquiry's latest
/// uploads, or those a redemption is about to copy into it).
pub(crate) async fn compare_selfie(
    state: &ServiceContext,
    scope: &Scope,
    config: &VerificationConfig,
    selfie: Option<Vec<u8>>,
    id_front: Option<Vec<u8>>,
) -> Result<(VerificationOutcome, bool), ServiceError> {
    const CHECK: &str = "selfie_id_comparison";
    let Some(selfie) = selfie else {
        return Ok(undecided(CHECK, "No selfie was uploaded.".into()));
    };
    match (provider_name(config), scope.environment) {
        ("sandbox", Environment::Sandbox) => {
            let matched = !selfie
                .windows(SANDBOX_SELFIE_NO_MATCH.len())
                .any(|w| w == SANDBOX_SELFIE_NO_MATCH);
            let check = Check::from_bool(
                CHECK,
                CheckRequirement::Required,
                matched,
                "The face does not match the ID photo (sandbox simulation).",
            )
            .with_metadata("provider", "sandbox")
            .with_metadata("score", if matched { 0.97 } else { 0.12 });
            Ok((
                VerificationOutcome::from_checks(vec![check], Map::new()),
                false,
            ))
        }
        ("sandbox", Environment::Production) => Ok(undecided(
            CHECK,
            "The sandbox provider is not available in production; configure an http provider."
                .into(),
        )),
        _ => {
            let Some(url) = state.config().selfie_provider_url.clone() else {
                return Ok(undecided(
                    CHECK,
                    "No face-comparison provider is configured.".into(),
                ));
            };
            let request = json!({
                "selfie": BASE64.encode(&selfie),
                "id-front": id_front.map(|b| BASE64.encode(b)),
            });
            let answer = call(state, &url, &request).await?;
            let matched = answer
                .get("match")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let check = Check::from_bool(
                CHECK,
                CheckRequirement::Required,
                matched,
                "The face-comparison provider found no match.",
            )
            .with_metadata("provider", "http")
            .with_metadata("score", answer.get("score").cloned().unwrap_or(Value::Null));
            Ok((
                VerificationOutcome::from_checks(vec![check], Map::new()),
                false,
            ))
        }
    }
}

pub async fn database(
    state: &ServiceContext,
    scope: &Scope,
    config: &VerificationConfig,
    subject: &Subject,
) -> Result<(VerificationOutcome, bool), ServiceError> {
    const CHECK: &str = "database_identity_comparison";
    let first = subject.text("name-first").unwrap_or_default();
    let last = subject.text("name-last").unwrap_or_default();
    let birthdate = subject.date("birthdate");
    let number = subject.text("identification-number");
    match (provider_name(config), scope.environment) {
        ("sandbox", Environment::Sandbox) => {
            let found = number != Some(SANDBOX_DATABASE_NOT_FOUND);
            let check = Check::from_bool(
                CHECK,
                CheckRequirement::Required,
                found,
                "No record matches this identity (sandbox simulation).",
            )
            .with_metadata("provider", "sandbox");
            Ok((
                VerificationOutcome::from_checks(vec![check], Map::new()),
                false,
            ))
        }
        ("sandbox", Environment::Production) => Ok(undecided(
            CHECK,
            "The sandbox provider is not available in production; configure an http provider."
                .into(),
        )),
        _ => {
            let Some(url) = state.config().database_provider_url.clone() else {
                return Ok(undecided(
                    CHECK,
                    "No identity database provider is configured.".into(),
                ));
            };
            let request = json!({
                "name-first": first, "name-last": last,
                "birthdate": birthdate.map(idshare_domain::time_format::format_date),
                "identification-number": number,
            });
            let answer = call(state, &url, &request).await?;
            let record_first = answer
                .get("name-first")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let record_last = answer
                .get("name-last")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let found = answer
                .get("found")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let check = Check::from_bool(
                CHECK,
                CheckRequirement::Required,
                found && names::names_match(first, last, record_first, record_last),
                "The reference database has no matching record.",
            )
            .with_metadata("provider", "http");
            Ok((
                VerificationOutcome::from_checks(vec![check], Map::new()),
                false,
            ))
        }
    }
}

/// POSTs JSON to a provider with a timeout and a few quick retries; a provider that stays
/// down is [`ServiceError::Upstream`] (the job runs again later with backoff).
async fn call(state: &ServiceContext, url: &str, body: &Value) -> Result<Value, ServiceError> {
    let unavailable = |cause: anyhow::Error| ServiceError::Upstream {
        title: "Provider unavailable",
        details: "the verification provider did not answer usably".to_owned(),
        cause,
    };
    let mut last_error = None;
    for attempt in 0..HTTP_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * 2_u64.pow(attempt))).await;
        }
        let response = state
            .http()
            .post(url)
            .timeout(HTTP_TIMEOUT)
            .json(body)
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => {
                return r.json().await.map_err(|e| {
                    unavailable(anyhow::Error::new(e).context("provider answered non-JSON"))
                });
            }
            Ok(r) => last_error = Some(anyhow::anyhow!("provider answered {}", r.status())),
            Err(e) => last_error = Some(anyhow::Error::new(e).context("provider unreachable")),
        }
    }
    Err(unavailable(
        last_error.unwrap_or_else(|| anyhow::anyhow!("provider call failed")),
    ))
}
