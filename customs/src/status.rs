//! The two values every receipt carries: [`ReturnStatus`] (what customs
//! decided, CUSTOMS.md §2) and [`ReturnTime`] (when, to the millisecond).

use std::fmt;

use chrono::{NaiveDate, NaiveDateTime};

/// Why a `returnStatus` or `returnTime` text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The status is not an optionally negative integer.
    #[error("{text:?} is not a status code (an integer such as 120, 800 or -621001)")]
    NotAStatus {
        /// What was received (cut to 40 characters).
        text: String,
    },
    /// The time is not exactly 17 digits.
    #[error("{text:?} is not a receipt time: expected 17 digits yyyyMMddHHmmssSSS")]
    TimeShape {
        /// What was received (cut to 40 characters).
        text: String,
    },
    /// 17 digits, but not a date and time on the calendar.
    #[error("{text:?} is not a real date and time (yyyyMMddHHmmssSSS)")]
    TimeOutOfRange {
        /// What was received.
        text: String,
    },
}

/// Error texts quote what they refuse, but never more than this: a refusal
/// must stay readable even when the input is a megabyte of garbage.
const QUOTE_CHARS_MAX: usize = 40;

fn quote(text: &str) -> String {
    text.chars().take(QUOTE_CHARS_MAX).collect()
}

/// The `returnStatus` of a receipt: customs' integer code, negative for a
/// processing error. Any integer is kept (local offices add codes); what it
/// means for the gate is [`ReturnStatus::class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReturnStatus(i64);

/// Longest status text accepted: a sign and 12 digits is far beyond any
/// code in use (the longest seen are 7 characters, e.g. `-621001`) and keeps
/// the value well inside `i64`.
const STATUS_CHARS_MAX: usize = 13;

/// What a [`ReturnStatus`] means at the gate (CUSTOMS.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// 1–4, 120, 300, 399, 400, 600: on its way; not a release.
    Pending,
    /// 100: rejected by customs (退单); the order must be re-declared or
    /// cancelled.
    Rejected,
    /// 500: inspection (查验); the parcel goes to the inspection area.
    Inspection,
    /// 501, 502, 503, 599: detained; the parcel goes to quarantine.
    Detained,
    /// 700: return shipment (退运); the goods go back, not to the buyer.
    ReturnShipment,
    /// 800: released (放行).
    Released,
    /// 899: closed (结关), which implies the release.
    Closed,
    /// Negative: customs could not process the message.
    ProcessingError,
    /// Any other code: never a release.
    Unknown,
}

impl StatusClass {
    /// Whether this class opens the gate: only 800 and 899.
    pub fn is_release(self) -> bool {
        matches!(self, StatusClass::Released | StatusClass::Closed)
    }

    /// Whether this class holds the goods (inspection, detention, return
    /// shipment): dated after a release, it revokes it.
    pub fn is_hold(self) -> bool {
        matches!(
            self,
            StatusClass::Inspection | StatusClass::Detained | StatusClass::ReturnShipment
        )
    }
}

impl ReturnStatus {
    /// Released (放行).
    pub const RELEASED: ReturnStatus = ReturnStatus(800);
    /// Closed (结关).
    pub const CLOSED: ReturnStatus = ReturnStatus(899);

    /// A status from its code.
    pub const fn new(code: i64) -> ReturnStatus {
        ReturnStatus(code)
    }

    /// Parses the element's text: an optional `-` and 1 to 12 digits,
    /// surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<ReturnStatus, ValueError> {
        let t = text.trim();
        let digits = t.strip_prefix('-').unwrap_or(t);
        let well_formed = !digits.is_empty()
            && t.len() <= STATUS_CHARS_MAX
            && digits.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(ValueError::NotAStatus { text: quote(text) });
        }
        t.parse::<i64>()
            .map(ReturnStatus)
            .map_err(|_| ValueError::NotAStatus { text: quote(text) })
    }

    /// The integer code.
    pub fn code(self) -> i64 {
        self.0
    }

    /// What the code means at the gate.
    pub fn class(self) -> StatusClass {
        match self.0 {
            1..=4 | 120 | 300 | 399 | 400 | 600 => StatusClass::Pending,
            100 => StatusClass::Rejected,
            500 => StatusClass::Inspection,
            501..=503 | 599 => StatusClass::Detained,
            700 => StatusClass::ReturnShipment,
            800 => StatusClass::Released,
            899 => StatusClass::Closed,
            c if c < 0 => StatusClass::ProcessingError,
            _ => StatusClass::Unknown,
        }
    }

    /// The code's meaning, in English and Chinese, for people.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            1 => "saved at the e-port (电子口岸已暂存)",
            2 => "being declared at the e-port (电子口岸申报中)",
            3 => "sent to customs (发送海关成功)",
            4 => "sending to customs failed (发送海关失败)",
            100 => "rejected by customs (海关退单)",
            120 => "accepted into the customs system (海关入库)",
            300 => "manual review (人工审核)",
            399 => "review concluded, not a release (海关审结)",
            400 => "awaiting arrival (local code)",
            600 => "suspended (local code)",
            500 => "inspection (查验)",
            501 => "detained, transferred to clearance (扣留移送通关)",
            502 => "detained, transferred to anti-smuggling (扣留移送缉私)",
            503 => "detained, transferred to legal (扣留移送法规)",
            599 => "detained, other (其它扣留)",
            700 => "return shipment (退运)",
            800 => "released (放行)",
            899 => "closed (结关)",
            c if c < 0 => "processing error (处理异常)",
            _ => "unknown status code (未知状态)",
        }
    }
}

impl fmt::Display for ReturnStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A receipt's `returnTime`: `yyyyMMddHHmmssSSS`, China Standard Time
/// (UTC+8, no daylight saving), millisecond precision. Ordered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReturnTime(NaiveDateTime);

/// `yyyyMMddHHmmssSSS`.
const TIME_DIGITS: usize = 17;

impl ReturnTime {
    /// Parses exactly 17 ASCII digits (surrounding whitespace ignored) that
    /// name a real calendar date and time.
    pub fn parse(text: &str) -> Result<ReturnTime, ValueError> {
        let t = text.trim();
        if t.len() != TIME_DIGITS || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::TimeShape { text: quote(text) });
        }
        // All ASCII digits, so byte slicing is on character boundaries.
        let n = |a: usize, b: usize| -> u32 {
            t.as_bytes()[a..b]
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        let year = n(0, 4) as i32;
        NaiveDate::from_ymd_opt(year, n(4, 6), n(6, 8))
            .and_then(|d| d.and_hms_milli_opt(n(8, 10), n(10, 12), n(12, 14), n(14, 17)))
            // chrono takes milli 1000..=1999 as a leap second; 3 digits cannot
            // express that, so it never reaches here.
            .map(ReturnTime)
            .ok_or_else(|| ValueError::TimeOutOfRange { text: quote(text) })
    }

    /// The wall-clock time in China Standard Time.
    pub fn china_time(self) -> NaiveDateTime {
        self.0
    }

    /// A time from a China Standard Time wall-clock value, truncated to the
    /// millisecond. `None` outside years 0000–9999 (not expressible in 17 digits).
    pub fn from_china_time(t: NaiveDateTime) -> Option<ReturnTime> {
        use chrono::{Datelike, Timelike};
        if !(0..=9999).contains(&t.year()) {
            return None;
        }
        let ms = (t.nanosecond() / 1_000_000).min(999);
        t.with_nanosecond(ms * 1_000_000).map(ReturnTime)
    }
}

impl fmt::Display for ReturnTime {
    /// The 17-digit wire form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y%m%d%H%M%S%3f"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classes_follow_customs_md() {
        let c = |n| ReturnStatus::new(n).class();
        for n in [1, 2, 3, 4, 120, 300, 399, 400, 600] {
            assert_eq!(c(n), StatusClass::Pending, "{n}");
        }
        assert_eq!(c(100), StatusClass::Rejected);
        assert_eq!(c(500), StatusClass::Inspection);
        for n in [501, 502, 503, 599] {
            assert_eq!(c(n), StatusClass::Detained, "{n}");
        }
        assert_eq!(c(700), StatusClass::ReturnShipment);
        assert_eq!(c(800), StatusClass::Released);
        assert_eq!(c(899), StatusClass::Closed);
        assert_eq!(c(-621001), StatusClass::ProcessingError);
        for n in [0, 5, 504, 801, 900] {
            assert_eq!(c(n), StatusClass::Unknown, "{n}");
        }
        assert!(!StatusClass::Pending.is_release(), "399 is not a release");
    }

    #[test]
    fn status_text() {
        assert_eq!(ReturnStatus::parse(" 800 ").unwrap().code(), 800);
        assert_eq!(ReturnStatus::parse("-621001").unwrap().code(), -621001);
        for bad in ["", "-", "8O0", "+800", "1e3", "12345678901234", "--1"] {
            assert!(ReturnStatus::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_text() {
        let t = ReturnTime::parse("20200615171556654").unwrap();
        assert_eq!(t.to_string(), "20200615171556654");
        assert!(ReturnTime::parse("20200615171556655").unwrap() > t);
        for bad in [
            "2020061517155665",
            "202006151715566540",
            "2020-06-15 17:15:56",
            "20201315171556654",
            "20200230171556654",
            "20200615241556654",
            "20200615176056654",
            "20200615171560654",
            "２0200615171556654",
        ] {
            assert!(ReturnTime::parse(bad).is_err(), "{bad:?}");
        }
        // Long garbage is quoted, but only so far.
        let long = "x".repeat(10_000);
        assert!(ReturnTime::parse(&long).unwrap_err().to_string().len() < 200);
    }

    proptest! {
        #[test]
        fn time_round_trips(s in "[0-9]{17}") {
            if let Ok(t) = ReturnTime::parse(&s) {
                prop_assert_eq!(t.to_string(), s);
                prop_assert_eq!(ReturnTime::from_china_time(t.china_time()), Some(t));
            }
        }

        #[test]
        fn status_never_panics(s in "\\PC{0,20}") {
            let _ = ReturnStatus::parse(&s);
            let _ = ReturnTime::parse(&s);
        }
    }
}
