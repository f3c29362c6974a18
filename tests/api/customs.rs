//! Customs receipts over HTTP from a signing gateway, on both backends: a
//! 清单 moves 2 → 120 → 399 (not released) → 800 (released), whatever order
//! the receipts arrive in; forged, unknown-key, malformed and replayed
//! deliveries are refused and change nothing; a rejection (100) cancels the
//! order and gives its stock back.

use bondgate::config::CustomsKey;
use bondgate_customs::receipt::Body;
use bondgate_customs::sign::{ed25519_signing_key, sign_ed25519};
use bondgate_customs::{InventoryReturn, Message, ReturnStatus, ReturnTime};
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::orders::order;

const GATEWAY_SECRET: [u8; 32] = [7; 32];

/// The test gateway's public key, as a server is configured with it.
pub(crate) fn gateway_key() -> CustomsKey {
    CustomsKey {
        id: "gw-1".into(),
        kind: "ed25519".into(),
        bytes: ed25519_signing_key(&GATEWAY_SECRET)
            .verifying_key()
            .to_bytes()
            .to_vec(),
    }
}

pub(crate) fn ceb622(cop_no: &str, status: i64, time: &str) -> Vec<u8> {
    bondgate_customs::encode(&Message {
        envelope: None,
        guid: Some(format!("GUID-{cop_no}-{status}-{time}")),
        body: Body::Ceb622(vec![InventoryReturn {
            guid: Some(format!("R-{cop_no}-{status}-{time}")),
            customs_code: Some("2924".into()),
            ebp_code: Some("3301964J31".into()),
            ebc_code: Some("3301964J31".into()),
            agent_code: Some("3301980B01".into()),
            cop_no: cop_no.into(),
            pre_no: Some("B20261123000000001".into()),
            invt_no: (status >= 120).then(|| "29242026I000000001".into()),
            return_status: ReturnStatus::new(status),
            return_time: ReturnTime::parse(time).unwrap(),
            return_info: Some(format!("[Code:{status};Desc:test]")),
        }]),
    })
}

async fn deliver(
    app: &TestApp,
    token: &str,
    key: &str,
    sig: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}/api/v1/customs/receipts", app.base))
        .bearer_auth(token)
        .header("content-type", "application/xml")
        .header("x-bondgate-key-id", key)
        .header("x-bondgate-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn signed(app: &TestApp, token: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let sig = sign_ed25519(&ed25519_signing_key(&GATEWAY_SECRET), &body);
    deliver(app, token, "gw-1", &sig, body).await
}

async fn state(app: &TestApp, order_no: &str) -> Value {
    let (s, v) = app.get(&format!("/api/v1/orders/{order_no}/customs")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

both_backends!(
    a_declaration_is_released_only_by_800_and_refusals_change_nothing,
    |b: Backend| async move {
        let public = ed25519_signing_key(&GATEWAY_SECRET)
            .verifying_key()
            .to_bytes();
        let Some(app) = spawn_app_with(b, |c| {
            c.customs.keys = vec![CustomsKey {
                id: "gw-1".into(),
                kind: "ed25519".into(),
                bytes: public.to_vec(),
            }];
        })
        .await
        else {
            return;
        };
        app.seed().await;
        assert_eq!(app.receive("R-1", "A-01", 10).await.0, StatusCode::CREATED);
        for no in ["ORD-1", "ORD-2"] {
            let (s, b) = app.post("/api/v1/orders", order(no, 2)).await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
        }
        let gateway = app.user("gw", "integration").await;
        assert_eq!(state(&app, "ORD-1").await["state"], "no_receipt");

        for (status, time) in [
            (2, "20261123100000000"),
            (120, "20261123100100000"),
            (399, "20261123100200000"),
        ] {
            let (s, v) = signed(&app, &gateway, ceb622("COP-ORD-1", status, time)).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        let st = state(&app, "ORD-1").await;
        assert_eq!(
            (st["state"].as_str(), st["released"].as_bool()),
            (Some("pending"), Some(false)),
            "{st}"
        );
        assert!(st["refusal"]["zh"].is_string(), "{st}");

        let release = ceb622("COP-ORD-1", 800, "20261123110000000");
        assert_eq!(
            signed(&app, &gateway, release.clone()).await.0,
            StatusCode::CREATED
        );
        // A late receipt dated before the release does not undo it.
        assert_eq!(
            signed(
                &app,
                &gateway,
                ceb622("COP-ORD-1", 120, "20261123100150000")
            )
            .await
            .0,
            StatusCode::CREATED
        );
        let st = state(&app, "ORD-1").await;
        assert_eq!(
            (st["state"].as_str(), st["released"].as_bool()),
            (Some("released"), Some(true)),
            "{st}"
        );
        assert_eq!(st["receipts"].as_array().unwrap().len(), 5);
        assert_eq!(
            st["receipts"][2]["return_status"], 120,
            "returnTime order: {st}"
        );

        // Replayed, forged, unknown-key, unsigned and malformed deliveries.
        let (s, e) = signed(&app, &gateway, release.clone()).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::CONFLICT, Some("receipt_replayed")),
            "{e}"
        );
        let hold = ceb622("COP-ORD-1", 500, "20261123120000000");
        let forged = sign_ed25519(&ed25519_signing_key(&[8; 32]), &hold);
        let (s, e) = deliver(&app, &gateway, "gw-1", &forged, hold.clone()).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("receipt_not_authenticated")),
            "{e}"
        );
        let good = sign_ed25519(&ed25519_signing_key(&GATEWAY_SECRET), &hold);
        assert_eq!(
            deliver(&app, &gateway, "gw-9", &good, hold.clone()).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            deliver(&app, &gateway, "", "", hold.clone()).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (s, e) = signed(&app, &gateway, b"<CEB622Message><InventoryReturn>".to_vec()).await;
        assert_eq!(
            (s, e["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("receipt_malformed")),
            "{e}"
        );
        // Only the integration role delivers receipts.
        let sig = sign_ed25519(&ed25519_signing_key(&GATEWAY_SECRET), &hold);
        let picker = app.user("pia", "picker").await;
        assert_eq!(
            deliver(&app, &picker, "gw-1", &sig, hold.clone()).await.0,
            StatusCode::FORBIDDEN
        );
        let st = state(&app, "ORD-1").await;
        assert_eq!(
            (
                st["state"].as_str(),
                st["receipts"].as_array().unwrap().len()
            ),
            (Some("released"), 5),
            "{st}"
        );

        // The genuine hold dated after the release revokes it.
        assert_eq!(
            deliver(&app, &gateway, "gw-1", &sig, hold).await.0,
            StatusCode::CREATED
        );
        let st = state(&app, "ORD-1").await;
        assert_eq!(
            (st["state"].as_str(), st["released"].as_bool()),
            (Some("held"), Some(false)),
            "{st}"
        );

        // A rejection cancels the order and gives its stock back.
        let (_, before) = app.get("/api/v1/inventory?sku=SKU-1").await;
        assert_eq!(before["totals"]["locked"], 4, "{before}");
        let (s, v) = signed(
            &app,
            &gateway,
            ceb622("COP-ORD-2", 100, "20261123130000000"),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["cancelled_orders"], serde_json::json!(["ORD-2"]));
        assert_eq!(
            app.get("/api/v1/orders/ORD-2").await.1["state"],
            "cancelled"
        );
        let (_, after) = app.get("/api/v1/inventory?sku=SKU-1").await;
        assert_eq!(after["totals"]["locked"], 2, "{after}");
        app.integrity_clean().await;
        app.finish().await;
    }
);

/// The watched inbox: a receipt file counts once its `.sig` is there; it is
/// moved to `done/` once stored — also when it was stored before, as after a
/// crash between storing and moving — and a forged one to `failed/` with
/// the reason beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_files_dropped_in_the_inbox_are_stored_once_and_moved() {
    let public = ed25519_signing_key(&GATEWAY_SECRET)
        .verifying_key()
        .to_bytes();
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.customs.keys = vec![CustomsKey {
            id: "gw-1".into(),
            kind: "ed25519".into(),
            bytes: public.to_vec(),
        }];
    })
    .await
    else {
        return;
    };
    app.seed().await;
    assert_eq!(app.receive("R-1", "A-01", 10).await.0, StatusCode::CREATED);
    assert_eq!(
        app.post("/api/v1/orders", order("ORD-1", 1)).await.0,
        StatusCode::CREATED
    );
    let inbox = app.db.dir.path().join("customs-inbox");
    let drop = |name: &str, body: &[u8], sig_line: String| {
        std::fs::write(inbox.join(name), body).unwrap();
        std::fs::write(inbox.join(format!("{name}.sig")), sig_line).unwrap();
    };
    let sign = |body: &[u8]| sign_ed25519(&ed25519_signing_key(&GATEWAY_SECRET), body);

    // A file without its .sig is left alone.
    let release = ceb622("COP-ORD-1", 800, "20261123110000000");
    std::fs::write(inbox.join("a-release.xml"), &release).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(inbox.join("a-release.xml").exists());
    std::fs::write(
        inbox.join("a-release.xml.sig"),
        format!("gw-1 {}\n", sign(&release)),
    )
    .unwrap();
    // Already stored over HTTP (the crash case): still moved to done/.
    let pending = ceb622("COP-ORD-1", 120, "20261123100000000");
    let gateway = app.user("gw", "integration").await;
    assert_eq!(
        signed(&app, &gateway, pending.clone()).await.0,
        StatusCode::CREATED
    );
    drop(
        "b-pending.xml",
        &pending,
        format!("gw-1 {}", sign(&pending)),
    );
    let hold = ceb622("COP-ORD-1", 500, "20261123120000000");
    drop(
        "c-forged.xml",
        &hold,
        format!("gw-1 {}", sign(b"other bytes")),
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !(inbox.join("done/a-release.xml").exists()
        && inbox.join("done/b-pending.xml").exists()
        && inbox.join("failed/c-forged.xml").exists())
    {
        assert!(std::time::Instant::now() < deadline, "inbox not swept");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(inbox.join("done/a-release.xml.sig").exists());
    let reason = std::fs::read_to_string(inbox.join("failed/c-forged.xml.reason")).unwrap();
    assert!(reason.contains("not authenticated"), "{reason}");
    let st = state(&app, "ORD-1").await;
    assert_eq!(
        (
            st["state"].as_str(),
            st["receipts"].as_array().unwrap().len()
        ),
        (Some("released"), 2),
        "{st}"
    );
    app.finish().await;
}
