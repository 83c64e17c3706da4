//! Agent console sessions: a browser signs in once with its staff token and then holds a
//! random session id in a cookie. Only SHA-256 hashes of the id and of the session's CSRF
//! token are stored, in the database, so every instance honours the same sessions. A
//! session lasts [`SESSION_HOURS`], ends when the agent signs out, and ends with the token
//! it was opened with: a revoked token's sessions are refused at once. Opening and ending
//! one are audit events, in the same transaction as the row.

use super::records::{EventBatch, EventKind, NewEvent, Payload};
use super::staff::{Staff, StaffRole};
use super::store::{now, AuditError, AuditStore};
use crate::auth;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How long a session lasts from sign-in (one working shift).
pub const SESSION_HOURS: i64 = 8;

/// A session just opened: the secret id for the cookie and the CSRF token for the page,
/// each shown only now.
#[derive(Debug)]
pub struct OpenedSession {
    pub id: String,
    pub csrf_token: String,
    pub staff: Staff,
    /// RFC 3339 UTC.
    pub expires_at: String,
}

/// A live session, as read back for a request.
#[derive(Debug)]
pub struct Session {
    pub staff: Staff,
    pub expires_at: String,
    csrf_hash: String,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant-time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        auth::matches(&self.csrf_hash, presented)
    }
}

/// The CSRF token of the session whose id is `session_id`: derived from the id (one-way),
/// so the page can be handed it again after a reload (`GET /console/session`) although only
/// its hash is stored. Someone who cannot read the cookie cannot compute it.
pub fn csrf_token_for(session_id: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"teller console csrf\0");
    digest.update(session_id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.finalize())
}

/// Payload of a sign-in to the console. `session` is the session id's fingerprint (the
/// first 8 hex digits of the stored hash), so the sign-out can be matched to it.
#[derive(Serialize)]
struct ConsoleSignedIn<'a> {
    session: String,
    role: StaffRole,
    expires_at: &'a str,
}

impl Payload for ConsoleSignedIn<'_> {
    const KIND: EventKind = EventKind::ConsoleSignedIn;
}

#[derive(Serialize)]
struct ConsoleSignedOut {
    session: String,
}

impl Payload for ConsoleSignedOut {
    const KIND: EventKind = EventKind::ConsoleSignedOut;
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl AuditStore {
    /// Opens a session for `staff` (already authenticated by their token). `None` when the
    /// token was revoked in the meantime.
    pub async fn open_session(&self, staff: &Staff) -> Result<Option<OpenedSession>, AuditError> {
        let id = auth::new_conversation_token();
        let csrf_token = csrf_token_for(&id);
        let created = chrono::Utc::now();
        let expires_at = timestamp(created + chrono::Duration::hours(SESSION_HOURS));
        let opened = self
            .write_with_record(async |tx| {
                let done = sqlx::query(
                    "INSERT INTO console_sessions (id_hash, token_id, staff_name, role, csrf_hash, created_at, expires_at) \
                     SELECT $1, id, name, role, $2, $3, $4 FROM staff_tokens WHERE name = $5 AND revoked_at IS NULL",
                )
                .bind(auth::hash(&id))
                .bind(auth::hash(&csrf_token))
                .bind(timestamp(created))
                .bind(&expires_at)
                .bind(&staff.name)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok((false, EventBatch::default()));
                }
                let event = ConsoleSignedIn {
                    session: auth::fingerprint(&id),
                    role: staff.role,
                    expires_at: &expires_at,
                };
                Ok((true, EventBatch::event(NewEvent::of(staff.actor(), None, &event))))
            })
            .await?;
        Ok(opened.then(|| OpenedSession {
            id,
            csrf_token,
            staff: staff.clone(),
            expires_at,
        }))
    }

    /// The live session whose id is `id`: not ended, not expired, its token not revoked.
    pub async fn session(&self, id: &str) -> Result<Option<Session>, AuditError> {
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT t.name, t.role, s.csrf_hash, s.expires_at FROM console_sessions s \
             JOIN staff_tokens t ON t.id = s.token_id \
             WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 AND t.revoked_at IS NULL",
        )
        .bind(auth::hash(id))
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(name, role, csrf_hash, expires_at)| {
            Some(Session {
                staff: Staff {
                    name,
                    role: role.parse().ok()?,
                },
                expires_at,
                csrf_hash,
            })
        }))
    }

    /// Ends the session whose id is `id` (signed out by `staff`); false when it had already
    /// ended.
    pub async fn end_session(&self, id: &str, staff: &Staff) -> Result<bool, AuditError> {
        self.write_with_record(async |tx| {
            let done = sqlx::query("UPDATE console_sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL")
                .bind(now())
                .bind(auth::hash(id))
                .execute(&mut *tx)
                .await?;
            let ended = done.rows_affected() > 0;
            let batch = if ended {
                let event = ConsoleSignedOut {
                    session: auth::fingerprint(id),
                };
                EventBatch::event(NewEvent::of(staff.actor(), None, &event))
            } else {
                EventBatch::default()
            };
            Ok((ended, batch))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (AuditStore, tempfile::TempDir) {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        (AuditStore::connect(&url).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn a_session_lives_until_signed_out_or_its_token_is_revoked() {
        let (store, _dir) = store().await;
        let token = store.create_token("alex", StaffRole::Agent).await.unwrap();
        let staff = store.authenticate(&token).await.unwrap().unwrap();
        let opened = store.open_session(&staff).await.unwrap().unwrap();
        assert_eq!(opened.csrf_token, csrf_token_for(&opened.id));
        assert_ne!(opened.csrf_token, opened.id);

        let session = store.session(&opened.id).await.unwrap().expect("live");
        assert_eq!(session.staff, staff);
        assert!(session.csrf_matches(&opened.csrf_token));
        assert!(!session.csrf_matches("forged"));
        assert!(store.session("another id").await.unwrap().is_none());

        assert!(store.end_session(&opened.id, &staff).await.unwrap());
        assert!(!store.end_session(&opened.id, &staff).await.unwrap(), "ends once");
        assert!(store.session(&opened.id).await.unwrap().is_none());

        let second = store.open_session(&staff).await.unwrap().unwrap();
        assert!(store.session(&second.id).await.unwrap().is_some());
        assert!(store.revoke_token("alex").await.unwrap());
        assert!(store.session(&second.id).await.unwrap().is_none(), "revoked token");
        assert!(store.open_session(&staff).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn only_hashes_are_stored() {
        let (store, _dir) = store().await;
        let token = store.create_token("alex", StaffRole::Agent).await.unwrap();
        let staff = store.authenticate(&token).await.unwrap().unwrap();
        let opened = store.open_session(&staff).await.unwrap().unwrap();
        let (id_hash, csrf_hash): (String, String) = sqlx::query_as("SELECT id_hash, csrf_hash FROM console_sessions")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(id_hash, auth::hash(&opened.id));
        assert_eq!(csrf_hash, auth::hash(&opened.csrf_token));
    }

    #[tokio::test]
    async fn an_expired_session_is_refused() {
        let (store, _dir) = store().await;
        let token = store.create_token("alex", StaffRole::Agent).await.unwrap();
        let staff = store.authenticate(&token).await.unwrap().unwrap();
        let opened = store.open_session(&staff).await.unwrap().unwrap();
        sqlx::query("UPDATE console_sessions SET expires_at = $1")
            .bind(timestamp(chrono::Utc::now() - chrono::Duration::seconds(1)))
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(store.session(&opened.id).await.unwrap().is_none());
    }
}
