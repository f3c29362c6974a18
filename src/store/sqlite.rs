//! SQLite, the embedded default: one file under the data directory, WAL
//! journal, one writer connection and a few readers.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

type Db = sqlx::Sqlite;

/// SQLite has one writer at a time, so row locks do not exist: the single
/// writer connection already serialises every read-modify-write.
/// Claims the first row of `t` nobody else is claiming: pickers logging in
/// together each take a different order instead of queueing for the same one.
macro_rules! skip_locked {
    () => {
        ""
    };
}

/// A timestamp column's clock hour in UTC, as text: `YYYY-MM-DDTHH`.
macro_rules! hour_of {
    ($col:literal) => {
        concat!("substr(", $col, ", 1, 13)")
    };
}

macro_rules! for_update {
    () => {
        ""
    };
    ($table:literal) => {
        ""
    };
}

/// How long a connection waits for a lock held by another process (a backup,
/// the `sqlite3` shell) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers run beside the writer under WAL; four covers the dashboards
/// without holding many file handles.
const READ_CONNECTIONS: u32 = 4;

async fn connect_pools(url: &str, opts: &StoreOptions) -> StoreResult<(Pool, Pool)> {
    let base = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(if opts.sqlite_sync_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    // One writer: writers queue for the connection instead of failing with
    // SQLITE_BUSY half-way through a transaction.
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(base.clone())
        .await?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&write)
        .await
        .map_err(|e| StoreError::Db(e.into()))?;
    let read = SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .acquire_timeout(opts.acquire_timeout)
        .connect_with(base.read_only(true))
        .await?;
    Ok((write, read))
}

include!("sql_impl.rs");
include!("sql_orders.rs");
include!("sql_picking.rs");
include!("sql_packing.rs");
include!("sql_customs.rs");
include!("sql_gate.rs");
include!("sql_manifest.rs");
include!("sql_dashboard.rs");
