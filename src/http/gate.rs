//! The outbound gate: scans decided against the customs release, and the
//! gate's log.

use axum::extract::State;

use super::auth::Auth;
use super::error::{ApiError, ApiResult, Json, Path, Problem};
use super::AppState;
use crate::domain::Role;
use crate::gate::{GateError, GateStatusView};
use crate::store::{GateDecisionView, GateScanInput};

impl From<GateError> for ApiError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::UnknownGate(g) => ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "unknown_gate",
                format!("no gate {g} is configured"),
            ),
            GateError::Store(s) => s.into(),
        }
    }
}

const GUARDS: &[Role] = &[Role::Guard, Role::Manager, Role::Admin];

fn gate_id(gate: &str) -> Result<String, ApiError> {
    bondgate_protocol::GateId::new(gate)
        .map(|g| g.as_str().to_string())
        .map_err(|e| ApiError::invalid(format!("gate id: {e}")))
}

/// A parcel scanned at the gate. Granted only for a packed parcel whose
/// order holds a customs release with no later hold and has not left yet;
/// a grant pulses the gate's output, and `result` is `open` only when the
/// output confirmed the pulse — the parcel's stock ships in the commit that
/// records it. Otherwise `refused` (with a reason code and texts in English
/// and Chinese) or `fault` (the output did not confirm; the gate counts as
/// closed, nothing shipped). Every decision is recorded with its evidence
/// (the release receipt) and the output's answer.
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
    Ok(Json(st.gates.scan(actor, &gate, &input, None).await?))
}

/// Every configured gate: its output, the state read back from it, and its
/// last fault.
#[utoipa::path(get, path = "/api/v1/gates", tag = "gate", security(("bearer" = [])),
    responses((status = 200, body = Vec<GateStatusView>)))]
pub async fn list(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<GateStatusView>>> {
    auth.require(GUARDS)?;
    Ok(Json(st.gates.status().await))
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
