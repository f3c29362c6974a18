//! The HTTP API through a real server: authentication and roles, the problem
//! format, bad input that changes nothing, idempotency, and the operational
//! endpoints.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, TestApp};

async fn stock_total(app: &TestApp) -> Value {
    app.get("/api/v1/inventory?sku=SKU-1").await.1["totals"].clone()
}

async fn movement_count(app: &TestApp) -> usize {
    app.get("/api/v1/inventory/movements?limit=1000").await.1["movements"]
        .as_array()
        .unwrap()
        .len()
}

both_backends!(
    bad_input_is_refused_with_a_problem_and_changes_nothing,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        assert_eq!(app.receive("R-1", "A-01", 5).await.0, StatusCode::CREATED);
        let before = (stock_total(&app).await, movement_count(&app).await);

        let raw = app
            .client
            .post(format!("{}/api/v1/receipts", app.base))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body("{\"receipt_no\": \"R-2\", ")
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
        assert_eq!(raw.headers()["content-type"], "application/problem+json");
        let body: Value = raw.json().await.unwrap();
        assert_eq!(body["code"], "malformed_json");
        assert_eq!(body["status"], 400);

        let line = |sku: &str, bin: &str, qty: Value| json!({"receipt_no": "R-2", "customs_doc_no": "QD-2", "lines": [{"sku": sku, "bin": bin, "batch": "B1", "qty": qty}]});
        let cases = [
            (
                line("NOPE", "A-01", json!(1)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_sku",
            ),
            (
                line("SKU-1", "Z-99", json!(1)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_bin",
            ),
            (
                line("SKU-1", "A-01", json!(0)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                line("SKU-1", "A-01", json!(-4)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                line("SKU-1", "A-01", json!(9223372036854775808u64)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                line("SKU-1", "A-01", json!(1_000_000_001)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                line("SKU-1", "A-01", json!("3")),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                line("SKU 1\r", "A-01", json!(1)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                json!({"receipt_no": "R-2", "customs_doc_no": "QD-2", "lines": []}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                json!({"receipt_no": "R-2", "customs_doc_no": "QD-2", "lines": [], "extra": 1}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            // Same receipt number, different content: refused, not merged.
            (
                line("SKU-1", "A-02", json!(5))
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o["receipt_no"] = json!("R-1");
                        Value::Object(o)
                    })
                    .unwrap(),
                StatusCode::CONFLICT,
                "idempotency_conflict",
            ),
        ];
        for (body, status, code) in cases {
            let (s, got) = app.post("/api/v1/receipts", body.clone()).await;
            assert_eq!(
                (s, got["code"].as_str()),
                (status, Some(code)),
                "{body} -> {got}"
            );
            assert!(
                got["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{got}"
            );
        }
        let (s, got) = app.post("/api/v1/inventory/locks", json!({"key": "L-9", "reference": "O-9", "sku": "SKU-1", "bin": "A-01", "batch": "B1", "qty": 6})).await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(got["code"], "insufficient_stock");
        assert_eq!(
            (
                got["facts"]["have"].as_i64(),
                got["facts"]["requested"].as_i64()
            ),
            (Some(5), Some(6))
        );
        assert_eq!(
            (stock_total(&app).await, movement_count(&app).await),
            before,
            "a refused request changed the books"
        );

        let (s, got) = app.get("/api/v1/inventory/locks/not-a-number").await;
        assert_eq!(
            (s, got["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_path"))
        );
        let (s, got) = app.get("/api/v1/no/such/thing").await;
        assert_eq!(
            (s, got["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
        let (s, got) = app
            .call_as(Some(&app.token), Method::DELETE, "/api/v1/skus", None)
            .await;
        assert_eq!(
            (s, got["code"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
        );
        let big = "x".repeat(2 * 1024 * 1024);
        let (s, got) = app
            .post(
                "/api/v1/skus",
                json!({"code": "BIG", "name": big, "unit_weight_grams": 1}),
            )
            .await;
        assert_eq!(
            (s, got["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
        );
        app.finish().await;
    }
);

both_backends!(
    the_same_request_repeated_gets_the_original_answer,
    |b: Backend| async move {
        let Some(app) = spawn_app(b).await else {
            return;
        };
        app.seed().await;
        let (s1, first) = app.receive("R-1", "A-01", 5).await;
        let (s2, again) = app.receive("R-1", "A-01", 5).await;
        assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
        assert_eq!(first, again);
        let lock = json!({"key": "L-1", "reference": "O-1", "sku": "SKU-1", "bin": "A-01", "batch": "B1", "qty": 2});
        let (_, l1) = app.post("/api/v1/inventory/locks", lock.clone()).await;
        let (_, l2) = app.post("/api/v1/inventory/locks", lock).await;
        assert_eq!(l1, l2);
        assert_eq!(stock_total(&app).await["locked"], 2);
        assert_eq!(movement_count(&app).await, 2);
        let (s, _) = app.get("/api/v1/receipts/R-1").await;
        assert_eq!(s, StatusCode::OK);
        app.finish().await;
    }
);

#[tokio::test]
async fn every_endpoint_checks_authentication_and_roles() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.seed().await;
    let (s, body) = app
        .call_as(None, Method::GET, "/api/v1/inventory", None)
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (s, _) = app
        .call_as(Some("forged-token"), Method::GET, "/api/v1/inventory", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .call_as(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"username": "admin", "password": "wrong-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let picker = app.user("pia", "picker").await;
    let guard = app.user("gus", "guard").await;
    let integration = app.user("platform", "integration").await;
    let manager = app.user("mia", "manager").await;
    // Everyone reads stock; only some may change it.
    for t in [&picker, &guard, &integration, &manager] {
        assert_eq!(
            app.call_as(Some(t), Method::GET, "/api/v1/inventory", None)
                .await
                .0,
            StatusCode::OK
        );
    }
    let receipt = json!({"receipt_no": "R-1", "customs_doc_no": "QD-1", "lines": [{"sku": "SKU-1", "bin": "A-01", "batch": "B1", "qty": 3}]});
    let (s, body) = app
        .call_as(
            Some(&picker),
            Method::POST,
            "/api/v1/receipts",
            Some(receipt.clone()),
        )
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert_eq!(
        app.call_as(
            Some(&integration),
            Method::POST,
            "/api/v1/receipts",
            Some(receipt)
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let lock = json!({"key": "L-1", "reference": "O-1", "sku": "SKU-1", "bin": "A-01", "batch": "B1", "qty": 1});
    assert_eq!(
        app.call_as(
            Some(&guard),
            Method::POST,
            "/api/v1/inventory/locks",
            Some(lock)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call_as(Some(&picker), Method::GET, "/api/v1/users", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call_as(Some(&manager), Method::GET, "/api/v1/users", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call_as(Some(&picker), Method::GET, "/api/v1/audit", None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let sku = json!({"code": "SKU-2", "name": "x", "unit_weight_grams": 1});
    assert_eq!(
        app.call_as(
            Some(&picker),
            Method::POST,
            "/api/v1/skus",
            Some(sku.clone())
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call_as(Some(&manager), Method::POST, "/api/v1/skus", Some(sku))
            .await
            .0,
        StatusCode::CREATED
    );

    // Four eyes on adjustments: the admin requests, the manager approves.
    let adj = json!({"key": "ADJ-1", "sku": "SKU-1", "bin": "A-01", "batch": "B1", "bucket": "available", "delta": 1, "reason": "found behind the shelf"});
    let (s, a) = app.post("/api/v1/inventory/adjustments", adj).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let approve = format!("/api/v1/inventory/adjustments/{}/approve", a["id"]);
    assert_eq!(
        app.post(&approve, json!(null)).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, a) = app
        .call_as(Some(&manager), Method::POST, &approve, None)
        .await;
    assert_eq!((s, a["state"].as_str()), (StatusCode::OK, Some("approved")));

    // Logging out, or a password change, ends the session.
    assert_eq!(
        app.call_as(Some(&picker), Method::POST, "/api/v1/auth/logout", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.call_as(Some(&picker), Method::GET, "/api/v1/auth/me", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = app
        .call_as(
            Some(&app.token),
            Method::PATCH,
            "/api/v1/users/gus",
            Some(json!({"password": "a-new-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.call_as(Some(&guard), Method::GET, "/api/v1/auth/me", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = app
        .call_as(
            Some(&app.token),
            Method::PATCH,
            "/api/v1/users/mia",
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.call_as(Some(&manager), Method::GET, "/api/v1/inventory", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = app
        .call_as(
            Some(&app.token),
            Method::PATCH,
            "/api/v1/users/admin",
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an admin cannot lock themselves out"
    );

    // Who did what is on record, and no secret is.
    let (s, audit) = app.get("/api/v1/audit?limit=200").await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.create",
        "session.login",
        "sku.create",
        "adjustment.request",
        "adjustment.approve",
        "user.update",
        "session.logout",
    ] {
        assert!(actions.contains(&a), "no {a} in the audit log: {actions:?}");
    }
    assert!(
        !audit.to_string().contains("a-new-password")
            && !audit.to_string().contains("password-of-test")
    );
    app.finish().await;
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let (s, h) = app.call_as(None, Method::GET, "/healthz", None).await;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, r) = app.call_as(None, Method::GET, "/readyz", None).await;
    assert_eq!((s, r["database"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, doc) = app
        .call_as(None, Method::GET, "/api/v1/openapi.json", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/api/v1/receipts",
        "/api/v1/inventory/locks",
        "/api/v1/inventory/reconciliation",
        "/api/v1/auth/login",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"].get("Problem").is_some());
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let id = res.headers().get("x-request-id").cloned();
    let text = res.text().await.unwrap();
    assert!(text.contains("bondgate_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
    assert!(id.is_some(), "responses carry a request id");
    // Closing the database makes the server say it is not ready.
    app.server.store.close().await;
    let (s, r) = app.call_as(None, Method::GET, "/readyz", None).await;
    assert_eq!(
        (s, r["database"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unreachable"))
    );
    app.finish().await;
}
