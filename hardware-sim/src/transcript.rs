//! What a walk did: every scan sent and the prompt that answered it.

use std::fmt;

use bondgate_protocol::{Next, PromptMsg, Tone};

/// One scan and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The seq the scan carried.
    pub seq: u64,
    /// What the server had asked for when the scan was sent (`None` for the
    /// walk's first scan, which answers no prompt).
    pub asked: Option<Next>,
    /// The code sent.
    pub sent: String,
    /// The prompt that answered it.
    pub prompt: PromptMsg,
    /// Whether this was a deliberate second send of the previous step's seq
    /// ([`crate::Fault::DuplicateEveryScan`]).
    pub replay: bool,
}

impl Step {
    /// Whether this step finished a pick task: it answered a quantity or
    /// short-pick reason prompt, was accepted (tone ok or warning), and the
    /// server moved on to the next bin, a new tote or the end. An item or lot
    /// scan counts too: when it completes the quantity (a task for one unit)
    /// the server confirms the task at once and never asks for a quantity.
    /// Replays never count, so a duplicated scan cannot count a task twice.
    pub fn ends_task(&self) -> bool {
        !self.replay
            && matches!(
                self.asked,
                Some(Next::Item | Next::Lot | Next::Qty | Next::Reason)
            )
            && self.prompt.tone != Tone::Error
            && matches!(self.prompt.next, Next::Bin | Next::Tote | Next::Done)
    }
}

impl fmt::Display for Step {
    /// `→ A-01  ← ok  "Pick [2] …" next=qty`, with the seq of a replay.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "→ {}  ← {}", self.sent, PromptLine(&self.prompt))?;
        if self.replay {
            write!(f, "  (replay of seq {})", self.seq)?;
        }
        Ok(())
    }
}

/// A prompt on one line: `ok  "Pick [2] …" next=qty`.
#[derive(Debug, Clone, Copy)]
pub struct PromptLine<'a>(pub &'a PromptMsg);

impl fmt::Display for PromptLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        let tone = match p.tone {
            Tone::Ok => "ok",
            Tone::Warning => "warn",
            Tone::Error => "ERROR",
        };
        write!(
            f,
            "{tone}  {:?} next={}",
            p.text.as_str(),
            next_word(p.next)
        )?;
        if !p.ok && p.tone != Tone::Error {
            f.write_str(" (not ok)")?;
        }
        Ok(())
    }
}

/// The wire word for `next` (`bin`, `qty`, …).
pub fn next_word(next: Next) -> &'static str {
    match next {
        Next::Bin => "bin",
        Next::Item => "item",
        Next::Qty => "qty",
        Next::Tote => "tote",
        Next::Lot => "lot",
        Next::Reason => "reason",
        Next::Done => "done",
        Next::Login => "login",
    }
}

/// Every step of a walk, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// The steps, replays included.
    pub steps: Vec<Step>,
}

impl Transcript {
    /// Pick tasks finished (see [`Step::ends_task`]).
    pub fn tasks_completed(&self) -> usize {
        self.steps.iter().filter(|s| s.ends_task()).count()
    }

    /// The codes sent, replays left out: the path the walk took.
    pub fn codes(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| !s.replay)
            .map(|s| s.sent.as_str())
            .collect()
    }

    /// `2 task(s) completed in 14 scan(s)`, plus replays if any.
    pub fn summary(&self) -> String {
        let replays = self.steps.iter().filter(|s| s.replay).count();
        let mut line = format!(
            "{} task(s) completed in {} scan(s)",
            self.tasks_completed(),
            self.steps.len() - replays
        );
        if replays > 0 {
            line.push_str(&format!(" and {replays} replay(s)"));
        }
        line
    }

    /// The last `n` steps, for error messages.
    pub fn recent(&self, n: usize) -> Recent {
        Recent(self.steps[self.steps.len().saturating_sub(n)..].to_vec())
    }
}

impl fmt::Display for Transcript {
    /// One line per step, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        f.write_str(&self.summary())
    }
}

/// The last few steps of a walk, shown under an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recent(pub Vec<Step>);

impl fmt::Display for Recent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(no scans answered yet)");
        }
        f.write_str("last steps:")?;
        for step in &self.0 {
            write!(f, "\n  {step}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bondgate_protocol::PromptText;

    fn step(asked: Option<Next>, sent: &str, tone: Tone, text: &str, next: Next) -> Step {
        Step {
            seq: 1,
            asked,
            sent: sent.into(),
            prompt: PromptMsg {
                seq: 1,
                ok: tone != Tone::Error,
                tone,
                text: PromptText::new(text).unwrap(),
                next,
            },
            replay: false,
        }
    }

    #[test]
    fn prints_one_readable_line_per_step() {
        let s = step(
            Some(Next::Bin),
            "A-01",
            Tone::Ok,
            "Pick [2] of SKU-1",
            Next::Qty,
        );
        assert_eq!(
            s.to_string(),
            r#"→ A-01  ← ok  "Pick [2] of SKU-1" next=qty"#
        );
        let replay = Step { replay: true, ..s };
        assert!(replay.to_string().ends_with("(replay of seq 1)"));
    }

    #[test]
    fn a_task_ends_on_an_accepted_quantity_or_reason_that_moves_on() {
        let t = |asked, tone, next| step(Some(asked), "x", tone, "", next).ends_task();
        assert!(t(Next::Qty, Tone::Ok, Next::Bin));
        assert!(t(Next::Qty, Tone::Ok, Next::Done));
        assert!(t(Next::Reason, Tone::Warning, Next::Tote));
        assert!(!t(Next::Qty, Tone::Error, Next::Bin), "refused");
        assert!(!t(Next::Qty, Tone::Ok, Next::Qty), "still counting");
        assert!(
            !t(Next::Qty, Tone::Warning, Next::Reason),
            "short, reason next"
        );
        assert!(
            t(Next::Item, Tone::Ok, Next::Bin),
            "one unit: the item scan confirms"
        );
        assert!(t(Next::Lot, Tone::Ok, Next::Done), "likewise the lot scan");
        assert!(!t(Next::Item, Tone::Ok, Next::Qty), "counting starts");
        assert!(!t(Next::Bin, Tone::Ok, Next::Item), "not the end of a task");
        assert!(
            !t(Next::Tote, Tone::Ok, Next::Bin),
            "a new tote starts a task"
        );
        let replay = Step {
            replay: true,
            ..step(Some(Next::Qty), "2", Tone::Ok, "", Next::Done)
        };
        assert!(!replay.ends_task());
    }

    #[test]
    fn summary_counts_tasks_scans_and_replays() {
        let mut t = Transcript::default();
        t.steps
            .push(step(Some(Next::Qty), "2", Tone::Ok, "Done", Next::Done));
        t.steps.push(Step {
            replay: true,
            ..t.steps[0].clone()
        });
        assert!(t
            .to_string()
            .ends_with("1 task(s) completed in 1 scan(s) and 1 replay(s)"));
        assert_eq!(t.codes(), ["2"]);
        assert_eq!(t.recent(5).0.len(), 2);
    }
}
