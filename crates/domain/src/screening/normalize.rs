//! Name normalization for screening: Unicode folding, transliteration, honorific removal,
//! tokenization and a phonetic ("consonant skeleton") key per token.
//!
//! Kept separate from [`crate::names`] on purpose: screening keys are persisted in an index
//! and their exact shape is part of the matching behaviour measured by the quality tests.

/// Tokens longer than this are cut (no real name part is; it bounds the matcher's work).
pub const MAX_TOKEN_LEN: usize = 32;

/// Words dropped from names before matching: titles, honorifics and generational suffixes.
const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mister",
    "madam",
    "mme",
    "mlle",
    "dr",
    "prof",
    "professor",
    "sir",
    "dame",
    "lord",
    "lady",
    "sheikh",
    "shaikh",
    "sheik",
    "shaykh",
    "haji",
    "hajji",
    "hadji",
    "mullah",
    "imam",
    "ayatollah",
    "gen",
    "general",
    "col",
    "colonel",
    "capt",
    "captain",
    "lt",
    "sgt",
    "rev",
    "reverend",
    "hon",
    "honorable",
    "honourable",
    "excellency",
    "herr",
    "frau",
    "senor",
    "senora",
    "jr",
    "jnr",
    "sr",
    "snr",
    "ii",
    "iii",
    "iv",
    "esq",
    "phd",
];

/// Connecting particles ("al", "bin", "van", "de", …): matched like any token but weigh less.
const PARTICLES: &[&str] = &[
    "al", "el", "ul", "bin", "ibn", "bint", "ben", "abu", "van", "von", "der", "den", "de", "del",
    "della", "di", "da", "dos", "das", "du", "la", "le", "ter", "ten", "y", "e",
];

/// Spellings of one particle between transliteration systems: "el"/"ul" → "al",
/// "ibn"/"ben" → "bin".
fn canonical_particle(token: &str) -> Option<&'static str> {
    match token {
        "el" | "ul" => Some("al"),
        "ibn" | "ben" => Some("bin"),
        _ => None,
    }
}

/// Transliterates `name` to ASCII, lowercases it, turns punctuation into spaces (apostrophes
/// join: "O'Brien" → "obrien"), drops honorifics, writes particles one way ("el" → "al",
/// "ibn" → "bin") and returns the tokens in their original
/// order. A name made only of honorifics keeps them (it is all there is to match).
pub fn name_tokens(name: &str) -> Vec<String> {
    let ascii = deunicode::deunicode(name);
    let mut cleaned = String::with_capacity(ascii.len());
    for c in ascii.chars() {
        if c.is_ascii_alphabetic() {
            cleaned.push(c.to_ascii_lowercase());
        } else if matches!(c, '\'' | '`' | '\u{b4}') {
            // Apostrophes join the parts of one name: O'Brien, D'Angelo.
        } else {
            cleaned.push(' ');
        }
    }
    let all: Vec<String> = cleaned
        .split_ascii_whitespace()
        .map(|t| t[..t.len().min(MAX_TOKEN_LEN)].to_owned())
        .collect();
    let kept: Vec<String> = all
        .iter()
        .filter(|t| !HONORIFICS.contains(&t.as_str()))
        .map(|t| canonical_particle(t).unwrap_or(t).to_owned())
        .collect();
    if kept.is_empty() { all } else { kept }
}

/// The normalized form of a name: its tokens joined by single spaces, in original order.
///
/// `normalize_name("Владимир  Путин")` is `"vladimir putin"`.
pub fn normalize_name(name: &str) -> String {
    name_tokens(name).join(" ")
}

/// Whether `token` (normalized) is a connecting particle such as "al", "bin" or "van".
pub fn is_particle(token: &str) -> bool {
    PARTICLES.contains(&token)
}

/// The weight of a normalized token in a name score: initials count a quarter, particles half,
/// every other token one.
pub fn token_weight(token: &str) -> f64 {
    if token.len() == 1 {
        0.25
    } else if is_particle(token) {
        0.5
    } else {
        1.0
    }
}

fn is_vowel(b: u8) -> bool {
    matches!(b, b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
}

/// A compact phonetic key for a normalized (ASCII lowercase) token: its consonant skeleton after
/// folding common transliteration alternatives, so that spellings of one name collide:
/// "mohammed", "muhammad" and "mohamed" → "mhmt"; "wladimir" and "vladimir" → "fltmr";
/// "youssef" and "yusuf" → "sf"; "mikhail" and "mihail" → "mhl"; "schmidt" and "shmit" → "smt".
///
/// Rules: vowels (and y) vanish; ph→f, th→t, gh→g, ck→k, qu→k, sch/sh→s, zh/dzh/j→j,
/// tch/ch→c, kh→h, ts/tz→s, x→ks; c→s before e/i/y, else k; q→k; d→t; v/w→f; z→s;
/// h is kept only before a vowel; equal codes collapse, even across vowels.
pub fn phonetic_key(token: &str) -> String {
    let b = token.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let next_is_vowel = |k: usize| rest.get(k).copied().is_some_and(is_vowel);
        let (code, advance): (Option<u8>, usize) = match rest {
            [b's', b'c', b'h', ..] => (Some(b's'), 3),
            [b'd', b'z', b'h', ..] => (Some(b'j'), 3),
            [b't', b'c', b'h', ..] => (Some(b'c'), 3),
            [b't', b's', b'c', b'h', ..] => (Some(b'c'), 4),
            [b'c', b'h', ..] => (Some(b'c'), 2),
            [b's', b'h', ..] => (Some(b's'), 2),
            [b'z', b'h', ..] => (Some(b'j'), 2),
            [b'k', b'h', ..] => (Some(b'h'), 2),
            [b'p', b'h', ..] => (Some(b'f'), 2),
            [b't', b'h', ..] => (Some(b't'), 2),
            [b'g', b'h', ..] => (Some(b'g'), 2),
            [b'c', b'k', ..] => (Some(b'k'), 2),
            [b'q', b'u', ..] => (Some(b'k'), 2),
            [b't', b's', ..] | [b't', b'z', ..] => (Some(b's'), 2),
            [b'x', ..] => {
                push_code(&mut out, b'k');
                (Some(b's'), 1)
            }
            [b'c', ..] => {
                if rest
                    .get(1)
                    .is_some_and(|&n| matches!(n, b'e' | b'i' | b'y'))
                {
                    (Some(b's'), 1)
                } else {
                    (Some(b'k'), 1)
                }
            }
            [b'h', ..] => (next_is_vowel(1).then_some(b'h'), 1),
            [c, ..] if is_vowel(*c) => (None, 1),
            [b'q', ..] => (Some(b'k'), 1),
            [b'd', ..] => (Some(b't'), 1),
            [b'v', ..] | [b'w', ..] => (Some(b'f'), 1),
            [b'z', ..] => (Some(b's'), 1),
            [c, ..] => (Some(*c), 1),
            [] => break,
        };
        // Equal codes collapse even across vowels ("anana" → "n"): keys stay short.
        if let Some(c) = code {
            push_code(&mut out, c);
        }
        i += advance;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn push_code(out: &mut Vec<u8>, c: u8) {
    if out.last() != Some(&c) {
        out.push(c);
    }
}

/// The birth year of a date given as `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (anything after the
/// year is ignored), if it starts with four digits.
pub fn birth_year(date: &str) -> Option<i32> {
    let date = date.trim();
    let head = date.get(..4)?;
    if head.bytes().all(|b| b.is_ascii_digit()) && date.as_bytes().get(4).is_none_or(|&b| b == b'-')
    {
        head.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents_scripts_case_and_punctuation() {
        assert_eq!(
            normalize_name("José  MARÍA Núñez-García"),
            "jose maria nunez garcia"
        );
        assert_eq!(normalize_name("Владимир Путин"), "vladimir putin");
        assert_eq!(normalize_name("Jürgen Müller"), "jurgen muller");
        assert_eq!(normalize_name("Seán O'Brien"), "sean obrien");
        assert_eq!(
            normalize_name("Ολυμπία Παπαδοπούλου"),
            "olumpia papadopoulou"
        );
        assert_eq!(normalize_name("STRAẞE, Ægir"), "strasse aegir");
        assert_eq!(normalize_name("  "), "");
    }

    #[test]
    fn drops_honorifics_but_not_everything() {
        assert_eq!(
            name_tokens("Dr. Sheikh Ahmed bin Ali, Jr."),
            ["ahmed", "bin", "ali"]
        );
        assert_eq!(
            name_tokens("Ahmed ibn Ali el-Masri"),
            ["ahmed", "bin", "ali", "al", "masri"]
        );
        assert_eq!(name_tokens("Sheikh"), ["sheikh"]);
    }

    #[test]
    fn token_order_is_kept_by_normalization_and_ignored_by_matching() {
        // Order is preserved here; the scorer matches tokens as a set (see score.rs tests).
        assert_eq!(normalize_name("PUTIN, Vladimir"), "putin vladimir");
    }

    #[test]
    fn phonetic_keys_collide_for_common_spelling_variants() {
        let same = [
            ("mohammed", "muhammad"),
            ("mohamed", "muhammad"),
            ("vladimir", "wladimir"),
            ("yusuf", "youssef"),
            ("mikhail", "mihail"),
            ("schmidt", "shmit"),
            ("philip", "filip"),
            ("alexander", "aleksandr"),
            ("tchaikovsky", "chaikovski"),
            ("zhukov", "jukov"),
            ("smith", "smiht"),
        ];
        for (a, b) in same {
            assert_eq!(phonetic_key(a), phonetic_key(b), "{a} vs {b}");
        }
        assert_eq!(phonetic_key("mohammed"), "mhmt");
        assert_ne!(phonetic_key("petrov"), phonetic_key("ivanov"));
        assert_eq!(phonetic_key("aeiou"), "");
    }

    #[test]
    fn weights_and_birth_years() {
        assert_eq!(token_weight("j"), 0.25);
        assert_eq!(token_weight("bin"), 0.5);
        assert_eq!(token_weight("petrov"), 1.0);
        assert_eq!(birth_year("1960-01-12"), Some(1960));
        assert_eq!(birth_year("1960"), Some(1960));
        assert_eq!(birth_year("1960-01"), Some(1960));
        assert_eq!(birth_year("19601"), None);
        assert_eq!(birth_year("circa 1960"), None);
    }
}
