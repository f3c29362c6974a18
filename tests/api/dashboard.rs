//! The manager's dashboard over HTTP, on both backends: one order followed
//! from picked to out through the gate, the summary (`GET /dashboard`)
//! checked at every step — its stage, how long it has waited there, its
//! customs state, the hour's picks, parcels and exits — and the exceptions
//! (`GET /exceptions`) it raises on the way (a weight mismatch, a gate
//! refusal) gone once they are dealt with. Then a short pick that sends an
//! order to the exception list with a bin to count, cancelled by the
//! manager. Only managers and admins read either.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::customs::{ceb622, signed};
use crate::gate::{bridge, gate_scan, gated_station};
use crate::helpers::{spawn_app, Backend, TestApp};
use crate::orders::order;
use crate::picking::WebPda;

async fn dashboard(app: &TestApp) -> Value {
    let (s, d) = app.get("/api/v1/dashboard").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    d
}

async fn exceptions(app: &TestApp) -> Vec<Value> {
    let (s, e) = app.get("/api/v1/exceptions").await;
    assert_eq!(s, StatusCode::OK, "{e}");
    e.as_array().unwrap().clone()
}

/// Stage `name`'s count and its longest-waiting order.
fn stage(d: &Value, name: &str) -> (i64, Option<String>) {
    let s = d["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name}: {d}"));
    (
        s["count"].as_i64().unwrap(),
        s["oldest_order_no"].as_str().map(str::to_string),
    )
}

/// Every stage with orders in it, in pipeline order.
fn busy(d: &Value) -> Vec<(String, i64)> {
    d["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["count"].as_i64().unwrap() > 0)
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// This hour's throughput: the last of the 24.
fn this_hour(d: &Value) -> Value {
    let hours = d["throughput"].as_array().unwrap();
    assert_eq!(hours.len(), 24, "{d}");
    let now = chrono::Utc::now();
    let last: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(hours[23]["hour"].clone()).unwrap();
    assert!(
        last <= now && now - last < chrono::Duration::hours(1),
        "{last} vs {now}"
    );
    hours[23].clone()
}

fn customs(d: &Value) -> Vec<(String, i64)> {
    d["customs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["state"].as_str().unwrap().to_string(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn kinds(items: &[Value]) -> Vec<&str> {
    items.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

both_backends!(
    the_dashboard_follows_an_order_from_picked_to_out,
    |b: Backend| async move {
        let Some((st, packer)) = gated_station(b).await else {
            return;
        };
        let app = &st.app;
        let _gate = bridge(app, "G1").await;
        let guard = app.user("gus", "guard").await;
        let gateway = app.user("gw", "integration").await;

        let d = dashboard(app).await;
        assert_eq!(busy(&d), vec![("picked".to_string(), 1)]);
        assert_eq!(stage(&d, "picked").1.as_deref(), Some("ORD-1"));
        let (_, o) = app.get("/api/v1/orders?state=picked").await;
        let entered: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(o[0]["state_at"].clone()).unwrap();
        let oldest = d["pipeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == "picked")
            .unwrap()["oldest_at"]
            .clone();
        assert_eq!(
            serde_json::from_value::<chrono::DateTime<chrono::Utc>>(oldest).unwrap(),
            entered
        );
        assert!(entered <= chrono::Utc::now());
        let hour = this_hour(&d);
        assert_eq!(
            (hour["pick_lines"].as_i64(), hour["units_picked"].as_i64()),
            (Some(1), Some(1)),
            "{hour}"
        );
        assert_eq!(
            (hour["parcels"].as_i64(), hour["exits"].as_i64()),
            (Some(0), Some(0)),
            "{hour}"
        );
        assert_eq!(customs(&d), vec![("no_receipt".to_string(), 1)]);
        assert!(exceptions(app).await.is_empty());

        // Weighed wrong: a weight mismatch waits for a person.
        st.place(400).await;
        let (s, e) = st.pack(&packer, 1).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("weight_mismatch")),
            "{e}"
        );
        let ex = exceptions(app).await;
        assert_eq!(kinds(&ex), vec!["weight_mismatch"], "{ex:?}");
        assert_eq!(ex[0]["order_no"], "ORD-1");
        assert_eq!(ex[0]["package_no"], "PKG-ORD-1");
        assert_eq!(ex[0]["actions"], json!(["override_weight", "cancel_order"]));
        assert!(
            ex[0]["detail"].as_str().unwrap().contains("weighed 400 g"),
            "{}",
            ex[0]
        );
        assert!(
            ex[0]["detail_zh"]
                .as_str()
                .unwrap()
                .starts_with("称得 400 克，应为 215"),
            "{}",
            ex[0]
        );
        let d = dashboard(app).await;
        assert_eq!(
            d["exceptions"],
            json!([{"kind": "weight_mismatch", "count": 1}])
        );

        // Weighed again, right: packed, and the mismatch is resolved.
        st.place(215).await;
        let (s, p) = st.pack(&packer, 1).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let d = dashboard(app).await;
        assert_eq!(busy(&d), vec![("awaiting_release".to_string(), 1)]);
        assert_eq!(this_hour(&d)["parcels"], 1);
        assert_eq!(d["exceptions"], json!([]));

        // Refused at the gate (no release yet): the refusal waits.
        let r = gate_scan(app, &guard, "PKG-ORD-1").await;
        assert_eq!(r["result"], "refused", "{r}");
        let ex = exceptions(app).await;
        assert_eq!(kinds(&ex), vec!["gate_refusal"], "{ex:?}");
        assert_eq!(ex[0]["id"], r["id"]);
        assert_eq!(
            ex[0]["detail_zh"].as_str().unwrap(),
            format!(
                "闸口 G1 拒绝 PKG-ORD-1：{}",
                r["reason_zh"].as_str().unwrap()
            )
        );
        assert_eq!(ex[0]["actions"], json!(["view_customs"]));

        // Customs releases it: ready for the gate.
        let (s, v) = signed(app, &gateway, ceb622("COP-ORD-1", 800, "20261123110000000")).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let d = dashboard(app).await;
        assert_eq!(busy(&d), vec![("released".to_string(), 1)]);
        assert_eq!(stage(&d, "released").1.as_deref(), Some("ORD-1"));
        assert_eq!(customs(&d), vec![("released".to_string(), 1)]);

        // Out through the gate: shipped, one exit this hour, the refusal gone.
        let r = gate_scan(app, &guard, "PKG-ORD-1").await;
        assert_eq!(r["result"], "open", "{r}");
        let d = dashboard(app).await;
        assert_eq!(busy(&d), vec![("shipped".to_string(), 1)]);
        assert_eq!(this_hour(&d)["exits"], 1);
        assert_eq!(customs(&d), vec![]);
        assert!(exceptions(app).await.is_empty());

        // Managers' screens only.
        for token in [&packer, &guard] {
            for path in ["/api/v1/dashboard", "/api/v1/exceptions"] {
                let (s, _) = app.call_as(Some(token), Method::GET, path, None).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
            }
        }
        st.finish().await;
    }
);

both_backends!(
    a_short_pick_with_nothing_elsewhere_is_an_exception_until_cancelled,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        app.receive("R-1", "A-01", 4).await;
        let (s, v) = app.post("/api/v1/orders", order("ORD-1", 4)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(
            busy(&dashboard(&app).await),
            vec![("locked".to_string(), 1)]
        );
        let (s, v) = app
            .post(
                "/api/v1/waves",
                json!({"wave_no": "W-1", "order_nos": ["ORD-1"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(
            busy(&dashboard(&app).await),
            vec![("picking".to_string(), 1)]
        );
        let mut pda = WebPda::new(&app, "pia").await;
        pda.scan_all(&["start", "TOTE-1", "#SHORT", "#EMPTY"]).await;
        let d = dashboard(&app).await;
        assert_eq!(busy(&d), vec![("exception".to_string(), 1)]);
        // A short pick is a finished pick line with nothing picked.
        let hour = this_hour(&d);
        assert_eq!(
            (hour["pick_lines"].as_i64(), hour["units_picked"].as_i64()),
            (Some(1), Some(0)),
            "{hour}"
        );
        let ex = exceptions(&app).await;
        assert_eq!(kinds(&ex), vec!["short_pick", "count_request"], "{ex:?}");
        assert_eq!(ex[0]["order_no"], "ORD-1");
        assert_eq!(ex[0]["actions"], json!(["cancel_order", "view_customs"]));
        assert!(
            ex[0]["detail"]
                .as_str()
                .unwrap()
                .contains("short at bin A-01"),
            "{}",
            ex[0]
        );
        assert!(
            ex[1]["detail"].as_str().unwrap().contains("A-01"),
            "{}",
            ex[1]
        );
        assert_eq!(
            ex[0]["detail_zh"],
            "第 1 行 SKU-1：库位 A-01 短缺 4 件（库位为空），其他库位没有可用库存"
        );
        assert_eq!(
            ex[1]["detail_zh"],
            "盘点库位 A-01 中的 SKU-1：拣货短缺（库位为空）"
        );
        assert_eq!(ex[1]["actions"], json!(["count_bin"]));

        let (s, v) = app
            .post(
                "/api/v1/orders/ORD-1/cancel",
                json!({"reason": "no stock for it"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let d = dashboard(&app).await;
        assert_eq!(busy(&d), vec![("cancelled".to_string(), 1)]);
        assert_eq!(kinds(&exceptions(&app).await), vec!["count_request"]);
        let (_, o) = app.get("/api/v1/orders?state=cancelled").await;
        assert_eq!(o[0]["reason"], "no stock for it");
        app.finish().await;
    }
);
