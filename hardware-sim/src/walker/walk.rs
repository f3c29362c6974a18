//! The walker's decisions as a pure state machine: a prompt in, the next
//! scan out, no I/O. [`super::Walker::walk_with`] does the sending.

use bondgate_protocol::{Next, PromptMsg, Tone};

use super::{codes, Fault, Reason, Walker};
use crate::transcript::{next_word, Step};

/// The next scan and what its answer must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) code: String,
    /// The `next` this scan answers.
    pub(super) asked: Option<Next>,
    expect: Expect,
    /// Why this code, for error messages.
    why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Tone ok or warning.
    Accepted,
    /// The walk's first badge scan: accepted, or refused because the PDA is
    /// still logged in from an earlier walk (the server then asks for
    /// something other than a badge, and the walker carries on from there).
    LoginOrResume,
    /// Tone error, asking again for the same thing.
    Refused(Next),
    /// Accepted, and asking for a badge.
    LoggedOut,
}

/// An answer or prompt the walker cannot go on from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mismatch {
    pub(super) why: String,
    pub(super) expected: String,
}

/// The walker's state during one walk: a prompt in, the next scan out. No I/O.
pub(super) struct Walk<'a> {
    walker: &'a Walker,
    device: String,
    /// Per fault of the walker, whether it has happened.
    applied: Vec<bool>,
    tasks: usize,
    totes: usize,
    /// The last code a prompt named, and for which `next`: a refusal may
    /// not repeat it ("Wrong bin"), and the picker still knows it.
    remembered: Option<(Next, String)>,
    /// A short pick declared in the current task, awaiting its reason.
    short: Option<Reason>,
    /// Logged out at the end of the walk: stop at the login prompt.
    finished: bool,
}

impl<'a> Walk<'a> {
    pub(super) fn new(walker: &'a Walker, device: &str) -> Walk<'a> {
        Walk {
            walker,
            device: device.to_owned(),
            applied: vec![false; walker.faults.len()],
            tasks: 0,
            totes: walker.first_tote - 1,
            remembered: None,
            short: None,
            finished: false,
        }
    }

    pub(super) fn start(&self) -> Plan {
        self.plan(
            &self.walker.badge,
            None,
            Expect::LoginOrResume,
            "badge, to log in",
        )
    }

    fn plan(&self, code: &str, asked: Option<Next>, expect: Expect, why: &str) -> Plan {
        Plan {
            code: code.to_owned(),
            asked,
            expect,
            why: why.to_owned(),
        }
    }

    pub(super) fn duplicate_every_scan(&mut self) -> bool {
        match self.pending(|f| *f == Fault::DuplicateEveryScan) {
            Some(i) => {
                self.applied[i] = true;
                true
            }
            None => self.walker.faults.contains(&Fault::DuplicateEveryScan),
        }
    }

    /// Checks the answer to `plan` and counts finished tasks.
    pub(super) fn answered(&mut self, plan: &Plan, step: &Step) -> Result<(), Mismatch> {
        let p = &step.prompt;
        let (met, expected) = match plan.expect {
            Expect::Accepted => (
                p.tone != Tone::Error,
                "the scan to be accepted (tone ok or warn)".to_owned(),
            ),
            Expect::LoginOrResume => (
                p.tone != Tone::Error || p.next != Next::Login,
                "the badge to be accepted (or, if already logged in, a prompt for something else)"
                    .to_owned(),
            ),
            Expect::Refused(next) => (
                p.tone == Tone::Error && p.next == next,
                format!(
                    "a refusal (tone error) asking again: next={}",
                    next_word(next)
                ),
            ),
            Expect::LoggedOut => (
                p.tone != Tone::Error && p.next == Next::Login,
                "a logout: tone ok and next=login".to_owned(),
            ),
        };
        if !met {
            return Err(Mismatch {
                why: plan.why.clone(),
                expected,
            });
        }
        if step.ends_task() {
            self.tasks += 1;
            self.short = None;
        }
        Ok(())
    }

    /// The scan answering `prompt`, or `None` when the walk is over.
    pub(super) fn decide(&mut self, prompt: &PromptMsg) -> Result<Option<Plan>, Mismatch> {
        let tasks = self.tasks;
        let logout = self.pending(|f| matches!(f, Fault::LogoutAfter(n) if tasks >= *n));
        let asked = Some(prompt.next);
        match (prompt.next, logout) {
            (Next::Login, _) if self.finished => return Ok(None),
            (Next::Login, _) => {
                return Ok(Some(self.plan(
                    &self.walker.badge,
                    asked,
                    Expect::Accepted,
                    "badge, to log in",
                )))
            }
            (Next::Done, None) => return Ok(None),
            (next, Some(i)) => {
                self.applied[i] = true;
                self.finished = next == Next::Done;
                let why = format!("fault {}", self.walker.faults[i]);
                return Ok(Some(self.plan(
                    codes::LOGOUT,
                    asked,
                    Expect::LoggedOut,
                    &why,
                )));
            }
            _ => {}
        }
        let plan = match prompt.next {
            Next::Tote => {
                self.totes += 1;
                // Tote labels are letters, digits and `-`.
                let device = self.device.replace('_', "-");
                let tote = format!("TOTE-{device}-{}", self.totes);
                self.plan(&tote, asked, Expect::Accepted, "a fresh tote")
            }
            Next::Bin => self.wrong_once(prompt, Fault::WrongBinOnce, codes::WRONG_BIN)?,
            Next::Item => self.wrong_once(prompt, Fault::WrongItemOnce, codes::WRONG_ITEM)?,
            Next::Lot => {
                let lot = self.expected(prompt)?;
                self.plan(&lot, asked, Expect::Accepted, "the lot asked for")
            }
            Next::Qty => self.quantity(prompt)?,
            Next::Reason => match self.short {
                Some(reason) => {
                    self.plan(reason.card(), asked, Expect::Accepted, "short-pick reason")
                }
                None => {
                    return Err(Mismatch {
                        why: "the last answer".to_owned(),
                        expected: "no reason prompt: the walker declared no short pick".to_owned(),
                    })
                }
            },
            Next::Login | Next::Done => unreachable!("handled above"),
        };
        Ok(Some(plan))
    }

    /// A bin or item prompt: the bogus code once if the fault is scripted,
    /// otherwise the code asked for.
    fn wrong_once(
        &mut self,
        prompt: &PromptMsg,
        fault: Fault,
        bogus: &str,
    ) -> Result<Plan, Mismatch> {
        let asked = Some(prompt.next);
        if let Some(i) = self.pending(|f| *f == fault) {
            self.applied[i] = true;
            // Remember the right code for the refusal that should follow.
            self.expected(prompt)?;
            let why = format!("fault {fault}");
            return Ok(self.plan(bogus, asked, Expect::Refused(prompt.next), &why));
        }
        let code = self.expected(prompt)?;
        let why = format!("the {} asked for", next_word(prompt.next));
        Ok(self.plan(&code, asked, Expect::Accepted, &why))
    }

    /// A quantity prompt: the quantity asked for, or a short pick.
    fn quantity(&mut self, prompt: &PromptMsg) -> Result<Plan, Mismatch> {
        let asked = Some(prompt.next);
        if self.short.is_some() {
            return Ok(self.plan(
                codes::SHORT,
                asked,
                Expect::Accepted,
                "short pick: no more to count",
            ));
        }
        let tasks = self.tasks;
        let due = self
            .pending(|f| matches!(f, Fault::ShortAt { task_index, .. } if *task_index == tasks));
        let want = self.expected(prompt)?;
        let Some(i) = due else {
            return Ok(self.plan(&want, asked, Expect::Accepted, "the quantity asked for"));
        };
        let Fault::ShortAt { found, reason, .. } = self.walker.faults[i] else {
            unreachable!("matched ShortAt above");
        };
        let want: u32 = want.parse().map_err(|_| Mismatch {
            why: "the last answer".to_owned(),
            expected: format!("a whole quantity in [brackets] to short-pick against, not {want:?}"),
        })?;
        self.applied[i] = true;
        self.short = Some(reason);
        let why = format!("fault {}", self.walker.faults[i]);
        let code = if found > 0 && found < want {
            found.to_string()
        } else {
            codes::SHORT.to_owned()
        };
        Ok(self.plan(&code, asked, Expect::Accepted, &why))
    }

    /// The code the prompt names; for a refusal that names none, the code
    /// named before for the same `next`.
    fn expected(&mut self, prompt: &PromptMsg) -> Result<String, Mismatch> {
        if let Some(code) = prompt.text.expected() {
            self.remembered = Some((prompt.next, code.to_owned()));
            return Ok(code.to_owned());
        }
        match &self.remembered {
            Some((next, code)) if prompt.tone == Tone::Error && *next == prompt.next => {
                Ok(code.clone())
            }
            _ => Err(Mismatch {
                why: "the last answer".to_owned(),
                expected: format!(
                    "the {} to scan written in [brackets] in the prompt",
                    next_word(prompt.next)
                ),
            }),
        }
    }

    /// The first fault not yet applied that matches.
    fn pending(&self, matches: impl Fn(&Fault) -> bool) -> Option<usize> {
        (0..self.applied.len()).find(|&i| !self.applied[i] && matches(&self.walker.faults[i]))
    }

    pub(super) fn unapplied(&self) -> Option<Fault> {
        self.pending(|_| true).map(|i| self.walker.faults[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bondgate_protocol::PromptText;

    fn prompt(tone: Tone, text: &str, next: Next) -> PromptMsg {
        PromptMsg {
            seq: 1,
            ok: tone != Tone::Error,
            tone,
            text: PromptText::new(text).unwrap(),
            next,
        }
    }

    /// Feeds `prompt` as the answer to `plan`, returns the next plan.
    fn answer(walk: &mut Walk, plan: &Plan, prompt: PromptMsg) -> Result<Option<Plan>, Mismatch> {
        let step = Step {
            seq: 1,
            asked: plan.asked,
            sent: plan.code.clone(),
            prompt: prompt.clone(),
            replay: false,
        };
        walk.answered(plan, &step)?;
        walk.decide(&prompt)
    }

    fn code(plan: &Option<Plan>) -> &str {
        &plan.as_ref().expect("a plan").code
    }

    #[test]
    fn a_later_walk_starts_past_the_totes_still_at_the_pack_station() {
        let walker = Walker::new("BADGE-a").first_tote(7);
        let mut w = Walk::new(&walker, "PDA_01");
        let login = w.start();
        let tote = answer(&mut w, &login, prompt(Tone::Ok, "Scan a tote", Next::Tote)).unwrap();
        assert_eq!(code(&tote), "TOTE-PDA-01-7");
        let zero = Walker::new("BADGE-a").first_tote(0);
        let mut w = Walk::new(&zero, "PDA-01");
        let login = w.start();
        let tote = answer(&mut w, &login, prompt(Tone::Ok, "Scan a tote", Next::Tote)).unwrap();
        assert_eq!(code(&tote), "TOTE-PDA-01-1", "tote numbers start at 1");
    }

    #[test]
    fn scans_what_the_prompts_name() {
        let walker = Walker::new("BADGE-a");
        let mut w = Walk::new(&walker, "PDA-01");
        let login = w.start();
        assert_eq!(login.code, "BADGE-a");
        let tote = answer(
            &mut w,
            &login,
            prompt(Tone::Ok, "Hi. Scan a tote", Next::Tote),
        )
        .unwrap();
        assert_eq!(code(&tote), "TOTE-PDA-01-1");
        let bin = answer(
            &mut w,
            tote.as_ref().unwrap(),
            prompt(Tone::Ok, "Go to [A-01]", Next::Bin),
        )
        .unwrap();
        assert_eq!(code(&bin), "A-01");
        let qty = answer(
            &mut w,
            bin.as_ref().unwrap(),
            prompt(Tone::Ok, "Pick [3]", Next::Qty),
        )
        .unwrap();
        assert_eq!(code(&qty), "3");
        let tote2 = answer(
            &mut w,
            qty.as_ref().unwrap(),
            prompt(Tone::Ok, "Tote full", Next::Tote),
        )
        .unwrap();
        assert_eq!((code(&tote2), w.tasks), ("TOTE-PDA-01-2", 1));
        let end = answer(
            &mut w,
            tote2.as_ref().unwrap(),
            prompt(Tone::Ok, "All done", Next::Done),
        );
        assert_eq!(end, Ok(None));
        assert_eq!(w.unapplied(), None);
    }

    #[test]
    fn wrong_bin_once_then_the_remembered_bin() {
        let walker = Walker::new("B").fault(Fault::WrongBinOnce);
        let mut w = Walk::new(&walker, "P");
        let bogus = w
            .decide(&prompt(Tone::Ok, "Go to [A-01]", Next::Bin))
            .unwrap();
        let bogus = bogus.unwrap();
        assert_eq!(
            (bogus.code.as_str(), bogus.expect),
            (codes::WRONG_BIN, Expect::Refused(Next::Bin))
        );
        // The refusal does not repeat the code: the walker still knows it.
        let right = answer(&mut w, &bogus, prompt(Tone::Error, "Wrong bin", Next::Bin)).unwrap();
        assert_eq!(code(&right), "A-01");
        // Accepting the bogus bin is what the fault exists to catch.
        let again = Walker::new("B").fault(Fault::WrongBinOnce);
        let mut w = Walk::new(&again, "P");
        let bogus = w
            .decide(&prompt(Tone::Ok, "Go to [A-01]", Next::Bin))
            .unwrap()
            .unwrap();
        let err = answer(&mut w, &bogus, prompt(Tone::Ok, "Pick [1]", Next::Qty)).unwrap_err();
        assert_eq!(
            err.expected,
            "a refusal (tone error) asking again: next=bin"
        );
        assert_eq!(err.why, "fault wrong-bin-once");
    }

    #[test]
    fn short_pick_counts_what_was_found_then_gives_the_reason() {
        let short = Fault::ShortAt {
            task_index: 0,
            found: 1,
            reason: Reason::Damaged,
        };
        let walker = Walker::new("B").fault(short);
        let mut w = Walk::new(&walker, "P");
        let count = w
            .decide(&prompt(Tone::Ok, "Pick [3]", Next::Qty))
            .unwrap()
            .unwrap();
        assert_eq!(count.code, "1");
        let more = answer(&mut w, &count, prompt(Tone::Warning, "1 of [3]", Next::Qty)).unwrap();
        assert_eq!(code(&more), codes::SHORT);
        let reason = answer(
            &mut w,
            more.as_ref().unwrap(),
            prompt(Tone::Warning, "Why?", Next::Reason),
        )
        .unwrap();
        assert_eq!(code(&reason), codes::DAMAGED);
        let next = answer(
            &mut w,
            reason.as_ref().unwrap(),
            prompt(Tone::Ok, "Go to [B-02]", Next::Bin),
        )
        .unwrap();
        assert_eq!((code(&next), w.tasks, w.short), ("B-02", 1, None));
    }

    #[test]
    fn short_pick_of_nothing_scans_short_at_once() {
        let walker = Walker::new("B").fault("short-at=0:0:empty".parse().unwrap());
        let mut w = Walk::new(&walker, "P");
        let plan = w.decide(&prompt(Tone::Ok, "Pick [3]", Next::Qty)).unwrap();
        assert_eq!(code(&plan), codes::SHORT);
    }

    #[test]
    fn logout_after_a_task_then_login_again() {
        let walker = Walker::new("B").fault(Fault::LogoutAfter(1));
        let mut w = Walk::new(&walker, "P");
        let qty = w
            .decide(&prompt(Tone::Ok, "Pick [1]", Next::Qty))
            .unwrap()
            .unwrap();
        let out = answer(&mut w, &qty, prompt(Tone::Ok, "Go to [A-02]", Next::Bin)).unwrap();
        assert_eq!(code(&out), codes::LOGOUT);
        let login = answer(
            &mut w,
            out.as_ref().unwrap(),
            prompt(Tone::Ok, "Bye", Next::Login),
        )
        .unwrap();
        assert_eq!(code(&login), "B");
    }

    #[test]
    fn logout_due_at_the_end_logs_out_and_stops() {
        let walker = Walker::new("B").fault(Fault::LogoutAfter(0));
        let mut w = Walk::new(&walker, "P");
        let out = w
            .decide(&prompt(Tone::Ok, "Nothing to pick", Next::Done))
            .unwrap()
            .unwrap();
        assert_eq!(out.code, codes::LOGOUT);
        assert_eq!(
            answer(&mut w, &out, prompt(Tone::Ok, "Bye", Next::Login)),
            Ok(None)
        );
    }

    #[test]
    fn refuses_prompts_it_cannot_follow() {
        let walker = Walker::new("B");
        let mut w = Walk::new(&walker, "P");
        let no_code = w
            .decide(&prompt(Tone::Ok, "Go to the bin", Next::Bin))
            .unwrap_err();
        assert_eq!(
            no_code.expected,
            "the bin to scan written in [brackets] in the prompt"
        );
        let reason = w
            .decide(&prompt(Tone::Ok, "Why short?", Next::Reason))
            .unwrap_err();
        assert!(
            reason.expected.contains("declared no short pick"),
            "{reason:?}"
        );
        let plan = w.start();
        let refused = answer(
            &mut w,
            &plan,
            prompt(Tone::Error, "Unknown badge", Next::Login),
        );
        assert!(refused
            .unwrap_err()
            .expected
            .starts_with("the badge to be accepted"));
        // Still logged in from an earlier walk: carry on where the server is.
        let plan = w.start();
        let resume = answer(
            &mut w,
            &plan,
            prompt(Tone::Error, "Wrong bin. Go to [A-01]", Next::Bin),
        );
        assert_eq!(code(&resume.unwrap()), "A-01");
        let bin = w
            .decide(&prompt(Tone::Ok, "Go to [A-01]", Next::Bin))
            .unwrap()
            .unwrap();
        let refused = answer(&mut w, &bin, prompt(Tone::Error, "Wrong bin X", Next::Bin));
        assert_eq!(
            refused.unwrap_err().expected,
            "the scan to be accepted (tone ok or warn)"
        );
    }
}
