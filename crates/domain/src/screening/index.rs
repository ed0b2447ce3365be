//! The screening index: entries with their prepared names, and blocks of entries keyed by
//! what a similar name token is likely to share, so one screening scores a few hundred
//! candidates instead of the whole list.
//!
//! Blocking keys of a token of two letters or more: the token itself (`=ivan`), its phonetic
//! key when it has two consonants or more (`~fn`), for tokens of three letters or more its
//! first three and last three letters (`<iva`, `>van`: one typo leaves at least one of them
//! intact in tokens of seven letters or more; "mei" reaches "meiwei"), and for short tokens
//! symmetric deletion keys (`-ivan`, `-van`, `-ian`, `-ivn`, `-iva`: entry tokens of 3 to 6
//! letters and query tokens of 3 to 7 with each letter deleted in turn, plus the token itself
//! up to 7 letters), so one deleted, inserted, replaced or swapped letter still meets. A query gathers the entries of its tokens' blocks
//! and scores exactly those with the same function the brute-force scan uses.
//!
//! Not every entry found is scored: with `W` the weight of the query tokens that reach it
//! through a block (tokens without keys, initials, count as reaching it), `k` their number and
//! `Wq` the weight of all query tokens, no score can exceed `(W + k) / (Wq + k)` (see
//! [`super::score`]), so entries for which that bound is below the threshold are skipped: at
//! 0.85 a two-token query needs both tokens to reach an entry. A query with three keyed tokens
//! or more is allowed one token that reaches nothing (counted as reaching, at its weight) once
//! tokens weighing two or more reach the entry: two
//! tokens two typos apart, or spelled through another script, can pair without sharing a key.
//! Beyond that the index assumes that tokens similar enough to pair share a key; the tests
//! compare it with [`brute_force_screen`] on generated queries and the benchmark reports
//! agreement.
//!
//! Blocks larger than the stop limit are not read (a cost cap for giant lists; the default is
//! high enough that no block of the 300,000-name benchmark list reaches it): entries are then
//! found through the query's other tokens, and the token of a skipped block counts as reaching
//! them. A query whose every block is skipped finds nothing.

use std::collections::{BTreeMap, HashMap};

use super::normalize::birth_year;
use super::score::{Token, prepare_name, score_tokens};
use super::{BIRTH_YEAR_TOLERANCE, COUNTRY_MISMATCH_PENALTY, ListEntry, Match, Query};

/// Blocks with more entries than this are "stop blocks" (see the module documentation).
pub const DEFAULT_STOP_LIMIT: usize = 200_000;

#[derive(Debug, Clone)]
struct PreparedEntry {
    names: Vec<Vec<Token>>,
    birth_years: Vec<i32>,
}

impl PreparedEntry {
    fn new(entry: &ListEntry) -> Self {
        Self {
            names: entry.names().map(prepare_name).collect(),
            birth_years: entry
                .birthdates
                .iter()
                .filter_map(|d| birth_year(d))
                .collect(),
        }
    }
}

#[derive(Debug)]
struct PreparedQuery<'q> {
    query: &'q Query,
    tokens: Vec<Token>,
    birth_year: Option<i32>,
    country: Option<String>,
}

impl<'q> PreparedQuery<'q> {
    fn new(query: &'q Query) -> Self {
        Self {
            query,
            tokens: prepare_name(&query.name),
            birth_year: query.birthdate.as_deref().and_then(birth_year),
            country: query
                .country
                .as_deref()
                .map(|c| c.trim().to_ascii_uppercase())
                .filter(|c| !c.is_empty()),
        }
    }
}

/// Scores one entry against a query; `None` when filtered out or below the threshold.
fn evaluate(entry: &ListEntry, prepared: &PreparedEntry, q: &PreparedQuery<'_>) -> Option<Match> {
    let query = q.query;
    if !query.lists.is_empty() && !query.lists.contains(&entry.list) {
        return None;
    }
    if !query.kinds.is_empty() && !query.kinds.contains(&entry.kind) {
        return None;
    }
    if let Some(year) = q.birth_year
        && !prepared.birth_years.is_empty()
        && prepared
            .birth_years
            .iter()
            .all(|y| (y - year).abs() > BIRTH_YEAR_TOLERANCE)
    {
        return None;
    }
    let mut best = (0.0f64, 0usize);
    for (i, name) in prepared.names.iter().enumerate() {
        let s = score_tokens(&q.tokens, name);
        if s > best.0 {
            best = (s, i);
        }
    }
    let (mut score, name_index) = best;
    let country_mismatch = q
        .country
        .as_ref()
        .is_some_and(|c| !entry.countries.is_empty() && !entry.countries.iter().any(|ec| ec == c));
    if country_mismatch {
        score -= COUNTRY_MISMATCH_PENALTY;
    }
    if score <= 0.0 || score < query.threshold {
        return None;
    }
    let matched_name = entry.names().nth(name_index).unwrap_or(&entry.name);
    Some(Match {
        entity_id: entry.entity_id.clone(),
        list: entry.list.clone(),
        kind: entry.kind,
        name: entry.name.clone(),
        matched_name: matched_name.to_owned(),
        score: (score * 10_000.0).round() / 10_000.0,
        birthdates: entry.birthdates.clone(),
        countries: entry.countries.clone(),
        programs: entry.programs.clone(),
        country_mismatch,
    })
}

fn finish(mut matches: Vec<Match>, limit: usize) -> Vec<Match> {
    matches.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.list.cmp(&b.list))
            .then_with(|| a.entity_id.cmp(&b.entity_id))
    });
    matches.truncate(limit);
    matches
}

/// Screens by scoring every entry: no index, same scoring and filters as
/// [`ScreeningIndex::screen`]. The oracle for tests; linear in the list's size.
pub fn brute_force_screen(entries: &[ListEntry], query: &Query) -> Vec<Match> {
    let q = PreparedQuery::new(query);
    if q.tokens.is_empty() {
        return Vec::new();
    }
    let matches = entries
        .iter()
        .filter_map(|e| {
            let e = e.clone().normalized();
            evaluate(&e, &PreparedEntry::new(&e), &q)
        })
        .collect();
    finish(matches, query.limit)
}

/// Which side a token's keys are for: an entry's tokens are indexed, a query's looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Entry,
    Query,
}

fn block_keys(token: &Token, side: Side, out: &mut Vec<String>) {
    let text = &*token.text;
    let len = text.len();
    if len < 2 {
        return;
    }
    out.push(format!("={text}"));
    if token.key.len() >= 2 {
        out.push(format!("~{}", token.key));
    }
    if len >= 3 {
        out.push(format!("<{}", &text[..3]));
        out.push(format!(">{}", &text[len - 3..]));
    }
    // Symmetric deletion keys for short tokens, where one typo can spoil every affix.
    if len <= 7 {
        out.push(format!("-{text}"));
    }
    let deletions = match side {
        Side::Entry => (3..=6).contains(&len),
        Side::Query => (3..=7).contains(&len),
    };
    if deletions {
        for i in 0..len {
            out.push(format!("-{}{}", &text[..i], &text[i + 1..]));
        }
    }
}

/// Counters of one screening through the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScreenStats {
    /// Entries found in the query's blocks.
    pub candidates: usize,
    /// Candidates that could reach the threshold, and were scored.
    pub scored: usize,
    /// Blocks the query touched that were over the stop limit.
    pub stop_blocks: usize,
}

/// Sizes of an index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub entries: usize,
    pub names: usize,
    pub tokens: usize,
    pub blocks: usize,
    pub largest_block: usize,
    pub stop_blocks: usize,
    pub stop_limit: usize,
}

/// Entries of one or more lists, prepared and blocked for fast screening. Immutable once
/// built: importing a list builds a new index.
#[derive(Debug, Clone)]
pub struct ScreeningIndex {
    entries: Vec<ListEntry>,
    prepared: Vec<PreparedEntry>,
    blocks: HashMap<Box<str>, Vec<u32>>,
    stop_limit: usize,
}

impl Default for ScreeningIndex {
    fn default() -> Self {
        Self::build(Vec::new())
    }
}

impl ScreeningIndex {
    /// Builds the index with the default stop limit. Entries are normalized
    /// ([`ListEntry::normalized`]).
    pub fn build(entries: Vec<ListEntry>) -> Self {
        Self::build_with_stop_limit(entries, DEFAULT_STOP_LIMIT)
    }

    /// Builds the index; blocks with more than `stop_limit` entries are stop blocks.
    ///
    /// # Panics
    /// With more than `u32::MAX` entries.
    pub fn build_with_stop_limit(entries: Vec<ListEntry>, stop_limit: usize) -> Self {
        let entries: Vec<ListEntry> = entries.into_iter().map(ListEntry::normalized).collect();
        assert!(
            u32::try_from(entries.len()).is_ok(),
            "too many list entries"
        );
        let prepared: Vec<PreparedEntry> = entries.iter().map(PreparedEntry::new).collect();
        let mut blocks: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        let mut keys = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            let id = i as u32;
            keys.clear();
            for token in p.names.iter().flatten() {
                block_keys(token, Side::Entry, &mut keys);
            }
            for key in &keys {
                match blocks.get_mut(key.as_str()) {
                    Some(block) => {
                        if block.last() != Some(&id) {
                            block.push(id);
                        }
                    }
                    None => {
                        blocks.insert(key.as_str().into(), vec![id]);
                    }
                }
            }
        }
        for block in blocks.values_mut() {
            block.shrink_to_fit();
        }
        Self {
            entries,
            prepared,
            blocks,
            stop_limit,
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, normalized, in the order given to [`ScreeningIndex::build`].
    pub fn entries(&self) -> &[ListEntry] {
        &self.entries
    }

    /// The lists present, with their number of entries (to reject unknown report lists).
    pub fn lists(&self) -> BTreeMap<&str, usize> {
        let mut lists = BTreeMap::new();
        for e in &self.entries {
            *lists.entry(e.list.as_str()).or_insert(0) += 1;
        }
        lists
    }

    /// Sizes of the index.
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            entries: self.entries.len(),
            names: self.prepared.iter().map(|p| p.names.len()).sum(),
            tokens: self
                .prepared
                .iter()
                .flat_map(|p| &p.names)
                .map(Vec::len)
                .sum(),
            blocks: self.blocks.len(),
            largest_block: self.blocks.values().map(Vec::len).max().unwrap_or(0),
            stop_blocks: self
                .blocks
                .values()
                .filter(|b| b.len() > self.stop_limit)
                .count(),
            stop_limit: self.stop_limit,
        }
    }

    /// An estimate of the heap memory the index holds, in bytes (entries, prepared names and
    /// blocks; allocator overhead not included).
    pub fn memory_estimate(&self) -> usize {
        use std::mem::size_of;
        let strings =
            |v: &[String]| -> usize { v.iter().map(|s| s.capacity() + size_of::<String>()).sum() };
        let entries: usize = self
            .entries
            .iter()
            .map(|e| {
                size_of::<ListEntry>()
                    + e.entity_id.capacity()
                    + e.list.capacity()
                    + e.name.capacity()
                    + strings(&e.aliases)
                    + strings(&e.birthdates)
                    + strings(&e.countries)
                    + strings(&e.programs)
            })
            .sum();
        let prepared: usize = self
            .prepared
            .iter()
            .map(|p| {
                size_of::<PreparedEntry>()
                    + p.birth_years.capacity() * size_of::<i32>()
                    + p.names
                        .iter()
                        .map(|n| {
                            size_of::<Vec<Token>>()
                                + n.iter()
                                    .map(|t| size_of::<Token>() + t.text.len() + t.key.len())
                                    .sum::<usize>()
                        })
                        .sum::<usize>()
            })
            .sum();
        // hashbrown keeps one control byte per bucket and about 1/8 of the buckets free.
        let slot = size_of::<(Box<str>, Vec<u32>)>() + 1;
        let blocks: usize = self.blocks.capacity() * slot
            + self
                .blocks
                .iter()
                .map(|(k, v)| k.len() + v.capacity() * size_of::<u32>())
                .sum::<usize>();
        entries + prepared + blocks
    }

    /// Screens a query: the best-scoring entries at or above the query's threshold, best first
    /// (ties by list, then entity id), at most `query.limit`.
    pub fn screen(&self, query: &Query) -> Vec<Match> {
        self.screen_with_stats(query).0
    }

    /// [`ScreeningIndex::screen`] with counters (for benchmarks and diagnostics).
    pub fn screen_with_stats(&self, query: &Query) -> (Vec<Match>, ScreenStats) {
        let mut stats = ScreenStats::default();
        let q = PreparedQuery::new(query);
        if q.tokens.is_empty() {
            return (Vec::new(), stats);
        }
        // Which query tokens reach each entry through a block, as a bit mask per entry.
        let mut masks = vec![0u16; self.entries.len()];
        let mut touched: Vec<u32> = Vec::new();
        let mut free = 0u16;
        let mut keys = Vec::new();
        for (ti, token) in q.tokens.iter().enumerate() {
            let bit = 1u16 << ti;
            keys.clear();
            block_keys(token, Side::Query, &mut keys);
            if keys.is_empty() {
                // Initials have no keys: assume they pair.
                free |= bit;
                continue;
            }
            for key in &keys {
                let Some(block) = self.blocks.get(key.as_str()) else {
                    continue;
                };
                if block.len() > self.stop_limit {
                    // Not looked at: assume the token pairs with whatever its other keys reach.
                    stats.stop_blocks += 1;
                    free |= bit;
                    continue;
                }
                for &id in block {
                    let mask = &mut masks[id as usize];
                    if *mask == 0 {
                        touched.push(id);
                    }
                    *mask |= bit;
                }
            }
        }
        stats.candidates = touched.len();
        let query_weight: f64 = q.tokens.iter().map(|t| t.weight).sum();
        // With three keyed tokens or more, one token may pair without sharing a key (two typos
        // apart, or a transliteration the keys do not fold) and the entry is still scored, if
        // two full tokens (not particles or initials) reach it.
        let keyed = q.tokens.len() - free.count_ones() as usize;
        let spare_miss = keyed >= 3;
        let bound_of = |mask: u16| {
            let reached = |i: &usize| mask & (1 << i) != 0;
            let mut hit_weight: f64 = (0..q.tokens.len())
                .filter(reached)
                .map(|i| q.tokens[i].weight)
                .sum();
            let mut k = f64::from(mask.count_ones());
            if spare_miss && hit_weight >= 2.0 {
                let heaviest_missed = (0..q.tokens.len())
                    .filter(|i| !reached(i))
                    .map(|i| q.tokens[i].weight)
                    .fold(0.0, f64::max);
                if heaviest_missed > 0.0 {
                    hit_weight += heaviest_missed;
                    k += 1.0;
                }
            }
            (hit_weight + k) / (query_weight + k)
        };
        // Every mask's bound, computed once (queries rarely have more than a few tokens).
        let table: Vec<f64> = if q.tokens.len() <= 10 {
            (0..1u16 << q.tokens.len()).map(bound_of).collect()
        } else {
            Vec::new()
        };
        let mut matches = Vec::new();
        for id in touched {
            let id = id as usize;
            let mask = masks[id] | free;
            let bound = table
                .get(usize::from(mask))
                .copied()
                .unwrap_or_else(|| bound_of(mask));
            if bound + 1e-9 < query.threshold {
                continue;
            }
            stats.scored += 1;
            if let Some(m) = evaluate(&self.entries[id], &self.prepared[id], &q) {
                matches.push(m);
            }
        }
        (finish(matches, query.limit), stats)
    }

    /// Screens by scoring every entry of the index (prepared names, no blocking): what
    /// [`ScreeningIndex::screen`] would return with a perfect index. For benchmarks.
    pub fn screen_exhaustive(&self, query: &Query) -> Vec<Match> {
        let q = PreparedQuery::new(query);
        if q.tokens.is_empty() {
            return Vec::new();
        }
        let matches = self
            .entries
            .iter()
            .zip(&self.prepared)
            .filter_map(|(e, p)| evaluate(e, p, &q))
            .collect();
        finish(matches, query.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EntryKind, synthetic};
    use super::*;

    fn entry(id: &str, name: &str) -> ListEntry {
        ListEntry::new(id, "test", EntryKind::Sanction, name)
    }

    #[test]
    fn finds_by_name_alias_and_applies_filters() {
        let mut putin = entry("p1", "Vladimir Vladimirovich PUTIN");
        putin.aliases = vec!["Владимир Путин".into()];
        putin.birthdates = vec!["1952-10-07".into()];
        putin.countries = vec!["ru".into()];
        let mut other = entry("p2", "Vladimir Petrov");
        other.kind = EntryKind::Pep;
        other.list = "peps".into();
        let index = ScreeningIndex::build(vec![putin, other]);

        let m = index.screen(&Query::new("Putin Vladimir"));
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].entity_id, "p1");
        assert_eq!(m[0].matched_name, "Владимир Путин");
        assert_eq!(m[0].score, 1.0);
        assert_eq!(m[0].countries, ["RU"]);

        // Birth year off by one is tolerated, by more drops the entry.
        assert_eq!(
            index
                .screen(&Query::new("Vladimir Putin").with_birthdate("1953"))
                .len(),
            1
        );
        assert!(
            index
                .screen(&Query::new("Vladimir Putin").with_birthdate("1960-01-01"))
                .is_empty()
        );
        // A different country lowers the score without dropping a perfect name match.
        let moved = index.screen(&Query::new("Vladimir Putin").with_country("fr"));
        assert_eq!(moved.len(), 1);
        assert!(moved[0].country_mismatch);
        assert_eq!(moved[0].score, 1.0 - COUNTRY_MISMATCH_PENALTY);
        let same = index.screen(&Query::new("Vladimir Putin").with_country("RU"));
        assert!(!same[0].country_mismatch);

        // List and kind filters.
        let q = Query::new("Vladimir Petrov");
        assert_eq!(index.screen(&q.clone().with_lists(["test"])).len(), 0);
        assert_eq!(index.screen(&q.clone().with_lists(["peps"])).len(), 1);
        assert_eq!(
            index
                .screen(&q.clone().with_kinds([EntryKind::Sanction]))
                .len(),
            0
        );
        assert_eq!(index.screen(&q.with_kinds([EntryKind::Pep])).len(), 1);

        assert!(index.screen(&Query::new("  ")).is_empty());
        assert_eq!(
            index.lists().into_iter().collect::<Vec<_>>(),
            [("peps", 1), ("test", 1)]
        );
    }

    #[test]
    fn stop_blocks_still_find_entries_through_other_tokens() {
        // Every entry shares the first name "john": with a stop limit of 5 its block is a stop
        // block, and entries are found through their surnames.
        let entries: Vec<ListEntry> = (0..200)
            .map(|i| {
                entry(
                    &format!("e{i}"),
                    &format!("John {}", synthetic::surname_for(i)),
                )
            })
            .collect();
        let target = entries[77].clone();
        let index = ScreeningIndex::build_with_stop_limit(entries.clone(), 5);
        assert!(index.stats().stop_blocks >= 1);
        let (m, stats) = index.screen_with_stats(&Query::new(&target.name));
        assert_eq!(m[0].entity_id, "e77");
        assert!(stats.stop_blocks >= 1 && stats.candidates < 50, "{stats:?}");
        assert_eq!(m, brute_force_screen(&entries, &Query::new(&target.name)));
    }

    #[test]
    fn index_equals_brute_force_on_random_queries() {
        let mut rng = synthetic::Rng::new(7);
        let entries = synthetic::generate_entries(&mut rng, 3_000, "gen", EntryKind::Sanction, "g");
        let index = ScreeningIndex::build(entries.clone());
        let mut matched = 0;
        let (mut low_compared, mut low_same_top) = (0u32, 0u32);
        for i in 0..900 {
            let query = if i % 3 == 0 {
                Query::new(synthetic::random_person_name(&mut rng))
            } else {
                let e = &entries[rng.below(entries.len())];
                let (variant, _) = synthetic::spelling_variant(&mut rng, &e.name);
                let mut q = Query::new(variant);
                if rng.chance(0.3) && !e.birthdates.is_empty() {
                    q = q.with_birthdate(e.birthdates[0].clone());
                }
                if rng.chance(0.3) {
                    q = q.with_country(if rng.chance(0.5) { "FR" } else { "RU" });
                }
                q
            };
            let fast = index.screen(&query);
            let slow = index.screen_exhaustive(&query);
            if i % 30 == 0 {
                // The independent oracle (normalizes every entry again: slow in debug builds).
                assert_eq!(brute_force_screen(&entries, &query), slow, "{query:?}");
            }
            // At the default threshold: the very same matches.
            assert_eq!(fast, slow, "{query:?}");
            if !slow.is_empty() {
                matched += 1;
            }
            // At a low threshold, pairs two or more typos apart can be similar enough to count
            // and share no key: measured, not promised.
            let low = query.with_threshold(0.7);
            let (fast, slow) = (index.screen(&low), index.screen_exhaustive(&low));
            if let Some(top) = slow.first() {
                low_compared += 1;
                if fast.first().map(|m| &m.entity_id) == Some(&top.entity_id) {
                    low_same_top += 1;
                }
            }
        }
        assert!(matched > 500, "{matched}");
        let agreement = f64::from(low_same_top) / f64::from(low_compared);
        println!("threshold 0.7: same top match in {low_same_top}/{low_compared}");
        assert!(agreement > 0.97, "{agreement}");
    }

    #[test]
    fn memory_estimate_is_plausible() {
        let mut rng = synthetic::Rng::new(1);
        let entries = synthetic::generate_entries(&mut rng, 1_000, "gen", EntryKind::Sanction, "g");
        let index = ScreeningIndex::build(entries);
        let bytes = index.memory_estimate();
        assert!((100_000..10_000_000).contains(&bytes), "{bytes}");
    }
}
