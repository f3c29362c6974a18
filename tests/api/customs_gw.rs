//! The customs gateway simulator (`bondgate_sim::customs_gw`) against the
//! real server, on both backends, over both ways a gateway delivers: HTTP
//! and the watched inbox directory. Every scripted sequence is checked
//! through `GET /api/v1/orders/{order_no}/customs`, after each delivery
//! where the path matters: a 清单 is released only by an 800; a later hold
//! revokes a release; a rejection or a cancellation cancels the order and
//! gives its stock back; receipts arriving out of order end where their
//! returnTimes say; a duplicate delivery is a replay and changes nothing;
//! forged, unknown-key, unsigned and malformed deliveries are refused and
//! change nothing; a rotated key is accepted once configured, and a key
//! that is not configured is refused.

use bondgate::app::Server;
use bondgate::config::{Config, CustomsKey, MqttBroker};
use bondgate_customs::ReturnTime;
use bondgate_sim::customs_gw::{
    Answer, Declaration, Gateway, GatewayKey, HttpTarget, Inbox, InboxOutcome, Script, Target,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::orders::order;

/// The test gateway's key: the same as `tests/api/customs.rs` configures.
fn gw1() -> GatewayKey {
    GatewayKey::ed25519("gw-1", &[7; 32])
}

fn server_key(k: &GatewayKey) -> CustomsKey {
    CustomsKey {
        id: k.id().into(),
        kind: k.kind().into(),
        bytes: k.server_bytes(),
    }
}

fn start() -> ReturnTime {
    ReturnTime::parse("20261123100000000").unwrap()
}

/// A server trusting `keys`, with 10 units of SKU-1 in stock, and both
/// targets: HTTP with an integration user's token, and the inbox the
/// server's configuration names.
async fn setup(b: Backend, keys: &[GatewayKey]) -> Option<(TestApp, [(&'static str, Target); 2])> {
    let keys: Vec<CustomsKey> = keys.iter().map(server_key).collect();
    let mut inbox = None;
    let app = spawn_app_with(b, |c| {
        c.customs.keys = keys;
        inbox = c.customs.inbox.clone();
    })
    .await?;
    app.seed().await;
    assert_eq!(app.receive("R-1", "A-01", 10).await.0, StatusCode::CREATED);
    let token = app.user("gateway", "integration").await;
    let inbox = inbox.expect("the server watches an inbox by default");
    let targets = [
        (
            "http",
            Target::Http(HttpTarget::new(&app.base, &token).unwrap()),
        ),
        ("inbox", Target::Inbox(Inbox::new(inbox))),
    ];
    Some((app, targets))
}

/// An order of 2 units whose 清单 is `COP-{no}`, and that declaration.
/// Order `no` declared (see [`declared_order`]), and gateway gw-1 sending
/// from message number `seed`.
async fn declared_with_gw1(app: &TestApp, no: &str, seed: u64) -> (Declaration, Gateway) {
    (declared_order(app, no).await, Gateway::new(gw1(), seed))
}

async fn declared_order(app: &TestApp, no: &str) -> Declaration {
    let (s, b) = app.post("/api/v1/orders", order(no, 2)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    Declaration::new(&format!("COP-{no}"), start(), 1)
}

async fn customs(app: &TestApp, order_no: &str) -> Value {
    let (s, v) = app.get(&format!("/api/v1/orders/{order_no}/customs")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// (state, released, number of receipts) of an order.
async fn summary(app: &TestApp, order_no: &str) -> (String, bool, usize) {
    let v = customs(app, order_no).await;
    (
        v["state"].as_str().unwrap().to_owned(),
        v["released"].as_bool().unwrap(),
        v["receipts"].as_array().unwrap().len(),
    )
}

async fn statuses(app: &TestApp, order_no: &str) -> Vec<i64> {
    customs(app, order_no).await["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["return_status"].as_i64().unwrap())
        .collect()
}

fn assert_stored(a: &Answer) {
    assert!(a.stored(), "expected stored, got {a}");
    if let Answer::Http { body, .. } = a {
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["receipts"].as_array().map(Vec::len), Some(1), "{v}");
    }
}

/// Refused: over HTTP with `status` and problem `code`; from the inbox
/// moved to `failed/` with a reason containing `reason`.
fn assert_refused(a: &Answer, status: u16, code: &str, reason: &str) {
    match a {
        Answer::Http { status: s, .. } => {
            assert_eq!(*s, status, "{a}");
            assert_eq!(a.problem_code().as_deref(), Some(code), "{a}");
        }
        Answer::Inbox { outcome, .. } => match outcome {
            InboxOutcome::Failed { reason: r } => assert!(r.contains(reason), "{a}"),
            other => panic!("expected failed/, got {other:?}"),
        },
    }
}

async fn locked(app: &TestApp) -> i64 {
    let (s, v) = app.get("/api/v1/inventory?sku=SKU-1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["totals"]["locked"].as_i64().unwrap()
}

/// Delivers a whole script in arrival order: (returnStatus, answer) each.
async fn deliver_all(
    script: &Script,
    gw: &mut Gateway,
    decl: &Declaration,
    target: &Target,
) -> Vec<(i64, Answer)> {
    let statuses = script.statuses();
    let mut out = Vec::new();
    for (step, d) in script.prepare(gw, decl) {
        let answer = target.deliver(&d).await.expect("delivered");
        out.push((statuses[step], answer));
    }
    out
}

both_backends!(
    the_normal_sequence_is_released_only_by_the_800,
    |b: Backend| async move {
        let Some((app, targets)) = setup(b, &[gw1()]).await else {
            return;
        };
        for (i, (via, target)) in targets.iter().enumerate() {
            let no = format!("ORD-N{i}");
            let decl = declared_order(&app, &no).await;
            assert_eq!(summary(&app, &no).await, ("no_receipt".into(), false, 0));
            let mut gw = Gateway::new(gw1(), 10 + i as u64);
            let script = Script::normal(start());
            for (n, (step, d)) in script.prepare(&mut gw, &decl).into_iter().enumerate() {
                assert_stored(&target.deliver(&d).await.unwrap());
                let (state, released, count) = summary(&app, &no).await;
                assert_eq!(count, n + 1, "{via}");
                if script.statuses()[step] == 800 {
                    assert_eq!((state.as_str(), released), ("released", true), "{via}");
                } else {
                    assert_eq!((state.as_str(), released), ("pending", false), "{via}");
                    let v = customs(&app, &no).await;
                    assert!(v["refusal"]["zh"].is_string(), "{via}: {v}");
                }
            }
            assert_eq!(statuses(&app, &no).await, [2, 120, 399, 800], "{via}");
            let v = customs(&app, &no).await;
            assert_eq!(v["receipts"][3]["invt_no"], "29242026I000000001", "{v}");
            assert_eq!(v["receipts"][0]["pre_no"], "B20261123000000001", "{v}");
            assert_eq!(v["receipts"][3]["return_time"], "20261123100300000", "{v}");
        }
        app.finish().await;
    }
);

both_backends!(
    inspection_holds_then_the_800_releases_also_in_the_dxp_envelope,
    |b: Backend| async move {
        let Some((app, targets)) = setup(b, &[gw1()]).await else {
            return;
        };
        for (i, (via, target)) in targets.iter().enumerate() {
            let no = format!("ORD-I{i}");
            let (decl, mut gw) = declared_with_gw1(&app, &no, 20 + i as u64).await;
            gw.envelope = true;
            let script = Script::inspection_then_release(start());
            let mut seen = Vec::new();
            for (step, d) in script.prepare(&mut gw, &decl) {
                assert!(String::from_utf8_lossy(&d.body).contains("DxpMsg"));
                assert_stored(&target.deliver(&d).await.unwrap());
                let (state, released, _) = summary(&app, &no).await;
                seen.push((script.statuses()[step], state, released));
            }
            let expected: Vec<(i64, String, bool)> = vec![
                (2, "pending".into(), false),
                (120, "pending".into(), false),
                (500, "held".into(), false),
                (800, "released".into(), true),
            ];
            assert_eq!(seen, expected, "{via}");
        }
        app.finish().await;
    }
);

both_backends!(
    a_detention_dated_after_the_release_revokes_it,
    |b: Backend| async move {
        let Some((app, targets)) = setup(b, &[gw1()]).await else {
            return;
        };
        for (i, (via, target)) in targets.iter().enumerate() {
            let no = format!("ORD-D{i}");
            let (decl, mut gw) = declared_with_gw1(&app, &no, 30 + i as u64).await;
            let script = Script::detention(start(), 502);
            let prepared = script.prepare(&mut gw, &decl);
            let (release, hold) = prepared.split_at(4);
            for (_, d) in release {
                assert_stored(&target.deliver(d).await.unwrap());
            }
            assert_eq!(
                summary(&app, &no).await,
                ("released".into(), true, 4),
                "{via}"
            );
            assert_stored(&target.deliver(&hold[0].1).await.unwrap());
            let v = customs(&app, &no).await;
            assert_eq!(
                (v["state"].as_str(), v["released"].as_bool()),
                (Some("held"), Some(false)),
                "{via}: {v}"
            );
            assert!(v["refusal"]["en"].is_string(), "{v}");
            // A hold is not a cancellation: the order and its stock stay.
            assert_ne!(
                app.get(&format!("/api/v1/orders/{no}")).await.1["state"],
                "cancelled"
            );
        }
        app.finish().await;
    }
);

both_backends!(
    a_rejection_or_a_cancellation_cancels_the_order_and_releases_its_stock,
    |b: Backend| async move {
        let Some((app, targets)) = setup(b, &[gw1()]).await else {
            return;
        };
        for (i, (via, target)) in targets.iter().enumerate() {
            for (script, ends) in [
                (Script::rejection(start()), "rejected"),
                (Script::cancellation(start()), "cancelled"),
            ] {
                let no = format!("ORD-{}{i}", &script.name[..3].to_uppercase());
                let decl = declared_order(&app, &no).await;
                let before = locked(&app).await;
                let mut gw = Gateway::new(gw1(), 40 + i as u64);
                let answers = deliver_all(&script, &mut gw, &decl, target).await;
                for (_, a) in &answers {
                    assert_stored(a);
                }
                if let Answer::Http { body, .. } = &answers.last().unwrap().1 {
                    let v: Value = serde_json::from_str(body).unwrap();
                    assert_eq!(v["cancelled_orders"], json!([no]), "{v}");
                }
                assert_eq!(summary(&app, &no).await.0, ends, "{via}");
                let (_, o) = app.get(&format!("/api/v1/orders/{no}")).await;
                assert_eq!(o["state"], "cancelled", "{via}: {o}");
                assert_eq!(
                    locked(&app).await,
                    before - 2,
                    "{via} {}: stock released",
                    script.name
                );
            }
        }
        app.integrity_clean().await;
        app.finish().await;
    }
);

both_backends!(
    receipts_arriving_out_of_order_end_where_their_return_times_say,
    |b: Backend| async move {
        let Some((app, targets)) = setup(b, &[gw1()]).await else {
            return;
        };
        for (i, (via, target)) in targets.iter().enumerate() {
            for seed in [1_u64, 2] {
                let no = format!("ORD-O{i}{seed}");
                let (decl, mut gw) = declared_with_gw1(&app, &no, 50 + seed).await;
                let script = Script::out_of_order(start(), seed);
                assert_ne!(script.arrival, [0, 1, 2, 3]);
                let mut released_seen = false;
                for (step, d) in script.prepare(&mut gw, &decl) {
                    assert_stored(&target.deliver(&d).await.unwrap());
                    released_seen |= script.statuses()[step] == 800;
                    let (state, released, _) = summary(&app, &no).await;
                    // Once the 800 is in, late lower codes never undo it;
                    // before it, nothing releases.
                    assert_eq!(
                        released, released_seen,
                        "{via} {:?}: {state}",
                        script.arrival
                    );
                }
                assert_eq!(
                    summary(&app, &no).await,
                    ("released".into(), true, 4),
                    "{via}"
                );
                assert_eq!(
                    statuses(&app, &no).await,
                    [2, 120, 399, 800],
                    "{via}: returnTime order"
                );
            }
        }
        app.finish().await;
    }
);

both_backends!(
    a_duplicate_delivery_is_a_replay_and_changes_nothing,
    |b: Backend| async move {
        let Some((app, targets)) = setup(b, &[gw1()]).await else {
            return;
        };
        for (i, (via, target)) in targets.iter().enumerate() {
            let no = format!("ORD-R{i}");
            let (decl, mut gw) = declared_with_gw1(&app, &no, 60 + i as u64).await;
            let script = Script::duplicates(start());
            let answers = deliver_all(&script, &mut gw, &decl, target).await;
            assert_eq!(answers.len(), 8);
            for pair in answers.chunks(2) {
                assert_stored(&pair[0].1);
                match &pair[1].1 {
                    a @ Answer::Http { .. } => {
                        assert_eq!(a.http_status(), Some(409), "{a}");
                        assert_eq!(a.problem_code().as_deref(), Some("receipt_replayed"));
                    }
                    // The inbox files a replay under done/: it was stored
                    // before, there is nothing to retry.
                    a @ Answer::Inbox { .. } => assert!(a.stored(), "{a}"),
                }
            }
            assert_eq!(
                summary(&app, &no).await,
                ("released".into(), true, 4),
                "{via}"
            );
            assert_eq!(statuses(&app, &no).await, [2, 120, 399, 800], "{via}");
        }
        app.finish().await;
    }
);

both_backends!(
    forged_unknown_key_unsigned_and_malformed_deliveries_change_nothing,
    |b: Backend| async move {
        let Some((app, targets)) = setup(b, &[gw1()]).await else {
            return;
        };
        for (i, (via, target)) in targets.iter().enumerate() {
            let no = format!("ORD-B{i}");
            let (decl, mut gw) = declared_with_gw1(&app, &no, 70 + i as u64).await;
            // A format-error receipt is stored but is about no 清单.
            let err = gw.format_error(
                "CEB621Message",
                bondgate_customs::ReturnStatus::new(-1),
                start(),
            );
            assert_stored(&target.deliver(&err).await.unwrap());
            assert_eq!(
                summary(&app, &no).await,
                ("no_receipt".into(), false, 0),
                "{via}"
            );

            let script = Script::bad_deliveries(start());
            let answers = deliver_all(&script, &mut gw, &decl, target).await;
            // A genuine 2, then the 800 forged, with an unknown key, unsigned.
            assert_eq!(answers.len(), 5);
            assert_stored(&answers[0].1);
            for (status, a) in &answers[1..4] {
                assert_eq!(*status, 800);
                assert_refused(a, 401, "receipt_not_authenticated", "not authenticated");
            }
            assert_refused(&answers[4].1, 400, "receipt_malformed", "receipt refused");
            assert_eq!(
                summary(&app, &no).await,
                ("pending".into(), false, 1),
                "{via}"
            );

            // The same release, genuinely signed, is taken: the refusals were
            // about the delivery, not the receipt.
            let release = gw.inventory(
                &decl,
                bondgate_customs::ReturnStatus::new(800),
                script.steps[1].time,
            );
            assert_stored(&target.deliver(&release).await.unwrap());
            assert_eq!(
                summary(&app, &no).await,
                ("released".into(), true, 2),
                "{via}"
            );
        }
        app.finish().await;
    }
);

/// The same server, database and data directory, restarted with `keys`
/// (a key rotation is a configuration change).
async fn restart_with(app: TestApp, keys: &[GatewayKey]) -> TestApp {
    let TestApp {
        client,
        token,
        server,
        db,
        ..
    } = app;
    server.shutdown().await.expect("clean shutdown");
    let mut config = Config::for_data_dir(db.dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = db.url.clone();
    config.mqtt.broker = MqttBroker::Embedded("127.0.0.1:0".parse().unwrap());
    config.picking.auto_wave = None;
    config.customs.keys = keys.iter().map(server_key).collect();
    let server = Server::start(config).await.expect("server restarts");
    TestApp {
        base: format!("http://{}", server.addr),
        client,
        token,
        server,
        db,
    }
}

both_backends!(
    a_rotated_key_is_accepted_once_configured,
    |b: Backend| async move {
        // The gateway switches to a new HMAC key before the server knows it.
        let gw2 = GatewayKey::hmac("gw-2", &[42; 32]).unwrap();
        let Some((app, targets)) = setup(b, &[gw1()]).await else {
            return;
        };
        let gateway_token = app.login("gateway", "password-of-test").await;
        let mut pending = Vec::new();
        for (i, (via, target)) in targets.iter().enumerate() {
            let no = format!("ORD-K{i}");
            let (decl, mut gw) = declared_with_gw1(&app, &no, 80 + i as u64).await;
            let script = Script::normal(start());
            let old = script.prepare(&mut gw, &decl);
            gw.rotate(gw2.clone());
            let new = script.prepare(&mut gw, &decl);
            // 2 and 120 under the old key.
            for (_, d) in &old[..2] {
                assert_stored(&target.deliver(d).await.unwrap());
            }
            // 399 and 800 under the new one: refused while not configured.
            for (_, d) in &new[2..] {
                let a = target.deliver(d).await.unwrap();
                assert_refused(&a, 401, "receipt_not_authenticated", "unknown key");
            }
            assert_eq!(
                summary(&app, &no).await,
                ("pending".into(), false, 2),
                "{via}"
            );
            pending.push((no, new));
        }

        // The rotation window: old and new key both configured.
        let app = restart_with(app, &[gw1(), gw2.clone()]).await;
        let inbox_dir = match &targets[1].1 {
            Target::Inbox(inbox) => inbox.dir().to_owned(),
            Target::Http(_) => unreachable!(),
        };
        let targets = [
            (
                "http",
                Target::Http(HttpTarget::new(&app.base, &gateway_token).unwrap()),
            ),
            ("inbox", Target::Inbox(Inbox::new(inbox_dir))),
        ];
        for ((via, target), (no, new)) in targets.iter().zip(&pending) {
            // A key that was never configured is still refused.
            let stranger = Gateway::new(GatewayKey::ed25519("gw-3", &[99; 32]), 1);
            let forged = stranger.signed("gw-3".into(), new[3].1.body.clone());
            let a = target.deliver(&forged).await.unwrap();
            assert_refused(&a, 401, "receipt_not_authenticated", "unknown key");
            assert_eq!(
                summary(&app, no).await,
                ("pending".into(), false, 2),
                "{via}"
            );
            // The very deliveries refused before are taken now.
            for (_, d) in &new[2..] {
                assert_stored(&target.deliver(d).await.unwrap());
            }
            let v = customs(&app, no).await;
            assert_eq!(
                (v["state"].as_str(), v["released"].as_bool()),
                (Some("released"), Some(true)),
                "{via}: {v}"
            );
            let key_ids: Vec<&str> = v["receipts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["key_id"].as_str().unwrap())
                .collect();
            assert_eq!(key_ids, ["gw-1", "gw-1", "gw-2", "gw-2"], "{via}");
        }
        app.finish().await;
    }
);
