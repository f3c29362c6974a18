//! What goes into and comes out of the store's use cases. These are also the
//! HTTP API's bodies (with their OpenAPI schemas), so they are plain data.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::{
    BatchNo, BinCode, Bucket, DocumentNo, LockState, MovementKind, Quantity, Role, SkuCode,
};

/// Who is acting: every mutation records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub user_id: i64,
    pub username: String,
    pub roles: Vec<Role>,
}

impl Actor {
    /// The server itself, for start-up work such as the first admin.
    pub fn system() -> Actor {
        Actor {
            user_id: 0,
            username: "system".into(),
            roles: vec![Role::Admin],
        }
    }
    /// A device or task of the server acting on its own, named for the
    /// audit log (e.g. `gate-scanner:G1`).
    pub fn system_named(name: &str) -> Actor {
        Actor {
            user_id: 0,
            username: name.into(),
            roles: vec![Role::Admin],
        }
    }
    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }
}

// ---------------------------------------------------------------- master data

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// The customs item record (备案) is valid: the SKU may be declared.
    #[default]
    Active,
    /// Customs revoked the record: no new orders may use the SKU.
    Revoked,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Active => "active",
            RecordStatus::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkuInput {
    #[schema(value_type = String, example = "SKU-SERUM-30ML")]
    pub code: SkuCode,
    pub name: String,
    /// Every barcode printed on the goods (EAN-13, UPC, the brand's own).
    #[serde(default)]
    pub barcodes: Vec<String>,
    /// HS code (商品编码), 10 digits.
    pub hs_code: Option<String>,
    /// Customs item record number (`itemRecordNo`).
    pub customs_item_record_no: Option<String>,
    /// Bonded-ledger item number (`putrecSeqno` on the 账册).
    pub ledger_item_no: Option<String>,
    pub unit_weight_grams: i64,
    pub shelf_life_days: Option<i64>,
    /// ISO 3166 or customs country code of origin.
    pub origin_country: Option<String>,
    #[serde(default)]
    pub record_status: RecordStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sku {
    pub code: String,
    pub name: String,
    pub barcodes: Vec<String>,
    pub hs_code: Option<String>,
    pub customs_item_record_no: Option<String>,
    pub ledger_item_no: Option<String>,
    pub unit_weight_grams: i64,
    pub shelf_life_days: Option<i64>,
    pub origin_country: Option<String>,
    pub record_status: RecordStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    Storage,
    Pick,
    Pack,
    Inspection,
    Quarantine,
    Defective,
    Dock,
}

impl LocationKind {
    pub const ALL: [LocationKind; 7] = [
        LocationKind::Storage,
        LocationKind::Pick,
        LocationKind::Pack,
        LocationKind::Inspection,
        LocationKind::Quarantine,
        LocationKind::Defective,
        LocationKind::Dock,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            LocationKind::Storage => "storage",
            LocationKind::Pick => "pick",
            LocationKind::Pack => "pack",
            LocationKind::Inspection => "inspection",
            LocationKind::Quarantine => "quarantine",
            LocationKind::Defective => "defective",
            LocationKind::Dock => "dock",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    #[schema(value_type = String, example = "A-01-02-3")]
    pub code: BinCode,
    pub zone: String,
    /// Position on the pickers' walk: pick lists are sorted by it.
    pub walk_seq: i64,
    pub kind: LocationKind,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Location {
    pub code: String,
    pub zone: String,
    pub walk_seq: i64,
    pub kind: LocationKind,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// ------------------------------------------------------------------ inventory

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptInput {
    /// The warehouse's receipt number: the idempotency key of this receipt.
    #[schema(value_type = String)]
    pub receipt_no: DocumentNo,
    /// The customs entry document the goods arrived on (inbound 核注清单).
    #[schema(value_type = String)]
    pub customs_doc_no: DocumentNo,
    pub supplier: Option<String>,
    pub lines: Vec<ReceiptLineInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLineInput {
    #[schema(value_type = String)]
    pub sku: SkuCode,
    #[schema(value_type = String)]
    pub bin: BinCode,
    #[serde(default)]
    #[schema(value_type = String)]
    pub batch: BatchNo,
    pub expiry: Option<NaiveDate>,
    /// Sound units, into `available`.
    pub qty: i64,
    /// Units damaged on arrival, straight into `defective`.
    #[serde(default)]
    pub damaged_qty: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Receipt {
    pub receipt_no: String,
    pub customs_doc_no: String,
    pub supplier: Option<String>,
    pub lines: Vec<ReceiptLine>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptLine {
    pub sku: String,
    pub bin: String,
    pub batch: String,
    pub expiry: Option<NaiveDate>,
    pub qty: i64,
    pub damaged_qty: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockInput {
    /// The caller's idempotency key for this reservation.
    #[schema(value_type = String)]
    pub key: DocumentNo,
    /// What the stock is reserved for, e.g. an order number.
    #[schema(value_type = String)]
    pub reference: DocumentNo,
    #[schema(value_type = String)]
    pub sku: SkuCode,
    #[schema(value_type = String)]
    pub bin: BinCode,
    #[serde(default)]
    #[schema(value_type = String)]
    pub batch: BatchNo,
    #[schema(value_type = i64, minimum = 1)]
    pub qty: Quantity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LockRecord {
    pub id: i64,
    pub reference: String,
    pub sku: String,
    pub bin: String,
    pub batch: String,
    pub expiry: Option<NaiveDate>,
    /// Units still reserved (damage of reserved units reduces it).
    pub qty: i64,
    #[schema(value_type = String)]
    pub state: LockState,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    pub reason: Option<String>,
}

/// Shipping is the gate's business: only the gate decision calls this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipInput {
    pub lock_id: i64,
    /// The customs document the goods leave on (the released 清单 `invtNo`).
    pub customs_doc_no: DocumentNo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DamageInput {
    #[schema(value_type = String)]
    pub key: DocumentNo,
    #[schema(value_type = String)]
    pub sku: SkuCode,
    #[schema(value_type = String)]
    pub bin: BinCode,
    #[serde(default)]
    #[schema(value_type = String)]
    pub batch: BatchNo,
    #[schema(value_type = i64, minimum = 1)]
    pub qty: Quantity,
    /// Damage units under this reservation instead of available ones.
    pub lock_id: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    #[schema(value_type = String)]
    pub key: DocumentNo,
    #[schema(value_type = String)]
    pub sku: SkuCode,
    #[serde(default)]
    #[schema(value_type = String)]
    pub batch: BatchNo,
    #[schema(value_type = String)]
    pub from_bin: BinCode,
    #[schema(value_type = String)]
    pub to_bin: BinCode,
    #[schema(value_type = i64, minimum = 1)]
    pub qty: Quantity,
}

/// The movements one operation posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Posted {
    pub key: String,
    pub movement_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentInput {
    #[schema(value_type = String)]
    pub key: DocumentNo,
    #[schema(value_type = String)]
    pub sku: SkuCode,
    #[schema(value_type = String)]
    pub bin: BinCode,
    #[serde(default)]
    #[schema(value_type = String)]
    pub batch: BatchNo,
    /// Only needed when the adjustment creates a lot the warehouse has never held.
    pub expiry: Option<NaiveDate>,
    /// `available` or `defective`; reservations are never adjusted.
    #[schema(value_type = String)]
    pub bucket: Bucket,
    /// Units gained (positive) or lost (negative).
    pub delta: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentState {
    Pending,
    Approved,
    Rejected,
}

impl AdjustmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "rejected" => Some(Self::Rejected),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Adjustment {
    pub id: i64,
    pub key: String,
    pub sku: String,
    pub bin: String,
    pub batch: String,
    #[schema(value_type = String)]
    pub bucket: Bucket,
    pub delta: i64,
    pub reason: String,
    pub count_no: Option<String>,
    pub state: AdjustmentState,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountInput {
    #[schema(value_type = String)]
    pub count_no: DocumentNo,
    #[schema(value_type = String)]
    pub bin: BinCode,
    pub lines: Vec<CountLineInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountLineInput {
    #[schema(value_type = String)]
    pub sku: SkuCode,
    #[serde(default)]
    #[schema(value_type = String)]
    pub batch: BatchNo,
    pub expiry: Option<NaiveDate>,
    /// Units physically found in the bin, sound or not, reserved or not.
    pub counted: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountResult {
    pub count_no: String,
    pub bin: String,
    pub lines: Vec<CountedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountedLine {
    pub sku: String,
    pub batch: String,
    /// What the books say is in the bin (available + locked + defective).
    pub expected: i64,
    pub counted: i64,
    pub difference: i64,
    /// The pending adjustment raised for a difference, awaiting approval.
    pub adjustment_id: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct StockQuery {
    pub sku: Option<String>,
    pub bin: Option<String>,
    pub batch: Option<String>,
    pub zone: Option<String>,
    /// Include holdings whose total is zero.
    #[serde(default)]
    pub include_empty: bool,
    /// At most this many rows (1 to 10,000, the default); `truncated` says
    /// when more matched.
    pub limit: Option<i64>,
    /// Count the lots with stock that expire within this many days, and
    /// those already expired, over every matching row (`expiry`).
    pub expiring_within_days: Option<i64>,
    /// The business date the expiry counts are taken on (the API sets it
    /// to today in China Standard Time).
    #[serde(skip)]
    #[param(ignore)]
    pub today: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockRow {
    pub sku: String,
    pub sku_name: String,
    pub bin: String,
    pub zone: String,
    pub location_kind: LocationKind,
    pub batch: String,
    pub expiry: Option<NaiveDate>,
    pub available: i64,
    pub locked: i64,
    pub defective: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockTotals {
    pub available: i64,
    pub locked: i64,
    pub defective: i64,
    pub total: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockReport {
    pub rows: Vec<StockRow>,
    /// More rows matched than one answer carries; narrow the filter.
    pub truncated: bool,
    pub totals: StockTotals,
    /// With `expiring_within_days`: the lots past or near their expiry.
    #[serde(default)]
    pub expiry: Option<ExpirySummary>,
}

/// Holdings with stock whose lot has expired, or expires within the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExpirySummary {
    pub today: NaiveDate,
    pub within_days: i64,
    /// Expiry before today.
    pub expired: i64,
    /// Expiry from today to today + `within_days`.
    pub expiring: i64,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct MovementQuery {
    pub sku: Option<String>,
    pub bin: Option<String>,
    pub kind: Option<String>,
    pub doc_no: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keyset paging: only movements with an id below this one (newest first).
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MovementRow {
    pub id: i64,
    #[schema(value_type = String)]
    pub kind: MovementKind,
    pub sku: String,
    pub bin: String,
    pub batch: String,
    pub qty: i64,
    #[schema(value_type = Option<String>)]
    pub from_bucket: Option<Bucket>,
    #[schema(value_type = Option<String>)]
    pub to_bucket: Option<Bucket>,
    pub doc_type: String,
    pub doc_no: String,
    pub customs_doc_no: Option<String>,
    pub reason: Option<String>,
    pub actor: String,
    pub approver: Option<String>,
    pub lock_id: Option<i64>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MovementPage {
    pub movements: Vec<MovementRow>,
    /// Pass as `before_id` for the next page; absent on the last page.
    pub next_before_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconciliationRow {
    pub sku: String,
    pub ledger_item_no: Option<String>,
    pub received: i64,
    pub shipped: i64,
    pub adjusted_in: i64,
    pub adjusted_out: i64,
    pub expected_on_hand: i64,
    pub on_hand: i64,
    pub difference: i64,
    pub balanced: bool,
    /// Received and shipped per customs document.
    pub documents: Vec<DocumentTotals>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentTotals {
    pub customs_doc_no: String,
    pub received: i64,
    pub shipped: i64,
}

// -------------------------------------------------------------------- users

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<Role>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

// ------------------------------------------------------------------- orders

/// An order as the platform sends it. Holds personal data in the clear: it
/// lives only in memory, between the request and [`crate::orders`], which
/// seals it before the store sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// The platform's order number: the idempotency key of this order.
    #[schema(value_type = String)]
    pub order_no: DocumentNo,
    #[schema(value_type = String, example = "1210")]
    pub trade_mode: crate::domain::TradeMode,
    /// E-commerce platform code (`ebpCode`).
    pub ebp_code: String,
    /// E-commerce company code (`ebcCode`).
    pub ebc_code: String,
    /// The enterprise's own number for the customs declaration (`copNo`).
    #[schema(value_type = String)]
    pub cop_no: DocumentNo,
    pub buyer: BuyerInput,
    pub consignee: ConsigneeInput,
    pub lines: Vec<OrderLineInput>,
    #[schema(value_type = String, example = "199.00")]
    pub goods_value: crate::domain::Money,
    #[schema(value_type = String)]
    pub freight: crate::domain::Money,
    #[schema(value_type = String)]
    pub discount: crate::domain::Money,
    #[schema(value_type = String)]
    pub tax: crate::domain::Money,
    /// Must equal goods_value + freight + tax − discount.
    #[schema(value_type = String)]
    pub actual_paid: crate::domain::Money,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerInput {
    pub name: String,
    /// National ID card number (GB 11643, `buyerIdType` 1).
    pub id_number: String,
    pub phone: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsigneeInput {
    pub name: String,
    pub phone: String,
    pub address: String,
}

/// Personal data never reaches a log through `Debug`.
impl std::fmt::Debug for BuyerInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuyerInput")
            .field("name", &self.name)
            .field(
                "id_number",
                &crate::domain::idcard::mask_id_number(&self.id_number),
            )
            .field("phone", &crate::domain::idcard::mask_phone(&self.phone))
            .finish()
    }
}

impl std::fmt::Debug for ConsigneeInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsigneeInput")
            .field("name", &self.name)
            .field("phone", &crate::domain::idcard::mask_phone(&self.phone))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineInput {
    #[schema(value_type = String)]
    pub sku: SkuCode,
    #[schema(value_type = i64, minimum = 1)]
    pub qty: Quantity,
    #[schema(value_type = String, example = "99.50")]
    pub unit_price: crate::domain::Money,
}

/// The sealed personal data of an order, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedParties {
    pub buyer_id_sealed: String,
    pub buyer_id_masked: String,
    /// Keyed fingerprint of the buyer's ID number, to find their orders.
    pub buyer_ref: String,
    pub buyer_phone_sealed: String,
    pub buyer_phone_masked: String,
    pub consignee_phone_sealed: String,
    pub consignee_phone_masked: String,
}

/// What intake needs besides the order: the sealed personal data, the
/// request's keyed fingerprint (its idempotency hash), and the business dates.
#[derive(Debug, Clone)]
pub struct OrderContext {
    pub sealed: SealedParties,
    pub fingerprint: String,
    /// Today in China Standard Time: expired stock is not allocated.
    pub today: chrono::NaiveDate,
    /// 1 January of this year, 00:00 China Standard Time.
    pub year_start: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub order_no: String,
    #[schema(value_type = String)]
    pub state: crate::domain::OrderState,
    #[schema(value_type = String)]
    pub trade_mode: crate::domain::TradeMode,
    pub ebp_code: String,
    pub ebc_code: String,
    pub cop_no: String,
    pub buyer: PartyView,
    pub consignee: PartyView,
    #[schema(value_type = String)]
    pub goods_value: crate::domain::Money,
    #[schema(value_type = String)]
    pub freight: crate::domain::Money,
    #[schema(value_type = String)]
    pub discount: crate::domain::Money,
    #[schema(value_type = String)]
    pub tax: crate::domain::Money,
    #[schema(value_type = String)]
    pub actual_paid: crate::domain::Money,
    pub lines: Vec<OrderLineView>,
    /// E.g. the buyer's annual limit passed.
    pub warnings: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    /// The wave it is picked in, once waved.
    pub wave_no: Option<String>,
    /// The tote its goods are picked into.
    pub tote: Option<String>,
    /// Why it is on the exception list.
    pub exception_reason: Option<String>,
}

/// A person on an order, masked: screens and logs never see more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartyView {
    pub name: String,
    /// `3301**********1234`; absent for the consignee.
    pub id_number: Option<String>,
    /// `138****5678`.
    pub phone: String,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLineView {
    pub line_no: i64,
    pub sku: String,
    pub qty: i64,
    #[schema(value_type = String)]
    pub unit_price: crate::domain::Money,
    /// Where the units are reserved, earliest expiry first.
    pub allocations: Vec<AllocationView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllocationView {
    pub lock_id: i64,
    pub bin: String,
    pub batch: String,
    pub expiry: Option<NaiveDate>,
    pub qty: i64,
    #[schema(value_type = String)]
    pub state: LockState,
}

impl OrderView {
    /// The answer to an order just taken, built from what intake wrote
    /// rather than read back: `allocations` are its reservations, each with
    /// the index of the input line it serves. It equals what reading the
    /// order back gives (`Store::get_order`) at that moment; the lines'
    /// allocations come earliest expiry first (none last), then by lock id.
    pub fn taken(
        input: &OrderInput,
        ctx: &OrderContext,
        allocations: Vec<(usize, AllocationView)>,
        warnings: Vec<String>,
        at: DateTime<Utc>,
    ) -> OrderView {
        let mut per_line: Vec<Vec<AllocationView>> = vec![Vec::new(); input.lines.len()];
        for (i, a) in allocations {
            if let Some(line) = per_line.get_mut(i) {
                line.push(a);
            }
        }
        let lines = input
            .lines
            .iter()
            .zip(per_line)
            .enumerate()
            .map(|(i, (line, mut allocations))| {
                AllocationView::sort(&mut allocations);
                OrderLineView {
                    line_no: i as i64 + 1,
                    sku: line.sku.to_string(),
                    qty: line.qty.get(),
                    unit_price: line.unit_price,
                    allocations,
                }
            })
            .collect();
        let s = &ctx.sealed;
        OrderView {
            order_no: input.order_no.to_string(),
            state: crate::domain::OrderState::Locked,
            trade_mode: input.trade_mode,
            ebp_code: input.ebp_code.trim().to_string(),
            ebc_code: input.ebc_code.trim().to_string(),
            cop_no: input.cop_no.to_string(),
            buyer: PartyView {
                name: input.buyer.name.trim().to_string(),
                id_number: Some(s.buyer_id_masked.clone()),
                phone: s.buyer_phone_masked.clone(),
                address: None,
            },
            consignee: PartyView {
                name: input.consignee.name.trim().to_string(),
                id_number: None,
                phone: s.consignee_phone_masked.clone(),
                address: Some(input.consignee.address.trim().to_string()),
            },
            goods_value: input.goods_value,
            freight: input.freight,
            discount: input.discount,
            tax: input.tax,
            actual_paid: input.actual_paid,
            lines,
            warnings,
            created_at: at,
            cancelled_at: None,
            cancel_reason: None,
            wave_no: None,
            tote: None,
            exception_reason: None,
        }
    }
}

impl AllocationView {
    /// The order an order line's reservations are shown in: earliest expiry
    /// first (none last), then by lock id.
    pub fn sort(allocations: &mut [AllocationView]) {
        allocations.sort_by_key(|a| (a.expiry.is_none(), a.expiry, a.lock_id));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineShortfall {
    pub line_no: i64,
    pub sku: String,
    pub requested: i64,
    /// Units that could be reserved now (in date, in storage or pick bins).
    pub available: i64,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    pub state: Option<String>,
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderSummary {
    pub id: i64,
    pub order_no: String,
    #[schema(value_type = String)]
    pub state: crate::domain::OrderState,
    #[schema(value_type = String)]
    pub actual_paid: crate::domain::Money,
    pub lines: i64,
    pub units: i64,
    pub created_at: DateTime<Utc>,
    /// When it entered its current state.
    pub state_at: DateTime<Utc>,
    /// Why it is on the exception list, or why it was cancelled.
    pub reason: Option<String>,
}

// ------------------------------------------------------------------ picking

/// A manager's wave: the orders to pick together. Idempotent on `wave_no`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveInput {
    #[schema(value_type = String)]
    pub wave_no: DocumentNo,
    /// The orders to put in the wave; absent: the oldest orders waiting.
    #[serde(default)]
    pub order_nos: Option<Vec<String>>,
    /// With no `order_nos`: at most this many (default 50).
    #[serde(default)]
    pub max_orders: Option<i64>,
    /// Assign every task of the wave to this picker at once.
    #[serde(default)]
    pub picker: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaveOrigin {
    Manual,
    Auto,
}

impl WaveOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            WaveOrigin::Manual => "manual",
            WaveOrigin::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaveView {
    pub wave_no: String,
    pub origin: WaveOrigin,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub order_nos: Vec<String>,
    /// In bin walk order.
    pub tasks: Vec<PickTaskView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Open,
    Assigned,
    InProgress,
    Picked,
    Short,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 6] = [
        TaskState::Open,
        TaskState::Assigned,
        TaskState::InProgress,
        TaskState::Picked,
        TaskState::Short,
        TaskState::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Assigned => "assigned",
            TaskState::InProgress => "in_progress",
            TaskState::Picked => "picked",
            TaskState::Short => "short",
            TaskState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PickTaskView {
    pub id: i64,
    pub wave_no: String,
    pub order_no: String,
    pub line_no: i64,
    pub lock_id: i64,
    pub sku: String,
    pub bin: String,
    pub walk_seq: i64,
    pub batch: String,
    pub expiry: Option<NaiveDate>,
    pub qty: i64,
    pub picked_qty: i64,
    pub short_qty: i64,
    #[schema(value_type = Option<String>)]
    pub short_reason: Option<crate::domain::picking::ShortReason>,
    pub state: TaskState,
    pub picker: Option<String>,
    pub tote: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct PickTaskQuery {
    pub wave_no: Option<String>,
    pub order_no: Option<String>,
    pub state: Option<String>,
    pub picker: Option<String>,
    pub limit: Option<i64>,
}

/// Hand an order's unfinished tasks to a picker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    pub order_no: String,
    pub picker: String,
}

/// One scan from a PDA, over HTTP (the browser PDA page) or MQTT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanInput {
    /// The device's id, e.g. `PDA-07` or the browser page's own id.
    pub device: String,
    /// The device's scan sequence number: a repeat gets the same answer.
    pub seq: u64,
    pub barcode: String,
}

/// What the PDA shows and sounds after a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScanAnswer {
    pub seq: u64,
    pub ok: bool,
    /// `ok`, `warning` or `error`.
    #[schema(value_type = String)]
    pub tone: bondgate_protocol::Tone,
    /// What to do; the code to scan next is in square brackets.
    pub text: String,
    /// The same in Chinese (absent in answers stored before it existed).
    #[serde(default)]
    pub text_zh: Option<String>,
    /// What to scan next: login, tote, bin, item, lot, qty, reason or done.
    #[schema(value_type = String)]
    pub next: bondgate_protocol::Next,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub site: String,
    pub device: String,
    /// Presence: the device's retained `online` / `offline` (its last will).
    pub online: bool,
    pub changed_at: DateTime<Utc>,
    /// A bridge's report of the device behind it (`devices/{id}/health`);
    /// absent for devices that send none (PDAs). Not stored: filled in by
    /// the server from the reports it holds in memory.
    #[serde(default)]
    pub health: Option<DeviceHealthView>,
}

/// The latest health report of a bridge, as the server received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceHealthView {
    /// A valid report was received (false: only refused ones).
    pub reported: bool,
    /// The device behind the bridge is there and talking (a scale's port is
    /// open and data arrives). False until a report says otherwise.
    pub ok: bool,
    /// The last error the bridge saw, kept after recovery.
    pub last_error: Option<String>,
    /// Input the bridge refused since it started (bad frames, bad lines).
    pub bad_input: u64,
    /// Messages the bridge dropped rather than send late since it started.
    pub dropped: u64,
    /// When the bridge wrote the report, Unix milliseconds (bridge clock).
    pub reported_ts: Option<i64>,
    /// Milliseconds since the server received the report (server clock).
    pub age_ms: Option<u64>,
    /// Health payloads from this device that could not be parsed.
    pub refused_reports: u64,
    /// Why the last refused one was refused.
    pub refused_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountRequestView {
    pub id: i64,
    pub sku: String,
    pub bin: String,
    pub reason: String,
    pub raised_by: String,
    pub raised_at: DateTime<Utc>,
}

/// What a PDA scan needs besides the scan.
#[derive(Debug, Clone)]
pub struct ScanContext<'a> {
    /// Tote labels start with this (e.g. `TOTE`).
    pub tote_prefix: &'a str,
    /// The logged-in user of the browser PDA page; None over MQTT, where the
    /// picker logs in by badge.
    pub user: Option<&'a Actor>,
}

// ------------------------------------------------------------------ packing

/// A carton or bag the pack stations use; its tare enters the weight check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoxTypeInput {
    /// What the packer scans for it, e.g. `BOX-S`.
    pub code: String,
    pub name: String,
    pub tare_grams: i64,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BoxType {
    pub code: String,
    pub name: String,
    pub tare_grams: i64,
    pub active: bool,
}

/// A carrier's allotted waybill numbers: `prefix` + `next..=last`, zero-padded
/// to `width` digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaybillRange {
    pub name: String,
    pub prefix: String,
    pub first: i64,
    pub last: i64,
    pub width: i64,
}

/// What the pack station needs to check an order: its lines with their
/// barcodes, reserved batches and unit weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackPlan {
    pub order_no: String,
    #[schema(value_type = String)]
    pub state: crate::domain::OrderState,
    pub tote: Option<String>,
    pub lines: Vec<PackPlanLine>,
    /// The parcel, once one was weighed for this order.
    pub package: Option<PackageView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackPlanLine {
    pub sku: String,
    pub name: String,
    pub qty: i64,
    pub barcodes: Vec<String>,
    pub batches: Vec<String>,
    pub unit_grams: i64,
}

/// How the waybill number of a parcel is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum WaybillChoice {
    /// The next number of this configured range, taken in the pack transaction.
    Range(String),
    /// A number a logistics adapter already obtained from the carrier.
    Given(String),
}

/// A weighed parcel, after the service checked its items and took a stable
/// reading: the store decides match or mismatch in the same transaction that
/// records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackRecord {
    pub order_no: String,
    pub station: String,
    pub box_code: String,
    pub gross_grams: i64,
    pub weighed_at: DateTime<Utc>,
    pub tolerance_grams: i64,
    pub tolerance_basis_points: i64,
    pub waybill: WaybillChoice,
    /// Where printed labels say they were printed, already formatted.
    pub printed_at_text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackageState {
    /// Weighed, did not match: no waybill, no label, on the exception list.
    Mismatch,
    /// Weight matched (or was overridden), waybill assigned, label queued.
    Packed,
}

impl PackageState {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageState::Mismatch => "mismatch",
            PackageState::Packed => "packed",
        }
    }
    pub fn parse(s: &str) -> Option<PackageState> {
        match s {
            "mismatch" => Some(PackageState::Mismatch),
            "packed" => Some(PackageState::Packed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageView {
    pub package_no: String,
    pub order_no: String,
    pub state: PackageState,
    pub station: String,
    pub packer: String,
    pub box_code: String,
    pub tare_grams: i64,
    pub expected_grams: i64,
    pub gross_grams: i64,
    /// `gross - expected`: positive is heavier than expected.
    pub diff_grams: i64,
    pub allowed_grams: i64,
    pub weighed_at: DateTime<Utc>,
    pub waybill_no: Option<String>,
    pub override_by: Option<String>,
    pub override_reason: Option<String>,
    pub packed_at: Option<DateTime<Utc>>,
    /// The label print jobs, first print and reprints.
    pub prints: Vec<PrintJobView>,
}

impl PackageView {
    /// The weight decision this parcel was recorded with.
    pub fn weight_check(&self) -> crate::domain::packing::WeightCheck {
        crate::domain::packing::WeightCheck {
            expected: self.expected_grams,
            actual: self.gross_grams,
            diff: self.diff_grams,
            allowed: self.allowed_grams,
        }
    }
}

/// The result of a pack: packed, or refused for its weight (and recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackOutcome {
    /// Packed now (`true`) or already before (`false`, nothing done again).
    Packed(PackageView, bool),
    /// The weight did not match: recorded as an exception, nothing printed.
    Mismatch(PackageView),
}

/// What a label shows, as stored with its print job (JSON): the label
/// crate's own document, rendered by the station printer's backend when it
/// prints.
pub type LabelData = bondgate_label::Label;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrintState {
    Queued,
    Printed,
    Cancelled,
}

impl PrintState {
    pub fn parse(s: &str) -> Option<PrintState> {
        match s {
            "queued" => Some(PrintState::Queued),
            "printed" => Some(PrintState::Printed),
            "cancelled" => Some(PrintState::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrintJobView {
    pub id: i64,
    pub station: String,
    pub package_no: String,
    pub copy: i64,
    pub state: PrintState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub requested_by: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub printed_at: Option<DateTime<Utc>>,
}

/// What became of one attempt to print a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrintOutcome {
    /// The printer took every byte and answered after the last one.
    Printed,
    /// Not printed (printer off, paper out…): stays queued, tried again.
    Retry(String),
    /// Can never print (the label cannot be rendered): taken off the queue.
    Failed(String),
}

/// A queued job with its label, for the print worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJob {
    pub id: i64,
    pub station: String,
    pub label: LabelData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackExceptionView {
    pub id: i64,
    pub package_no: String,
    pub order_no: String,
    pub kind: String,
    pub expected_grams: i64,
    pub gross_grams: i64,
    pub allowed_grams: i64,
    pub station: String,
    pub packer: String,
    pub at: DateTime<Utc>,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A manager accepts a parcel whose weight did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideInput {
    /// Why the weight is right after all (e.g. "gift box heavier than its record").
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReprintInput {
    /// Why another copy is needed (e.g. "label smudged"); kept in the audit log.
    pub reason: String,
}

/// The waybill as the customs message CEB511 carries it (`LogisticsHead`),
/// ready for the customs adapter. The telephone is masked here; the adapter
/// unseals `consignee_telephone_sealed` when it sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaybillRecord {
    pub logistics_code: String,
    pub logistics_name: String,
    pub logistics_no: String,
    pub order_no: String,
    /// Freight in CNY, as on the order.
    pub freight: String,
    /// Gross weight in kg with three decimals.
    pub weight: String,
    /// Number of packages (always 1: one parcel per order).
    pub pack_no: i64,
    pub consignee: String,
    pub consignee_address: String,
    /// Masked.
    pub consignee_telephone: String,
    #[serde(skip)]
    pub consignee_telephone_sealed: String,
}

// ------------------------------------------------------------------ customs

/// One receipt as stored (and shown in an order's receipt history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustomsReceiptRow {
    pub id: i64,
    /// `inventory` (CEB622), `cancellation` (CEB624) or `format_error` (CEB900).
    pub kind: String,
    pub cop_no: Option<String>,
    pub pre_no: Option<String>,
    pub invt_no: Option<String>,
    pub guid: Option<String>,
    pub return_status: i64,
    /// `yyyyMMddHHmmssSSS`, China Standard Time, as customs sent it.
    pub return_time: String,
    pub return_info: Option<String>,
    pub key_id: String,
    pub received_at: DateTime<Utc>,
}

/// A verified, parsed message from the customs gateway, ready to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomsMessageInput {
    /// SHA-256 of the exact bytes that were signed (hex).
    pub body_sha256: String,
    /// `CEB622`, `CEB624` or `CEB900`.
    pub kind: String,
    pub key_id: String,
    pub guid: Option<String>,
    /// `(kind, cop_no, pre_no, invt_no, guid, status, return_time, info)` per receipt.
    pub receipts: Vec<NewCustomsReceipt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewCustomsReceipt {
    pub kind: String,
    pub cop_no: Option<String>,
    pub pre_no: Option<String>,
    pub invt_no: Option<String>,
    pub guid: Option<String>,
    pub return_status: i64,
    pub return_time: String,
    pub return_info: Option<String>,
}

// --------------------------------------------------------------------- gate

/// A scan at an outbound gate: the parcel's waybill or package number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateScanInput {
    pub code: String,
}

/// What the gate decided, and why, for the guard and the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GateDecisionView {
    pub id: i64,
    pub gate: String,
    pub code: String,
    /// What the guard sees: `open` (the output confirmed the pulse; the
    /// parcel left), `refused`, `fault` (granted, but the output did not
    /// confirm: the gate counts as closed, nothing shipped) or `pending`
    /// (granted, the pulse under way).
    pub result: String,
    /// `open` (granted) or `refuse`.
    pub decision: String,
    /// Stable machine code, e.g. `released`, `customs.pending`,
    /// `already_exited`, `gate.output_fault`.
    pub reason_code: String,
    pub reason_en: String,
    pub reason_zh: String,
    pub order_no: Option<String>,
    pub package_no: Option<String>,
    /// The release receipt an open rested on.
    pub evidence_receipt_id: Option<i64>,
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
    /// For a grant: `pending`, `confirmed` or `fault`.
    pub output: Option<String>,
    /// `mqtt`, `lcus` or `modbus`.
    pub output_kind: Option<String>,
    /// The command sent to the output (a bridge executes an id once).
    pub command_id: Option<String>,
    /// What the output answered, or why it is a fault.
    pub output_detail: Option<String>,
    /// When the command expires: a bridge drops it unexecuted after this.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What an open needs besides the decision: the command the output will
/// be sent, decided before the transaction so it is recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateGrant {
    pub output_kind: String,
    pub command_id: String,
    pub expires_at: DateTime<Utc>,
}

/// A state a gate output reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateEventInput {
    pub gate: String,
    /// The command seq (the decision id) it answers; 0 for none.
    pub seq: u64,
    /// `open`, `closed` or `fault`.
    pub state: String,
    /// `mqtt`, `lcus`, `modbus`.
    pub source: String,
    pub detail: String,
}

// ---------------------------------------------------------------- dashboard

/// One stage of the order pipeline: how many orders are in it and how long
/// the one that has waited longest has been there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStage {
    /// `locked`, `picking`, `picked`, `awaiting_release` (packed, customs
    /// has not released it), `released` (packed and released: ready for
    /// the gate), `exception`, and over the last 24 hours `shipped` and
    /// `cancelled`.
    pub stage: String,
    pub count: i64,
    /// When the longest-waiting order entered this stage (for `shipped`
    /// and `cancelled`: the earliest in the window).
    pub oldest_at: Option<DateTime<Utc>>,
    pub oldest_order_no: Option<String>,
}

/// Work done in one clock hour (UTC; China Standard Time is a whole eight
/// hours ahead, so the hours are the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HourThroughput {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// Pick lines finished (picked or short) and the units picked in them.
    pub pick_lines: i64,
    pub units_picked: i64,
    /// Parcels weighed and labelled.
    pub parcels: i64,
    /// Parcels out through a gate (confirmed openings).
    pub exits: i64,
}

/// How many open orders are in each customs state (their 清单's receipts
/// folded, as the gate folds them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustomsCount {
    /// `no_receipt`, `pending`, `released`, `held`, `rejected`, …
    pub state: String,
    pub count: i64,
}

/// Everything the manager's dashboard shows at the top, in one read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DashboardView {
    pub generated_at: DateTime<Utc>,
    pub pipeline: Vec<PipelineStage>,
    /// The last 24 hours, oldest first, every hour present.
    pub throughput: Vec<HourThroughput>,
    /// Open orders (not shipped, not cancelled) by customs state.
    pub customs: Vec<CustomsCount>,
    /// How many exceptions wait for someone, by kind (as `GET /exceptions`).
    pub exceptions: Vec<ExceptionCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionCount {
    pub kind: String,
    pub count: i64,
}

/// Something on the floor that waits for a person, with what they can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionItem {
    /// `short_pick` (an order a short pick could not make good),
    /// `weight_mismatch` (a parcel whose weight did not match),
    /// `gate_refusal` (a parcel refused at a gate in the last 24 hours and
    /// not out since), `customs_rejection` (an order customs rejected or
    /// cancelled, last 24 hours), `customs_inspection` (a hold whose
    /// inspection task is open), `count_request` (a bin to count after a
    /// short pick).
    pub kind: String,
    /// The row's own id in its table (pack exception, gate decision,
    /// customs task, count request), for the action's endpoint.
    pub id: i64,
    pub order_no: Option<String>,
    pub package_no: Option<String>,
    /// The SKU and bin of a count request.
    pub sku: Option<String>,
    pub bin: Option<String>,
    pub at: DateTime<Utc>,
    /// What happened, in English, with the numbers.
    pub detail: String,
    /// The same in Chinese.
    pub detail_zh: String,
    /// What can be done: `cancel_order`, `override_weight`,
    /// `move_to_inspection`, `close_task`, `count_bin`, `view_customs`.
    pub actions: Vec<String>,
}
