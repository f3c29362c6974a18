//! [`OfflineQueue`]: what a bridge holds while the broker is out of reach.
//!
//! Bounded, because an edge box runs for months and a broker can be gone
//! for hours: past its capacity the oldest item is dropped (the newest
//! matters more to whoever is standing at the device) and counted. With a
//! maximum age, an item older than that is dropped rather than sent late,
//! for messages whose meaning expires (a gate scan replayed minutes later
//! could open the barrier with no parcel in front of it). Pure state: the
//! caller passes the time, so the rules are tested without sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A bounded, drop-oldest, optionally age-limited FIFO.
#[derive(Debug)]
pub struct OfflineQueue<T> {
    items: VecDeque<(Instant, T)>,
    capacity: usize,
    max_age: Option<Duration>,
    dropped_full: u64,
    dropped_stale: u64,
}

impl<T> OfflineQueue<T> {
    /// Holds at most `capacity` items (at least 1); with `max_age`, items
    /// older than that are never handed out.
    pub fn new(capacity: usize, max_age: Option<Duration>) -> OfflineQueue<T> {
        let capacity = capacity.max(1);
        OfflineQueue {
            items: VecDeque::with_capacity(capacity),
            capacity,
            max_age,
            dropped_full: 0,
            dropped_stale: 0,
        }
    }

    /// Queues `item`, taken at `at`. When full, the oldest item is dropped
    /// (and counted) to make room.
    pub fn push(&mut self, item: T, at: Instant) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
            self.dropped_full += 1;
        }
        self.items.push_back((at, item));
    }

    /// Takes every item out, oldest first, as of `now`: those older than
    /// the maximum age are dropped (and counted) instead.
    pub fn drain(&mut self, now: Instant) -> Vec<T> {
        let max_age = self.max_age;
        let mut out = Vec::with_capacity(self.items.len());
        for (at, item) in self.items.drain(..) {
            if max_age.is_some_and(|max| now.saturating_duration_since(at) > max) {
                self.dropped_stale += 1;
            } else {
                out.push(item);
            }
        }
        out
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items dropped because the queue was full, since it was made.
    pub fn dropped_full(&self) -> u64 {
        self.dropped_full
    }

    /// Items dropped because they were too old to send, since it was made.
    pub fn dropped_stale(&self) -> u64 {
        self.dropped_stale
    }

    /// Every item dropped, for either reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_in_order() {
        let t0 = Instant::now();
        let mut q = OfflineQueue::new(4, None);
        for i in 0..3 {
            q.push(i, t0);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.drain(t0 + Duration::from_secs(3600)), vec![0, 1, 2]);
        assert!(q.is_empty());
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn full_drops_the_oldest_and_counts() {
        let t0 = Instant::now();
        let mut q = OfflineQueue::new(2, None);
        for i in 0..5 {
            q.push(i, t0);
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped_full(), 3);
        assert_eq!(q.drain(t0), vec![3, 4]);
    }

    #[test]
    fn stale_items_are_dropped_not_handed_out() {
        let t0 = Instant::now();
        let mut q = OfflineQueue::new(8, Some(Duration::from_secs(3)));
        q.push("old", t0);
        q.push("edge", t0 + Duration::from_secs(2));
        q.push("new", t0 + Duration::from_secs(4));
        assert_eq!(q.drain(t0 + Duration::from_secs(5)), vec!["edge", "new"]);
        assert_eq!((q.dropped_stale(), q.dropped_full()), (1, 0));
        assert!(q.is_empty());
    }

    #[test]
    fn capacity_is_at_least_one() {
        let t0 = Instant::now();
        let mut q = OfflineQueue::new(0, None);
        q.push(1, t0);
        q.push(2, t0);
        assert_eq!(q.drain(t0), vec![2]);
    }
}
