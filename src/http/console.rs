//! The staff console: its page, script and stylesheet (built into the binary, served under
//! a strict Content-Security-Policy), and its sessions. A member of staff signs in once
//! with their staff token (`POST /console/session`) and the browser then holds an HttpOnly,
//! SameSite=Strict cookie instead of the token; the staff routes accept it in place of a
//! bearer token for the session's role only ([`super::extract`]: agents the agent routes,
//! compliance officers the audit routes, both they and admins the insights), any method but
//! GET and HEAD only with the session's `X-CSRF-Token`. Sessions live in the database
//! ([`crate::audit::Session`]).

use super::error::ApiError;
use super::extract::{refuse, AppJson};
use super::openapi::ErrorBody;
use super::refused::Refusal;
use super::AppState;
use crate::audit::{csrf_token_for, AuditStore, Session, StaffRole, SESSION_HOURS};
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The session cookie's name.
pub const COOKIE: &str = "teller_session";
/// The header carrying the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the console's page may load and do: its own script, style and API, nothing inline,
/// no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../../assets/console/index.html");
const SCRIPT: &str = include_str!("../../assets/console/console.js");
const STYLE: &str = include_str!("../../assets/console/console.css");

/// The console's routes, each reply with the security headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(page))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/console/session", get(current).post(sign_in).delete(sign_out))
        .layer(middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    // The page and the session replies are never stored; the script and style are
    // revalidated, so a new release is picked up at once.
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The console's page (sign-in, queue, conversations).
#[utoipa::path(get, path = "/console", tag = "console",
    responses((status = 200, description = "The page, under the console's Content-Security-Policy", content_type = "text/html", body = String)))]
pub async fn page() -> Response {
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// The console's script (an ES module).
#[utoipa::path(get, path = "/console/console.js", tag = "console",
    responses((status = 200, description = "The script", content_type = "text/javascript", body = String)))]
pub async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The console's stylesheet.
#[utoipa::path(get, path = "/console/console.css", tag = "console",
    responses((status = 200, description = "The stylesheet", content_type = "text/css", body = String)))]
pub async fn style() -> Response {
    (
        [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "no-cache")],
        STYLE,
    )
        .into_response()
}

/// The value of the session cookie, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The live session whose id is `id`, for a request that presents it as its cookie: of a
/// member of staff in one of `roles`, and for any method but GET and HEAD with its CSRF
/// token. Refusals are recorded.
pub(super) async fn live_session<S>(
    parts: &Parts,
    state: &S,
    id: &str,
    roles: &[StaffRole],
) -> Result<Session, ApiError>
where
    Arc<AuditStore>: FromRef<S>,
{
    let Some(session) = Arc::<AuditStore>::from_ref(state).session(id).await? else {
        refuse(parts, Refusal::InvalidSession(id));
        return Err(ApiError::SessionInvalid);
    };
    if !roles.contains(&session.staff.role) {
        refuse(parts, Refusal::WrongRole(&session.staff));
        return Err(ApiError::Forbidden);
    }
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !presented.is_some_and(|token| session.csrf_matches(token)) {
            refuse(parts, Refusal::CsrfMissing(&session.staff));
            return Err(ApiError::CsrfTokenInvalid);
        }
    }
    Ok(session)
}

/// The console session of a request, by its cookie (see [`live_session`]).
pub struct ConsoleSession {
    pub id: String,
    pub session: Session,
}

impl<S> FromRequestParts<S> for ConsoleSession
where
    S: Send + Sync,
    Arc<AuditStore>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A browser without a session is simply asked to sign in; nothing to record.
        let id = session_cookie(&parts.headers)
            .ok_or(ApiError::SessionInvalid)?
            .to_string();
        let session = live_session(parts, state, &id, &StaffRole::ALL).await?;
        Ok(Self { id, session })
    }
}

/// Whether the browser reached us over HTTPS (directly, or through a proxy that says so),
/// so the cookie must be `Secure`.
fn over_https(parts: &Parts) -> bool {
    parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

fn cookie(parts: &Parts, value: &str, max_age: i64) -> HeaderValue {
    let secure = if over_https(parts) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .expect("a session id is a valid header value")
}

/// A sign-in: the agent's staff token, sent once.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    #[schema(pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    token: String,
}

/// The signed-in agent, and the CSRF token every request but GET and HEAD must carry as
/// `X-CSRF-Token`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    name: String,
    /// `agent`, `compliance` or `admin`: the page shows the views the role may use.
    #[schema(value_type = String)]
    role: StaffRole,
    csrf_token: String,
    /// RFC 3339 UTC; the cookie lasts as long.
    expires_at: String,
}

fn session_body(name: &str, role: StaffRole, csrf_token: &str, expires_at: &str) -> Json<SessionBody> {
    Json(SessionBody {
        name: name.to_string(),
        role,
        csrf_token: csrf_token.to_string(),
        expires_at: expires_at.to_string(),
    })
}

/// What signing out answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedOut {
    signed_out: bool,
}

/// A member of staff signs in to the console: their staff token opens a session, held by the browser
/// as an HttpOnly, SameSite=Strict cookie (`Secure` over HTTPS), valid for 8 hours.
#[utoipa::path(post, path = "/console/session", tag = "console",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; `Set-Cookie: teller_session=...`", body = SessionBody),
        (status = 401, description = "`staff_token_required`, `invalid_staff_token`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_request`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    ))]
pub async fn sign_in(
    State(audit): State<Arc<AuditStore>>,
    parts: Parts,
    AppJson(body): AppJson<SignIn>,
) -> Result<Response, ApiError> {
    let token = body.token.trim();
    if token.is_empty() {
        refuse(&parts, Refusal::NoToken);
        return Err(ApiError::StaffTokenRequired);
    }
    let Some(staff) = audit.authenticate(token).await? else {
        refuse(&parts, Refusal::InvalidToken(token));
        return Err(ApiError::InvalidStaffToken);
    };
    let Some(opened) = audit.open_session(&staff).await? else {
        // Revoked between the check and the insert.
        refuse(&parts, Refusal::InvalidToken(token));
        return Err(ApiError::InvalidStaffToken);
    };
    let body = session_body(
        &opened.staff.name,
        opened.staff.role,
        &opened.csrf_token,
        &opened.expires_at,
    );
    Ok(([(SET_COOKIE, cookie(&parts, &opened.id, SESSION_HOURS * 3600))], body).into_response())
}

/// Who is signed in, and the CSRF token again (for a reloaded page).
#[utoipa::path(get, path = "/console/session", tag = "console",
    security((), ("console_session" = [])),
    responses(
        (status = 200, description = "The session's agent", body = SessionBody),
        (status = 401, description = "`session_invalid`: no session, or it ended or expired", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    ))]
pub async fn current(ConsoleSession { id, session }: ConsoleSession) -> Json<SessionBody> {
    session_body(
        &session.staff.name,
        session.staff.role,
        &csrf_token_for(&id),
        &session.expires_at,
    )
}

/// Signs out: the session ends (its row's `ended_at` is set) and the cookie is cleared.
#[utoipa::path(delete, path = "/console/session", tag = "console",
    params(("X-CSRF-Token" = Option<String>, Header, pattern = r"^[\x20-\x7E]*$", description = "The session's CSRF token")),
    security((), ("console_session" = [])),
    responses(
        (status = 200, description = "Signed out; the cookie is cleared", body = SignedOut),
        (status = 401, description = "`session_invalid`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`, `forbidden`", body = ErrorBody),
        (status = 503, description = "`audit_unavailable`", body = ErrorBody),
    ))]
pub async fn sign_out(
    State(audit): State<Arc<AuditStore>>,
    parts: Parts,
    ConsoleSession { id, session }: ConsoleSession,
) -> Result<Response, ApiError> {
    audit.end_session(&id, &session.staff).await?;
    Ok((
        [(SET_COOKIE, cookie(&parts, "", 0))],
        Json(SignedOut { signed_out: true }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::extract::Agent;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use tower::ServiceExt;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        assert_eq!(session_cookie(&headers), None);
        headers.insert("cookie", "a=1; teller_session=abc; b=2".parse().unwrap());
        assert_eq!(session_cookie(&headers), Some("abc"));
        headers.insert("cookie", "teller_sessionx=abc; teller_session=".parse().unwrap());
        assert_eq!(session_cookie(&headers), None);
    }

    /// The `Agent` extractor on a router of its own, against a real SQLite store.
    #[tokio::test]
    async fn agents_are_accepted_by_bearer_token_or_by_cookie_with_the_csrf_token() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let store = Arc::new(AuditStore::connect(&url).await.unwrap());
        let token = store.create_token("alex", StaffRole::Agent).await.unwrap();
        let officer = store.create_token("olga", StaffRole::Compliance).await.unwrap();
        let staff = store.authenticate(&token).await.unwrap().unwrap();
        let opened = store.open_session(&staff).await.unwrap().unwrap();
        // A path that is not a literal, so the OpenAPI test's scan of the routers skips it.
        let path = "/t";
        let app = Router::new()
            .route(
                path,
                post(|Agent(s): Agent| async move { s.name }).get(|Agent(s): Agent| async move { s.name }),
            )
            .with_state(store.clone());
        let call = |method: &str, headers: Vec<(&str, String)>| {
            let mut request = Request::builder().method(method).uri(path);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let app = app.clone();
            async move {
                app.oneshot(request.body(Body::empty()).unwrap())
                    .await
                    .unwrap()
                    .status()
            }
        };
        let cookie = format!("{COOKIE}={}", opened.id);
        assert_eq!(
            call("POST", vec![("authorization", format!("Bearer {token}"))]).await,
            StatusCode::OK
        );
        assert_eq!(
            call("POST", vec![("authorization", format!("Bearer {officer}"))]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(call("GET", vec![("cookie", cookie.clone())]).await, StatusCode::OK);
        assert_eq!(
            call("POST", vec![("cookie", cookie.clone())]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call("POST", vec![("cookie", cookie.clone()), (CSRF_HEADER, "forged".into())]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call(
                "POST",
                vec![("cookie", cookie.clone()), (CSRF_HEADER, opened.csrf_token.clone())]
            )
            .await,
            StatusCode::OK
        );
        assert_eq!(
            call("GET", vec![("cookie", format!("{COOKIE}=unknown"))]).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(call("GET", vec![]).await, StatusCode::UNAUTHORIZED);
        store.end_session(&opened.id, &staff).await.unwrap();
        assert_eq!(call("GET", vec![("cookie", cookie)]).await, StatusCode::UNAUTHORIZED);
    }
}
