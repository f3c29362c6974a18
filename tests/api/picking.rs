//! Waves, pick tasks and the scan flow over HTTP (the browser PDA page), on
//! both backends: the happy path into a tote, wrong and replayed scans, short
//! picks made good from another bin or sent to the exception list, and an
//! order cancelled while it is being picked.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, TestApp};
use crate::orders::order;

/// From the first scan to the quantity prompt of a task at A-01, lot B1.
const TO_QTY_AT_A01: [&str; 5] = ["start", "TOTE-1", "A-01", "6901234567892", "B1"];

/// The browser PDA page, as a picker uses it.
pub struct WebPda<'a> {
    app: &'a TestApp,
    token: String,
    device: String,
    pub seq: u64,
}

impl<'a> WebPda<'a> {
    pub async fn new(app: &'a TestApp, picker: &str) -> WebPda<'a> {
        let token = app.user(picker, "picker").await;
        WebPda {
            app,
            token,
            device: format!("tab-{picker}"),
            seq: 0,
        }
    }

    pub async fn scan(&mut self, code: &str) -> Value {
        self.seq += 1;
        self.scan_seq(self.seq, code).await
    }

    /// Scans each code in turn: the steps a test is not about.
    pub async fn scan_all(&mut self, codes: &[&str]) {
        for code in codes {
            self.scan(code).await;
        }
    }

    pub async fn scan_seq(&self, seq: u64, code: &str) -> Value {
        let (s, b) = self
            .app
            .call_as(
                Some(&self.token),
                Method::POST,
                "/api/v1/pick-tasks/scan",
                Some(json!({"device": self.device, "seq": seq, "barcode": code})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "scan {code}: {b}");
        b
    }
}

fn expect(answer: &Value, ok: bool, next: &str) {
    assert_eq!(
        (answer["ok"].as_bool(), answer["next"].as_str()),
        (Some(ok), Some(next)),
        "{answer}"
    );
}

async fn holding(app: &TestApp, bin: &str) -> Value {
    let (_, b) = app
        .get(&format!("/api/v1/inventory?sku=SKU-1&bin={bin}"))
        .await;
    b["totals"].clone()
}

async fn wave(app: &TestApp, no: &str, orders: &[&str]) -> Value {
    let (s, w) = app
        .post("/api/v1/waves", json!({"wave_no": no, "order_nos": orders}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    w
}

/// A server with `stock` units of SKU-1 in bin A-01 and order ORD-1 for
/// `qty` of them in wave W-1; `None` where the backend is not available.
async fn waved(b: Backend, stock: i64, qty: i64) -> Option<TestApp> {
    let app = spawn_app(b).await?;
    app.seed().await;
    app.receive("R-1", "A-01", stock).await;
    app.post("/api/v1/orders", order("ORD-1", qty)).await;
    wave(&app, "W-1", &["ORD-1"]).await;
    Some(app)
}

both_backends!(
    a_picker_walks_an_order_into_a_tote,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        assert_eq!(app.receive("R-1", "A-01", 10).await.0, StatusCode::CREATED);
        assert_eq!(
            app.post("/api/v1/orders", order("ORD-1", 3)).await.0,
            StatusCode::CREATED
        );
        let w = wave(&app, "W-1", &["ORD-1"]).await;
        assert_eq!(w["tasks"].as_array().unwrap().len(), 1);
        assert_eq!(w["tasks"][0]["bin"], "A-01");
        assert_eq!(w["tasks"][0]["state"], "open");
        assert_eq!(app.get("/api/v1/orders/ORD-1").await.1["state"], "picking");
        // The same wave again is the same answer; the order cannot join twice.
        let (s, again) = app
            .post(
                "/api/v1/waves",
                json!({"wave_no": "W-1", "order_nos": ["ORD-1"]}),
            )
            .await;
        assert_eq!((s, &again), (StatusCode::CREATED, &w));
        let (s, e) = app
            .post(
                "/api/v1/waves",
                json!({"wave_no": "W-2", "order_nos": ["ORD-1"]}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

        let mut pda = WebPda::new(&app, "pia").await;
        let a = pda.scan("hello").await;
        expect(&a, true, "tote");
        assert!(a["text"].as_str().unwrap().contains("ORD-1"), "{a}");
        let a = pda.scan("TOTE-7").await;
        expect(&a, true, "bin");
        assert!(a["text"].as_str().unwrap().contains("[A-01]"), "{a}");
        expect(&pda.scan("A-01").await, true, "item");
        expect(&pda.scan("6901234567892").await, true, "lot");
        let a = pda.scan("B1").await;
        expect(&a, true, "qty");
        assert!(a["text"].as_str().unwrap().contains("1 of 3"), "{a}");
        let done = pda.scan("3").await;
        expect(&done, true, "done");
        assert!(
            done["text"]
                .as_str()
                .unwrap()
                .starts_with("Picked 3 × SKU-1 into TOTE-7"),
            "{done}"
        );

        let (_, o) = app.get("/api/v1/orders/ORD-1").await;
        assert_eq!(
            (o["state"].as_str(), o["tote"].as_str()),
            (Some("picked"), Some("TOTE-7"))
        );
        assert_eq!(o["lines"][0]["allocations"][0]["bin"], "TOTE-7");
        // The books say where the goods are: in the tote, still reserved.
        assert_eq!(
            holding(&app, "A-01").await,
            json!({"available": 7, "locked": 0, "defective": 0, "total": 7})
        );
        assert_eq!(
            holding(&app, "TOTE-7").await,
            json!({"available": 0, "locked": 3, "defective": 0, "total": 3})
        );
        let (_, tasks) = app.get("/api/v1/pick-tasks?order_no=ORD-1").await;
        assert_eq!(tasks[0]["state"], "picked");
        assert_eq!(tasks[0]["picker"], "pia");
        assert_eq!(tasks[0]["tote"], "TOTE-7");
        let (_, moves) = app.get("/api/v1/inventory/movements?sku=SKU-1").await;
        let kinds: Vec<&str> = moves["movements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "pick").count(),
            2,
            "{kinds:?}"
        );
        // The bonded ledger still balances: a pick moves goods, it does not ship them.
        let (_, rec) = app.get("/api/v1/inventory/reconciliation?sku=SKU-1").await;
        assert_eq!(rec[0]["balanced"], true, "{rec}");
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    wrong_and_replayed_scans_change_nothing,
    |b: Backend| async move {
        let Some(app) = waved(b, 10, 2).await else {
            return;
        };
        let mut pda = WebPda::new(&app, "pia").await;
        pda.scan("start").await;
        // Not a tote, then a bin label where a tote is wanted.
        expect(&pda.scan("A-01").await, false, "tote");
        expect(&pda.scan("TOTE-1").await, true, "bin");
        let wrong = pda.scan("A-02").await;
        expect(&wrong, false, "bin");
        assert_eq!(wrong["text"], "Wrong bin A-02. Go to [A-01]");
        assert_eq!(wrong["text_zh"], "库位错误 A-02。请去 [A-01]");
        assert_eq!(wrong["tone"], "error");
        expect(&pda.scan("A-01").await, true, "item");
        let wrong = pda.scan("4006381333931").await;
        expect(&wrong, false, "item");
        assert!(
            wrong["text"].as_str().unwrap().contains("[6901234567892]"),
            "{wrong}"
        );
        // A GS1 code with the wrong batch is refused; with the right one it
        // counts the unit and skips the lot label.
        expect(&pda.scan("(01)06901234567892(10)B9").await, false, "item");
        expect(&pda.scan("0106901234567892\u{1d}10B1").await, true, "qty");
        let before = pda.seq;
        let confirm = pda.scan("6901234567892").await;
        expect(&confirm, true, "done");
        assert!(
            confirm["text_zh"]
                .as_str()
                .unwrap()
                .starts_with("已拣 2 × SKU-1 装入 TOTE-1。暂无拣货任务"),
            "{confirm}"
        );
        // The PDA sends the same scan again: the same answer, no second pick.
        assert_eq!(pda.scan_seq(before + 1, "6901234567892").await, confirm);
        assert_eq!(holding(&app, "TOTE-1").await["locked"], 2);
        // A used sequence number with another code is refused.
        let (s, e) = app
            .call_as(
                Some(&pda.token),
                Method::POST,
                "/api/v1/pick-tasks/scan",
                Some(json!({"device": pda.device, "seq": before + 1, "barcode": "X"})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        // Malformed bodies and scans are refused with a reason.
        for bad in [
            json!({"device": "t", "seq": -1, "barcode": "A"}),
            json!({"device": "t", "seq": 1, "barcode": ""}),
            json!({"device": "t", "seq": 1, "barcode": "A\u{7}B"}),
            json!({"device": "t", "seq": 1}),
        ] {
            let (s, e) = app
                .call_as(
                    Some(&pda.token),
                    Method::POST,
                    "/api/v1/pick-tasks/scan",
                    Some(bad.clone()),
                )
                .await;
            assert!(s.is_client_error(), "{bad} → {s} {e}");
        }
        assert_eq!(holding(&app, "TOTE-1").await["locked"], 2);
        assert_eq!(holding(&app, "A-01").await["available"], 8);
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    a_damaged_short_pick_is_made_good_from_another_bin,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        app.receive("R-1", "A-01", 3).await;
        app.receive("R-2", "A-02", 5).await;
        app.post("/api/v1/orders", order("ORD-1", 3)).await;
        wave(&app, "W-1", &["ORD-1"]).await;
        let mut pda = WebPda::new(&app, "pia").await;
        pda.scan_all(&TO_QTY_AT_A01).await;
        // One good unit; the other two are crushed.
        let r = pda.scan("1").await;
        expect(&r, true, "reason");
        assert_eq!(r["tone"], "warning");
        let next = pda.scan("#DAMAGED").await;
        expect(&next, true, "bin");
        assert_eq!(next["tone"], "warning");
        let text = next["text"].as_str().unwrap();
        assert!(
            text.contains("Short 2 (damaged)") && text.contains("[A-02]"),
            "{next}"
        );
        assert_eq!(
            holding(&app, "A-01").await,
            json!({"available": 0, "locked": 0, "defective": 2, "total": 2})
        );
        assert_eq!(holding(&app, "A-02").await["locked"], 2);
        // The picker carries on to A-02 for the rest.
        pda.scan_all(&["A-02", "6901234567892", "B1"]).await;
        expect(&pda.scan("2").await, true, "done");
        let (_, o) = app.get("/api/v1/orders/ORD-1").await;
        assert_eq!(o["state"], "picked", "{o}");
        assert_eq!(holding(&app, "TOTE-1").await["locked"], 3);
        let (_, tasks) = app.get("/api/v1/pick-tasks?order_no=ORD-1").await;
        let states: Vec<(&str, &str, i64)> = tasks
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["bin"].as_str().unwrap(),
                    t["state"].as_str().unwrap(),
                    t["picked_qty"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(states, vec![("A-01", "short", 1), ("A-02", "picked", 2)]);
        assert_eq!(tasks[0]["short_reason"], "damaged");
        // Damage is not a missing count: no count request.
        assert_eq!(
            app.get("/api/v1/inventory/count-requests").await.1,
            json!([])
        );
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    an_empty_bin_with_no_stock_elsewhere_sends_the_order_to_exceptions,
    |b: Backend| async move {
        let Some(app) = waved(b, 4, 4).await else {
            return;
        };
        let mut pda = WebPda::new(&app, "pia").await;
        pda.scan_all(&["start", "TOTE-1"]).await;
        // Nothing in the bin at all.
        expect(&pda.scan("#SHORT").await, true, "reason");
        expect(&pda.scan("#OK").await, false, "reason");
        let next = pda.scan("#EMPTY").await;
        expect(&next, true, "done");
        assert!(
            next["text"].as_str().unwrap().contains("to exceptions"),
            "{next}"
        );
        let (_, o) = app.get("/api/v1/orders/ORD-1").await;
        assert_eq!(o["state"], "exception");
        assert!(
            o["exception_reason"]
                .as_str()
                .unwrap()
                .contains("4 short at bin A-01"),
            "{o}"
        );
        let (_, list) = app.get("/api/v1/orders?state=exception").await;
        assert_eq!(list[0]["order_no"], "ORD-1");
        // The missing units are released but the bin is not used again
        // until it is counted.
        assert_eq!(holding(&app, "A-01").await["available"], 4);
        let (_, req) = app.get("/api/v1/inventory/count-requests").await;
        assert_eq!(
            (req[0]["bin"].as_str(), req[0]["sku"].as_str()),
            (Some("A-01"), Some("SKU-1"))
        );
        let (s, e) = app.post("/api/v1/orders", order("ORD-2", 1)).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        // The count finds the bin empty: the request closes, an adjustment
        // waits for approval, and nothing can be sold from it meanwhile.
        let (s, c) = app
            .post(
                "/api/v1/inventory/counts",
                json!({"count_no": "C-1", "bin": "A-01", "lines": [{"sku": "SKU-1", "batch": "B1", "counted": 0}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(
            app.get("/api/v1/inventory/count-requests").await.1,
            json!([])
        );
        // Cancelling the exception releases what is left of it.
        let (s, o) = app
            .post(
                "/api/v1/orders/ORD-1/cancel",
                json!({"reason": "out of stock"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{o}");
        assert_eq!(holding(&app, "A-01").await["locked"], 0);
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    cancelling_mid_pick_gives_the_stock_back_and_tells_the_picker,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        app.receive("R-1", "A-01", 2).await;
        app.receive("R-2", "A-02", 5).await;
        // 2 from A-01 (walked first), 3 from A-02.
        let (s, o) = app.post("/api/v1/orders", order("ORD-1", 5)).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        let w = wave(&app, "W-1", &["ORD-1"]).await;
        let bins: Vec<&str> = w["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["bin"].as_str().unwrap())
            .collect();
        assert_eq!(bins, vec!["A-01", "A-02"]);
        let mut pda = WebPda::new(&app, "pia").await;
        pda.scan_all(&TO_QTY_AT_A01).await;
        let next = pda.scan("2").await;
        expect(&next, true, "bin");
        assert!(next["text"].as_str().unwrap().contains("[A-02]"));
        let (s, o) = app
            .post(
                "/api/v1/orders/ORD-1/cancel",
                json!({"reason": "buyer cancelled"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{o}");
        // Everything reserved is free again: the tote's two units wait there
        // to be put back, A-02's three were never moved.
        assert_eq!(
            holding(&app, "TOTE-1").await,
            json!({"available": 2, "locked": 0, "defective": 0, "total": 2})
        );
        assert_eq!(
            holding(&app, "A-02").await,
            json!({"available": 5, "locked": 0, "defective": 0, "total": 5})
        );
        let gone = pda.scan("A-02").await;
        expect(&gone, true, "done");
        assert!(
            gone["text"]
                .as_str()
                .unwrap()
                .starts_with("Order ORD-1 was cancelled"),
            "{gone}"
        );
        let (_, tasks) = app.get("/api/v1/pick-tasks?order_no=ORD-1").await;
        let states: Vec<&str> = tasks
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, vec!["picked", "cancelled"]);
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    waves_take_the_oldest_orders_and_managers_assign_them,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        app.receive("R-1", "A-01", 20).await;
        for i in 1..=3 {
            app.post("/api/v1/orders", order(&format!("ORD-{i}"), 1))
                .await;
        }
        let (s, w) = app
            .post("/api/v1/waves", json!({"wave_no": "W-1", "max_orders": 2}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{w}");
        assert_eq!(w["order_nos"], json!(["ORD-1", "ORD-2"]));
        let pia = app.user("pia", "picker").await;
        let (s, t) = app
            .post(
                "/api/v1/pick-tasks/assign",
                json!({"order_no": "ORD-2", "picker": "pia"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        assert_eq!(
            (t[0]["state"].as_str(), t[0]["picker"].as_str()),
            (Some("assigned"), Some("pia"))
        );
        let (_, open) = app.get("/api/v1/pick-tasks?state=open").await;
        assert_eq!(open.as_array().unwrap().len(), 1);
        // A picker sees their own tasks only; another picker's are refused.
        let pete = app.user("pete", "picker").await;
        for (token, query, status, orders) in [
            (&pia, "", StatusCode::OK, vec!["ORD-2"]),
            (&pia, "?picker=pia", StatusCode::OK, vec!["ORD-2"]),
            (&pete, "", StatusCode::OK, vec![]),
            (&pete, "?picker=pia", StatusCode::FORBIDDEN, vec![]),
        ] {
            let (s, tasks) = app
                .call_as(
                    Some(token),
                    Method::GET,
                    &format!("/api/v1/pick-tasks{query}"),
                    None,
                )
                .await;
            assert_eq!(s, status, "{query}: {tasks}");
            if s == StatusCode::OK {
                let got: Vec<&str> = tasks
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["order_no"].as_str().unwrap())
                    .collect();
                assert_eq!(got, orders, "{query}");
            }
        }
        // A packer may not cut waves; an unknown picker is refused.
        let packer = app.user("pat", "packer").await;
        let (s, _) = app
            .call_as(
                Some(&packer),
                Method::POST,
                "/api/v1/waves",
                Some(json!({"wave_no": "W-9"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = app
            .post(
                "/api/v1/pick-tasks/assign",
                json!({"order_no": "ORD-1", "picker": "nobody"}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = app
            .post(
                "/api/v1/waves",
                json!({"wave_no": "W-3", "order_nos": ["ORD-404"]}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        app.finish().await;
    }
);

// A PDA that gets no answer sends its scan again, maybe several times before
// the first is answered: on SQLite these may land in one group commit, where
// the repeat finds the first's stored answer inside the same transaction.
both_backends!(
    the_same_scan_sent_many_times_at_once_is_done_once,
    |b: Backend| async move {
        let Some(app) = waved(b, 10, 2).await else {
            return;
        };
        let mut pda = WebPda::new(&app, "pia").await;
        pda.scan_all(&TO_QTY_AT_A01).await;
        pda.seq += 1;
        let seq = pda.seq;
        let answers = futures::future::join_all((0..16).map(|_| pda.scan_seq(seq, "2"))).await;
        for a in &answers {
            assert_eq!(a, &answers[0], "every repeat gets the first answer");
        }
        expect(&answers[0], true, "done");
        assert_eq!(holding(&app, "A-01").await["locked"], 0);
        assert_eq!(holding(&app, "TOTE-1").await["locked"], 2, "picked once");
        assert_eq!(holding(&app, "TOTE-1").await["total"], 2);
        app.integrity_clean().await;
        app.finish().await;
    }
);
