//! Bridges' presence and health as the server shows them: a real server
//! with its embedded broker, bridges publishing `devices/{id}/status` and
//! `devices/{id}/health` — the real scale bridge (library, in-process) on a
//! pty scale, and a hand-driven client publishing exactly what a bridge
//! would (and what a broken one might). What counts is what
//! `GET /api/v1/devices`, `GET /api/v1/pack-stations` and, for a gate
//! bridge's presence, `GET /api/v1/gates` say.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bondgate::config::{ScaleSource, StationConfig};
use bondgate::mqtt::BrokerAddr;
use bondgate_protocol::scale::ScaleProtocol;
use bondgate_protocol::{
    DeviceHealth, DeviceId, DeviceStatus, PromptText, Site, StationId, Topic, TopicKind, WeightMsg,
};
use bondgate_sim::{ScaleOptions, ScaleSim};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::Value;

use crate::helpers::{spawn_app_with, Backend, TestApp};

const SITE: &str = "SH01";

fn topic(kind: TopicKind, id: &str) -> String {
    Topic::new(kind, id)
        .unwrap()
        .render(&Site::new(SITE).unwrap())
}

/// A server with one pack station `station` whose scale is a bridge.
async fn server(station: &str, bridge: &str) -> Option<TestApp> {
    let (station, bridge) = (station.to_string(), bridge.to_string());
    spawn_app_with(Backend::Sqlite, move |c| {
        c.packing.stations = vec![StationConfig {
            id: station,
            scale: Some(ScaleSource::Mqtt { bridge }),
            printer: None,
        }];
    })
    .await
}

/// Polls `path` until `ok` holds for the JSON it returns (10 s at most).
async fn until(app: &TestApp, path: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = app.get(path).await;
        if ok(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never {what}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn device<'a>(list: &'a Value, id: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|d| d["device"] == id)
}

/// The station's scale status in `GET /pack-stations`.
fn scale(stations: &Value) -> &Value {
    &stations[0]["scale"]
}

/// The real scale bridge on a pty scale: the device list shows its
/// presence and health; an unplugged scale shows as `ok: false` with the
/// reason, and takes the station's scale offline at once; replugged, both
/// recover; the bridge gone (its will), the station's scale is offline with
/// that reason at once, not after the 3 s of silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_scale_bridge_shows_its_health_and_its_departure() {
    let Some(app) = server("P3", "scale-bridge-P3").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let link: PathBuf = dir.path().join("scale-P3");
    let mut options = ScaleOptions::new(ScaleProtocol::MtSics);
    options.link = Some(link.clone());
    let sim = ScaleSim::start(options).await.expect("scale simulator");
    let control = sim.control();
    control.set_weight(1234);

    let config = bondgate_scale_bridge::Config {
        edge: bondgate_edge::EdgeConfig {
            broker: BrokerAddr::parse(&app.server.mqtt_url).unwrap(),
            site: Site::new(SITE).unwrap(),
            device: DeviceId::new("scale-bridge-P3").unwrap(),
        },
        station: StationId::new("P3").unwrap(),
        protocol: ScaleProtocol::MtSics,
        serial: bondgate_edge::SerialSettings::new(&link),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bridge = tokio::spawn(bondgate_scale_bridge::run(config, async {
        let _ = stopped.await;
    }));

    let list = until(&app, "/api/v1/devices", "the bridge healthy", |l| {
        device(l, "scale-bridge-P3")
            .is_some_and(|d| d["online"] == true && d["health"]["ok"] == true)
    })
    .await;
    let d = device(&list, "scale-bridge-P3").unwrap();
    assert_eq!(
        (&d["health"]["bad_input"], &d["health"]["dropped"]),
        (&Value::from(0), &Value::from(0)),
        "{d}"
    );
    assert!(d["health"]["age_ms"].as_u64().is_some(), "{d}");
    until(&app, "/api/v1/pack-stations", "weighing 1234 g", |s| {
        scale(s)["online"] == true && scale(s)["grams"] == 1234
    })
    .await;

    // The scale's cable is pulled: the bridge stays, its device does not.
    control.unplug().await.unwrap();
    let list = until(&app, "/api/v1/devices", "the scale unplugged", |l| {
        device(l, "scale-bridge-P3").is_some_and(|d| d["health"]["ok"] == false)
    })
    .await;
    let d = device(&list, "scale-bridge-P3").unwrap();
    assert_eq!(d["online"], true, "the bridge itself is still there: {d}");
    let error = d["health"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("scale-P3"), "the reason names the port: {d}");
    let stations = until(&app, "/api/v1/pack-stations", "the scale offline", |s| {
        scale(s)["online"] == false
    })
    .await;
    let reason = scale(&stations)["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("scale bridge scale-bridge-P3: "),
        "offline by the bridge's health report: {stations}"
    );

    control.replug().await.unwrap();
    until(&app, "/api/v1/devices", "the scale back", |l| {
        device(l, "scale-bridge-P3").is_some_and(|d| d["health"]["ok"] == true)
    })
    .await;
    until(&app, "/api/v1/pack-stations", "weighing again", |s| {
        scale(s)["online"] == true && scale(s)["grams"] == 1234
    })
    .await;

    // The bridge stops without a clean disconnect: the broker sends its will.
    let left = Instant::now();
    stop.send(()).unwrap();
    bridge.await.unwrap().unwrap();
    let stations = until(&app, "/api/v1/pack-stations", "the bridge gone", |s| {
        scale(s)["last_error"] == "the scale bridge scale-bridge-P3 went offline"
    })
    .await;
    assert_eq!(scale(&stations)["online"], false, "{stations}");
    assert!(
        left.elapsed() < bondgate::packing::scale::READING_MAX_AGE,
        "offline by presence, before silence would have said so"
    );
    let list = until(&app, "/api/v1/devices", "the bridge offline", |l| {
        device(l, "scale-bridge-P3").is_some_and(|d| d["online"] == false)
    })
    .await;
    assert_eq!(
        device(&list, "scale-bridge-P3").unwrap()["health"]["ok"],
        true,
        "the last report stays, with its age"
    );
    sim.shutdown().await;
    app.finish().await;
}

/// What a bridge publishes, by hand, for a station whose bridge has its own
/// device id (`bridge = "box-7"`): counters and the last error as sent; a
/// malformed report refused and counted, the last good one kept; another
/// device's `offline` changes nothing; its own `offline` takes the scale
/// offline at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_are_shown_and_malformed_ones_refused_and_counted() {
    let Some(app) = server("P4", "box-7").await else {
        return;
    };
    let addr = BrokerAddr::parse(&app.server.mqtt_url).unwrap();
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("box-7", addr.host(), addr.port()), 16);
    let poll = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let publish = |t: String, retain: bool, payload: Vec<u8>| {
        let client = client.clone();
        async move {
            client
                .publish(t, QoS::AtLeastOnce, retain, payload)
                .await
                .unwrap()
        }
    };
    let health = |ok: bool, error: Option<&str>, bad_input: u64, dropped: u64| {
        DeviceHealth {
            ok,
            last_error: error.map(PromptText::clamp),
            bad_input,
            dropped,
            ts: 1_700_000_000_000,
        }
        .encode()
    };
    let status = topic(TopicKind::DeviceStatus, "box-7");
    let health_topic = topic(TopicKind::DeviceHealth, "box-7");
    publish(status.clone(), true, DeviceStatus::Online.encode()).await;
    publish(health_topic.clone(), true, health(true, None, 0, 0)).await;
    let list = until(&app, "/api/v1/devices", "box-7 healthy", |l| {
        device(l, "box-7").is_some_and(|d| d["health"]["ok"] == true)
    })
    .await;
    let h = &device(&list, "box-7").unwrap()["health"];
    assert_eq!(
        (h["reported_ts"].as_i64(), h["refused_reports"].as_u64()),
        (Some(1_700_000_000_000), Some(0)),
        "{h}"
    );

    // Readings bring the scale online.
    let weight = topic(TopicKind::ScaleWeight, "P4");
    let reading = WeightMsg {
        grams: 500,
        stable: true,
        ts: 0,
    }
    .encode();
    publish(weight.clone(), false, reading.clone()).await;
    until(&app, "/api/v1/pack-stations", "weighing", |s| {
        scale(s)["online"] == true
    })
    .await;

    // Not health: refused, counted, the last good report kept, no crash.
    for bad in [
        &b"{\"v\":1,\"ok\":\"yes\"}"[..],
        b"not json",
        b"{\"v\":1,\"ok\":true,\"last_error\":null,\"bad_input\":-1,\"dropped\":0,\"ts\":0}",
    ] {
        publish(health_topic.clone(), false, bad.to_vec()).await;
    }
    let list = until(&app, "/api/v1/devices", "three refused", |l| {
        device(l, "box-7").is_some_and(|d| d["health"]["refused_reports"] == 3)
    })
    .await;
    let h = &device(&list, "box-7").unwrap()["health"];
    assert_eq!(h["ok"], true, "{h}");
    assert!(h["refused_error"].is_string(), "{h}");
    // The server is still there and still weighing.
    publish(weight.clone(), false, reading.clone()).await;
    until(&app, "/api/v1/pack-stations", "still weighing", |s| {
        scale(s)["online"] == true
    })
    .await;

    // The scale behind the bridge fails: the counters and reason as sent,
    // and the station's scale offline at once with the bridge's reason.
    publish(
        health_topic.clone(),
        true,
        health(false, Some("no data from /dev/ttyUSB0 for 2 s"), 3, 1),
    )
    .await;
    let list = until(&app, "/api/v1/devices", "box-7 failing", |l| {
        device(l, "box-7").is_some_and(|d| d["health"]["ok"] == false)
    })
    .await;
    let h = &device(&list, "box-7").unwrap()["health"];
    assert_eq!(
        (
            h["last_error"].as_str(),
            h["bad_input"].as_u64(),
            h["dropped"].as_u64()
        ),
        (Some("no data from /dev/ttyUSB0 for 2 s"), Some(3), Some(1)),
        "{h}"
    );
    let stations = until(&app, "/api/v1/pack-stations", "offline", |s| {
        scale(s)["online"] == false
    })
    .await;
    assert_eq!(
        scale(&stations)["last_error"],
        "scale bridge box-7: no data from /dev/ttyUSB0 for 2 s"
    );

    // Back; then another device leaves (the station's default bridge name,
    // which this station does not use), then box-7 itself.
    publish(health_topic.clone(), true, health(true, None, 3, 1)).await;
    publish(weight.clone(), false, reading.clone()).await;
    until(&app, "/api/v1/pack-stations", "weighing again", |s| {
        scale(s)["online"] == true
    })
    .await;
    publish(
        topic(TopicKind::DeviceStatus, "scale-bridge-P4"),
        true,
        DeviceStatus::Offline.encode(),
    )
    .await;
    until(&app, "/api/v1/devices", "the other device", |l| {
        device(l, "scale-bridge-P4").is_some_and(|d| d["online"] == false)
    })
    .await;
    let (_, stations) = app.get("/api/v1/pack-stations").await;
    assert_ne!(
        scale(&stations)["last_error"],
        "the scale bridge scale-bridge-P4 went offline",
        "{stations}"
    );
    publish(status.clone(), true, DeviceStatus::Offline.encode()).await;
    let stations = until(&app, "/api/v1/pack-stations", "box-7 gone", |s| {
        scale(s)["last_error"] == "the scale bridge box-7 went offline"
    })
    .await;
    assert_eq!(scale(&stations)["online"], false);
    // Tidy the retained messages away.
    for t in [status, health_topic] {
        publish(t, true, Vec::new()).await;
    }
    poll.abort();
    app.finish().await;
}

/// A gate bridge's presence decides how its idle gate reads: nothing heard
/// yet is a fault the guard sees; the bridge online (it released its relay
/// before it connected) is closed and ready; the bridge gone (its will) is a
/// fault naming it, whatever it reported before. A printer bridge gone takes
/// its station's printer offline at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_gate_reads_closed_while_its_bridge_is_online_and_faulty_once_it_is_gone() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.gates = vec![crate::gate::mqtt_gate("G7")];
        c.packing.stations = vec![StationConfig {
            id: "P7".into(),
            scale: None,
            printer: Some(bondgate::config::PrinterTarget::Mqtt),
        }];
    })
    .await
    else {
        return;
    };
    let (_, gates) = app.get("/api/v1/gates").await;
    assert_eq!(gates[0]["state"], "fault", "{gates}");
    assert!(
        gates[0]["fault"]
            .as_str()
            .is_some_and(|f| f.contains("no report from the gate bridge yet")),
        "{gates}"
    );
    let addr = BrokerAddr::parse(&app.server.mqtt_url).unwrap();
    let (client, mut eventloop) = AsyncClient::new(
        MqttOptions::new("gate-bridge-G7", addr.host(), addr.port()),
        16,
    );
    let poll = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let status = topic(TopicKind::DeviceStatus, "gate-bridge-G7");
    let publish = |payload: Vec<u8>| {
        let (client, status) = (client.clone(), status.clone());
        async move {
            client
                .publish(status, QoS::AtLeastOnce, true, payload)
                .await
                .unwrap()
        }
    };
    // Another gate's bridge changes nothing here.
    client
        .publish(
            topic(TopicKind::DeviceStatus, "gate-bridge-G8"),
            QoS::AtLeastOnce,
            false,
            DeviceStatus::Online.encode(),
        )
        .await
        .unwrap();
    publish(DeviceStatus::Online.encode()).await;
    until(
        &app,
        "/api/v1/gates",
        "closed with its bridge online",
        |g| g[0]["state"] == "closed",
    )
    .await;
    publish(DeviceStatus::Offline.encode()).await;
    let gates = until(&app, "/api/v1/gates", "faulty with its bridge gone", |g| {
        g[0]["state"] == "fault"
    })
    .await;
    assert_eq!(
        gates[0]["fault"],
        "the gate output is not connected: the gate bridge gate-bridge-G7 is offline",
        "{gates}"
    );
    publish(Vec::new()).await;

    let printer = topic(TopicKind::DeviceStatus, "printer-bridge-P7");
    client
        .publish(
            printer.clone(),
            QoS::AtLeastOnce,
            true,
            DeviceStatus::Offline.encode(),
        )
        .await
        .unwrap();
    let stations = until(&app, "/api/v1/pack-stations", "printer offline", |s| {
        s[0]["printer"]["online"] == false
    })
    .await;
    assert_eq!(
        stations[0]["printer"]["last_error"], "the printer bridge printer-bridge-P7 went offline",
        "{stations}"
    );
    client
        .publish(printer, QoS::AtLeastOnce, true, Vec::new())
        .await
        .unwrap();
    poll.abort();
    app.finish().await;
}
