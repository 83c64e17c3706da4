//! Server-sent events of the live path to a person: the framing shared by the customer's
//! and the colleague's streams, and `Last-Event-ID`.

use crate::handoff::stream::{Cursor, Outgoing};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;

/// The cursor a reconnecting client sends back.
pub fn last_event_id(headers: &HeaderMap) -> Option<Cursor> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(Cursor::parse)
}

fn frame(out: Outgoing) -> Event {
    Event::default()
        .id(out.id)
        .event(out.event)
        .json_data(out.data)
        .expect("events serialise")
}

/// An endless SSE response from `next`, kept alive through proxies, never cached.
pub fn sse<S, F, Fut>(state: S, next: F) -> Response
where
    S: Send + 'static,
    F: FnMut(S) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<(Outgoing, S)>> + Send + 'static,
{
    let mut next = next;
    let stream = futures::stream::unfold(state, move |s| {
        let step = next(s);
        async move { step.await.map(|(out, s)| (Ok::<_, Infallible>(frame(out)), s)) }
    });
    let mut response = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
