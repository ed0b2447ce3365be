//! What can go wrong in a use case, in the use case's own terms: no HTTP here. The API, the
//! dashboard and the hosted flow each turn a [`ServiceError`] into their answer; the job runner
//! asks it whether trying again can help ([`ServiceError::is_retryable`]).

use idshare_store::StoreError;
use time::OffsetDateTime;

/// What "not found" says: the same for an object that does not exist and for one of another
/// organization or environment, so that the two cannot be told apart.
pub const NOT_FOUND_DETAILS: &str =
    "No object with this id exists in this organization and environment.";

/// One problem with a use case's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A short summary, the same for every problem of its kind ("Invalid field").
    pub title: &'static str,
    /// A sentence for the person who gave the input.
    pub details: String,
    /// Which input it concerns: a name, or a path below the use case's input (`connection-id`,
    /// `fields/birthdate`, `definition/steps/0/when`); `""` is the input as a whole.
    pub input: Option<String>,
}

impl Problem {
    pub fn new(title: &'static str, details: impl Into<String>) -> Self {
        Self {
            title,
            details: details.into(),
            input: None,
        }
    }

    pub fn at(mut self, input: impl Into<String>) -> Self {
        self.input = Some(input.into());
        self
    }
}

/// One sentence the caller is told, with the input it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    pub details: &'a str,
    pub input: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such object, or one the caller may not see (never told apart).
    #[error("{NOT_FOUND_DETAILS}")]
    NotFound { input: Option<String> },
    /// The caller may not do this (e.g. from the wrong end of a connection).
    #[error("{details}")]
    Forbidden {
        details: String,
        input: Option<String>,
    },
    /// The input cannot be read as asked: missing, of the wrong shape, or parts that exclude
    /// each other.
    #[error("{details}")]
    Malformed {
        details: String,
        input: Option<String>,
    },
    /// The input is understood but breaks a rule; every problem found.
    #[error("{}", joined(.0))]
    Invalid(Vec<Problem>),
    /// The object's state does not allow it (already done, in progress, a duplicate).
    #[error("{details}")]
    Conflict {
        title: &'static str,
        details: String,
    },
    /// What was asked for existed but is no longer available (an expired link).
    #[error("{details}")]
    Gone {
        title: &'static str,
        details: String,
    },
    /// The caller did this too often: it may again once `retry_after_seconds` have passed.
    #[error("{details}")]
    RateLimited {
        details: String,
        retry_after_seconds: u64,
    },
    /// The database cannot be reached or is too busy to answer: trying again later can help.
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    /// Someone outside that the use case needs (an identity provider, the gateway that sends
    /// codes) did not answer or refused: trying again later can help.
    #[error("{details}")]
    Upstream {
        title: &'static str,
        details: String,
        #[source]
        cause: anyhow::Error,
    },
    /// The work is not finished and goes on at `at`, on a schedule of its own (a webhook
    /// delivery's next attempt, a workflow step's).
    #[error("to be tried again")]
    Later {
        at: OffsetDateTime,
        #[source]
        cause: anyhow::Error,
    },
    /// Anything unexpected (corrupt data, a broken invariant): trying again cannot help.
    #[error(transparent)]
    Internal(anyhow::Error),
}

fn joined(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.details.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl ServiceError {
    pub fn not_found() -> Self {
        Self::NotFound { input: None }
    }

    pub fn forbidden(details: impl Into<String>) -> Self {
        Self::Forbidden {
            details: details.into(),
            input: None,
        }
    }

    pub fn malformed(details: impl Into<String>) -> Self {
        Self::Malformed {
            details: details.into(),
            input: None,
        }
    }

    /// One rule broken.
    pub fn invalid(title: &'static str, details: impl Into<String>) -> Self {
        Self::Invalid(vec![Problem::new(title, details)])
    }

    pub fn conflict(title: &'static str, details: impl Into<String>) -> Self {
        Self::Conflict {
            title,
            details: details.into(),
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// Says which input the error concerns (the first problem's, for [`Self::Invalid`]).
    pub fn at(mut self, input: impl Into<String>) -> Self {
        match &mut self {
            Self::NotFound { input: at }
            | Self::Forbidden { input: at, .. }
            | Self::Malformed { input: at, .. } => *at = Some(input.into()),
            Self::Invalid(problems) => {
                if let Some(first) = problems.first_mut() {
                    first.input = Some(input.into());
                }
            }
            _ => {}
        }
        self
    }

    /// Whether the same call may succeed later: the database or someone outside was
    /// unavailable, or the work has a schedule of its own. Everything else fails again the same
    /// way.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Upstream { .. } | Self::Later { .. }
        )
    }

    /// Whether the service could not do its work, as opposed to refusing the request: the
    /// caller can change nothing, and the cause is for the log.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Upstream { .. } | Self::Later { .. } | Self::Internal(_)
        )
    }

    /// What the caller is told, one sentence per problem; nothing for a failure.
    pub fn reasons(&self) -> Vec<Reason<'_>> {
        fn one<'a>(details: &'a str, input: &'a Option<String>) -> Reason<'a> {
            Reason {
                details,
                input: input.as_deref(),
            }
        }
        match self {
            Self::NotFound { input } => vec![one(NOT_FOUND_DETAILS, input)],
            Self::Forbidden { details, input } | Self::Malformed { details, input } => {
                vec![one(details, input)]
            }
            Self::Invalid(problems) => problems.iter().map(|p| one(&p.details, &p.input)).collect(),
            Self::Conflict { details, .. }
            | Self::Gone { details, .. }
            | Self::RateLimited { details, .. }
            | Self::Upstream { details, .. } => vec![one(details, &None)],
            Self::Unavailable(_) | Self::Later { .. } | Self::Internal(_) => vec![],
        }
    }
}

/// A store error keeps its cause: the database being unavailable is worth retrying, anything
/// else is unexpected.
impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable(e)
        } else {
            Self::Internal(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn the_cause_chain_is_kept() {
        let inner = std::io::Error::other("disk on fire");
        let e = ServiceError::internal(anyhow::Error::new(inner).context("reading the key"));
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "reading the key");
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("disk on fire")
        );
        assert_eq!(
            format!("{:#}", anyhow::Error::from(e)),
            "reading the key: disk on fire"
        );
    }

    #[test]
    fn an_unavailable_database_is_retryable() {
        let busy = ServiceError::from(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert!(matches!(busy, ServiceError::Unavailable(_)));
        assert!(busy.is_retryable());
        let corrupt = ServiceError::from(StoreError::Corrupt("bad row".into()));
        assert!(matches!(corrupt, ServiceError::Internal(_)));
        assert!(!corrupt.is_retryable());
        assert_eq!(corrupt.to_string(), "stored data is corrupt: bad row");
    }

    #[test]
    fn inputs_and_reasons() {
        let e = ServiceError::invalid("Invalid field", "`a` is wrong.").at("fields/a");
        assert_eq!(
            e.reasons(),
            vec![Reason {
                details: "`a` is wrong.",
                input: Some("fields/a")
            }]
        );
        assert_eq!(
            ServiceError::not_found().at("connection-id").reasons()[0].input,
            Some("connection-id")
        );
        assert!(
            ServiceError::internal(anyhow::anyhow!("x"))
                .reasons()
                .is_empty()
        );
    }
}
