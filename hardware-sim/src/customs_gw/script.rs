//! Scripted receipt sequences for one 清单: which receipts customs sends,
//! the `returnTime` each carries (set by the script, one minute apart from
//! `start` unless said otherwise), and the order they arrive in — which
//! need not be the order of their times.
//!
//! | script | receipts (returnStatus, in returnTime order) | arrival | ends |
//! |---|---|---|---|
//! | `normal` | 2, 120, 399, 800 | in order | released |
//! | `inspection` | 2, 120, 500, 800 | in order | released (held at 500) |
//! | `rejection` | 2, 100 | in order | rejected (the order is cancelled) |
//! | `detention` | 2, 120, 399, 800, then a detention code (501 by default) | in order | held: the release is revoked |
//! | `cancellation` | 2, 120, CEB624 399 | in order | cancelled |
//! | `out-of-order` | 2, 120, 399, 800 | shuffled, never in order, 800 never last | released |
//! | `duplicates` | 2, 120, 399, 800 | each signed delivery twice in a row | released; every second copy a replay |
//! | `format-error` | CEB900 −1 about a CEB621 | in order | nothing about the 清单 |
//! | `bad` | 2, then 800 forged, with an unknown key, unsigned, malformed | in order | pending: only the 2 counts |

use std::fmt;
use std::str::FromStr;

use bondgate_customs::{ReturnStatus, ReturnTime};

use super::transport::{Answer, GatewayError, Target};
use super::{Declaration, Delivery, Gateway};
use StepKind::{Cancellation, FormatError, Inventory};

/// Key id the `bad` script's unknown-key delivery names.
pub const UNKNOWN_KEY_ID: &str = "gw-unknown";

/// What a step sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A CEB622 `InventoryReturn` with this `returnStatus`.
    Inventory(i64),
    /// A CEB624 `InvtCancelReturn` with this `returnStatus`.
    Cancellation(i64),
    /// A CEB900 `MessageReturn` with this `returnStatus`.
    FormatError(i64),
}

/// A deliberately bad delivery of a step's receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spoil {
    /// Signed by another key under the gateway's key id.
    Forged,
    /// Correctly signed, naming [`UNKNOWN_KEY_ID`].
    UnknownKey,
    /// No key id, no signature.
    Unsigned,
    /// Cut in half, then correctly signed.
    Malformed,
}

/// One receipt of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStep {
    /// What is sent.
    pub kind: StepKind,
    /// Its `returnTime`.
    pub time: ReturnTime,
    /// Sent spoiled, for the refusal tests.
    pub spoil: Option<Spoil>,
}

/// A named sequence: steps in `returnTime` order, and the order they arrive in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Its name (see the module table).
    pub name: &'static str,
    /// The receipts, in `returnTime` order.
    pub steps: Vec<ScriptStep>,
    /// Indexes into `steps` in delivery order; an index may repeat (the same
    /// signed bytes delivered again).
    pub arrival: Vec<usize>,
    /// The customs state the server should end in, in its words
    /// (`released`, `held`, `rejected`, `cancelled`, `pending`, `no_receipt`).
    pub expect: &'static str,
}

/// The scripts by name, for the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptName {
    /// [`Script::normal`].
    Normal,
    /// [`Script::inspection_then_release`].
    Inspection,
    /// [`Script::rejection`].
    Rejection,
    /// [`Script::detention`].
    Detention,
    /// [`Script::cancellation`].
    Cancellation,
    /// [`Script::out_of_order`].
    OutOfOrder,
    /// [`Script::duplicates`].
    Duplicates,
    /// [`Script::format_error`].
    FormatError,
    /// [`Script::bad_deliveries`].
    Bad,
}

/// Every script name, as the command line spells them.
pub const SCRIPT_NAMES: [&str; 9] = [
    "normal",
    "inspection",
    "rejection",
    "detention",
    "cancellation",
    "out-of-order",
    "duplicates",
    "format-error",
    "bad",
];

impl FromStr for ScriptName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "normal" => ScriptName::Normal,
            "inspection" => ScriptName::Inspection,
            "rejection" => ScriptName::Rejection,
            "detention" => ScriptName::Detention,
            "cancellation" => ScriptName::Cancellation,
            "out-of-order" => ScriptName::OutOfOrder,
            "duplicates" => ScriptName::Duplicates,
            "format-error" => ScriptName::FormatError,
            "bad" => ScriptName::Bad,
            _ => return Err(format!("unknown script {s:?}: one of {SCRIPT_NAMES:?}")),
        })
    }
}

impl ScriptName {
    /// The script, starting at `start`; `seed` shuffles `out-of-order`.
    pub fn script(self, start: ReturnTime, seed: u64) -> Script {
        match self {
            ScriptName::Normal => Script::normal(start),
            ScriptName::Inspection => Script::inspection_then_release(start),
            ScriptName::Rejection => Script::rejection(start),
            ScriptName::Detention => Script::detention(start, 501),
            ScriptName::Cancellation => Script::cancellation(start),
            ScriptName::OutOfOrder => Script::out_of_order(start, seed),
            ScriptName::Duplicates => Script::duplicates(start),
            ScriptName::FormatError => Script::format_error(start),
            ScriptName::Bad => Script::bad_deliveries(start),
        }
    }
}

/// `start` plus `minutes`.
pub fn minutes_after(start: ReturnTime, minutes: i64) -> ReturnTime {
    ReturnTime::from_china_time(start.china_time() + chrono::TimeDelta::minutes(minutes))
        .expect("a receipt time a few minutes after a valid one is valid")
}

fn in_order(
    name: &'static str,
    start: ReturnTime,
    kinds: &[StepKind],
    expect: &'static str,
) -> Script {
    let steps: Vec<ScriptStep> = kinds
        .iter()
        .zip(0_i64..)
        .map(|(&kind, i)| ScriptStep {
            kind,
            time: minutes_after(start, i),
            spoil: None,
        })
        .collect();
    Script {
        name,
        arrival: (0..steps.len()).collect(),
        steps,
        expect,
    }
}

impl Script {
    /// 2 → 120 → 399 → 800: released only by the 800.
    pub fn normal(start: ReturnTime) -> Script {
        let kinds = [Inventory(2), Inventory(120), Inventory(399), Inventory(800)];
        in_order("normal", start, &kinds, "released")
    }

    /// 2 → 120 → 500 (inspection: held) → 800 (released after inspection).
    pub fn inspection_then_release(start: ReturnTime) -> Script {
        let kinds = [Inventory(2), Inventory(120), Inventory(500), Inventory(800)];
        in_order("inspection", start, &kinds, "released")
    }

    /// 2 → 100: customs rejects the 清单; the order must be cancelled.
    pub fn rejection(start: ReturnTime) -> Script {
        in_order(
            "rejection",
            start,
            &[Inventory(2), Inventory(100)],
            "rejected",
        )
    }

    /// 2 → 120 → 399 → 800, then `hold` (a detention code: 501, 502, 503
    /// or 599; CUSTOMS.md §2) dated after the release, which revokes it.
    pub fn detention(start: ReturnTime, hold: i64) -> Script {
        let kinds = [
            Inventory(2),
            Inventory(120),
            Inventory(399),
            Inventory(800),
            Inventory(hold),
        ];
        in_order("detention", start, &kinds, "held")
    }

    /// 2 → 120 → CEB624 399 (the cancellation approved): cancelled.
    pub fn cancellation(start: ReturnTime) -> Script {
        let kinds = [Inventory(2), Inventory(120), Cancellation(399)];
        in_order("cancellation", start, &kinds, "cancelled")
    }

    /// The normal receipts arriving shuffled by `seed` — never in order, and
    /// never with the 800 last, so late lower codes follow the release —
    /// each with its true `returnTime`: still released.
    pub fn out_of_order(start: ReturnTime, seed: u64) -> Script {
        let mut s = Script::normal(start);
        s.name = "out-of-order";
        let mut state = seed;
        for i in (1..s.arrival.len()).rev() {
            let j = (super::splitmix64(&mut state) % (i as u64 + 1)) as usize;
            s.arrival.swap(i, j);
        }
        let release = s.steps.len() - 1;
        if s.arrival.last() == Some(&release) {
            s.arrival.swap(0, release);
        }
        if s.arrival.windows(2).all(|w| w[0] < w[1]) {
            s.arrival.reverse();
        }
        s
    }

    /// The normal receipts, each signed delivery sent twice in a row: the
    /// second copy is a replay and changes nothing.
    pub fn duplicates(start: ReturnTime) -> Script {
        let mut s = Script::normal(start);
        s.name = "duplicates";
        s.arrival = (0..s.steps.len()).flat_map(|i| [i, i]).collect();
        s
    }

    /// One CEB900 format-error receipt (about a CEB621 we sent): stored, but
    /// about no 清单.
    pub fn format_error(start: ReturnTime) -> Script {
        in_order("format-error", start, &[FormatError(-1)], "no_receipt")
    }

    /// A genuine 2, then an 800 forged, with an unknown key, unsigned and
    /// malformed: every 800 is refused, the 清单 stays pending.
    pub fn bad_deliveries(start: ReturnTime) -> Script {
        let mut s = in_order("bad", start, &[Inventory(2)], "pending");
        for spoil in [
            Spoil::Forged,
            Spoil::UnknownKey,
            Spoil::Unsigned,
            Spoil::Malformed,
        ] {
            s.steps.push(ScriptStep {
                kind: Inventory(800),
                time: minutes_after(start, 1),
                spoil: Some(spoil),
            });
            s.arrival.push(s.steps.len() - 1);
        }
        s
    }

    /// The `returnStatus` of each step, in `returnTime` order.
    pub fn statuses(&self) -> Vec<i64> {
        self.steps
            .iter()
            .map(|s| match s.kind {
                Inventory(c) | Cancellation(c) | FormatError(c) => c,
            })
            .collect()
    }

    /// Builds and signs each step once (so a repeated index is the same
    /// bytes), and lists them in arrival order with their step index.
    pub fn prepare(&self, gw: &mut Gateway, decl: &Declaration) -> Vec<(usize, Delivery)> {
        let built: Vec<Delivery> = self
            .steps
            .iter()
            .map(|step| {
                let status = |c| ReturnStatus::new(c);
                let d = match step.kind {
                    Inventory(c) => gw.inventory(decl, status(c), step.time),
                    Cancellation(c) => gw.cancellation(decl, status(c), step.time),
                    FormatError(c) => gw.format_error("CEB621Message", status(c), step.time),
                };
                match step.spoil {
                    None => d,
                    Some(Spoil::Forged) => gw.forged(&d),
                    Some(Spoil::UnknownKey) => gw.unknown_key(&d, UNKNOWN_KEY_ID),
                    Some(Spoil::Unsigned) => gw.unsigned(&d),
                    Some(Spoil::Malformed) => gw.malformed(&d),
                }
            })
            .collect();
        self.arrival
            .iter()
            .map(|&i| (i, built[i].clone()))
            .collect()
    }

    /// Delivers the whole script to `target`, in arrival order, and returns
    /// what the server answered to each. Stops at the first delivery that
    /// does not reach the server.
    pub async fn run(
        &self,
        gw: &mut Gateway,
        decl: &Declaration,
        target: &Target,
    ) -> Result<Run, GatewayError> {
        let mut answers = Vec::new();
        for (step, delivery) in self.prepare(gw, decl) {
            let answer = target.deliver(&delivery).await?;
            answers.push(StepAnswer {
                step,
                label: delivery.label,
                time: self.steps[step].time,
                answer,
            });
        }
        Ok(Run {
            script: self.name,
            answers,
        })
    }
}

/// One delivery of a run and the server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepAnswer {
    /// Index into the script's steps.
    pub step: usize,
    /// The delivery's label (`ceb622-800`, `ceb622-800-forged`, …).
    pub label: String,
    /// The step's `returnTime`.
    pub time: ReturnTime,
    /// What the server said.
    pub answer: Answer,
}

/// Everything a script run delivered, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The script's name.
    pub script: &'static str,
    /// One per delivery.
    pub answers: Vec<StepAnswer>,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "script {}", self.script)?;
        for a in &self.answers {
            writeln!(f, "#{} {} @{} → {}", a.step, a.label, a.time, a.answer)?;
        }
        Ok(())
    }
}
