//! Refused staff attempts, in the record. Every 401 and 403 on a staff route is a
//! `staff_access_refused` event: the code the client got, the method, the route template,
//! the token's name for a valid token of the wrong role, and for a token that is not valid
//! only a fingerprint of it ([`crate::auth::fingerprint`]), never the token.
//!
//! A client spraying bad tokens must neither flood the log nor slow the append path that
//! customers' turns wait on, so events are rate-limited ([`quota`]) and appended by a task
//! of their own: the 401 or 403 never waits for the store, and answers at once even when
//! the store is down. A refusal past the limit, or whose event could not be queued or
//! appended, is counted, and the count goes into the next event recorded (`suppressed`),
//! so the record accounts for every refusal: the sum of 1 + `suppressed` over the events
//! is the number of refusals up to the last one recorded. `teller_staff_refused_total`
//! counts every refusal by code as it happens.

use crate::audit::{Actor, AuditStore, EventKind, Payload, Staff, StaffRole};
use axum::extract::MatchedPath;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::Serialize;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Events recorded per process: a burst of [`BURST`], then one a second (10 per 10 s
/// sustained).
pub fn quota() -> Quota {
    Quota::with_period(Duration::from_secs(1))
        .expect("a period that is not zero")
        .allow_burst(BURST)
}

/// Events recorded at once before the one-a-second rate applies.
pub const BURST: NonZeroU32 = NonZeroU32::new(10).expect("not zero");

/// Events waiting for the recording task: with the quota, it only fills while the store
/// does not answer, and then refusals are counted instead.
const QUEUE: usize = 64;

/// Payload of one refused staff attempt.
#[derive(Debug, Clone, Serialize)]
pub struct StaffAccessRefused {
    /// The error code the client got: `staff_token_required`, `invalid_staff_token`,
    /// `forbidden`, or from the agent console `session_invalid` or `csrf_token_invalid`.
    pub reason: &'static str,
    pub method: &'static str,
    /// The route's template (`/v1/audit/conversations/{id}`), not the path requested.
    pub route: String,
    /// The token's name, for a valid token of the wrong role.
    pub token_name: Option<String>,
    pub role: Option<StaffRole>,
    /// For a token (or console session id) that is unknown or revoked: the first 8 hex
    /// digits of its SHA-256.
    pub token_fingerprint: Option<String>,
    /// Refusals since the previous event that were not recorded one by one.
    pub suppressed: u64,
}

impl Payload for StaffAccessRefused {
    const KIND: EventKind = EventKind::StaffAccessRefused;
}

/// Why an attempt was refused.
pub enum Refusal<'a> {
    /// No bearer token.
    NoToken,
    /// A token that is unknown or revoked.
    InvalidToken(&'a str),
    /// A valid token whose role may not use the route.
    WrongRole(&'a Staff),
    /// A console session cookie that is unknown, ended or expired (its value, only ever
    /// fingerprinted).
    InvalidSession(&'a str),
    /// A cookie-authenticated request without its session's CSRF token.
    CsrfMissing(&'a Staff),
}

impl Refusal<'_> {
    /// The error code the client gets, which is also the event's `reason`.
    fn code(&self) -> &'static str {
        match self {
            Refusal::NoToken => "staff_token_required",
            Refusal::InvalidToken(_) => "invalid_staff_token",
            Refusal::WrongRole(_) => "forbidden",
            Refusal::InvalidSession(_) => "session_invalid",
            Refusal::CsrfMissing(_) => "csrf_token_invalid",
        }
    }
}

/// The process's recorder of refused staff attempts; cheap to clone (one shared state).
#[derive(Clone)]
pub struct StaffRefusals(Arc<Shared>);

struct Shared {
    store: Arc<AuditStore>,
    ledger: Arc<Ledger<DefaultClock>>,
    /// The recording task's queue, started with the first refusal (inside the runtime).
    queue: OnceLock<mpsc::Sender<(Actor, StaffAccessRefused)>>,
}

impl StaffRefusals {
    pub fn new(store: Arc<AuditStore>) -> Self {
        Self(Arc::new(Shared {
            store,
            ledger: Arc::new(Ledger::new(quota(), DefaultClock::default())),
            queue: OnceLock::new(),
        }))
    }

    /// Counts a refusal and, within the quota, queues its event; never waits.
    pub fn refuse(&self, parts: &Parts, refusal: Refusal<'_>) {
        let reason = refusal.code();
        metrics::counter!("teller_staff_refused_total", "reason" => reason).increment(1);
        let Some(suppressed) = self.0.ledger.admit() else {
            return;
        };
        let (actor, token_name, role, token_fingerprint) = match refusal {
            Refusal::NoToken => (Actor::System, None, None, None),
            Refusal::InvalidToken(token) | Refusal::InvalidSession(token) => {
                (Actor::System, None, None, Some(crate::auth::fingerprint(token)))
            }
            Refusal::WrongRole(staff) | Refusal::CsrfMissing(staff) => {
                (staff.actor(), Some(staff.name.clone()), Some(staff.role), None)
            }
        };
        let event = StaffAccessRefused {
            reason,
            method: super::method_label(&parts.method),
            route: parts
                .extensions
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str)
                .to_string(),
            token_name,
            role,
            token_fingerprint,
            suppressed,
        };
        if self.queue().try_send((actor, event)).is_err() {
            // The store has not kept up (or the task is gone): counted, not dropped.
            self.0.ledger.give_back(1 + suppressed);
        }
    }

    fn queue(&self) -> &mpsc::Sender<(Actor, StaffAccessRefused)> {
        self.0.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(record(self.0.store.clone(), self.0.ledger.clone(), rx));
            tx
        })
    }
}

/// Appends queued events one at a time; an event the store refuses is counted in the
/// next one. Ends when the recorder is dropped.
async fn record<C: Clock>(
    store: Arc<AuditStore>,
    ledger: Arc<Ledger<C>>,
    mut queue: mpsc::Receiver<(Actor, StaffAccessRefused)>,
) {
    while let Some((actor, event)) = queue.recv().await {
        let counted = 1 + event.suppressed;
        if let Err(e) = store.record_staff_action(actor, &event).await {
            tracing::warn!(error = %e, "a refused staff attempt could not be recorded; counted in the next");
            ledger.give_back(counted);
        }
    }
}

/// The quota and the count of refusals not in an event yet.
struct Ledger<C: Clock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
    suppressed: AtomicU64,
}

impl<C: Clock> Ledger<C> {
    fn new(quota: Quota, clock: C) -> Self {
        Self {
            limiter: RateLimiter::direct_with_clock(quota, clock),
            suppressed: AtomicU64::new(0),
        }
    }

    /// One refusal: `Some(refusals not recorded since the last event)` when its event may
    /// be recorded (the count is then carried by it), `None` when it is only counted.
    fn admit(&self) -> Option<u64> {
        match self.limiter.check() {
            Ok(_) => Some(self.suppressed.swap(0, Ordering::AcqRel)),
            Err(_) => {
                self.suppressed.fetch_add(1, Ordering::AcqRel);
                None
            }
        }
    }

    /// Refusals whose event was not recorded after all, for the next event to carry.
    fn give_back(&self, refusals: u64) {
        self.suppressed.fetch_add(refusals, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn past_the_burst_refusals_are_counted_into_the_next_event_one_a_second() {
        let clock = FakeRelativeClock::default();
        let ledger = Ledger::new(quota(), clock.clone());
        let admitted: Vec<Option<u64>> = (0..25).map(|_| ledger.admit()).collect();
        assert_eq!(admitted.iter().filter(|a| a.is_some()).count(), 10);
        assert!(admitted[..10].iter().all(|a| *a == Some(0)));
        // 15 refusals past the burst; the next second's event carries them.
        assert_eq!(ledger.admit(), None);
        clock.advance(Duration::from_millis(999));
        assert_eq!(ledger.admit(), None);
        clock.advance(Duration::from_millis(1));
        assert_eq!(ledger.admit(), Some(17));
        assert_eq!(ledger.admit(), None);
        // An event the store did not take (itself and the one refusal it carried): its
        // refusals go into the next one.
        clock.advance(Duration::from_secs(1));
        let carried = ledger.admit().unwrap();
        assert_eq!(carried, 1);
        ledger.give_back(1 + carried);
        clock.advance(Duration::from_secs(1));
        assert_eq!(ledger.admit(), Some(2));
    }

    #[test]
    fn every_refusal_is_in_exactly_one_event_under_a_flood_from_many_threads() {
        let clock = FakeRelativeClock::default();
        let ledger = Arc::new(Ledger::new(quota(), clock.clone()));
        let recorded = Arc::new(AtomicU64::new(0));
        let events = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (ledger, recorded, events) = (ledger.clone(), recorded.clone(), events.clone());
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        if let Some(suppressed) = ledger.admit() {
                            recorded.fetch_add(1 + suppressed, Ordering::Relaxed);
                            events.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(events.load(Ordering::Relaxed), 10);
        clock.advance(Duration::from_secs(1));
        let last = ledger.admit().unwrap();
        assert_eq!(recorded.load(Ordering::Relaxed) + 1 + last, 20_001);
    }
}
