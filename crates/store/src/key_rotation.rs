//! Master key rotation: every data key wrapped under an older master key is wrapped again under
//! the current one, and every value sealed directly under an older key (webhook and workflow
//! secrets, stored idempotent answers, the inquiries' search keys) is sealed again, in batches.
//!
//! Each batch reads its rows, unwraps and wraps them outside any transaction (off the async
//! threads), then writes them in one short transaction that changes a row only if it still holds
//! what was read (a redaction or a concurrent change wins). Servers keep serving throughout: they
//! hold the new key as current and the old one as previous, so a data key opens whichever key
//! wraps it at any moment. Nothing records how far a rotation went: a run that stops (or is
//! limited to a number of batches) leaves every row readable, and the next run finds the rows
//! still under an old key and goes on. Once none is left, the database's check value becomes the
//! current key's, and the old key is no longer needed.

use std::num::NonZeroU32;

use idshare_domain::time_format::to_unix_micros;
use time::OffsetDateTime;

use crate::{
    Crypto, MasterKeyId, Store, StoreError, Tx,
    db::on_conn,
    key_check::{data_key_ids, stored_check},
};

/// What the database holds under which master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key everything new is sealed under.
    pub current: MasterKeyId,
    pub previous: Vec<MasterKeyId>,
    /// The key of the database's check value: the current key once a rotation finished.
    pub database_key: Option<MasterKeyId>,
    /// Data keys per wrapping key (`None`: written before key ids, under `database_key`).
    pub data_keys: Vec<(Option<MasterKeyId>, u64)>,
    /// Values sealed directly under a master key other than the current one.
    pub sealed_values_to_reseal: u64,
}

impl KeyStatus {
    /// Data keys a rotation would wrap again.
    pub fn data_keys_to_rewrap(&self) -> u64 {
        self.data_keys
            .iter()
            .filter(|(id, _)| id.as_ref() != Some(&self.current))
            .map(|(_, count)| count)
            .sum()
    }

    /// Whether the previous keys are no longer needed.
    pub fn rotated(&self) -> bool {
        self.database_key.as_ref() == Some(&self.current)
            && self.data_keys_to_rewrap() == 0
            && self.sealed_values_to_reseal == 0
    }
}

/// How much one run does.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    /// Rows read, wrapped again and written per batch (each batch its own transaction).
    pub batch_size: NonZeroU32,
    /// Stop after this many written batches (`None`: run to the end); a later run goes on.
    pub max_batches: Option<u32>,
}

/// What a run did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotateProgress {
    pub data_keys: u64,
    pub sealed_values: u64,
    pub batches: u32,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// Nothing is left under another key, and the check value is the current key's.
    Finished(RotateProgress),
    /// `max_batches` reached with rows still under another key.
    Paused(RotateProgress),
}

/// Passes over the tables before giving up on rows that keep appearing under another key: a
/// server still sealing under an old current key writes them.
const MAX_PASSES: u32 = 3;

/// Counts what is under which key. Reads only (opening the store is what binds the keys).
pub async fn status(store: &Store) -> Result<KeyStatus, StoreError> {
    let crypto = store.crypto();
    let current = current_key(crypto)?;
    let mut tx = store.begin_read().await?;
    let database_key = match stored_check(&mut tx).await? {
        Some((stored, recorded)) => crypto.key_of_check_value(&stored).cloned().or(recorded),
        None => None,
    };
    let rows: Vec<(Option<String>, i64)> = on_conn!(tx, |conn| {
        sqlx::query_as("SELECT key_id, COUNT(*) FROM data_keys GROUP BY key_id ORDER BY key_id")
            .fetch_all(conn)
            .await?
    });
    drop(tx);
    let data_keys = rows
        .into_iter()
        .map(|(id, count)| {
            (
                id.map(MasterKeyId::from_stored),
                u64::try_from(count).unwrap_or(0),
            )
        })
        .collect();
    let mut sealed_values_to_reseal = 0;
    for kind in SealedKind::ALL {
        let mut cursor = Cursor::default();
        loop {
            let page = kind.page(store, &cursor, STATUS_PAGE).await?;
            let Some(last) = page.last() else { break };
            cursor = last.cursor();
            let crypto = crypto.clone();
            let resealed = reseal(crypto, kind, page).await?;
            sealed_values_to_reseal += resealed.len() as u64;
        }
    }
    Ok(KeyStatus {
        current,
        previous: crypto.previous_key_ids().cloned().collect(),
        database_key,
        data_keys,
        sealed_values_to_reseal,
    })
}

const STATUS_PAGE: NonZeroU32 = NonZeroU32::new(1000).expect("1000 is not zero");

/// Wraps and seals again under the current key everything under another one, reporting each
/// written batch to `progress`.
pub async fn rotate(
    store: &Store,
    options: RotateOptions,
    mut progress: impl FnMut(&RotateProgress),
) -> Result<RotateOutcome, StoreError> {
    let current = current_key(store.crypto())?;
    let limit_reached =
        |done: &RotateProgress| options.max_batches.is_some_and(|max| done.batches >= max);
    let mut done = RotateProgress::default();
    for _ in 0..MAX_PASSES {
        // Data keys, in owner order from a cursor: each pass reads every row once.
        let mut cursor = String::new();
        loop {
            if limit_reached(&done) {
                return Ok(RotateOutcome::Paused(done));
            }
            let rows =
                data_keys_under_other_keys(store, &current, &cursor, options.batch_size).await?;
            let Some((last, _)) = rows.last() else { break };
            cursor.clone_from(last);
            let crypto = store.crypto().clone();
            let rewrapped = tokio::task::spawn_blocking(move || {
                rows.into_iter()
                    .map(|(owner, wrapped)| {
                        let again = crypto.rewrap_data_key(&owner, &wrapped).map_err(|_| {
                            StoreError::Crypto(format!(
                                "the data key of {owner} opens with none of the configured master \
                                 keys ({}); add the key it is wrapped under with \
                                 --previous-master-key-file and run the rotation again",
                                crypto.describe_keys()
                            ))
                        })?;
                        Ok((owner, wrapped, again))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await
            .map_err(|e| StoreError::Crypto(format!("re-wrapping stopped: {e}")))??;
            let mut tx = store.begin_write().await?;
            for (owner, old, new) in rewrapped {
                done.data_keys += on_conn!(tx, |conn| {
                    sqlx::query(
                        "UPDATE data_keys SET wrapped_key = $1, key_id = $2 \
                         WHERE owner_id = $3 AND wrapped_key = $4",
                    )
                    .bind(new.bytes)
                    .bind(new.key_id.as_str())
                    .bind(&owner)
                    .bind(old)
                    .execute(conn)
                    .await?
                    .rows_affected()
                });
            }
            tx.commit().await?;
            done.batches += 1;
            progress(&done);
        }
        // Values sealed directly under a master key: a page is written only if it holds some.
        for kind in SealedKind::ALL {
            let mut cursor = Cursor::default();
            loop {
                if limit_reached(&done) {
                    return Ok(RotateOutcome::Paused(done));
                }
                let page = kind.page(store, &cursor, options.batch_size).await?;
                let Some(last) = page.last() else { break };
                cursor = last.cursor();
                let resealed = reseal(store.crypto().clone(), kind, page).await?;
                if resealed.is_empty() {
                    continue;
                }
                let mut tx = store.begin_write().await?;
                for (row, new) in resealed {
                    done.sealed_values += kind.write(&mut tx, &row, new).await?;
                }
                tx.commit().await?;
                done.batches += 1;
                progress(&done);
            }
        }
        if count_data_keys_under_other_keys(store, &current).await? == 0 {
            record_current_key(store).await?;
            return Ok(RotateOutcome::Finished(done));
        }
    }
    let left = data_key_ids(&mut store.begin_read().await?)
        .await?
        .into_iter()
        .filter(|id| id != &current)
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(StoreError::Crypto(format!(
        "data keys under key id {left} keep appearing: a server still seals with that key as \
         its current key; make {current} the current key of every node, then run the rotation \
         again"
    )))
}

fn current_key(crypto: &Crypto) -> Result<MasterKeyId, StoreError> {
    crypto
        .current_key_id()
        .cloned()
        .ok_or_else(|| StoreError::Crypto("this command runs without the master key".into()))
}

async fn data_keys_under_other_keys(
    store: &Store,
    current: &MasterKeyId,
    after: &str,
    limit: NonZeroU32,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut tx = store.begin_read().await?;
    Ok(on_conn!(tx, |conn| {
        sqlx::query_as(
            "SELECT owner_id, wrapped_key FROM data_keys \
             WHERE owner_id > $1 AND (key_id IS NULL OR key_id <> $2) \
             ORDER BY owner_id LIMIT $3",
        )
        .bind(after)
        .bind(current.as_str())
        .bind(i64::from(limit.get()))
        .fetch_all(conn)
        .await?
    }))
}

async fn count_data_keys_under_other_keys(
    store: &Store,
    current: &MasterKeyId,
) -> Result<i64, StoreError> {
    let mut tx = store.begin_read().await?;
    Ok(on_conn!(tx, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE key_id IS NULL OR key_id <> $1")
            .bind(current.as_str())
            .fetch_one(conn)
            .await?
    }))
}

/// The check value becomes the current key's: from now on a start needs only that key.
async fn record_current_key(store: &Store) -> Result<(), StoreError> {
    let crypto = store.crypto();
    let current = current_key(crypto)?;
    let check_value = crypto
        .check_value()
        .ok_or_else(|| StoreError::Crypto("no master key to record".into()))?;
    let mut tx = store.begin_write().await?;
    on_conn!(tx, |conn| {
        sqlx::query(
            "INSERT INTO master_key_check (id, check_value, key_id, created_at) \
             VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET check_value = excluded.check_value, \
             key_id = excluded.key_id",
        )
        .bind(check_value)
        .bind(current.as_str())
        .bind(to_unix_micros(OffsetDateTime::now_utc()))
        .execute(conn)
        .await?
        .rows_affected()
    });
    tx.commit().await
}

/// Where a sealed value lives.
#[derive(Debug, Clone, Copy)]
enum SealedKind {
    WebhookSecret,
    WebhookPreviousSecret,
    WorkflowSecret,
    IdempotentAnswer,
    /// A user's TOTP secret.
    TotpSecret,
    /// An organization's key of the inquiries' search hashes.
    InquirySearchKey,
}

/// A row's key: its id, and for idempotent answers the idempotency key.
#[derive(Debug, Clone, Default)]
struct Cursor(String, String);

#[derive(Debug, sqlx::FromRow)]
struct SealedRow {
    id: String,
    second: String,
    sealed: Vec<u8>,
}

impl SealedRow {
    fn cursor(&self) -> Cursor {
        Cursor(self.id.clone(), self.second.clone())
    }
}

impl SealedKind {
    const ALL: [Self; 6] = [
        Self::WebhookSecret,
        Self::WebhookPreviousSecret,
        Self::WorkflowSecret,
        Self::IdempotentAnswer,
        Self::TotpSecret,
        Self::InquirySearchKey,
    ];

    fn context(self, row: &SealedRow) -> String {
        match self {
            Self::WebhookSecret | Self::WebhookPreviousSecret => {
                crate::webhooks::secret_context(&row.id)
            }
            Self::WorkflowSecret => crate::workflows::secret_context(&row.id),
            Self::IdempotentAnswer => crate::idempotency::body_context(&row.id, &row.second),
            Self::TotpSecret => crate::users::totp_context(&row.id),
            Self::InquirySearchKey => crate::inquiry_search::key_context(&row.id),
        }
    }

    /// The next `limit` rows after `after`, in key order.
    async fn page(
        self,
        store: &Store,
        after: &Cursor,
        limit: NonZeroU32,
    ) -> Result<Vec<SealedRow>, StoreError> {
        let sql = match self {
            Self::WebhookSecret => {
                "SELECT id, '' AS second, secret AS sealed FROM webhooks \
                 WHERE id > $1 ORDER BY id LIMIT $2"
            }
            Self::WebhookPreviousSecret => {
                "SELECT id, '' AS second, previous_secret AS sealed FROM webhooks \
                 WHERE id > $1 AND previous_secret IS NOT NULL ORDER BY id LIMIT $2"
            }
            Self::WorkflowSecret => {
                "SELECT id, '' AS second, secret AS sealed FROM workflows \
                 WHERE id > $1 ORDER BY id LIMIT $2"
            }
            Self::IdempotentAnswer => {
                "SELECT caller_id AS id, idempotency_key AS second, response_sealed AS sealed \
                 FROM idempotency_records \
                 WHERE response_sealed IS NOT NULL \
                 AND (caller_id > $1 OR (caller_id = $1 AND idempotency_key > $3)) \
                 ORDER BY caller_id, idempotency_key LIMIT $2"
            }
            Self::TotpSecret => {
                "SELECT id, '' AS second, totp_secret AS sealed FROM users \
                 WHERE id > $1 AND totp_secret IS NOT NULL ORDER BY id LIMIT $2"
            }
            Self::InquirySearchKey => {
                "SELECT id, '' AS second, key_sealed AS sealed FROM inquiry_search_keys \
                 WHERE id > $1 ORDER BY id LIMIT $2"
            }
        };
        let mut tx = store.begin_read().await?;
        Ok(on_conn!(tx, |conn| {
            let query = sqlx::query_as::<_, SealedRow>(sql)
                .bind(&after.0)
                .bind(i64::from(limit.get()));
            let query = match self {
                Self::IdempotentAnswer => query.bind(&after.1),
                _ => query,
            };
            query.fetch_all(conn).await?
        }))
    }

    /// Writes `new` in place of what `row` read, unless the row changed since; the rows written.
    async fn write(self, tx: &mut Tx, row: &SealedRow, new: Vec<u8>) -> Result<u64, StoreError> {
        let sql = match self {
            Self::WebhookSecret => "UPDATE webhooks SET secret = $1 WHERE id = $2 AND secret = $3",
            Self::WebhookPreviousSecret => {
                "UPDATE webhooks SET previous_secret = $1 WHERE id = $2 AND previous_secret = $3"
            }
            Self::WorkflowSecret => {
                "UPDATE workflows SET secret = $1 WHERE id = $2 AND secret = $3"
            }
            Self::IdempotentAnswer => {
                "UPDATE idempotency_records SET response_sealed = $1 \
                 WHERE caller_id = $2 AND response_sealed = $3 AND idempotency_key = $4"
            }
            Self::TotpSecret => {
                "UPDATE users SET totp_secret = $1 WHERE id = $2 AND totp_secret = $3"
            }
            Self::InquirySearchKey => {
                "UPDATE inquiry_search_keys SET key_sealed = $1 WHERE id = $2 AND key_sealed = $3"
            }
        };
        Ok(on_conn!(tx, |conn| {
            let query = sqlx::query(sql).bind(new).bind(&row.id).bind(&row.sealed);
            let query = match self {
                Self::IdempotentAnswer => query.bind(&row.second),
                _ => query,
            };
            query.execute(conn).await?.rows_affected()
        }))
    }
}

/// The rows of `page` sealed under another key than the current one, with their value sealed
/// again under it; computed off the async threads.
async fn reseal(
    crypto: Crypto,
    kind: SealedKind,
    page: Vec<SealedRow>,
) -> Result<Vec<(SealedRow, Vec<u8>)>, StoreError> {
    tokio::task::spawn_blocking(move || {
        let mut resealed = Vec::new();
        for row in page {
            let context = kind.context(&row);
            let again = crypto.reseal_system(&row.sealed, &context).map_err(|_| {
                StoreError::Crypto(format!(
                    "a value sealed for {context} opens with none of the configured master keys \
                     ({}); add the key it is sealed under with --previous-master-key-file",
                    crypto.describe_keys()
                ))
            })?;
            if let Some(again) = again {
                resealed.push((row, again));
            }
        }
        Ok(resealed)
    })
    .await
    .map_err(|e| StoreError::Crypto(format!("re-sealing stopped: {e}")))?
}
