//! Syslog sinks against a real rsyslogd: plain TCP and TLS (gtls driver)
//! inputs on loopback, everything received written to a file in RFC 5424.
//!
//! Each test starts its own rsyslogd with its own configuration, pid file and
//! work directory in a temporary directory; the system's rsyslog is not
//! touched, and no local-socket or kernel input is loaded.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use stockade_alerting::sink::{Sink, SinkError};
use stockade_chaos::rsyslog::{Collector, Placement, TestCa};
use stockade_policy::{Alert, SinkTarget};

use common::{closed_port, ctx, node_down, sink, three};

/// How long rsyslogd may take to write what it received.
const PATIENCE: Duration = Duration::from_secs(10);

/// A collector on two free loopback ports.
fn start() -> Collector {
    Collector::start(Placement {
        ip: IpAddr::from([127, 0, 0, 1]),
        plain: closed_port(),
        tls: closed_port(),
        netns: None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A syslog sink to the collector's TLS or plain input.
fn syslog_sink(collector: &Collector, tls: bool, ca_pem: Option<String>) -> Sink {
    let address = match tls {
        true => collector.tls_addr(),
        false => collector.plain_addr(),
    };
    Sink::new(&sink(
        if tls { "siem-tls" } else { "siem-tcp" },
        SinkTarget::Syslog {
            address: address.to_string(),
            tls,
            ca_pem,
        },
    ))
    .expect("valid syslog sink")
}

/// The received lines once every one of `texts` appears in them.
fn wait(collector: &Collector, texts: &[&str]) -> Vec<String> {
    collector
        .wait_for(texts, PATIENCE)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The line that carries alert `id` as its own (not in a digest).
fn line_of<'a>(lines: &'a [String], id: &str) -> &'a str {
    let sd = format!("[stockade@32473 id=\"{id}\"");
    lines
        .iter()
        .find(|l| l.contains(&sd))
        .unwrap_or_else(|| panic!("no line for {id} in {lines:#?}"))
}

/// The line is RFC 5424 version 1 with a CEF message naming `id` in cs4.
fn assert_alert_line(line: &str, alert: &Alert) {
    let (pri, rest) = line
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .unwrap_or_else(|| panic!("no PRI in {line}"));
    let pri: u8 = pri.parse().expect("numeric PRI");
    assert_eq!(pri / 8, 4, "facility auth in {line}");
    assert!(rest.starts_with("1 "), "version 1 in {line}");
    let fields: Vec<&str> = rest.splitn(7, ' ').collect();
    assert_eq!(fields[2], "edge-1", "HOSTNAME in {line}");
    assert_eq!(fields[3], "stockade", "APP-NAME in {line}");
    assert_eq!(fields[5], alert.kind.as_str(), "MSGID in {line}");
    let cef = line
        .find("CEF:0|Stockade|Stockade|")
        .map(|at| &line[at..])
        .unwrap_or_else(|| panic!("no CEF in {line}"));
    assert!(
        cef.contains(&format!(" cs4Label=alertId cs4={} ", alert.id)),
        "{cef}"
    );
    assert!(
        cef.contains(&format!(" externalId={} ", alert.seq)),
        "{cef}"
    );
}

async fn send_both(sink: &mut Sink, alerts: &[Alert]) {
    let c = ctx();
    sink.send(&alerts[..1], &c).await.expect("first batch");
    // A second batch goes over the connection the first one opened.
    sink.send(&alerts[1..], &c).await.expect("second batch");
    sink.send_digest(alerts, &c).await.expect("digest");
}

#[tokio::test]
async fn alerts_and_digests_arrive_over_tcp_and_tls() {
    let collector = start();
    let plain_alerts = three("tcp", 1);
    let tls_alerts = three("tls", 11);
    let mut plain = syslog_sink(&collector, false, None);
    let mut tls = syslog_sink(&collector, true, Some(collector.ca_pem()));
    send_both(&mut plain, &plain_alerts).await;
    send_both(&mut tls, &tls_alerts).await;

    // Every alert on its own line, and each sink's digest listing its ids.
    let digest_ids = |alerts: &[Alert]| {
        let ids: Vec<&str> = alerts.iter().map(|a| a.id.0.as_str()).collect();
        format!("cs4Label=alertIds cs4={} ", ids.join(","))
    };
    let (plain_digest, tls_digest) = (digest_ids(&plain_alerts), digest_ids(&tls_alerts));
    let mut expected: Vec<&str> = plain_alerts
        .iter()
        .chain(&tls_alerts)
        .map(|a| a.id.0.as_str())
        .collect();
    expected.extend([plain_digest.as_str(), tls_digest.as_str()]);
    let lines = wait(&collector, &expected);
    for alert in plain_alerts.iter().chain(&tls_alerts) {
        assert_alert_line(line_of(&lines, &alert.id.0), alert);
    }
    let digests: Vec<&String> = lines.iter().filter(|l| l.contains(" digest [")).collect();
    assert_eq!(digests.len(), 2, "{lines:#?}");
    for (digest, ids) in digests.iter().zip([&plain_digest, &tls_digest]) {
        assert!(digest.contains(ids.as_str()), "{digest}");
        assert!(digest.contains("|digest|Alert digest: 3 alerts (rate limit reached)|9|"));
    }
    println!("{}", line_of(&lines, &tls_alerts[0].id.0));
}

#[tokio::test]
async fn a_restarted_collector_gets_the_next_batch() {
    restart_is_survived().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_collector_gets_the_next_batch_on_a_thread_pool() {
    restart_is_survived().await;
}

async fn restart_is_survived() {
    let mut collector = start();
    let mut plain = syslog_sink(&collector, false, None);
    let mut tls = syslog_sink(&collector, true, Some(collector.ca_pem()));
    let c = ctx();
    plain
        .send(&[node_down("before-tcp", 1)], &c)
        .await
        .expect("send");
    tls.send(&[node_down("before-tls", 2)], &c)
        .await
        .expect("send");
    wait(&collector, &["before-tcp-nd-1", "before-tls-nd-2"]);

    collector.stop();
    collector.run().unwrap_or_else(|e| panic!("{e}"));
    // The kept connections died with the old daemon; the sinks notice and
    // connect again instead of writing into a closed socket.
    plain
        .send(&[node_down("after-tcp", 3)], &c)
        .await
        .expect("send after restart");
    tls.send(&[node_down("after-tls", 4)], &c)
        .await
        .expect("send after restart");
    wait(&collector, &["after-tcp-nd-3", "after-tls-nd-4"]);
}

#[tokio::test]
async fn a_collector_signed_by_another_ca_fails_the_handshake() {
    let collector = start();
    let stranger = TestCa::new("some other CA").expect("a CA");
    let mut tls = syslog_sink(&collector, true, Some(stranger.pem()));
    let err = tls
        .send(&three("stranger", 1), &ctx())
        .await
        .expect_err("the collector's certificate is not trusted");
    assert!(matches!(err, SinkError::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("tls://{}", collector.tls_addr())),
        "{text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    println!("{text}");

    // Without a CA the web roots are used, which do not know the test CA.
    let mut web_roots = syslog_sink(&collector, true, None);
    let err = web_roots
        .send(&three("roots", 1), &ctx())
        .await
        .expect_err("untrusted");
    assert!(matches!(err, SinkError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = closed_port();
    for tls in [false, true] {
        let mut sink = Sink::new(&sink(
            "siem",
            SinkTarget::Syslog {
                address: format!("127.0.0.1:{port}"),
                tls,
                ca_pem: None,
            },
        ))
        .expect("valid sink");
        let err = sink
            .send(&three("closed", 1), &ctx())
            .await
            .expect_err("nobody listens");
        assert!(matches!(err, SinkError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
