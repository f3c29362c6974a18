//! Relay boards that pulse a barrier controller's "open" input
//! (PROTOCOLS.md §4).
//!
//! This module is the LCUS serial relay board (a CH340 USB adapter with 1–8
//! relays, 9600 8N1); [`modbus`] is the Modbus RTU/TCP relay board.
//!
//! **LCUS commands** are four bytes, `A0 <channel> <op> <sum>`, with
//! channels counted from 1, `op` 1 for on and 0 for off, and
//! `sum = (A0 + channel + op) & 0xFF`: channel 1 on is `A0 01 01 A2`, off is
//! `A0 01 00 A1`. The board never acknowledges a command.
//!
//! **Status read-back (an assumption).** The LCUS protocol has no
//! documented read-back; many boards of the family (the CH340 "LCUS-1/2/4"
//! boards sold with a status feature) answer a single byte `FF` with one
//! text line per relay, `CH1:ON` or `CH1:OFF`, ended by CR LF. We rely on
//! that: a board that never answers reads as a fault, so the gate stays
//! shut rather than opening unconfirmed. [`StatusDecoder`] also accepts
//! lowercase, spaces around the colon and bare LF, and skips lines it does
//! not understand (some boards print a banner after power-up).
//!
//! Decoding is streaming and survives any chunking: [`CommandDecoder`] (the
//! board's side) finds commands in split, merged and garbled input, and
//! [`StatusDecoder`] (the host's side) finds status lines.

pub mod modbus;

use std::fmt;

/// First byte of every LCUS command.
pub const LCUS_HEAD: u8 = 0xA0;

/// The status query: a single byte the board answers with `CHn:ON|OFF`
/// lines (see the module notes for why this is an assumption).
pub const LCUS_STATUS_QUERY: u8 = 0xFF;

/// Bytes in one LCUS command.
pub const LCUS_FRAME_BYTES: usize = 4;

/// Most relays on one LCUS board (the largest of the family has 8).
pub const LCUS_CHANNELS_MAX: u8 = 8;

/// Longest status line kept: `CH8:OFF` is 7 bytes; 32 leaves room for
/// spaces and banners while bounding what a babbling board makes us hold.
pub const STATUS_LINE_BYTES_MAX: usize = 32;

/// One LCUS command: switch one channel on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcusCommand {
    /// The relay, from 1.
    pub channel: u8,
    /// Energise (true) or release (false).
    pub on: bool,
}

impl LcusCommand {
    /// The four bytes on the wire.
    pub fn encode(self) -> [u8; LCUS_FRAME_BYTES] {
        let op = u8::from(self.on);
        [LCUS_HEAD, self.channel, op, lcus_sum(self.channel, op)]
    }

    /// Reads one command from exactly four bytes.
    pub fn decode(frame: &[u8]) -> Result<LcusCommand, LcusError> {
        let &[head, channel, op, sum] = frame else {
            return Err(LcusError::Length(frame.len()));
        };
        if head != LCUS_HEAD {
            return Err(LcusError::Head(head));
        }
        let expected = lcus_sum(channel, op);
        if sum != expected {
            return Err(LcusError::Checksum { expected, got: sum });
        }
        let on = match op {
            0 => false,
            1 => true,
            other => return Err(LcusError::Op(other)),
        };
        if channel == 0 || channel > LCUS_CHANNELS_MAX {
            return Err(LcusError::Channel(channel));
        }
        Ok(LcusCommand { channel, on })
    }
}

/// `(A0 + channel + op) & 0xFF`.
pub fn lcus_sum(channel: u8, op: u8) -> u8 {
    LCUS_HEAD.wrapping_add(channel).wrapping_add(op)
}

/// Why bytes are not an LCUS command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LcusError {
    /// Not four bytes.
    #[error("an LCUS command is 4 bytes, got {0}")]
    Length(usize),
    /// Does not start with `A0`.
    #[error("an LCUS command starts with A0, got {0:02X}")]
    Head(u8),
    /// The sum byte is wrong (line noise, or another protocol).
    #[error("LCUS checksum {got:02X}, expected {expected:02X}")]
    Checksum {
        /// `(A0 + ch + op) & 0xFF`.
        expected: u8,
        /// What arrived.
        got: u8,
    },
    /// `op` is neither 0 nor 1.
    #[error("LCUS op must be 00 (off) or 01 (on), got {0:02X}")]
    Op(u8),
    /// Channel 0 or above [`LCUS_CHANNELS_MAX`].
    #[error("LCUS channel must be 1..=8, got {0}")]
    Channel(u8),
}

/// What a board makes of the bytes it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardEvent {
    /// A valid command.
    Command(LcusCommand),
    /// The status query byte.
    StatusQuery,
    /// Bytes that were neither, dropped (reported once per run of noise,
    /// when the next command or query is found, or at [`CommandDecoder::finish`]).
    Noise(usize),
}

/// The board's side: bytes in any chunking → [`BoardEvent`]s. Holds at most
/// three bytes of an unfinished command.
#[derive(Debug, Clone, Default)]
pub struct CommandDecoder {
    buf: Vec<u8>,
    noise: usize,
}

impl CommandDecoder {
    /// An empty decoder.
    pub fn new() -> CommandDecoder {
        CommandDecoder::default()
    }

    /// Feeds bytes; returns what they completed.
    ///
    /// An `A0` that does not start a valid command (wrong sum, op or
    /// channel) counts as one noise byte and the search resumes right after
    /// it, so a command cut short by the next one costs only itself.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<BoardEvent> {
        let mut events = Vec::new();
        for &b in bytes {
            if self.buf.is_empty() {
                match b {
                    LCUS_HEAD => self.buf.push(b),
                    LCUS_STATUS_QUERY => {
                        self.flush_noise(&mut events);
                        events.push(BoardEvent::StatusQuery);
                    }
                    _ => self.noise += 1,
                }
                continue;
            }
            self.buf.push(b);
            if self.buf.len() < LCUS_FRAME_BYTES {
                continue;
            }
            match LcusCommand::decode(&self.buf) {
                Ok(cmd) => {
                    self.buf.clear();
                    self.flush_noise(&mut events);
                    events.push(BoardEvent::Command(cmd));
                }
                Err(_) => {
                    // Drop the A0 and rescan the rest: it may hold a head.
                    let rest: Vec<u8> = self.buf.drain(1..).collect();
                    self.buf.clear();
                    self.noise += 1;
                    events.extend(self.push(&rest));
                }
            }
        }
        events
    }

    /// Reports noise held back, and drops an unfinished command (e.g. when
    /// the port closes).
    pub fn finish(&mut self) -> Option<BoardEvent> {
        self.noise += self.buf.len();
        self.buf.clear();
        let mut events = Vec::new();
        self.flush_noise(&mut events);
        events.pop()
    }

    fn flush_noise(&mut self, events: &mut Vec<BoardEvent>) {
        if self.noise > 0 {
            events.push(BoardEvent::Noise(self.noise));
            self.noise = 0;
        }
    }
}

/// One relay's state in a status answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelStatus {
    /// The relay, from 1.
    pub channel: u8,
    /// Energised.
    pub on: bool,
}

impl fmt::Display for ChannelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.on { "ON" } else { "OFF" };
        write!(f, "CH{}:{state}", self.channel)
    }
}

/// The board's answer to [`LCUS_STATUS_QUERY`]: one `CHn:ON|OFF` line per
/// relay, CR LF after each, channel 1 first.
pub fn encode_status(relays_on: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &on) in relays_on.iter().enumerate() {
        let channel = u8::try_from(i + 1).unwrap_or(u8::MAX);
        out.extend_from_slice(ChannelStatus { channel, on }.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses one status line (`CH1:ON`, `ch 2 : off`, …).
pub fn parse_status_line(line: &str) -> Result<ChannelStatus, StatusError> {
    let bad = || StatusError::Line(line.chars().take(STATUS_LINE_BYTES_MAX).collect());
    let upper = line.trim().to_ascii_uppercase();
    let rest = upper.strip_prefix("CH").ok_or_else(bad)?;
    let (num, state) = rest.split_once(':').ok_or_else(bad)?;
    let channel: u8 = num.trim().parse().map_err(|_| bad())?;
    if channel == 0 || channel > LCUS_CHANNELS_MAX {
        return Err(bad());
    }
    let on = match state.trim() {
        "ON" => true,
        "OFF" => false,
        _ => return Err(bad()),
    };
    Ok(ChannelStatus { channel, on })
}

/// Why a status line was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// Not `CHn:ON` or `CHn:OFF`.
    #[error("not a relay status line: {0:?}")]
    Line(String),
    /// Longer than [`STATUS_LINE_BYTES_MAX`] without a line end.
    #[error("a status line longer than {STATUS_LINE_BYTES_MAX} bytes")]
    TooLong,
}

/// The host's side: the bytes a board answers with → status lines (or
/// errors for lines that are not status). Lines end at CR or LF; empty
/// lines are skipped; a line longer than [`STATUS_LINE_BYTES_MAX`] is
/// reported once and dropped up to its end.
#[derive(Debug, Clone, Default)]
pub struct StatusDecoder {
    line: Vec<u8>,
    skipping: bool,
}

impl StatusDecoder {
    /// An empty decoder.
    pub fn new() -> StatusDecoder {
        StatusDecoder::default()
    }

    /// Feeds bytes; returns the lines they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<ChannelStatus, StatusError>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if !self.skipping && !self.line.is_empty() {
                    let text = String::from_utf8_lossy(&self.line).into_owned();
                    out.push(parse_status_line(&text));
                }
                self.line.clear();
                self.skipping = false;
            } else if self.skipping {
                continue;
            } else if self.line.len() >= STATUS_LINE_BYTES_MAX {
                self.line.clear();
                self.skipping = true;
                out.push(Err(StatusError::TooLong));
            } else {
                self.line.push(b);
            }
        }
        out
    }

    /// Forgets a partial line (after reopening the port).
    pub fn reset(&mut self) {
        self.line.clear();
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests;
