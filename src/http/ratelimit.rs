//! Abuse limits on the public customer routes (`/v1/chat*`, `/v1/conversations/*`,
//! `/v1/customer/*`): requests per minute from one client IP (a middleware on those routes)
//! and in one conversation (checked by the handlers, which know the conversation), each a
//! GCRA bucket from `governor` that refills over the minute. Over the limit: 429
//! `rate_limited` with `Retry-After` in whole seconds. Per process: behind a load balancer
//! each instance counts its own share.
//!
//! The client IP is the TCP peer's address; a proxy in front of Teller makes every client
//! look alike, so set the limit with that in mind.

use super::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// The configured limits; 0 turns one off.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    pub per_ip_per_minute: u32,
    pub per_conversation_per_minute: u32,
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// Checks between sweeps of idle keys, so the maps do not grow without bound.
const SWEEP_EVERY: u64 = 4_096;

struct Bucket<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> Bucket<K> {
    fn new(per_minute: u32) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            checks: AtomicU64::new(0),
        })
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }
}

/// The per-IP and per-conversation buckets of one process.
#[derive(Clone)]
pub struct RateLimits {
    per_ip: Option<Arc<Bucket<IpAddr>>>,
    per_conversation: Option<Arc<Bucket<Uuid>>>,
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            per_ip: Bucket::new(settings.per_ip_per_minute).map(Arc::new),
            per_conversation: Bucket::new(settings.per_conversation_per_minute).map(Arc::new),
        }
    }

    /// One more request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        let result = self.per_ip.as_ref().map_or(Ok(()), |b| b.check(&ip));
        if result.is_err() {
            metrics::counter!("teller_rate_limited_total", "scope" => "ip").increment(1);
        }
        result
    }

    /// One more request in conversation `id`.
    pub fn check_conversation(&self, id: Uuid) -> Result<(), ApiError> {
        let result = self.per_conversation.as_ref().map_or(Ok(()), |b| b.check(&id));
        if result.is_err() {
            metrics::counter!("teller_rate_limited_total", "scope" => "conversation").increment(1);
        }
        result
    }
}

/// The per-IP limit, as a middleware. Requests without a peer address (a router driven
/// in a test without a socket) are not limited by IP.
pub async fn per_ip(State(limits): State<RateLimits>, request: Request, next: Next) -> Result<Response, ApiError> {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        limits.check_ip(peer.ip())?;
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_past_its_quota_with_a_retry_time() {
        let limits = RateLimits::new(RateLimitSettings {
            per_ip_per_minute: 3,
            per_conversation_per_minute: 0,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            limits.check_ip(ip).unwrap();
        }
        match limits.check_ip(ip) {
            Err(ApiError::RateLimited { retry_after }) => assert!((1..=20).contains(&retry_after), "{retry_after}"),
            other => panic!("{other:?}"),
        }
        // Another client has its own bucket; the conversation limit is off.
        limits.check_ip("192.0.2.2".parse().unwrap()).unwrap();
        for _ in 0..100 {
            limits.check_conversation(Uuid::nil()).unwrap();
        }
    }
}
