//! A clone: the destination inquiry has no template, so it receives everything the source
//! holds, as it was.

use idshare_domain::{
    inquiry::{InquiryAction, InquiryStatus},
    time_format::format_timestamp,
};
use idshare_store::{Scope, checks, inquiries::Inquiry, share_tokens::ShareToken};
use serde_json::json;

use super::{
    copy::{EVIDENCE, SourceData, copy_document, copy_file, mark, provenance},
    inquiry_announcement,
    job::Work,
};
use crate::{ServiceContext, ServiceError};

/// A clone, computed in memory: the source's data, documents, files, verifications and
/// reports as they were (marked `cloned-from`), and the source's status (approved counts as
/// completed).
pub(super) fn cloned(
    state: &ServiceContext,
    token: &ShareToken,
    destination: &Inquiry,
    source: &SourceData,
) -> Result<Work, ServiceError> {
    let now = state.now();
    let now_text = format_timestamp(now);
    let id = &destination.id;
    let mut work = Work::none(destination.clone());
    work.inquiry.data.fields = source.inquiry.data.fields.clone();
    for key in source.inquiry.data.fields.keys() {
        work.inquiry
            .data
            .provenance
            .insert(key.clone(), provenance(token, None, &now_text));
    }
    for kind in EVIDENCE.iter().filter_map(|e| e.document) {
        copy_document(&mut work, source, kind);
    }
    for file in source.files.values() {
        copy_file(&mut work, token, file, now, &now_text)?;
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
    let inquiry = &mut work.inquiry;
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
            &work.inquiry,
            None,
        ));
    }
    Ok(work)
}
