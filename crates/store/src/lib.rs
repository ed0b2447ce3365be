//! Persistence for idshare.
//!
//! One [`Store`] serves both SQLite (the embedded default) and PostgreSQL (production). Queries
//! are written once in the SQL both dialects share (`$n` placeholders, BIGINT microsecond
//! timestamps, BLOB/BYTEA bytes, TEXT JSON) and dispatched to the typed sqlx driver of the
//! backend in use by the `on_conn!` macro; the few statements that must differ branch explicitly.
//! Every tenant-scoped function takes a [`Scope`], so no query can forget the tenant.

mod counters;
mod crypto;
mod db;
mod error;
mod key_check;

pub mod api_keys;
pub mod audit;
pub mod checks;
pub mod confirmations;
pub mod connections;
pub mod dashboard_sessions;
pub mod documents;
pub mod events;
pub mod files;
pub mod idempotency;
pub mod inquiries;
pub mod inquiry_search;
pub mod jobs;
pub mod key_rotation;
pub mod lists;
pub mod orgs;
pub mod retention;
pub mod sessions;
pub mod set_password_links;
pub mod share_tokens;
pub mod stats;
pub mod templates;
pub mod users;
pub mod webhooks;
pub mod workflows;

pub use counters::Counters;
pub use crypto::{
    Crypto, DataKey, MasterKey, MasterKeyError, MasterKeyId, WrappedDataKey, random_secret,
};
pub use db::{Backend, MigrationState, Store, Tx};
pub use error::StoreError;
pub use key_check::{MasterKeyOrigin, MasterKeySource, MasterKeys};

use idshare_domain::{environment::Environment, id::OrgId};

/// The tenant every scoped query is confined to: one organization in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub org_id: OrgId,
    pub environment: Environment,
}

impl Scope {
    pub fn new(org_id: OrgId, environment: Environment) -> Self {
        Self {
            org_id,
            environment,
        }
    }

    /// The scope of a row's `org_id` and `environment` columns.
    pub(crate) fn of_row(org_id: &str, environment: &str) -> Result<Self, StoreError> {
        Ok(Self::new(
            OrgId::parse(org_id).map_err(StoreError::corrupt)?,
            environment.parse().map_err(StoreError::corrupt)?,
        ))
    }

    /// Rows of `(org_id, environment, id)`, as scopes and the ids parsed by `parse`.
    pub(crate) fn with_ids<I, E: std::fmt::Display>(
        rows: Vec<(String, String, String)>,
        parse: impl Fn(&str) -> Result<I, E>,
    ) -> Result<Vec<(Self, I)>, StoreError> {
        rows.into_iter()
            .map(|(org, environment, id)| {
                Ok((
                    Self::of_row(&org, &environment)?,
                    parse(&id).map_err(StoreError::corrupt)?,
                ))
            })
            .collect()
    }
}

/// One page of a newest-first list, plus whether more rows lie beyond each end.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_newer: bool,
    pub has_older: bool,
}

/// A cursor position in a newest-first list: rows are ordered by `(created_at, id)` descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor<'a> {
    /// The first (newest) page.
    Start,
    /// Rows older than the given object.
    After(&'a str),
    /// Rows newer than the given object.
    Before(&'a str),
}

/// The `VALUES` list of a multi-row insert of `rows` rows of `columns` values each:
/// `($1, $2), ($3, $4)`.
pub(crate) fn values_list(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", row_placeholders(row, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The placeholders of row `row` (from 0) of a [`values_list`], without the parentheses.
pub(crate) fn row_placeholders(row: usize, columns: usize) -> String {
    (1..=columns)
        .map(|column| format!("${}", row * columns + column))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_lists_number_their_placeholders_row_by_row() {
        assert_eq!(super::values_list(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::values_list(1, 1), "($1)");
    }
}
