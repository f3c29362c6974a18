//! Versioned MQTT payloads (DESIGN.md §4, PROTOCOLS.md §5).
//!
//! Every JSON payload is a flat object carrying `"v": 1`. Decoding is strict
//! because these bytes come from devices on a shop-floor network and some of
//! them (gate commands) move a barrier: a message is refused, with a reason,
//! if it is too large, not UTF-8, not a JSON object, of another version, has a
//! missing, unknown or duplicated field, a float where an integer belongs, or a
//! field value outside its rules. No floats anywhere: weights are integer grams,
//! times are integer Unix milliseconds.
//!
//! Each message type has `encode(&self) -> Vec<u8>` and
//! `decode(&[u8]) -> Result<Self, PayloadError>`, and `decode(encode(m)) == m`.
//! Fields with rules are validated newtypes ([`Barcode`], [`PromptText`],
//! [`CommandId`], [`PulseMs`]), so an invalid message cannot even be built and
//! `encode` cannot fail.
//!
//! Sequence numbers are `u64` on the wire; devices count up from 1. A browser
//! client reading them as JS numbers is exact up to 2^53, which a device will
//! not reach.

mod device;
mod gate;
mod pda;
mod printer;

pub use device::{DeviceHealth, DeviceStatus, WeightMsg};
pub use gate::{
    CommandId, GateCmd, GateCommand, GateOutcome, GateResultMsg, GateState, GateStateKind,
    Heartbeat, PulseMs, PULSE_MS_MAX,
};
pub use pda::{
    Barcode, Next, PromptMsg, PromptText, ScanMsg, Tone, BARCODE_CHARS_MAX, PROMPT_TEXT_CHARS_MAX,
};
pub use printer::{PrintJob, PrintJobError, PrinterReport, JOB_BYTES_MAX, JOB_HEADER_BYTES_MAX};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::id::IdError;

/// Largest payload any decoder accepts, in bytes; checked before parsing.
///
/// 1 KiB because the largest legitimate message, a [`PromptMsg`] with a
/// [`PROMPT_TEXT_CHARS_MAX`] (160) character text, is at most about 750 bytes
/// (160 characters × at most 4 bytes each in UTF-8 or JSON escaping, plus
/// ~100 bytes of keys and numbers; a test builds the worst cases). Anything
/// bigger is a bug or an attack, and refusing it before parsing bounds the
/// work a PDA or an edge box does per message. Printer jobs are a JSON
/// header line (under this limit) followed by raw bytes bounded by
/// [`JOB_BYTES_MAX`] ([`PrintJob`]).
pub const PAYLOAD_BYTES_MAX: usize = 1024;

/// The only payload version this crate speaks; the value of `"v"`.
pub const VERSION: u64 = 1;

/// Longest piece of foreign text (a serde message, a bad version value) quoted
/// in an error, so every error fits a [`PromptText`] on a PDA screen.
const QUOTE_CHARS_MAX: usize = 100;

/// Longest bad version value quoted in an error; a version is a small number,
/// anything longer is noise.
const VERSION_CHARS_MAX: usize = 20;

/// Why a payload was refused. The `Display` text is written for people: it is
/// shown on PDA screens and in logs, always fits a [`PromptText`] (at most
/// [`PROMPT_TEXT_CHARS_MAX`] characters) and never contains control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Longer than [`PAYLOAD_BYTES_MAX`].
    #[error("message too large ({len} bytes, at most {max})")]
    TooLarge {
        /// Size received.
        len: usize,
        /// The limit, [`PAYLOAD_BYTES_MAX`].
        max: usize,
    },
    /// Not valid UTF-8.
    #[error("message is not UTF-8 text (bad byte at offset {at})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        at: usize,
    },
    /// Not valid JSON.
    #[error("message is not valid JSON: {detail}")]
    NotJson {
        /// What the parser said, shortened.
        detail: String,
    },
    /// Valid JSON, but not an object.
    #[error("message is not a JSON object")]
    NotObject,
    /// No `"v"` field (or `"v": null`).
    #[error("message has no version \"v\" (this system speaks v{VERSION})")]
    MissingVersion,
    /// `"v"` is something other than the number 1.
    #[error("message version {found} is not supported (this system speaks v{VERSION})")]
    UnsupportedVersion {
        /// The value found, as JSON text, shortened.
        found: String,
    },
    /// Right version, wrong shape: a field missing, unknown, duplicated or of
    /// the wrong type (a float where an integer belongs, an unknown enum word).
    #[error("message has the wrong shape: {detail}")]
    Shape {
        /// What the parser said, shortened.
        detail: String,
    },
    /// Right shape, but a field value breaks its rules.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A device status that is neither `online` nor `offline`.
    #[error("device status must be \"online\" or \"offline\"")]
    UnknownStatus,
}

/// A field value that breaks its rules; returned by the newtype constructors
/// and, wrapped in [`PayloadError::Field`], by the decoders.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Required text is empty.
    #[error("{field} is empty")]
    Empty {
        /// Which field.
        field: &'static str,
    },
    /// Text longer than its limit.
    #[error("{field} is too long ({len} characters, at most {max})")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Length found, in characters.
        len: usize,
        /// The limit, in characters.
        max: usize,
    },
    /// Text holding a control character (CR, LF, TAB, ESC, NUL, …).
    #[error("{field} contains a control character at position {at}")]
    ControlChar {
        /// Which field.
        field: &'static str,
        /// Position, counted in characters from 1.
        at: usize,
    },
    /// A number outside its allowed range.
    #[error("{field} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// Value found.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// An id field breaking the id rules (see [`crate::id`]).
    #[error("{field} {error}")]
    BadId {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        error: IdError,
    },
}

/// Checks free text: at most `max` characters and no control characters.
/// Length first, so a huge string costs one count and no further scanning.
pub(crate) fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), FieldError> {
    let len = s.chars().count();
    if len > max {
        return Err(FieldError::TooLong { field, len, max });
    }
    match s.chars().position(char::is_control) {
        Some(i) => Err(FieldError::ControlChar { field, at: i + 1 }),
        None => Ok(()),
    }
}

/// Makes foreign text safe to quote in an error: control and invisible
/// characters escaped,
/// at most `max` characters (ending in `…` when cut).
pub(crate) fn quote(s: &str, max: usize) -> String {
    let mut escaped = String::with_capacity(s.len());
    for c in s.chars() {
        // `escape_debug` leaves printable characters alone apart from quotes and
        // backslashes (harmless on a screen), and escapes control, format
        // (e.g. bidi overrides, zero-width) and unassigned characters.
        if matches!(c, '"' | '\'' | '\\') || c.escape_debug().nth(1).is_none() {
            escaped.push(c);
        } else {
            escaped.extend(c.escape_debug());
        }
    }
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut cut: String = escaped.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// serde_json's message without its " at line L column C" suffix: payloads
/// are one short line, and a position means nothing to a picker.
fn describe(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    quote(msg.strip_suffix(&suffix).unwrap_or(&msg), QUOTE_CHARS_MAX)
}

/// The shared first half of every JSON decoder: size, UTF-8, JSON, object,
/// version, then a strict parse into the wire struct `W` (which must be
/// `deny_unknown_fields`). Field rules are checked by the caller.
pub(crate) fn decode_json<W: DeserializeOwned>(bytes: &[u8]) -> Result<W, PayloadError> {
    let text = check_bytes(bytes)?;
    // Parse loosely first so the version is judged before the shape: a v2
    // message must be refused as "version 2", not as "unknown field".
    let value: Value = serde_json::from_str(text).map_err(|e| PayloadError::NotJson {
        detail: describe(&e),
    })?;
    let object = value.as_object().ok_or(PayloadError::NotObject)?;
    match object.get("v") {
        None | Some(Value::Null) => return Err(PayloadError::MissingVersion),
        Some(v) if v.as_u64() == Some(VERSION) => {}
        Some(other) => {
            return Err(PayloadError::UnsupportedVersion {
                found: quote(&other.to_string(), VERSION_CHARS_MAX),
            })
        }
    }
    // Then strictly, from the text rather than from `value`: a `Value` keeps
    // only the last of duplicated keys, while the struct parser refuses them,
    // so `{"cmd":"close","cmd":"open"}` cannot mean different things to
    // different readers.
    serde_json::from_str(text).map_err(|e| PayloadError::Shape {
        detail: describe(&e),
    })
}

/// Size and UTF-8 checks shared by JSON and plain-text payloads.
pub(crate) fn check_bytes(bytes: &[u8]) -> Result<&str, PayloadError> {
    if bytes.len() > PAYLOAD_BYTES_MAX {
        return Err(PayloadError::TooLarge {
            len: bytes.len(),
            max: PAYLOAD_BYTES_MAX,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| PayloadError::NotUtf8 {
        at: e.valid_up_to(),
    })
}

/// Serialises a wire struct. The wire structs hold only integers, booleans,
/// strings and unit enums, for which serde_json cannot fail.
pub(crate) fn encode_json<W: Serialize>(wire: &W) -> Vec<u8> {
    serde_json::to_vec(wire)
        .expect("flat structs of integers, booleans and strings always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Probe {
        v: u64,
        n: i64,
    }

    fn decode(s: &str) -> Result<Probe, PayloadError> {
        decode_json(s.as_bytes())
    }

    #[test]
    fn accepts_a_good_object() {
        assert_eq!(decode(r#" {"v":1,"n":-5} "#), Ok(Probe { v: 1, n: -5 }));
        assert_eq!(encode_json(&Probe { v: 1, n: 2 }), br#"{"v":1,"n":2}"#);
    }

    #[test]
    fn refuses_too_large_before_parsing() {
        let big = vec![b' '; PAYLOAD_BYTES_MAX + 1];
        assert_eq!(
            decode_json::<Probe>(&big),
            Err(PayloadError::TooLarge {
                len: 1025,
                max: 1024
            })
        );
    }

    #[test]
    fn refuses_non_utf8() {
        assert_eq!(
            decode_json::<Probe>(b"{\"v\":1,\xff}"),
            Err(PayloadError::NotUtf8 { at: 7 })
        );
    }

    #[test]
    fn refuses_non_json() {
        for s in [
            "",
            "{",
            "{\"v\":1,}",
            "v=1",
            "{\"v\":1} x",
            "\u{feff}{\"v\":1,\"n\":1}",
        ] {
            assert!(
                matches!(decode(s), Err(PayloadError::NotJson { .. })),
                "{s:?}"
            );
        }
        let err = decode("{").unwrap_err().to_string();
        assert_eq!(
            err,
            "message is not valid JSON: EOF while parsing an object"
        );
    }

    #[test]
    fn refuses_non_objects() {
        // Arrays matter: serde would otherwise accept `[1, 5]` as a struct.
        for s in ["[1,5]", "1", "\"v\"", "null", "true"] {
            assert_eq!(decode(s), Err(PayloadError::NotObject), "{s:?}");
        }
    }

    #[test]
    fn refuses_missing_version() {
        assert_eq!(decode(r#"{"n":1}"#), Err(PayloadError::MissingVersion));
        assert_eq!(
            decode(r#"{"v":null,"n":1}"#),
            Err(PayloadError::MissingVersion)
        );
    }

    #[test]
    fn refuses_other_versions_before_judging_shape() {
        for (s, found) in [
            (r#"{"v":2,"new_field":true}"#, "2"),
            (r#"{"v":0,"n":1}"#, "0"),
            (r#"{"v":-1,"n":1}"#, "-1"),
            (r#"{"v":1.0,"n":1}"#, "1.0"),
            (r#"{"v":"1","n":1}"#, "\"1\""),
        ] {
            let found = found.to_owned();
            assert_eq!(
                decode(s),
                Err(PayloadError::UnsupportedVersion { found }),
                "{s}"
            );
        }
        let err = decode(r#"{"v":2}"#).unwrap_err().to_string();
        assert_eq!(
            err,
            "message version 2 is not supported (this system speaks v1)"
        );
    }

    #[test]
    fn refuses_wrong_shapes() {
        let shape = |s: &str| match decode(s) {
            Err(PayloadError::Shape { detail }) => detail,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(shape(r#"{"v":1}"#), "missing field `n`");
        assert!(shape(r#"{"v":1,"n":1,"x":0}"#).starts_with("unknown field `x`"));
        assert_eq!(shape(r#"{"v":1,"n":1,"n":2}"#), "duplicate field `n`");
        assert_eq!(
            shape(r#"{"v":1,"n":1.5}"#),
            "invalid type: floating point `1.5`, expected i64"
        );
        assert_eq!(shape(r#"{"v":1,"v":1,"n":1}"#), "duplicate field `v`");
    }

    #[test]
    fn quoted_text_is_escaped_and_bounded() {
        assert_eq!(quote("a\u{7}b\nc", 50), "a\\u{7}b\\nc");
        assert_eq!(quote("日本 \"q\" \\", 50), "日本 \"q\" \\");
        assert_eq!(quote("a\u{202e}b", 50), "a\\u{202e}b");
        let long = quote(&"x".repeat(500), QUOTE_CHARS_MAX);
        assert_eq!(long.chars().count(), QUOTE_CHARS_MAX);
        assert!(long.ends_with('…'));
        let field = format!(r#"{{"v":1,"n":1,"{}":0}}"#, "\\u001b".repeat(100));
        let msg = decode(&field).unwrap_err().to_string();
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert!(msg.chars().count() <= PROMPT_TEXT_CHARS_MAX, "{msg}");
    }

    #[test]
    fn check_text_reports_length_then_control_characters() {
        assert_eq!(check_text("t", "abc", 3), Ok(()));
        assert_eq!(
            check_text("t", "abcd", 3),
            Err(FieldError::TooLong {
                field: "t",
                len: 4,
                max: 3
            })
        );
        assert_eq!(
            check_text("t", "a\tb", 3),
            Err(FieldError::ControlChar { field: "t", at: 2 })
        );
        assert_eq!(
            check_text("t", "\u{85}", 3),
            Err(FieldError::ControlChar { field: "t", at: 1 })
        );
    }
}
