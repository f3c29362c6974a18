//! The pack transaction's latency (p50, p99, max) through the store on SQLite
//! and on PostgreSQL, beside the same transaction written as raw SQL in the
//! same run.
//!
//! One **pack** is `Store::pack` for a picked order whose weight matches: the
//! transaction that locks the order, checks the box and the lines, computes
//! the weight check, upserts the package, takes the next waybill number from
//! the range, moves every held reservation of the order from its tote to the
//! station's outbound staging `OUT-{station}` as two `pack` movements each
//! (their trigger moves the balances), re-points the reservations, sets the
//! order packed, resolves its weight exceptions, queues the label print job
//! with its JSON, writes the audit entry and reads the package view back.
//!
//! Set-up (not timed), the same on every database and through the store's
//! API: SKUs with a barcode and a unit weight, stock received into bins,
//! orders of 1–3 lines created (`prepare` + `Store::create_order`), put into
//! waves, and walked into totes (`TOTE-{i}` for order `i`) by a picker on the
//! browser PDA (`Store::pda_scan`: tote, bin, EAN, lot, quantity, as the
//! page sends them); a box type and a waybill range. On SQLite the set-up
//! runs with `synchronous=NORMAL` (it is not measured), then the files are
//! reopened with `synchronous=FULL` (the default) for the timed part.
//!
//! The raw path runs on a second database prepared the same way and writes
//! the same rows with the fewest statements that are still correct: one
//! select of the order (locked) with its box, its existing package and its
//! expected weight, one select of its held reservations (locked), the waybill
//! range update, the package upsert (inserted packed, with its waybill), one
//! multi-row INSERT of all `pack` movements, one UPDATE re-pointing all
//! reservations, the order's state, the print job with the same label JSON,
//! the audit row, and the answer built in memory. The station's outbound
//! location is resolved (created if missing) once at set-up, a master-data
//! cache. Exceptions are resolved only when a package already existed.
//!
//! Packs run one at a time (a latency figure, not throughput under load),
//! warmed up, then in alternating rounds (store, raw, raw, store, …) so that a
//! WAL checkpoint or another process falls on both alike. Afterwards both
//! databases must pass `Store::integrity`, hold the same stock (and all of it
//! that was picked now at `OUT-P1`, none left in totes), the same row counts
//! in packages, print_jobs, movements, locks, locations, pack_exceptions,
//! audit_log and packed orders, and the same packages, labels, `pack`
//! movements and audit details, or the benchmark fails: a baseline that
//! skipped a write would flatter the store.
//!
//! Run: `cargo bench --bench pack`. Knobs (environment):
//! - `BENCH_PACKS`: measured packs per path and backend (default 300, 60 with
//!   `CI=true`).
//! - `BENCH_PG_URL`: PostgreSQL server to create scratch databases on
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! - `CI=true`: an unreachable PostgreSQL fails the run instead of being skipped.
//! - `TMPDIR`: where the SQLite files go (its disk decides what a sync costs).

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bondgate::crypto::PiiCipher;
use bondgate::domain::packing::{self, Tolerance, WeightCheck};
use bondgate::store::{
    Actor, LabelData, PackOutcome, PackRecord, PackageState, PackageView, PrintJobView, PrintState,
    StockTotals, Store, StoreOptions, WaybillChoice,
};
use chrono::{DateTime, Utc};
use common::packing::*;
use common::{
    count_differences, create_databases, drop_databases, integrity_totals, main_with, now,
    per_second, percentile_us, pg_admin, pg_pool, scratch_names, sqlite_pool, sqlite_version,
    with_database, ROUNDS,
};
use sqlx::postgres::PgConnection;

const PACKS_DEFAULT: usize = 300;
const PACKS_CI: usize = 60;
const PACKS_MAX: usize = 20_000;
/// Warm-up packs per path before the measured ones (prepared statements,
/// page cache); at most a tenth of the measured count.
const WARMUP_MAX: usize = 20;
/// Tables whose row counts must match between the databases after a run.
const COUNTS: [(&str, &str); 9] = [
    ("packages", "SELECT COUNT(*) FROM packages"),
    ("print_jobs", "SELECT COUNT(*) FROM print_jobs"),
    ("movements", "SELECT COUNT(*) FROM movements"),
    ("locks", "SELECT COUNT(*) FROM locks"),
    ("locations", "SELECT COUNT(*) FROM locations"),
    ("pack_exceptions", "SELECT COUNT(*) FROM pack_exceptions"),
    ("audit_log", "SELECT COUNT(*) FROM audit_log"),
    (
        "packed orders",
        "SELECT COUNT(*) FROM orders WHERE state = 'packed'",
    ),
    (
        "locked at OUT-P1",
        "SELECT CAST(COALESCE(SUM(h.locked), 0) AS BIGINT) FROM holdings h
         JOIN locations l ON l.id = h.location_id WHERE l.code = 'OUT-P1'",
    ),
];
/// Units still locked in totes after every order was packed: must be none.
const IN_TOTES: &str = "SELECT CAST(COALESCE(SUM(h.locked), 0) AS BIGINT) FROM holdings h
    JOIN locations l ON l.id = h.location_id WHERE l.zone = 'TOTE'";
/// What each pack wrote, without ids and times, for the comparison.
const PACKAGES: &str = "SELECT p.package_no, p.state, p.station, p.packer, p.box_code,
        p.tare_grams, p.expected_grams, p.gross_grams, p.allowed_grams, p.waybill_no,
        j.copy, j.state AS job_state, j.label, j.requested_by
    FROM packages p JOIN print_jobs j ON j.package_id = p.id ORDER BY p.package_no, j.copy";
const PACK_MOVEMENTS: &str = "SELECT m.lock_id, l.code, m.sku_id, m.lot_id, m.qty,
        COALESCE(m.from_bucket, '-'), COALESCE(m.to_bucket, '-'), m.doc_type, m.doc_no, m.actor
    FROM movements m JOIN locations l ON l.id = m.location_id WHERE m.kind = 'pack'
    ORDER BY m.lock_id, l.code";
const PACK_AUDIT: &str = "SELECT actor, action, subject, detail FROM audit_log
    WHERE action LIKE 'package.%' ORDER BY subject";

struct Config {
    packs: usize,
    warmup: usize,
    pg_url: String,
    ci: bool,
}

impl Config {
    fn from_env() -> Result<Config> {
        let ci = common::ci();
        let default = if ci { PACKS_CI } else { PACKS_DEFAULT };
        let packs = common::env_count("BENCH_PACKS", default, PACKS_MAX)?;
        Ok(Config {
            packs,
            warmup: (packs / 10).clamp(1, WARMUP_MAX),
            pg_url: common::pg_url(),
            ci,
        })
    }

    /// Orders each database is prepared with: the warm-up's, then the
    /// measured ones.
    fn orders(&self) -> usize {
        self.warmup + self.packs
    }
}

// ------------------------------------------------------------------ raw path

/// What a pack built in memory as its answer (the store reads it back).
#[allow(clippy::too_many_arguments)]
fn view(
    rec: &PackRecord,
    actor: &Actor,
    at: DateTime<Utc>,
    expected: i64,
    tare: i64,
    check: &WeightCheck,
    waybill: String,
    job_id: i64,
) -> PackageView {
    let package_no = format!("PKG-{}", rec.order_no);
    PackageView {
        package_no: package_no.clone(),
        order_no: rec.order_no.clone(),
        state: PackageState::Packed,
        station: rec.station.clone(),
        packer: actor.username.clone(),
        box_code: rec.box_code.clone(),
        tare_grams: tare,
        expected_grams: expected,
        gross_grams: rec.gross_grams,
        diff_grams: rec.gross_grams - expected,
        allowed_grams: check.allowed,
        weighed_at: rec.weighed_at,
        waybill_no: Some(waybill),
        override_by: None,
        override_reason: None,
        packed_at: Some(at),
        prints: vec![PrintJobView {
            id: job_id,
            station: rec.station.clone(),
            package_no,
            copy: 1,
            state: PrintState::Queued,
            attempts: 0,
            last_error: None,
            requested_by: actor.username.clone(),
            reason: None,
            created_at: at,
            printed_at: None,
        }],
    }
}

/// The order row the raw pack starts from: id, state, consignee (name,
/// masked phone, address), the box's tare and active flag, the package that
/// already exists (a re-weigh after a mismatch), and the lines' weight.
type OrderRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<bool>,
    Option<i64>,
    i64,
);
/// A held reservation: id, sku, location, lot, qty.
type LockRow = (i64, i64, i64, i64, i64);
/// A package and its label, as compared.
#[derive(sqlx::FromRow, PartialEq)]
struct PackageRow {
    package_no: String,
    state: String,
    station: String,
    packer: String,
    box_code: String,
    tare_grams: i64,
    expected_grams: i64,
    gross_grams: i64,
    allowed_grams: i64,
    waybill_no: Option<String>,
    copy: i64,
    job_state: String,
    label: String,
    requested_by: String,
}
type MovementRow = (
    Option<i64>,
    String,
    i64,
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
);
type AuditRow = (String, String, String, String);

/// What one database holds after a run, for the comparison.
#[derive(PartialEq)]
struct Contents {
    counts: Vec<i64>,
    totals: (i64, i64, i64),
    packages: Vec<PackageRow>,
    movements: Vec<MovementRow>,
    audit: Vec<AuditRow>,
}

/// The raw path for one sqlx driver; `$order_lock` and `$locks_lock` are
/// the row locks PostgreSQL takes (SQLite's single writer already serialises).
macro_rules! raw_path {
    ($module:ident, $db:ty, $order_lock:literal, $locks_lock:literal) => {
        mod $module {
            use super::*;

            pub type Pool = sqlx::Pool<$db>;

            pub struct Raw {
                pool: Pool,
                /// The station's outbound staging: the master-data cache.
                out_id: i64,
            }

            impl Raw {
                /// Resolves the station's outbound location, creating it as
                /// the store does on first use.
                pub async fn new(pool: Pool) -> Result<Raw> {
                    sqlx::query(
                        "INSERT INTO locations (code, zone, walk_seq, kind, active, created_at, updated_at)
                         VALUES ($1, 'OUTBOUND', 0, 'pack', $2, $3, $3) ON CONFLICT (code) DO NOTHING",
                    )
                    .bind(OUTBOUND)
                    .bind(true)
                    .bind(now())
                    .execute(&pool)
                    .await?;
                    let (out_id, kind): (i64, String) =
                        sqlx::query_as("SELECT id, kind FROM locations WHERE code = $1")
                            .bind(OUTBOUND)
                            .fetch_one(&pool)
                            .await?;
                    ensure!(kind == "pack", "{OUTBOUND} is a {kind} bin");
                    Ok(Raw { pool, out_id })
                }

                pub async fn close(&self) {
                    self.pool.close().await;
                }

                /// One pack of a picked order whose weight matches: 11 round
                /// trips whatever the order (12 after an earlier mismatch).
                pub async fn pack(&self, actor: &Actor, rec: &PackRecord) -> Result<PackageView> {
                    let mut tx = self.pool.begin().await?;
                    let at = now();
                    let row: Option<OrderRow> = sqlx::query_as(concat!(
                        "SELECT o.id, o.state, o.consignee_name, o.consignee_phone_masked, o.consignee_address,
                             b.tare_grams, b.active, p.id,
                             CAST(COALESCE((SELECT SUM(s.unit_weight_grams * ol.qty) FROM order_lines ol
                                 JOIN skus s ON s.id = ol.sku_id WHERE ol.order_id = o.id), 0) AS BIGINT)
                         FROM orders o LEFT JOIN box_types b ON b.code = $2
                         LEFT JOIN packages p ON p.order_id = o.id
                         WHERE o.order_no = $1",
                        $order_lock
                    ))
                    .bind(&rec.order_no)
                    .bind(&rec.box_code)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let (order_id, state, name, phone, address, tare, active, existing, goods) =
                        row.with_context(|| format!("order {} not found", rec.order_no))?;
                    // A packed order would answer with its parcel; the bench
                    // packs each order once, so that is not written here.
                    ensure!(state == "picked", "order {} is {state}, not picked", rec.order_no);
                    let tare = match (tare, active) {
                        (Some(t), Some(true)) => t,
                        (Some(_), _) => bail!("box {} is no longer in use", rec.box_code),
                        (None, _) => bail!("box type {} not found", rec.box_code),
                    };
                    let expected = goods
                        .checked_add(tare)
                        .filter(|e| (0..=packing::GRAMS_MAX).contains(e))
                        .with_context(|| format!("order {}: expected weight out of range", rec.order_no))?;
                    let tolerance = Tolerance {
                        grams: rec.tolerance_grams,
                        basis_points: rec.tolerance_basis_points,
                    };
                    let check = WeightCheck::new(expected, rec.gross_grams, tolerance);
                    // A mismatch would be recorded as an exception; the bench
                    // packs matching parcels only.
                    ensure!(check.matches(), "order {}: {}", rec.order_no, check.explain());
                    let locks: Vec<LockRow> = sqlx::query_as(concat!(
                        "SELECT k.id, k.sku_id, k.location_id, k.lot_id, k.qty
                         FROM order_allocations a JOIN locks k ON k.id = a.lock_id
                         WHERE a.order_id = $1 AND k.state = 'held' ORDER BY k.id",
                        $locks_lock
                    ))
                    .bind(order_id)
                    .fetch_all(&mut *tx)
                    .await?;
                    let moving: Vec<LockRow> = locks
                        .into_iter()
                        .filter(|k| k.4 > 0 && k.2 != self.out_id)
                        .collect();
                    let (n, prefix, width): (i64, String, i64) = sqlx::query_as(
                        "UPDATE waybill_ranges SET next_no = next_no + 1 WHERE name = $1 AND next_no <= last_no
                         RETURNING next_no - 1, prefix, width",
                    )
                    .bind(match &rec.waybill {
                        WaybillChoice::Range(name) => name.as_str(),
                        WaybillChoice::Given(_) => bail!("the bench takes waybills from a range"),
                    })
                    .fetch_optional(&mut *tx)
                    .await?
                    .context("waybill range used up")?;
                    let waybill = format!("{prefix}{n:0width$}", width = width as usize);
                    let package_no = format!("PKG-{}", rec.order_no);
                    let package_id: i64 = sqlx::query_scalar(
                        "INSERT INTO packages (package_no, order_id, state, station, packer, box_code, tare_grams,
                             expected_grams, gross_grams, allowed_grams, weighed_at, waybill_no, packed_at, created_at)
                         VALUES ($1, $2, 'packed', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
                         ON CONFLICT (order_id) DO UPDATE SET state = 'packed', station = $3, packer = $4,
                             box_code = $5, tare_grams = $6, expected_grams = $7, gross_grams = $8,
                             allowed_grams = $9, weighed_at = $10, waybill_no = $11, packed_at = $12
                         RETURNING id",
                    )
                    .bind(&package_no)
                    .bind(order_id)
                    .bind(&rec.station)
                    .bind(&actor.username)
                    .bind(&rec.box_code)
                    .bind(tare)
                    .bind(expected)
                    .bind(rec.gross_grams)
                    .bind(check.allowed)
                    .bind(rec.weighed_at)
                    .bind(&waybill)
                    .bind(at)
                    .fetch_one(&mut *tx)
                    .await?;
                    if !moving.is_empty() {
                        // $1 doc_no, $2 actor, $3 at, $4 outbound; then per
                        // reservation sku, bin, lot, qty, lock: its two legs.
                        let mut sql = String::from(
                            "INSERT INTO movements (operation_id, kind, sku_id, location_id, lot_id, qty, from_bucket,
                                 to_bucket, doc_type, doc_no, customs_doc_no, reason, actor, approver, lock_id, at)
                             VALUES ",
                        );
                        for r in 0..moving.len() {
                            let p = 5 + r * 5;
                            if r > 0 {
                                sql.push_str(", ");
                            }
                            sql.push_str(&format!(
                                "(NULL, 'pack', ${s}, ${b}, ${l}, ${q}, 'locked', NULL, 'pack', $1, NULL, NULL, $2, NULL, ${k}, $3), \
                                 (NULL, 'pack', ${s}, $4, ${l}, ${q}, NULL, 'locked', 'pack', $1, NULL, NULL, $2, NULL, ${k}, $3)",
                                s = p,
                                b = p + 1,
                                l = p + 2,
                                q = p + 3,
                                k = p + 4
                            ));
                        }
                        let mut insert = sqlx::query(&sql)
                            .bind(&rec.order_no)
                            .bind(&actor.username)
                            .bind(at)
                            .bind(self.out_id);
                        for k in &moving {
                            insert = insert.bind(k.1).bind(k.2).bind(k.3).bind(k.4).bind(k.0);
                        }
                        insert.execute(&mut *tx).await?;
                        let ids: Vec<String> = (0..moving.len()).map(|r| format!("${}", r + 2)).collect();
                        let sql = format!(
                            "UPDATE locks SET location_id = $1 WHERE id IN ({})",
                            ids.join(", ")
                        );
                        let mut update = sqlx::query(&sql).bind(self.out_id);
                        for k in &moving {
                            update = update.bind(k.0);
                        }
                        update.execute(&mut *tx).await?;
                    }
                    sqlx::query("UPDATE orders SET state = 'packed' WHERE id = $1")
                        .bind(order_id)
                        .execute(&mut *tx)
                        .await?;
                    if existing.is_some() {
                        sqlx::query(
                            "UPDATE pack_exceptions SET resolution = 'reweighed', resolved_by = $1, resolved_at = $2
                             WHERE package_id = $3 AND resolution IS NULL",
                        )
                        .bind(&actor.username)
                        .bind(at)
                        .bind(package_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let label = LabelData {
                        waybill_no: waybill.clone(),
                        order_no: rec.order_no.clone(),
                        package_no: package_no.clone(),
                        consignee: packing::mask_name(&name),
                        phone,
                        address,
                        gross_grams: rec.gross_grams,
                        station: rec.station.clone(),
                        printed_at: rec.printed_at_text.clone(),
                        copy: None,
                    };
                    // Copy 1: a picked order has no label yet (only a packed
                    // parcel gets one); UNIQUE (package_id, copy) is the backstop.
                    let job_id: i64 = sqlx::query_scalar(
                        "INSERT INTO print_jobs (station, package_id, copy, label, state, attempts, requested_by,
                             reason, created_at)
                         VALUES ($1, $2, 1, $3, 'queued', 0, $4, NULL, $5) RETURNING id",
                    )
                    .bind(&rec.station)
                    .bind(package_id)
                    .bind(serde_json::to_string(&label)?)
                    .bind(&actor.username)
                    .bind(at)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(at)
                    .bind(&actor.username)
                    .bind("package.pack")
                    .bind(&package_no)
                    .bind(serde_json::to_string(rec)?)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(view(rec, actor, at, expected, tare, &check, waybill, job_id))
                }
            }

            /// What the database holds, for the comparison.
            pub async fn contents(pool: &Pool, totals: &StockTotals) -> Result<Contents> {
                let mut counts = Vec::with_capacity(COUNTS.len());
                for (_, q) in COUNTS {
                    counts.push(sqlx::query_scalar::<_, i64>(q).fetch_one(pool).await?);
                }
                let in_totes: i64 = sqlx::query_scalar(IN_TOTES).fetch_one(pool).await?;
                ensure!(in_totes == 0, "{in_totes} units are still locked in totes");
                // Every order was packed: whatever is reserved waits at the station.
                let at_station = counts[COUNTS.len() - 1];
                ensure!(
                    at_station == totals.locked,
                    "{at_station} of {} locked units are at {OUTBOUND}",
                    totals.locked
                );
                Ok(Contents {
                    counts,
                    totals: (totals.available, totals.locked, totals.defective),
                    packages: sqlx::query_as(PACKAGES).fetch_all(pool).await?,
                    movements: sqlx::query_as(PACK_MOVEMENTS).fetch_all(pool).await?,
                    audit: sqlx::query_as(PACK_AUDIT).fetch_all(pool).await?,
                })
            }
        }
    };
}

raw_path!(raw_sqlite, sqlx::Sqlite, "", "");
raw_path!(
    raw_pg,
    sqlx::Postgres,
    " FOR UPDATE OF o",
    " FOR UPDATE OF k"
);

// --------------------------------------------------------------- measuring

enum Target {
    Store(Store),
    RawSqlite(raw_sqlite::Raw),
    RawPg(raw_pg::Raw),
}

impl Target {
    /// Packs order `i` and checks the answer.
    async fn pack(&self, actor: &Actor, i: usize) -> Result<()> {
        let rec = record(i);
        let view = match self {
            Target::Store(s) => match s.pack(actor, &rec).await? {
                PackOutcome::Packed(v, true) => v,
                other => bail!("order {}: not packed now: {other:?}", rec.order_no),
            },
            Target::RawSqlite(r) => r.pack(actor, &rec).await?,
            Target::RawPg(r) => r.pack(actor, &rec).await?,
        };
        ensure!(
            view.state == PackageState::Packed
                && view.waybill_no.is_some()
                && view.prints.len() == 1,
            "order {}: unexpected answer {view:?}",
            rec.order_no
        );
        std::hint::black_box(view);
        Ok(())
    }
}

/// This process's CPU time so far (user + system, all threads: tokio, sqlx's
/// SQLite worker and SQLite itself), from `/proc/self/stat` in clock ticks of
/// 10 ms. Linux only; read around whole rounds.
fn process_cpu() -> Option<Duration> {
    const TICK: Duration = Duration::from_millis(10);
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let close = stat.rfind(')')?;
    // After the name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: u32 = fields.get(11)?.parse().ok()?;
    let stime: u32 = fields.get(12)?.parse().ok()?;
    Some(TICK * (utime + stime))
}

/// Latencies of one path over a run, in µs, and this process's CPU time
/// spent meanwhile.
#[derive(Default)]
struct Measured {
    latencies: Vec<u64>,
    busy: Duration,
    cpu: Option<Duration>,
}

impl Measured {
    fn new() -> Measured {
        Measured {
            cpu: Some(Duration::ZERO),
            ..Measured::default()
        }
    }
    fn packs(&self) -> usize {
        self.latencies.len()
    }
    fn sorted(&self) -> Vec<u64> {
        let mut v = self.latencies.clone();
        v.sort_unstable();
        v
    }
    fn per_s(&self) -> u64 {
        per_second(self.packs(), self.busy)
    }
    /// Client CPU per pack, µs, if the platform tells.
    fn cpu_per_pack(&self) -> String {
        self.cpu.map_or_else(
            || "?".into(),
            |c| format!("{}", c.as_micros() / self.packs().max(1) as u128),
        )
    }
}

/// Packs orders `range` one at a time on `target`, each timed.
async fn drive(
    target: &Target,
    actor: &Actor,
    range: std::ops::Range<usize>,
    into: Option<&mut Measured>,
) -> Result<()> {
    let mut local = Measured::default();
    let cpu_before = process_cpu();
    for i in range {
        let started = Instant::now();
        target.pack(actor, i).await?;
        let took = started.elapsed();
        local.latencies.push(took.as_micros() as u64);
        local.busy += took;
    }
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(a, b)| a.saturating_sub(b));
    if let Some(m) = into {
        m.latencies.extend(local.latencies);
        m.busy += local.busy;
        m.cpu = m.cpu.zip(cpu).map(|(a, b)| a + b);
    }
    Ok(())
}

/// Warm-up on both, then the measured orders in alternating rounds.
async fn compare(cfg: &Config, store: &Target, raw: &Target) -> Result<(Measured, Measured)> {
    let actor = packer();
    drive(store, &actor, 0..cfg.warmup, None)
        .await
        .context("store warm-up")?;
    drive(raw, &actor, 0..cfg.warmup, None)
        .await
        .context("raw warm-up")?;
    let (mut s, mut r) = (Measured::new(), Measured::new());
    let first = cfg.warmup;
    let per_round = cfg.packs.div_ceil(ROUNDS);
    for round in 0..ROUNDS {
        let start = first + round * per_round;
        let end = (start + per_round).min(first + cfg.packs);
        if start >= end {
            break;
        }
        if round % 2 == 0 {
            drive(store, &actor, start..end, Some(&mut s))
                .await
                .context("store")?;
            drive(raw, &actor, start..end, Some(&mut r))
                .await
                .context("raw")?;
        } else {
            drive(raw, &actor, start..end, Some(&mut r))
                .await
                .context("raw")?;
            drive(store, &actor, start..end, Some(&mut s))
                .await
                .context("store")?;
        }
    }
    Ok((s, r))
}

/// Two databases that packed the same orders must hold the same.
fn same(what: &str, a: &Contents, b: &Contents) -> Result<()> {
    if a.counts != b.counts {
        let diff = count_differences(&COUNTS, &a.counts, &b.counts, |table, x, y| {
            format!("{table}: store {x} vs raw {y}")
        });
        bail!("{what}: different counts: {}", diff.join("; "));
    }
    ensure!(
        a.totals == b.totals,
        "{what}: different stock totals {:?} vs {:?}",
        a.totals,
        b.totals
    );
    for (name, same) in [
        ("packages and labels", a.packages == b.packages),
        ("pack movements", a.movements == b.movements),
        ("audit entries", a.audit == b.audit),
    ] {
        ensure!(same, "{what}: different {name}");
    }
    Ok(())
}

struct Row {
    backend: String,
    store: Measured,
    raw: Measured,
    /// Reservations moved per pack.
    locks_per_pack: f64,
}

// -------------------------------------------------------------------- SQLite

async fn bench_sqlite(cfg: &Config, pii: &PiiCipher) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let file = [dir.path().join("store.db"), dir.path().join("raw.db")];
    let urls = file.clone().map(|f| format!("sqlite://{}", f.display()));
    let setup = StoreOptions {
        sqlite_sync_full: false,
        ..StoreOptions::default()
    };
    for url in &urls {
        let store = Store::connect(url, &setup).await?;
        let prepared = prepare(&store, pii, cfg.orders()).await;
        store.close().await;
        prepared?;
    }
    let opts = StoreOptions {
        sqlite_sync_full: true,
        ..StoreOptions::default()
    };
    let store = Store::connect(&urls[0], &opts).await?;
    let raw = raw_sqlite::Raw::new(sqlite_pool(&file[1], true).await?).await?;
    let (store, raw) = (Target::Store(store), Target::RawSqlite(raw));
    let run = compare(cfg, &store, &raw).await;
    if let Target::Store(s) = &store {
        s.close().await;
    }
    if let Target::RawSqlite(r) = &raw {
        r.close().await;
    }
    let (s, r) = run?;
    let mut contents = Vec::with_capacity(2);
    for (url, path) in urls.iter().zip(["store", "raw"]) {
        let totals = integrity_totals(url, &opts, path).await?;
        let pool = raw_sqlite::Pool::connect(url).await?;
        let c = raw_sqlite::contents(&pool, &totals).await;
        pool.close().await;
        contents.push(c?);
    }
    same("sqlite store vs raw", &contents[0], &contents[1])?;
    Ok(Row {
        backend: "sqlite sync=FULL".into(),
        store: s,
        raw: r,
        locks_per_pack: locks_per_pack(&contents[0], cfg),
    })
}

/// Each moved reservation is two `pack` movements.
fn locks_per_pack(c: &Contents, cfg: &Config) -> f64 {
    c.movements.len() as f64 / 2.0 / cfg.orders() as f64
}

// ---------------------------------------------------------------- PostgreSQL

async fn bench_pg(cfg: &Config, pii: &PiiCipher, admin: &mut PgConnection) -> Result<Row> {
    let databases = scratch_names("bondgate_bench_pack");
    let urls = databases.clone().map(|db| with_database(&cfg.pg_url, &db));
    let result = match create_databases(admin, &databases).await {
        Ok(()) => bench_pg_on(cfg, pii, &urls).await,
        Err(e) => Err(e),
    };
    drop_databases(admin, &databases).await;
    result
}

async fn bench_pg_on(cfg: &Config, pii: &PiiCipher, urls: &[String; 2]) -> Result<Row> {
    let opts = StoreOptions::default();
    let store = Store::connect(&urls[0], &opts).await?;
    prepare(&store, pii, cfg.orders()).await?;
    let schema = Store::connect(&urls[1], &opts).await?;
    let prepared = prepare(&schema, pii, cfg.orders()).await;
    schema.close().await;
    prepared?;
    let raw = raw_pg::Raw::new(pg_pool(&urls[1], &opts).await?).await?;
    let (store, raw) = (Target::Store(store), Target::RawPg(raw));
    let run = compare(cfg, &store, &raw).await;
    if let Target::Store(s) = &store {
        s.close().await;
    }
    if let Target::RawPg(r) = &raw {
        r.close().await;
    }
    let (s, r) = run?;
    let mut contents = Vec::with_capacity(2);
    for (url, path) in urls.iter().zip(["store", "raw"]) {
        let totals = integrity_totals(url, &opts, path).await?;
        let pool = pg_pool(url, &opts).await?;
        let c = raw_pg::contents(&pool, &totals).await;
        pool.close().await;
        contents.push(c?);
    }
    same("postgres store vs raw", &contents[0], &contents[1])?;
    Ok(Row {
        backend: "postgres".into(),
        store: s,
        raw: r,
        locks_per_pack: locks_per_pack(&contents[0], cfg),
    })
}

// ---------------------------------------------------------------------- main

/// Round trips of one pack, `BEGIN` and `COMMIT` included, from the code:
/// the store makes 18 + 5 per reservation (order, box, lines, package upsert,
/// waybill, outbound look-up, held locks; per reservation the lock re-read,
/// two movements of which the first re-reads its holding, and the lock update;
/// then package, order and exceptions updates, the label's copy number, its
/// data and the job, the audit row, and the view's 2 reads); the raw path
/// makes 11 whatever the order.
fn round_trips(locks: f64) -> (f64, f64) {
    (18.0 + 5.0 * locks, 11.0)
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| path | backend | packs | p50 µs | p99 µs | max µs | packs/s |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        for (path, m) in [("store", &row.store), ("raw", &row.raw)] {
            let sorted = m.sorted();
            println!(
                "| {path} | {} | {} | {} | {} | {} | {} |",
                row.backend,
                m.packs(),
                percentile_us(&sorted, 50),
                percentile_us(&sorted, 99),
                sorted.last().copied().unwrap_or(0),
                m.per_s()
            );
        }
    }
    println!();
    for row in rows {
        let (store_rt, raw_rt) = round_trips(row.locks_per_pack);
        let (s, r) = (row.store.sorted(), row.raw.sorted());
        println!(
            "{}: {:.2} reservations moved per pack; round trips per pack: store {store_rt:.1}, raw {raw_rt:.0}; \
             store p50 is {} % of raw's; client CPU per pack (this process, 10 ms ticks): store {} µs, raw {} µs",
            row.backend,
            row.locks_per_pack,
            percentile_us(&s, 50) * 100 / percentile_us(&r, 50).max(1),
            row.store.cpu_per_pack(),
            row.raw.cpu_per_pack()
        );
    }
}

async fn run() -> Result<()> {
    let cfg = Config::from_env()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let pii = PiiCipher::from_key(&rand::random::<[u8; 32]>());
    println!(
        "pack bench: {} measured packs per path after {} warm-up, one at a time; orders of 1–{LINES_PER_ORDER_MAX} \
         lines over {SKUS} SKUs, picked into totes first; {cores} cores",
        cfg.packs, cfg.warmup
    );
    println!("SQLite {}, WAL, one writer", sqlite_version().await?);
    // Ask PostgreSQL first, so CI fails before spending minutes on SQLite.
    let mut admin = pg_admin(&cfg.pg_url, cfg.ci).await?;

    let mut rows = Vec::with_capacity(2);
    let started = Instant::now();
    let row = bench_sqlite(&cfg, &pii).await?;
    println!("{} done in {} s", row.backend, started.elapsed().as_secs());
    rows.push(row);
    if let Some(conn) = admin.as_mut() {
        let started = Instant::now();
        let row = bench_pg(&cfg, &pii, conn).await?;
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
    main_with("pack", run)
}
