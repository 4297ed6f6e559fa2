//! Slack and JSON webhook sinks against a real HTTP server on loopback
//! (`stockade_chaos`'s recording receiver) that records every request and
//! answers like the real receivers do.

mod common;

#[path = "common/recorder.rs"]
mod recorder;

use std::time::Duration;

use serde_json::{json, Value};
use stockade_alerting::sink::{Sink, SinkError, MAX_BATCH};
use stockade_policy::{Alert, Secret, SinkTarget, WebhookFormat};

use common::{closed_port, ctx, node_down, policy_violation, sink, three, unknown_binary};
use recorder::{Server, TOKEN};

/// The secret part of the test Slack URL.
const SLACK_SECRET: &str = "T0STOCKADE/B0ALERTS/s3cr3tPathToken";

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The `*Name*` headings of a Slack message's fields.
fn field_names(message: &Value) -> Vec<String> {
    let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    blocks
        .iter()
        .flat_map(|b| b["fields"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| {
            Some(
                f["text"]
                    .as_str()?
                    .lines()
                    .next()?
                    .trim_matches('*')
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn slack_gets_one_block_kit_message_per_alert() {
    let server = Server::start().await;
    let mut slack = server.slack(&format!("/slack/services/{SLACK_SECRET}"));
    let alerts = three("slack", 1);
    assert_eq!(slack.messages_for(alerts.len()), 3);
    slack.send(&alerts, &ctx()).await.expect("Slack accepts");

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|r| r.method == "POST"));
    assert_eq!(seen[0].path, format!("/slack/services/{SLACK_SECRET}"));
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let message = json_of(&seen[0].body);
    let text = message["text"].as_str().expect("fallback text");
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.starts_with("[critical] Flow blocked by policy: "),
        "{text}"
    );
    let blocks = message["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "Flow blocked by policy");
    assert_eq!(
        field_names(&message),
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
    let all = message.to_string();
    for expected in [
        "*App*\\nprod/web/frontend",
        "*Zone*\\nprod",
        "*Node*\\nedge-1",
        "*Binary*\\n/opt/web/bin/frontend (pid 4242, sha256 3f2a9c1b0d4e)",
        "*Flow*\\n10.0.1.5:40112 (prod/web/frontend) → 10.0.2.9:5432 (pci/billing/db) TCP",
        "*Rule*\\nrule 17 (at egress)",
        "*Count*\\n12",
        "*First seen*\\n2024-05-01T12:33:20.000Z",
    ] {
        assert!(all.contains(expected), "{expected} missing from {all}");
    }
    let context = blocks.last().expect("context block");
    assert_eq!(context["type"], "context");
    assert_eq!(
        context["elements"][0]["text"],
        "id slack-pv-1 · seq 1 · policy_violation · cluster prod-eu"
    );

    let binary = json_of(&seen[1].body);
    assert_eq!(field_names(&binary)[..3], ["App", "Zone", "Node"]);
    assert!(binary.to_string().contains("*App*\\nunknown"));
    let node = json_of(&seen[2].body);
    assert_eq!(
        field_names(&node),
        ["Node", "Count", "Class", "First seen", "Last seen"]
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&message).expect("printable JSON")
    );
}

#[tokio::test]
async fn a_slack_digest_is_one_message_with_counts_and_ids() {
    let server = Server::start().await;
    let mut slack = server.slack(&format!("/slack/services/{SLACK_SECRET}"));
    let alerts: Vec<Alert> = (1..=25)
        .map(|i| match i % 3 {
            0 => node_down("burst", i),
            1 => policy_violation("burst", i),
            _ => unknown_binary("burst", i),
        })
        .collect();
    slack
        .send_digest(&alerts, &ctx())
        .await
        .expect("Slack accepts");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let message = json_of(&seen[0].body);
    let all = message.to_string();
    assert_eq!(
        message["blocks"][0]["text"]["text"],
        "Alert digest: 25 alerts (rate limit reached)"
    );
    assert!(
        all.contains("Flow blocked by policy: 9 alerts, 108 occurrences"),
        "{all}"
    );
    assert!(all.contains("Node down: 8 alerts, 8 occurrences"), "{all}");
    assert!(all.contains("• pci/billing: 9"), "{all}");
    assert!(all.contains("15 more not shown one by one"), "{all}");
    for alert in &alerts {
        assert!(all.contains(&alert.id.0), "{} missing", alert.id);
    }
}

#[tokio::test]
async fn json_webhooks_post_chunks_of_100_with_a_bearer_token() {
    let server = Server::start().await;
    let mut hook = server.webhook("/json", WebhookFormat::Json);
    let alerts: Vec<Alert> = (1..=150).map(|i| node_down("json", i)).collect();
    assert_eq!(hook.messages_for(150), 2);
    assert_eq!(hook.messages_for(MAX_BATCH), 1);
    hook.send(&alerts, &ctx()).await.expect("accepted");

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let mut ids = Vec::new();
    for req in &seen {
        assert_eq!(req.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(req.headers["content-type"], "application/json");
        let body = json_of(&req.body);
        assert_eq!(body["cluster"], "prod-eu");
        for alert in body["alerts"].as_array().expect("alerts") {
            let alert: Alert = serde_json::from_value(alert.clone()).expect("an Alert");
            ids.push(alert.id.0);
        }
    }
    let expected: Vec<String> = alerts.iter().map(|a| a.id.0.clone()).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn splunk_hec_gets_concatenated_events() {
    let server = Server::start().await;
    let mut hook = server.webhook("/hec", WebhookFormat::SplunkHec);
    let alerts = three("hec", 1);
    hook.send(&alerts, &ctx()).await.expect("accepted");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["authorization"], format!("Splunk {TOKEN}"));
    let events: Vec<Value> = serde_json::Deserializer::from_str(&seen[0].body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("concatenated JSON objects");
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["time"].as_f64(), Some(1_714_566_896.789));
    assert_eq!(events[0]["host"], "edge-1");
    assert_eq!(events[1]["host"], "edge-2");
    for (event, alert) in events.iter().zip(&alerts) {
        assert_eq!(event["source"], "stockade");
        assert_eq!(event["sourcetype"], "stockade:alert");
        let got: Alert = serde_json::from_value(event["event"].clone()).expect("an Alert");
        assert_eq!(&got, alert);
    }
}

#[tokio::test]
async fn elastic_bulk_is_ndjson_and_existing_documents_count_as_delivered() {
    let server = Server::start().await;
    let alerts = three("es", 1);
    let mut hook = server.webhook("/es/alerts/_bulk", WebhookFormat::ElasticBulk);
    hook.send(&alerts, &ctx()).await.expect("created");
    let seen = server.seen();
    assert_eq!(seen[0].headers["authorization"], format!("ApiKey {TOKEN}"));
    assert_eq!(seen[0].headers["content-type"], "application/x-ndjson");
    assert!(seen[0].body.ends_with('\n'));
    let lines: Vec<&str> = seen[0].body.lines().collect();
    assert_eq!(lines.len(), 6);
    for (pair, alert) in lines.chunks(2).zip(&alerts) {
        assert_eq!(json_of(pair[0]), json!({"create": {"_id": alert.id.0}}));
        let doc: Alert = serde_json::from_str(pair[1]).expect("an Alert document");
        assert_eq!(&doc, alert);
    }

    // A repeat delivery: Elasticsearch answers 409 for the documents it has.
    let mut repeat = server.webhook("/es-repeat/alerts/_bulk", WebhookFormat::ElasticBulk);
    repeat
        .send(&alerts, &ctx())
        .await
        .expect("conflicts are repeats");

    let mut bad = server.webhook("/es-bad/alerts/_bulk", WebhookFormat::ElasticBulk);
    match bad.send(&alerts, &ctx()).await {
        Err(SinkError::Rejected { status, body, .. }) => {
            assert_eq!(status, 400);
            assert!(
                body.contains("create es-ub-2: mapper_parsing_exception"),
                "{body}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn digests_reach_every_webhook_format_as_one_request() {
    let server = Server::start().await;
    let alerts: Vec<Alert> = (1..=30).map(|i| policy_violation("dg", i)).collect();
    for (path, format) in [
        ("/json", WebhookFormat::Json),
        ("/hec", WebhookFormat::SplunkHec),
        ("/es/alerts/_bulk", WebhookFormat::ElasticBulk),
    ] {
        server
            .webhook(path, format)
            .send_digest(&alerts, &ctx())
            .await
            .expect("accepted");
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let json_digest = &json_of(&seen[0].body)["digest"];
    let hec_digest = &json_of(&seen[1].body)["event"];
    let lines: Vec<&str> = seen[2].body.lines().collect();
    assert_eq!(json_of(lines[0]), json!({"create": {"_id": "digest-1-30"}}));
    let es_digest = &json_of(lines[1]);
    for digest in [json_digest, hec_digest, es_digest] {
        assert_eq!(digest["kind"], "digest");
        assert_eq!(digest["alerts"], 30);
        assert_eq!(digest["by_kind"]["policy_violation"]["occurrences"], 360);
        assert_eq!(digest["ids"].as_array().map(Vec::len), Some(30));
        assert_eq!(digest["sample"].as_array().map(Vec::len), Some(10));
    }
}

#[tokio::test]
async fn refusals_are_rejections_that_keep_secrets() {
    let server = Server::start().await;
    let alerts = three("err", 1);

    let mut failing = server.webhook("/fail", WebhookFormat::Json);
    let err = failing.send(&alerts, &ctx()).await.expect_err("500");
    assert!(
        matches!(err, SinkError::Rejected { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(err.retry_after(), None);
    assert!(err.to_string().contains(&server.url("/fail")), "{err}");

    let mut busy = server.webhook("/busy", WebhookFormat::SplunkHec);
    let err = busy.send(&alerts, &ctx()).await.expect_err("429");
    assert!(
        matches!(err, SinkError::Rejected { status: 429, .. }),
        "{err:?}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));

    let mut gone = server.slack("/slack-gone/services/T1/B1/GONESECRET");
    let slack_err = gone.send(&alerts, &ctx()).await.expect_err("404");
    assert!(
        matches!(slack_err, SinkError::Rejected { status: 404, .. }),
        "{slack_err:?}"
    );

    let secret_url = format!("http://127.0.0.1:{}/services/{SLACK_SECRET}", closed_port());
    let mut unreachable = Sink::new(&sink(
        "ops-slack",
        SinkTarget::Slack {
            webhook_url: Secret(secret_url),
        },
    ))
    .expect("valid sink");
    let down_err = unreachable
        .send(&alerts, &ctx())
        .await
        .expect_err("closed port");
    assert!(
        matches!(down_err, SinkError::Unreachable { .. }),
        "{down_err:?}"
    );

    let failing_err = failing.send(&alerts, &ctx()).await.expect_err("500");
    for err in [&failing_err, &slack_err, &down_err] {
        for text in [err.to_string(), format!("{err:?}")] {
            for secret in [TOKEN, "GONESECRET", "s3cr3tPathToken", "T0STOCKADE"] {
                assert!(!text.contains(secret), "{secret} leaked: {text}");
            }
        }
    }
    for err in [&failing_err, &slack_err, &down_err] {
        println!("{err}");
    }
    assert!(
        failing_err.to_string().contains("<redacted>"),
        "{failing_err}"
    );
    assert!(slack_err.to_string().contains("/…"), "{slack_err}");
}
