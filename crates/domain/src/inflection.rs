//! Key inflection: the API speaks kebab-case by default and camelCase or snake_case on request
//! (`Key-Inflection` header).

use std::str::FromStr;

use serde_json::Value;

use crate::UnknownValueError;

/// The casing of object keys in requests and responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Inflection {
    #[default]
    Kebab,
    Camel,
    Snake,
}

impl Inflection {
    /// The name used in settings and the `Key-Inflection` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kebab => "kebab",
            Self::Camel => "camel",
            Self::Snake => "snake",
        }
    }
}

impl FromStr for Inflection {
    type Err = UnknownValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "kebab" => Ok(Self::Kebab),
            "camel" => Ok(Self::Camel),
            "snake" => Ok(Self::Snake),
            _ => Err(UnknownValueError::new(
                "key inflection",
                s,
                &["kebab", "camel", "snake"],
            )),
        }
    }
}

/// Converts a camelCase, snake_case or kebab-case key to kebab-case.
///
/// Kebab and snake keys only have `_` replaced. In camelCase keys (an uppercase letter and no
/// separator) a run of digits after a letter is its own word, so `addressStreet1` becomes
/// `address-street-1`, the inverse of [`kebab_to`]. Every uppercase letter starts a word, so
/// acronyms are not kept together (`inquiryID` → `inquiry-i-d`); that keeps single-letter words
/// round-tripping (`a-b-c` ↔ `aBC`).
pub fn key_to_kebab(key: &str) -> String {
    let camel = !key.contains(['-', '_']) && key.chars().any(|c| c.is_ascii_uppercase());
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev: Option<char> = None;
    for c in key.chars() {
        let starts_word = prev.is_some_and(|p| {
            if c.is_ascii_uppercase() {
                p != '-' && p != '_'
            } else {
                camel && c.is_ascii_digit() && !p.is_ascii_digit()
            }
        });
        if starts_word {
            out.push('-');
        }
        out.push(if c == '_' {
            '-'
        } else {
            c.to_ascii_lowercase()
        });
        prev = Some(c);
    }
    out
}

/// Converts a kebab-case key to the requested inflection.
pub fn kebab_to(key: &str, inflection: Inflection) -> String {
    match inflection {
        Inflection::Kebab => key.to_owned(),
        Inflection::Snake => key.replace('-', "_"),
        Inflection::Camel => {
            let mut out = String::with_capacity(key.len());
            for (i, word) in key.split('-').enumerate() {
                let mut chars = word.chars();
                if let (true, Some(first)) = (i > 0, chars.next()) {
                    out.push(first.to_ascii_uppercase());
                    out.push_str(chars.as_str());
                } else {
                    out.push_str(word);
                }
            }
            out
        }
    }
}

/// Rewrites every object key in `value`, recursively. String values are never touched.
pub fn transform_keys(value: Value, f: &impl Fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (f(&k), transform_keys(v, f)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| transform_keys(v, f)).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn parses_inflection_case_insensitively() {
        assert_eq!("CAMEL".parse::<Inflection>(), Ok(Inflection::Camel));
        assert_eq!("snake".parse::<Inflection>(), Ok(Inflection::Snake));
        assert_eq!(Inflection::default(), Inflection::Kebab);
        assert!("pascal".parse::<Inflection>().is_err());
    }

    #[test]
    fn converts_keys_to_kebab() {
        for (input, kebab) in [
            ("nameFirst", "name-first"),
            ("name_first", "name-first"),
            ("inquiry-template-id", "inquiry-template-id"),
            ("pageSize", "page-size"),
            ("addressStreet1", "address-street-1"),
            ("address_street_1", "address-street-1"),
            ("address-street-1", "address-street-1"),
            ("sha256", "sha256"),
            ("street1", "street1"),
            ("inquiryID", "inquiry-i-d"),
            ("NameFirst", "name-first"),
            ("id", "id"),
            ("Name_First", "name-first"),
            ("", ""),
        ] {
            assert_eq!(key_to_kebab(input), kebab, "{input}");
        }
    }

    #[test]
    fn converts_kebab_to_each_inflection() {
        assert_eq!(
            kebab_to("address-street-1", Inflection::Camel),
            "addressStreet1"
        );
        assert_eq!(
            kebab_to("address-street-1", Inflection::Snake),
            "address_street_1"
        );
        assert_eq!(
            kebab_to("address-street-1", Inflection::Kebab),
            "address-street-1"
        );
        assert_eq!(kebab_to("name-first", Inflection::Camel), "nameFirst");
    }

    #[test]
    fn transforms_keys_but_not_values() {
        let input = json!({
            "name-first": "kebab-value",
            "list": [{"page-size": 1}, "a-b"],
            "nested": {"reference-id": {"x-y": null}}
        });
        let camel = transform_keys(input.clone(), &|k| kebab_to(k, Inflection::Camel));
        assert_eq!(
            camel,
            json!({
                "nameFirst": "kebab-value",
                "list": [{"pageSize": 1}, "a-b"],
                "nested": {"referenceId": {"xY": null}}
            })
        );
        assert_eq!(transform_keys(camel, &key_to_kebab), input);
    }

    /// Kebab keys whose camelCase form is unambiguous: letter words, each after the first
    /// optionally followed by a digit word. Excluded on purpose: digits inside a letter word
    /// (`a1-b` and `a-1-b` would both be `a1B`) and a digit word right after the first word
    /// (`street-1` would be `street1`, which has no uppercase to mark it as camelCase and so
    /// reads as the kebab key `street1`).
    fn camel_safe_key() -> impl Strategy<Value = String> {
        let word = ("[a-z]{1,8}", proptest::option::of("[0-9]{1,3}"));
        ("[a-z]{1,8}", proptest::collection::vec(word, 0..4)).prop_map(|(first, rest)| {
            let mut parts = vec![first];
            for (letters, digits) in rest {
                parts.push(letters);
                parts.extend(digits);
            }
            parts.join("-")
        })
    }

    proptest! {
        #[test]
        fn kebab_camel_kebab_round_trips(key in camel_safe_key()) {
            prop_assert_eq!(key_to_kebab(&kebab_to(&key, Inflection::Camel)), key);
        }

        #[test]
        fn kebab_snake_kebab_round_trips(key in "[a-z][a-z0-9]{0,6}(-([a-z][a-z0-9]{0,6}|[0-9]{1,3})){0,4}") {
            prop_assert_eq!(key_to_kebab(&kebab_to(&key, Inflection::Snake)), key.clone());
            prop_assert_eq!(key_to_kebab(&key), key);
        }
    }
}
