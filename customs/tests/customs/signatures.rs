//! The gateway's signature: both key kinds, rotation, expiry, tampering.

use bondgate_customs::sign::{
    ed25519_signing_key, sign_ed25519, sign_hmac, verify, AuthError, HmacSecret, Key, KeyError,
    Keyring,
};
use chrono::{DateTime, TimeZone, Utc};

use crate::samples::CEB622_PREFIXED;

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-gateway";

fn ring() -> (Keyring, ed25519_dalek::SigningKey) {
    let sk = ed25519_signing_key(&[7u8; 32]);
    let mut ring = Keyring::new();
    ring.insert("ed-1", Key::Ed25519(sk.verifying_key()), None)
        .unwrap();
    ring.insert("hmac-1", Key::hmac(SECRET).unwrap(), Some(at(2025, 12, 31)))
        .unwrap();
    (ring, sk)
}

#[test]
fn both_kinds_verify_and_one_flipped_byte_fails() {
    let (ring, sk) = ring();
    let now = at(2025, 6, 1);
    let body = CEB622_PREFIXED.as_bytes();
    let ed = sign_ed25519(&sk, body);
    let mac = sign_hmac(&HmacSecret::new(SECRET).unwrap(), body);
    assert_eq!(verify(&ring, Some("ed-1"), Some(&ed), body, now), Ok(()));
    assert_eq!(ring.verify(Some("hmac-1"), Some(&mac), body, now), Ok(()));
    for i in [0, body.len() / 2, body.len() - 1] {
        let mut t = body.to_vec();
        t[i] ^= 0x01;
        assert_eq!(
            verify(&ring, Some("ed-1"), Some(&ed), &t, now),
            Err(AuthError::BadSignature {
                key_id: "ed-1".into()
            })
        );
        assert_eq!(
            verify(&ring, Some("hmac-1"), Some(&mac), &t, now),
            Err(AuthError::BadSignature {
                key_id: "hmac-1".into()
            })
        );
    }
    // A signature under the other key's id, a truncated one, garbage.
    assert!(matches!(
        verify(&ring, Some("hmac-1"), Some(&ed), body, now),
        Err(AuthError::BadSignature { .. })
    ));
    assert!(matches!(
        verify(&ring, Some("hmac-1"), Some(&mac[..20]), body, now),
        Err(AuthError::BadSignature { .. })
    ));
    assert!(matches!(
        verify(&ring, Some("ed-1"), Some("not base64!"), body, now),
        Err(AuthError::BadSignature { .. })
    ));
    assert!(matches!(
        verify(&ring, Some("ed-1"), Some(&"A".repeat(10_000)), body, now),
        Err(AuthError::BadSignature { .. })
    ));
}

#[test]
fn unsigned_and_unknown_key() {
    let (ring, sk) = ring();
    let now = at(2025, 6, 1);
    let body = b"<x/>";
    let ed = sign_ed25519(&sk, body);
    assert_eq!(
        verify(&ring, None, Some(&ed), body, now),
        Err(AuthError::Unsigned)
    );
    assert_eq!(
        verify(&ring, Some("ed-1"), None, body, now),
        Err(AuthError::Unsigned)
    );
    assert_eq!(
        verify(&ring, Some(" "), Some(""), body, now),
        Err(AuthError::Unsigned)
    );
    assert_eq!(
        verify(&ring, Some("ed-2"), Some(&ed), body, now),
        Err(AuthError::UnknownKey {
            key_id: "ed-2".into()
        })
    );
    assert_eq!(
        verify(&Keyring::new(), Some("ed-1"), Some(&ed), body, now),
        Err(AuthError::UnknownKey {
            key_id: "ed-1".into()
        })
    );
}

#[test]
fn rotation_and_expiry() {
    let (mut ring, old) = ring();
    let new = ed25519_signing_key(&[9u8; 32]);
    let body = b"receipt";
    // Both keys accepted while the gateway switches over.
    ring.insert("ed-2", Key::Ed25519(new.verifying_key()), None)
        .unwrap();
    let now = at(2025, 6, 1);
    assert_eq!(
        verify(
            &ring,
            Some("ed-1"),
            Some(&sign_ed25519(&old, body)),
            body,
            now
        ),
        Ok(())
    );
    assert_eq!(
        verify(
            &ring,
            Some("ed-2"),
            Some(&sign_ed25519(&new, body)),
            body,
            now
        ),
        Ok(())
    );
    // The old key retired.
    assert!(ring.remove("ed-1"));
    assert!(!ring.remove("ed-1"));
    assert_eq!(ring.ids().collect::<Vec<_>>(), ["hmac-1", "ed-2"]);
    assert!(matches!(
        verify(
            &ring,
            Some("ed-1"),
            Some(&sign_ed25519(&old, body)),
            body,
            now
        ),
        Err(AuthError::UnknownKey { .. })
    ));
    // Expiry: valid through not_after, refused after.
    let mac = sign_hmac(&HmacSecret::new(SECRET).unwrap(), body);
    assert_eq!(
        verify(&ring, Some("hmac-1"), Some(&mac), body, at(2025, 12, 31)),
        Ok(())
    );
    let e = verify(&ring, Some("hmac-1"), Some(&mac), body, at(2026, 1, 1)).unwrap_err();
    assert_eq!(
        e,
        AuthError::KeyExpired {
            key_id: "hmac-1".into(),
            not_after: at(2025, 12, 31)
        }
    );
    assert!(e.to_string().contains("expired"));
}

#[test]
fn key_configuration_is_checked() {
    assert_eq!(
        Key::hmac(b"short"),
        Err(KeyError::HmacSecretTooShort { bytes: 5, min: 32 })
    );
    let mut ring = Keyring::new();
    let k = Key::hmac(SECRET).unwrap();
    assert!(matches!(
        ring.insert("", k.clone(), None),
        Err(KeyError::BadKeyId(_))
    ));
    assert!(matches!(
        ring.insert("a/b", k.clone(), None),
        Err(KeyError::BadKeyId(_))
    ));
    ring.insert("k", k.clone(), None).unwrap();
    assert_eq!(
        ring.insert("k", k.clone(), None),
        Err(KeyError::DuplicateKeyId("k".into()))
    );
    // Secrets never show in Debug.
    let dbg = format!("{ring:?} {k:?}");
    assert!(!dbg.contains("0123456789abcdef"), "{dbg}");
    // Public keys can be loaded from bytes.
    let sk = ed25519_signing_key(&[1u8; 32]);
    assert!(Key::ed25519(sk.verifying_key().as_bytes()).is_ok());
}
