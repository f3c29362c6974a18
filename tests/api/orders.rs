//! Order intake with FEFO reservation, cancellation, personal data at rest,
//! and 32 clients racing for the last units — on both backends.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, TestApp};

pub const BUYER_ID: &str = "11010519491231002X";

/// An order of `qty` units of SKU-1 at 50.00, consistent in every amount.
pub fn order(no: &str, qty: i64) -> Value {
    order_lines(no, &[("SKU-1", qty, "50.00")])
}

pub fn order_lines(no: &str, lines: &[(&str, i64, &str)]) -> Value {
    let goods: rust_decimal::Decimal = lines
        .iter()
        .map(|(_, q, p)| {
            p.parse::<rust_decimal::Decimal>().unwrap() * rust_decimal::Decimal::from(*q)
        })
        .sum();
    let tax = (goods * rust_decimal::Decimal::new(91, 3)).round_dp(2);
    let paid = goods + rust_decimal::Decimal::from(10) + tax;
    json!({
        "order_no": no, "trade_mode": "1210", "ebp_code": "3301964J31", "ebc_code": "3301964J31", "cop_no": format!("COP-{no}"),
        "buyer": {"name": "张三", "id_number": BUYER_ID, "phone": "13812345678"},
        "consignee": {"name": "张三", "phone": "13912345678", "address": "浙江省杭州市西湖区文三路 1 号"},
        "lines": lines.iter().map(|(s, q, p)| json!({"sku": s, "qty": q, "unit_price": p})).collect::<Vec<_>>(),
        "goods_value": goods.to_string(), "freight": "10.00", "discount": "0", "tax": tax.to_string(),
        "actual_paid": paid.to_string(),
    })
}

async fn receive_lot(app: &TestApp, no: &str, bin: &str, batch: &str, expiry: &str, qty: i64) {
    let (s, b) = app
        .post(
            "/api/v1/receipts",
            json!({"receipt_no": no, "customs_doc_no": "QD-IN-1", "lines": [
            {"sku": "SKU-1", "bin": bin, "batch": batch, "expiry": expiry, "qty": qty}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// A second SKU, SKU-2.
async fn add_toner(app: &TestApp) {
    let toner = json!({"code": "SKU-2", "name": "Toner", "unit_weight_grams": 200});
    let (s, b) = app.post("/api/v1/skus", toner).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

async fn totals(app: &TestApp) -> Value {
    app.get("/api/v1/inventory?sku=SKU-1").await.1["totals"].clone()
}

both_backends!(
    an_order_reserves_earliest_expiry_first_from_sellable_bins,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        receive_lot(&app, "R-1", "A-01", "LATE", "2029-01-01", 5).await;
        receive_lot(&app, "R-2", "A-02", "EARLY", "2027-03-01", 3).await;
        receive_lot(&app, "R-3", "Q-01", "EARLIEST", "2027-01-01", 50).await; // quarantined
        receive_lot(&app, "R-4", "A-01", "EXPIRED", "2020-01-01", 50).await;
        let (s, o) = app.post("/api/v1/orders", order("ORD-1", 6)).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        assert_eq!(o["state"], "locked");
        let allocs = o["lines"][0]["allocations"].as_array().unwrap();
        let picked: Vec<(&str, i64)> = allocs
            .iter()
            .map(|a| (a["batch"].as_str().unwrap(), a["qty"].as_i64().unwrap()))
            .collect();
        assert_eq!(picked, vec![("EARLY", 3), ("LATE", 3)]);
        // Personal data is masked in every answer.
        assert_eq!(o["buyer"]["id_number"], "1101**********002X");
        assert_eq!(o["buyer"]["phone"], "138****5678");
        assert!(!o.to_string().contains(BUYER_ID) && !o.to_string().contains("13812345678"));
        assert_eq!(totals(&app).await["locked"], 6);
        let (_, again) = app.get("/api/v1/orders/ORD-1").await;
        assert_eq!(again, o);
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    a_short_order_reserves_nothing_and_says_which_lines,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        add_toner(&app).await;
        receive_lot(&app, "R-1", "A-01", "B1", "2028-01-01", 4).await;
        let before = app.get("/api/v1/inventory/movements?limit=1000").await.1["movements"]
            .as_array()
            .unwrap()
            .len();
        let (s, p) = app
            .post(
                "/api/v1/orders",
                order_lines(
                    "ORD-1",
                    &[
                        ("SKU-1", 3, "10.00"),
                        ("SKU-2", 1, "20.00"),
                        ("SKU-1", 2, "10.00"),
                    ],
                ),
            )
            .await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::CONFLICT, Some("insufficient_stock")),
            "{p}"
        );
        let lines = p["facts"]["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 2, "{p}");
        assert_eq!(
            (lines[0]["line_no"].as_i64(), lines[0]["available"].as_i64()),
            (Some(2), Some(0))
        );
        assert_eq!(
            (
                lines[1]["line_no"].as_i64(),
                lines[1]["requested"].as_i64(),
                lines[1]["available"].as_i64()
            ),
            (Some(3), Some(2), Some(1))
        );
        assert_eq!(totals(&app).await["locked"], 0);
        let after = app.get("/api/v1/inventory/movements?limit=1000").await.1["movements"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(before, after);
        assert_eq!(
            app.get("/api/v1/orders/ORD-1").await.0,
            StatusCode::NOT_FOUND
        );
        app.finish().await;
    }
);

both_backends!(
    orders_that_break_the_rules_are_refused,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        receive_lot(&app, "R-1", "A-01", "B1", "2028-01-01", 500).await;
        let mut bad_id = order("O-1", 1);
        bad_id["buyer"]["id_number"] = json!("110105194912310021");
        let mut bad_paid = order("O-2", 1);
        bad_paid["actual_paid"] = json!("1.00");
        let mut float_money = order("O-3", 1);
        float_money["freight"] = json!(10.0);
        let mut bad_phone = order("O-4", 1);
        bad_phone["consignee"]["phone"] = json!("none");
        let cases = [
            (bad_id, "validation_failed", "check character"),
            (bad_paid, "validation_failed", "actual paid"),
            (float_money, "validation_failed", "string"),
            (bad_phone, "validation_failed", "consignee phone"),
            (
                order_lines("O-5", &[("SKU-1", 101, "50.00")]),
                "validation_failed",
                "5000",
            ),
            (
                order_lines("O-6", &[("NOPE", 1, "50.00")]),
                "unknown_sku",
                "NOPE",
            ),
        ];
        for (body, code, says) in cases {
            let (s, p) = app.post("/api/v1/orders", body).await;
            assert_eq!(p["code"], code, "{p}");
            assert!(s.is_client_error());
            assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
            assert!(
                !p.to_string().contains(BUYER_ID),
                "a refusal must not echo the ID number: {p}"
            );
        }
        let mut revoked = app.get("/api/v1/skus/SKU-1").await.1;
        for k in ["created_at", "updated_at"] {
            revoked.as_object_mut().unwrap().remove(k);
        }
        revoked["record_status"] = json!("revoked");
        let (s, _) = app
            .call_as(
                Some(&app.token),
                Method::PUT,
                "/api/v1/skus/SKU-1",
                Some(revoked),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let (s, p) = app.post("/api/v1/orders", order("O-7", 1)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
        assert_eq!(
            totals(&app).await["locked"],
            0,
            "no refused order reserved anything"
        );
        app.finish().await;
    }
);

both_backends!(
    cancelling_releases_exactly_what_was_reserved,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        receive_lot(&app, "R-1", "A-01", "B1", "2028-01-01", 10).await;
        let (_, o) = app.post("/api/v1/orders", order("ORD-1", 4)).await;
        let (s, again) = app.post("/api/v1/orders", order("ORD-1", 4)).await;
        assert_eq!(
            (s, &again),
            (StatusCode::CREATED, &o),
            "a repeated order is the same order"
        );
        let (s, p) = app.post("/api/v1/orders", order("ORD-1", 5)).await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::CONFLICT, Some("idempotency_conflict"))
        );
        let (_, o2) = app.post("/api/v1/orders", order("ORD-2", 3)).await;
        assert_eq!(totals(&app).await["locked"], 7);
        let lock = o["lines"][0]["allocations"][0]["lock_id"].as_i64().unwrap();
        let (s, p) = app
            .post(
                &format!("/api/v1/inventory/locks/{lock}/release"),
                json!({}),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "an order's stock is released only by cancelling it: {p}"
        );

        let (s, c) = app
            .post(
                "/api/v1/orders/ORD-1/cancel",
                json!({"reason": "buyer changed their mind"}),
            )
            .await;
        assert_eq!(
            (s, c["state"].as_str()),
            (StatusCode::OK, Some("cancelled")),
            "{c}"
        );
        assert_eq!(c["lines"][0]["allocations"][0]["state"], "released");
        assert_eq!(
            totals(&app).await,
            json!({"available": 7, "locked": 3, "defective": 0, "total": 10})
        );
        let (s, c2) = app.post("/api/v1/orders/ORD-1/cancel", json!({})).await;
        assert_eq!((s, c2), (StatusCode::OK, c));
        assert_eq!(
            totals(&app).await["locked"],
            3,
            "a second cancel releases nothing more"
        );
        assert_eq!(o2["state"], "locked");
        let (s, _) = app.post("/api/v1/orders/NOPE/cancel", json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, list) = app.get("/api/v1/orders?state=locked").await;
        assert_eq!(list.as_array().unwrap().len(), 1);
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(personal_data_is_sealed_at_rest, |b: Backend| async move {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed().await;
    receive_lot(&app, "R-1", "A-01", "B1", "2028-01-01", 10).await;
    let (s, _) = app.post("/api/v1/orders", order("ORD-1", 1)).await;
    assert_eq!(s, StatusCode::CREATED);
    let dump = app
        .db
        .raw_strings("SELECT buyer_id_sealed || buyer_phone_sealed || consignee_phone_sealed || buyer_ref || buyer_id_masked FROM orders")
        .await;
    let row = &dump[0];
    for secret in [BUYER_ID, "13812345678", "13912345678", "19491231"] {
        assert!(!row.contains(secret), "{secret} stored in the clear");
    }
    // Nor in the stored idempotent answer or the operation log.
    let ops = app
        .db
        .raw_strings("SELECT COALESCE(response, '') || request_hash FROM operations")
        .await;
    assert!(ops
        .iter()
        .all(|o| !o.contains(BUYER_ID) && !o.contains("13812345678")));
    app.finish().await;
});

both_backends!(
    the_annual_limit_warns_and_cancelled_orders_do_not_count,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        receive_lot(&app, "R-1", "A-01", "B1", "2028-01-01", 1000).await;
        // Five orders of 4,592.20 paid (4,200 goods + 10 freight + 382.20 tax): 22,961.
        for i in 0..5 {
            let (s, o) = app
                .post(
                    "/api/v1/orders",
                    order_lines(&format!("Y-{i}"), &[("SKU-1", 84, "50.00")]),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{o}");
            assert_eq!(o["warnings"], json!([]));
        }
        let (_, o) = app
            .post(
                "/api/v1/orders",
                order_lines("Y-5", &[("SKU-1", 60, "50.00")]),
            )
            .await;
        assert_eq!(
            o["warnings"].as_array().unwrap().len(),
            1,
            "22,961 + 3,283 passes 26,000: {o}"
        );
        assert!(o["warnings"][0].as_str().unwrap().contains("26000"));
        app.post("/api/v1/orders/Y-5/cancel", json!({})).await;
        app.post("/api/v1/orders/Y-4/cancel", json!({})).await;
        let (_, o) = app
            .post(
                "/api/v1/orders",
                order_lines("Y-6", &[("SKU-1", 60, "50.00")]),
            )
            .await;
        assert_eq!(
            o["warnings"],
            json!([]),
            "cancelled orders are not purchases: {o}"
        );
        app.finish().await;
    }
);

both_backends!(
    thirty_two_clients_racing_for_the_last_units_never_oversell,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        receive_lot(&app, "R-1", "A-01", "B1", "2028-01-01", 25).await;
        receive_lot(&app, "R-2", "A-02", "B2", "2027-06-01", 15).await;
        let integration = app.user("platform", "integration").await;
        let app = std::sync::Arc::new(app);
        let mut tasks = Vec::new();
        for c in 0..32 {
            let (app, token) = (app.clone(), integration.clone());
            tasks.push(tokio::spawn(async move {
                let (s, body) = app
                    .call_as(
                        Some(&token),
                        Method::POST,
                        "/api/v1/orders",
                        Some(order(&format!("RACE-{c}"), 3)),
                    )
                    .await;
                match s {
                    StatusCode::CREATED => true,
                    StatusCode::CONFLICT => {
                        assert_eq!(body["code"], "insufficient_stock", "{body}");
                        false
                    }
                    other => panic!("order answered {other}: {body}"),
                }
            }));
        }
        let mut won = 0;
        for t in tasks {
            if t.await.unwrap() {
                won += 1;
            }
        }
        assert_eq!(won, 13, "40 units make 13 orders of 3");
        assert_eq!(
            totals(&app).await,
            json!({"available": 1, "locked": 39, "defective": 0, "total": 40})
        );
        app.integrity_clean().await;
        match std::sync::Arc::try_unwrap(app) {
            Ok(app) => app.finish().await,
            Err(_) => panic!("tasks still hold the app"),
        }
    }
);

// Orders arriving together are committed together on SQLite (the group-commit
// writer, `store::batch`): each order runs in its own savepoint, so a refused
// order leaves nothing behind and the accepted ones around it all stay.
both_backends!(
    refused_orders_among_concurrent_ones_leave_nothing_behind,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        receive_lot(&app, "R-1", "A-01", "B1", "2028-01-01", 40).await;
        let movements_before = app.get("/api/v1/inventory/movements?limit=1000").await.1
            ["movements"]
            .as_array()
            .unwrap()
            .len();
        // 24 orders of one unit fit; 12 ask for more than there is; 12 name
        // an unknown SKU beside a good line.
        let body = |c: usize| match c % 4 {
            0 | 1 => order(&format!("MIX-{c}"), 1),
            2 => order(&format!("MIX-{c}"), 41),
            _ => order_lines(
                &format!("MIX-{c}"),
                &[("SKU-1", 1, "50.00"), ("SKU-NOPE", 1, "50.00")],
            ),
        };
        let calls = (0..48).map(|c| {
            let app = &app;
            async move { (c, app.post("/api/v1/orders", body(c)).await) }
        });
        for (c, (s, p)) in futures::future::join_all(calls).await {
            match c % 4 {
                0 | 1 => assert_eq!(s, StatusCode::CREATED, "MIX-{c}: {p}"),
                2 => assert_eq!(
                    (s, p["code"].as_str()),
                    (StatusCode::CONFLICT, Some("insufficient_stock")),
                    "MIX-{c}: {p}"
                ),
                _ => assert_eq!(
                    (s, p["code"].as_str()),
                    (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_sku")),
                    "MIX-{c}: {p}"
                ),
            }
        }
        assert_eq!(
            totals(&app).await,
            json!({"available": 16, "locked": 24, "defective": 0, "total": 40})
        );
        let movements = app.get("/api/v1/inventory/movements?limit=1000").await.1["movements"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(
            movements,
            movements_before + 24,
            "one lock movement per accepted order"
        );
        let (_, listed) = app.get("/api/v1/orders?limit=1000").await;
        let mut nos: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_no"].as_str().unwrap())
            .collect();
        nos.sort();
        let mut want: Vec<String> = (0..48)
            .filter(|c| c % 4 < 2)
            .map(|c| format!("MIX-{c}"))
            .collect();
        want.sort();
        assert_eq!(nos, want);
        // A refused order kept no claim on its number: the same number with a
        // different (good) request is taken, not refused as a reuse.
        for c in (0..48).filter(|c| c % 4 >= 2) {
            assert_eq!(
                app.get(&format!("/api/v1/orders/MIX-{c}")).await.0,
                StatusCode::NOT_FOUND
            );
            if c % 4 == 2 {
                let (s, p) = app
                    .post("/api/v1/orders", order(&format!("MIX-{c}"), 1))
                    .await;
                assert_eq!(s, StatusCode::CREATED, "MIX-{c} again: {p}");
            }
        }
        assert_eq!(totals(&app).await["locked"], 36);
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    the_same_order_sent_many_times_at_once_is_one_order,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        receive_lot(&app, "R-1", "A-01", "B1", "2028-01-01", 30).await;
        let calls = (0..24).map(|_| app.post("/api/v1/orders", order("DUP-1", 2)));
        let answers = futures::future::join_all(calls).await;
        let first = &answers[0].1;
        for (s, p) in &answers {
            assert_eq!(*s, StatusCode::CREATED, "{p}");
            assert_eq!(p, first, "a replay answers exactly what the first did");
        }
        // The same number with other content, at once: refused, never merged.
        let calls = (0..8).map(|_| app.post("/api/v1/orders", order("DUP-1", 3)));
        for (s, p) in futures::future::join_all(calls).await {
            assert_eq!(
                (s, p["code"].as_str()),
                (StatusCode::CONFLICT, Some("idempotency_conflict")),
                "{p}"
            );
        }
        let (_, listed) = app.get("/api/v1/orders?limit=1000").await;
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(totals(&app).await["locked"], 2);
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    a_many_line_order_answers_as_it_reads_back,
    |b: Backend| async move {
        // Intake builds its answer from what it wrote instead of reading
        // the order back: lines sharing a SKU, lines split over several
        // holdings and a lot without expiry must all come out exactly as
        // GET /orders/{no} reads them.
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        add_toner(&app).await;
        let (s, b) = app
            .post(
                "/api/v1/receipts",
                json!({"receipt_no": "R-1", "customs_doc_no": "QD-IN-1", "lines": [
                    {"sku": "SKU-1", "bin": "A-01", "batch": "B-LATE", "expiry": "2029-01-01", "qty": 4},
                    {"sku": "SKU-1", "bin": "A-02", "batch": "B-EARLY", "expiry": "2027-06-01", "qty": 2},
                    {"sku": "SKU-1", "bin": "A-01", "batch": "B-EARLY", "expiry": "2027-06-01", "qty": 1},
                    {"sku": "SKU-2", "bin": "A-02", "batch": "T-NONE", "qty": 3},
                    {"sku": "SKU-2", "bin": "A-01", "batch": "T-DATED", "expiry": "2028-01-01", "qty": 1}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let body = order_lines(
            "ORD-MANY",
            &[
                ("SKU-2", 3, "20.00"),
                ("SKU-1", 4, "10.00"),
                ("SKU-1", 2, "10.00"),
            ],
        );
        let (s, o) = app.post("/api/v1/orders", body.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        let (_, again) = app.get("/api/v1/orders/ORD-MANY").await;
        assert_eq!(again, o);
        // What the lines took, earliest expiry first, undated last.
        let took = |line: usize| -> Vec<(String, i64)> {
            o["lines"][line]["allocations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["batch"].as_str().unwrap().to_string(),
                        a["qty"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(took(0), vec![("T-DATED".into(), 1), ("T-NONE".into(), 2)]);
        let sku1: i64 = took(1).iter().chain(took(2).iter()).map(|t| t.1).sum();
        assert_eq!(sku1, 6);
        assert_eq!(took(1)[0].0, "B-EARLY", "line 1 is allocated first: {o}");
        let locked = app.get("/api/v1/inventory").await.1["totals"]["locked"].clone();
        assert_eq!(locked, 9);
        // A replay answers the same, byte for byte, and books nothing more.
        let (s, replay) = app.post("/api/v1/orders", body).await;
        assert!(s.is_success(), "{s} {replay}");
        assert_eq!(replay, o);
        // Cancelling releases exactly those reservations.
        let (s, c) = app
            .post(
                "/api/v1/orders/ORD-MANY/cancel",
                json!({"reason": "buyer cancelled"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{c}");
        assert_eq!(app.get("/api/v1/inventory").await.1["totals"]["locked"], 0);
        app.integrity_clean().await;
        app.finish().await;
    }
);
