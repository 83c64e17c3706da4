//! Bearer tokens: conversation tokens (a customer continuing or reading their own
//! conversation) and staff tokens (agents, compliance, admins). Only a SHA-256 of a token
//! is ever stored; a presented token is hashed and compared in constant time.

use axum::http::{header, HeaderMap};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of staff tokens, so a leaked one is recognisable in a scan.
const STAFF_PREFIX: &str = "tlr_";

/// The stored form of a token: hex SHA-256.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A short, non-reversible name for a presented token, for the record of a refused one:
/// the first 8 hex digits of its SHA-256 (the stored form's first 8), enough to tell
/// attempts apart or match one to a revoked token, never enough to recover the token.
pub fn fingerprint(token: &str) -> String {
    let mut digest = hash(token);
    digest.truncate(8);
    digest
}

/// Whether `token` hashes to `stored`, in time that does not depend on where they differ.
pub fn matches(stored: &str, token: &str) -> bool {
    bool::from(stored.as_bytes().ct_eq(hash(token).as_bytes()))
}

/// 32 random bytes, URL-safe base64: the token handed to a customer with a new conversation.
pub fn new_conversation_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new staff token; shown once, then only its hash is kept.
pub fn new_staff_token() -> String {
    format!("{STAFF_PREFIX}{}", new_conversation_token())
}

/// The token of `Authorization: Bearer <token>`, trimmed; `None` when absent or empty.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_by_their_hash() {
        let token = new_conversation_token();
        assert_eq!(token.len(), 43);
        let stored = hash(&token);
        assert!(matches(&stored, &token));
        assert!(!matches(&stored, "another"));
        assert!(new_staff_token().starts_with("tlr_"));
        assert_eq!(fingerprint(&token), stored[..8]);
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
