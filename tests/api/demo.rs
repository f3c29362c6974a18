//! `bondgate demo`, the README's main command, run as the real binary: the
//! server, a broker, every simulated device, the edge bridges and the
//! floor's robots. Then the demo's data is opened by a fresh server, as
//! after a restart, and must show a floor whose numbers hold: every exit
//! rested on a customs release of that parcel's own 清单 and shipped
//! exactly its order, the books balance, every order the platform was told
//! was accepted exists, and every parcel that left had its label printed
//! once.
//!
//! The fault matrix runs the same floor on an external Mosquitto with gate
//! G1's and printer P2's bridges killed every few seconds, restarts the
//! broker mid-flow, kills
//! the whole demo with SIGKILL mid-flow, resumes it on the same data, and
//! checks the same books — on SQLite and on PostgreSQL.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bondgate::app::Server;
use bondgate::config::{Config, MqttBroker};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{Backend, TestDb};
use crate::mqtt::Mosquitto;

/// One run of `bondgate demo` as a child process, its log collected.
struct Demo {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    fn start(data: &Path, extra: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bondgate"))
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--mqtt-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data)
            .args(["--order-every-secs", "1"])
            .args(extra)
            .env("RUST_LOG", "info,sqlx=warn,rumqttd=warn")
            .env_remove("DATABASE_URL")
            .env_remove("MQTT_URL")
            .stderr(Stdio::piped())
            .spawn()
            .expect("bondgate demo starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Demo { child, log }
    }

    fn tail(&self) -> String {
        let lines = self.log.lock().unwrap();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// The web and API address from the banner.
    async fn base(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let found = self.log.lock().unwrap().iter().find_map(|l| {
                l.contains("screens")
                    .then(|| l.split_whitespace().find(|w| w.starts_with("http://")))
                    .flatten()
                    .map(|w| w.trim_end_matches('/').to_string())
            });
            if let Some(base) = found {
                return base;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the demo exited ({status}) before serving:\n{}",
                    self.tail()
                );
            }
            assert!(Instant::now() < deadline, "no banner:\n{}", self.tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the demo to stop by itself, successfully.
    async fn finish(mut self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the demo did not finish in time; its log ends:\n{}",
                    self.tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let lines = self.log.lock().unwrap().clone();
        assert!(status.success(), "the demo failed:\n{}", self.tail());
        assert!(
            lines.iter().any(|l| l.contains("enough parcels shipped")),
            "the demo stopped for another reason:\n{}",
            self.tail()
        );
        assert!(
            !lines.iter().any(|l| l.contains("panicked")),
            "a task panicked:\n{}",
            self.tail()
        );
        lines
    }

    /// SIGKILL: no shutdown, no flush beyond what was committed.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A manager's GET helper against `base`.
async fn manager(base: &str) -> impl Fn(String) -> futures::future::BoxFuture<'static, Value> {
    let http = reqwest::Client::new();
    let body: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "manager", "password": "demo-manager"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = body["token"]
        .as_str()
        .expect("the demo's manager logs in")
        .to_string();
    let base = base.to_string();
    move |path: String| {
        let (http, token, base) = (http.clone(), token.clone(), base.clone());
        Box::pin(async move {
            let res = http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            res.json::<Value>().await.unwrap()
        })
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        v => v["items"].as_array().cloned().unwrap_or_default(),
    }
}

/// Waits until at least `n` orders are shipped.
async fn shipped_at_least(base: &str, n: usize, demo: &Demo) -> usize {
    let get = manager(base).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let shipped = list(&get("/api/v1/orders?state=shipped&limit=500".into()).await).len();
        if shipped >= n {
            return shipped;
        }
        assert!(
            Instant::now() < deadline,
            "only {shipped} of {n} shipped; the demo's log ends:\n{}",
            demo.tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Opens the demo's data with a new server and checks the books.
async fn check_books(data: &Path, database_url: Option<&str>, shipped_min: usize) {
    let mut config = Config::for_data_dir(data);
    if let Some(url) = database_url {
        config.database_url = url.to_string();
    }
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.broker = MqttBroker::Embedded("127.0.0.1:0".parse().unwrap());
    config.customs.inbox = None;
    let server = Server::start(config).await.expect("the demo's data opens");
    let get = manager(&format!("http://{}", server.addr)).await;

    let integrity = get("/api/v1/inventory/integrity".into()).await;
    assert_eq!(integrity["ledger_mismatches"], json!([]), "{integrity}");
    assert_eq!(integrity["lock_mismatches"], json!([]), "{integrity}");
    assert!(integrity["movements_checked"].as_i64().unwrap() > 0);

    // Every order the platform was told was accepted is there.
    let acked = std::fs::read_to_string(data.join("acked-orders")).unwrap();
    let acked: Vec<&str> = acked.lines().filter(|l| !l.is_empty()).collect();
    assert!(!acked.is_empty());
    for order_no in &acked {
        let o = get(format!("/api/v1/orders/{order_no}")).await;
        assert_eq!(o["order_no"], *order_no);
    }

    // Every confirmed exit: its order shipped, its own 清单 released, the
    // release receipt named; a refusal or a fault drove nothing out.
    // The relays' own record: each pulse they saw (the demo logs them as
    // they happen) had a grant on that gate — never more pulses than opens
    // decided, across the crash.
    let pulses = std::fs::read_to_string(data.join("relay-pulses")).unwrap_or_default();
    let mut exits: HashMap<String, usize> = HashMap::new();
    let mut pulsed_total = 0;
    for gate in ["G1", "G2"] {
        let decisions = list(&get(format!("/api/v1/gates/{gate}/decisions?limit=500")).await);
        let granted = decisions.iter().filter(|d| d["decision"] == "open").count();
        let pulsed = pulses
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(gate))
            .count();
        assert!(
            pulsed <= granted,
            "{gate}: {pulsed} relay pulses for {granted} grants"
        );
        pulsed_total += pulsed;
        for d in &decisions {
            if d["output"] != "confirmed" {
                if d["decision"] != "open" {
                    assert!(d["output"].is_null(), "a refusal drove no output: {d}");
                }
                continue;
            }
            assert_eq!(d["decision"], "open", "{d}");
            assert!(d["evidence_receipt_id"].as_i64().is_some(), "{d}");
            let order_no = d["order_no"].as_str().expect("an exit names its order");
            *exits.entry(order_no.to_string()).or_default() += 1;
            let customs = get(format!("/api/v1/orders/{order_no}/customs")).await;
            assert_eq!(customs["released"], true, "{customs}");
            let order = get(format!("/api/v1/orders/{order_no}")).await;
            assert_eq!(order["state"], "shipped", "{order}");
        }
    }
    assert!(exits.len() >= shipped_min, "{exits:?}");
    assert!(pulsed_total >= 1, "the relays logged their pulses");
    assert!(
        exits.values().all(|n| *n == 1),
        "one exit per order: {exits:?}"
    );
    let shipped = list(&get("/api/v1/orders?state=shipped&limit=500".into()).await);
    assert_eq!(shipped.len(), exits.len(), "shipped orders are the exits");

    // Labels: one first print per packed parcel, never doubled; every
    // parcel that left had its label printed.
    let jobs = list(&get("/api/v1/print-jobs?limit=1000".into()).await);
    let mut firsts: HashMap<String, usize> = HashMap::new();
    for j in jobs.iter().filter(|j| j["copy"] == 1) {
        *firsts
            .entry(j["package_no"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(firsts.values().all(|n| *n == 1), "{firsts:?}");
    for order_no in exits.keys() {
        let plan = get(format!("/api/v1/packages/plan/{order_no}")).await;
        let package = plan["package"]["package_no"].as_str().unwrap().to_string();
        assert_eq!(firsts.get(&package), Some(&1), "{package} queued once");
        assert!(
            jobs.iter()
                .any(|j| j["package_no"] == package.as_str() && j["state"] == "printed"),
            "{package}'s label was printed"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_whole_floor_and_leaves_books_that_hold() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut demo = Demo::start(&data, &["--stop-after-shipped", "3"]);
    demo.base().await;
    let lines = demo.finish(Duration::from_secs(300)).await;
    // The whole path ran through the edge bridges, not only direct drivers.
    for bridge in [
        "bondgate_gate_bridge",
        "bondgate_scanner_bridge",
        "bondgate_printer_bridge",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(bridge)),
            "{bridge} took part"
        );
    }
    check_books(&data, None, 3).await;
}

both_backends!(
    the_floor_survives_a_broker_restart_a_dying_bridge_and_a_sigkill,
    |b: Backend| async move {
        let Some(db) = TestDb::new(b).await else {
            return;
        };
        let data: PathBuf = db.dir.path().join("demo");
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let url = format!("mqtt://127.0.0.1:{port}");
        let broker = Mosquitto::spawn(port).await;
        let common = [
            "--mqtt-url",
            url.as_str(),
            "--database-url",
            db.url.as_str(),
            "--chaos-bridge-secs",
            "5",
        ];

        let mut first = Demo::start(&data, &common);
        let base = first.base().await;
        let before = shipped_at_least(&base, 2, &first).await;
        // The broker goes away and comes back on the same port.
        drop(broker);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _broker = Mosquitto::spawn(port).await;
        shipped_at_least(&base, before + 2, &first).await;
        assert!(
            first
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("chaos: gate-bridge G1 killed")),
            "the bridge was killed at least once:\n{}",
            first.tail()
        );
        // Mid-flow: orders arriving, totes on the move, parcels at the gate.
        first.kill9();

        let mut resumed: Vec<&str> = common.to_vec();
        resumed.extend(["--keep-data", "--stop-after-shipped", "2"]);
        let mut second = Demo::start(&data, &resumed);
        second.base().await;
        second.finish(Duration::from_secs(300)).await;
        check_books(&data, Some(&db.url), before + 4).await;
    }
);
