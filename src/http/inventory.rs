//! Receiving, stock, the movement ledger, reservations, damage, transfers,
//! adjustments, cycle counts and the bonded-ledger reconciliation.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Auth, EVERYONE, MANAGERS};
use super::error::{ApiError, ApiResult, Json, Path, Problem, Query};
use super::AppState;
use crate::domain::Role;
use crate::store::*;

/// Who may reserve and release stock: the order flow (integration) and managers.
const RESERVERS: &[Role] = &[Role::Integration, Role::Manager, Role::Admin];
/// Who receives goods: managers, and the platform's integration for ASNs.
const RECEIVERS: &[Role] = &[Role::Integration, Role::Manager, Role::Admin];
/// Who handles stock on the floor.
const FLOOR: &[Role] = &[Role::Picker, Role::Packer, Role::Manager, Role::Admin];

#[utoipa::path(post, path = "/api/v1/receipts", tag = "inventory", security(("bearer" = [])), request_body = ReceiptInput,
    responses((status = 201, body = Receipt), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn receive(
    State(st): State<AppState>,
    auth: Auth,
    Json(r): Json<ReceiptInput>,
) -> ApiResult<(StatusCode, Json<Receipt>)> {
    let actor = auth.require(RECEIVERS)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.receive(actor, &r).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/receipts/{receipt_no}", tag = "inventory", security(("bearer" = [])),
    params(("receipt_no" = String, Path)), responses((status = 200, body = Receipt), (status = 404, body = Problem)))]
pub async fn get_receipt(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
) -> ApiResult<Json<Receipt>> {
    auth.require(EVERYONE)?;
    Ok(Json(st.store.get_receipt(&no).await?))
}

#[utoipa::path(get, path = "/api/v1/inventory", tag = "inventory", security(("bearer" = [])), params(StockQuery),
    responses((status = 200, body = StockReport)))]
pub async fn stock(
    State(st): State<AppState>,
    auth: Auth,
    Query(mut q): Query<StockQuery>,
) -> ApiResult<Json<StockReport>> {
    auth.require(EVERYONE)?;
    q.today = Some(crate::orders::business_dates(chrono::Utc::now()).0);
    Ok(Json(st.store.stock(&q).await?))
}

#[utoipa::path(get, path = "/api/v1/inventory/movements", tag = "inventory", security(("bearer" = [])), params(MovementQuery),
    responses((status = 200, body = MovementPage)))]
pub async fn movements(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<MovementQuery>,
) -> ApiResult<Json<MovementPage>> {
    auth.require(EVERYONE)?;
    if let Some(k) = &q.kind {
        if crate::domain::MovementKind::parse(k).is_none() {
            return Err(ApiError::invalid(format!("unknown movement kind {k}")));
        }
    }
    Ok(Json(st.store.movements(&q).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SkuFilter {
    pub sku: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/inventory/reconciliation", tag = "inventory", security(("bearer" = [])), params(SkuFilter),
    responses((status = 200, body = Vec<ReconciliationRow>)))]
pub async fn reconciliation(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<SkuFilter>,
) -> ApiResult<Json<Vec<ReconciliationRow>>> {
    auth.require(MANAGERS)?;
    Ok(Json(st.store.reconciliation(q.sku.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/inventory/integrity", tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = IntegrityReport)))]
pub async fn integrity(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<IntegrityReport>> {
    auth.require(MANAGERS)?;
    Ok(Json(st.store.integrity().await?))
}

#[utoipa::path(post, path = "/api/v1/inventory/locks", tag = "reservations", security(("bearer" = [])), request_body = LockInput,
    responses((status = 201, body = LockRecord), (status = 409, body = Problem)))]
pub async fn lock(
    State(st): State<AppState>,
    auth: Auth,
    Json(l): Json<LockInput>,
) -> ApiResult<(StatusCode, Json<LockRecord>)> {
    let actor = auth.require(RESERVERS)?;
    Ok((StatusCode::CREATED, Json(st.store.lock(actor, &l).await?)))
}

#[utoipa::path(get, path = "/api/v1/inventory/locks/{id}", tag = "reservations", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = LockRecord), (status = 404, body = Problem)))]
pub async fn get_lock(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<LockRecord>> {
    auth.require(EVERYONE)?;
    Ok(Json(st.store.get_lock(id).await?))
}

/// Releases a held reservation back to available stock. Repeating it answers
/// with the released reservation; a shipped one cannot be released.
#[utoipa::path(post, path = "/api/v1/inventory/locks/{id}/release", tag = "reservations", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = ReleaseInput,
    responses((status = 200, body = LockRecord), (status = 409, body = Problem)))]
pub async fn release(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(r): Json<ReleaseInput>,
) -> ApiResult<Json<LockRecord>> {
    let actor = auth.require(RESERVERS)?;
    Ok(Json(st.store.release(actor, id, &r).await?))
}

#[utoipa::path(post, path = "/api/v1/inventory/damage", tag = "inventory", security(("bearer" = [])), request_body = DamageInput,
    responses((status = 201, body = Posted), (status = 409, body = Problem)))]
pub async fn damage(
    State(st): State<AppState>,
    auth: Auth,
    Json(d): Json<DamageInput>,
) -> ApiResult<(StatusCode, Json<Posted>)> {
    let actor = auth.require(FLOOR)?;
    Ok((StatusCode::CREATED, Json(st.store.damage(actor, &d).await?)))
}

#[utoipa::path(post, path = "/api/v1/inventory/transfers", tag = "inventory", security(("bearer" = [])), request_body = TransferInput,
    responses((status = 201, body = Posted), (status = 409, body = Problem)))]
pub async fn transfer(
    State(st): State<AppState>,
    auth: Auth,
    Json(t): Json<TransferInput>,
) -> ApiResult<(StatusCode, Json<Posted>)> {
    let actor = auth.require(FLOOR)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.transfer(actor, &t).await?),
    ))
}

#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct AdjustmentFilter {
    /// pending, approved or rejected.
    pub state: Option<AdjustmentState>,
}

#[utoipa::path(get, path = "/api/v1/inventory/adjustments", tag = "adjustments", security(("bearer" = [])), params(AdjustmentFilter),
    responses((status = 200, body = Vec<Adjustment>)))]
pub async fn list_adjustments(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<AdjustmentFilter>,
) -> ApiResult<Json<Vec<Adjustment>>> {
    auth.require(MANAGERS)?;
    Ok(Json(st.store.list_adjustments(q.state).await?))
}

/// Requests an adjustment. Nothing moves until another manager approves it.
#[utoipa::path(post, path = "/api/v1/inventory/adjustments", tag = "adjustments", security(("bearer" = [])),
    request_body = AdjustmentInput, responses((status = 201, body = Adjustment), (status = 422, body = Problem)))]
pub async fn request_adjustment(
    State(st): State<AppState>,
    auth: Auth,
    Json(a): Json<AdjustmentInput>,
) -> ApiResult<(StatusCode, Json<Adjustment>)> {
    let actor = auth.require(MANAGERS)?;
    Ok((
        StatusCode::CREATED,
        Json(st.store.request_adjustment(actor, &a).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/inventory/adjustments/{id}/approve", tag = "adjustments", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Adjustment), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn approve_adjustment(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Adjustment>> {
    let actor = auth.require(MANAGERS)?;
    Ok(Json(st.store.decide_adjustment(actor, id, true).await?))
}

#[utoipa::path(post, path = "/api/v1/inventory/adjustments/{id}/reject", tag = "adjustments", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Adjustment), (status = 403, body = Problem)))]
pub async fn reject_adjustment(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<Adjustment>> {
    let actor = auth.require(MANAGERS)?;
    Ok(Json(st.store.decide_adjustment(actor, id, false).await?))
}

/// Records a cycle count of one bin; differences become pending adjustments.
#[utoipa::path(post, path = "/api/v1/inventory/counts", tag = "adjustments", security(("bearer" = [])), request_body = CountInput,
    responses((status = 201, body = CountResult), (status = 422, body = Problem)))]
pub async fn count(
    State(st): State<AppState>,
    auth: Auth,
    Json(c): Json<CountInput>,
) -> ApiResult<(StatusCode, Json<CountResult>)> {
    let actor = auth.require(FLOOR)?;
    Ok((StatusCode::CREATED, Json(st.store.count(actor, &c).await?)))
}
