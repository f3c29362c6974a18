//! Liveness, readiness, metrics, the OpenAPI document and the audit log.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Auth, MANAGERS};
use super::error::{ApiResult, Json, Problem, Query};
use super::AppState;
use crate::store::AuditEntry;

/// Buckets for request latency in seconds: the targets are milliseconds
/// (DESIGN §7), so resolution is finest there.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process-wide metrics recorder, installed on first use (tests start
/// several servers in one process; the recorder is global).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS_SECONDS)
            .expect("static bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first, in which case
        // that one collects and ours renders nothing: not worth stopping for.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// The process is up. Says nothing about its dependencies: see `/readyz`.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub database: &'static str,
    pub backend: &'static str,
    /// `connected`, `disconnected` (PDAs cannot reach the server) or `off`.
    pub mqtt: &'static str,
}

/// Ready to serve: the database answers and the MQTT link is connected and
/// subscribed.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = match st.store.ping().await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check: database unreachable");
            "unreachable"
        }
    };
    let mqtt = match &st.mqtt_ready {
        None => "off",
        Some(r) if *r.borrow() => "connected",
        Some(_) => "disconnected",
    };
    let ready = database == "ok" && mqtt != "disconnected";
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Readiness {
            status: if ready { "ready" } else { "not ready" },
            database,
            backend: st.store.backend(),
            mqtt,
        }),
    )
}

/// Prometheus text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "operations", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = Problem)))]
pub async fn audit(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    auth.require(MANAGERS)?;
    Ok(Json(
        st.store
            .audit_log(q.before_id, q.limit.unwrap_or(100))
            .await?,
    ))
}
