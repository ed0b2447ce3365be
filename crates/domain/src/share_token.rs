//! Connect share tokens: one source inquiry offered to the destination of an active connection,
//! and the token's status machine.
//!
//! ```text
//! created ──(expire: source, or the TTL)──► expired
//! created ──(redeem: destination)──► pending ──► redeemed | failed
//! ```
//! A token is redeemed at most once; `expired`, `redeemed` and `failed` are final.

use std::num::NonZeroU32;

use time::{Duration, OffsetDateTime};

use crate::{connect::Side, event::names};

string_enum! {
    /// Where a share token stands.
    pub enum ShareTokenStatus ("share token status", all: slice) {
        Created = "created",
        Pending = "pending",
        Redeemed = "redeemed",
        Expired = "expired",
        Failed = "failed",
    }
}

/// Something that changes a share token's status (creation is not an action: it starts
/// `created`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareTokenAction {
    /// By the source (`POST …/expire`) or by the TTL job.
    Expire,
    /// By the destination: redemption accepted, the work runs asynchronously.
    Redeem,
    /// The redemption job finished.
    Finish,
    /// The redemption job could not proceed.
    Fail,
}

impl ShareTokenAction {
    /// Every action, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Expire, Self::Redeem, Self::Finish, Self::Fail];

    /// The action as a verb for messages ("cannot {verb} a share token …").
    pub fn verb(self) -> &'static str {
        match self {
            Self::Expire => "expire",
            Self::Redeem => "redeem",
            Self::Finish => "finish redeeming",
            Self::Fail => "fail",
        }
    }

    /// The one side allowed to take this action through the API, or `None` for the actions
    /// of the redemption job (no organization takes them).
    pub fn only_side(self) -> Option<Side> {
        match self {
            Self::Expire => Some(Side::Source),
            Self::Redeem => Some(Side::Destination),
            Self::Finish | Self::Fail => None,
        }
    }
}

/// Why an action on a share token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShareTokenTransitionError {
    /// The caller is at the wrong end of the token's connection (the API answers 403).
    #[error(
        "only the {} organization of a share token can {} it; yours is its {}",
        .action.only_side().map_or("either", Side::noun),
        .action.verb(),
        .side.noun()
    )]
    WrongSide {
        action: ShareTokenAction,
        side: Side,
    },
    /// The status does not allow the action (the API answers 422).
    #[error("cannot {} a share token whose status is `{from}`", .action.verb())]
    WrongStatus {
        from: ShareTokenStatus,
        action: ShareTokenAction,
    },
}

/// The status a share token moves to when `action` is applied in status `from` by the
/// organization at `side` (ignored for the job's actions). The side is checked first.
pub fn transition(
    from: ShareTokenStatus,
    action: ShareTokenAction,
    side: Side,
) -> Result<ShareTokenStatus, ShareTokenTransitionError> {
    use ShareTokenAction as A;
    use ShareTokenStatus as S;
    if action.only_side().is_some_and(|only| only != side) {
        return Err(ShareTokenTransitionError::WrongSide { action, side });
    }
    match (from, action) {
        (S::Created, A::Expire) => Ok(S::Expired),
        (S::Created, A::Redeem) => Ok(S::Pending),
        (S::Pending, A::Finish) => Ok(S::Redeemed),
        (S::Pending, A::Fail) => Ok(S::Failed),
        _ => Err(ShareTokenTransitionError::WrongStatus { from, action }),
    }
}

/// The lifetime of a token when `expires-in-seconds` is left out: 14 days.
pub const DEFAULT_TTL_SECONDS: i64 = 14 * 86_400;
/// The shortest lifetime allowed: 1 minute.
pub const MIN_TTL_SECONDS: i64 = 60;
/// The longest lifetime allowed: 21 days.
pub const MAX_TTL_SECONDS: i64 = 21 * 86_400;

/// `expires-in-seconds` outside the allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "`expires-in-seconds` must be between {MIN_TTL_SECONDS} (1 minute) and {MAX_TTL_SECONDS} \
     (21 days); got {0}. Leave it out for the default of {DEFAULT_TTL_SECONDS} (14 days)"
)]
pub struct TtlError(pub i64);

/// The lifetime of a new token: `expires-in-seconds` as sent, or the default.
pub fn ttl(expires_in_seconds: Option<i64>) -> Result<Duration, TtlError> {
    let seconds = expires_in_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&seconds) {
        Ok(Duration::seconds(seconds))
    } else {
        Err(TtlError(seconds))
    }
}

/// The event a new token writes to the organization at `side`.
pub fn created_event(side: Side) -> &'static str {
    match side {
        Side::Source => names::SHARE_TOKEN_OUTBOUND_CREATED,
        Side::Destination => names::SHARE_TOKEN_INBOUND_CREATED,
    }
}

/// The event an expired token writes to the organization at `side`.
pub fn expired_event(side: Side) -> &'static str {
    match side {
        Side::Source => names::SHARE_TOKEN_OUTBOUND_EXPIRED,
        Side::Destination => names::SHARE_TOKEN_INBOUND_EXPIRED,
    }
}

/// The event a redeemed token writes to the organization at `side`.
pub fn redeemed_event(side: Side) -> &'static str {
    match side {
        Side::Source => names::SHARE_TOKEN_OUTBOUND_REDEEMED,
        Side::Destination => names::SHARE_TOKEN_INBOUND_REDEEMED,
    }
}

/// The event a token whose redemption failed writes to the organization at `side`.
pub fn failed_event(side: Side) -> &'static str {
    match side {
        Side::Source => names::SHARE_TOKEN_OUTBOUND_FAILED,
        Side::Destination => names::SHARE_TOKEN_INBOUND_FAILED,
    }
}

/// How the destination reads what the source holds before redeeming. Each read is recorded in
/// the source's events (and the destination's), and the reads of one token are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceRead {
    /// `GET …/{id}?peek-source-data=true`: the names of the fields, the verification statuses.
    Peek,
    /// `POST …/{id}/preview`: what redemption under a template would do.
    Preview,
}

impl SourceRead {
    /// The event this read writes to the organization at `side`.
    pub fn event(self, side: Side) -> &'static str {
        match (self, side) {
            (Self::Peek, Side::Source) => names::SHARE_TOKEN_OUTBOUND_PEEKED,
            (Self::Peek, Side::Destination) => names::SHARE_TOKEN_INBOUND_PEEKED,
            (Self::Preview, Side::Source) => names::SHARE_TOKEN_OUTBOUND_PREVIEWED,
            (Self::Preview, Side::Destination) => names::SHARE_TOKEN_INBOUND_PREVIEWED,
        }
    }

    /// Whether `event` is the source's record of a read (what the limit counts).
    pub fn is_source_record(event: &str) -> bool {
        [Self::Peek, Self::Preview]
            .iter()
            .any(|read| read.event(Side::Source) == event)
    }

    /// The read as a verb for messages ("… can be {verb} only …").
    pub fn verb(self) -> &'static str {
        match self {
            Self::Peek => "peeked at",
            Self::Preview => "previewed",
        }
    }
}

/// The window over which the reads of one token are limited: a rolling hour.
pub const SOURCE_READ_WINDOW: Duration = Duration::hours(1);

/// Whether one more read of a token's source data may happen at `now`, given when the earlier
/// reads happened (any order, older ones included): at most `limit` within any
/// [`SOURCE_READ_WINDOW`]. Refused, it says how long until the oldest read that counts leaves
/// the window (at least one second).
pub fn source_read_allowed(
    earlier: &[OffsetDateTime],
    limit: NonZeroU32,
    now: OffsetDateTime,
) -> Result<(), Duration> {
    let since = now - SOURCE_READ_WINDOW;
    let mut within: Vec<OffsetDateTime> = earlier.iter().copied().filter(|t| *t > since).collect();
    let limit = usize::try_from(limit.get()).unwrap_or(usize::MAX);
    if within.len() < limit {
        return Ok(());
    }
    within.sort_unstable();
    // Once this one has left the window, `limit - 1` reads remain in it.
    let leaving = within[within.len() - limit];
    Err((leaving + SOURCE_READ_WINDOW - now).max(Duration::SECOND))
}

/// Why a redemption ended `failed` (`failure-reason`).
pub mod failure {
    /// The source inquiry was redacted (or is gone) before the job ran.
    pub const SOURCE_REDACTED: &str = "source-redacted";
    /// The connection was deactivated before the job ran.
    pub const CONNECTION_INACTIVE: &str = "connection-inactive";
    /// The destination inquiry was redacted, finished or submitted meanwhile.
    pub const DESTINATION_NOT_HYDRATABLE: &str = "destination-not-hydratable";
    /// The job kept failing (the database or a provider was unavailable) until its attempts
    /// ran out; the server's logs say why.
    pub const INTERNAL_ERROR: &str = "internal-error";
}

#[cfg(test)]
mod tests {
    use super::*;
    use ShareTokenAction as A;
    use ShareTokenStatus as S;

    /// The table of the design, written out independently of `transition`.
    const ALLOWED: &[(S, A, S)] = &[
        (S::Created, A::Expire, S::Expired),
        (S::Created, A::Redeem, S::Pending),
        (S::Pending, A::Finish, S::Redeemed),
        (S::Pending, A::Fail, S::Failed),
    ];

    #[test]
    fn every_status_action_pair_matches_the_table() {
        let mut allowed = 0;
        for &from in S::ALL {
            for &action in A::ALL {
                let side = action.only_side().unwrap_or(Side::Source);
                let got = transition(from, action, side);
                let expected = ALLOWED
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to)
                    .ok_or(ShareTokenTransitionError::WrongStatus { from, action });
                assert_eq!(got, expected, "{from} {action:?}");
                allowed += usize::from(got.is_ok());
            }
        }
        assert_eq!(allowed, ALLOWED.len());
    }

    #[test]
    fn final_statuses_accept_nothing() {
        for from in [S::Expired, S::Redeemed, S::Failed] {
            for &action in A::ALL {
                let side = action.only_side().unwrap_or(Side::Source);
                assert!(transition(from, action, side).is_err(), "{from} {action:?}");
            }
        }
    }

    #[test]
    fn the_wrong_side_is_refused_whatever_the_status() {
        for &from in S::ALL {
            assert_eq!(
                transition(from, A::Expire, Side::Destination),
                Err(ShareTokenTransitionError::WrongSide {
                    action: A::Expire,
                    side: Side::Destination
                })
            );
            assert!(matches!(
                transition(from, A::Redeem, Side::Source),
                Err(ShareTokenTransitionError::WrongSide { .. })
            ));
        }
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            transition(S::Created, A::Expire, Side::Destination)
                .unwrap_err()
                .to_string(),
            "only the source organization of a share token can expire it; yours is its destination"
        );
        assert_eq!(
            transition(S::Expired, A::Expire, Side::Source)
                .unwrap_err()
                .to_string(),
            "cannot expire a share token whose status is `expired`"
        );
    }

    #[test]
    fn ttl_defaults_to_14_days_within_1_minute_and_21_days() {
        assert_eq!(ttl(None), Ok(Duration::days(14)));
        assert_eq!(ttl(Some(60)), Ok(Duration::minutes(1)));
        assert_eq!(ttl(Some(21 * 86_400)), Ok(Duration::days(21)));
        for bad in [i64::MIN, -1, 0, 59, 21 * 86_400 + 1, i64::MAX] {
            assert_eq!(ttl(Some(bad)), Err(TtlError(bad)));
        }
        assert_eq!(
            ttl(Some(59)).unwrap_err().to_string(),
            "`expires-in-seconds` must be between 60 (1 minute) and 1814400 (21 days); got 59. \
             Leave it out for the default of 1209600 (14 days)"
        );
    }

    #[test]
    fn reads_are_limited_over_a_rolling_hour() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let limit = NonZeroU32::new(3).unwrap();
        let ago = |minutes: i64| now - Duration::minutes(minutes);
        assert_eq!(source_read_allowed(&[], limit, now), Ok(()));
        assert_eq!(
            source_read_allowed(&[ago(90), ago(61), ago(10), ago(5)], limit, now),
            Ok(()),
            "reads older than an hour do not count"
        );
        assert_eq!(
            source_read_allowed(&[ago(5), ago(50), ago(10)], limit, now),
            Err(Duration::minutes(10)),
            "the oldest of the three leaves the window in ten minutes"
        );
        assert_eq!(
            source_read_allowed(&[ago(1), ago(2), ago(3), ago(4), ago(40)], limit, now),
            Err(Duration::minutes(57)),
            "with more reads than the limit, the one that brings it below must leave"
        );
        assert_eq!(
            source_read_allowed(
                &[now - SOURCE_READ_WINDOW + Duration::milliseconds(1); 3],
                limit,
                now
            ),
            Err(Duration::SECOND),
            "at least a second"
        );
    }

    #[test]
    fn reads_are_named_per_side_and_counted_on_the_source() {
        assert_eq!(
            SourceRead::Peek.event(Side::Source),
            "connect/share-token.outbound-peeked"
        );
        assert_eq!(
            SourceRead::Preview.event(Side::Destination),
            "connect/share-token.inbound-previewed"
        );
        assert!(SourceRead::is_source_record(
            "connect/share-token.outbound-previewed"
        ));
        assert!(!SourceRead::is_source_record(
            "connect/share-token.inbound-previewed"
        ));
        assert!(!SourceRead::is_source_record(
            "connect/share-token.outbound-created"
        ));
    }

    #[test]
    fn statuses_round_trip_and_events_are_named_per_side() {
        for &status in S::ALL {
            assert_eq!(status.as_str().parse::<S>(), Ok(status));
        }
        assert!("used".parse::<S>().is_err());
        assert_eq!(
            created_event(Side::Source),
            "connect/share-token.outbound-created"
        );
        assert_eq!(
            created_event(Side::Destination),
            "connect/share-token.inbound-created"
        );
        assert_eq!(
            expired_event(Side::Source),
            "connect/share-token.outbound-expired"
        );
        assert_eq!(
            expired_event(Side::Destination),
            "connect/share-token.inbound-expired"
        );
    }
}
