//! Reconnect delays: exponential, capped, with jitter.
//!
//! rumqttc reconnects on the very next `poll()` after an error, with no delay
//! at all (PROTOCOLS.md §5). Against a broker that is down that is a busy
//! loop, and after a broker restart every client of the site would hammer it
//! in the same millisecond. So the link sleeps between attempts: the delay
//! doubles from [`Backoff::INITIAL`] up to [`Backoff::MAX`], and each sleep is
//! drawn at random from the upper half of the current step ("equal jitter"),
//! which spreads a fleet of clients out while still growing steadily.
//!
//! Pure state: the caller sleeps. The randomness is passed in, so tests can
//! check the bounds exactly.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff state for one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The step the next delay is drawn from (its upper bound).
    step: Duration,
}

impl Backoff {
    /// First delay after a failure: long enough not to spin, short enough that
    /// a broker blip (a restart, a dropped Wi-Fi link) costs a picker nothing.
    pub const INITIAL: Duration = Duration::from_millis(100);

    /// Longest delay: a broker that comes back is noticed within 5 s, which is
    /// about how long a picker waits before rescanning.
    pub const MAX: Duration = Duration::from_secs(5);

    /// A connection must have lasted this long before a failure counts as a
    /// new incident and the delay starts again from [`Backoff::INITIAL`].
    /// Without it, a broker that accepts and then immediately drops us (a
    /// duplicate client id, an ACL refusal) would be retried every 100 ms
    /// forever.
    pub const RESET_AFTER: Duration = Duration::from_secs(10);

    /// A fresh backoff, starting at [`Backoff::INITIAL`].
    pub fn new() -> Backoff {
        Backoff {
            step: Backoff::INITIAL,
        }
    }

    /// The next delay, using the thread-local random generator.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(&mut rand::thread_rng())
    }

    /// The next delay: uniform in `[step / 2, step]`; then the step doubles,
    /// up to [`Backoff::MAX`].
    pub fn next_delay_with(&mut self, rng: &mut impl Rng) -> Duration {
        let step = self.step;
        let half = step / 2;
        let delay = half + rng.gen_range(Duration::ZERO..=step - half);
        self.step = (step * 2).min(Backoff::MAX);
        delay
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
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn grows_within_bounds_and_is_capped() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new();
        let mut step = Backoff::INITIAL;
        for _ in 0..20 {
            let delay = backoff.next_delay_with(&mut rng);
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for step {step:?}"
            );
            step = (step * 2).min(Backoff::MAX);
        }
        assert_eq!(step, Backoff::MAX);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut rng = StdRng::seed_from_u64(1);
        let delays: std::collections::HashSet<_> = (0..20)
            .map(|_| Backoff::new().next_delay_with(&mut rng))
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new();
        for _ in 0..10 {
            backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Backoff::INITIAL);
    }
}
