//! The rules that slow down password guessing on the dashboard's sign-in: how long an email
//! address may be, and how failures of one subject (an account, a client address, a trusted
//! browser) delay its next attempt.

use time::{Duration, OffsetDateTime};

/// The longest email address a user can have (the limit of a forward path in RFC 5321); a
/// longer one is refused before anything else looks at it.
pub const MAX_EMAIL_CHARS: usize = 254;

/// How failed attempts of one subject delay its next one: the first `free_failures` cost
/// nothing; from then on each failure doubles the wait, from `first_delay` up to `max_delay`,
/// counted from the last failure. A subject that has not failed for `forget_after` starts
/// afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub free_failures: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub forget_after: Duration,
}

/// An account that reaches this is refused to browsers it does not trust for a minute, then
/// two, four, eight, fifteen at most: a few guesses an hour, however many addresses send them.
pub const ACCOUNT: Backoff = Backoff {
    free_failures: 5,
    first_delay: Duration::minutes(1),
    max_delay: Duration::minutes(15),
    forget_after: Duration::hours(24),
};

/// One client address (an IPv6 /64) may fail more, for offices behind one address.
pub const CLIENT_ADDRESS: Backoff = Backoff {
    free_failures: 20,
    first_delay: Duration::minutes(1),
    max_delay: Duration::minutes(15),
    forget_after: Duration::hours(1),
};

/// A browser trusted for an account (it signed in to it before) has its own count, so that the
/// account's lock does not lock its owner out, and a stolen trust cookie buys few guesses.
pub const TRUSTED_BROWSER: Backoff = Backoff {
    free_failures: 5,
    first_delay: Duration::minutes(1),
    max_delay: Duration::minutes(15),
    forget_after: Duration::hours(1),
};

impl Backoff {
    /// Whether failures counted up to `last_failure` are forgotten at `now`.
    pub fn forgotten(&self, last_failure: OffsetDateTime, now: OffsetDateTime) -> bool {
        now - last_failure >= self.forget_after
    }

    /// The failures to count once one more happens at `now`.
    pub fn after_failure(
        &self,
        failures: u32,
        last_failure: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> u32 {
        match last_failure {
            Some(last) if !self.forgotten(last, now) => failures.saturating_add(1),
            _ => 1,
        }
    }

    /// The wait after the `failures`-th failure (zero while failures are free).
    pub fn delay(&self, failures: u32) -> Duration {
        let Some(beyond) = failures
            .checked_sub(self.free_failures)
            .filter(|_| failures > 0)
        else {
            return Duration::ZERO;
        };
        // 2^16 minutes is far beyond any sensible cap; stop doubling there.
        let factor = 1_i32 << beyond.min(16);
        self.first_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// How long the subject must still wait at `now`, or `None` when it may try.
    pub fn wait(
        &self,
        failures: u32,
        last_failure: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        let last = last_failure?;
        if self.forgotten(last, now) {
            return None;
        }
        let until = last + self.delay(failures);
        (until > now).then(|| until - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: OffsetDateTime = time::macros::datetime!(2026-01-01 12:00 UTC);

    #[test]
    fn failures_are_free_then_double_up_to_the_cap() {
        let delays: Vec<i64> = (0..=12).map(|n| ACCOUNT.delay(n).whole_minutes()).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 15, 15, 15, 15]);
        assert_eq!(ACCOUNT.delay(u32::MAX), ACCOUNT.max_delay);
    }

    #[test]
    fn the_wait_counts_from_the_last_failure_and_old_failures_are_forgotten() {
        assert_eq!(ACCOUNT.wait(4, Some(AT), AT), None);
        assert_eq!(ACCOUNT.wait(5, Some(AT), AT), Some(Duration::minutes(1)));
        assert_eq!(
            ACCOUNT.wait(6, Some(AT), AT + Duration::seconds(90)),
            Some(Duration::seconds(30))
        );
        assert_eq!(ACCOUNT.wait(6, Some(AT), AT + Duration::minutes(2)), None);
        assert_eq!(ACCOUNT.wait(6, None, AT), None);
        assert_eq!(
            ACCOUNT.after_failure(9, Some(AT), AT + Duration::hours(1)),
            10
        );
        assert_eq!(
            ACCOUNT.after_failure(9, Some(AT), AT + Duration::hours(24)),
            1
        );
        assert_eq!(ACCOUNT.after_failure(0, None, AT), 1);
        assert_eq!(ACCOUNT.wait(50, Some(AT), AT + Duration::hours(24)), None);
    }
}
