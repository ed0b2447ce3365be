use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
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
    /// The SQLite file does not exist, and the command may not create one.
    #[error("no database at {}", .0.display())]
    NoDatabase(std::path::PathBuf),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }

    /// True when the error is a unique-constraint violation (a lost race on an insert).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}
