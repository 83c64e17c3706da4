//! Staff tokens (agents, compliance officers, admins) and what staff do, in the record.
//! Creating or revoking a token and its audit event are one transaction.

use super::records::{Actor, EventBatch, EventKind, NewEvent, Payload};
use super::store::{now, AuditError, AuditStore};
use crate::auth;
use serde::{Deserialize, Serialize};

/// What a member of staff may do. The text form is the `role` column.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum StaffRole {
    Agent,
    Compliance,
    Admin,
}

impl StaffRole {
    pub const ALL: [StaffRole; 3] = [StaffRole::Agent, StaffRole::Compliance, StaffRole::Admin];

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An authenticated member of staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Staff {
    pub name: String,
    pub role: StaffRole,
}

impl Staff {
    /// How this member of staff appears in the record.
    pub fn actor(&self) -> Actor {
        Actor::Staff(self.name.clone())
    }
}

#[derive(Serialize)]
struct TokenCreated<'a> {
    name: &'a str,
    role: StaffRole,
}

impl Payload for TokenCreated<'_> {
    const KIND: EventKind = EventKind::TokenCreated;
}

#[derive(Serialize)]
struct TokenRevoked<'a> {
    name: &'a str,
}

impl Payload for TokenRevoked<'_> {
    const KIND: EventKind = EventKind::TokenRevoked;
}

impl AuditStore {
    /// Creates a staff token and returns it; only its hash is stored.
    pub async fn create_token(&self, name: &str, role: StaffRole) -> Result<String, AuditError> {
        let token = auth::new_staff_token();
        self.write_with_record(async |tx| {
            sqlx::query(
                "INSERT INTO staff_tokens (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(name)
            .bind(role.as_str())
            .bind(auth::hash(&token))
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                AuditError::on_unique(e, || {
                    format!("a token named {name:?} already exists; revoke it or choose another name")
                })
            })?;
            let created = TokenCreated { name, role };
            Ok(((), EventBatch::event(NewEvent::of(Actor::Operator, None, &created))))
        })
        .await?;
        Ok(token)
    }

    /// Revokes a token by name; false when there was no active token of that name.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, AuditError> {
        self.write_with_record(async |tx| {
            let done = sqlx::query("UPDATE staff_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
                .bind(now())
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let revoked = done.rows_affected() > 0;
            let batch = if revoked {
                EventBatch::event(NewEvent::of(Actor::Operator, None, &TokenRevoked { name }))
            } else {
                EventBatch::default()
            };
            Ok((revoked, batch))
        })
        .await
    }

    /// The member of staff a bearer token belongs to, if it is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Staff>, AuditError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, role FROM staff_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
                .bind(auth::hash(token))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(name, role)| {
            Some(Staff {
                name,
                role: role.parse().ok()?,
            })
        }))
    }

    /// Records an action of staff or an operator (reads, exports, verifications).
    pub async fn record_staff_action<P: Payload>(&self, actor: Actor, payload: &P) -> Result<(), AuditError> {
        self.append(EventBatch::event(NewEvent::of(actor, None, payload)))
            .await
            .map(|_| ())
    }
}

/// Payload of one conversation read by staff.
#[derive(Debug, Serialize)]
pub struct ConversationRead {
    pub conversation_id: uuid::Uuid,
}

impl Payload for ConversationRead {
    const KIND: EventKind = EventKind::ConversationRead;
}

/// Payload of an export: the period, the format and, once known, how many events.
#[derive(Debug, Serialize)]
pub struct AuditExported {
    pub from: String,
    pub to: String,
    pub format: super::ExportFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
}

impl Payload for AuditExported {
    const KIND: EventKind = EventKind::AuditExported;
}

/// Payload of a verification: whether the chain was intact, over how many events.
#[derive(Debug, Serialize)]
pub struct AuditVerified {
    pub ok: bool,
    pub events: i64,
}

impl Payload for AuditVerified {
    const KIND: EventKind = EventKind::AuditVerified;
}
