//! Signed-in customers: the bank's own server mints a short-lived identity token for a
//! customer it has authenticated, signed with a secret it shares with Teller
//! (`TELLER_IDENTITY_SECRET`); the widget passes it on as `X-Teller-Identity`, and Teller
//! records the verified customer reference with the conversation. The browser can never
//! assert a customer id by itself: without the secret there is no valid token.
//!
//! Format: `base64url(json{"sub","exp"}) "." base64url(HMAC-SHA256(secret, first part))`,
//! both without padding; `exp` in Unix seconds. Checked: the MAC (constant time), the
//! expiry, and the reference's shape.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::Path;

/// The header the widget sends the token in.
pub const HEADER: &str = "x-teller-identity";

/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Longest customer reference accepted, in characters.
pub const MAX_REFERENCE_CHARS: usize = 128;

/// Longest lifetime of a token Teller accepts, so a leaked one is soon worthless.
pub const MAX_LIFETIME_SECS: i64 = 24 * 3600;

/// A customer reference the bank vouched for: 1–128 of `A-Z a-z 0-9 . _ : @ -`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerRef(String);

impl CustomerRef {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.chars().count() <= MAX_REFERENCE_CHARS
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-'));
        ok.then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a token was refused (the client is only told that it was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the identity token is malformed")]
    Malformed,
    #[error("the identity token's signature does not match")]
    BadSignature,
    #[error("the identity token has expired")]
    Expired,
    #[error("the identity token is valid for longer than Teller accepts")]
    TooLong,
    #[error("identity tokens are not accepted: TELLER_IDENTITY_SECRET is not set")]
    NotConfigured,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

/// The shared secret, and the checks made with it.
#[derive(Clone)]
pub struct IdentityVerifier {
    secret: std::sync::Arc<SecretBox<Vec<u8>>>,
}

impl std::fmt::Debug for IdentityVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityVerifier(..)")
    }
}

impl IdentityVerifier {
    /// A verifier for `secret` (at least [`MIN_SECRET_BYTES`] bytes).
    pub fn new(secret: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "TELLER_IDENTITY_SECRET must be at least {MIN_SECRET_BYTES} bytes"
        );
        Ok(Self {
            secret: std::sync::Arc::new(SecretBox::new(Box::new(secret.to_vec()))),
        })
    }

    /// `TELLER_IDENTITY_SECRET`: the path of a file holding the secret (kept out of the
    /// environment, like `TELLER_AUDIT_SEAL_KEY_FILE`), or else the secret itself;
    /// surrounding whitespace is ignored.
    pub fn from_setting(value: &str) -> anyhow::Result<Self> {
        let path = Path::new(value.trim());
        let secret = if path.is_file() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read TELLER_IDENTITY_SECRET file {}: {e}", path.display()))?;
            text.trim().as_bytes().to_vec()
        } else {
            value.trim().as_bytes().to_vec()
        };
        Self::new(&secret)
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.expose_secret()).expect("HMAC takes any key length");
        mac.update(data);
        mac
    }

    /// A token for `customer`, valid until `exp` (Unix seconds): what the bank's server
    /// does; here for tests and examples.
    pub fn mint(&self, customer: &CustomerRef, exp: i64) -> String {
        let claims = serde_json::to_vec(&Claims {
            sub: customer.0.clone(),
            exp,
        })
        .expect("claims serialise");
        let body = URL_SAFE_NO_PAD.encode(claims);
        let mac = self.mac(body.as_bytes()).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// The customer a token vouches for, at time `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<CustomerRef, IdentityError> {
        let (body, mac) = token.trim().split_once('.').ok_or(IdentityError::Malformed)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| IdentityError::Malformed)?;
        // `verify_slice` compares in constant time.
        self.mac(body.as_bytes())
            .verify_slice(&mac)
            .map_err(|_| IdentityError::BadSignature)?;
        let claims = URL_SAFE_NO_PAD.decode(body).map_err(|_| IdentityError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&claims).map_err(|_| IdentityError::Malformed)?;
        if claims.exp <= now {
            return Err(IdentityError::Expired);
        }
        if claims.exp - now > MAX_LIFETIME_SECS {
            return Err(IdentityError::TooLong);
        }
        CustomerRef::parse(&claims.sub).ok_or(IdentityError::Malformed)
    }

    /// The customer a token vouches for, now.
    pub fn verify(&self, token: &str) -> Result<CustomerRef, IdentityError> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> IdentityVerifier {
        IdentityVerifier::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let v = verifier();
        let customer = CustomerRef::parse("cust-42").unwrap();
        let token = v.mint(&customer, 1_000);
        assert_eq!(v.verify_at(&token, 999), Ok(customer.clone()));
        assert_eq!(v.verify_at(&token, 1_000), Err(IdentityError::Expired));
        let long = v.mint(&customer, 1_000 + MAX_LIFETIME_SECS + 1);
        assert_eq!(v.verify_at(&long, 1_000), Err(IdentityError::TooLong));
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let v = verifier();
        let other = IdentityVerifier::new(b"another secret of at least 32 bytes!").unwrap();
        let customer = CustomerRef::parse("cust-42").unwrap();
        let forged = other.mint(&customer, 1_000);
        assert_eq!(v.verify_at(&forged, 0), Err(IdentityError::BadSignature));
        // The claims swapped for another customer's under the original MAC.
        let token = v.mint(&customer, 1_000);
        let (_, mac) = token.split_once('.').unwrap();
        let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"cust-43","exp":1000}"#);
        assert_eq!(
            v.verify_at(&format!("{body}.{mac}"), 0),
            Err(IdentityError::BadSignature)
        );
        for bad in ["", "abc", "a.b", ".", "!!.??"] {
            assert!(v.verify_at(bad, 0).is_err(), "{bad:?}");
        }
        assert!(IdentityVerifier::new(b"short").is_err());
    }

    #[test]
    fn references_have_a_safe_shape() {
        assert!(CustomerRef::parse("a.b_c:d@e-1").is_some());
        for bad in ["", "with space", "<script>", &"x".repeat(129)] {
            assert!(CustomerRef::parse(bad).is_none(), "{bad:?}");
        }
    }
}
