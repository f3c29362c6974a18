//! Validated identifiers: the `{site}`, `{device}`, `{station}` and `{gate}`
//! segments of MQTT topics.
//!
//! Every id is checked once, when it is made, so code holding a [`Site`] or a
//! [`GateId`] can splice it into a topic without escaping. The alphabet is
//! deliberately tiny (`A-Z a-z 0-9 _ -`): that rules out `/` (which would add
//! topic levels), `+` and `#` (MQTT wildcards, which would widen a subscription
//! or ACL), `$` (broker-internal topics), NUL (forbidden by MQTT) and every
//! other control or look-alike character that could confuse a log or a screen.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest allowed id, in characters (= bytes, the alphabet is ASCII).
///
/// 64 is ample for names like `sh-pudong-02` or a UUID (36), and small enough
/// that a topic stays short in broker logs and ACL files.
pub const ID_CHARS_MAX: usize = 64;

/// Why a string is not a valid id. The text reads after the name of the thing,
/// e.g. "gate id " + "is empty".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id has no characters.
    #[error("is empty")]
    Empty,
    /// The id has more than [`ID_CHARS_MAX`] characters.
    #[error("is too long ({len} characters, at most {ID_CHARS_MAX})")]
    TooLong {
        /// Length found, in characters.
        len: usize,
    },
    /// The id holds a character outside `A-Z a-z 0-9 _ -`.
    #[error("contains {ch:?} at position {at}; only letters, digits, '_' and '-' are allowed")]
    BadChar {
        /// The offending character (shown escaped, so control characters are visible).
        ch: char,
        /// Its position, counted in characters from 1 (for people, not for slicing).
        at: usize,
    },
}

fn allowed(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'
}

/// Checks `s` against the id rules. Shared with payload fields that follow the
/// same rules (command ids), so there is one definition of "a safe id".
pub(crate) fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    // A bad character is the more useful report (it explains *what* is wrong),
    // so look for one before complaining about length.
    if let Some((i, ch)) = s.chars().enumerate().find(|&(_, c)| !allowed(c)) {
        return Err(IdError::BadChar { ch, at: i + 1 });
    }
    // Only ASCII is left, so bytes == characters.
    if s.len() > ID_CHARS_MAX {
        return Err(IdError::TooLong { len: s.len() });
    }
    Ok(())
}

/// Defines one validated id newtype. A macro rather than a generic `Id<Kind>`
/// so each type reads plainly in signatures and error messages, and a site can
/// never be passed where a gate is expected.
macro_rules! segment_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`; see the module docs for the rules.
            pub fn new(s: &str) -> Result<Self, IdError> {
                check_id(s)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as text, exactly as it appears in a topic.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_id(&s)?;
                Ok(Self(s))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

segment_id!(
    /// A warehouse site: the `{site}` in `bondgate/{site}/…`. One broker may
    /// serve several sites; the site keeps their traffic apart.
    Site
);
segment_id!(
    /// A device: a PDA in `pda/{device}/…`, or any device in `devices/{id}/status`.
    DeviceId
);
segment_id!(
    /// A work station (scale, label printer): `scale/{station}/…`, `printer/{station}/…`.
    StationId
);
segment_id!(
    /// A gate (exit barrier) and its relay bridge: `gate/{gate}/…`.
    GateId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_whole_alphabet() {
        let id = "AZaz09_-";
        assert_eq!(Site::new(id).unwrap().as_str(), id);
        assert_eq!(GateId::new("g1").unwrap().to_string(), "g1");
        let longest = "a".repeat(ID_CHARS_MAX);
        assert!(DeviceId::new(&longest).is_ok());
    }

    #[test]
    fn refuses_empty() {
        assert_eq!(StationId::new(""), Err(IdError::Empty));
    }

    #[test]
    fn refuses_too_long() {
        let long = "a".repeat(ID_CHARS_MAX + 1);
        assert_eq!(Site::new(&long), Err(IdError::TooLong { len: 65 }));
    }

    #[test]
    fn refuses_topic_syntax_and_control_characters() {
        for (s, ch, at) in [
            ("a/b", '/', 2),
            ("+", '+', 1),
            ("ab#", '#', 3),
            ("$SYS", '$', 1),
            ("a\0", '\0', 2),
            ("a\nb", '\n', 2),
            ("a b", ' ', 2),
            ("gaté", 'é', 4),
            ("ａ", 'ａ', 1), // full-width look-alike
        ] {
            assert_eq!(GateId::new(s), Err(IdError::BadChar { ch, at }), "{s:?}");
        }
    }

    #[test]
    fn bad_char_message_escapes_control_characters() {
        let msg = DeviceId::new("x\u{7}").unwrap_err().to_string();
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert!(msg.contains("\\u{7}"), "{msg}");
    }

    #[test]
    fn bad_char_is_reported_before_length() {
        let s = format!("{}/", "a".repeat(100));
        assert!(matches!(
            Site::new(&s),
            Err(IdError::BadChar { ch: '/', at: 101 })
        ));
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let site: Site = serde_json::from_str("\"sh-01\"").unwrap();
        assert_eq!(serde_json::to_string(&site).unwrap(), "\"sh-01\"");
        assert!(serde_json::from_str::<Site>("\"sh/01\"").is_err());
        assert!(serde_json::from_str::<Site>("\"\"").is_err());
    }

    #[test]
    fn conversions_agree() {
        let a: GateId = "g-7".parse().unwrap();
        let b = GateId::try_from(String::from("g-7")).unwrap();
        let c = GateId::try_from("g-7").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(String::from(a), "g-7");
        assert_eq!(c.as_ref(), "g-7");
    }
}
