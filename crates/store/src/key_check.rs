//! Binding a store to its master key. The database keeps a check value of the key it is sealed
//! under (`master_key_check`), so a server started with another key, or without the key file
//! while sealed data exists, refuses to start instead of answering 500 on every read and sealing
//! new data under a key that the old data does not open.

use std::path::PathBuf;

use idshare_domain::time_format::to_unix_micros;
use time::OffsetDateTime;

use crate::{Crypto, MasterKey, MasterKeyError, Store, StoreError, Tx, db::on_conn};

/// Where a [`Store`]'s master key comes from.
#[derive(Debug)]
pub enum MasterKeySource {
    /// Given in the configuration.
    Value(MasterKey),
    /// Read from this file; created with a fresh key only when the database holds no sealed
    /// data and no check value yet (a first start).
    File(PathBuf),
    /// No key: for commands that seal and open nothing. No key file is read or created.
    NotNeeded,
}

/// The [`Crypto`] for `source`, checked against (or, on a first start, recorded in) the
/// database.
pub(crate) async fn bind(store: &Store, source: MasterKeySource) -> Result<Crypto, StoreError> {
    let key = match source {
        MasterKeySource::NotNeeded => return Ok(Crypto::without_key()),
        MasterKeySource::Value(key) => key,
        MasterKeySource::File(path) => match MasterKey::read_file(&path)? {
            Some(key) => key,
            None => return first_key(store, path).await,
        },
    };
    let crypto = Crypto::new(key);
    let mut tx = store.begin_write().await?;
    let matches = match stored_check_value(&mut tx).await? {
        Some(stored) => crypto.matches_check_value(&stored),
        // A database from before the check value, or a first start with a configured key: the
        // key must open what is already sealed before it is recorded.
        None => {
            opens_a_data_key(&mut tx, &crypto).await?
                && record_check_value(&mut tx, &crypto).await?
        }
    };
    if !matches {
        return Err(MasterKeyError::Mismatch.into());
    }
    tx.commit().await?;
    Ok(crypto)
}

/// No key file: creates one on a first start, and refuses when the database already depends
/// on a key.
async fn first_key(store: &Store, path: PathBuf) -> Result<Crypto, StoreError> {
    let mut tx = store.begin_write().await?;
    if stored_check_value(&mut tx).await?.is_some() || holds_sealed_data(&mut tx).await? {
        return Err(MasterKeyError::Missing {
            path: path.display().to_string(),
        }
        .into());
    }
    let crypto = Crypto::new(MasterKey::create_file(&path)?);
    let recorded = match record_check_value(&mut tx, &crypto).await {
        Ok(true) => tx.commit().await,
        // Another node recorded its own new key first (PostgreSQL).
        Ok(false) => Err(MasterKeyError::Mismatch.into()),
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        // Nothing is sealed under the new key: remove it, so that a retry does not find it.
        if let Err(remove) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %remove, "cannot remove an unused master key file");
        }
        return Err(e);
    }
    Ok(crypto)
}

async fn stored_check_value(tx: &mut Tx) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT check_value FROM master_key_check WHERE id = 1")
            .fetch_optional(conn)
            .await?
    }))
}

/// Records the key's check value unless one is there (a concurrent first start); whether the
/// stored value is this key's.
async fn record_check_value(tx: &mut Tx, crypto: &Crypto) -> Result<bool, StoreError> {
    let check_value = crypto
        .check_value()
        .ok_or_else(|| StoreError::Crypto("no master key to record".into()))?;
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO master_key_check (id, check_value, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(check_value)
        .bind(to_unix_micros(OffsetDateTime::now_utc()))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(stored_check_value(tx)
        .await?
        .is_some_and(|stored| crypto.matches_check_value(&stored)))
}

/// Whether anything is sealed under the master key: wrapped data keys, webhook and workflow
/// secrets, stored idempotent answers.
async fn holds_sealed_data(tx: &mut Tx) -> Result<bool, StoreError> {
    for query in [
        "SELECT owner_id FROM data_keys LIMIT 1",
        "SELECT id FROM webhooks LIMIT 1",
        "SELECT id FROM workflows LIMIT 1",
        "SELECT caller_id FROM idempotency_records WHERE response_sealed IS NOT NULL LIMIT 1",
    ] {
        let found: Option<String> = on_conn!(tx, |conn| {
            sqlx::query_scalar(query).fetch_optional(conn).await?
        });
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `crypto` unwraps a stored data key (true when there is none to try).
async fn opens_a_data_key(tx: &mut Tx, crypto: &Crypto) -> Result<bool, StoreError> {
    let row: Option<(String, Vec<u8>)> = on_conn!(tx, |conn| {
        sqlx::query_as("SELECT owner_id, wrapped_key FROM data_keys LIMIT 1")
            .fetch_optional(conn)
            .await?
    });
    Ok(row.is_none_or(|(owner, wrapped)| crypto.unwrap_data_key(&owner, &wrapped).is_ok()))
}
