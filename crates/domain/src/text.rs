//! Which characters text sent to idshare may hold. Control characters have no place in names,
//! ids, filters or free text, and NUL cannot be stored at all by PostgreSQL: they are refused
//! at the edge, everywhere, before anything reads the value.

/// Whether `c` is refused in any text sent to the server: a control character (Unicode category
/// `Cc`: U+0000–U+001F and U+007F–U+009F) other than tab, line feed and carriage return, which
/// free text (notes, definitions) may hold.
pub fn is_refused_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The first refused control character of `text`, if any.
pub fn refused_control(text: &str) -> Option<char> {
    text.chars().find(|&c| is_refused_control(c))
}

/// How a refused character is named in an error message (`U+0000`), never the character itself.
pub fn describe(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_nul_and_other_controls_but_not_line_breaks_and_tabs() {
        for refused in [
            '\0', '\u{1}', '\u{8}', '\u{b}', '\u{c}', '\u{1b}', '\u{7f}', '\u{85}',
        ] {
            assert!(is_refused_control(refused), "{}", describe(refused));
        }
        for allowed in ['\t', '\n', '\r', ' ', 'é', '\u{200b}', '😀'] {
            assert!(!is_refused_control(allowed), "{}", describe(allowed));
        }
        assert_eq!(refused_control("a\tb\u{0}c"), Some('\0'));
        assert_eq!(refused_control("line one\r\nline two"), None);
        assert_eq!(describe('\0'), "U+0000");
    }
}
