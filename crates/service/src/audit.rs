//! The audit log's use cases: recording a view (a read that reveals personal data: one insert,
//! in its own short transaction), listing entries, and deleting those past the retention
//! period (housekeeping). Changes record their entries in their own transaction, through
//! [`idshare_store::audit::record_by`].

use idshare_domain::time_format::format_timestamp;
use idshare_store::{
    Cursor, Page, Scope,
    audit::{self, AuditEntry, AuditFilter},
};
use time::Duration;

pub use idshare_store::audit::{Actor, Principal};

use crate::{ServiceContext, ServiceError};

/// Entries deleted per transaction by [`delete_expired`].
const DELETE_BATCH: u32 = 1000;
/// The most rows one CSV export holds (the newest); older ones are reached with the time
/// filters.
pub const MAX_EXPORT_ROWS: usize = 50_000;
/// Entries read per transaction while exporting.
const EXPORT_PAGE: u32 = 500;
/// The CSV export's header row.
const CSV_HEADER: &str =
    "created-at,action,actor-type,actor-id,object-type,object-id,request-id,client-address\r\n";

/// Records that `actor` viewed an object: one statement, committed before the data is shown.
pub async fn record_view(
    state: &ServiceContext,
    scope: &Scope,
    actor: &Actor,
    action: &str,
    object: (&str, &str),
) -> Result<(), ServiceError> {
    let mut tx = state.store().begin_write().await?;
    audit::record_by(&mut tx, scope, actor, action, object, state.now()).await?;
    tx.commit().await?;
    Ok(())
}

/// The scope's entries matching `filter`, newest first; `None` for a cursor that is not an entry
/// of the scope.
pub async fn list(
    state: &ServiceContext,
    scope: &Scope,
    filter: &AuditFilter,
    cursor: Cursor<'_>,
    size: u32,
) -> Result<Option<Page<AuditEntry>>, ServiceError> {
    let mut tx = state.store().begin_read().await?;
    Ok(audit::search(&mut tx, scope, filter, cursor, size).await?)
}

/// The scope's entries matching `filter` as CSV (RFC 4180, a header row, newest first), at most
/// [`MAX_EXPORT_ROWS`]; and whether more matched.
pub async fn export_csv(
    state: &ServiceContext,
    scope: &Scope,
    filter: &AuditFilter,
) -> Result<(String, bool), ServiceError> {
    let mut csv = String::from(CSV_HEADER);
    let mut rows = 0;
    let mut last: Option<String> = None;
    let truncated = 'pages: loop {
        let cursor = last.as_deref().map_or(Cursor::Start, Cursor::After);
        // A cursor deleted meanwhile (retention) ends the export where it was.
        let Some(page) = list(state, scope, filter, cursor, EXPORT_PAGE).await? else {
            break false;
        };
        for entry in &page.items {
            if rows == MAX_EXPORT_ROWS {
                break 'pages true;
            }
            let created_at = format_timestamp(entry.created_at);
            let request_id = entry.request_id.as_ref().map(ToString::to_string);
            let cells = [
                created_at.as_str(),
                &entry.action,
                entry.actor.kind(),
                entry.actor.id().unwrap_or_default(),
                &entry.object_type,
                &entry.object_id,
                request_id.as_deref().unwrap_or_default(),
                entry.client_address.as_deref().unwrap_or_default(),
            ];
            let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            csv.push_str(&line.join(","));
            csv.push_str("\r\n");
            rows += 1;
        }
        if !page.has_older {
            break false;
        }
        last = page.items.last().map(|e| e.id.to_string());
    };
    Ok((csv, truncated))
}

/// A CSV cell: quoted when it holds a separator, a quote or a line break; a leading `=`, `+`,
/// `-` or `@` is escaped with `'` so that a spreadsheet never runs it as a formula.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Deletes the entries older than `days` days (housekeeping), a batch per transaction; returns
/// how many.
pub async fn delete_expired(state: &ServiceContext, days: u32) -> Result<u64, ServiceError> {
    let cutoff = state.now() - Duration::days(i64::from(days));
    let mut deleted = 0;
    loop {
        let mut tx = state.store().begin_write().await?;
        let batch = audit::delete_older_than(&mut tx, cutoff, DELETE_BATCH).await?;
        tx.commit().await?;
        deleted += batch;
        if batch < u64::from(DELETE_BATCH) {
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("inquiry.viewed"), "inquiry.viewed");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("-1,2"), "\"'-1,2\"");
    }
}
