//! The inquiry status machine.

string_enum! {
    /// Where an inquiry stands. Redaction is not a status (it sets `redacted-at`).
    pub enum InquiryStatus ("inquiry status", all: slice) {
        Created = "created",
        Pending = "pending",
        Completed = "completed",
        Failed = "failed",
        Expired = "expired",
        NeedsReview = "needs_review",
        Approved = "approved",
        Declined = "declined",
    }
}

impl InquiryStatus {
    /// Fields and notes can only change before the inquiry is finished.
    pub fn accepts_field_updates(self) -> bool {
        matches!(self, Self::Created | Self::Pending)
    }

    /// True when no action can move the inquiry out of this status (a final decision).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Approved | Self::Declined)
    }
}

/// Something that changes an inquiry's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InquiryAction {
    Start,
    Complete,
    Fail,
    Expire,
    Resume,
    MarkForReview,
    Approve,
    Decline,
}

impl InquiryAction {
    /// Every action, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::Start,
        Self::Complete,
        Self::Fail,
        Self::Expire,
        Self::Resume,
        Self::MarkForReview,
        Self::Approve,
        Self::Decline,
    ];

    /// The action as a verb for messages ("cannot {verb} an inquiry …").
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Fail => "fail",
            Self::Expire => "expire",
            Self::Resume => "resume",
            Self::MarkForReview => "mark for review",
            Self::Approve => "approve",
            Self::Decline => "decline",
        }
    }

    /// The event written when this action succeeds.
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::Start => "inquiry.started",
            Self::Complete => "inquiry.completed",
            Self::Fail => "inquiry.failed",
            Self::Expire => "inquiry.expired",
            Self::Resume => "inquiry.resumed",
            Self::MarkForReview => "inquiry.marked-for-review",
            Self::Approve => "inquiry.approved",
            Self::Decline => "inquiry.declined",
        }
    }
}

/// An action that the inquiry's current status does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} an inquiry whose status is `{from}`", .action.verb())]
pub struct TransitionError {
    pub from: InquiryStatus,
    pub action: InquiryAction,
}

/// The status an inquiry moves to when `action` is applied in status `from`.
pub fn transition(
    from: InquiryStatus,
    action: InquiryAction,
) -> Result<InquiryStatus, TransitionError> {
    use InquiryAction as A;
    use InquiryStatus as S;
    match (from, action) {
        (S::Created, A::Start) | (S::Expired, A::Resume) => Ok(S::Pending),
        (S::Pending, A::Complete) => Ok(S::Completed),
        (S::Pending, A::Fail) => Ok(S::Failed),
        (S::Created | S::Pending, A::Expire) => Ok(S::Expired),
        (S::Completed | S::Failed, A::MarkForReview) => Ok(S::NeedsReview),
        (S::Completed | S::Failed | S::NeedsReview, A::Approve) => Ok(S::Approved),
        (S::Completed | S::Failed | S::NeedsReview, A::Decline) => Ok(S::Declined),
        _ => Err(TransitionError { from, action }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InquiryAction as A;
    use InquiryStatus as S;
    use proptest::prelude::*;

    /// The whole table from the design, written out independently of `transition`.
    const ALLOWED: &[(S, A, S)] = &[
        (S::Created, A::Start, S::Pending),
        (S::Pending, A::Complete, S::Completed),
        (S::Pending, A::Fail, S::Failed),
        (S::Created, A::Expire, S::Expired),
        (S::Pending, A::Expire, S::Expired),
        (S::Expired, A::Resume, S::Pending),
        (S::Completed, A::MarkForReview, S::NeedsReview),
        (S::Failed, A::MarkForReview, S::NeedsReview),
        (S::Completed, A::Approve, S::Approved),
        (S::Failed, A::Approve, S::Approved),
        (S::NeedsReview, A::Approve, S::Approved),
        (S::Completed, A::Decline, S::Declined),
        (S::Failed, A::Decline, S::Declined),
        (S::NeedsReview, A::Decline, S::Declined),
    ];

    fn expected(from: S, action: A) -> Option<S> {
        ALLOWED
            .iter()
            .find(|(f, a, _)| *f == from && *a == action)
            .map(|(_, _, to)| *to)
    }

    #[test]
    fn every_status_action_pair_matches_the_table() {
        for &from in S::ALL {
            for &action in A::ALL {
                match expected(from, action) {
                    Some(to) => assert_eq!(transition(from, action), Ok(to), "{from} {action:?}"),
                    None => assert_eq!(
                        transition(from, action),
                        Err(TransitionError { from, action }),
                        "{from} {action:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn errors_read_as_sentences() {
        let err = transition(S::Created, A::Approve).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot approve an inquiry whose status is `created`"
        );
        let err = transition(S::Approved, A::MarkForReview).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot mark for review an inquiry whose status is `approved`"
        );
    }

    #[test]
    fn terminal_means_no_way_out() {
        for &status in S::ALL {
            let stuck = A::ALL.iter().all(|&a| transition(status, a).is_err());
            assert_eq!(status.is_terminal(), stuck, "{status}");
        }
    }

    #[test]
    fn statuses_round_trip_and_use_snake_case() {
        for &status in S::ALL {
            assert_eq!(status.as_str().parse::<S>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!(S::NeedsReview.as_str(), "needs_review");
        assert!(S::Pending.accepts_field_updates());
        assert!(!S::Completed.accepts_field_updates());
    }

    proptest! {
        #[test]
        fn any_action_sequence_stays_within_the_table(
            actions in proptest::collection::vec(proptest::sample::select(A::ALL), 0..40)
        ) {
            let mut status = S::Created;
            for action in actions {
                match transition(status, action) {
                    Ok(next) => {
                        prop_assert_eq!(expected(status, action), Some(next));
                        status = next;
                    }
                    Err(err) => {
                        prop_assert_eq!(expected(status, action), None);
                        prop_assert_eq!(err, TransitionError { from: status, action });
                    }
                }
            }
        }
    }
}
