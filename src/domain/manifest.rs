//! The outbound vehicle manifest's identifiers, parsed at the edge: the
//! manifest number, the vehicle's Chinese licence plate and the customs seal
//! (关锁号). A vehicle leaves the bonded zone with a 核放单 naming its plate
//! (CUSTOMS.md §3), so a plate that cannot exist is refused here rather than
//! at the zone's gate.

use std::fmt;

/// Longest manifest number: the warehouse's own document number.
pub const MANIFEST_NO_CHARS_MAX: usize = 32;
/// Seal numbers are short serials printed on the lock; 4 to 32 characters
/// covers the electronic customs locks and the plain bolt seals.
pub const SEAL_CHARS_MIN: usize = 4;
pub const SEAL_CHARS_MAX: usize = 32;

/// The one-character abbreviations of the provinces, autonomous regions and
/// municipalities that issue plates (GA 36).
const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// Suffixes of ordinary-length plates with four serial characters:
/// trailers (挂, common on container trucks), driving schools, police.
const SUFFIXES: &str = "挂学警";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestCodeError {
    #[error("manifest number must be 1 to {MANIFEST_NO_CHARS_MAX} characters of A-Z, 0-9 and '-'")]
    ManifestNo,
    #[error("'{0}' is not a Chinese licence plate (e.g. 浙A12345, or 浙AD12345 for a new-energy vehicle)")]
    Plate(String),
    #[error(
        "seal number must be {SEAL_CHARS_MIN} to {SEAL_CHARS_MAX} characters of A-Z, 0-9 and '-'"
    )]
    Seal,
}

fn code_chars(s: &str, min: usize, max: usize) -> Option<String> {
    let s = s.trim().to_ascii_uppercase();
    let n = s.chars().count();
    let ok = (min..=max).contains(&n)
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    ok.then_some(s)
}

/// The warehouse's manifest number: the idempotency key of its creation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManifestNo(String);

impl ManifestNo {
    pub fn parse(s: &str) -> Result<ManifestNo, ManifestCodeError> {
        code_chars(s, 1, MANIFEST_NO_CHARS_MAX)
            .map(ManifestNo)
            .ok_or(ManifestCodeError::ManifestNo)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customs seal number, upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SealNo(String);

impl SealNo {
    pub fn parse(s: &str) -> Result<SealNo, ManifestCodeError> {
        code_chars(s, SEAL_CHARS_MIN, SEAL_CHARS_MAX)
            .map(SealNo)
            .ok_or(ManifestCodeError::Seal)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mainland Chinese licence plate, normalised (upper case, no spaces or
/// the middle dot people write after the issuing letter: `浙A·12345` →
/// `浙A12345`).
///
/// - ordinary (7 characters): province, issuing letter, five serial
///   characters (digits and letters other than I and O), e.g. `浙A12345`;
/// - with a suffix: province, letter, four serial characters and 挂/学/警,
///   e.g. `浙A1234挂` for a container trailer;
/// - new energy (8 characters): province, letter, then `D`/`F` and five
///   characters of which the last four are digits (small vehicles,
///   `浙AD12345`, `浙AFA1234`), or five digits then `D`/`F` (large
///   vehicles such as trucks, `浙A12345D`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Plate(String);

/// A serial character: a digit, or a letter other than I and O (which
/// would read as 1 and 0).
fn serial(c: char) -> bool {
    c.is_ascii_digit() || (c.is_ascii_uppercase() && c != 'I' && c != 'O')
}

impl Plate {
    pub fn parse(s: &str) -> Result<Plate, ManifestCodeError> {
        let norm: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let chars: Vec<char> = norm.chars().collect();
        let refuse = || ManifestCodeError::Plate(s.trim().chars().take(16).collect());
        let [province, letter, rest @ ..] = chars.as_slice() else {
            return Err(refuse());
        };
        if !PROVINCES.contains(*province) || !letter.is_ascii_uppercase() || *letter == 'I' {
            return Err(refuse());
        }
        let ok = match rest {
            // Ordinary, or four serial characters and a suffix.
            [a, b, c, d, e] => {
                [a, b, c, d].iter().all(|c| serial(**c)) && (serial(*e) || SUFFIXES.contains(*e))
            }
            // New energy, small: D/F, a serial character, four digits.
            ['D' | 'F', x, d @ ..] if d.len() == 4 => {
                serial(*x) && d.iter().all(char::is_ascii_digit)
            }
            // New energy, large: five digits, D/F.
            [d @ .., 'D' | 'F'] if d.len() == 5 => d.iter().all(char::is_ascii_digit),
            _ => false,
        };
        if ok {
            Ok(Plate(norm))
        } else {
            Err(refuse())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a new-energy (8-character) plate.
    pub fn is_new_energy(&self) -> bool {
        self.0.chars().count() == 8
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_plates() {
        for p in ["浙A12345", "沪B9X7Z2", "粤ZA1234", "京A00001", "浙A1234挂"] {
            assert!(Plate::parse(p).is_ok(), "{p}");
        }
        assert_eq!(Plate::parse(" 浙a·12345 ").unwrap().as_str(), "浙A12345");
        assert!(!Plate::parse("浙A12345").unwrap().is_new_energy());
    }

    #[test]
    fn new_energy_plates() {
        for p in ["浙AD12345", "浙AFA1234", "苏E12345D", "川A54321F"] {
            let plate = Plate::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"));
            assert!(plate.is_new_energy(), "{p}");
        }
    }

    #[test]
    fn impossible_plates() {
        for p in [
            "",
            "浙A1234",    // too short
            "浙A123456",  // eight characters, not new energy
            "AB12345",    // no province
            "台A12345",   // not a mainland plate
            "浙112345",   // no issuing letter
            "浙AI2345",   // I reads as 1
            "浙A1234O",   // O reads as 0
            "浙AD1234X",  // small new energy ends in four digits
            "浙AF1A234",  // ...all four of them
            "浙A1234XD",  // large new energy is five digits
            "浙A12345挂", // a suffix replaces the fifth serial
            "浙A123!5",
        ] {
            assert!(
                matches!(Plate::parse(p), Err(ManifestCodeError::Plate(_))),
                "{p}"
            );
        }
    }

    #[test]
    fn seals_and_manifest_numbers() {
        assert_eq!(
            SealNo::parse(" cs-00012345 ").unwrap().as_str(),
            "CS-00012345"
        );
        for bad in ["", "AB1", "-ABC1", "ABC 123", "关锁1234", &"9".repeat(33)] {
            assert_eq!(SealNo::parse(bad), Err(ManifestCodeError::Seal), "{bad}");
        }
        assert_eq!(
            ManifestNo::parse("vm-2026-0001").unwrap().as_str(),
            "VM-2026-0001"
        );
        for bad in ["", "VM 1", "VM/1", "-", &"A".repeat(33)] {
            assert_eq!(
                ManifestNo::parse(bad),
                Err(ManifestCodeError::ManifestNo),
                "{bad}"
            );
        }
    }
}
