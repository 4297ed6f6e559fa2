//! A recording HTTP server for the webhook tests: it keeps every request
//! and answers each path the way the real receiver would (Slack, Splunk
//! HEC, Elasticsearch bulk, failures and throttling).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use stockade_alerting::sink::Sink;
use stockade_policy::{Secret, SinkTarget, WebhookFormat};

use crate::common::sink;

/// The token every webhook sink of the tests sends.
pub const TOKEN: &str = "tok-7f3a9e-very-secret";

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The HTTP method.
    pub method: Method,
    /// The path, query left out.
    pub path: String,
    /// Header names (lower case) and values.
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The recording server.
pub struct Server {
    addr: SocketAddr,
    log: Log,
}

impl Server {
    /// Starts serving on a free loopback port.
    pub async fn start() -> Server {
        let log: Log = Arc::default();
        let app = Router::new().fallback(record).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, log }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().expect("log lock").clone()
    }

    /// A Slack sink whose webhook URL is `path` on this server.
    pub fn slack(&self, path: &str) -> Sink {
        Sink::new(&sink(
            "ops-slack",
            SinkTarget::Slack {
                webhook_url: Secret(self.url(path)),
            },
        ))
        .expect("valid Slack sink")
    }

    /// A webhook sink posting `format` to `path`, with [`TOKEN`].
    pub fn webhook(&self, path: &str, format: WebhookFormat) -> Sink {
        Sink::new(&sink(
            "siem-hook",
            SinkTarget::Webhook {
                url: self.url(path),
                token: Some(Secret(TOKEN.into())),
                format,
            },
        ))
        .expect("valid webhook sink")
    }
}

async fn record(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method,
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().expect("log lock").push(seen.clone());
    answer(&seen)
}

/// What each path answers, like the real receivers.
fn answer(req: &Seen) -> Response {
    let auth = req
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    match req.path.as_str() {
        p if p.starts_with("/slack/") => (StatusCode::OK, "ok").into_response(),
        // A receiver that echoes what it got: errors must still hide it.
        p if p.starts_with("/slack-gone/") => {
            (StatusCode::NOT_FOUND, format!("no_service: {p}")).into_response()
        }
        "/json" => (StatusCode::OK, "").into_response(),
        "/hec" => axum::Json(json!({"text": "Success", "code": 0})).into_response(),
        "/es/alerts/_bulk" => bulk_answer(req, |_| 201),
        "/es-repeat/alerts/_bulk" => bulk_answer(req, |i| if i == 0 { 201 } else { 409 }),
        "/es-bad/alerts/_bulk" => bulk_answer(req, |i| if i == 1 { 400 } else { 201 }),
        "/fail" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error handling {auth}"),
        )
            .into_response(),
        "/busy" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "3")],
            "slow down",
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// An Elasticsearch bulk answer with item `i`'s status from `status(i)`.
fn bulk_answer(req: &Seen, status: impl Fn(usize) -> u16) -> Response {
    let items: Vec<Value> = req
        .body
        .lines()
        .step_by(2)
        .enumerate()
        .map(|(i, action)| {
            let id = serde_json::from_str::<Value>(action).expect("action line")["create"]["_id"]
                .clone();
            match status(i) {
                201 => json!({"create": {"_id": id, "status": 201, "result": "created"}}),
                409 => json!({"create": {"_id": id, "status": 409, "error": {
                    "type": "version_conflict_engine_exception",
                    "reason": "document already exists"}}}),
                s => json!({"create": {"_id": id, "status": s, "error": {
                    "type": "mapper_parsing_exception",
                    "reason": "failed to parse field [seq]"}}}),
            }
        })
        .collect();
    let errors = (0..items.len()).any(|i| status(i) != 201);
    axum::Json(json!({"took": 3, "errors": errors, "items": items})).into_response()
}
