//! Money: `rust_decimal` in yuan with at most two decimals (fen). Stored as
//! integer fen so sums in SQL are exact on every backend.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The largest amount accepted anywhere: far above any bonded e-commerce
/// order (5,000 CNY limit), far below where fen would overflow i64.
pub const MONEY_MAX_YUAN: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0} is not an amount: send money as a string such as \"199.00\"")]
    NotDecimal(String),
    #[error("{0} has more than two decimals (fen)")]
    TooPrecise(String),
    #[error("{0} is negative")]
    Negative(String),
    #[error("{0} is too large")]
    TooLarge(String),
}

/// A non-negative CNY amount with at most two decimals.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::ZERO);

    pub fn new(d: Decimal) -> Result<Money, MoneyError> {
        let shown = d.to_string();
        if d.is_sign_negative() && !d.is_zero() {
            return Err(MoneyError::Negative(shown));
        }
        if d.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise(shown));
        }
        if d > Decimal::from(MONEY_MAX_YUAN) {
            return Err(MoneyError::TooLarge(shown));
        }
        let mut d = d;
        d.rescale(2);
        Ok(Money(d))
    }

    pub fn parse(s: &str) -> Result<Money, MoneyError> {
        // Plain decimal notation only: no exponents, signs of "+", or spaces inside.
        let plain = s.trim();
        let digits_ok = !plain.is_empty()
            && plain
                .strip_prefix('-')
                .unwrap_or(plain)
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
            && plain.matches('.').count() <= 1;
        if !digits_ok {
            return Err(MoneyError::NotDecimal(s.to_string()));
        }
        let d: Decimal = s
            .trim()
            .parse()
            .map_err(|_| MoneyError::NotDecimal(s.to_string()))?;
        Money::new(d)
    }

    pub fn yuan(n: i64) -> Money {
        Money::new(Decimal::from(n)).expect("whole yuan within range")
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// Integer fen, for storage.
    pub fn fen(self) -> i64 {
        let mut d = self.0;
        d.rescale(2);
        // At most MONEY_MAX_YUAN × 100, well inside i64.
        i64::try_from(d.mantissa()).expect("bounded amount fits i64")
    }

    pub fn from_fen(fen: i64) -> Result<Money, MoneyError> {
        Money::new(Decimal::new(fen, 2))
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        Money::new(self.0 + other.0)
    }

    /// `qty × self`, e.g. a line total.
    pub fn times(self, qty: i64) -> Result<Money, MoneyError> {
        let d = self
            .0
            .checked_mul(Decimal::from(qty))
            .ok_or_else(|| MoneyError::TooLarge(format!("{} × {qty}", self.0)))?;
        Money::new(d)
    }
}

impl TryFrom<String> for Money {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Money, MoneyError> {
        Money::parse(&s)
    }
}

impl From<Money> for String {
    fn from(m: Money) -> String {
        m.0.to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_to_fen() {
        assert_eq!(Money::parse("199").unwrap().to_string(), "199.00");
        assert_eq!(Money::parse("0.1").unwrap().fen(), 10);
        assert_eq!(Money::parse("4999.99").unwrap().fen(), 499_999);
        assert_eq!(Money::from_fen(123).unwrap().to_string(), "1.23");
        assert_eq!(
            Money::parse("1.500").unwrap().fen(),
            150,
            "trailing zeros are not precision"
        );
    }

    #[test]
    fn refuses_what_is_not_money() {
        assert!(matches!(
            Money::parse("1.234"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(Money::parse("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(
            Money::parse("abc"),
            Err(MoneyError::NotDecimal(_))
        ));
        assert!(matches!(
            Money::parse("1e3"),
            Err(MoneyError::NotDecimal(_))
        ));
        assert!(
            serde_json::from_str::<Money>("199.5").is_err(),
            "JSON numbers are floats: refused"
        );
        assert_eq!(
            serde_json::from_str::<Money>("\"199.5\"").unwrap().fen(),
            19_950
        );
    }

    #[test]
    fn arithmetic_is_exact() {
        let a = Money::parse("0.10").unwrap();
        let b = Money::parse("0.20").unwrap();
        assert_eq!(a.checked_add(b).unwrap(), Money::parse("0.30").unwrap());
        assert_eq!(
            Money::parse("33.33").unwrap().times(3).unwrap().to_string(),
            "99.99"
        );
    }
}
