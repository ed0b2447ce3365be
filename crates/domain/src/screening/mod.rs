//! Watchlist and politically-exposed-person screening: list entries, parsers for list files,
//! name normalization and scoring, and an in-memory index that keeps one screening fast on
//! lists of hundreds of thousands of names.
//!
//! - [`parse`]: OpenSanctions "simple" CSV (`targets.simple.csv`) and OFAC `sdn.csv` readers,
//!   as iterators (for progress) or whole-file functions.
//! - [`normalize`]: Unicode folding and transliteration, honorifics, tokens, phonetic keys.
//! - [`score`]: Jaro–Winkler token scoring with an order-insensitive assignment.
//! - [`index`]: [`ScreeningIndex`] (blocking on tokens, phonetic keys and affixes) and
//!   [`brute_force_screen`], the same scoring over every entry (test oracle, benchmark).
//! - [`synthetic`]: deterministic generated persons and spelling variants (shipped sample lists,
//!   quality tests, benchmark).
//!
//! Filters applied after the name score:
//! - **birthdate**: when the query and the entry both have birth years and every entry year is
//!   more than [`BIRTH_YEAR_TOLERANCE`] away from the query's, the entry is dropped;
//! - **country**: when the query has a country and the entry lists countries none of which is
//!   the query's, the score is lowered by [`COUNTRY_MISMATCH_PENALTY`] (not dropped: people
//!   move and lists are incomplete).

use serde::{Deserialize, Serialize};

pub mod countries;
pub mod index;
pub mod normalize;
pub mod parse;
pub mod score;
pub mod synthetic;

#[cfg(test)]
mod quality_tests;

pub use index::{ScreeningIndex, brute_force_screen};
pub use normalize::normalize_name;
pub use parse::{
    ListFormat, ListReader, ParseError, Parsed, parse_list, parse_ofac_sdn_csv,
    parse_opensanctions_csv, read_list,
};

/// The default match threshold; a template's `match-threshold` (0.5..=1.0) overrides it.
pub const DEFAULT_THRESHOLD: f64 = 0.85;
/// At most this many matches are returned by default.
pub const DEFAULT_LIMIT: usize = 20;
/// Birth years further apart than this drop the candidate.
pub const BIRTH_YEAR_TOLERANCE: i32 = 1;
/// Subtracted from the score when the query's country is not among the entry's countries.
pub const COUNTRY_MISMATCH_PENALTY: f64 = 0.1;

string_enum! {
    /// What kind of list entry: a sanctioned person, a politically exposed person, or other.
    pub enum EntryKind ("list entry kind", all: slice) {
        Sanction = "sanction",
        Pep = "pep",
        Other = "other",
    }
}

/// One person on a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ListEntry {
    /// The list's own identifier of the person (OpenSanctions id, OFAC `ent_num`).
    pub entity_id: String,
    /// The name of the list it was imported into (`idshare lists import --list NAME`).
    pub list: String,
    pub kind: EntryKind,
    /// The primary name as the list writes it.
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default)]
    pub birthdates: Vec<String>,
    /// ISO 3166-1 alpha-2, uppercase (lists' other country codes are kept uppercased).
    #[serde(default)]
    pub countries: Vec<String>,
    /// Sanctions programmes, datasets or topics the list gives.
    #[serde(default)]
    pub programs: Vec<String>,
}

impl ListEntry {
    /// An entry with only a name.
    pub fn new(
        entity_id: impl Into<String>,
        list: impl Into<String>,
        kind: EntryKind,
        name: impl Into<String>,
    ) -> Self {
        Self {
            entity_id: entity_id.into(),
            list: list.into(),
            kind,
            name: name.into(),
            aliases: Vec::new(),
            birthdates: Vec::new(),
            countries: Vec::new(),
            programs: Vec::new(),
        }
    }

    /// Trims every value, uppercases countries, and drops empty values, duplicates and
    /// aliases equal to the name.
    pub fn normalized(mut self) -> Self {
        fn clean(values: &mut Vec<String>, upper: bool) {
            let mut seen = std::collections::HashSet::new();
            *values = values
                .drain(..)
                .map(|v| {
                    let v = v.trim();
                    if upper {
                        v.to_ascii_uppercase()
                    } else {
                        v.to_owned()
                    }
                })
                .filter(|v| !v.is_empty() && seen.insert(v.clone()))
                .collect();
        }
        self.entity_id = self.entity_id.trim().to_owned();
        self.name = self.name.trim().to_owned();
        clean(&mut self.aliases, false);
        let name = self.name.clone();
        self.aliases.retain(|a| *a != name);
        clean(&mut self.birthdates, false);
        clean(&mut self.countries, true);
        clean(&mut self.programs, false);
        self
    }

    /// The primary name, then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// One screening request.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The full name, in any order ("first middle last" or "LAST, First").
    pub name: String,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; only the year is used.
    pub birthdate: Option<String>,
    /// ISO 3166-1 alpha-2 (any case).
    pub country: Option<String>,
    /// Lists to screen against; empty means all.
    pub lists: Vec<String>,
    /// Kinds of entries to consider; empty means all.
    pub kinds: Vec<EntryKind>,
    /// Matches scoring below this are not returned.
    pub threshold: f64,
    /// At most this many matches, best first.
    pub limit: usize,
}

impl Query {
    /// A query for a full name against all lists, default threshold and limit.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            birthdate: None,
            country: None,
            lists: Vec::new(),
            kinds: Vec::new(),
            threshold: DEFAULT_THRESHOLD,
            limit: DEFAULT_LIMIT,
        }
    }

    /// A query from an inquiry's name parts (any may be missing or empty).
    pub fn from_parts(first: Option<&str>, middle: Option<&str>, last: Option<&str>) -> Self {
        let parts: Vec<&str> = [first, middle, last]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        Self::new(parts.join(" "))
    }

    pub fn with_birthdate(mut self, birthdate: impl Into<String>) -> Self {
        self.birthdate = Some(birthdate.into());
        self
    }

    pub fn with_country(mut self, country: impl Into<String>) -> Self {
        self.country = Some(country.into());
        self
    }

    pub fn with_lists<S: Into<String>>(mut self, lists: impl IntoIterator<Item = S>) -> Self {
        self.lists = lists.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_kinds(mut self, kinds: impl IntoIterator<Item = EntryKind>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self
    }

    pub fn with_threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// One list entry that matched a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Match {
    pub entity_id: String,
    pub list: String,
    pub kind: EntryKind,
    /// The entry's primary name.
    pub name: String,
    /// The name or alias that scored best.
    pub matched_name: String,
    /// In `0..=1`, rounded to four decimals.
    pub score: f64,
    pub birthdates: Vec<String>,
    pub countries: Vec<String>,
    pub programs: Vec<String>,
    /// The query's country is not among the entry's (the score includes the penalty).
    pub country_mismatch: bool,
}
