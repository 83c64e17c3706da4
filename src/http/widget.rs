//! The customer chat widget's assets, built into the binary: the loader a bank adds to its
//! pages (`/widget.js`, a launcher in a shadow root), the chat itself in a frame from
//! Teller's own origin (`/widget/frame`, its script and style), and `/demo`, a fictional
//! bank's home page with the widget embedded. The frame may be embedded only by Teller
//! itself and `TELLER_WIDGET_ORIGINS` (`frame-ancestors`); nothing inline runs anywhere.

use super::AppState;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The loader, included by the bank's page.
pub const LOADER: &str = include_str!("../../assets/widget/widget.js");
/// The chat frame's page, script and style.
pub const FRAME: &str = include_str!("../../assets/widget/frame.html");
pub const FRAME_SCRIPT: &str = include_str!("../../assets/widget/frame.js");
pub const FRAME_STYLE: &str = include_str!("../../assets/widget/frame.css");
/// The demo bank's page and its style.
pub const DEMO: &str = include_str!("../../assets/widget/demo.html");
pub const DEMO_STYLE: &str = include_str!("../../assets/widget/demo.css");

/// The frame's policy without `frame-ancestors`: its own script, style and API only.
const FRAME_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; form-action 'none'; base-uri 'none'";

/// The demo page's policy: as strict as a bank's page could be, with Teller's script and
/// frame allowed (they are same-origin here).
pub const DEMO_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     frame-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// What a script or stylesheet response carries: it is never a document.
const ASSET_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Who may embed the frame: Teller's own origin and the configured ones.
#[derive(Debug, Clone)]
pub struct WidgetPolicy {
    frame_policy: HeaderValue,
}

impl WidgetPolicy {
    /// `origins` are validated at start-up ([`crate::config::Settings::widget_origins`]).
    pub fn new(origins: &[String]) -> Self {
        let mut ancestors = String::from("'self'");
        for origin in origins {
            ancestors.push(' ');
            ancestors.push_str(origin);
        }
        Self {
            frame_policy: HeaderValue::from_str(&format!("{FRAME_POLICY}; frame-ancestors {ancestors}"))
                .expect("validated origins make a valid header"),
        }
    }

    /// The frame's whole `Content-Security-Policy`.
    pub fn frame_policy(&self) -> &str {
        self.frame_policy.to_str().unwrap_or_default()
    }
}

/// The widget's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(loader))
        .route("/widget/frame", get(frame))
        .route("/widget/frame.js", get(frame_script))
        .route("/widget/frame.css", get(frame_style))
        .route("/demo", get(demo))
        .route("/widget/demo.css", get(demo_style))
}

fn respond(content_type: &'static str, policy: HeaderValue, cache: &'static str, body: &'static str) -> Response {
    let mut response = ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, cache)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static("content-security-policy"), policy);
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn script_response(body: &'static str, cross_origin: bool) -> Response {
    let mut response = respond(
        "text/javascript; charset=utf-8",
        HeaderValue::from_static(ASSET_POLICY),
        "no-cache",
        body,
    );
    if cross_origin {
        // The bank's pages load it from another origin.
        response.headers_mut().insert(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        );
    }
    response
}

/// The loader a bank adds with one `<script src=".../widget.js" async>`: a launcher button
/// in a shadow root and the chat frame, no inline script or style needed on the page.
#[utoipa::path(get, path = "/widget.js", tag = "widget",
    responses((status = 200, description = "The loader script (cross-origin loadable)", content_type = "text/javascript", body = String)))]
pub async fn loader() -> Response {
    script_response(LOADER, true)
}

/// The chat, framable only by Teller and `TELLER_WIDGET_ORIGINS` (`frame-ancestors`).
#[utoipa::path(get, path = "/widget/frame", tag = "widget",
    responses((status = 200, description = "The chat frame's page, under its Content-Security-Policy", content_type = "text/html", body = String)))]
pub async fn frame(State(policy): State<WidgetPolicy>) -> Response {
    respond(
        "text/html; charset=utf-8",
        policy.frame_policy.clone(),
        "no-store",
        FRAME,
    )
}

/// The chat frame's script (an ES module).
#[utoipa::path(get, path = "/widget/frame.js", tag = "widget",
    responses((status = 200, description = "The script", content_type = "text/javascript", body = String)))]
pub async fn frame_script() -> Response {
    script_response(FRAME_SCRIPT, false)
}

/// The chat frame's stylesheet.
#[utoipa::path(get, path = "/widget/frame.css", tag = "widget",
    responses((status = 200, description = "The stylesheet", content_type = "text/css", body = String)))]
pub async fn frame_style() -> Response {
    respond(
        "text/css; charset=utf-8",
        HeaderValue::from_static(ASSET_POLICY),
        "no-cache",
        FRAME_STYLE,
    )
}

/// A fictional bank's home page (Lantern Bank) with the widget embedded.
#[utoipa::path(get, path = "/demo", tag = "widget",
    responses((status = 200, description = "The demo page", content_type = "text/html", body = String)))]
pub async fn demo() -> Response {
    respond(
        "text/html; charset=utf-8",
        HeaderValue::from_static(DEMO_POLICY),
        "no-store",
        DEMO,
    )
}

/// The demo page's stylesheet.
#[utoipa::path(get, path = "/widget/demo.css", tag = "widget",
    responses((status = 200, description = "The stylesheet", content_type = "text/css", body = String)))]
pub async fn demo_style() -> Response {
    respond(
        "text/css; charset=utf-8",
        HeaderValue::from_static(ASSET_POLICY),
        "no-cache",
        DEMO_STYLE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzipped(text: &str) -> usize {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap().len()
    }

    /// The budgets of the issue: loader ≤ 10 KB, frame (page, script, style) ≤ 40 KB, gzipped.
    #[test]
    fn the_assets_fit_their_gzipped_budgets() {
        let loader = gzipped(LOADER);
        let frame = gzipped(FRAME) + gzipped(FRAME_SCRIPT) + gzipped(FRAME_STYLE);
        println!("widget sizes (gzip -9): loader {loader} B, frame {frame} B");
        assert!(loader <= 10 * 1024, "loader {loader} B gzipped");
        assert!(frame <= 40 * 1024, "frame {frame} B gzipped");
    }

    #[test]
    fn no_asset_inserts_html_or_runs_inline_code() {
        for (name, script) in [("widget.js", LOADER), ("frame.js", FRAME_SCRIPT)] {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!script.contains(banned), "{name} uses {banned}");
            }
        }
        for (name, page) in [("frame.html", FRAME), ("demo.html", DEMO)] {
            assert_eq!(
                page.matches("<script").count(),
                page.matches("<script type=\"module\" src=\"/").count()
                    + page.matches("<script src=\"/widget.js\"").count(),
                "{name}: scripts only by URL"
            );
            assert!(
                !page.contains("style=") && !page.contains("<style"),
                "{name}: no inline style"
            );
            assert!(!page.contains(" on") || !page.contains("=\"javascript"), "{name}");
        }
    }

    #[test]
    fn the_frame_may_be_embedded_by_teller_and_the_configured_origins_only() {
        let policy = WidgetPolicy::new(&["https://www.bank.example".into(), "http://127.0.0.1:9".into()]);
        assert!(policy
            .frame_policy()
            .ends_with("frame-ancestors 'self' https://www.bank.example http://127.0.0.1:9"));
        assert!(policy.frame_policy().contains("script-src 'self';"));
        assert!(WidgetPolicy::new(&[])
            .frame_policy()
            .ends_with("frame-ancestors 'self'"));
    }
}
