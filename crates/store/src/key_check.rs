//! Binding a store to its master keys. The database keeps a check value of the key it is sealed
//! under (`master_key_check`) and the id of the key that wraps each data key
//! (`data_keys.key_id`), so a server started with another key, or without the key file while
//! sealed data exists, or without a key some data keys are still wrapped under, refuses to start
//! instead of answering 500 on every read and sealing new data under a key that the old data
//! does not open.

use std::path::PathBuf;

use idshare_domain::time_format::to_unix_micros;
use time::OffsetDateTime;

use crate::{Crypto, MasterKey, MasterKeyError, MasterKeyId, Store, StoreError, Tx, db::on_conn};

/// Where a [`Store`]'s current master key comes from.
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

/// The current master key and the previous ones, which still open what they sealed (during and
/// after a rotation) but seal nothing new.
#[derive(Debug)]
pub struct MasterKeys {
    pub current: MasterKeySource,
    pub previous: Vec<MasterKey>,
}

impl From<MasterKeySource> for MasterKeys {
    fn from(current: MasterKeySource) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }
}

/// Where the bound current key came from, for the startup line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeyOrigin {
    /// Given in the configuration.
    Configured,
    /// Read from this file.
    File(PathBuf),
    /// Generated into this file on this first start.
    Created(PathBuf),
    /// No key ([`MasterKeySource::NotNeeded`]).
    None,
}

/// The [`Crypto`] for `keys`, checked against (or, on a first start, recorded in) the database.
pub(crate) async fn bind(
    store: &Store,
    keys: MasterKeys,
) -> Result<(Crypto, MasterKeyOrigin), StoreError> {
    let (key, origin) = match keys.current {
        MasterKeySource::NotNeeded => return Ok((Crypto::without_key(), MasterKeyOrigin::None)),
        MasterKeySource::Value(key) => (key, MasterKeyOrigin::Configured),
        MasterKeySource::File(path) => match MasterKey::read_file(&path)? {
            Some(key) => (key, MasterKeyOrigin::File(path)),
            None => {
                let crypto = first_key(store, &path, keys.previous).await?;
                return Ok((crypto, MasterKeyOrigin::Created(path)));
            }
        },
    };
    let crypto = Crypto::new(key).with_previous(keys.previous);
    let mut tx = store.begin_write().await?;
    let database_key = match stored_check(&mut tx).await? {
        Some((stored, recorded_id)) => match crypto.key_of_check_value(&stored) {
            Some(id) => id.clone(),
            None => {
                let found = match recorded_id {
                    Some(id) => id.to_string(),
                    None => describe(&data_key_ids(&mut tx).await?, "another key"),
                };
                return Err(mismatch(found, &crypto));
            }
        },
        // A database from before the check value, or a first start with a configured key: a
        // configured key must open what is already sealed before it is recorded.
        None => {
            let id = key_of_a_data_key(&mut tx, &crypto)
                .await?
                .ok_or_else(|| mismatch("another key".to_owned(), &crypto))?;
            if !record_check_value(&mut tx, &crypto, &id).await? {
                return Err(mismatch("another key".to_owned(), &crypto));
            }
            id
        }
    };
    name_legacy_data_keys(&mut tx, &database_key).await?;
    let found = data_key_ids(&mut tx).await?;
    if found.iter().any(|id| !crypto.holds(id)) {
        return Err(mismatch(describe(&found, "no key"), &crypto));
    }
    tx.commit().await?;
    secrets_open(store, &crypto).await?;
    Ok((crypto, origin))
}

/// Refuses keys that do not open every webhook and workflow secret (sealed directly under a
/// master key, so no key id names their key): a server started with only an old key after a
/// server with a new one created a webhook. Read outside the write transaction, opened off the
/// async threads.
async fn secrets_open(store: &Store, crypto: &Crypto) -> Result<(), StoreError> {
    type Context = fn(&str) -> String;
    let mut sealed = Vec::new();
    let mut tx = store.begin_read().await?;
    for (sql, context, what) in [
        (
            "SELECT id, secret FROM webhooks",
            crate::webhooks::secret_context as Context,
            "the secret of webhook",
        ),
        (
            "SELECT id, previous_secret FROM webhooks WHERE previous_secret IS NOT NULL",
            crate::webhooks::secret_context,
            "the previous secret of webhook",
        ),
        (
            "SELECT id, secret FROM workflows",
            crate::workflows::secret_context,
            "the secret of workflow",
        ),
    ] {
        let rows: Vec<(String, Vec<u8>)> =
            on_conn!(tx, |conn| sqlx::query_as(sql).fetch_all(conn).await?);
        sealed.extend(
            rows.into_iter()
                .map(|(id, bytes)| (context(&id), format!("{what} {id}"), bytes)),
        );
    }
    drop(tx);
    let crypto = crypto.clone();
    tokio::task::spawn_blocking(move || {
        match sealed
            .iter()
            .find(|(context, _, bytes)| crypto.open_system(bytes, context).is_err())
        {
            Some((_, what, _)) => Err(MasterKeyError::SecretUnopened {
                what: what.clone(),
                configured: crypto.describe_keys(),
            }
            .into()),
            None => Ok(()),
        }
    })
    .await
    .map_err(|e| StoreError::Crypto(format!("checking the sealed secrets stopped: {e}")))?
}

fn mismatch(found: String, crypto: &Crypto) -> StoreError {
    MasterKeyError::Mismatch {
        found,
        configured: crypto.describe_keys(),
    }
    .into()
}

fn describe(ids: &[MasterKeyId], none: &str) -> String {
    if ids.is_empty() {
        return none.to_owned();
    }
    ids.iter()
        .map(MasterKeyId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// No key file: creates one on a first start, and refuses when the database already depends
/// on a key.
async fn first_key(
    store: &Store,
    path: &std::path::Path,
    previous: Vec<MasterKey>,
) -> Result<Crypto, StoreError> {
    let mut tx = store.begin_write().await?;
    if stored_check(&mut tx).await?.is_some() || holds_sealed_data(&mut tx).await? {
        return Err(MasterKeyError::Missing {
            path: path.display().to_string(),
        }
        .into());
    }
    let crypto = Crypto::new(MasterKey::create_file(path)?).with_previous(previous);
    let id = crypto
        .current_key_id()
        .cloned()
        .ok_or_else(|| StoreError::Crypto("no master key to record".into()))?;
    let recorded = match record_check_value(&mut tx, &crypto, &id).await {
        Ok(true) => tx.commit().await,
        // Another node recorded its own new key first (PostgreSQL).
        Ok(false) => Err(mismatch("another key".to_owned(), &crypto)),
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        // Nothing is sealed under the new key: remove it, so that a retry does not find it.
        if let Err(remove) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %remove, "cannot remove an unused master key file");
        }
        return Err(e);
    }
    Ok(crypto)
}

/// The stored check value and the id of its key (`None` when recorded before key ids).
pub(crate) async fn stored_check(
    tx: &mut Tx,
) -> Result<Option<(Vec<u8>, Option<MasterKeyId>)>, StoreError> {
    let row: Option<(Vec<u8>, Option<String>)> = on_conn!(tx, |conn| {
        sqlx::query_as("SELECT check_value, key_id FROM master_key_check WHERE id = 1")
            .fetch_optional(conn)
            .await?
    });
    Ok(row.map(|(value, id)| (value, id.map(MasterKeyId::from_stored))))
}

/// Records the check value of the key `id` unless one is there (a concurrent first start);
/// whether the stored value is this key's.
async fn record_check_value(
    tx: &mut Tx,
    crypto: &Crypto,
    id: &MasterKeyId,
) -> Result<bool, StoreError> {
    let check_value = crypto
        .check_value_for(id)
        .ok_or_else(|| StoreError::Crypto("no master key to record".into()))?;
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO master_key_check (id, check_value, key_id, created_at) \
             VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(check_value)
        .bind(id.as_str())
        .bind(to_unix_micros(OffsetDateTime::now_utc()))
        .execute(conn)
        .await?
        .rows_affected()
    });
    Ok(stored_check(tx)
        .await?
        .is_some_and(|(stored, _)| crypto.key_of_check_value(&stored) == Some(id)))
}

/// Names the key of data keys written before key ids, and of a check value recorded before
/// them: until a rotation, everything was sealed under the check value's key.
async fn name_legacy_data_keys(tx: &mut Tx, database_key: &MasterKeyId) -> Result<(), StoreError> {
    on_conn!(tx, |conn| {
        sqlx::query("UPDATE data_keys SET key_id = $1 WHERE key_id IS NULL")
            .bind(database_key.as_str())
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE master_key_check SET key_id = $1 WHERE id = 1 AND key_id IS NULL")
            .bind(database_key.as_str())
            .execute(&mut *conn)
            .await?;
    });
    Ok(())
}

/// The distinct key ids of the data keys, each found through the index (a few lookups, however
/// many data keys there are).
pub(crate) async fn data_key_ids(tx: &mut Tx) -> Result<Vec<MasterKeyId>, StoreError> {
    let ids: Vec<String> = on_conn!(tx, |conn| {
        sqlx::query_scalar(
            "WITH RECURSIVE ids (key_id) AS ( \
                 SELECT MIN(key_id) FROM data_keys \
                 UNION ALL \
                 SELECT (SELECT MIN(key_id) FROM data_keys WHERE key_id > ids.key_id) \
                 FROM ids WHERE ids.key_id IS NOT NULL \
             ) SELECT key_id FROM ids WHERE key_id IS NOT NULL",
        )
        .fetch_all(conn)
        .await?
    });
    Ok(ids.into_iter().map(MasterKeyId::from_stored).collect())
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

/// The configured key that unwraps a stored data key (the current key when there is none to
/// try); `None` when no configured key does.
async fn key_of_a_data_key(
    tx: &mut Tx,
    crypto: &Crypto,
) -> Result<Option<MasterKeyId>, StoreError> {
    let row: Option<(String, Vec<u8>)> = on_conn!(tx, |conn| {
        sqlx::query_as("SELECT owner_id, wrapped_key FROM data_keys LIMIT 1")
            .fetch_optional(conn)
            .await?
    });
    Ok(match row {
        Some((owner, wrapped)) => crypto.key_of_data_key(&owner, &wrapped).cloned(),
        None => crypto.current_key_id().cloned(),
    })
}
