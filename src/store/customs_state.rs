//! An order's customs state from its stored receipts: the fold is
//! `bondgate-customs`'s; this only turns stored rows into its input. Shared
//! by the gate decision (inside its transaction) and the customs service.

use bondgate_customs::state::ReceiptKind;
use bondgate_customs::{CustomsState, Receipt, ReturnStatus, ReturnTime};

use super::{CustomsReceiptRow, StoreError};

/// Folds one 清单's stored receipts (format errors carry no 清单 and are
/// left out). A row that no longer parses means a corrupt store.
pub fn fold(cop_no: &str, rows: &[CustomsReceiptRow]) -> Result<CustomsState, StoreError> {
    let receipts = rows
        .iter()
        .filter(|r| r.kind != "format_error")
        .map(|r| {
            Ok(Receipt {
                kind: if r.kind == "cancellation" {
                    ReceiptKind::Cancellation
                } else {
                    ReceiptKind::Inventory
                },
                cop_no: r.cop_no.clone().unwrap_or_default(),
                guid: r.guid.clone(),
                status: ReturnStatus::new(r.return_status),
                time: ReturnTime::parse(&r.return_time).map_err(|_| {
                    StoreError::Corrupt(format!("customs receipt {}: returnTime", r.id))
                })?,
                arrival: u64::try_from(r.id).unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(CustomsState::for_declaration(cop_no, &receipts))
}

/// The short name of a state, as screens and the API show it
/// ([`CustomsState::name`]).
pub fn state_name(s: &CustomsState) -> &'static str {
    s.name()
}
