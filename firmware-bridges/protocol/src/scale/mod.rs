//! Serial scale frames (PROTOCOLS.md §1): bytes in, readings out; readings
//! in, bytes out. No port, no clock, no thread: the server's serial adapter,
//! the scale bridge and the scale simulator all feed and encode through this
//! module, so none of them keeps its own copy of a frame format.
//!
//! Five wire formats, chosen per scale with [`ScaleProtocol`]:
//!
//! | protocol | name | shape |
//! |---|---|---|
//! | [`ScaleProtocol::MtSics`] | `mt-sics` | Mettler Toledo MT-SICS, request/response lines (`S`, `SI`, `Z`, `T`, `@`) |
//! | [`ScaleProtocol::ContinuousAscii`] | `ascii` | `ST,GS,+0000.512kg` lines, streamed (A&D and many Chinese indicators) |
//! | [`ScaleProtocol::ToledoContinuous`] | `toledo-continuous` | Mettler Toledo standard continuous output, 17–18 bytes with status words |
//! | [`ScaleProtocol::YaohuaA9`] | `yaohua-a9` | Yaohua XK3190-A9 `tF=0`, 12 bytes STX … XOR ETX |
//! | [`ScaleProtocol::YaohuaA9Eq`] | `yaohua-a9-eq` | Yaohua "=" format, digits sent **reversed** |
//!
//! A [`Decoder`] takes whatever bytes the port delivered — one at a time,
//! several frames at once, garbage in between — and returns every complete
//! [`ScaleEvent`] in order; a frame it cannot trust comes out as a
//! [`FrameError`] and the decoder resynchronises on the next frame start. It
//! never panics and holds at most [`FRAME_BYTES_MAX`] bytes.
//!
//! Weights become integer grams exactly ([`Reading::grams`]), with integer
//! arithmetic from the decimal text or digits, never through a float. A value
//! finer than a gram (a lab balance's `2.486 g`, or `0.0005 kg`) is rounded
//! to the nearest gram, **half away from zero** (`0.0005 kg` → 1 g,
//! `-0.0005 kg` → -1 g, `0.0004 kg` → 0 g): what a display with gram
//! resolution shows, and symmetric around zero so a tare and its removal
//! cancel. Values beyond ±[`GRAMS_ABS_MAX`] are refused, never wrapped.
//!
//! **Stability.** Weight counts only when the scale says it is stable
//! (PROTOCOLS.md §1). MT-SICS, the ASCII lines and the Toledo status words
//! say so. The Yaohua frames carry no status at all, so for them the decoder
//! derives it: a reading is stable once the same value has arrived in
//! [`DERIVED_STABLE_FRAMES`] consecutive frames. The same frames carry no
//! unit either: Yaohua weights are taken as kilograms (the indicators'
//! factory setting; **unverified** against a device set to another unit).
//!
//! ```
//! use bondgate_protocol::scale::{Decoder, Range, Reading, ScaleEvent, ScaleProtocol};
//!
//! let mut decoder = Decoder::new("ascii".parse()?);
//! let events = decoder.feed(b"US,GS,+0001.180kg\r\nST,GS,+0001.2");
//! assert_eq!(events.len(), 1); // the second line is not complete yet
//! let events = decoder.feed(b"34kg\r\n");
//! let reading = Reading { grams: 1234, stable: true, net: false, range: Range::Ok };
//! assert_eq!(events, vec![Ok(ScaleEvent::Reading(reading))]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ascii;
mod decoder;
mod mtsics;
mod number;
mod toledo;
mod yaohua;

use std::fmt;
use std::str::FromStr;

pub use decoder::{Decoder, DERIVED_STABLE_FRAMES, FRAME_BYTES_MAX};
pub use mtsics::{mtsics_answer, mtsics_reply, MtSicsAnswer, MtSicsState, MTSICS_LINE_BYTES_MAX};
pub use number::GRAMS_ABS_MAX;

/// Which wire format a scale speaks. Configured per scale; the names are
/// what [`FromStr`] and [`fmt::Display`] use (`mt-sics`, `ascii`,
/// `toledo-continuous`, `yaohua-a9`, `yaohua-a9-eq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleProtocol {
    /// Mettler Toledo MT-SICS: the host asks (`S`, `SI`, `Z`, `T`, `@`),
    /// the scale answers one line each.
    MtSics,
    /// Streamed ASCII lines `ST,GS,+0000.512kg` (header `ST`/`US`/`OL`,
    /// optional `GS`/`NT`, unit `kg` or `g`).
    ContinuousAscii,
    /// Mettler Toledo standard continuous output: STX, three status words,
    /// six weight and six tare digits, CR and an optional checksum.
    ToledoContinuous,
    /// Yaohua XK3190-A9 continuous (`tF=0`): STX, sign, six digits, decimal
    /// position, XOR as two hex digits, ETX.
    YaohuaA9,
    /// Yaohua "=" format: `=` then the displayed weight with its characters
    /// in reverse order (`=0.50000` is 5.0 kg).
    YaohuaA9Eq,
}

impl ScaleProtocol {
    /// Every protocol, in the order of the table above.
    pub const ALL: [ScaleProtocol; 5] = [
        ScaleProtocol::MtSics,
        ScaleProtocol::ContinuousAscii,
        ScaleProtocol::ToledoContinuous,
        ScaleProtocol::YaohuaA9,
        ScaleProtocol::YaohuaA9Eq,
    ];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            ScaleProtocol::MtSics => "mt-sics",
            ScaleProtocol::ContinuousAscii => "ascii",
            ScaleProtocol::ToledoContinuous => "toledo-continuous",
            ScaleProtocol::YaohuaA9 => "yaohua-a9",
            ScaleProtocol::YaohuaA9Eq => "yaohua-a9-eq",
        }
    }

    /// Whether the scale only answers requests (MT-SICS) rather than
    /// streaming readings by itself.
    pub fn is_request_response(self) -> bool {
        self == ScaleProtocol::MtSics
    }
}

impl fmt::Display for ScaleProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown protocol name; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scale protocol {given:?}: expected one of mt-sics, ascii, toledo-continuous, yaohua-a9, yaohua-a9-eq")]
pub struct UnknownProtocol {
    /// What was given (at most 32 characters of it).
    pub given: String,
}

impl FromStr for ScaleProtocol {
    type Err = UnknownProtocol;
    fn from_str(s: &str) -> Result<ScaleProtocol, UnknownProtocol> {
        ScaleProtocol::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProtocol {
                given: s.chars().take(32).collect(),
            })
    }
}

/// Whether the weight is inside the scale's weighing range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Range {
    /// In range: the weight means something.
    #[default]
    Ok,
    /// Over capacity. The weight is not a measurement (MT-SICS sends none:
    /// grams is then 0).
    Overload,
    /// Under zero beyond what the scale accepts (pan removed, zeroed with a
    /// load on). The weight is not a measurement either.
    Underload,
}

/// One weight reading, in integer grams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reading {
    /// The displayed weight (net when `net`), exactly, in grams. Meaningless
    /// unless `range` is [`Range::Ok`].
    pub grams: i64,
    /// The scale says the weight is at rest (or, for the Yaohua formats, the
    /// decoder saw the same value [`DERIVED_STABLE_FRAMES`] times running).
    /// Only stable readings may be used as a parcel's weight.
    pub stable: bool,
    /// The weight is net (a tare is subtracted). Formats without the flag
    /// (MT-SICS, Yaohua) always say `false`.
    pub net: bool,
    /// Whether the scale is within its range.
    pub range: Range,
}

impl Reading {
    /// A stable, in-range, gross reading of `grams`.
    pub fn stable(grams: i64) -> Reading {
        Reading {
            grams,
            stable: true,
            net: false,
            range: Range::Ok,
        }
    }

    /// Whether this reading may be taken as a parcel's weight: stable and
    /// in range.
    pub fn is_usable(&self) -> bool {
        self.stable && self.range == Range::Ok
    }
}

/// A command a host sends to a request/response scale (MT-SICS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `S`: send the next stable weight (the scale waits for stability, then
    /// answers `S S …`, or `S I` when it gives up).
    Weigh,
    /// `SI`: send the weight now, stable (`S S …`) or not (`S D …`).
    WeighNow,
    /// `Z`: set zero (only when stable).
    Zero,
    /// `T`: tare (only when stable).
    Tare,
    /// `@`: reset; the scale answers with its serial number (`I4 A "…"`).
    Reset,
}

impl Command {
    /// The command word on the wire (`S`, `SI`, `Z`, `T`, `@`).
    pub fn word(self) -> &'static str {
        match self {
            Command::Weigh => "S",
            Command::WeighNow => "SI",
            Command::Zero => "Z",
            Command::Tare => "T",
            Command::Reset => "@",
        }
    }

    /// Parses one command line as a scale receives it: the word, optionally
    /// followed by CR and/or LF and surrounding spaces. MT-SICS commands are
    /// upper case; anything else is [`FrameError::UnknownCommand`] (a scale
    /// answers it with `ES`).
    pub fn parse_line(line: &[u8]) -> Result<Command, FrameError> {
        let trimmed = line.trim_ascii();
        match trimmed {
            b"S" => Ok(Command::Weigh),
            b"SI" => Ok(Command::WeighNow),
            b"Z" => Ok(Command::Zero),
            b"T" => Ok(Command::Tare),
            b"@" => Ok(Command::Reset),
            _ => Err(FrameError::UnknownCommand {
                text: shown(trimmed),
            }),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// What a scale said.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScaleEvent {
    /// A weight (or an overload/underload report).
    Reading(Reading),
    /// A command was carried out: `Z A`, `T S …`/`T A …`, or the `I4 A "…"`
    /// that follows `@` (also sent unasked when a scale powers up).
    Done(Command),
    /// `S I`, `Z I`, `T I`: not executable now (motion, or no stability
    /// within the scale's timeout). Ask again.
    Busy(Command),
    /// The scale refused: `ES` (syntax), `ET` (transmission), `EL` (logical),
    /// `… L` (parameter not allowed), `Z +`/`Z -`/`T +`/`T -` (outside the
    /// range a zero or tare may be set in). The text is readable as is.
    Refused(String),
}

/// A frame that could not be trusted. Every message reads on its own in a
/// log line and quotes at most 32 characters of what arrived.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FrameError {
    /// Checksum (Toledo CHK, Yaohua XOR) does not match the bytes.
    #[error("bad checksum: expected {expected:#04x}, got {got:#04x}")]
    BadChecksum {
        /// Computed from the frame.
        expected: u8,
        /// Received.
        got: u8,
    },
    /// A weight that is not a number (`+00O0.512`, two points, no digits).
    #[error("bad weight digits {text:?}")]
    BadNumber {
        /// What arrived.
        text: String,
    },
    /// A line whose header or status the protocol does not have.
    #[error("unknown header {text:?}")]
    UnknownHeader {
        /// What arrived.
        text: String,
    },
    /// A unit other than kg, g (or mg): bondgate never converts pounds; set
    /// the scale to metric.
    #[error("unit {unit:?} is not metric: set the scale to kg or g")]
    NotMetric {
        /// The unit as sent (`lb` for a Toledo frame without the kg bit).
        unit: String,
    },
    /// A weight beyond ±[`GRAMS_ABS_MAX`] grams.
    #[error("weight {text:?} is out of range (more than {GRAMS_ABS_MAX} g)")]
    OutOfRange {
        /// What arrived.
        text: String,
    },
    /// More bytes than any frame of the protocol without a frame end; they
    /// are dropped up to the next frame start.
    #[error("frame too long: no end within {max} bytes")]
    TooLong {
        /// The protocol's limit.
        max: usize,
    },
    /// Bytes between frames that start no frame (line noise, a wrong baud
    /// rate, power-up garbage, a frame cut short by a cable wiggle).
    #[error("{count} byte(s) of noise skipped")]
    Noise {
        /// How many bytes were skipped.
        count: usize,
    },
    /// A frame of the right start but the wrong shape (missing CR/ETX,
    /// missing field, non-ASCII text).
    #[error("malformed frame: {why}")]
    Malformed {
        /// What was wrong.
        why: String,
    },
    /// A command line the scale does not know (the simulator answers `ES`).
    #[error("unknown command {text:?}")]
    UnknownCommand {
        /// What arrived.
        text: String,
    },
}

/// Why [`try_encode_reading`] cannot express a reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The weight needs more digits (or finer decimals) than the format has,
    /// or is beyond ±[`GRAMS_ABS_MAX`].
    #[error("{grams} g cannot be sent in {protocol} frames")]
    NotRepresentable {
        /// The protocol.
        protocol: ScaleProtocol,
        /// The weight.
        grams: i64,
    },
    /// The format has no way to say overload or underload (Yaohua).
    #[error("{protocol} frames have no way to report {range:?}")]
    NoRangeFlag {
        /// The protocol.
        protocol: ScaleProtocol,
        /// The range that was asked for.
        range: Range,
    },
}

/// The request line for `cmd`, `S\r\n` and so on; `None` for continuous
/// protocols, which take no requests.
pub fn request(protocol: ScaleProtocol, cmd: Command) -> Option<Vec<u8>> {
    protocol
        .is_request_response()
        .then(|| format!("{}\r\n", cmd.word()).into_bytes())
}

/// The exact bytes a real scale of this protocol sends for `reading` (for
/// MT-SICS, its answer to `SI`). What a format cannot express is refused
/// (see [`EncodeError`]); what the decoder would read back is `reading`
/// itself, except for the flags the format does not carry (`net` for MT-SICS
/// and Yaohua, `stable` for Yaohua, the weight of an MT-SICS overload).
pub fn try_encode_reading(
    protocol: ScaleProtocol,
    reading: &Reading,
) -> Result<Vec<u8>, EncodeError> {
    if reading.grams.unsigned_abs() > GRAMS_ABS_MAX.unsigned_abs() {
        return Err(EncodeError::NotRepresentable {
            protocol,
            grams: reading.grams,
        });
    }
    match protocol {
        ScaleProtocol::MtSics => Ok(MtSicsAnswer::Weight(*reading).encode()),
        ScaleProtocol::ContinuousAscii => Ok(ascii::encode(reading)),
        ScaleProtocol::ToledoContinuous => toledo::encode(reading),
        ScaleProtocol::YaohuaA9 => yaohua::encode_a9(reading),
        ScaleProtocol::YaohuaA9Eq => yaohua::encode_eq(reading),
    }
}

/// [`try_encode_reading`] for simulators: a reading the format cannot
/// express gives no bytes at all — the scale stays silent, which a reader
/// must cope with anyway (a real A9 in overload shows `OL` on its display;
/// what it sends then is **unverified**).
pub fn encode_reading(protocol: ScaleProtocol, reading: &Reading) -> Vec<u8> {
    try_encode_reading(protocol, reading).unwrap_or_default()
}

/// Bytes quoted in an error: lossy UTF-8, control characters escaped by the
/// `{:?}` that prints it, at most 32 characters.
pub(crate) fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip_and_refusal_lists_them() {
        for p in ScaleProtocol::ALL {
            assert_eq!(p.to_string().parse::<ScaleProtocol>(), Ok(p));
        }
        let err = "toledo".parse::<ScaleProtocol>().unwrap_err().to_string();
        assert!(err.contains("\"toledo\""), "{err}");
        for p in ScaleProtocol::ALL {
            assert!(err.contains(p.name()), "{err}");
        }
    }

    #[test]
    fn requests_only_for_mtsics() {
        assert_eq!(
            request(ScaleProtocol::MtSics, Command::WeighNow),
            Some(b"SI\r\n".to_vec())
        );
        assert_eq!(
            request(ScaleProtocol::MtSics, Command::Reset),
            Some(b"@\r\n".to_vec())
        );
        for p in &ScaleProtocol::ALL[1..] {
            assert_eq!(request(*p, Command::Weigh), None);
        }
    }

    #[test]
    fn command_lines_parse() {
        assert_eq!(Command::parse_line(b"SI\r\n"), Ok(Command::WeighNow));
        assert_eq!(Command::parse_line(b" S \r"), Ok(Command::Weigh));
        assert_eq!(Command::parse_line(b"@"), Ok(Command::Reset));
        assert!(matches!(
            Command::parse_line(b"si\r\n"),
            Err(FrameError::UnknownCommand { .. })
        ));
        assert!(Command::parse_line(b"").is_err());
    }
}
