//! What the store has done, counted by the store itself: every statement it sends and every
//! transaction it begins or commits. The benchmarks read them to report statements and write
//! transactions per operation; relaxed atomics keep the cost to a few uncontended additions.

use std::{
    ops::Sub,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use futures_core::{future::BoxFuture, stream::BoxStream};
use sqlx::{
    Database, Describe, Either, Error, Execute, Executor, Postgres, SqlStr, Sqlite, Transaction,
};

/// A snapshot of a store's counts since it was opened ([`crate::Store::counters`]). The
/// difference of two snapshots is what happened in between.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Statements sent to the database: in transactions (`BEGIN`, `COMMIT` and `ROLLBACK`
    /// not included) and outside them (`/readyz`'s ping, SQLite's checkpoint after a
    /// redaction). Migrations and PostgreSQL's `LISTEN` connection are not counted.
    pub statements: u64,
    /// Write transactions begun ([`crate::Store::begin_write`]); on SQLite each one takes the
    /// single write lock, committed or not.
    pub write_transactions: u64,
    /// Write transactions committed.
    pub write_commits: u64,
    /// Read transactions begun ([`crate::Store::begin_read`]).
    pub read_transactions: u64,
}

impl Sub for Counters {
    type Output = Counters;

    fn sub(self, earlier: Counters) -> Counters {
        Counters {
            statements: self.statements.saturating_sub(earlier.statements),
            write_transactions: self
                .write_transactions
                .saturating_sub(earlier.write_transactions),
            write_commits: self.write_commits.saturating_sub(earlier.write_commits),
            read_transactions: self
                .read_transactions
                .saturating_sub(earlier.read_transactions),
        }
    }
}

/// The live counts one store and its clones share.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    statements: AtomicU64,
    write_transactions: AtomicU64,
    write_commits: AtomicU64,
    read_transactions: AtomicU64,
}

impl Tally {
    pub(crate) fn statement(&self) {
        self.statements.fetch_add(1, Relaxed);
    }

    pub(crate) fn write_begun(&self) {
        self.write_transactions.fetch_add(1, Relaxed);
    }

    pub(crate) fn write_committed(&self) {
        self.write_commits.fetch_add(1, Relaxed);
    }

    pub(crate) fn read_begun(&self) {
        self.read_transactions.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        Counters {
            statements: self.statements.load(Relaxed),
            write_transactions: self.write_transactions.load(Relaxed),
            write_commits: self.write_commits.load(Relaxed),
            read_transactions: self.read_transactions.load(Relaxed),
        }
    }
}

/// A transaction that counts the statements run on it. `&mut CountedTx` is the executor the
/// store's queries run on (see `on_conn!`), so no statement can bypass the count.
#[derive(Debug)]
pub(crate) struct CountedTx<DB: Database> {
    pub(crate) tx: Transaction<'static, DB>,
    pub(crate) tally: Arc<Tally>,
}

/// `Executor` for `&mut CountedTx<$db>`: counts, then hands the statement to the transaction's
/// connection. Every other method of the trait goes through `fetch_many` or `fetch_optional`.
macro_rules! counted_executor {
    ($db:ty) => {
        impl<'c> Executor<'c> for &'c mut CountedTx<$db> {
            type Database = $db;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxStream<
                'e,
                Result<Either<<$db as Database>::QueryResult, <$db as Database>::Row>, Error>,
            >
            where
                'c: 'e,
                E: 'q + Execute<'q, $db>,
            {
                self.tally.statement();
                (&mut *self.tx).fetch_many(query)
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> BoxFuture<'e, Result<Option<<$db as Database>::Row>, Error>>
            where
                'c: 'e,
                E: 'q + Execute<'q, $db>,
            {
                self.tally.statement();
                (&mut *self.tx).fetch_optional(query)
            }

            fn prepare_with<'e>(
                self,
                sql: SqlStr,
                parameters: &'e [<$db as Database>::TypeInfo],
            ) -> BoxFuture<'e, Result<<$db as Database>::Statement, Error>>
            where
                'c: 'e,
            {
                (&mut *self.tx).prepare_with(sql, parameters)
            }

            fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<$db>, Error>>
            where
                'c: 'e,
            {
                (&mut *self.tx).describe(sql)
            }
        }
    };
}

counted_executor!(Sqlite);
counted_executor!(Postgres);
