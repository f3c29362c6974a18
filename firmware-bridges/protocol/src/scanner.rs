//! Serial barcode scanners (PROTOCOLS.md §3): each scan is one line, ended
//! by CR, LF or CR LF (the scanner's configured suffix). Bytes in, barcodes
//! out; the scanner bridge reads the port and publishes what comes out.
//!
//! A [`LineDecoder`] takes bytes in any chunking. Empty lines are skipped
//! (the LF of a CR LF, a blank suffix). A line becomes a [`Barcode`] by that
//! type's rules (no control characters but GS, at most
//! [`BARCODE_CHARS_MAX`] characters) or is refused with a [`LineError`]: not
//! UTF-8, a control character (line noise, a wrong baud rate), too long. A
//! line longer than [`LINE_BYTES_MAX`] is refused once and dropped up to
//! its end, so the decoder never holds more than that.
//!
//! ```
//! use bondgate_protocol::scanner::LineDecoder;
//!
//! let mut lines = LineDecoder::new();
//! assert!(lines.feed(b"PKG-00").is_empty());
//! let scans = lines.feed(b"1\r\nPKG-002\n\x07\r");
//! let codes: Vec<_> = scans.iter().map(|r| r.as_ref().map(|b| b.as_str())).collect();
//! assert_eq!(codes[..2], [Ok("PKG-001"), Ok("PKG-002")]);
//! assert!(codes[2].is_err()); // a control character: refused
//! ```

use crate::payload::{Barcode, FieldError, BARCODE_CHARS_MAX};

/// Most bytes held for one line: a [`BARCODE_CHARS_MAX`]-character code in
/// UTF-8 (up to 4 bytes a character). Anything longer is not one scan.
pub const LINE_BYTES_MAX: usize = BARCODE_CHARS_MAX * 4;

/// Why a line is not a scan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// More than [`LINE_BYTES_MAX`] bytes without a line end.
    #[error("line too long: no CR or LF within {max} bytes")]
    TooLong {
        /// The limit, [`LINE_BYTES_MAX`].
        max: usize,
    },
    /// Not UTF-8 text (a wrong baud rate or parity, line noise).
    #[error("line is not UTF-8 text (bad byte at offset {at})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        at: usize,
    },
    /// Text that breaks the barcode rules.
    #[error(transparent)]
    Barcode(#[from] FieldError),
}

/// Splits a scanner's byte stream into barcodes.
#[derive(Debug, Clone, Default)]
pub struct LineDecoder {
    /// The line being assembled; never longer than [`LINE_BYTES_MAX`].
    buf: Vec<u8>,
    /// Dropping an over-long line up to its end.
    skipping: bool,
}

impl LineDecoder {
    /// An empty decoder.
    pub fn new() -> LineDecoder {
        LineDecoder::default()
    }

    /// Forgets a partial line (for a port just reopened).
    pub fn reset(&mut self) {
        *self = LineDecoder::new();
    }

    /// Bytes held of a line not yet ended.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds what arrived; returns every complete line, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<Barcode, LineError>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if std::mem::take(&mut self.skipping) || self.buf.is_empty() {
                    continue;
                }
                let line = std::mem::take(&mut self.buf);
                out.push(match std::str::from_utf8(&line) {
                    Ok(text) => Barcode::new(text).map_err(LineError::from),
                    Err(e) => Err(LineError::NotUtf8 {
                        at: e.valid_up_to(),
                    }),
                });
            } else if self.skipping {
            } else if self.buf.len() == LINE_BYTES_MAX {
                self.buf.clear();
                self.skipping = true;
                out.push(Err(LineError::TooLong {
                    max: LINE_BYTES_MAX,
                }));
            } else {
                self.buf.push(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(d: &mut LineDecoder, bytes: &[u8]) -> Vec<Result<String, LineError>> {
        d.feed(bytes)
            .into_iter()
            .map(|r| r.map(|b| b.as_str().to_owned()))
            .collect()
    }

    #[test]
    fn every_suffix_and_any_chunking() {
        let stream = b"A1\rB2\nC3\r\nD4\r\n\r\nE5\n";
        let want: Vec<Result<String, LineError>> = ["A1", "B2", "C3", "D4", "E5"]
            .iter()
            .map(|s| Ok(s.to_string()))
            .collect();
        let mut d = LineDecoder::new();
        assert_eq!(codes(&mut d, stream), want);
        let mut d = LineDecoder::new();
        let mut got = Vec::new();
        for b in stream {
            got.extend(codes(&mut d, &[*b]));
        }
        assert_eq!(got, want);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn gs1_separator_passes_other_controls_do_not() {
        let mut d = LineDecoder::new();
        let got = codes(&mut d, b"(01)123\x1d10AB\r\x1b[A\rX\x00Y\r");
        assert_eq!(got[0], Ok("(01)123\u{1d}10AB".to_owned()));
        assert!(matches!(
            got[1],
            Err(LineError::Barcode(FieldError::ControlChar { .. }))
        ));
        assert!(matches!(
            got[2],
            Err(LineError::Barcode(FieldError::ControlChar { .. }))
        ));
    }

    #[test]
    fn oversized_lines_are_refused_once_and_skipped() {
        let mut d = LineDecoder::new();
        let mut long = vec![b'9'; LINE_BYTES_MAX * 3];
        long.extend_from_slice(b"\rOK-1\r");
        let got = codes(&mut d, &long);
        assert_eq!(
            got,
            vec![
                Err(LineError::TooLong {
                    max: LINE_BYTES_MAX
                }),
                Ok("OK-1".to_owned())
            ]
        );
        // Over the barcode limit but within the byte bound: refused too.
        let got = codes(
            &mut d,
            &[vec![b'7'; BARCODE_CHARS_MAX + 1], b"\n".to_vec()].concat(),
        );
        assert!(matches!(
            got[0],
            Err(LineError::Barcode(FieldError::TooLong { .. }))
        ));
    }

    #[test]
    fn non_utf8_is_refused() {
        let mut d = LineDecoder::new();
        assert_eq!(
            codes(&mut d, b"AB\xff\xfe\r"),
            vec![Err(LineError::NotUtf8 { at: 2 })]
        );
        assert_eq!(
            codes(&mut d, "包裹-1\r".as_bytes()),
            vec![Ok("包裹-1".to_owned())]
        );
    }
}
