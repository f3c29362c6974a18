//! Weights as text or digits → integer grams, exactly, and back.
//!
//! Scales send decimal numbers (`+0000.512`, `100.00`) or digit strings with
//! a separate decimal position. Both become a magnitude, a power of ten and a
//! unit, and then grams with integer arithmetic only: a float would turn
//! `0.512 kg` into 511.99999 g and a truncation into 511 g.
//!
//! **Rounding.** A value finer than one gram (a lab balance's `2.486 g`, or
//! `0.0005 kg`) is rounded to the nearest gram, **half away from zero**
//! (`0.0005 kg` → 1 g, `-0.0005 kg` → -1 g, `0.0004 kg` → 0 g): the way a
//! display with gram resolution would show it, and symmetric around zero so
//! that a tare and its removal cancel out.

use super::FrameError;

/// Largest weight magnitude accepted or produced, in grams: 1,000 t. A
/// weighbridge for lorries tops out near 200 t and a parcel scale near
/// 300 kg, so anything beyond is a garbled frame, not a parcel; and keeping
/// far from `i64::MAX` means sums of many readings cannot overflow either.
pub const GRAMS_ABS_MAX: i64 = 1_000_000_000;

/// Longest number accepted, in characters (sign, digits and point). Scales
/// send 6–10; 24 leaves room for zero padding while keeping every
/// intermediate value far inside `u128`.
const NUMBER_CHARS_MAX: usize = 24;

/// A metric unit a weight can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Kilograms.
    Kg,
    /// Grams.
    G,
    /// Milligrams (MT-SICS lab balances).
    Mg,
}

impl Unit {
    /// Parses a unit as scales print it (`kg`, `g`, `mg`, any case). Anything
    /// else — `lb`, `oz`, `ct`, … — is refused: bondgate weighs in grams and
    /// never converts from imperial units (a configured-wrong scale must be
    /// fixed at the scale, not silently converted).
    pub(crate) fn parse(text: &str) -> Result<Unit, FrameError> {
        match text.to_ascii_lowercase().as_str() {
            "kg" => Ok(Unit::Kg),
            "g" => Ok(Unit::G),
            "mg" => Ok(Unit::Mg),
            _ => Err(FrameError::NotMetric {
                unit: super::shown(text.as_bytes()),
            }),
        }
    }

    /// (numerator, denominator) of grams per unit.
    fn grams_ratio(self) -> (u128, u128) {
        match self {
            Unit::Kg => (1000, 1),
            Unit::G => (1, 1),
            Unit::Mg => (1, 1000),
        }
    }
}

/// A decimal number as sent: `negative`, `mantissa` × 10^`exp10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decimal {
    pub(crate) negative: bool,
    pub(crate) mantissa: u128,
    pub(crate) exp10: i32,
}

impl Decimal {
    /// Parses `[+|-]digits[.digits]` (at least one digit, at most one point,
    /// no exponent, no inner spaces: callers remove the padding they know of).
    pub(crate) fn parse(text: &str) -> Result<Decimal, FrameError> {
        let bad = || FrameError::BadNumber {
            text: super::shown(text.as_bytes()),
        };
        if text.is_empty() || text.len() > NUMBER_CHARS_MAX {
            return Err(bad());
        }
        let (negative, body) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let mut mantissa: u128 = 0;
        let mut digits = 0_usize;
        let mut decimals: Option<i32> = None;
        for b in body.bytes() {
            match b {
                b'0'..=b'9' => {
                    // At most 24 characters: never overflows u128 (10^24 < 2^80).
                    mantissa = mantissa * 10 + u128::from(b - b'0');
                    digits += 1;
                    if let Some(d) = decimals.as_mut() {
                        *d += 1;
                    }
                }
                b'.' if decimals.is_none() => decimals = Some(0),
                _ => return Err(bad()),
            }
        }
        if digits == 0 {
            return Err(bad());
        }
        Ok(Decimal {
            negative,
            mantissa,
            exp10: -decimals.unwrap_or(0),
        })
    }

    /// The value in grams, rounded half away from zero; refused beyond
    /// [`GRAMS_ABS_MAX`]. `shown` is what the error quotes.
    pub(crate) fn grams(self, unit: Unit, shown: &str) -> Result<i64, FrameError> {
        let out_of_range = || FrameError::OutOfRange {
            text: super::shown(shown.as_bytes()),
        };
        let (num, den) = unit.grams_ratio();
        // value = mantissa × 10^exp10 × num / den, all magnitudes.
        let (mut n, mut d) = (
            self.mantissa.checked_mul(num).ok_or_else(out_of_range)?,
            den,
        );
        let scale = pow10(self.exp10.unsigned_abs()).ok_or_else(out_of_range)?;
        if self.exp10 >= 0 {
            n = n.checked_mul(scale).ok_or_else(out_of_range)?;
        } else {
            d = d.checked_mul(scale).ok_or_else(out_of_range)?;
        }
        let (q, r) = (n / d, n % d);
        // Half away from zero: the magnitude rounds up at exactly one half.
        let magnitude = if r >= d - r { q + 1 } else { q };
        let magnitude = i64::try_from(magnitude).map_err(|_| out_of_range())?;
        if magnitude > GRAMS_ABS_MAX {
            return Err(out_of_range());
        }
        Ok(if self.negative { -magnitude } else { magnitude })
    }
}

/// 10^`exp`, if it fits a `u128`.
fn pow10(exp: u32) -> Option<u128> {
    10_u128.checked_pow(exp)
}

/// Parses a decimal text in `unit` straight to grams.
pub(crate) fn text_to_grams(text: &str, unit: Unit) -> Result<i64, FrameError> {
    Decimal::parse(text)?.grams(unit, text)
}

/// Parses ASCII digits (nothing else) into a number; `None` if any byte is
/// not a digit or there are none.
pub(crate) fn ascii_digits(bytes: &[u8]) -> Option<u128> {
    if bytes.is_empty() || bytes.len() > NUMBER_CHARS_MAX {
        return None;
    }
    bytes.iter().try_fold(0_u128, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u128::from(b - b'0'))
    })
}

/// How to write `abs_grams` as kilograms with `digits` digits and no more
/// than 3 decimals (gram resolution): the finest number of decimals, down to
/// `decimals_min` (negative: the last digit counts tens or hundreds of kg),
/// that both represents the weight exactly and fits. Returns (mantissa,
/// decimals), the value being mantissa × 10^-decimals kg.
pub(crate) fn fit_kg(abs_grams: u64, digits: u32, decimals_min: i32) -> Option<(u64, i32)> {
    let limit = 10_u64.checked_pow(digits)?;
    (decimals_min..=3).rev().find_map(|decimals| {
        // mantissa = abs_grams × 10^(decimals − 3), exactly.
        let shift = 3 - decimals; // 0..
        let div = 10_u64.checked_pow(u32::try_from(shift).ok()?)?;
        (abs_grams % div == 0 && abs_grams / div < limit).then(|| (abs_grams / div, decimals))
    })
}

/// `mantissa` × 10^-`decimals` as text with a point when `decimals` > 0,
/// the integer part zero-padded to `int_width` digits.
pub(crate) fn format_fixed(mantissa: u64, decimals: u32, int_width: usize) -> String {
    let scale = 10_u64.pow(decimals);
    let (int, frac) = (mantissa / scale, mantissa % scale);
    if decimals == 0 {
        format!("{int:0int_width$}")
    } else {
        let d = decimals as usize;
        format!("{int:0int_width$}.{frac:0d$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kg(text: &str) -> Result<i64, FrameError> {
        text_to_grams(text, Unit::Kg)
    }

    #[test]
    fn converts_exactly() {
        assert_eq!(kg("+0000.512"), Ok(512));
        assert_eq!(kg("-0000.010"), Ok(-10));
        assert_eq!(kg("12"), Ok(12_000));
        assert_eq!(kg("0.1"), Ok(100));
        assert_eq!(text_to_grams("100.00", Unit::G), Ok(100));
        assert_eq!(text_to_grams("1500", Unit::Mg), Ok(2)); // 1.5 g → 2 g
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(kg("0.0005"), Ok(1));
        assert_eq!(kg("-0.0005"), Ok(-1));
        assert_eq!(kg("0.0004"), Ok(0));
        assert_eq!(kg("-0.0004"), Ok(0));
        assert_eq!(kg("0.0015"), Ok(2));
        assert_eq!(text_to_grams("2.486", Unit::G), Ok(2));
        assert_eq!(text_to_grams("2.5", Unit::G), Ok(3));
        assert_eq!(text_to_grams("-2.5", Unit::G), Ok(-3));
    }

    #[test]
    fn refuses_bad_and_huge_numbers() {
        for bad in ["", "+", "-", ".", "1.2.3", "1e3", "１", " 1", "0x10", "1,5"] {
            assert!(
                matches!(kg(bad), Err(FrameError::BadNumber { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(kg("1000000"), Ok(GRAMS_ABS_MAX));
        assert!(matches!(
            kg("1000000.001"),
            Err(FrameError::OutOfRange { .. })
        ));
        assert!(matches!(
            kg("999999999999999999999"),
            Err(FrameError::OutOfRange { .. })
        ));
        assert!(matches!(
            kg(&"9".repeat(25)),
            Err(FrameError::BadNumber { .. })
        ));
    }

    #[test]
    fn fits_and_formats() {
        assert_eq!(fit_kg(512, 6, 0), Some((512, 3)));
        assert_eq!(fit_kg(1_234_560, 6, 0), Some((123_456, 2)));
        assert_eq!(fit_kg(1_234_567, 6, 0), None);
        assert_eq!(fit_kg(120_000_000, 6, -2), Some((120_000, 0)));
        assert_eq!(fit_kg(1_200_000_000, 6, -2), Some((120_000, -1)));
        assert_eq!(format_fixed(512, 3, 4), "0000.512");
        assert_eq!(format_fixed(7, 0, 6), "000007");
    }
}
