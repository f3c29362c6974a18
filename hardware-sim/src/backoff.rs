//! Reconnect delays: exponential, capped, with jitter.
//!
//! rumqttc reconnects on the very next `poll()` after an error, with no delay
//! (PROTOCOLS.md §5): against a broker that is down that is a busy loop, and
//! after a broker restart a fleet of simulated PDAs would all hammer it in the
//! same millisecond. Each delay is drawn from the upper half of the current
//! step ("equal jitter"); the step doubles up to [`Backoff::MAX`].
//!
//! Pure state: the caller sleeps.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff for one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Upper bound of the next delay.
    step: Duration,
}

impl Backoff {
    /// First delay: long enough not to spin, short enough that a broker blip
    /// costs a simulated picker nothing.
    pub const INITIAL: Duration = Duration::from_millis(100);

    /// Longest delay: a broker that comes back is noticed within 5 s, about
    /// as long as a scan waits for its prompt.
    pub const MAX: Duration = Duration::from_secs(5);

    /// A connection that lasted this long counts as healthy: the next failure
    /// starts again from [`Backoff::INITIAL`]. Without it a broker that
    /// accepts and then drops us at once (duplicate client id, ACL) would be
    /// retried every 100 ms for ever.
    pub const RESET_AFTER: Duration = Duration::from_secs(10);

    /// A fresh backoff.
    pub fn new() -> Backoff {
        Backoff {
            step: Backoff::INITIAL,
        }
    }

    /// The next delay, uniform in `[step / 2, step]` given `random`; then the
    /// step doubles up to [`Backoff::MAX`].
    pub fn next_delay_with(&mut self, random: u64) -> Duration {
        let step = self.step;
        let half = step / 2;
        let span_ns = u64::try_from((step - half).as_nanos()).unwrap_or(u64::MAX);
        let delay = half + Duration::from_nanos(random % span_ns.saturating_add(1));
        self.step = (step * 2).min(Backoff::MAX);
        delay
    }

    /// The next delay, with randomness from the standard library's hasher
    /// keys (random per process), to avoid a dependency for a few bits.
    pub fn next_delay(&mut self) -> Duration {
        let random = RandomState::new().build_hasher().finish();
        self.next_delay_with(random)
    }

    /// Forgets past failures.
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

    #[test]
    fn grows_within_bounds_and_is_capped() {
        let mut backoff = Backoff::new();
        let mut step = Backoff::INITIAL;
        for random in [0, u64::MAX, 12_345, 7, 99_999_999, 3, 1 << 40, 5] {
            let delay = backoff.next_delay_with(random);
            assert!(delay >= step / 2 && delay <= step, "{delay:?} for {step:?}");
            step = (step * 2).min(Backoff::MAX);
        }
        assert_eq!(step, Backoff::MAX);
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
