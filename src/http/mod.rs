//! The HTTP adapter: the only module that knows JSON. Routes, middleware
//! (request ids, timeouts, body limits, metrics, error logging) and the
//! OpenAPI document generated from the handlers.

pub mod auth;
mod customs;
mod dashboard;
pub mod error;
mod events;
mod gate;
mod inspection;
mod inventory;
mod manifest;
mod master;
pub mod ops;
mod orders;
mod packing;
mod picking;
mod web;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::store::Store;
use error::{ApiError, Fault};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Seals buyer ID numbers and phones before they reach the store.
    pub pii: crate::crypto::PiiCipher,
    /// Whether the MQTT link is connected and subscribed (None: no link).
    pub mqtt_ready: Option<tokio::sync::watch::Receiver<bool>>,
    /// The pack stations: scales, printers, the pack flow.
    pub packing: crate::packing::Packing,
    /// Customs receipts and states.
    pub customs: crate::customs::Customs,
    /// The outbound gates and their outputs.
    pub gates: std::sync::Arc<crate::gate::Gates>,
    /// Bridges' latest health reports, for the device list.
    pub device_health: crate::device_health::DeviceHealthBook,
    /// What the screens' live feed (`/api/v1/events`) carries.
    pub events: crate::events::EventHub,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "bondgate", description = "Warehouse management for bonded warehouses: stock, picking, packing, customs release and the gate interlock."),
    modifiers(&BearerAuth),
    components(schemas(error::Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The router with its OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics_text))
        .routes(routes!(ops::audit))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::create_user, auth::list_users))
        .routes(routes!(auth::update_user))
        .routes(routes!(master::list_skus, master::create_sku))
        .routes(routes!(master::get_sku, master::update_sku))
        .routes(routes!(master::list_locations, master::create_location))
        .routes(routes!(master::get_location, master::update_location))
        .routes(routes!(inventory::receive))
        .routes(routes!(inventory::get_receipt))
        .routes(routes!(inventory::stock))
        .routes(routes!(inventory::movements))
        .routes(routes!(inventory::reconciliation))
        .routes(routes!(inventory::integrity))
        .routes(routes!(inventory::lock))
        .routes(routes!(inventory::get_lock))
        .routes(routes!(inventory::release))
        .routes(routes!(inventory::damage))
        .routes(routes!(inventory::transfer))
        .routes(routes!(
            inventory::list_adjustments,
            inventory::request_adjustment
        ))
        .routes(routes!(inventory::approve_adjustment))
        .routes(routes!(inventory::reject_adjustment))
        .routes(routes!(inventory::count))
        .routes(routes!(orders::create_order, orders::list_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(picking::create_wave))
        .routes(routes!(picking::get_wave))
        .routes(routes!(picking::list_pick_tasks))
        .routes(routes!(picking::assign))
        .routes(routes!(picking::scan))
        .routes(routes!(picking::set_badge))
        .routes(routes!(picking::count_requests))
        .routes(routes!(picking::devices))
        .routes(routes!(packing::pack))
        .routes(routes!(packing::plan))
        .routes(routes!(packing::get_package))
        .routes(routes!(packing::override_weight))
        .routes(routes!(packing::reprint))
        .routes(routes!(packing::waybill))
        .routes(routes!(packing::list_box_types, packing::put_box_type))
        .routes(routes!(packing::stations))
        .routes(routes!(packing::station_scan))
        .routes(routes!(packing::exceptions))
        .routes(routes!(packing::print_jobs))
        .routes(routes!(customs::receive))
        .routes(routes!(customs::order_customs))
        .routes(routes!(gate::scan))
        .routes(routes!(gate::list))
        .routes(routes!(gate::decisions))
        .routes(routes!(inspection::list_tasks))
        .routes(routes!(inspection::get_task))
        .routes(routes!(inspection::move_task))
        .routes(routes!(inspection::close_task))
        .routes(routes!(manifest::create, manifest::list))
        .routes(routes!(manifest::get))
        .routes(routes!(manifest::add_parcel))
        .routes(routes!(manifest::remove_parcel))
        .routes(routes!(manifest::close))
        .routes(routes!(manifest::export))
        .routes(routes!(events::events))
        .routes(routes!(dashboard::summary))
        .routes(routes!(dashboard::exceptions))
        .split_for_parts();
    let doc = Arc::new(doc);
    let timeout = state.config.request_timeout;
    let hub = state.events.clone();
    let body_limit = state.config.body_limit_bytes;
    api.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .merge(web::routes())
    .fallback(|| async { ApiError::not_found("no such resource") })
    .method_not_allowed_fallback(|| async {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this resource does not accept that method")
    })
    .with_state(state)
    .layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), uri = %req.uri().path(), request_id = %id)
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(middleware::from_fn(observe))
            .layer(middleware::from_fn_with_state(hub, announce_writes))
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long and was abandoned")
            }))
            .layer(tower::timeout::TimeoutLayer::new(timeout))
            .layer(DefaultBodyLimit::max(body_limit)),
    )
}

/// Counts and times every request by route and status, and logs faults (the
/// error responses carry a [`Fault`] marker with the internal detail).
async fn observe(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let elapsed = started.elapsed();
    metrics::counter!("bondgate_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("bondgate_http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    if let Some(Fault(detail)) = res.extensions().get::<Fault>() {
        tracing::error!(route = %route, fault = %detail, "request failed");
    } else if elapsed > SLOW_REQUEST {
        tracing::warn!(route = %route, elapsed_ms = elapsed.as_millis() as u64, "slow request");
    }
    res.into_response()
}

/// Tells the managers' screens that something changed: after every write
/// to the API that succeeded, an [`Event::Changed`](crate::events::Event)
/// naming its resource (`/api/v1/orders/…` → `orders`). Logins and logouts
/// change nothing a screen shows.
async fn announce_writes(
    axum::extract::State(hub): axum::extract::State<crate::events::EventHub>,
    req: Request,
    next: Next,
) -> Response {
    let write = !matches!(
        req.method(),
        &axum::http::Method::GET | &axum::http::Method::HEAD
    );
    let what = req
        .uri()
        .path()
        .strip_prefix("/api/v1/")
        .and_then(|p| p.split('/').next())
        .filter(|w| !w.is_empty() && *w != "auth")
        .map(str::to_string);
    let res = next.run(req).await;
    if let (true, Some(what)) = (write, what) {
        if res.status().is_success() {
            hub.publish(crate::events::Event::Changed {
                what,
                at: chrono::Utc::now(),
            });
        }
    }
    res
}

/// Requests slower than this are logged: the targets are milliseconds.
const SLOW_REQUEST: Duration = Duration::from_secs(1);
