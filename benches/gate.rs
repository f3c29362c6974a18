//! The outbound gate (DESIGN §7: scan → output command p99 ≤ 5 ms at 100
//! scans/s) and customs receipt ingestion, on SQLite (synchronous=FULL) and
//! PostgreSQL.
//!
//! **Scan → command.** The real server (`Server::start`: HTTP, store,
//! embedded broker, MQTT link, gate service) runs in this process with
//! `BENCH_GATES` gates whose output is an MQTT bridge; a simulated bridge
//! (`bondgate-sim`'s `GateBridgeSim`) drives each, so every grant is really
//! pulsed and confirmed and its parcel ships in the commit that records the
//! confirmation. Each gate has an MQTT scanner (`GateScanner`, the
//! production path: `gate/{gate}/scan` → `gate/{gate}/result`) offered
//! `rate / gates` scans per second, one scan outstanding at a time as a real
//! scanner. A separate raw rumqttc client subscribed to
//! `bondgate/SH01/gate/+/command` timestamps each open command on arrival;
//! with one scan outstanding per gate the command is matched by gate. Two
//! latencies per scan: **scan published → open command seen** and **scan
//! published → result received** (decision, command, pulse confirmation,
//! ship commit, result).
//!
//! Set-up (not timed, through the store's API, `common::packing`): SKUs,
//! stock, orders of 1–3 lines walked into totes, packed with `Store::pack`,
//! and a signed CEB622 800 receipt per order ingested through the customs
//! service (verified with the gateway's Ed25519 test key, parsed, stored).
//! Every scan is a distinct released, packed parcel, so every scan is a real
//! open. Afterwards every order must be shipped, each bridge must have given
//! exactly one pulse per open at its gate, and `Store::integrity` must be
//! clean, or the bench fails.
//!
//! **The decision transaction beside raw SQL.** Two more databases prepared
//! the same way; one parcel at a time, `Store::gate_scan` (the grant) then
//! `Store::gate_output` (the confirmation, which ships the parcel's
//! reservations) on one, and the same reads and writes as hand-written SQL
//! on the other (parcel and order, its open decisions, its 清单's receipts,
//! the decision inserted; then the decision locked, the held reservations
//! read, one `ship` movement each, the locks closed, the order shipped, the
//! decision confirmed), in alternating rounds after a warm-up. Afterwards
//! both must pass `Store::integrity` and agree on confirmed opens, shipped
//! orders, movements and shipped locks.
//!
//! **Receipts ingested per second.** Signed CEB622 receipts (status 2, a new
//! 清单 each), `BENCH_CLIENTS` concurrent clients, through three paths on the
//! same database in alternating rounds: `POST /api/v1/customs/receipts`
//! (signature check, parse, store, state fold), `Store::ingest_customs`
//! directly, and raw SQL (the message row, the receipt row and the audit row
//! in one transaction). Afterwards the database must hold exactly the rows
//! sent.
//!
//! Run: `cargo bench --bench gate`. Knobs (environment):
//! - `BENCH_RATE`: offered scans per second over all gates (default 100).
//! - `BENCH_SECS`: measured seconds (default 10).
//! - `BENCH_GATES`: gates (default 10).
//! - `BENCH_RECEIPTS`: receipts per ingest path and backend (default 600).
//! - `BENCH_CLIENTS`: concurrent ingest clients (default 8).
//! - `BENCH_BACKENDS`: comma list of `sqlite`, `postgres` (default both).
//! - `BENCH_DECISIONS`: measured parcels per path in the decision bench
//!   (default 200).
//! - `BENCH_MQTT_URL`: an external broker (e.g. a Mosquitto with
//!   `set_tcp_nodelay true`) instead of the server's embedded rumqttd.
//! - `BENCH_PG_URL`, `CI=true`: as in the other benches.

mod common;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bondgate::app::Server;
use bondgate::config::{Config, CustomsConfig, CustomsKey, GateConfig, GateOutputConfig};
use bondgate::crypto::PiiCipher;
use bondgate::customs::Customs;
use bondgate::domain::gate::ExitEvent;
use bondgate::domain::Role;
use bondgate::store::{
    Actor, CustomsMessageInput, GateGrant, GateScanInput, NewCustomsReceipt, PackOutcome, Store,
    StoreOptions,
};
use bondgate_customs::receipt::Body;
use bondgate_customs::sign::{ed25519_signing_key, sign_ed25519};
use bondgate_customs::{InventoryReturn, Message, ReturnStatus, ReturnTime};
use bondgate_protocol::{GateId, GateOutcome, PulseMs, Site};
use bondgate_sim::{BrokerAddr, GateBridgeOptions, GateBridgeSim, GateScanner};
use common::packing::{self, order_no};
use common::{main_with, percentile_us, pg_admin, scratch_names, with_database};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

const GATEWAY_SECRET: [u8; 32] = [7; 32];
const KEY_ID: &str = "gw-1";
/// Scans per gate before the measured ones (connections, statements).
const WARMUP_PER_GATE: usize = 2;
const TARGET_P99_MS: f64 = 5.0;
const SCAN_TIMEOUT: Duration = Duration::from_secs(10);

struct Knobs {
    rate: usize,
    secs: usize,
    gates: usize,
    receipts: usize,
    clients: usize,
    decisions: usize,
    backends: Vec<String>,
    pg_url: String,
    ci: bool,
}

impl Knobs {
    fn from_env() -> Result<Knobs> {
        let gates = common::env_count("BENCH_GATES", 10, 100)?;
        Ok(Knobs {
            rate: common::env_count("BENCH_RATE", 100, 10_000)?,
            secs: common::env_count("BENCH_SECS", 10, 600)?,
            gates,
            receipts: common::env_count("BENCH_RECEIPTS", 600, 100_000)?,
            clients: common::env_count("BENCH_CLIENTS", 8, 64)?,
            decisions: common::env_count("BENCH_DECISIONS", 200, 20_000)?,
            backends: std::env::var("BENCH_BACKENDS")
                .unwrap_or_else(|_| "sqlite,postgres".into())
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
            pg_url: common::pg_url(),
            ci: common::ci(),
        })
    }
    /// Measured scans over all gates.
    fn scans(&self) -> usize {
        self.rate * self.secs
    }
    /// Orders prepared: one per scan, warm-up included.
    fn orders(&self) -> usize {
        self.scans() + self.gates * WARMUP_PER_GATE
    }
}

// ------------------------------------------------------------------ customs

/// A CEB622 inventory receipt for `cop_no`, as the customs gateway sends it.
fn ceb622(cop_no: &str, status: i64, time: &str) -> Result<Vec<u8>> {
    Ok(bondgate_customs::encode(&Message {
        envelope: None,
        guid: Some(format!("GUID-{cop_no}-{status}-{time}")),
        body: Body::Ceb622(vec![InventoryReturn {
            guid: Some(format!("R-{cop_no}-{status}-{time}")),
            customs_code: Some("2924".into()),
            ebp_code: Some("3301964J31".into()),
            ebc_code: Some("3301964J3X".into()),
            agent_code: Some("3301980B01".into()),
            cop_no: cop_no.into(),
            pre_no: Some("B20261123000000001".into()),
            invt_no: (status >= 120).then(|| "29242026I000000001".into()),
            return_status: ReturnStatus::new(status),
            return_time: ReturnTime::parse(time).context("return time")?,
            return_info: Some(format!("[Code:{status};Desc:bench]")),
        }]),
    }))
}

fn customs_config() -> CustomsConfig {
    CustomsConfig {
        keys: vec![CustomsKey {
            id: KEY_ID.into(),
            kind: "ed25519".into(),
            bytes: ed25519_signing_key(&GATEWAY_SECRET)
                .verifying_key()
                .to_bytes()
                .to_vec(),
        }],
        inbox: None,
    }
}

fn sign(body: &[u8]) -> String {
    sign_ed25519(&ed25519_signing_key(&GATEWAY_SECRET), body)
}

fn gateway() -> Actor {
    Actor {
        user_id: 0,
        username: "gw".into(),
        roles: vec![Role::Integration],
    }
}

/// Order `i`'s 清单 number (`packing::order` declares `COP-P{i:06}`).
fn cop_no(i: usize) -> String {
    format!("COP-P{i:06}")
}

// ------------------------------------------------------------------- set-up

/// `orders` orders picked, packed and released (a verified 800 each), on
/// the database at `url`; with `synchronous=NORMAL` on SQLite (not timed).
async fn prepare_released(url: &str, pii: &PiiCipher, orders: usize) -> Result<()> {
    let store = Store::connect(
        url,
        &StoreOptions {
            sqlite_sync_full: false,
            ..StoreOptions::default()
        },
    )
    .await?;
    let prepared = async {
        packing::prepare(&store, pii, orders).await?;
        let packer = packing::packer();
        for i in 0..orders {
            match store.pack(&packer, &packing::record(i)).await? {
                PackOutcome::Packed(_, true) => {}
                other => bail!("order {i}: not packed: {other:?}"),
            }
        }
        let customs = Customs::new(store.clone(), &customs_config())?;
        for i in 0..orders {
            let body = ceb622(&cop_no(i), 800, "20261123110000000")?;
            customs
                .ingest(&gateway(), Some(KEY_ID), Some(&sign(&body)), &body)
                .await
                .map_err(|e| anyhow::anyhow!("release of order {i}: {e}"))?;
        }
        Ok(())
    }
    .await;
    store.close().await;
    prepared
}

// ------------------------------------------------------- scan → command

/// One gate's measured latencies, µs.
#[derive(Default)]
struct GateSamples {
    command: Vec<u64>,
    result: Vec<u64>,
    opens: usize,
}

/// Subscribes a raw client to every gate's command topic; each arrival's
/// instant goes to its gate's channel. Returns once subscribed.
async fn command_listener(
    broker: &BrokerAddr,
    site: &str,
    senders: HashMap<String, mpsc::UnboundedSender<Instant>>,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut options = MqttOptions::new(
        format!("bench-cmd-{}", std::process::id()),
        broker.host(),
        broker.port(),
    );
    options.set_keep_alive(Duration::from_secs(10));
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let filter = format!("bondgate/{site}/gate/+/command");
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        let _client = client.clone();
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let (c, f) = (client.clone(), filter.clone());
                    tokio::spawn(async move { c.subscribe(f, QoS::AtLeastOnce).await });
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let at = Instant::now();
                    if let Some(tx) = p.topic.split('/').nth(3).and_then(|g| senders.get(g)) {
                        let _ = tx.send(at);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .context("command listener not subscribed in 10 s")??;
    Ok(task)
}

/// One gate's scanner: scans `parcels` at `every`, one outstanding at a
/// time, from `start`; the first `warmup` are not recorded.
async fn gate_device(
    mut scanner: GateScanner,
    parcels: Vec<usize>,
    every: Duration,
    start: Instant,
    warmup: usize,
    mut commands: mpsc::UnboundedReceiver<Instant>,
) -> Result<GateSamples> {
    let mut tick = tokio::time::interval_at(start.into(), every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = GateSamples::default();
    for (n, i) in parcels.into_iter().enumerate() {
        tick.tick().await;
        if commands.try_recv().is_ok() {
            bail!("an open command nobody scanned for");
        }
        let code = format!("PKG-{}", order_no(i));
        let sent = Instant::now();
        let result = scanner
            .scan(&code, SCAN_TIMEOUT)
            .await
            .map_err(|e| anyhow::anyhow!("scan {code}: {e}"))?;
        let answered = sent.elapsed();
        ensure!(
            result.outcome == GateOutcome::Open,
            "scan {code}: not an open: {result:?}"
        );
        let command = tokio::time::timeout(SCAN_TIMEOUT, commands.recv())
            .await
            .with_context(|| format!("scan {code}: no open command seen"))?
            .context("command listener ended")?;
        out.opens += 1;
        if n >= warmup {
            out.command
                .push(command.saturating_duration_since(sent).as_micros() as u64);
            out.result.push(answered.as_micros() as u64);
        }
    }
    Ok(out)
}

struct GateRow {
    backend: String,
    scans: usize,
    secs: f64,
    command: Vec<u64>,
    result: Vec<u64>,
}

struct IngestRow {
    backend: String,
    http: Throughput,
    store: Throughput,
    raw: Throughput,
}

#[derive(Default)]
struct Throughput {
    n: usize,
    busy: Duration,
}

impl Throughput {
    fn per_s(&self) -> u64 {
        common::per_second(self.n, self.busy)
    }
}

async fn login(http: &reqwest::Client, base: &str, user: &str, password: &str) -> Result<String> {
    let v: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(v["token"].as_str().context("login token")?.to_string())
}

/// Runs the scan bench, then the ingest bench, on one server whose database
/// is `url` (`raw` opens a second pool on it for the raw ingest path).
async fn run_backend(
    k: &Knobs,
    backend: &str,
    dir: &std::path::Path,
    url: &str,
) -> Result<(GateRow, IngestRow)> {
    let pii = PiiCipher::load_or_create(dir, None)?;
    let setup = Instant::now();
    prepare_released(url, &pii, k.orders()).await?;
    eprintln!(
        "{backend}: {} orders picked, packed and released in {:.0} s",
        k.orders(),
        setup.elapsed().as_secs_f64()
    );
    let mut config = Config::for_data_dir(dir);
    config.database_url = url.to_string();
    config.listen = "127.0.0.1:0".parse()?;
    config.mqtt.broker = match std::env::var("BENCH_MQTT_URL") {
        Ok(url) => {
            // Topics of its own on a shared broker.
            config.mqtt.site = format!("BENCH{}", std::process::id());
            bondgate::config::MqttBroker::External(url)
        }
        Err(_) => bondgate::config::MqttBroker::Embedded("127.0.0.1:0".parse()?),
    };
    config.picking.auto_wave = None;
    config.store.sqlite_sync_full = true;
    config.customs = customs_config();
    let gate_ids: Vec<String> = (1..=k.gates).map(|g| format!("G{g}")).collect();
    config.gates = gate_ids
        .iter()
        .map(|id| -> Result<GateConfig> {
            Ok(GateConfig {
                id: id.clone(),
                pulse: PulseMs::new(300)?,
                confirm_timeout: Duration::from_millis(1500),
                output: GateOutputConfig::Mqtt,
            })
        })
        .collect::<Result<_>>()?;
    let site = config.mqtt.site.clone();
    let server = Server::start(config).await?;
    let outcome = async {
        let gate = gates(k, &server, url, &site, &gate_ids, backend).await?;
        let ingest = ingest(k, &server, url, backend).await?;
        Ok::<_, anyhow::Error>((gate, ingest))
    }
    .await;
    server.shutdown().await?;
    let outcome = outcome?;
    common::integrity_totals(url, &StoreOptions::default(), backend).await?;
    Ok(outcome)
}

async fn gates(
    k: &Knobs,
    server: &Server,
    url: &str,
    site: &str,
    gate_ids: &[String],
    backend: &str,
) -> Result<GateRow> {
    let broker = BrokerAddr::parse(&server.mqtt_url)?;
    let site_id = Site::new(site)?;
    let mut bridges = Vec::new();
    let mut scanners = Vec::new();
    let mut senders = HashMap::new();
    let mut receivers = Vec::new();
    for id in gate_ids {
        let gate = GateId::new(id)?;
        let bridge = GateBridgeSim::start(GateBridgeOptions::new(
            broker.clone(),
            site_id.clone(),
            gate.clone(),
        ))
        .await;
        bridge
            .wait_ready(Duration::from_secs(15))
            .await
            .map_err(|e| anyhow::anyhow!("bridge {id}: {e}"))?;
        bridges.push(bridge);
        scanners.push(
            GateScanner::connect(&broker, &site_id, &gate, Duration::from_secs(10))
                .await
                .map_err(|e| anyhow::anyhow!("scanner {id}: {e}"))?,
        );
        let (tx, rx) = mpsc::unbounded_channel();
        senders.insert(id.clone(), tx);
        receivers.push(rx);
    }
    let listener = command_listener(&broker, site, senders).await?;
    let every = Duration::from_secs_f64(k.gates as f64 / k.rate as f64);
    let started = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    let mut assigned = vec![0usize; k.gates];
    for (g, (scanner, rx)) in scanners.into_iter().zip(receivers).enumerate() {
        let parcels: Vec<usize> = (0..k.orders()).filter(|i| i % k.gates == g).collect();
        assigned[g] = parcels.len();
        // Spread the gates over one interval.
        let start = started + every.mul_f64(g as f64 / k.gates as f64);
        tasks.push(tokio::spawn(gate_device(
            scanner,
            parcels,
            every,
            start,
            WARMUP_PER_GATE,
            rx,
        )));
    }
    let mut command = Vec::new();
    let mut result = Vec::new();
    for (g, t) in tasks.into_iter().enumerate() {
        let s = t.await??;
        ensure!(s.opens == assigned[g], "gate {g}: {} opens", s.opens);
        command.extend(s.command);
        result.extend(s.result);
    }
    let secs = started.elapsed().as_secs_f64();
    listener.abort();
    // Every open was really pulsed, once.
    for (id, (bridge, n)) in gate_ids.iter().zip(bridges.iter().zip(&assigned)) {
        let pulses = bridge.pulses().len();
        ensure!(pulses == *n, "gate {id}: {pulses} pulses for {n} opens");
    }
    let raw = RawPool::open(url).await?;
    let shipped = raw
        .scalar("SELECT COUNT(*) FROM orders WHERE state = 'shipped'")
        .await;
    let opens = raw
        .scalar(
            "SELECT COUNT(*) FROM gate_decisions WHERE decision = 'open' AND output = 'confirmed'",
        )
        .await;
    raw.close().await;
    let (shipped, opens) = (shipped? as usize, opens? as usize);
    ensure!(
        opens == k.orders(),
        "{opens} confirmed opens recorded, {} scanned",
        k.orders()
    );
    ensure!(
        shipped == k.orders(),
        "{shipped} orders shipped, {} scanned",
        k.orders()
    );
    for b in bridges {
        b.shutdown().await;
    }
    command.sort_unstable();
    result.sort_unstable();
    Ok(GateRow {
        backend: backend.into(),
        scans: command.len(),
        secs,
        command,
        result,
    })
}

// ------------------------------------------------------------------ ingest

/// `n` signed bodies (status 2 for 清单 `RCPT-{tag}-{j}`) with signatures.
fn signed_bodies(tag: &str, n: usize) -> Result<Vec<(Vec<u8>, String)>> {
    (0..n)
        .map(|j| {
            let body = ceb622(&format!("RCPT-{tag}-{j:06}"), 2, "20261123100000000")?;
            let sig = sign(&body);
            Ok((body, sig))
        })
        .collect()
}

/// What `Customs::ingest` hands the store for `body`.
fn message_input(body: &[u8], cop_no: &str) -> CustomsMessageInput {
    CustomsMessageInput {
        body_sha256: Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        kind: "CEB622".into(),
        key_id: KEY_ID.into(),
        guid: Some(format!("GUID-{cop_no}-2-20261123100000000")),
        receipts: vec![NewCustomsReceipt {
            kind: "inventory".into(),
            cop_no: Some(cop_no.into()),
            pre_no: Some("B20261123000000001".into()),
            invt_no: None,
            guid: Some(format!("R-{cop_no}-2-20261123100000000")),
            return_status: 2,
            return_time: "20261123100000000".into(),
            return_info: Some("[Code:2;Desc:bench]".into()),
        }],
    }
}

/// Runs `work(j)` for `j` in `0..n` on `clients` concurrent tasks; the wall
/// time it took.
async fn concurrently<F, Fut>(n: usize, clients: usize, work: F) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, work) = (next.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                work(j).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

macro_rules! raw_ingest {
    ($name:ident, $db:ty) => {
        mod $name {
            use super::*;
            pub type Pool = sqlx::Pool<$db>;

            /// The store's three writes as one transaction: the message,
            /// its receipt row, the audit entry.
            pub async fn ingest(pool: &Pool, m: &CustomsMessageInput) -> Result<()> {
                let at = common::now();
                let mut tx = pool.begin().await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO customs_messages (body_sha256, kind, key_id, guid, received_by, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&m.body_sha256)
                .bind(&m.kind)
                .bind(&m.key_id)
                .bind(&m.guid)
                .bind("gw")
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
                for r in &m.receipts {
                    sqlx::query(
                        "INSERT INTO customs_receipts (message_id, kind, cop_no, pre_no, invt_no, guid,
                             return_status, return_time, return_info)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(id)
                    .bind(&r.kind)
                    .bind(&r.cop_no)
                    .bind(&r.pre_no)
                    .bind(&r.invt_no)
                    .bind(&r.guid)
                    .bind(r.return_status)
                    .bind(&r.return_time)
                    .bind(&r.return_info)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(at)
                .bind("gw")
                .bind("customs.receipt")
                .bind(&m.kind)
                .bind(serde_json::to_string(m)?)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn scalar(pool: &Pool, sql: &str) -> Result<i64> {
                Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
            }
        }
    };
}

raw_ingest!(raw_sqlite, sqlx::Sqlite);
raw_ingest!(raw_pg, sqlx::Postgres);

enum RawPool {
    Sqlite(raw_sqlite::Pool),
    Pg(raw_pg::Pool),
}

impl RawPool {
    async fn ingest(&self, m: &CustomsMessageInput) -> Result<()> {
        match self {
            RawPool::Sqlite(p) => raw_sqlite::ingest(p, m).await,
            RawPool::Pg(p) => raw_pg::ingest(p, m).await,
        }
    }
    /// A count (`sql` selects one BIGINT).
    async fn scalar(&self, sql: &str) -> Result<i64> {
        match self {
            RawPool::Sqlite(p) => raw_sqlite::scalar(p, sql).await,
            RawPool::Pg(p) => raw_pg::scalar(p, sql).await,
        }
    }

    /// A second pool on the database at `url`.
    async fn open(url: &str) -> Result<RawPool> {
        Ok(match url.strip_prefix("sqlite://") {
            Some(path) => {
                RawPool::Sqlite(common::sqlite_pool(std::path::Path::new(path), true).await?)
            }
            None => RawPool::Pg(common::pg_pool(url, &StoreOptions::default()).await?),
        })
    }

    async fn close(self) {
        match self {
            RawPool::Sqlite(p) => p.close().await,
            RawPool::Pg(p) => p.close().await,
        }
    }
}

/// Rounds per ingest path, alternating the order of the paths.
const INGEST_ROUNDS: usize = 2;

async fn ingest(k: &Knobs, server: &Server, url: &str, backend: &str) -> Result<IngestRow> {
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    // The set-up made users (a picker), so the server made no admin: the
    // gateway's user goes straight into the store.
    let hash = bondgate::http::auth::hash_password("bench-password-1")
        .map_err(|e| anyhow::anyhow!("hashing: {e:?}"))?;
    server
        .store
        .create_user(&Actor::system(), "gw", &hash, &[Role::Integration])
        .await?;
    let token = Arc::new(login(&http, &base, "gw", "bench-password-1").await?);
    let raw = Arc::new(RawPool::open(url).await?);
    let per_round = k.receipts.div_ceil(INGEST_ROUNDS);
    let mut row = IngestRow {
        backend: backend.into(),
        http: Throughput::default(),
        store: Throughput::default(),
        raw: Throughput::default(),
    };
    for round in 0..INGEST_ROUNDS {
        let mut paths = ["http", "store", "raw"];
        if round % 2 == 1 {
            paths.reverse();
        }
        for path in paths {
            let tag = format!("{path}{round}");
            let bodies = Arc::new(signed_bodies(&tag, per_round)?);
            let took = match path {
                "http" => {
                    let (http, base, token) = (http.clone(), base.clone(), token.clone());
                    concurrently(per_round, k.clients, move |j| {
                        let (http, base, token, bodies) =
                            (http.clone(), base.clone(), token.clone(), bodies.clone());
                        async move {
                            let (body, sig) = &bodies[j];
                            let res = http
                                .post(format!("{base}/api/v1/customs/receipts"))
                                .bearer_auth(token.as_str())
                                .header("content-type", "application/xml")
                                .header("x-bondgate-key-id", KEY_ID)
                                .header("x-bondgate-signature", sig)
                                .body(body.clone())
                                .send()
                                .await?;
                            let status = res.status();
                            ensure!(
                                status.is_success(),
                                "receipt {j}: {status} {}",
                                res.text().await?
                            );
                            Ok(())
                        }
                    })
                    .await?
                }
                "store" => {
                    let store = server.store.clone();
                    let tag = tag.clone();
                    concurrently(per_round, k.clients, move |j| {
                        let (store, bodies) = (store.clone(), bodies.clone());
                        let cop = format!("RCPT-{tag}-{j:06}");
                        async move {
                            let m = message_input(&bodies[j].0, &cop);
                            store.ingest_customs(&gateway(), &m).await?;
                            Ok(())
                        }
                    })
                    .await?
                }
                _ => {
                    let raw = raw.clone();
                    let tag = tag.clone();
                    concurrently(per_round, k.clients, move |j| {
                        let (raw, bodies) = (raw.clone(), bodies.clone());
                        let cop = format!("RCPT-{tag}-{j:06}");
                        async move {
                            let m = message_input(&bodies[j].0, &cop);
                            raw.ingest(&m).await
                        }
                    })
                    .await?
                }
            };
            let count = raw
                .scalar(&format!(
                    "SELECT COUNT(*) FROM customs_receipts WHERE cop_no LIKE 'RCPT-{tag}-%'"
                ))
                .await?;
            ensure!(
                count == per_round as i64,
                "{backend} {path}: {count} receipt rows for {per_round} sent"
            );
            let t = match path {
                "http" => &mut row.http,
                "store" => &mut row.store,
                _ => &mut row.raw,
            };
            t.n += per_round;
            t.busy += took;
        }
    }
    if let Ok(raw) = Arc::try_unwrap(raw) {
        raw.close().await;
    }
    Ok(row)
}

// ------------------------------------------------- decision transaction

/// What the gate service hands the store for parcel `i`'s grant.
fn grant(i: usize) -> GateGrant {
    GateGrant {
        output_kind: "mqtt".into(),
        command_id: format!("bench-cmd-{i:08}"),
        expires_at: common::now() + chrono::Duration::milliseconds(1_500),
    }
}

fn guard() -> Actor {
    Actor {
        user_id: 0,
        username: "gus".into(),
        roles: vec![Role::Guard],
    }
}

/// Tables whose row counts must match between the store's and the raw
/// database after the decision bench.
const DECISION_COUNTS: [(&str, &str); 4] = [
    (
        "open decisions",
        "SELECT COUNT(*) FROM gate_decisions WHERE decision = 'open' AND output = 'confirmed'",
    ),
    (
        "shipped orders",
        "SELECT COUNT(*) FROM orders WHERE state = 'shipped'",
    ),
    ("movements", "SELECT COUNT(*) FROM movements"),
    (
        "shipped locks",
        "SELECT COUNT(*) FROM locks WHERE state = 'shipped'",
    ),
];

macro_rules! raw_decide {
    ($name:ident, $db:ty, $for_update_o:literal, $for_update:literal, $for_update_k:literal) => {
        mod $name {
            use super::*;

            /// The grant then the confirmation, as two transactions like the
            /// store's: the parcel, its open decisions and its 清单's
            /// receipts read, the decision inserted; then the decision and
            /// order locked, the held reservations read, one `ship` movement
            /// each (the trigger moves the balance), the locks closed, the
            /// order shipped, the decision confirmed.
            pub async fn decide(pool: &sqlx::Pool<$db>, actor: &Actor, i: usize) -> Result<()> {
                let code = format!("PKG-{}", order_no(i));
                let g = grant(i);
                let at = common::now();
                let mut tx = pool.begin().await?;
                let (package_id, package_state, order_id, order_state, cop_no): (i64, String, i64, String, String) =
                    sqlx::query_as(concat!(
                        "SELECT p.id, p.state, o.id, o.state, o.cop_no FROM packages p JOIN orders o ON o.id = p.order_id
                         WHERE p.package_no = $1 OR p.waybill_no = $1",
                        $for_update_o
                    ))
                    .bind(&code)
                    .fetch_one(&mut *tx)
                    .await?;
                ensure!(package_state == "packed" && order_state == "packed", "{code}: not packed");
                let exit: Option<String> = sqlx::query_scalar(
                    "SELECT output FROM gate_decisions WHERE package_id = $1 AND decision = 'open' AND output <> 'fault'",
                )
                .bind(package_id)
                .fetch_optional(&mut *tx)
                .await?;
                ensure!(exit.is_none(), "{code}: already exited");
                let receipts: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT id, return_status FROM customs_receipts WHERE cop_no = $1 ORDER BY return_time, id",
                )
                .bind(&cop_no)
                .fetch_all(&mut *tx)
                .await?;
                let release = match receipts.last() {
                    Some((id, 800)) => *id,
                    _ => bail!("{code}: not released"),
                };
                let decision: i64 = sqlx::query_scalar(
                    "INSERT INTO gate_decisions (gate, code, package_id, order_id, decision, reason_code, reason_en,
                         reason_zh, evidence_receipt_id, decided_by, decided_at, scan_key, output, output_kind,
                         command_id, expires_at)
                     VALUES ($1, $2, $3, $4, 'open', 'released', 'Released: open', '海关已放行：开闸', $5, $6, $7,
                         NULL, 'pending', $8, $9, $10) RETURNING id",
                )
                .bind("G1")
                .bind(&code)
                .bind(package_id)
                .bind(order_id)
                .bind(release)
                .bind(&actor.username)
                .bind(at)
                .bind(&g.output_kind)
                .bind(&g.command_id)
                .bind(g.expires_at)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;

                let at = common::now();
                let mut tx = pool.begin().await?;
                let (output, order_no): (String, String) = sqlx::query_as(concat!(
                    "SELECT d.output, o.order_no FROM gate_decisions d JOIN orders o ON o.id = d.order_id WHERE d.id = $1",
                    $for_update
                ))
                .bind(decision)
                .fetch_one(&mut *tx)
                .await?;
                ensure!(output == "pending", "{code}: output {output}");
                let locks: Vec<(i64, String, i64, i64, i64, i64)> = sqlx::query_as(concat!(
                    "SELECT k.id, k.reference, k.sku_id, k.location_id, k.lot_id, k.qty
                     FROM order_allocations a JOIN locks k ON k.id = a.lock_id
                     WHERE a.order_id = $1 AND k.state = 'held' ORDER BY k.id",
                    $for_update_k
                ))
                .bind(order_id)
                .fetch_all(&mut *tx)
                .await?;
                for (lock_id, reference, sku_id, location_id, lot_id, qty) in &locks {
                    sqlx::query(
                        "INSERT INTO movements (kind, sku_id, location_id, lot_id, qty, from_bucket, to_bucket,
                             doc_type, doc_no, customs_doc_no, actor, lock_id, at)
                         VALUES ('ship', $1, $2, $3, $4, 'locked', NULL, 'ship', $5, $6, $7, $8, $9)",
                    )
                    .bind(sku_id)
                    .bind(location_id)
                    .bind(lot_id)
                    .bind(qty)
                    .bind(reference)
                    .bind(&order_no)
                    .bind(&actor.username)
                    .bind(lock_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE locks SET state = 'shipped', closed_at = $1
                     WHERE state = 'held' AND id IN (SELECT lock_id FROM order_allocations WHERE order_id = $2)",
                )
                .bind(at)
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE orders SET state = 'shipped' WHERE id = $1")
                    .bind(order_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE gate_decisions SET output = 'confirmed', output_detail = $2, output_at = $3 WHERE id = $1",
                )
                .bind(decision)
                .bind("bench")
                .bind(at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

raw_decide!(decide_sqlite, sqlx::Sqlite, "", "", "");
raw_decide!(
    decide_pg,
    sqlx::Postgres,
    " FOR UPDATE OF o",
    " FOR UPDATE",
    " FOR UPDATE OF k"
);

enum Decider {
    Store(Store),
    Raw(RawPool),
}

impl Decider {
    /// Grants and confirms parcel `i`'s exit; checks the answer.
    async fn decide(&self, i: usize) -> Result<()> {
        let actor = guard();
        match self {
            Decider::Store(store) => {
                let code = format!("PKG-{}", order_no(i));
                let d = store
                    .gate_scan(
                        &actor,
                        "G1",
                        &GateScanInput { code: code.clone() },
                        &grant(i),
                        None,
                    )
                    .await?;
                ensure!(d.result == "pending", "{code}: not granted: {d:?}");
                let v = store
                    .gate_output(&actor, d.id, ExitEvent::Confirm, "bench")
                    .await?;
                ensure!(v.result == "open", "{code}: not opened: {v:?}");
                Ok(())
            }
            Decider::Raw(RawPool::Sqlite(p)) => decide_sqlite::decide(p, &actor, i).await,
            Decider::Raw(RawPool::Pg(p)) => decide_pg::decide(p, &actor, i).await,
        }
    }

    async fn run(&self, range: std::ops::Range<usize>, into: &mut Vec<u64>) -> Result<()> {
        for i in range {
            let started = Instant::now();
            self.decide(i).await?;
            into.push(started.elapsed().as_micros() as u64);
        }
        Ok(())
    }
}

struct DecisionRow {
    backend: String,
    store: Vec<u64>,
    raw: Vec<u64>,
}

/// The decision bench on two databases (`urls`: the store's, the raw one).
async fn decisions(k: &Knobs, backend: &str, urls: [String; 2]) -> Result<DecisionRow> {
    let pii = PiiCipher::from_key(&rand::random::<[u8; 32]>());
    let warmup = (k.decisions / 10).clamp(1, 20);
    let orders = warmup * 2 + k.decisions;
    for url in &urls {
        prepare_released(url, &pii, orders).await?;
    }
    let opts = StoreOptions::default();
    let store = Decider::Store(Store::connect(&urls[0], &opts).await?);
    let raw = Decider::Raw(RawPool::open(&urls[1]).await?);
    let (mut s, mut r) = (Vec::new(), Vec::new());
    let run = async {
        // Warm-up on both (the same parcels on each database).
        store
            .run(0..warmup, &mut Vec::new())
            .await
            .context("store warm-up")?;
        raw.run(0..warmup, &mut Vec::new())
            .await
            .context("raw warm-up")?;
        let first = warmup;
        let per_round = k.decisions.div_ceil(common::ROUNDS);
        for round in 0..common::ROUNDS {
            let start = first + round * per_round;
            let end = (start + per_round).min(first + k.decisions);
            if start >= end {
                break;
            }
            if round % 2 == 0 {
                store.run(start..end, &mut s).await.context("store")?;
                raw.run(start..end, &mut r).await.context("raw")?;
            } else {
                raw.run(start..end, &mut r).await.context("raw")?;
                store.run(start..end, &mut s).await.context("store")?;
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Decider::Store(st) = store {
        st.close().await;
    }
    if let Decider::Raw(p) = raw {
        p.close().await;
    }
    run?;
    let mut counts = Vec::new();
    for (url, path) in urls.iter().zip(["store", "raw"]) {
        common::integrity_totals(url, &opts, path).await?;
        let pool = RawPool::open(url).await?;
        let mut c = Vec::new();
        for (_, q) in DECISION_COUNTS {
            c.push(pool.scalar(q).await?);
        }
        pool.close().await;
        counts.push(c);
    }
    let diff = common::count_differences(&DECISION_COUNTS, &counts[0], &counts[1], |t, a, b| {
        format!("{t}: store {a} vs raw {b}")
    });
    ensure!(
        diff.is_empty(),
        "{backend}: store and raw differ: {}",
        diff.join("; ")
    );
    let opened = (warmup + k.decisions) as i64;
    ensure!(
        counts[0][0] == opened && counts[0][1] == opened,
        "{backend}: {:?} for {opened} parcels",
        counts[0]
    );
    s.sort_unstable();
    r.sort_unstable();
    Ok(DecisionRow {
        backend: backend.into(),
        store: s,
        raw: r,
    })
}

// -------------------------------------------------------------------- main

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

fn print_tables(k: &Knobs, gates: &[GateRow], ingests: &[IngestRow], decisions: &[DecisionRow]) {
    println!(
        "\nGate scan → open command and → result over MQTT, {} gates, {} scans/s offered, {} s",
        k.gates, k.rate, k.secs
    );
    println!("| backend | scans | achieved scans/s | → command p50 ms | p99 ms | max ms | → result p50 ms | p99 ms | max ms | command p99 ≤ {TARGET_P99_MS} ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in gates {
        let (c, s) = (&r.command, &r.result);
        let p99 = ms(percentile_us(c, 99));
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.1} | {} |",
            r.backend,
            r.scans,
            (r.scans + k.gates * WARMUP_PER_GATE) as f64 / r.secs,
            ms(percentile_us(c, 50)),
            p99,
            ms(*c.last().unwrap_or(&0)),
            ms(percentile_us(s, 50)),
            ms(percentile_us(s, 99)),
            ms(*s.last().unwrap_or(&0)),
            if p99 <= TARGET_P99_MS { "yes" } else { "no" }
        );
    }
    println!(
        "\nGate decision transaction (Store::gate_scan grant + Store::gate_output confirm, which ships), \
         one parcel at a time, {} per path, beside raw SQL on a second database",
        k.decisions
    );
    println!("| path | backend | parcels | p50 µs | p99 µs | max µs | store p50 / raw p50 |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for d in decisions {
        for (path, v) in [("store", &d.store), ("raw", &d.raw)] {
            println!(
                "| {path} | {} | {} | {} | {} | {} | {:.2} |",
                d.backend,
                v.len(),
                percentile_us(v, 50),
                percentile_us(v, 99),
                v.last().copied().unwrap_or(0),
                percentile_us(&d.store, 50) as f64 / percentile_us(&d.raw, 50).max(1) as f64
            );
        }
    }
    println!(
        "\nCustoms receipts ingested per second, {} clients, {} receipts per path",
        k.clients, k.receipts
    );
    println!("| backend | HTTP (verify, parse, store, fold) /s | Store::ingest_customs /s | raw SQL /s | store % of raw |");
    println!("|---|---:|---:|---:|---:|");
    for r in ingests {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.backend,
            r.http.per_s(),
            r.store.per_s(),
            r.raw.per_s(),
            r.store.per_s() * 100 / r.raw.per_s().max(1)
        );
    }
}

async fn run() -> Result<()> {
    let k = Knobs::from_env()?;
    println!(
        "gate bench: {} gates, {} scans/s offered for {} s ({} orders), {} cores; SQLite {}",
        k.gates,
        k.rate,
        k.secs,
        k.orders(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        common::sqlite_version().await?
    );
    let mut admin = match k.backends.iter().any(|b| b == "postgres") {
        true => pg_admin(&k.pg_url, k.ci).await?,
        false => None,
    };
    let mut gate_rows = Vec::new();
    let mut ingest_rows = Vec::new();
    let mut decision_rows = Vec::new();
    for backend in &k.backends {
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let (g, i, d) = match backend.as_str() {
            "sqlite" => {
                let name = "sqlite sync=FULL";
                let url = bondgate::config::sqlite_url(dir.path());
                let (g, i) = run_backend(&k, name, dir.path(), &url).await?;
                let urls = ["store.db", "raw.db"]
                    .map(|f| format!("sqlite://{}", dir.path().join(f).display()));
                (g, i, decisions(&k, name, urls).await?)
            }
            "postgres" => {
                let Some(conn) = admin.as_mut() else {
                    continue;
                };
                let [store_db, raw_db] = scratch_names("bondgate_bench_gate");
                let server_db = store_db.replace("_store", "_server");
                let databases = [server_db, store_db, raw_db];
                let created = common::create_databases(conn, &databases).await;
                let out = match created {
                    Ok(()) => {
                        let [server, store, raw] =
                            databases.clone().map(|db| with_database(&k.pg_url, &db));
                        match run_backend(&k, "postgres", dir.path(), &server).await {
                            Ok((g, i)) => decisions(&k, "postgres", [store, raw])
                                .await
                                .map(|d| (g, i, d)),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                };
                common::drop_databases(conn, &databases).await;
                out?
            }
            other => bail!("unknown backend {other} in BENCH_BACKENDS (sqlite, postgres)"),
        };
        eprintln!("{backend} done in {} s", started.elapsed().as_secs());
        gate_rows.push(g);
        ingest_rows.push(i);
        decision_rows.push(d);
    }
    print_tables(&k, &gate_rows, &ingest_rows, &decision_rows);
    Ok(())
}

fn main() -> ExitCode {
    main_with("gate", run)
}
