//! Customs inspection (查验) and detention over HTTP, on both backends: a
//! 500 receipt creates one inspection task in the receipt's own commit (a
//! replay or a re-sent copy creates none); the held parcel moves to an
//! inspection bin through the ledger (which stays balanced), never to
//! another kind of bin; a detention (501) creates a quarantine task;
//! refusals change nothing and say why with a code.

use std::time::Duration;

use bondgate_protocol::scale::ScaleProtocol;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::customs::{ceb622, signed};
use crate::gate::{bridge, gate_scan, gated_station, order_state};
use crate::helpers::{Backend, TestApp};
use crate::orders::order;
use crate::packing::{ready, Station};

async fn tasks(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, v) = app.get(&format!("/api/v1/customs-tasks{query}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

async fn locked_at(app: &TestApp, bin: &str) -> i64 {
    let (s, v) = app.get(&format!("/api/v1/inventory?bin={bin}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["totals"]["locked"].as_i64().unwrap_or(0)
}

async fn refused(app: &TestApp, path: &str, body: Value, status: StatusCode, code: &str) {
    let (s, v) = app.post(path, body).await;
    assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{path}: {v}");
}

/// A station with ORD-1 (one unit) picked into TOTE-1, and a packer's
/// token; `None` where the backend is not available.
async fn picked_station(b: Backend) -> Option<(Station, String)> {
    ready(
        b,
        ScaleProtocol::YaohuaA9,
        Duration::from_millis(200),
        "ORD-1",
        1,
    )
    .await
}

/// Creates the inspection bin I-01.
async fn inspection_bin(app: &TestApp) {
    let (s, v) = app
        .post(
            "/api/v1/locations",
            json!({"code": "I-01", "zone": "I", "walk_seq": 80, "kind": "inspection"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// Delivers a signed CEB622 receipt `status` for `cop_no`, dated `time`,
/// as the gateway `token`; it must be stored (201).
async fn receipt(app: &TestApp, token: &str, cop_no: &str, status: i64, time: &str) {
    let (s, v) = signed(app, token, ceb622(cop_no, status, time)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// POSTs `body` to `path` as `token`.
async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.call_as(Some(token), Method::POST, path, Some(body))
        .await
}

/// Where task `id` is moved to a bin.
fn move_of(id: i64) -> String {
    format!("/api/v1/customs-tasks/{id}/move")
}

both_backends!(
    an_inspection_receipt_sends_the_parcel_to_an_inspection_bin_once,
    |b: Backend| async move {
        let Some((st, _packer)) = picked_station(b).await else {
            return;
        };
        let app = &st.app;
        inspection_bin(app).await;
        let gateway = app.user("gw", "integration").await;
        assert!(tasks(app, "").await.is_empty());

        // 500: one inspection task, created with the receipt.
        let inspection = ceb622("COP-ORD-1", 500, "20261123100000000");
        let (s, v) = signed(app, &gateway, inspection.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let list = tasks(app, "").await;
        assert_eq!(list.len(), 1, "{list:?}");
        let task = &list[0];
        assert_eq!(
            (
                task["kind"].as_str(),
                task["state"].as_str(),
                task["order_no"].as_str(),
                task["return_status"].as_i64()
            ),
            (Some("inspection"), Some("open"), Some("ORD-1"), Some(500)),
            "{task}"
        );
        let id = task["id"].as_i64().unwrap();

        // The same bytes again are a replay; the same receipt re-sent in
        // another message is stored, but it is the same hold: no new task.
        let (s, _) = signed(app, &gateway, inspection.clone()).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let resent = String::from_utf8(inspection)
            .unwrap()
            .replace("GUID-COP", "RESENT-COP")
            .into_bytes();
        let (s, v) = signed(app, &gateway, resent).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(tasks(app, "").await.len(), 1);

        // Refused moves change nothing.
        let move_path = move_of(id);
        for (path, bin, status, code) in [
            (&move_path, "A-01", StatusCode::CONFLICT, "wrong_bin_kind"),
            (&move_path, "Q-01", StatusCode::CONFLICT, "wrong_bin_kind"),
            (
                &move_path,
                "NOPE",
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_bin",
            ),
            (&move_of(999999), "I-01", StatusCode::NOT_FOUND, "not_found"),
        ] {
            refused(app, path, json!({ "bin": bin }), status, code).await;
        }
        assert_eq!(locked_at(app, "TOTE-1").await, 1);
        assert_eq!(locked_at(app, "I-01").await, 0);
        assert_eq!(
            app.get(&format!("/api/v1/customs-tasks/{id}")).await.1["state"],
            "open"
        );
        // A packer neither reads nor moves tasks.
        let packer = app.user("pam", "packer").await;
        let (s, _) = post_as(app, &packer, &move_path, json!({"bin": "I-01"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // A guard brings it to the inspection bin: through the ledger.
        let guard = app.user("gus", "guard").await;
        let (s, v) = post_as(app, &guard, &move_path, json!({"bin": "I-01"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (
                v["state"].as_str(),
                v["bin"].as_str(),
                v["moved_by"].as_str()
            ),
            (Some("moved"), Some("I-01"), Some("gus")),
            "{v}"
        );
        assert_eq!(locked_at(app, "TOTE-1").await, 0);
        assert_eq!(locked_at(app, "I-01").await, 1);
        let (_, moves) = app.get("/api/v1/inventory/movements?sku=SKU-1").await;
        let inspect_legs = moves["movements"]
            .as_array()
            .map(|m| m.iter().filter(|m| m["kind"] == "inspect").count())
            .unwrap_or(0);
        assert_eq!(inspect_legs, 2, "{moves}");
        app.integrity_clean().await;

        // Closing needs a note and a manager; a closed task never changes.
        let close_path = format!("/api/v1/customs-tasks/{id}/close");
        refused(
            app,
            &close_path,
            json!({"note": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let (s, _) = post_as(app, &guard, &close_path, json!({"note": "inspected"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v) = app
            .post(
                &close_path,
                json!({"note": "查验无误 inspected, no findings"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["state"], "closed");
        for (path, body) in [
            (&close_path, json!({"note": "again"})),
            (&move_path, json!({"bin": "I-01"})),
        ] {
            refused(app, path, body, StatusCode::CONFLICT, "task_closed").await;
        }
        assert_eq!(tasks(app, "?state=closed").await.len(), 1);
        assert!(tasks(app, "?state=open").await.is_empty());
        let (s, v) = app.get("/api/v1/customs-tasks?state=lost").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

        // A later detention (501): a quarantine task, to quarantine only.
        receipt(app, &gateway, "COP-ORD-1", 501, "20261123120000000").await;
        let open = tasks(app, "?state=open").await;
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0]["kind"], "quarantine", "{open:?}");
        let qid = open[0]["id"].as_i64().unwrap();
        let qpath = move_of(qid);
        refused(
            app,
            &qpath,
            json!({"bin": "I-01"}),
            StatusCode::CONFLICT,
            "wrong_bin_kind",
        )
        .await;
        let (s, v) = app.post(&qpath, json!({"bin": "Q-01"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(locked_at(app, "I-01").await, 0);
        assert_eq!(locked_at(app, "Q-01").await, 1);
        app.integrity_clean().await;
        st.finish().await;
    }
);

both_backends!(
    an_unpicked_order_under_inspection_is_not_moved,
    |b: Backend| async move {
        let Some((st, _packer)) = picked_station(b).await else {
            return;
        };
        let app = &st.app;
        inspection_bin(app).await;
        let (s, v) = app.post("/api/v1/orders", order("ORD-2", 1)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let gateway = app.user("gw", "integration").await;
        // A 500 arriving late, dated before the release, is history: no task.
        for (status, time) in [(800, "20261123110000000"), (500, "20261123100000000")] {
            receipt(app, &gateway, "COP-ORD-1", status, time).await;
        }
        assert!(tasks(app, "").await.is_empty());
        receipt(app, &gateway, "COP-ORD-2", 500, "20261123100000000").await;
        let list = tasks(app, "").await;
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["order_no"], "ORD-2");
        let id = list[0]["id"].as_i64().unwrap();
        refused(
            app,
            &move_of(id),
            json!({"bin": "I-01"}),
            StatusCode::CONFLICT,
            "not_picked",
        )
        .await;
        assert_eq!(locked_at(app, "I-01").await, 0);
        app.integrity_clean().await;
        st.finish().await;
    }
);

both_backends!(
    an_inspected_parcel_leaves_from_the_inspection_bin_once_released,
    |b: Backend| async move {
        let Some((st, packer)) = gated_station(b).await else {
            return;
        };
        let app = &st.app;
        let _gate = bridge(app, "G1").await;
        inspection_bin(app).await;
        st.place(215).await;
        let (s, p) = st.pack(&packer, 1).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let gateway = app.user("gw", "integration").await;
        receipt(app, &gateway, "COP-ORD-1", 500, "20261123100000000").await;
        let list = tasks(app, "?state=open").await;
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0]["package_no"], "PKG-ORD-1", "{list:?}");
        let id = list[0]["id"].as_i64().unwrap();
        let (s, v) = app.post(&move_of(id), json!({"bin": "I-01"})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(locked_at(app, "I-01").await, 1);
        let guard = app.user("gus", "guard").await;
        // Held: the gate refuses.
        let d = gate_scan(app, &guard, "PKG-ORD-1").await;
        assert_eq!(d["result"], "refused", "{d}");
        // Released after the inspection: it leaves from the inspection bin.
        receipt(app, &gateway, "COP-ORD-1", 800, "20261123120000000").await;
        let d = gate_scan(app, &guard, "PKG-ORD-1").await;
        assert_eq!(
            (d["result"].as_str(), d["output"].as_str()),
            (Some("open"), Some("confirmed")),
            "{d}"
        );
        assert_eq!(locked_at(app, "I-01").await, 0);
        assert_eq!(order_state(app).await, "shipped");
        app.integrity_clean().await;
        // The task is still there for the record; moving a shipped parcel is refused.
        let (s, v) = app.post(&move_of(id), json!({"bin": "I-01"})).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("nothing_to_move")),
            "{v}"
        );
        st.finish().await;
    }
);
