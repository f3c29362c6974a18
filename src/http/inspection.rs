//! Customs inspection (查验) and detention: the tasks a hold receipt
//! creates, and bringing the held parcel to an inspection or quarantine bin.

use axum::extract::State;

use super::auth::{Auth, MANAGERS};
use super::error::{ApiResult, Json, Path, Problem, Query};
use super::AppState;
use crate::domain::Role;
use crate::store::{
    CustomsTaskCloseInput, CustomsTaskMoveInput, CustomsTaskQuery, CustomsTaskView,
};

/// Who reads the tasks and carries the parcel: the floor's guards as well as
/// managers. Closing an inspection is a manager's call.
const FLOOR: &[Role] = &[Role::Guard, Role::Manager, Role::Admin];

/// Customs tasks, newest first: one per inspection (500) or detention
/// (501–503, 599) receipt, created when the receipt is stored.
#[utoipa::path(get, path = "/api/v1/customs-tasks", tag = "customs", security(("bearer" = [])),
    params(CustomsTaskQuery), responses((status = 200, body = Vec<CustomsTaskView>), (status = 422, body = Problem)))]
pub async fn list_tasks(
    State(st): State<AppState>,
    auth: Auth,
    Query(q): Query<CustomsTaskQuery>,
) -> ApiResult<Json<Vec<CustomsTaskView>>> {
    auth.require(FLOOR)?;
    Ok(Json(st.store.list_customs_tasks(q.state.as_deref()).await?))
}

#[utoipa::path(get, path = "/api/v1/customs-tasks/{id}", tag = "customs", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = CustomsTaskView), (status = 404, body = Problem)))]
pub async fn get_task(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<Json<CustomsTaskView>> {
    auth.require(FLOOR)?;
    Ok(Json(st.store.get_customs_task(id).await?))
}

/// Moves the held parcel's stock to `bin` through the ledger (`inspect`
/// movements; the reservation follows). An inspection task takes only an
/// inspection bin, a quarantine task only a quarantine bin (409
/// `wrong_bin_kind`); a closed task (409 `task_closed`), an order not yet
/// picked (409 `not_picked`) or already gone (409 `nothing_to_move`) is
/// refused. A refusal changes nothing.
#[utoipa::path(post, path = "/api/v1/customs-tasks/{id}/move", tag = "customs", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = CustomsTaskMoveInput,
    responses((status = 200, body = CustomsTaskView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn move_task(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(input): Json<CustomsTaskMoveInput>,
) -> ApiResult<Json<CustomsTaskView>> {
    let actor = auth.require(FLOOR)?;
    Ok(Json(
        st.store.move_customs_task(actor, id, &input.bin).await?,
    ))
}

/// Closes a task with a note of what the inspection found. A closed task
/// never changes (409 `task_closed`).
#[utoipa::path(post, path = "/api/v1/customs-tasks/{id}/close", tag = "customs", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = CustomsTaskCloseInput,
    responses((status = 200, body = CustomsTaskView), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn close_task(
    State(st): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(input): Json<CustomsTaskCloseInput>,
) -> ApiResult<Json<CustomsTaskView>> {
    let actor = auth.require(MANAGERS)?;
    Ok(Json(
        st.store.close_customs_task(actor, id, &input.note).await?,
    ))
}
