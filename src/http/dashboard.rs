//! The manager's dashboard: its summary (pipeline with ages, hourly
//! throughput, open orders by customs state, exception counts) in one read,
//! and the exceptions that wait for a person with what can be done about
//! each. Everything else the dashboard shows comes from the resources'
//! own endpoints (stock, reconciliation, gates, devices, orders).

use axum::extract::State;

use super::auth::{Auth, MANAGERS};
use super::error::{ApiResult, Json};
use super::AppState;
use crate::store::{DashboardView, ExceptionItem};

/// The dashboard's summary, as of now: the order pipeline (count and the
/// longest wait per stage), the last 24 hours' picks, parcels and gate
/// exits per hour, open orders by customs state, exceptions by kind.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard", security(("bearer" = [])),
    responses((status = 200, body = DashboardView)))]
pub async fn summary(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<DashboardView>> {
    auth.require(MANAGERS)?;
    Ok(Json(st.store.dashboard(chrono::Utc::now()).await?))
}

/// What waits for a person: short picks that could not be made good,
/// weight mismatches, gate refusals and faults of parcels not out since
/// (last 24 hours), customs rejections (last 24 hours), open inspections,
/// bins to count. Each names its actions; the action is the endpoint of
/// that resource (cancel the order, override the weight, move or close the
/// customs task, count the bin).
#[utoipa::path(get, path = "/api/v1/exceptions", tag = "dashboard", security(("bearer" = [])),
    responses((status = 200, body = Vec<ExceptionItem>)))]
pub async fn exceptions(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<ExceptionItem>>> {
    auth.require(MANAGERS)?;
    Ok(Json(st.store.exceptions(chrono::Utc::now()).await?))
}
