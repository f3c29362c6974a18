//! The customs state of one 清单, folded from all its receipts, and whether
//! that state lets the parcel through the gate (CUSTOMS.md §2, DESIGN.md
//! §4 "Gate decision").
//!
//! Rules, in `returnTime` order (ties by arrival):
//! - only 800 and 899 release; 399 is not a release;
//! - a later pending code (1–4, 120, 300, 399, 400, 600) or processing
//!   error never downgrades a release, nor a hold;
//! - a hold (500, 501–503, 599, 700) or a rejection (100) dated after a
//!   release revokes it; a later 800/899 releases again;
//! - a successful cancellation (CEB624) is final;
//! - an unknown code after anything else fails closed: not released;
//! - the same receipt twice (same `guid`, or same kind, status and time)
//!   counts once.

use crate::receipt::{InventoryReturn, InvtCancelReturn, CANCELLED_CODES};
use crate::status::{ReturnStatus, ReturnTime, StatusClass};

/// Which message a receipt came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// CEB622: about the 清单 itself.
    Inventory,
    /// CEB624: about a cancellation of it.
    Cancellation,
}

/// One stored receipt, as the fold needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// CEB622 or CEB624.
    pub kind: ReceiptKind,
    /// `copNo` of the 清单.
    pub cop_no: String,
    /// The receipt's `guid`, when it had one.
    pub guid: Option<String>,
    /// `returnStatus`.
    pub status: ReturnStatus,
    /// `returnTime`: what orders receipts.
    pub time: ReturnTime,
    /// Arrival order (e.g. the store's row id): breaks ties in time only.
    pub arrival: u64,
}

impl Receipt {
    /// A CEB622 receipt that arrived `arrival`-th.
    pub fn inventory(r: &InventoryReturn, arrival: u64) -> Receipt {
        Receipt {
            kind: ReceiptKind::Inventory,
            cop_no: r.cop_no.clone(),
            guid: r.guid.clone(),
            status: r.return_status,
            time: r.return_time,
            arrival,
        }
    }

    /// A CEB624 receipt that arrived `arrival`-th.
    pub fn cancellation(r: &InvtCancelReturn, arrival: u64) -> Receipt {
        Receipt {
            kind: ReceiptKind::Cancellation,
            cop_no: r.cop_no.clone(),
            guid: r.guid.clone(),
            status: r.return_status,
            time: r.return_time,
            arrival,
        }
    }

    fn cancels(&self) -> bool {
        self.kind == ReceiptKind::Cancellation && CANCELLED_CODES.contains(&self.status.code())
    }
}

/// Why goods are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldReason {
    /// 500: to the inspection area.
    Inspection,
    /// 501, 502, 503, 599: to quarantine.
    Detained,
    /// 700: goods go back, not to the buyer.
    ReturnShipment,
}

/// What the warehouse should do with the parcel, beyond refusing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParcelAction {
    /// Nothing special: it waits, or it may leave.
    None,
    /// Bring it to the inspection area (500).
    Inspection,
    /// Put it in quarantine (detained).
    Quarantine,
    /// It goes back (700).
    ReturnShipment,
    /// The order is rejected or cancelled: cancel it in the warehouse.
    CancelOrder,
}

/// The customs state of one 清单.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomsState {
    /// No receipt yet.
    NoReceipt,
    /// On its way through customs; `receipt` is the latest that counted.
    Pending {
        /// The latest pending receipt.
        receipt: Receipt,
    },
    /// Released (800, or 899 which implies it) with no later hold.
    Released {
        /// When the current release began.
        since: ReturnTime,
        /// The latest release receipt (an 899 after the 800).
        receipt: Receipt,
    },
    /// Held after the latest release, or before any.
    Held {
        /// Why.
        reason: HoldReason,
        /// The hold receipt.
        receipt: Receipt,
    },
    /// Rejected by customs (100).
    Rejected {
        /// The rejection.
        receipt: Receipt,
    },
    /// Cancelled (successful CEB624); final.
    Cancelled {
        /// The cancellation receipt.
        receipt: Receipt,
    },
    /// Customs could not process the declaration (negative code).
    ProcessingError {
        /// The error receipt.
        receipt: Receipt,
    },
    /// A code this crate does not know: never a release.
    Unrecognised {
        /// The receipt.
        receipt: Receipt,
    },
}

impl CustomsState {
    /// The short name of the state, as screens and the API show it.
    pub fn name(&self) -> &'static str {
        match self {
            CustomsState::NoReceipt => "no_receipt",
            CustomsState::Pending { .. } => "pending",
            CustomsState::Released { .. } => "released",
            CustomsState::Held { .. } => "held",
            CustomsState::Rejected { .. } => "rejected",
            CustomsState::Cancelled { .. } => "cancelled",
            CustomsState::ProcessingError { .. } => "processing_error",
            CustomsState::Unrecognised { .. } => "unrecognised",
        }
    }

    /// Folds the receipts of one 清单, whatever order they are given in.
    pub fn from_receipts(receipts: &[Receipt]) -> CustomsState {
        let mut sorted: Vec<&Receipt> = receipts.iter().collect();
        sorted.sort_by_key(|r| (r.time, r.arrival));
        let mut seen_guids: Vec<&str> = Vec::new();
        let mut seen: Vec<(ReceiptKind, ReturnStatus, ReturnTime)> = Vec::new();
        let mut state = CustomsState::NoReceipt;
        for r in sorted {
            if let Some(g) = r.guid.as_deref() {
                if seen_guids.contains(&g) {
                    continue;
                }
                seen_guids.push(g);
            }
            let key = (r.kind, r.status, r.time);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            state = state.apply(r);
        }
        state
    }

    /// The state of the 清单 `cop_no`, from receipts that may include others'.
    pub fn for_declaration(cop_no: &str, receipts: &[Receipt]) -> CustomsState {
        let own: Vec<Receipt> = receipts
            .iter()
            .filter(|r| r.cop_no == cop_no)
            .cloned()
            .collect();
        CustomsState::from_receipts(&own)
    }

    fn apply(self, r: &Receipt) -> CustomsState {
        if let CustomsState::Cancelled { .. } = self {
            return self;
        }
        let receipt = r.clone();
        if r.kind == ReceiptKind::Cancellation {
            return if r.cancels() {
                CustomsState::Cancelled { receipt }
            } else {
                // A cancellation on its way or refused changes nothing.
                self
            };
        }
        let sticky = matches!(
            self,
            CustomsState::Released { .. } | CustomsState::Held { .. }
        );
        match r.status.class() {
            StatusClass::Released | StatusClass::Closed => match self {
                CustomsState::Released { since, .. } => CustomsState::Released { since, receipt },
                _ => CustomsState::Released {
                    since: r.time,
                    receipt,
                },
            },
            StatusClass::Inspection => CustomsState::Held {
                reason: HoldReason::Inspection,
                receipt,
            },
            StatusClass::Detained => CustomsState::Held {
                reason: HoldReason::Detained,
                receipt,
            },
            StatusClass::ReturnShipment => CustomsState::Held {
                reason: HoldReason::ReturnShipment,
                receipt,
            },
            StatusClass::Rejected => CustomsState::Rejected { receipt },
            StatusClass::Pending | StatusClass::ProcessingError if sticky => self,
            StatusClass::Pending => CustomsState::Pending { receipt },
            StatusClass::ProcessingError => CustomsState::ProcessingError { receipt },
            StatusClass::Unknown => CustomsState::Unrecognised { receipt },
        }
    }

    /// Whether the goods are released.
    pub fn is_released(&self) -> bool {
        matches!(self, CustomsState::Released { .. })
    }

    /// What to do with the parcel besides refusing it at the gate.
    pub fn action(&self) -> ParcelAction {
        match self {
            CustomsState::Held { reason, .. } => match reason {
                HoldReason::Inspection => ParcelAction::Inspection,
                HoldReason::Detained => ParcelAction::Quarantine,
                HoldReason::ReturnShipment => ParcelAction::ReturnShipment,
            },
            CustomsState::Rejected { .. } | CustomsState::Cancelled { .. } => {
                ParcelAction::CancelOrder
            }
            _ => ParcelAction::None,
        }
    }
}

/// Why the gate stays shut, for the guard's screen and the decision log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {text_en}")]
pub struct Refusal {
    /// A stable machine code, e.g. `customs.held.inspection`.
    pub code: &'static str,
    /// English text.
    pub text_en: String,
    /// Chinese text.
    pub text_zh: String,
}

fn refuse(code: &'static str, text_en: String, text_zh: String) -> Result<(), Refusal> {
    Err(Refusal {
        code,
        text_en,
        text_zh,
    })
}

/// The customs part of the gate decision: `Ok` only when released.
pub fn gate_allows(state: &CustomsState) -> Result<(), Refusal> {
    let st = |r: &Receipt| format!("{} {} at {}", r.status, r.status.meaning(), r.time);
    match state {
        CustomsState::Released { .. } => Ok(()),
        CustomsState::NoReceipt => refuse(
            "customs.no_receipt",
            "no customs receipt for this declaration".into(),
            "该清单尚无海关回执".into(),
        ),
        CustomsState::Pending { receipt } => refuse(
            "customs.pending",
            format!("not released by customs yet (latest: {})", st(receipt)),
            format!("海关尚未放行（最新回执：{}）", st(receipt)),
        ),
        CustomsState::Held { reason, receipt } => {
            let (code, en, zh) = match reason {
                HoldReason::Inspection => (
                    "customs.held.inspection",
                    "held for inspection: take the parcel to the inspection area",
                    "海关查验：请送查验区",
                ),
                HoldReason::Detained => (
                    "customs.held.detained",
                    "detained by customs: put the parcel in quarantine",
                    "海关扣留：请放隔离区",
                ),
                HoldReason::ReturnShipment => (
                    "customs.held.return_shipment",
                    "return shipment ordered: the goods must not go to the buyer",
                    "海关退运：不得发给买家",
                ),
            };
            refuse(
                code,
                format!("{en} ({})", st(receipt)),
                format!("{zh}（{}）", st(receipt)),
            )
        }
        CustomsState::Rejected { receipt } => refuse(
            "customs.rejected",
            format!(
                "rejected by customs: re-declare or cancel the order ({})",
                st(receipt)
            ),
            format!("海关退单：需重新申报或取消订单（{}）", st(receipt)),
        ),
        CustomsState::Cancelled { receipt } => refuse(
            "customs.cancelled",
            format!("declaration cancelled ({})", st(receipt)),
            format!("清单已撤销（{}）", st(receipt)),
        ),
        CustomsState::ProcessingError { receipt } => refuse(
            "customs.processing_error",
            format!(
                "customs could not process the declaration ({})",
                st(receipt)
            ),
            format!("海关处理异常（{}）", st(receipt)),
        ),
        CustomsState::Unrecognised { receipt } => refuse(
            "customs.unknown_status",
            format!("unknown customs status ({})", st(receipt)),
            format!("未知海关状态（{}）", st(receipt)),
        ),
    }
}
