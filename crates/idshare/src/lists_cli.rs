//! `idshare lists import` and `idshare screen`: loading screening lists and screening a name
//! by hand, against the same store and index the server uses.

use std::{fs::File, io::BufReader, path::Path};

use anyhow::{Context, bail};
use idshare_domain::screening::{EntryKind, ListFormat, Query, ScreeningIndex, read_list};
use idshare_store::{Store, lists};
use indicatif::{ProgressBar, ProgressStyle};
use time::OffsetDateTime;

/// Reads a list file and replaces the list's entries in the store; returns how many.
pub async fn import(
    store: &Store,
    format: ListFormat,
    file: &Path,
    list: &str,
) -> anyhow::Result<usize> {
    let opened = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = read_list(format, BufReader::new(opened), list)
        .with_context(|| format!("{} is not a valid {format} file", file.display()))?;
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("reading");
    let mut entries = Vec::new();
    while let Some(entry) = reader.next() {
        let entry =
            entry.with_context(|| format!("{} is not a valid {format} file", file.display()))?;
        entries.push((entry.entity_id.clone(), serde_json::to_string(&entry)?));
        if entries.len() % 1000 == 0 {
            bar.set_position(reader.bytes_read());
        }
    }
    if entries.is_empty() {
        bail!(
            "{} holds no person to screen against ({} rows skipped)",
            file.display(),
            reader.skipped()
        );
    }
    bar.set_position(size);
    bar.finish_and_clear();
    let total = entries.len() as u64;
    let writing = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} entries")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    writing.set_message("storing");
    lists::replace(store, list, &entries, OffsetDateTime::now_utc(), |done| {
        writing.set_position(done as u64)
    })
    .await?;
    writing.finish_and_clear();
    eprintln!(
        "imported {} entries into list `{list}` ({} rows skipped: not persons)",
        entries.len(),
        reader.skipped()
    );
    Ok(entries.len())
}

/// Screens one name against the stored lists; the matches as JSON.
pub async fn screen(
    store: &Store,
    list: Option<&str>,
    name: &str,
    birthdate: Option<&str>,
    country: Option<&str>,
    kinds: &[EntryKind],
) -> anyhow::Result<serde_json::Value> {
    let known: Vec<String> = lists::summaries(store)
        .await?
        .into_iter()
        .map(|s| s.list)
        .collect();
    // No match against no list would read as a clear result.
    if known.is_empty() {
        bail!(
            "no screening list has been imported into this database: import one with \
             `idshare lists import` first"
        );
    }
    if let Some(list) = list
        && !known.iter().any(|k| k == list)
    {
        bail!(
            "no list `{list}` has been imported (imported: {})",
            known.join(", ")
        );
    }
    let entries = lists::all_entries(store)
        .await?
        .iter()
        .map(|row| serde_json::from_str(row))
        .collect::<Result<Vec<_>, _>>()?;
    let index = ScreeningIndex::build(entries);
    let mut query = Query::new(name).with_kinds(kinds.iter().copied());
    if let Some(list) = list {
        query = query.with_lists([list]);
    }
    if let Some(birthdate) = birthdate {
        query = query.with_birthdate(birthdate);
    }
    if let Some(country) = country {
        query = query.with_country(country);
    }
    let matches = index.screen(&query);
    Ok(serde_json::json!({ "query": name, "matches": matches }))
}
