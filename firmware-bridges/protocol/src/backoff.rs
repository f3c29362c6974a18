//! Reconnect delays: exponential, capped, with jitter.
//!
//! rumqttc reconnects on the very next `poll()` after an error, with no delay
//! at all (PROTOCOLS.md §5). Against a broker that is down that is a busy
//! loop, and after a broker restart every client of the site — the server,
//! each bridge, a fleet of PDAs — would hammer it in the same millisecond. So
//! every client sleeps between attempts: the delay doubles from
//! [`Backoff::INITIAL`] up to [`Backoff::MAX`], and each sleep is drawn from
//! the upper half of the current step ("equal jitter"), which spreads a fleet
//! of clients out while still growing steadily.
//!
//! Pure state, like the rest of this crate: the caller sleeps, and the caller
//! supplies the randomness as a plain `u64` ([`Backoff::next_delay_with`]).
//! That keeps a random-number crate out of the protocol crate, and lets tests
//! check the bounds exactly. Any source will do — `rand::random()`, or the
//! standard library's per-process hasher keys
//! (`RandomState::new().build_hasher().finish()`) in a program without `rand`.

use std::time::Duration;

/// Exponential backoff state for one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The step the next delay is drawn from (its upper bound); never above
    /// [`Backoff::MAX`].
    step: Duration,
}

impl Backoff {
    /// First delay after a failure: long enough not to spin, short enough that
    /// a broker blip (a restart, a dropped Wi-Fi link) costs a picker nothing.
    pub const INITIAL: Duration = Duration::from_millis(100);

    /// Longest delay: a broker that comes back is noticed within 5 s, which is
    /// about how long a picker waits for a prompt before rescanning.
    pub const MAX: Duration = Duration::from_secs(5);

    /// A connection must have lasted this long before a failure counts as a
    /// new incident and the delay starts again from [`Backoff::INITIAL`]
    /// (call [`Backoff::reset`]). Without it, a broker that accepts and then
    /// immediately drops us (a duplicate client id, an ACL refusal) would be
    /// retried every 100 ms for ever.
    pub const RESET_AFTER: Duration = Duration::from_secs(10);

    /// A fresh backoff, starting at [`Backoff::INITIAL`].
    pub fn new() -> Backoff {
        Backoff {
            step: Backoff::INITIAL,
        }
    }

    /// The next delay: in `[step / 2, step]`, placed by `random` (uniform if
    /// `random` is; `0` gives the lower end, `u64::MAX` the upper); then the
    /// step doubles, up to [`Backoff::MAX`].
    pub fn next_delay_with(&mut self, random: u64) -> Duration {
        let step = self.step;
        let half = step / 2;
        // Multiply-shift rather than `%`: no modulo bias, and it uses the high
        // bits, which are the good ones in a weak source. `step <= MAX`, so
        // the span fits a u64 and the product a u128.
        let span_ns = u64::try_from((step - half).as_nanos()).unwrap_or(u64::MAX);
        let offset_ns = (u128::from(random) * (u128::from(span_ns) + 1)) >> 64;
        let offset = Duration::from_nanos(u64::try_from(offset_ns).unwrap_or(span_ns));
        self.step = (step * 2).min(Backoff::MAX);
        half + offset
    }

    /// Forgets past failures (after a connection that lasted
    /// [`Backoff::RESET_AFTER`]).
    pub fn reset(&mut self) {
        self.step = Backoff::INITIAL;
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks every delay against the step it was drawn from, and that the
    /// steps reach the cap.
    fn assert_grows_within_bounds(randoms: impl IntoIterator<Item = u64>) -> Duration {
        let mut backoff = Backoff::new();
        let mut step = Backoff::INITIAL;
        for random in randoms {
            let delay = backoff.next_delay_with(random);
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for step {step:?} (random {random})"
            );
            step = (step * 2).min(Backoff::MAX);
        }
        step
    }

    #[test]
    fn grows_within_bounds_and_is_capped() {
        let randoms = [0, u64::MAX, 12_345, 7, 99_999_999, 3, 1 << 40, 5];
        assert_eq!(assert_grows_within_bounds(randoms), Backoff::MAX);
    }

    #[test]
    fn random_spans_the_whole_half_step() {
        let mut backoff = Backoff::new();
        assert_eq!(backoff.next_delay_with(0), Backoff::INITIAL / 2);
        let mut backoff = Backoff::new();
        assert_eq!(backoff.next_delay_with(u64::MAX), Backoff::INITIAL);
        let mut capped = Backoff::new();
        for _ in 0..20 {
            capped.next_delay_with(0);
        }
        assert_eq!(capped.next_delay_with(u64::MAX), Backoff::MAX);
    }

    #[test]
    fn jitter_spreads_delays() {
        // Distinct, well-spread inputs (a golden-ratio sequence), one fresh
        // backoff each: the fleet-of-clients case.
        let delays: std::collections::HashSet<_> = (1..=20u64)
            .map(|i| Backoff::new().next_delay_with(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new();
        for _ in 0..10 {
            backoff.next_delay_with(u64::MAX);
        }
        backoff.reset();
        assert_eq!(backoff.next_delay_with(u64::MAX), Backoff::INITIAL);
    }

    proptest! {
        #[test]
        fn any_randomness_stays_within_bounds(
            randoms in prop::collection::vec(any::<u64>(), 0..40),
        ) {
            let steps = randoms.len();
            let step = assert_grows_within_bounds(randoms);
            if steps >= 6 {
                prop_assert_eq!(step, Backoff::MAX);
            }
        }
    }
}
