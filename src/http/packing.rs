//! The pack station over HTTP: what to check for a tote, the pack itself
//! (items, box, the scale's weight, waybill, label), overrides, reprints,
//! box types, stations, weight exceptions, the print queue, the CEB511
//! waybill record.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::auth::Auth;
use super::error::{ApiError, ApiResult, Json, Path, Problem, Query};
use super::AppState;
use crate::domain::Role;
use crate::packing::{PackError, PackRequest, StationAnswer, StationScan, StationView, WeighError};
use crate::store::{
    BoxType, BoxTypeInput, OverrideInput, PackExceptionView, PackOutcome, PackPlan, PackageView,
    PrintJobView, PrintState, ReprintInput, WaybillRecord,
};

const PACKERS: &[Role] = &[Role::Packer, Role::Manager, Role::Admin];
const FLOOR_MANAGERS: &[Role] = &[Role::Manager, Role::Admin];

impl From<PackError> for ApiError {
    fn from(e: PackError) -> Self {
        let msg = e.to_string();
        match e {
            PackError::Store(s) => s.into(),
            PackError::UnknownStation(station) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_station", msg)
                    .with_facts(json!({ "station": station }))
            }
            PackError::Items { refused, missing } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "items_mismatch", msg).with_facts(
                    json!({ "refused": refused, "missing": missing.iter().map(|(sku, n)| json!({"sku": sku, "qty": n})).collect::<Vec<_>>() }),
                )
            }
            PackError::Weigh(WeighError::Offline { station, reason }) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "scale_offline", msg)
                    .with_facts(json!({ "station": station, "reason": reason }))
            }
            PackError::Weigh(WeighError::Timeout { station, why, .. }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_stable_weight", msg)
                    .with_facts(json!({ "station": station, "why": why.to_string() }))
            }
            PackError::Weigh(WeighError::OutOfRange { station, range }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "scale_out_of_range", msg)
                    .with_facts(json!({ "station": station, "range": range }))
            }
            PackError::Weigh(WeighError::NoScale(station)) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_station", msg)
                    .with_facts(json!({ "station": station }))
            }
        }
    }
}

/// What the packer must put in the box for a tote (or order number): lines,
/// barcodes, reserved batches, unit weights, and the parcel if one exists.
#[utoipa::path(get, path = "/api/v1/packages/plan/{code}", tag = "packing", security(("bearer" = [])),
    params(("code" = String, Path, description = "tote or order number")),
    responses((status = 200, body = PackPlan), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn plan(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> ApiResult<Json<PackPlan>> {
    auth.require(PACKERS)?;
    Ok(Json(st.store.pack_plan(&code).await?))
}

/// Packs a picked order: every item scanned against the order (wrong or
/// extra items refused), the box's tare added, a **stable** weight of the
/// parcel placed on the station's scale compared with Σ unit weights + tare
/// within the tolerance. A match assigns a waybill and queues the label
/// (201); a mismatch is refused (422, `weight_mismatch`) and kept on the
/// exception list for a re-weigh or a manager's override. Packing an order
/// already packed answers 200 with its parcel and prints nothing.
#[utoipa::path(post, path = "/api/v1/packages", tag = "packing", security(("bearer" = [])), request_body = PackRequest,
    responses((status = 201, body = PackageView), (status = 200, body = PackageView),
        (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn pack(
    State(st): State<AppState>,
    auth: Auth,
    Json(req): Json<PackRequest>,
) -> ApiResult<Response> {
    let actor = auth.require(PACKERS)?;
    match st.packing.pack(actor, &req).await? {
        PackOutcome::Packed(view, true) => Ok((StatusCode::CREATED, Json(view)).into_response()),
        PackOutcome::Packed(view, false) => Ok((StatusCode::OK, Json(view)).into_response()),
        PackOutcome::Mismatch(view) => {
            let check = view.weight_check();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "weight_mismatch",
                check.explain(),
            )
            .with_facts(json!({ "package": view })))
        }
    }
}

#[utoipa::path(get, path = "/api/v1/packages/{package_no}", tag = "packing", security(("bearer" = [])),
    params(("package_no" = String, Path)), responses((status = 200, body = PackageView), (status = 404, body = Problem)))]
pub async fn get_package(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
) -> ApiResult<Json<PackageView>> {
    auth.require(&[Role::Packer, Role::Guard, Role::Manager, Role::Admin])?;
    Ok(Json(st.store.get_package(&no).await?))
}

/// A manager accepts a parcel whose weight did not match, with a reason:
/// the parcel is packed with the weight it was weighed at, and its label queued.
#[utoipa::path(post, path = "/api/v1/packages/{package_no}/override", tag = "packing", security(("bearer" = [])),
    params(("package_no" = String, Path)), request_body = OverrideInput,
    responses((status = 200, body = PackageView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn override_weight(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
    Json(input): Json<OverrideInput>,
) -> ApiResult<Json<PackageView>> {
    let actor = auth.require(FLOOR_MANAGERS)?;
    Ok(Json(
        st.packing
            .override_weight(actor, &no, &input.reason)
            .await?,
    ))
}

/// Queues another copy of a parcel's label; the reason goes to the audit log.
#[utoipa::path(post, path = "/api/v1/packages/{package_no}/reprint", tag = "packing", security(("bearer" = [])),
    params(("package_no" = String, Path)), request_body = ReprintInput,
    responses((status = 201, body = PrintJobView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn reprint(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
    Json(input): Json<ReprintInput>,
) -> ApiResult<(StatusCode, Json<PrintJobView>)> {
    let actor = auth.require(PACKERS)?;
    let job = st.packing.reprint(actor, &no, &input.reason).await?;
    Ok((StatusCode::CREATED, Json(job)))
}

/// The parcel's waybill as customs message CEB511 carries it (`LogisticsHead`).
#[utoipa::path(get, path = "/api/v1/packages/{package_no}/waybill", tag = "packing", security(("bearer" = [])),
    params(("package_no" = String, Path)), responses((status = 200, body = WaybillRecord), (status = 404, body = Problem)))]
pub async fn waybill(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
) -> ApiResult<Json<WaybillRecord>> {
    auth.require(&[Role::Manager, Role::Admin, Role::Integration])?;
    let cfg = st.packing.config();
    Ok(Json(
        st.store
            .waybill_record(&no, (&cfg.logistics_code, &cfg.logistics_name))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/box-types", tag = "packing", security(("bearer" = [])),
    responses((status = 200, body = Vec<BoxType>)))]
pub async fn list_box_types(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<BoxType>>> {
    auth.require(PACKERS)?;
    Ok(Json(st.store.list_box_types().await?))
}

/// Creates a box type or changes its name, tare or active flag.
#[utoipa::path(put, path = "/api/v1/box-types", tag = "packing", security(("bearer" = [])), request_body = BoxTypeInput,
    responses((status = 200, body = BoxType), (status = 422, body = Problem)))]
pub async fn put_box_type(
    State(st): State<AppState>,
    auth: Auth,
    Json(input): Json<BoxTypeInput>,
) -> ApiResult<Json<BoxType>> {
    let actor = auth.require(FLOOR_MANAGERS)?;
    Ok(Json(st.store.upsert_box_type(actor, &input).await?))
}

/// Every pack station with its scale (online, latest and last stable
/// weight, last error), its printer and the answer to its last scan (so a
/// screen opened mid-parcel shows the step, the order and its checklist).
#[utoipa::path(get, path = "/api/v1/pack-stations", tag = "packing", security(("bearer" = [])),
    responses((status = 200, body = Vec<StationView>)))]
pub async fn stations(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<StationView>>> {
    auth.require(PACKERS)?;
    Ok(Json(st.packing.stations().await?))
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    /// Only those not yet resolved (default true).
    pub open: Option<bool>,
}

/// Weight mismatches, newest first, with how each was resolved.
#[utoipa::path(get, path = "/api/v1/pack-exceptions", tag = "packing", security(("bearer" = [])), params(ExceptionQuery),
    responses((status = 200, body = Vec<PackExceptionView>)))]
pub async fn exceptions(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<ExceptionQuery>,
) -> ApiResult<Json<Vec<PackExceptionView>>> {
    auth.require(PACKERS)?;
    Ok(Json(
        st.store
            .list_pack_exceptions(q.open.unwrap_or(true))
            .await?,
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct PrintJobQuery {
    pub station: Option<String>,
    /// queued, printed or cancelled.
    pub state: Option<String>,
}

/// Label print jobs, newest first: what waits for a printer and why.
#[utoipa::path(get, path = "/api/v1/print-jobs", tag = "packing", security(("bearer" = [])), params(PrintJobQuery),
    responses((status = 200, body = Vec<PrintJobView>), (status = 400, body = Problem)))]
pub async fn print_jobs(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<PrintJobQuery>,
) -> ApiResult<Json<Vec<PrintJobView>>> {
    auth.require(PACKERS)?;
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(PrintState::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "state must be queued, printed or cancelled, not {s:?}"
            ))
        })?),
    };
    Ok(Json(
        st.store
            .list_print_jobs(q.station.as_deref(), state)
            .await?,
    ))
}

/// One scan of a pack station's own scanner: a tote (or order number), then
/// each item, then the box label, which weighs and packs. The station's
/// session is kept in the database; a repeated `seq` gets the same answer.
/// Refusals (wrong item, weight mismatch, scale offline) are answers with
/// `ok: false`, not HTTP errors: the station shows them and beeps.
#[utoipa::path(post, path = "/api/v1/pack-stations/{station}/scans", tag = "packing", security(("bearer" = [])),
    params(("station" = String, Path)), request_body = StationScan,
    responses((status = 200, body = StationAnswer), (status = 422, body = Problem)))]
pub async fn station_scan(
    State(st): State<AppState>,
    auth: Auth,
    Path(station): Path<String>,
    Json(scan): Json<StationScan>,
) -> ApiResult<Json<StationAnswer>> {
    let actor = auth.require(PACKERS)?;
    Ok(Json(st.packing.station_scan(actor, &station, &scan).await?))
}
