//! Request bodies read whole, bounded in size and in time, before any handler (and so
//! before a chat turn's slot) sees the request.
//!
//! A body that never finished used to hold a turn slot for ever: 1,030 stalled bodies on
//! `/v1/chat/stream` made both chat routes answer 503 while they were held. Bodies here
//! are small (a chat message, a staff action), so they are buffered: a declared
//! `Content-Length` over the limit is refused before a byte is read, and the whole body
//! must arrive within the read timeout — with the size limit, a minimum average rate.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;

/// The limits [`read_whole`] applies.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

/// Middleware: buffers the request body within [`BodyLimits`], or answers 413 / 408.
pub async fn read_whole(limits: BodyLimits, request: Request, next: Next) -> Response {
    match buffered(limits, request).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn buffered(limits: BodyLimits, request: Request) -> Result<Request, ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let (parts, body) = request.into_parts();
    let bytes = match declared {
        // Nothing to wait for.
        Some(0) => Bytes::new(),
        _ => read(body, limits).await?,
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

async fn read(body: Body, limits: BodyLimits) -> Result<Bytes, ApiError> {
    let collected = tokio::time::timeout(limits.read_timeout, Limited::new(body, limits.max_bytes).collect()).await;
    match collected {
        Err(_) => {
            metrics::counter!("teller_body_timeouts_total").increment(1);
            Err(ApiError::BodyTimeout)
        }
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(ApiError::PayloadTooLarge),
        // The client broke the body off (connection reset, malformed chunking).
        Ok(Err(_)) => Err(ApiError::InvalidRequest("the request body could not be read".into())),
    }
}
