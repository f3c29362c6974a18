//! Customs receipts from the customs gateway, and each order's customs state.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::auth::Auth;
use super::error::{ApiError, ApiResult, Json, Path, Problem};
use super::AppState;
use crate::customs::{CustomsError, IngestView, OrderCustomsView};
use crate::domain::Role;

/// Header naming the gateway key that signed the body.
pub const KEY_ID_HEADER: &str = "x-bondgate-key-id";
/// Header carrying the signature (Base64) over the exact body bytes.
pub const SIGNATURE_HEADER: &str = "x-bondgate-signature";

impl From<CustomsError> for ApiError {
    fn from(e: CustomsError) -> Self {
        let msg = e.to_string();
        match e {
            CustomsError::Auth(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "receipt_not_authenticated", msg)
            }
            CustomsError::Parse(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "receipt_malformed", msg)
            }
            CustomsError::Store(crate::store::StoreError::AlreadyExists(_)) => {
                ApiError::new(StatusCode::CONFLICT, "receipt_replayed", msg)
            }
            CustomsError::Store(s) => s.into(),
        }
    }
}

/// A delivery from the customs gateway: a CEB622, CEB624 or CEB900 message,
/// bare or in its DXP envelope, signed over its exact bytes by a gateway
/// key (`X-Bondgate-Key-Id`, `X-Bondgate-Signature`). Unsigned, badly
/// signed, unknown-key, malformed and replayed deliveries are refused and
/// change nothing.
#[utoipa::path(post, path = "/api/v1/customs/receipts", tag = "customs", security(("bearer" = [])),
    request_body(content = String, content_type = "application/xml"),
    responses((status = 201, body = IngestView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 409, body = Problem)))]
pub async fn receive(
    State(st): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IngestView>)> {
    let actor = auth.require(&[Role::Integration, Role::Admin])?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let view = st
        .customs
        .ingest(
            actor,
            header(KEY_ID_HEADER),
            header(SIGNATURE_HEADER),
            &body,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// An order's customs state (released or why not, in English and Chinese)
/// and its receipt history in returnTime order.
#[utoipa::path(get, path = "/api/v1/orders/{order_no}/customs", tag = "customs", security(("bearer" = [])),
    params(("order_no" = String, Path)), responses((status = 200, body = OrderCustomsView), (status = 404, body = Problem)))]
pub async fn order_customs(
    State(st): State<AppState>,
    auth: Auth,
    Path(order_no): Path<String>,
) -> ApiResult<Json<OrderCustomsView>> {
    auth.require(&[Role::Guard, Role::Manager, Role::Admin, Role::Integration])?;
    Ok(Json(st.customs.order_state(&order_no).await?))
}
