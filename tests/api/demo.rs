//! `bondgate demo`, the README's main command, run as the real binary: the
//! server, its broker, every simulated device and the floor's robots, until
//! parcels have left through both gates' lanes. The demo's data is then
//! opened by a fresh server, as after a restart, and must show a floor whose
//! numbers hold: every exit rested on a customs release of that parcel's own
//! 清单 and shipped exactly its order, the books balance, and every packed
//! parcel's label was printed once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bondgate::app::Server;
use bondgate::config::{Config, MqttBroker};
use reqwest::StatusCode;
use serde_json::{json, Value};

const SHIPPED: u64 = 3;

#[tokio::test]
async fn the_demo_runs_the_whole_floor_and_leaves_books_that_hold() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bondgate"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--order-every-secs", "1"])
        .args(["--stop-after-shipped", &SHIPPED.to_string()])
        .env("RUST_LOG", "info,sqlx=warn,rumqttd=warn")
        .env_remove("DATABASE_URL")
        .env_remove("MQTT_URL")
        .stderr(Stdio::piped())
        .spawn()
        .expect("bondgate demo starts");
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the demo shipped fewer than {SHIPPED} parcels in 5 minutes; its log ends:\n{}",
                tail(&log.lock().unwrap())
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lines = log.lock().unwrap().clone();
    assert!(status.success(), "the demo failed:\n{}", tail(&lines));
    assert!(
        lines.iter().any(|l| l.contains("enough parcels shipped")),
        "the demo stopped for another reason:\n{}",
        tail(&lines)
    );
    assert!(
        !lines.iter().any(|l| l.contains("panicked")),
        "a task panicked:\n{}",
        tail(&lines)
    );

    // The demo's data, opened by a new server as after a restart.
    let mut config = Config::for_data_dir(&data);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.broker = MqttBroker::Embedded("127.0.0.1:0".parse().unwrap());
    config.customs.inbox = None;
    let server = Server::start(config).await.expect("the demo's data opens");
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let token = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "manager", "password": "demo-manager"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .expect("the demo's manager logs in")
        .to_string();
    let get = |path: String| {
        let (http, token, base) = (http.clone(), token.clone(), base.clone());
        async move {
            let res = http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            res.json::<Value>().await.unwrap()
        }
    };

    let integrity = get("/api/v1/inventory/integrity".into()).await;
    assert_eq!(integrity["ledger_mismatches"], json!([]), "{integrity}");
    assert_eq!(integrity["lock_mismatches"], json!([]), "{integrity}");
    assert!(integrity["movements_checked"].as_i64().unwrap() > 0);

    // Every confirmed exit: its order shipped, its own 清单 released, the
    // release receipt named; nothing else shipped.
    let mut exits: HashMap<String, usize> = HashMap::new();
    let mut gates_used = 0;
    for gate in ["G1", "G2"] {
        let decisions = get(format!("/api/v1/gates/{gate}/decisions?limit=500")).await;
        let decisions = list(&decisions);
        let mut opened_here = 0;
        for d in &decisions {
            if d["output"] != "confirmed" {
                continue;
            }
            opened_here += 1;
            assert_eq!(d["decision"], "open", "{d}");
            assert!(d["evidence_receipt_id"].as_i64().is_some(), "{d}");
            let order_no = d["order_no"].as_str().expect("an exit names its order");
            *exits.entry(order_no.to_string()).or_default() += 1;
            let customs = get(format!("/api/v1/orders/{order_no}/customs")).await;
            assert_eq!(customs["released"], true, "{customs}");
            let order = get(format!("/api/v1/orders/{order_no}")).await;
            assert_eq!(order["state"], "shipped", "{order}");
        }
        if opened_here > 0 {
            gates_used += 1;
        }
        for d in decisions.iter().filter(|d| d["decision"] != "open") {
            assert!(d["output"].is_null(), "a refusal drove no output: {d}");
        }
    }
    assert!(exits.len() as u64 >= SHIPPED, "{exits:?}");
    assert!(
        exits.values().all(|n| *n == 1),
        "one exit per order: {exits:?}"
    );
    assert!(gates_used >= 1);
    let shipped = list(&get("/api/v1/orders?state=shipped&limit=500".into()).await);
    assert_eq!(shipped.len(), exits.len(), "shipped orders are the exits");

    // Labels: one first print per packed parcel, none lost, none doubled.
    let jobs = list(&get("/api/v1/print-jobs?limit=500".into()).await);
    let mut firsts: HashMap<String, usize> = HashMap::new();
    for j in &jobs {
        if j["copy"] == 1 {
            *firsts
                .entry(j["package_no"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert!(firsts.values().all(|n| *n == 1), "{firsts:?}");
    for order_no in exits.keys() {
        let plan = get(format!("/api/v1/packages/plan/{order_no}")).await;
        let package = plan["package"]["package_no"].as_str().unwrap().to_string();
        assert_eq!(firsts.get(&package), Some(&1), "{package} printed once");
        let printed = jobs
            .iter()
            .any(|j| j["package_no"] == package.as_str() && j["state"] == "printed");
        assert!(printed, "{package}'s label was printed: {jobs:?}");
    }
    server.shutdown().await.unwrap();
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        v => v["items"].as_array().cloned().unwrap_or_default(),
    }
}

fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(60)..].join("\n")
}
