//! First-expired, first-out allocation: which holdings an order line takes
//! its units from.

use chrono::NaiveDate;

/// Stock a line could take from: one holding's available units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<K> {
    pub key: K,
    pub expiry: Option<NaiveDate>,
    pub walk_seq: i64,
    pub bin: String,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take<K> {
    pub key: K,
    pub qty: i64,
}

/// Not enough usable stock; `usable` is what could have been taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    pub requested: i64,
    pub usable: i64,
}

/// Takes `qty` units, earliest expiry first (goods without an expiry last),
/// then along the pickers' walk. Expired stock (expiry before `today`) is
/// never allocated: it cannot be sold. All or nothing.
pub fn allocate<K: Clone>(
    candidates: &[Candidate<K>],
    qty: i64,
    today: NaiveDate,
) -> Result<Vec<Take<K>>, Shortfall> {
    let mut usable: Vec<&Candidate<K>> = candidates
        .iter()
        .filter(|c| c.available > 0 && c.expiry.is_none_or(|e| e >= today))
        .collect();
    usable.sort_by(|a, b| {
        (a.expiry.is_none(), a.expiry, a.walk_seq, &a.bin).cmp(&(
            b.expiry.is_none(),
            b.expiry,
            b.walk_seq,
            &b.bin,
        ))
    });
    let total: i64 = usable.iter().map(|c| c.available).sum();
    if total < qty {
        return Err(Shortfall {
            requested: qty,
            usable: total,
        });
    }
    let mut left = qty;
    let mut takes = Vec::new();
    for c in usable {
        if left == 0 {
            break;
        }
        let n = left.min(c.available);
        takes.push(Take {
            key: c.key.clone(),
            qty: n,
        });
        left -= n;
    }
    Ok(takes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Option<NaiveDate> {
        s.parse().ok()
    }
    fn c(key: u32, expiry: &str, walk: i64, available: i64) -> Candidate<u32> {
        Candidate {
            key,
            expiry: d(expiry),
            walk_seq: walk,
            bin: format!("B{walk}"),
            available,
        }
    }
    fn today() -> NaiveDate {
        "2026-11-23".parse().unwrap()
    }

    #[test]
    fn earliest_expiry_first_then_walk_order_and_no_expiry_last() {
        let cands = [
            c(1, "", 1, 5),
            c(2, "2027-06-01", 9, 2),
            c(3, "2027-01-01", 5, 1),
            c(4, "2027-06-01", 3, 4),
        ];
        let takes = allocate(&cands, 6, today()).unwrap();
        assert_eq!(
            takes,
            vec![
                Take { key: 3, qty: 1 },
                Take { key: 4, qty: 4 },
                Take { key: 2, qty: 1 }
            ]
        );
        let all = allocate(&cands, 12, today()).unwrap();
        assert_eq!(all.last(), Some(&Take { key: 1, qty: 5 }));
    }

    #[test]
    fn expired_stock_is_never_taken() {
        let cands = [c(1, "2026-11-22", 1, 10), c(2, "2026-11-23", 2, 1)];
        assert_eq!(
            allocate(&cands, 2, today()),
            Err(Shortfall {
                requested: 2,
                usable: 1
            })
        );
        assert_eq!(
            allocate(&cands, 1, today()).unwrap(),
            vec![Take { key: 2, qty: 1 }],
            "expiring today still sells"
        );
    }

    proptest! {
        #[test]
        fn takes_exactly_what_was_asked_within_each_holding(
            avail in proptest::collection::vec((0i64..20, 0u32..400, 0i64..5), 0..8),
            qty in 1i64..60,
        ) {
            let base: NaiveDate = "2026-10-01".parse().unwrap();
            let cands: Vec<Candidate<usize>> = avail.iter().enumerate().map(|(i, (a, days, w))| Candidate {
                key: i, expiry: base.checked_add_days(chrono::Days::new(*days as u64)), walk_seq: *w, bin: format!("B{i}"), available: *a,
            }).collect();
            match allocate(&cands, qty, today()) {
                Ok(takes) => {
                    prop_assert_eq!(takes.iter().map(|t| t.qty).sum::<i64>(), qty);
                    for t in &takes {
                        prop_assert!(t.qty > 0 && t.qty <= cands[t.key].available);
                        prop_assert!(cands[t.key].expiry.is_none_or(|e| e >= today()));
                    }
                }
                Err(s) => prop_assert!(s.usable < qty),
            }
        }
    }
}
