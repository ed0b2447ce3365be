//! A clone: the destination inquiry has no template, so it receives everything the source
//! holds, as it was.

use idshare_domain::{
    id::InquiryId,
    inquiry::{InquiryAction, InquiryStatus},
    share_token::{self, ShareTokenStatus},
    time_format::format_timestamp,
};
use idshare_store::{
    Scope, checks, inquiries,
    share_tokens::{self, ShareToken},
};
use serde_json::json;

use super::{
    copy::{SourceData, copy_document, copy_file, mark, provenance},
    emit_inquiry,
};
use crate::{ServiceContext, ServiceError, pipeline, share_tokens::record as record_token};

/// Clone, in one transaction: the source's data, documents, files, verifications and reports
/// as they were (marked `cloned-from`), the source's status (approved counts as completed),
/// and the token `redeemed`.
pub(super) async fn clone(
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
        for (kind, document) in &source.documents {
            copy_document(state, &mut tx, scope, &inquiry, kind, document, now).await?;
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
