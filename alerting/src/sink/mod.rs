//! The protocols of alert sinks: Slack incoming webhooks, SIEMs over syslog
//! (RFC 5424 carrying CEF, octet-counted on TCP or TLS) and JSON webhooks
//! (plain, Splunk HEC, Elasticsearch bulk).
//!
//! A [`Sink`] is built once from its [`AlertSink`] configuration and then
//! asked to [`send`](Sink::send) alerts in log order, or one
//! [`digest`](Sink::send_digest) standing for a rate-limited burst. Delivery
//! is at-least-once: on any error the caller retries the whole batch, and the
//! receivers can drop repeats by alert id. Every error names the sink and its
//! address but never a secret (a Slack URL is one, as are tokens).

use std::collections::BTreeMap;
use std::time::Duration;

use stockade_policy::{Alert, AlertSink, NodeId, SinkTarget};

mod cef;
mod describe;
mod digest;
mod elastic;
mod error;
#[cfg(test)]
mod fixtures;
mod http;
mod slack;
mod syslog;
mod transport;
mod webhook;

pub use error::SinkError;

/// At most this many alerts go into one webhook request; larger batches are
/// sent as several requests.
pub const MAX_BATCH: usize = 100;

/// How long establishing a connection (TCP, and TLS on top) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long handing one message over to the receiver may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Facts the formatter needs that the alert itself does not carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The cluster's name, for people who receive alerts of several.
    pub cluster: String,
    /// The sending node's name (the syslog HOSTNAME).
    pub hostname: String,
    /// Names of the cluster's nodes, to show instead of their numbers.
    pub node_names: BTreeMap<NodeId, String>,
}

impl Context {
    /// The name of node `id`, or `node <id>` when the context does not know
    /// it (a node removed since the alert was raised).
    pub fn node_name(&self, id: NodeId) -> String {
        self.node_names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("node {id}"))
    }
}

/// A configured alert destination, ready to deliver.
pub struct Sink {
    name: String,
    protocol: Protocol,
}

/// The protocol a sink speaks, with its connection state.
enum Protocol {
    Slack(slack::Slack),
    Syslog(syslog::Syslog),
    Webhook(webhook::Webhook),
}

impl Sink {
    /// Prepares the sink `config` describes: builds its HTTP client or TLS
    /// configuration. Nothing is connected yet; a syslog connection is opened
    /// by the first send and kept open.
    pub fn new(config: &AlertSink) -> Result<Sink, SinkError> {
        let name = config.name.clone();
        let protocol = match &config.target {
            SinkTarget::Slack { webhook_url } => {
                Protocol::Slack(slack::Slack::new(&name, webhook_url)?)
            }
            SinkTarget::Syslog {
                address,
                tls,
                ca_pem,
            } => Protocol::Syslog(syslog::Syslog::new(
                &name,
                address,
                *tls,
                ca_pem.as_deref(),
            )?),
            SinkTarget::Webhook { url, token, format } => {
                Protocol::Webhook(webhook::Webhook::new(&name, url, token.as_ref(), *format)?)
            }
        };
        Ok(Sink { name, protocol })
    }

    /// The sink's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many messages sending `alerts` alerts with [`Sink::send`] costs,
    /// which is what a sink's rate limit counts: Slack and syslog send one
    /// message per alert, a webhook one request per [`MAX_BATCH`] alerts.
    pub fn messages_for(&self, alerts: usize) -> usize {
        match &self.protocol {
            Protocol::Slack(_) | Protocol::Syslog(_) => alerts,
            Protocol::Webhook(_) => alerts.div_ceil(MAX_BATCH),
        }
    }

    /// Delivers every alert, in order. `Ok` only if all were handed over;
    /// after an error some may have been delivered, and the caller sends the
    /// whole batch again.
    pub async fn send(&mut self, alerts: &[Alert], ctx: &Context) -> Result<(), SinkError> {
        if alerts.is_empty() {
            return Ok(());
        }
        match &mut self.protocol {
            Protocol::Slack(s) => s.send(alerts, ctx).await,
            Protocol::Syslog(s) => s.send(alerts, ctx).await,
            Protocol::Webhook(s) => s.send(alerts, ctx).await,
        }
    }

    /// Delivers one message standing for all of `alerts` (a burst beyond the
    /// sink's rate limit): counts by kind and app, the first few in detail,
    /// and the ids of all of them (as many as the transport's message size
    /// allows, the rest as a range of sequence numbers, saying so).
    pub async fn send_digest(&mut self, alerts: &[Alert], ctx: &Context) -> Result<(), SinkError> {
        if alerts.is_empty() {
            return Ok(());
        }
        match &mut self.protocol {
            Protocol::Slack(s) => s.send_digest(alerts, ctx).await,
            Protocol::Syslog(s) => s.send_digest(alerts, ctx).await,
            Protocol::Webhook(s) => s.send_digest(alerts, ctx).await,
        }
    }
}

impl std::fmt::Debug for Sink {
    // Spelled out so that no secret held by the protocol can be printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.protocol {
            Protocol::Slack(_) => "slack",
            Protocol::Syslog(_) => "syslog",
            Protocol::Webhook(_) => "webhook",
        };
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn sinks_can_move_between_threads() {
        assert_send::<Sink>();
        assert_send::<SinkError>();
    }

    fn assert_send_future<F: std::future::Future + Send>(_: F) {}

    #[test]
    fn sending_can_be_spawned() {
        let config = AlertSink {
            name: "siem".into(),
            target: SinkTarget::Syslog {
                address: "127.0.0.1:6514".into(),
                tls: true,
                ca_pem: None,
            },
            min_severity: stockade_policy::Severity::Info,
            zones: vec![],
            apps: vec![],
            classes: vec![],
            max_per_minute: None,
            audit: false,
        };
        let mut sink = Sink::new(&config).expect("a valid sink");
        assert_eq!(sink.name(), "siem");
        assert_eq!(sink.messages_for(250), 250);
        let ctx = Context::default();
        assert_send_future(sink.send(&[], &ctx));
        assert_send_future(sink.send_digest(&[], &ctx));
    }

    #[test]
    fn unknown_nodes_are_named_by_number() {
        let mut ctx = Context::default();
        ctx.node_names.insert(NodeId(1), "edge-1".into());
        assert_eq!(ctx.node_name(NodeId(1)), "edge-1");
        assert_eq!(ctx.node_name(NodeId(7)), "node 7");
    }
}
