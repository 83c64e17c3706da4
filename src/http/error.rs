//! The API's one error type: a stable machine-readable `code`, a fitting status, and a
//! message safe to show. 5xx bodies stay generic; the detail goes to the log.

use crate::audit::AuditError;
use crate::chat::ChatError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
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
    /// A NUL byte, another control character or bytes that are not UTF-8 in the path,
    /// the query, a JSON string or a header the server reads.
    #[error("{0}")]
    InvalidText(String),
    #[error("the query string is not valid: {0}")]
    InvalidQuery(String),
    #[error("the path is not valid: {0}")]
    InvalidPath(String),
    #[error("this route does not accept this method")]
    MethodNotAllowed,
    #[error("the request URI is too long")]
    UriTooLong,
    #[error("the request headers are too large")]
    HeadersTooLarge,
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
    /// A console session cookie that is unknown, ended, expired or whose token was revoked.
    #[error("the console session has ended or expired; sign in again")]
    SessionInvalid,
    /// A request authenticated by the console cookie, other than GET or HEAD, without the
    /// session's `X-CSRF-Token`.
    #[error("this request needs the console session's X-CSRF-Token header")]
    CsrfTokenInvalid,
    #[error("no such route")]
    NotFound,
    /// Feedback for a message that is not an assistant message of the conversation.
    #[error("no such assistant message in this conversation")]
    MessageNotFound,
    /// An `X-Teller-Identity` token that is malformed, forged, expired, or sent to a
    /// server without `TELLER_IDENTITY_SECRET`.
    #[error("the identity token is not valid: {0}")]
    InvalidIdentity(#[from] crate::identity::IdentityError),
    #[error("this route needs a signed identity token (X-Teller-Identity)")]
    IdentityRequired,
    /// Past a per-IP or per-conversation limit; retry after this many seconds.
    #[error("too many requests; please retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
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
                ChatError::ConversationTooLong(_) | ChatError::TurnConflict => StatusCode::CONFLICT,
                ChatError::AuditUnavailable(_) | ChatError::RetrievalUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                ChatError::Deadline => StatusCode::GATEWAY_TIMEOUT,
                // Nobody reads this response; 499 is the de-facto "client closed request".
                ChatError::Cancelled => StatusCode::from_u16(499).expect("valid status"),
            },
            ApiError::Audit(e) => match e {
                AuditError::Unavailable(_) | AuditError::Migration(_) => StatusCode::SERVICE_UNAVAILABLE,
                AuditError::Duplicate(_)
                | AuditError::Conflict
                | AuditError::HumanOwned
                | AuditError::Refused { .. } => StatusCode::CONFLICT,
                AuditError::NotFound => StatusCode::NOT_FOUND,
                AuditError::InvalidRecord(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::InvalidText(_) | ApiError::InvalidQuery(_) | ApiError::InvalidPath(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UriTooLong => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TokenRequired
            | ApiError::StaffTokenRequired
            | ApiError::InvalidStaffToken
            | ApiError::SessionInvalid => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::CsrfTokenInvalid => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::MessageNotFound => StatusCode::NOT_FOUND,
            ApiError::InvalidIdentity(_) | ApiError::IdentityRequired => StatusCode::UNAUTHORIZED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
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
                AuditError::Conflict => "turn_conflict",
                AuditError::HumanOwned => "conversation_with_agent",
                AuditError::Refused { code, .. } => code,
                AuditError::NotFound => "conversation_not_found",
                AuditError::InvalidRecord(_) => "internal_error",
            },
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidText(_) => "invalid_text",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::InvalidPath(_) => "invalid_path",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::UriTooLong => "uri_too_long",
            ApiError::HeadersTooLarge => "headers_too_large",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TokenRequired => "conversation_token_required",
            ApiError::StaffTokenRequired => "staff_token_required",
            ApiError::InvalidStaffToken => "invalid_staff_token",
            ApiError::Forbidden => "forbidden",
            ApiError::SessionInvalid => "session_invalid",
            ApiError::CsrfTokenInvalid => "csrf_token_invalid",
            ApiError::NotFound => "not_found",
            ApiError::MessageNotFound => "message_not_found",
            ApiError::InvalidIdentity(_) => "invalid_identity_token",
            ApiError::IdentityRequired => "identity_required",
            ApiError::RateLimited { .. } => "rate_limited",
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

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::InvalidQuery(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        match &rejection {
            PathRejection::FailedToDeserializePathParams(e)
                if matches!(e.kind(), ErrorKind::InvalidUtf8InPathParam { .. }) =>
            {
                ApiError::InvalidText("the path is not valid UTF-8".into())
            }
            _ => ApiError::InvalidPath(rejection.body_text()),
        }
    }
}

/// Every code the API answers with, its status, and when: the README's table and the
/// OpenAPI document's list of codes are checked against it.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("invalid_json", 400, "the body is not JSON"),
    ("invalid_text", 400, "a NUL byte, another control character or non-UTF-8 bytes in the path, query, a JSON string or a header the server reads"),
    ("invalid_query", 400, "the query string does not fit the route's parameters"),
    ("invalid_path", 400, "a path parameter could not be read"),
    ("conversation_token_required", 401, "reading a transcript without a conversation token"),
    ("invalid_conversation_token", 401, "a chat turn with conversation_id but no conversation_token, or a token without conversation_id"),
    ("staff_token_required", 401, "a staff route (or /metrics when TELLER_METRICS_TOKEN_REQUIRED is set) without a staff token"),
    ("invalid_staff_token", 401, "a staff token that is unknown or revoked"),
    ("session_invalid", 401, "an agent console session cookie that is unknown, ended, expired or whose token was revoked"),
    ("invalid_identity_token", 401, "an X-Teller-Identity token that is malformed, forged or expired, or any one when TELLER_IDENTITY_SECRET is not set"),
    ("identity_required", 401, "GET /v1/customer/conversations without an X-Teller-Identity token"),
    ("forbidden", 403, "a staff token whose role may not use the route"),
    ("csrf_token_invalid", 403, "a request authenticated by the console cookie, other than GET or HEAD, without the session's X-CSRF-Token"),
    ("not_found", 404, "no such route"),
    ("conversation_not_found", 404, "no such conversation, or a token that does not match it (the two look alike)"),
    ("message_not_found", 404, "feedback for a message that is not an assistant message of the conversation"),
    ("method_not_allowed", 405, "the route exists, but not with this method"),
    ("body_timeout", 408, "the request body did not arrive within TELLER_BODY_READ_TIMEOUT_MS"),
    ("conversation_too_long", 409, "the conversation has reached its turn limit"),
    ("turn_conflict", 409, "another message of the conversation, sent at the same time, took this turn; send yours again"),
    ("already_exists", 409, "the record already holds this item"),
    ("already_claimed", 409, "another colleague has already taken this conversation"),
    ("not_waiting", 409, "the conversation is not waiting for a colleague (claim, resolve)"),
    ("not_claimed", 409, "take the conversation over before writing to the customer or handing it back"),
    ("not_your_conversation", 409, "another colleague holds this conversation"),
    ("conversation_closed", 409, "the conversation was resolved"),
    ("unknown_suggestion", 409, "a message names a suggestion that is not open in this conversation"),
    ("conversation_with_agent", 409, "an assistant reply to a conversation a person owns (never reaches a client: the message is relayed)"),
    ("payload_too_large", 413, "the body is over 32 KiB"),
    ("uri_too_long", 414, "the path and query are over 8 KiB"),
    ("unsupported_media_type", 415, "a body without Content-Type: application/json"),
    ("message_empty", 422, "the message is empty or only whitespace"),
    ("message_too_long", 422, "the message is over 2,000 characters"),
    ("invalid_request", 422, "well-formed input with a wrong value (a field's type, an unknown language, a bad time)"),
    ("rate_limited", 429, "over TELLER_RATE_LIMIT_PER_MINUTE from one client IP or TELLER_CONVERSATION_RATE_LIMIT_PER_MINUTE in one conversation; retry after Retry-After"),
    ("headers_too_large", 431, "the request headers are over 32 KiB"),
    ("client_closed_request", 499, "the client went away mid-turn (nobody reads it; logged)"),
    ("internal_error", 500, "a bug; the detail is in the log"),
    ("audit_unavailable", 503, "the audit record cannot be written or read, so no answer is given"),
    ("retrieval_unavailable", 503, "the knowledge base cannot be searched"),
    ("overloaded", 503, "too many chat turns in flight; retry after Retry-After"),
    ("deadline_exceeded", 504, "the turn did not finish within its deadline"),
];

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
        if let ApiError::RateLimited { retry_after } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_error() -> Vec<ApiError> {
        let db = || sqlx::Error::PoolTimedOut;
        vec![
            ChatError::EmptyMessage.into(),
            ChatError::MessageTooLong { chars: 2_001 }.into(),
            ChatError::ConversationNotFound.into(),
            ChatError::InvalidConversationToken.into(),
            ChatError::ConversationTooLong(50).into(),
            ChatError::TurnConflict.into(),
            ChatError::AuditUnavailable(AuditError::Unavailable(db())).into(),
            ChatError::RetrievalUnavailable(anyhow::anyhow!("x")).into(),
            ChatError::Deadline.into(),
            ChatError::Cancelled.into(),
            AuditError::Unavailable(db()).into(),
            AuditError::Duplicate("x".into()).into(),
            AuditError::Conflict.into(),
            ApiError::InvalidJson("x".into()),
            ApiError::InvalidRequest("x".into()),
            ApiError::InvalidText("x".into()),
            ApiError::InvalidQuery("x".into()),
            ApiError::InvalidPath("x".into()),
            ApiError::MethodNotAllowed,
            ApiError::UriTooLong,
            ApiError::HeadersTooLarge,
            ApiError::PayloadTooLarge,
            ApiError::BodyTimeout,
            ApiError::UnsupportedMediaType,
            ApiError::TokenRequired,
            ApiError::StaffTokenRequired,
            ApiError::InvalidStaffToken,
            ApiError::Forbidden,
            ApiError::SessionInvalid,
            ApiError::CsrfTokenInvalid,
            ApiError::NotFound,
            ApiError::MessageNotFound,
            ApiError::InvalidIdentity(crate::identity::IdentityError::Expired),
            ApiError::IdentityRequired,
            ApiError::RateLimited { retry_after: 3 },
            ApiError::Overloaded,
            ApiError::Timeout,
            ApiError::Internal(anyhow::anyhow!("x")),
        ]
    }

    #[test]
    fn every_code_is_listed_with_its_status_here_and_in_the_readme() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        for error in every_error() {
            let (code, status) = (error.code(), error.status().as_u16());
            assert!(
                ERROR_CODES.iter().any(|(c, s, _)| *c == code && *s == status),
                "{code} {status} is not in ERROR_CODES"
            );
        }
        for (code, status, _) in ERROR_CODES {
            let row = format!("| `{code}` | {status}");
            assert!(readme.contains(&row), "README has no row {row}");
        }
    }
}
