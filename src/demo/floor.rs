//! The demo's people and partners, as robots that act only through the
//! server's real interfaces: the platform posts orders over HTTP, the customs
//! gateway delivers signed receipts over HTTP, pickers walk PDAs over MQTT,
//! packers scan at their station (HTTP) while the parcel lands on the pty
//! scale, and the gate's scanner scans waybills over MQTT. Each robot runs
//! until the stop signal and survives refusals (they are part of the show).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bondgate_customs::ReturnTime;
use bondgate_protocol::{BrokerAddr, DeviceId, GateId, GateOutcome, Site};
use bondgate_sim::customs_gw::{Script, Target};
use bondgate_sim::{
    Declaration, Fault, GateScanner, Gateway, GatewayKey, HttpTarget, Pda, PdaOptions,
    ScaleControl, WalkError, Walker,
};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_serial::SerialStream;

use super::api::Api;
use super::seed;

/// What the floor did, for the console and the end-of-run check.
#[derive(Default)]
pub struct Stats {
    pub orders: AtomicU64,
    pub picked_tasks: AtomicU64,
    pub packed: AtomicU64,
    pub mismatches: AtomicU64,
    pub released: AtomicU64,
    pub rejected: AtomicU64,
    pub gate_open: AtomicU64,
    pub gate_refused: AtomicU64,
    pub errors: AtomicU64,
}

impl Stats {
    pub fn line(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "orders {} · pick tasks {} · packed {} (weight mismatches {}) · customs released {} rejected {} · gate opened {} refused {} · robot errors {}",
            g(&self.orders),
            g(&self.picked_tasks),
            g(&self.packed),
            g(&self.mismatches),
            g(&self.released),
            g(&self.rejected),
            g(&self.gate_open),
            g(&self.gate_refused),
            g(&self.errors),
        )
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Sleeps, or returns false when the demo is stopping.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Where the platform writes each order number the server acknowledged
/// (201), one per line, synced before the next order is sent: after a
/// crash, every line must still be an order the server knows.
pub const ACKED_ORDERS: &str = "acked-orders";

/// The platform's own record of acknowledged orders.
pub struct AckLog(std::fs::File);

impl AckLog {
    pub fn open(path: &std::path::Path) -> anyhow::Result<AckLog> {
        Ok(AckLog(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ))
    }

    fn record(&mut self, order_no: &str) -> std::io::Result<()> {
        use std::io::Write;
        writeln!(self.0, "{order_no}")?;
        self.0.sync_data()
    }
}

/// A sequence number above any an earlier run of the demo used: scanners
/// count on across restarts, and the server answers an old seq from its
/// record (or refuses it).
pub fn fresh_seq() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(1)
}

/// The e-commerce platform: a new order every `every`.
pub async fn platform(
    api: Api,
    mut acked: AckLog,
    every: Duration,
    stats: Arc<Stats>,
    customs: mpsc::UnboundedSender<String>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = rand::rngs::StdRng::from_entropy();
    let run = chrono::Utc::now().format("%H%M%S").to_string();
    let mut n = 0u64;
    while pause(&mut stop, every).await {
        n += 1;
        let order_no = format!("DEMO{run}{n:05}");
        let body = seed::order(&order_no, &mut rng);
        match api
            .call(reqwest::Method::POST, "/api/v1/orders", Some(body))
            .await
        {
            Ok(Ok(_)) => {
                bump(&stats.orders);
                if let Err(e) = acked.record(&order_no) {
                    tracing::warn!(error = %e, "platform: cannot record the acknowledged order");
                }
                let _ = customs.send(order_no);
            }
            Ok(Err(refused)) => {
                // Out of stock is a business answer: the restocker will
                // receive more.
                tracing::info!(order = %order_no, %refused, "platform: order refused");
            }
            Err(e) => {
                bump(&stats.errors);
                tracing::warn!(order = %order_no, error = %e, "platform: order not sent");
            }
        }
    }
}

/// The customs gateway: for each order, the 清单's receipts one after the
/// other — mostly released, some inspected first, a few rejected.
pub async fn customs_gateway(
    base: String,
    api: Api,
    key: GatewayKey,
    stats: Arc<Stats>,
    mut orders: mpsc::UnboundedReceiver<String>,
    stop: watch::Receiver<bool>,
) {
    let gateway = Arc::new(tokio::sync::Mutex::new(Gateway::new(key, rand::random())));
    let target = match HttpTarget::new(&base, api.token()) {
        Ok(t) => Arc::new(Target::Http(t)),
        Err(e) => {
            tracing::error!(error = %e, "customs gateway: no HTTP target");
            return;
        }
    };
    // 清单 serials are unique for the customs office; a resumed run goes on
    // past the last one.
    let mut serial = u32::try_from(fresh_seq() / 1000 % 900_000_000).unwrap_or(1);
    while let Some(order_no) = orders.recv().await {
        if *stop.borrow() {
            break;
        }
        serial += 1;
        let roll: u32 = rand::thread_rng().gen_range(0..100);
        let now = chrono::Utc::now().naive_utc() + chrono::Duration::hours(8);
        let Some(start) = ReturnTime::from_china_time(now - chrono::Duration::minutes(4)) else {
            continue;
        };
        let script = match roll {
            0..=3 => Script::rejection(start),
            4..=13 => Script::inspection_then_release(start),
            _ => Script::normal(start),
        };
        let decl = Declaration::new(&format!("COP-{order_no}"), start, serial);
        let (gateway, target, stats, mut stop) =
            (gateway.clone(), target.clone(), stats.clone(), stop.clone());
        tokio::spawn(async move {
            let deliveries = script.prepare(&mut *gateway.lock().await, &decl);
            let mut rng = rand::rngs::StdRng::from_entropy();
            for (_, d) in deliveries {
                // Customs answers within seconds to minutes; the demo within
                // seconds, an inspection a little longer.
                let wait = if d.label.ends_with("-500") {
                    20
                } else {
                    rng.gen_range(2..6)
                };
                if !pause(&mut stop, Duration::from_secs(wait)).await {
                    return;
                }
                match target.deliver(&d).await {
                    Ok(answer) if answer.stored() => {
                        if d.label.ends_with("-800") {
                            bump(&stats.released);
                        } else if d.label.ends_with("-100") {
                            bump(&stats.rejected);
                        }
                    }
                    Ok(answer) => {
                        bump(&stats.errors);
                        tracing::warn!(order = %decl.cop_no, receipt = %d.label, %answer, "customs gateway: receipt not stored");
                    }
                    Err(e) => {
                        bump(&stats.errors);
                        tracing::warn!(order = %decl.cop_no, error = %e, "customs gateway: delivery failed");
                        return;
                    }
                }
            }
        });
    }
}

/// A picker with a PDA on MQTT: walks whatever work the waves give, now
/// and then with the mistakes real pickers make.
pub async fn picker(
    broker: BrokerAddr,
    site: Site,
    device: &'static str,
    badge: &'static str,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(id) = DeviceId::new(device) else {
        return;
    };
    let mut options = PdaOptions::new(broker, site, id);
    options.timeout = Duration::from_secs(15);
    options.first_seq = fresh_seq();
    let mut pda = loop {
        match Pda::connect(options.clone()).await {
            Ok(p) => break p,
            Err(e) => {
                tracing::warn!(device, error = %e, "picker: PDA cannot connect yet");
                if !pause(&mut stop, Duration::from_secs(2)).await {
                    return;
                }
            }
        }
    };
    let mut next_tote = 1usize;
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        let mut walker = Walker::new(badge).first_tote(next_tote);
        if rng.gen_ratio(1, 8) {
            walker = walker.fault(Fault::WrongBinOnce);
        } else if rng.gen_ratio(1, 8) {
            walker = walker.fault(Fault::WrongItemOnce);
        }
        let idle = match walker.walk(&mut pda).await {
            Ok(t) => {
                let totes = t
                    .steps
                    .iter()
                    .filter(|s| !s.replay && s.sent.starts_with("TOTE-"))
                    .count();
                next_tote += totes;
                let tasks = t.tasks_completed();
                stats
                    .picked_tasks
                    .fetch_add(tasks as u64, Ordering::Relaxed);
                tasks == 0
            }
            // The scripted slip had no chance: there was little or no work.
            Err(WalkError::FaultNotApplied { tasks, .. }) => {
                stats
                    .picked_tasks
                    .fetch_add(tasks as u64, Ordering::Relaxed);
                next_tote += tasks + 1;
                tasks == 0
            }
            Err(e) => {
                bump(&stats.errors);
                tracing::warn!(device, error = %e, "picker: walk broke off");
                next_tote += 1;
                true
            }
        };
        let wait = if idle { 3 } else { 1 };
        if !pause(&mut stop, Duration::from_secs(wait)).await {
            break;
        }
    }
    let _ = pda.disconnect().await;
}

/// Orders some pack station took: two packers never take the same tote.
#[derive(Default)]
pub struct Claims(Mutex<HashSet<String>>);

impl Claims {
    fn take(&self, order_no: &str) -> bool {
        self.0
            .lock()
            .expect("claims lock")
            .insert(order_no.to_string())
    }
}

/// A parcel on its way to the gate.
#[derive(Debug, Clone)]
pub struct Parcel {
    pub order_no: String,
    pub waybill: String,
}

/// A packer at `station` (`api`, a packer's login): takes a picked tote, scans it and its items at
/// the station, puts the parcel on the scale and scans the box label; the
/// server weighs, packs and prints. Now and then the parcel weighs wrong (a
/// missing insert, the wrong box) and is weighed again.
#[allow(clippy::too_many_arguments)]
pub async fn packer(
    conveyor: Api,
    api: Api,
    station: &'static str,
    scale: ScaleControl,
    claims: Arc<Claims>,
    stats: Arc<Stats>,
    gate: mpsc::UnboundedSender<Parcel>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seq = fresh_seq();
    let mut rng = rand::rngs::StdRng::from_entropy();
    while pause(&mut stop, Duration::from_millis(1500)).await {
        // The conveyor brings the totes that are ready (the robot reads the
        // order list with a floor manager's login; a packer only scans).
        let picked = match conveyor.get("/api/v1/orders?state=picked&limit=20").await {
            Ok(v) => v,
            Err(e) => {
                bump(&stats.errors);
                tracing::warn!(station, error = %e, "packer: cannot list picked orders");
                continue;
            }
        };
        let Some(order_no) = items(&picked)
            .iter()
            .filter_map(|o| o["order_no"].as_str())
            .find(|no| claims.take(no))
            .map(str::to_string)
        else {
            continue;
        };
        match pack_one(
            &api, station, &scale, &order_no, &mut seq, &mut rng, &stats, &mut stop,
        )
        .await
        {
            Ok(Some(waybill)) => {
                bump(&stats.packed);
                let _ = gate.send(Parcel { order_no, waybill });
            }
            Ok(None) => {}
            Err(e) => {
                bump(&stats.errors);
                tracing::warn!(station, order = %order_no, error = %e, "packer: gave up on this parcel");
                let _ = scan(&api, station, &mut seq, "#CANCEL").await;
            }
        }
        // The parcel goes onto the conveyor: the plate is empty again.
        scale.set_weight(0);
    }
}

fn items(list: &Value) -> Vec<Value> {
    match list {
        Value::Array(a) => a.clone(),
        v => v["items"].as_array().cloned().unwrap_or_default(),
    }
}

async fn scan(api: &Api, station: &str, seq: &mut u64, code: &str) -> anyhow::Result<Value> {
    *seq += 1;
    api.post(
        &format!("/api/v1/pack-stations/{station}/scans"),
        json!({"seq": *seq, "code": code}),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn pack_one(
    api: &Api,
    station: &str,
    scale: &ScaleControl,
    order_no: &str,
    seq: &mut u64,
    rng: &mut impl Rng,
    stats: &Stats,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<String>> {
    let plan = api
        .get(&format!("/api/v1/packages/plan/{order_no}"))
        .await?;
    let tote = plan["tote"].as_str().unwrap_or(order_no).to_string();
    let answer = scan(api, station, seq, &tote).await?;
    anyhow::ensure!(answer["ok"] == true, "tote {tote}: {}", answer["text"]);
    let mut expected = 0i64;
    let mut units = 0i64;
    for line in plan["lines"].as_array().cloned().unwrap_or_default() {
        let qty = line["qty"].as_i64().unwrap_or(0);
        let code = line["barcodes"][0].as_str().unwrap_or_default().to_string();
        expected += qty * line["unit_grams"].as_i64().unwrap_or(0);
        units += qty;
        for _ in 0..qty {
            let a = scan(api, station, seq, &code).await?;
            anyhow::ensure!(a["ok"] == true, "item {code}: {}", a["text"]);
            if !pause(stop, Duration::from_millis(300)).await {
                return Ok(None);
            }
        }
    }
    let (box_code, _, tare) = seed::BOXES[usize::from(units > 3)];
    let net = expected + tare;
    // Real parcels weigh a few grams off: tape, the label, the scale.
    let mut gross = net + rng.gen_range(-4..=6);
    let mismatch = rng.gen_ratio(1, 25);
    if mismatch {
        gross += 300;
    }
    scale.set_weight(gross);
    if !pause(stop, Duration::from_millis(900)).await {
        return Ok(None);
    }
    let mut answer = scan(api, station, seq, box_code).await?;
    if answer["ok"] != true && mismatch {
        bump(&stats.mismatches);
        tracing::info!(station, order = %order_no, text = %answer["text"], "packer: weight mismatch, repacking");
        // Lift the parcel, find the extra insert, put it back and weigh again.
        scale.set_weight(0);
        if !pause(stop, Duration::from_secs(4)).await {
            return Ok(None);
        }
        scale.set_weight(net + rng.gen_range(-3..=3));
        if !pause(stop, Duration::from_millis(900)).await {
            return Ok(None);
        }
        answer = scan(api, station, seq, box_code).await?;
    }
    anyhow::ensure!(answer["ok"] == true, "box {box_code}: {}", answer["text"]);
    let waybill = answer["package"]["waybill_no"].as_str().map(str::to_string);
    anyhow::ensure!(waybill.is_some(), "packed without a waybill: {answer}");
    Ok(waybill)
}

/// The outbound gate's lanes. G1's handheld scanner is on a serial port
/// behind `scanner-bridge`: the waybill is "read" into its pty and the
/// answer seen on the gate's decision list, as the guard sees it. G2's
/// scanner speaks MQTT itself. Each parcel is scanned when it reaches the
/// gate; one not yet released is refused (the guard's screen says why) and
/// comes back later; one whose order customs rejected is set aside.
pub async fn gate_lane(
    broker: BrokerAddr,
    site: Site,
    serial_scanner: SerialStream,
    guard: Api,
    stats: Arc<Stats>,
    mut parcels: mpsc::UnboundedReceiver<Parcel>,
    mut stop: watch::Receiver<bool>,
) {
    let wait = Duration::from_secs(10);
    let Ok(g2) = GateId::new(super::devices::GATES[1]) else {
        return;
    };
    let mut mqtt_scanner = loop {
        match GateScanner::connect(&broker, &site, &g2, wait).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(gate = %g2, error = %e, "gate scanner cannot connect yet");
                if !pause(&mut stop, Duration::from_secs(2)).await {
                    return;
                }
            }
        }
    };
    let mut serial_scanner = serial_scanner;
    let mut mqtt_seq = fresh_seq();
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<Parcel>();
    let mut n = 0usize;
    loop {
        let parcel = tokio::select! {
            p = parcels.recv() => match p { Some(p) => p, None => break },
            p = retry_rx.recv() => match p { Some(p) => p, None => break },
            _ = stop.changed() => break,
        };
        // The parcel rides the conveyor to the gate.
        if !pause(&mut stop, Duration::from_secs(2)).await {
            break;
        }
        let customs = guard
            .get(&format!("/api/v1/orders/{}/customs", parcel.order_no))
            .await
            .unwrap_or(Value::Null);
        let released = customs["released"] == true;
        let state = customs["state"].as_str().unwrap_or("");
        if !released && matches!(state, "rejected" | "cancelled") {
            // Customs said no: the parcel goes back inside, never out.
            tracing::info!(order = %parcel.order_no, state, "gate: customs refused this order; parcel set aside");
            continue;
        }
        // Most parcels wait in the staging lane until released; some are
        // pushed to the gate early, and the gate refuses them.
        if !released && !rand::thread_rng().gen_ratio(1, 4) {
            requeue(&retry_tx, parcel, &stop, 5);
            continue;
        }
        n += 1;
        let answer = if n % 2 == 0 {
            mqtt_seq += 1;
            mqtt_scanner
                .scan_with_seq(mqtt_seq, &parcel.waybill, wait)
                .await
                .map(|r| (r.outcome == GateOutcome::Open, r.code, r.text_en))
        } else {
            serial_scan(&mut serial_scanner, &guard, &parcel.waybill, wait).await
        };
        match answer {
            Ok((true, _, _)) => bump(&stats.gate_open),
            Ok((false, code, reason)) => {
                bump(&stats.gate_refused);
                tracing::info!(order = %parcel.order_no, %code, %reason, "gate: refused");
                if code != "already_exited" && code != "cancelled" {
                    requeue(&retry_tx, parcel, &stop, 8);
                }
            }
            Err(e) => {
                bump(&stats.errors);
                tracing::warn!(order = %parcel.order_no, error = %e, "gate: no answer to the scan");
                requeue(&retry_tx, parcel, &stop, 5);
            }
        }
    }
}

/// Reads `code` into G1's serial scanner and waits for the gate's decision
/// on it (the newest for that code, after the scan): (opened, code, reason).
async fn serial_scan(
    port: &mut SerialStream,
    guard: &Api,
    code: &str,
    wait: Duration,
) -> Result<(bool, String, String), String> {
    use tokio::io::AsyncWriteExt;
    let path = format!(
        "/api/v1/gates/{}/decisions?limit=20",
        super::devices::GATES[0]
    );
    let newest = |list: &Value| -> i64 {
        items(list)
            .iter()
            .filter(|d| d["code"] == code)
            .filter_map(|d| d["id"].as_i64())
            .max()
            .unwrap_or(0)
    };
    let before = newest(&guard.get(&path).await.map_err(|e| e.to_string())?);
    port.write_all(format!("{code}\r\n").as_bytes())
        .await
        .map_err(|e| format!("the scanner's port: {e}"))?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let list = guard.get(&path).await.map_err(|e| e.to_string())?;
        let found = items(&list)
            .into_iter()
            .find(|d| d["code"] == code && d["id"].as_i64().unwrap_or(0) > before);
        // A grant is pending until the relay's read-back confirms it.
        if let Some(d) = found.filter(|d| d["result"] != "pending") {
            let reason = d["reason_en"].as_str().unwrap_or_default().to_string();
            let code = d["reason_code"].as_str().unwrap_or_default().to_string();
            return Ok((d["result"] == "open", code, reason));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("no decision on {code} within {} s", wait.as_secs()));
        }
    }
}

fn requeue(
    tx: &mpsc::UnboundedSender<Parcel>,
    parcel: Parcel,
    stop: &watch::Receiver<bool>,
    secs: u64,
) {
    let tx = tx.clone();
    let mut stop = stop.clone();
    tokio::spawn(async move {
        if pause(&mut stop, Duration::from_secs(secs)).await {
            let _ = tx.send(parcel);
        }
    });
}

/// Receives more of whatever runs low, as the warehouse's inbound team does.
pub async fn restocker(admin: Api, stats: Arc<Stats>, mut stop: watch::Receiver<bool>) {
    let mut round = 10u32;
    while pause(&mut stop, Duration::from_secs(30)).await {
        for (i, p) in seed::catalogue().iter().enumerate() {
            let stock = match admin.get(&format!("/api/v1/inventory?sku={}", p.sku)).await {
                Ok(s) => s,
                Err(e) => {
                    bump(&stats.errors);
                    tracing::warn!(error = %e, "restocker: cannot read stock");
                    continue;
                }
            };
            if stock["totals"]["available"].as_i64().unwrap_or(0) < 60 {
                round += 1;
                let bins = seed::bins();
                let bin = &bins[(i + round as usize) % bins.len()];
                if let Err(e) = seed::receive(
                    &admin,
                    p,
                    bin,
                    &format!("LOT-R{round}"),
                    "2028-12-31",
                    round,
                )
                .await
                {
                    bump(&stats.errors);
                    tracing::warn!(sku = p.sku, error = %e, "restocker: receipt refused");
                }
            }
        }
    }
}

/// The customs gateway's Ed25519 key (its public half is given to the
/// server): made once per data directory and kept there (mode 0600), so a
/// run resumed with --keep-data still verifies.
pub fn gateway_key(dir: &std::path::Path) -> anyhow::Result<GatewayKey> {
    use base64::Engine;
    let path = dir.join("demo-gateway.key");
    let b64 = base64::engine::general_purpose::STANDARD;
    let secret: [u8; 32] = match std::fs::read_to_string(&path) {
        Ok(text) => b64
            .decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("{} is not a key", path.display()))?,
        Err(_) => {
            let secret: [u8; 32] = rand::random();
            bondgate::app::write_secret(&path, &b64.encode(secret))?;
            secret
        }
    };
    Ok(GatewayKey::ed25519("demo-gw-1", &secret))
}
