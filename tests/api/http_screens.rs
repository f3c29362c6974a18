//! The web screens as the server serves them (types, caching, CSP) and the
//! live feed (`GET /api/v1/events`): typed gate decisions reach guards and
//! not pickers, and an open stream does not hold up a graceful shutdown.
//! The pages themselves are tested in headless Chromium (`ui/tests`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::gate::mqtt_gate;
use crate::helpers::{spawn_app, spawn_app_with, Backend};

#[tokio::test]
async fn http_screens_are_served_with_types_revalidation_and_a_strict_csp() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/gate", "text/html; charset=utf-8"),
        ("/ui/js/events.js", "text/javascript; charset=utf-8"),
        ("/ui/css/app.css", "text/css; charset=utf-8"),
    ] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert_eq!(h["content-type"], kind, "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self';") && !csp.contains("unsafe"),
            "{csp}"
        );
        let etag = h["etag"].clone();
        let again = app
            .client
            .get(format!("{}{path}", app.base))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    for path in ["/ui/nope.js", "/ui/js/..%2F..%2FCargo.toml", "/nope"] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    app.finish().await;
}

/// `GET /api/v1/events` as `token`: the open stream.
async fn feed(app: &crate::helpers::TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/v1/events", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Reads the stream until `want` is in it or `wait` passes; the text read.
async fn read_until(res: &mut reqwest::Response, want: &str, wait: Duration) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while !text.contains(want) {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    text
}

#[tokio::test]
async fn http_the_live_feed_carries_gate_decisions_to_guards_only() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.gates = vec![mqtt_gate("G1")]).await
    else {
        return;
    };
    let guard = app.user("gus", "guard").await;
    let picker = app.user("pia", "picker").await;
    let mut g = feed(&app, &guard).await;
    let mut p = feed(&app, &picker).await;
    assert_eq!(g.status(), StatusCode::OK);
    assert!(g.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(read_until(&mut g, ": open", Duration::from_secs(5))
        .await
        .contains(": open"));
    assert!(read_until(&mut p, ": open", Duration::from_secs(5))
        .await
        .contains(": open"));
    let (s, d) = app
        .call_as(
            Some(&guard),
            Method::POST,
            "/api/v1/gates/G1/scans",
            Some(json!({"code": "NOPE-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let seen = read_until(&mut g, "\n\n", Duration::from_secs(5)).await;
    let data = seen
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no event: {seen}"));
    assert!(seen.starts_with("event: gate_decision\n"), "{seen}");
    let event: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(event["type"], "gate_decision");
    assert_eq!(
        (event["id"].clone(), event["result"].clone()),
        (d["id"].clone(), json!("refused"))
    );
    assert_eq!(event["reason_zh"], d["reason_zh"]);
    // The picker's stream carries nothing of the gate.
    let quiet = read_until(&mut p, "gate_decision", Duration::from_millis(500)).await;
    assert!(!quiet.contains("gate_decision"), "{quiet}");
    let (s, _) = app.call_as(None, Method::GET, "/api/v1/events", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The feed and its event types are in the OpenAPI document.
    let (_, doc) = app
        .call_as(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert!(doc["paths"].get("/api/v1/events").is_some());
    assert!(doc["components"]["schemas"].get("Event").is_some());
    // Open streams end with the server: the shutdown is not held up.
    tokio::time::timeout(Duration::from_secs(20), app.finish())
        .await
        .expect("shutdown with open event streams");
    drop((g, p));
}

#[tokio::test]
async fn http_writes_through_the_api_tell_managers_screens_what_changed() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.seed().await;
    assert_eq!(app.receive("R-1", "A-01", 5).await.0, StatusCode::CREATED);
    let manager = app.user("mia", "manager").await;
    let guard = app.user("gus", "guard").await;
    let mut m = feed(&app, &manager).await;
    let mut g = feed(&app, &guard).await;
    for s in [&mut m, &mut g] {
        assert!(read_until(s, ": open", Duration::from_secs(5))
            .await
            .contains(": open"));
    }
    // A refused write announces nothing; an accepted one names its resource.
    let (s, _) = app.post("/api/v1/orders", json!({"order_no": "bad"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = app
        .post("/api/v1/orders", crate::orders::order("ORD-1", 1))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let seen = read_until(&mut m, "\n\n", Duration::from_secs(5)).await;
    assert!(seen.starts_with("event: changed\n"), "{seen}");
    let data = seen.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let event: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(event["what"], "orders", "{event}");
    let quiet = read_until(&mut g, "changed", Duration::from_millis(500)).await;
    assert!(!quiet.contains("changed"), "{quiet}");
    tokio::time::timeout(Duration::from_secs(20), app.finish())
        .await
        .expect("shutdown with open event streams");
    drop((m, g));
}
