//! The store conformance suite: every test runs on SQLite and on PostgreSQL
//! against the same expectations.

use bondgate::domain::{BatchNo, BinCode, Bucket, DocumentNo, LockState, Quantity, Role, SkuCode};
use bondgate::store::*;

use crate::both_backends;
use crate::helpers::{Backend, TestStore};

fn actor(name: &str) -> Actor {
    Actor {
        user_id: 1,
        username: name.into(),
        roles: vec![Role::Manager],
    }
}
fn doc(s: &str) -> DocumentNo {
    DocumentNo::parse(s).unwrap()
}
fn sku(s: &str) -> SkuCode {
    SkuCode::parse(s).unwrap()
}
fn bin(s: &str) -> BinCode {
    BinCode::parse(s).unwrap()
}
fn batch(s: &str) -> BatchNo {
    BatchNo::parse(s).unwrap()
}
fn q(n: i64) -> Quantity {
    Quantity::new(n).unwrap()
}

pub fn sku_input(code: &str) -> SkuInput {
    SkuInput {
        code: sku(code),
        name: format!("Item {code}"),
        barcodes: vec![format!("690{code}")],
        hs_code: Some("3304990099".into()),
        customs_item_record_no: None,
        ledger_item_no: Some("7".into()),
        unit_weight_grams: 120,
        shelf_life_days: Some(730),
        origin_country: Some("FR".into()),
        record_status: RecordStatus::Active,
    }
}

pub async fn seed(s: &Store) {
    let a = actor("seed");
    s.create_sku(&a, &sku_input("S1")).await.unwrap();
    for (code, seq, kind) in [
        ("A-01", 1, LocationKind::Storage),
        ("A-02", 2, LocationKind::Storage),
        ("Q-01", 9, LocationKind::Quarantine),
    ] {
        let l = LocationInput {
            code: bin(code),
            zone: "A".into(),
            walk_seq: seq,
            kind,
            active: true,
        };
        s.create_location(&a, &l).await.unwrap();
    }
}

pub fn receipt(no: &str, bin_code: &str, good: i64, damaged: i64) -> ReceiptInput {
    ReceiptInput {
        receipt_no: doc(no),
        customs_doc_no: doc("QD29242026I000000001"),
        supplier: Some("Maison Test".into()),
        lines: vec![ReceiptLineInput {
            sku: sku("S1"),
            bin: bin(bin_code),
            batch: batch("B1"),
            expiry: "2027-12-31".parse().ok(),
            qty: good,
            damaged_qty: damaged,
        }],
    }
}

fn lock_input(key: &str, bin_code: &str, n: i64) -> LockInput {
    LockInput {
        key: doc(key),
        reference: doc("ORDER-1"),
        sku: sku("S1"),
        bin: bin(bin_code),
        batch: batch("B1"),
        qty: q(n),
    }
}

async fn figures(s: &Store, bin_code: &str) -> (i64, i64, i64) {
    let r = s
        .stock(&StockQuery {
            sku: Some("S1".into()),
            bin: Some(bin_code.into()),
            include_empty: true,
            ..Default::default()
        })
        .await
        .unwrap();
    r.rows
        .first()
        .map_or((0, 0, 0), |h| (h.available, h.locked, h.defective))
}

async fn movement_count(s: &Store) -> usize {
    s.movements(&MovementQuery {
        limit: Some(1000),
        ..Default::default()
    })
    .await
    .unwrap()
    .movements
    .len()
}

async fn assert_clean(s: &Store) {
    let r = s.integrity().await.unwrap();
    assert!(r.is_clean(), "{r:?}");
    for row in s.reconciliation(None).await.unwrap() {
        assert!(row.balanced, "{row:?}");
    }
}

both_backends!(
    receive_counts_good_and_damaged_units,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        seed(s).await;
        let r = s
            .receive(&actor("m"), &receipt("R-1", "A-01", 10, 2))
            .await
            .unwrap();
        assert_eq!(r.lines[0].expiry, "2027-12-31".parse().ok());
        assert_eq!(figures(s, "A-01").await, (10, 0, 2));
        let rec = s.reconciliation(Some("S1")).await.unwrap();
        assert_eq!(rec[0].received, 12);
        assert_eq!(rec[0].on_hand, 12);
        assert_eq!(rec[0].documents[0].customs_doc_no, "QD29242026I000000001");
        let page = s.movements(&MovementQuery::default()).await.unwrap();
        assert_eq!(page.movements.len(), 2);
        assert!(page
            .movements
            .iter()
            .all(|m| m.customs_doc_no.as_deref() == Some("QD29242026I000000001")));
        assert_eq!(s.get_receipt("R-1").await.unwrap(), r);
        assert_clean(s).await;
        t.finish().await;
    }
);

both_backends!(
    a_repeated_receipt_is_answered_once_and_a_changed_one_refused,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        seed(s).await;
        let first = s
            .receive(&actor("m"), &receipt("R-1", "A-01", 10, 0))
            .await
            .unwrap();
        let again = s
            .receive(&actor("m"), &receipt("R-1", "A-01", 10, 0))
            .await
            .unwrap();
        assert_eq!(first, again);
        let err = s
            .receive(&actor("m"), &receipt("R-1", "A-01", 11, 0))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::IdempotencyConflict { .. }),
            "{err:?}"
        );
        assert_eq!(figures(s, "A-01").await, (10, 0, 0));
        assert_eq!(movement_count(s).await, 1);
        t.finish().await;
    }
);

both_backends!(
    a_reservation_is_shipped_or_released_exactly_once,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        let a = actor("m");
        seed(s).await;
        s.receive(&a, &receipt("R-1", "A-01", 10, 0)).await.unwrap();
        let l1 = s.lock(&a, &lock_input("L-1", "A-01", 4)).await.unwrap();
        assert_eq!((l1.state, l1.qty), (LockState::Held, 4));
        assert_eq!(figures(s, "A-01").await, (6, 4, 0));
        // The same key again is the same reservation, not a second one.
        assert_eq!(
            s.lock(&a, &lock_input("L-1", "A-01", 4)).await.unwrap().id,
            l1.id
        );
        assert_eq!(figures(s, "A-01").await, (6, 4, 0));

        let rel = s
            .release(
                &a,
                l1.id,
                &ReleaseInput {
                    reason: Some("order cancelled".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(rel.state, LockState::Released);
        let moves = movement_count(s).await;
        assert_eq!(
            s.release(&a, l1.id, &ReleaseInput { reason: None })
                .await
                .unwrap()
                .state,
            LockState::Released
        );
        assert_eq!(
            movement_count(s).await,
            moves,
            "a repeated release posts nothing"
        );
        let ship = ShipInput {
            lock_id: l1.id,
            customs_doc_no: doc("29242026I000000001"),
        };
        assert!(matches!(
            s.ship(&a, &ship).await,
            Err(StoreError::LockClosed {
                state: LockState::Released,
                ..
            })
        ));
        assert_eq!(figures(s, "A-01").await, (10, 0, 0));

        let l2 = s.lock(&a, &lock_input("L-2", "A-01", 3)).await.unwrap();
        let ship = ShipInput {
            lock_id: l2.id,
            customs_doc_no: doc("29242026I000000002"),
        };
        assert_eq!(s.ship(&a, &ship).await.unwrap().state, LockState::Shipped);
        assert_eq!(s.ship(&a, &ship).await.unwrap().state, LockState::Shipped);
        assert!(matches!(
            s.release(&a, l2.id, &ReleaseInput { reason: None }).await,
            Err(StoreError::LockClosed {
                state: LockState::Shipped,
                ..
            })
        ));
        assert_eq!(figures(s, "A-01").await, (7, 0, 0));
        assert!(matches!(
            s.release(&a, 9999, &ReleaseInput { reason: None }).await,
            Err(StoreError::LockNotFound(9999))
        ));
        let rec = &s.reconciliation(Some("S1")).await.unwrap()[0];
        assert_eq!((rec.received, rec.shipped, rec.on_hand), (10, 3, 7));
        assert!(rec
            .documents
            .iter()
            .any(|d| d.customs_doc_no == "29242026I000000002" && d.shipped == 3));
        assert_clean(s).await;
        t.finish().await;
    }
);

both_backends!(
    insufficient_stock_names_the_figures_and_changes_nothing,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        seed(s).await;
        s.receive(&actor("m"), &receipt("R-1", "A-01", 3, 0))
            .await
            .unwrap();
        let err = s
            .lock(&actor("m"), &lock_input("L-1", "A-01", 5))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "insufficient available stock for SKU S1 at bin A-01: 3 available, 5 requested"
        );
        assert_eq!(figures(s, "A-01").await, (3, 0, 0));
        assert_eq!(movement_count(s).await, 1);
        // The failed key is free: nothing was recorded under it.
        assert!(s
            .lock(&actor("m"), &lock_input("L-1", "A-01", 2))
            .await
            .is_ok());
        t.finish().await;
    }
);

both_backends!(
    quarantined_stock_cannot_be_reserved,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        seed(s).await;
        s.receive(&actor("m"), &receipt("R-1", "Q-01", 5, 0))
            .await
            .unwrap();
        let err = s
            .lock(&actor("m"), &lock_input("L-1", "Q-01", 1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(ref m) if m.contains("quarantine")),
            "{err:?}"
        );
        t.finish().await;
    }
);

both_backends!(
    damage_moves_available_or_reserved_units_to_defective,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        let a = actor("m");
        seed(s).await;
        s.receive(&a, &receipt("R-1", "A-01", 10, 0)).await.unwrap();
        let d = DamageInput {
            key: doc("D-1"),
            sku: sku("S1"),
            bin: bin("A-01"),
            batch: batch("B1"),
            qty: q(2),
            lock_id: None,
            reason: "crushed".into(),
        };
        s.damage(&a, &d).await.unwrap();
        assert_eq!(figures(s, "A-01").await, (8, 0, 2));
        let l = s.lock(&a, &lock_input("L-1", "A-01", 3)).await.unwrap();
        let d2 = DamageInput {
            key: doc("D-2"),
            lock_id: Some(l.id),
            qty: q(1),
            ..d.clone()
        };
        s.damage(&a, &d2).await.unwrap();
        assert_eq!(figures(s, "A-01").await, (5, 2, 3));
        assert_eq!(s.get_lock(l.id).await.unwrap().qty, 2);
        let too_many = DamageInput {
            key: doc("D-3"),
            lock_id: Some(l.id),
            qty: q(5),
            ..d.clone()
        };
        assert!(matches!(
            s.damage(&a, &too_many).await,
            Err(StoreError::InsufficientStock {
                bucket: Bucket::Locked,
                have: 2,
                want: 5,
                ..
            })
        ));
        // Shipping the shrunken reservation ships what is left of it.
        s.ship(
            &a,
            &ShipInput {
                lock_id: l.id,
                customs_doc_no: doc("INV-1"),
            },
        )
        .await
        .unwrap();
        assert_eq!(figures(s, "A-01").await, (5, 0, 3));
        assert_clean(s).await;
        t.finish().await;
    }
);

both_backends!(
    transfers_move_stock_between_bins_or_nothing,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        let a = actor("m");
        seed(s).await;
        s.receive(&a, &receipt("R-1", "A-01", 10, 0)).await.unwrap();
        let tr = TransferInput {
            key: doc("T-1"),
            sku: sku("S1"),
            batch: batch("B1"),
            from_bin: bin("A-01"),
            to_bin: bin("A-02"),
            qty: q(4),
        };
        assert_eq!(s.transfer(&a, &tr).await.unwrap().movement_ids.len(), 2);
        assert_eq!(figures(s, "A-01").await, (6, 0, 0));
        assert_eq!(figures(s, "A-02").await, (4, 0, 0));
        let big = TransferInput {
            key: doc("T-2"),
            qty: q(7),
            ..tr.clone()
        };
        assert!(matches!(
            s.transfer(&a, &big).await,
            Err(StoreError::InsufficientStock {
                have: 6,
                want: 7,
                ..
            })
        ));
        assert_eq!(figures(s, "A-02").await, (4, 0, 0));
        let nowhere = TransferInput {
            key: doc("T-3"),
            to_bin: bin("Z-99"),
            ..tr.clone()
        };
        assert!(matches!(
            s.transfer(&a, &nowhere).await,
            Err(StoreError::UnknownLocation(_))
        ));
        let rec = &s.reconciliation(Some("S1")).await.unwrap()[0];
        assert_eq!((rec.received, rec.on_hand, rec.difference), (10, 10, 0));
        assert_clean(s).await;
        t.finish().await;
    }
);

both_backends!(
    adjustments_need_a_second_manager_and_cannot_go_negative,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        let (alice, bob) = (actor("alice"), actor("bob"));
        seed(s).await;
        s.receive(&alice, &receipt("R-1", "A-01", 5, 0))
            .await
            .unwrap();
        let input = AdjustmentInput {
            key: doc("ADJ-1"),
            sku: sku("S1"),
            bin: bin("A-01"),
            batch: batch("B1"),
            expiry: None,
            bucket: Bucket::Available,
            delta: -2,
            reason: "found broken seal, disposed".into(),
        };
        let adj = s.request_adjustment(&alice, &input).await.unwrap();
        assert_eq!(adj.state, AdjustmentState::Pending);
        assert_eq!(
            figures(s, "A-01").await,
            (5, 0, 0),
            "nothing moves before approval"
        );
        assert!(matches!(
            s.decide_adjustment(&alice, adj.id, true).await,
            Err(StoreError::Forbidden(_))
        ));
        let done = s.decide_adjustment(&bob, adj.id, true).await.unwrap();
        assert_eq!(
            (done.state, done.decided_by.as_deref()),
            (AdjustmentState::Approved, Some("bob"))
        );
        assert_eq!(figures(s, "A-01").await, (3, 0, 0));
        assert_eq!(
            s.decide_adjustment(&bob, adj.id, true).await.unwrap().state,
            AdjustmentState::Approved
        );
        assert!(matches!(
            s.decide_adjustment(&bob, adj.id, false).await,
            Err(StoreError::Invalid(_))
        ));
        let m = s
            .movements(&MovementQuery {
                kind: Some("adjust".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(m.movements[0].approver.as_deref(), Some("bob"));

        let big = AdjustmentInput {
            key: doc("ADJ-2"),
            delta: -9,
            ..input.clone()
        };
        let adj2 = s.request_adjustment(&alice, &big).await.unwrap();
        assert!(matches!(
            s.decide_adjustment(&bob, adj2.id, true).await,
            Err(StoreError::InsufficientStock {
                have: 3,
                want: 9,
                ..
            })
        ));
        assert_eq!(
            s.list_adjustments(Some(AdjustmentState::Pending))
                .await
                .unwrap()
                .len(),
            1
        );
        let locked = AdjustmentInput {
            key: doc("ADJ-3"),
            bucket: Bucket::Locked,
            ..input.clone()
        };
        assert!(matches!(
            s.request_adjustment(&alice, &locked).await,
            Err(StoreError::Invalid(_))
        ));
        let rec = &s.reconciliation(Some("S1")).await.unwrap()[0];
        assert_eq!(
            (rec.received, rec.adjusted_out, rec.on_hand, rec.balanced),
            (5, 2, 3, true)
        );
        t.finish().await;
    }
);

both_backends!(
    a_cycle_count_raises_adjustments_for_differences,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        let (alice, bob) = (actor("alice"), actor("bob"));
        seed(s).await;
        s.create_sku(&alice, &sku_input("S2")).await.unwrap();
        s.receive(&alice, &receipt("R-1", "A-01", 10, 1))
            .await
            .unwrap();
        let c = CountInput {
            count_no: doc("CC-1"),
            bin: bin("A-01"),
            lines: vec![
                CountLineInput {
                    sku: sku("S1"),
                    batch: batch("B1"),
                    expiry: None,
                    counted: 9,
                },
                CountLineInput {
                    sku: sku("S2"),
                    batch: batch("X"),
                    expiry: "2028-01-01".parse().ok(),
                    counted: 2,
                },
            ],
        };
        let r = s.count(&alice, &c).await.unwrap();
        assert_eq!((r.lines[0].expected, r.lines[0].difference), (11, -2));
        assert_eq!((r.lines[1].expected, r.lines[1].difference), (0, 2));
        assert_eq!(
            s.count(&alice, &c).await.unwrap(),
            r,
            "a repeated count is the same count"
        );
        for line in &r.lines {
            s.decide_adjustment(&bob, line.adjustment_id.unwrap(), true)
                .await
                .unwrap();
        }
        assert_eq!(figures(s, "A-01").await, (8, 0, 1));
        let dup = CountInput {
            count_no: doc("CC-2"),
            lines: vec![c.lines[0].clone(), c.lines[0].clone()],
            ..c.clone()
        };
        assert!(matches!(
            s.count(&alice, &dup).await,
            Err(StoreError::Invalid(_))
        ));
        assert_clean(s).await;
        t.finish().await;
    }
);

both_backends!(
    the_database_itself_refuses_to_rewrite_the_ledger_or_go_negative,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        seed(s).await;
        s.receive(&actor("m"), &receipt("R-1", "A-01", 3, 0))
            .await
            .unwrap();
        // Bypass the application entirely: these are the bugs the schema must stop.
        let attempts = [
            "UPDATE movements SET qty = 1000",
            "DELETE FROM movements",
            "UPDATE holdings SET available = available - 5",
            "DELETE FROM audit_log",
        ];
        for sql in attempts {
            let result = t.db.raw_execute(sql).await;
            assert!(result.is_err(), "the database accepted: {sql}");
        }
        assert_eq!(figures(s, "A-01").await, (3, 0, 0));
        assert_clean(s).await;
        t.finish().await;
    }
);

both_backends!(
    master_data_is_checked_and_idempotent,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        let a = actor("m");
        seed(s).await;
        let (again, created) = s.create_sku(&a, &sku_input("S1")).await.unwrap();
        assert!(!created);
        assert_eq!(again.barcodes, vec!["690S1".to_string()]);
        let mut changed = sku_input("S1");
        changed.unit_weight_grams = 999;
        assert!(matches!(
            s.create_sku(&a, &changed).await,
            Err(StoreError::AlreadyExists(_))
        ));
        let mut stolen = sku_input("S9");
        stolen.barcodes = vec!["690S1".into()];
        assert!(
            matches!(s.create_sku(&a, &stolen).await, Err(StoreError::AlreadyExists(ref m)) if m.contains("S1"))
        );
        assert!(
            s.get_sku("S9").await.is_err(),
            "a refused SKU leaves nothing behind"
        );
        // Revoked customs record: no more bonded receipts of it.
        let mut revoked = sku_input("S1");
        revoked.record_status = RecordStatus::Revoked;
        s.update_sku(&a, &revoked).await.unwrap();
        assert!(
            matches!(s.receive(&a, &receipt("R-1", "A-01", 1, 0)).await, Err(StoreError::Invalid(ref m)) if m.contains("revoked"))
        );
        let reserve = s.lock(&a, &lock_input("L-R", "A-01", 1)).await;
        assert!(
            matches!(reserve, Err(StoreError::Invalid(ref m)) if m.contains("revoked")),
            "{reserve:?}"
        );
        // A batch keeps its expiry.
        s.update_sku(&a, &sku_input("S1")).await.unwrap();
        s.receive(&a, &receipt("R-2", "A-01", 1, 0)).await.unwrap();
        let mut other_expiry = receipt("R-3", "A-01", 1, 0);
        other_expiry.lines[0].expiry = "2030-01-01".parse().ok();
        assert!(matches!(
            s.receive(&a, &other_expiry).await,
            Err(StoreError::LotExpiryMismatch { .. })
        ));
        // A bin holding stock keeps its kind.
        let to_quarantine = LocationInput {
            code: bin("A-01"),
            zone: "A".into(),
            walk_seq: 1,
            kind: LocationKind::Quarantine,
            active: true,
        };
        assert!(matches!(
            s.update_location(&a, &to_quarantine).await,
            Err(StoreError::Invalid(_))
        ));
        t.finish().await;
    }
);

both_backends!(movements_page_newest_first, |b: Backend| async move {
    let Some(t) = TestStore::new(b).await else {
        return;
    };
    let s = &t.store;
    seed(s).await;
    for i in 0..7 {
        s.receive(&actor("m"), &receipt(&format!("R-{i}"), "A-01", 1, 0))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let p = s
            .movements(&MovementQuery {
                before_id: before,
                limit: Some(3),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(p.movements.iter().map(|m| m.id));
        match p.next_before_id {
            Some(id) => before = Some(id),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    let only = s
        .movements(&MovementQuery {
            doc_no: Some("R-3".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(only.movements.len(), 1);
    t.finish().await;
});

both_backends!(
    a_stock_page_is_cut_at_its_limit_and_counts_expiries_over_every_match,
    |b: Backend| async move {
        let Some(t) = TestStore::new(b).await else {
            return;
        };
        let s = &t.store;
        seed(s).await;
        s.receive(&actor("m"), &receipt("R-1", "A-01", 10, 0))
            .await
            .unwrap();
        s.receive(&actor("m"), &receipt("R-2", "A-02", 5, 0))
            .await
            .unwrap();
        let day = |d: &str| d.parse::<chrono::NaiveDate>().ok();
        let page = s
            .stock(&StockQuery {
                limit: Some(1),
                expiring_within_days: Some(30),
                today: day("2027-12-01"),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.rows.len(), 1);
        assert_eq!(page.rows[0].bin, "A-01", "walk order");
        assert!(page.truncated);
        assert_eq!(page.totals.total, 15, "the totals are of every match");
        let e = page.expiry.unwrap();
        assert_eq!((e.expired, e.expiring, e.within_days), (0, 2, 30));
        // A month later both lots are past their expiry; one bin has one.
        let later = s
            .stock(&StockQuery {
                bin: Some("A-02".into()),
                expiring_within_days: Some(30),
                today: day("2028-01-01"),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((later.rows.len(), later.truncated), (1, false));
        assert_eq!(later.totals.total, 5);
        let e = later.expiry.unwrap();
        assert_eq!((e.expired, e.expiring), (1, 0));
        // Without a window there is no expiry summary; without a limit all rows.
        let all = s.stock(&StockQuery::default()).await.unwrap();
        assert_eq!((all.rows.len(), all.expiry), (2, None));
        t.finish().await;
    }
);
