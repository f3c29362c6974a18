//! Order intake with the FEFO lock, per second, through the store on SQLite
//! and on PostgreSQL, beside the same transaction written as raw SQL in the
//! same run (DESIGN §7: at least 1,500 orders/s sustained, and the store at
//! least 50 % of raw).
//!
//! One **order** is what the platform's integration does per order, as the
//! HTTP handler does it: `bondgate::orders::prepare` (the domain checks, the
//! buyer's ID number and both phones sealed with AES-GCM, two keyed HMACs),
//! then `Store::create_order`, which claims the order number as idempotency
//! key, allocates every line earliest-expiry-first, reserves the stock (lock
//! rows and lock movements, whose trigger moves the balances), records the
//! order, its lines and which reservation serves which line, and stores the
//! answer. An order has 1 to 3 lines on different SKUs, 1 or 2 units each
//! (fixed per SKU, see `units`).
//!
//! The raw path runs on a second fresh database with the same migrations and
//! stock, calls the same `prepare`, and writes the same rows with the fewest
//! statements that are still correct (`create_group_in`, for one order or a
//! group): SKU codes resolved once at set-up (a cache that still refuses
//! revoked SKUs), the keys claimed with one `INSERT .. ON CONFLICT DO NOTHING
//! RETURNING`, one FEFO select for all the SKUs (the store's WHERE, `FOR
//! UPDATE OF h` on PostgreSQL), the same `fefo::allocate` order after order,
//! one read of the buyers' year, one multi-row INSERT per table, and the
//! answers built in memory rather than read back. Both paths are warmed up, then measured in
//! alternating rounds. Afterwards both databases must pass `Store::integrity`,
//! hold the same number of rows in every ledger table and the same stock, and
//! have stored the same answer for every order (on SQLite, where the order of
//! the orders is fixed, the same reservations to the lock id), or the
//! benchmark fails: a baseline that skipped a write would flatter the store.
//!
//! The store takes the orders queued together as one group (its intake queue
//! in front of the group-commit writer, `store::batch`: at most 64, one unit
//! with shared statements), so `BENCH_SQLITE_TASKS` tasks (default 64) submit
//! orders concurrently, and the raw path goes through a writer of the same
//! shape (`Batched`: whatever is queued, at most 64, one group in one
//! savepoint, one commit), so the ratio compares like with like. Concurrent tasks reach the two writers in
//! different orders, so on SQLite as on PostgreSQL the answers are compared
//! apart from which holdings served a line.
//!
//! Then, for the raw path only, SQLite `synchronous=FULL` with fixed groups
//! (16 and 64 orders per transaction and per group from one task, no savepoints, one fresh
//! database each, checked against the store's like the raw one): the upper
//! bound a batching writer could reach on this disk.
//!
//! Besides throughput and latency, each row shows CPU time per order: this
//! process's (which includes SQLite, running in-process) and, on PostgreSQL,
//! that of the server backends serving the path's database (Linux, server on
//! the same machine).
//!
//! Run: `cargo bench --bench orders`. Knobs (environment):
//! - `BENCH_ORDERS`: measured orders per path and backend (default 3,000).
//! - `BENCH_PG_URL`: PostgreSQL server to create scratch databases on
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! - `BENCH_PG_TASKS`: concurrent tasks on PostgreSQL (default 8, or
//!   `BENCH_SQLITE_TASKS`' 64 when the store groups order intake there, its default).
//! - `BENCH_SQLITE_TASKS`: concurrent tasks on SQLite (default 64).
//! - `BENCH_SQLITE_GROUP_COMMIT`: `off` runs the SQLite rows as before group
//!   commit (store without it, raw one commit per order, one task), for
//!   comparison on the same machine.
//! - `BENCH_PG_GROUP_COMMIT`: `on` runs the store with its group-commit
//!   writer on PostgreSQL too (and the raw path batched the same way), `off`
//!   without; unset, the store's default for PostgreSQL.
//! - `BENCH_BACKENDS`: comma list of `sqlite-full`, `sqlite-normal`,
//!   `postgres` (default all three).
//! - `CI=true`: an unreachable PostgreSQL fails the run instead of being skipped.
//! - `TMPDIR`: where the SQLite files go (its disk decides what a sync costs).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bondgate::crypto::PiiCipher;
use bondgate::domain::fefo::{self, Candidate};
use bondgate::domain::order::annual_limit_warning;
use bondgate::domain::{
    BatchNo, BinCode, DocumentNo, LockState, Money, Quantity, Role, SkuCode, TradeMode,
};
use bondgate::store::{
    numbered, Actor, AllocationView, BuyerInput, ConsigneeInput, LocationInput, LocationKind,
    OrderContext, OrderInput, OrderLineInput, OrderView, ReceiptInput, ReceiptLineInput, Store,
    StoreOptions,
};
use chrono::{DateTime, NaiveDate, Utc};
use common::{
    count_differences, create_databases, drop_databases, integrity_totals, main_with, now,
    per_second, percentile_us, pg_admin, pg_pool, scratch_names, seed_skus, sku_code,
    sqlite_backend, sqlite_pool, sqlite_version, valid, with_database, ROUNDS, SQLITE_TASKS,
    TARGET_PERCENT,
};
use sqlx::postgres::PgConnection;

/// SKUs in the master data; an order's lines pick among them uniformly.
const SKUS: usize = 200;
/// Bins: storage first, then pick faces, then quarantine (40 in all).
const STORAGE_BINS: usize = 34;
const PICK_BINS: usize = 4;
const QUARANTINE_BINS: usize = 2;
const BINS: usize = STORAGE_BINS + PICK_BINS + QUARANTINE_BINS;
/// Bins FEFO may take from (storage and pick).
const SELLABLE_BINS: usize = STORAGE_BINS + PICK_BINS;
/// In-date batches of each SKU, each spread over this many bins: FEFO chooses
/// among 12 holdings per SKU, by expiry and then along the walk.
const LOTS_PER_SKU: usize = 4;
const BINS_PER_LOT: usize = 3;
/// Stock per SKU is the run's largest per-SKU demand plus this margin, spread
/// evenly over its in-date holdings, so no order runs short.
const STOCK_MARGIN_PERCENT: usize = 25;
/// Smallest holding: small holdings make a 2-unit line split over two.
const HOLDING_QTY_MIN: i64 = 7;
/// Beside the in-date stock, per SKU: an expired batch in a storage bin (FEFO
/// reads it and must skip it) and a quarantined batch with the earliest expiry
/// (the WHERE clause must exclude it).
const EXPIRED_QTY: i64 = 20;
const QUARANTINE_QTY: i64 = 20;
/// Distinct buyers: the annual-limit look-up finds a few earlier orders each.
const BUYERS: usize = 5_000;
const LINES_PER_ORDER_MAX: u64 = 3;
const ORDERS_DEFAULT: usize = 3_000;
/// A bound on `BENCH_ORDERS`, so a typo cannot run for hours (the answers of
/// both databases are held in memory for the comparison).
const ORDERS_MAX: usize = 100_000;
/// Warm-up orders before each measured run (prepared statements, pool
/// connections, page cache); at most a tenth of the measured count.
const WARMUP_MAX: usize = 200;
/// Orders per transaction in the raw-only group-commit rows.
const GROUP_SIZES: [usize; 2] = [16, 64];
/// The most orders the raw group-commit writer commits together: the store's
/// group-commit writer's cap (`store::batch::BATCH_MAX`).
const BATCH_MAX: usize = 64;
/// Concurrent tasks on SQLite (`BENCH_SQLITE_TASKS`): with group commit the
/// writer commits what the callers queued meanwhile, so one task would give
/// batches of one. As many as `BATCH_MAX` lets a batch fill.
const SQLITE_TASKS_DEFAULT: usize = 64;
const SQLITE_TASKS_MAX: usize = 1_024;
/// DESIGN §7's targets: this and `common::TARGET_PERCENT`.
const TARGET_ORDERS_PER_S: u64 = 1_500;
/// Ledger tables whose row counts must match between the databases after a run.
const LEDGER_COUNTS: [(&str, &str); 8] = [
    ("operations", "SELECT COUNT(*) FROM operations"),
    (
        "answered",
        "SELECT COUNT(*) FROM operations WHERE response IS NOT NULL",
    ),
    ("orders", "SELECT COUNT(*) FROM orders"),
    ("order_lines", "SELECT COUNT(*) FROM order_lines"),
    ("locks", "SELECT COUNT(*) FROM locks"),
    ("movements", "SELECT COUNT(*) FROM movements"),
    (
        "order_allocations",
        "SELECT COUNT(*) FROM order_allocations",
    ),
    ("holdings", "SELECT COUNT(*) FROM holdings"),
];

struct Config {
    orders: usize,
    warmup: usize,
    pg_url: String,
    pg_tasks: usize,
    sqlite_tasks: usize,
    /// `BENCH_SQLITE_GROUP_COMMIT=off`: the SQLite rows as before group
    /// commit (one task, one commit per order on both paths), for comparison.
    sqlite_group_commit: bool,
    /// `BENCH_PG_GROUP_COMMIT`: the store (and the raw path, batched the same
    /// way) with group commit on PostgreSQL; unset: the store's default.
    pg_group_commit: Option<bool>,
    /// `BENCH_BACKENDS`: `sqlite-full`, `sqlite-normal`, `postgres`.
    backends: Vec<String>,
    ci: bool,
}

impl Config {
    fn from_env() -> Result<Config> {
        let orders = common::env_count("BENCH_ORDERS", ORDERS_DEFAULT, ORDERS_MAX)?;
        Ok(Config {
            orders,
            warmup: (orders / 10).clamp(1, WARMUP_MAX),
            pg_url: common::pg_url(),
            pg_tasks: common::pg_tasks()?,
            sqlite_tasks: common::env_count(
                "BENCH_SQLITE_TASKS",
                SQLITE_TASKS_DEFAULT,
                SQLITE_TASKS_MAX,
            )?,
            sqlite_group_commit: match std::env::var("BENCH_SQLITE_GROUP_COMMIT").as_deref() {
                Err(_) | Ok("1" | "on" | "true") => true,
                Ok("0" | "off" | "false") => false,
                Ok(other) => bail!("BENCH_SQLITE_GROUP_COMMIT must be on or off, got {other}"),
            },
            pg_group_commit: match std::env::var("BENCH_PG_GROUP_COMMIT").as_deref() {
                Err(_) => None,
                Ok("1" | "on" | "true") => Some(true),
                Ok("0" | "off" | "false") => Some(false),
                Ok(other) => bail!("BENCH_PG_GROUP_COMMIT must be on or off, got {other}"),
            },
            backends: std::env::var("BENCH_BACKENDS")
                .unwrap_or_else(|_| "sqlite-full,sqlite-normal,postgres".into())
                .split(',')
                .map(|b| b.trim().to_string())
                .collect(),
            ci: common::ci(),
        })
    }

    /// Every order one database takes in a run: the warm-up's, then the
    /// measured ones.
    fn runs(&self) -> [(&'static str, usize); 2] {
        [("W", self.warmup), ("M", self.orders)]
    }
}

// ------------------------------------------------------------------ workload

fn bin_code(n: usize) -> String {
    if n < STORAGE_BINS {
        format!("A-{n:02}-01-1")
    } else if n < SELLABLE_BINS {
        format!("P-{:02}-01-1", n - STORAGE_BINS)
    } else {
        format!("Q-{:02}-01-1", n - SELLABLE_BINS)
    }
}

/// splitmix64: the workload is pseudo-random but the same on every database
/// and in every run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Order `i` of run `tag`: its buyer and its lines (SKU index, units).
struct Shape {
    buyer: usize,
    lines: Vec<(usize, i64)>,
}

fn shape(tag: &str, i: usize) -> Shape {
    let salt = tag.bytes().fold(0u64, |h, b| (h << 8) | u64::from(b));
    let mut r = mix(((i as u64) << 16) ^ salt);
    let mut next = || {
        r = mix(r);
        r
    };
    let n = 1 + (next() % LINES_PER_ORDER_MAX) as usize;
    let mut lines: Vec<(usize, i64)> = Vec::with_capacity(n);
    while lines.len() < n {
        let sku = (next() % SKUS as u64) as usize;
        if lines.iter().all(|(s, _)| *s != sku) {
            lines.push((sku, units(sku)));
        }
    }
    Shape {
        buyer: (next() % BUYERS as u64) as usize,
        lines,
    }
}

/// Units per line: 1 for even SKUs, 2 for odd ones. Fixed per SKU so that
/// how often a line is split over two holdings does not depend on which of
/// two concurrent orders came first: with 8 tasks on PostgreSQL the two
/// databases see the orders in different interleavings, yet must end with
/// the same number of reservations.
fn units(sku: usize) -> i64 {
    1 + (sku % 2) as i64
}

fn unit_price_fen(sku: usize) -> i64 {
    4_990 + (sku as i64 % 50) * 500
}

fn money(fen: i64) -> Money {
    valid(Money::from_fen(fen))
}

/// Order `i` of run `tag` as the platform sends it, amounts consistent.
fn work(tag: &str, i: usize) -> OrderInput {
    let s = shape(tag, i);
    let goods: i64 = s
        .lines
        .iter()
        .map(|(sku, q)| unit_price_fen(*sku) * q)
        .sum();
    let freight = if goods >= 19_900 { 0 } else { 1_000 };
    let discount = if i % 5 == 0 { 500 } else { 0 };
    let tax = (goods * 91 + 500) / 1_000;
    let b = s.buyer;
    OrderInput {
        order_no: valid(DocumentNo::parse(format!("ORD-{tag}{i:07}"))),
        trade_mode: TradeMode::BondedImport,
        ebp_code: "3301964J31".into(),
        ebc_code: "3301964J3X".into(),
        cop_no: valid(DocumentNo::parse(format!("COP-{tag}{i:07}"))),
        buyer: BuyerInput {
            name: format!("买家{b}"),
            id_number: common::id_number(b),
            phone: format!("138{b:08}"),
        },
        consignee: ConsigneeInput {
            name: format!("收件人{b}"),
            phone: format!("139{b:08}"),
            address: format!(
                "浙江省杭州市西湖区文三路 {} 号 {} 幢 {} 室",
                b % 400 + 1,
                b % 30 + 1,
                b % 900 + 101
            ),
        },
        lines: s
            .lines
            .iter()
            .map(|(sku, q)| OrderLineInput {
                sku: valid(SkuCode::parse(sku_code(*sku))),
                qty: valid(Quantity::new(*q)),
                unit_price: money(unit_price_fen(*sku)),
            })
            .collect(),
        goods_value: money(goods),
        freight: money(freight),
        discount: money(discount),
        tax: money(tax),
        actual_paid: money(goods + freight + tax - discount),
    }
}

/// Who sends orders: the platform's integration account.
fn platform() -> Actor {
    Actor {
        user_id: 2,
        username: "platform".into(),
        roles: vec![Role::Integration],
    }
}

/// The stock a run needs: units demanded per SKU by every order one database
/// takes, and the size of each in-date holding that covers the largest of them
/// with the margin.
struct Stock {
    holding_qty: i64,
    /// Units all orders of a run reserve.
    ordered: i64,
}

impl Stock {
    fn for_run(cfg: &Config) -> Stock {
        let mut demand = [0i64; SKUS];
        for (tag, n) in cfg.runs() {
            for i in 0..n {
                for (sku, q) in shape(tag, i).lines {
                    demand[sku] += q;
                }
            }
        }
        let max = demand.iter().copied().max().unwrap_or(0);
        let holdings = (LOTS_PER_SKU * BINS_PER_LOT) as i64;
        let needed = max * (100 + STOCK_MARGIN_PERCENT as i64) / 100;
        // Odd, so that 2-unit lines split at every other holding boundary.
        let holding_qty = ((needed + holdings - 1) / holdings).max(HOLDING_QTY_MIN) | 1;
        Stock {
            holding_qty,
            ordered: demand.iter().sum(),
        }
    }

    /// Everything received: in-date, expired and quarantined units.
    fn received(&self) -> i64 {
        let in_date = self.holding_qty * (LOTS_PER_SKU * BINS_PER_LOT) as i64;
        (in_date + EXPIRED_QTY + QUARANTINE_QTY) * SKUS as i64
    }
}

/// The bins of SKU `sku`'s in-date lot `lot`: three different sellable bins,
/// scattered so that walk order and expiry order disagree.
fn lot_bin(sku: usize, lot: usize, copy: usize) -> usize {
    (sku * 7 + lot * 11 + copy * 13) % SELLABLE_BINS
}

/// Expiries in 2027–2028, permuted per SKU so that the earliest batch is not
/// always the first received.
fn lot_expiry(sku: usize, lot: usize) -> NaiveDate {
    let base = NaiveDate::from_ymd_opt(2027, 2, 1).expect("a date");
    base + chrono::Days::new((sku % 30 + ((lot * 3 + sku) % LOTS_PER_SKU) * 60) as u64)
}

/// The same master data and stock on every database, through the store's API.
async fn seed(store: &Store, stock: &Stock) -> Result<()> {
    let actor = Actor::system();
    for n in 0..BINS {
        let (zone, kind) = if n < STORAGE_BINS {
            ("A", LocationKind::Storage)
        } else if n < SELLABLE_BINS {
            ("P", LocationKind::Pick)
        } else {
            ("Q", LocationKind::Quarantine)
        };
        let bin = LocationInput {
            code: valid(BinCode::parse(bin_code(n))),
            zone: zone.into(),
            walk_seq: n as i64,
            kind,
            active: true,
        };
        store.create_location(&actor, &bin).await?;
    }
    seed_skus(store, &actor, SKUS).await?;
    let line =
        |sku: usize, bin: usize, batch: &str, expiry: NaiveDate, qty: i64| ReceiptLineInput {
            sku: valid(SkuCode::parse(sku_code(sku))),
            bin: valid(BinCode::parse(bin_code(bin))),
            batch: valid(BatchNo::parse(batch)),
            expiry: Some(expiry),
            qty,
            damaged_qty: 0,
        };
    let mut receipts = Vec::with_capacity(LOTS_PER_SKU + 2);
    for lot in 0..LOTS_PER_SKU {
        let mut lines = Vec::with_capacity(SKUS * BINS_PER_LOT);
        for sku in 0..SKUS {
            for copy in 0..BINS_PER_LOT {
                let (bin, expiry) = (lot_bin(sku, lot, copy), lot_expiry(sku, lot));
                lines.push(line(
                    sku,
                    bin,
                    &format!("L{lot}"),
                    expiry,
                    stock.holding_qty,
                ));
            }
        }
        receipts.push((format!("RCV-LOT{lot}"), lines));
    }
    let expired = NaiveDate::from_ymd_opt(2026, 6, 30).expect("a date");
    let quarantined = NaiveDate::from_ymd_opt(2027, 1, 15).expect("a date");
    receipts.push((
        "RCV-EXPIRED".into(),
        (0..SKUS)
            .map(|sku| line(sku, sku % STORAGE_BINS, "EXP", expired, EXPIRED_QTY))
            .collect(),
    ));
    receipts.push((
        "RCV-QUARANTINE".into(),
        (0..SKUS)
            .map(|sku| {
                let bin = SELLABLE_BINS + sku % QUARANTINE_BINS;
                line(sku, bin, "QC", quarantined, QUARANTINE_QTY)
            })
            .collect(),
    ));
    for (no, lines) in receipts {
        let receipt = ReceiptInput {
            receipt_no: valid(DocumentNo::parse(no.clone())),
            customs_doc_no: valid(DocumentNo::parse(format!("QD-{no}"))),
            supplier: Some("Bench Cosmetics Co.".into()),
            lines,
        };
        store.receive(&actor, &receipt).await?;
    }
    Ok(())
}

// ------------------------------------------------------------------ raw path

/// A FEFO candidate row: sku, location, lot, bin code, walk, batch, expiry,
/// available.
type FefoRow = (i64, i64, i64, String, i64, String, Option<NaiveDate>, i64);
/// A lock row as inserted: id, operation, sku, location, lot, qty.
type LockRow = (i64, i64, i64, i64, i64, i64);

/// One reservation of the raw plan: line index, sku id, and the FEFO row and
/// units it takes.
struct Take {
    line: usize,
    sku_id: i64,
    row: usize,
    qty: i64,
    lock_id: i64,
}

/// The raw path for one sqlx driver. One text for both backends, as in the
/// store: `$lock_holdings` is the only difference (row locks on PostgreSQL;
/// SQLite's single writer already serialises).
macro_rules! raw_path {
    ($module:ident, $db:ty, $lock_holdings:literal) => {
        mod $module {
            use super::*;

            pub type Pool = sqlx::Pool<$db>;
            pub type Tx = sqlx::Transaction<'static, $db>;

            #[derive(Clone)]
            pub struct Raw {
                pool: Pool,
                /// SKU code → (id, may be sold): the master-data cache.
                skus: Arc<HashMap<String, (i64, bool)>>,
            }

            impl Raw {
                pub async fn new(pool: Pool) -> Result<Raw> {
                    let skus: Vec<(String, i64, String)> =
                        sqlx::query_as("SELECT code, id, record_status FROM skus")
                            .fetch_all(&pool)
                            .await?;
                    let skus = skus
                        .into_iter()
                        .map(|(code, id, status)| (code, (id, status != "revoked")))
                        .collect();
                    Ok(Raw { pool, skus: Arc::new(skus) })
                }

                pub async fn close(&self) {
                    self.pool.close().await;
                }

                pub async fn begin(&self) -> Result<Tx> {
                    Ok(self.pool.begin().await?)
                }

                /// One order in its own transaction (without group commit).
                pub async fn create_order(&self, actor: &Actor, input: &OrderInput, ctx: &OrderContext) -> Result<()> {
                    let mut tx = self.pool.begin().await?;
                    self.create_group_in(&mut tx, actor, &[(input, ctx)]).await?;
                    tx.commit().await?;
                    Ok(())
                }

                /// Orders inside `tx` with their statements shared, as the
                /// store's grouped intake writes them: 9 statements whatever
                /// the number of orders, lines and reservations. Each order
                /// is planned on what the ones before it left. The benchmark
                /// sends no order that is refused or repeated, so there is
                /// nothing to set apart: any surprise fails the group.
                pub async fn create_group_in(
                    &self,
                    tx: &mut Tx,
                    actor: &Actor,
                    orders: &[(&OrderInput, &OrderContext)],
                ) -> Result<()> {
                    let at = now();
                    let year_start = orders.first().context("an empty group")?.1.year_start;
                    ensure!(orders.iter().all(|o| o.1.year_start == year_start), "a group across New Year");
                    let mut sku_ids: Vec<Vec<i64>> = Vec::with_capacity(orders.len());
                    for (input, _) in orders {
                        let mut ids = Vec::with_capacity(input.lines.len());
                        for (i, line) in input.lines.iter().enumerate() {
                            let (id, sellable) = *self
                                .skus
                                .get(line.sku.as_str())
                                .with_context(|| format!("line {}: unknown SKU {}", i + 1, line.sku))?;
                            ensure!(sellable, "line {}: SKU {}'s customs record is revoked", i + 1, line.sku);
                            ids.push(id);
                        }
                        sku_ids.push(ids);
                    }

                    // 1. Claim the keys; the benchmark never repeats one.
                    let sql = format!(
                        "INSERT INTO operations (scope, key, request_hash, actor, at) VALUES {}
                         ON CONFLICT (scope, key) DO NOTHING RETURNING key, id",
                        numbered("('order', ?, ?, $1, $2)", orders.len(), 3)
                    );
                    let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(&actor.username).bind(at);
                    for (input, ctx) in orders {
                        q = q.bind(input.order_no.as_str()).bind(&ctx.fingerprint);
                    }
                    let ops: HashMap<String, i64> = q.fetch_all(&mut **tx).await?.into_iter().collect();
                    ensure!(ops.len() == orders.len(), "an order number was already taken");

                    // 2. Every candidate holding of the group's SKUs, locked in
                    //    one fixed order (sku, location, lot): no deadlocks.
                    let mut distinct: Vec<i64> = sku_ids.iter().flatten().copied().collect();
                    distinct.sort_unstable();
                    distinct.dedup();
                    let sql = format!(
                        "SELECT h.sku_id, h.location_id, h.lot_id, l.code, l.walk_seq, lot.batch, lot.expiry, h.available
                         FROM holdings h JOIN locations l ON l.id = h.location_id JOIN lots lot ON lot.id = h.lot_id
                         WHERE h.sku_id IN ({}) AND h.available > 0 AND l.kind IN ('storage', 'pick') AND l.active = $1
                           AND NOT EXISTS (SELECT 1 FROM count_requests c
                                           WHERE c.sku_id = h.sku_id AND c.location_id = h.location_id AND c.closed_at IS NULL)
                         ORDER BY h.sku_id, h.location_id, h.lot_id{}",
                        numbered("?", distinct.len(), 2),
                        $lock_holdings
                    );
                    let mut q = sqlx::query_as::<_, FefoRow>(&sql).bind(true);
                    for id in &distinct {
                        q = q.bind(*id);
                    }
                    let rows = q.fetch_all(&mut **tx).await?;

                    // 3. The buyers' orders this year, for the annual-limit warning.
                    let mut buyers: Vec<&str> = orders.iter().map(|o| o.1.sealed.buyer_ref.as_str()).collect();
                    buyers.sort_unstable();
                    buyers.dedup();
                    let sql = format!(
                        "SELECT buyer_ref, CAST(COALESCE(SUM(actual_paid_fen), 0) AS BIGINT) FROM orders
                         WHERE buyer_ref IN ({}) AND created_at >= $1 AND state <> 'cancelled' GROUP BY buyer_ref",
                        numbered("?", buyers.len(), 2)
                    );
                    let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(year_start);
                    for b in &buyers {
                        q = q.bind(*b);
                    }
                    let mut year: HashMap<String, i64> = q.fetch_all(&mut **tx).await?.into_iter().collect();

                    // The store's rule, order by order in queue order, each
                    // order's lines in SKU-code order.
                    let mut taken = vec![0i64; rows.len()];
                    let mut plans: Vec<(Vec<Take>, Vec<String>)> = Vec::with_capacity(orders.len());
                    for (o, (input, ctx)) in orders.iter().enumerate() {
                        let mut by_sku: Vec<usize> = (0..input.lines.len()).collect();
                        by_sku.sort_by(|a, b| input.lines[*a].sku.cmp(&input.lines[*b].sku));
                        let mut takes: Vec<Take> = Vec::new();
                        for i in by_sku {
                            let line = &input.lines[i];
                            let candidates: Vec<Candidate<usize>> = rows
                                .iter()
                                .enumerate()
                                .filter(|(_, r)| r.0 == sku_ids[o][i])
                                .map(|(n, r)| Candidate {
                                    key: n,
                                    expiry: r.6,
                                    walk_seq: r.4,
                                    bin: r.3.clone(),
                                    available: r.7 - taken[n],
                                })
                                .collect();
                            let plan = fefo::allocate(&candidates, line.qty.get(), ctx.today).map_err(|s| {
                                anyhow::anyhow!(
                                    "order {} line {}: SKU {} is short: {} requested, {} usable",
                                    input.order_no,
                                    i + 1,
                                    line.sku,
                                    s.requested,
                                    s.usable
                                )
                            })?;
                            for t in plan {
                                taken[t.key] += t.qty;
                                takes.push(Take { line: i, sku_id: sku_ids[o][i], row: t.key, qty: t.qty, lock_id: 0 });
                            }
                        }
                        let seen = year.entry(ctx.sealed.buyer_ref.clone()).or_insert(0);
                        let warnings: Vec<String> =
                            annual_limit_warning(Money::from_fen(*seen)?, input.actual_paid).into_iter().collect();
                        *seen += input.actual_paid.fen();
                        plans.push((takes, warnings));
                    }

                    // 4. The orders.
                    let sql = format!(
                        "INSERT INTO orders (order_no, state, trade_mode, ebp_code, ebc_code, cop_no, buyer_name, buyer_id_sealed,
                             buyer_id_masked, buyer_ref, buyer_phone_sealed, buyer_phone_masked, consignee_name,
                             consignee_phone_sealed, consignee_phone_masked, consignee_address, goods_value_fen, freight_fen,
                             discount_fen, tax_fen, actual_paid_fen, warnings, created_by, created_at, state_at)
                         VALUES {} RETURNING order_no, id",
                        numbered(
                            "(?, 'locked', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, $1, $2, $2)",
                            orders.len(),
                            3
                        )
                    );
                    let mut q = sqlx::query_as::<_, (String, i64)>(&sql).bind(&actor.username).bind(at);
                    for ((input, ctx), (_, warnings)) in orders.iter().zip(&plans) {
                        let s = &ctx.sealed;
                        q = q
                            .bind(input.order_no.as_str())
                            .bind(input.trade_mode.code())
                            .bind(input.ebp_code.trim())
                            .bind(input.ebc_code.trim())
                            .bind(input.cop_no.as_str())
                            .bind(input.buyer.name.trim())
                            .bind(&s.buyer_id_sealed)
                            .bind(&s.buyer_id_masked)
                            .bind(&s.buyer_ref)
                            .bind(&s.buyer_phone_sealed)
                            .bind(&s.buyer_phone_masked)
                            .bind(input.consignee.name.trim())
                            .bind(&s.consignee_phone_sealed)
                            .bind(&s.consignee_phone_masked)
                            .bind(input.consignee.address.trim())
                            .bind(input.goods_value.fen())
                            .bind(input.freight.fen())
                            .bind(input.discount.fen())
                            .bind(input.tax.fen())
                            .bind(input.actual_paid.fen())
                            .bind(serde_json::to_string(warnings)?);
                    }
                    let ids: HashMap<String, i64> = q.fetch_all(&mut **tx).await?.into_iter().collect();
                    let order_id = |input: &OrderInput| ids.get(input.order_no.as_str()).copied().context("an order missing from RETURNING");
                    let op_id = |input: &OrderInput| ops.get(input.order_no.as_str()).copied().context("a key missing from RETURNING");

                    // 5. Their lines.
                    let line_count: usize = orders.iter().map(|o| o.0.lines.len()).sum();
                    let sql = format!(
                        "INSERT INTO order_lines (order_id, line_no, sku_id, qty, unit_price_fen) VALUES {}",
                        numbered("(?, ?, ?, ?, ?)", line_count, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for (o, (input, _)) in orders.iter().enumerate() {
                        let id = order_id(input)?;
                        for (i, line) in input.lines.iter().enumerate() {
                            q = q.bind(id).bind(i as i64 + 1).bind(sku_ids[o][i]).bind(line.qty.get()).bind(line.unit_price.fen());
                        }
                    }
                    q.execute(&mut **tx).await?;

                    // 6. The reservations. RETURNING's row order is not
                    //    promised, so each row is matched back by what it holds.
                    let take_count: usize = plans.iter().map(|p| p.0.len()).sum();
                    let sql = format!(
                        "INSERT INTO locks (operation_id, reference, sku_id, location_id, lot_id, qty, state, created_at)
                         VALUES {} RETURNING id, operation_id, sku_id, location_id, lot_id, qty",
                        numbered("(?, ?, ?, ?, ?, ?, 'held', $1)", take_count, 2)
                    );
                    let mut q = sqlx::query_as::<_, LockRow>(&sql).bind(at);
                    for ((input, _), (takes, _)) in orders.iter().zip(&plans) {
                        let op = op_id(input)?;
                        for t in takes {
                            let r = &rows[t.row];
                            q = q.bind(op).bind(input.order_no.as_str()).bind(t.sku_id).bind(r.1).bind(r.2).bind(t.qty);
                        }
                    }
                    let mut locks = q.fetch_all(&mut **tx).await?;
                    ensure!(locks.len() == take_count, "{} locks inserted for {take_count} takes", locks.len());
                    for ((input, _), (takes, _)) in orders.iter().zip(plans.iter_mut()) {
                        let op = op_id(input)?;
                        for t in takes.iter_mut() {
                            let r = &rows[t.row];
                            let pos = locks
                                .iter()
                                .position(|k| (k.1, k.2, k.3, k.4, k.5) == (op, t.sku_id, r.1, r.2, t.qty))
                                .context("an inserted lock is missing from RETURNING")?;
                            t.lock_id = locks.swap_remove(pos).0;
                        }
                    }

                    // 7. The lock movements; the trigger moves the balances and
                    //    the holdings' CHECKs are the backstop against overselling.
                    let sql = format!(
                        "INSERT INTO movements (operation_id, kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket,
                             doc_type, doc_no, actor, lock_id, at)
                         VALUES {}",
                        numbered("(?, 'lock', ?, ?, ?, ?, 'available', 'locked', 'order', ?, $1, ?, $2)", take_count, 3)
                    );
                    let mut q = sqlx::query(&sql).bind(&actor.username).bind(at);
                    for ((input, _), (takes, _)) in orders.iter().zip(&plans) {
                        let op = op_id(input)?;
                        for t in takes {
                            let r = &rows[t.row];
                            q = q.bind(op).bind(t.sku_id).bind(r.1).bind(r.2).bind(t.qty).bind(input.order_no.as_str()).bind(t.lock_id);
                        }
                    }
                    q.execute(&mut **tx).await?;

                    // 8. Which reservation serves which line.
                    let sql = format!(
                        "INSERT INTO order_allocations (lock_id, order_id, line_no) VALUES {}",
                        numbered("(?, ?, ?)", take_count, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for ((input, _), (takes, _)) in orders.iter().zip(&plans) {
                        let id = order_id(input)?;
                        for t in takes {
                            q = q.bind(t.lock_id).bind(id).bind(t.line as i64 + 1);
                        }
                    }
                    q.execute(&mut **tx).await?;

                    // 9. The answers, built from what was written.
                    let sql = format!(
                        "UPDATE operations SET response = v.column2 FROM (VALUES {}) AS v WHERE operations.id = v.column1",
                        numbered("(CAST(? AS BIGINT), ?)", orders.len(), 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for ((input, ctx), (takes, warnings)) in orders.iter().zip(plans) {
                        let view = order_view(input, ctx, &rows, &takes, warnings, at);
                        q = q.bind(op_id(input)?).bind(serde_json::to_string(&view)?);
                    }
                    q.execute(&mut **tx).await?;
                    Ok(())
                }
            }

            /// A SQLite or PostgreSQL pool's view of a finished run.
            pub async fn contents(pool: &Pool) -> Result<(Vec<i64>, BTreeMap<String, OrderView>)> {
                let mut counts = Vec::with_capacity(LEDGER_COUNTS.len());
                for (_, sql) in LEDGER_COUNTS {
                    counts.push(sqlx::query_scalar(sql).fetch_one(pool).await?);
                }
                let answers: Vec<(String, String)> =
                    sqlx::query_as("SELECT key, response FROM operations WHERE scope = 'order' AND response IS NOT NULL")
                        .fetch_all(pool)
                        .await?;
                let mut out = BTreeMap::new();
                for (key, response) in answers {
                    let view: OrderView = serde_json::from_str(&response)
                        .with_context(|| format!("the stored answer of order {key} is not an OrderView"))?;
                    out.insert(key, view);
                }
                Ok((counts, out))
            }

            /// One order handed to the raw group-commit writer, with the way back.
            type Job = (OrderInput, OrderContext, tokio::sync::oneshot::Sender<Result<()>>);

            /// The raw path grouped the way the store's order intake groups:
            /// callers queue their orders, one writer task takes whatever is
            /// queued (at most `BATCH_MAX`, never waiting for more), writes
            /// them with shared statements in one savepoint, commits and then
            /// answers.
            #[derive(Clone)]
            pub struct Batched {
                queue: tokio::sync::mpsc::Sender<Job>,
            }

            impl Batched {
                pub fn start(raw: Raw) -> Batched {
                    let (queue, rx) = tokio::sync::mpsc::channel(1_024);
                    tokio::spawn(Batched::writer(raw, rx));
                    Batched { queue }
                }

                pub async fn create_order(&self, input: &OrderInput, ctx: &OrderContext) -> Result<()> {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    self.queue
                        .send((input.clone(), ctx.clone(), reply))
                        .await
                        .map_err(|_| anyhow::anyhow!("the raw writer stopped"))?;
                    answer.await.context("the raw writer stopped")?
                }

                async fn writer(raw: Raw, mut rx: tokio::sync::mpsc::Receiver<Job>) {
                    let actor = platform();
                    while let Some(first) = rx.recv().await {
                        let mut jobs = vec![first];
                        while jobs.len() < BATCH_MAX {
                            match rx.try_recv() {
                                Ok(job) => jobs.push(job),
                                Err(_) => break,
                            }
                        }
                        let outcome = async {
                            let mut tx = raw.begin().await?;
                            // The whole group in one savepoint, as the store's
                            // intake runs its group as one unit of its writer.
                            sqlx::Executor::execute(&mut *tx, "SAVEPOINT unit").await?;
                            let group: Vec<(&OrderInput, &OrderContext)> =
                                jobs.iter().map(|(input, ctx, _)| (input, ctx)).collect();
                            raw.create_group_in(&mut tx, &actor, &group).await?;
                            sqlx::Executor::execute(&mut *tx, "RELEASE SAVEPOINT unit").await?;
                            tx.commit().await?;
                            anyhow::Ok(jobs.iter().map(|_| Ok(())).collect::<Vec<Result<()>>>())
                        }
                        .await;
                        match outcome {
                            Ok(results) => {
                                for ((_, _, reply), r) in jobs.into_iter().zip(results) {
                                    let _ = reply.send(r);
                                }
                            }
                            Err(e) => {
                                let why = format!("{e:#}");
                                for (_, _, reply) in jobs {
                                    let _ = reply.send(Err(anyhow::anyhow!("batch not committed: {why}")));
                                }
                            }
                        }
                    }
                }
            }
        }
    };
}

raw_path!(raw_sqlite, sqlx::Sqlite, "");
raw_path!(raw_pg, sqlx::Postgres, " FOR UPDATE OF h");

/// The answer the store gives, from the raw path's plan instead of reading
/// the rows back: lines by number, each line's reservations earliest expiry
/// first (no expiry last), then by lock id.
fn order_view(
    input: &OrderInput,
    ctx: &OrderContext,
    rows: &[FefoRow],
    takes: &[Take],
    warnings: Vec<String>,
    at: DateTime<Utc>,
) -> OrderView {
    let allocations = takes
        .iter()
        .map(|t| {
            let r = &rows[t.row];
            let a = AllocationView {
                lock_id: t.lock_id,
                bin: r.3.clone(),
                batch: r.5.clone(),
                expiry: r.6,
                qty: t.qty,
                state: LockState::Held,
            };
            (t.line, a)
        })
        .collect();
    OrderView::taken(input, ctx, allocations, warnings, at)
}

// ------------------------------------------------------------------- driving

#[derive(Clone)]
enum Target {
    Store(Store),
    RawSqlite(raw_sqlite::Raw),
    RawPg(raw_pg::Raw),
    /// The raw path through a group-commit writer like the store's.
    RawSqliteBatched(raw_sqlite::Batched),
    RawPgBatched(raw_pg::Batched),
}

impl Target {
    /// One order as the HTTP handler takes it: prepared (checked and sealed),
    /// then written.
    async fn take(&self, actor: &Actor, pii: &PiiCipher, input: &OrderInput) -> Result<()> {
        let ctx = bondgate::orders::prepare(input, pii, Utc::now())?;
        match self {
            Target::Store(s) => {
                s.create_order(actor, input, &ctx).await?;
            }
            Target::RawSqlite(r) => r.create_order(actor, input, &ctx).await?,
            Target::RawPg(r) => r.create_order(actor, input, &ctx).await?,
            Target::RawSqliteBatched(r) => r.create_order(input, &ctx).await?,
            Target::RawPgBatched(r) => r.create_order(input, &ctx).await?,
        }
        Ok(())
    }
}

/// A process's command name and CPU time (user + system, clock ticks of
/// 10 ms) from its `/proc/<pid>/stat` line.
fn stat_cpu(stat: &str) -> Option<(&str, Duration)> {
    const TICK: Duration = Duration::from_millis(10);
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    // After the name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: u32 = fields.get(11)?.parse().ok()?;
    let stime: u32 = fields.get(12)?.parse().ok()?;
    Some((comm, TICK * (utime + stime)))
}

/// CPU time this process has used so far, all threads (the tokio workers,
/// sqlx's SQLite worker threads and SQLite itself). Linux only; read around
/// whole rounds, the unit being 10 ms.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    stat_cpu(&stat).map(|(_, cpu)| cpu)
}

/// CPU time of the PostgreSQL backends connected to `database` (found by
/// their process title, `postgres: .. user database host(port) state`).
/// A backend that exits during a round would be missed; the pools keep
/// theirs open. Server-wide work (WAL writer, checkpointer) is not counted.
/// Linux, with the server on this machine, only.
fn pg_backend_cpu(database: &str) -> Option<Duration> {
    let needle = format!(" {database} ");
    let mut total = Duration::ZERO;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(title) = std::fs::read(entry.path().join("cmdline")) else {
            continue; // exited meanwhile
        };
        if !String::from_utf8_lossy(&title).contains(&needle) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(("postgres", cpu)) = stat_cpu(&stat) {
            total += cpu;
            seen = true;
        }
    }
    seen.then_some(total)
}

/// CPU used between two readings, where both could be taken.
fn cpu_since(before: Option<Duration>, now: Option<Duration>) -> Option<Duration> {
    now.zip(before).map(|(a, b)| a.saturating_sub(b))
}

struct Measured {
    orders: usize,
    elapsed: Duration,
    /// This process's CPU time over the run, if the platform tells.
    cpu: Option<Duration>,
    /// CPU time of the PostgreSQL backends serving the run (PostgreSQL only).
    server_cpu: Option<Duration>,
    /// Per-order latency; sorted once all rounds are in.
    latencies_us: Vec<u64>,
}

impl Measured {
    fn empty() -> Measured {
        Measured {
            orders: 0,
            elapsed: Duration::ZERO,
            cpu: Some(Duration::ZERO),
            server_cpu: Some(Duration::ZERO),
            latencies_us: Vec::new(),
        }
    }
    fn add(&mut self, m: Measured) {
        self.orders += m.orders;
        self.elapsed += m.elapsed;
        self.cpu = self.cpu.zip(m.cpu).map(|(a, b)| a + b);
        self.server_cpu = self.server_cpu.zip(m.server_cpu).map(|(a, b)| a + b);
        self.latencies_us.extend(m.latencies_us);
    }
    fn per_s(&self) -> u64 {
        per_second(self.orders, self.elapsed)
    }
    /// CPU per order, in µs, as text ("-" where unknown).
    fn per_order(&self, cpu: Option<Duration>) -> String {
        cpu.map_or_else(
            || "-".into(),
            |c| (c.as_micros() / self.orders.max(1) as u128).to_string(),
        )
    }
    fn percentile_us(&self, p: usize) -> u64 {
        percentile_us(&self.latencies_us, p)
    }
}

/// Runs orders `range` of run `tag` on `tasks` concurrent tasks, each taking
/// the next index until none is left. `pg_database`: the PostgreSQL database
/// whose backends' CPU time to count.
async fn drive(
    target: &Target,
    pii: &PiiCipher,
    tag: &'static str,
    range: std::ops::Range<usize>,
    (tasks, pg_database): (usize, Option<&str>),
) -> Result<Measured> {
    let (first, end) = (range.start, range.end);
    let next = Arc::new(AtomicUsize::new(first));
    let server_before = pg_database.and_then(pg_backend_cpu);
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (target, pii, next) = (target.clone(), pii.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let actor = platform();
            let mut latencies_us = Vec::with_capacity((end - first) / tasks + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return Ok(latencies_us);
                }
                let input = work(tag, i);
                let t0 = Instant::now();
                if let Err(e) = target.take(&actor, &pii, &input).await {
                    next.store(end, Ordering::Relaxed); // stop the other tasks
                    return Err(e.context(format!("order {tag}{i}")));
                }
                latencies_us.push(t0.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut latencies_us = Vec::with_capacity(end - first);
    for h in handles {
        latencies_us.extend(h.await.context("benchmark task panicked")??);
    }
    let elapsed = started.elapsed();
    let cpu = cpu_since(cpu_before, process_cpu());
    Ok(Measured {
        orders: end - first,
        elapsed,
        cpu,
        server_cpu: cpu_since(server_before, pg_database.and_then(pg_backend_cpu)),
        latencies_us,
    })
}

/// Warms both paths up at the measured concurrency (that opens and prepares
/// every pooled connection), then measures them in alternating rounds
/// (store, raw, raw, store, ...): whatever else the machine is doing, or a
/// WAL checkpoint, falls on both paths alike instead of on whichever ran second.
async fn compare(
    cfg: &Config,
    pii: &PiiCipher,
    [store, raw]: [(&Target, Option<&str>); 2],
    tasks: usize,
) -> Result<(Measured, Measured)> {
    drive(store.0, pii, "W", 0..cfg.warmup, (tasks, store.1))
        .await
        .context("store path warm-up")?;
    drive(raw.0, pii, "W", 0..cfg.warmup, (tasks, raw.1))
        .await
        .context("raw path warm-up")?;
    let mut totals = [Measured::empty(), Measured::empty()];
    let rounds = ROUNDS.min(cfg.orders);
    for round in 0..rounds {
        let range = cfg.orders * round / rounds..cfg.orders * (round + 1) / rounds;
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let ((target, database), name) = [(store, "store"), (raw, "raw")][which];
            let m = drive(target, pii, "M", range.clone(), (tasks, database))
                .await
                .with_context(|| format!("{name} path"))?;
            totals[which].add(m);
        }
    }
    let [mut store_run, mut raw_run] = totals;
    store_run.latencies_us.sort_unstable();
    raw_run.latencies_us.sort_unstable();
    Ok((store_run, raw_run))
}

/// The raw path with `group` orders per transaction, one writer: an order's
/// latency runs from its own start to its group's commit.
async fn drive_grouped(
    raw: &raw_sqlite::Raw,
    pii: &PiiCipher,
    tag: &'static str,
    range: std::ops::Range<usize>,
    group: usize,
) -> Result<Measured> {
    let actor = platform();
    let cpu_before = process_cpu();
    let started = Instant::now();
    let mut latencies_us = Vec::with_capacity(range.len());
    let mut first = range.start;
    while first < range.end {
        let end = (first + group).min(range.end);
        let mut starts = Vec::with_capacity(end - first);
        let mut orders = Vec::with_capacity(end - first);
        for i in first..end {
            let input = work(tag, i);
            starts.push(Instant::now());
            let ctx = bondgate::orders::prepare(&input, pii, Utc::now())?;
            orders.push((input, ctx));
        }
        let group: Vec<(&OrderInput, &OrderContext)> = orders.iter().map(|(i, c)| (i, c)).collect();
        let mut tx = raw.begin().await?;
        raw.create_group_in(&mut tx, &actor, &group)
            .await
            .with_context(|| format!("orders {tag}{first}..{tag}{end}"))?;
        tx.commit().await?;
        latencies_us.extend(starts.iter().map(|t| t.elapsed().as_micros() as u64));
        first = end;
    }
    latencies_us.sort_unstable();
    Ok(Measured {
        orders: range.len(),
        elapsed: started.elapsed(),
        cpu: cpu_since(cpu_before, process_cpu()),
        server_cpu: None,
        latencies_us,
    })
}

/// What a database holds after a run, checked by the store itself.
struct Contents {
    counts: Vec<i64>,
    available: i64,
    locked: i64,
    answers: BTreeMap<String, OrderView>,
}

impl Contents {
    /// Lines and reservations per order, from the stored answers.
    fn shape(&self) -> (f64, f64) {
        let n = self.answers.len().max(1) as f64;
        let lines: usize = self.answers.values().map(|v| v.lines.len()).sum();
        let takes: usize = self
            .answers
            .values()
            .flat_map(|v| &v.lines)
            .map(|l| l.allocations.len())
            .sum();
        (lines as f64 / n, takes as f64 / n)
    }
}

/// Passes `Store::integrity`, holds the stock the run leaves, answered every
/// order; then the counts and answers for the comparison.
async fn contents(
    cfg: &Config,
    stock: &Stock,
    url: &str,
    opts: &StoreOptions,
    path: &str,
) -> Result<Contents> {
    let totals = integrity_totals(url, opts, path).await?;
    ensure!(
        totals.locked == stock.ordered && totals.available + totals.locked == stock.received(),
        "{path} database holds {} available and {} locked; expected {} locked of {} received",
        totals.available,
        totals.locked,
        stock.ordered,
        stock.received()
    );
    let (counts, answers) = if url.starts_with("sqlite:") {
        let pool = raw_sqlite::Pool::connect(url).await?;
        let c = raw_sqlite::contents(&pool).await?;
        pool.close().await;
        c
    } else {
        let pool = pg_pool(url, opts).await?;
        let c = raw_pg::contents(&pool).await?;
        pool.close().await;
        c
    };
    let orders = cfg.runs().iter().map(|(_, n)| n).sum::<usize>();
    ensure!(
        answers.len() == orders,
        "{path} database answered {} orders of {orders}",
        answers.len()
    );
    Ok(Contents {
        counts,
        available: totals.available,
        locked: totals.locked,
        answers,
    })
}

/// The answer with what may differ between two correct runs blanked: the
/// time, and where the orders of concurrent tasks interleave differently (on
/// PostgreSQL), which holdings and locks served a line. The units reserved per
/// line must still add up.
fn normalised(view: &OrderView, exact: bool) -> Result<OrderView> {
    let mut v = view.clone();
    v.created_at = DateTime::UNIX_EPOCH;
    for line in &mut v.lines {
        let reserved: i64 = line.allocations.iter().map(|a| a.qty).sum();
        ensure!(
            reserved == line.qty,
            "order {} line {} reserves {reserved} of {} units",
            v.order_no,
            line.line_no,
            line.qty
        );
        if !exact {
            line.allocations.clear();
        }
    }
    Ok(v)
}

/// Two databases that took the same orders must hold the same: otherwise the
/// two paths did not do the same work.
fn same(what: &str, a: &Contents, b: &Contents, exact: bool) -> Result<()> {
    if a.counts != b.counts {
        let diff = count_differences(&LEDGER_COUNTS, &a.counts, &b.counts, |table, x, y| {
            format!("{table}: {x} vs {y}")
        });
        bail!("{what}: different row counts: {}", diff.join("; "));
    }
    ensure!(
        (a.available, a.locked) == (b.available, b.locked),
        "{what}: different stock"
    );
    for (key, va) in &a.answers {
        let vb = b
            .answers
            .get(key)
            .with_context(|| format!("{what}: order {key} answered on one side only"))?;
        ensure!(
            normalised(va, exact)? == normalised(vb, exact)?,
            "{what}: order {key} answered differently:\n{va:?}\n{vb:?}"
        );
    }
    Ok(())
}

struct Row {
    backend: String,
    tasks: usize,
    store: Measured,
    raw: Measured,
    /// Lines and reservations per order.
    shape: (f64, f64),
}

impl Row {
    fn ratio_percent(&self) -> u64 {
        self.store.per_s() * 100 / self.raw.per_s().max(1)
    }
}

struct GroupRow {
    group: usize,
    raw: Measured,
}

// -------------------------------------------------------------------- SQLite

/// A fresh SQLite database with the schema, master data and stock, created by
/// a store that then steps aside.
async fn sqlite_fresh(url: &str, opts: &StoreOptions, stock: &Stock) -> Result<()> {
    let store = Store::connect(url, opts).await?;
    seed(&store, stock).await?;
    store.close().await;
    Ok(())
}

async fn bench_sqlite(
    cfg: &Config,
    pii: &PiiCipher,
    stock: &Stock,
    sync_full: bool,
    groups: &[usize],
) -> Result<(Row, Vec<GroupRow>)> {
    let dir = tempfile::tempdir()?;
    let grouped = cfg.sqlite_group_commit;
    let opts = StoreOptions {
        sqlite_sync_full: sync_full,
        group_commit: Some(grouped),
        ..StoreOptions::default()
    };
    let tasks = if grouped {
        cfg.sqlite_tasks
    } else {
        SQLITE_TASKS
    };
    let file = [dir.path().join("store.db"), dir.path().join("raw.db")];
    let urls = file.clone().map(|f| format!("sqlite://{}", f.display()));

    let store = Store::connect(&urls[0], &opts).await?;
    seed(&store, stock).await?;
    // The raw path is its file's only writer, as the store is for its own.
    sqlite_fresh(&urls[1], &opts, stock).await?;
    let raw = raw_sqlite::Raw::new(sqlite_pool(&file[1], sync_full).await?).await?;
    // The store commits through its group-commit writer (on by default on
    // SQLite); the raw path through the same kind of writer. Without group
    // commit, one task and one commit per order on both paths.
    let raw_target = if grouped {
        Target::RawSqliteBatched(raw_sqlite::Batched::start(raw.clone()))
    } else {
        Target::RawSqlite(raw.clone())
    };
    let runs = compare(
        cfg,
        pii,
        [(&Target::Store(store.clone()), None), (&raw_target, None)],
        tasks,
    )
    .await;
    store.close().await;
    raw.close().await;
    let (store_run, raw_run) = runs?;
    let backend = if grouped {
        format!("{} group", sqlite_backend(sync_full))
    } else {
        sqlite_backend(sync_full)
    };
    let by_store = contents(cfg, stock, &urls[0], &opts, "store").await?;
    let by_raw = contents(cfg, stock, &urls[1], &opts, "raw").await?;
    // Concurrent tasks reach the two writers in different orders, so FEFO may
    // serve a line from other holdings: compare all but those. One task
    // gives the same order on both: compare to the lock id.
    same(
        &format!("{backend} store vs raw"),
        &by_store,
        &by_raw,
        !grouped,
    )?;

    let mut group_rows = Vec::with_capacity(groups.len());
    for &group in groups {
        let f = dir.path().join(format!("group{group}.db"));
        let url = format!("sqlite://{}", f.display());
        sqlite_fresh(&url, &opts, stock).await?;
        let raw = raw_sqlite::Raw::new(sqlite_pool(&f, sync_full).await?).await?;
        let run = async {
            drive_grouped(&raw, pii, "W", 0..cfg.warmup, group)
                .await
                .context("group-commit warm-up")?;
            drive_grouped(&raw, pii, "M", 0..cfg.orders, group).await
        }
        .await;
        raw.close().await;
        let run = run?;
        let by_group = contents(cfg, stock, &url, &opts, "group-commit").await?;
        same(
            &format!("{backend} store vs raw with {group} per commit"),
            &by_store,
            &by_group,
            !grouped,
        )?;
        group_rows.push(GroupRow { group, raw: run });
    }
    let row = Row {
        backend,
        tasks,
        store: store_run,
        raw: raw_run,
        shape: by_store.shape(),
    };
    Ok((row, group_rows))
}

// ---------------------------------------------------------------- PostgreSQL

async fn bench_pg(
    cfg: &Config,
    pii: &PiiCipher,
    stock: &Stock,
    admin: &mut PgConnection,
) -> Result<Row> {
    let databases = scratch_names("bondgate_bench_orders");
    let urls = databases.clone().map(|db| with_database(&cfg.pg_url, &db));
    // A database created before one that failed is dropped too.
    let result = match create_databases(admin, &databases).await {
        Ok(()) => bench_pg_on(cfg, pii, stock, &databases, &urls).await,
        Err(e) => Err(e),
    };
    drop_databases(admin, &databases).await;
    result
}

async fn bench_pg_on(
    cfg: &Config,
    pii: &PiiCipher,
    stock: &Stock,
    databases: &[String; 2],
    urls: &[String; 2],
) -> Result<Row> {
    let opts = StoreOptions {
        group_commit: cfg.pg_group_commit,
        ..StoreOptions::default()
    };
    let grouped = bondgate::store::GroupCommit::resolve(
        cfg.pg_group_commit,
        bondgate::store::GROUP_COMMIT_POSTGRES,
    )
    .intake;
    // Queued orders are taken together: with 8 callers a group is at most
    // 8, so the grouped row runs as many callers as SQLite's unless told.
    let tasks = match std::env::var("BENCH_PG_TASKS") {
        Err(_) if grouped => cfg.sqlite_tasks,
        _ => cfg.pg_tasks,
    };

    let store = Store::connect(&urls[0], &opts).await?;
    seed(&store, stock).await?;
    let schema = Store::connect(&urls[1], &opts).await?;
    seed(&schema, stock).await?;
    schema.close().await;
    let raw = raw_pg::Raw::new(pg_pool(&urls[1], &opts).await?).await?;
    let raw_target = if grouped {
        Target::RawPgBatched(raw_pg::Batched::start(raw.clone()))
    } else {
        Target::RawPg(raw.clone())
    };
    let runs = compare(
        cfg,
        pii,
        [
            (&Target::Store(store.clone()), Some(databases[0].as_str())),
            (&raw_target, Some(databases[1].as_str())),
        ],
        tasks,
    )
    .await;
    store.close().await;
    raw.close().await;
    let (store_run, raw_run) = runs?;
    let by_store = contents(cfg, stock, &urls[0], &opts, "store").await?;
    let by_raw = contents(cfg, stock, &urls[1], &opts, "raw").await?;
    // Concurrent tasks interleave differently on the two databases, so FEFO
    // may serve a line from other holdings: compare all but those.
    same("postgres store vs raw", &by_store, &by_raw, false)?;
    Ok(Row {
        backend: if grouped {
            "postgres group".into()
        } else {
            "postgres".into()
        },
        tasks,
        store: store_run,
        raw: raw_run,
        shape: by_store.shape(),
    })
}

// ---------------------------------------------------------------------- main

/// What `prepare` alone costs per order (checks, three AES-GCM seals, two
/// HMACs, the request's canonical JSON), on one thread: it is part of every
/// measured order on both paths.
fn prepare_cost(cfg: &Config, pii: &PiiCipher) -> Result<Duration> {
    let inputs: Vec<OrderInput> = (0..cfg.orders).map(|i| work("M", i)).collect();
    let started = Instant::now();
    for input in &inputs {
        std::hint::black_box(bondgate::orders::prepare(input, pii, Utc::now())?);
    }
    Ok(started.elapsed() / cfg.orders as u32)
}

/// Round trips, from the code, whatever the order's lines and reservations:
/// the store makes 12 per order taken alone (`BEGIN`, claim, SKUs, FEFO
/// select, the buyer's year, orders, lines, locks, lock movements,
/// allocations, answer, `COMMIT`); with group commit the same 12 (a
/// savepoint and its release instead of `BEGIN` and `COMMIT`) per *group*
/// of the orders queued together. The raw path makes 11 the same way (9
/// statements, its SKUs being cached, plus `BEGIN` and `COMMIT` or a
/// savepoint and its release), per order alone or per group when batched.
const STORE_ROUND_TRIPS: u32 = 12;
const RAW_ROUND_TRIPS: u32 = 11;

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn print_table(rows: &[Row], groups: &[GroupRow]) {
    let line = |backend: &str, path: &str, tasks: usize, m: &Measured, ratio: String| {
        println!(
            "{:<22} {:<6} {:>5} {:>7} {:>9} {:>8} {:>8} {:>10} {:>11} {:>11}",
            backend,
            path,
            tasks,
            m.orders,
            m.per_s(),
            m.percentile_us(50),
            m.percentile_us(99),
            ratio,
            m.per_order(m.cpu),
            m.per_order(m.server_cpu)
        );
    };
    println!();
    println!(
        "{:<22} {:<6} {:>5} {:>7} {:>9} {:>8} {:>8} {:>10} {:>11} {:>11}",
        "backend",
        "path",
        "tasks",
        "orders",
        "orders/s",
        "p50 µs",
        "p99 µs",
        "store/raw",
        "client CPU",
        "server CPU"
    );
    for row in rows {
        line(
            &row.backend,
            "store",
            row.tasks,
            &row.store,
            format!("{} %", row.ratio_percent()),
        );
        line(&row.backend, "raw", row.tasks, &row.raw, String::new());
    }
    if !groups.is_empty() {
        println!();
        println!(
            "Raw path only, SQLite sync=FULL, fixed groups from one task, no savepoints (the upper bound for a batching writer, NOT the store):"
        );
        for g in groups {
            let backend = format!("sqlite FULL {}/commit", g.group);
            line(&backend, "raw", 1, &g.raw, String::new());
        }
    }
    println!();
    println!(
        "CPU is µs per order: client = this process (tokio, sqlx, and SQLite, which runs in-process); \
         server = the PostgreSQL backends connected to that path's database"
    );
    for row in rows {
        println!(
            "{}: {:.2} lines and {:.2} reservations per order; round trips: store {STORE_ROUND_TRIPS}, raw {RAW_ROUND_TRIPS}, per {}",
            row.backend,
            row.shape.0,
            row.shape.1,
            if row.backend.contains("group") { "group of the orders queued together" } else { "order" }
        );
    }
    for row in rows {
        let per_s = row.store.per_s();
        println!(
            "{}: store {per_s} orders/s (target ≥ {TARGET_ORDERS_PER_S}): {}; store at {} % of raw (target ≥ {TARGET_PERCENT} %): {}",
            row.backend,
            verdict(per_s >= TARGET_ORDERS_PER_S),
            row.ratio_percent(),
            verdict(row.ratio_percent() >= TARGET_PERCENT)
        );
    }
}

async fn run() -> Result<()> {
    let cfg = Config::from_env()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let stock = Stock::for_run(&cfg);
    let pii = PiiCipher::from_key(&rand::random::<[u8; 32]>());
    println!(
        "orders bench: intake with FEFO lock, 1–{LINES_PER_ORDER_MAX} lines of 1–2 units each; \
         {} measured after {} warm-up; {SKUS} SKUs over {BINS} bins; {} units per in-date holding \
         ({LOTS_PER_SKU} batches × {BINS_PER_LOT} bins per SKU, plus an expired and a quarantined batch); {cores} cores",
        cfg.orders, cfg.warmup, stock.holding_qty
    );
    println!("SQLite {}, WAL, one writer", sqlite_version().await?);
    let prepare = prepare_cost(&cfg, &pii)?;
    println!(
        "prepare (checks + 3 AES-GCM seals + 2 HMACs), included in every order on both paths: {} µs per order",
        prepare.as_micros()
    );

    // Ask PostgreSQL first, so CI fails before spending minutes on SQLite.
    let mut admin = pg_admin(&cfg.pg_url, cfg.ci).await?;

    let mut rows = Vec::with_capacity(3);
    let mut group_rows = Vec::new();
    for sync_full in [true, false] {
        let name = if sync_full {
            "sqlite-full"
        } else {
            "sqlite-normal"
        };
        if !cfg.backends.iter().any(|b| b == name) {
            continue;
        }
        let started = Instant::now();
        let groups: &[usize] = if sync_full { &GROUP_SIZES } else { &[] };
        let (row, g) = bench_sqlite(&cfg, &pii, &stock, sync_full, groups).await?;
        println!("{} done in {} s", row.backend, started.elapsed().as_secs());
        rows.push(row);
        group_rows.extend(g);
    }
    if let Some(conn) = admin
        .as_mut()
        .filter(|_| cfg.backends.iter().any(|b| b == "postgres"))
    {
        let started = Instant::now();
        let row = bench_pg(&cfg, &pii, &stock, conn).await?;
        println!("{} done in {} s", row.backend, started.elapsed().as_secs());
        rows.push(row);
    }
    print_table(&rows, &group_rows);
    if admin.is_none() {
        println!("postgres: SKIPPED, server unreachable at {}", cfg.pg_url);
    }
    Ok(())
}

fn main() -> ExitCode {
    main_with("orders", run)
}
