//! The manager's dashboard reads with 1 M movements in the ledger (DESIGN §7:
//! the dashboard stock query with 1 M movements in ≤ 50 ms), through the
//! store and as the same SQL by hand, on SQLite and on PostgreSQL.
//!
//! The warehouse: `BENCH_SKUS` SKUs (default 2,000), each in two lots spread
//! over three of 600 bins — 12,000 holdings — and `BENCH_MOVEMENTS`
//! movements (default 1,000,000): receipts, transfers between the SKU's bins
//! and damage, dated over the last 90 days, so every holding's figures are
//! what its own ~80 movements sum to. They are written in bulk by hand
//! (the ledger's trigger keeps the holdings, as it does for the store's own
//! writes); this bench measures reads, and `ledger` and `orders` measure
//! the writes. `Store::integrity` must be clean afterwards.
//!
//! Measured, alternating store and raw, `BENCH_READS` times each (default 60):
//! - **stock, all**: `Store::stock` with no filter (the dashboard's first
//!   page: up to 10,000 rows, and the totals);
//! - **stock, one SKU** and **stock, one bin**: the filtered views;
//! - **reconciliation**: `Store::reconciliation` (per SKU: received, shipped,
//!   adjusted in and out, summed over every movement; on hand; per customs
//!   document), which reads the whole ledger;
//! - **dashboard**: `Store::dashboard` (the pipeline, hourly work, customs
//!   states, exceptions; no orders in this warehouse, so it is the cost of
//!   its queries over empty order tables beside 1 M movements), store only.
//!
//! Raw is the same statements run with sqlx into tuples: the difference is
//! the store's own work (filters bound as options, rows turned into the
//! API's types).
//!
//! Run: `cargo bench --bench dashboard`. Knobs: `BENCH_MOVEMENTS`,
//! `BENCH_SKUS`, `BENCH_READS`, `BENCH_PG_URL`, `CI=true` (an unreachable
//! PostgreSQL fails the run), `TMPDIR` (where the SQLite file goes).

mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use bondgate::store::{StockQuery, Store, StoreOptions};
use common::{
    create_databases, drop_databases, env_count, main_with, percentile_us, pg_admin, pg_url,
    scratch_names, sqlite_version, with_database,
};

const BINS: usize = 600;
/// Rows the dashboard's stock table asks for (`ui/web/js/dashboard.js`).
const DASHBOARD_PAGE: i64 = 500;
const LOTS_PER_SKU: usize = 2;
const BINS_PER_LOT: usize = 3;
/// Rows per INSERT while seeding.
const CHUNK: usize = 500;
/// When the movements are dated: spread over the 90 days before this.
const SEED_END: &str = "2026-11-30";

struct Config {
    movements: usize,
    skus: usize,
    reads: usize,
}

impl Config {
    fn from_env() -> Result<Config> {
        Ok(Config {
            movements: env_count("BENCH_MOVEMENTS", 1_000_000, 20_000_000)?,
            skus: env_count("BENCH_SKUS", 2_000, 100_000)?,
            reads: env_count("BENCH_READS", 60, 10_000)?,
        })
    }
}

fn main() -> std::process::ExitCode {
    main_with("dashboard", run)
}

async fn run() -> Result<()> {
    let cfg = Config::from_env()?;
    println!(
        "dashboard bench: {} movements, {} SKUs, {} holdings, {} reads per path",
        cfg.movements,
        cfg.skus,
        cfg.skus * LOTS_PER_SKU * BINS_PER_LOT,
        cfg.reads
    );
    let mut table = Vec::new();
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("dash.db").display());
    println!("SQLite {}", sqlite_version().await?);
    table.extend(backend("sqlite", &url, &cfg).await?);
    let ci = common::ci();
    if let Some(mut admin) = pg_admin(&pg_url(), ci).await? {
        let [name, _] = scratch_names("bench_dash");
        create_databases(&mut admin, std::slice::from_ref(&name)).await?;
        let result = backend("postgres", &with_database(&pg_url(), &name), &cfg).await;
        drop_databases(&mut admin, std::slice::from_ref(&name)).await;
        table.extend(result?);
    }
    println!();
    println!("| backend | read | path | p50 ms | p99 ms | max ms | rows |");
    println!("|---|---|---|---:|---:|---:|---:|");
    for r in &table {
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} |",
            r.backend,
            r.read,
            r.path,
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.max_us as f64 / 1000.0,
            r.rows
        );
    }
    Ok(())
}

struct Row {
    backend: &'static str,
    read: &'static str,
    path: &'static str,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    rows: usize,
}

async fn backend(name: &'static str, url: &str, cfg: &Config) -> Result<Vec<Row>> {
    let store = Store::connect(url, &StoreOptions::default()).await?;
    let started = Instant::now();
    seed(url, cfg).await?;
    println!(
        "{name}: seeded {} movements in {:.1} s",
        cfg.movements,
        started.elapsed().as_secs_f64()
    );
    let integrity = store.integrity().await?;
    ensure!(
        integrity.is_clean() && integrity.movements_checked as usize >= cfg.movements,
        "{name}: the seeded ledger is not consistent: {integrity:?}"
    );
    let raw = Raw::connect(url).await?;
    let one_sku = StockQuery {
        sku: Some(common::sku_code(cfg.skus / 2)),
        ..StockQuery::default()
    };
    let one_bin = StockQuery {
        bin: Some(bin_code(BINS / 2)),
        ..StockQuery::default()
    };
    let page = StockQuery {
        limit: Some(DASHBOARD_PAGE),
        expiring_within_days: Some(30),
        today: Some(chrono::NaiveDate::from_ymd_opt(2027, 6, 1).expect("a date")),
        ..StockQuery::default()
    };
    let mut rows = Vec::new();
    for (read, q) in [
        (
            "stock, the dashboard's page (500 rows, expiry counts)",
            page,
        ),
        ("stock, all (10,000 rows)", StockQuery::default()),
        ("stock, one SKU", one_sku),
        ("stock, one bin", one_bin),
    ] {
        let (store_t, raw_t, n) = alternate(
            cfg.reads,
            || async {
                let s = store.stock(&q).await?;
                Ok(s.rows.len())
            },
            || async { raw.stock(&q).await },
        )
        .await?;
        rows.push(row(name, read, "store", &store_t, n));
        rows.push(row(name, read, "raw", &raw_t, n));
    }
    let (store_t, raw_t, n) = alternate(
        cfg.reads.div_ceil(4),
        || async { Ok(store.reconciliation(None).await?.len()) },
        || async { raw.reconciliation().await },
    )
    .await?;
    rows.push(row(name, "reconciliation", "store", &store_t, n));
    rows.push(row(name, "reconciliation", "raw", &raw_t, n));
    let mut t = Vec::new();
    for _ in 0..cfg.reads {
        let at = Instant::now();
        store.dashboard(chrono::Utc::now()).await?;
        t.push(micros(at.elapsed()));
    }
    rows.push(row(name, "dashboard summary", "store", &t, 8));
    store.close().await;
    Ok(rows)
}

fn row(
    backend: &'static str,
    read: &'static str,
    path: &'static str,
    t: &[u64],
    rows: usize,
) -> Row {
    let mut t = t.to_vec();
    t.sort_unstable();
    Row {
        backend,
        read,
        path,
        p50_us: percentile_us(&t, 50),
        p99_us: percentile_us(&t, 99),
        max_us: *t.last().unwrap_or(&0),
        rows,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `n` reads of each path, alternating; both must see the same row count.
async fn alternate<A, B, FA, FB>(n: usize, a: A, b: B) -> Result<(Vec<u64>, Vec<u64>, usize)>
where
    A: Fn() -> FA,
    B: Fn() -> FB,
    FA: std::future::Future<Output = Result<usize>>,
    FB: std::future::Future<Output = Result<usize>>,
{
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    let mut rows = 0;
    // One of each first, unmeasured: caches warm for both alike.
    a().await?;
    b().await?;
    for _ in 0..n {
        let at = Instant::now();
        let ra = a().await?;
        ta.push(micros(at.elapsed()));
        let at = Instant::now();
        let rb = b().await?;
        tb.push(micros(at.elapsed()));
        ensure!(ra == rb, "store read {ra} rows, raw {rb}");
        rows = ra;
    }
    Ok((ta, tb, rows))
}

fn bin_code(n: usize) -> String {
    format!("D-{n:04}")
}

/// The bins a lot of a SKU is kept in.
fn lot_bins(sku: usize, lot: usize) -> [usize; BINS_PER_LOT] {
    let first = (sku * 7 + lot * 13) % BINS;
    [first, (first + 200) % BINS, (first + 400) % BINS]
}

/// SKUs, bins and lots by hand, then the movements in bulk: per holding a
/// receipt first, then transfers to and from the lot's other bins and some
/// damage, never taking more than the holding has.
async fn seed(url: &str, cfg: &Config) -> Result<()> {
    let mut db = Raw::connect(url).await?;
    let at = format!("{SEED_END}T00:00:00+00:00");
    let mut sql = Vec::new();
    for chunk in (0..cfg.skus).collect::<Vec<_>>().chunks(CHUNK) {
        let values: Vec<String> = chunk
            .iter()
            .map(|&n| {
                format!(
                    "('{}', 'Bench serum {n}', '3304990099', '{}', 120, 1095, 'KOR', 'active', '{at}', '{at}')",
                    common::sku_code(n),
                    n + 1
                )
            })
            .collect();
        sql.push(format!(
            "INSERT INTO skus (code, name, hs_code, ledger_item_no, unit_weight_grams, shelf_life_days, origin_country,
                 record_status, created_at, updated_at) VALUES {}",
            values.join(", ")
        ));
    }
    let values: Vec<String> = (0..BINS)
        .map(|b| format!("('{}', 'D', {b}, 'storage', '{at}', '{at}')", bin_code(b)))
        .collect();
    sql.push(format!(
        "INSERT INTO locations (code, zone, walk_seq, kind, created_at, updated_at) VALUES {}",
        values.join(", ")
    ));
    for chunk in (0..cfg.skus).collect::<Vec<_>>().chunks(CHUNK) {
        let values: Vec<String> = chunk
            .iter()
            .flat_map(|&n| {
                (0..LOTS_PER_SKU).map(move |l| {
                    format!(
                        "((SELECT id FROM skus WHERE code = '{}'), 'L{l}', '{}')",
                        common::sku_code(n),
                        if l == 0 { "2027-06-30" } else { "2028-03-31" }
                    )
                })
            })
            .collect();
        sql.push(format!(
            "INSERT INTO lots (sku_id, batch, expiry) VALUES {}",
            values.join(", ")
        ));
    }
    db.execute_all(&sql).await?;
    let sku_ids = db.ids("SELECT code, id FROM skus").await?;
    let bin_ids = db.ids("SELECT code, id FROM locations").await?;
    let lot_ids = db
        .ids("SELECT s.code || '/' || l.batch, l.id FROM lots l JOIN skus s ON s.id = l.sku_id")
        .await?;

    // Every holding: a running balance so no movement takes more than is there.
    let holdings: Vec<(i64, i64, [i64; BINS_PER_LOT])> = (0..cfg.skus)
        .flat_map(|n| (0..LOTS_PER_SKU).map(move |l| (n, l)))
        .map(|(n, l)| {
            let code = common::sku_code(n);
            let bins = lot_bins(n, l).map(|b| bin_ids[&bin_code(b)]);
            (sku_ids[&code], lot_ids[&format!("{code}/L{l}")], bins)
        })
        .collect();
    let mut balance = vec![[0i64; BINS_PER_LOT]; holdings.len()];
    let start = chrono::NaiveDate::parse_from_str(SEED_END, "%Y-%m-%d")?
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        - chrono::Duration::days(90);
    let step_ms = (90 * 86_400_000 / cfg.movements.max(1)) as i64;
    let mut rows = Vec::with_capacity(CHUNK);
    let mut batch = Vec::new();
    let mut written = 0;
    let mut i = 0usize;
    while written < cfg.movements {
        let h = i % holdings.len();
        let round = i / holdings.len();
        let (sku, lot, bins) = holdings[h];
        let at = (start + chrono::Duration::milliseconds(step_ms * written as i64)).to_rfc3339();
        let from = round % BINS_PER_LOT;
        let to = (round + 1) % BINS_PER_LOT;
        let doc = format!("QD2924{:014}", round % 50);
        let mut push = |kind: &str, bin: i64, qty: i64, buckets: (&str, &str), customs: bool| {
            rows.push(format!(
                "('{kind}', {sku}, {bin}, {lot}, {qty}, {}, {}, 'bench', 'BENCH-{round}', {}, 'bench', '{at}')",
                sql_text(buckets.0),
                sql_text(buckets.1),
                if customs { format!("'{doc}'") } else { "NULL".into() }
            ));
        };
        if round % 8 == 0 || balance[h][from] < 2 {
            push("receive", bins[from], 40, ("", "available"), true);
            balance[h][from] += 40;
            written += 1;
        } else if round % 8 == 5 {
            push("damage", bins[from], 1, ("available", "defective"), false);
            balance[h][from] -= 1;
            written += 1;
        } else {
            // A transfer: out of one bin, into another, one movement each.
            let qty = (balance[h][from] / 2).max(1);
            push("transfer", bins[from], qty, ("available", ""), false);
            push("transfer", bins[to], qty, ("", "available"), false);
            balance[h][from] -= qty;
            balance[h][to] += qty;
            written += 2;
        }
        i += 1;
        if rows.len() >= CHUNK || written >= cfg.movements {
            batch.push(format!(
                "INSERT INTO movements (kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket, doc_type,
                     doc_no, customs_doc_no, actor, at) VALUES {}",
                rows.join(", ")
            ));
            rows.clear();
            if batch.len() >= 40 {
                db.execute_all(&batch).await?;
                batch.clear();
            }
        }
    }
    db.execute_all(&batch).await?;
    db.analyze().await?;
    Ok(())
}

fn sql_text(s: &str) -> String {
    if s.is_empty() {
        "NULL".into()
    } else {
        format!("'{s}'")
    }
}

/// The same statements as the store, by hand.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

type StockTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<chrono::NaiveDate>,
    i64,
    i64,
    i64,
);

const RECONCILE_TOTALS: &str = "SELECT s.code, s.ledger_item_no,
         CAST(COALESCE(SUM(CASE WHEN m.kind = 'receive' THEN m.qty ELSE 0 END), 0) AS BIGINT),
         CAST(COALESCE(SUM(CASE WHEN m.kind = 'ship' THEN m.qty ELSE 0 END), 0) AS BIGINT),
         CAST(COALESCE(SUM(CASE WHEN m.kind = 'adjust' AND m.from_bucket IS NULL THEN m.qty ELSE 0 END), 0) AS BIGINT),
         CAST(COALESCE(SUM(CASE WHEN m.kind = 'adjust' AND m.to_bucket IS NULL THEN m.qty ELSE 0 END), 0) AS BIGINT)
     FROM skus s LEFT JOIN movements m ON m.sku_id = s.id
     GROUP BY s.id, s.code, s.ledger_item_no ORDER BY s.code";
const RECONCILE_ON_HAND: &str =
    "SELECT s.code, CAST(COALESCE(SUM(h.available + h.locked + h.defective), 0) AS BIGINT)
     FROM holdings h JOIN skus s ON s.id = h.sku_id GROUP BY s.code";
const RECONCILE_DOCS: &str = "SELECT s.code, m.customs_doc_no,
         CAST(SUM(CASE WHEN m.kind = 'receive' THEN m.qty ELSE 0 END) AS BIGINT),
         CAST(SUM(CASE WHEN m.kind = 'ship' THEN m.qty ELSE 0 END) AS BIGINT)
     FROM movements m JOIN skus s ON s.id = m.sku_id
     WHERE m.customs_doc_no IS NOT NULL AND m.kind IN ('receive', 'ship')
     GROUP BY s.code, m.customs_doc_no ORDER BY s.code, m.customs_doc_no";

macro_rules! on_pool {
    ($raw:expr, $pool:ident => $body:expr) => {
        match $raw {
            Raw::Sqlite($pool) => $body,
            Raw::Postgres($pool) => $body,
        }
    };
}

impl Raw {
    async fn connect(url: &str) -> Result<Raw> {
        Ok(if url.starts_with("sqlite:") {
            Raw::Sqlite(sqlx::SqlitePool::connect(url).await?)
        } else {
            Raw::Postgres(sqlx::PgPool::connect(url).await?)
        })
    }

    async fn execute_all(&mut self, statements: &[String]) -> Result<()> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for s in statements {
                sqlx::query(s).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn ids(&self, sql: &str) -> Result<std::collections::HashMap<String, i64>> {
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, (String, i64)>(sql).fetch_all(pool).await?)
                .into_iter()
                .collect(),
        )
    }

    /// Statistics for the planner; on PostgreSQL also the vacuum that
    /// autovacuum would have done after a million updates of 12,000
    /// holdings (this machine runs with autovacuum off).
    async fn analyze(&self) -> Result<()> {
        match self {
            Raw::Sqlite(pool) => {
                sqlx::query("ANALYZE").execute(pool).await?;
            }
            Raw::Postgres(pool) => {
                sqlx::query("VACUUM ANALYZE").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// The store's statements for this query: only the filters given.
    async fn stock(&self, q: &StockQuery) -> Result<usize> {
        let mut filter = String::from(
            "FROM holdings h JOIN skus s ON s.id = h.sku_id JOIN locations l ON l.id = h.location_id
             JOIN lots lot ON lot.id = h.lot_id WHERE h.available + h.locked + h.defective > 0",
        );
        let mut binds = Vec::new();
        for (column, value) in [("s.code", &q.sku), ("l.code", &q.bin)] {
            if let Some(v) = value {
                binds.push(v.clone());
                filter.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        let limit = q
            .limit
            .map_or(bondgate::store::STOCK_ROWS_MAX, |n| n as usize);
        let rows = format!(
            "SELECT s.code, s.name, l.code, l.zone, l.kind, lot.batch, lot.expiry, h.available, h.locked, h.defective
             {filter} ORDER BY s.code, l.walk_seq, l.code, lot.expiry NULLS LAST, lot.batch LIMIT {}",
            limit + 1
        );
        let today = q.today.unwrap_or_else(|| chrono::Utc::now().date_naive());
        let soon = today + chrono::Days::new(q.expiring_within_days.unwrap_or(0) as u64);
        let totals = format!(
            "SELECT CAST(COALESCE(SUM(h.available), 0) AS BIGINT), CAST(COALESCE(SUM(h.locked), 0) AS BIGINT),
                    CAST(COALESCE(SUM(h.defective), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN lot.expiry < ${0} THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN lot.expiry >= ${0} AND lot.expiry <= ${1} THEN 1 ELSE 0 END), 0) AS BIGINT)
             {filter}",
            binds.len() + 1,
            binds.len() + 2
        );
        let n = on_pool!(self, pool => {
            let mut rq = sqlx::query_as::<_, StockTuple>(&rows);
            let mut tq = sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(&totals);
            for v in &binds {
                rq = rq.bind(v);
                tq = tq.bind(v);
            }
            let r = rq.fetch_all(pool).await?;
            tq.bind(today).bind(soon).fetch_one(pool).await?;
            r.len().min(limit)
        });
        Ok(n)
    }

    async fn reconciliation(&self) -> Result<usize> {
        let n = on_pool!(self, pool => {
            let t: Vec<(String, Option<String>, i64, i64, i64, i64)> =
                sqlx::query_as(RECONCILE_TOTALS).fetch_all(pool).await?;
            let _: Vec<(String, i64)> = sqlx::query_as(RECONCILE_ON_HAND).fetch_all(pool).await?;
            let _: Vec<(String, String, i64, i64)> = sqlx::query_as(RECONCILE_DOCS).fetch_all(pool).await?;
            t.len()
        });
        Ok(n)
    }
}
