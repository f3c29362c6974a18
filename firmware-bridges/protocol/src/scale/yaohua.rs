//! Yaohua (耀华) XK3190-A9 output (PROTOCOLS.md §1).
//!
//! **`tF=0` continuous**, 12 bytes:
//!
//! ```text
//! 02  sign  d d d d d d  dp  xh xl  03
//! 0   1     2 ……… 7      8   9  10  11
//! ```
//!
//! sign `+`/`-`, six ASCII digits (high first), `dp` the number of decimals
//! `0`–`4`, then the XOR of bytes 1–8 as two upper-case ASCII hex digits.
//! 0.500 kg is `02 2B 30 30 30 35 30 30 33 31 44 03`.
//!
//! **"=" format**: `=` then the display text (digits and a point, a `-` for
//! negatives) with its characters in **reverse order**: 3.000 is sent as
//! `=000.3000`, -1.00 as `=00.1000-`, and `=0.50000` is 5.0 kg, not 0.5. The
//! frame has no terminator: it ends where the next `=` (or a CR/LF, which
//! some firmware adds) begins.
//!
//! Neither format has a unit, a stability flag, a net flag or a range flag:
//! the weight is taken as kg, stability is derived by the decoder, and
//! overload cannot be expressed.

use super::number::{self, Decimal, Unit};
use super::{shown, EncodeError, FrameError, Range, Reading, ScaleProtocol};

/// Start of a `tF=0` frame.
pub(super) const STX: u8 = 0x02;
/// End of a `tF=0` frame.
pub(super) const ETX: u8 = 0x03;
/// Length of a `tF=0` frame.
pub(super) const A9_LEN: usize = 12;
/// Start of an "=" frame.
pub(super) const EQ: u8 = b'=';
/// Longest "=" body accepted. The A9 sends 8 characters (7 digits and a
/// point); 16 covers other display widths and catches a lost `=`.
pub(super) const EQ_BODY_MAX: usize = 16;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        // Lower case is not what the manual shows, but costs nothing to accept.
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Decodes a 12-byte `tF=0` frame (starting with STX; the caller has the
/// length). The reading's `stable` is left false: the decoder derives it.
pub(super) fn parse_a9(frame: &[u8]) -> Result<Reading, FrameError> {
    if frame.len() != A9_LEN || frame[0] != STX || frame[A9_LEN - 1] != ETX {
        return Err(FrameError::Malformed {
            why: "yaohua frame does not end with ETX (0x03) at byte 12".to_owned(),
        });
    }
    let expected = xor(&frame[1..9]);
    let got = match (hex_value(frame[9]), hex_value(frame[10])) {
        (Some(h), Some(l)) => (h << 4) | l,
        _ => {
            return Err(FrameError::Malformed {
                why: format!("checksum {:?} is not two hex digits", shown(&frame[9..11])),
            })
        }
    };
    if got != expected {
        return Err(FrameError::BadChecksum { expected, got });
    }
    let negative = match frame[1] {
        b'+' => false,
        b'-' => true,
        _ => {
            return Err(FrameError::Malformed {
                why: format!("sign {:?} is neither + nor -", shown(&frame[1..2])),
            })
        }
    };
    let digits = &frame[2..8];
    let bad = || FrameError::BadNumber {
        text: shown(&frame[1..9]),
    };
    let mantissa = number::ascii_digits(digits).ok_or_else(bad)?;
    let decimals = match frame[8] {
        d @ b'0'..=b'4' => i32::from(d - b'0'),
        _ => return Err(bad()),
    };
    let grams = Decimal {
        negative,
        mantissa,
        exp10: -decimals,
    }
    .grams(Unit::Kg, &shown(&frame[1..9]))?;
    Ok(Reading {
        grams,
        stable: false,
        net: false,
        range: Range::Ok,
    })
}

/// Decodes an "=" body (the bytes after `=`, before the next frame).
pub(super) fn parse_eq(body: &[u8]) -> Result<Reading, FrameError> {
    let text: Vec<u8> = body.iter().rev().copied().collect();
    let text = std::str::from_utf8(&text)
        .ok()
        .filter(|t| {
            t.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        })
        .ok_or_else(|| FrameError::BadNumber { text: shown(body) })?;
    let grams = number::text_to_grams(text, Unit::Kg)?;
    Ok(Reading {
        grams,
        stable: false,
        net: false,
        range: Range::Ok,
    })
}

fn check_range(protocol: ScaleProtocol, reading: &Reading) -> Result<(), EncodeError> {
    match reading.range {
        Range::Ok => Ok(()),
        range => Err(EncodeError::NoRangeFlag { protocol, range }),
    }
}

/// The `tF=0` frame for a reading: the finest decimals (at most 3, gram
/// resolution) whose six digits hold the weight exactly.
pub(super) fn encode_a9(reading: &Reading) -> Result<Vec<u8>, EncodeError> {
    check_range(ScaleProtocol::YaohuaA9, reading)?;
    let (mantissa, decimals) = number::fit_kg(reading.grams.unsigned_abs(), 6, 0).ok_or(
        EncodeError::NotRepresentable {
            protocol: ScaleProtocol::YaohuaA9,
            grams: reading.grams,
        },
    )?;
    let sign = if reading.grams < 0 { '-' } else { '+' };
    let mut frame = vec![STX];
    frame.extend(format!("{sign}{mantissa:06}{decimals}").bytes());
    let x = xor(&frame[1..9]);
    frame.extend([HEX[usize::from(x >> 4)], HEX[usize::from(x & 0xF)], ETX]);
    Ok(frame)
}

/// The "=" frame for a reading: the 8-character display (`0001.234`,
/// `-001.234`), reversed.
pub(super) fn encode_eq(reading: &Reading) -> Result<Vec<u8>, EncodeError> {
    check_range(ScaleProtocol::YaohuaA9Eq, reading)?;
    let negative = reading.grams < 0;
    // Seven characters for the number (one goes to the point), one fewer
    // when the sign takes a place.
    let digits = if negative { 6 } else { 7 };
    let (mantissa, decimals) = number::fit_kg(reading.grams.unsigned_abs(), digits, 0).ok_or(
        EncodeError::NotRepresentable {
            protocol: ScaleProtocol::YaohuaA9Eq,
            grams: reading.grams,
        },
    )?;
    let decimals = decimals.unsigned_abs();
    let int_width = (digits - decimals) as usize;
    let display = number::format_fixed(mantissa, decimals, int_width);
    let display = if negative {
        format!("-{display}")
    } else {
        display
    };
    let mut frame = vec![EQ];
    frame.extend(display.bytes().rev());
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: [u8; 12] = [
        0x02, 0x2B, 0x30, 0x30, 0x30, 0x35, 0x30, 0x30, 0x33, 0x31, 0x44, 0x03,
    ];

    #[test]
    fn the_manual_example_is_half_a_kilo_both_ways() {
        assert_eq!(parse_a9(&EXAMPLE).map(|r| r.grams), Ok(500));
        assert_eq!(encode_a9(&Reading::stable(500)).unwrap(), EXAMPLE);
    }

    #[test]
    fn a9_refusals() {
        let mut bad = EXAMPLE;
        bad[5] = b'6';
        assert_eq!(
            parse_a9(&bad),
            Err(FrameError::BadChecksum {
                expected: 0x1E,
                got: 0x1D
            })
        );
        let mut no_etx = EXAMPLE;
        no_etx[11] = b'x';
        assert!(matches!(
            parse_a9(&no_etx),
            Err(FrameError::Malformed { .. })
        ));
        let mut dp = EXAMPLE;
        dp[8] = b'5';
        let x = xor(&dp[1..9]);
        dp[9] = HEX[usize::from(x >> 4)];
        dp[10] = HEX[usize::from(x & 0xF)];
        assert!(matches!(parse_a9(&dp), Err(FrameError::BadNumber { .. })));
    }

    #[test]
    fn eq_digits_are_reversed() {
        assert_eq!(parse_eq(b"0.50000").map(|r| r.grams), Ok(5_000));
        assert_eq!(parse_eq(b"000.3000").map(|r| r.grams), Ok(3_000));
        assert_eq!(parse_eq(b"00.1000-").map(|r| r.grams), Ok(-1_000));
        assert_eq!(encode_eq(&Reading::stable(1234)).unwrap(), b"=432.1000");
        assert_eq!(encode_eq(&Reading::stable(-1234)).unwrap(), b"=432.100-");
        assert!(matches!(
            parse_eq(b"0.5x"),
            Err(FrameError::BadNumber { .. })
        ));
    }
}
