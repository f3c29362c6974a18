//! The pack station service: check the items, take the scale's weight, let
//! the store decide and record, and get the label printed.
//!
//! - [`scale`]: each station's scale (serial port or MQTT bridge) and the
//!   wait for a stable reading of a freshly placed parcel.
//! - [`print`]: the label print queue's workers (raw TCP, serial, MQTT).

pub mod print;
pub mod scale;
pub mod station;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::PackingConfig;
use crate::domain::packing::{Checklist, PackLine};
use crate::domain::OrderState;
use crate::store::{
    Actor, PackOutcome, PackRecord, PackageView, PrintJobView, Store, StoreError, WaybillChoice,
};
pub use print::{PrinterHub, PrinterView};
pub use scale::{ScaleHub, ScaleStatus, WeighError};
pub use station::{StationAnswer, StationNext, StationScan};

/// A packer's parcel: the tote (or order number) scanned, every item
/// scanned into the box, and the box chosen. The weight is the station
/// scale's, taken by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackRequest {
    /// The pack station (its scale weighs, its printer prints).
    pub station: String,
    /// The tote holding the picked order, or the order number.
    pub code: String,
    /// Every unit's barcode as scanned (EAN/GTIN or GS1 with batch), once per unit.
    pub items: Vec<String>,
    /// The box type's code, e.g. `BOX-S`.
    #[serde(rename = "box")]
    pub box_code: String,
}

/// Units in one parcel at most: a pack request is a person's scans.
pub const ITEMS_MAX: usize = 1_000;

/// Why a pack was refused before anything was recorded.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Weigh(#[from] WeighError),
    #[error("station {0} is not a configured pack station with a scale")]
    UnknownStation(String),
    #[error("{}", describe_items(.refused, .missing))]
    Items {
        /// One readable line per refused scan.
        refused: Vec<String>,
        /// `(sku, units still to scan)`.
        missing: Vec<(String, i64)>,
    },
}

fn describe_items(refused: &[String], missing: &[(String, i64)]) -> String {
    let mut parts: Vec<String> = refused.to_vec();
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(|(sku, n)| format!("{n} × {sku}"))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!("Still to scan into the box: {list}"));
    }
    parts.join(". ")
}

/// Where a parcel's waybill number comes from. The built-in source is the
/// configured range, taken inside the pack transaction; a logistics adapter
/// implements this to ask the carrier's API for a number instead (and
/// answers [`WaybillChoice::Given`]).
pub trait WaybillSource: Send + Sync {
    fn choose<'a>(
        &'a self,
        order_no: &'a str,
    ) -> crate::mqtt::BoxFuture<'a, Result<WaybillChoice, String>>;
}

/// The configured range of waybill numbers (`[waybill]` in the config).
pub struct RangeSource(pub String);

impl WaybillSource for RangeSource {
    fn choose<'a>(
        &'a self,
        _order_no: &'a str,
    ) -> crate::mqtt::BoxFuture<'a, Result<WaybillChoice, String>> {
        Box::pin(async move { Ok(WaybillChoice::Range(self.0.clone())) })
    }
}

/// The pack stations: their scales, printers and the rules they apply.
#[derive(Clone)]
pub struct Packing {
    store: Store,
    cfg: PackingConfig,
    scales: ScaleHub,
    printers: PrinterHub,
    waybills: std::sync::Arc<dyn WaybillSource>,
    station_locks: std::sync::Arc<station::StationLocks>,
    /// Every parcel weighed goes to the screens.
    events: crate::events::EventHub,
}

impl Packing {
    pub fn new(
        store: Store,
        cfg: PackingConfig,
        scales: ScaleHub,
        printers: PrinterHub,
    ) -> Packing {
        let waybills = std::sync::Arc::new(RangeSource(cfg.waybill.name.clone()));
        Packing {
            store,
            cfg,
            scales,
            printers,
            waybills,
            station_locks: Default::default(),
            events: crate::events::EventHub::detached(),
        }
    }

    /// Publishes each parcel weighed on this hub.
    pub fn with_events(self, events: crate::events::EventHub) -> Packing {
        Packing { events, ..self }
    }

    /// Takes waybill numbers from a logistics adapter instead of the range.
    pub fn with_waybills(self, waybills: std::sync::Arc<dyn WaybillSource>) -> Packing {
        Packing { waybills, ..self }
    }

    async fn waybill_for(&self, order_no: &str) -> Result<WaybillChoice, StoreError> {
        self.waybills
            .choose(order_no)
            .await
            .map_err(|e| StoreError::Invalid(format!("no waybill number for {order_no}: {e}")))
    }

    pub fn scales(&self) -> &ScaleHub {
        &self.scales
    }

    pub fn printers(&self) -> &PrinterHub {
        &self.printers
    }

    pub fn config(&self) -> &PackingConfig {
        &self.cfg
    }

    fn printed_at() -> String {
        chrono::Utc::now()
            .with_timezone(&crate::orders::cst())
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }

    /// Checks the items against the order, takes a stable weight of the
    /// placed parcel and records the pack. An order already packed answers
    /// with its parcel and weighs nothing.
    pub async fn pack(&self, actor: &Actor, req: &PackRequest) -> Result<PackOutcome, PackError> {
        if self.scales.get(&req.station).is_none() {
            return Err(PackError::UnknownStation(req.station.clone()));
        }
        if req.items.len() > ITEMS_MAX {
            return Err(
                StoreError::Invalid(format!("at most {ITEMS_MAX} items per parcel")).into(),
            );
        }
        let plan = self.store.pack_plan(&req.code).await?;
        if let Some(p) = plan
            .package
            .as_ref()
            .filter(|p| p.state == crate::store::PackageState::Packed)
        {
            return Ok(PackOutcome::Packed(p.clone(), false));
        }
        if plan.state != OrderState::Picked {
            return Err(StoreError::Invalid(format!(
                "order {} is {}: only a picked order can be packed",
                plan.order_no, plan.state
            ))
            .into());
        }
        let mut list = Checklist::new(pack_lines(&plan));
        let refused: Vec<String> = req
            .items
            .iter()
            .filter_map(|code| list.scan(code).err().map(|e| e.to_string()))
            .collect();
        if !refused.is_empty() || !list.complete() {
            return Err(PackError::Items {
                refused,
                missing: list.missing(),
            });
        }
        // One parcel at a time per station: two packs racing for one
        // reading would both weigh the same parcel.
        let lock = self.station_locks.get(&req.station);
        let _turn = lock.lock().await;
        self.weigh_and_record(actor, &req.station, &plan.order_no, req.box_code.trim())
            .await
    }

    /// Takes a stable weight of the placed parcel at `station` and lets the
    /// store decide and record it; the label is printed on a match. The
    /// caller holds the station's turn (`station_locks`).
    pub async fn weigh_and_record(
        &self,
        actor: &Actor,
        station: &str,
        order_no: &str,
        box_code: &str,
    ) -> Result<PackOutcome, PackError> {
        let scale = self
            .scales
            .get(station)
            .ok_or_else(|| PackError::UnknownStation(station.to_string()))?;
        let weighed = scale
            .weigh(self.cfg.scale_min_grams, self.cfg.weigh_timeout)
            .await?;
        let rec = PackRecord {
            order_no: order_no.to_string(),
            station: station.to_string(),
            box_code: box_code.to_string(),
            gross_grams: weighed.grams,
            weighed_at: chrono::Utc::now(),
            tolerance_grams: self.cfg.tolerance.grams,
            tolerance_basis_points: self.cfg.tolerance.basis_points,
            waybill: self.waybill_for(order_no).await?,
            printed_at_text: Self::printed_at(),
        };
        let outcome = self.store.pack(actor, &rec).await?;
        // The parcel on the plate is spoken for, matched or not: the next
        // pack needs a new placement.
        scale.consume(weighed.placement);
        if matches!(outcome, PackOutcome::Packed(_, true)) {
            self.printers.wake(station);
        }
        let (result, package) = match &outcome {
            PackOutcome::Packed(p, _) => ("packed", p),
            PackOutcome::Mismatch(p) => ("mismatch", p),
        };
        self.events.publish(crate::events::Event::Pack {
            result: result.into(),
            package: Box::new(package.clone()),
        });
        Ok(outcome)
    }

    /// A manager accepts a parcel whose weight did not match.
    pub async fn override_weight(
        &self,
        actor: &Actor,
        package_no: &str,
        reason: &str,
    ) -> Result<PackageView, StoreError> {
        let order_no = package_no.strip_prefix("PKG-").unwrap_or(package_no);
        let waybill = self.waybill_for(order_no).await?;
        let view = self
            .store
            .override_package(actor, package_no, reason, &waybill, &Self::printed_at())
            .await?;
        self.printers.wake(&view.station);
        Ok(view)
    }

    /// Another copy of a parcel's label.
    pub async fn reprint(
        &self,
        actor: &Actor,
        package_no: &str,
        reason: &str,
    ) -> Result<PrintJobView, StoreError> {
        let job = self
            .store
            .reprint(actor, package_no, reason, &Self::printed_at())
            .await?;
        self.printers.wake(&job.station);
        Ok(job)
    }

    /// Every configured station with its scale, its printer and the answer
    /// to its last scan.
    pub async fn stations(&self) -> Result<Vec<StationView>, PackError> {
        let scales = self.scales.statuses();
        let printers = self.printers.views();
        let mut views = Vec::with_capacity(self.cfg.stations.len());
        for s in &self.cfg.stations {
            views.push(StationView {
                id: s.id.clone(),
                scale: scales.get(&s.id).cloned(),
                printer: printers.get(&s.id).cloned(),
                last_answer: self.last_answer(&s.id).await?,
            });
        }
        Ok(views)
    }
}

/// The order's lines as the domain checklist takes them.
pub fn pack_lines(plan: &crate::store::PackPlan) -> Vec<PackLine> {
    plan.lines
        .iter()
        .map(|l| PackLine {
            sku: l.sku.clone(),
            qty: l.qty,
            barcodes: l.barcodes.clone(),
            batches: l.batches.clone(),
            unit_grams: l.unit_grams,
        })
        .collect()
}

/// A pack station as screens show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StationView {
    pub id: String,
    pub scale: Option<ScaleStatus>,
    pub printer: Option<PrinterView>,
    /// The answer to the station's last scan: where its parcel stands (next
    /// step, order, checklist) and the last `seq`, for a screen opened
    /// mid-parcel. None before the first scan.
    pub last_answer: Option<StationAnswer>,
}

/// How long a pack may take at most, end to end, including the wait for
/// the scale (the HTTP layer's own timeout must be longer).
pub fn pack_deadline(cfg: &PackingConfig) -> Duration {
    cfg.weigh_timeout + Duration::from_secs(5)
}
