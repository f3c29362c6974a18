//! The pack station end to end: a simulated scale on a real pseudo-terminal
//! (opened by the server by its path, as it opens /dev/ttyUSB0), a simulated
//! label printer on real TCP decoding the ESC/POS it receives, and orders
//! picked through the browser PDA flow first.
//!
//! Matching weight → label with the right barcodes; mismatch → refused and
//! kept for a manager; wrong items → refused; unstable weight → waits for
//! stable; scale unplugged → clear error, nothing recorded; printer offline
//! → queued, printed exactly once when it returns.

use std::path::PathBuf;
use std::time::Duration;

use bondgate::config::{Config, PrinterTarget, ScaleSource, SerialScale, StationConfig};
use bondgate_protocol::scale::ScaleProtocol;
use bondgate_sim::printer::{PrinterSim, SerialPrinterOptions};
use bondgate_sim::scale::{ScaleControl, ScaleOptions, ScaleSim};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::orders::order;
use crate::picking::WebPda;

const EAN: &str = "6901234567892";
/// SKU-1 weighs 95 g a unit; BOX-S is 120 g.
const BOX_TARE: i64 = 120;

/// The floor of one pack station: its scale and printer simulators, and a
/// server configured with them.
pub(crate) struct Station {
    pub(crate) app: TestApp,
    scale: ScaleControl,
    _scale_sim: ScaleSim,
    printer: PrinterSim,
    _dir: tempfile::TempDir,
}

/// As [`station`]; with `serial_printer` the label printer is on a serial
/// port (a pseudo-terminal the server opens by path) instead of TCP.
async fn station_with(
    backend: Backend,
    protocol: ScaleProtocol,
    settle: Duration,
    serial_printer: bool,
    adjust: impl FnOnce(&mut Config),
) -> Option<Station> {
    let dir = tempfile::tempdir().unwrap();
    // A stable name for the port, as udev gives a USB adapter: the pty
    // number may change when the scale is unplugged and plugged back in.
    let link: PathBuf = dir.path().join("scale-P1");
    let mut options = ScaleOptions::new(protocol);
    options.settle = settle;
    options.link = Some(link.clone());
    let scale_sim = ScaleSim::start(options).await.expect("scale simulator");
    let (printer, target) = if serial_printer {
        let link = dir.path().join("printer-P1");
        let options = SerialPrinterOptions {
            link: Some(link.clone()),
        };
        let sim = PrinterSim::start_serial(options)
            .await
            .expect("serial printer simulator");
        let target = PrinterTarget::Serial {
            path: link,
            baud: 9600,
        };
        (sim, target)
    } else {
        let sim = PrinterSim::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("printer simulator");
        let target = PrinterTarget::Tcp(sim.local_addr().to_string());
        (sim, target)
    };
    let app = spawn_app_with(backend, |c| {
        c.packing.stations = vec![StationConfig {
            id: "P1".into(),
            scale: Some(ScaleSource::Serial(SerialScale {
                path: link,
                baud: 9600,
                data_bits: 8,
                parity: "none".into(),
                stop_bits: 1,
                protocol,
            })),
            printer: Some(target),
        }];
        c.packing.weigh_timeout = Duration::from_secs(4);
        c.customs.keys = vec![crate::customs::gateway_key()];
        adjust(c);
    })
    .await?;
    let scale = scale_sim.control();
    Some(Station {
        app,
        scale,
        _scale_sim: scale_sim,
        printer,
        _dir: dir,
    })
}

/// A station with a picked order of `qty` units in TOTE-1, and a packer's token.
pub(crate) async fn ready(
    backend: Backend,
    protocol: ScaleProtocol,
    settle: Duration,
    order_no: &str,
    qty: i64,
) -> Option<(Station, String)> {
    ready_with_gates(backend, protocol, settle, order_no, qty, Vec::new()).await
}

/// As [`ready`], with these outbound gates configured.
pub(crate) async fn ready_with_gates(
    backend: Backend,
    protocol: ScaleProtocol,
    settle: Duration,
    order_no: &str,
    qty: i64,
    gates: Vec<bondgate::config::GateConfig>,
) -> Option<(Station, String)> {
    ready_with(backend, protocol, settle, order_no, qty, |c| {
        c.gates = gates
    })
    .await
}

/// As [`ready`], after `adjust` changed the server's configuration.
pub(crate) async fn ready_with(
    backend: Backend,
    protocol: ScaleProtocol,
    settle: Duration,
    order_no: &str,
    qty: i64,
    adjust: impl FnOnce(&mut Config),
) -> Option<(Station, String)> {
    let st = station_with(backend, protocol, settle, false, adjust).await?;
    st.picked_order(order_no, qty).await;
    let packer = st.app.user("pat", "packer").await;
    Some((st, packer))
}

/// Stock, an order of `qty` units, its wave, and a picker who walks it
/// into TOTE-1; plus the box type.
async fn picked_order(app: &TestApp, order_no: &str, qty: i64) {
    app.seed().await;
    assert_eq!(app.receive("R-1", "A-01", 20).await.0, StatusCode::CREATED);
    let (s, b) = app.post("/api/v1/orders", order(order_no, qty)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .post(
            "/api/v1/waves",
            json!({"wave_no": "W-1", "order_nos": [order_no]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut pda = WebPda::new(app, "pia").await;
    let qty_text = qty.to_string();
    pda.scan_all(&["start", "TOTE-1", "A-01", EAN, "B1", &qty_text])
        .await;
    assert_eq!(
        app.get(&format!("/api/v1/orders/{order_no}")).await.1["state"],
        "picked"
    );
    let (s, b) = app
        .call_as(
            Some(&app.token),
            Method::PUT,
            "/api/v1/box-types",
            Some(json!({"code": "BOX-S", "name": "Small carton", "tare_grams": BOX_TARE})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

impl Station {
    async fn picked_order(&self, order_no: &str, qty: i64) {
        picked_order(&self.app, order_no, qty).await
    }

    pub(crate) async fn pack(&self, token: &str, items: usize) -> (StatusCode, Value) {
        self.app
            .call_as(
                Some(token),
                Method::POST,
                "/api/v1/packages",
                Some(json!({"station": "P1", "code": "TOTE-1", "items": vec![EAN; items], "box": "BOX-S"})),
            )
            .await
    }

    /// Waits until the station's scale shows what `ok` wants.
    async fn scale_until(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (s, b) = self.app.get("/api/v1/pack-stations").await;
            assert_eq!(s, StatusCode::OK, "{b}");
            let scale = b[0]["scale"].clone();
            if ok(&scale) {
                return scale;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "scale never {what}: {scale}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Puts a parcel on the plate and waits until the server saw it settle.
    pub(crate) async fn place(&self, grams: i64) {
        self.scale.set_weight(grams);
        self.scale_until("settled", |s| {
            s["stable"] == true && s["grams"].as_i64() == Some(grams)
        })
        .await;
    }

    pub(crate) async fn finish(self) {
        self.app.finish().await;
    }
}

/// The label with its print time (`YYYY-MM-DD HH:MM`) replaced, for the snapshot.
fn redact_time(text: &str) -> String {
    let shape = "dddd-dd-dd dd:dd";
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let fits = i + shape.len() <= chars.len()
            && shape.chars().zip(&chars[i..]).all(|(want, &c)| match want {
                'd' => c.is_ascii_digit(),
                other => other == c,
            });
        if fits {
            out.push_str("[printed at]");
            i += shape.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

both_backends!(
    a_matching_parcel_is_packed_and_its_label_printed,
    |b: Backend| async move {
        let Some((st, packer)) = ready(
            b,
            ScaleProtocol::YaohuaA9,
            Duration::from_millis(200),
            "ORD-1",
            3,
        )
        .await
        else {
            return;
        };
        // 3 × 95 g + 120 g = 405 g expected; 410 g is within 30 g.
        st.place(410).await;
        let (s, p) = st.pack(&packer, 3).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        assert_eq!(p["state"], "packed");
        assert_eq!(p["package_no"], "PKG-ORD-1");
        assert_eq!(
            (p["expected_grams"].as_i64(), p["gross_grams"].as_i64()),
            (Some(405), Some(410))
        );
        assert_eq!(p["packer"], "pat");
        let waybill = p["waybill_no"].as_str().unwrap().to_string();
        assert_eq!(waybill, "BG0000000001");

        let labels = st
            .printer
            .wait_for_labels(1, Duration::from_secs(15))
            .await
            .expect("label printed");
        let label = &labels[0];
        assert_eq!(
            label.barcodes,
            vec![("CODE128".to_string(), waybill.clone())]
        );
        assert_eq!(label.qr, vec![waybill.clone()]);
        assert!(label.has_line_containing("ORD-1"), "{}", label.render());
        assert!(label.has_line_containing("张*"), "{}", label.render());
        assert!(
            !label.render().contains("张三"),
            "the consignee is masked: {}",
            label.render()
        );
        assert!(
            label.has_line_containing("139****5678"),
            "{}",
            label.render()
        );
        assert!(label.has_line_containing("0.410 kg"), "{}", label.render());
        assert!(label.errors.is_empty(), "{:?}", label.errors);
        insta::assert_snapshot!("packed_label", redact_time(&label.render()));

        // The order is packed; its goods left the tote for the outbound staging.
        let (_, o) = st.app.get("/api/v1/orders/ORD-1").await;
        assert_eq!(o["state"], "packed");
        assert_eq!(o["lines"][0]["allocations"][0]["bin"], "OUT-P1");
        let (_, tote) = st.app.get("/api/v1/inventory?sku=SKU-1&bin=TOTE-1").await;
        assert_eq!(tote["totals"]["locked"], 0, "{tote}");
        let (_, out) = st.app.get("/api/v1/inventory?sku=SKU-1&bin=OUT-P1").await;
        assert_eq!(out["totals"]["locked"], 3, "{out}");
        st.app.integrity_clean().await;

        // Packing it again prints nothing and answers with the parcel.
        let (s, again) = st.pack(&packer, 3).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        assert_eq!(again["waybill_no"], waybill.as_str());

        // A reprint is a second copy, marked as such, with its reason audited.
        let (s, job) = st
            .app
            .call_as(
                Some(&packer),
                Method::POST,
                "/api/v1/packages/PKG-ORD-1/reprint",
                Some(json!({"reason": "label smudged"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{job}");
        assert_eq!(job["copy"], 2);
        let labels = st
            .printer
            .wait_for_labels(2, Duration::from_secs(15))
            .await
            .expect("reprint printed");
        assert_eq!(labels.len(), 2);
        assert!(
            labels[1].has_line_containing("REPRINT"),
            "{}",
            labels[1].render()
        );
        let (_, audit) = st.app.get("/api/v1/audit").await;
        assert!(audit.to_string().contains("label smudged"), "{audit}");

        // The CEB511 record for customs.
        let (s, w) = st.app.get("/api/v1/packages/PKG-ORD-1/waybill").await;
        assert_eq!(s, StatusCode::OK, "{w}");
        assert_eq!(
            (w["logisticsNo"].as_str(), w["orderNo"].as_str()),
            (Some(waybill.as_str()), Some("ORD-1"))
        );
        assert_eq!(w["weight"], "0.410");
        assert_eq!(w["consigneeTelephone"], "139****5678");
        st.finish().await;
    }
);

both_backends!(
    a_parcel_of_the_wrong_weight_is_refused_until_a_manager_overrides,
    |b: Backend| async move {
        let Some((st, packer)) = ready(
            b,
            ScaleProtocol::MtSics,
            Duration::from_millis(200),
            "ORD-2",
            3,
        )
        .await
        else {
            return;
        };
        // 120 g heavier than 405 g, allowed ±30 g.
        st.place(525).await;
        let (s, e) = st.pack(&packer, 3).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["code"], "weight_mismatch");
        assert!(
            e["detail"].as_str().unwrap().contains("120 g heavier"),
            "{e}"
        );
        assert_eq!(e["facts"]["package"]["state"], "mismatch");
        assert_eq!(
            st.app.get("/api/v1/orders/ORD-2").await.1["state"],
            "picked"
        );
        let (_, ex) = st.app.get("/api/v1/pack-exceptions").await;
        assert_eq!(ex.as_array().unwrap().len(), 1, "{ex}");
        assert_eq!(ex[0]["gross_grams"], 525);

        // The same parcel, not lifted: that weight was already used.
        let (s, e) = st.pack(&packer, 3).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["code"], "no_stable_weight", "{e}");

        // A packer cannot override; a manager can, with a reason.
        let (s, _) = st
            .app
            .call_as(
                Some(&packer),
                Method::POST,
                "/api/v1/packages/PKG-ORD-2/override",
                Some(json!({"reason": "gift box"})),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let manager = st.app.user("mia", "manager").await;
        let (s, p) = st
            .app
            .call_as(
                Some(&manager),
                Method::POST,
                "/api/v1/packages/PKG-ORD-2/override",
                Some(json!({"reason": "gift box is heavier than its record"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(
            (p["state"].as_str(), p["override_by"].as_str()),
            (Some("packed"), Some("mia"))
        );
        assert!(st
            .printer
            .wait_for_labels(1, Duration::from_secs(15))
            .await
            .is_ok());
        let (_, ex) = st.app.get("/api/v1/pack-exceptions").await;
        assert_eq!(ex, json!([]), "resolved");
        let (_, all) = st.app.get("/api/v1/pack-exceptions?open=false").await;
        assert_eq!(all[0]["resolution"], "override");
        st.app.integrity_clean().await;
        st.finish().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_and_missing_items_are_refused_and_nothing_is_recorded() {
    let Some((st, packer)) = ready(
        Backend::Sqlite,
        ScaleProtocol::ContinuousAscii,
        Duration::from_millis(200),
        "ORD-3",
        2,
    )
    .await
    else {
        return;
    };
    st.place(310).await;
    let (s, e) = st
        .app
        .call_as(Some(&packer), Method::POST, "/api/v1/packages",
            Some(json!({"station": "P1", "code": "TOTE-1", "items": [EAN, "4006381333931", EAN, EAN], "box": "BOX-S"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["code"], "items_mismatch");
    let refused = e["facts"]["refused"].to_string();
    assert!(
        refused.contains("4006381333931 is not in this order"),
        "{e}"
    );
    assert!(refused.contains("Extra SKU-1"), "{e}");
    let (s, e) = st.pack(&packer, 1).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["facts"]["missing"], json!([{"sku": "SKU-1", "qty": 1}]));
    assert_eq!(
        st.app.get("/api/v1/packages/PKG-ORD-3").await.0,
        StatusCode::NOT_FOUND
    );
    // The right items then pack with the same parcel on the scale: a refusal
    // before weighing does not use up the reading.
    let (s, p) = st.pack(&packer, 2).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    st.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsettled_parcel_is_weighed_once_it_is_stable() {
    let Some((st, packer)) = ready(
        Backend::Sqlite,
        ScaleProtocol::ToledoContinuous,
        Duration::from_millis(1500),
        "ORD-4",
        1,
    )
    .await
    else {
        return;
    };
    // 95 + 120 = 215 g. The parcel goes on and is still swinging when the
    // packer presses pack: the server waits for the scale to settle.
    st.scale.set_weight(216);
    st.scale_until("in motion", |s| s["stable"] == false && s["online"] == true)
        .await;
    let (s, p) = st.pack(&packer, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["gross_grams"], 216);
    st.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplugged_scale_is_a_clear_error_and_nothing_is_recorded() {
    let Some((st, packer)) = ready(
        Backend::Sqlite,
        ScaleProtocol::YaohuaA9,
        Duration::from_millis(200),
        "ORD-5",
        1,
    )
    .await
    else {
        return;
    };
    st.place(215).await;
    st.scale.unplug().await.unwrap();
    st.scale_until("offline", |s| s["online"] == false).await;
    let (s, e) = st.pack(&packer, 1).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert_eq!(e["code"], "scale_offline");
    assert!(e["detail"].as_str().unwrap().contains("offline"), "{e}");
    assert_eq!(
        st.app.get("/api/v1/packages/PKG-ORD-5").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        st.app.get("/api/v1/orders/ORD-5").await.1["state"],
        "picked"
    );
    assert!(st.printer.labels().is_empty());

    // Plugged back in, the server reopens the port by itself. What lay on
    // the plate while it was away is not trusted: the parcel is placed again.
    st.scale.replug().await.unwrap();
    st.scale_until("back online", |s| s["online"] == true).await;
    st.scale.set_weight(0);
    st.place(214).await;
    let (s, p) = st.pack(&packer, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    st.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_printer_keeps_the_label_and_prints_it_exactly_once() {
    let Some((st, packer)) = ready(
        Backend::Sqlite,
        ScaleProtocol::YaohuaA9,
        Duration::from_millis(200),
        "ORD-6",
        1,
    )
    .await
    else {
        return;
    };
    st.printer.go_offline().await;
    st.place(215).await;
    let (s, p) = st.pack(&packer, 1).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    // The job waits, with the reason shown.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, jobs) = st.app.get("/api/v1/print-jobs?station=P1").await;
        if jobs[0]["last_error"].is_string() {
            assert_eq!(jobs[0]["state"], "queued", "{jobs}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt recorded: {jobs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, stations) = st.app.get("/api/v1/pack-stations").await;
    assert_eq!(stations[0]["printer"]["online"], false, "{stations}");

    st.printer.come_online().await.unwrap();
    let labels = st
        .printer
        .wait_for_labels(1, Duration::from_secs(20))
        .await
        .expect("printed once the printer is back");
    assert_eq!(labels[0].barcodes[0].1, p["waybill_no"].as_str().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, jobs) = st.app.get("/api/v1/print-jobs?station=P1").await;
        if jobs[0]["state"] == "printed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{jobs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing more comes out: the worker has marked it printed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(st.printer.labels().len(), 1);
    st.finish().await;
}

both_backends!(
    the_station_scanner_drives_the_same_pack_scan_by_scan,
    |b: Backend| async move {
        let Some((st, packer)) = ready(
            b,
            ScaleProtocol::MtSics,
            Duration::from_millis(200),
            "ORD-7",
            2,
        )
        .await
        else {
            return;
        };
        let scan = |seq: u64, code: &'static str| {
            let app = &st.app;
            let token = packer.clone();
            async move {
                let (s, a) = app
                    .call_as(
                        Some(&token),
                        Method::POST,
                        "/api/v1/pack-stations/P1/scans",
                        Some(json!({"seq": seq, "code": code})),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{code}: {a}");
                a
            }
        };
        let a = scan(1, "TOTE-1").await;
        assert_eq!(
            (a["ok"].as_bool(), a["next"].as_str()),
            (Some(true), Some("item")),
            "{a}"
        );
        assert!(
            a["text"].as_str().unwrap().contains(&format!("[{EAN}]")),
            "{a}"
        );
        let a = scan(2, EAN).await;
        assert_eq!(a["checklist"][0]["scanned"], 1, "{a}");
        // The scanner repeats a scan: same answer, not counted twice.
        assert_eq!(scan(2, EAN).await, a);
        let a = scan(3, "4006381333931").await;
        assert_eq!(
            (a["ok"].as_bool(), a["tone"].as_str()),
            (Some(false), Some("error")),
            "{a}"
        );
        assert!(
            a["text"].as_str().unwrap().contains("not in this order"),
            "{a}"
        );
        assert_eq!(a["text_zh"], "4006381333931 不在本订单中：请取出", "{a}");
        let a = scan(4, EAN).await;
        assert_eq!(
            (a["ok"].as_bool(), a["next"].as_str()),
            (Some(true), Some("box")),
            "{a}"
        );
        let a = scan(5, "BOX-X").await;
        assert_eq!(
            (a["ok"].as_bool(), a["next"].as_str()),
            (Some(false), Some("box")),
            "{a}"
        );
        // A screen opened now finds where the station stands: its last answer.
        let (_, stations) = st.app.get("/api/v1/pack-stations").await;
        assert_eq!(stations[0]["last_answer"], a, "{stations}");
        // 2 × 95 g + 120 g.
        st.place(311).await;
        let a = scan(6, "BOX-S").await;
        assert_eq!(
            (a["ok"].as_bool(), a["next"].as_str()),
            (Some(true), Some("tote")),
            "{a}"
        );
        let waybill = a["package"]["waybill_no"].as_str().unwrap().to_string();
        let labels = st
            .printer
            .wait_for_labels(1, Duration::from_secs(15))
            .await
            .expect("label");
        assert_eq!(labels[0].barcodes[0].1, waybill);
        assert_eq!(
            st.app.get("/api/v1/orders/ORD-7").await.1["state"],
            "packed"
        );
        // An older scan number is refused, not replayed into a new session.
        let (s, e) = st
            .app
            .call_as(
                Some(&packer),
                Method::POST,
                "/api/v1/pack-stations/P1/scans",
                Some(json!({"seq": 3, "code": "TOTE-1"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        st.finish().await;
    }
);

/// A station whose scale and printer both hang off an edge box: the scale
/// bridge publishes readings on `scale/{station}/weight`, the printer bridge
/// takes job envelopes (id + ESC/POS) from `printer/{station}/job`, and the
/// job is printed only once the bridge reports it so. A malformed reading
/// is refused without disturbing the scale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_behind_mqtt_bridges_weighs_and_prints() {
    use bondgate::mqtt::BrokerAddr;
    use bondgate_protocol::escpos::PrinterStatus;
    use bondgate_protocol::escpos::{Decoder, EscPosCommand, Symbology};
    use bondgate_protocol::{PrintJob, PrinterReport, Site, Topic, TopicKind, WeightMsg};
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.packing.stations = vec![StationConfig {
            id: "P2".into(),
            scale: Some(ScaleSource::Mqtt {
                bridge: ScaleSource::default_bridge("P2"),
            }),
            printer: Some(PrinterTarget::Mqtt),
        }];
    })
    .await
    else {
        return;
    };
    picked_order(&app, "ORD-8", 1).await;
    let site = Site::new("SH01").unwrap();
    let addr = BrokerAddr::parse(&app.server.mqtt_url).unwrap();
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("bridges-P2", addr.host(), addr.port()), 16);
    let (jobs_tx, mut jobs) = tokio::sync::mpsc::unbounded_channel();
    let poll = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = jobs_tx.send(p.payload.to_vec());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let job_topic = Topic::new(TopicKind::PrinterJob, "P2")
        .unwrap()
        .render(&site);
    client.subscribe(job_topic, QoS::AtLeastOnce).await.unwrap();
    let topic = Topic::new(TopicKind::ScaleWeight, "P2")
        .unwrap()
        .render(&site);
    let publish = |grams: i64, stable: bool| {
        let client = client.clone();
        let topic = topic.clone();
        async move {
            let msg = WeightMsg {
                grams,
                stable,
                ts: 0,
            };
            client
                .publish(topic, QoS::AtLeastOnce, false, msg.encode())
                .await
                .unwrap();
        }
    };
    // 95 g + 120 g box, placed: motion, then stable.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        publish(180, false).await;
        publish(216, true).await;
        client
            .publish(
                topic.clone(),
                QoS::AtLeastOnce,
                false,
                b"{\"v\":1,\"grams\":0.5}".to_vec(),
            )
            .await
            .unwrap();
        let (_, stations) = app.get("/api/v1/pack-stations").await;
        let scale = &stations[0]["scale"];
        if scale["online"] == true && scale["grams"] == 216 {
            assert_eq!(
                (scale["stable"].as_bool(), scale["source"].as_str()),
                (Some(true), Some("mqtt")),
                "{scale}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stations}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let packer = app.user("pat", "packer").await;
    let (s, p) = app
        .call_as(
            Some(&packer),
            Method::POST,
            "/api/v1/packages",
            Some(json!({"station": "P2", "code": "TOTE-1", "items": [EAN], "box": "BOX-S"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["gross_grams"], 216);
    let job = tokio::time::timeout(Duration::from_secs(15), jobs.recv())
        .await
        .expect("a job on printer/P2/job")
        .unwrap();
    let job = PrintJob::decode(&job).expect("a job envelope");
    // Sent is not printed: the job waits for the bridge's report.
    let (_, jobs) = app.get("/api/v1/print-jobs?station=P2").await;
    assert_eq!(
        (jobs[0]["state"].as_str(), jobs[0]["id"].as_u64()),
        (Some("queued"), Some(job.job)),
        "{jobs}"
    );
    let status_topic = Topic::new(TopicKind::PrinterStatus, "P2")
        .unwrap()
        .render(&site);
    for report in [
        PrinterReport::Status(PrinterStatus::READY),
        PrinterReport::Printed { job: job.job },
    ] {
        client
            .publish(
                status_topic.clone(),
                QoS::AtLeastOnce,
                false,
                report.encode(),
            )
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, jobs) = app.get("/api/v1/print-jobs?station=P2").await;
        if jobs[0]["state"] == "printed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{jobs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, stations) = app.get("/api/v1/pack-stations").await;
    assert_eq!(stations[0]["printer"]["online"], true, "{stations}");
    let barcodes: Vec<String> = Decoder::new()
        .feed(&job.bytes)
        .into_iter()
        .filter_map(|c| match c {
            Ok(EscPosCommand::Barcode(b)) if b.symbology == Symbology::Code128 => {
                Some(String::from_utf8_lossy(&b.data).into_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        barcodes,
        vec![p["waybill_no"].as_str().unwrap().to_string()]
    );
    poll.abort();
    app.finish().await;
}

/// The label printer on a serial port: opened by path for each job, asked
/// for its status, sent the label, asked again; switched off (the port
/// vanishes) the job waits and prints once when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_label_printer_prints_and_survives_being_unplugged() {
    let Some(st) = sqlite_station(true, |_| {}).await else {
        return;
    };
    st.printer.go_offline().await;
    let p = st.packed("ORD-9").await;
    job_waiting(&st.app).await;
    st.printer.come_online().await.unwrap();
    let labels = st
        .printer
        .wait_for_labels(1, Duration::from_secs(20))
        .await
        .expect("printed over serial once plugged back in");
    assert_eq!(labels[0].barcodes[0].1, p["waybill_no"].as_str().unwrap());
    assert!(
        labels[0].has_line_containing("张*"),
        "{}",
        labels[0].render()
    );
    st.finish().await;
}

/// A SQLite station whose Yaohua scale settles in 200 ms (serial or TCP
/// printer), with `adjust` applied to its configuration.
async fn sqlite_station(serial_printer: bool, adjust: impl FnOnce(&mut Config)) -> Option<Station> {
    station_with(
        Backend::Sqlite,
        ScaleProtocol::YaohuaA9,
        Duration::from_millis(200),
        serial_printer,
        adjust,
    )
    .await
}

impl Station {
    /// `order_no` (one unit) picked, placed on the scale and packed: the
    /// package.
    async fn packed(&self, order_no: &str) -> Value {
        self.picked_order(order_no, 1).await;
        let packer = self.app.user("pat", "packer").await;
        self.place(215).await;
        let (s, p) = self.pack(&packer, 1).await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        p
    }
}

/// Waits until the station's only print job failed an attempt and stays
/// queued, with why.
async fn job_waiting(app: &TestApp) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, jobs) = app.get("/api/v1/print-jobs?station=P1").await;
        if jobs[0]["last_error"].is_string() {
            assert_eq!(jobs[0]["state"], "queued", "{jobs}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{jobs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The station's printer behind the real printer bridge (the library, run
/// in-process as the demo runs it), with the printer simulator on TCP.
fn spawn_printer_bridge(
    app: &TestApp,
    printer: &PrinterSim,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), bondgate_printer_bridge::BridgeError>>,
) {
    use bondgate_printer_bridge::{Config as BridgeConfig, EdgeConfig, PrinterPort};
    let edge = EdgeConfig {
        broker: bondgate::mqtt::BrokerAddr::parse(&app.server.mqtt_url).unwrap(),
        site: bondgate_protocol::Site::new("SH01").unwrap(),
        device: bondgate_protocol::DeviceId::new("printer-bridge-P1").unwrap(),
    };
    let mut config = BridgeConfig::new(
        edge,
        bondgate_protocol::StationId::new("P1").unwrap(),
        PrinterPort::Tcp(printer.local_addr().to_string()),
    );
    config.retry = Duration::from_millis(200);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bondgate_printer_bridge::run(config, async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

/// Waits until the station's only print job is printed.
async fn job_printed(app: &TestApp) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    loop {
        let (_, jobs) = app.get("/api/v1/print-jobs?station=P1").await;
        if jobs[0]["state"] == "printed" {
            return jobs;
        }
        assert!(std::time::Instant::now() < deadline, "{jobs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The real printer bridge between the server and the printer: the label
/// comes out once, the job is printed on the bridge's report, and the
/// station shows the printer as the bridge sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printer_bridge_prints_the_label_once_on_the_bridges_word() {
    let Some(st) = sqlite_station(false, |c| {
        c.packing.stations[0].printer = Some(PrinterTarget::Mqtt)
    })
    .await
    else {
        return;
    };
    let (stop, bridge) = spawn_printer_bridge(&st.app, &st.printer);
    let p = st.packed("ORD-11").await;
    let labels = st
        .printer
        .wait_for_labels(1, Duration::from_secs(10))
        .await
        .expect("printed through the bridge");
    assert_eq!(labels[0].barcodes[0].1, p["waybill_no"].as_str().unwrap());
    let jobs = job_printed(&st.app).await;
    assert_eq!(jobs[0]["attempts"], 1, "{jobs}");
    let (_, stations) = st.app.get("/api/v1/pack-stations").await;
    let printer = &stations[0]["printer"];
    assert_eq!(
        (printer["target"].as_str(), printer["online"].as_bool()),
        (Some("mqtt"), Some(true)),
        "{stations}"
    );
    assert_eq!(st.printer.labels().len(), 1);
    let _ = stop.send(());
    bridge.await.unwrap().unwrap();
    st.finish().await;
}

/// The bridge is down when the label is queued: the server sends the job,
/// hears nothing, keeps it queued and sends it again with the same id;
/// once the bridge is up the label prints exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_queued_while_the_bridge_is_down_prints_once_when_it_comes_up() {
    let Some(st) = sqlite_station(false, |c| {
        c.packing.stations[0].printer = Some(PrinterTarget::Mqtt)
    })
    .await
    else {
        return;
    };
    let p = st.packed("ORD-12").await;
    // No bridge: the attempt times out and the job stays queued, with why.
    job_waiting(&st.app).await;
    assert!(st.printer.labels().is_empty());

    let (stop, bridge) = spawn_printer_bridge(&st.app, &st.printer);
    let labels = st
        .printer
        .wait_for_labels(1, Duration::from_secs(12))
        .await
        .expect("printed once the bridge is up");
    assert_eq!(labels[0].barcodes[0].1, p["waybill_no"].as_str().unwrap());
    job_printed(&st.app).await;
    assert_eq!(st.printer.labels().len(), 1);
    let _ = stop.send(());
    bridge.await.unwrap().unwrap();
    st.finish().await;
}
