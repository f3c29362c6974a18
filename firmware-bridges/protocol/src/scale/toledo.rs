//! Mettler Toledo standard continuous output (PROTOCOLS.md §1):
//!
//! ```text
//! STX SWA SWB SWC w w w w w w t t t t t t CR [CHK]
//!  0   1   2   3  4 ……… 9   10 …… 15   16   17
//! ```
//!
//! Six weight and six tare digits without a point or sign. Bit 7 of every
//! byte may be a parity bit (7E1 devices read as 8N1) and is ignored.
//!
//! **SWA** bits 0–2, where the decimal point is (PROTOCOLS.md §1; the codes
//! 2–6 agree with a published clone of the format, codes 0, 1 and 7 are from
//! Mettler Toledo terminal manuals as remembered, **unverified**):
//!
//! | code | display | weight = digits × |
//! |---|---|---|
//! | 0 | `XXXXX00` | 100 |
//! | 1 | `XXXXXX0` | 10 |
//! | 2 | `XXXXXX` | 1 |
//! | 3 | `XXXXX.X` | 0.1 |
//! | 4 | `XXXX.XX` | 0.01 |
//! | 5 | `XXX.XXX` | 0.001 |
//! | 6 | `XX.XXXX` | 0.0001 |
//! | 7 | `X.XXXXX` | 0.00001 |
//!
//! SWA bits 3–4 are the display increment (`01` ×1, `10` ×2, `11` ×5) and
//! bit 5 is always 1 — both **unverified** (a clone documents other constant
//! bits there). The decoder ignores SWA bits 3–7, so either reads; the
//! encoder writes increment ×1 and bit 5 set.
//!
//! **SWB** bit 0 net, 1 negative, 2 out of range, 3 motion, 4 kg (else lb,
//! refused). Out of range with the negative bit is read as underload (an
//! assumption). **SWC** is not used. **CHK** is the two's complement of the
//! low 7 bits of the sum of bytes 0–16, so that the sum including CHK is 0
//! modulo 128. Whether a scale sends CHK is a setting; the decoder learns it
//! from the stream (see `decoder.rs`).

use super::number::{self, Decimal, Unit};
use super::{shown, EncodeError, FrameError, Range, Reading, ScaleProtocol};

/// Start of text.
pub(super) const STX: u8 = 0x02;
/// Carriage return, at index 16.
pub(super) const CR: u8 = 0x0D;
/// Length without the checksum.
pub(super) const BODY_LEN: usize = 17;
/// Length with the checksum.
pub(super) const FRAME_LEN: usize = 18;

const SWB_NET: u8 = 1 << 0;
const SWB_NEGATIVE: u8 = 1 << 1;
const SWB_OUT_OF_RANGE: u8 = 1 << 2;
const SWB_MOTION: u8 = 1 << 3;
const SWB_KG: u8 = 1 << 4;
/// SWA bit 5, always set; with increment ×1 (`01` in bits 3–4).
const SWA_CONSTANT: u8 = 0b0010_1000;
/// SWB/SWC bit 5, always set (keeps the bytes printable), **unverified**.
const SW_BIT5: u8 = 1 << 5;

/// The checksum of `body` (bytes 0–16).
pub(super) fn checksum(body: &[u8]) -> u8 {
    let sum = body.iter().fold(0_u8, |acc, b| acc.wrapping_add(*b));
    0_u8.wrapping_sub(sum) & 0x7F
}

/// Decodes the 17 bytes STX…CR (already checked to start with STX and end
/// with CR; the checksum, if any, is the caller's).
pub(super) fn parse(body: &[u8]) -> Result<Reading, FrameError> {
    let byte = |i: usize| body.get(i).map_or(0, |b| b & 0x7F);
    let (swa, swb) = (byte(1), byte(2));
    if swb & SWB_KG == 0 {
        return Err(FrameError::NotMetric {
            unit: "lb".to_owned(),
        });
    }
    let digits: Vec<u8> = (4..10).map(byte).collect();
    let tare: Vec<u8> = (10..16).map(byte).collect();
    let bad = |d: &[u8]| FrameError::BadNumber { text: shown(d) };
    let mantissa = number::ascii_digits(&digits).ok_or_else(|| bad(&digits))?;
    number::ascii_digits(&tare).ok_or_else(|| bad(&tare))?;
    let negative = swb & SWB_NEGATIVE != 0;
    // Code 2 is units, so the power of ten is 2 − code.
    let exp10 = 2 - i32::from(swa & 0b111);
    let decimal = Decimal {
        negative,
        mantissa,
        exp10,
    };
    let grams = decimal.grams(Unit::Kg, &String::from_utf8_lossy(&digits))?;
    let range = match (swb & SWB_OUT_OF_RANGE != 0, negative) {
        (false, _) => Range::Ok,
        (true, false) => Range::Overload,
        (true, true) => Range::Underload,
    };
    Ok(Reading {
        grams,
        stable: swb & SWB_MOTION == 0 && range == Range::Ok,
        net: swb & SWB_NET != 0,
        range,
    })
}

/// The 18-byte frame (with CHK) for a reading: the finest decimal position
/// (at most gram resolution) whose six digits hold the weight exactly; the
/// tare digits are zero.
pub(super) fn encode(reading: &Reading) -> Result<Vec<u8>, EncodeError> {
    let not_representable = || EncodeError::NotRepresentable {
        protocol: ScaleProtocol::ToledoContinuous,
        grams: reading.grams,
    };
    let (mantissa, decimals) =
        number::fit_kg(reading.grams.unsigned_abs(), 6, -2).ok_or_else(not_representable)?;
    let code = u8::try_from(decimals + 2).map_err(|_| not_representable())?;
    let mut swb = SW_BIT5 | SWB_KG;
    if reading.net {
        swb |= SWB_NET;
    }
    let negative = match reading.range {
        Range::Ok => reading.grams < 0,
        Range::Overload => false,
        Range::Underload => true,
    };
    if negative {
        swb |= SWB_NEGATIVE;
    }
    if reading.range != Range::Ok {
        swb |= SWB_OUT_OF_RANGE;
    }
    if !reading.stable {
        swb |= SWB_MOTION;
    }
    let mut frame = Vec::with_capacity(FRAME_LEN);
    frame.extend([STX, SWA_CONSTANT | code, swb, SW_BIT5]);
    frame.extend(format!("{mantissa:06}000000").bytes());
    frame.push(CR);
    frame.push(checksum(&frame));
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(swa: u8, swb: u8, weight: &[u8; 6]) -> Vec<u8> {
        let mut f = vec![STX, swa, swb, 0x20];
        f.extend_from_slice(weight);
        f.extend_from_slice(b"000000");
        f.push(CR);
        f
    }

    #[test]
    fn reads_decimal_positions() {
        let kg = SW_BIT5 | SWB_KG;
        let cases: [(u8, i64); 8] = [
            (0, 51_200_000),
            (1, 5_120_000),
            (2, 512_000),
            (3, 51_200),
            (4, 5_120),
            (5, 512),
            (6, 51),
            (7, 5),
        ];
        for (code, grams) in cases {
            let got = parse(&frame(0x28 | code, kg, b"000512")).map(|r| r.grams);
            assert_eq!(got, Ok(grams), "code {code}");
        }
    }

    #[test]
    fn reads_status_bits() {
        let base = SW_BIT5 | SWB_KG;
        let r = parse(&frame(
            0x2D,
            base | SWB_NET | SWB_NEGATIVE | SWB_MOTION,
            b"000010",
        ));
        assert_eq!(
            r,
            Ok(Reading {
                grams: -10,
                stable: false,
                net: true,
                range: Range::Ok
            })
        );
        let over = parse(&frame(0x2D, base | SWB_OUT_OF_RANGE, b"999999"));
        assert_eq!(
            over.map(|r| (r.range, r.stable)),
            Ok((Range::Overload, false))
        );
        let under = parse(&frame(
            0x2D,
            base | SWB_OUT_OF_RANGE | SWB_NEGATIVE,
            b"000000",
        ));
        assert_eq!(under.map(|r| r.range), Ok(Range::Underload));
        // Parity bits set on every byte change nothing.
        let parity: Vec<u8> = frame(0x2D, base, b"001234")
            .iter()
            .map(|b| b | 0x80)
            .collect();
        assert_eq!(parse(&parity).map(|r| r.grams), Ok(1234));
    }

    #[test]
    fn refuses_pounds_and_bad_digits() {
        assert_eq!(
            parse(&frame(0x2D, SW_BIT5, b"000512")),
            Err(FrameError::NotMetric {
                unit: "lb".to_owned()
            })
        );
        assert!(matches!(
            parse(&frame(0x2D, SW_BIT5 | SWB_KG, b"00 512")),
            Err(FrameError::BadNumber { .. })
        ));
    }

    #[test]
    fn checksum_makes_the_sum_zero_mod_128() {
        let f = encode(&Reading::stable(1234)).unwrap();
        assert_eq!(f.len(), FRAME_LEN);
        let sum = f.iter().fold(0_u32, |a, b| a + u32::from(*b));
        assert_eq!(sum % 128, 0);
        assert_eq!(&f[4..16], b"001234000000");
        assert_eq!(f[1] & 0b111, 5);
    }
}
