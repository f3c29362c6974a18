//! Orders from the e-commerce platform.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::{ApiResult, Json, Path, Problem, Query};
use super::AppState;
use crate::domain::Role;
use crate::store::{OrderInput, OrderQuery, OrderSummary, OrderView};

/// Who sends and cancels orders: the platform's integration, and managers.
const ORDER_DESK: &[Role] = &[Role::Integration, Role::Manager, Role::Admin];

/// Takes an order and reserves its stock, all lines or none. Idempotent on
/// `order_no`. Refused with 409 `insufficient_stock` and per-line detail when
/// stock is short; with 422 when the amounts do not add up, the order is over
/// the 5,000 CNY limit, the buyer's ID fails its check, or a SKU's customs
/// record is revoked.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), request_body = OrderInput,
    responses((status = 201, body = OrderView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_order(
    State(st): State<AppState>,
    auth: Auth,
    Json(input): Json<OrderInput>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let actor = auth.require(ORDER_DESK)?;
    let ctx = crate::orders::prepare(&input, &st.pii, chrono::Utc::now())?;
    let view = st.store.create_order(actor, &input, &ctx).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), params(OrderQuery),
    responses((status = 200, body = Vec<OrderSummary>)))]
pub async fn list_orders(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<OrderQuery>,
) -> ApiResult<Json<Vec<OrderSummary>>> {
    auth.require(ORDER_DESK)?;
    Ok(Json(st.store.list_orders(&q).await?))
}

#[utoipa::path(get, path = "/api/v1/orders/{order_no}", tag = "orders", security(("bearer" = [])),
    params(("order_no" = String, Path)), responses((status = 200, body = OrderView), (status = 404, body = Problem)))]
pub async fn get_order(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
) -> ApiResult<Json<OrderView>> {
    auth.require(ORDER_DESK)?;
    Ok(Json(st.store.get_order(&no).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: Option<String>,
}

/// Cancels an order and releases exactly what was reserved for it.
#[utoipa::path(post, path = "/api/v1/orders/{order_no}/cancel", tag = "orders", security(("bearer" = [])),
    params(("order_no" = String, Path)), request_body = CancelRequest,
    responses((status = 200, body = OrderView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn cancel_order(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
    Json(req): Json<CancelRequest>,
) -> ApiResult<Json<OrderView>> {
    let actor = auth.require(ORDER_DESK)?;
    let reason = req
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("cancelled by the platform");
    Ok(Json(st.store.cancel_order(actor, &no, reason).await?))
}
