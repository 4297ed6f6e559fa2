//! A recording HTTP server for the webhook tests: it keeps every request
//! and answers each path the way the real receiver would (Slack, Splunk
//! HEC, Elasticsearch bulk, failures and throttling).

use serde_json::{json, Value};
use stockade_alerting::sink::Sink;
use stockade_chaos::receiver::{Answer, HttpReceiver, Received};
use stockade_policy::{Secret, SinkTarget, WebhookFormat};

use crate::common::sink;

/// The token every webhook sink of the tests sends.
pub const TOKEN: &str = "tok-7f3a9e-very-secret";

/// The recording server.
pub struct Server {
    receiver: HttpReceiver,
}

impl Server {
    /// Starts serving on a free loopback port.
    pub async fn start() -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let receiver = HttpReceiver::answering(listener, answer).expect("start the server");
        Server { receiver }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        self.receiver.url(path)
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Received> {
        self.receiver.received()
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

/// What each path answers, like the real receivers.
fn answer(req: &Received) -> Answer {
    let auth = req
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    match req.path.as_str() {
        p if p.starts_with("/slack/") => text(200, "ok"),
        // A receiver that echoes what it got: errors must still hide it.
        p if p.starts_with("/slack-gone/") => text(404, &format!("no_service: {p}")),
        "/json" => Answer::status(200),
        "/hec" => json_answer(json!({"text": "Success", "code": 0})),
        "/es/alerts/_bulk" => bulk_answer(req, |_| 201),
        "/es-repeat/alerts/_bulk" => bulk_answer(req, |i| if i == 0 { 201 } else { 409 }),
        "/es-bad/alerts/_bulk" => bulk_answer(req, |i| if i == 1 { 400 } else { 201 }),
        "/fail" => text(500, &format!("internal error handling {auth}")),
        "/busy" => Answer {
            headers: vec![("retry-after".into(), "3".into())],
            ..text(429, "slow down")
        },
        _ => Answer::status(404),
    }
}

fn text(status: u16, body: &str) -> Answer {
    Answer {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.into(),
    }
}

fn json_answer(body: Value) -> Answer {
    Answer {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    }
}

/// An Elasticsearch bulk answer with item `i`'s status from `status(i)`.
fn bulk_answer(req: &Received, status: impl Fn(usize) -> u16) -> Answer {
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
    json_answer(json!({"took": 3, "errors": errors, "items": items}))
}
