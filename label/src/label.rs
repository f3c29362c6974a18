//! The label document and the checks it must pass before anything is drawn.
//!
//! A [`Label`] is plain data the caller fills in: personal data **already
//! masked**, the date **already formatted**. This crate never sees a full
//! phone number or an ID, and never reads a clock. [`Label::validate`] is the
//! first thing every backend does, so a label that would print garbage (a
//! control character that a printer executes as a command, a waybill a
//! scanner could not read back) is refused with a sentence a packer can act
//! on, instead of being printed.

use std::fmt;

/// Longest waybill number, in characters. Couriers' numbers are 10 to 20
/// characters (SF, JD, ZTO, YTO, EMS); 32 leaves room for a prefix while a
/// CODE128 of it can still fit a wide label. Whether it fits the *printer's*
/// width is the backend's check (see `EscPos`).
pub const WAYBILL_CHARS_MAX: usize = 32;

/// Longest address, in characters. Chinese addresses with province, city,
/// district, street, building and room stay well under 100 characters; 200
/// takes an overseas address too, and still fits a label in ten or so lines.
pub const ADDRESS_CHARS_MAX: usize = 200;

/// Longest of every other text field, in characters: order and package
/// numbers, names, station, timestamp. Twice the longest real value we know
/// of; anything longer is a caller's bug, not data.
pub const FIELD_CHARS_MAX: usize = 64;

/// Heaviest parcel a label is printed for: 10 tonnes, in grams. A pallet is
/// under 2 t; a larger figure is a unit mix-up (kilograms sent as grams …
/// times a thousand), which must not reach a customs-relevant document.
pub const GROSS_GRAMS_MAX: i64 = 10_000_000;

/// Highest reprint number. A label reprinted this often is a problem for a
/// supervisor, not for the printer; the bound keeps the line short.
pub const COPY_MAX: u32 = 999;

/// One shipping label, as the caller wants it printed.
///
/// Every text field may carry Chinese (the backends encode it for the
/// printer), but none may carry control characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Label {
    /// The courier's waybill number: printed as CODE128, as a QR code and as
    /// text. Printable ASCII only (CODE128 code set B), so any scanner reads
    /// back exactly these characters.
    pub waybill_no: String,
    /// Our order number, for the packer and for returns.
    pub order_no: String,
    /// The package number within the order (an order may ship in several).
    pub package_no: String,
    /// The consignee's name, **already masked** by the caller (e.g. `张**`):
    /// a label is read by everyone who handles the parcel.
    pub consignee: String,
    /// The consignee's phone, **already masked** (e.g. `138****5678`).
    pub phone: String,
    /// Destination address; may be Chinese and long: it is wrapped.
    pub address: String,
    /// Gross weight in grams, as weighed at the pack station. Printed as
    /// kilograms with three decimals by integer arithmetic (`1234` →
    /// `1.234 kg`), never through floats, so the label shows exactly the
    /// grams that were declared.
    pub gross_grams: i64,
    /// The pack station that printed the label.
    pub station: String,
    /// When it was printed, **already formatted** by the caller (this crate
    /// has no clock and no time zone).
    pub printed_at: String,
    /// `Some(n)` on the n-th reprint (n ≥ 1): the label then says
    /// `REPRINT n / 补打 n`, so two labels for one parcel can be told apart.
    pub copy: Option<u32>,
}

/// Why a label cannot be rendered. Each message names the field and what to
/// fix, and quotes no more of the offending value than a position and a
/// character, so it is safe to show and to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A required field is empty or only white space.
    #[error("{field} is empty")]
    Empty {
        /// The field's name, as in [`Label`].
        field: &'static str,
    },
    /// A field is longer than any real value.
    #[error("{field} has {chars} characters, at most {max} are allowed")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A field holds a control character. A printer would execute it as (part
    /// of) a command: a stray `ESC` or `GS` can cut, feed or garble the rest
    /// of the label.
    #[error("{field} contains control character U+{code:04X} at position {position}")]
    ControlChar {
        /// The field's name.
        field: &'static str,
        /// Character position (0-based).
        position: usize,
        /// The character's code point.
        code: u32,
    },
    /// The waybill holds a character CODE128 code set B cannot encode
    /// (outside printable ASCII, e.g. Chinese or a full-width digit).
    #[error(
        "waybill_no has {ch:?} at position {position}: only printable ASCII can go in its barcode"
    )]
    WaybillChar {
        /// The character.
        ch: char,
        /// Character position (0-based).
        position: usize,
    },
    /// The weight is negative or absurd.
    #[error("gross_grams is {grams}: it must be between 0 and {GROSS_GRAMS_MAX}")]
    Weight {
        /// The weight given.
        grams: i64,
    },
    /// A reprint number of 0 or above [`COPY_MAX`].
    #[error("copy is {copy}: reprints count from 1 to {COPY_MAX}")]
    Copy {
        /// The number given.
        copy: u32,
    },
    /// The waybill's barcode would be wider than the paper.
    #[error(
        "waybill_no has {chars} characters: its CODE128 would be {dots} dots wide, \
         the printer prints {max_dots}"
    )]
    BarcodeTooWide {
        /// Waybill length in characters.
        chars: usize,
        /// The barcode's width in dots.
        dots: usize,
        /// The printable width in dots.
        max_dots: usize,
    },
    /// The backend's options are out of range.
    #[error("printer options: {0}")]
    Options(String),
    /// The printer command library refused a command (a bug here, not in the
    /// label: validation should have caught the input).
    #[error("printer commands: {0}")]
    Encode(String),
}

/// A text field's name, value, limit and whether it may be empty.
struct TextField<'a> {
    name: &'static str,
    value: &'a str,
    max: usize,
    required: bool,
}

impl Label {
    /// A complete sample label: Chinese in every field that may carry it, an
    /// address long enough to wrap. What tests and demos start from
    /// (`Label { waybill_no: …, ..Label::sample() }`).
    pub fn sample() -> Label {
        Label {
            waybill_no: "SF1234567890123".into(),
            order_no: "SO-20240601-0001".into(),
            package_no: "PKG-1/2".into(),
            consignee: "张**".into(),
            phone: "138****5678".into(),
            address: "上海市浦东新区外高桥保税区富特北路 200 号 3 号楼 5 层 501 室（保税仓收货部）"
                .into(),
            gross_grams: 1234,
            station: "打包台 P-03".into(),
            printed_at: "2024-06-01 14:05 CST".into(),
            copy: None,
        }
    }

    /// Checks every field; the first problem found is returned. Backends call
    /// this before drawing anything.
    pub fn validate(&self) -> Result<(), RenderError> {
        for field in self.text_fields() {
            check_text(&field)?;
        }
        for (position, ch) in self.waybill_no.chars().enumerate() {
            if !(' '..='~').contains(&ch) {
                return Err(RenderError::WaybillChar { ch, position });
            }
        }
        if !(0..=GROSS_GRAMS_MAX).contains(&self.gross_grams) {
            return Err(RenderError::Weight {
                grams: self.gross_grams,
            });
        }
        match self.copy {
            Some(copy) if copy == 0 || copy > COPY_MAX => Err(RenderError::Copy { copy }),
            _ => Ok(()),
        }
    }

    /// The gross weight as printed: `"1.234 kg"`. Integer arithmetic only.
    /// Meaningful for validated labels (weights from 0 up); a negative
    /// weight still formats without panicking.
    pub fn gross_kg(&self) -> String {
        let grams = self.gross_grams.unsigned_abs();
        let sign = if self.gross_grams < 0 { "-" } else { "" };
        format!("{sign}{}.{:03} kg", grams / 1000, grams % 1000)
    }

    fn text_fields(&self) -> [TextField<'_>; 8] {
        [
            TextField {
                name: "waybill_no",
                value: &self.waybill_no,
                max: WAYBILL_CHARS_MAX,
                required: true,
            },
            TextField {
                name: "order_no",
                value: &self.order_no,
                max: FIELD_CHARS_MAX,
                required: true,
            },
            TextField {
                name: "package_no",
                value: &self.package_no,
                max: FIELD_CHARS_MAX,
                required: true,
            },
            TextField {
                name: "consignee",
                value: &self.consignee,
                max: FIELD_CHARS_MAX,
                required: true,
            },
            TextField {
                name: "phone",
                value: &self.phone,
                max: FIELD_CHARS_MAX,
                required: true,
            },
            TextField {
                name: "address",
                value: &self.address,
                max: ADDRESS_CHARS_MAX,
                required: true,
            },
            TextField {
                name: "station",
                value: &self.station,
                max: FIELD_CHARS_MAX,
                required: false,
            },
            TextField {
                name: "printed_at",
                value: &self.printed_at,
                max: FIELD_CHARS_MAX,
                required: false,
            },
        ]
    }
}

fn check_text(field: &TextField<'_>) -> Result<(), RenderError> {
    let chars = field.value.chars().count();
    if chars > field.max {
        return Err(RenderError::TooLong {
            field: field.name,
            chars,
            max: field.max,
        });
    }
    if let Some((position, ch)) = field
        .value
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control())
    {
        return Err(RenderError::ControlChar {
            field: field.name,
            position,
            code: u32::from(ch),
        });
    }
    if field.required && field.value.trim().is_empty() {
        return Err(RenderError::Empty { field: field.name });
    }
    Ok(())
}

impl fmt::Display for Label {
    /// One line for logs: the waybill and order only — never the consignee,
    /// phone or address, even masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "label {} (order {})", self.waybill_no, self.order_no)?;
        if let Some(copy) = self.copy {
            write!(f, " reprint {copy}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn sample() -> Label {
        Label::sample()
    }

    #[test]
    fn sample_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn weight_is_formatted_with_integers() {
        let mut label = sample();
        for (grams, text) in [
            (0, "0.000 kg"),
            (5, "0.005 kg"),
            (1234, "1.234 kg"),
            (10_000_000, "10000.000 kg"),
            (-1, "-0.001 kg"),
            (i64::MIN, "-9223372036854775.808 kg"),
        ] {
            label.gross_grams = grams;
            assert_eq!(label.gross_kg(), text);
        }
    }

    #[test]
    fn refusals_name_the_field() {
        type BreakIt = fn(&mut Label);
        let cases: Vec<(BreakIt, &str)> = vec![
            (|l| l.waybill_no.clear(), "waybill_no is empty"),
            (|l| l.waybill_no = "  ".into(), "waybill_no is empty"),
            (
                |l| l.waybill_no = "SF12顺丰".into(),
                "waybill_no has '顺' at position 4: only printable ASCII can go in its barcode",
            ),
            (
                |l| l.waybill_no = "SF\u{1b}1".into(),
                "waybill_no contains control character U+001B at position 2",
            ),
            (
                |l| l.address = "上海\n浦东".into(),
                "address contains control character U+000A at position 2",
            ),
            (
                |l| l.consignee = "张".repeat(65),
                "consignee has 65 characters, at most 64 are allowed",
            ),
            (
                |l| l.gross_grams = -1,
                "gross_grams is -1: it must be between 0 and 10000000",
            ),
            (
                |l| l.copy = Some(0),
                "copy is 0: reprints count from 1 to 999",
            ),
        ];
        for (break_it, message) in cases {
            let mut label = sample();
            break_it(&mut label);
            let error = label.validate().unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn display_shows_no_personal_data() {
        let mut label = sample();
        label.copy = Some(2);
        let shown = label.to_string();
        assert_eq!(
            shown,
            "label SF1234567890123 (order SO-20240601-0001) reprint 2"
        );
    }
}
