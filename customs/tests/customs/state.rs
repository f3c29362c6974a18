//! The customs state of a 清单 and the gate, including property tests.

use bondgate_customs::state::{HoldReason, ParcelAction, ReceiptKind};
use bondgate_customs::{gate_allows, CustomsState, Receipt, ReturnStatus, ReturnTime};
use proptest::prelude::*;

fn t(n: u64) -> ReturnTime {
    // Receipts a second apart on 2025-06-01, from 08:00.
    let secs = 8 * 3600 + n;
    ReturnTime::parse(&format!(
        "20250601{:02}{:02}{:02}000",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    ))
    .unwrap()
}

fn inv(status: i64, time: u64, arrival: u64) -> Receipt {
    Receipt {
        kind: ReceiptKind::Inventory,
        cop_no: "C1".into(),
        guid: Some(format!("G-{status}-{time}")),
        status: ReturnStatus::new(status),
        time: t(time),
        arrival,
    }
}

fn cancel(status: i64, time: u64, arrival: u64) -> Receipt {
    Receipt {
        kind: ReceiptKind::Cancellation,
        ..inv(status, time, arrival)
    }
}

fn state(rs: &[Receipt]) -> CustomsState {
    CustomsState::from_receipts(rs)
}

#[test]
fn typical_life_releases() {
    let rs = [inv(2, 1, 0), inv(120, 2, 1), inv(399, 3, 2), inv(800, 4, 3)];
    let s = state(&rs);
    assert!(matches!(&s, CustomsState::Released { since, .. } if *since == t(4)));
    assert_eq!(gate_allows(&s), Ok(()));
    // 899 after 800 keeps the release, since unchanged.
    let mut more = rs.to_vec();
    more.push(inv(899, 5, 4));
    let s = state(&more);
    assert!(
        matches!(&s, CustomsState::Released { since, receipt } if *since == t(4) && receipt.status.code() == 899)
    );
}

#[test]
fn only_800_and_899_release() {
    assert_eq!(
        gate_allows(&state(&[])).unwrap_err().code,
        "customs.no_receipt"
    );
    let r = gate_allows(&state(&[inv(399, 1, 0)])).unwrap_err();
    assert_eq!(r.code, "customs.pending");
    assert!(r.text_en.contains("399"), "{}", r.text_en);
    assert!(!r.text_zh.is_empty());
    assert!(state(&[inv(899, 1, 0)]).is_released());
    assert_eq!(
        gate_allows(&state(&[inv(801, 1, 0)])).unwrap_err().code,
        "customs.unknown_status"
    );
    assert_eq!(
        gate_allows(&state(&[inv(-621001, 1, 0)])).unwrap_err().code,
        "customs.processing_error"
    );
}

#[test]
fn order_is_by_return_time_not_arrival() {
    // The 800 arrived first, the 120 later, but the 120 is older.
    let s = state(&[inv(800, 5, 0), inv(120, 2, 1)]);
    assert!(s.is_released());
    // A late *lower* code dated after the release never downgrades it.
    let s = state(&[inv(800, 5, 0), inv(120, 6, 1), inv(2, 7, 2), inv(-1, 8, 3)]);
    assert!(s.is_released());
}

#[test]
fn holds_rejections_and_cancellations_after_release_revoke() {
    for (code, want, action) in [
        (500, "customs.held.inspection", ParcelAction::Inspection),
        (501, "customs.held.detained", ParcelAction::Quarantine),
        (502, "customs.held.detained", ParcelAction::Quarantine),
        (503, "customs.held.detained", ParcelAction::Quarantine),
        (599, "customs.held.detained", ParcelAction::Quarantine),
        (
            700,
            "customs.held.return_shipment",
            ParcelAction::ReturnShipment,
        ),
        (100, "customs.rejected", ParcelAction::CancelOrder),
    ] {
        let s = state(&[inv(800, 5, 0), inv(code, 6, 1)]);
        assert_eq!(gate_allows(&s).unwrap_err().code, want, "{code}");
        assert_eq!(s.action(), action, "{code}");
        // Dated before the release, it does not revoke it.
        assert!(
            state(&[inv(800, 5, 0), inv(code, 4, 1)]).is_released(),
            "{code}"
        );
    }
    // A pending code after a hold keeps the hold; a new 800 releases again.
    let s = state(&[inv(500, 1, 0), inv(120, 2, 1)]);
    assert!(matches!(
        s,
        CustomsState::Held {
            reason: HoldReason::Inspection,
            ..
        }
    ));
    assert!(state(&[inv(500, 1, 0), inv(800, 2, 1)]).is_released());
    // Successful cancellation is final; a refused or pending one changes nothing.
    let s = state(&[inv(800, 1, 0), cancel(399, 2, 1), inv(800, 3, 2)]);
    assert_eq!(gate_allows(&s).unwrap_err().code, "customs.cancelled");
    assert_eq!(s.action(), ParcelAction::CancelOrder);
    assert!(state(&[inv(800, 1, 0), cancel(100, 2, 1), cancel(2, 3, 2)]).is_released());
}

#[test]
fn duplicates_count_once_and_other_declarations_are_ignored() {
    // The same 500 stored twice (a replay) then an 800: released.
    let hold = inv(500, 2, 1);
    let s = state(&[inv(800, 1, 0), hold.clone(), hold.clone(), inv(800, 3, 3)]);
    assert!(s.is_released());
    // A replayed 800 with its original guid, arriving after a hold, changes nothing.
    let s = state(&[inv(800, 1, 0), inv(500, 2, 1), inv(800, 1, 2)]);
    assert!(!s.is_released());
    // Another 清单's release does not open this one's gate.
    let mut other = inv(800, 1, 0);
    other.cop_no = "C2".into();
    assert!(!CustomsState::for_declaration("C1", &[other.clone(), inv(120, 1, 1)]).is_released());
    assert!(CustomsState::for_declaration("C2", &[other]).is_released());
}

/// The state without arrival indices: the gate's answer and the deciding
/// receipt's status and time.
fn summary(s: &CustomsState) -> (Result<(), &'static str>, Option<(ReturnStatus, ReturnTime)>) {
    let receipt = match s {
        CustomsState::NoReceipt => None,
        CustomsState::Pending { receipt }
        | CustomsState::Released { receipt, .. }
        | CustomsState::Held { receipt, .. }
        | CustomsState::Rejected { receipt }
        | CustomsState::Cancelled { receipt }
        | CustomsState::ProcessingError { receipt }
        | CustomsState::Unrecognised { receipt } => Some((receipt.status, receipt.time)),
    };
    (gate_allows(s).map_err(|r| r.code), receipt)
}

const CODES: &[i64] = &[
    1, 2, 3, 4, 100, 120, 300, 399, 400, 500, 501, 502, 503, 599, 600, 700, 800, 899, -1, -621001,
    0, 801,
];

fn receipt_strategy() -> impl Strategy<Value = (bool, usize, u64, bool)> {
    (
        prop::bool::weighted(0.1),
        0..CODES.len(),
        0u64..40,
        prop::bool::weighted(0.3),
    )
}

fn build(spec: &[(bool, usize, u64, bool)]) -> Vec<Receipt> {
    spec.iter()
        .enumerate()
        .map(|(i, &(is_cancel, code, time, keep_guid))| {
            let mut r = if is_cancel {
                cancel(CODES[code], time, i as u64)
            } else {
                inv(CODES[code], time, i as u64)
            };
            if !keep_guid {
                r.guid = None;
            }
            r
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The order receipts are handed over in never matters.
    #[test]
    fn arrival_order_is_irrelevant(
        spec in prop::collection::vec(receipt_strategy(), 0..12),
        seed in any::<u64>(),
    ) {
        let rs = build(&spec);
        let mut shuffled = rs.clone();
        // A deterministic shuffle driven by the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(state(&rs), state(&shuffled));
    }

    /// With distinct times, even the arrival indices do not matter.
    #[test]
    fn only_return_time_orders(
        spec in prop::collection::vec(receipt_strategy(), 0..12),
        arrivals in prop::collection::vec(any::<u64>(), 12),
    ) {
        let mut rs = build(&spec);
        for (i, r) in rs.iter_mut().enumerate() {
            r.time = t(i as u64 * 3 + spec[i].2 % 3);
        }
        let before = summary(&state(&rs));
        for (r, a) in rs.iter_mut().zip(&arrivals) {
            r.arrival = *a;
        }
        prop_assert_eq!(before, summary(&state(&rs)));
    }

    /// No sequence without an 800/899 is ever released.
    #[test]
    fn never_released_without_800_or_899(
        spec in prop::collection::vec(receipt_strategy(), 0..12),
    ) {
        let rs: Vec<Receipt> = build(&spec)
            .into_iter()
            .filter(|r| r.kind == ReceiptKind::Cancellation || !matches!(r.status.code(), 800 | 899))
            .collect();
        let s = state(&rs);
        prop_assert!(!s.is_released());
        prop_assert!(gate_allows(&s).is_err());
    }

    /// A hold, rejection or successful cancellation dated after the last
    /// inventory release means not released.
    #[test]
    fn a_hold_after_the_last_release_shuts_the_gate(
        spec in prop::collection::vec(receipt_strategy(), 0..12),
        hold in prop::sample::select(vec![100i64, 500, 501, 502, 503, 599, 700]),
        as_cancellation in any::<bool>(),
    ) {
        let mut rs = build(&spec);
        let last_release = rs
            .iter()
            .filter(|r| r.kind == ReceiptKind::Inventory && matches!(r.status.code(), 800 | 899))
            .map(|r| r.time)
            .max();
        let after = last_release.map_or(0, |_| 41);
        let mut h = if as_cancellation { cancel(399, after, 99) } else { inv(hold, after, 99) };
        h.guid = None;
        rs.push(h);
        let s = state(&rs);
        prop_assert!(!s.is_released(), "{:?}", s);
        prop_assert!(gate_allows(&s).is_err());
    }

    /// Released is exactly "the gate allows".
    #[test]
    fn gate_agrees_with_state(spec in prop::collection::vec(receipt_strategy(), 0..12)) {
        let s = state(&build(&spec));
        prop_assert_eq!(s.is_released(), gate_allows(&s).is_ok());
    }
}
