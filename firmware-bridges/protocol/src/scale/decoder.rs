//! [`Decoder`]: a byte stream in any chunking → events, with resync.
//!
//! Framing per protocol:
//!
//! - **MT-SICS, ASCII**: lines ended by CR and/or LF (empty lines ignored).
//!   A line longer than [`MTSICS_LINE_BYTES_MAX`] is reported once as
//!   [`FrameError::TooLong`] and dropped up to the next line end.
//! - **Toledo, Yaohua A9**: a frame starts at STX and has a fixed length;
//!   bytes before an STX are counted as noise and reported as
//!   [`FrameError::Noise`] when the next frame starts (or every
//!   [`NOISE_REPORT_BYTES`], so a wrong baud rate shows up even without a
//!   frame). A frame of the wrong shape is reported and the search for the
//!   next STX starts again *inside* it, so a frame cut short by the next one
//!   costs only itself.
//! - **Toledo checksum**: whether a scale sends CHK is a setting, and CHK can
//!   itself be 0x02 (STX), so the decoder learns it: after a frame's CR it
//!   looks at the next byte; a valid checksum means "with CHK", an STX that is
//!   not a valid checksum means "without". Until it knows, a frame waits for
//!   that next byte (one frame of latency for a scale without CHK).
//! - **Yaohua "="**: a frame runs from `=` to the next `=` (or CR/LF). With
//!   no checksum, a frame whose length differs from the frames before it is
//!   refused as cut short, until two frames in a row agree on a new length.
//!
//! The buffer holds at most one frame being assembled, never more than
//! [`FRAME_BYTES_MAX`] bytes, whatever arrives.

use super::mtsics::{self, MTSICS_LINE_BYTES_MAX};
use super::{ascii, toledo, yaohua, FrameError, Reading, ScaleEvent, ScaleProtocol};

/// The most bytes a [`Decoder`] ever holds: the longest frame of any
/// protocol (an MT-SICS line).
pub const FRAME_BYTES_MAX: usize = MTSICS_LINE_BYTES_MAX;

/// How many consecutive Yaohua frames with the same weight make a reading
/// stable. Those frames carry no stability flag; an A9 streams 10 or more
/// frames a second, so 5 identical ones are half a second at rest or less —
/// about what the indicator's own motion detection waits — while a parcel
/// still settling changes the last digit from frame to frame.
pub const DERIVED_STABLE_FRAMES: u32 = 5;

/// Noise bytes counted before a [`FrameError::Noise`] is reported even
/// though no frame has started: a stream that never frames (wrong baud rate,
/// wrong protocol) is reported at least this often.
pub const NOISE_REPORT_BYTES: usize = 256;

/// Turns the bytes a scale sends into [`ScaleEvent`]s. One per port; call
/// [`Decoder::reset`] after reopening it.
#[derive(Debug, Clone)]
pub struct Decoder {
    protocol: ScaleProtocol,
    /// The frame being assembled; never longer than [`FRAME_BYTES_MAX`].
    buf: Vec<u8>,
    /// Line protocols: dropping an over-long line up to its end.
    skipping: bool,
    /// Binary and "=" protocols: bytes skipped since the last frame.
    noise: usize,
    /// Toledo: whether frames carry CHK, once known.
    toledo_chk: Option<bool>,
    /// Yaohua: the last weight and how many frames in a row had it.
    same: Option<(i64, u32)>,
    /// Yaohua "=": the body length of the frames accepted so far, and a new
    /// length seen once (accepted when the next frame has it too).
    eq_len: Option<usize>,
    eq_new_len: Option<usize>,
}

impl Decoder {
    /// A decoder for one scale speaking `protocol`.
    pub fn new(protocol: ScaleProtocol) -> Decoder {
        Decoder {
            protocol,
            buf: Vec::with_capacity(FRAME_BYTES_MAX),
            skipping: false,
            noise: 0,
            toledo_chk: None,
            same: None,
            eq_len: None,
            eq_new_len: None,
        }
    }

    /// The protocol this decoder reads.
    pub fn protocol(&self) -> ScaleProtocol {
        self.protocol
    }

    /// Bytes held of a frame not yet complete (at most [`FRAME_BYTES_MAX`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets any partial frame and what was learnt of the stream (Toledo
    /// checksum mode, Yaohua stability): for a port just reopened, whose
    /// first bytes may be the tail of a frame sent long ago.
    pub fn reset(&mut self) {
        *self = Decoder::new(self.protocol);
    }

    /// Feeds whatever bytes arrived and returns every complete event, in
    /// order, and an error for each frame that could not be trusted.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<ScaleEvent, FrameError>> {
        let mut out = Vec::new();
        for &b in bytes {
            match self.protocol {
                ScaleProtocol::MtSics | ScaleProtocol::ContinuousAscii => {
                    self.line_byte(b, &mut out)
                }
                ScaleProtocol::ToledoContinuous => self.toledo_byte(b, &mut out),
                ScaleProtocol::YaohuaA9 => self.a9_byte(b, &mut out),
                ScaleProtocol::YaohuaA9Eq => self.eq_byte(b, &mut out),
            }
            debug_assert!(self.buf.len() <= FRAME_BYTES_MAX);
        }
        out
    }

    fn line_byte(&mut self, b: u8, out: &mut Vec<Result<ScaleEvent, FrameError>>) {
        if b == b'\r' || b == b'\n' {
            if !std::mem::take(&mut self.skipping) && !self.buf.iter().all(u8::is_ascii_whitespace)
            {
                let event = match self.protocol {
                    ScaleProtocol::MtSics => mtsics::parse(&self.buf),
                    _ => ascii::parse(&self.buf).map(ScaleEvent::Reading),
                };
                out.push(event);
            }
            self.buf.clear();
        } else if self.skipping || (self.buf.is_empty() && (b == 0x00 || b == 0xFF)) {
            // Dropping an over-long line, or power-up noise before a line.
        } else if self.buf.len() == MTSICS_LINE_BYTES_MAX {
            out.push(Err(FrameError::TooLong {
                max: MTSICS_LINE_BYTES_MAX,
            }));
            self.buf.clear();
            self.skipping = true;
        } else {
            self.buf.push(b);
        }
    }

    /// Counts a byte outside any frame.
    fn skip(&mut self, out: &mut Vec<Result<ScaleEvent, FrameError>>) {
        self.noise += 1;
        if self.noise >= NOISE_REPORT_BYTES {
            self.report_noise(out);
        }
    }

    fn report_noise(&mut self, out: &mut Vec<Result<ScaleEvent, FrameError>>) {
        let count = std::mem::take(&mut self.noise);
        if count > 0 {
            out.push(Err(FrameError::Noise { count }));
        }
    }

    /// After a bad frame: keep what follows its first byte from the next
    /// frame start on (it may be a frame that cut this one short), and count
    /// the rest as noise reported with the error already given.
    fn resync(&mut self, start: u8, mask: u8) {
        match self.buf.iter().skip(1).position(|b| b & mask == start) {
            Some(i) => {
                self.buf.drain(..=i);
            }
            None => self.buf.clear(),
        }
    }

    fn toledo_byte(&mut self, b: u8, out: &mut Vec<Result<ScaleEvent, FrameError>>) {
        if self.buf.is_empty() {
            if b & 0x7F == toledo::STX {
                self.report_noise(out);
                self.buf.push(b);
            } else {
                self.skip(out);
            }
            return;
        }
        self.buf.push(b);
        if self.buf.len() == toledo::BODY_LEN {
            if self.buf[toledo::BODY_LEN - 1] & 0x7F != toledo::CR {
                out.push(Err(FrameError::Malformed {
                    why: "toledo frame has no CR at byte 17".to_owned(),
                }));
                self.toledo_resync(out);
            } else if self.toledo_chk == Some(false) {
                out.push(toledo::parse(&self.buf).map(ScaleEvent::Reading));
                self.buf.clear();
            }
            return;
        }
        if self.buf.len() < toledo::FRAME_LEN {
            return;
        }
        let body = &self.buf[..toledo::BODY_LEN];
        let (expected, got) = (toledo::checksum(body), b & 0x7F);
        if got == expected {
            self.toledo_chk = Some(true);
            out.push(toledo::parse(body).map(ScaleEvent::Reading));
            self.buf.clear();
        } else if got == toledo::STX && self.toledo_chk != Some(true) {
            self.toledo_chk = Some(false);
            out.push(toledo::parse(body).map(ScaleEvent::Reading));
            self.buf.clear();
            self.buf.push(b);
        } else {
            self.toledo_chk = Some(true);
            out.push(Err(FrameError::BadChecksum { expected, got }));
            // The "frame" may have begun at a stray STX with the real one
            // inside it; the checksum byte itself may be the next STX.
            self.toledo_resync(out);
        }
    }

    /// [`Decoder::resync`], then the kept bytes go through the framing again:
    /// they may already hold a whole frame (or another bad one). Each round
    /// drops at least one byte, so this ends within a frame's length.
    fn toledo_resync(&mut self, out: &mut Vec<Result<ScaleEvent, FrameError>>) {
        self.resync(toledo::STX, 0x7F);
        let kept = std::mem::take(&mut self.buf);
        for b in kept {
            self.toledo_byte(b, out);
        }
    }

    fn a9_byte(&mut self, b: u8, out: &mut Vec<Result<ScaleEvent, FrameError>>) {
        if self.buf.is_empty() {
            if b == yaohua::STX {
                self.report_noise(out);
                self.buf.push(b);
            } else {
                self.skip(out);
            }
            return;
        }
        self.buf.push(b);
        if self.buf.len() < yaohua::A9_LEN {
            return;
        }
        if b != yaohua::ETX {
            out.push(Err(FrameError::Malformed {
                why: "yaohua frame has no ETX (0x03) at byte 12".to_owned(),
            }));
            self.same = None;
            self.resync(yaohua::STX, 0xFF);
            return;
        }
        let event = yaohua::parse_a9(&self.buf);
        if event.is_ok() {
            self.buf.clear();
        } else {
            // Begun at a stray STX? The real frame may start inside.
            self.resync(yaohua::STX, 0xFF);
        }
        out.push(self.derive_stability(event));
    }

    fn eq_byte(&mut self, b: u8, out: &mut Vec<Result<ScaleEvent, FrameError>>) {
        let in_frame = !self.buf.is_empty();
        match b {
            yaohua::EQ | b'\r' | b'\n' => {
                if in_frame {
                    let event = self.eq_frame();
                    out.push(self.derive_stability(event));
                    self.buf.clear();
                }
                if b == yaohua::EQ {
                    self.report_noise(out);
                    self.buf.push(b);
                }
            }
            _ if !in_frame => self.skip(out),
            _ if self.buf.len() > yaohua::EQ_BODY_MAX => {
                out.push(Err(FrameError::TooLong {
                    max: yaohua::EQ_BODY_MAX + 1,
                }));
                self.same = None;
                self.buf.clear();
            }
            _ => self.buf.push(b),
        }
    }

    /// Decodes the "=" frame in the buffer. The format has no checksum and
    /// no terminator, so a frame cut short by the next `=` would read as a
    /// smaller weight (`=570.000-` cut to `=570` is 75 g). The display width
    /// is fixed, though: a frame whose length differs from the frames before
    /// is refused, and a new length is only believed when two frames in a
    /// row have it.
    fn eq_frame(&mut self) -> Result<Reading, FrameError> {
        let body = &self.buf[1..];
        let len = body.len();
        match (self.eq_len, self.eq_new_len) {
            (Some(known), _) if known == len => self.eq_new_len = None,
            (None, _) => self.eq_len = Some(len),
            (Some(_), Some(new)) if new == len => {
                self.eq_len = Some(len);
                self.eq_new_len = None;
            }
            (Some(known), _) => {
                self.eq_new_len = Some(len);
                return Err(FrameError::Malformed {
                    why: format!(
                        "\"=\" frame of {len} characters where the scale sends {known}: cut short?"
                    ),
                });
            }
        }
        yaohua::parse_eq(body)
    }

    /// Yaohua frames carry no stability flag: stable once the same weight
    /// has come [`DERIVED_STABLE_FRAMES`] times in a row. An error breaks
    /// the run.
    fn derive_stability(
        &mut self,
        event: Result<Reading, FrameError>,
    ) -> Result<ScaleEvent, FrameError> {
        match event {
            Ok(mut reading) => {
                let run = match self.same {
                    Some((grams, n)) if grams == reading.grams => n.saturating_add(1),
                    _ => 1,
                };
                self.same = Some((reading.grams, run));
                reading.stable = run >= DERIVED_STABLE_FRAMES;
                Ok(ScaleEvent::Reading(reading))
            }
            Err(e) => {
                self.same = None;
                Err(e)
            }
        }
    }
}
