//! The gateway's own checks, against `bondgate-customs` (the code the
//! server verifies, parses and folds with): what it signs verifies, what it
//! spoils does not, what it writes parses back, scripts hold the documented
//! sequences, and the inbox never shows a part of a file.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bondgate_customs::sign::{AuthError, Keyring};
use bondgate_customs::{parse, Body, CustomsState, Receipt, ReturnStatus, ReturnTime};
use chrono::{TimeZone as _, Utc};

use super::script::{Spoil, StepKind, UNKNOWN_KEY_ID};
use super::*;

fn start() -> ReturnTime {
    ReturnTime::parse("20261123100000000").unwrap()
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap()
}

fn ed_key() -> GatewayKey {
    GatewayKey::ed25519("gw-1", &[7; 32])
}

fn hmac_key() -> GatewayKey {
    GatewayKey::hmac("gw-h", &[9; 32]).unwrap()
}

fn keyring(keys: &[&GatewayKey]) -> Keyring {
    let mut ring = Keyring::new();
    for k in keys {
        ring.insert(k.id(), k.verifier(), None).unwrap();
    }
    ring
}

fn verify(ring: &Keyring, d: &Delivery) -> Result<(), AuthError> {
    ring.verify(d.key_id.as_deref(), d.signature.as_deref(), &d.body, now())
}

fn decl() -> Declaration {
    Declaration::new("COP-ORD-1", start(), 42)
}

#[test]
fn ed25519_and_hmac_deliveries_verify_and_spoiled_ones_do_not() {
    for key in [ed_key(), hmac_key()] {
        let ring = keyring(&[&key]);
        let mut gw = Gateway::new(key.clone(), 1);
        let d = gw.inventory(&decl(), ReturnStatus::new(800), start());
        assert_eq!(d.key_id.as_deref(), Some(key.id()));
        assert_eq!(verify(&ring, &d), Ok(()), "{key:?}");

        assert!(matches!(
            verify(&ring, &gw.forged(&d)),
            Err(AuthError::BadSignature { .. })
        ));
        assert_eq!(
            verify(&ring, &gw.unknown_key(&d, UNKNOWN_KEY_ID)),
            Err(AuthError::UnknownKey {
                key_id: UNKNOWN_KEY_ID.into()
            })
        );
        assert_eq!(verify(&ring, &gw.unsigned(&d)), Err(AuthError::Unsigned));
        // A malformed body is still correctly signed: the parser refuses it.
        let bad = gw.malformed(&d);
        assert_eq!(verify(&ring, &bad), Ok(()));
        assert!(parse(&bad.body).is_err());
        // One flipped byte fails.
        let mut flipped = d.clone();
        flipped.body[10] ^= 1;
        assert!(verify(&ring, &flipped).is_err());
    }
}

#[test]
fn a_rotated_key_verifies_only_once_configured() {
    let old = ed_key();
    let new = GatewayKey::ed25519("gw-2", &[11; 32]);
    let mut gw = Gateway::new(old.clone(), 1);
    gw.rotate(new.clone());
    let d = gw.inventory(&decl(), ReturnStatus::new(120), start());
    assert_eq!(
        verify(&keyring(&[&old]), &d),
        Err(AuthError::UnknownKey {
            key_id: "gw-2".into()
        })
    );
    assert_eq!(verify(&keyring(&[&old, &new]), &d), Ok(()));
    // The old id with the new key's signature is a forgery.
    let mut renamed = d.clone();
    renamed.key_id = Some("gw-1".into());
    assert!(matches!(
        verify(&keyring(&[&old]), &renamed),
        Err(AuthError::BadSignature { .. })
    ));
}

#[test]
fn receipts_parse_back_with_their_numbers_bare_and_in_the_envelope() {
    for envelope in [false, true] {
        let mut gw = Gateway::new(ed_key(), 3);
        gw.envelope = envelope;
        let d = decl();
        let early = gw.inventory(&d, ReturnStatus::new(2), start());
        let msg = parse(&early.body).unwrap();
        assert_eq!(msg.envelope.is_some(), envelope);
        let Body::Ceb622(rs) = msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(rs[0].cop_no, "COP-ORD-1");
        assert_eq!(rs[0].pre_no.as_deref(), Some("B20261123000000042"));
        assert_eq!(rs[0].invt_no, None, "no invtNo before customs takes it in");
        assert_eq!(rs[0].return_time, start());

        let late = gw.inventory(&d, ReturnStatus::new(800), start());
        let Body::Ceb622(rs) = parse(&late.body).unwrap().body else {
            panic!()
        };
        assert_eq!(rs[0].invt_no.as_deref(), Some("29242026I000000042"));
        assert_eq!(rs[0].return_info.as_deref(), Some("[Code:800;Desc:放行]"));
        assert_ne!(early.body, late.body);

        let cancel = gw.cancellation(&d, ReturnStatus::new(399), start());
        let Body::Ceb624(cs) = parse(&cancel.body).unwrap().body else {
            panic!()
        };
        assert!(cs[0].is_success());
        let err = gw.format_error("CEB621Message", ReturnStatus::new(-1), start());
        let Body::Ceb900(es) = parse(&err.body).unwrap().body else {
            panic!()
        };
        assert_eq!(es[0].ori_message_type.as_deref(), Some("CEB621Message"));
    }
}

#[test]
fn guids_are_upper_case_uuid_shaped_and_distinct() {
    let mut gw = Gateway::new(ed_key(), 0);
    let ids: HashSet<String> = (0..1000).map(|_| gw.next_guid()).collect();
    assert_eq!(ids.len(), 1000);
    for id in ids.iter().take(20) {
        assert_eq!(id.len(), 36);
        assert!(id
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase()));
    }
}

/// The state the server would fold from the script's receipts, taken in
/// arrival order from the parsed bodies of what was delivered; refused
/// deliveries (bad signature or malformed) are left out as the server does.
fn folded(script: &Script, key: &GatewayKey) -> CustomsState {
    let ring = keyring(&[key]);
    let mut gw = Gateway::new(key.clone(), 5);
    let mut receipts = Vec::new();
    for (arrival, (_, d)) in script.prepare(&mut gw, &decl()).iter().enumerate() {
        if verify(&ring, d).is_err() {
            continue;
        }
        let Ok(msg) = parse(&d.body) else { continue };
        let arrival = arrival as u64;
        match msg.body {
            Body::Ceb622(rs) => receipts.extend(rs.iter().map(|r| Receipt::inventory(r, arrival))),
            Body::Ceb624(rs) => {
                receipts.extend(rs.iter().map(|r| Receipt::cancellation(r, arrival)))
            }
            Body::Ceb900(_) => {}
        }
    }
    assert!(receipts.iter().all(|r| r.cop_no == "COP-ORD-1"));
    CustomsState::from_receipts(&receipts)
}

#[test]
fn scripts_hold_the_documented_sequences_and_end_where_they_say() {
    let cases: [(Script, &[i64]); 8] = [
        (Script::normal(start()), &[2, 120, 399, 800]),
        (
            Script::inspection_then_release(start()),
            &[2, 120, 500, 800],
        ),
        (Script::rejection(start()), &[2, 100]),
        (Script::detention(start(), 502), &[2, 120, 399, 800, 502]),
        (Script::cancellation(start()), &[2, 120, 399]),
        (Script::out_of_order(start(), 9), &[2, 120, 399, 800]),
        (Script::duplicates(start()), &[2, 120, 399, 800]),
        (Script::format_error(start()), &[-1]),
    ];
    for (script, statuses) in cases {
        assert_eq!(script.statuses(), statuses, "{}", script.name);
        // returnTimes one minute apart from the start, in step order.
        for (i, step) in script.steps.iter().enumerate() {
            assert_eq!(step.time, script::minutes_after(start(), i as i64));
            assert_eq!(step.spoil, None);
        }
        for key in [ed_key(), hmac_key()] {
            assert_eq!(
                folded(&script, &key).name(),
                script.expect,
                "{}",
                script.name
            );
        }
    }
    assert_eq!(
        Script::cancellation(start()).steps[2].kind,
        StepKind::Cancellation(399)
    );
    let bad = Script::bad_deliveries(start());
    assert_eq!(bad.statuses(), [2, 800, 800, 800, 800]);
    let spoils: Vec<_> = bad.steps.iter().map(|s| s.spoil).collect();
    assert_eq!(
        spoils,
        [
            None,
            Some(Spoil::Forged),
            Some(Spoil::UnknownKey),
            Some(Spoil::Unsigned),
            Some(Spoil::Malformed)
        ]
    );
    assert_eq!(folded(&bad, &ed_key()).name(), "pending");
}

#[test]
fn out_of_order_is_a_true_shuffle_with_the_release_never_last() {
    let mut seen = HashSet::new();
    for seed in 0..200 {
        let s = Script::out_of_order(start(), seed);
        let mut sorted = s.arrival.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3], "a permutation");
        assert!(s.arrival.windows(2).any(|w| w[0] > w[1]), "{:?}", s.arrival);
        assert_ne!(s.arrival.last(), Some(&3), "{:?}", s.arrival);
        seen.insert(s.arrival);
    }
    assert!(seen.len() > 5, "seeds give different orders: {seen:?}");
}

#[test]
fn duplicates_send_the_same_signed_bytes_twice() {
    let s = Script::duplicates(start());
    assert_eq!(s.arrival, [0, 0, 1, 1, 2, 2, 3, 3]);
    let mut gw = Gateway::new(ed_key(), 1);
    let prepared = s.prepare(&mut gw, &decl());
    for pair in prepared.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    assert_ne!(prepared[0].1.body, prepared[2].1.body);
}

/// A reader looking at the inbox as often as it can while large messages
/// are dropped never sees a `.xml` shorter than what was written, nor a
/// `.sig` before its `.xml`, nor a `.sig` that is not the whole line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_never_shows_a_half_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut inbox = Inbox::new(dir.path());
    inbox.wait = None;
    let gw = Gateway::new(ed_key(), 1);
    // Big enough that a plain write would be seen in pieces.
    let body: Vec<u8> = (0..2_000_000_u32).map(|i| b'a' + (i % 26) as u8).collect();
    let delivery = gw.signed("big".into(), body.clone());
    let sig_line = format!("gw-1 {}\n", delivery.signature.clone().unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, path) = (stop.clone(), dir.path().to_owned());
        let (body, sig_line) = (body.clone(), sig_line.clone());
        std::thread::spawn(move || {
            let mut looks = 0_u64;
            let mut seen_xml = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                looks += 1;
                for e in std::fs::read_dir(&path).unwrap().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".xml") {
                        let Ok(bytes) = std::fs::read(e.path()) else {
                            continue;
                        };
                        assert_eq!(bytes.len(), body.len(), "partial {name}");
                        seen_xml.insert(name);
                    } else if let Some(xml) = name.strip_suffix(".sig") {
                        assert!(path.join(xml).exists(), "{name} before its .xml");
                        let text = std::fs::read_to_string(e.path()).unwrap();
                        assert_eq!(text, sig_line, "partial {name}");
                    } else {
                        assert!(name.starts_with('.'), "unexpected {name}");
                    }
                }
            }
            (looks, seen_xml.len())
        })
    };
    let mut names = Vec::new();
    for _ in 0..8 {
        let answer = inbox.deliver(&delivery).await.unwrap();
        let transport::Answer::Inbox { file, outcome } = answer else {
            panic!()
        };
        assert_eq!(outcome, InboxOutcome::NotWaited);
        names.push(file);
    }
    stop.store(true, Ordering::Relaxed);
    let (looks, seen) = reader.join().unwrap();
    assert!(looks > 1 && seen > 0, "the reader looked {looks} times");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, names, "names sort in delivery order");
    for name in &names {
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), body);
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// What the server does with a file is read from where it moved it.
#[tokio::test]
async fn inbox_answers_are_read_from_done_and_failed() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["done", "failed"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let mut inbox = Inbox::new(dir.path());
    inbox.wait = None;
    let gw = Gateway::new(ed_key(), 1);
    let d = gw.signed("x".into(), b"<x/>".to_vec());
    let a = inbox.drop_files(&d).await.unwrap();
    let b = inbox.drop_files(&gw.unsigned(&d)).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join(format!("{b}.sig"))).unwrap(),
        "",
        "an unsigned delivery gets an empty .sig"
    );
    // Play the server.
    let mv = |name: &str, to: &str| {
        for f in [name.to_owned(), format!("{name}.sig")] {
            std::fs::rename(dir.path().join(&f), dir.path().join(to).join(&f)).unwrap();
        }
    };
    mv(&a, "done");
    std::fs::write(
        dir.path().join("failed").join(format!("{b}.reason")),
        "receipt not authenticated: unsigned\n",
    )
    .unwrap();
    mv(&b, "failed");
    let wait = std::time::Duration::from_secs(1);
    assert_eq!(inbox.wait_for(&a, wait).await.unwrap(), InboxOutcome::Done);
    assert_eq!(
        inbox.wait_for(&b, wait).await.unwrap(),
        InboxOutcome::Failed {
            reason: "receipt not authenticated: unsigned".into()
        }
    );
    let c = inbox.drop_files(&d).await.unwrap();
    assert!(matches!(
        inbox
            .wait_for(&c, std::time::Duration::from_millis(200))
            .await,
        Err(GatewayError::InboxTimeout { .. })
    ));
}
