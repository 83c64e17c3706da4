//! Checks every request passes before a handler sees it, and what every `/v1` reply
//! carries.
//!
//! - The URI and the headers are bounded below hyper's own limit of the request head, so
//!   an oversized request gets the API's JSON 414 / 431 instead of hyper's bare status.
//! - Text that reaches a handler — the path, the query, and the headers the server reads —
//!   is UTF-8 without NUL or other control characters; otherwise 400 `invalid_text`. A
//!   NUL byte in an audit filter used to reach PostgreSQL, which refused it, and the
//!   client was told 503 `audit_unavailable`. JSON strings are checked by
//!   [`super::extract::AppJson`].
//! - Every `/v1` reply (chat, transcripts, the compliance API: conversation content and
//!   tokens) carries `Cache-Control: no-store`.

use super::error::ApiError;
use axum::extract::Request;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode;

/// Longest path and query accepted.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest total of header names and values accepted (hyper buffers up to 64 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Headers whose values the server reads as text.
const TEXT_HEADERS: &[&str] = &["authorization", "x-conversation-token"];

/// Middleware: refuses what [`check`] refuses, and marks `/v1` replies `no-store`.
pub async fn guard(request: Request, next: Next) -> Response {
    let no_store = request.uri().path().starts_with("/v1/");
    let mut response = match check(&request) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    };
    if no_store {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn check(request: &Request) -> Result<(), ApiError> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if target.len() > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong);
    }
    if header_bytes(request.headers()) > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge);
    }
    decoded_text(uri.path()).map_err(|why| ApiError::InvalidText(format!("the path {why}")))?;
    if let Some(query) = uri.query() {
        decoded_text(query).map_err(|why| ApiError::InvalidText(format!("the query string {why}")))?;
    }
    for name in TEXT_HEADERS {
        for value in request.headers().get_all(*name) {
            let text = value
                .to_str()
                .map_err(|_| ApiError::InvalidText(format!("the {name} header is not visible ASCII text")))?;
            plain_text(text).map_err(|why| ApiError::InvalidText(format!("the {name} header {why}")))?;
        }
    }
    Ok(())
}

/// Header names and values, each with its `: ` and line end.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// `raw`, percent-decoded, as [`plain_text`].
fn decoded_text(raw: &str) -> Result<(), &'static str> {
    let bytes: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    let text = std::str::from_utf8(&bytes).map_err(|_| "is not UTF-8 once percent-decoded")?;
    plain_text(text)
}

/// [`plain_text`] as a JSON Schema pattern (ECMA-262 and Python `re` read it alike).
pub const PLAIN_TEXT_PATTERN: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$";

/// Text without NUL and without control characters other than tab, line feed and
/// carriage return.
pub fn plain_text(text: &str) -> Result<(), &'static str> {
    if text.contains('\0') {
        return Err("contains a NUL byte");
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err("contains a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_with_nul_control_characters_or_bad_utf8_is_refused() {
        assert!(plain_text("Hello\tworld\r\n, 费用").is_ok());
        assert_eq!(plain_text("a\0b"), Err("contains a NUL byte"));
        assert_eq!(plain_text("a\u{7}b"), Err("contains a control character"));
        assert_eq!(plain_text("a\u{85}b"), Err("contains a control character"));
        assert!(decoded_text("q=card%20fees&page=2").is_ok());
        assert_eq!(decoded_text("q=%00"), Err("contains a NUL byte"));
        assert_eq!(decoded_text("q=%FF"), Err("is not UTF-8 once percent-decoded"));
        assert_eq!(decoded_text("/v1/x%E8%B4%B9"), Ok(()));
    }
}
