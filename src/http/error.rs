//! The API's one error type: a stable machine-readable `code`, a fitting status, and a
//! message safe to show. 5xx bodies stay generic; the detail goes to the log.

use crate::audit::AuditError;
use crate::chat::ChatError;
use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("expected a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("a conversation token is required (Authorization: Bearer <conversation_token>)")]
    TokenRequired,
    #[error("a staff token is required (Authorization: Bearer <token>)")]
    StaffTokenRequired,
    #[error("the staff token is not valid or has been revoked")]
    InvalidStaffToken,
    #[error("this token's role may not use this endpoint")]
    Forbidden,
    #[error("no such route")]
    NotFound,
    #[error("the service is busy; please retry shortly")]
    Overloaded,
    #[error("the request took too long")]
    Timeout,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Chat(e) => match e {
                ChatError::EmptyMessage | ChatError::MessageTooLong { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                ChatError::ConversationNotFound => StatusCode::NOT_FOUND,
                ChatError::InvalidConversationToken => StatusCode::UNAUTHORIZED,
                ChatError::ConversationTooLong(_) => StatusCode::CONFLICT,
                ChatError::AuditUnavailable(_) | ChatError::RetrievalUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ChatError::Deadline => StatusCode::GATEWAY_TIMEOUT,
                // Nobody reads this response; 499 is the de-facto "client closed request".
                ChatError::Cancelled => StatusCode::from_u16(499).expect("valid status"),
            },
            ApiError::Audit(e) => match e {
                AuditError::Unavailable(_) | AuditError::Migration(_) => StatusCode::SERVICE_UNAVAILABLE,
                AuditError::Duplicate(_) => StatusCode::CONFLICT,
                AuditError::InvalidRecord(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TokenRequired | ApiError::StaffTokenRequired | ApiError::InvalidStaffToken => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Chat(e) => e.code(),
            ApiError::Audit(e) => match e {
                AuditError::Unavailable(_) | AuditError::Migration(_) => "audit_unavailable",
                AuditError::Duplicate(_) => "already_exists",
                AuditError::InvalidRecord(_) => "internal_error",
            },
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TokenRequired => "conversation_token_required",
            ApiError::StaffTokenRequired => "staff_token_required",
            ApiError::InvalidStaffToken => "invalid_staff_token",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::Overloaded => "overloaded",
            ApiError::Timeout => "deadline_exceeded",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The `{"error": {...}}` body, also used for SSE `error` events.
    pub fn body(&self) -> serde_json::Value {
        let message = if self.status().is_server_error() {
            // Never leak internals: the generic text for the status.
            match self {
                ApiError::Chat(ChatError::AuditUnavailable(_))
                | ApiError::Audit(AuditError::Unavailable(_) | AuditError::Migration(_)) => {
                    "the conversation record is unavailable, so no answer can be given; please try again shortly"
                        .to_string()
                }
                ApiError::Chat(ChatError::RetrievalUnavailable(_)) => {
                    "the knowledge base is unavailable; please try again shortly".to_string()
                }
                ApiError::Internal(_) | ApiError::Audit(_) => "internal error".to_string(),
                other => other.to_string(),
            }
        } else {
            self.to_string()
        };
        json!({ "error": { "code": self.code(), "message": message } })
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::InvalidRequest(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::InvalidJson(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::InvalidJson(other.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), error = ?self, "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
