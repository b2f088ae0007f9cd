//! The built-in live page (`GET /`): one HTML document, a stylesheet and a script, embedded in
//! the binary and served with a strict Content-Security-Policy. No CDN, no external asset, no
//! inline script or style: the policy allows only this origin's own script, style and API.
//!
//! The page reads the same JSON API as everyone else (`/api/v1/*`, bearer token), every 2 s.
//! Its token is asked once and kept in the tab's session storage; it never travels in a URL.

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Everything comes from this origin; nothing inline, no framing, no form submission (the
/// sign-in form is handled by the script, so even a broken script cannot send the token
/// anywhere in a URL).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// `GET /`, `GET /assets/app.js`, `GET /assets/app.css`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let headers: [(HeaderName, HeaderValue); 6] = [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        // Revalidated on every load, so an upgraded agent serves its own page.
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (headers, body).into_response()
}

async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

async fn script() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    fn the_page_loads_nothing_from_elsewhere() {
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            for needle in ["http://", "https://", "//cdn", "@import", "url("] {
                // The only absolute URL allowed is the SVG namespace, which is not fetched.
                let hits = text
                    .match_indices(needle)
                    .filter(|(i, _)| !text[*i..].starts_with("http://www.w3.org/2000/svg"))
                    .count();
                assert_eq!(hits, 0, "{needle} in an embedded asset");
            }
        }
    }

    #[rstest]
    fn the_page_has_no_inline_script_or_style() {
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("style="));
        assert!(!INDEX_HTML.contains("<style"));
        let handlers = INDEX_HTML.split(" on").skip(1).filter(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            rest[name.len()..].starts_with('=')
        });
        assert_eq!(handlers.count(), 0, "no inline event handlers");
        assert!(
            !APP_JS.contains("innerHTML"),
            "API data goes in with textContent"
        );
        assert!(!APP_JS.contains("eval("));
    }

    #[rstest]
    fn the_token_is_never_put_in_a_url_or_local_storage() {
        assert!(!APP_JS.contains("localStorage"));
        assert!(!APP_JS.contains("document.cookie"));
        assert!(APP_JS.contains("sessionStorage"));
        assert!(APP_JS.contains("Authorization: 'Bearer '"));
    }
}
