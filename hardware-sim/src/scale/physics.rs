//! What is on the simulated pan, as pure state: the caller passes `now`.
//!
//! A parcel put on a real platform makes the reading swing before it
//! settles: the indicator flags motion, and the value walks from the old
//! load to the new one with a jitter in the last digits. The model does the
//! same, deterministically: a linear ramp from the load before the change to
//! the new load over the settle time, with ±[`WOBBLE_GRAMS`] alternating on
//! every reading while in motion, then the exact weight, stable. The wobble
//! matters for the Yaohua formats, whose stability the decoder derives from
//! repeated identical values.

use std::time::{Duration, Instant};

use bondgate_protocol::scale::{Range, Reading};

/// Jitter added to readings in motion, alternating in sign. A few grams,
/// like the last digit of a 3 kg × 1 g platform in motion.
pub const WOBBLE_GRAMS: i64 = 3;

/// The pan and the indicator's own settings (zero, tare).
#[derive(Debug, Clone)]
pub(crate) struct Pan {
    /// Gross load after the last change, grams.
    target_grams: i64,
    /// Gross load shown when the last change began.
    from_grams: i64,
    /// When the last change began.
    changed_at: Instant,
    /// How long a change takes to settle.
    settle: Duration,
    /// Motion forced on (someone leaning on the platform).
    motion: bool,
    /// Overload or underload forced on; cleared by the next weight.
    range: Range,
    /// The gross load taken as zero by `Z`.
    zero_grams: i64,
    /// The tare in force (`T`), grams; 0 without one.
    tare_grams: i64,
    /// Readings taken while in motion, for the alternating wobble.
    wobble: u64,
}

impl Pan {
    /// A pan that has long held `grams`.
    pub(crate) fn new(grams: i64, settle: Duration, now: Instant) -> Pan {
        Pan {
            target_grams: grams,
            from_grams: grams,
            changed_at: now.checked_sub(settle).unwrap_or(now),
            settle,
            motion: false,
            range: Range::Ok,
            zero_grams: 0,
            tare_grams: 0,
            wobble: 0,
        }
    }

    /// The gross load shown at `now` (on the ramp while settling).
    fn gross(&self, now: Instant) -> i64 {
        let elapsed = now.saturating_duration_since(self.changed_at);
        if elapsed >= self.settle || self.settle.is_zero() {
            return self.target_grams;
        }
        let (from, to) = (i128::from(self.from_grams), i128::from(self.target_grams));
        let part =
            (to - from) * elapsed.as_millis() as i128 / self.settle.as_millis().max(1) as i128;
        i64::try_from(from + part).unwrap_or(self.target_grams)
    }

    fn settling(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.changed_at) < self.settle
    }

    /// Puts `grams` (gross) on the pan at `now`: motion for the settle time.
    pub(crate) fn set_weight(&mut self, grams: i64, now: Instant) {
        self.from_grams = self.gross(now);
        self.target_grams = grams;
        self.changed_at = now;
        self.range = Range::Ok;
    }

    pub(crate) fn set_motion(&mut self, on: bool) {
        self.motion = on;
    }

    pub(crate) fn set_range(&mut self, range: Range) {
        self.range = range;
    }

    /// `Z`: the current gross load becomes zero (the tare is kept).
    pub(crate) fn zero(&mut self, now: Instant) {
        self.zero_grams = self.gross(now);
    }

    pub(crate) fn set_tare(&mut self, grams: i64) {
        self.tare_grams = grams;
    }

    pub(crate) fn tare_grams(&self) -> i64 {
        self.tare_grams
    }

    /// `@`: back to the state after power-on, without zeroing: tare cleared.
    pub(crate) fn reset(&mut self) {
        self.tare_grams = 0;
    }

    /// Overload, underload or in range.
    pub(crate) fn reading_range(&self) -> Range {
        self.range
    }

    /// Whether a reading at `now` would be stable and in range.
    pub(crate) fn is_stable(&self, now: Instant) -> bool {
        self.range == Range::Ok && !self.motion && !self.settling(now)
    }

    /// What the indicator shows at `now`. Out of range, the weight is 0
    /// (it means nothing, and every format can carry 0).
    pub(crate) fn reading(&mut self, now: Instant) -> Reading {
        let net = self.tare_grams != 0;
        if self.range != Range::Ok {
            return Reading {
                grams: 0,
                stable: false,
                net,
                range: self.range,
            };
        }
        let stable = self.is_stable(now);
        let wobble = if stable {
            0
        } else {
            self.wobble = self.wobble.wrapping_add(1);
            if self.wobble % 2 == 0 {
                WOBBLE_GRAMS
            } else {
                -WOBBLE_GRAMS
            }
        };
        let grams = self
            .gross(now)
            .saturating_add(wobble)
            .saturating_sub(self.zero_grams)
            .saturating_sub(self.tare_grams);
        Reading {
            grams,
            stable,
            net,
            range: Range::Ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parcel_ramps_with_motion_then_settles_exactly() {
        let t0 = Instant::now();
        let settle = Duration::from_millis(400);
        let mut pan = Pan::new(0, settle, t0);
        assert_eq!(pan.reading(t0), Reading::stable(0));
        pan.set_weight(1000, t0);
        let mid = pan.reading(t0 + Duration::from_millis(200));
        assert!(!mid.stable);
        assert!(
            (500 - WOBBLE_GRAMS..=500 + WOBBLE_GRAMS).contains(&mid.grams),
            "{mid:?}"
        );
        let a = pan.reading(t0 + Duration::from_millis(300));
        let b = pan.reading(t0 + Duration::from_millis(300));
        assert_ne!(a.grams, b.grams, "motion wobbles");
        assert_eq!(pan.reading(t0 + settle), Reading::stable(1000));
    }

    #[test]
    fn motion_range_zero_and_tare() {
        let t0 = Instant::now();
        let mut pan = Pan::new(700, Duration::ZERO, t0);
        pan.set_motion(true);
        assert!(!pan.reading(t0).stable);
        pan.set_motion(false);
        pan.set_range(Range::Overload);
        assert_eq!(pan.reading(t0).range, Range::Overload);
        pan.set_weight(700, t0);
        pan.zero(t0);
        assert_eq!(pan.reading(t0), Reading::stable(0));
        pan.set_weight(1200, t0);
        pan.set_tare(500);
        let r = pan.reading(t0);
        assert_eq!((r.grams, r.net), (0, true));
        pan.reset();
        assert_eq!(pan.reading(t0).grams, 500);
    }
}
