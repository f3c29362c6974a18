//! SKUs and bins.

use axum::extract::State;
use axum::http::StatusCode;

use super::auth::{Auth, EVERYONE, MANAGERS};
use super::error::{ApiError, ApiResult, Json, Path, Problem};
use super::AppState;
use crate::store::{Location, LocationInput, Sku, SkuInput, StoreError};

fn created<T>(pair: (T, bool)) -> (StatusCode, Json<T>) {
    (
        if pair.1 {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(pair.0),
    )
}

fn not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::UnknownSku(_) | StoreError::UnknownLocation(_) => {
            ApiError::not_found(e.to_string())
        }
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/api/v1/skus", tag = "master data", security(("bearer" = [])),
    responses((status = 200, body = Vec<Sku>)))]
pub async fn list_skus(State(st): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<Sku>>> {
    auth.require(EVERYONE)?;
    Ok(Json(st.store.list_skus().await?))
}

/// Creates a SKU. Sending the same SKU again answers 200 with the stored one;
/// a different SKU under an existing code is refused with 409.
#[utoipa::path(post, path = "/api/v1/skus", tag = "master data", security(("bearer" = [])), request_body = SkuInput,
    responses((status = 201, body = Sku), (status = 200, body = Sku), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_sku(
    State(st): State<AppState>,
    auth: Auth,
    Json(s): Json<SkuInput>,
) -> ApiResult<(StatusCode, Json<Sku>)> {
    let actor = auth.require(MANAGERS)?;
    Ok(created(st.store.create_sku(actor, &s).await?))
}

#[utoipa::path(get, path = "/api/v1/skus/{code}", tag = "master data", security(("bearer" = [])),
    params(("code" = String, Path)), responses((status = 200, body = Sku), (status = 404, body = Problem)))]
pub async fn get_sku(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> ApiResult<Json<Sku>> {
    auth.require(EVERYONE)?;
    Ok(Json(st.store.get_sku(&code).await.map_err(not_found)?))
}

#[utoipa::path(put, path = "/api/v1/skus/{code}", tag = "master data", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = SkuInput,
    responses((status = 200, body = Sku), (status = 404, body = Problem)))]
pub async fn update_sku(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    Json(s): Json<SkuInput>,
) -> ApiResult<Json<Sku>> {
    let actor = auth.require(MANAGERS)?;
    if s.code.as_str() != code {
        return Err(ApiError::invalid(format!(
            "the body's code {} differs from the path's {code}",
            s.code
        )));
    }
    Ok(Json(
        st.store.update_sku(actor, &s).await.map_err(not_found)?,
    ))
}

#[utoipa::path(get, path = "/api/v1/locations", tag = "master data", security(("bearer" = [])),
    responses((status = 200, body = Vec<Location>)))]
pub async fn list_locations(
    State(st): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<Vec<Location>>> {
    auth.require(EVERYONE)?;
    Ok(Json(st.store.list_locations().await?))
}

#[utoipa::path(post, path = "/api/v1/locations", tag = "master data", security(("bearer" = [])), request_body = LocationInput,
    responses((status = 201, body = Location), (status = 200, body = Location), (status = 409, body = Problem)))]
pub async fn create_location(
    State(st): State<AppState>,
    auth: Auth,
    Json(l): Json<LocationInput>,
) -> ApiResult<(StatusCode, Json<Location>)> {
    let actor = auth.require(MANAGERS)?;
    Ok(created(st.store.create_location(actor, &l).await?))
}

#[utoipa::path(get, path = "/api/v1/locations/{code}", tag = "master data", security(("bearer" = [])),
    params(("code" = String, Path)), responses((status = 200, body = Location), (status = 404, body = Problem)))]
pub async fn get_location(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> ApiResult<Json<Location>> {
    auth.require(EVERYONE)?;
    Ok(Json(st.store.get_location(&code).await.map_err(not_found)?))
}

#[utoipa::path(put, path = "/api/v1/locations/{code}", tag = "master data", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = LocationInput,
    responses((status = 200, body = Location), (status = 404, body = Problem)))]
pub async fn update_location(
    State(st): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    Json(l): Json<LocationInput>,
) -> ApiResult<Json<Location>> {
    let actor = auth.require(MANAGERS)?;
    if l.code.as_str() != code {
        return Err(ApiError::invalid(format!(
            "the body's code {} differs from the path's {code}",
            l.code
        )));
    }
    Ok(Json(
        st.store
            .update_location(actor, &l)
            .await
            .map_err(not_found)?,
    ))
}
