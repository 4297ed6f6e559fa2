//! The harness's HTTP client of the nodes' admin APIs, for the calls that
//! run often (the workload, status polls, probes): one connection pool
//! instead of a `curl` per call.
//!
//! Its sockets live in the network namespace of the thread that makes
//! them: the harness runs in a host of the lab (see
//! [`crate::netlab::EnteredNetns`]), which reaches every node's API.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

/// How a call ended.
#[derive(Clone, Debug)]
pub enum Answer {
    /// The node answered with this status and body.
    Replied {
        /// The HTTP status.
        status: u16,
        /// The body as JSON (`Null` when it is not JSON).
        body: Value,
    },
    /// The request never reached the node (connection refused, no route):
    /// it had no effect.
    NotSent(String),
    /// The request may have reached the node but no answer came (a
    /// timeout, a reset): its effect is unknown.
    Lost(String),
}

impl Answer {
    /// The body of a reply with status `status`, if this is one.
    pub fn ok_body(&self, status: u16) -> Option<&Value> {
        match self {
            Answer::Replied { status: s, body } if *s == status => Some(body),
            _ => None,
        }
    }
}

/// A client of every node's admin API.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    token: String,
    urls: BTreeMap<usize, String>,
}

impl ApiClient {
    /// A client of the APIs at `urls` (by host), with `token`, giving up on
    /// a call after `timeout`.
    pub fn new(
        urls: BTreeMap<usize, String>,
        token: String,
        timeout: Duration,
    ) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(4)
            .build()?;
        Ok(ApiClient { http, token, urls })
    }

    /// The hosts it can call.
    pub fn hosts(&self) -> impl Iterator<Item = usize> + '_ {
        self.urls.keys().copied()
    }

    /// One call to host `host`'s API, with a JSON body if any.
    pub async fn call(
        &self,
        host: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let Some(request) = self.request(host, method, path) else {
            return Answer::NotSent(format!("no host {host}"));
        };
        match body {
            Some(body) => Self::send(request.json(body)).await,
            None => Self::send(request).await,
        }
    }

    /// One call to host `host`'s API with a plain-text body (a policy
    /// document).
    pub async fn call_text(
        &self,
        host: usize,
        method: reqwest::Method,
        path: &str,
        body: String,
    ) -> Answer {
        let Some(request) = self.request(host, method, path) else {
            return Answer::NotSent(format!("no host {host}"));
        };
        Self::send(request.header("content-type", "text/plain").body(body)).await
    }

    fn request(
        &self,
        host: usize,
        method: reqwest::Method,
        path: &str,
    ) -> Option<reqwest::RequestBuilder> {
        let base = self.urls.get(&host)?;
        Some(
            self.http
                .request(method, format!("{base}{path}"))
                .bearer_auth(&self.token),
        )
    }

    async fn send(request: reqwest::RequestBuilder) -> Answer {
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(text) => Answer::Replied {
                        status,
                        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    },
                    Err(e) => Answer::Lost(format!("reading the reply: {e}")),
                }
            }
            Err(e) if e.is_connect() && !e.is_timeout() => Answer::NotSent(e.to_string()),
            Err(e) => Answer::Lost(e.to_string()),
        }
    }

    /// `GET /v1/status` of host `host`, when it answers.
    pub async fn status(&self, host: usize) -> Option<Value> {
        self.call(host, reqwest::Method::GET, "/v1/status", None)
            .await
            .ok_body(200)
            .cloned()
    }
}
