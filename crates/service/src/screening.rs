//! Watchlist and PEP screening for reports: an in-memory index over the imported lists,
//! rebuilt when an import changes them (checked on each screening; one cheap query).

use std::sync::Arc;

use idshare_domain::{
    screening::{EntryKind, ListEntry, Match, Query, ScreeningIndex},
    template::{ReportConfig, ReportType},
    verification::Subject,
};
use idshare_store::lists::{self, ListSummary};
use serde_json::Value;
use tokio::sync::RwLock;

use super::ServiceError;
use crate::ServiceContext;

/// Which imports an index was built from: (list, entries, imported at).
type Fingerprint = Vec<(String, i64, i64)>;

/// The index and the import state it was built from.
#[derive(Debug, Default)]
pub struct ScreeningCache {
    current: RwLock<Option<(Fingerprint, Arc<ScreeningIndex>)>>,
}

fn fingerprint(summaries: &[ListSummary]) -> Fingerprint {
    summaries
        .iter()
        .map(|s| {
            (
                s.list.clone(),
                s.entries,
                idshare_domain::time_format::to_unix_micros(s.imported_at),
            )
        })
        .collect()
}

/// The current index, rebuilt if the lists changed since it was built.
pub async fn index(
    state: &ServiceContext,
) -> Result<Arc<ScreeningIndex>, idshare_store::StoreError> {
    let summaries = lists::summaries(state.store()).await?;
    let wanted = fingerprint(&summaries);
    let cache = state.screening_cache();
    if let Some((built_from, index)) = cache.current.read().await.as_ref()
        && *built_from == wanted
    {
        return Ok(Arc::clone(index));
    }
    let mut slot = cache.current.write().await;
    if let Some((built_from, index)) = slot.as_ref()
        && *built_from == wanted
    {
        return Ok(Arc::clone(index));
    }
    let rows = lists::all_entries(state.store()).await?;
    let index = tokio::task::spawn_blocking(move || {
        let entries: Vec<ListEntry> = rows
            .iter()
            .filter_map(|row| serde_json::from_str(row).ok())
            .collect();
        ScreeningIndex::build(entries)
    })
    .await
    .map_err(|e| idshare_store::StoreError::Corrupt(format!("index build panicked: {e}")))?;
    let index = Arc::new(index);
    *slot = Some((wanted, Arc::clone(&index)));
    Ok(index)
}

/// The lists currently imported (names), for validating template report configurations.
pub async fn list_names(state: &ServiceContext) -> Result<Vec<String>, idshare_store::StoreError> {
    Ok(lists::summaries(state.store())
        .await?
        .into_iter()
        .map(|s| s.list)
        .collect())
}

/// Builds the query a report of `config` runs for `subject`; `None` without a name.
pub fn query_for(config: &ReportConfig, subject: &Subject) -> Option<Query> {
    let query = Query::from_parts(
        subject.text("name-first"),
        subject.text("name-middle"),
        subject.text("name-last"),
    );
    if query.name.is_empty() {
        return None;
    }
    let mut query = query.with_kinds(match config.report_type {
        ReportType::Watchlist => vec![EntryKind::Sanction, EntryKind::Other],
        ReportType::PoliticallyExposedPerson => vec![EntryKind::Pep],
    });
    if let Some(lists) = config.config.get("lists").and_then(Value::as_array) {
        query = query.with_lists(lists.iter().filter_map(Value::as_str));
    }
    if let Some(threshold) = config.config.get("match-threshold").and_then(Value::as_f64) {
        query = query.with_threshold(threshold);
    }
    if let Some(birthdate) = subject.date("birthdate") {
        query = query.with_birthdate(idshare_domain::time_format::format_date(birthdate));
    }
    if let Some(country) = subject.text("address-country-code") {
        query = query.with_country(country);
    }
    Some(query)
}

/// Screens the subject; the matches as stored in the report.
pub async fn screen(
    state: &ServiceContext,
    config: &ReportConfig,
    subject: &Subject,
) -> Result<Vec<Value>, ServiceError> {
    let Some(query) = query_for(config, subject) else {
        return Ok(vec![]);
    };
    let index = index(state).await?;
    let matches: Vec<Match> = index.screen(&query);
    Ok(matches
        .into_iter()
        .filter_map(|m| serde_json::to_value(m).ok())
        .collect())
}
