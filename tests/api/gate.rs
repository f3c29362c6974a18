//! The outbound gate's decision end to end: a parcel picked, packed on the
//! simulated scale with its label printed, then scanned at the gate while
//! its customs receipts arrive (2, 120, 399: refused; 800: open, stock
//! shipped in the same transaction; again: already exited), on both backends.

use std::time::Duration;

use bondgate_protocol::scale::ScaleProtocol;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::customs::{ceb622, signed};
use crate::helpers::Backend;
use crate::packing::ready;

both_backends!(
    the_gate_opens_only_for_a_packed_parcel_with_a_release,
    |b: Backend| async move {
        let Some((st, packer)) = ready(
            b,
            ScaleProtocol::YaohuaA9,
            Duration::from_millis(200),
            "ORD-1",
            1,
        )
        .await
        else {
            return;
        };
        let app = &st.app;
        let guard = app.user("gus", "guard").await;
        let scan = |code: &'static str| {
            let guard = guard.clone();
            async move {
                let (s, d) = app
                    .call_as(
                        Some(&guard),
                        Method::POST,
                        "/api/v1/gates/G1/scans",
                        Some(json!({"code": code})),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{d}");
                d
            }
        };
        let expect = |d: &Value, decision: &str, reason: &str| {
            assert_eq!(
                (d["decision"].as_str(), d["reason_code"].as_str()),
                (Some(decision), Some(reason)),
                "{d}"
            );
        };
        // Not packed yet.
        expect(&scan("PKG-ORD-1").await, "refuse", "unknown_parcel");
        st.place(215).await;
        let (s, p) = st.pack(&packer, 1).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let d = scan("BG0000000001").await;
        assert_eq!(d["decision"], "refuse", "no receipt yet: {d}");
        assert!(
            d["reason_zh"].as_str().is_some_and(|t| !t.is_empty()),
            "{d}"
        );

        let gateway = app.user("gw", "integration").await;
        for (status, time) in [
            (2, "20261123100000000"),
            (120, "20261123100100000"),
            (399, "20261123100200000"),
        ] {
            assert_eq!(
                signed(app, &gateway, ceb622("COP-ORD-1", status, time))
                    .await
                    .0,
                StatusCode::CREATED
            );
            let d = scan("BG0000000001").await;
            assert_eq!(d["decision"], "refuse", "status {status}: {d}");
        }
        assert_eq!(app.get("/api/v1/orders/ORD-1").await.1["state"], "packed");

        assert_eq!(
            signed(app, &gateway, ceb622("COP-ORD-1", 800, "20261123110000000"))
                .await
                .0,
            StatusCode::CREATED
        );
        let d = scan("PKG-ORD-1").await;
        expect(&d, "open", "released");
        assert!(d["evidence_receipt_id"].is_i64(), "{d}");
        assert_eq!(d["order_no"], "ORD-1");
        // Shipped in the same transaction: nothing reserved is left.
        assert_eq!(app.get("/api/v1/orders/ORD-1").await.1["state"], "shipped");
        let (_, totals) = app.get("/api/v1/inventory?sku=SKU-1").await;
        assert_eq!(totals["totals"]["locked"], 0, "{totals}");
        app.integrity_clean().await;

        expect(&scan("BG0000000001").await, "refuse", "already_exited");
        // A guard may scan; a packer may not decide the gate.
        let (s, _) = app
            .call_as(
                Some(&packer),
                Method::POST,
                "/api/v1/gates/G1/scans",
                Some(json!({"code": "PKG-ORD-1"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (_, log) = app.get("/api/v1/gates/G1/decisions").await;
        let decisions: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["decision"].as_str().unwrap())
            .collect();
        assert_eq!(
            decisions,
            ["refuse", "open", "refuse", "refuse", "refuse", "refuse", "refuse"],
            "{log}"
        );
        st.finish().await;
    }
);
