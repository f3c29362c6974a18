//! ESC/POS as a printer receives it: a streaming decoder, and the real-time
//! status bytes (PROTOCOLS.md §2).
//!
//! [`Decoder::feed`] takes bytes as they arrive — split anywhere, several
//! commands at once — and returns the commands completed so far. It is what
//! the printer simulator runs on what a server sends it, and what tests use
//! to read back the bytes `bondgate-label` renders.
//!
//! - **Text stays bytes.** A run of printable bytes is [`EscPosCommand::Text`]
//!   as sent: GB18030 in Chinese mode, a code page otherwise. Decoding it is
//!   the caller's business (this crate has no encoding tables). Runs end at
//!   a control byte or after [`TEXT_RUN_BYTES_MAX`] bytes, so the commands
//!   out are the same however the input was split.
//! - **Bounded.** At most [`COMMAND_BYTES_MAX`] bytes are held between calls.
//!   A longer command whose length is known (an image, a huge 2D code) is
//!   skipped as it streams past, with an [`EscPosError::Oversized`].
//! - **Resynchronising.** An unknown `ESC`/`GS`/`FS` command whose length
//!   is knowable — the fixed-length ones, and the `pL pH` family — comes out
//!   as [`EscPosCommand::Unknown`] with all its bytes. One whose length
//!   cannot be known gives an [`EscPosError::UnknownCommand`], and decoding
//!   goes on after its first two bytes, much as a printer prints what follows
//!   as text.
//! - **Total.** No input makes it panic (property-tested).
//!
//! [`status`] has `DLE EOT n` and the reply byte's bit layout.

mod codes;
pub mod status;

use std::fmt;

pub use codes::{Barcode, QrCommand, QrErrorLevel, QrModel, Symbology};
pub use status::{
    decode_reply, encode_reply, PrinterStatus, StatusReply, StatusReplyError, StatusRequest,
};

use codes::{decode_code128, QrState};

/// Longest command held whole. A QR store is at most 7,089 data bytes plus
/// an 8-byte header, so every QR fits; anything longer (raster images, big
/// PDF417s) is skipped rather than buffered, so a hostile or broken sender
/// cannot make the decoder hold more than this.
pub const COMMAND_BYTES_MAX: usize = 8 * 1024;

/// Longest [`EscPosCommand::Text`]: a run of text is cut into pieces of at
/// most this many bytes. Far above a line (48 columns ≤ 96 bytes of GB18030
/// per line at 80 mm), so it only applies to a stream that never sends LF.
pub const TEXT_RUN_BYTES_MAX: usize = 1024;

/// Bytes of an offending command quoted in an error message.
const QUOTED_BYTES_MAX: usize = 16;

/// Longest `GS k` form-A (NUL-terminated) data; the form with a length byte
/// cannot be longer either.
const BARCODE_DATA_MAX: usize = 255;

/// Most tab positions `ESC D` takes (then NUL).
const TABS_MAX: usize = 32;

const LF: u8 = 0x0A;
const CR: u8 = 0x0D;
const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const FS: u8 = 0x1C;
const DLE: u8 = status::DLE;

/// Horizontal alignment (`ESC a n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// n = 0 or 48.
    Left,
    /// n = 1 or 49.
    Center,
    /// n = 2 or 50.
    Right,
}

/// Which cut, and how (`GS V`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Partial (a hinge is left) rather than full.
    pub partial: bool,
    /// When the cut happens.
    pub form: CutForm,
}

/// The forms of `GS V`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutForm {
    /// Function A (`m` = 0, 1, 48, 49): cut where the paper is now.
    Here,
    /// Function B (65, 66): feed to the cutter plus `n` motion units, cut.
    FeedThenCut(u8),
    /// Function C (97, 98): cut when the paper reaches the cutter later.
    Reserved(u8),
    /// Function D (103, 104): feed, cut, then feed back.
    FeedCutReverse(u8),
}

/// One decoded command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscPosCommand {
    /// `ESC @`: initialise (styles reset; the stored QR is forgotten).
    Init,
    /// Printable bytes, undecoded (GB18030 in Chinese mode).
    Text(Vec<u8>),
    /// `LF`: print the line and feed one.
    LineFeed,
    /// `CR`: ignored by most printers when LF follows.
    CarriageReturn,
    /// `ESC a n`.
    Align(Align),
    /// `ESC E n`: emphasis on or off.
    Bold(bool),
    /// `GS ! n`: character size, 1 to 8 times each way.
    CharSize {
        /// Width multiple.
        width: u8,
        /// Height multiple.
        height: u8,
    },
    /// `FS &` (on) / `FS .` (off): Chinese character mode, in which bytes
    /// from 0x80 up start a GB double-byte character.
    ChineseMode(bool),
    /// `ESC t n`: single-byte code page.
    CodePage(u8),
    /// `ESC R n`: international character set.
    CharacterSet(u8),
    /// `ESC d n`: print the line and feed `n` lines.
    Feed(u8),
    /// `GS k`: a barcode, printed now.
    Barcode(Barcode),
    /// `GS h n`: barcode height in dots.
    BarcodeHeight(u8),
    /// `GS w n`: barcode module width in dots.
    BarcodeModuleWidth(u8),
    /// `GS H n`: where the human-readable digits go (0 none, 1 above, 2
    /// below, 3 both; or 48–51).
    BarcodeHri(u8),
    /// `GS ( k … 49 …`: a QR function.
    Qr(QrCommand),
    /// `GS V`: cut.
    Cut(Cut),
    /// `DLE EOT n` (n = 1 to 4): real-time status request; the printer
    /// answers one byte at once ([`encode_reply`]).
    StatusRequest(StatusRequest),
    /// A command this decoder does not interpret, whole.
    Unknown(Vec<u8>),
}

/// What went wrong in the stream. Decoding always goes on after one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscPosError {
    /// An unknown command whose length cannot be known; decoding resumed
    /// after these bytes.
    #[error("unknown command {}: resynchronised after it", Hex(.bytes))]
    UnknownCommand {
        /// The bytes dropped.
        bytes: Vec<u8>,
    },
    /// A command longer than [`COMMAND_BYTES_MAX`]: skipped.
    #[error("command {} of {len} bytes is over the {COMMAND_BYTES_MAX}-byte limit: skipped", Hex(.prefix))]
    Oversized {
        /// Its first bytes.
        prefix: Vec<u8>,
        /// Its whole length.
        len: usize,
    },
    /// A barcode that cannot be printed (no code set, no terminator).
    #[error("{symbology} barcode refused: {reason}")]
    InvalidBarcode {
        /// The symbology asked for.
        symbology: Symbology,
        /// Why.
        reason: &'static str,
    },
    /// The stream ended inside a command ([`Decoder::finish`]).
    #[error("stream ended inside a command: {}", Hex(.bytes))]
    Truncated {
        /// What had arrived of it.
        bytes: Vec<u8>,
    },
}

/// Bytes in hex, at most [`QUOTED_BYTES_MAX`] of them.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().take(QUOTED_BYTES_MAX).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{byte:02X}")?;
        }
        if self.0.len() > QUOTED_BYTES_MAX {
            write!(f, " … ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// One decoded item.
pub type Decoded = Result<EscPosCommand, EscPosError>;

/// The outcome of looking at the start of the buffer.
enum Step {
    /// An item, and how many bytes it took.
    Done(Decoded, usize),
    /// A command of this many bytes, longer than the buffer may hold: report
    /// `error` and discard `len` bytes as they come.
    Skip(EscPosError, usize),
    /// Not enough bytes yet.
    NeedMore,
}

/// The streaming decoder. One per connection: it keeps partial commands and
/// the QR symbol storage between calls.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    /// Bytes received and not yet decoded: a partial command or text run,
    /// never more than [`COMMAND_BYTES_MAX`] between calls.
    pending: Vec<u8>,
    /// Bytes of an oversized command still to discard.
    skip: usize,
    qr: QrState,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes `input` after what came before; returns every item completed.
    pub fn feed(&mut self, input: &[u8]) -> Vec<Decoded> {
        let skipped = self.skip.min(input.len());
        self.skip -= skipped;
        self.pending.extend_from_slice(&input[skipped..]);
        self.run(false)
    }

    /// Ends the stream: flushes pending text, and reports a command cut
    /// short. The decoder is then as new.
    pub fn finish(&mut self) -> Vec<Decoded> {
        let mut out = self.run(true);
        if !self.pending.is_empty() || self.skip > 0 {
            out.push(Err(EscPosError::Truncated {
                bytes: std::mem::take(&mut self.pending),
            }));
        }
        *self = Decoder::new();
        out
    }

    /// Bytes held for an incomplete command.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    fn run(&mut self, at_end: bool) -> Vec<Decoded> {
        let pending = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        let mut at = 0;
        while at < pending.len() {
            match self.step(&pending[at..], at_end) {
                Step::Done(item, used) => {
                    out.push(item);
                    at += used.max(1);
                }
                Step::Skip(error, len) => {
                    out.push(Err(error));
                    let here = len.min(pending.len() - at);
                    at += here;
                    self.skip = len - here;
                }
                Step::NeedMore => break,
            }
        }
        self.pending = pending;
        self.pending.drain(..at);
        out
    }

    fn step(&mut self, bytes: &[u8], at_end: bool) -> Step {
        let Some(&first) = bytes.first() else {
            return Step::NeedMore;
        };
        match first {
            LF => done(EscPosCommand::LineFeed, 1),
            CR => done(EscPosCommand::CarriageReturn, 1),
            ESC => self.esc(bytes),
            GS => self.gs(bytes),
            FS => fs(bytes),
            DLE => dle(bytes),
            0x00..=0x1F => done(EscPosCommand::Unknown(vec![first]), 1),
            _ => {
                let run = bytes
                    .iter()
                    .take(TEXT_RUN_BYTES_MAX)
                    .take_while(|&&b| b >= 0x20)
                    .count();
                if run == bytes.len() && run < TEXT_RUN_BYTES_MAX && !at_end {
                    return Step::NeedMore;
                }
                done(EscPosCommand::Text(bytes[..run].to_vec()), run)
            }
        }
    }

    fn esc(&mut self, bytes: &[u8]) -> Step {
        let Some(&c) = bytes.get(1) else {
            return Step::NeedMore;
        };
        let arg = |make: fn(u8) -> Option<EscPosCommand>| with_arg(bytes, make);
        match c {
            b'@' => {
                self.qr = QrState::default();
                done(EscPosCommand::Init, 2)
            }
            b'a' => arg(|n| {
                Some(EscPosCommand::Align(match n {
                    0 | 48 => Align::Left,
                    1 | 49 => Align::Center,
                    2 | 50 => Align::Right,
                    _ => return None,
                }))
            }),
            b'E' => arg(|n| Some(EscPosCommand::Bold(n & 1 == 1))),
            b't' => arg(|n| Some(EscPosCommand::CodePage(n))),
            b'R' => arg(|n| Some(EscPosCommand::CharacterSet(n))),
            b'd' => arg(|n| Some(EscPosCommand::Feed(n))),
            // ESC * m nL nH: bit image, nL + 256 nH columns of 1 or 3 bytes.
            b'*' => match bytes.get(2..5) {
                None => Step::NeedMore,
                Some(&[m, low, high]) => {
                    let columns = u64::from(low) + 256 * u64::from(high);
                    match m {
                        0 | 1 => sized(bytes, 5, 5 + columns),
                        32 | 33 => sized(bytes, 5, 5 + 3 * columns),
                        _ => resync(bytes, 3),
                    }
                }
                Some(_) => resync(bytes, 2),
            },
            // ESC D n1 … NUL: tab positions.
            b'D' => terminated(bytes, 2, TABS_MAX + 1, |all| {
                Ok(EscPosCommand::Unknown(all.to_vec()))
            }),
            // ESC ( fn pL pH …
            b'(' => match bytes.get(3..5) {
                None => Step::NeedMore,
                Some(len) => sized(
                    bytes,
                    5,
                    5 + u64::from(u16::from_le_bytes([len[0], len[1]])),
                ),
            },
            _ => match esc_args(c) {
                Some(args) => fixed(bytes, 2 + args),
                None => resync(bytes, 2),
            },
        }
    }

    fn gs(&mut self, bytes: &[u8]) -> Step {
        let Some(&c) = bytes.get(1) else {
            return Step::NeedMore;
        };
        let arg = |make: fn(u8) -> Option<EscPosCommand>| with_arg(bytes, make);
        match c {
            b'!' => arg(|n| {
                Some(EscPosCommand::CharSize {
                    width: ((n >> 4) & 7) + 1,
                    height: (n & 7) + 1,
                })
            }),
            b'h' => arg(|n| Some(EscPosCommand::BarcodeHeight(n))),
            b'w' => arg(|n| Some(EscPosCommand::BarcodeModuleWidth(n))),
            b'H' => arg(|n| Some(EscPosCommand::BarcodeHri(n))),
            b'V' => cut(bytes),
            b'k' => barcode(bytes),
            // GS ( fn pL pH …; fn = k is the 2D codes.
            b'(' => {
                let Some(len) = bytes.get(3..5) else {
                    return Step::NeedMore;
                };
                let total = 5 + u64::from(u16::from_le_bytes([len[0], len[1]]));
                if bytes[2] != b'k' {
                    return sized(bytes, 5, total);
                }
                match sized(bytes, 5, total) {
                    Step::Done(Ok(EscPosCommand::Unknown(all)), used) => {
                        Step::Done(Ok(self.code_2d(all)), used)
                    }
                    other => other,
                }
            }
            // GS 8 L p1 p2 p3 p4 …: graphics with a 4-byte length.
            b'8' => match bytes.get(2..7) {
                None => Step::NeedMore,
                Some(&[b'L', p1, p2, p3, p4]) => sized(
                    bytes,
                    7,
                    7 + u64::from(u32::from_le_bytes([p1, p2, p3, p4])),
                ),
                Some(_) => resync(bytes, 2),
            },
            // GS v 0 m xL xH yL yH: raster image of x bytes × y dots.
            b'v' => match bytes.get(2..8) {
                None => Step::NeedMore,
                Some(&[b'0', _, xl, xh, yl, yh]) => {
                    let x = u64::from(u16::from_le_bytes([xl, xh]));
                    let y = u64::from(u16::from_le_bytes([yl, yh]));
                    sized(bytes, 8, 8 + x * y)
                }
                Some(_) => resync(bytes, 2),
            },
            // GS * x y: downloaded bit image of x × y × 8 bytes.
            b'*' => match bytes.get(2..4) {
                None => Step::NeedMore,
                Some(xy) => sized(bytes, 4, 4 + u64::from(xy[0]) * u64::from(xy[1]) * 8),
            },
            _ => match gs_args(c) {
                Some(args) => fixed(bytes, 2 + args),
                None => resync(bytes, 2),
            },
        }
    }

    /// A whole `GS ( k pL pH cn fn …`.
    fn code_2d(&mut self, all: Vec<u8>) -> EscPosCommand {
        match all.get(5..) {
            Some([49, function, params @ ..]) => match self.qr.apply(*function, params) {
                Some(qr) => EscPosCommand::Qr(qr),
                None => EscPosCommand::Unknown(all),
            },
            _ => EscPosCommand::Unknown(all),
        }
    }
}

fn done(command: EscPosCommand, used: usize) -> Step {
    Step::Done(Ok(command), used)
}

/// A 3-byte command `X c n`; an `n` that `make` refuses makes it Unknown.
fn with_arg(bytes: &[u8], make: fn(u8) -> Option<EscPosCommand>) -> Step {
    match bytes.get(2) {
        None => Step::NeedMore,
        Some(&n) => done(
            make(n).unwrap_or_else(|| EscPosCommand::Unknown(bytes[..3].to_vec())),
            3,
        ),
    }
}

/// An uninterpreted command of `len` bytes (at most a few: held whole).
fn fixed(bytes: &[u8], len: usize) -> Step {
    match bytes.get(..len) {
        None => Step::NeedMore,
        Some(all) => done(EscPosCommand::Unknown(all.to_vec()), len),
    }
}

/// An uninterpreted command of `len` bytes, which may be too long to hold;
/// its first `header` bytes (all there) give its length.
fn sized(bytes: &[u8], header: usize, len: u64) -> Step {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > COMMAND_BYTES_MAX {
        return Step::Skip(
            EscPosError::Oversized {
                prefix: bytes[..header.min(bytes.len())].to_vec(),
                len,
            },
            len,
        );
    }
    fixed(bytes, len)
}

/// A command ending with NUL, whose argument bytes start at `from` and are
/// at most `max` long including the NUL.
fn terminated(bytes: &[u8], from: usize, max: usize, make: impl FnOnce(&[u8]) -> Decoded) -> Step {
    let window = &bytes[from.min(bytes.len())..bytes.len().min(from + max)];
    match window.iter().position(|&b| b == 0) {
        Some(nul) => Step::Done(make(&bytes[..from + nul + 1]), from + nul + 1),
        None if window.len() < max => Step::NeedMore,
        None => resync(bytes, from),
    }
}

/// An unknown command of unknowable length: report its first `len` bytes
/// and go on after them.
fn resync(bytes: &[u8], len: usize) -> Step {
    let len = len.min(bytes.len());
    Step::Done(
        Err(EscPosError::UnknownCommand {
            bytes: bytes[..len].to_vec(),
        }),
        len,
    )
}

/// `GS V m [n]`.
fn cut(bytes: &[u8]) -> Step {
    let Some(&m) = bytes.get(2) else {
        return Step::NeedMore;
    };
    // Odd is partial below 65 (1, 49), even from 65 up (66, 98, 104).
    let partial = if m < 65 { m & 1 == 1 } else { m & 1 == 0 };
    let form = match m {
        0 | 1 | 48 | 49 => {
            return done(
                EscPosCommand::Cut(Cut {
                    partial,
                    form: CutForm::Here,
                }),
                3,
            )
        }
        65 | 66 => CutForm::FeedThenCut,
        97 | 98 => CutForm::Reserved,
        103 | 104 => CutForm::FeedCutReverse,
        _ => return resync(bytes, 3),
    };
    match bytes.get(3) {
        None => Step::NeedMore,
        Some(&n) => done(
            EscPosCommand::Cut(Cut {
                partial,
                form: form(n),
            }),
            4,
        ),
    }
}

/// `GS k m d… NUL` (m 0–6) or `GS k m n d…` (m 65–79).
fn barcode(bytes: &[u8]) -> Step {
    let Some(&m) = bytes.get(2) else {
        return Step::NeedMore;
    };
    let Some(symbology) = Symbology::from_m(m) else {
        return resync(bytes, 3);
    };
    if m <= 6 {
        return terminated(bytes, 3, BARCODE_DATA_MAX + 1, |all| {
            Ok(EscPosCommand::Barcode(Barcode {
                symbology,
                data: all[3..all.len() - 1].to_vec(),
            }))
        });
    }
    let Some(&n) = bytes.get(3) else {
        return Step::NeedMore;
    };
    let len = 4 + usize::from(n);
    let Some(raw) = bytes.get(4..len) else {
        return Step::NeedMore;
    };
    let data = if symbology == Symbology::Code128 {
        match decode_code128(raw) {
            Ok(data) => data,
            Err(reason) => {
                return Step::Done(Err(EscPosError::InvalidBarcode { symbology, reason }), len)
            }
        }
    } else {
        raw.to_vec()
    };
    done(EscPosCommand::Barcode(Barcode { symbology, data }), len)
}

/// `FS` commands: Chinese mode and its fixed-length relatives.
fn fs(bytes: &[u8]) -> Step {
    let Some(&c) = bytes.get(1) else {
        return Step::NeedMore;
    };
    match c {
        b'&' => done(EscPosCommand::ChineseMode(true), 2),
        b'.' => done(EscPosCommand::ChineseMode(false), 2),
        b'(' => match bytes.get(3..5) {
            None => Step::NeedMore,
            Some(len) => sized(
                bytes,
                5,
                5 + u64::from(u16::from_le_bytes([len[0], len[1]])),
            ),
        },
        // FS ! n (mode), FS - n (underline), FS W n (quadruple), FS C n
        // (code system), FS S n1 n2 (spacing), FS p n m (NV image), FS ? c1 c2.
        b'!' | b'-' | b'W' | b'C' => fixed(bytes, 3),
        b'S' | b'p' | b'?' => fixed(bytes, 4),
        _ => resync(bytes, 2),
    }
}

/// `DLE` real-time commands.
fn dle(bytes: &[u8]) -> Step {
    let Some(&c) = bytes.get(1) else {
        return Step::NeedMore;
    };
    let Some(&n) = bytes.get(2) else {
        return Step::NeedMore;
    };
    match (c, n) {
        (status::EOT, _) => match StatusRequest::from_n(n) {
            Some(request) => done(EscPosCommand::StatusRequest(request), 3),
            // DLE EOT 7 a, DLE EOT 8 a: ink and paper on some models.
            None if n == 7 || n == 8 => fixed(bytes, 4),
            None => fixed(bytes, 3),
        },
        // DLE ENQ n: recover from an error / clear the buffer.
        (0x05, _) => fixed(bytes, 3),
        // DLE DC4 fn …: pulse, power off, clear buffer, …
        (0x14, 1..=3) => fixed(bytes, 5),
        (0x14, 7) => fixed(bytes, 4),
        (0x14, 8) => fixed(bytes, 10),
        (0x14, _) => resync(bytes, 3),
        // A lone DLE is just a control byte.
        _ => done(EscPosCommand::Unknown(vec![DLE]), 1),
    }
}

/// Argument bytes of the fixed-length `ESC` commands not interpreted here.
fn esc_args(c: u8) -> Option<usize> {
    Some(match c {
        0x0C | b'2' | b'<' | b'L' | b'S' | b'i' | b'm' | b'v' => 0,
        b' ' | b'!' | b'%' | b'-' | b'3' | b'=' | b'?' | b'G' | b'J' | b'K' | b'M' | b'T'
        | b'U' | b'V' | b'e' | b'r' | b'u' | b'{' => 1,
        b'$' | b'\\' | b'c' => 2,
        b'p' => 3,
        b'W' => 8,
        _ => return None,
    })
}

/// Argument bytes of the fixed-length `GS` commands not interpreted here.
fn gs_args(c: u8) -> Option<usize> {
    Some(match c {
        b':' => 0,
        b'/' | b'B' | b'I' | b'T' | b'a' | b'b' | b'f' | b'r' | b'j' => 1,
        b'$' | b'L' | b'P' | b'W' | b'\\' => 2,
        b'^' | b'z' => 3,
        b'g' => 4,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
