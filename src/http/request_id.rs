//! Every request's id: the load balancer's `x-request-id` when it is sane, else a new one,
//! put on the request (where the request span, the handlers and the turn's record read it)
//! and returned on the response. One middleware rather than tower-http's set and propagate
//! layers, which keep whatever a client sent: an id bound for logs and the audit record is
//! checked first ([`RequestId::parse`]).

use crate::telemetry::{RequestId, REQUEST_ID_HEADER};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = RequestId::from_headers(request.headers()).unwrap_or_else(RequestId::generate);
    let value = HeaderValue::from_str(id.as_str()).expect("request ids are visible ASCII");
    request.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, value);
    response
}
