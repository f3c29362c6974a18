//! PDA scan → prompt round trip over MQTT at a fixed offered rate (target:
//! p99 ≤ 10 ms at 500 scans/s, DESIGN §7).
//!
//! The real server (`Server::start`: HTTP, store, embedded broker, MQTT link)
//! runs in this process; `BENCH_PDAS` simulated handhelds (`bondgate-sim`'s
//! `Pda`, real rumqttc clients on real TCP) each log in by badge and walk
//! real pick tasks: tote → bin → item → lot, every scan a store transaction
//! (the answer is stored under the device's sequence number, the session
//! moves, the fourth scan books the unit into the tote). Each device scans
//! at `rate / PDAS` per second, waiting for its prompt before the next scan
//! as a handheld does; the time from publish to prompt is recorded.
//!
//! There is no raw-SQL twin here: what is measured is the whole path a picker
//! waits on (broker hops, JSON, the transaction, the answer), and the raw
//! cost of the transaction itself is what `benches/orders.rs` and
//! `benches/ledger.rs` compare.
//!
//! Run: `cargo bench --bench pda`. Knobs (environment):
//! - `BENCH_RATE`: offered scans per second in all (default 500).
//! - `BENCH_SECS`: measured seconds (default 15).
//! - `BENCH_PDAS`: devices (default 50).
//! - `BENCH_SKUS`: SKUs the orders are of, 1 to 40 (default 40), each in its
//!   own share of the 40 bins. With 40, pickers working at the same moment
//!   take from different bins, as on a floor; with 1, all take from the same
//!   bin (FEFO empties one at a time), the worst case for PostgreSQL, whose
//!   picks then queue for that bin's holding row.
//! - `BENCH_BACKENDS`: comma list of `sqlite-full`, `sqlite-normal`,
//!   `postgres` (default all three; PostgreSQL from `BENCH_PG_URL`, default
//!   `postgres://postgres@127.0.0.1:5432/postgres`, skipped if unreachable
//!   unless `CI=true`).
//! - `BENCH_TX_ORDERS`: orders one device walks, one scan at a time, through
//!   `Store::pda_scan` and through the raw-SQL twin (`pda/raw.rs`: the same
//!   statements, hand-written) on a second database seeded the same way
//!   (default 300); the two must leave the same pick movements, answers and
//!   picked tasks.
//! - `BENCH_GROUP_COMMIT`: `on` or `off` forces the store's group-commit
//!   writer on or off on every backend (default: the store's choice, on for
//!   SQLite and off for PostgreSQL).
//! - `BENCH_CHECKPOINT`: `background` (the store's default) or `writer`:
//!   where SQLite's WAL checkpoints run, on a connection of their own or
//!   inside the commit that crosses 1,000 WAL pages (as before).
//! - `BENCH_MQTT_URL`: an external broker (e.g. `mqtt://127.0.0.1:1883`, a
//!   Mosquitto) instead of the server's embedded rumqttd.

mod common;
#[path = "pda/raw.rs"]
mod raw;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bondgate::app::Server;
use bondgate::config::{Config, MqttBroker};
use bondgate_protocol::{DeviceId, Next, Site};
use bondgate_sim::{BrokerAddr, Pda, PdaOptions};
use serde_json::{json, Value};
use sqlx::Connection;

const ADMIN_PASSWORD: &str = "bench-admin-password";

fn env_num(name: &str, default: u64, max: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => {
            let n: u64 = v.parse().with_context(|| format!("{name}={v}"))?;
            ensure!((1..=max).contains(&n), "{name} must be 1 to {max}");
            Ok(n)
        }
        Err(_) => Ok(default),
    }
}

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let res = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, body).await
    }
}

fn order(no: &str, sku: &str) -> Value {
    json!({
        "order_no": no, "trade_mode": "1210", "ebp_code": "3301964J31", "ebc_code": "3301964J31",
        "cop_no": format!("COP-{no}"),
        "buyer": {"name": "张三", "id_number": "11010519491231002X", "phone": "13812345678"},
        "consignee": {"name": "张三", "phone": "13912345678", "address": "浙江省杭州市西湖区文三路 1 号"},
        "lines": [{"sku": sku, "qty": 1, "unit_price": "50.00"}],
        "goods_value": "50.00", "freight": "10.00", "discount": "0", "tax": "4.55", "actual_paid": "64.55",
    })
}

/// An EAN-13 barcode: twelve digits and their check digit.
fn ean13(n: u64) -> String {
    let digits = format!("{:012}", n % 1_000_000_000_000);
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// Bins of stock: SKU `k` of `skus` lies in the bins `A-b` with `b % skus == k`.
const BINS: usize = 40;

/// Master data, stock, `orders` one-unit orders in waves (order `i` of SKU
/// `i % skus`), and one picker with a badge per device.
async fn seed(api: &Api, orders: usize, pdas: usize, skus: usize) -> Result<()> {
    for k in 0..skus {
        api.post(
            "/api/v1/skus",
            json!({"code": format!("SKU-{k}"), "name": format!("Face serum {k}"), "unit_weight_grams": 95,
                   "barcodes": [ean13(690_123_450_000 + k as u64)]}),
        )
        .await?;
    }
    for b in 0..BINS {
        let code = format!("A-{b:02}");
        let k = b % skus;
        // This SKU's orders, spread over its bins, and one more each.
        let (wanted, bins) = (orders.div_ceil(skus), (k..BINS).step_by(skus).count());
        api.post(
            "/api/v1/locations",
            json!({"code": code, "zone": "A", "walk_seq": b, "kind": "storage"}),
        )
        .await?;
        api.post(
            "/api/v1/receipts",
            json!({"receipt_no": format!("R-{b}"), "customs_doc_no": "QD-BENCH", "lines": [
                {"sku": format!("SKU-{k}"), "bin": code, "batch": format!("B{b}"), "expiry": "2029-12-31",
                 "qty": wanted / bins + 1}]}),
        )
        .await?;
    }
    for i in 0..orders {
        api.post(
            "/api/v1/orders",
            order(&format!("ORD-{i}"), &format!("SKU-{}", i % skus)),
        )
        .await?;
    }
    let mut waved = 0;
    while waved < orders {
        let w = api
            .post(
                "/api/v1/waves",
                json!({"wave_no": format!("W-{waved}"), "max_orders": 1000}),
            )
            .await?;
        waved += w["order_nos"].as_array().map_or(0, Vec::len);
    }
    for p in 0..pdas {
        let name = format!("picker{p}");
        api.post(
            "/api/v1/users",
            json!({"username": name, "password": "bench-password-1", "roles": ["picker"]}),
        )
        .await?;
        api.call(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{name}/badge"),
            json!({"badge": format!("BADGE-{p}")}),
        )
        .await?;
    }
    Ok(())
}

/// One handheld: scans at its share of the rate until the deadline, each
/// scan what the last prompt asked for.
async fn device(
    mut pda: Pda,
    badge: String,
    every: Duration,
    deadline: Instant,
    samples: Arc<Mutex<Vec<Duration>>>,
) -> Result<usize> {
    let mut code = badge.clone();
    let mut totes = 0;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scans = 0;
    while Instant::now() < deadline {
        tick.tick().await;
        let started = Instant::now();
        let p = pda.scan(&code).await?;
        let took = started.elapsed();
        samples.lock().unwrap().push(took);
        scans += 1;
        ensure!(p.ok, "refused: sent {code}, got {:?}", p.text.as_str());
        code = match p.next {
            Next::Login => badge.clone(),
            Next::Tote => {
                totes += 1;
                format!("TOTE-{}-{totes}", pda.device().as_str())
            }
            Next::Bin | Next::Item | Next::Lot | Next::Qty => p
                .text
                .expected()
                .with_context(|| format!("no code in {:?}", p.text.as_str()))?
                .to_string(),
            Next::Done => bail!("ran out of pick work: raise the number of orders"),
            Next::Reason => bail!("unexpected short-pick prompt {:?}", p.text.as_str()),
        };
    }
    Ok(scans)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

struct Outcome {
    backend: String,
    scans: usize,
    secs: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

/// The offered load: scans per second, for how long, from how many devices,
/// picking how many SKUs.
#[derive(Clone, Copy)]
struct Load {
    rate: u64,
    secs: u64,
    pdas: u64,
    skus: usize,
}

/// The real server on `backend` (a scratch SQLite file, or `db_url`), and
/// an admin's HTTP client for it; the data directory lives as long as the
/// returned guard.
async fn serve(
    backend: &str,
    db_url: Option<String>,
) -> Result<(Server, Api, String, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_data_dir(dir.path());
    config.listen = "127.0.0.1:0".parse()?;
    config.admin_password = Some(ADMIN_PASSWORD.into());
    config.mqtt.broker = match std::env::var("BENCH_MQTT_URL") {
        Ok(url) => {
            config.mqtt.site = format!("BENCH{}", std::process::id());
            MqttBroker::External(url)
        }
        Err(_) => MqttBroker::Embedded("127.0.0.1:0".parse()?),
    };
    config.picking.auto_wave = None;
    config.store.sqlite_sync_full = backend != "sqlite-normal";
    // Group commit: the store's default per backend (on for SQLite, off for
    // PostgreSQL) unless BENCH_GROUP_COMMIT says on or off for every backend.
    config.store.group_commit = match std::env::var("BENCH_GROUP_COMMIT").as_deref() {
        Err(_) => None,
        Ok("1" | "on" | "true") => Some(true),
        Ok("0" | "off" | "false") => Some(false),
        Ok(other) => bail!("BENCH_GROUP_COMMIT must be on or off, got {other}"),
    };
    config.store.sqlite_background_checkpoint = match std::env::var("BENCH_CHECKPOINT").as_deref() {
        Err(_) | Ok("background") => true,
        Ok("writer") => false,
        Ok(other) => bail!("BENCH_CHECKPOINT must be background or writer, got {other}"),
    };
    if let Some(url) = db_url {
        config.database_url = url;
    }
    let site = config.mqtt.site.clone();
    let server = Server::start(config).await?;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("http://{}/api/v1/auth/login", server.addr))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let api = Api {
        base: format!("http://{}", server.addr),
        token: login["token"].as_str().context("login token")?.to_string(),
        http,
    };
    Ok((server, api, site, dir))
}

async fn run(backend: &str, db_url: Option<String>, load: Load) -> Result<Outcome> {
    let Load {
        rate,
        secs,
        pdas,
        skus,
    } = load;
    let (server, api, site, _dir) = serve(backend, db_url).await?;
    // Four scans pick one order; a margin so no device runs dry.
    let orders = (rate * secs / 4 + rate) as usize + pdas as usize * 4;
    let setup = Instant::now();
    seed(&api, orders, pdas as usize, skus).await?;
    eprintln!(
        "{backend}: {orders} orders waved in {:.0} s",
        setup.elapsed().as_secs_f64()
    );

    let broker = BrokerAddr::parse(&server.mqtt_url)?;
    let mut handhelds = Vec::new();
    for p in 0..pdas {
        let mut options = PdaOptions::new(
            broker.clone(),
            Site::new(&site)?,
            DeviceId::new(&format!("PDA-{p}"))?,
        );
        options.timeout = Duration::from_secs(10);
        let pda = Pda::connect(options).await?;
        pda.wait_ready().await?;
        handhelds.push(pda);
    }
    let samples = Arc::new(Mutex::new(Vec::new()));
    let every = Duration::from_secs_f64(pdas as f64 / rate as f64);
    // Logins and first totes are part of the run, as on a real shift start.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (p, pda) in handhelds.into_iter().enumerate() {
        tasks.push(tokio::spawn(device(
            pda,
            format!("BADGE-{p}"),
            every,
            deadline,
            samples.clone(),
        )));
        // Spread the devices over one interval, as people are.
        tokio::time::sleep(every / pdas as u32).await;
    }
    let mut scans = 0;
    for t in tasks {
        scans += t.await??;
    }
    let secs_run = started.elapsed().as_secs_f64();
    let integrity = api
        .call(
            reqwest::Method::GET,
            "/api/v1/inventory/integrity",
            Value::Null,
        )
        .await;
    server.shutdown().await?;
    let integrity = integrity?;
    ensure!(
        integrity["ledger_mismatches"] == json!([]) && integrity["lock_mismatches"] == json!([]),
        "integrity after the run: {integrity}"
    );
    let mut all = samples.lock().unwrap().clone();
    all.sort();
    ensure!(!all.is_empty(), "no scans");
    Ok(Outcome {
        backend: backend.to_string(),
        scans,
        secs: secs_run,
        p50: pct(&all, 0.50),
        p99: pct(&all, 0.99),
        max: all.last().unwrap().as_secs_f64() * 1e3,
    })
}

/// One device's scans, one at a time, through the store and the raw twin.
struct TxOutcome {
    backend: String,
    store: Vec<Duration>,
    raw: Vec<Duration>,
}

/// What a walk left in a database: pick movements, scans answered, tasks
/// picked. The two paths must leave the same.
const WALKED: [&str; 3] = [
    "SELECT COUNT(*) FROM movements WHERE kind = 'pick'",
    "SELECT COUNT(*) FROM operations WHERE scope = 'pda'",
    "SELECT COUNT(*) FROM pick_tasks WHERE state = 'picked'",
];

/// [`WALKED`]'s counts in the database of `$pool` (either driver's).
macro_rules! walked {
    ($pool:expr) => {{
        let mut out = [0i64; 3];
        for (n, sql) in WALKED.into_iter().enumerate() {
            out[n] = sqlx::query_scalar(sql).fetch_one($pool).await?;
        }
        out
    }};
}

/// `orders` one-unit orders walked by one device, one scan at a time: through
/// `Store::pda_scan` (as the browser PDA page calls it, the picker logged
/// in) on the first database, through the raw twin (`pda/raw.rs`) on the
/// second, seeded the same way. No broker: this is the scan's transaction.
async fn transactions(
    backend: &str,
    db_urls: [Option<String>; 2],
    orders: usize,
    skus: usize,
) -> Result<TxOutcome> {
    let sync_full = backend != "sqlite-normal";
    // The store.
    let (server, api, _, dir) = serve(backend, db_urls[0].clone()).await?;
    seed(&api, orders + 8, 1, skus).await?;
    let user = server
        .store
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.username == "picker0")
        .context("picker0")?;
    let picker = bondgate::store::Actor {
        user_id: user.id,
        username: user.username.clone(),
        roles: user.roles.clone(),
    };
    let ctx = bondgate::store::ScanContext {
        tote_prefix: "TOTE",
        user: Some(&picker),
    };
    let mut store = Vec::with_capacity(orders * 4 + 1);
    let (mut code, mut seq, mut picked, mut asked) = ("start".to_string(), 0u64, 0, None);
    while picked < orders {
        seq += 1;
        let input = bondgate::store::ScanInput {
            device: "TX-1".into(),
            seq,
            barcode: code.clone(),
        };
        let started = Instant::now();
        let a = server.store.pda_scan(&input, &ctx).await?;
        store.push(started.elapsed());
        ensure!(a.ok, "refused: sent {code}, got {:?}", a.text);
        if asked == Some(Next::Lot) {
            picked += 1;
        }
        asked = Some(a.next);
        code = match a.next {
            Next::Tote => format!("TOTE-TX-{seq}"),
            Next::Bin | Next::Item | Next::Lot => common::packing::bracketed(&a.text)
                .with_context(|| format!("no code in {:?}", a.text))?
                .to_string(),
            _ if picked == orders => break,
            other => bail!("unexpected prompt {other:?}: {}", a.text),
        };
    }
    server.shutdown().await?;
    let store_left = match &db_urls[0] {
        None => {
            let pool = common::sqlite_pool(&dir.path().join("bondgate.db"), sync_full).await?;
            walked!(&pool)
        }
        Some(url) => walked!(&sqlx::PgPool::connect(url).await?),
    };
    // The raw twin, on a database seeded by a server of its own.
    let (server, api, _, dir) = serve(backend, db_urls[1].clone()).await?;
    seed(&api, orders + 8, 1, skus).await?;
    let user = user.id;
    server.shutdown().await?;
    let (raw, raw_left) = match &db_urls[1] {
        None => {
            let pool = common::sqlite_pool(&dir.path().join("bondgate.db"), sync_full).await?;
            let took = raw::sqlite::walk(&pool, "TX-1", user, orders).await?;
            (took, walked!(&pool))
        }
        Some(url) => {
            let pool = sqlx::PgPool::connect(url).await?;
            let took = raw::postgres::walk(&pool, "TX-1", user, orders).await?;
            (took, walked!(&pool))
        }
    };
    ensure!(
        store_left == raw_left,
        "the paths did different work: store {store_left:?}, raw {raw_left:?} (pick movements, answers, tasks)"
    );
    Ok(TxOutcome {
        backend: backend.to_string(),
        store,
        raw,
    })
}

async fn scratch_pg(admin_url: &str, suffix: &str) -> Result<Option<(String, String)>> {
    let conn = tokio::time::timeout(
        Duration::from_secs(3),
        sqlx::PgConnection::connect(admin_url),
    )
    .await;
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            bail!("PostgreSQL at {admin_url} unreachable while CI=true")
        }
        _ => {
            eprintln!("PostgreSQL at {admin_url} unreachable: skipping postgres");
            return Ok(None);
        }
    };
    let name = format!("bg_bench_pda_{}{suffix}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(Some((format!("{base}/{name}"), name)))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    // The server's own warnings and errors, e.g. a scan that failed.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rate = env_num("BENCH_RATE", 500, 10_000)?;
    let secs = env_num("BENCH_SECS", 15, 600)?;
    let pdas = env_num("BENCH_PDAS", 50, 1_000)?;
    let skus = env_num("BENCH_SKUS", 40, BINS as u64)? as usize;
    let load = Load {
        rate,
        secs,
        pdas,
        skus,
    };
    let backends = std::env::var("BENCH_BACKENDS")
        .unwrap_or_else(|_| "sqlite-full,sqlite-normal,postgres".into());
    let pg_admin = common::pg_url();
    let tx_orders = env_num("BENCH_TX_ORDERS", 300, 100_000)? as usize;
    let (mut results, mut txs) = (Vec::new(), Vec::new());
    for backend in backends.split(',').map(str::trim) {
        match backend {
            "sqlite-full" | "sqlite-normal" => {
                results.push(run(backend, None, load).await?);
                txs.push(transactions(backend, [None, None], tx_orders, skus).await?);
            }
            "postgres" => {
                let mut names = Vec::new();
                let mut urls = Vec::new();
                for suffix in ["", "_tx", "_raw"] {
                    if let Some((url, name)) = scratch_pg(&pg_admin, suffix).await? {
                        urls.push(url);
                        names.push(name);
                    }
                }
                let out = match &urls[..] {
                    [run_url, store_url, raw_url] => {
                        match run(backend, Some(run_url.clone()), load).await {
                            Ok(o) => {
                                let urls = [Some(store_url.clone()), Some(raw_url.clone())];
                                transactions(backend, urls, tx_orders, skus)
                                    .await
                                    .map(|t| Some((o, t)))
                            }
                            Err(e) => Err(e),
                        }
                    }
                    _ => Ok(None),
                };
                let mut conn = sqlx::PgConnection::connect(&pg_admin).await?;
                for name in names {
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                }
                if let Some((o, t)) = out? {
                    results.push(o);
                    txs.push(t);
                }
            }
            other => bail!("unknown backend {other} in BENCH_BACKENDS"),
        }
    }
    println!(
        "\nPDA scan → prompt over MQTT, {pdas} devices, {rate} scans/s offered, {secs} s, {skus} SKUs in {BINS} bins"
    );
    println!("| backend | scans | achieved scans/s | p50 ms | p99 ms | max ms | p99 ≤ 10 ms |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for o in &results {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {} |",
            o.backend,
            o.scans,
            o.scans as f64 / o.secs,
            o.p50,
            o.p99,
            o.max,
            if o.p99 <= 10.0 { "yes" } else { "no" }
        );
    }
    println!(
        "\nThe scan transaction, one device, one scan at a time, {tx_orders} orders per path: Store::pda_scan beside the raw-SQL twin on a second database"
    );
    println!("| backend | path | scans | p50 µs | p99 µs | max µs | store p50 / raw p50 |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for t in &mut txs {
        t.store.sort();
        t.raw.sort();
        let us = |d: &[Duration], p: f64| pct(d, p) * 1e3;
        let ratio = us(&t.store, 0.5) / us(&t.raw, 0.5);
        for (path, d) in [("store", &t.store), ("raw", &t.raw)] {
            println!(
                "| {} | {path} | {} | {:.0} | {:.0} | {:.0} | {} |",
                t.backend,
                d.len(),
                us(d, 0.5),
                us(d, 0.99),
                d.last().map_or(0.0, |m| m.as_secs_f64() * 1e6),
                if path == "store" {
                    format!("{ratio:.2}")
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(())
}
