//! Connect connections: the one-way pairing of a source organization with a destination
//! organization, in one environment, and its status machine.
//!
//! ```text
//! (created by the source) ──► pending ──(activate: destination)──► active
//! pending | active ──(deactivate: source or destination)──► inactive
//! inactive ──(reactivate: source)──► pending
//! ```
//! Connections are never deleted.

use crate::event::names;

string_enum! {
    /// Where a connection stands. Share tokens travel only over an `active` connection.
    pub enum ConnectionStatus ("connection status", all: slice) {
        Pending = "pending",
        Active = "active",
        Inactive = "inactive",
    }
}

impl ConnectionStatus {
    /// True while the connection blocks a second one between the same pair (in the same
    /// environment): `pending` or `active`.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }
}

/// Which end of a connection an organization is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The organization that created the connection and shares data over it.
    Source,
    /// The organization that receives data.
    Destination,
}

impl Side {
    /// Both sides, source first.
    pub const ALL: &'static [Self] = &[Self::Source, Self::Destination];

    /// The side as a noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Destination => "destination",
        }
    }

    /// How the connection looks from this side.
    pub fn direction(self) -> Direction {
        match self {
            Self::Source => Direction::Outbound,
            Self::Destination => Direction::Inbound,
        }
    }
}

string_enum! {
    /// A connection as one of its ends sees it: `outbound` for the source, `inbound` for the
    /// destination (an extension over Persona, which leaves the caller to compare ids).
    pub enum Direction ("direction", all: slice) {
        Inbound = "inbound",
        Outbound = "outbound",
    }
}

impl Direction {
    /// The side an organization holds when it sees a connection in this direction.
    pub fn side(self) -> Side {
        match self {
            Self::Outbound => Side::Source,
            Self::Inbound => Side::Destination,
        }
    }
}

/// Something that changes a connection's status (creation is not an action: it starts
/// `pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionAction {
    Activate,
    Deactivate,
    Reactivate,
}

impl ConnectionAction {
    /// Every action, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Activate, Self::Deactivate, Self::Reactivate];

    /// The action as a verb for messages ("cannot {verb} a connection …").
    pub fn verb(self) -> &'static str {
        match self {
            Self::Activate => "activate",
            Self::Deactivate => "deactivate",
            Self::Reactivate => "reactivate",
        }
    }

    /// The one side allowed to take this action, or `None` when either side may.
    pub fn only_side(self) -> Option<Side> {
        match self {
            Self::Activate => Some(Side::Destination),
            Self::Reactivate => Some(Side::Source),
            Self::Deactivate => None,
        }
    }

    /// Whether an organization at `side` may take this action.
    pub fn allowed_for(self, side: Side) -> bool {
        self.only_side().is_none_or(|only| only == side)
    }

    /// The event written (to both organizations) when this action succeeds.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Activate => names::CONNECTION_ACTIVATED,
            Self::Deactivate => names::CONNECTION_DEACTIVATED,
            Self::Reactivate => names::CONNECTION_REACTIVATED,
        }
    }
}

/// Why an action on a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The caller is at the wrong end of the connection, whatever its status (the API answers
    /// 403).
    #[error(
        "only the {} organization of a connection can {} it; yours is its {}",
        .action.only_side().map_or("either", Side::noun),
        .action.verb(),
        .side.noun()
    )]
    WrongSide {
        action: ConnectionAction,
        side: Side,
    },
    /// The status does not allow the action (the API answers 422).
    #[error("cannot {} a connection whose status is `{from}`", .action.verb())]
    WrongStatus {
        from: ConnectionStatus,
        action: ConnectionAction,
    },
}

/// The status a connection moves to when the organization at `side` applies `action` in
/// status `from`. The side is checked first: an action the caller can never take is refused as
/// such, not because of the status of the moment.
pub fn transition(
    from: ConnectionStatus,
    action: ConnectionAction,
    side: Side,
) -> Result<ConnectionStatus, TransitionError> {
    use ConnectionAction as A;
    use ConnectionStatus as S;
    if !action.allowed_for(side) {
        return Err(TransitionError::WrongSide { action, side });
    }
    match (from, action) {
        (S::Pending, A::Activate) => Ok(S::Active),
        (S::Pending | S::Active, A::Deactivate) => Ok(S::Inactive),
        (S::Inactive, A::Reactivate) => Ok(S::Pending),
        _ => Err(TransitionError::WrongStatus { from, action }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionAction as A;
    use ConnectionStatus as S;
    use proptest::prelude::*;

    /// The whole table from the design, written out independently of `transition`.
    const ALLOWED: &[(S, A, Side, S)] = &[
        (S::Pending, A::Activate, Side::Destination, S::Active),
        (S::Pending, A::Deactivate, Side::Source, S::Inactive),
        (S::Pending, A::Deactivate, Side::Destination, S::Inactive),
        (S::Active, A::Deactivate, Side::Source, S::Inactive),
        (S::Active, A::Deactivate, Side::Destination, S::Inactive),
        (S::Inactive, A::Reactivate, Side::Source, S::Pending),
    ];

    /// Actions and the sides that may never take them.
    const FORBIDDEN_SIDES: &[(A, Side)] = &[
        (A::Activate, Side::Source),
        (A::Reactivate, Side::Destination),
    ];

    fn expected(from: S, action: A, side: Side) -> Result<S, TransitionError> {
        if FORBIDDEN_SIDES.contains(&(action, side)) {
            return Err(TransitionError::WrongSide { action, side });
        }
        ALLOWED
            .iter()
            .find(|(f, a, s, _)| *f == from && *a == action && *s == side)
            .map(|(_, _, _, to)| *to)
            .ok_or(TransitionError::WrongStatus { from, action })
    }

    #[test]
    fn every_status_action_side_triple_matches_the_table() {
        let mut allowed = 0;
        for &from in S::ALL {
            for &action in A::ALL {
                for &side in Side::ALL {
                    let got = transition(from, action, side);
                    assert_eq!(
                        got,
                        expected(from, action, side),
                        "{from} {action:?} {side:?}"
                    );
                    allowed += usize::from(got.is_ok());
                }
            }
        }
        assert_eq!(allowed, ALLOWED.len());
    }

    #[test]
    fn the_wrong_side_is_refused_whatever_the_status() {
        for &from in S::ALL {
            assert_eq!(
                transition(from, A::Activate, Side::Source),
                Err(TransitionError::WrongSide {
                    action: A::Activate,
                    side: Side::Source
                })
            );
            assert_eq!(
                transition(from, A::Reactivate, Side::Destination),
                Err(TransitionError::WrongSide {
                    action: A::Reactivate,
                    side: Side::Destination
                })
            );
        }
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            transition(S::Pending, A::Activate, Side::Source)
                .unwrap_err()
                .to_string(),
            "only the destination organization of a connection can activate it; yours is its source"
        );
        assert_eq!(
            transition(S::Inactive, A::Reactivate, Side::Destination)
                .unwrap_err()
                .to_string(),
            "only the source organization of a connection can reactivate it; yours is its destination"
        );
        assert_eq!(
            transition(S::Inactive, A::Deactivate, Side::Destination)
                .unwrap_err()
                .to_string(),
            "cannot deactivate a connection whose status is `inactive`"
        );
        assert_eq!(
            transition(S::Active, A::Activate, Side::Destination)
                .unwrap_err()
                .to_string(),
            "cannot activate a connection whose status is `active`"
        );
        assert_eq!(
            transition(S::Pending, A::Reactivate, Side::Source)
                .unwrap_err()
                .to_string(),
            "cannot reactivate a connection whose status is `pending`"
        );
    }

    #[test]
    fn sides_directions_and_statuses_round_trip() {
        for &side in Side::ALL {
            assert_eq!(side.direction().side(), side);
        }
        assert_eq!(Side::Source.direction().as_str(), "outbound");
        assert_eq!(Side::Destination.direction().as_str(), "inbound");
        for &direction in Direction::ALL {
            assert_eq!(direction.as_str().parse::<Direction>(), Ok(direction));
        }
        for &status in S::ALL {
            assert_eq!(status.as_str().parse::<S>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!(
            "open".parse::<S>().unwrap_err().to_string(),
            "`open` is not a valid connection status (expected one of: pending, active, inactive)"
        );
        assert!(S::Pending.is_live() && S::Active.is_live() && !S::Inactive.is_live());
    }

    #[test]
    fn event_names_follow_the_actions() {
        assert_eq!(A::Activate.event_name(), "connect/connection.activated");
        assert_eq!(A::Deactivate.event_name(), "connect/connection.deactivated");
        assert_eq!(A::Reactivate.event_name(), "connect/connection.reactivated");
        assert_eq!(names::CONNECTION_CREATED, "connect/connection.created");
    }

    proptest! {
        #[test]
        fn any_action_sequence_stays_within_the_table(
            steps in proptest::collection::vec(
                (proptest::sample::select(A::ALL), proptest::sample::select(Side::ALL)),
                0..40,
            )
        ) {
            let mut status = S::Pending;
            for (action, side) in steps {
                let got = transition(status, action, side);
                prop_assert_eq!(got, expected(status, action, side));
                if let Ok(next) = got {
                    status = next;
                }
            }
        }
    }
}
