//! Chinese resident ID numbers (GB 11643): 17 digits and a check character.
//! Customs refuses a declaration whose buyer ID fails the check, so orders
//! are refused here first, with a reason a person can act on.

use std::fmt;

/// Weights of the 17 body digits (GB 11643-1999).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// `Σ(digit × weight) mod 11` → check character.
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("an ID card number has 18 characters, this one has {0}")]
    Length(usize),
    #[error("the first 17 characters of an ID card number are digits")]
    NotDigits,
    #[error("the ID card number's check character should be {expected}, not {found}: a digit was probably mistyped")]
    Check { expected: char, found: char },
}

/// The check character of a 17-digit body; None if the body is not 17 digits.
pub fn check_char(body: &str) -> Option<char> {
    if body.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in body.chars().zip(WEIGHTS) {
        sum += c.to_digit(10)? * w;
    }
    Some(CHECK[(sum % 11) as usize])
}

/// A resident ID number that passed the GB 11643 check. Its `Debug` and
/// `Display` print the masked form, so it cannot leak into a log by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

impl IdNumber {
    pub fn parse(s: &str) -> Result<IdNumber, IdNumberError> {
        let s = s.trim().to_ascii_uppercase();
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 18 {
            return Err(IdNumberError::Length(chars.len()));
        }
        let body: String = chars[..17].iter().collect();
        let expected = check_char(&body).ok_or(IdNumberError::NotDigits)?;
        if chars[17] != expected {
            return Err(IdNumberError::Check {
                expected,
                found: chars[17],
            });
        }
        Ok(IdNumber(s))
    }

    /// The full number, for encryption and for customs declarations only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_id_number(&self.0)
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// `3301**********1234`: the region's first four and the last four stay, so a
/// person on the phone can confirm a number without anyone reading it whole.
pub fn mask_id_number(s: &str) -> String {
    mask_keep(s, 4, 4)
}

/// `138****5678`.
pub fn mask_phone(s: &str) -> String {
    mask_keep(s, 3, 4)
}

fn mask_keep(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let stars = chars.len() - head - tail;
    chars[..head]
        .iter()
        .chain(std::iter::repeat_n(&'*', stars))
        .chain(&chars[chars.len() - tail..])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_test_vector_passes() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(
            IdNumber::parse("11010519491231002x").unwrap(),
            id,
            "lower-case x is accepted"
        );
    }

    #[test]
    fn a_mistyped_digit_is_caught() {
        assert_eq!(
            IdNumber::parse("110105194912310021"),
            Err(IdNumberError::Check {
                expected: 'X',
                found: '1'
            })
        );
        assert_eq!(
            IdNumber::parse("1101051949123100"),
            Err(IdNumberError::Length(16))
        );
        assert_eq!(
            IdNumber::parse("11010519491231A02X"),
            Err(IdNumberError::NotDigits)
        );
    }

    #[test]
    fn debug_and_display_never_show_the_whole_number() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.to_string(), "1101**********002X");
        assert!(!format!("{id:?}").contains("19491231"));
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("123"), "***");
    }

    #[test]
    fn every_single_digit_change_is_detected() {
        let good = "11010519491231002X";
        for i in 0..17 {
            for d in '0'..='9' {
                let mut c: Vec<char> = good.chars().collect();
                if c[i] == d {
                    continue;
                }
                c[i] = d;
                let s: String = c.into_iter().collect();
                assert!(IdNumber::parse(&s).is_err(), "{s} passed");
            }
        }
    }
}
