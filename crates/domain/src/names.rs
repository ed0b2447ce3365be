//! Person names: normalization and a tolerant comparison of a first/last name pair with another.
//!
//! Normalization folds what does not distinguish people: case, accents, compatibility forms,
//! scripts (transliterated to ASCII), punctuation. The comparison then tolerates what differs
//! between how one person's name is written in two places: first and last name swapped, middle
//! names on one side only, names truncated by an MRZ, names split differently between first and
//! last, spaces and apostrophes dropped (`O'Brien` / `OBRIEN`), and the ICAO 9303 transliteration
//! of umlauts and similar letters (`Müller` is `MUELLER` in an MRZ, and `muller` once stripped).
//! It does not tolerate different names: `Anna` is not `Hanna`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Shortest token that may stand for a longer one it begins (MRZ truncation).
const MIN_PREFIX: usize = 3;

/// NFKD, combining marks stripped, transliterated to ASCII, lowercased, every character other
/// than a letter or digit turned into a space, whitespace collapsed.
pub fn normalize(name: &str) -> String {
    let stripped: String = name.nfkd().filter(|c| !is_combining_mark(*c)).collect();
    let ascii = deunicode::deunicode(&stripped).to_ascii_lowercase();
    let spaced: String = ascii
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The words of the normalized name.
pub fn tokens(name: &str) -> Vec<String> {
    normalize(name)
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// ICAO 9303 part 3 transliterations that differ from dropping the diacritic (`Ü` → `UE`,
/// `Å` → `AA`, `Ø` → `OE`, …), applied before [`normalize`].
fn icao_transliterate(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.nfc() {
        match c {
            'Ä' | 'Æ' => out.push_str("AE"),
            'ä' | 'æ' => out.push_str("ae"),
            'Ö' | 'Ø' | 'Œ' => out.push_str("OE"),
            'ö' | 'ø' | 'œ' => out.push_str("oe"),
            'Ü' => out.push_str("UE"),
            'ü' => out.push_str("ue"),
            'Å' => out.push_str("AA"),
            'å' => out.push_str("aa"),
            _ => out.push(c),
        }
    }
    out
}

/// One word of a name with its accepted spellings (plain, and ICAO-transliterated when that
/// differs).
type Token = Vec<String>;

fn variant_tokens(name: &str) -> Vec<Token> {
    let plain = tokens(name);
    let icao = tokens(&icao_transliterate(name));
    if plain.len() != icao.len() {
        return plain.into_iter().map(|t| vec![t]).collect();
    }
    plain
        .into_iter()
        .zip(icao)
        .map(|(p, i)| if p == i { vec![p] } else { vec![p, i] })
        .collect()
}

fn spelling_match(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short == long || (short.len() >= MIN_PREFIX && long.starts_with(short))
}

fn token_match(a: &Token, b: &Token) -> bool {
    a.iter().any(|x| b.iter().any(|y| spelling_match(x, y)))
}

/// Whether every token of `short` matches a distinct token of `long`, in any order.
fn embeds(short: &[Token], long: &[Token], used: &mut Vec<bool>) -> bool {
    let Some((first, rest)) = short.split_first() else {
        return true;
    };
    for (i, candidate) in long.iter().enumerate() {
        if !used[i] && token_match(first, candidate) {
            used[i] = true;
            if embeds(rest, long, used) {
                return true;
            }
            used[i] = false;
        }
    }
    false
}

fn subset_match(a: &[Token], b: &[Token]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    embeds(short, long, &mut vec![false; long.len()])
}

/// Every spelling of the tokens written together (`o brien` → `obrien`).
fn joined(tokens: &[Token]) -> Vec<String> {
    tokens.iter().fold(vec![String::new()], |acc, token| {
        acc.iter()
            .flat_map(|prefix| token.iter().map(move |s| format!("{prefix}{s}")))
            .take(16)
            .collect()
    })
}

fn joined_match(a: &[Token], b: &[Token]) -> bool {
    let (ja, jb) = (joined(a), joined(b));
    ja.iter().any(|x| jb.iter().any(|y| spelling_match(x, y)))
}

/// One part of a name (first or last) against another: both empty, or both non-empty and one's
/// words all found among the other's, or equal once written together.
fn part_match(a: &[Token], b: &[Token]) -> bool {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => true,
        (false, false) => subset_match(a, b) || joined_match(a, b),
        _ => false,
    }
}

/// Whether the name `a_first a_last` and the name `b_first b_last` are the same person's name as
/// written in two places (see the module documentation for what is tolerated). Two empty names
/// do not match.
pub fn names_match(a_first: &str, a_last: &str, b_first: &str, b_last: &str) -> bool {
    let (af, al) = (variant_tokens(a_first), variant_tokens(a_last));
    let (bf, bl) = (variant_tokens(b_first), variant_tokens(b_last));
    if (af.is_empty() && al.is_empty()) || (bf.is_empty() && bl.is_empty()) {
        return false;
    }
    if part_match(&af, &bf) && part_match(&al, &bl) {
        return true;
    }
    if part_match(&af, &bl) && part_match(&al, &bf) {
        return true;
    }
    // The same words split differently between first and last name.
    let a: Vec<Token> = af.iter().chain(&al).cloned().collect();
    let b: Vec<Token> = bf.iter().chain(&bl).cloned().collect();
    let b_swapped: Vec<Token> = bl.iter().chain(&bf).cloned().collect();
    (a.len() == b.len() && subset_match(&a, &b))
        || joined_match(&a, &b)
        || joined_match(&a, &b_swapped)
}

/// A name as a role that must not read personal data sees it: each word's first letter, the
/// rest hidden (`Jane Doe` → `J••• D•••`), so that rows stay told apart without naming anyone.
pub fn mask(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().next())
        .map(|initial| format!("{initial}•••"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A person's display name from the first and last name fields, when either is filled.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let words: Vec<&str> = [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_initials() {
        assert_eq!(mask("Jane Doe"), "J••• D•••");
        assert_eq!(mask("  Élodie   de la Tour "), "É••• d••• l••• T•••");
        assert_eq!(mask(""), "");
    }

    proptest::proptest! {
        #[test]
        fn masks_show_one_letter_a_word(name in "[A-Za-zÀ-ÿ' -]{0,40}") {
            let masked = mask(&name);
            let words: Vec<&str> = name.split_whitespace().collect();
            let masked_words: Vec<&str> = masked.split(' ').filter(|w| !w.is_empty()).collect();
            proptest::prop_assert_eq!(masked_words.len(), words.len());
            for (word, shown) in words.iter().zip(masked_words) {
                let initial = word.chars().next().expect("a word has a letter");
                proptest::prop_assert_eq!(shown, format!("{initial}•••"));
            }
        }
    }

    #[test]
    fn full_names_join_what_is_filled() {
        assert_eq!(
            full_name(Some("Jane"), Some("Doe")).as_deref(),
            Some("Jane Doe")
        );
        assert_eq!(full_name(None, Some(" Doe ")).as_deref(), Some("Doe"));
        assert_eq!(full_name(Some(""), None), None);
        assert_eq!(full_name(None, None), None);
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("  Zoë  O'Neil-Smith "), "zoe o neil smith");
        assert_eq!(normalize("ÅNGSTRÖM"), "angstrom");
        assert_eq!(normalize("Straße"), "strasse");
        assert_eq!(normalize("Ǆuro"), "dzuro");
        assert_eq!(normalize("ﬁona"), "fiona");
        assert_eq!(normalize("Łukasz Żółć"), "lukasz zolc");
        assert_eq!(normalize("Иван Петров"), "ivan petrov");
        assert_eq!(normalize("Cañón, Jr."), "canon jr");
        assert_eq!(normalize("e\u{301}lodie"), "elodie");
        assert_eq!(normalize("--"), "");
        assert_eq!(
            tokens("Jean-Pierre  de la Tour"),
            ["jean", "pierre", "de", "la", "tour"]
        );
        assert!(tokens(" '' ").is_empty());
    }

    #[test]
    fn same_name_in_another_case_and_accents() {
        assert!(names_match(
            "Anna Maria",
            "Eriksson",
            "ANNA MARIA",
            "ERIKSSON"
        ));
        assert!(names_match("José", "García", "JOSE", "GARCIA"));
        assert!(names_match("Élodie", "Lefèvre", "elodie", "lefevre"));
        assert!(names_match("Иван", "Петров", "IVAN", "PETROV"));
    }

    #[test]
    fn umlauts_either_way() {
        assert!(names_match("Jürgen", "Müller", "JUERGEN", "MUELLER"));
        assert!(names_match("Jürgen", "Müller", "JURGEN", "MULLER"));
        assert!(names_match("JUERGEN", "MUELLER", "Jürgen", "Müller"));
        assert!(names_match("Søren", "Kierkegård", "SOEREN", "KIERKEGAARD"));
        assert!(names_match("Søren", "Kierkegård", "SOREN", "KIERKEGARD"));
        // Without the umlaut on either side there is nothing to fold.
        assert!(!names_match("Jurgen", "Muller", "JUERGEN", "MUELLER"));
    }

    #[test]
    fn order_and_split() {
        assert!(names_match("Eriksson", "Anna", "Anna", "Eriksson"));
        assert!(names_match(
            "Anna",
            "Maria Eriksson",
            "Anna Maria",
            "Eriksson"
        ));
        assert!(names_match("", "Anna Eriksson", "Anna", "Eriksson"));
    }

    #[test]
    fn middle_and_second_names_on_one_side() {
        assert!(names_match("Anna", "Eriksson", "Anna Maria", "Eriksson"));
        assert!(names_match("Anna Maria", "Eriksson", "Maria", "Eriksson"));
        assert!(names_match("José", "García López", "JOSE", "GARCIA"));
    }

    #[test]
    fn mrz_truncation_and_punctuation() {
        assert!(names_match(
            "Maximilian",
            "Schwarzenegger",
            "MAXIMIL",
            "SCHWARZENEGGER"
        ));
        assert!(names_match("Sean", "O'Brien", "SEAN", "OBRIEN"));
        assert!(names_match("Sean", "O'Brien", "SEAN", "O BRIEN"));
        assert!(names_match(
            "Jean-Pierre",
            "Dupont",
            "JEAN PIERRE",
            "DUPONT"
        ));
        assert!(names_match("Jan", "van der Berg", "JAN", "VANDERBERG"));
        assert!(!names_match(
            "Maximilian",
            "Schwarzenegger",
            "MA",
            "SCHWARZENEGGER"
        ));
    }

    #[test]
    fn different_names() {
        assert!(!names_match("Anna", "Eriksson", "Hanna", "Eriksson"));
        assert!(!names_match("Anna", "Eriksson", "Anna", "Erikson"));
        assert!(!names_match("Anna", "Eriksson", "Anna", "Andersson"));
        assert!(!names_match("Anna", "Eriksson", "Maria", "Eriksson"));
        assert!(!names_match("Anna", "Eriksson", "", "Eriksson"));
        assert!(!names_match("", "", "", ""));
        assert!(!names_match("Anna", "Eriksson", "", ""));
    }
}
