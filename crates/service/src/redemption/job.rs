//! The redemption job: reads the token, the source and the destination, copies or clones,
//! runs what was not reused through the pipeline, and records it with the token `redeemed`;
//! or ends the token `failed`.

use idshare_domain::{
    connect::ConnectionStatus,
    id::{InquiryId, ShareTokenId},
    share_token::{self, ShareTokenStatus, failure},
};
use idshare_store::{Scope, connections, inquiries, share_tokens};

use super::{FieldMapping, clone::clone, copy, hydratable};
use crate::{ServiceContext, ServiceError, pipeline, share_tokens::record as record_token};

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
        let source = copy::load_source(state, &source_scope, source).await?;
        return clone(state, &token, &destination_scope, &destination_id, &source).await;
    }
    if let Some(source) = source {
        if !hydratable(&destination) {
            return fail(state, &id, failure::DESTINATION_NOT_HYDRATABLE).await;
        }
        let source = copy::load_source(state, &source_scope, source).await?;
        if !copy::template(
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

/// Called when a redemption job is given up: the token ends `failed` instead of `pending`
/// forever.
pub async fn give_up(state: &ServiceContext, token_id: &str) -> Result<(), ServiceError> {
    let id = ShareTokenId::parse(token_id).map_err(ServiceError::internal)?;
    fail(state, &id, failure::INTERNAL_ERROR).await
}
