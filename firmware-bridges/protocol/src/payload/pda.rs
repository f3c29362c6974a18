//! PDA traffic: `pda/{device}/scan` (PDA → server) and `pda/{device}/prompt`
//! (server → PDA).
//!
//! Every scan carries the device's sequence number: the server de-duplicates
//! per device and answers a replay with the original prompt (PROTOCOLS.md §3),
//! so a prompt echoes the `seq` of the scan it answers.

use serde::{Deserialize, Serialize};

use super::{check_text, decode_json, encode_json, FieldError, PayloadError, VERSION};

/// Longest barcode, in characters. GS1-128 tops out at 48 data characters and
/// a typical QR on a parcel label is well under 100; 128 leaves room without
/// letting a PDA flood the server with pasted text.
pub const BARCODE_CHARS_MAX: usize = 128;

/// Longest prompt text, in characters: four lines of 40 on a handheld screen
/// at a size readable at arm's length. Also what keeps the largest message
/// under [`super::PAYLOAD_BYTES_MAX`].
pub const PROMPT_TEXT_CHARS_MAX: usize = 160;

/// The GS1 group separator (ASCII 29, FNC1 in a scanned GS1-128 or GS1
/// DataMatrix code): ends a variable-length element such as a batch number,
/// so it is the one control character a scan may carry.
pub const GS: char = '\u{1d}';

/// A scanned code: CR/LF trimmed from both ends (scanners append them as a
/// suffix), not empty, no other control characters than `GS` (a CR or LF
/// *inside* means two scans ran together), at most [`BARCODE_CHARS_MAX`]
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Barcode(String);

impl Barcode {
    /// Trims and validates a scanned code.
    pub fn new(raw: &str) -> Result<Barcode, FieldError> {
        let code = raw.trim_matches(['\r', '\n']);
        if code.is_empty() {
            return Err(FieldError::Empty { field: "barcode" });
        }
        // GS is checked as if it were a printable character.
        check_text("barcode", &code.replace(GS, " "), BARCODE_CHARS_MAX)?;
        Ok(Barcode(code.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Barcode {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Barcode, FieldError> {
        Barcode::new(&raw)
    }
}

impl From<Barcode> for String {
    fn from(b: Barcode) -> String {
        b.0
    }
}

/// Text shown on a PDA screen: at most [`PROMPT_TEXT_CHARS_MAX`] characters,
/// no control characters (one paragraph; the PDA wraps it). May be empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PromptText(String);

impl PromptText {
    /// Validates prompt text.
    pub fn new(text: &str) -> Result<PromptText, FieldError> {
        check_text("prompt text", text, PROMPT_TEXT_CHARS_MAX)?;
        Ok(PromptText(text.to_owned()))
    }

    /// Makes any text fit: control characters become spaces, and text over
    /// the limit is cut with `…`. For showing messages that were not written
    /// for a PDA (an error from elsewhere) rather than failing to show them.
    pub fn clamp(text: &str) -> PromptText {
        let clean = text.chars().map(|c| if c.is_control() { ' ' } else { c });
        if text.chars().count() <= PROMPT_TEXT_CHARS_MAX {
            return PromptText(clean.collect());
        }
        let mut cut: String = clean.take(PROMPT_TEXT_CHARS_MAX - 1).collect();
        cut.push('…');
        PromptText(cut)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code the picker is asked to scan or enter next. By convention the
    /// server writes it in square brackets, once, e.g. `Go to [A-01-02] and
    /// scan the bin`; the PDA may show it large, and the simulator scans it.
    pub fn expected(&self) -> Option<&str> {
        let start = self.0.find('[')? + 1;
        let len = self.0[start..].find(']')?;
        Some(&self.0[start..start + len])
            .filter(|c| !c.is_empty() && !c.contains(|ch: char| ch == '[' || ch.is_whitespace()))
    }
}

impl TryFrom<String> for PromptText {
    type Error = FieldError;
    fn try_from(text: String) -> Result<PromptText, FieldError> {
        check_text("prompt text", &text, PROMPT_TEXT_CHARS_MAX)?;
        Ok(PromptText(text))
    }
}

impl From<PromptText> for String {
    fn from(t: PromptText) -> String {
        t.0
    }
}

/// How the PDA should sound and colour the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    /// Accepted: short beep, green.
    Ok,
    /// Refused: long buzz, red; the picker must act.
    Error,
    /// Accepted with a caveat (e.g. short pick): double beep, amber.
    Warning,
}

/// What the picker should scan or enter next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Next {
    /// Scan a bin (location) label.
    Bin,
    /// Scan an item.
    Item,
    /// Enter or confirm a quantity.
    Qty,
    /// Scan a tote (container) label to pick into.
    Tote,
    /// Scan the lot (batch) label, when the item's barcode carries no batch.
    Lot,
    /// Scan a short-pick reason card: `#EMPTY`, `#DAMAGED` or `#WRONG`.
    Reason,
    /// The task is finished.
    Done,
    /// Log in (badge scan) first.
    Login,
}

/// `pda/{device}/scan`: one scan from a PDA.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScanMsg {
    /// The device's scan sequence number, for de-duplication.
    pub seq: u64,
    /// The scanned code.
    pub barcode: Barcode,
    /// When the PDA scanned it, Unix milliseconds (device clock).
    pub ts: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanWire {
    v: u64,
    seq: u64,
    barcode: String,
    ts: i64,
}

impl ScanMsg {
    /// JSON bytes, `{"v":1,"seq":…,"barcode":…,"ts":…}`.
    pub fn encode(&self) -> Vec<u8> {
        let barcode = self.barcode.as_str().to_owned();
        encode_json(&ScanWire {
            v: VERSION,
            seq: self.seq,
            barcode,
            ts: self.ts,
        })
    }

    /// Parses and validates a scan (see the module docs of [`crate::payload`]).
    pub fn decode(bytes: &[u8]) -> Result<ScanMsg, PayloadError> {
        let w: ScanWire = decode_json(bytes)?;
        Ok(ScanMsg {
            seq: w.seq,
            barcode: Barcode::try_from(w.barcode)?,
            ts: w.ts,
        })
    }
}

/// `pda/{device}/prompt`: the server's answer to a scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PromptMsg {
    /// The `seq` of the scan this answers.
    pub seq: u64,
    /// Whether the scan was accepted.
    pub ok: bool,
    /// How to sound it.
    pub tone: Tone,
    /// What to show.
    pub text: PromptText,
    /// What to scan next.
    pub next: Next,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptWire {
    v: u64,
    seq: u64,
    ok: bool,
    tone: Tone,
    text: String,
    next: Next,
}

impl PromptMsg {
    /// JSON bytes, `{"v":1,"seq":…,"ok":…,"tone":…,"text":…,"next":…}`.
    pub fn encode(&self) -> Vec<u8> {
        encode_json(&PromptWire {
            v: VERSION,
            seq: self.seq,
            ok: self.ok,
            tone: self.tone,
            text: self.text.as_str().to_owned(),
            next: self.next,
        })
    }

    /// Parses and validates a prompt.
    pub fn decode(bytes: &[u8]) -> Result<PromptMsg, PayloadError> {
        let w: PromptWire = decode_json(bytes)?;
        let text = PromptText::try_from(w.text)?;
        Ok(PromptMsg {
            seq: w.seq,
            ok: w.ok,
            tone: w.tone,
            text,
            next: w.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PAYLOAD_BYTES_MAX;

    fn scan(json: &str) -> Result<ScanMsg, PayloadError> {
        ScanMsg::decode(json.as_bytes())
    }

    fn field_err(e: FieldError) -> Result<ScanMsg, PayloadError> {
        Err(PayloadError::Field(e))
    }

    #[test]
    fn scan_round_trips_and_has_the_documented_shape() {
        let m = ScanMsg {
            seq: 7,
            barcode: Barcode::new("SKU-1").unwrap(),
            ts: 1_700_000_000_000,
        };
        assert_eq!(
            m.encode(),
            br#"{"v":1,"seq":7,"barcode":"SKU-1","ts":1700000000000}"#
        );
        assert_eq!(ScanMsg::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn scan_trims_cr_lf() {
        let m = scan(r#"{"v":1,"seq":1,"barcode":"\r\nABC123\r\n","ts":0}"#).unwrap();
        assert_eq!(m.barcode.as_str(), "ABC123");
        assert_eq!(
            Barcode::new(" A ").unwrap().as_str(),
            " A ",
            "spaces are data in Code 128"
        );
    }

    #[test]
    fn prompt_text_names_the_expected_code_in_brackets() {
        let t = PromptText::new("Go to [A-01-02] and scan the bin").unwrap();
        assert_eq!(t.expected(), Some("A-01-02"));
        assert_eq!(PromptText::new("Wrong bin").unwrap().expected(), None);
        assert_eq!(PromptText::new("odd [ and [] ]").unwrap().expected(), None);
    }

    #[test]
    fn scan_accepts_gs1_group_separator_but_no_other_control() {
        let gs1 = "0106901234567892\u{1d}10B123\u{1d}17271231";
        assert_eq!(Barcode::new(gs1).unwrap().as_str(), gs1);
        assert!(matches!(
            Barcode::new("01069\u{1b}01234"),
            Err(FieldError::ControlChar { at: 6, .. })
        ));
    }

    #[test]
    fn scan_refuses_empty_barcode() {
        let empty = FieldError::Empty { field: "barcode" };
        assert_eq!(
            scan(r#"{"v":1,"seq":1,"barcode":"","ts":0}"#),
            field_err(empty.clone())
        );
        assert_eq!(
            scan(r#"{"v":1,"seq":1,"barcode":"\r\n","ts":0}"#),
            field_err(empty)
        );
        assert_eq!(
            Barcode::new("").unwrap_err().to_string(),
            "barcode is empty"
        );
    }

    #[test]
    fn scan_refuses_control_characters() {
        for (code, at) in [
            ("A\\tB", 2),
            ("A\\r\\nB", 2),
            ("\\u0000A", 1),
            ("A\\u001b", 2),
            ("A\\u0085", 2),
        ] {
            let json = format!(r#"{{"v":1,"seq":1,"barcode":"{code}","ts":0}}"#);
            assert_eq!(
                scan(&json),
                field_err(FieldError::ControlChar {
                    field: "barcode",
                    at
                }),
                "{code}"
            );
        }
    }

    #[test]
    fn scan_refuses_long_barcode() {
        assert!(Barcode::new(&"9".repeat(BARCODE_CHARS_MAX)).is_ok());
        let json = format!(
            r#"{{"v":1,"seq":1,"barcode":"{}","ts":0}}"#,
            "9".repeat(129)
        );
        let too_long = FieldError::TooLong {
            field: "barcode",
            len: 129,
            max: BARCODE_CHARS_MAX,
        };
        assert_eq!(scan(&json), field_err(too_long.clone()));
        assert_eq!(
            too_long.to_string(),
            "barcode is too long (129 characters, at most 128)"
        );
    }

    #[test]
    fn scan_refuses_bad_numbers() {
        for json in [
            r#"{"v":1,"seq":-1,"barcode":"A","ts":0}"#,
            r#"{"v":1,"seq":1.0,"barcode":"A","ts":0}"#,
            r#"{"v":1,"seq":"1","barcode":"A","ts":0}"#,
            r#"{"v":1,"seq":1,"barcode":"A","ts":1e3}"#,
            r#"{"v":1,"seq":18446744073709551616,"barcode":"A","ts":0}"#,
        ] {
            assert!(
                matches!(scan(json), Err(PayloadError::Shape { .. })),
                "{json}"
            );
        }
    }

    #[test]
    fn scan_refuses_unknown_and_missing_fields() {
        let extra = scan(r#"{"v":1,"seq":1,"barcode":"A","ts":0,"qty":3}"#).unwrap_err();
        assert!(
            extra
                .to_string()
                .starts_with("message has the wrong shape: unknown field `qty`"),
            "{extra}"
        );
        let missing = scan(r#"{"v":1,"seq":1,"ts":0}"#).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "message has the wrong shape: missing field `barcode`"
        );
    }

    #[test]
    fn prompt_round_trips_and_has_the_documented_shape() {
        let m = PromptMsg {
            seq: 7,
            ok: false,
            tone: Tone::Error,
            text: PromptText::new("Wrong bin — scan A-01-03").unwrap(),
            next: Next::Bin,
        };
        let json = r#"{"v":1,"seq":7,"ok":false,"tone":"error","text":"Wrong bin — scan A-01-03","next":"bin"}"#;
        assert_eq!(m.encode(), json.as_bytes());
        assert_eq!(PromptMsg::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn prompt_refuses_unknown_words() {
        let base = r#"{"v":1,"seq":1,"ok":true,"tone":"TONE","text":"","next":"NEXT"}"#;
        for (tone, next) in [
            ("beep", "bin"),
            ("ok", "pallet"),
            ("OK", "bin"),
            ("ok", "Bin"),
        ] {
            let json = base.replace("TONE", tone).replace("NEXT", next);
            let err = PromptMsg::decode(json.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("unknown variant"), "{err}");
        }
    }

    #[test]
    fn prompt_refuses_bad_text() {
        let json = r#"{"v":1,"seq":1,"ok":true,"tone":"ok","text":"a\nb","next":"item"}"#;
        let err = FieldError::ControlChar {
            field: "prompt text",
            at: 2,
        };
        assert_eq!(
            PromptMsg::decode(json.as_bytes()),
            Err(PayloadError::Field(err))
        );
        let long = "x".repeat(PROMPT_TEXT_CHARS_MAX + 1);
        assert!(matches!(
            PromptText::new(&long),
            Err(FieldError::TooLong { len: 161, .. })
        ));
    }

    #[test]
    fn clamp_always_fits() {
        assert_eq!(PromptText::clamp("a\nb").as_str(), "a b");
        let long = PromptText::clamp(&"x".repeat(500));
        assert_eq!(long.as_str().chars().count(), PROMPT_TEXT_CHARS_MAX);
        assert!(long.as_str().ends_with('…'));
        assert!(PromptText::new(long.as_str()).is_ok());
        assert_eq!(PromptText::clamp("fine").as_str(), "fine");
    }

    #[test]
    fn worst_case_messages_fit_the_size_limit() {
        // Four-byte characters and characters JSON must escape, at full length.
        for ch in ['\u{10FFFF}', '"', '\\', '𝄞'] {
            let prompt = PromptMsg {
                seq: u64::MAX,
                ok: false,
                tone: Tone::Warning,
                text: PromptText::new(&ch.to_string().repeat(PROMPT_TEXT_CHARS_MAX)).unwrap(),
                next: Next::Login,
            };
            let bytes = prompt.encode();
            assert!(bytes.len() <= 800, "{} bytes", bytes.len());
            assert_eq!(PromptMsg::decode(&bytes), Ok(prompt));

            let scan = ScanMsg {
                seq: u64::MAX,
                barcode: Barcode::new(&ch.to_string().repeat(BARCODE_CHARS_MAX)).unwrap(),
                ts: i64::MIN,
            };
            assert!(scan.encode().len() <= PAYLOAD_BYTES_MAX);
            assert_eq!(ScanMsg::decode(&scan.encode()), Ok(scan));
        }
    }

    #[test]
    fn newtypes_validate_through_serde() {
        assert!(serde_json::from_str::<Barcode>(r#""""#).is_err());
        let b: Barcode = serde_json::from_str(r#""X1\r""#).unwrap();
        assert_eq!(serde_json::to_string(&b).unwrap(), r#""X1""#);
        assert!(serde_json::from_str::<PromptText>(r#""a\u0007""#).is_err());
    }
}
