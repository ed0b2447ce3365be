use sqlx::{error::DatabaseError, migrate::MigrateError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// Said in full by its own message (see [`describe`]), so it has no separate source: a
    /// chain of causes printed with `{:#}` says it once.
    #[error("database error: {}", describe(.0))]
    Database(sqlx::Error),
    /// The database at the (password-redacted) URL could not be reached when opening it.
    #[error("cannot connect to {url}: {}", describe(.cause))]
    Connect { url: String, cause: sqlx::Error },
    #[error("migration error: {0}")]
    Migration(#[from] MigrateError),
    #[error("encryption error: {0}")]
    Crypto(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url `{0}`: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    MasterKey(#[from] crate::MasterKeyError),
    /// SQLite: this process's writers queue for the database's single write lock in order, and
    /// this one did not get its turn within the database timeout.
    #[error("timed out waiting for a turn to write to the database")]
    WriteTurnTimedOut,
    /// The SQLite file or its directory could not be created.
    #[error("cannot create {}: {cause}", .path.display())]
    CannotCreate {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    /// The SQLite file does not exist, and the command may not create one.
    #[error("no database at {}", .0.display())]
    NoDatabase(std::path::PathBuf),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

/// What went wrong, for people: a database's own message with its SQLSTATE code, without the
/// location in the database server's source that PostgreSQL adds ("at line 948").
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => match e.code() {
            Some(code) => format!("{} (SQLSTATE {code})", e.message()),
            None => e.message().to_owned(),
        },
        sqlx::Error::PoolTimedOut => {
            "no connection to the database within the database timeout (it is unreachable, or \
             every connection is busy)"
                .to_owned()
        }
        other => other.to_string(),
    }
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }

    /// True when the error is a unique-constraint violation (a lost race on an insert).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when the database could not be reached or could not take the work in time (the
    /// server is down or unreachable, no connection within the pool's timeout, SQLite's write
    /// lock not obtained within the busy timeout): nothing was done, and the same request may
    /// succeed a moment later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) | Self::Connect { cause: e, .. } => unavailable(e),
            Self::WriteTurnTimedOut => true,
            Self::Migration(MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _)) => {
                unavailable(e)
            }
            _ => false,
        }
    }

    /// True when `error` or any error in its chain of causes is an unavailable [`StoreError`]
    /// (for errors that wrap a store error, such as an `anyhow::Error` with context).
    pub fn is_unavailable_cause(error: &(dyn std::error::Error + 'static)) -> bool {
        std::iter::successors(Some(error), |e| e.source()).any(|e| {
            e.downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_unavailable)
        })
    }
}

fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(e) => {
            if let Some(e) = e.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // The primary result code is the low byte of the extended one.
                let primary = e
                    .code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .map(|c| c & 0xff);
                matches!(primary, Some(SQLITE_BUSY | SQLITE_LOCKED))
            } else if let Some(e) = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                let code = e.code();
                code.starts_with("08") || POSTGRES_UNAVAILABLE.contains(&code)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// "database is locked", "database table is locked".
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// SQLSTATEs besides class 08 (connection exception) that mean "not now": the server is
/// shutting down, crashed or starting, or has no connection slot left; or this transaction lost
/// a serialization or deadlock race (40001, 40P01) and was rolled back, so running it again
/// a moment later can succeed.
const POSTGRES_UNAVAILABLE: &[&str] = &["57P01", "57P02", "57P03", "53300", "40001", "40P01"];

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn unavailable_means_the_database_could_not_take_the_work_now() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        for unavailable in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(reset),
        ] {
            assert!(StoreError::from(unavailable).is_unavailable());
        }
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::corrupt("bad row").is_unavailable());
    }
}
