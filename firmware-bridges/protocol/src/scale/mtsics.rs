//! Mettler Toledo MT-SICS (PROTOCOLS.md §1): the host sends a command line,
//! the scale answers `<id> <status> [value unit]`, every line ended by CR LF.
//!
//! The value is right-aligned in a fixed-width field with its sign inside
//! (`S S     -0.010 kg`): lines are split on white space, never sliced by
//! column. Replies this module decodes:
//!
//! | line | event |
//! |---|---|
//! | `S S <v> <u>` / `S D <v> <u>` | [`ScaleEvent::Reading`], stable / dynamic |
//! | `S +` / `S -` | [`ScaleEvent::Reading`] with [`Range::Overload`] / [`Range::Underload`], 0 g |
//! | `S I` | [`ScaleEvent::Busy`]`(Weigh)` (the reply id of `SI` is `S` too) |
//! | `Z A` | [`ScaleEvent::Done`]`(Zero)` |
//! | `T S <v> <u>`, `T A <v> <u>` | [`ScaleEvent::Done`]`(Tare)` |
//! | `Z I`, `T I` | [`ScaleEvent::Busy`] |
//! | `Z +`, `Z -`, `T +`, `T -` | [`ScaleEvent::Refused`] (outside the zero/tare range) |
//! | `<id> L` | [`ScaleEvent::Refused`] (logical error, parameter not allowed) |
//! | `I4 A "<serial>"` | [`ScaleEvent::Done`]`(Reset)`: the answer to `@`, and what a scale sends by itself at power-up |
//! | `ES`, `ET`, `EL` | [`ScaleEvent::Refused`] |
//!
//! Power-up noise (NUL and 0xFF bytes, which a UART reads while the line
//! settles) is dropped silently at the start of a line; any other line that
//! is not one of the above is a [`FrameError`].

use super::number::{self, Unit};
use super::{shown, Command, FrameError, Range, Reading, ScaleEvent};

/// Longest reply line accepted, CR LF excluded. MT-SICS replies are under
/// 40 bytes (`I4 A "…"` with a 10-character serial is 17); 128 leaves room for
/// long serials and padding, and bounds what a line without LF can hold.
pub const MTSICS_LINE_BYTES_MAX: usize = 128;

/// Decodes one reply line (without CR LF).
pub(super) fn parse(line: &[u8]) -> Result<ScaleEvent, FrameError> {
    let text = std::str::from_utf8(line)
        .ok()
        .filter(|t| t.bytes().all(|b| (0x20..0x7F).contains(&b) || b == b'\t'))
        .ok_or_else(|| FrameError::Malformed {
            why: format!("not printable ASCII: {:?}", shown(line)),
        })?;
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let unknown = || FrameError::UnknownHeader {
        text: shown(text.as_bytes()),
    };
    let refused = |what: &str| Ok(ScaleEvent::Refused(what.to_owned()));
    match words.as_slice() {
        ["ES"] => refused("syntax error: the scale did not recognise the command"),
        ["ET"] => refused("transmission error: the scale received a garbled command"),
        ["EL"] => refused("logical error: the scale cannot carry out the command"),
        [id, "L", ..] => Ok(ScaleEvent::Refused(format!(
            "{} refused: logical error or parameter not allowed",
            shown(id.as_bytes())
        ))),
        ["S", "S", value, unit] => weight(value, unit, true),
        ["S", "D", value, unit] => weight(value, unit, false),
        ["S", "+"] => Ok(ScaleEvent::Reading(out_of_range(Range::Overload))),
        ["S", "-"] => Ok(ScaleEvent::Reading(out_of_range(Range::Underload))),
        ["S", "I"] => Ok(ScaleEvent::Busy(Command::Weigh)),
        ["Z", "A"] => Ok(ScaleEvent::Done(Command::Zero)),
        ["Z", "I"] => Ok(ScaleEvent::Busy(Command::Zero)),
        ["Z", "+"] => refused("zero refused: the load is above the zero-setting range"),
        ["Z", "-"] => refused("zero refused: the load is below the zero-setting range"),
        ["T", "S" | "A", value, unit] => {
            // The tare weight is checked, so a garbled tare reply is an error.
            number::text_to_grams(value, Unit::parse(unit)?)?;
            Ok(ScaleEvent::Done(Command::Tare))
        }
        ["T", "I"] => Ok(ScaleEvent::Busy(Command::Tare)),
        ["T", "+"] => refused("tare refused: the load is above the taring range"),
        ["T", "-"] => refused("tare refused: the load is below the taring range"),
        ["I4", "A", serial @ ..] if !serial.is_empty() => Ok(ScaleEvent::Done(Command::Reset)),
        _ => Err(unknown()),
    }
}

fn weight(value: &str, unit: &str, stable: bool) -> Result<ScaleEvent, FrameError> {
    let grams = number::text_to_grams(value, Unit::parse(unit)?)?;
    Ok(ScaleEvent::Reading(Reading {
        grams,
        stable,
        net: false,
        range: Range::Ok,
    }))
}

fn out_of_range(range: Range) -> Reading {
    Reading {
        grams: 0,
        stable: false,
        net: false,
        range,
    }
}

/// What a simulated scale knows when it answers a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtSicsState<'a> {
    /// What the scale shows now (net of the tare, if any).
    pub reading: Reading,
    /// The tare in force, in grams (0 without one).
    pub tare_grams: i64,
    /// The serial number `@` answers with (quotes and control characters are
    /// dropped when sent).
    pub serial: &'a str,
}

/// A scale's answer to one command, as a value: what to send, and what the
/// scale must do (zero, tare, reset). [`MtSicsAnswer::encode`] gives the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtSicsAnswer {
    /// `S S <v> kg` (stable) or `S D <v> kg` (dynamic); `S +`/`S -` when
    /// the reading is out of range.
    Weight(Reading),
    /// `<id> I`: not executable now.
    Busy(Command),
    /// `Z +`/`Z -`, `T +`/`T -`: outside the range zero or tare may be set in.
    OutOfRange(Command, Range),
    /// `Z A`: the scale takes its current gross load as zero.
    Zeroed,
    /// `T S <tare> kg`: the scale takes `tare_grams` as its tare.
    Tared {
        /// The new tare.
        tare_grams: i64,
    },
    /// `I4 A "<serial>"`: the scale resets (the tare is cleared).
    Reset {
        /// The serial number.
        serial: String,
    },
    /// `ES`: the command was not understood.
    SyntaxError,
}

/// What a scale in `state` answers to `cmd` (`None`: an unknown command).
///
/// `S` is answered from the current reading: the caller (a simulator, which
/// has a clock) waits for stability first and calls this when the reading
/// is stable or its wait ran out, so an unstable reading answers `S I`.
pub fn mtsics_answer(cmd: Option<Command>, state: &MtSicsState<'_>) -> MtSicsAnswer {
    let reading = state.reading;
    let Some(cmd) = cmd else {
        return MtSicsAnswer::SyntaxError;
    };
    match cmd {
        Command::Reset => {
            return MtSicsAnswer::Reset {
                serial: state.serial.to_owned(),
            }
        }
        Command::WeighNow => return MtSicsAnswer::Weight(reading),
        _ => {}
    }
    if reading.range != Range::Ok {
        return match cmd {
            Command::Weigh => MtSicsAnswer::Weight(reading),
            _ => MtSicsAnswer::OutOfRange(cmd, reading.range),
        };
    }
    if !reading.stable {
        return MtSicsAnswer::Busy(cmd);
    }
    match cmd {
        Command::Zero => MtSicsAnswer::Zeroed,
        // A tare on top of a tare: the new tare is the whole load on the pan.
        Command::Tare => MtSicsAnswer::Tared {
            tare_grams: state.tare_grams.saturating_add(reading.grams),
        },
        _ => MtSicsAnswer::Weight(reading),
    }
}

/// The reply line a scale in `state` sends to the command `line`
/// ([`Command::parse_line`] then [`mtsics_answer`] then encode).
pub fn mtsics_reply(line: &[u8], state: &MtSicsState<'_>) -> Vec<u8> {
    mtsics_answer(Command::parse_line(line).ok(), state).encode()
}

/// A weight as MT-SICS prints it: kg with 3 decimals, right-aligned in a
/// 10-character field with the sign inside.
fn value_kg(grams: i64) -> String {
    let sign = if grams < 0 { "-" } else { "" };
    let text = format!("{sign}{}", number::format_fixed(grams.unsigned_abs(), 3, 1));
    format!("{text:>10} kg")
}

impl MtSicsAnswer {
    /// The line, CR LF included.
    pub fn encode(&self) -> Vec<u8> {
        let id = |cmd: Command| match cmd {
            Command::Weigh | Command::WeighNow => "S",
            Command::Zero => "Z",
            Command::Tare => "T",
            Command::Reset => "@",
        };
        let sign = |range: Range| if range == Range::Underload { "-" } else { "+" };
        let line = match self {
            MtSicsAnswer::Weight(r) if r.range != Range::Ok => format!("S {}", sign(r.range)),
            MtSicsAnswer::Weight(r) => {
                let status = if r.stable { "S" } else { "D" };
                format!("S {status} {}", value_kg(r.grams))
            }
            MtSicsAnswer::Busy(cmd) => format!("{} I", id(*cmd)),
            MtSicsAnswer::OutOfRange(cmd, range) => format!("{} {}", id(*cmd), sign(*range)),
            MtSicsAnswer::Zeroed => "Z A".to_owned(),
            MtSicsAnswer::Tared { tare_grams } => format!("T S {}", value_kg(*tare_grams)),
            MtSicsAnswer::Reset { serial } => {
                let clean: String = serial
                    .chars()
                    .filter(|c| c.is_ascii_graphic() && *c != '"')
                    .take(32)
                    .collect();
                format!("I4 A \"{clean}\"")
            }
            MtSicsAnswer::SyntaxError => "ES".to_owned(),
        };
        format!("{line}\r\n").into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(line: &str) -> Result<ScaleEvent, FrameError> {
        parse(line.as_bytes())
    }

    #[test]
    fn weight_replies() {
        let stable = |grams| {
            Ok(ScaleEvent::Reading(Reading {
                grams,
                stable: true,
                net: false,
                range: Range::Ok,
            }))
        };
        assert_eq!(ev("S S     100.00 g"), stable(100));
        assert_eq!(ev("S S      1.234 kg"), stable(1234));
        assert_eq!(ev("S S     -0.010 kg"), stable(-10));
        assert!(ev("S S   - 0.010 kg").is_err(), "sign apart from digits");
        assert!(matches!(
            ev("S D      0.200 kg"),
            Ok(ScaleEvent::Reading(Reading {
                grams: 200,
                stable: false,
                ..
            }))
        ));
        assert_eq!(
            ev("S S 1.0 lb"),
            Err(FrameError::NotMetric { unit: "lb".into() })
        );
    }

    #[test]
    fn encode_is_right_aligned_with_the_sign_inside() {
        let r = |grams, stable| {
            MtSicsAnswer::Weight(Reading {
                grams,
                stable,
                net: false,
                range: Range::Ok,
            })
        };
        assert_eq!(r(1234, true).encode(), b"S S      1.234 kg\r\n");
        assert_eq!(r(-10, false).encode(), b"S D     -0.010 kg\r\n");
        assert_eq!(
            MtSicsAnswer::Tared { tare_grams: 2486 }.encode(),
            b"T S      2.486 kg\r\n"
        );
        assert_eq!(
            MtSicsAnswer::Reset {
                serial: "B2\"07\n".into()
            }
            .encode(),
            b"I4 A \"B207\"\r\n"
        );
    }
}
