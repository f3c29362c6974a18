//! Waves, pick tasks, the browser PDA's scans, badges, count requests and
//! devices.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::{ApiError, ApiResult, Json, Path, Problem, Query};
use super::AppState;
use crate::domain::Role;
use crate::store::{
    AssignInput, CountRequestView, DeviceView, PickTaskQuery, PickTaskView, ScanAnswer,
    ScanContext, ScanInput, WaveInput, WaveOrigin, WaveView,
};

const FLOOR_MANAGERS: &[Role] = &[Role::Manager, Role::Admin];
const PICKERS: &[Role] = &[Role::Picker, Role::Manager, Role::Admin];

/// Puts orders into a wave and writes their pick tasks in bin walk order.
/// Without `order_nos`, takes the oldest orders waiting (up to `max_orders`).
/// Idempotent on `wave_no`.
#[utoipa::path(post, path = "/api/v1/waves", tag = "picking", security(("bearer" = [])), request_body = WaveInput,
    responses((status = 201, body = WaveView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_wave(
    State(st): State<AppState>,
    auth: Auth,
    Json(input): Json<WaveInput>,
) -> ApiResult<(StatusCode, Json<WaveView>)> {
    let actor = auth.require(FLOOR_MANAGERS)?;
    let wave = st
        .store
        .create_wave(actor, &input, WaveOrigin::Manual)
        .await?;
    Ok((StatusCode::CREATED, Json(wave)))
}

#[utoipa::path(get, path = "/api/v1/waves/{wave_no}", tag = "picking", security(("bearer" = [])),
    params(("wave_no" = String, Path)), responses((status = 200, body = WaveView), (status = 404, body = Problem)))]
pub async fn get_wave(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
) -> ApiResult<Json<WaveView>> {
    auth.require(PICKERS)?;
    Ok(Json(st.store.get_wave(&no).await?))
}

/// Pick tasks, filtered; in wave and bin walk order. A picker sees only
/// their own.
#[utoipa::path(get, path = "/api/v1/pick-tasks", tag = "picking", security(("bearer" = [])), params(PickTaskQuery),
    responses((status = 200, body = Vec<PickTaskView>), (status = 403, body = Problem)))]
pub async fn list_pick_tasks(
    State(st): State<AppState>,
    auth: Auth,
    Query(mut q): Query<PickTaskQuery>,
) -> ApiResult<Json<Vec<PickTaskView>>> {
    let actor = auth.require(PICKERS)?;
    // A picker sees their own tasks; managers see everyone's.
    if !actor.has_any(FLOOR_MANAGERS) {
        match q.picker.as_deref() {
            None => q.picker = Some(actor.username.clone()),
            Some(p) if p == actor.username => {}
            Some(p) => {
                return Err(ApiError::forbidden(format!(
                    "a picker sees only their own pick tasks, not {p}'s"
                )))
            }
        }
    }
    Ok(Json(st.store.list_pick_tasks(&q).await?))
}

/// Hands an order's unfinished pick tasks to a picker.
#[utoipa::path(post, path = "/api/v1/pick-tasks/assign", tag = "picking", security(("bearer" = [])),
    request_body = AssignInput, responses((status = 200, body = Vec<PickTaskView>), (status = 422, body = Problem)))]
pub async fn assign(
    State(st): State<AppState>,
    auth: Auth,
    Json(input): Json<AssignInput>,
) -> ApiResult<Json<Vec<PickTaskView>>> {
    let actor = auth.require(FLOOR_MANAGERS)?;
    Ok(Json(st.store.assign_order(actor, &input).await?))
}

/// One scan from the browser PDA page: the same flow as a PDA over MQTT,
/// with the page's logged-in user as the picker (no badge step). A repeated
/// `seq` from the same device gets the original answer and does nothing.
#[utoipa::path(post, path = "/api/v1/pick-tasks/scan", tag = "picking", security(("bearer" = [])),
    request_body = ScanInput, responses((status = 200, body = ScanAnswer), (status = 409, body = Problem)))]
pub async fn scan(
    State(st): State<AppState>,
    auth: Auth,
    Json(input): Json<ScanInput>,
) -> ApiResult<Json<ScanAnswer>> {
    let actor = auth.require(PICKERS)?;
    let barcode = bondgate_protocol::Barcode::new(&input.barcode)
        .map_err(|e| crate::store::StoreError::Invalid(e.to_string()))?;
    let input = ScanInput {
        // Browser devices are kept apart from MQTT ones.
        device: format!("web-{}", input.device.trim()),
        seq: input.seq,
        barcode: barcode.as_str().to_string(),
    };
    let ctx = ScanContext {
        tote_prefix: &st.config.picking.tote_prefix,
        user: Some(actor),
    };
    let answer = st.store.pda_scan(&input, &ctx).await?;
    st.events.publish(crate::events::Event::PickScan {
        device: input.device,
        user: Some(actor.username.clone()),
        answer: answer.clone(),
    });
    Ok(Json(answer))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BadgeRequest {
    /// The badge's code as its scanner reads it; null or empty clears it.
    pub badge: Option<String>,
}

/// Sets the badge a user scans to log in on a PDA. Stored hashed.
#[utoipa::path(put, path = "/api/v1/users/{username}/badge", tag = "auth", security(("bearer" = [])),
    params(("username" = String, Path)), request_body = BadgeRequest,
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn set_badge(
    State(st): State<AppState>,
    auth: Auth,
    Path(username): Path<String>,
    Json(req): Json<BadgeRequest>,
) -> ApiResult<StatusCode> {
    let actor = auth.require(FLOOR_MANAGERS)?;
    st.store
        .set_badge(actor, &username, req.badge.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Bins to count before stock is taken from them again: raised by short picks.
#[utoipa::path(get, path = "/api/v1/inventory/count-requests", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = Vec<CountRequestView>)))]
pub async fn count_requests(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<CountRequestView>>> {
    auth.require(PICKERS)?;
    Ok(Json(st.store.list_count_requests().await?))
}

/// Devices seen on the broker, whether they are online, and for bridges the
/// health of the device behind them (ok, last error, refused input, drops,
/// age of the report).
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceView>)))]
pub async fn devices(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<DeviceView>>> {
    auth.require(FLOOR_MANAGERS)?;
    let mut devices = st.store.list_devices().await?;
    for d in &mut devices {
        d.health = st.device_health.view(&d.site, &d.device);
    }
    Ok(Json(devices))
}
