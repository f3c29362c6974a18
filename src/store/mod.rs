//! Persistence: SQLite by default, PostgreSQL when the database URL says so.
//!
//! Both backends run the same SQL (`sql_impl.rs`, compiled once per driver)
//! against their own migrations folder. [`Store`] picks the backend once, at
//! start-up; every method is one use case in one transaction.

mod batch;
pub mod customs_state;
pub mod error;
pub mod outbound;
pub mod types;

mod postgres;
mod sqlite;

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use error::{StoreError, StoreResult};
pub use outbound::*;
pub use types::*;

use crate::domain::Role;

/// How often a write retries after a concurrent writer claimed the same
/// idempotency key (the retry then finds that writer's answer).
const IDEMPOTENCY_ATTEMPTS: usize = 3;
/// Lines in one receipt or count. A container of mixed goods has a few
/// hundred lines; more is a client error, not a delivery.
pub const LINES_MAX: usize = 1_000;
/// Rows in one page of movements, adjustments or audit entries.
pub const MOVEMENT_PAGE_MAX: i64 = 1_000;
/// Rows in one stock answer; the totals always cover every matching row.
pub const STOCK_ROWS_MAX: usize = 10_000;

/// `rows` copies of `template`, comma-separated, with each `?` in it replaced
/// by the next numbered parameter from `$first` on: the VALUES list of a
/// multi-row INSERT (or an IN list) in the numbered style both backends take
/// (SQLite binds `$n` by its number). Used by the store and by the
/// benchmarks' raw SQL.
pub fn numbered(template: &str, rows: usize, first: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(rows * (template.len() + 8));
    let mut n = first;
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        for c in template.chars() {
            if c == '?' {
                let _ = write!(out, "${n}");
                n += 1;
            } else {
                out.push(c);
            }
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL pool size. Each server instance holds this many connections.
    pub pg_max_connections: u32,
    /// How long a request waits for a pooled connection before failing.
    pub acquire_timeout: Duration,
    /// SQLite `synchronous=FULL` (every commit reaches the disk before it is
    /// acknowledged) rather than NORMAL (survives a process crash, but the
    /// last commits may be lost on power failure).
    pub sqlite_sync_full: bool,
    /// An adjustment must be approved by someone other than who requested it.
    pub four_eyes: bool,
    /// Order intake and PDA scans go through the group-commit writer
    /// (`store::batch`): many callers' transactions in one commit, and the
    /// orders queued together taken as one. `Some` turns both on or off;
    /// `None` takes the backend's default, [`GROUP_COMMIT_SQLITE`] or
    /// [`GROUP_COMMIT_POSTGRES`].
    pub group_commit: Option<bool>,
    /// SQLite: WAL checkpoints run on a connection of their own beside the
    /// writer, instead of inside whichever commit crosses SQLite's
    /// threshold (BENCHMARKS.md `pda`). On by default; off only to measure.
    pub sqlite_background_checkpoint: bool,
}

/// Which use cases go through the group-commit writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// Order intake: the orders queued together are taken as one unit.
    pub intake: bool,
    /// PDA scans: each in its own savepoint of a shared commit.
    pub scans: bool,
}

impl GroupCommit {
    /// What `StoreOptions::group_commit` asks for on a backend whose default
    /// is `default`.
    pub fn resolve(asked: Option<bool>, default: GroupCommit) -> GroupCommit {
        asked.map_or(default, |on| GroupCommit {
            intake: on,
            scans: on,
        })
    }
}

/// SQLite commits one transaction at a time through one connection, and each
/// commit waits for a sync: group commit shares it (BENCHMARKS.md `orders`
/// and `pda`).
pub const GROUP_COMMIT_SQLITE: GroupCommit = GroupCommit {
    intake: true,
    scans: true,
};
/// PostgreSQL already shares WAL flushes between concurrent sessions, and
/// its scans run side by side on the pool; the orders queued together are
/// still cheaper as one (BENCHMARKS.md `orders` and `pda`).
pub const GROUP_COMMIT_POSTGRES: GroupCommit = GroupCommit {
    intake: true,
    scans: false,
};

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pg_max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            sqlite_sync_full: true,
            four_eyes: true,
            group_commit: None,
            sqlite_background_checkpoint: true,
        }
    }
}

/// The result of recomputing the books from the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IntegrityReport {
    pub holdings_checked: i64,
    pub movements_checked: i64,
    /// Holdings (`sku@bin#batch`) whose figures differ from what the movements sum to.
    pub ledger_mismatches: Vec<String>,
    /// Holdings whose locked figure differs from the reservations still held.
    pub lock_mismatches: Vec<String>,
}

impl IntegrityReport {
    pub fn is_clean(&self) -> bool {
        self.ledger_mismatches.is_empty() && self.lock_mismatches.is_empty()
    }
}

/// SHA-256 of a request's canonical JSON: what decides whether a repeated
/// idempotency key carries the same request.
fn request_hash<T: Serialize>(t: &T) -> String {
    // The request types are plain structs with string keys: serialising them
    // cannot fail, and a silent empty hash would make different requests equal.
    let bytes = serde_json::to_vec(t).expect("request types serialise to JSON");
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The backend kind a database URL names.
pub fn backend_of(url: &str) -> Option<&'static str> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some("postgres")
    } else if url.starts_with("sqlite:") {
        Some("sqlite")
    } else {
        None
    }
}

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(sqlite::SqlStore),
    Postgres(postgres::SqlStore),
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str, opts: &StoreOptions) -> StoreResult<Store> {
        match backend_of(url) {
            Some("postgres") => Ok(Store::Postgres(
                postgres::SqlStore::connect(url, opts).await?,
            )),
            Some(_) => Ok(Store::Sqlite(sqlite::SqlStore::connect(url, opts).await?)),
            None => Err(StoreError::Invalid(format!(
                "database URL must start with sqlite: or postgres:// (got {})",
                url.split(':').next().unwrap_or("")
            ))),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

/// Forwards each use case to the backend chosen at start-up.
macro_rules! delegate {
    ($( $(#[$m:meta])* pub async fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

delegate! {
    pub async fn close(&self) -> ();
    pub async fn ping(&self) -> StoreResult<()>;
    pub async fn get_sku(&self, code: &str) -> StoreResult<Sku>;
    pub async fn list_skus(&self) -> StoreResult<Vec<Sku>>;
    pub async fn create_sku(&self, actor: &Actor, s: &SkuInput) -> StoreResult<(Sku, bool)>;
    pub async fn update_sku(&self, actor: &Actor, s: &SkuInput) -> StoreResult<Sku>;
    pub async fn get_location(&self, code: &str) -> StoreResult<Location>;
    pub async fn list_locations(&self) -> StoreResult<Vec<Location>>;
    pub async fn create_location(&self, actor: &Actor, l: &LocationInput) -> StoreResult<(Location, bool)>;
    pub async fn update_location(&self, actor: &Actor, l: &LocationInput) -> StoreResult<Location>;
    pub async fn receive(&self, actor: &Actor, r: &ReceiptInput) -> StoreResult<Receipt>;
    pub async fn get_receipt(&self, receipt_no: &str) -> StoreResult<Receipt>;
    pub async fn lock(&self, actor: &Actor, input: &LockInput) -> StoreResult<LockRecord>;
    pub async fn get_lock(&self, id: i64) -> StoreResult<LockRecord>;
    pub async fn release(&self, actor: &Actor, id: i64, input: &ReleaseInput) -> StoreResult<LockRecord>;
    /// Ships a held reservation. Only the gate decision may call this.
    pub async fn ship(&self, actor: &Actor, input: &ShipInput) -> StoreResult<LockRecord>;
    pub async fn damage(&self, actor: &Actor, input: &DamageInput) -> StoreResult<Posted>;
    pub async fn transfer(&self, actor: &Actor, input: &TransferInput) -> StoreResult<Posted>;
    pub async fn request_adjustment(&self, actor: &Actor, input: &AdjustmentInput) -> StoreResult<Adjustment>;
    pub async fn decide_adjustment(&self, actor: &Actor, id: i64, approve: bool) -> StoreResult<Adjustment>;
    pub async fn list_adjustments(&self, state: Option<AdjustmentState>) -> StoreResult<Vec<Adjustment>>;
    pub async fn count(&self, actor: &Actor, input: &CountInput) -> StoreResult<CountResult>;
    pub async fn stock(&self, q: &StockQuery) -> StoreResult<StockReport>;
    pub async fn movements(&self, q: &MovementQuery) -> StoreResult<MovementPage>;
    pub async fn reconciliation(&self, sku: Option<&str>) -> StoreResult<Vec<ReconciliationRow>>;
    pub async fn integrity(&self) -> StoreResult<IntegrityReport>;
    /// The manager's dashboard: pipeline with ages, hourly throughput, customs states, exception counts.
    pub async fn dashboard(&self, now: chrono::DateTime<chrono::Utc>) -> StoreResult<DashboardView>;
    /// What waits for a person on the floor, with its actions.
    pub async fn exceptions(&self, now: chrono::DateTime<chrono::Utc>) -> StoreResult<Vec<ExceptionItem>>;
    pub async fn user_count(&self) -> StoreResult<i64>;
    pub async fn create_user(&self, actor: &Actor, username: &str, password_hash: &str, roles: &[Role]) -> StoreResult<User>;
    pub async fn update_user(&self, actor: &Actor, username: &str, roles: Option<&[Role]>, active: Option<bool>, password_hash: Option<&str>) -> StoreResult<User>;
    pub async fn list_users(&self) -> StoreResult<Vec<User>>;
    pub async fn login_lookup(&self, username: &str) -> StoreResult<Option<(User, String)>>;
    pub async fn create_session(&self, user: &User, token_hash: &str, expires_at: chrono::DateTime<chrono::Utc>) -> StoreResult<()>;
    pub async fn session_actor(&self, token_hash: &str) -> StoreResult<Option<Actor>>;
    pub async fn delete_session(&self, actor: &Actor, token_hash: &str) -> StoreResult<()>;
    pub async fn audit_log(&self, before_id: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    pub async fn create_order(&self, actor: &Actor, input: &OrderInput, ctx: &OrderContext) -> StoreResult<OrderView>;
    pub async fn get_order(&self, order_no: &str) -> StoreResult<OrderView>;
    pub async fn cancel_order(&self, actor: &Actor, order_no: &str, reason: &str) -> StoreResult<OrderView>;
    pub async fn list_orders(&self, q: &OrderQuery) -> StoreResult<Vec<OrderSummary>>;
    pub async fn lock_order(&self, lock_id: i64) -> StoreResult<Option<String>>;
    pub async fn create_wave(&self, actor: &Actor, input: &WaveInput, origin: WaveOrigin) -> StoreResult<WaveView>;
    pub async fn auto_wave(&self, policy: crate::domain::picking::WavePolicy) -> StoreResult<Option<WaveView>>;
    pub async fn get_wave(&self, wave_no: &str) -> StoreResult<WaveView>;
    pub async fn list_pick_tasks(&self, q: &PickTaskQuery) -> StoreResult<Vec<PickTaskView>>;
    pub async fn assign_order(&self, actor: &Actor, input: &AssignInput) -> StoreResult<Vec<PickTaskView>>;
    pub async fn set_badge(&self, actor: &Actor, username: &str, badge: Option<&str>) -> StoreResult<()>;
    /// One PDA scan, answered once per device sequence number.
    pub async fn pda_scan(&self, input: &ScanInput, ctx: &ScanContext<'_>) -> StoreResult<ScanAnswer>;
    pub async fn list_count_requests(&self) -> StoreResult<Vec<CountRequestView>>;
    pub async fn device_status(&self, site: &str, device: &str, online: bool) -> StoreResult<()>;
    pub async fn list_devices(&self) -> StoreResult<Vec<DeviceView>>;
    pub async fn upsert_box_type(&self, actor: &Actor, b: &BoxTypeInput) -> StoreResult<BoxType>;
    pub async fn list_box_types(&self) -> StoreResult<Vec<BoxType>>;
    pub async fn ensure_waybill_range(&self, r: &WaybillRange) -> StoreResult<()>;
    pub async fn pack_plan(&self, code: &str) -> StoreResult<PackPlan>;
    /// Records a weighed parcel: packed when its weight matches, else a mismatch.
    pub async fn pack(&self, actor: &Actor, rec: &PackRecord) -> StoreResult<PackOutcome>;
    pub async fn override_package(&self, actor: &Actor, package_no: &str, reason: &str, waybill: &WaybillChoice, printed_at: &str) -> StoreResult<PackageView>;
    pub async fn get_package(&self, package_no: &str) -> StoreResult<PackageView>;
    pub async fn list_pack_exceptions(&self, open: bool) -> StoreResult<Vec<PackExceptionView>>;
    pub async fn reprint(&self, actor: &Actor, package_no: &str, reason: &str, printed_at: &str) -> StoreResult<PrintJobView>;
    pub async fn next_print_job(&self, station: &str) -> StoreResult<Option<PrintJob>>;
    pub async fn print_attempt(&self, id: i64, outcome: &PrintOutcome) -> StoreResult<()>;
    pub async fn list_print_jobs(&self, station: Option<&str>, state: Option<PrintState>) -> StoreResult<Vec<PrintJobView>>;
    pub async fn pack_session(&self, station: &str) -> StoreResult<Option<(i64, String, String)>>;
    pub async fn save_pack_session(&self, station: &str, prev_seq: Option<i64>, seq: i64, state: &str, answer: &str) -> StoreResult<bool>;
    /// Stores a verified customs message; the same bytes again are refused as a replay.
    pub async fn ingest_customs(&self, actor: &Actor, m: &CustomsMessageInput) -> StoreResult<Vec<CustomsReceiptRow>>;
    pub async fn customs_receipts(&self, cop_no: &str) -> StoreResult<Vec<CustomsReceiptRow>>;
    pub async fn order_by_cop_no(&self, cop_no: &str) -> StoreResult<Option<(String, String)>>;
    /// One scan at an outbound gate: decided and recorded; an open is a grant until `gate_output`.
    pub async fn gate_scan(&self, actor: &Actor, gate: &str, input: &GateScanInput, grant: &GateGrant, scan_key: Option<&str>) -> StoreResult<GateDecisionView>;
    /// The output's answer to a grant: confirmed ships the parcel in the same commit.
    pub async fn gate_output(&self, actor: &Actor, decision_id: i64, event: crate::domain::gate::ExitEvent, detail: &str) -> StoreResult<GateDecisionView>;
    /// Settles grants whose command expired unanswered.
    pub async fn gate_sweep(&self, actor: &Actor, grace: chrono::Duration, skip: &[i64]) -> StoreResult<Vec<GateDecisionView>>;
    pub async fn gate_event(&self, e: &GateEventInput) -> StoreResult<()>;
    pub async fn gate_decisions(&self, gate: &str, limit: i64) -> StoreResult<Vec<GateDecisionView>>;
    pub async fn gate_decision(&self, id: i64) -> StoreResult<GateDecisionView>;
    pub async fn waybill_record(&self, package_no: &str, logistics: (&str, &str)) -> StoreResult<WaybillRecord>;
    pub async fn list_customs_tasks(&self, state: Option<&str>) -> StoreResult<Vec<CustomsTaskView>>;
    pub async fn get_customs_task(&self, id: i64) -> StoreResult<CustomsTaskView>;
    /// Moves a held parcel's reserved stock to an inspection (or quarantine) bin.
    pub async fn move_customs_task(&self, actor: &Actor, id: i64, bin: &str) -> StoreResult<CustomsTaskView>;
    pub async fn close_customs_task(&self, actor: &Actor, id: i64, note: &str) -> StoreResult<CustomsTaskView>;
    /// Creates a vehicle manifest (plate and seal already parsed); `true` when new.
    pub async fn create_manifest(&self, actor: &Actor, input: &ManifestInput) -> StoreResult<(ManifestView, bool)>;
    pub async fn list_manifests(&self, state: Option<&str>) -> StoreResult<Vec<ManifestSummary>>;
    pub async fn get_manifest(&self, manifest_no: &str) -> StoreResult<ManifestView>;
    /// Loads a parcel that exited through the gate onto an open manifest.
    pub async fn add_manifest_parcel(&self, actor: &Actor, manifest_no: &str, code: &str) -> StoreResult<ManifestView>;
    pub async fn remove_manifest_parcel(&self, actor: &Actor, manifest_no: &str, package: &str) -> StoreResult<ManifestView>;
    /// Closes a manifest for good, with its seal (already parsed).
    pub async fn close_manifest(&self, actor: &Actor, manifest_no: &str, seal: Option<&str>) -> StoreResult<ManifestView>;
}
