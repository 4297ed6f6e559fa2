//! The web console every node serves beside its admin API, on the same
//! port: `GET /` redirects to `/console/`, which is one page of plain
//! JavaScript and CSS built into the binary (no CDN, no framework).
//!
//! The assets carry no data, so they are served without a token. Every
//! piece of data the page shows comes from the token-protected `/v1/...`
//! API, which the page calls with `Authorization: Bearer`; the token is
//! typed into the page or handed over in the URL fragment (`#token=...`,
//! which browsers never send to the server), and kept in the tab's
//! session storage. A Content-Security-Policy keeps the page to its own
//! origin: no other site's scripts, styles, images or connections.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// Where the console lives.
pub const PATH: &str = "/console/";

/// What the console's pages may load: their own scripts, styles and images,
/// and calls to their own origin (the API). Nothing inline, nothing from
/// elsewhere, and no framing by other sites.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// One file of the console.
struct Asset {
    /// Its name under `/console/`.
    name: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

/// Every file of the console, built into the binary.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../assets/console/index.html"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/console/style.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/console/app.js"),
    },
    Asset {
        name: "pages.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/console/pages.js"),
    },
    Asset {
        name: "topology.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/console/topology.js"),
    },
    Asset {
        name: "baseline.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/console/baseline.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../assets/console/favicon.svg"),
    },
];

/// The console's routes, to merge into the API's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(to_console))
        .route("/console", get(to_console))
        .route(PATH, get(|| async { serve("index.html") }))
        .route("/console/{file}", get(file))
}

/// `/` and `/console` lead to the console.
async fn to_console() -> Redirect {
    Redirect::to(PATH)
}

async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

/// The asset `name` with its type and the console's security headers, or
/// a 404.
fn serve(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file in the console").into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A new build of the node serves new assets at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests;
