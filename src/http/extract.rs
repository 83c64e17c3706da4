//! Request extractors shared by the routers: JSON bodies, query strings and paths whose
//! rejections come back in the API's error shape, and staff authenticated by their bearer
//! token or, for agents, the console's session cookie (every refusal recorded).

use super::error::ApiError;
use super::refused::{Refusal, StaffRefusals};
use crate::audit::{AuditStore, Staff, StaffRole};
use crate::auth;
use axum::extract::{FromRef, FromRequest, FromRequestParts};
use axum::http::request::Parts;
use std::sync::Arc;

/// `axum::Json` whose rejections come back in the API's error shape: not JSON → 400
/// `invalid_json`; JSON of the wrong shape → 422 `invalid_request`. The body types check
/// the text of the strings they read (unknown fields are never read, so not checked).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

/// `axum::extract::Query` whose rejections come back as 400 `invalid_query`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

/// `axum::extract::Path` whose rejections come back in the API's error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

/// The member of staff behind `Authorization: Bearer <token>`, if the token is valid. A
/// missing or invalid token is refused, and the refusal recorded (rate-limited, in the
/// background: see [`super::refused`]).
pub(super) async fn staff<S>(parts: &Parts, state: &S) -> Result<Staff, ApiError>
where
    Arc<AuditStore>: FromRef<S>,
{
    let Some(token) = auth::bearer(&parts.headers) else {
        refuse(parts, Refusal::NoToken);
        return Err(ApiError::StaffTokenRequired);
    };
    match Arc::<AuditStore>::from_ref(state).authenticate(token).await? {
        Some(staff) => Ok(staff),
        None => {
            refuse(parts, Refusal::InvalidToken(token));
            Err(ApiError::InvalidStaffToken)
        }
    }
}

/// Records a refused staff attempt through the API's recorder.
pub(super) fn refuse(parts: &Parts, refusal: Refusal<'_>) {
    match parts.extensions.get::<StaffRefusals>() {
        Some(refusals) => refusals.refuse(parts, refusal),
        // Only a router assembled without `api_router` lacks it.
        None => tracing::warn!("no recorder of refused staff attempts on this router"),
    }
}

/// The member of staff behind the bearer token or, without one, the console's session
/// cookie (any method but GET and HEAD then also needs the session's `X-CSRF-Token`), if
/// their role is one of `roles`; every refusal is recorded.
async fn staff_in<S>(parts: &Parts, state: &S, roles: &[StaffRole]) -> Result<Staff, ApiError>
where
    Arc<AuditStore>: FromRef<S>,
{
    if auth::bearer(&parts.headers).is_none() {
        if let Some(id) = super::console::session_cookie(&parts.headers) {
            let session = super::console::live_session(parts, state, id, roles).await?;
            return Ok(session.staff);
        }
    }
    let staff = staff(parts, state).await?;
    if !roles.contains(&staff.role) {
        refuse(parts, Refusal::WrongRole(&staff));
        return Err(ApiError::Forbidden);
    }
    Ok(staff)
}

/// A member of staff holding the `compliance` role.
pub struct ComplianceOfficer(pub Staff);

impl<S> FromRequestParts<S> for ComplianceOfficer
where
    S: Send + Sync,
    Arc<AuditStore>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        staff_in(parts, state, &[StaffRole::Compliance]).await.map(Self)
    }
}

/// A member of staff who owns the knowledge base's quality: role `compliance` or `admin`
/// (the knowledge insights).
pub struct KnowledgeOwner(pub Staff);

impl<S> FromRequestParts<S> for KnowledgeOwner
where
    S: Send + Sync,
    Arc<AuditStore>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        staff_in(parts, state, &[StaffRole::Compliance, StaffRole::Admin])
            .await
            .map(Self)
    }
}

/// A member of staff holding the `agent` role (the contact centre): by
/// `Authorization: Bearer <token>`, or without one by the agent console's session cookie
/// ([`super::console`]), in which case any method but GET and HEAD also needs the
/// session's `X-CSRF-Token`.
pub struct Agent(pub Staff);

impl<S> FromRequestParts<S> for Agent
where
    S: Send + Sync,
    Arc<AuditStore>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        staff_in(parts, state, &[StaffRole::Agent]).await.map(Self)
    }
}
