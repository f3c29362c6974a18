//! A simulated picker: scans whatever the server asks for.
//!
//! The walker knows nothing of orders or stock. It reads each prompt's `next`
//! and the code the text names in `[brackets]` ([`PromptText::expected`]) and
//! scans that, so it follows any pick path the server lays out; scripted
//! [`Fault`]s add the mistakes real pickers make. The decisions live in a pure
//! state machine (`walker/walk.rs`: a prompt in, the next scan out) beside the few
//! lines of I/O in [`Walker::walk_with`], so they are tested without a broker.
//!
//! | `next`  | the walker scans                                              |
//! |---------|---------------------------------------------------------------|
//! | `login` | its badge                                                     |
//! | `tote`  | a tote of its own, `TOTE-{device}-{n}`, a new `n` each time (`_` in the device id written as `-`: tote labels are letters, digits and `-`) |
//! | `bin`, `item`, `lot` | the code in brackets                             |
//! | `qty`   | the quantity in brackets                                      |
//! | `reason`| the reason card of its [`Fault::ShortAt`] (anything else is an error) |
//! | `done`  | nothing: the walk is over                                     |
//!
//! [`PromptText::expected`]: bondgate_protocol::PromptText::expected

mod fault;
mod walk;

use bondgate_protocol::PromptMsg;

use crate::pda::{Pda, PdaError};
use crate::transcript::{PromptLine, Recent, Step, Transcript};
pub use fault::{Fault, FaultParseError, Reason};
use walk::{Mismatch, Walk};

/// Control codes: printed cards a picker scans, and the walker's bogus codes.
pub mod codes {
    /// Log out of the PDA.
    pub const LOGOUT: &str = "#LOGOUT";
    /// Cannot pick the full quantity; the server then asks for a reason.
    pub const SHORT: &str = "#SHORT";
    /// Reason card: the bin is empty.
    pub const EMPTY: &str = "#EMPTY";
    /// Reason card: the goods are damaged.
    pub const DAMAGED: &str = "#DAMAGED";
    /// Reason card: the bin holds the wrong goods.
    pub const WRONG: &str = "#WRONG";
    /// Confirm the counted quantity.
    pub const OK: &str = "#OK";
    /// The bin scanned by [`crate::Fault::WrongBinOnce`]: shaped like a code,
    /// named so it cannot be a real bin.
    pub const WRONG_BIN: &str = "SIM-NO-SUCH-BIN";
    /// The item scanned by [`crate::Fault::WrongItemOnce`].
    pub const WRONG_ITEM: &str = "SIM-NO-SUCH-ITEM";
}

/// A walk that has not reached `next=done` after this many scans is taken to
/// be looping. The longest real pick list a picker carries is a few dozen
/// lines of about six scans each; 500 is well past that and still fails in
/// well under a minute.
pub const STEP_LIMIT_DEFAULT: usize = 500;

/// Steps shown under an error: enough to see how the walk got there.
const RECENT_SHOWN: usize = 6;

/// Why a walk stopped early. Each message says what was sent, what came back
/// and what was expected, followed by the last steps.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The PDA could not send or got no answer.
    #[error("{error}\n{recent}")]
    Pda {
        /// What the PDA reported.
        error: Box<PdaError>,
        /// The steps before it.
        recent: Recent,
    },
    /// The server's answer was not what the walker expected.
    #[error("sent {sent:?} ({why}); expected {expected}; got {}\n{recent}", PromptLine(.got))]
    Unexpected {
        /// The code sent.
        sent: String,
        /// Why the walker sent it.
        why: String,
        /// What the answer should have been.
        expected: String,
        /// The answer.
        got: Box<PromptMsg>,
        /// The steps up to and including this one.
        recent: Recent,
    },
    /// A replayed seq got a different answer from the first send.
    #[error("sent {sent:?} twice with seq {seq}; expected the same answer both times (a replay gets the original prompt); got {} then {}", PromptLine(.first), PromptLine(.second))]
    ReplayMismatch {
        /// The code sent.
        sent: String,
        /// The seq both sends carried.
        seq: u64,
        /// The first answer.
        first: Box<PromptMsg>,
        /// The answer to the replay.
        second: Box<PromptMsg>,
    },
    /// The walk did not end within the step limit.
    #[error("sent {limit} scans; expected next=done before that (is the server sending the walker in circles?)\n{recent}")]
    StepLimit {
        /// The limit reached.
        limit: usize,
        /// The last steps.
        recent: Recent,
    },
    /// The walk ended without one of its scripted faults happening.
    #[error("fault {fault} was scripted but never applied; got next=done after {tasks} task(s) and {scans} scan(s); expected a prompt where it applies")]
    FaultNotApplied {
        /// The fault.
        fault: Fault,
        /// Tasks completed.
        tasks: usize,
        /// Scans sent, replays left out.
        scans: usize,
    },
}

/// A picker with a badge and a script of mistakes.
#[derive(Debug, Clone)]
pub struct Walker {
    badge: String,
    faults: Vec<Fault>,
    step_limit: usize,
    first_tote: usize,
}

impl Walker {
    /// A walker that logs in with `badge` and makes no mistakes.
    pub fn new(badge: impl Into<String>) -> Walker {
        Walker {
            badge: badge.into(),
            faults: Vec::new(),
            step_limit: STEP_LIMIT_DEFAULT,
            first_tote: 1,
        }
    }

    /// The number of the first tote this walk takes (`TOTE-{device}-{n}`,
    /// 1 unless set). A picker who walks again while earlier totes still
    /// wait at the pack station starts past them, as a real one takes an
    /// empty tote from the stack.
    pub fn first_tote(mut self, n: usize) -> Walker {
        self.first_tote = n.max(1);
        self
    }

    /// Adds a scripted mistake.
    pub fn fault(mut self, fault: Fault) -> Walker {
        self.faults.push(fault);
        self
    }

    /// Adds scripted mistakes.
    pub fn faults(mut self, faults: impl IntoIterator<Item = Fault>) -> Walker {
        self.faults.extend(faults);
        self
    }

    /// Most scans before the walk is declared looping
    /// ([`STEP_LIMIT_DEFAULT`] unless set).
    pub fn step_limit(mut self, limit: usize) -> Walker {
        self.step_limit = limit;
        self
    }

    /// Logs in with the badge and answers every prompt until `next=done`.
    pub async fn walk(&self, pda: &mut Pda) -> Result<Transcript, WalkError> {
        self.walk_with(pda, |_| {}).await
    }

    /// Like [`Walker::walk`], calling `on_step` as each step is answered
    /// (e.g. to print a live transcript).
    pub async fn walk_with(
        &self,
        pda: &mut Pda,
        mut on_step: impl FnMut(&Step),
    ) -> Result<Transcript, WalkError> {
        let mut walk = Walk::new(self, pda.device().as_str());
        let mut transcript = Transcript::default();
        let mut record = |transcript: &mut Transcript, step: Step| {
            on_step(&step);
            transcript.steps.push(step);
        };
        let mut plan = Some(walk.start());
        let mut scans = 0;
        while let Some(p) = plan {
            if scans == self.step_limit {
                return Err(WalkError::StepLimit {
                    limit: self.step_limit,
                    recent: transcript.recent(RECENT_SHOWN),
                });
            }
            scans += 1;
            let pda_error = |error, transcript: &Transcript| WalkError::Pda {
                error: Box::new(error),
                recent: transcript.recent(RECENT_SHOWN),
            };
            let prompt = match pda.scan(&p.code).await {
                Ok(prompt) => prompt,
                Err(error) => return Err(pda_error(error, &transcript)),
            };
            let seq = pda.last_seq().expect("a scan was just sent");
            let step = Step {
                seq,
                asked: p.asked,
                sent: p.code.clone(),
                prompt: prompt.clone(),
                replay: false,
            };
            record(&mut transcript, step.clone());
            if walk.duplicate_every_scan() {
                let again = match pda.scan_with_seq(seq, &p.code).await {
                    Ok(prompt) => prompt,
                    Err(error) => return Err(pda_error(error, &transcript)),
                };
                let replay = Step {
                    prompt: again.clone(),
                    replay: true,
                    ..step.clone()
                };
                record(&mut transcript, replay);
                if again != prompt {
                    return Err(WalkError::ReplayMismatch {
                        sent: p.code,
                        seq,
                        first: Box::new(prompt),
                        second: Box::new(again),
                    });
                }
            }
            let mismatch = |m: Mismatch, transcript: &Transcript| WalkError::Unexpected {
                sent: p.code.clone(),
                why: m.why,
                expected: m.expected,
                got: Box::new(prompt.clone()),
                recent: transcript.recent(RECENT_SHOWN),
            };
            walk.answered(&p, &step)
                .map_err(|m| mismatch(m, &transcript))?;
            plan = walk.decide(&prompt).map_err(|m| mismatch(m, &transcript))?;
        }
        if let Some(fault) = walk.unapplied() {
            return Err(WalkError::FaultNotApplied {
                fault,
                tasks: transcript.tasks_completed(),
                scans,
            });
        }
        Ok(transcript)
    }
}
