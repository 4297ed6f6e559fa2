//! The console's routes: assets with their types and security headers,
//! redirects, and nothing else.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use super::*;

async fn get(path: &str) -> Response {
    routes::<()>()
        .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
        .await
        .expect("the router answers")
}

fn header_of<'a>(response: &'a Response, name: &header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn text(response: Response) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

#[tokio::test]
async fn the_root_and_the_bare_path_lead_to_the_console() {
    for path in ["/", "/console"] {
        let response = get(path).await;
        assert!(response.status().is_redirection(), "{path}");
        assert_eq!(header_of(&response, &header::LOCATION), PATH, "{path}");
    }
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_the_policy() {
    let expected = [
        ("/console/", "text/html"),
        ("/console/index.html", "text/html"),
        ("/console/style.css", "text/css"),
        ("/console/app.js", "text/javascript"),
        ("/console/pages.js", "text/javascript"),
        ("/console/topology.js", "text/javascript"),
        ("/console/baseline.js", "text/javascript"),
        ("/console/favicon.svg", "image/svg+xml"),
    ];
    for (path, content_type) in expected {
        let response = get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            header_of(&response, &header::CONTENT_TYPE).starts_with(content_type),
            "{path}: {:?}",
            response.headers()
        );
        assert_eq!(
            header_of(&response, &header::CONTENT_SECURITY_POLICY),
            CSP,
            "{path}"
        );
        assert_eq!(
            header_of(&response, &header::X_CONTENT_TYPE_OPTIONS),
            "nosniff"
        );
        assert!(!text(response).await.is_empty(), "{path}");
    }
}

#[test]
fn the_policy_allows_only_this_origin() {
    assert!(CSP.contains("default-src 'none'"));
    for directive in CSP.split(';').map(str::trim) {
        let sources: Vec<&str> = directive.split_whitespace().skip(1).collect();
        assert!(
            sources.iter().all(|s| *s == "'self'" || *s == "'none'"),
            "{directive} names another origin"
        );
    }
}

#[tokio::test]
async fn the_page_loads_only_its_own_files() {
    let page = text(get("/console/").await).await;
    for asset in ASSETS.iter().filter(|a| a.name != "index.html") {
        assert!(
            page.contains(&format!("\"{}\"", asset.name)),
            "index.html does not use {}",
            asset.name
        );
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no inline script: {page}");
    assert!(!page.contains("style="), "no inline style: {page}");
}

#[tokio::test]
async fn the_scripts_call_nothing_but_the_api() {
    for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
        let script = std::str::from_utf8(asset.body).expect("UTF-8");
        for call in script.match_indices("fetch(").map(|(i, _)| &script[i..]) {
            assert!(
                call.starts_with("fetch(path"),
                "{}: every fetch goes through the API helper: {}",
                asset.name,
                &call[..call.len().min(60)]
            );
        }
        assert!(!script.contains("innerHTML"), "{}: text only", asset.name);
        // The SVG namespace is a name, not a place the page goes to.
        let rest = script.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !rest.contains("http://") && !rest.contains("https://"),
            "{}: no other origin",
            asset.name
        );
    }
}

#[tokio::test]
async fn unknown_files_are_not_found() {
    for path in [
        "/console/nope.js",
        "/console/..%2Fmain.rs",
        "/console/app.js/x",
    ] {
        let status = get(path).await.status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}
