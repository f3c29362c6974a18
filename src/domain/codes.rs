//! Identifiers and quantities, parsed once at the edge ("parse, don't validate").
//!
//! Codes come from barcodes, handheld keyboards and integrations: they are
//! refused here if empty, too long, or carrying white space or control
//! characters (a keyboard-wedge scanner that appends CR must not create a
//! second SKU that differs only by a trailing `\r`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest code we accept. Customs numbers are at most 20 characters
/// (`29242020I439440284`), GS1 barcodes 48; 64 leaves room without letting a
/// client store a paragraph as a bin code.
pub const CODE_LEN_MAX: usize = 64;

/// Largest quantity in one movement. A pallet of cosmetics is ~10^4 units; a
/// bound far above any real movement keeps sums of many movements far below
/// `i64::MAX`, so balance arithmetic cannot overflow.
pub const QUANTITY_MAX: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} characters long; at most {max} are allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{what} contains a character that is not allowed at position {pos} (white space and control characters are refused)")]
    BadChar { what: &'static str, pos: usize },
}

fn check_code(what: &'static str, s: &str) -> Result<(), CodeError> {
    if s.is_empty() {
        return Err(CodeError::Empty { what });
    }
    let len = s.chars().count();
    if len > CODE_LEN_MAX {
        return Err(CodeError::TooLong {
            what,
            len,
            max: CODE_LEN_MAX,
        });
    }
    if let Some(pos) = s.chars().position(|c| c.is_whitespace() || c.is_control()) {
        return Err(CodeError::BadChar { what, pos });
    }
    Ok(())
}

/// Defines a validated code newtype. One definition, so every code type refuses
/// the same bad input with the same message.
macro_rules! code_type {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, CodeError> {
                let s = s.into();
                check_code($what, &s)?;
                Ok(Self(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, CodeError> {
                Self::parse(s)
            }
        }
        impl From<$name> for String {
            fn from(c: $name) -> String {
                c.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

code_type!(
    /// A stock-keeping unit's code (the warehouse's item number).
    SkuCode, "SKU code"
);
code_type!(
    /// A bin (location) code, e.g. `A-01-02-3`.
    BinCode, "bin code"
);
code_type!(
    /// A barcode printed on goods (EAN-13, UPC, a brand's own code).
    Barcode, "barcode"
);
code_type!(
    /// A document number: receipt number, customs entry number, order number,
    /// or a caller's idempotency key.
    DocumentNo, "document number"
);

/// A production batch. Goods without batch tracking use the empty batch, so
/// unlike the other codes this one may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(try_from = "String", into = "String")]
pub struct BatchNo(String);

impl BatchNo {
    pub fn parse(s: impl Into<String>) -> Result<Self, CodeError> {
        let s = s.into();
        if s.is_empty() {
            return Ok(Self(s));
        }
        check_code("batch number", &s)?;
        Ok(Self(s))
    }
    pub fn none() -> Self {
        Self(String::new())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for BatchNo {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, CodeError> {
        Self::parse(s)
    }
}
impl From<BatchNo> for String {
    fn from(c: BatchNo) -> String {
        c.0
    }
}
impl fmt::Display for BatchNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity must be at least 1, got {0}")]
    NotPositive(i64),
    #[error("quantity {0} is larger than the maximum of {QUANTITY_MAX} per movement")]
    TooLarge(i64),
}

/// A strictly positive number of units in one movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Quantity(i64);

impl Quantity {
    pub fn new(n: i64) -> Result<Self, QuantityError> {
        if n < 1 {
            Err(QuantityError::NotPositive(n))
        } else if n > QUANTITY_MAX {
            Err(QuantityError::TooLarge(n))
        } else {
            Ok(Self(n))
        }
    }
    pub fn get(self) -> i64 {
        self.0
    }
}
impl TryFrom<i64> for Quantity {
    type Error = QuantityError;
    fn try_from(n: i64) -> Result<Self, QuantityError> {
        Self::new(n)
    }
}
impl From<Quantity> for i64 {
    fn from(q: Quantity) -> i64 {
        q.0
    }
}
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_refuse_empty_long_and_whitespace() {
        assert!(SkuCode::parse("SKU-1").is_ok());
        assert_eq!(
            SkuCode::parse(""),
            Err(CodeError::Empty { what: "SKU code" })
        );
        assert!(matches!(
            SkuCode::parse("A".repeat(65)),
            Err(CodeError::TooLong { len: 65, .. })
        ));
        assert_eq!(
            BinCode::parse("A-01\r"),
            Err(CodeError::BadChar {
                what: "bin code",
                pos: 4
            })
        );
        assert!(DocumentNo::parse("has space").is_err());
        assert!(
            SkuCode::parse("面膜-01").is_ok(),
            "non-ASCII letters are allowed"
        );
    }

    #[test]
    fn batch_may_be_empty_but_not_dirty() {
        assert_eq!(BatchNo::parse("").unwrap(), BatchNo::none());
        assert!(BatchNo::parse("B 1").is_err());
    }

    #[test]
    fn quantity_bounds() {
        assert_eq!(Quantity::new(0), Err(QuantityError::NotPositive(0)));
        assert_eq!(Quantity::new(-3), Err(QuantityError::NotPositive(-3)));
        assert_eq!(
            Quantity::new(QUANTITY_MAX + 1),
            Err(QuantityError::TooLarge(QUANTITY_MAX + 1))
        );
        assert_eq!(Quantity::new(7).unwrap().get(), 7);
    }

    #[test]
    fn serde_refuses_bad_values() {
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<SkuCode>("\"\"").is_err());
        assert_eq!(serde_json::from_str::<Quantity>("5").unwrap().get(), 5);
    }
}
