//! Screening lists (watchlists, PEP lists) imported by operators. Public data: not sealed.
//! Entries are stored as JSON; the server builds its in-memory index from them.

use idshare_domain::time_format::{from_unix_micros, to_unix_micros};
use time::OffsetDateTime;

use crate::{Store, StoreError, db::on_conn};

/// Rows per INSERT statement (3 parameters each, well under both backends' limits).
const BATCH: usize = 400;

#[derive(Debug, Clone)]
pub struct ListSummary {
    pub list: String,
    pub entries: i64,
    pub imported_at: OffsetDateTime,
}

/// Replaces the entries of `list` with `entries` (`(entity_id, entry JSON)`) in one transaction,
/// calling `progress` with the number written so far.
pub async fn replace(
    store: &Store,
    list: &str,
    entries: &[(String, String)],
    now: OffsetDateTime,
    mut progress: impl FnMut(usize),
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |conn| {
        sqlx::query("DELETE FROM list_entries WHERE list = $1")
            .bind(list)
            .execute(conn)
            .await?
            .rows_affected()
    });
    for (done, chunk) in entries.chunks(BATCH).enumerate() {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", i * 3 + 1, i * 3 + 2, i * 3 + 3))
            .collect();
        let sql = format!(
            "INSERT INTO list_entries (list, entity_id, entry) VALUES {} ON CONFLICT DO NOTHING",
            placeholders.join(", ")
        );
        on_conn!(&mut tx, |conn| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (entity_id, entry) in chunk {
                query = query.bind(list).bind(entity_id).bind(entry);
            }
            query.execute(conn).await?.rows_affected()
        });
        progress((done * BATCH + chunk.len()).min(entries.len()));
    }
    let count = i64::try_from(entries.len()).map_err(StoreError::corrupt)?;
    on_conn!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO list_imports (list, entries, imported_at) VALUES ($1, $2, $3) \
             ON CONFLICT (list) DO UPDATE SET entries = $2, imported_at = $3",
        )
        .bind(list)
        .bind(count)
        .bind(to_unix_micros(now))
        .execute(conn)
        .await?
        .rows_affected()
    });
    tx.commit().await
}

/// Every entry of every list (JSON), to build the screening index from.
pub async fn all_entries(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut tx = store.begin_read().await?;
    let entries: Vec<String> = on_conn!(&mut tx, |conn| {
        sqlx::query_scalar("SELECT entry FROM list_entries ORDER BY list, entity_id")
            .fetch_all(conn)
            .await?
    });
    Ok(entries)
}

/// The imported lists; also tells a running server whether its index is stale.
pub async fn summaries(store: &Store) -> Result<Vec<ListSummary>, StoreError> {
    let mut tx = store.begin_read().await?;
    let rows: Vec<(String, i64, i64)> = on_conn!(&mut tx, |conn| {
        sqlx::query_as("SELECT list, entries, imported_at FROM list_imports ORDER BY list")
            .fetch_all(conn)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(list, entries, imported_at)| ListSummary {
            list,
            entries,
            imported_at: from_unix_micros(imported_at),
        })
        .collect())
}

/// Deletes a list and its entries; false when no list has that name. A running server notices
/// at its next screening and rebuilds its index without the list.
pub async fn delete(store: &Store, list: &str) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    on_conn!(&mut tx, |conn| {
        sqlx::query("DELETE FROM list_entries WHERE list = $1")
            .bind(list)
            .execute(conn)
            .await?
            .rows_affected()
    });
    let deleted = on_conn!(&mut tx, |conn| {
        sqlx::query("DELETE FROM list_imports WHERE list = $1")
            .bind(list)
            .execute(conn)
            .await?
            .rows_affected()
    });
    tx.commit().await?;
    Ok(deleted == 1)
}
