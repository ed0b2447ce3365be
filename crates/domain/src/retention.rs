//! Retention: how long an inquiry keeps its personal data once it has ended, before it is
//! redacted automatically. A template may set its own period; otherwise the organization's
//! default applies; with neither, data is kept until someone redacts it.

use std::num::NonZeroU32;

use time::{Duration, OffsetDateTime};

use crate::inquiry::InquiryStatus;

/// The longest period accepted: 100 years, which is "keep", said as a number.
pub const MAX_DAYS: u32 = 36_500;

/// A retention period in whole days, 1 to [`MAX_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays(NonZeroU32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a retention period is a whole number of days from 1 to {MAX_DAYS}")]
pub struct RetentionError;

impl RetentionDays {
    pub fn new(days: u32) -> Result<Self, RetentionError> {
        NonZeroU32::new(days)
            .filter(|d| d.get() <= MAX_DAYS)
            .map(Self)
            .ok_or(RetentionError)
    }

    /// A form's text: empty means no period of its own (`None`).
    pub fn parse_optional(text: &str) -> Result<Option<Self>, RetentionError> {
        match text.trim() {
            "" => Ok(None),
            days => days
                .parse::<u32>()
                .map_err(|_| RetentionError)
                .and_then(Self::new)
                .map(Some),
        }
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }

    fn duration(self) -> Duration {
        Duration::days(i64::from(self.get()))
    }
}

/// Which setting a period comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionSource {
    Template,
    Organization,
}

/// The period that applies to an inquiry of a template: the template's own, else the
/// organization's default.
pub fn effective(
    template: Option<RetentionDays>,
    organization: Option<RetentionDays>,
) -> Option<(RetentionDays, RetentionSource)> {
    template
        .map(|days| (days, RetentionSource::Template))
        .or_else(|| organization.map(|days| (days, RetentionSource::Organization)))
}

/// When each kind of end happened, as an inquiry records it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndTimes {
    pub completed_at: Option<OffsetDateTime>,
    pub failed_at: Option<OffsetDateTime>,
    pub expired_at: Option<OffsetDateTime>,
    pub decisioned_at: Option<OffsetDateTime>,
}

/// When an inquiry in `status` ended, or `None` while it has not: an inquiry waiting for its
/// end user (created, pending) or for a reviewer (needs review) is still in use. An approved or
/// declined inquiry ended with its decision.
pub fn ended_at(status: InquiryStatus, times: EndTimes) -> Option<OffsetDateTime> {
    match status {
        InquiryStatus::Created | InquiryStatus::Pending | InquiryStatus::NeedsReview => None,
        InquiryStatus::Completed => times.completed_at,
        InquiryStatus::Failed => times.failed_at,
        InquiryStatus::Expired => times.expired_at,
        InquiryStatus::Approved | InquiryStatus::Declined => times.decisioned_at,
    }
}

/// When an inquiry that ended at `ended_at` is redacted under `days`.
pub fn redaction_due_at(ended_at: OffsetDateTime, days: RetentionDays) -> OffsetDateTime {
    ended_at + days.duration()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn periods_are_whole_days_within_bounds() {
        assert_eq!(RetentionDays::parse_optional(" "), Ok(None));
        assert_eq!(
            RetentionDays::parse_optional("30").unwrap().unwrap().get(),
            30
        );
        for bad in ["0", "-1", "1.5", "36501", "thirty", "99999999999"] {
            assert_eq!(
                RetentionDays::parse_optional(bad),
                Err(RetentionError),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_template_period_wins_over_the_organization_default() {
        let (t, o) = (RetentionDays::new(7).ok(), RetentionDays::new(365).ok());
        assert_eq!(
            effective(t, o),
            Some((t.unwrap(), RetentionSource::Template))
        );
        assert_eq!(
            effective(None, o),
            Some((o.unwrap(), RetentionSource::Organization))
        );
        assert_eq!(effective(None, None), None);
    }

    #[test]
    fn an_inquiry_ends_with_its_final_status_and_not_before() {
        let at = datetime!(2026-01-01 0:00 UTC);
        let decided = datetime!(2026-02-01 0:00 UTC);
        let times = EndTimes {
            completed_at: Some(at),
            decisioned_at: Some(decided),
            ..EndTimes::default()
        };
        assert_eq!(ended_at(InquiryStatus::Completed, times), Some(at));
        assert_eq!(ended_at(InquiryStatus::Approved, times), Some(decided));
        assert_eq!(ended_at(InquiryStatus::NeedsReview, times), None);
        assert_eq!(ended_at(InquiryStatus::Pending, times), None);
        assert_eq!(
            redaction_due_at(at, RetentionDays::new(31).unwrap()),
            decided
        );
    }

    proptest! {
        #[test]
        fn every_period_in_bounds_round_trips_through_a_form(days in 1u32..=MAX_DAYS) {
            let parsed = RetentionDays::parse_optional(&days.to_string()).unwrap().unwrap();
            prop_assert_eq!(parsed.get(), days);
        }
    }
}
