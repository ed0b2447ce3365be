use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    Connection, PgPool, SqlitePool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    Scope, StoreError,
    counters::{CountedTx, Counters, Tally},
    crypto::{Crypto, create_private_dir, create_private_file},
    jobs::JobWakeups,
    key_check::{self, MasterKeyOrigin, MasterKeys},
    orgs::{EventReactions, ReactionCache},
};

/// Runs `$body` with `$conn` bound to the backend's transaction, as an executor that counts the
/// statements it runs ([`crate::counters`]). The body is compiled once per backend, so the same
/// SQL text and row types serve both.
macro_rules! on_conn {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match &mut $tx.conn {
            $crate::db::TxConn::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::TxConn::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database plus the keys that seal personal data in it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    crypto: Crypto,
    master_key_origin: MasterKeyOrigin,
    job_wakeups: JobWakeups,
    reactions: ReactionCache,
    /// SQLite only: write transactions take turns here, in order, before `BEGIN IMMEDIATE`.
    /// SQLite's own busy handler retries a locked database after sleeps that grow to 100 ms,
    /// so a writer that keeps missing the moment the lock is free can wait out the whole busy
    /// timeout while later writers get through; a fair semaphore makes them wait in line.
    write_turns: Option<Arc<Semaphore>>,
    /// How long a writer waits for its turn.
    wait: Duration,
    tally: Arc<Tally>,
}

/// A transaction on either backend. Dropping it without [`Tx::commit`] rolls back.
#[derive(Debug)]
pub struct Tx {
    pub(crate) conn: TxConn,
    /// The queues [`crate::jobs::enqueue`] added to: the commit wakes a worker of each.
    pub(crate) enqueued_to: Vec<String>,
    /// Set by [`crate::inquiries::redact`]: on SQLite the commit is followed by a checkpoint
    /// that truncates the write-ahead log, the last place the erased bytes were kept.
    pub(crate) erased_personal_data: bool,
    pub(crate) job_wakeups: JobWakeups,
    /// This process's cached [`crate::orgs::EventReactions`].
    pub(crate) reactions: ReactionCache,
    /// Set by [`crate::orgs::config_changed`]: this transaction changed a webhook or workflow,
    /// so it neither uses nor fills the cache of reactions.
    pub(crate) config_changed: bool,
    /// The reactions this transaction already looked up, per scope (see
    /// [`crate::orgs::event_reactions`]): a redemption's events alternate between its two
    /// organizations.
    pub(crate) reactions_seen: Vec<(Scope, Arc<EventReactions>)>,
    /// SQLite: this transaction's turn to write, given up when it ends.
    write_turn: Option<OwnedSemaphorePermit>,
    /// Begun by [`Store::begin_write`]: inside an idempotent request, its commit waits for the
    /// request's answer ([`crate::idempotency`]).
    writes: bool,
    pool: Pool,
}

/// Boxed so that `&mut **conn` on a variant (as `on_conn!` and direct uses write it) yields the
/// counting executor, never the bare connection.
#[derive(Debug)]
pub(crate) enum TxConn {
    Sqlite(Box<CountedTx<sqlx::Sqlite>>),
    Postgres(Box<CountedTx<sqlx::Postgres>>),
}

impl Tx {
    /// Commits. Inside a request with an `Idempotency-Key` ([`crate::idempotency::Held::run`])
    /// a write transaction is parked instead, and commits together with the request's stored
    /// answer when the request ends: a change is never committed without its answer.
    pub async fn commit(self) -> Result<(), StoreError> {
        crate::idempotency::commit_or_park(self).await
    }

    /// Commits at once, even inside an idempotent request: for a service that next calls
    /// another system (a slow gateway must not wait under the transaction). A retry after a
    /// crash during that call runs the request again instead of replaying its answer.
    /// When the transaction enqueued jobs, wakes this process's idle workers (other PostgreSQL
    /// nodes hear of them through `NOTIFY`, which PostgreSQL sends at the commit).
    pub async fn commit_now(self) -> Result<(), StoreError> {
        let tally = match self.conn {
            TxConn::Sqlite(counted) => {
                counted.tx.commit().await?;
                counted.tally
            }
            TxConn::Postgres(counted) => {
                counted.tx.commit().await?;
                counted.tally
            }
        };
        if self.writes {
            tally.write_committed();
        }
        drop(self.write_turn);
        for queue in &self.enqueued_to {
            self.job_wakeups.wake(queue);
        }
        if self.erased_personal_data
            && let Pool::Sqlite(pool) = &self.pool
        {
            tally.statement();
            truncate_wal(pool).await;
        }
        Ok(())
    }

    /// The clause that locks the rows a `SELECT` reads until the transaction ends, when `lock`:
    /// `FOR UPDATE` on PostgreSQL; nothing on SQLite, where a write transaction already holds
    /// the single write lock.
    pub fn lock_clause(&self, lock: bool) -> &'static str {
        if lock && self.backend() == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        }
    }

    /// Marks a point this transaction can go back to ([`Tx::rollback_to`]) without giving up
    /// what it wrote before: for several independent changes in one transaction, each of which
    /// must commit whole or not at all. `name` is a plain identifier chosen by the caller.
    pub async fn savepoint(&mut self, name: &str) -> Result<(), StoreError> {
        self.run_plain(format!("SAVEPOINT {name}")).await
    }

    /// Undoes everything written since [`Tx::savepoint`] `name` (after an error too: on
    /// PostgreSQL the transaction is usable again). What was written before it, and what is
    /// written after, commits with the transaction.
    pub async fn rollback_to(&mut self, name: &str) -> Result<(), StoreError> {
        self.run_plain(format!("ROLLBACK TO SAVEPOINT {name}"))
            .await
    }

    async fn run_plain(&mut self, sql: String) -> Result<(), StoreError> {
        debug_assert!(
            sql.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_')
        );
        let sql = sqlx::AssertSqlSafe(sql);
        on_conn!(self, |conn| {
            sqlx::raw_sql(sql).execute(conn).await?;
        });
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.conn {
            TxConn::Sqlite(_) => Backend::Sqlite,
            TxConn::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) fn writes(&self) -> bool {
        self.writes
    }
}

/// After a commit that erased personal data on SQLite. With `secure_delete` the erased bytes
/// are zeroed in the pages that held them, but the write-ahead log still holds those pages'
/// earlier versions: a checkpoint copies the current pages into the database file and then
/// truncates the log to nothing. It waits (up to the busy timeout) for readers of older
/// snapshots; the redaction has committed either way, so a failure is logged, not returned.
async fn truncate_wal(pool: &SqlitePool) {
    let checkpoint: Result<(i64, i64, i64), sqlx::Error> =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await;
    match checkpoint {
        Ok((0, _, _)) => {}
        Ok(_) => tracing::warn!(
            "readers kept the write-ahead log from being truncated after a redaction: the \
             erased data stays in the -wal file until a later redaction's checkpoint completes \
             or the server stops"
        ),
        Err(error) => tracing::warn!(
            %error,
            "cannot truncate the write-ahead log after a redaction: the erased data stays in \
             the -wal file until a later redaction's checkpoint completes or the server stops"
        ),
    }
}

/// The SQLite file of `options`: an existing one, or, when `create`, a new empty one readable
/// only by this user (0600) in a directory created 0700. SQLite gives the `-wal` and `-shm`
/// files the mode of the database file.
fn sqlite_file(options: &SqliteConnectOptions, create: bool) -> Result<(), StoreError> {
    let path = options.get_filename();
    if path.exists() {
        return Ok(());
    }
    if !create {
        return Err(StoreError::NoDatabase(path.to_owned()));
    }
    let cannot_create = |what: &Path, cause| StoreError::CannotCreate {
        path: what.to_owned(),
        cause,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(|e| cannot_create(parent, e))?;
    }
    match create_private_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(cannot_create(path, e)),
        _ => Ok(()),
    }
}

/// The pool for `url` (see [`Store::open`]), neither migrated nor checked. A failure to reach
/// the database names it (password redacted).
async fn connect(url: &str, create: bool, wait: Duration) -> Result<Pool, StoreError> {
    let cannot_connect = |cause| StoreError::Connect {
        url: redact_url(url),
        cause,
    };
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)?;
        sqlite_file(&options, create)?;
        let options = options
            // Deleted and overwritten content is zeroed, not left in free space.
            .pragma("secure_delete", "ON")
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(wait);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(wait)
            .connect_with(options)
            .await
            .map_err(cannot_connect)?;
        Ok(Pool::Sqlite(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options = PgConnectOptions::from_str(url)?;
        // One connection made directly first: a pool that cannot connect retries until its
        // timeout and then says only that it timed out, not why (refused, unknown host…).
        match tokio::time::timeout(wait, sqlx::PgConnection::connect_with(&options)).await {
            Ok(Ok(first)) => first.close().await.map_err(cannot_connect)?,
            Ok(Err(cause)) => return Err(cannot_connect(cause)),
            Err(_) => return Err(cannot_connect(sqlx::Error::PoolTimedOut)),
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(wait)
            .connect_with(options)
            .await
            .map_err(cannot_connect)?;
        Ok(Pool::Postgres(pool))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// A row of sqlx's bookkeeping: version, description, when it was applied, checksum.
type AppliedMigration = (i64, String, String, Vec<u8>);

/// A migration of this binary, and whether the database has it (`idshare migrate --status`).
#[derive(Debug, Clone)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    /// When it was applied, as the database recorded it; `None` while pending.
    pub applied_on: Option<String>,
    /// Applied, but from a file that differs from this binary's: the database was migrated by
    /// another build.
    pub checksum_differs: bool,
}

impl Store {
    /// The migrations of this binary for the database at `url` and which of them it has,
    /// without applying any; migrations the database has that this binary does not know come
    /// last (a newer build migrated it). No master key is needed.
    pub async fn migration_status(
        url: &str,
        wait: Duration,
    ) -> Result<Vec<MigrationState>, StoreError> {
        let pool = connect(url, false, wait).await?;
        let sql = "SELECT version, description, CAST(installed_on AS TEXT), checksum \
                   FROM _sqlx_migrations WHERE success ORDER BY version";
        let (migrator, applied): (&Migrator, Result<Vec<AppliedMigration>, _>) = match &pool {
            Pool::Sqlite(pool) => (
                &SQLITE_MIGRATIONS,
                sqlx::query_as(sql).fetch_all(pool).await,
            ),
            Pool::Postgres(pool) => (
                &POSTGRES_MIGRATIONS,
                sqlx::query_as(sql).fetch_all(pool).await,
            ),
        };
        let applied = match applied {
            Ok(rows) => rows,
            // A database never migrated has no bookkeeping table yet.
            Err(sqlx::Error::Database(e)) if e.message().contains("_sqlx_migrations") => vec![],
            Err(e) => return Err(e.into()),
        };
        let mut states: Vec<MigrationState> = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| {
                let row = applied.iter().find(|(version, ..)| *version == m.version);
                MigrationState {
                    version: m.version,
                    description: m.description.to_string(),
                    applied_on: row.map(|(_, _, on, _)| on.clone()),
                    checksum_differs: row.is_some_and(|(.., sum)| sum[..] != m.checksum[..]),
                }
            })
            .collect();
        for (version, description, on, _) in applied {
            if !states.iter().any(|s| s.version == version) {
                states.push(MigrationState {
                    version,
                    description,
                    applied_on: Some(on),
                    checksum_differs: false,
                });
            }
        }
        match pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
        Ok(states)
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`), runs the embedded migrations, and
    /// binds the master keys of `keys`, checked against the database (see
    /// [`crate::MasterKeySource`]). A missing SQLite file is created only when `create` is set, and
    /// is an error ([`StoreError::NoDatabase`]) otherwise. `wait` bounds how long any use of the
    /// database waits for it before failing with an [unavailable](StoreError::is_unavailable)
    /// error: for a pooled connection (connecting included), and on SQLite for the write lock
    /// (the busy timeout).
    pub async fn open(
        url: &str,
        create: bool,
        keys: impl Into<MasterKeys>,
        wait: Duration,
    ) -> Result<Self, StoreError> {
        let pool = connect(url, create, wait).await?;
        let write_turns = matches!(pool, Pool::Sqlite(_)).then(|| Arc::new(Semaphore::new(1)));
        let mut store = Self {
            pool,
            crypto: Crypto::without_key(),
            master_key_origin: MasterKeyOrigin::None,
            job_wakeups: JobWakeups::default(),
            reactions: ReactionCache::default(),
            write_turns,
            wait,
            tally: Arc::default(),
        };
        store.migrate().await?;
        (store.crypto, store.master_key_origin) = key_check::bind(&store, keys.into()).await?;
        Ok(store)
    }

    /// The SQLite URL of the embedded default database inside `data_dir`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("idshare.db").display())
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The connection pool's use now, from the pool's own counters (no query).
    pub fn pool_usage(&self) -> crate::stats::PoolUsage {
        let (open, idle, max) = match &self.pool {
            Pool::Sqlite(pool) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
            Pool::Postgres(pool) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
        };
        crate::stats::PoolUsage {
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max,
        }
    }

    pub(crate) fn pg_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    pub fn crypto(&self) -> &Crypto {
        &self.crypto
    }

    /// Where the current master key came from.
    pub fn master_key_origin(&self) -> &MasterKeyOrigin {
        &self.master_key_origin
    }

    /// Woken after a commit that enqueued jobs, per queue: idle workers wait on it (besides
    /// polling).
    pub fn job_wakeups(&self) -> &JobWakeups {
        &self.job_wakeups
    }

    /// What this store (and its clones) has done since it was opened: statements and
    /// transactions, counted as they are sent.
    pub fn counters(&self) -> Counters {
        self.tally.snapshot()
    }

    fn tx(&self, conn: TxConn, writes: bool, write_turn: Option<OwnedSemaphorePermit>) -> Tx {
        if writes {
            self.tally.write_begun();
        } else {
            self.tally.read_begun();
        }
        Tx {
            conn,
            enqueued_to: Vec::new(),
            erased_personal_data: false,
            job_wakeups: self.job_wakeups.clone(),
            reactions: self.reactions.clone(),
            config_changed: false,
            reactions_seen: Vec::new(),
            write_turn,
            writes,
            pool: self.pool.clone(),
        }
    }

    /// SQLite: waits, in line behind this process's other writers, for the turn to write
    /// (at most the database timeout; then the database counts as unavailable).
    async fn write_turn(&self) -> Result<Option<OwnedSemaphorePermit>, StoreError> {
        let Some(turns) = &self.write_turns else {
            return Ok(None);
        };
        match tokio::time::timeout(self.wait, turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(StoreError::WriteTurnTimedOut),
        }
    }

    /// Begins a transaction that will write. On SQLite it waits for its turn among this
    /// process's writers (first come, first served), then takes the write lock up front
    /// (`BEGIN IMMEDIATE`, which waits on `busy_timeout` only for writers of other processes),
    /// so it never fails with "database is locked" upgrading from a read. Inside an idempotent
    /// request, a transaction the request parked commits first (on SQLite it holds the write
    /// lock this one would wait for).
    pub async fn begin_write(&self) -> Result<Tx, StoreError> {
        crate::idempotency::commit_parked().await?;
        self.begin_write_now().await
    }

    /// [`Store::begin_write`] without looking for a transaction the current request parked.
    pub(crate) async fn begin_write_now(&self) -> Result<Tx, StoreError> {
        let write_turn = self.write_turn().await?;
        Ok(self.tx(
            match &self.pool {
                Pool::Sqlite(pool) => {
                    TxConn::Sqlite(self.counted(pool.begin_with("BEGIN IMMEDIATE").await?))
                }
                Pool::Postgres(pool) => TxConn::Postgres(self.counted(pool.begin().await?)),
            },
            true,
            write_turn,
        ))
    }

    /// Begins a read-only unit of work (a consistent snapshot; never blocks writers on SQLite).
    /// Inside an idempotent request, a transaction the request parked commits first, so that
    /// the read sees what the request wrote.
    pub async fn begin_read(&self) -> Result<Tx, StoreError> {
        crate::idempotency::commit_parked().await?;
        Ok(self.tx(
            match &self.pool {
                Pool::Sqlite(pool) => TxConn::Sqlite(self.counted(pool.begin().await?)),
                Pool::Postgres(pool) => TxConn::Postgres(self.counted(pool.begin().await?)),
            },
            false,
            None,
        ))
    }

    fn counted<DB: sqlx::Database>(
        &self,
        tx: sqlx::Transaction<'static, DB>,
    ) -> Box<CountedTx<DB>> {
        Box::new(CountedTx {
            tx,
            tally: self.tally.clone(),
        })
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.tally.statement();
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await?.rows_affected(),
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await?.rows_affected(),
        };
        Ok(())
    }

    /// Whether [`Store::close`] was called: nothing can use the store any more, so its
    /// background users (workers, the notification relay) stop instead of retrying.
    pub fn is_closed(&self) -> bool {
        match &self.pool {
            Pool::Sqlite(pool) => pool.is_closed(),
            Pool::Postgres(pool) => pool.is_closed(),
        }
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            let password = if userinfo.contains(':') { ":***" } else { "" };
            format!("{}://{user}{password}{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/idshare"),
            "postgres://app:***@db:5432/idshare"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(
            redact_url("postgres://app@db/idshare"),
            "postgres://app@db/idshare",
            "no password, nothing hidden"
        );
    }
}
