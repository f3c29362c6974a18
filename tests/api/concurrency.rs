//! 32 clients over HTTP hammering one SKU: no oversell, no negative figure,
//! no lost movement, on both backends.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_app, Backend};

const CLIENTS: usize = 32;
const ROUNDS: usize = 12;
const RECEIVED: i64 = 100;

both_backends!(thirty_two_clients_never_oversell, |b: Backend| async move {
    let Some(app) = spawn_app(b).await else {
        return;
    };
    app.seed().await;
    let (s, body) = app.receive("R-CONC", "A-01", RECEIVED).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let app = std::sync::Arc::new(app);

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut posted = 0usize; // movements this client caused
            let mut locked_ok = 0i64;
            let mut held: Vec<(i64, i64)> = Vec::new();
            for r in 0..ROUNDS {
                let key = format!("C{c}-{r}");
                match (c + r) % 4 {
                    0 | 1 => {
                        let qty = 1 + ((c * 7 + r) % 5) as i64;
                        let (s, body) = app
                            .post("/api/v1/inventory/locks", json!({"key": key, "reference": key, "sku": "SKU-1", "bin": "A-01", "batch": "B1", "qty": qty}))
                            .await;
                        match s {
                            StatusCode::CREATED => {
                                posted += 1;
                                locked_ok += qty;
                                held.push((body["id"].as_i64().unwrap(), qty));
                            }
                            StatusCode::CONFLICT => assert_eq!(body["code"], "insufficient_stock", "{body}"),
                            other => panic!("lock answered {other}: {body}"),
                        }
                    }
                    2 => {
                        if let Some((id, _)) = held.pop() {
                            let (s, body) = app.post(&format!("/api/v1/inventory/locks/{id}/release"), json!({})).await;
                            assert_eq!(s, StatusCode::OK, "{body}");
                            posted += 1;
                        }
                    }
                    _ => {
                        // Both directions at once: A→B and B→A must not deadlock.
                        let (from, to) = if c % 2 == 0 { ("A-01", "A-02") } else { ("A-02", "A-01") };
                        let (s, body) = app
                            .post("/api/v1/inventory/transfers", json!({"key": key, "sku": "SKU-1", "batch": "B1", "from_bin": from, "to_bin": to, "qty": 1}))
                            .await;
                        match s {
                            StatusCode::CREATED => posted += 2,
                            StatusCode::CONFLICT => assert_eq!(body["code"], "insufficient_stock", "{body}"),
                            other => panic!("transfer answered {other}: {body}"),
                        }
                    }
                }
            }
            let still_held: i64 = held.iter().map(|(_, q)| q).sum();
            (posted, locked_ok, still_held)
        }));
    }
    let mut posted = 1; // the receipt
    let mut still_held = 0;
    for t in tasks {
        let (p, _, h) = t.await.expect("client task");
        posted += p;
        still_held += h;
    }

    let (s, stock) = app.get("/api/v1/inventory?sku=SKU-1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        stock["totals"]["total"], RECEIVED,
        "units appeared or vanished: {stock}"
    );
    assert_eq!(
        stock["totals"]["locked"], still_held,
        "locked figure differs from the reservations held: {stock}"
    );
    for row in stock["rows"].as_array().unwrap() {
        for f in ["available", "locked", "defective"] {
            assert!(row[f].as_i64().unwrap() >= 0, "negative {f}: {row}");
        }
    }
    let (_, page) = app.get("/api/v1/inventory/movements?limit=1000").await;
    assert_eq!(
        page["movements"].as_array().unwrap().len(),
        posted,
        "a movement was lost or doubled"
    );
    app.integrity_clean().await;
    let (_, rec) = app
        .call_as(
            Some(&app.token),
            Method::GET,
            "/api/v1/inventory/reconciliation",
            None,
        )
        .await;
    assert_eq!(rec[0]["balanced"], true, "{rec}");
    match std::sync::Arc::try_unwrap(app) {
        Ok(app) => app.finish().await,
        Err(_) => panic!("client tasks still hold the app"),
    }
});
