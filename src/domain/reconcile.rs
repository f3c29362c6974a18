//! The bonded-ledger reconciliation (保税账册, CUSTOMS §3): per SKU,
//! received − shipped ± approved adjustments must equal what is on hand.
//! Damage and transfers move stock inside the warehouse and change no total.

use serde::{Deserialize, Serialize};

/// Movement totals of one SKU, as the store sums them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MovementTotals {
    pub received: i64,
    pub shipped: i64,
    pub adjusted_in: i64,
    pub adjusted_out: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub received: i64,
    pub shipped: i64,
    pub adjusted_in: i64,
    pub adjusted_out: i64,
    /// What the movements say should be here.
    pub expected_on_hand: i64,
    /// What the holdings say is here (available + locked + defective).
    pub on_hand: i64,
    /// `expected_on_hand - on_hand`; zero when the books balance.
    pub difference: i64,
}

impl Reconciliation {
    pub fn new(t: MovementTotals, on_hand: i64) -> Self {
        let expected_on_hand = t.received - t.shipped + t.adjusted_in - t.adjusted_out;
        Reconciliation {
            received: t.received,
            shipped: t.shipped,
            adjusted_in: t.adjusted_in,
            adjusted_out: t.adjusted_out,
            expected_on_hand,
            on_hand,
            difference: expected_on_hand - on_hand,
        }
    }
    pub fn balanced(&self) -> bool {
        self.difference == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn balances_when_in_equals_out_plus_on_hand() {
        let t = MovementTotals {
            received: 100,
            shipped: 30,
            adjusted_in: 2,
            adjusted_out: 5,
        };
        assert!(Reconciliation::new(t, 67).balanced());
        let r = Reconciliation::new(t, 60);
        assert_eq!(r.difference, 7);
        assert!(!r.balanced());
    }
}
