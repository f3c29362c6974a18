//! The inventory ledger's rules (DESIGN §3).
//!
//! Stock is held per SKU × location × lot in three buckets. Every change is a
//! movement that takes `qty` units out of one bucket and puts them into another,
//! where "outside the warehouse" is written `None`. The store keeps the same
//! rules with constraints and triggers; this module is the reference the store
//! is tested against, and what adapters call to refuse a bad movement before
//! it reaches the database.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::codes::{BatchNo, BinCode, Quantity, SkuCode};

/// A stock bucket of one holding. `total = available + locked + defective`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Available,
    Locked,
    Defective,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Available => "available",
            Bucket::Locked => "locked",
            Bucket::Defective => "defective",
        }
    }
    pub fn parse(s: &str) -> Option<Bucket> {
        match s {
            "available" => Some(Bucket::Available),
            "locked" => Some(Bucket::Locked),
            "defective" => Some(Bucket::Defective),
            _ => None,
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why stock moved. Each kind admits only certain bucket pairs (see
/// [`MovementKind::allows`]); the same table is a CHECK constraint in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Goods arrive against a customs entry document: outside → available, or
    /// outside → defective for units damaged on arrival.
    Receive,
    /// First phase of a reservation: available → locked.
    Lock,
    /// A reservation is given back: locked → available.
    Release,
    /// A reservation leaves at the gate: locked → outside.
    Ship,
    /// Units found damaged: available or locked → defective.
    Damage,
    /// An approved correction: outside ↔ available or defective.
    Adjust,
    /// Between bins: available → outside at the source, outside → available at
    /// the destination, as two legs of one operation.
    Transfer,
    /// Picked into a tote: locked → outside at the bin, outside → locked in
    /// the tote, as two legs of one operation. The reservation moves with it.
    Pick,
    /// Packed into a parcel at a pack station: locked → outside in the tote,
    /// outside → locked at the station's outbound staging, as two legs of one
    /// operation. The reservation moves with it, so the tote is empty again.
    Pack,
    /// Brought to the inspection area (or quarantine) on a customs hold:
    /// locked → outside at the parcel's bin, outside → locked in the
    /// inspection bin, as two legs of one operation. The reservation moves
    /// with it, so the gate later ships it from where it is.
    Inspect,
}

impl MovementKind {
    pub const ALL: [MovementKind; 10] = [
        MovementKind::Receive,
        MovementKind::Lock,
        MovementKind::Release,
        MovementKind::Ship,
        MovementKind::Damage,
        MovementKind::Adjust,
        MovementKind::Transfer,
        MovementKind::Pick,
        MovementKind::Pack,
        MovementKind::Inspect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Receive => "receive",
            MovementKind::Lock => "lock",
            MovementKind::Release => "release",
            MovementKind::Ship => "ship",
            MovementKind::Damage => "damage",
            MovementKind::Adjust => "adjust",
            MovementKind::Transfer => "transfer",
            MovementKind::Pick => "pick",
            MovementKind::Pack => "pack",
            MovementKind::Inspect => "inspect",
        }
    }

    pub fn parse(s: &str) -> Option<MovementKind> {
        MovementKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a movement of this kind may take units from `from` to `to`
    /// (`None` is outside the warehouse).
    pub fn allows(self, from: Option<Bucket>, to: Option<Bucket>) -> bool {
        use Bucket::*;
        matches!(
            (self, from, to),
            (MovementKind::Receive, None, Some(Available | Defective))
                | (MovementKind::Lock, Some(Available), Some(Locked))
                | (MovementKind::Release, Some(Locked), Some(Available))
                | (MovementKind::Ship, Some(Locked), None)
                | (
                    MovementKind::Damage,
                    Some(Available | Locked),
                    Some(Defective)
                )
                | (MovementKind::Adjust, None, Some(Available | Defective))
                | (MovementKind::Adjust, Some(Available | Defective), None)
                | (MovementKind::Transfer, Some(Available), None)
                | (MovementKind::Transfer, None, Some(Available))
                | (MovementKind::Pick, Some(Locked), None)
                | (MovementKind::Pick, None, Some(Locked))
                | (MovementKind::Pack, Some(Locked), None)
                | (MovementKind::Pack, None, Some(Locked))
                | (MovementKind::Inspect, Some(Locked), None)
                | (MovementKind::Inspect, None, Some(Locked))
        )
    }
}

impl fmt::Display for MovementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The figures of one holding. None is ever negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    pub available: i64,
    pub locked: i64,
    pub defective: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a {kind} movement cannot take stock from {from} to {to}", from = side(*.from), to = side(*.to))]
    NotAllowed {
        kind: MovementKind,
        from: Option<Bucket>,
        to: Option<Bucket>,
    },
    #[error("insufficient {bucket} stock: {have} {bucket}, {want} requested")]
    Insufficient {
        bucket: Bucket,
        have: i64,
        want: i64,
    },
    #[error("a reservation that is {state} cannot be {action}")]
    LockClosed {
        state: LockState,
        action: &'static str,
    },
}

fn side(b: Option<Bucket>) -> &'static str {
    b.map_or("outside", Bucket::as_str)
}

impl Balance {
    pub fn total(&self) -> i64 {
        self.available + self.locked + self.defective
    }

    pub fn get(&self, b: Bucket) -> i64 {
        match b {
            Bucket::Available => self.available,
            Bucket::Locked => self.locked,
            Bucket::Defective => self.defective,
        }
    }

    fn get_mut(&mut self, b: Bucket) -> &mut i64 {
        match b {
            Bucket::Available => &mut self.available,
            Bucket::Locked => &mut self.locked,
            Bucket::Defective => &mut self.defective,
        }
    }

    /// The balance after a movement, or why the movement is refused. Never
    /// returns a negative figure.
    pub fn apply(
        &self,
        kind: MovementKind,
        from: Option<Bucket>,
        to: Option<Bucket>,
        qty: Quantity,
    ) -> Result<Balance, LedgerError> {
        if !kind.allows(from, to) {
            return Err(LedgerError::NotAllowed { kind, from, to });
        }
        let mut next = *self;
        if let Some(b) = from {
            let have = next.get(b);
            if have < qty.get() {
                return Err(LedgerError::Insufficient {
                    bucket: b,
                    have,
                    want: qty.get(),
                });
            }
            *next.get_mut(b) -= qty.get();
        }
        if let Some(b) = to {
            // Quantity ≤ QUANTITY_MAX and balances are sums of bounded
            // movements, so this cannot overflow in any realistic ledger; a
            // checked add still refuses rather than wraps.
            let v = next.get_mut(b);
            *v = v.checked_add(qty.get()).ok_or(LedgerError::Insufficient {
                bucket: b,
                have: i64::MAX,
                want: qty.get(),
            })?;
        }
        Ok(next)
    }
}

/// The life of a reservation: held, then shipped or released, exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockState {
    Held,
    Shipped,
    Released,
}

impl LockState {
    pub fn as_str(self) -> &'static str {
        match self {
            LockState::Held => "held",
            LockState::Shipped => "shipped",
            LockState::Released => "released",
        }
    }
    pub fn parse(s: &str) -> Option<LockState> {
        match s {
            "held" => Some(LockState::Held),
            "shipped" => Some(LockState::Shipped),
            "released" => Some(LockState::Released),
            _ => None,
        }
    }
    /// Ship a held reservation. Anything else is refused: a lock is shipped or
    /// released, never both, never twice.
    pub fn ship(self) -> Result<LockState, LedgerError> {
        match self {
            LockState::Held => Ok(LockState::Shipped),
            state => Err(LedgerError::LockClosed {
                state,
                action: "shipped",
            }),
        }
    }
    pub fn release(self) -> Result<LockState, LedgerError> {
        match self {
            LockState::Held => Ok(LockState::Released),
            state => Err(LedgerError::LockClosed {
                state,
                action: "released",
            }),
        }
    }
}

impl fmt::Display for LockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a holding is: SKU × bin × lot (batch; a lot's expiry is fixed per
/// batch, so the batch identifies it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HoldingKey {
    pub sku: SkuCode,
    pub bin: BinCode,
    pub batch: BatchNo,
}

/// One movement as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub kind: MovementKind,
    pub at: HoldingKey,
    pub from: Option<Bucket>,
    pub to: Option<Bucket>,
    pub qty: Quantity,
}

/// A reservation held against one holding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub at: HoldingKey,
    pub qty: i64,
    pub state: LockState,
}

/// The ledger in memory: balances, the movements that made them, and the
/// reservations. Each operation is all-or-nothing. This is the oracle the
/// store's conformance and property tests compare against, so it must stay
/// the plainest possible statement of the rules.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    balances: BTreeMap<HoldingKey, Balance>,
    movements: Vec<Movement>,
    locks: Vec<Reservation>,
}

impl Ledger {
    pub fn balance(&self, at: &HoldingKey) -> Balance {
        self.balances.get(at).copied().unwrap_or_default()
    }
    pub fn balances(&self) -> impl Iterator<Item = (&HoldingKey, &Balance)> {
        self.balances.iter()
    }
    pub fn movements(&self) -> &[Movement] {
        &self.movements
    }
    pub fn locks(&self) -> &[Reservation] {
        &self.locks
    }

    /// Applies the movements of one operation atomically.
    fn post(&mut self, movements: Vec<Movement>) -> Result<(), LedgerError> {
        let mut staged = self.balances.clone();
        for m in &movements {
            let cur = staged.get(&m.at).copied().unwrap_or_default();
            staged.insert(m.at.clone(), cur.apply(m.kind, m.from, m.to, m.qty)?);
        }
        self.balances = staged;
        self.movements.extend(movements);
        Ok(())
    }

    fn one(
        kind: MovementKind,
        at: &HoldingKey,
        from: Option<Bucket>,
        to: Option<Bucket>,
        qty: Quantity,
    ) -> Movement {
        Movement {
            kind,
            at: at.clone(),
            from,
            to,
            qty,
        }
    }

    pub fn receive(&mut self, at: &HoldingKey, good: i64, damaged: i64) -> Result<(), LedgerError> {
        let mut ms = Vec::new();
        if let Ok(q) = Quantity::new(good) {
            ms.push(Self::one(
                MovementKind::Receive,
                at,
                None,
                Some(Bucket::Available),
                q,
            ));
        }
        if let Ok(q) = Quantity::new(damaged) {
            ms.push(Self::one(
                MovementKind::Receive,
                at,
                None,
                Some(Bucket::Defective),
                q,
            ));
        }
        self.post(ms)
    }

    /// Returns the reservation's index, its id in this model.
    pub fn lock(&mut self, at: &HoldingKey, qty: Quantity) -> Result<usize, LedgerError> {
        self.post(vec![Self::one(
            MovementKind::Lock,
            at,
            Some(Bucket::Available),
            Some(Bucket::Locked),
            qty,
        )])?;
        self.locks.push(Reservation {
            at: at.clone(),
            qty: qty.get(),
            state: LockState::Held,
        });
        Ok(self.locks.len() - 1)
    }

    fn close_lock(&mut self, id: usize, ship: bool) -> Result<(), LedgerError> {
        let r = self.locks[id].clone();
        let next = if ship {
            r.state.ship()?
        } else {
            r.state.release()?
        };
        if let Ok(q) = Quantity::new(r.qty) {
            let m = if ship {
                Self::one(MovementKind::Ship, &r.at, Some(Bucket::Locked), None, q)
            } else {
                Self::one(
                    MovementKind::Release,
                    &r.at,
                    Some(Bucket::Locked),
                    Some(Bucket::Available),
                    q,
                )
            };
            self.post(vec![m])?;
        }
        self.locks[id].state = next;
        Ok(())
    }

    pub fn ship(&mut self, id: usize) -> Result<(), LedgerError> {
        self.close_lock(id, true)
    }
    pub fn release(&mut self, id: usize) -> Result<(), LedgerError> {
        self.close_lock(id, false)
    }

    /// Damage of available units at a holding.
    pub fn damage(&mut self, at: &HoldingKey, qty: Quantity) -> Result<(), LedgerError> {
        self.post(vec![Self::one(
            MovementKind::Damage,
            at,
            Some(Bucket::Available),
            Some(Bucket::Defective),
            qty,
        )])
    }

    /// Damage of units under a reservation: the reservation shrinks.
    pub fn damage_locked(&mut self, id: usize, qty: Quantity) -> Result<(), LedgerError> {
        let r = self.locks[id].clone();
        if r.state != LockState::Held {
            return Err(LedgerError::LockClosed {
                state: r.state,
                action: "damaged",
            });
        }
        if r.qty < qty.get() {
            return Err(LedgerError::Insufficient {
                bucket: Bucket::Locked,
                have: r.qty,
                want: qty.get(),
            });
        }
        self.post(vec![Self::one(
            MovementKind::Damage,
            &r.at,
            Some(Bucket::Locked),
            Some(Bucket::Defective),
            qty,
        )])?;
        self.locks[id].qty -= qty.get();
        Ok(())
    }

    pub fn transfer(
        &mut self,
        from: &HoldingKey,
        to_bin: &BinCode,
        qty: Quantity,
    ) -> Result<(), LedgerError> {
        let to = HoldingKey {
            bin: to_bin.clone(),
            ..from.clone()
        };
        self.post(vec![
            Self::one(
                MovementKind::Transfer,
                from,
                Some(Bucket::Available),
                None,
                qty,
            ),
            Self::one(
                MovementKind::Transfer,
                &to,
                None,
                Some(Bucket::Available),
                qty,
            ),
        ])
    }

    /// An approved adjustment of `delta` units in `bucket` (available or
    /// defective); `delta` is non-zero.
    pub fn adjust(
        &mut self,
        at: &HoldingKey,
        bucket: Bucket,
        delta: i64,
    ) -> Result<(), LedgerError> {
        let q = match Quantity::new(delta.saturating_abs()) {
            Ok(q) => q,
            Err(_) => {
                return Err(LedgerError::NotAllowed {
                    kind: MovementKind::Adjust,
                    from: None,
                    to: None,
                })
            }
        };
        let (from, to) = if delta > 0 {
            (None, Some(bucket))
        } else {
            (Some(bucket), None)
        };
        self.post(vec![Self::one(MovementKind::Adjust, at, from, to, q)])
    }

    /// What the movements sum to, per holding: the ledger's own statement of
    /// the balances, independent of the running figures.
    pub fn sum_movements(&self) -> BTreeMap<HoldingKey, Balance> {
        sum_movements(&self.movements)
    }
}

/// Sums movements into balances per holding, without any check: used to
/// verify that recorded balances equal what the ledger says.
pub fn sum_movements(movements: &[Movement]) -> BTreeMap<HoldingKey, Balance> {
    let mut out: BTreeMap<HoldingKey, Balance> = BTreeMap::new();
    for m in movements {
        let b = out.entry(m.at.clone()).or_default();
        if let Some(f) = m.from {
            *b.get_mut(f) -= m.qty.get();
        }
        if let Some(t) = m.to {
            *b.get_mut(t) += m.qty.get();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(bin: &str) -> HoldingKey {
        HoldingKey {
            sku: SkuCode::parse("SKU-1").unwrap(),
            bin: BinCode::parse(bin).unwrap(),
            batch: BatchNo::parse("B1").unwrap(),
        }
    }
    fn q(n: i64) -> Quantity {
        Quantity::new(n).unwrap()
    }

    #[test]
    fn movement_kinds_admit_only_their_bucket_pairs() {
        use Bucket::*;
        assert!(MovementKind::Lock.allows(Some(Available), Some(Locked)));
        assert!(!MovementKind::Lock.allows(Some(Defective), Some(Locked)));
        assert!(
            !MovementKind::Ship.allows(Some(Available), None),
            "only locked stock ships"
        );
        assert!(!MovementKind::Receive.allows(None, Some(Locked)));
        assert!(
            !MovementKind::Adjust.allows(None, Some(Locked)),
            "adjustments never touch reservations"
        );
        for k in MovementKind::ALL {
            assert!(!k.allows(None, None));
            assert_eq!(MovementKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn insufficient_stock_names_the_figures() {
        let b = Balance {
            available: 3,
            locked: 0,
            defective: 0,
        };
        let e = b
            .apply(
                MovementKind::Lock,
                Some(Bucket::Available),
                Some(Bucket::Locked),
                q(5),
            )
            .unwrap_err();
        assert_eq!(
            e,
            LedgerError::Insufficient {
                bucket: Bucket::Available,
                have: 3,
                want: 5
            }
        );
        assert_eq!(
            e.to_string(),
            "insufficient available stock: 3 available, 5 requested"
        );
    }

    #[test]
    fn a_lock_is_shipped_or_released_exactly_once() {
        let mut l = Ledger::default();
        l.receive(&key("A"), 10, 0).unwrap();
        let id = l.lock(&key("A"), q(4)).unwrap();
        l.ship(id).unwrap();
        assert!(matches!(
            l.ship(id),
            Err(LedgerError::LockClosed {
                state: LockState::Shipped,
                ..
            })
        ));
        assert!(matches!(l.release(id), Err(LedgerError::LockClosed { .. })));
        assert_eq!(
            l.balance(&key("A")),
            Balance {
                available: 6,
                locked: 0,
                defective: 0
            }
        );
    }

    #[test]
    fn a_failed_operation_changes_nothing() {
        let mut l = Ledger::default();
        l.receive(&key("A"), 2, 0).unwrap();
        let before = l.clone();
        assert!(l
            .transfer(&key("A"), &BinCode::parse("B").unwrap(), q(3))
            .is_err());
        assert_eq!(l.balances().count(), before.balances().count());
        assert_eq!(l.movements().len(), before.movements().len());
        assert_eq!(l.balance(&key("A")).available, 2);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Receive(u8, i64, i64),
        Lock(u8, i64),
        Release(usize),
        Ship(usize),
        Damage(u8, i64),
        DamageLocked(usize, i64),
        Transfer(u8, u8, i64),
        Adjust(u8, bool, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, 0i64..20, 0i64..3).prop_map(|(b, g, d)| Op::Receive(b, g, d)),
            (0u8..3, 1i64..10).prop_map(|(b, n)| Op::Lock(b, n)),
            (0usize..20).prop_map(Op::Release),
            (0usize..20).prop_map(Op::Ship),
            (0u8..3, 1i64..5).prop_map(|(b, n)| Op::Damage(b, n)),
            (0usize..20, 1i64..5).prop_map(|(i, n)| Op::DamageLocked(i, n)),
            (0u8..3, 0u8..3, 1i64..8).prop_map(|(a, b, n)| Op::Transfer(a, b, n)),
            (0u8..3, any::<bool>(), -6i64..6).prop_map(|(b, d, n)| Op::Adjust(b, d, n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        /// Any sequence of operations keeps every figure non-negative,
        /// `total = available + locked + defective`, the balances equal to
        /// what the movements sum to, and the locked bucket equal to the
        /// reservations still held.
        #[test]
        fn ledger_invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..60)) {
            let bins = ["A", "B", "C"];
            let k = |i: u8| key(bins[i as usize]);
            let mut l = Ledger::default();
            for o in ops {
                let _ = match o {
                    Op::Receive(b, g, d) => l.receive(&k(b), g, d),
                    Op::Lock(b, n) => l.lock(&k(b), q(n)).map(|_| ()),
                    Op::Release(i) if i < l.locks().len() => l.release(i),
                    Op::Ship(i) if i < l.locks().len() => l.ship(i),
                    Op::DamageLocked(i, n) if i < l.locks().len() => l.damage_locked(i, q(n)),
                    Op::Release(_) | Op::Ship(_) | Op::DamageLocked(..) => Ok(()),
                    Op::Damage(b, n) => l.damage(&k(b), q(n)),
                    Op::Transfer(a, b, n) => l.transfer(&k(a), &k(b).bin, q(n)),
                    Op::Adjust(b, d, n) => l.adjust(&k(b), if d { Bucket::Defective } else { Bucket::Available }, n),
                };
                let sums = l.sum_movements();
                for (key, bal) in l.balances() {
                    prop_assert!(bal.available >= 0 && bal.locked >= 0 && bal.defective >= 0);
                    prop_assert_eq!(bal.total(), bal.available + bal.locked + bal.defective);
                    prop_assert_eq!(sums.get(key).copied().unwrap_or_default(), *bal);
                    let held: i64 = l.locks().iter().filter(|r| &r.at == key && r.state == LockState::Held).map(|r| r.qty).sum();
                    prop_assert_eq!(held, bal.locked);
                }
            }
        }
    }
}
