//! Continuous ASCII lines: `ST,GS,+0000.512kg`, `US,NT,-0000.010 kg`,
//! `ST,+0001.234 kg`, each ended by CR LF (PROTOCOLS.md §1).
//!
//! Header `ST` stable, `US` unstable, `OL` overload; the second field, where
//! present, is `GS` gross or `NT` net. The weight may be padded with spaces
//! between sign, digits and unit. `OL` lines carry a weight that means
//! nothing; a negative sign on them is read as underload (an assumption:
//! indicators differ, **unverified**).

use super::number::{self, Unit};
use super::{shown, FrameError, Range, Reading};

/// Parses one line without its CR LF.
pub(super) fn parse(line: &[u8]) -> Result<Reading, FrameError> {
    let text = std::str::from_utf8(line)
        .ok()
        .filter(|t| t.bytes().all(|b| (0x20..0x7F).contains(&b)))
        .ok_or_else(|| FrameError::Malformed {
            why: format!("not printable ASCII: {:?}", shown(line)),
        })?;
    let mut fields = text.split(',');
    let header = fields.next().unwrap_or("").trim();
    let (stable, overload) = match header {
        "ST" => (true, false),
        "US" => (false, false),
        "OL" => (false, true),
        _ => {
            return Err(FrameError::UnknownHeader {
                text: shown(header.as_bytes()),
            })
        }
    };
    let (net, weight) = match (fields.next(), fields.next(), fields.next()) {
        (Some(kind), Some(weight), None) => match kind.trim() {
            "GS" => (false, weight),
            "NT" => (true, weight),
            other => {
                return Err(FrameError::UnknownHeader {
                    text: shown(other.as_bytes()),
                })
            }
        },
        (Some(weight), None, None) => (false, weight),
        _ => {
            return Err(FrameError::Malformed {
                why: format!(
                    "expected 2 or 3 comma-separated fields in {:?}",
                    shown(line)
                ),
            })
        }
    };
    // The unit is the trailing run of letters; the number is what precedes
    // it, with its padding spaces removed (`+  12.5 kg`).
    let weight = weight.trim();
    let split = weight
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| FrameError::Malformed {
            why: format!("no unit in {:?}", shown(weight.as_bytes())),
        })?;
    let (number, unit) = weight.split_at(split);
    let unit = Unit::parse(unit.trim())?;
    if unit == Unit::Mg {
        return Err(FrameError::NotMetric {
            unit: "mg".to_owned(),
        });
    }
    let number: String = number.chars().filter(|c| *c != ' ').collect();
    let grams = number::text_to_grams(&number, unit)?;
    let range = match (overload, number.starts_with('-')) {
        (false, _) => Range::Ok,
        (true, false) => Range::Overload,
        (true, true) => Range::Underload,
    };
    Ok(Reading {
        grams,
        stable,
        net,
        range,
    })
}

/// The line for a reading: `ST,GS,+0001.234kg\r\n`, four integer digits at
/// least (more when the weight needs them). Zero is sent with `+`; an
/// underload always with `-`, an overload with `+`.
pub(super) fn encode(reading: &Reading) -> Vec<u8> {
    let header = match (reading.range, reading.stable) {
        (Range::Ok, true) => "ST",
        (Range::Ok, false) => "US",
        _ => "OL",
    };
    let kind = if reading.net { "NT" } else { "GS" };
    let negative = match reading.range {
        Range::Ok => reading.grams < 0,
        Range::Overload => false,
        Range::Underload => true,
    };
    let sign = if negative { '-' } else { '+' };
    let value = number::format_fixed(reading.grams.unsigned_abs(), 3, 4);
    format!("{header},{kind},{sign}{value}kg\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(grams: i64, stable: bool, net: bool, range: Range) -> Reading {
        Reading {
            grams,
            stable,
            net,
            range,
        }
    }

    #[test]
    fn parses_the_documented_lines() {
        assert_eq!(
            parse(b"ST,GS,+0000.512kg"),
            Ok(r(512, true, false, Range::Ok))
        );
        assert_eq!(
            parse(b"US,NT,-0000.010 kg"),
            Ok(r(-10, false, true, Range::Ok))
        );
        assert_eq!(
            parse(b"ST,+0001.234 kg"),
            Ok(r(1234, true, false, Range::Ok))
        );
        assert_eq!(
            parse(b"ST,GS,   245.6 g"),
            Ok(r(246, true, false, Range::Ok))
        );
        assert_eq!(
            parse(b"OL,GS,+9999.999kg").map(|r| r.range),
            Ok(Range::Overload)
        );
        assert_eq!(
            parse(b"OL,GS,-0000.000kg").map(|r| r.range),
            Ok(Range::Underload)
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(matches!(
            parse(b"XX,GS,+1kg"),
            Err(FrameError::UnknownHeader { .. })
        ));
        assert!(matches!(
            parse(b"ST,QQ,+1kg"),
            Err(FrameError::UnknownHeader { .. })
        ));
        assert!(matches!(
            parse(b"ST,GS,+1.000lb"),
            Err(FrameError::NotMetric { .. })
        ));
        assert!(matches!(
            parse(b"ST,GS,+1.0 oz"),
            Err(FrameError::NotMetric { .. })
        ));
        assert!(matches!(
            parse(b"ST,GS,+1.000"),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            parse(b"ST,GS,+1.0.0kg"),
            Err(FrameError::BadNumber { .. })
        ));
        assert!(matches!(
            parse(b"ST,GS,x,+1kg"),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            parse(b"ST,GS,\xff1kg"),
            Err(FrameError::Malformed { .. })
        ));
    }

    #[test]
    fn encodes_the_documented_shape() {
        assert_eq!(
            encode(&r(512, true, false, Range::Ok)),
            b"ST,GS,+0000.512kg\r\n"
        );
        assert_eq!(
            encode(&r(-10, false, true, Range::Ok)),
            b"US,NT,-0000.010kg\r\n"
        );
        assert_eq!(
            encode(&r(0, true, false, Range::Ok)),
            b"ST,GS,+0000.000kg\r\n"
        );
        assert_eq!(
            encode(&r(12_345_678, true, false, Range::Ok)),
            b"ST,GS,+12345.678kg\r\n"
        );
    }
}
