//! The real binary: first start on an empty data directory, the generated
//! admin password, serving, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[tokio::test]
async fn serve_starts_on_an_empty_directory_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bondgate"))
        .arg("serve")
        .current_dir(dir.path())
        .env("BONDGATE_LISTEN", "127.0.0.1:0")
        .env("BONDGATE_MQTT_LISTEN", "127.0.0.1:0")
        .env_remove("MQTT_URL")
        .env("BONDGATE_LOG_FORMAT", "json")
        .env_remove("DATABASE_URL")
        .env_remove("BONDGATE_ADMIN_PASSWORD")
        .env_remove("BONDGATE_DATA_DIR")
        .stderr(Stdio::piped())
        .spawn()
        .expect("bondgate starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a log line before the deadline");
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["fields"]["message"] == "bondgate listening" {
            break v["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    let base = format!("http://{addr}");
    let password = std::fs::read_to_string(dir.path().join("data/initial-admin-password"))
        .expect("generated password file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/initial-admin-password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the password file is readable by others");
    }
    assert!(
        dir.path().join("data/bondgate.db").exists(),
        "SQLite file under ./data"
    );
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": password.trim()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Ready once the database answers and the MQTT link is subscribed.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {}",
            ready.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no exit 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("stopped")), "{logs:?}");
    assert!(
        !logs.iter().any(|l| l.contains(password.trim())),
        "the password leaked into the log"
    );
}
