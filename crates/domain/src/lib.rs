//! Pure domain types and rules of idshare: ids, statuses, templates, fields. No I/O.

/// Defines a fieldless enum whose wire form is a fixed string per variant, so `as_str`,
/// `Display`, `FromStr` and serde can never disagree.
///
/// `all: array` gives `ALL: [Self; N]` (iterates by value), `all: slice` gives
/// `ALL: &'static [Self]`.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal, all: $all:ident) {
            $($(#[$vmeta:meta])* $variant:ident = $s:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            string_enum!(@all $all $($variant)+);

            /// The wire form of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $s,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(Self::$variant),)+
                    _ => Err($crate::UnknownValueError::new($what, s, &[$($s),+])),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
    (@all array $($variant:ident)+) => {
        /// Every value, in declaration order.
        pub const ALL: [Self; [$(stringify!($variant)),+].len()] = [$(Self::$variant),+];
    };
    (@all slice $($variant:ident)+) => {
        /// Every value, in declaration order.
        pub const ALL: &'static [Self] = &[$(Self::$variant),+];
    };
}

pub mod alignment;
pub mod connect;
pub mod decision;
pub mod environment;
pub mod event;
pub mod field;
pub mod files;
pub mod id;
pub mod inflection;
pub mod inquiry;
pub mod mrz;
pub mod names;
pub mod people;
pub mod permission;
pub mod preview;
pub mod requirements;
pub mod retention;
pub mod screening;
pub mod share_token;
pub mod sign_in;
pub mod tags;
pub mod template;
pub mod text;
pub mod time_format;
pub mod verification;
pub mod webhook;
pub mod webhook_signature;
pub mod workflow;

/// A problem in a submitted JSON document (a template or workflow definition, a webhook's
/// settings), located by a JSON pointer relative to that document. One type for all of them, so
/// one renderer turns any into API errors.
pub type PointedError = template::TemplateError;

/// A string that is not one of the values a closed set of names allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what} (expected one of: {})", .expected.join(", "))]
pub struct UnknownValueError {
    /// What kind of value was expected, e.g. "environment".
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

impl UnknownValueError {
    pub(crate) fn new(what: &'static str, value: &str, expected: &'static [&'static str]) -> Self {
        Self {
            what,
            value: value.to_owned(),
            expected,
        }
    }
}
