//! The outbound gate end to end: a parcel picked, packed on the simulated
//! scale with its label printed, then scanned at a gate driven by a
//! simulated MQTT gate bridge while its customs receipts arrive (2, 120,
//! 399: refused; 800 with the bridge faulty: a fault, nothing shipped; 800:
//! open, the bridge records one pulse, stock shipped in the commit that
//! records it; again: already exited), on both backends. Then the gate's
//! MQTT scanner, the broker down at scan time, and a grant left behind by a
//! crash between the decision and the output.

use std::time::Duration;

use bondgate::config::{GateConfig, GateOutputConfig};
use bondgate_protocol::scale::ScaleProtocol;
use bondgate_protocol::{GateId, PulseMs, Site};
use bondgate_sim::{BridgeMode, BrokerAddr, GateBridgeOptions, GateBridgeSim};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::customs::{ceb622, signed};
use crate::helpers::{Backend, TestApp};
use crate::packing::ready_with_gates;

/// The pulse the test gates give.
pub(crate) const PULSE_MS: u32 = 300;

/// Gate `id` driven by an MQTT gate bridge.
pub(crate) fn mqtt_gate(id: &str) -> GateConfig {
    GateConfig {
        id: id.into(),
        pulse: PulseMs::new(PULSE_MS).unwrap(),
        confirm_timeout: Duration::from_millis(1500),
        output: GateOutputConfig::Mqtt,
    }
}

/// A simulated bridge for gate `id` on the server's broker, ready: it has
/// subscribed and heard the server's heartbeat.
pub(crate) async fn bridge(app: &TestApp, id: &str) -> GateBridgeSim {
    let options = GateBridgeOptions::new(
        BrokerAddr::parse(&app.server.mqtt_url).unwrap(),
        Site::new(bondgate::config::Config::DEFAULT_SITE).unwrap(),
        GateId::new(id).unwrap(),
    );
    let sim = GateBridgeSim::start(options).await;
    sim.wait_ready(Duration::from_secs(15))
        .await
        .expect("gate bridge ready");
    sim
}

/// Scans `code` at gate G1 as `token`; the decision, after the output answered.
pub(crate) async fn gate_scan(app: &TestApp, token: &str, code: &str) -> Value {
    let (s, d) = app
        .call_as(
            Some(token),
            Method::POST,
            "/api/v1/gates/G1/scans",
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    d
}

fn expect(d: &Value, result: &str, reason: &str) {
    assert_eq!(
        (d["result"].as_str(), d["reason_code"].as_str()),
        (Some(result), Some(reason)),
        "{d}"
    );
}

both_backends!(
    the_gate_opens_only_for_a_packed_parcel_with_a_release,
    |b: Backend| async move {
        let Some((st, packer)) = ready_with_gates(
            b,
            ScaleProtocol::YaohuaA9,
            Duration::from_millis(200),
            "ORD-1",
            1,
            vec![mqtt_gate("G1")],
        )
        .await
        else {
            return;
        };
        let app = &st.app;
        let gate = bridge(app, "G1").await;
        let guard = app.user("gus", "guard").await;
        let scan = |code: &'static str| gate_scan(app, &guard, code);
        // Not packed yet.
        expect(&scan("PKG-ORD-1").await, "refused", "unknown_parcel");
        st.place(215).await;
        let (s, p) = st.pack(&packer, 1).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let d = scan("BG0000000001").await;
        assert_eq!(d["decision"], "refuse", "no receipt yet: {d}");
        assert!(d["output"].is_null(), "a refusal sends nothing: {d}");
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
            assert_eq!(d["result"], "refused", "status {status}: {d}");
        }
        assert_eq!(app.get("/api/v1/orders/ORD-1").await.1["state"], "packed");
        assert!(gate.pulses().is_empty(), "{:?}", gate.pulses());

        assert_eq!(
            signed(app, &gateway, ceb622("COP-ORD-1", 800, "20261123110000000"))
                .await
                .0,
            StatusCode::CREATED
        );
        // Released, but the bridge's relay does not read back: a fault the
        // guard sees, the gate counts as closed and nothing ships.
        gate.set_mode(BridgeMode::Fault);
        let d = scan("PKG-ORD-1").await;
        expect(&d, "fault", "gate.output_fault");
        assert_eq!(d["decision"], "open", "granted, not confirmed: {d}");
        assert_eq!(d["output"], "fault", "{d}");
        assert!(gate.pulses().is_empty());
        assert_eq!(app.get("/api/v1/orders/ORD-1").await.1["state"], "packed");
        let (_, gates) = app.get("/api/v1/gates").await;
        assert_eq!(gates[0]["id"], "G1", "{gates}");
        assert_eq!(gates[0]["faults"], 1, "{gates}");
        assert!(gates[0]["fault"].is_string(), "the alarm shows: {gates}");

        // The bridge works again: the same parcel opens, with one pulse.
        gate.set_mode(BridgeMode::Normal);
        let d = scan("PKG-ORD-1").await;
        expect(&d, "open", "released");
        assert_eq!(d["output"], "confirmed", "{d}");
        assert_eq!(d["output_kind"], "mqtt", "{d}");
        assert!(d["evidence_receipt_id"].is_i64(), "{d}");
        assert_eq!(d["order_no"], "ORD-1");
        let pulses = gate.pulses();
        assert_eq!(pulses.len(), 1, "{pulses:?}");
        assert_eq!(pulses[0].pulse_ms, PULSE_MS);
        assert_eq!(Some(pulses[0].id.as_str()), d["command_id"].as_str());
        assert_eq!(pulses[0].seq, d["id"].as_u64().unwrap());
        // Shipped in the commit that recorded the confirmation.
        assert_eq!(app.get("/api/v1/orders/ORD-1").await.1["state"], "shipped");
        let (_, totals) = app.get("/api/v1/inventory?sku=SKU-1").await;
        assert_eq!(totals["totals"]["locked"], 0, "{totals}");
        app.integrity_clean().await;

        expect(&scan("BG0000000001").await, "refused", "already_exited");
        assert_eq!(gate.pulses().len(), 1, "no second pulse");
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
        // A gate nobody configured decides nothing.
        let (s, d) = app
            .call_as(
                Some(&guard),
                Method::POST,
                "/api/v1/gates/G9/scans",
                Some(json!({"code": "PKG-ORD-1"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{d}");
        let (_, log) = app.get("/api/v1/gates/G1/decisions").await;
        let results: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["result"].as_str().unwrap())
            .collect();
        assert_eq!(
            results,
            ["refused", "open", "fault", "refused", "refused", "refused", "refused", "refused"],
            "{log}"
        );
        gate.shutdown().await;
        st.finish().await;
    }
);
