//! Scripted mistakes, and their command-line spelling.

use std::fmt;
use std::str::FromStr;

use super::codes;

/// Why a pick came up short: the reason card the walker scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `#EMPTY`
    Empty,
    /// `#DAMAGED`
    Damaged,
    /// `#WRONG`
    Wrong,
}

impl Reason {
    /// The card's code.
    pub fn card(self) -> &'static str {
        match self {
            Reason::Empty => codes::EMPTY,
            Reason::Damaged => codes::DAMAGED,
            Reason::Wrong => codes::WRONG,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::Damaged => "damaged",
            Reason::Wrong => "wrong",
        }
    }
}

/// A scripted mistake. Each one must happen during the walk; a walk that ends
/// without applying one of its faults fails ([`super::WalkError::FaultNotApplied`]),
/// so a test cannot pass without exercising what it scripted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// At the first bin prompt, scan [`codes::WRONG_BIN`] first; the server
    /// must refuse it (tone error) and ask for a bin again.
    WrongBinOnce,
    /// At the first item prompt, scan [`codes::WRONG_ITEM`] first; likewise.
    WrongItemOnce,
    /// Send every scan twice with the same seq, as a PDA with both intent and
    /// keystroke output does; both answers must be identical.
    DuplicateEveryScan,
    /// Short-pick task `task_index` (0 for the first task): at its quantity
    /// prompt, enter `found` if 0 < `found` < the quantity asked, otherwise
    /// scan `#SHORT`; at any further quantity prompt of that task scan
    /// `#SHORT`; at the reason prompt scan the `reason` card.
    ShortAt {
        /// Which task, counted from 0 in the order they are completed.
        task_index: usize,
        /// How many were found.
        found: u32,
        /// The reason card.
        reason: Reason,
    },
    /// Once this many tasks are done, scan `#LOGOUT` instead of answering
    /// the next prompt (the server must answer `next=login`), then log in
    /// again and carry on. If the walk has reached `next=done` by then, it
    /// logs out and stops.
    LogoutAfter(usize),
}

impl fmt::Display for Fault {
    /// The CLI syntax, e.g. `short-at=0:1:empty`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::WrongBinOnce => f.write_str("wrong-bin-once"),
            Fault::WrongItemOnce => f.write_str("wrong-item-once"),
            Fault::DuplicateEveryScan => f.write_str("duplicate-every-scan"),
            Fault::ShortAt {
                task_index,
                found,
                reason,
            } => write!(f, "short-at={task_index}:{found}:{}", reason.word()),
            Fault::LogoutAfter(n) => write!(f, "logout-after={n}"),
        }
    }
}

/// A fault spelled wrongly on the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {0:?}; expected wrong-bin-once, wrong-item-once, duplicate-every-scan, short-at=TASK:FOUND:empty|damaged|wrong or logout-after=TASKS")]
pub struct FaultParseError(String);

impl FromStr for Fault {
    type Err = FaultParseError;
    fn from_str(s: &str) -> Result<Fault, FaultParseError> {
        let bad = || FaultParseError(s.to_owned());
        let (name, arg) = s.split_once('=').unwrap_or((s, ""));
        match (name, arg) {
            ("wrong-bin-once", "") => Ok(Fault::WrongBinOnce),
            ("wrong-item-once", "") => Ok(Fault::WrongItemOnce),
            ("duplicate-every-scan", "") => Ok(Fault::DuplicateEveryScan),
            ("logout-after", n) => n.parse().map(Fault::LogoutAfter).map_err(|_| bad()),
            ("short-at", arg) => {
                let mut parts = arg.split(':');
                let (Some(task), Some(found), Some(reason), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad());
                };
                let reason = match reason {
                    "empty" => Reason::Empty,
                    "damaged" => Reason::Damaged,
                    "wrong" => Reason::Wrong,
                    _ => return Err(bad()),
                };
                Ok(Fault::ShortAt {
                    task_index: task.parse().map_err(|_| bad())?,
                    found: found.parse().map_err(|_| bad())?,
                    reason,
                })
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_and_print_as_the_cli_syntax() {
        for text in [
            "wrong-bin-once",
            "wrong-item-once",
            "duplicate-every-scan",
            "short-at=2:1:wrong",
            "logout-after=3",
        ] {
            let fault: Fault = text.parse().unwrap();
            assert_eq!(fault.to_string(), text);
        }
        for bad in [
            "",
            "wrong-bin",
            "short-at=1:2",
            "short-at=1:2:lost",
            "logout-after=x",
            "wrong-bin-once=1",
        ] {
            let err = bad.parse::<Fault>().unwrap_err();
            assert!(err.to_string().contains("expected wrong-bin-once"), "{err}");
        }
    }
}
