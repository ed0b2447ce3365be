//! Name-to-name scoring: Jaro–Winkler per token pair, a greedy assignment of query tokens to
//! entry tokens (so token order does not matter), and a weighted mean that penalizes tokens
//! left unpaired.
//!
//! The score of a query name Q against an entry name E, both as normalized tokens:
//!
//! 1. Every pair (q, e) gets a similarity `s`: 1 for equal tokens; [`INITIAL_SIMILARITY`] when one
//!    side is a single letter that starts the other ("j" ~ "john"); otherwise Jaro–Winkler,
//!    raised to at least [`PHONETIC_SIMILARITY`] when both tokens have the same phonetic key
//!    ("yusuf" ~ "youssef").
//! 2. Pairs are taken greedily, most similar first, each token used once; pairs below
//!    [`PAIR_CUTOFF`] are never taken.
//! 3. A taken pair earns `credit(s) × (w(q) + w(e))` where `credit` stretches
//!    `[CREDIT_FLOOR, 1]` onto `[0, 1]` (a Jaro–Winkler of 0.8 between two different names
//!    is weak evidence, not 80 % of a match) and `w` is the token weight (1; particles ½;
//!    initials ¼).
//! 4. The score is the sum of credits over `Σ w(q) + Σ w(e paired) +`
//!    [`UNPAIRED_ENTRY_FACTOR`]` × Σ w(e unpaired)`: an unpaired query token costs its full
//!    weight, an unpaired entry token only part of it (lists often carry middle names and
//!    patronymics that a customer does not type). The score lies in `0..=1`.

use super::normalize::{MAX_TOKEN_LEN, name_tokens, phonetic_key, token_weight};

/// Token pairs less similar than this are never paired.
pub const PAIR_CUTOFF: f64 = 0.78;
/// The similarity at which a pair earns no credit; 1.0 earns full credit, linear between.
pub const CREDIT_FLOOR: f64 = 0.6;
/// Length differences up to this many letters cost nothing...
pub const LENGTH_GAP_FREE: usize = 2;
/// ...and every further letter lowers a Jaro–Winkler similarity by this much.
pub const LENGTH_GAP_PENALTY: f64 = 0.05;
/// The share of its weight an entry token that pairs with nothing costs.
pub const UNPAIRED_ENTRY_FACTOR: f64 = 0.5;
/// The similarity of two tokens with the same phonetic key (at least two consonants).
pub const PHONETIC_SIMILARITY: f64 = 0.92;
/// The similarity of an initial to a token it starts.
pub const INITIAL_SIMILARITY: f64 = 0.9;
/// Names are cut to this many tokens.
pub const MAX_NAME_TOKENS: usize = 16;

/// One normalized name token with its phonetic key and weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub text: Box<str>,
    pub key: Box<str>,
    pub weight: f64,
    /// Letters present (bit `c - b'a'`), present twice or more, and whether any letter occurs
    /// three times or more: an upper bound on Jaro matches without running Jaro.
    letters: u32,
    repeated: u32,
    triple: bool,
}

impl Token {
    /// A token from its normalized text (ASCII lowercase, as produced by [`name_tokens`]).
    pub fn new(text: &str) -> Self {
        let text = &text[..text.len().min(MAX_TOKEN_LEN)];
        let mut counts = [0u8; 26];
        for b in text.bytes() {
            if b.is_ascii_lowercase() {
                counts[usize::from(b - b'a')] += 1;
            }
        }
        let mask = |min: u8| {
            (0..26)
                .filter(|&i| counts[i] >= min)
                .fold(0u32, |m, i| m | 1 << i)
        };
        Self {
            text: text.into(),
            key: phonetic_key(text).into(),
            weight: token_weight(text),
            letters: mask(1),
            repeated: mask(2),
            triple: mask(3) != 0,
        }
    }
}

/// The tokens of a raw name, ready for scoring.
pub fn prepare_name(name: &str) -> Vec<Token> {
    name_tokens(name)
        .iter()
        .take(MAX_NAME_TOKENS)
        .map(|t| Token::new(t))
        .collect()
}

/// Jaro–Winkler similarity of two ASCII strings (prefix scale 0.1, prefix up to 4, boost only
/// above 0.7), identical to `strsim::jaro_winkler` on ASCII input but allocation-free.
/// Inputs longer than [`MAX_TOKEN_LEN`] bytes are cut.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let a = &a.as_bytes()[..a.len().min(MAX_TOKEN_LEN)];
    let b = &b.as_bytes()[..b.len().min(MAX_TOKEN_LEN)];
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut a_flags = [false; MAX_TOKEN_LEN];
    let mut b_flags = [false; MAX_TOKEN_LEN];
    let mut matches = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_flags[j] && b[j] == ca {
                a_flags[i] = true;
                b_flags[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut j = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        if a_flags[i] {
            while !b_flags[j] {
                j += 1;
            }
            if b[j] != ca {
                transpositions += 1;
            }
            j += 1;
        }
    }
    let m = matches as f64;
    let jaro =
        (m / a.len() as f64 + m / b.len() as f64 + (m - (transpositions / 2) as f64) / m) / 3.0;
    if jaro > 0.7 {
        let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
        jaro + 0.1 * prefix as f64 * (1.0 - jaro)
    } else {
        jaro
    }
}

/// The similarity of two tokens in `0..=1` (see the module documentation).
pub fn token_similarity(a: &Token, b: &Token) -> f64 {
    if a.letters == b.letters && a.text == b.text {
        return 1.0;
    }
    let (ta, tb) = (a.text.as_bytes(), b.text.as_bytes());
    if ta.len() == 1 || tb.len() == 1 {
        return if ta.first() == tb.first() {
            INITIAL_SIMILARITY
        } else {
            0.0
        };
    }
    let mut jw = jaro_winkler(&a.text, &b.text);
    let length_gap = ta.len().abs_diff(tb.len());
    if length_gap > LENGTH_GAP_FREE {
        // "timoshchev" is not "timoshchmedaykin", whatever the shared prefix says.
        jw -= LENGTH_GAP_PENALTY * (length_gap - LENGTH_GAP_FREE) as f64;
    }
    if a.key.len() >= 2 && a.key == b.key {
        jw.max(PHONETIC_SIMILARITY)
    } else {
        jw
    }
}

/// [`token_similarity`] for pairing: pairs that cannot reach [`PAIR_CUTOFF`] are 0, found
/// without running Jaro–Winkler when the letters the tokens share are too few.
fn pair_similarity(a: &Token, b: &Token) -> f64 {
    if (a.letters != b.letters || a.text != b.text)
        && a.text.len() > 1
        && b.text.len() > 1
        && !(a.triple || b.triple)
        && !(a.key.len() >= 2 && a.key == b.key)
    {
        // Jaro matches pair equal letters, so there are at most as many as the letters the
        // two tokens share, counting a letter twice when both have it twice.
        let shared = (a.letters & b.letters).count_ones() + (a.repeated & b.repeated).count_ones();
        let (la, lb) = (a.text.len() as f64, b.text.len() as f64);
        let m = f64::from(shared).min(la).min(lb);
        let jaro = (m / la + m / lb + 1.0) / 3.0;
        let prefix = a
            .text
            .bytes()
            .zip(b.text.bytes())
            .take(4)
            .take_while(|(x, y)| x == y)
            .count();
        let mut bound = jaro + 0.1 * prefix as f64 * (1.0 - jaro);
        let gap = a.text.len().abs_diff(b.text.len());
        if gap > LENGTH_GAP_FREE {
            bound -= LENGTH_GAP_PENALTY * (gap - LENGTH_GAP_FREE) as f64;
        }
        if bound < PAIR_CUTOFF {
            return 0.0;
        }
    }
    token_similarity(a, b)
}

fn credit(similarity: f64) -> f64 {
    ((similarity - CREDIT_FLOOR) / (1.0 - CREDIT_FLOOR)).clamp(0.0, 1.0)
}

/// The score of a query name against an entry name, both prepared (see the module
/// documentation). Symmetric in neither argument: `query` tokens left unpaired cost more.
pub fn score_tokens(query: &[Token], entry: &[Token]) -> f64 {
    let (n, m) = (
        query.len().min(MAX_NAME_TOKENS),
        entry.len().min(MAX_NAME_TOKENS),
    );
    if n == 0 || m == 0 {
        return 0.0;
    }
    // Row-major n × m similarities; on the stack for the usual handful of tokens.
    let mut small = [0f64; 64];
    let mut large = Vec::new();
    let sims: &mut [f64] = if n * m <= small.len() {
        &mut small[..n * m]
    } else {
        large.resize(n * m, 0.0);
        &mut large
    };
    let mut any = false;
    for (i, q) in query[..n].iter().enumerate() {
        for (j, e) in entry[..m].iter().enumerate() {
            let s = pair_similarity(q, e);
            if s >= PAIR_CUTOFF {
                sims[i * m + j] = s;
                any = true;
            }
        }
    }
    let query_weight: f64 = query[..n].iter().map(|t| t.weight).sum();
    let entry_weight: f64 = entry[..m].iter().map(|t| t.weight).sum();
    if !any {
        return 0.0;
    }
    let mut q_used = 0u32;
    let mut e_used = 0u32;
    let mut earned = 0.0;
    let mut paired_entry_weight = 0.0;
    loop {
        let mut best = (0.0, 0, 0);
        for (i, row) in sims.chunks_exact(m).enumerate() {
            if q_used & (1 << i) != 0 {
                continue;
            }
            for (j, &s) in row.iter().enumerate() {
                if s > best.0 && e_used & (1 << j) == 0 {
                    best = (s, i, j);
                }
            }
        }
        let (s, i, j) = best;
        if s < PAIR_CUTOFF {
            break;
        }
        q_used |= 1 << i;
        e_used |= 1 << j;
        earned += credit(s) * (query[i].weight + entry[j].weight);
        paired_entry_weight += entry[j].weight;
    }
    let unpaired_entry_weight = entry_weight - paired_entry_weight;
    let denominator =
        query_weight + paired_entry_weight + UNPAIRED_ENTRY_FACTOR * unpaired_entry_weight;
    (earned / denominator).clamp(0.0, 1.0)
}

/// The score of two raw names (convenience over [`prepare_name`] and [`score_tokens`]).
pub fn name_similarity(query: &str, entry: &str) -> f64 {
    score_tokens(&prepare_name(query), &prepare_name(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaro_winkler_agrees_with_strsim_on_ascii() {
        let words = [
            "",
            "a",
            "ab",
            "martha",
            "marhta",
            "dwayne",
            "duane",
            "dixon",
            "dicksonx",
            "smith",
            "smiht",
            "smyth",
            "vladimir",
            "wladimir",
            "mohammed",
            "muhammad",
            "abcdefghijklmnop",
            "li",
            "wei",
            "wie",
            "jellyfish",
            "smellyfish",
        ];
        for a in words {
            for b in words {
                let ours = jaro_winkler(a, b);
                let theirs = strsim::jaro_winkler(a, b);
                assert!(
                    (ours - theirs).abs() < 1e-12,
                    "{a:?} {b:?}: {ours} vs {theirs}"
                );
            }
        }
    }

    #[test]
    fn the_letter_bound_never_hides_a_pair() {
        let words = [
            "mohammed",
            "muhammad",
            "mohamed",
            "ahmed",
            "ahmad",
            "smith",
            "smiht",
            "smyth",
            "schmidt",
            "ivan",
            "ivanov",
            "evan",
            "natalia",
            "natalya",
            "anna",
            "ana",
            "hanna",
            "yusuf",
            "youssef",
            "jusuf",
            "li",
            "lee",
            "wei",
            "wie",
            "xiaoming",
            "xiaominh",
            "aaron",
            "aron",
            "barbara",
            "barbra",
            "abdulrahman",
            "abdul",
        ];
        for a in words {
            for b in words {
                let (ta, tb) = (Token::new(a), Token::new(b));
                let exact = token_similarity(&ta, &tb);
                let fast = pair_similarity(&ta, &tb);
                if exact >= PAIR_CUTOFF {
                    assert_eq!(fast, exact, "{a} {b}");
                } else {
                    assert!(fast < PAIR_CUTOFF, "{a} {b}");
                }
            }
        }
    }

    #[test]
    fn order_case_and_accents_do_not_matter() {
        assert_eq!(name_similarity("Vladimir Putin", "PUTIN, Vladimir"), 1.0);
        assert_eq!(name_similarity("José Núñez", "jose nunez"), 1.0);
        assert_eq!(name_similarity("Владимир Путин", "Vladimir Putin"), 1.0);
    }

    #[test]
    fn typos_score_high_and_different_names_low() {
        assert!(name_similarity("Jon Smiht", "John Smith") > 0.85);
        assert!(name_similarity("Mohamed Al Rashid", "Muhammad al-Rashid") > 0.85);
        assert!(name_similarity("John Brown", "John Smith") < 0.6);
        assert!(name_similarity("Maria Garcia", "Pedro Alvarez") < 0.1);
    }

    #[test]
    fn middle_names_and_initials_cost_little_missing_surnames_a_lot() {
        let full = name_similarity("Vladimir Putin", "Vladimir Vladimirovich Putin");
        assert!(full > 0.85, "{full}");
        let initial = name_similarity("John Q. Smith", "John Smith");
        assert!(initial > 0.9, "{initial}");
        let only_surname = name_similarity("Putin", "Vladimir Putin");
        assert!(only_surname < 0.85, "{only_surname}");
    }

    #[test]
    fn scores_stay_in_unit_interval() {
        let names = ["a", "a a a", "al bin", "J", "x y z w", "ab ab", "Zz"];
        for a in names {
            for b in names {
                let s = name_similarity(a, b);
                assert!((0.0..=1.0).contains(&s), "{a} {b} {s}");
            }
        }
        assert_eq!(name_similarity("", "John"), 0.0);
    }
}
