//! End to end over a real broker: the PDA simulator (hardware-sim) logs in by
//! badge and walks the server's pick tasks over MQTT — on SQLite and
//! PostgreSQL, through the server's embedded broker and through Mosquitto.
//! Duplicate scans, wrong bins, short picks, malformed payloads and device
//! presence are all driven through the same wire a handheld uses.

use std::time::{Duration, Instant};

use bondgate::config::MqttBroker;
use bondgate_protocol::{DeviceId, Next, Site};
use bondgate_sim::{BrokerAddr, Fault, Pda, PdaOptions, Reason, Walker};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::orders::order;

#[derive(Debug, Clone, Copy)]
enum Via {
    Embedded,
    Mosquitto,
}

/// A server on `backend` whose PDAs talk through `via`, with a picker `pia`
/// holding badge `BADGE-pia`. On Mosquitto each test gets its own site, so
/// parallel tests never see each other's devices.
async fn floor(backend: Backend, via: Via) -> Option<(TestApp, String)> {
    floor_with(backend, via, |_| {}).await
}

/// As [`floor`], after `adjust` changed the server's configuration.
async fn floor_with(
    backend: Backend,
    via: Via,
    adjust: impl FnOnce(&mut bondgate::config::Config) + Send + 'static,
) -> Option<(TestApp, String)> {
    let site = format!("T{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let external = match via {
        Via::Embedded => None,
        Via::Mosquitto => Some(crate::mqtt::shared_mosquitto().await?),
    };
    let site_for_config = site.clone();
    let app = spawn_app_with(backend, move |c| {
        c.mqtt.site = site_for_config;
        if let Some(url) = external {
            c.mqtt.broker = MqttBroker::External(url);
        }
        adjust(c);
    })
    .await?;
    app.seed().await;
    app.user("pia", "picker").await;
    let (s, b) = app
        .call_as(
            Some(&app.token),
            Method::PUT,
            "/api/v1/users/pia/badge",
            Some(json!({"badge": "BADGE-pia"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    Some((app, site))
}

async fn pda(app: &TestApp, site: &str, device: &str) -> Pda {
    let options = PdaOptions::new(
        BrokerAddr::parse(&app.server.mqtt_url).unwrap(),
        Site::new(site).unwrap(),
        DeviceId::new(device).unwrap(),
    );
    let pda = Pda::connect(options).await.expect("PDA connects");
    pda.wait_ready().await.expect("PDA subscribed");
    pda
}

async fn locked_at(app: &TestApp, bin: &str) -> i64 {
    let (_, b) = app
        .get(&format!("/api/v1/inventory?sku=SKU-1&bin={bin}"))
        .await;
    b["totals"]["locked"].as_i64().unwrap()
}

async fn state_of(app: &TestApp, order_no: &str) -> String {
    let (_, o) = app.get(&format!("/api/v1/orders/{order_no}")).await;
    o["state"].as_str().unwrap().to_string()
}

/// Waits for the device list to show `device` in the `online` state.
async fn device_shows(app: &TestApp, device: &str, online: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = app.get("/api/v1/devices").await;
        let found = list
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device"] == device)
            .map(|d| d["online"] == online);
        if found == Some(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{device} never showed online={online}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// receive → order → wave → the simulator walks every task, sending each
/// scan twice and scanning a wrong bin once → totes ready for packing.
async fn walk_two_orders(backend: Backend, via: Via) {
    let Some((app, site)) = floor(backend, via).await else {
        return;
    };
    assert_eq!(app.receive("R-1", "A-01", 10).await.0, StatusCode::CREATED);
    for (no, qty) in [("ORD-1", 2), ("ORD-2", 3)] {
        let (s, b) = app.post("/api/v1/orders", order(no, qty)).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, w) = app.post("/api/v1/waves", json!({"wave_no": "W-1"})).await;
    assert_eq!(s, StatusCode::CREATED, "{w}");

    let mut pda = pda(&app, &site, "PDA-01").await;
    device_shows(&app, "PDA-01", true).await;
    let transcript = Walker::new("BADGE-pia")
        .fault(Fault::DuplicateEveryScan)
        .fault(Fault::WrongBinOnce)
        .walk(&mut pda)
        .await
        .unwrap_or_else(|e| panic!("walk failed: {e}"));
    assert_eq!(transcript.tasks_completed(), 2, "{transcript}");
    assert_eq!(transcript.steps.last().unwrap().prompt.next, Next::Done);

    for no in ["ORD-1", "ORD-2"] {
        assert_eq!(state_of(&app, no).await, "picked");
    }
    // Every scan was delivered twice, yet each unit was picked once.
    assert_eq!(locked_at(&app, "TOTE-PDA-01-1").await, 2);
    assert_eq!(locked_at(&app, "TOTE-PDA-01-2").await, 3);
    assert_eq!(locked_at(&app, "A-01").await, 0);
    let (_, tasks) = app.get("/api/v1/pick-tasks?wave_no=W-1").await;
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "picked" && t["picker"] == "pia"),
        "{tasks}"
    );
    app.integrity_clean().await;

    // A PDA that vanishes without a goodbye is reported offline by its will.
    drop(pda);
    device_shows(&app, "PDA-01", false).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_on_sqlite_through_the_embedded_broker() {
    walk_two_orders(Backend::Sqlite, Via::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_on_postgres_through_the_embedded_broker() {
    walk_two_orders(Backend::Postgres, Via::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_on_sqlite_through_mosquitto() {
    walk_two_orders(Backend::Sqlite, Via::Mosquitto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_on_postgres_through_mosquitto() {
    walk_two_orders(Backend::Postgres, Via::Mosquitto).await;
}

/// A damaged unit found mid-walk: it goes to defective, the rest of the line
/// is reserved from the next bin, and the simulator carries on to it.
async fn short_pick_is_made_good(backend: Backend) {
    let Some((app, site)) = floor(backend, Via::Embedded).await else {
        return;
    };
    app.receive("R-1", "A-01", 3).await;
    app.receive("R-2", "A-02", 5).await;
    app.post("/api/v1/orders", order("ORD-1", 3)).await;
    app.post("/api/v1/waves", json!({"wave_no": "W-1"})).await;
    let mut pda = pda(&app, &site, "PDA-02").await;
    let transcript = Walker::new("BADGE-pia")
        .fault(Fault::ShortAt {
            task_index: 0,
            found: 2,
            reason: Reason::Damaged,
        })
        .walk(&mut pda)
        .await
        .unwrap_or_else(|e| panic!("walk failed: {e}"));
    let sent = transcript.codes();
    assert!(
        sent.contains(&"#DAMAGED") && sent.contains(&"A-02"),
        "{transcript}"
    );
    assert_eq!(state_of(&app, "ORD-1").await, "picked");
    assert_eq!(locked_at(&app, "TOTE-PDA-02-1").await, 3);
    let (_, a01) = app.get("/api/v1/inventory?sku=SKU-1&bin=A-01").await;
    assert_eq!(
        a01["totals"],
        json!({"available": 0, "locked": 0, "defective": 1, "total": 1})
    );
    app.integrity_clean().await;
    pda.disconnect().await.unwrap();
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_pick_on_sqlite() {
    short_pick_is_made_good(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_pick_on_postgres() {
    short_pick_is_made_good(Backend::Postgres).await;
}

/// Scans by hand: an unknown badge, a malformed payload, a replayed
/// sequence number and an order cancelled under the picker's feet.
async fn bad_input_and_cancel_mid_pick(backend: Backend) {
    let Some((app, site)) = floor(backend, Via::Embedded).await else {
        return;
    };
    app.receive("R-1", "A-01", 2).await;
    app.receive("R-2", "A-02", 5).await;
    app.post("/api/v1/orders", order("ORD-1", 4)).await;
    app.post("/api/v1/waves", json!({"wave_no": "W-1"})).await;
    let mut pda = pda(&app, &site, "PDA-03").await;

    let p = pda.scan("BADGE-nobody").await.unwrap();
    assert!(!p.ok && p.next == Next::Login, "{p:?}");
    let p = pda.scan("BADGE-pia").await.unwrap();
    assert_eq!((p.ok, p.next), (true, Next::Tote), "{p:?}");

    // Garbage on the scan topic: an error prompt, and nothing happens.
    pda.publish_raw(b"{\"v\":1,\"seq\":\"x\"}".to_vec())
        .await
        .unwrap();
    let p = pda.next_prompt().await.unwrap();
    assert_eq!((p.seq, p.ok), (0, false), "{p:?}");
    let p = pda.scan("TOTE-9").await.unwrap();
    assert_eq!(p.next, Next::Bin, "the session did not move: {p:?}");

    // The same sequence number again: the same answer, no second effect.
    let seq = pda.last_seq().unwrap();
    let again = pda.scan_with_seq(seq, "TOTE-9").await.unwrap();
    assert_eq!(again, p);
    for code in ["A-01", "6901234567892", "B1"] {
        pda.scan(code).await.unwrap();
    }
    let p = pda.scan("2").await.unwrap();
    assert_eq!(p.next, Next::Bin, "on to A-02: {p:?}");
    assert_eq!(locked_at(&app, "TOTE-9").await, 2);

    let (s, o) = app
        .post(
            "/api/v1/orders/ORD-1/cancel",
            json!({"reason": "buyer cancelled"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let p = pda.scan("A-02").await.unwrap();
    assert_eq!(p.next, Next::Done, "{p:?}");
    assert!(p.text.as_str().contains("ORD-1 was cancelled"), "{p:?}");
    let (_, tote) = app.get("/api/v1/inventory?sku=SKU-1&bin=TOTE-9").await;
    assert_eq!(
        tote["totals"]["available"], 2,
        "the tote's goods are free to put back"
    );
    assert_eq!(locked_at(&app, "A-02").await, 0);
    app.integrity_clean().await;
    pda.disconnect().await.unwrap();
    device_shows(&app, "PDA-03", false).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_cancel_on_sqlite() {
    bad_input_and_cancel_mid_pick(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_cancel_on_postgres() {
    bad_input_and_cancel_mid_pick(Backend::Postgres).await;
}

/// The automatic wave policy cuts a wave once enough orders wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wave_policy_cuts_waves_by_itself() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.picking.auto_wave = Some(bondgate::domain::picking::WavePolicy {
            max_orders: 2,
            max_wait_secs: 3600,
        });
        c.picking.wave_check = Duration::from_millis(100);
    })
    .await
    else {
        return;
    };
    app.seed().await;
    app.receive("R-1", "A-01", 10).await;
    app.post("/api/v1/orders", order("ORD-1", 1)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        state_of(&app, "ORD-1").await,
        "locked",
        "one order waits for company"
    );
    app.post("/api/v1/orders", order("ORD-2", 1)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while state_of(&app, "ORD-2").await != "picking" {
        assert!(Instant::now() < deadline, "no wave was cut");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, o) = app.get("/api/v1/orders/ORD-1").await;
    let wave_no = o["wave_no"].as_str().unwrap().to_string();
    assert!(wave_no.starts_with("AUTO-"), "{o}");
    let (_, w): (StatusCode, Value) = app.get(&format!("/api/v1/waves/{wave_no}")).await;
    assert_eq!(w["origin"], "auto");
    assert_eq!(w["order_nos"], json!(["ORD-1", "ORD-2"]));
    app.finish().await;
}

/// `pda_language = "zh"`: the handhelds' prompts are in Chinese, with the
/// code to scan in brackets as in English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handhelds_can_be_prompted_in_chinese() {
    let Some((app, site)) = floor_with(Backend::Sqlite, Via::Embedded, |c| {
        c.picking.pda_chinese = true
    })
    .await
    else {
        return;
    };
    app.receive("R-1", "A-01", 5).await;
    let (s, b) = app.post("/api/v1/orders", order("ORD-1", 1)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post(
            "/api/v1/waves",
            json!({"wave_no": "W-1", "order_nos": ["ORD-1"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut pda = pda(&app, &site, "PDA-ZH").await;
    let p = pda.scan("BADGE-pia").await.unwrap();
    assert_eq!(
        p.text.as_str(),
        "pia，你好。订单 ORD-1：请扫描一个空周转箱",
        "{p:?}"
    );
    pda.scan("TOTE-1").await.unwrap();
    let p = pda.scan("A-02").await.unwrap();
    assert_eq!(p.text.as_str(), "库位错误 A-02。请去 [A-01]", "{p:?}");
    pda.disconnect().await.unwrap();
    app.finish().await;
}
