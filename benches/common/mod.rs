//! What the benchmarks share: environment knobs, the scratch databases on
//! PostgreSQL, the raw paths' pools, the master data and the checks that the
//! two paths of a run did the same work.
//!
//! Each bench is its own crate and includes this file with `mod common;`, so
//! a helper one bench does not call (`pda` uses only the PostgreSQL URL knob)
//! would be dead code in that crate: hence the allow below.
#![allow(dead_code)]

pub mod packing;

use std::future::Future;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use bondgate::domain::SkuCode;
use bondgate::store::{
    Actor, RecordStatus, SkuInput, StockQuery, StockTotals, Store, StoreOptions,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection;

// ------------------------------------------------------------------- knobs

/// SQLite has one writer: concurrency would only queue on the store's single
/// write connection, so it runs one transaction at a time.
pub const SQLITE_TASKS: usize = 1;
/// Measured rounds per path, alternating between the two paths.
pub const ROUNDS: usize = 6;
pub const PG_TASKS_DEFAULT: usize = 8;
pub const PG_TASKS_MAX: usize = 64;
pub const PG_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The target: the store reaches this share of raw throughput.
pub const TARGET_PERCENT: u64 = 50;
/// The store's own SQLite busy timeout, mirrored by the raw pool.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A count from the environment (`_` separators allowed), `default` when unset.
pub fn env_count(name: &str, default: usize, max: usize) -> Result<usize> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    let n: usize = text
        .trim()
        .replace('_', "")
        .parse()
        .with_context(|| format!("{name}={text} is not a whole number"))?;
    ensure!(
        (1..=max).contains(&n),
        "{name} must be between 1 and {max}, got {n}"
    );
    Ok(n)
}

/// `BENCH_PG_URL`: the PostgreSQL server to create scratch databases on.
pub fn pg_url() -> String {
    std::env::var("BENCH_PG_URL").unwrap_or_else(|_| PG_URL_DEFAULT.into())
}

/// `BENCH_PG_TASKS`: concurrent tasks on PostgreSQL.
pub fn pg_tasks() -> Result<usize> {
    env_count("BENCH_PG_TASKS", PG_TASKS_DEFAULT, PG_TASKS_MAX)
}

/// `CI=true` (or `1`): an unreachable PostgreSQL fails the run.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

// ---------------------------------------------------------------- workload

pub fn sku_code(n: usize) -> String {
    format!("BENCH-SKU-{n:03}")
}

/// Generated codes are valid by construction; a failure here is a bug in the
/// benchmark, not an operating error.
pub fn valid<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    r.expect("the benchmark generates valid codes")
}

/// SKUs `0..skus` of the master data, the same on every database.
pub async fn seed_skus(store: &Store, actor: &Actor, skus: usize) -> Result<()> {
    for n in 0..skus {
        let sku = SkuInput {
            code: valid(SkuCode::parse(sku_code(n))),
            name: format!("Bench serum {n}"),
            barcodes: Vec::new(),
            hs_code: Some("3304990099".into()),
            customs_item_record_no: None,
            ledger_item_no: Some(format!("{}", n + 1)),
            unit_weight_grams: 120,
            shelf_life_days: Some(1_095),
            origin_country: Some("KOR".into()),
            record_status: RecordStatus::Active,
        };
        store.create_sku(actor, &sku).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- raw path

/// The same as the store's private `now()`: microseconds, what PostgreSQL keeps.
/// A resident ID number of buyer `buyer` that passes the GB 11643 check
/// (the domain's own check character).
pub fn id_number(buyer: usize) -> String {
    let born = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date")
        + chrono::Days::new((buyer * 3 % 15_000) as u64);
    let body = format!("330106{}{:03}", born.format("%Y%m%d"), buyer % 1_000);
    let check = bondgate::domain::idcard::check_char(&body).expect("17 digits");
    format!("{body}{check}")
}

pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A pool with the store's own SQLite settings and its single writer.
pub async fn sqlite_pool(path: &std::path::Path, sync_full: bool) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(if sync_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// A pool sized like the store's.
pub async fn pg_pool(url: &str, opts: &StoreOptions) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(opts.pg_max_connections)
        .acquire_timeout(opts.acquire_timeout)
        .connect(url)
        .await?)
}

// ------------------------------------------------------------ measurements

/// Per second, from a count and the time it took.
pub fn per_second(n: usize, elapsed: Duration) -> u64 {
    (n as u128 * 1_000_000 / elapsed.as_micros().max(1)) as u64
}

/// The `p`th percentile of sorted latencies.
pub fn percentile_us(sorted: &[u64], p: usize) -> u64 {
    let n = sorted.len();
    sorted[(n * p / 100).min(n - 1)]
}

// ------------------------------------------------------------------ checks

/// Opens the database at `url` with the store, which must find it clean, and
/// returns its stock totals.
pub async fn integrity_totals(url: &str, opts: &StoreOptions, path: &str) -> Result<StockTotals> {
    let store = Store::connect(url, opts).await?;
    let report = store.integrity().await?;
    ensure!(
        report.is_clean(),
        "{path} database fails the integrity check: {report:?}"
    );
    let totals = store.stock(&StockQuery::default()).await?.totals;
    store.close().await;
    Ok(totals)
}

/// The tables of `tables` (name, query) whose counts differ between `a` and
/// `b`, each described by `describe(table, a, b)`.
pub fn count_differences(
    tables: &[(&str, &str)],
    a: &[i64],
    b: &[i64],
    describe: impl Fn(&str, i64, i64) -> String,
) -> Vec<String> {
    tables
        .iter()
        .zip(a.iter().zip(b))
        .filter(|(_, (x, y))| x != y)
        .map(|((table, _), (x, y))| describe(table, *x, *y))
        .collect()
}

// ------------------------------------------------------------------ SQLite

/// The backend's name in the result table.
pub fn sqlite_backend(sync_full: bool) -> String {
    format!("sqlite sync={}", if sync_full { "FULL" } else { "NORMAL" })
}

pub async fn sqlite_version() -> Result<String> {
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
    Ok(sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await?)
}

// -------------------------------------------------------------- PostgreSQL

/// `url` with its database name replaced (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &base[..path_start])
}

pub async fn pg_connect(url: &str) -> Result<PgConnection> {
    tokio::time::timeout(PG_CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .with_context(|| format!("no answer within {} s", PG_CONNECT_TIMEOUT.as_secs()))?
        .map_err(Into::into)
}

pub async fn pg_describe(admin: &mut PgConnection) -> Result<String> {
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut *admin)
        .await?;
    let fsync: String = sqlx::query_scalar("SHOW fsync")
        .fetch_one(&mut *admin)
        .await?;
    let commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut *admin)
        .await?;
    Ok(format!(
        "PostgreSQL {version} (fsync={fsync}, synchronous_commit={commit})"
    ))
}

/// The admin connection to the server at `url`, its description printed; or,
/// where it is unreachable, `None` (skip the PostgreSQL rows) unless `ci`.
/// Asked first, so CI fails before spending minutes on SQLite.
pub async fn pg_admin(url: &str, ci: bool) -> Result<Option<PgConnection>> {
    match pg_connect(url).await {
        Ok(mut conn) => {
            println!("{}", pg_describe(&mut conn).await?);
            Ok(Some(conn))
        }
        Err(e) if ci => {
            bail!("PostgreSQL at {url} is unreachable ({e:#}); CI=true, so this fails the run")
        }
        Err(e) => {
            println!(
                "PostgreSQL at {url} is unreachable ({e:#}): SKIPPING the PostgreSQL rows (set BENCH_PG_URL)"
            );
            Ok(None)
        }
    }
}

/// Names for a run's two scratch databases, `{prefix}_{run}_store` and
/// `{prefix}_{run}_raw`.
pub fn scratch_names(prefix: &str) -> [String; 2] {
    let run = format!("{:08x}", rand::random::<u32>());
    [
        format!("{prefix}_{run}_store"),
        format!("{prefix}_{run}_raw"),
    ]
}

/// Creates `databases` in order, stopping at the first that fails.
pub async fn create_databases(admin: &mut PgConnection, databases: &[String]) -> Result<()> {
    for db in databases {
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&mut *admin)
            .await
            .with_context(|| format!("creating database {db}"))?;
    }
    Ok(())
}

/// Drops `databases`, warning about (not failing on) any that will not go.
pub async fn drop_databases(admin: &mut PgConnection, databases: &[String]) {
    for db in databases {
        // FORCE: a failed run may leave a pooled connection behind.
        if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&mut *admin)
            .await
        {
            eprintln!("warning: could not drop database {db}: {e}");
        }
    }
}

// -------------------------------------------------------------------- main

/// Runs bench `name`'s `run` on a multi-threaded runtime; a failure is
/// printed and fails the process.
pub fn main_with<F: Future<Output = Result<()>>>(name: &str, run: impl FnOnce() -> F) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name} bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name} bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
