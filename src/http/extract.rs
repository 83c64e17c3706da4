//! Request extractors shared by the routers: JSON bodies, query strings and paths whose
//! rejections come back in the API's error shape, and staff authenticated by their bearer
//! token.

use super::error::ApiError;
use super::guard::plain_text;
use crate::audit::{AuditStore, Staff, StaffRole};
use crate::auth;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// A JSON body whose rejections come back in the API's error shape: not JSON → 400
/// `invalid_json`; a NUL byte or another control character in any string or key → 400
/// `invalid_text`; JSON of the wrong shape → 422 `invalid_request`.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<Value>::from_request(request, state).await?;
        json_text(&value)?;
        serde_json::from_value(value)
            .map(AppJson)
            .map_err(|e| ApiError::InvalidRequest(format!("the JSON body does not fit: {e}")))
    }
}

/// Every string and key of `value` as [`plain_text`].
fn json_text(value: &Value) -> Result<(), ApiError> {
    let refuse = |why: &str| ApiError::InvalidText(format!("a string in the JSON body {why}"));
    match value {
        Value::String(s) => plain_text(s).map_err(refuse),
        Value::Array(items) => items.iter().try_for_each(json_text),
        Value::Object(fields) => fields.iter().try_for_each(|(key, value)| {
            plain_text(key).map_err(refuse)?;
            json_text(value)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

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
