//! Talking to the nodes' admin API from inside the lab: a thread that
//! enters a host's network namespace runs a single-threaded tokio runtime,
//! and [`Api`] sends JSON requests over one keep-alive connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use serde_json::Value;
use stockade_chaos::netlab::Lab;
use tokio::runtime::Runtime;

use crate::client::Connection;
use crate::interrupt::Interrupt;
use crate::netns;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `work` on a thread inside host `host`'s network namespace, with a
/// single-threaded runtime of its own; the caller's thread stays where it
/// is.
pub fn in_host<T: Send>(
    lab: &Lab,
    host: usize,
    work: impl FnOnce(&Runtime) -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                netns::enter(lab, host)?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("building a runtime")?;
                work(&runtime)
            })
            .join()
            .map_err(|_| anyhow!("the thread in host {host}'s namespace panicked"))?
    })
}

/// One node's admin API, with the admin token.
pub struct Api {
    addr: SocketAddr,
    token: String,
    connection: Option<Connection>,
}

impl Api {
    /// The API at `addr`; connects on the first request.
    pub fn new(addr: SocketAddr, token: &str) -> Api {
        Api {
            addr,
            token: token.to_owned(),
            connection: None,
        }
    }

    /// Sends one request and returns the status and the body as JSON
    /// (`Null` when it is not JSON). A broken connection is reopened on the
    /// next call.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.addr.to_string())
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
            .context("building a request")?;
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(Connection::open(self.addr).await?),
        };
        let reply = match tokio::time::timeout(TIMEOUT, connection.send(request)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                self.connection = None;
                return Err(e).with_context(|| format!("{method} {path}"));
            }
            Err(_) => {
                self.connection = None;
                bail!("{method} {path}: no reply within {TIMEOUT:?}");
            }
        };
        let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        Ok((reply.status.as_u16(), json))
    }

    /// A write that must succeed: the reply's JSON, or an error with it.
    pub async fn write(&mut self, method: Method, path: &str, body: &str) -> anyhow::Result<Value> {
        let (status, json) = self.call(method.clone(), path, Some(body)).await?;
        if status != 200 {
            bail!("{method} {path} {body}: {status} {json}");
        }
        Ok(json)
    }

    /// `GET /v1/status`.
    pub async fn status(&mut self) -> anyhow::Result<Value> {
        let (status, json) = self.call(Method::GET, "/v1/status", None).await?;
        if status != 200 {
            bail!("GET /v1/status: {status} {json}");
        }
        Ok(json)
    }
}

/// The number a write allocated (`"applied": {"identity": 17}`).
pub fn allocated(reply: &Value, kind: &str) -> anyhow::Result<u32> {
    reply["applied"][kind]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .with_context(|| format!("no {kind} number in {reply}"))
}

/// The applied index a status reports, and the index its dataplane reached.
pub fn indexes(status: &Value) -> (u64, u64) {
    (
        status["applied_index"].as_u64().unwrap_or(0),
        status["dataplane"]["index"].as_u64().unwrap_or(0),
    )
}

/// Waits until the dataplane of every node at `addrs` has reached log
/// index `index` (`GET /v1/status` → `dataplane.index`); returns how long
/// that took.
pub async fn wait_for_dataplanes(
    addrs: &[SocketAddr],
    token: &str,
    index: u64,
    timeout: Duration,
    interrupt: &Interrupt,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut apis: Vec<Api> = addrs.iter().map(|a| Api::new(*a, token)).collect();
    loop {
        interrupt.check()?;
        let mut behind = Vec::new();
        for api in &mut apis {
            let reached = match api.status().await {
                Ok(status) => indexes(&status).1,
                Err(_) => 0,
            };
            if reached < index {
                behind.push((api.addr, reached));
            }
        }
        if behind.is_empty() {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("after {timeout:?} these dataplanes are still behind index {index}: {behind:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
