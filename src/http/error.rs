//! Errors as `application/problem+json` (RFC 9457) with a stable machine
//! `code`. Faults of ours carry no internals to the client; the response
//! carries a marker that the logging middleware turns into an error log.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::store::StoreError;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `/problems/{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// Stable machine-readable code, e.g. `insufficient_stock`.
    pub code: String,
    /// Extra facts, e.g. the available and requested quantities.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub facts: Option<Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub facts: Option<Value>,
    /// Set for faults of ours: logged by the middleware, never shown.
    pub fault: Option<String>,
}

/// Marker left in the response extensions of a fault, for `log_faults`.
#[derive(Debug, Clone)]
pub struct Fault(pub String);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            facts: None,
            fault: None,
        }
    }
    pub fn with_facts(mut self, facts: Value) -> Self {
        self.facts = Some(facts);
        self
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
    }
    pub fn internal(fault: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        );
        e.fault = Some(fault.into());
        e
    }
    pub fn unavailable(what: &str, fault: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{what} is unavailable; retry shortly"),
        );
        e.fault = Some(fault.into());
        e
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            StoreError::UnknownSku(sku) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "unknown_sku", msg)
                    .with_facts(json!({ "sku": sku }))
            }
            StoreError::UnknownLocation(bin) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "unknown_bin", msg)
                    .with_facts(json!({ "bin": bin }))
            }
            StoreError::UnknownLot { .. } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "unknown_lot", msg)
            }
            StoreError::LotExpiryMismatch { .. } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "lot_expiry_mismatch", msg)
            }
            StoreError::InsufficientStock {
                sku,
                bin,
                bucket,
                have,
                want,
            } => ApiError::new(S::CONFLICT, "insufficient_stock", msg).with_facts(json!({
                "sku": sku, "bin": bin, "bucket": bucket.as_str(), "have": have, "requested": want
            })),
            StoreError::OrderShortfall(lines) => {
                ApiError::new(S::CONFLICT, "insufficient_stock", msg)
                    .with_facts(json!({ "lines": lines }))
            }
            StoreError::LockNotFound(_) => ApiError::new(S::NOT_FOUND, "lock_not_found", msg),
            StoreError::LockClosed { .. } => ApiError::new(S::CONFLICT, "lock_closed", msg),
            StoreError::IdempotencyConflict { .. } => {
                ApiError::new(S::CONFLICT, "idempotency_conflict", msg)
            }
            StoreError::AlreadyExists(_) => ApiError::new(S::CONFLICT, "already_exists", msg),
            StoreError::NotFound(_) => ApiError::new(S::NOT_FOUND, "not_found", msg),
            StoreError::Invalid(_) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "validation_failed", msg)
            }
            StoreError::Forbidden(_) => ApiError::new(S::FORBIDDEN, "forbidden", msg),
            StoreError::Conflict { code, .. } => ApiError::new(S::CONFLICT, code, msg),
            StoreError::Constraint(_) => ApiError::new(S::CONFLICT, "constraint_violation", msg),
            StoreError::Contended => ApiError::new(S::SERVICE_UNAVAILABLE, "contended", msg),
            StoreError::NotCommitted(_) => ApiError::unavailable("the database", format!("{e:?}")),
            StoreError::Db(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => ApiError::unavailable("the database", format!("{e:?}")),
            other => ApiError::internal(format!("{other:?}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: format!("/problems/{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_string(),
            facts: self.facts,
        };
        let mut res = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_vec(&body).unwrap_or_default(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(f) = self.fault {
            res.extensions_mut().insert(Fault(f));
        }
        res
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match &r {
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::JsonDataError(_) => "validation_failed",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            _ => "bad_request",
        };
        ApiError::new(r.status(), code, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", r.body_text())
    }
}

/// JSON in and out, with rejections in the problem format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;
