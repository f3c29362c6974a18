//! Random sequences of operations applied to the real store and to the
//! domain's reference ledger: the store must accept exactly what the model
//! accepts, end with the same figures, and keep its ledger consistent.

use std::sync::atomic::{AtomicUsize, Ordering};

use bondgate::domain::ledger::{HoldingKey, Ledger};
use bondgate::domain::{BatchNo, BinCode, Bucket, DocumentNo, Quantity, Role, SkuCode};
use bondgate::store::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::conformance::{seed, sku_input};
use crate::helpers::{Backend, TestStore};

#[derive(Debug, Clone)]
enum Op {
    Receive(usize, i64, i64),
    Lock(usize, i64),
    Release(usize),
    Ship(usize),
    Damage(usize, i64),
    DamageLocked(usize, i64),
    Transfer(usize, usize, i64),
    Adjust(usize, bool, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..2, 1i64..15, 0i64..3).prop_map(|(b, g, d)| Op::Receive(b, g, d)),
        (0usize..2, 1i64..8).prop_map(|(b, n)| Op::Lock(b, n)),
        (0usize..8).prop_map(Op::Release),
        (0usize..8).prop_map(Op::Ship),
        (0usize..2, 1i64..4).prop_map(|(b, n)| Op::Damage(b, n)),
        (0usize..8, 1i64..4).prop_map(|(i, n)| Op::DamageLocked(i, n)),
        (0usize..2, 0usize..2, 1i64..6).prop_map(|(a, b, n)| Op::Transfer(a, b, n)),
        (0usize..2, any::<bool>(), prop_oneof![-5i64..0, 1i64..6])
            .prop_map(|(b, d, n)| Op::Adjust(b, d, n)),
    ]
}

const BINS: [&str; 2] = ["A-01", "A-02"];

fn mgr(name: &str) -> Actor {
    Actor {
        user_id: 1,
        username: name.into(),
        roles: vec![Role::Manager],
    }
}

/// Applies one op to both; returns whether each accepted it.
async fn apply(
    s: &Store,
    model: &mut Ledger,
    locks: &mut Vec<i64>,
    sku: &str,
    n: usize,
    op: &Op,
) -> (bool, bool) {
    let key = |tag: &str| DocumentNo::parse(format!("{sku}-{tag}-{n}")).unwrap();
    let hk = |b: usize| HoldingKey {
        sku: SkuCode::parse(sku).unwrap(),
        bin: BinCode::parse(BINS[b]).unwrap(),
        batch: BatchNo::parse("B1").unwrap(),
    };
    let q = |n: i64| Quantity::new(n).unwrap();
    let a = mgr("alice");
    match *op {
        Op::Receive(b, good, damaged) => {
            let r = ReceiptInput {
                receipt_no: key("R"),
                customs_doc_no: DocumentNo::parse("QD-IN-1").unwrap(),
                supplier: None,
                lines: vec![ReceiptLineInput {
                    sku: SkuCode::parse(sku).unwrap(),
                    bin: BinCode::parse(BINS[b]).unwrap(),
                    batch: BatchNo::parse("B1").unwrap(),
                    expiry: "2028-02-29".parse().ok(),
                    qty: good,
                    damaged_qty: damaged,
                }],
            };
            (
                s.receive(&a, &r).await.is_ok(),
                model.receive(&hk(b), good, damaged).is_ok(),
            )
        }
        Op::Lock(b, n) => {
            let l = LockInput {
                key: key("L"),
                reference: key("ORD"),
                sku: SkuCode::parse(sku).unwrap(),
                bin: BinCode::parse(BINS[b]).unwrap(),
                batch: BatchNo::parse("B1").unwrap(),
                qty: q(n),
            };
            let got = s.lock(&a, &l).await;
            let want = model.lock(&hk(b), q(n));
            if let (Ok(rec), Ok(_)) = (&got, &want) {
                locks.push(rec.id);
            }
            (got.is_ok(), want.is_ok())
        }
        Op::Release(i) | Op::Ship(i) if i >= locks.len() => (true, true),
        Op::DamageLocked(i, _) if i >= locks.len() => (true, true),
        Op::Release(i) => {
            let got = s
                .release(&a, locks[i], &ReleaseInput { reason: None })
                .await;
            // A repeated release is answered, not refused: mirror that.
            let already = model.locks()[i].state == bondgate::domain::LockState::Released;
            let want = model.release(i);
            (got.is_ok(), want.is_ok() || already)
        }
        Op::Ship(i) => {
            let got = s
                .ship(
                    &a,
                    &ShipInput {
                        lock_id: locks[i],
                        customs_doc_no: key("INV"),
                    },
                )
                .await;
            let already = model.locks()[i].state == bondgate::domain::LockState::Shipped;
            let want = model.ship(i);
            (got.is_ok(), want.is_ok() || already)
        }
        Op::Damage(b, n) => {
            let d = DamageInput {
                key: key("D"),
                sku: SkuCode::parse(sku).unwrap(),
                bin: BinCode::parse(BINS[b]).unwrap(),
                batch: BatchNo::parse("B1").unwrap(),
                qty: q(n),
                lock_id: None,
                reason: "test".into(),
            };
            (
                s.damage(&a, &d).await.is_ok(),
                model.damage(&hk(b), q(n)).is_ok(),
            )
        }
        Op::DamageLocked(i, n) => {
            let at = model.locks()[i].at.clone();
            let d = DamageInput {
                key: key("DL"),
                sku: at.sku.clone(),
                bin: at.bin.clone(),
                batch: at.batch.clone(),
                qty: q(n),
                lock_id: Some(locks[i]),
                reason: "test".into(),
            };
            (
                s.damage(&a, &d).await.is_ok(),
                model.damage_locked(i, q(n)).is_ok(),
            )
        }
        Op::Transfer(x, y, n) => {
            if x == y {
                return (true, true);
            }
            let t = TransferInput {
                key: key("T"),
                sku: SkuCode::parse(sku).unwrap(),
                batch: BatchNo::parse("B1").unwrap(),
                from_bin: BinCode::parse(BINS[x]).unwrap(),
                to_bin: BinCode::parse(BINS[y]).unwrap(),
                qty: q(n),
            };
            (
                s.transfer(&a, &t).await.is_ok(),
                model.transfer(&hk(x), &hk(y).bin, q(n)).is_ok(),
            )
        }
        Op::Adjust(b, defective, delta) => {
            let bucket = if defective {
                Bucket::Defective
            } else {
                Bucket::Available
            };
            let input = AdjustmentInput {
                key: key("ADJ"),
                sku: SkuCode::parse(sku).unwrap(),
                bin: BinCode::parse(BINS[b]).unwrap(),
                batch: BatchNo::parse("B1").unwrap(),
                // The batch's expiry, as on its receipts: a batch has one expiry.
                expiry: "2028-02-29".parse().ok(),
                bucket,
                delta,
                reason: "test".into(),
            };
            let got = match s.request_adjustment(&a, &input).await {
                Ok(adj) => s.decide_adjustment(&mgr("bob"), adj.id, true).await.is_ok(),
                Err(_) => false,
            };
            (got, model.adjust(&hk(b), bucket, delta).is_ok())
        }
    }
}

fn run(backend: Backend, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(t) = rt.block_on(async {
        let t = TestStore::new(backend).await?;
        seed(&t.store).await;
        Some(t)
    }) else {
        return;
    };
    let case_no = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
        // Each case gets its own SKU, so cases share one database.
        let sku = format!("P{}", case_no.fetch_add(1, Ordering::Relaxed));
        rt.block_on(async {
            let s = &t.store;
            s.create_sku(
                &mgr("alice"),
                &SkuInput {
                    barcodes: vec![],
                    ..sku_input(&sku)
                },
            )
            .await
            .unwrap();
            let mut model = Ledger::default();
            let mut locks = Vec::new();
            for (n, op) in ops.iter().enumerate() {
                let (got, want) = apply(s, &mut model, &mut locks, &sku, n, op).await;
                prop_assert_eq!(got, want, "store and model disagree on {:?}", op);
            }
            let stock = s
                .stock(&StockQuery {
                    sku: Some(sku.clone()),
                    include_empty: true,
                    ..Default::default()
                })
                .await
                .unwrap();
            for row in &stock.rows {
                let key = HoldingKey {
                    sku: SkuCode::parse(&sku).unwrap(),
                    bin: BinCode::parse(&row.bin).unwrap(),
                    batch: BatchNo::parse(&row.batch).unwrap(),
                };
                let m = model.balance(&key);
                prop_assert_eq!(
                    (row.available, row.locked, row.defective),
                    (m.available, m.locked, m.defective)
                );
                prop_assert!(row.available >= 0 && row.locked >= 0 && row.defective >= 0);
            }
            let model_total: i64 = model.balances().map(|(_, b)| b.total()).sum();
            prop_assert_eq!(stock.totals.total, model_total);
            let integrity = s.integrity().await.unwrap();
            prop_assert!(integrity.is_clean(), "{:?}", integrity);
            let rec = s.reconciliation(Some(&sku)).await.unwrap();
            prop_assert!(rec[0].balanced, "{:?}", rec[0]);
            Ok(())
        })
    });
    rt.block_on(t.finish());
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn store_matches_the_model_on_sqlite() {
    run(Backend::Sqlite, 96);
}

#[test]
fn store_matches_the_model_on_postgres() {
    run(Backend::Postgres, 96);
}
