//! Receive + lock transactions per second through the store, on SQLite and on
//! PostgreSQL, beside the same writes done as hand-written SQL in the same run
//! (target: the store reaches at least 50 % of raw).
//!
//! One transaction is what a receiving clerk and then an order do to one SKU:
//! `Store::receive` of one line (10 units of a batch with an expiry), then
//! `Store::lock` of 1 of those units. That is two use cases, two database
//! transactions, each under its own idempotency key.
//!
//! The raw path runs on a second fresh database with the same migrations and
//! performs the same writes with the fewest statements that are still correct:
//! it resolves SKU and bin codes once at set-up (a master-data cache), claims
//! the idempotency key with one `INSERT .. ON CONFLICT DO NOTHING RETURNING`
//! instead of a look-up first, and does not re-read what it just wrote. Both
//! paths are warmed up, then measured in alternating rounds. Afterwards the two
//! databases must hold the same number of rows in every ledger table, and both
//! must pass `Store::integrity`, or the benchmark fails: a baseline that
//! skipped a write would flatter the store.
//!
//! Run: `cargo bench --bench ledger`. Knobs (environment):
//! - `BENCH_TX`: measured transactions per run (default 5,000).
//! - `BENCH_PG_URL`: PostgreSQL server to create scratch databases on
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! - `BENCH_PG_TASKS`: concurrent tasks on PostgreSQL (default 8).
//! - `CI=true`: an unreachable PostgreSQL fails the run instead of being skipped.
//! - `TMPDIR`: where the SQLite files go (its disk decides what a sync costs).

mod common;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bondgate::domain::{BatchNo, BinCode, DocumentNo, LockState, Quantity, SkuCode};
use bondgate::store::{
    Actor, LocationInput, LocationKind, LockInput, LockRecord, Receipt, ReceiptInput, ReceiptLine,
    ReceiptLineInput, Store, StoreOptions,
};
use chrono::{DateTime, NaiveDate, Utc};
use common::{
    count_differences, create_databases, drop_databases, integrity_totals, main_with, now,
    per_second, percentile_us, pg_admin, pg_pool, scratch_names, seed_skus, sku_code,
    sqlite_backend, sqlite_pool, sqlite_version, valid, with_database, ROUNDS, SQLITE_TASKS,
    TARGET_PERCENT,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;

/// SKUs in the master data: consecutive transactions (and PostgreSQL's
/// concurrent tasks) touch different holdings, as orders for different goods do.
const SKUS: usize = 200;
/// Bins the SKUs are spread over.
const BINS: usize = 40;
/// Receipts of one SKU that share a batch: the first creates the lot, the
/// others find it, so both branches of the lot upsert are exercised.
const RECEIPTS_PER_LOT: usize = 5;
const RECEIVE_QTY: i64 = 10;
const LOCK_QTY: i64 = 1;
const TX_DEFAULT: usize = 5_000;
/// A bound on `BENCH_TX`, so a typo cannot run for hours.
const TX_MAX: usize = 1_000_000;
/// Warm-up transactions before each measured run (prepared statements, pool
/// connections, page cache); at most a tenth of the measured count.
const WARMUP_TX_MAX: usize = 200;
/// Ledger tables whose row counts must match between the store's and the raw
/// database after a run.
const LEDGER_COUNTS: [(&str, &str); 7] = [
    ("operations", "SELECT COUNT(*) FROM operations"),
    (
        "answered",
        "SELECT COUNT(*) FROM operations WHERE response IS NOT NULL",
    ),
    ("receipts", "SELECT COUNT(*) FROM receipts"),
    ("lots", "SELECT COUNT(*) FROM lots"),
    ("holdings", "SELECT COUNT(*) FROM holdings"),
    ("locks", "SELECT COUNT(*) FROM locks"),
    ("movements", "SELECT COUNT(*) FROM movements"),
];

struct Config {
    tx: usize,
    warmup_tx: usize,
    pg_url: String,
    pg_tasks: usize,
    ci: bool,
}

impl Config {
    fn from_env() -> Result<Config> {
        let tx = common::env_count("BENCH_TX", TX_DEFAULT, TX_MAX)?;
        Ok(Config {
            tx,
            warmup_tx: (tx / 10).clamp(1, WARMUP_TX_MAX),
            pg_url: common::pg_url(),
            pg_tasks: common::pg_tasks()?,
            ci: common::ci(),
        })
    }
}

// ------------------------------------------------------------------ workload

fn bin_code(n: usize) -> String {
    format!("A-{n:02}-01-1")
}

/// Transaction `i` of a run: which SKU, bin and batch it receives into and
/// locks from. `tag` keeps the warm-up's keys and batches apart from the
/// measured run's.
struct Work {
    receipt: ReceiptInput,
    lock: LockInput,
}

fn work(tag: &str, i: usize) -> Work {
    let sku = valid(SkuCode::parse(sku_code(i % SKUS)));
    let bin = valid(BinCode::parse(bin_code(i % BINS)));
    let lot = i / (SKUS * RECEIPTS_PER_LOT);
    let batch = valid(BatchNo::parse(format!("{tag}{lot:04}")));
    let expiry = NaiveDate::from_ymd_opt(2027, 1, 1).map(|d| d + chrono::Days::new(lot as u64));
    Work {
        receipt: ReceiptInput {
            receipt_no: valid(DocumentNo::parse(format!("RCV-{tag}{i:07}"))),
            customs_doc_no: valid(DocumentNo::parse(format!("QD-{tag}{lot:04}"))),
            supplier: Some("Bench Cosmetics Co.".into()),
            lines: vec![ReceiptLineInput {
                sku: sku.clone(),
                bin: bin.clone(),
                batch: batch.clone(),
                expiry,
                qty: RECEIVE_QTY,
                damaged_qty: 0,
            }],
        },
        lock: LockInput {
            key: valid(DocumentNo::parse(format!("LCK-{tag}{i:07}"))),
            reference: valid(DocumentNo::parse(format!("ORD-{tag}{i:07}"))),
            sku,
            bin,
            batch,
            qty: valid(Quantity::new(LOCK_QTY)),
        },
    }
}

/// The same master data on every database, created through the store's API.
async fn seed(store: &Store) -> Result<()> {
    let actor = Actor::system();
    for n in 0..BINS {
        let bin = LocationInput {
            code: valid(BinCode::parse(bin_code(n))),
            zone: "A".into(),
            walk_seq: n as i64,
            kind: LocationKind::Storage,
            active: true,
        };
        store.create_location(&actor, &bin).await?;
    }
    seed_skus(store, &actor, SKUS).await
}

// ------------------------------------------------------------------ raw path

/// The same as the store's private `request_hash`: what an idempotency key's
/// row records, so a repeat can be told from a different request.
fn request_hash<T: Serialize>(t: &T) -> Result<String> {
    let digest = Sha256::digest(serde_json::to_vec(t)?);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Master data resolved once at set-up: the raw path's substitute for the
/// store's per-call SKU and bin look-ups.
struct Master {
    /// SKU code → (id, record active: may be received).
    skus: HashMap<String, (i64, bool)>,
    /// Bin code → (id, active: may receive, kind allows reservations).
    bins: HashMap<String, (i64, bool, bool)>,
}

impl Master {
    fn sku(&self, code: &str) -> Result<(i64, bool)> {
        self.skus
            .get(code)
            .copied()
            .with_context(|| format!("unknown SKU {code}"))
    }
    fn bin(&self, code: &str) -> Result<(i64, bool, bool)> {
        self.bins
            .get(code)
            .copied()
            .with_context(|| format!("unknown bin {code}"))
    }
}

/// The raw path for one sqlx driver. One text for both backends, as in the
/// store: `$lock_holding` is the only difference (a row lock on PostgreSQL;
/// SQLite's single writer already serialises).
macro_rules! raw_path {
    ($module:ident, $db:ty, $lock_holding:literal) => {
        mod $module {
            use super::*;

            pub type Pool = sqlx::Pool<$db>;

            #[derive(Clone)]
            pub struct Raw {
                pool: Pool,
                master: Arc<Master>,
            }

            impl Raw {
                pub async fn new(pool: Pool) -> Result<Raw> {
                    let skus: Vec<(String, i64, String)> =
                        sqlx::query_as("SELECT code, id, record_status FROM skus")
                            .fetch_all(&pool)
                            .await?;
                    let bins: Vec<(String, i64, bool, String)> =
                        sqlx::query_as("SELECT code, id, active, kind FROM locations")
                            .fetch_all(&pool)
                            .await?;
                    let master = Master {
                        skus: skus
                            .into_iter()
                            .map(|(code, id, status)| (code, (id, status == "active")))
                            .collect(),
                        bins: bins
                            .into_iter()
                            .map(|(code, id, active, kind)| {
                                let reservable =
                                    !matches!(kind.as_str(), "quarantine" | "inspection" | "defective");
                                (code, (id, active, reservable))
                            })
                            .collect(),
                    };
                    Ok(Raw { pool, master: Arc::new(master) })
                }

                pub async fn close(&self) {
                    self.pool.close().await;
                }

                /// Claims an idempotency key; the benchmark never repeats one,
                /// so a repeat is an error here rather than a stored answer.
                async fn claim(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    scope: &str,
                    key: &str,
                    hash: &str,
                    actor: &Actor,
                    at: DateTime<Utc>,
                ) -> Result<i64> {
                    let op: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO operations (scope, key, request_hash, actor, at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (scope, key) DO NOTHING RETURNING id",
                    )
                    .bind(scope)
                    .bind(key)
                    .bind(hash)
                    .bind(&actor.username)
                    .bind(at)
                    .fetch_optional(&mut **tx)
                    .await?;
                    op.with_context(|| format!("{scope} {key} was already posted"))
                }

                async fn answer(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    op: i64,
                    response: &impl Serialize,
                ) -> Result<()> {
                    sqlx::query("UPDATE operations SET response = $1 WHERE id = $2")
                        .bind(serde_json::to_string(response)?)
                        .bind(op)
                        .execute(&mut **tx)
                        .await?;
                    Ok(())
                }

                pub async fn receive(&self, actor: &Actor, r: &ReceiptInput) -> Result<()> {
                    let hash = request_hash(r)?;
                    let at = now();
                    let mut tx = self.pool.begin().await?;
                    let op = Self::claim(&mut tx, "receipt", r.receipt_no.as_str(), &hash, actor, at).await?;
                    sqlx::query("INSERT INTO receipts (receipt_no, customs_doc_no, supplier, actor, at) VALUES ($1, $2, $3, $4, $5)")
                        .bind(r.receipt_no.as_str())
                        .bind(r.customs_doc_no.as_str())
                        .bind(&r.supplier)
                        .bind(&actor.username)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    let mut lines = Vec::with_capacity(r.lines.len());
                    for l in &r.lines {
                        let (sku_id, receivable) = self.master.sku(l.sku.as_str())?;
                        ensure!(receivable, "SKU {}'s customs record is revoked", l.sku);
                        let (location_id, active, _) = self.master.bin(l.bin.as_str())?;
                        ensure!(active, "bin {} is inactive", l.bin);
                        let created: Option<i64> = sqlx::query_scalar(
                            "INSERT INTO lots (sku_id, batch, expiry) VALUES ($1, $2, $3)
                             ON CONFLICT (sku_id, batch) DO NOTHING RETURNING id",
                        )
                        .bind(sku_id)
                        .bind(l.batch.as_str())
                        .bind(l.expiry)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let (lot_id, expiry) = match created {
                            Some(id) => (id, l.expiry),
                            None => {
                                let (id, stored): (i64, Option<NaiveDate>) =
                                    sqlx::query_as("SELECT id, expiry FROM lots WHERE sku_id = $1 AND batch = $2")
                                        .bind(sku_id)
                                        .bind(l.batch.as_str())
                                        .fetch_one(&mut *tx)
                                        .await?;
                                ensure!(
                                    l.expiry.is_none() || l.expiry == stored,
                                    "batch {} of SKU {} expires {stored:?}, not {:?}",
                                    l.batch, l.sku, l.expiry
                                );
                                (id, stored)
                            }
                        };
                        for (qty, bucket) in [(l.qty, "available"), (l.damaged_qty, "defective")] {
                            if qty == 0 {
                                continue;
                            }
                            sqlx::query(
                                "INSERT INTO movements (operation_id, kind, sku_id, location_id, lot_id, qty, to_bucket,
                                     doc_type, doc_no, customs_doc_no, actor, at)
                                 VALUES ($1, 'receive', $2, $3, $4, $5, $6, 'receipt', $7, $8, $9, $10)",
                            )
                            .bind(op)
                            .bind(sku_id)
                            .bind(location_id)
                            .bind(lot_id)
                            .bind(qty)
                            .bind(bucket)
                            .bind(r.receipt_no.as_str())
                            .bind(r.customs_doc_no.as_str())
                            .bind(&actor.username)
                            .bind(at)
                            .execute(&mut *tx)
                            .await?;
                        }
                        lines.push(ReceiptLine {
                            sku: l.sku.to_string(),
                            bin: l.bin.to_string(),
                            batch: l.batch.to_string(),
                            expiry,
                            qty: l.qty,
                            damaged_qty: l.damaged_qty,
                        });
                    }
                    let receipt = Receipt {
                        receipt_no: r.receipt_no.to_string(),
                        customs_doc_no: r.customs_doc_no.to_string(),
                        supplier: r.supplier.clone(),
                        lines,
                        actor: actor.username.clone(),
                        at,
                    };
                    Self::answer(&mut tx, op, &receipt).await?;
                    tx.commit().await?;
                    Ok(())
                }

                pub async fn lock(&self, actor: &Actor, input: &LockInput) -> Result<()> {
                    let hash = request_hash(input)?;
                    let at = now();
                    let (sku_id, _) = self.master.sku(input.sku.as_str())?;
                    let (location_id, _, reservable) = self.master.bin(input.bin.as_str())?;
                    ensure!(reservable, "bin {}'s stock cannot be reserved", input.bin);
                    let qty = input.qty.get();
                    let mut tx = self.pool.begin().await?;
                    let op = Self::claim(&mut tx, "lock", input.key.as_str(), &hash, actor, at).await?;
                    let holding: Option<(i64, i64, Option<NaiveDate>)> = sqlx::query_as(concat!(
                        "SELECT h.lot_id, h.available, lot.expiry FROM holdings h JOIN lots lot ON lot.id = h.lot_id
                         WHERE h.sku_id = $1 AND h.location_id = $2 AND lot.sku_id = $1 AND lot.batch = $3",
                        $lock_holding
                    ))
                    .bind(sku_id)
                    .bind(location_id)
                    .bind(input.batch.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let (lot_id, available, expiry) = holding.with_context(|| {
                        format!("no batch '{}' of SKU {} at bin {}", input.batch, input.sku, input.bin)
                    })?;
                    if available < qty {
                        bail!("insufficient stock of SKU {} at bin {}: {available} available, {qty} requested", input.sku, input.bin);
                    }
                    let lock_id: i64 = sqlx::query_scalar(
                        "INSERT INTO locks (operation_id, reference, sku_id, location_id, lot_id, qty, state, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, 'held', $7) RETURNING id",
                    )
                    .bind(op)
                    .bind(input.reference.as_str())
                    .bind(sku_id)
                    .bind(location_id)
                    .bind(lot_id)
                    .bind(qty)
                    .bind(at)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO movements (operation_id, kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket,
                             doc_type, doc_no, actor, lock_id, at)
                         VALUES ($1, 'lock', $2, $3, $4, $5, 'available', 'locked', 'lock', $6, $7, $8, $9)",
                    )
                    .bind(op)
                    .bind(sku_id)
                    .bind(location_id)
                    .bind(lot_id)
                    .bind(qty)
                    .bind(input.reference.as_str())
                    .bind(&actor.username)
                    .bind(lock_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    let record = LockRecord {
                        id: lock_id,
                        reference: input.reference.to_string(),
                        sku: input.sku.to_string(),
                        bin: input.bin.to_string(),
                        batch: input.batch.to_string(),
                        expiry,
                        qty,
                        state: LockState::Held,
                        created_at: at,
                        closed_at: None,
                    };
                    Self::answer(&mut tx, op, &record).await?;
                    tx.commit().await?;
                    Ok(())
                }
            }

            /// Row counts of the ledger tables, in `LEDGER_COUNTS` order.
            pub async fn ledger_counts(pool: &Pool) -> Result<Vec<i64>> {
                let mut out = Vec::with_capacity(LEDGER_COUNTS.len());
                for (_, sql) in LEDGER_COUNTS {
                    out.push(sqlx::query_scalar(sql).fetch_one(pool).await?);
                }
                Ok(out)
            }
        }
    };
}

raw_path!(raw_sqlite, sqlx::Sqlite, "");
raw_path!(raw_pg, sqlx::Postgres, " FOR UPDATE OF h");

// ------------------------------------------------------------------- driving

#[derive(Clone)]
enum Target {
    Store(Store),
    RawSqlite(raw_sqlite::Raw),
    RawPg(raw_pg::Raw),
}

impl Target {
    async fn transact(&self, actor: &Actor, w: &Work) -> Result<()> {
        match self {
            Target::Store(s) => {
                s.receive(actor, &w.receipt).await?;
                s.lock(actor, &w.lock).await?;
            }
            Target::RawSqlite(r) => {
                r.receive(actor, &w.receipt).await?;
                r.lock(actor, &w.lock).await?;
            }
            Target::RawPg(r) => {
                r.receive(actor, &w.receipt).await?;
                r.lock(actor, &w.lock).await?;
            }
        }
        Ok(())
    }
}

struct Measured {
    tx: usize,
    elapsed: Duration,
    /// Per-transaction latency (receive + lock); sorted once all rounds are in.
    latencies_us: Vec<u64>,
}

impl Measured {
    fn empty() -> Measured {
        Measured {
            tx: 0,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
        }
    }
    fn add(&mut self, m: Measured) {
        self.tx += m.tx;
        self.elapsed += m.elapsed;
        self.latencies_us.extend(m.latencies_us);
    }
    fn tx_per_s(&self) -> u64 {
        per_second(self.tx, self.elapsed)
    }
    fn percentile_us(&self, p: usize) -> u64 {
        percentile_us(&self.latencies_us, p)
    }
}

/// Runs transactions `range` of run `tag` on `tasks` concurrent tasks, each
/// taking the next index until none is left.
async fn drive(
    target: &Target,
    tag: &'static str,
    range: std::ops::Range<usize>,
    tasks: usize,
) -> Result<Measured> {
    let (first, end) = (range.start, range.end);
    let next = Arc::new(AtomicUsize::new(first));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (target, next) = (target.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let actor = Actor::system();
            let mut latencies_us = Vec::with_capacity((end - first) / tasks + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return Ok(latencies_us);
                }
                let w = work(tag, i);
                let t0 = Instant::now();
                if let Err(e) = target.transact(&actor, &w).await {
                    next.store(end, Ordering::Relaxed); // stop the other tasks
                    return Err(e.context(format!("transaction {tag}{i}")));
                }
                latencies_us.push(t0.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut latencies_us = Vec::with_capacity(end - first);
    for h in handles {
        latencies_us.extend(h.await.context("benchmark task panicked")??);
    }
    Ok(Measured {
        tx: end - first,
        elapsed: started.elapsed(),
        latencies_us,
    })
}

/// Warms both paths up at the measured concurrency (that opens and prepares
/// every pooled connection), then measures them in alternating rounds
/// (store, raw, raw, store, ...): whatever else the machine is doing, or a
/// WAL checkpoint, falls on both paths alike instead of on whichever ran second.
async fn compare(
    cfg: &Config,
    store: &Target,
    raw: &Target,
    tasks: usize,
) -> Result<(Measured, Measured)> {
    drive(store, "W", 0..cfg.warmup_tx, tasks)
        .await
        .context("store path warm-up")?;
    drive(raw, "W", 0..cfg.warmup_tx, tasks)
        .await
        .context("raw path warm-up")?;
    let mut totals = [Measured::empty(), Measured::empty()];
    let rounds = ROUNDS.min(cfg.tx);
    for round in 0..rounds {
        let range = cfg.tx * round / rounds..cfg.tx * (round + 1) / rounds;
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let (target, name) = [(store, "store"), (raw, "raw")][which];
            let m = drive(target, "M", range.clone(), tasks)
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

/// Both databases must pass the store's integrity check, hold the stock the
/// transactions put there, and hold the same number of rows in every ledger
/// table: otherwise the two paths did not do the same work.
async fn verify(
    cfg: &Config,
    urls: [&str; 2],
    opts: &StoreOptions,
    counts: [Vec<i64>; 2],
) -> Result<()> {
    let done = (cfg.warmup_tx + cfg.tx) as i64;
    for (url, path) in urls.iter().zip(["store", "raw"]) {
        let totals = integrity_totals(url, opts, path).await?;
        ensure!(
            totals.available == done * (RECEIVE_QTY - LOCK_QTY) && totals.locked == done * LOCK_QTY,
            "{path} database holds {} available and {} locked after {done} transactions",
            totals.available,
            totals.locked
        );
    }
    if counts[0] != counts[1] {
        let diff = count_differences(&LEDGER_COUNTS, &counts[0], &counts[1], |table, s, r| {
            format!("{table}: store {s}, raw {r}")
        });
        bail!(
            "the raw path did not write what the store writes: {}",
            diff.join("; ")
        );
    }
    Ok(())
}

struct Row {
    backend: String,
    tasks: usize,
    store: Measured,
    raw: Measured,
}

impl Row {
    fn ratio_percent(&self) -> u64 {
        self.store.tx_per_s() * 100 / self.raw.tx_per_s().max(1)
    }
}

// -------------------------------------------------------------------- SQLite

async fn bench_sqlite(cfg: &Config, sync_full: bool) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let opts = StoreOptions {
        sqlite_sync_full: sync_full,
        ..StoreOptions::default()
    };
    let file = [dir.path().join("store.db"), dir.path().join("raw.db")];
    let urls = file.clone().map(|f| format!("sqlite://{}", f.display()));

    let store = Store::connect(&urls[0], &opts).await?;
    seed(&store).await?;
    // Another store creates the raw database's schema and master data, then
    // steps aside: the raw path is that file's only writer, as the store is
    // for its own.
    let schema = Store::connect(&urls[1], &opts).await?;
    seed(&schema).await?;
    schema.close().await;
    let raw = raw_sqlite::Raw::new(sqlite_pool(&file[1], sync_full).await?).await?;
    let runs = compare(
        cfg,
        &Target::Store(store.clone()),
        &Target::RawSqlite(raw.clone()),
        SQLITE_TASKS,
    )
    .await;
    store.close().await;
    raw.close().await;
    let (store_run, raw_run) = runs?;

    let mut counts = Vec::with_capacity(2);
    for f in &file {
        let pool = sqlite_pool(f, sync_full).await?;
        counts.push(raw_sqlite::ledger_counts(&pool).await?);
        pool.close().await;
    }
    let counts: [Vec<i64>; 2] = counts.try_into().expect("two databases");
    verify(cfg, [urls[0].as_str(), urls[1].as_str()], &opts, counts).await?;
    Ok(Row {
        backend: sqlite_backend(sync_full),
        tasks: SQLITE_TASKS,
        store: store_run,
        raw: raw_run,
    })
}

// ---------------------------------------------------------------- PostgreSQL

async fn bench_pg(cfg: &Config, admin: &mut PgConnection) -> Result<Row> {
    let databases = scratch_names("bondgate_bench");
    create_databases(admin, &databases).await?;
    let urls = databases.clone().map(|db| with_database(&cfg.pg_url, &db));
    let result = bench_pg_on(cfg, &urls).await;
    drop_databases(admin, &databases).await;
    result
}

async fn bench_pg_on(cfg: &Config, urls: &[String; 2]) -> Result<Row> {
    let opts = StoreOptions::default();

    let store = Store::connect(&urls[0], &opts).await?;
    seed(&store).await?;
    let schema = Store::connect(&urls[1], &opts).await?;
    seed(&schema).await?;
    schema.close().await;
    let raw = raw_pg::Raw::new(pg_pool(&urls[1], &opts).await?).await?;
    let runs = compare(
        cfg,
        &Target::Store(store.clone()),
        &Target::RawPg(raw.clone()),
        cfg.pg_tasks,
    )
    .await;
    store.close().await;
    raw.close().await;
    let (store_run, raw_run) = runs?;

    let mut counts = Vec::with_capacity(2);
    for url in urls {
        let pool = pg_pool(url, &opts).await?;
        counts.push(raw_pg::ledger_counts(&pool).await?);
        pool.close().await;
    }
    let counts: [Vec<i64>; 2] = counts.try_into().expect("two databases");
    verify(cfg, [urls[0].as_str(), urls[1].as_str()], &opts, counts).await?;
    Ok(Row {
        backend: "postgres".into(),
        tasks: cfg.pg_tasks,
        store: store_run,
        raw: raw_run,
    })
}

// ---------------------------------------------------------------------- main

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<20} {:<6} {:>5} {:>7} {:>7} {:>8} {:>8} {:>10}",
        "backend", "path", "tasks", "tx", "tx/s", "p50 µs", "p99 µs", "store/raw"
    );
    for row in rows {
        for (path, m) in [("store", &row.store), ("raw", &row.raw)] {
            let ratio = if path == "store" {
                format!("{} %", row.ratio_percent())
            } else {
                String::new()
            };
            println!(
                "{:<20} {:<6} {:>5} {:>7} {:>7} {:>8} {:>8} {:>10}",
                row.backend,
                path,
                row.tasks,
                m.tx,
                m.tx_per_s(),
                m.percentile_us(50),
                m.percentile_us(99),
                ratio
            );
        }
    }
    println!();
    for row in rows {
        let verdict = if row.ratio_percent() >= TARGET_PERCENT {
            "met"
        } else {
            "MISSED"
        };
        println!(
            "{}: store at {} % of raw (target ≥ {TARGET_PERCENT} %): {verdict}",
            row.backend,
            row.ratio_percent()
        );
    }
}

async fn run() -> Result<()> {
    let cfg = Config::from_env()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "ledger bench: receive (1 line, {RECEIVE_QTY} units) + lock ({LOCK_QTY} unit) per transaction; \
         {} measured after {} warm-up; {SKUS} SKUs over {BINS} bins; {cores} cores",
        cfg.tx, cfg.warmup_tx
    );
    println!("SQLite {}, WAL, one writer", sqlite_version().await?);

    // Ask PostgreSQL first, so CI fails before spending minutes on SQLite.
    let mut admin = pg_admin(&cfg.pg_url, cfg.ci).await?;

    let mut rows = Vec::with_capacity(3);
    for sync_full in [true, false] {
        let started = Instant::now();
        let row = bench_sqlite(&cfg, sync_full).await?;
        println!("{} done in {} s", row.backend, started.elapsed().as_secs());
        rows.push(row);
    }
    if let Some(conn) = admin.as_mut() {
        let started = Instant::now();
        let row = bench_pg(&cfg, conn).await?;
        println!("{} done in {} s", row.backend, started.elapsed().as_secs());
        rows.push(row);
    }
    print_table(&rows);
    if admin.is_none() {
        println!("postgres: SKIPPED, server unreachable at {}", cfg.pg_url);
    }
    Ok(())
}

fn main() -> ExitCode {
    main_with("ledger", run)
}
