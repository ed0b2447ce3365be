//! How a pipeline run ends: from the verification outcomes, the report matches and what is still
//! missing, the status changes to apply to a `pending` inquiry (DESIGN §2.3 step 5).

use crate::{
    inquiry::InquiryAction,
    template::{OnMatch, VerificationConfig, VerificationType},
    verification::{FileKind, Subject, VerificationStatus},
};

/// One verification's result as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationResult {
    pub required: bool,
    pub status: VerificationStatus,
    /// Ran, but a person must look (no provider for a check in production).
    pub needs_review: bool,
}

/// One report's result as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportResult {
    pub has_match: bool,
    pub on_match: OnMatch,
}

/// The actions to apply, in order, to a `pending` inquiry. Empty: it stays pending (stuck
/// until the missing requirements are supplied).
pub fn decide(
    verifications: &[VerificationResult],
    reports: &[ReportResult],
    missing: usize,
) -> Vec<InquiryAction> {
    let failed = verifications.iter().any(|v| {
        v.required
            && matches!(
                v.status,
                VerificationStatus::Failed | VerificationStatus::RequiresRetry
            )
    });
    let mut actions = if failed {
        vec![InquiryAction::Fail]
    } else if missing > 0 {
        return vec![];
    } else {
        vec![InquiryAction::Complete]
    };
    let review = verifications.iter().any(|v| v.needs_review)
        || reports
            .iter()
            .any(|r| r.has_match && r.on_match == OnMatch::NeedsReview);
    if review {
        actions.push(InquiryAction::MarkForReview);
    }
    actions
}

/// Whether the subject holds every input a verification needs (so it can run now).
pub fn inputs_present(config: &VerificationConfig, subject: &Subject) -> bool {
    match config.verification_type {
        VerificationType::GovernmentId => {
            subject.government_id.is_some() && subject.has_file(FileKind::GovernmentIdFront)
        }
        VerificationType::Selfie => subject.has_file(FileKind::Selfie),
        VerificationType::Document => {
            subject.proof_of_address.is_some() && subject.has_file(FileKind::ProofOfAddress)
        }
        VerificationType::PhoneNumber | VerificationType::EmailAddress => {
            let key = config.verification_type.as_str();
            let needs_confirmation =
                config.config.get("confirmation") == Some(&serde_json::Value::Bool(true));
            subject.text(key).is_some()
                && (!needs_confirmation || subject.confirmed.iter().any(|c| c == key))
        }
        VerificationType::Database => {
            subject.text("name-first").is_some()
                && subject.text("name-last").is_some()
                && subject.date("birthdate").is_some()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(required: bool, status: VerificationStatus) -> VerificationResult {
        VerificationResult {
            required,
            status,
            needs_review: false,
        }
    }

    #[test]
    fn required_failure_fails_even_with_missing_inputs() {
        let actions = decide(&[v(true, VerificationStatus::Failed)], &[], 2);
        assert_eq!(actions, vec![InquiryAction::Fail]);
    }

    #[test]
    fn missing_inputs_leave_the_inquiry_pending() {
        assert!(decide(&[v(true, VerificationStatus::Passed)], &[], 1).is_empty());
    }

    #[test]
    fn optional_failures_do_not_fail() {
        let actions = decide(
            &[
                v(true, VerificationStatus::Passed),
                v(false, VerificationStatus::Failed),
            ],
            &[],
            0,
        );
        assert_eq!(actions, vec![InquiryAction::Complete]);
    }

    #[test]
    fn matches_and_undecidable_checks_go_to_review() {
        let report = ReportResult {
            has_match: true,
            on_match: OnMatch::NeedsReview,
        };
        assert_eq!(
            decide(&[v(true, VerificationStatus::Passed)], &[report], 0),
            vec![InquiryAction::Complete, InquiryAction::MarkForReview]
        );
        let ignored = ReportResult {
            has_match: true,
            on_match: OnMatch::None,
        };
        assert_eq!(decide(&[], &[ignored], 0), vec![InquiryAction::Complete]);
        let undecided = VerificationResult {
            required: true,
            status: VerificationStatus::Passed,
            needs_review: true,
        };
        assert_eq!(
            decide(&[undecided], &[], 0),
            vec![InquiryAction::Complete, InquiryAction::MarkForReview]
        );
        assert_eq!(
            decide(&[v(true, VerificationStatus::Failed)], &[report], 0),
            vec![InquiryAction::Fail, InquiryAction::MarkForReview]
        );
    }
}
