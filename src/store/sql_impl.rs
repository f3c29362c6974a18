// The store's SQL, written once and compiled twice: `sqlite.rs` and
// `postgres.rs` each `include!` this file after defining `Db` (the sqlx
// driver), `connect_pools` and the `for_update!()` macro. Everything here is
// type-checked against both drivers, so one query text serves both backends
// (SQLite accepts PostgreSQL's `$n` parameters, `RETURNING` and
// `ON CONFLICT`). Keep this file free of backend-specific SQL: put such
// differences in the two modules.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::BoxFuture;
use serde::{de::DeserializeOwned, Serialize};

use crate::domain::codes::QUANTITY_MAX;
use crate::domain::reconcile::{MovementTotals, Reconciliation};
use crate::domain::{
    Balance, BatchNo, Bucket, LedgerError, LockState, MovementKind, Quantity, Role,
};
use crate::store::batch::{Batcher, Session};
use crate::store::error::{StoreError, StoreResult};
use crate::store::outbound::*;
use crate::store::types::*;
use crate::store::{
    request_hash, IntegrityReport, StoreOptions, IDEMPOTENCY_ATTEMPTS, LINES_MAX,
    MOVEMENT_PAGE_MAX, STOCK_ROWS_MAX,
};

type Pool = sqlx::Pool<Db>;
type Tx = sqlx::Transaction<'static, Db>;

/// One backend's store: a pool for writes and one for reads (the same pool on
/// PostgreSQL; on SQLite a single writer connection, so writers queue in the
/// pool instead of failing with SQLITE_BUSY).
#[derive(Clone, Debug)]
pub struct SqlStore {
    write: Pool,
    read: Pool,
    opts: StoreOptions,
    /// The group-commit writer over `write`, when PDA scans run through it
    /// (`store::batch`).
    batch: Option<Batcher<Pool>>,
    /// Order intake's queue in front of `batch`: orders queued together are
    /// taken as one unit (`sql_orders.rs`).
    intake: Option<Intake>,
    /// What the backend runs beside the pools (SQLite: the WAL checkpointer),
    /// kept alive as long as the store.
    _housekeeping: Housekeeping,
}

/// The group-commit writer's transactions: the write pool's, with one
/// savepoint per unit (`SAVEPOINT` is the same on both backends).
impl Session for Pool {
    type Tx = Tx;

    fn begin(&self) -> BoxFuture<'_, Result<Tx, sqlx::Error>> {
        Box::pin(sqlx::Pool::begin(self))
    }

    fn savepoint(tx: &mut Tx) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::Executor::execute(&mut **tx, "SAVEPOINT unit")
                .await
                .map(drop)
        })
    }

    fn release(tx: &mut Tx) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::Executor::execute(&mut **tx, "RELEASE SAVEPOINT unit")
                .await
                .map(drop)
        })
    }

    fn rollback_to(tx: &mut Tx) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::Executor::execute(&mut **tx, "ROLLBACK TO SAVEPOINT unit").await?;
            sqlx::Executor::execute(&mut **tx, "RELEASE SAVEPOINT unit")
                .await
                .map(drop)
        })
    }

    fn commit(tx: Tx) -> BoxFuture<'static, Result<(), sqlx::Error>> {
        Box::pin(tx.commit())
    }
}

/// Timestamps are kept to the microsecond, the precision PostgreSQL stores, so
/// a value reads back equal to what was written on both backends.
fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

enum Idem {
    /// The key was used before for the same request: its stored answer.
    Done(String),
    /// A new operation with this id.
    New(i64),
    /// A concurrent transaction claimed the key first; retry to read its answer.
    Race,
}

/// Turns constraint failures into refusals: a bug that slips past the domain
/// checks still cannot oversell, and the caller learns why.
fn map_db(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        use sqlx::error::ErrorKind;
        match d.kind() {
            ErrorKind::CheckViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::ForeignKeyViolation => {
                return StoreError::Constraint(d.message().to_string());
            }
            _ => {}
        }
    }
    StoreError::Db(e)
}

fn decode_response<T: DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("stored response: {e}")))
}

fn parse_kind(s: &str) -> StoreResult<LocationKind> {
    LocationKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("location kind {s}")))
}

fn parse_bucket(s: Option<String>) -> StoreResult<Option<Bucket>> {
    s.map(|b| Bucket::parse(&b).ok_or_else(|| StoreError::Corrupt(format!("bucket {b}"))))
        .transpose()
}

fn parse_roles(s: &str) -> Vec<Role> {
    s.split(',').filter_map(Role::parse).collect()
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `$body` once per idempotency key inside a write transaction: a repeat
/// of the same request returns the stored answer, a different request under a
/// used key is refused, and the answer is stored in the same transaction as
/// the work it describes.
macro_rules! idempotent {
    ($self:ident, $actor:expr, $scope:expr, $key:expr, $hash:expr, |$tx:ident, $op:ident, $at:ident| $body:expr) => {{
        let hash: String = $hash;
        let mut answer = None;
        for _ in 0..IDEMPOTENCY_ATTEMPTS {
            let mut $tx = $self.write.begin().await?;
            let $at = now();
            match idem_begin(&mut $tx, $scope, $key, &hash, $actor, $at).await? {
                Idem::Done(resp) => {
                    answer = Some(decode_response(&resp)?);
                    break;
                }
                Idem::Race => continue,
                Idem::New($op) => {
                    let out = $body;
                    store_answer(&mut $tx, $op, &out).await?;
                    $tx.commit().await?;
                    answer = Some(out);
                    break;
                }
            }
        }
        answer.ok_or(StoreError::Contended)
    }};
}

/// Stores the answer to operation `op` beside the work it describes, for a
/// replay to be given.
async fn store_answer<T: Serialize>(tx: &mut Tx, op: i64, out: &T) -> StoreResult<()> {
    let text = serde_json::to_string(out).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query("UPDATE operations SET response = $1 WHERE id = $2")
        .bind(text)
        .bind(op)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Claims an idempotency key (`scope`, `key`, with the request's hash) for
/// a new operation, with its answer if it is known already; `None` if the key
/// is taken (by an earlier request, or by a transaction not yet committed).
async fn claim_key(
    tx: &mut Tx,
    (scope, key, hash): (&str, &str, &str),
    actor: &str,
    at: DateTime<Utc>,
    response: Option<&str>,
) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO operations (scope, key, request_hash, actor, at, response) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (scope, key) DO NOTHING RETURNING id",
    )
    .bind(scope)
    .bind(key)
    .bind(hash)
    .bind(actor)
    .bind(at)
    .bind(response)
    .fetch_optional(&mut **tx)
    .await?)
}

async fn idem_begin(
    tx: &mut Tx,
    scope: &'static str,
    key: &str,
    hash: &str,
    actor: &Actor,
    at: DateTime<Utc>,
) -> StoreResult<Idem> {
    // Claim the key first: a new key (the usual case) costs one statement.
    if let Some(id) = claim_key(tx, (scope, key, hash), &actor.username, at, None).await? {
        return Ok(Idem::New(id));
    }
    match idem_seen(tx, scope, key).await? {
        Some(seen) => idem_again(scope, key, hash, seen),
        // Claimed by a transaction we cannot see yet: retry to read its answer.
        None => Ok(Idem::Race),
    }
}

/// The request hash and stored answer under a used key.
async fn idem_seen(
    tx: &mut Tx,
    scope: &'static str,
    key: &str,
) -> StoreResult<Option<(String, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT request_hash, response FROM operations WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?)
}

/// What a key found used means for a request with `hash`: its stored answer,
/// a refusal if the key was used for another request, or a race with a
/// transaction that holds the key and has not answered yet.
fn idem_again(
    scope: &'static str,
    key: &str,
    hash: &str,
    (seen_hash, response): (String, Option<String>),
) -> StoreResult<Idem> {
    match response {
        _ if seen_hash != hash => Err(StoreError::IdempotencyConflict {
            scope,
            key: key.to_string(),
        }),
        Some(resp) => Ok(Idem::Done(resp)),
        None => Ok(Idem::Race),
    }
}

async fn audit(
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    subject: &str,
    detail: &impl Serialize,
) -> StoreResult<()> {
    let detail = serde_json::to_string(detail).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now())
    .bind(&actor.username)
    .bind(action)
    .bind(subject)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

struct SkuRef {
    id: i64,
    status: RecordStatus,
}

async fn sku_ref(tx: &mut Tx, code: &str) -> StoreResult<SkuRef> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, record_status FROM skus WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut **tx)
            .await?;
    let (id, status) = row.ok_or_else(|| StoreError::UnknownSku(code.to_string()))?;
    let status = RecordStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("record status {status}")))?;
    Ok(SkuRef { id, status })
}

struct LocRef {
    id: i64,
    kind: LocationKind,
    active: bool,
}

async fn location_ref(tx: &mut Tx, code: &str) -> StoreResult<LocRef> {
    let row: Option<(i64, String, bool)> =
        sqlx::query_as("SELECT id, kind, active FROM locations WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut **tx)
            .await?;
    let (id, kind, active) = row.ok_or_else(|| StoreError::UnknownLocation(code.to_string()))?;
    Ok(LocRef {
        id,
        kind: parse_kind(&kind)?,
        active,
    })
}

async fn active_location(tx: &mut Tx, code: &str) -> StoreResult<LocRef> {
    let loc = location_ref(tx, code).await?;
    if !loc.active {
        return Err(StoreError::Invalid(format!("bin {code} is inactive")));
    }
    Ok(loc)
}

async fn lot_find(
    tx: &mut Tx,
    sku_id: i64,
    batch: &BatchNo,
) -> StoreResult<Option<(i64, Option<NaiveDate>)>> {
    Ok(
        sqlx::query_as("SELECT id, expiry FROM lots WHERE sku_id = $1 AND batch = $2")
            .bind(sku_id)
            .bind(batch.as_str())
            .fetch_optional(&mut **tx)
            .await?,
    )
}

async fn lot_require(
    tx: &mut Tx,
    sku_id: i64,
    sku: &str,
    batch: &BatchNo,
    bin: &str,
) -> StoreResult<i64> {
    lot_find(tx, sku_id, batch)
        .await?
        .map(|(id, _)| id)
        .ok_or_else(|| StoreError::UnknownLot {
            sku: sku.into(),
            batch: batch.to_string(),
            bin: bin.into(),
        })
}

/// The lot of a batch, created on first sight. A batch's expiry is fixed: a
/// later document naming another expiry for the same batch is refused.
async fn lot_ensure(
    tx: &mut Tx,
    sku_id: i64,
    sku: &str,
    batch: &BatchNo,
    expiry: Option<NaiveDate>,
) -> StoreResult<(i64, Option<NaiveDate>)> {
    sqlx::query("INSERT INTO lots (sku_id, batch, expiry) VALUES ($1, $2, $3) ON CONFLICT (sku_id, batch) DO NOTHING")
        .bind(sku_id)
        .bind(batch.as_str())
        .bind(expiry)
        .execute(&mut **tx)
        .await?;
    let (id, stored) = lot_find(tx, sku_id, batch)
        .await?
        .ok_or_else(|| StoreError::Corrupt("lot vanished after insert".into()))?;
    if expiry.is_some() && stored != expiry {
        let show = |d: Option<NaiveDate>| d.map_or("(no expiry)".to_string(), |d| d.to_string());
        return Err(StoreError::LotExpiryMismatch {
            sku: sku.into(),
            batch: batch.to_string(),
            stored: show(stored),
            given: show(expiry),
        });
    }
    Ok((id, stored))
}

async fn holding_for_update(
    tx: &mut Tx,
    sku_id: i64,
    location_id: i64,
    lot_id: i64,
) -> StoreResult<Balance> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(concat!(
        "SELECT available, locked, defective FROM holdings WHERE sku_id = $1 AND location_id = $2 AND lot_id = $3",
        for_update!()
    ))
    .bind(sku_id)
    .bind(location_id)
    .bind(lot_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(
        row.map_or_else(Balance::default, |(available, locked, defective)| Balance {
            available,
            locked,
            defective,
        }),
    )
}

/// A movement to post, with the codes it is about (for error messages).
struct NewMovement<'a> {
    kind: MovementKind,
    sku: (&'a str, i64),
    bin: (&'a str, i64),
    lot_id: i64,
    qty: Quantity,
    from: Option<Bucket>,
    to: Option<Bucket>,
    doc_type: &'a str,
    doc_no: &'a str,
    customs_doc_no: Option<&'a str>,
    reason: Option<&'a str>,
    approver: Option<&'a str>,
    lock_id: Option<i64>,
}

impl<'a> NewMovement<'a> {
    fn new(
        kind: MovementKind,
        sku: (&'a str, i64),
        bin: (&'a str, i64),
        lot_id: i64,
        qty: Quantity,
    ) -> Self {
        NewMovement {
            kind,
            sku,
            bin,
            lot_id,
            qty,
            from: None,
            to: None,
            doc_type: kind.as_str(),
            doc_no: "",
            customs_doc_no: None,
            reason: None,
            approver: None,
            lock_id: None,
        }
    }
    fn buckets(mut self, from: Option<Bucket>, to: Option<Bucket>) -> Self {
        self.from = from;
        self.to = to;
        self
    }
    fn doc(mut self, doc_type: &'a str, doc_no: &'a str) -> Self {
        self.doc_type = doc_type;
        self.doc_no = doc_no;
        self
    }
}

/// Posts one movement. The domain rules refuse it first with the figures a
/// person needs; the database's own constraints and trigger are the backstop.
async fn post(
    tx: &mut Tx,
    op_id: Option<i64>,
    actor: &Actor,
    at: DateTime<Utc>,
    m: NewMovement<'_>,
) -> StoreResult<i64> {
    let current = if m.from.is_some() {
        holding_for_update(tx, m.sku.1, m.bin.1, m.lot_id).await?
    } else {
        Balance::default()
    };
    current
        .apply(m.kind, m.from, m.to, m.qty)
        .map_err(|e| match e {
            LedgerError::Insufficient { bucket, have, want } => StoreError::InsufficientStock {
                sku: m.sku.0.into(),
                bin: m.bin.0.into(),
                bucket,
                have,
                want,
            },
            other => StoreError::Invalid(other.to_string()),
        })?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO movements (operation_id, kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket,
             doc_type, doc_no, customs_doc_no, reason, actor, approver, lock_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
    )
    .bind(op_id)
    .bind(m.kind.as_str())
    .bind(m.sku.1)
    .bind(m.bin.1)
    .bind(m.lot_id)
    .bind(m.qty.get())
    .bind(m.from.map(Bucket::as_str))
    .bind(m.to.map(Bucket::as_str))
    .bind(m.doc_type)
    .bind(m.doc_no)
    .bind(m.customs_doc_no)
    .bind(m.reason)
    .bind(&actor.username)
    .bind(m.approver)
    .bind(m.lock_id)
    .bind(at)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_db)?;
    Ok(id)
}

macro_rules! lock_select {
    () => {
        "SELECT k.id, k.reference, s.code, l.code, lot.batch, lot.expiry, k.qty, k.state, k.created_at,
        k.closed_at, k.sku_id, k.location_id, k.lot_id
     FROM locks k JOIN skus s ON s.id = k.sku_id JOIN locations l ON l.id = k.location_id JOIN lots lot ON lot.id = k.lot_id
     WHERE k.id = $1"
    };
}
const LOCK_SELECT: &str = lock_select!();

type LockRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<NaiveDate>,
    i64,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    i64,
    i64,
    i64,
);

struct LockFull {
    record: LockRecord,
    sku_id: i64,
    location_id: i64,
    lot_id: i64,
}

fn lock_from_row(r: LockRow) -> StoreResult<LockFull> {
    let state =
        LockState::parse(&r.7).ok_or_else(|| StoreError::Corrupt(format!("lock state {}", r.7)))?;
    Ok(LockFull {
        record: LockRecord {
            id: r.0,
            reference: r.1,
            sku: r.2,
            bin: r.3,
            batch: r.4,
            expiry: r.5,
            qty: r.6,
            state,
            created_at: r.8,
            closed_at: r.9,
        },
        sku_id: r.10,
        location_id: r.11,
        lot_id: r.12,
    })
}

async fn lock_for_update(tx: &mut Tx, id: i64) -> StoreResult<LockFull> {
    let row: Option<LockRow> = sqlx::query_as(concat!(lock_select!(), for_update!("k")))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    lock_from_row(row.ok_or(StoreError::LockNotFound(id))?)
}

type SkuRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

const SKU_SELECT: &str =
    "SELECT id, code, name, hs_code, customs_item_record_no, ledger_item_no, unit_weight_grams,
    shelf_life_days, origin_country, record_status, created_at, updated_at FROM skus";

type LocationRow = (
    String,
    String,
    i64,
    String,
    bool,
    DateTime<Utc>,
    DateTime<Utc>,
);
const LOCATION_SELECT: &str =
    "SELECT code, zone, walk_seq, kind, active, created_at, updated_at FROM locations";

fn location_from_row(r: LocationRow) -> StoreResult<Location> {
    Ok(Location {
        code: r.0,
        zone: r.1,
        walk_seq: r.2,
        kind: parse_kind(&r.3)?,
        active: r.4,
        created_at: r.5,
        updated_at: r.6,
    })
}

fn check_sku_input(s: &SkuInput) -> StoreResult<()> {
    if s.name.trim().is_empty() {
        return Err(StoreError::Invalid("SKU name must not be empty".into()));
    }
    if s.unit_weight_grams < 0 {
        return Err(StoreError::Invalid(format!(
            "unit weight must not be negative, got {} g",
            s.unit_weight_grams
        )));
    }
    if matches!(s.shelf_life_days, Some(d) if d <= 0) {
        return Err(StoreError::Invalid(
            "shelf life must be at least one day".into(),
        ));
    }
    for b in &s.barcodes {
        crate::domain::codes::Barcode::parse(b.clone())
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    let mut seen = s.barcodes.clone();
    seen.sort();
    seen.dedup();
    if seen.len() != s.barcodes.len() {
        return Err(StoreError::Invalid("a barcode is listed twice".into()));
    }
    Ok(())
}

fn check_qty(what: &str, n: i64) -> StoreResult<()> {
    if !(0..=QUANTITY_MAX).contains(&n) {
        return Err(StoreError::Invalid(format!(
            "{what} must be between 0 and {QUANTITY_MAX}, got {n}"
        )));
    }
    Ok(())
}

fn check_lines<T>(what: &str, lines: &[T]) -> StoreResult<()> {
    if lines.is_empty() {
        return Err(StoreError::Invalid(format!(
            "a {what} needs at least one line"
        )));
    }
    if lines.len() > LINES_MAX {
        return Err(StoreError::Invalid(format!(
            "a {what} has at most {LINES_MAX} lines, got {}",
            lines.len()
        )));
    }
    Ok(())
}

impl SqlStore {
    pub async fn connect(url: &str, opts: &StoreOptions) -> StoreResult<Self> {
        let (write, read, housekeeping) = connect_pools(url, opts).await?;
        let grouped = crate::store::GroupCommit::resolve(opts.group_commit, GROUP_COMMIT_DEFAULT);
        let writer = (grouped.intake || grouped.scans).then(|| Batcher::start(write.clone()));
        let intake = writer.clone().filter(|_| grouped.intake).map(Intake::start);
        let batch = writer.filter(|_| grouped.scans);
        Ok(SqlStore {
            write,
            read,
            opts: opts.clone(),
            batch,
            intake,
            _housekeeping: housekeeping,
        })
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    // ------------------------------------------------------------ master data

    async fn sku_barcodes(&self, sku_id: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT barcode FROM sku_barcodes WHERE sku_id = $1 ORDER BY barcode",
        )
        .bind(sku_id)
        .fetch_all(&self.read)
        .await?)
    }

    fn sku_from_row(r: SkuRow, barcodes: Vec<String>) -> StoreResult<Sku> {
        Ok(Sku {
            code: r.1,
            name: r.2,
            barcodes,
            hs_code: r.3,
            customs_item_record_no: r.4,
            ledger_item_no: r.5,
            unit_weight_grams: r.6,
            shelf_life_days: r.7,
            origin_country: r.8,
            record_status: RecordStatus::parse(&r.9)
                .ok_or_else(|| StoreError::Corrupt(format!("record status {}", r.9)))?,
            created_at: r.10,
            updated_at: r.11,
        })
    }

    pub async fn get_sku(&self, code: &str) -> StoreResult<Sku> {
        let row: Option<SkuRow> = sqlx::query_as(&format!("{SKU_SELECT} WHERE code = $1"))
            .bind(code)
            .fetch_optional(&self.read)
            .await?;
        let row = row.ok_or_else(|| StoreError::UnknownSku(code.into()))?;
        let barcodes = self.sku_barcodes(row.0).await?;
        Self::sku_from_row(row, barcodes)
    }

    pub async fn list_skus(&self) -> StoreResult<Vec<Sku>> {
        let rows: Vec<SkuRow> = sqlx::query_as(&format!("{SKU_SELECT} ORDER BY code"))
            .fetch_all(&self.read)
            .await?;
        // Every barcode in one query, not one query per SKU.
        let mut barcodes: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        let all: Vec<(i64, String)> =
            sqlx::query_as("SELECT sku_id, barcode FROM sku_barcodes ORDER BY barcode")
                .fetch_all(&self.read)
                .await?;
        for (sku_id, barcode) in all {
            barcodes.entry(sku_id).or_default().push(barcode);
        }
        rows.into_iter()
            .map(|r| {
                let codes = barcodes.remove(&r.0).unwrap_or_default();
                Self::sku_from_row(r, codes)
            })
            .collect()
    }

    /// Creates a SKU; the same SKU sent again is answered with the stored one
    /// (`false`), a different one under the same code is refused.
    pub async fn create_sku(&self, actor: &Actor, s: &SkuInput) -> StoreResult<(Sku, bool)> {
        check_sku_input(s)?;
        if let Ok(existing) = self.get_sku(s.code.as_str()).await {
            return if same_sku(&existing, s) {
                Ok((existing, false))
            } else {
                Err(StoreError::AlreadyExists(format!("SKU {}", s.code)))
            };
        }
        let mut tx = self.write.begin().await?;
        let at = now();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO skus (code, name, hs_code, customs_item_record_no, ledger_item_no, unit_weight_grams,
                 shelf_life_days, origin_country, record_status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT (code) DO NOTHING RETURNING id",
        )
        .bind(s.code.as_str())
        .bind(s.name.trim())
        .bind(&s.hs_code)
        .bind(&s.customs_item_record_no)
        .bind(&s.ledger_item_no)
        .bind(s.unit_weight_grams)
        .bind(s.shelf_life_days)
        .bind(&s.origin_country)
        .bind(s.record_status.as_str())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_db)?;
        let Some(id) = id else {
            drop(tx);
            return Err(StoreError::AlreadyExists(format!("SKU {}", s.code)));
        };
        insert_barcodes(&mut tx, id, s.code.as_str(), &s.barcodes).await?;
        audit(&mut tx, actor, "sku.create", s.code.as_str(), s).await?;
        tx.commit().await?;
        Ok((self.get_sku(s.code.as_str()).await?, true))
    }

    pub async fn update_sku(&self, actor: &Actor, s: &SkuInput) -> StoreResult<Sku> {
        check_sku_input(s)?;
        let mut tx = self.write.begin().await?;
        let r = sku_ref(&mut tx, s.code.as_str()).await?;
        sqlx::query(
            "UPDATE skus SET name = $1, hs_code = $2, customs_item_record_no = $3, ledger_item_no = $4,
                 unit_weight_grams = $5, shelf_life_days = $6, origin_country = $7, record_status = $8, updated_at = $9
             WHERE id = $10",
        )
        .bind(s.name.trim())
        .bind(&s.hs_code)
        .bind(&s.customs_item_record_no)
        .bind(&s.ledger_item_no)
        .bind(s.unit_weight_grams)
        .bind(s.shelf_life_days)
        .bind(&s.origin_country)
        .bind(s.record_status.as_str())
        .bind(now())
        .bind(r.id)
        .execute(&mut *tx)
        .await
        .map_err(map_db)?;
        sqlx::query("DELETE FROM sku_barcodes WHERE sku_id = $1")
            .bind(r.id)
            .execute(&mut *tx)
            .await?;
        insert_barcodes(&mut tx, r.id, s.code.as_str(), &s.barcodes).await?;
        audit(&mut tx, actor, "sku.update", s.code.as_str(), s).await?;
        tx.commit().await?;
        self.get_sku(s.code.as_str()).await
    }

    pub async fn get_location(&self, code: &str) -> StoreResult<Location> {
        let row: Option<LocationRow> =
            sqlx::query_as(&format!("{LOCATION_SELECT} WHERE code = $1"))
                .bind(code)
                .fetch_optional(&self.read)
                .await?;
        location_from_row(row.ok_or_else(|| StoreError::UnknownLocation(code.into()))?)
    }

    pub async fn list_locations(&self) -> StoreResult<Vec<Location>> {
        let rows: Vec<LocationRow> =
            sqlx::query_as(&format!("{LOCATION_SELECT} ORDER BY walk_seq, code"))
                .fetch_all(&self.read)
                .await?;
        rows.into_iter().map(location_from_row).collect()
    }

    pub async fn create_location(
        &self,
        actor: &Actor,
        l: &LocationInput,
    ) -> StoreResult<(Location, bool)> {
        check_location_input(l)?;
        if let Ok(existing) = self.get_location(l.code.as_str()).await {
            let same = existing.zone == l.zone.trim()
                && existing.walk_seq == l.walk_seq
                && existing.kind == l.kind
                && existing.active == l.active;
            return if same {
                Ok((existing, false))
            } else {
                Err(StoreError::AlreadyExists(format!("bin {}", l.code)))
            };
        }
        let mut tx = self.write.begin().await?;
        let at = now();
        let done = sqlx::query(
            "INSERT INTO locations (code, zone, walk_seq, kind, active, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (code) DO NOTHING",
        )
        .bind(l.code.as_str())
        .bind(l.zone.trim())
        .bind(l.walk_seq)
        .bind(l.kind.as_str())
        .bind(l.active)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(map_db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::AlreadyExists(format!("bin {}", l.code)));
        }
        audit(&mut tx, actor, "location.create", l.code.as_str(), l).await?;
        tx.commit().await?;
        Ok((self.get_location(l.code.as_str()).await?, true))
    }

    pub async fn update_location(&self, actor: &Actor, l: &LocationInput) -> StoreResult<Location> {
        check_location_input(l)?;
        let mut tx = self.write.begin().await?;
        let loc = location_ref(&mut tx, l.code.as_str()).await?;
        if loc.kind != l.kind {
            // A bin that holds stock keeps its kind: turning a storage bin
            // with goods into a quarantine bin would silently hide them from
            // picking, and the reverse would release quarantined goods.
            let held: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM holdings WHERE location_id = $1 AND available + locked + defective > 0",
            )
            .bind(loc.id)
            .fetch_one(&mut *tx)
            .await?;
            if held > 0 {
                return Err(StoreError::Invalid(format!(
                    "bin {} holds stock; move it out before changing the bin's kind",
                    l.code
                )));
            }
        }
        sqlx::query("UPDATE locations SET zone = $1, walk_seq = $2, kind = $3, active = $4, updated_at = $5 WHERE id = $6")
            .bind(l.zone.trim())
            .bind(l.walk_seq)
            .bind(l.kind.as_str())
            .bind(l.active)
            .bind(now())
            .bind(loc.id)
            .execute(&mut *tx)
            .await
            .map_err(map_db)?;
        audit(&mut tx, actor, "location.update", l.code.as_str(), l).await?;
        tx.commit().await?;
        self.get_location(l.code.as_str()).await
    }

    // -------------------------------------------------------------- inventory

    pub async fn receive(&self, actor: &Actor, r: &ReceiptInput) -> StoreResult<Receipt> {
        check_lines("receipt", &r.lines)?;
        for l in &r.lines {
            check_qty("qty", l.qty)?;
            check_qty("damaged_qty", l.damaged_qty)?;
            if l.qty + l.damaged_qty == 0 {
                return Err(StoreError::Invalid(format!(
                    "receipt line for SKU {} has no units",
                    l.sku
                )));
            }
        }
        idempotent!(
            self,
            actor,
            "receipt",
            r.receipt_no.as_str(),
            request_hash(r),
            |tx, op, at| {
                sqlx::query("INSERT INTO receipts (receipt_no, customs_doc_no, supplier, actor, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(r.receipt_no.as_str())
                .bind(r.customs_doc_no.as_str())
                .bind(&r.supplier)
                .bind(&actor.username)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(map_db)?;
                let mut lines = Vec::with_capacity(r.lines.len());
                for l in &r.lines {
                    let sku = sku_ref(&mut tx, l.sku.as_str()).await?;
                    if sku.status == RecordStatus::Revoked {
                        return Err(StoreError::Invalid(format!(
                        "SKU {}'s customs record is revoked: it cannot be received into bonded stock",
                        l.sku
                    )));
                    }
                    let loc = active_location(&mut tx, l.bin.as_str()).await?;
                    let (lot, expiry) =
                        lot_ensure(&mut tx, sku.id, l.sku.as_str(), &l.batch, l.expiry).await?;
                    for (n, bucket) in [
                        (l.qty, Bucket::Available),
                        (l.damaged_qty, Bucket::Defective),
                    ] {
                        if let Ok(qty) = Quantity::new(n) {
                            let mut m = NewMovement::new(
                                MovementKind::Receive,
                                (l.sku.as_str(), sku.id),
                                (l.bin.as_str(), loc.id),
                                lot,
                                qty,
                            )
                            .buckets(None, Some(bucket))
                            .doc("receipt", r.receipt_no.as_str());
                            m.customs_doc_no = Some(r.customs_doc_no.as_str());
                            post(&mut tx, Some(op), actor, at, m).await?;
                        }
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
                Receipt {
                    receipt_no: r.receipt_no.to_string(),
                    customs_doc_no: r.customs_doc_no.to_string(),
                    supplier: r.supplier.clone(),
                    lines,
                    actor: actor.username.clone(),
                    at,
                }
            }
        )
    }

    pub async fn get_receipt(&self, receipt_no: &str) -> StoreResult<Receipt> {
        let row: Option<Option<String>> = sqlx::query_scalar(
            "SELECT response FROM operations WHERE scope = 'receipt' AND key = $1",
        )
        .bind(receipt_no)
        .fetch_optional(&self.read)
        .await?;
        match row.flatten() {
            Some(resp) => decode_response(&resp),
            None => Err(StoreError::NotFound(format!("receipt {receipt_no}"))),
        }
    }

    pub async fn lock(&self, actor: &Actor, input: &LockInput) -> StoreResult<LockRecord> {
        idempotent!(
            self,
            actor,
            "lock",
            input.key.as_str(),
            request_hash(input),
            |tx, op, at| {
                let sku = sku_ref(&mut tx, input.sku.as_str()).await?;
                if sku.status == RecordStatus::Revoked {
                    return Err(StoreError::Invalid(format!(
                        "SKU {}'s customs record is revoked: its stock cannot be reserved",
                        input.sku
                    )));
                }
                let loc = active_location(&mut tx, input.bin.as_str()).await?;
                if matches!(
                    loc.kind,
                    LocationKind::Quarantine | LocationKind::Inspection | LocationKind::Defective
                ) {
                    return Err(StoreError::Invalid(format!(
                        "bin {} is a {} bin: its stock cannot be reserved",
                        input.bin,
                        loc.kind.as_str()
                    )));
                }
                let lot = lot_require(
                    &mut tx,
                    sku.id,
                    input.sku.as_str(),
                    &input.batch,
                    input.bin.as_str(),
                )
                .await?;
                let lock_id = reserve(
                    &mut tx,
                    (op, actor, at),
                    ("lock", input.reference.as_str()),
                    (input.sku.as_str(), sku.id),
                    (input.bin.as_str(), loc.id),
                    lot,
                    input.qty,
                )
                .await?;
                let row: LockRow = sqlx::query_as(LOCK_SELECT)
                    .bind(lock_id)
                    .fetch_one(&mut *tx)
                    .await?;
                lock_from_row(row)?.record
            }
        )
    }

    pub async fn get_lock(&self, id: i64) -> StoreResult<LockRecord> {
        let row: Option<LockRow> = sqlx::query_as(LOCK_SELECT)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(lock_from_row(row.ok_or(StoreError::LockNotFound(id))?)?.record)
    }

    async fn close_lock(
        &self,
        actor: &Actor,
        id: i64,
        ship: Option<&str>,
        reason: Option<&str>,
    ) -> StoreResult<LockRecord> {
        let mut tx = self.write.begin().await?;
        let record = close_lock_in(&mut tx, actor, now(), id, ship, reason).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub async fn release(
        &self,
        actor: &Actor,
        id: i64,
        input: &ReleaseInput,
    ) -> StoreResult<LockRecord> {
        if let Some(order_no) = self.lock_order(id).await? {
            return Err(StoreError::Invalid(format!(
                "reservation {id} holds stock for order {order_no}: cancel the order to release it"
            )));
        }
        self.close_lock(actor, id, None, input.reason.as_deref())
            .await
    }

    pub async fn ship(&self, actor: &Actor, input: &ShipInput) -> StoreResult<LockRecord> {
        self.close_lock(
            actor,
            input.lock_id,
            Some(input.customs_doc_no.as_str()),
            None,
        )
        .await
    }

    pub async fn damage(&self, actor: &Actor, input: &DamageInput) -> StoreResult<Posted> {
        if input.reason.trim().is_empty() {
            return Err(StoreError::Invalid("damage needs a reason".into()));
        }
        idempotent!(
            self,
            actor,
            "damage",
            input.key.as_str(),
            request_hash(input),
            |tx, op, at| {
                let sku = sku_ref(&mut tx, input.sku.as_str()).await?;
                let loc = location_ref(&mut tx, input.bin.as_str()).await?;
                let lot = lot_require(
                    &mut tx,
                    sku.id,
                    input.sku.as_str(),
                    &input.batch,
                    input.bin.as_str(),
                )
                .await?;
                let from = if let Some(lock_id) = input.lock_id {
                    let lock = lock_for_update(&mut tx, lock_id).await?;
                    if (lock.sku_id, lock.location_id, lock.lot_id) != (sku.id, loc.id, lot) {
                        return Err(StoreError::Invalid(format!(
                        "reservation {lock_id} holds SKU {} batch '{}' at bin {}, not this stock",
                        lock.record.sku, lock.record.batch, lock.record.bin
                    )));
                    }
                    if lock.record.state != LockState::Held {
                        return Err(StoreError::LockClosed {
                            id: lock_id,
                            state: lock.record.state,
                        });
                    }
                    if lock.record.qty < input.qty.get() {
                        return Err(StoreError::InsufficientStock {
                            sku: input.sku.to_string(),
                            bin: input.bin.to_string(),
                            bucket: Bucket::Locked,
                            have: lock.record.qty,
                            want: input.qty.get(),
                        });
                    }
                    sqlx::query("UPDATE locks SET qty = qty - $1 WHERE id = $2")
                        .bind(input.qty.get())
                        .bind(lock_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_db)?;
                    Bucket::Locked
                } else {
                    Bucket::Available
                };
                let mut m = NewMovement::new(
                    MovementKind::Damage,
                    (input.sku.as_str(), sku.id),
                    (input.bin.as_str(), loc.id),
                    lot,
                    input.qty,
                )
                .buckets(Some(from), Some(Bucket::Defective))
                .doc("damage", input.key.as_str());
                m.lock_id = input.lock_id;
                m.reason = Some(input.reason.trim());
                let id = post(&mut tx, Some(op), actor, at, m).await?;
                Posted {
                    key: input.key.to_string(),
                    movement_ids: vec![id],
                }
            }
        )
    }

    pub async fn transfer(&self, actor: &Actor, input: &TransferInput) -> StoreResult<Posted> {
        if input.from_bin == input.to_bin {
            return Err(StoreError::Invalid(
                "a transfer needs two different bins".into(),
            ));
        }
        idempotent!(
            self,
            actor,
            "transfer",
            input.key.as_str(),
            request_hash(input),
            |tx, op, at| {
                let sku = sku_ref(&mut tx, input.sku.as_str()).await?;
                let from = location_ref(&mut tx, input.from_bin.as_str()).await?;
                let to = active_location(&mut tx, input.to_bin.as_str()).await?;
                let lot = lot_require(
                    &mut tx,
                    sku.id,
                    input.sku.as_str(),
                    &input.batch,
                    input.from_bin.as_str(),
                )
                .await?;
                // Lock both holdings in one global order (by location) before
                // moving, so an A→B and a B→A transfer cannot deadlock.
                let (first, second) = if from.id <= to.id {
                    (from.id, to.id)
                } else {
                    (to.id, from.id)
                };
                holding_for_update(&mut tx, sku.id, first, lot).await?;
                holding_for_update(&mut tx, sku.id, second, lot).await?;
                let s = (input.sku.as_str(), sku.id);
                let out = NewMovement::new(
                    MovementKind::Transfer,
                    s,
                    (input.from_bin.as_str(), from.id),
                    lot,
                    input.qty,
                )
                .buckets(Some(Bucket::Available), None)
                .doc("transfer", input.key.as_str());
                let a = post(&mut tx, Some(op), actor, at, out).await?;
                let inn = NewMovement::new(
                    MovementKind::Transfer,
                    s,
                    (input.to_bin.as_str(), to.id),
                    lot,
                    input.qty,
                )
                .buckets(None, Some(Bucket::Available))
                .doc("transfer", input.key.as_str());
                let b = post(&mut tx, Some(op), actor, at, inn).await?;
                Posted {
                    key: input.key.to_string(),
                    movement_ids: vec![a, b],
                }
            }
        )
    }

    pub async fn request_adjustment(
        &self,
        actor: &Actor,
        input: &AdjustmentInput,
    ) -> StoreResult<Adjustment> {
        if input.reason.trim().is_empty() {
            return Err(StoreError::Invalid("an adjustment needs a reason".into()));
        }
        if input.bucket == Bucket::Locked {
            return Err(StoreError::Invalid(
                "reserved stock is never adjusted: release or damage it instead".into(),
            ));
        }
        if input.delta == 0 || input.delta.abs() > QUANTITY_MAX {
            return Err(StoreError::Invalid(format!(
                "delta must be non-zero and at most {QUANTITY_MAX} either way"
            )));
        }
        idempotent!(
            self,
            actor,
            "adjustment",
            input.key.as_str(),
            request_hash(input),
            |tx, _op, at| {
                let sku = sku_ref(&mut tx, input.sku.as_str()).await?;
                let loc = location_ref(&mut tx, input.bin.as_str()).await?;
                let lot = if input.delta > 0 {
                    lot_ensure(
                        &mut tx,
                        sku.id,
                        input.sku.as_str(),
                        &input.batch,
                        input.expiry,
                    )
                    .await?
                    .0
                } else {
                    lot_require(
                        &mut tx,
                        sku.id,
                        input.sku.as_str(),
                        &input.batch,
                        input.bin.as_str(),
                    )
                    .await?
                };
                let id = insert_adjustment(
                    &mut tx,
                    actor,
                    at,
                    input.key.as_str(),
                    (sku.id, loc.id, lot),
                    input.bucket,
                    input.delta,
                    input.reason.trim(),
                    None,
                )
                .await?;
                audit(&mut tx, actor, "adjustment.request", &id.to_string(), input).await?;
                adjustment_by_id(&mut tx, id).await?
            }
        )
    }

    pub async fn decide_adjustment(
        &self,
        actor: &Actor,
        id: i64,
        approve: bool,
    ) -> StoreResult<Adjustment> {
        let mut tx = self.write.begin().await?;
        let at = now();
        let row: Option<PendingAdjustmentRow> = sqlx::query_as(concat!(
            "SELECT a.key, a.sku_id, a.location_id, a.lot_id, a.bucket, a.delta, a.reason, a.state, a.requested_by
             FROM adjustments a WHERE a.id = $1",
            for_update!()
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let (key, sku_id, loc_id, lot_id, bucket, delta, reason, state, requested_by) =
            row.ok_or_else(|| StoreError::NotFound(format!("adjustment {id}")))?;
        let wanted = if approve {
            AdjustmentState::Approved
        } else {
            AdjustmentState::Rejected
        };
        let state = AdjustmentState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("adjustment state {state}")))?;
        if state == wanted {
            return adjustment_by_id(&mut tx, id).await;
        }
        if state != AdjustmentState::Pending {
            return Err(StoreError::Invalid(format!(
                "adjustment {id} is already {}",
                state.as_str()
            )));
        }
        if self.opts.four_eyes && requested_by == actor.username {
            return Err(StoreError::Forbidden(format!(
                "adjustment {id} was requested by {requested_by}: another manager must decide it"
            )));
        }
        if approve {
            let bucket = Bucket::parse(&bucket)
                .ok_or_else(|| StoreError::Corrupt(format!("bucket {bucket}")))?;
            let (sku, bin): (String, String) = sqlx::query_as(
                "SELECT s.code, l.code FROM skus s, locations l WHERE s.id = $1 AND l.id = $2",
            )
            .bind(sku_id)
            .bind(loc_id)
            .fetch_one(&mut *tx)
            .await?;
            let qty = Quantity::new(delta.abs()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let (from, to) = if delta > 0 {
                (None, Some(bucket))
            } else {
                (Some(bucket), None)
            };
            let mut m = NewMovement::new(
                MovementKind::Adjust,
                (&sku, sku_id),
                (&bin, loc_id),
                lot_id,
                qty,
            )
            .buckets(from, to)
            .doc("adjustment", &key);
            m.reason = Some(&reason);
            m.approver = Some(&actor.username);
            post(&mut tx, None, actor, at, m).await?;
        }
        sqlx::query(
            "UPDATE adjustments SET state = $1, decided_by = $2, decided_at = $3 WHERE id = $4",
        )
        .bind(wanted.as_str())
        .bind(&actor.username)
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            actor,
            if approve {
                "adjustment.approve"
            } else {
                "adjustment.reject"
            },
            &id.to_string(),
            &key,
        )
        .await?;
        let out = adjustment_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn list_adjustments(
        &self,
        state: Option<AdjustmentState>,
    ) -> StoreResult<Vec<Adjustment>> {
        let rows: Vec<AdjustmentRow> = sqlx::query_as(&format!(
            "{ADJUSTMENT_SELECT} WHERE ($1 IS NULL OR a.state = $1) ORDER BY a.id DESC LIMIT {MOVEMENT_PAGE_MAX}"
        ))
        .bind(state.map(AdjustmentState::as_str))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(adjustment_from_row).collect()
    }

    /// Records a cycle count of one bin. Each difference from the books becomes
    /// a pending adjustment of available stock, for a manager to approve.
    pub async fn count(&self, actor: &Actor, input: &CountInput) -> StoreResult<CountResult> {
        check_lines("count", &input.lines)?;
        let mut seen = std::collections::BTreeSet::new();
        for l in &input.lines {
            check_qty("counted", l.counted)?;
            if !seen.insert((l.sku.as_str(), l.batch.as_str())) {
                return Err(StoreError::Invalid(format!(
                    "SKU {} batch '{}' is counted twice",
                    l.sku, l.batch
                )));
            }
        }
        idempotent!(
            self,
            actor,
            "count",
            input.count_no.as_str(),
            request_hash(input),
            |tx, _op, at| {
                let loc = location_ref(&mut tx, input.bin.as_str()).await?;
                let count_id: i64 = sqlx::query_scalar(
                "INSERT INTO counts (count_no, location_id, actor, at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(input.count_no.as_str())
            .bind(loc.id)
            .bind(&actor.username)
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_db)?;
                // A count of the bin answers every short pick reported there.
                sqlx::query(
                    "UPDATE count_requests SET closed_at = $1, count_id = $2 WHERE location_id = $3 AND closed_at IS NULL",
                )
                .bind(at)
                .bind(count_id)
                .bind(loc.id)
                .execute(&mut *tx)
                .await?;
                let mut lines = Vec::with_capacity(input.lines.len());
                for (i, l) in input.lines.iter().enumerate() {
                    let sku = sku_ref(&mut tx, l.sku.as_str()).await?;
                    let lot = lot_find(&mut tx, sku.id, &l.batch).await?.map(|(id, _)| id);
                    let expected = match lot {
                        Some(lot) => holding_for_update(&mut tx, sku.id, loc.id, lot)
                            .await?
                            .total(),
                        None => 0,
                    };
                    let difference = l.counted - expected;
                    let adjustment_id = if difference != 0 {
                        let (lot, _) =
                            lot_ensure(&mut tx, sku.id, l.sku.as_str(), &l.batch, l.expiry).await?;
                        let key = format!("{}/{}", input.count_no, i + 1);
                        let reason = format!("cycle count {}", input.count_no);
                        Some(
                            insert_adjustment(
                                &mut tx,
                                actor,
                                at,
                                &key,
                                (sku.id, loc.id, lot),
                                Bucket::Available,
                                difference,
                                &reason,
                                Some(count_id),
                            )
                            .await?,
                        )
                    } else {
                        None
                    };
                    lines.push(CountedLine {
                        sku: l.sku.to_string(),
                        batch: l.batch.to_string(),
                        expected,
                        counted: l.counted,
                        difference,
                        adjustment_id,
                    });
                }
                audit(
                    &mut tx,
                    actor,
                    "count.record",
                    input.count_no.as_str(),
                    &lines,
                )
                .await?;
                CountResult {
                    count_no: input.count_no.to_string(),
                    bin: input.bin.to_string(),
                    lines,
                }
            }
        )
    }

    // ------------------------------------------------------------------ reads

    pub async fn stock(&self, q: &StockQuery) -> StoreResult<StockReport> {
        // Only the filters given are in the SQL: `($1 IS NULL OR …)` would
        // keep the planner from walking the SKUs in code order and
        // stopping at the limit (see BENCHMARKS.md, `dashboard`).
        let mut filter = String::from(
            "FROM holdings h JOIN skus s ON s.id = h.sku_id JOIN locations l ON l.id = h.location_id
             JOIN lots lot ON lot.id = h.lot_id WHERE 1 = 1",
        );
        let mut binds: Vec<&str> = Vec::new();
        for (column, value) in [
            ("s.code", &q.sku),
            ("l.code", &q.bin),
            ("lot.batch", &q.batch),
            ("l.zone", &q.zone),
        ] {
            if let Some(v) = value {
                binds.push(v);
                filter.push_str(&format!(" AND {column} = ${}", binds.len()));
            }
        }
        if !q.include_empty {
            filter.push_str(" AND h.available + h.locked + h.defective > 0");
        }
        let limit = q.limit.map_or(STOCK_ROWS_MAX, |n| {
            n.clamp(1, STOCK_ROWS_MAX as i64) as usize
        });
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<NaiveDate>,
            i64,
            i64,
            i64,
        );
        let sql = format!(
            "SELECT s.code, s.name, l.code, l.zone, l.kind, lot.batch, lot.expiry, h.available, h.locked, h.defective {filter}
             ORDER BY s.code, l.walk_seq, l.code, lot.expiry NULLS LAST, lot.batch LIMIT {}",
            limit + 1
        );
        let mut rows_q = sqlx::query_as::<_, Row>(&sql);
        for v in &binds {
            rows_q = rows_q.bind(*v);
        }
        let rows = rows_q.fetch_all(&self.read).await?;
        // The totals, and with a warning window the lots (with stock) past
        // or near their expiry, over every matching row, not only the page.
        let today = q.today.unwrap_or_else(|| now().date_naive());
        let soon =
            today + chrono::Days::new(q.expiring_within_days.unwrap_or(0).clamp(0, 3650) as u64);
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(h.available), 0) AS BIGINT), CAST(COALESCE(SUM(h.locked), 0) AS BIGINT),
                    CAST(COALESCE(SUM(h.defective), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN lot.expiry < ${0} AND h.available + h.locked + h.defective > 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN lot.expiry >= ${0} AND lot.expiry <= ${1} AND h.available + h.locked + h.defective > 0 THEN 1 ELSE 0 END), 0) AS BIGINT)
             {filter}",
            binds.len() + 1,
            binds.len() + 2
        );
        let mut totals_q = sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(&sql);
        for v in &binds {
            totals_q = totals_q.bind(*v);
        }
        let (available, locked, defective, expired, expiring) = totals_q
            .bind(today)
            .bind(soon)
            .fetch_one(&self.read)
            .await?;
        let truncated = rows.len() > limit;
        let rows = rows
            .into_iter()
            .take(limit)
            .map(|r| {
                Ok(StockRow {
                    sku: r.0,
                    sku_name: r.1,
                    bin: r.2,
                    zone: r.3,
                    location_kind: parse_kind(&r.4)?,
                    batch: r.5,
                    expiry: r.6,
                    available: r.7,
                    locked: r.8,
                    defective: r.9,
                    total: r.7 + r.8 + r.9,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(StockReport {
            rows,
            truncated,
            totals: StockTotals {
                available,
                locked,
                defective,
                total: available + locked + defective,
            },
            expiry: q.expiring_within_days.map(|days| ExpirySummary {
                today,
                within_days: days.clamp(0, 3650),
                expired,
                expiring,
            }),
        })
    }

    pub async fn movements(&self, q: &MovementQuery) -> StoreResult<MovementPage> {
        let limit = q.limit.unwrap_or(100).clamp(1, MOVEMENT_PAGE_MAX);
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
            Option<i64>,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT m.id, m.kind, s.code, l.code, lot.batch, m.qty, m.from_bucket, m.to_bucket, m.doc_type, m.doc_no,
                    m.customs_doc_no, m.reason, m.actor, m.approver, m.lock_id, m.at
             FROM movements m JOIN skus s ON s.id = m.sku_id JOIN locations l ON l.id = m.location_id
             JOIN lots lot ON lot.id = m.lot_id
             WHERE ($1 IS NULL OR s.code = $1) AND ($2 IS NULL OR l.code = $2) AND ($3 IS NULL OR m.kind = $3)
               AND ($4 IS NULL OR m.doc_no = $4) AND ($5 IS NULL OR m.at >= $5) AND ($6 IS NULL OR m.at < $6)
               AND ($7 IS NULL OR m.id < $7)
             ORDER BY m.id DESC LIMIT $8",
        )
        .bind(&q.sku)
        .bind(&q.bin)
        .bind(&q.kind)
        .bind(&q.doc_no)
        .bind(q.since)
        .bind(q.until)
        .bind(q.before_id)
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        let more = rows.len() as i64 > limit;
        let movements = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                Ok(MovementRow {
                    id: r.0,
                    kind: MovementKind::parse(&r.1)
                        .ok_or_else(|| StoreError::Corrupt(format!("movement kind {}", r.1)))?,
                    sku: r.2,
                    bin: r.3,
                    batch: r.4,
                    qty: r.5,
                    from_bucket: parse_bucket(r.6)?,
                    to_bucket: parse_bucket(r.7)?,
                    doc_type: r.8,
                    doc_no: r.9,
                    customs_doc_no: r.10,
                    reason: r.11,
                    actor: r.12,
                    approver: r.13,
                    lock_id: r.14,
                    at: r.15,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let next_before_id = if more {
            movements.last().map(|m| m.id)
        } else {
            None
        };
        Ok(MovementPage {
            movements,
            next_before_id,
        })
    }

    pub async fn reconciliation(&self, sku: Option<&str>) -> StoreResult<Vec<ReconciliationRow>> {
        let totals: Vec<(String, Option<String>, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT s.code, s.ledger_item_no,
                 CAST(COALESCE(SUM(CASE WHEN m.kind = 'receive' THEN m.qty ELSE 0 END), 0) AS BIGINT),
                 CAST(COALESCE(SUM(CASE WHEN m.kind = 'ship' THEN m.qty ELSE 0 END), 0) AS BIGINT),
                 CAST(COALESCE(SUM(CASE WHEN m.kind = 'adjust' AND m.from_bucket IS NULL THEN m.qty ELSE 0 END), 0) AS BIGINT),
                 CAST(COALESCE(SUM(CASE WHEN m.kind = 'adjust' AND m.to_bucket IS NULL THEN m.qty ELSE 0 END), 0) AS BIGINT)
             FROM skus s LEFT JOIN movements m ON m.sku_id = s.id
             WHERE ($1 IS NULL OR s.code = $1)
             GROUP BY s.id, s.code, s.ledger_item_no ORDER BY s.code",
        )
        .bind(sku)
        .fetch_all(&self.read)
        .await?;
        let on_hand: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT s.code, CAST(COALESCE(SUM(h.available + h.locked + h.defective), 0) AS BIGINT)
             FROM holdings h JOIN skus s ON s.id = h.sku_id WHERE ($1 IS NULL OR s.code = $1) GROUP BY s.code",
        )
        .bind(sku)
        .fetch_all(&self.read)
        .await?
        .into_iter()
        .collect();
        let mut docs: BTreeMap<String, Vec<DocumentTotals>> = BTreeMap::new();
        let doc_rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT s.code, m.customs_doc_no,
                 CAST(SUM(CASE WHEN m.kind = 'receive' THEN m.qty ELSE 0 END) AS BIGINT),
                 CAST(SUM(CASE WHEN m.kind = 'ship' THEN m.qty ELSE 0 END) AS BIGINT)
             FROM movements m JOIN skus s ON s.id = m.sku_id
             WHERE m.customs_doc_no IS NOT NULL AND m.kind IN ('receive', 'ship') AND ($1 IS NULL OR s.code = $1)
             GROUP BY s.code, m.customs_doc_no ORDER BY s.code, m.customs_doc_no",
        )
        .bind(sku)
        .fetch_all(&self.read)
        .await?;
        for (code, doc, received, shipped) in doc_rows {
            docs.entry(code).or_default().push(DocumentTotals {
                customs_doc_no: doc,
                received,
                shipped,
            });
        }
        Ok(totals
            .into_iter()
            .map(
                |(code, ledger_item_no, received, shipped, adjusted_in, adjusted_out)| {
                    let r = Reconciliation::new(
                        MovementTotals {
                            received,
                            shipped,
                            adjusted_in,
                            adjusted_out,
                        },
                        on_hand.get(&code).copied().unwrap_or(0),
                    );
                    ReconciliationRow {
                        documents: docs.remove(&code).unwrap_or_default(),
                        sku: code,
                        ledger_item_no,
                        received: r.received,
                        shipped: r.shipped,
                        adjusted_in: r.adjusted_in,
                        adjusted_out: r.adjusted_out,
                        expected_on_hand: r.expected_on_hand,
                        on_hand: r.on_hand,
                        difference: r.difference,
                        balanced: r.balanced(),
                    }
                },
            )
            .collect())
    }

    /// Recomputes every balance from the ledger and every locked figure from
    /// the held reservations, and reports any holding where they disagree.
    pub async fn integrity(&self) -> StoreResult<IntegrityReport> {
        let holdings: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM holdings")
            .fetch_one(&self.read)
            .await?;
        let movements: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM movements")
            .fetch_one(&self.read)
            .await?;
        let ledger_mismatches: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT s.code, l.code, lot.batch FROM holdings h
             JOIN skus s ON s.id = h.sku_id JOIN locations l ON l.id = h.location_id JOIN lots lot ON lot.id = h.lot_id
             LEFT JOIN (
                 SELECT sku_id, location_id, lot_id,
                   CAST(SUM(CASE WHEN to_bucket = 'available' THEN qty ELSE 0 END) - SUM(CASE WHEN from_bucket = 'available' THEN qty ELSE 0 END) AS BIGINT) AS a,
                   CAST(SUM(CASE WHEN to_bucket = 'locked' THEN qty ELSE 0 END) - SUM(CASE WHEN from_bucket = 'locked' THEN qty ELSE 0 END) AS BIGINT) AS k,
                   CAST(SUM(CASE WHEN to_bucket = 'defective' THEN qty ELSE 0 END) - SUM(CASE WHEN from_bucket = 'defective' THEN qty ELSE 0 END) AS BIGINT) AS d
                 FROM movements GROUP BY sku_id, location_id, lot_id
             ) m ON m.sku_id = h.sku_id AND m.location_id = h.location_id AND m.lot_id = h.lot_id
             WHERE h.available <> COALESCE(m.a, 0) OR h.locked <> COALESCE(m.k, 0) OR h.defective <> COALESCE(m.d, 0)
             ORDER BY s.code, l.code, lot.batch",
        )
        .fetch_all(&self.read)
        .await?;
        let lock_mismatches: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT s.code, l.code, lot.batch FROM holdings h
             JOIN skus s ON s.id = h.sku_id JOIN locations l ON l.id = h.location_id JOIN lots lot ON lot.id = h.lot_id
             LEFT JOIN (
                 SELECT sku_id, location_id, lot_id, CAST(SUM(qty) AS BIGINT) AS q FROM locks WHERE state = 'held'
                 GROUP BY sku_id, location_id, lot_id
             ) k ON k.sku_id = h.sku_id AND k.location_id = h.location_id AND k.lot_id = h.lot_id
             WHERE h.locked <> COALESCE(k.q, 0)
             ORDER BY s.code, l.code, lot.batch",
        )
        .fetch_all(&self.read)
        .await?;
        let fmt = |v: Vec<(String, String, String)>| {
            v.into_iter()
                .map(|(s, b, l)| format!("{s}@{b}#{l}"))
                .collect()
        };
        Ok(IntegrityReport {
            holdings_checked: holdings,
            movements_checked: movements,
            ledger_mismatches: fmt(ledger_mismatches),
            lock_mismatches: fmt(lock_mismatches),
        })
    }

    // ------------------------------------------------------------------ users

    pub async fn user_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.read)
            .await?)
    }

    pub async fn create_user(
        &self,
        actor: &Actor,
        username: &str,
        password_hash: &str,
        roles: &[Role],
    ) -> StoreResult<User> {
        let mut tx = self.write.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, roles, active, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (username) DO NOTHING RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(roles_text(roles))
        .bind(true)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        let id = id.ok_or_else(|| StoreError::AlreadyExists(format!("user {username}")))?;
        audit(&mut tx, actor, "user.create", username, &roles).await?;
        let user = user_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        roles: Option<&[Role]>,
        active: Option<bool>,
        password_hash: Option<&str>,
    ) -> StoreResult<User> {
        let mut tx = self.write.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {username}")))?;
        sqlx::query(
            "UPDATE users SET roles = COALESCE($1, roles), active = COALESCE($2, active),
                 password_hash = COALESCE($3, password_hash) WHERE id = $4",
        )
        .bind(roles.map(roles_text))
        .bind(active)
        .bind(password_hash)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if active == Some(false) || password_hash.is_some() || roles.is_some() {
            // A changed password, role or a deactivation ends every open session.
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let detail = (roles, active, password_hash.map(|_| "changed"));
        audit(&mut tx, actor, "user.update", username, &detail).await?;
        let user = user_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows: Vec<(i64, String, String, bool, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, username, roles, active, created_at FROM users ORDER BY username",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, username, roles, active, created_at)| User {
                id,
                username,
                roles: parse_roles(&roles),
                active,
                created_at,
            })
            .collect())
    }

    /// The user and password hash for a login attempt, if the user exists and is active.
    pub async fn login_lookup(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        let row: Option<(i64, String, String, bool, DateTime<Utc>, String)> = sqlx::query_as(
            "SELECT id, username, roles, active, created_at, password_hash FROM users WHERE username = $1 AND active = $2",
        )
        .bind(username)
        .bind(true)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(id, username, roles, active, created_at, hash)| {
            (
                User {
                    id,
                    username,
                    roles: parse_roles(&roles),
                    active,
                    created_at,
                },
                hash,
            )
        }))
    }

    pub async fn create_session(
        &self,
        user: &User,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let at = now();
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user.id)
            .bind(at)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        let actor = Actor {
            user_id: user.id,
            username: user.username.clone(),
            roles: user.roles.clone(),
        };
        audit(
            &mut tx,
            &actor,
            "session.login",
            &user.username,
            &expires_at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session_actor(&self, token_hash: &str) -> StoreResult<Option<Actor>> {
        let row: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT u.id, u.username, u.roles FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active = $3",
        )
        .bind(token_hash)
        .bind(now())
        .bind(true)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(user_id, username, roles)| Actor {
            user_id,
            username,
            roles: parse_roles(&roles),
        }))
    }

    pub async fn delete_session(&self, actor: &Actor, token_hash: &str) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, actor, "session.logout", &actor.username, &()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn audit_log(
        &self,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<(i64, DateTime<Utc>, String, String, String, String)> = sqlx::query_as(
            "SELECT id, at, actor, action, subject, detail FROM audit_log WHERE ($1 IS NULL OR id < $1)
             ORDER BY id DESC LIMIT $2",
        )
        .bind(before_id)
        .bind(limit.clamp(1, MOVEMENT_PAGE_MAX))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, action, subject, detail)| AuditEntry {
                id,
                at,
                actor,
                action,
                subject,
                detail,
            })
            .collect())
    }
}

/// Reserves `qty` units of one holding: the lock row and its lock movement,
/// in the caller's transaction. Returns the lock's id.
async fn reserve(
    tx: &mut Tx,
    (op, actor, at): (i64, &Actor, DateTime<Utc>),
    (doc_type, reference): (&str, &str),
    sku: (&str, i64),
    bin: (&str, i64),
    lot_id: i64,
    qty: Quantity,
) -> StoreResult<i64> {
    let lock_id: i64 = sqlx::query_scalar(
        "INSERT INTO locks (operation_id, reference, sku_id, location_id, lot_id, qty, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'held', $7) RETURNING id",
    )
    .bind(op)
    .bind(reference)
    .bind(sku.1)
    .bind(bin.1)
    .bind(lot_id)
    .bind(qty.get())
    .bind(at)
    .fetch_one(&mut **tx)
    .await
    .map_err(map_db)?;
    let mut m = NewMovement::new(MovementKind::Lock, sku, bin, lot_id, qty)
        .buckets(Some(Bucket::Available), Some(Bucket::Locked))
        .doc(doc_type, reference);
    m.lock_id = Some(lock_id);
    post(tx, Some(op), actor, at, m).await?;
    Ok(lock_id)
}

/// Rows in one multi-row INSERT: far below either backend's limit on bound
/// parameters (SQLite 32,766, PostgreSQL 65,535) at up to 8 per row.
const INSERT_ROWS_MAX: usize = 500;

use crate::store::numbered;

/// One holding's units to reserve for a document, for [`reserve_many`].
struct Reservation<'a> {
    /// The operation (idempotency record) the reservation belongs to.
    op: i64,
    /// The document's number, e.g. the order's.
    reference: &'a str,
    /// Who asked for it (the movement's actor).
    actor: &'a str,
    sku_id: i64,
    location_id: i64,
    lot_id: i64,
    qty: Quantity,
}

/// Reserves several holdings' units at once, for one document or several of
/// the same type, as [`reserve`] does one: the lock rows and their lock
/// movements, one multi-row INSERT each. The caller has read (and on
/// PostgreSQL locked) the holdings and knows the units are there; the
/// holdings' CHECKs under the trigger stay the backstop. Returns the locks'
/// ids in the order of `rs`.
async fn reserve_many(
    tx: &mut Tx,
    at: DateTime<Utc>,
    doc_type: &str,
    rs: &[Reservation<'_>],
) -> StoreResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(rs.len());
    for chunk in rs.chunks(INSERT_ROWS_MAX) {
        let sql = format!(
            "INSERT INTO locks (operation_id, reference, sku_id, location_id, lot_id, qty, state, created_at)
             VALUES {} RETURNING id, operation_id, sku_id, location_id, lot_id, qty",
            numbered("(?, ?, ?, ?, ?, ?, 'held', $1)", chunk.len(), 2)
        );
        let mut q = sqlx::query_as::<_, (i64, i64, i64, i64, i64, i64)>(&sql).bind(at);
        for r in chunk {
            q = q
                .bind(r.op)
                .bind(r.reference)
                .bind(r.sku_id)
                .bind(r.location_id)
                .bind(r.lot_id)
                .bind(r.qty.get());
        }
        let mut inserted = q.fetch_all(&mut **tx).await.map_err(map_db)?;
        // RETURNING does not promise its rows' order: each is matched back by
        // what it holds (two alike of one operation are interchangeable).
        let first = ids.len();
        for r in chunk {
            let key = (r.op, r.sku_id, r.location_id, r.lot_id, r.qty.get());
            let pos = inserted
                .iter()
                .position(|k| (k.1, k.2, k.3, k.4, k.5) == key)
                .ok_or_else(|| {
                    StoreError::Corrupt("an inserted lock is missing from RETURNING".into())
                })?;
            ids.push(inserted.swap_remove(pos).0);
        }
        let sql = format!(
            "INSERT INTO movements (operation_id, kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket,
                 doc_type, doc_no, actor, lock_id, at)
             VALUES {}",
            numbered("(?, $1, ?, ?, ?, ?, $2, $3, $4, ?, ?, ?, $5)", chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql)
            .bind(MovementKind::Lock.as_str())
            .bind(Bucket::Available.as_str())
            .bind(Bucket::Locked.as_str())
            .bind(doc_type)
            .bind(at);
        for (r, id) in chunk.iter().zip(&ids[first..]) {
            q = q
                .bind(r.op)
                .bind(r.sku_id)
                .bind(r.location_id)
                .bind(r.lot_id)
                .bind(r.qty.get())
                .bind(r.reference)
                .bind(r.actor)
                .bind(*id);
        }
        q.execute(&mut **tx).await.map_err(map_db)?;
    }
    Ok(ids)
}

/// Closes a held reservation by shipping or releasing it. Asking again for
/// the state it is already in answers with the record and posts nothing;
/// asking for the other state is refused.
async fn close_lock_in(
    tx: &mut Tx,
    actor: &Actor,
    at: DateTime<Utc>,
    id: i64,
    ship: Option<&str>,
    reason: Option<&str>,
) -> StoreResult<LockRecord> {
    let lock = lock_for_update(tx, id).await?;
    let next = match ship {
        Some(_) => lock.record.state.ship(),
        None => lock.record.state.release(),
    };
    let next = match next {
        Ok(s) => s,
        Err(_)
            if (ship.is_some() && lock.record.state == LockState::Shipped)
                || (ship.is_none() && lock.record.state == LockState::Released) =>
        {
            return Ok(lock.record);
        }
        Err(_) => {
            return Err(StoreError::LockClosed {
                id,
                state: lock.record.state,
            })
        }
    };
    if let Ok(qty) = Quantity::new(lock.record.qty) {
        let (kind, to) = match ship {
            Some(_) => (MovementKind::Ship, None),
            None => (MovementKind::Release, Some(Bucket::Available)),
        };
        let mut m = NewMovement::new(
            kind,
            (&lock.record.sku, lock.sku_id),
            (&lock.record.bin, lock.location_id),
            lock.lot_id,
            qty,
        )
        .buckets(Some(Bucket::Locked), to)
        .doc(kind.as_str(), &lock.record.reference);
        m.lock_id = Some(id);
        m.customs_doc_no = ship;
        m.reason = reason;
        post(tx, None, actor, at, m).await?;
    }
    sqlx::query("UPDATE locks SET state = $1, closed_at = $2 WHERE id = $3 AND state = 'held'")
        .bind(next.as_str())
        .bind(at)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let row: LockRow = sqlx::query_as(LOCK_SELECT)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(lock_from_row(row)?.record)
}

fn same_sku(existing: &Sku, s: &SkuInput) -> bool {
    let mut barcodes = s.barcodes.clone();
    barcodes.sort();
    existing.name == s.name.trim()
        && existing.barcodes == barcodes
        && existing.hs_code == s.hs_code
        && existing.customs_item_record_no == s.customs_item_record_no
        && existing.ledger_item_no == s.ledger_item_no
        && existing.unit_weight_grams == s.unit_weight_grams
        && existing.shelf_life_days == s.shelf_life_days
        && existing.origin_country == s.origin_country
        && existing.record_status == s.record_status
}

fn check_location_input(l: &LocationInput) -> StoreResult<()> {
    if l.zone.trim().is_empty() {
        return Err(StoreError::Invalid("zone must not be empty".into()));
    }
    Ok(())
}

async fn insert_barcodes(
    tx: &mut Tx,
    sku_id: i64,
    code: &str,
    barcodes: &[String],
) -> StoreResult<()> {
    for b in barcodes {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT s.code FROM sku_barcodes b JOIN skus s ON s.id = b.sku_id WHERE b.barcode = $1",
        )
        .bind(b)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(owner) = owner {
            if owner != code {
                return Err(StoreError::AlreadyExists(format!(
                    "barcode {b} (it belongs to SKU {owner})"
                )));
            }
        }
        sqlx::query("INSERT INTO sku_barcodes (barcode, sku_id) VALUES ($1, $2)")
            .bind(b)
            .bind(sku_id)
            .execute(&mut **tx)
            .await
            .map_err(map_db)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_adjustment(
    tx: &mut Tx,
    actor: &Actor,
    at: DateTime<Utc>,
    key: &str,
    (sku_id, location_id, lot_id): (i64, i64, i64),
    bucket: Bucket,
    delta: i64,
    reason: &str,
    count_id: Option<i64>,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO adjustments (key, sku_id, location_id, lot_id, bucket, delta, reason, count_id, state,
             requested_by, requested_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10) RETURNING id",
    )
    .bind(key)
    .bind(sku_id)
    .bind(location_id)
    .bind(lot_id)
    .bind(bucket.as_str())
    .bind(delta)
    .bind(reason)
    .bind(count_id)
    .bind(&actor.username)
    .bind(at)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| match map_db(e) {
        StoreError::Db(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            StoreError::AlreadyExists(format!("adjustment {key}"))
        }
        other => other,
    })
}

/// key, sku, bin, lot, bucket, delta, reason, state, requested_by
type PendingAdjustmentRow = (String, i64, i64, i64, String, i64, String, String, String);

const ADJUSTMENT_SELECT: &str =
    "SELECT a.id, a.key, s.code, l.code, lot.batch, a.bucket, a.delta, a.reason, c.count_no,
        a.state, a.requested_by, a.requested_at, a.decided_by, a.decided_at
     FROM adjustments a JOIN skus s ON s.id = a.sku_id JOIN locations l ON l.id = a.location_id
     JOIN lots lot ON lot.id = a.lot_id LEFT JOIN counts c ON c.id = a.count_id";

type AdjustmentRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    String,
    DateTime<Utc>,
    Option<String>,
    Option<DateTime<Utc>>,
);

fn adjustment_from_row(r: AdjustmentRow) -> StoreResult<Adjustment> {
    Ok(Adjustment {
        id: r.0,
        key: r.1,
        sku: r.2,
        bin: r.3,
        batch: r.4,
        bucket: Bucket::parse(&r.5)
            .ok_or_else(|| StoreError::Corrupt(format!("bucket {}", r.5)))?,
        delta: r.6,
        reason: r.7,
        count_no: r.8,
        state: AdjustmentState::parse(&r.9)
            .ok_or_else(|| StoreError::Corrupt(format!("adjustment state {}", r.9)))?,
        requested_by: r.10,
        requested_at: r.11,
        decided_by: r.12,
        decided_at: r.13,
    })
}

async fn adjustment_by_id(tx: &mut Tx, id: i64) -> StoreResult<Adjustment> {
    let row: AdjustmentRow = sqlx::query_as(&format!("{ADJUSTMENT_SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    adjustment_from_row(row)
}

async fn user_by_id(tx: &mut Tx, id: i64) -> StoreResult<User> {
    let (id, username, roles, active, created_at): (i64, String, String, bool, DateTime<Utc>) =
        sqlx::query_as("SELECT id, username, roles, active, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(User {
        id,
        username,
        roles: parse_roles(&roles),
        active,
        created_at,
    })
}
