//! Request extractors shared by the routers: JSON bodies, query strings and paths whose
//! rejections come back in the API's error shape, and staff authenticated by their bearer
//! token.

use super::error::ApiError;
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

/// The member of staff behind `Authorization: Bearer <token>`, if the token is valid.
async fn staff<S>(parts: &Parts, state: &S) -> Result<Staff, ApiError>
where
    Arc<AuditStore>: FromRef<S>,
{
    let token = auth::bearer(&parts.headers).ok_or(ApiError::StaffTokenRequired)?;
    Arc::<AuditStore>::from_ref(state)
        .authenticate(token)
        .await?
        .ok_or(ApiError::InvalidStaffToken)
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
        let staff = staff(parts, state).await?;
        if staff.role != StaffRole::Compliance {
            return Err(ApiError::Forbidden);
        }
        Ok(Self(staff))
    }
}
