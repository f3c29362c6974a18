//! Personal information at rest (PIPL): buyer ID numbers and phones are
//! sealed with AES-256-GCM before they reach the database, and looked up by a
//! keyed HMAC fingerprint, never by the plain value. ID numbers have little
//! entropy (region, birth date, a serial), so an unkeyed hash would be
//! reversible by enumeration; the HMAC key is what makes the index safe.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The key file created in the data directory on first start when no key is
/// given in `BONDGATE_PII_KEY`. Several servers sharing one database must be
/// given the same key.
pub const KEY_FILE: &str = "pii.key";
const SEAL_PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 12;

#[derive(Clone)]
pub struct PiiCipher {
    aead: Aes256Gcm,
    index_key: [u8; 32],
}

impl std::fmt::Debug for PiiCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiiCipher(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value has an unknown format")]
    Format,
    #[error("sealed value does not decrypt with this key (wrong key, or tampered)")]
    Decrypt,
}

impl PiiCipher {
    pub fn from_key(key: &[u8; 32]) -> PiiCipher {
        let aead = Aes256Gcm::new(key.into());
        // A separate key for the index, so the encryption key is never used
        // for two purposes.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"bondgate pii index v1");
        let index_key: [u8; 32] = mac.finalize().into_bytes().into();
        PiiCipher { aead, index_key }
    }

    /// The key from `BONDGATE_PII_KEY` (base64 of 32 bytes) if given, else
    /// from the key file in the data directory, created on first use.
    pub fn load_or_create(data_dir: &Path, from_env: Option<&str>) -> anyhow::Result<PiiCipher> {
        if let Some(b64) = from_env {
            return Ok(Self::from_key(
                &decode_key(b64).context("BONDGATE_PII_KEY")?,
            ));
        }
        let path = data_dir.join(KEY_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return Ok(Self::from_key(
                &decode_key(text.trim()).with_context(|| format!("key file {}", path.display()))?,
            ));
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        crate::app::write_secret(&path, &B64.encode(key))?;
        tracing::warn!(file = %path.display(), "created a new key for personal data; back it up: without it sealed ID numbers and phones cannot be read");
        Ok(Self::from_key(&key))
    }

    pub fn seal(&self, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{SEAL_PREFIX}{}", B64.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let raw = B64
            .decode(sealed.strip_prefix(SEAL_PREFIX).ok_or(SealError::Format)?)
            .map_err(|_| SealError::Format)?;
        if raw.len() <= NONCE_BYTES {
            return Err(SealError::Format);
        }
        let (nonce, ct) = raw.split_at(NONCE_BYTES);
        let plain = self
            .aead
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SealError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| SealError::Format)
    }

    /// Keyed fingerprint (hex HMAC-SHA256): equal inputs give equal outputs,
    /// and nobody without the key can test a guess against it.
    pub fn fingerprint(&self, bytes: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key)
            .expect("HMAC takes any key length");
        mac.update(bytes);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn decode_key(b64: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = B64.decode(b64.trim()).context("not base64")?;
    bytes
        .try_into()
        .map_err(|v: Vec<u8>| anyhow::anyhow!("a key is 32 bytes, this one has {}", v.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_opens_only_with_its_key_and_never_repeats() {
        let c = PiiCipher::from_key(&[7u8; 32]);
        let a = c.seal("11010519491231002X");
        let b = c.seal("11010519491231002X");
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("1101051949"));
        assert_eq!(c.open(&a).unwrap(), "11010519491231002X");
        assert!(matches!(
            PiiCipher::from_key(&[8u8; 32]).open(&a),
            Err(SealError::Decrypt)
        ));
        let mut tampered = a.clone();
        tampered.pop();
        tampered.push(if a.ends_with('A') { 'B' } else { 'A' });
        assert!(c.open(&tampered).is_err());
        assert!(matches!(c.open("plain"), Err(SealError::Format)));
    }

    #[test]
    fn fingerprints_are_stable_and_keyed() {
        let c = PiiCipher::from_key(&[7u8; 32]);
        assert_eq!(c.fingerprint(b"x"), c.fingerprint(b"x"));
        assert_ne!(
            c.fingerprint(b"x"),
            PiiCipher::from_key(&[9u8; 32]).fingerprint(b"x")
        );
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = PiiCipher::load_or_create(dir.path(), None).unwrap();
        let sealed = a.seal("13812345678");
        let b = PiiCipher::load_or_create(dir.path(), None).unwrap();
        assert_eq!(b.open(&sealed).unwrap(), "13812345678");
        assert!(PiiCipher::load_or_create(dir.path(), Some("c2hvcnQ=")).is_err());
    }
}
