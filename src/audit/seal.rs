//! Seals: an HMAC-SHA256 of an event's (seq, hash) under a key the database does not
//! hold. The hash chain alone proves the log consistent with itself; someone who can
//! write SQL can still append a well-formed event or recompute the chain from an altered
//! one. Neither can produce a seal without the key, so `verify` with the key catches both.
//!
//! Every commit seals its last event (in the database, column `seal`), and the
//! checkpoint sink writes sealed heads to a file outside it.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use std::path::Path;

/// Fewest key bytes accepted (the HMAC-SHA256 block's security level).
const MIN_KEY_BYTES: usize = 32;

/// The sealing key, read from a file (hex, as `openssl rand -hex 32` writes it).
pub struct SealKey(SecretBox<Vec<u8>>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealKeyError {
    #[error("cannot read the seal key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the seal key file {0} must hold at least {MIN_KEY_BYTES} bytes as hex (e.g. `openssl rand -hex 32`)")]
    Invalid(String),
}

impl SealKey {
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        (bytes.len() >= MIN_KEY_BYTES).then(|| Self(SecretBox::new(Box::new(bytes))))
    }

    pub fn load(path: &Path) -> Result<Self, SealKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| SealKeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_hex(&text).ok_or_else(|| SealKeyError::Invalid(path.display().to_string()))
    }

    fn mac(&self, seq: i64, hash: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("HMAC takes any key length");
        mac.update(format!("teller-seal-v1\n{seq}\n{hash}").as_bytes());
        mac
    }

    /// The seal of the event (seq, hash), as hex.
    pub fn seal(&self, seq: i64, hash: &str) -> String {
        hex::encode(self.mac(seq, hash).finalize().into_bytes())
    }

    /// Whether `seal` is this key's seal of (seq, hash), compared in constant time.
    pub fn verifies(&self, seq: i64, hash: &str, seal: &str) -> bool {
        hex::decode(seal).is_ok_and(|bytes| self.mac(seq, hash).verify_slice(&bytes).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: &str) -> SealKey {
        SealKey::from_hex(&byte.repeat(32)).unwrap()
    }

    #[test]
    fn a_seal_verifies_only_for_its_event_and_key() {
        let (k, other) = (key("ab"), key("cd"));
        let seal = k.seal(7, "ff00");
        assert!(k.verifies(7, "ff00", &seal));
        assert!(!k.verifies(8, "ff00", &seal));
        assert!(!k.verifies(7, "ff01", &seal));
        assert!(!other.verifies(7, "ff00", &seal));
        assert!(!k.verifies(7, "ff00", "not hex"));
    }

    #[test]
    fn short_or_malformed_keys_are_refused() {
        assert!(SealKey::from_hex(&"ab".repeat(31)).is_none());
        assert!(SealKey::from_hex("zz").is_none());
        assert!(SealKey::from_hex(&format!("{}\n", "ab".repeat(32))).is_some());
    }
}
