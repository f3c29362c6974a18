//! The customs gateway's signature over a receipt's exact bytes.
//!
//! Receipts reach the single-window client unsigned (CUSTOMS.md §1), so
//! bondgate trusts a receipt because the gateway adapter on that host signs
//! the bytes it forwards, naming the key it used. The signature covers the
//! body byte for byte: nothing is canonicalised, so one flipped byte fails.
//!
//! Keys rotate: a [`Keyring`] holds several at once, each with an optional
//! last moment of validity, so a new key can be added before the gateway
//! switches and the old one retired after. Signatures are Base64 (standard
//! alphabet, padded); Ed25519 signatures are 64 bytes, HMAC-SHA256 tags 32.
//!
//! Replays are not this module's to catch: a replayed receipt carries a
//! valid signature. The state fold ([`crate::state`]) counts a receipt
//! (same `guid`, or same status and time) once, and the store keeps every
//! receipt, so a replay changes nothing.

use std::fmt;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest HMAC secret accepted: 32 bytes, the SHA-256 output size (RFC
/// 2104 advises no less than the hash length).
pub const HMAC_SECRET_BYTES_MIN: usize = 32;

/// Longest key id accepted. Ids are short labels (`gw-2025-06`); the bound
/// keeps a hostile header from making error texts or lookups expensive.
pub const KEY_ID_CHARS_MAX: usize = 64;

/// Longest signature text accepted before decoding (a 64-byte signature is
/// 88 Base64 characters).
const SIGNATURE_B64_CHARS_MAX: usize = 128;

/// A gateway key bondgate verifies with.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// An Ed25519 public key.
    Ed25519(VerifyingKey),
    /// A shared HMAC-SHA256 secret (at least [`HMAC_SECRET_BYTES_MIN`] bytes).
    Hmac(HmacSecret),
}

/// A shared secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret(Vec<u8>);

impl HmacSecret {
    /// A secret of at least [`HMAC_SECRET_BYTES_MIN`] bytes.
    pub fn new(bytes: &[u8]) -> Result<HmacSecret, KeyError> {
        if bytes.len() < HMAC_SECRET_BYTES_MIN {
            return Err(KeyError::HmacSecretTooShort {
                bytes: bytes.len(),
                min: HMAC_SECRET_BYTES_MIN,
            });
        }
        Ok(HmacSecret(bytes.to_vec()))
    }
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacSecret(<{} bytes>)", self.0.len())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Ed25519(k) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(k.as_bytes());
                write!(f, "Ed25519({b64})")
            }
            Key::Hmac(s) => write!(f, "Hmac({s:?})"),
        }
    }
}

impl Key {
    /// An Ed25519 key from its 32 public bytes.
    pub fn ed25519(public: &[u8; 32]) -> Result<Key, KeyError> {
        VerifyingKey::from_bytes(public)
            .map(Key::Ed25519)
            .map_err(|_| KeyError::BadEd25519Key)
    }

    /// An HMAC-SHA256 key.
    pub fn hmac(secret: &[u8]) -> Result<Key, KeyError> {
        HmacSecret::new(secret).map(Key::Hmac)
    }
}

/// Why a key could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The secret is too short to be safe.
    #[error("HMAC secret of {bytes} bytes is too short: at least {min} bytes")]
    HmacSecretTooShort {
        /// Its length.
        bytes: usize,
        /// The minimum.
        min: usize,
    },
    /// 32 bytes that are not a point on the curve.
    #[error("not a valid Ed25519 public key")]
    BadEd25519Key,
    /// Empty, too long, or with characters other than letters, digits, `-`, `_`, `.`.
    #[error("key id {0:?} is not valid: 1 to 64 of letters, digits, '-', '_' or '.'")]
    BadKeyId(String),
    /// The id is already on the keyring.
    #[error("key id {0:?} is already on the keyring")]
    DuplicateKeyId(String),
}

/// Why a receipt's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No key id or no signature came with the receipt.
    #[error("receipt is not signed: the gateway's key id and signature are required")]
    Unsigned,
    /// The key id is not on the keyring.
    #[error("receipt is signed with unknown key {key_id:?}")]
    UnknownKey {
        /// The id sent (cut to [`KEY_ID_CHARS_MAX`] characters).
        key_id: String,
    },
    /// The signature does not verify (or is not Base64 of the right length).
    #[error("receipt signature does not verify with key {key_id:?}")]
    BadSignature {
        /// The key tried.
        key_id: String,
    },
    /// The key was retired before `now`.
    #[error("receipt is signed with key {key_id:?}, which expired at {not_after}")]
    KeyExpired {
        /// The key.
        key_id: String,
        /// When it stopped being valid.
        not_after: DateTime<Utc>,
    },
}

/// One key on the ring.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    key: Key,
    not_after: Option<DateTime<Utc>>,
}

/// The gateway keys bondgate accepts, by id.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    entries: Vec<Entry>,
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= KEY_ID_CHARS_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Keyring {
    /// An empty keyring: every receipt is refused.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds a key, valid until `not_after` (inclusive) or for ever.
    pub fn insert(
        &mut self,
        id: &str,
        key: Key,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<(), KeyError> {
        if !valid_key_id(id) {
            return Err(KeyError::BadKeyId(
                id.chars().take(KEY_ID_CHARS_MAX).collect(),
            ));
        }
        if self.entries.iter().any(|e| e.id == id) {
            return Err(KeyError::DuplicateKeyId(id.to_owned()));
        }
        self.entries.push(Entry {
            id: id.to_owned(),
            key,
            not_after,
        });
        Ok(())
    }

    /// Removes a key; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        self.entries.len() != before
    }

    /// The ids on the ring, in the order added.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.id.as_str())
    }

    /// See [`verify`].
    pub fn verify(
        &self,
        key_id: Option<&str>,
        signature_b64: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        verify(self, key_id, signature_b64, body, now)
    }
}

/// Checks that `signature_b64` is the signature of exactly `body` by the key
/// `key_id` on `keyring`, valid at `now`.
///
/// Missing or blank id or signature → [`AuthError::Unsigned`]; an id not
/// on the ring → [`AuthError::UnknownKey`]; a key past its `not_after` →
/// [`AuthError::KeyExpired`] (checked before the signature, so an expired
/// key is reported as such); anything that does not verify, including a
/// signature that is not Base64 of the right length →
/// [`AuthError::BadSignature`]. Comparisons are constant-time.
pub fn verify(
    keyring: &Keyring,
    key_id: Option<&str>,
    signature_b64: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let key_id = key_id.map(str::trim).filter(|s| !s.is_empty());
    let sig = signature_b64.map(str::trim).filter(|s| !s.is_empty());
    let (Some(key_id), Some(sig)) = (key_id, sig) else {
        return Err(AuthError::Unsigned);
    };
    let entry = keyring
        .entries
        .iter()
        .find(|e| e.id == key_id)
        .ok_or_else(|| AuthError::UnknownKey {
            key_id: key_id.chars().take(KEY_ID_CHARS_MAX).collect(),
        })?;
    if let Some(not_after) = entry.not_after {
        if now > not_after {
            return Err(AuthError::KeyExpired {
                key_id: entry.id.clone(),
                not_after,
            });
        }
    }
    let bad = || AuthError::BadSignature {
        key_id: entry.id.clone(),
    };
    if sig.len() > SIGNATURE_B64_CHARS_MAX {
        return Err(bad());
    }
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .map_err(|_| bad())?;
    match &entry.key {
        Key::Ed25519(vk) => {
            let sig = Signature::from_slice(&sig).map_err(|_| bad())?;
            vk.verify_strict(body, &sig).map_err(|_| bad())
        }
        Key::Hmac(secret) => {
            if sig.len() != 32 {
                return Err(bad());
            }
            let mut mac = HmacSha256::new_from_slice(&secret.0).map_err(|_| bad())?;
            mac.update(body);
            mac.verify_slice(&sig).map_err(|_| bad())
        }
    }
}

/// The gateway side: an Ed25519 signature of `body`, Base64.
pub fn sign_ed25519(signing_key: &SigningKey, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(signing_key.sign(body).to_bytes())
}

/// The gateway side: an HMAC-SHA256 tag of `body`, Base64.
pub fn sign_hmac(secret: &HmacSecret, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(&secret.0).expect("HMAC accepts any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// An Ed25519 signing key from 32 secret bytes the caller drew (this crate
/// has no random source). Its public half is `signing_key.verifying_key()`.
pub fn ed25519_signing_key(secret: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(secret)
}
