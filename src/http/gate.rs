//! The outbound gate: scans decided against the customs release, and the
//! gate's log.

use axum::extract::State;

use super::auth::Auth;
use super::error::{ApiError, ApiResult, Json, Path, Problem};
use super::AppState;
use crate::domain::Role;
use crate::store::{GateDecisionView, GateScanInput};

const GUARDS: &[Role] = &[Role::Guard, Role::Manager, Role::Admin];

fn gate_id(gate: &str) -> Result<String, ApiError> {
    bondgate_protocol::GateId::new(gate)
        .map(|g| g.as_str().to_string())
        .map_err(|e| ApiError::invalid(format!("gate id: {e}")))
}

/// A parcel scanned at the gate: `open` only for a packed parcel whose
/// order holds a customs release with no later hold and has not left yet;
/// anything else is `refuse` with a reason code and texts in English and
/// Chinese. On open the parcel's stock is shipped in the same transaction.
/// Every decision is recorded with its evidence (the release receipt).
/// (The gate output drivers that pulse the barrier come next.)
#[utoipa::path(post, path = "/api/v1/gates/{gate}/scans", tag = "gate", security(("bearer" = [])),
    params(("gate" = String, Path)), request_body = GateScanInput,
    responses((status = 200, body = GateDecisionView), (status = 422, body = Problem)))]
pub async fn scan(
    State(st): State<AppState>,
    auth: Auth,
    Path(gate): Path<String>,
    Json(input): Json<GateScanInput>,
) -> ApiResult<Json<GateDecisionView>> {
    let actor = auth.require(GUARDS)?;
    let gate = gate_id(&gate)?;
    Ok(Json(st.store.gate_scan(actor, &gate, &input).await?))
}

/// The gate's latest decisions, newest first.
#[utoipa::path(get, path = "/api/v1/gates/{gate}/decisions", tag = "gate", security(("bearer" = [])),
    params(("gate" = String, Path)), responses((status = 200, body = Vec<GateDecisionView>)))]
pub async fn decisions(
    State(st): State<AppState>,
    auth: Auth,
    Path(gate): Path<String>,
) -> ApiResult<Json<Vec<GateDecisionView>>> {
    auth.require(GUARDS)?;
    let gate = gate_id(&gate)?;
    Ok(Json(st.store.gate_decisions(&gate, 100).await?))
}
