//! JSON webhooks: a plain JSON body, Splunk's HTTP Event Collector, or an
//! Elasticsearch `_bulk` request, one request per [`MAX_BATCH`] alerts.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use stockade_policy::{Alert, Secret, WebhookFormat};

use super::digest::Digest;
use super::http::Http;
use super::{elastic, Context, SinkError, MAX_BATCH};

/// The most ids a digest body lists; beyond them it gives the seq range of
/// the rest (receivers limit bodies to a megabyte or so).
const MAX_DIGEST_IDS: usize = 10_000;

/// How many alerts a digest body carries whole.
const DIGEST_SAMPLE: usize = 10;

/// A JSON webhook.
pub(crate) struct Webhook {
    http: Http,
    format: WebhookFormat,
}

impl Webhook {
    /// The sink `name` posting `format` bodies to `url`, with `token` in the
    /// `Authorization` scheme the format implies.
    pub(crate) fn new(
        name: &str,
        url: &str,
        token: Option<&Secret>,
        format: WebhookFormat,
    ) -> Result<Webhook, SinkError> {
        let scheme = match format {
            WebhookFormat::Json => "Bearer",
            WebhookFormat::SplunkHec => "Splunk",
            WebhookFormat::ElasticBulk => "ApiKey",
        };
        let authorization = token.map(|t| format!("{scheme} {}", t.0));
        Ok(Webhook {
            http: Http::new(name, url, "target.url", false, authorization)?,
            format,
        })
    }

    /// Posts the alerts in chunks of [`MAX_BATCH`], in order, stopping at the
    /// first refusal.
    pub(crate) async fn send(&mut self, alerts: &[Alert], ctx: &Context) -> Result<(), SinkError> {
        for chunk in alerts.chunks(MAX_BATCH) {
            let (content_type, body) = self.body(chunk, ctx)?;
            self.post(content_type, body).await?;
        }
        Ok(())
    }

    /// Posts one body standing for all of `alerts`.
    pub(crate) async fn send_digest(
        &mut self,
        alerts: &[Alert],
        ctx: &Context,
    ) -> Result<(), SinkError> {
        let digest = Digest::new(alerts);
        let doc = digest_doc(&digest, ctx);
        let body = match self.format {
            WebhookFormat::Json => json!({"cluster": ctx.cluster, "digest": doc}).to_string(),
            WebhookFormat::SplunkHec => json!({
                "time": secs(digest.seen_ms.1),
                "host": ctx.hostname,
                "source": "stockade",
                "sourcetype": "stockade:digest",
                "event": doc,
            })
            .to_string(),
            WebhookFormat::ElasticBulk => {
                // The seq span names the digest, so a repeat of it is
                // dropped like a repeated alert.
                let id = format!("digest-{}-{}", digest.seqs.0, digest.seqs.1);
                format!("{}\n{doc}\n", json!({"create": {"_id": id}}))
            }
        };
        self.post(self.content_type(), body.into_bytes()).await
    }

    fn content_type(&self) -> &'static str {
        match self.format {
            WebhookFormat::Json | WebhookFormat::SplunkHec => "application/json",
            WebhookFormat::ElasticBulk => "application/x-ndjson",
        }
    }

    /// The request body for one chunk, with its content type.
    fn body(&self, chunk: &[Alert], ctx: &Context) -> Result<(&'static str, Vec<u8>), SinkError> {
        let body = match self.format {
            WebhookFormat::Json => self.encode(&json_body(chunk, ctx))?,
            WebhookFormat::SplunkHec => {
                let mut out = String::new();
                for alert in chunk {
                    out.push_str(&self.encode(&splunk_event(alert, ctx))?);
                }
                out
            }
            WebhookFormat::ElasticBulk => {
                let mut out = String::new();
                for alert in chunk {
                    out.push_str(&json!({"create": {"_id": alert.id}}).to_string());
                    out.push('\n');
                    out.push_str(&self.encode(alert)?);
                    out.push('\n');
                }
                out
            }
        };
        Ok((self.content_type(), body.into_bytes()))
    }

    /// `value` as JSON text. Alerts always serialise; the error path only
    /// keeps a broken invariant from panicking the forwarder.
    fn encode(&self, value: &impl serde::Serialize) -> Result<String, SinkError> {
        serde_json::to_string(value)
            .map_err(|e| self.http.origin().config("target.format", e.to_string()))
    }

    async fn post(&self, content_type: &str, body: Vec<u8>) -> Result<(), SinkError> {
        let answer = self.http.post(content_type, body).await?;
        if self.format == WebhookFormat::ElasticBulk {
            elastic::check(&answer, self.http.origin())?;
        }
        Ok(())
    }
}

/// `{"cluster": …, "alerts": [ … ]}`.
fn json_body<'a>(chunk: &'a [Alert], ctx: &'a Context) -> impl serde::Serialize + 'a {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        cluster: &'a str,
        alerts: &'a [Alert],
    }
    Body {
        cluster: &ctx.cluster,
        alerts: chunk,
    }
}

/// One HEC event: `time` in seconds with milliseconds as the fraction,
/// `host` the raising node.
fn splunk_event<'a>(alert: &'a Alert, ctx: &Context) -> impl serde::Serialize + 'a {
    #[derive(serde::Serialize)]
    struct Event<'a> {
        time: f64,
        host: String,
        source: &'static str,
        sourcetype: &'static str,
        event: &'a Alert,
    }
    Event {
        time: secs(alert.last_seen_ms),
        host: ctx.node_name(alert.node),
        source: "stockade",
        sourcetype: "stockade:alert",
        event: alert,
    }
}

/// Milliseconds since the epoch as fractional seconds. Exact to the
/// millisecond for the next few hundred thousand years.
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The digest as one JSON document: counts, spans, the first alerts whole,
/// and the ids (the seq range of those past [`MAX_DIGEST_IDS`]).
fn digest_doc(digest: &Digest<'_>, ctx: &Context) -> Value {
    let by_kind: BTreeMap<&str, Value> = digest
        .by_kind
        .iter()
        .map(|(kind, t)| {
            (
                kind.as_str(),
                json!({"alerts": t.alerts, "occurrences": t.occurrences}),
            )
        })
        .collect();
    let ids: Vec<&str> = digest
        .alerts
        .iter()
        .take(MAX_DIGEST_IDS)
        .map(|a| a.id.0.as_str())
        .collect();
    let mut doc = json!({
        "kind": "digest",
        "cluster": ctx.cluster,
        "sender": ctx.hostname,
        "summary": digest.summary(),
        "severity": digest.severity,
        "alerts": digest.alerts.len(),
        "occurrences": digest.occurrences,
        "first_seq": digest.seqs.0,
        "last_seq": digest.seqs.1,
        "first_seen_ms": digest.seen_ms.0,
        "last_seen_ms": digest.seen_ms.1,
        "by_kind": by_kind,
        "by_app": digest.by_app,
        "sample": &digest.alerts[..digest.alerts.len().min(DIGEST_SAMPLE)],
        "ids": ids,
    });
    let rest = &digest.alerts[ids.len()..];
    if let (Some(first), Some(last)) = (rest.first(), rest.last()) {
        doc["ids_omitted"] = json!({
            "count": rest.len(),
            "seq_from": first.seq.min(last.seq),
            "seq_to": first.seq.max(last.seq),
        });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::fixtures::{ctx, flow_alert, node_alert};

    #[test]
    fn digests_count_sample_and_list() {
        let alerts: Vec<Alert> = (1..=12).map(flow_alert).chain([node_alert(13)]).collect();
        let doc = digest_doc(&Digest::new(&alerts), &ctx());
        assert_eq!(doc["kind"], "digest");
        assert_eq!(doc["alerts"], 13);
        assert_eq!(doc["by_kind"]["policy_violation"]["alerts"], 12);
        assert_eq!(doc["by_app"]["pci/billing"], 12);
        assert_eq!(doc["sample"].as_array().map(Vec::len), Some(10));
        assert_eq!(doc["ids"].as_array().map(Vec::len), Some(13));
        assert!(doc.get("ids_omitted").is_none());
        assert_eq!(doc["severity"], "critical");
    }

    #[test]
    fn huge_digests_give_a_seq_range() {
        let alerts: Vec<Alert> = (1..=10_005).map(node_alert).collect();
        let doc = digest_doc(&Digest::new(&alerts), &ctx());
        assert_eq!(doc["ids"].as_array().map(Vec::len), Some(MAX_DIGEST_IDS));
        assert_eq!(
            doc["ids_omitted"],
            json!({"count": 5, "seq_from": 10_001, "seq_to": 10_005})
        );
    }

    #[test]
    fn hec_time_has_milliseconds() {
        let event = serde_json::to_value(splunk_event(&flow_alert(1), &ctx())).expect("json");
        assert_eq!(event["time"].to_string(), "1714566896.789");
        assert_eq!(event["host"], "edge-1");
    }
}
