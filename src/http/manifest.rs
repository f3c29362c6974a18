//! The outbound vehicle manifest: parcels that left through the gate,
//! loaded onto one vehicle, and the export an outbound 核注清单 / 核放单 is
//! built from (CUSTOMS.md §3).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Auth, MANAGERS};
use super::error::{ApiError, ApiResult, Json, Path, Problem, Query};
use super::AppState;
use crate::domain::manifest::{ManifestNo, Plate, SealNo};
use crate::domain::Role;
use crate::store::{
    ManifestCloseInput, ManifestInput, ManifestParcelInput, ManifestQuery, ManifestSummary,
    ManifestView,
};

/// Who loads vehicles: the gate's guards and managers. Closing (the seal
/// goes on, the vehicle leaves) is for managers.
const LOADERS: &[Role] = &[Role::Guard, Role::Manager, Role::Admin];

fn manifest_no(s: &str) -> ApiResult<String> {
    ManifestNo::parse(s)
        .map(|n| n.as_str().to_string())
        .map_err(|e| ApiError::invalid(e.to_string()))
}

fn seal(s: Option<&str>) -> ApiResult<Option<String>> {
    s.map(|s| {
        SealNo::parse(s)
            .map(|n| n.as_str().to_string())
            .map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_seal",
                    e.to_string(),
                )
            })
    })
    .transpose()
}

/// Creates an open manifest for a vehicle. The plate must be a Chinese
/// licence plate (`浙A12345`, new energy `浙AD12345`; 422 `invalid_plate`),
/// the seal, if given, a seal number (422 `invalid_seal`). The same number
/// and vehicle again answer 200 with the manifest; another vehicle under a
/// used number is refused (409).
#[utoipa::path(post, path = "/api/v1/manifests", tag = "manifest", security(("bearer" = [])),
    request_body = ManifestInput,
    responses((status = 201, body = ManifestView), (status = 200, body = ManifestView), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create(
    State(st): State<AppState>,
    auth: Auth,
    Json(input): Json<ManifestInput>,
) -> ApiResult<(StatusCode, Json<ManifestView>)> {
    let actor = auth.require(LOADERS)?;
    let plate = Plate::parse(&input.plate).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_plate",
            e.to_string(),
        )
    })?;
    let parsed = ManifestInput {
        manifest_no: manifest_no(&input.manifest_no)?,
        plate: plate.as_str().to_string(),
        seal: seal(input.seal.as_deref())?,
    };
    let (view, new) = st.store.create_manifest(actor, &parsed).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

#[utoipa::path(get, path = "/api/v1/manifests", tag = "manifest", security(("bearer" = [])),
    params(ManifestQuery), responses((status = 200, body = Vec<ManifestSummary>)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<ManifestQuery>,
) -> ApiResult<Json<Vec<ManifestSummary>>> {
    auth.require(LOADERS)?;
    Ok(Json(st.store.list_manifests(q.state.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/manifests/{no}", tag = "manifest", security(("bearer" = [])),
    params(("no" = String, Path)), responses((status = 200, body = ManifestView), (status = 404, body = Problem)))]
pub async fn get(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
) -> ApiResult<Json<ManifestView>> {
    auth.require(LOADERS)?;
    Ok(Json(st.store.get_manifest(&manifest_no(&no)?).await?))
}

/// Loads a parcel (package or waybill number) onto an open manifest. Only
/// a parcel that exited through the gate (409 `not_exited`), on one
/// manifest only (409 `on_other_manifest`); a closed manifest refuses (409
/// `manifest_closed`). The same parcel again changes nothing.
#[utoipa::path(post, path = "/api/v1/manifests/{no}/parcels", tag = "manifest", security(("bearer" = [])),
    params(("no" = String, Path)), request_body = ManifestParcelInput,
    responses((status = 200, body = ManifestView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn add_parcel(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
    Json(input): Json<ManifestParcelInput>,
) -> ApiResult<Json<ManifestView>> {
    let actor = auth.require(LOADERS)?;
    Ok(Json(
        st.store
            .add_manifest_parcel(actor, &manifest_no(&no)?, &input.code)
            .await?,
    ))
}

/// Takes a parcel off an open manifest (409 `manifest_closed` once closed).
#[utoipa::path(delete, path = "/api/v1/manifests/{no}/parcels/{package}", tag = "manifest", security(("bearer" = [])),
    params(("no" = String, Path), ("package" = String, Path)),
    responses((status = 200, body = ManifestView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_parcel(
    State(st): State<AppState>,
    auth: Auth,
    Path((no, package)): Path<(String, String)>,
) -> ApiResult<Json<ManifestView>> {
    let actor = auth.require(LOADERS)?;
    Ok(Json(
        st.store
            .remove_manifest_parcel(actor, &manifest_no(&no)?, &package)
            .await?,
    ))
}

/// Closes a manifest for good: with its seal (given here or at creation;
/// 409 `seal_required`) and at least one parcel (409 `empty_manifest`).
#[utoipa::path(post, path = "/api/v1/manifests/{no}/close", tag = "manifest", security(("bearer" = [])),
    params(("no" = String, Path)), request_body = ManifestCloseInput,
    responses((status = 200, body = ManifestView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn close(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
    Json(input): Json<ManifestCloseInput>,
) -> ApiResult<Json<ManifestView>> {
    let actor = auth.require(MANAGERS)?;
    let seal = seal(input.seal.as_deref())?;
    Ok(Json(
        st.store
            .close_manifest(actor, &manifest_no(&no)?, seal.as_deref())
            .await?,
    ))
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One parcel line of the export.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportLine {
    /// The 清单 number (`invtNo`) customs assigned.
    pub invt_no: Option<String>,
    pub order_no: String,
    pub package_no: String,
    pub waybill_no: Option<String>,
    pub gross_grams: i64,
}

/// What the outbound 核注清单 and 核放单 need: the vehicle, its seal, each
/// parcel's 清单, and the totals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ManifestExport {
    pub manifest_no: String,
    pub plate: String,
    pub seal: Option<String>,
    pub state: String,
    pub parcel_count: i64,
    pub total_gross_grams: i64,
    pub parcels: Vec<ExportLine>,
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV with a UTF-8 byte-order mark, so Excel reads the Chinese headers:
/// one line per parcel, then a totals line (`合计 total`, parcel count in
/// the package column, total grams in the weight column).
fn to_csv(e: &ManifestExport) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str("清单编号 invt_no,订单编号 order_no,包裹编号 package_no,运单编号 waybill_no,毛重克 gross_grams\r\n");
    for p in &e.parcels {
        let fields = [
            p.invt_no.as_deref().unwrap_or(""),
            &p.order_no,
            &p.package_no,
            p.waybill_no.as_deref().unwrap_or(""),
            &p.gross_grams.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "合计 total,,{},,{}\r\n",
        e.parcel_count, e.total_gross_grams
    ));
    out
}

/// The manifest for the outbound 核注清单 / 核放单: per parcel its 清单
/// number, order, package, waybill and gross weight (integer grams), and
/// the totals; `format=csv` for a spreadsheet (UTF-8 with a BOM).
#[utoipa::path(get, path = "/api/v1/manifests/{no}/export", tag = "manifest", security(("bearer" = [])),
    params(("no" = String, Path), ExportQuery),
    responses((status = 200, body = ManifestExport), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn export(
    State(st): State<AppState>,
    auth: Auth,
    Path(no): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    auth.require(LOADERS)?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "format must be json or csv (got {other})"
            )))
        }
    };
    let m = st.store.get_manifest(&manifest_no(&no)?).await?;
    let e = ManifestExport {
        manifest_no: m.manifest_no,
        plate: m.plate,
        seal: m.seal,
        state: m.state,
        parcel_count: m.parcel_count,
        total_gross_grams: m.total_gross_grams,
        parcels: m
            .parcels
            .into_iter()
            .map(|p| ExportLine {
                invt_no: p.invt_no,
                order_no: p.order_no,
                package_no: p.package_no,
                waybill_no: p.waybill_no,
                gross_grams: p.gross_grams,
            })
            .collect(),
    };
    if !csv {
        return Ok(Json(e).into_response());
    }
    let filename = format!("manifest-{}.csv", e.manifest_no);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        to_csv(&e),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_a_bom_quotes_and_totals() {
        let e = ManifestExport {
            manifest_no: "VM-1".into(),
            plate: "浙A12345".into(),
            seal: Some("CS0001".into()),
            state: "closed".into(),
            parcel_count: 1,
            total_gross_grams: 215,
            parcels: vec![ExportLine {
                invt_no: Some("29242026I000000001".into()),
                order_no: "ORD,1".into(),
                package_no: "PKG-1".into(),
                waybill_no: None,
                gross_grams: 215,
            }],
        };
        let csv = to_csv(&e);
        assert!(csv.starts_with('\u{feff}'));
        let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
        assert_eq!(lines[1], "29242026I000000001,\"ORD,1\",PKG-1,,215");
        assert_eq!(lines[2], "合计 total,,1,,215");
    }
}
