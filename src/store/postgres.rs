//! PostgreSQL, for production and for several server instances sharing one
//! database.

use sqlx::postgres::PgPoolOptions;

type Db = sqlx::Postgres;

/// Row locks taken by read-modify-write transactions, so two servers (or two
/// requests) reserving the same stock queue on the holding's row.
/// Claims the first row of `t` nobody else is claiming: pickers logging in
/// together each take a different order instead of queueing for the same one.
macro_rules! skip_locked {
    () => {
        " FOR UPDATE OF t SKIP LOCKED"
    };
}

/// A timestamp column's clock hour in UTC, as text: `YYYY-MM-DDTHH`.
macro_rules! hour_of {
    ($col:literal) => {
        concat!(
            "to_char(",
            $col,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"
        )
    };
}

/// A SKU's barcodes as one JSON array of text, in barcode order (`[]` when
/// it has none): `$sku` names the SKU id column of the outer query.
macro_rules! barcodes_of {
    ($sku:literal) => {
        concat!(
            "(SELECT COALESCE(json_agg(b.barcode ORDER BY b.barcode)::text, '[]') FROM sku_barcodes b WHERE b.sku_id = ",
            $sku,
            ")"
        )
    };
}

macro_rules! for_update {
    () => {
        " FOR UPDATE"
    };
    ($table:literal) => {
        concat!(" FOR UPDATE OF ", $table)
    };
}

/// Nothing runs beside the pool on PostgreSQL: the server checkpoints.
type Housekeeping = ();

async fn connect_pools(url: &str, opts: &StoreOptions) -> StoreResult<(Pool, Pool, Housekeeping)> {
    let pool = PgPoolOptions::new()
        .max_connections(opts.pg_max_connections)
        .acquire_timeout(opts.acquire_timeout)
        .connect(url)
        .await?;
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .map_err(|e| StoreError::Db(e.into()))?;
    Ok((pool.clone(), pool, ()))
}

/// Whether order intake and PDA scans use the group-commit writer unless
/// `StoreOptions::group_commit` says otherwise.
const GROUP_COMMIT_DEFAULT: crate::store::GroupCommit = crate::store::GROUP_COMMIT_POSTGRES;

include!("sql_impl.rs");
include!("sql_orders.rs");
include!("sql_picking.rs");
include!("sql_packing.rs");
include!("sql_customs.rs");
include!("sql_gate.rs");
include!("sql_manifest.rs");
include!("sql_dashboard.rs");
