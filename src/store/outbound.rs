//! The use cases' inputs and outputs for what happens to a parcel after the
//! customs decision: inspection and quarantine tasks (a hold receipt), and
//! the outbound vehicle manifest (parcels that left through the gate).
//! They are also the API's bodies.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

// ------------------------------------------------------------ customs tasks

/// Most customs tasks in one list answer, newest first.
pub const CUSTOMS_TASKS_MAX: i64 = 500;
/// Longest note on a closed task.
pub const TASK_NOTE_CHARS_MAX: usize = 500;

/// A parcel customs holds: to the inspection area (500, 查验) or to
/// quarantine (501–503, 599, detained). One per hold receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustomsTaskView {
    pub id: i64,
    /// `inspection` or `quarantine`.
    pub kind: String,
    /// `open` (not yet moved), `moved` (in the inspection or quarantine
    /// bin) or `closed`.
    pub state: String,
    pub order_no: String,
    /// The parcel, once packed.
    pub package_no: Option<String>,
    pub cop_no: String,
    /// The hold receipt the task was created for.
    pub receipt_id: i64,
    pub return_status: i64,
    pub return_time: String,
    /// The bin the parcel was moved to.
    pub bin: Option<String>,
    pub created_at: DateTime<Utc>,
    pub moved_by: Option<String>,
    pub moved_at: Option<DateTime<Utc>>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct CustomsTaskQuery {
    /// `open`, `moved` or `closed`; all when absent.
    pub state: Option<String>,
}

/// Where the held parcel goes: an inspection bin for an inspection task, a
/// quarantine bin for a quarantine task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomsTaskMoveInput {
    pub bin: String,
}

/// What came of the inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomsTaskCloseInput {
    pub note: String,
}

// --------------------------------------------------------- vehicle manifest

/// Most manifests in one list answer, newest first.
pub const MANIFESTS_MAX: i64 = 500;

/// A new outbound vehicle manifest. Idempotent on `manifest_no`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestInput {
    pub manifest_no: String,
    /// The vehicle's plate, e.g. `浙A12345` or `浙AD12345` (new energy).
    pub plate: String,
    /// The customs seal (关锁号), if already applied; else given at closing.
    #[serde(default)]
    pub seal: Option<String>,
}

/// A parcel to load: its package number or waybill number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestParcelInput {
    pub code: String,
}

/// Closing a manifest: the seal, unless it was given at creation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestCloseInput {
    #[serde(default)]
    pub seal: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ManifestQuery {
    /// `open` or `closed`; all when absent.
    pub state: Option<String>,
}

/// One parcel on a manifest, with what the outbound 核注清单 needs of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManifestParcelView {
    /// The 清单 number customs assigned (`invtNo`, from its receipts).
    pub invt_no: Option<String>,
    pub cop_no: String,
    pub order_no: String,
    pub package_no: String,
    pub waybill_no: Option<String>,
    pub gross_grams: i64,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

/// A manifest with its parcels and totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManifestView {
    pub manifest_no: String,
    pub plate: String,
    pub seal: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub closed_by: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    pub parcel_count: i64,
    pub total_gross_grams: i64,
    /// In loading order.
    pub parcels: Vec<ManifestParcelView>,
}

/// A manifest in a list, without its parcels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManifestSummary {
    pub manifest_no: String,
    pub plate: String,
    pub seal: Option<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub parcel_count: i64,
    pub total_gross_grams: i64,
}
