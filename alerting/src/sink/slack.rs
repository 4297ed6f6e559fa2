//! Slack incoming webhooks: one Block Kit message per alert, or one digest
//! message for a burst.
//!
//! A message has a `header` with the kind's title, a `section` with the
//! summary, `section`s of two-column fields (App, Zone, Node, Binary, Flow,
//! Rule, Count, Class, First/Last seen — those that apply) and a `context`
//! line with the id, seq and cluster; the top-level `text` is the one-line
//! fallback notifications show.

use serde_json::{json, Value};
use stockade_policy::{Alert, Secret, Severity};

use super::describe::{self, cut, one_line};
use super::digest::Digest;
use super::http::Http;
use super::{Context, SinkError};

/// Slack refuses more than 10 fields in one section.
const MAX_FIELDS: usize = 10;
/// Slack refuses a field longer than 2000 characters.
const MAX_FIELD: usize = 1900;
/// Slack refuses section text longer than 3000 characters.
const MAX_TEXT: usize = 2900;
/// Slack refuses header text longer than 150 characters.
const MAX_HEADER: usize = 150;
/// How many alerts a digest shows one by one.
const DIGEST_DETAILED: usize = 10;

/// A Slack incoming webhook.
pub(crate) struct Slack {
    http: Http,
}

impl Slack {
    /// The sink `name` posting to `webhook_url` (a secret: errors show only
    /// its host).
    pub(crate) fn new(name: &str, webhook_url: &Secret) -> Result<Slack, SinkError> {
        Ok(Slack {
            http: Http::new(name, &webhook_url.0, "target.webhook_url", true, None)?,
        })
    }

    /// Posts one message per alert, in order, stopping at the first refusal.
    pub(crate) async fn send(&mut self, alerts: &[Alert], ctx: &Context) -> Result<(), SinkError> {
        for alert in alerts {
            self.post(&message(alert, ctx)).await?;
        }
        Ok(())
    }

    /// Posts one message standing for all of `alerts`.
    pub(crate) async fn send_digest(
        &mut self,
        alerts: &[Alert],
        ctx: &Context,
    ) -> Result<(), SinkError> {
        self.post(&digest_message(&Digest::new(alerts), ctx)).await
    }

    async fn post(&self, message: &Value) -> Result<(), SinkError> {
        let body = serde_json::to_vec(message)
            .map_err(|e| self.http.origin().config("target", e.to_string()))?;
        self.http.post("application/json", body).await.map(drop)
    }
}

/// Text with the three characters Slack's markup reserves escaped.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(text, MAX_HEADER), "emoji": true},
    })
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, MAX_TEXT)}})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, MAX_TEXT)}]})
}

/// The field sections: `*Name*` over the value, ten to a section.
fn fields(fields: &[(&str, String)]) -> Vec<Value> {
    fields
        .chunks(MAX_FIELDS)
        .map(|chunk| {
            let items: Vec<Value> = chunk
                .iter()
                .map(|(name, value)| {
                    let text = format!("*{name}*\n{}", escape(value));
                    json!({"type": "mrkdwn", "text": cut(&text, MAX_FIELD)})
                })
                .collect();
            json!({"type": "section", "fields": items})
        })
        .collect()
}

/// The message for one alert.
pub(crate) fn message(alert: &Alert, ctx: &Context) -> Value {
    let mut facts: Vec<(&str, String)> = Vec::new();
    if let Some(app) = describe::app(alert) {
        facts.push(("App", app));
    }
    if let Some(zone) = describe::zone(alert) {
        facts.push(("Zone", zone));
    }
    facts.push(("Node", describe::node(alert, ctx)));
    if let Some(sink) = &alert.sink {
        facts.push(("Sink", sink.clone()));
    }
    if let Some(binary) = alert.workload.as_ref().and_then(describe::binary) {
        facts.push(("Binary", binary));
    }
    if let Some(flow) = &alert.flow {
        facts.push(("Flow", describe::flow(flow)));
        facts.push(("Rule", describe::rule(flow)));
    }
    if let Some(change) = &alert.change {
        facts.push((
            "Token",
            format!("{} ({})", change.author.token_name, change.author.role),
        ));
        if let Some(address) = change.address {
            facts.push(("From", address.to_string()));
        }
        facts.push(("Change", change.kind.clone()));
        facts.push(("Policy version", change.version.to_string()));
    }
    facts.push(("Count", alert.count.to_string()));
    facts.push(("Class", alert.class.as_str().replace('_', " ")));
    let time = |ms| describe::timestamp(ms).unwrap_or_else(|| ms.to_string());
    facts.push(("First seen", time(alert.first_seen_ms)));
    facts.push(("Last seen", time(alert.last_seen_ms)));

    let mut blocks = vec![header(alert.kind.title())];
    if !alert.summary.trim().is_empty() {
        blocks.push(section(&escape(&alert.summary)));
    }
    blocks.extend(fields(&facts));
    blocks.push(context(&escape(&format!(
        "id {} · seq {} · {} · cluster {}",
        alert.id, alert.seq, alert.kind, ctx.cluster
    ))));
    let where_ = describe::app(alert).unwrap_or_else(|| describe::node(alert, ctx));
    let text = format!(
        "[{}] {}: {} ({where_}, cluster {})",
        severity(alert),
        alert.kind.title(),
        one_line(&alert.summary),
        ctx.cluster
    );
    json!({"text": escape(&cut(&text, MAX_TEXT)), "blocks": blocks})
}

/// The alert's severity as the fallback text writes it.
fn severity(alert: &Alert) -> &'static str {
    match alert.severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// The message standing for a burst: counts by kind and app, the first
/// [`DIGEST_DETAILED`] alerts, and the ids (as many as a section holds, the
/// rest as a seq range).
pub(crate) fn digest_message(digest: &Digest<'_>, ctx: &Context) -> Value {
    let bullets = |lines: Vec<String>| {
        lines
            .iter()
            .map(|l| format!("• {}", escape(l)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let apps: Vec<String> = digest
        .apps_by_count()
        .iter()
        .map(|(app, n)| format!("{app}: {n}"))
        .collect();
    let mut blocks = vec![
        header(&digest.title()),
        section(&format!("*By kind*\n{}", bullets(digest.kind_lines()))),
        section(&format!("*By app*\n{}", bullets(apps))),
        json!({"type": "divider"}),
    ];
    for alert in digest.alerts.iter().take(DIGEST_DETAILED) {
        let mut line = vec![
            format!("*{}*", alert.kind.title()),
            severity(alert).to_owned(),
        ];
        line.extend(describe::app(alert));
        line.push(describe::node(alert, ctx));
        if let Some(flow) = &alert.flow {
            line.push(describe::flow(flow));
        }
        blocks.push(section(&format!(
            "{}\n{}\n`{}` seq {} · {}×",
            escape(&line.join(" · ")),
            escape(&one_line(&alert.summary)),
            escape(&alert.id.0),
            alert.seq,
            alert.count
        )));
    }
    let shown = digest.alerts.len().min(DIGEST_DETAILED);
    if digest.alerts.len() > shown {
        blocks.push(context(&format!(
            "{} more not shown one by one; all ids below",
            digest.alerts.len() - shown
        )));
    }
    // Room for the heading and for escaping a few characters.
    let ids = digest.ids(MAX_TEXT - 100, ", ");
    blocks.push(section(&format!("*Alert ids*\n{}", escape(&ids.text))));
    let time = |ms| describe::timestamp(ms).unwrap_or_else(|| ms.to_string());
    blocks.push(context(&escape(&format!(
        "seq {}..{} · first {} · last {} · cluster {}",
        digest.seqs.0,
        digest.seqs.1,
        time(digest.seen_ms.0),
        time(digest.seen_ms.1),
        ctx.cluster
    ))));
    let text = format!(
        "{} in {}: {}",
        digest.title(),
        ctx.cluster,
        digest.summary()
    );
    json!({"text": escape(&cut(&text, MAX_TEXT)), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::fixtures::{ctx, flow_alert, node_alert};

    fn field_names(message: &Value) -> Vec<String> {
        message["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|b| b["fields"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| {
                let text = f["text"].as_str()?;
                Some(text.split('\n').next()?.trim_matches('*').to_owned())
            })
            .collect()
    }

    #[test]
    fn a_flow_alert_has_header_fields_and_context() {
        let m = message(&flow_alert(42), &ctx());
        let blocks = m["blocks"].as_array().expect("blocks");
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "Flow blocked by policy");
        assert_eq!(
            field_names(&m),
            [
                "App",
                "Zone",
                "Node",
                "Binary",
                "Flow",
                "Rule",
                "Count",
                "Class",
                "First seen",
                "Last seen"
            ]
        );
        let all = m.to_string();
        assert!(all.contains(
            "*Flow*\\n10.0.1.5:40112 (prod/web/frontend) → 10.0.2.9:5432 (pci/billing/db) TCP"
        ));
        assert!(all.contains("*Binary*\\n/opt/web/bin/frontend (pid 4242, sha256 3f2a9c1b0d4e)"));
        assert!(all.contains("*Rule*\\nrule 17 (at egress)"));
        let last = blocks.last().expect("a context block");
        assert_eq!(last["type"], "context");
        assert_eq!(
            last["elements"][0]["text"],
            "id 01HZFLOW000042 · seq 42 · policy_violation · cluster prod-eu"
        );
        let text = m["text"].as_str().expect("fallback text");
        assert!(!text.contains('\n'));
        assert!(text.starts_with("[critical] Flow blocked by policy: prod/web/frontend tried"));
    }

    #[test]
    fn node_alerts_have_no_flow_fields() {
        let m = message(&node_alert(3), &ctx());
        assert_eq!(
            field_names(&m),
            ["Node", "Count", "Class", "First seen", "Last seen"]
        );
        assert!(m.to_string().contains("*Node*\\nedge-2"));
    }

    #[test]
    fn markup_is_escaped() {
        let mut alert = node_alert(1);
        alert.summary = "<!channel> & friends".into();
        let m = message(&alert, &ctx());
        assert_eq!(
            m["blocks"][1]["text"]["text"],
            "&lt;!channel&gt; &amp; friends"
        );
    }

    #[test]
    fn a_digest_lists_ten_and_counts_all() {
        let alerts: Vec<Alert> = (1..=30)
            .map(|i| {
                if i % 3 == 0 {
                    node_alert(i)
                } else {
                    flow_alert(i)
                }
            })
            .collect();
        let m = digest_message(&Digest::new(&alerts), &ctx());
        let blocks = m["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= 50);
        assert_eq!(
            blocks[0]["text"]["text"],
            "Alert digest: 30 alerts (rate limit reached)"
        );
        let all = m.to_string();
        assert!(all.contains("Flow blocked by policy: 20 alerts, 240 occurrences"));
        assert!(all.contains("• pci/billing: 20"));
        assert!(all.contains("20 more not shown one by one"));
        for alert in &alerts {
            assert!(all.contains(&alert.id.0), "{} missing", alert.id);
        }
        let big: Vec<Alert> = (1..=1000).map(node_alert).collect();
        let m = digest_message(&Digest::new(&big), &ctx());
        let ids = m["blocks"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b.to_string().contains("Alert ids")))
            .expect("an ids section");
        let text = ids["text"]["text"].as_str().expect("text");
        assert!(
            text.chars().count() <= 3000 && text.contains(" more: seq "),
            "{text}"
        );
    }
}
