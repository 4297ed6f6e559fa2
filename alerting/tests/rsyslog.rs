//! Syslog sinks against a real rsyslogd: plain TCP and TLS (gtls driver)
//! inputs on loopback, everything received written to a file in RFC 5424.
//!
//! Each test starts its own rsyslogd with its own configuration, pid file and
//! work directory in a temporary directory; the system's rsyslog is not
//! touched, and no local-socket or kernel input is loaded.

mod common;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use stockade_alerting::sink::{Sink, SinkError};
use stockade_policy::{Alert, SinkTarget};
use tempfile::TempDir;

use common::{closed_port, ctx, node_down, sink, three};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// How long rsyslogd may take to start, and to write what it received.
const PATIENCE: Duration = Duration::from_secs(10);

/// A CA made for one test, as PEM.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed CA"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for IP 127.0.0.1 and its key, as PEM.
    fn server_cert(&self) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signed server certificate");
        (cert.pem(), key.serialize_pem())
    }
}

/// A running rsyslogd; killed and reaped when dropped, test failure or not.
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A collector: its directory, ports, CA, and the daemon while it runs.
struct Collector {
    dir: TempDir,
    plain: u16,
    tls: u16,
    ca: Ca,
    daemon: Option<Daemon>,
}

impl Collector {
    /// Writes certificates and configuration, then starts rsyslogd.
    fn start() -> Collector {
        assert!(
            Path::new(RSYSLOGD).exists(),
            "{RSYSLOGD} is missing: apt-get install rsyslog rsyslog-gnutls"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca = Ca::new("stockade test collector CA");
        let (cert, key) = ca.server_cert();
        fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write CA");
        fs::write(dir.path().join("cert.pem"), cert).expect("write certificate");
        fs::write(dir.path().join("key.pem"), key).expect("write key");
        fs::create_dir(dir.path().join("work")).expect("work directory");
        let mut collector = Collector {
            plain: closed_port(),
            tls: closed_port(),
            dir,
            ca,
            daemon: None,
        };
        fs::write(collector.path("rsyslog.conf"), collector.config()).expect("write config");
        collector.run();
        collector
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> String {
        let d = self.dir.path().display();
        format!(
            r#"global(
    workDirectory="{d}/work"
    defaultNetstreamDriverCAFile="{d}/ca.pem"
    defaultNetstreamDriverCertFile="{d}/cert.pem"
    defaultNetstreamDriverKeyFile="{d}/key.pem"
)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{plain}")
input(type="imtcp" address="127.0.0.1" port="{tls}"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
action(type="omfile" file="{d}/received.log" template="RSYSLOG_SyslogProtocol23Format")
"#,
            plain = self.plain,
            tls = self.tls,
        )
    }

    /// Starts rsyslogd in the foreground and waits until both ports accept.
    fn run(&mut self) {
        let log = fs::File::create(self.path("rsyslogd.out")).expect("daemon log");
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(self.path("rsyslog.conf"))
            .arg("-i")
            .arg(self.path("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("daemon log"))
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        let mut daemon = Daemon { child };
        let deadline = Instant::now() + PATIENCE;
        for port in [self.plain, self.tls] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                let exited = daemon.child.try_wait().expect("daemon status");
                if exited.is_some() || Instant::now() > deadline {
                    panic!("rsyslogd did not listen on {port}:\n{}", self.daemon_log());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.daemon = Some(daemon);
    }

    fn stop(&mut self) {
        self.daemon = None;
    }

    fn daemon_log(&self) -> String {
        fs::read_to_string(self.path("rsyslogd.out")).unwrap_or_default()
    }

    fn sink(&self, tls: bool, ca_pem: Option<String>) -> Sink {
        let port = if tls { self.tls } else { self.plain };
        Sink::new(&sink(
            if tls { "siem-tls" } else { "siem-tcp" },
            SinkTarget::Syslog {
                address: format!("127.0.0.1:{port}"),
                tls,
                ca_pem,
            },
        ))
        .expect("valid syslog sink")
    }

    /// The received lines once every one of `ids` (or any text) appears in
    /// them.
    fn wait_for(&self, ids: &[&str]) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = fs::read_to_string(self.path("received.log")).unwrap_or_default();
            if ids.iter().all(|id| text.contains(id)) {
                return text.lines().map(str::to_owned).collect();
            }
            if Instant::now() > deadline {
                let missing: Vec<_> = ids.iter().filter(|id| !text.contains(*id)).collect();
                panic!(
                    "missing {missing:?} after {PATIENCE:?}; received:\n{text}\nrsyslogd:\n{}",
                    self.daemon_log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
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
    let collector = Collector::start();
    let plain_alerts = three("tcp", 1);
    let tls_alerts = three("tls", 11);
    let mut plain = collector.sink(false, None);
    let mut tls = collector.sink(true, Some(collector.ca.pem()));
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
    let lines = collector.wait_for(&expected);
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
    let mut collector = Collector::start();
    let mut plain = collector.sink(false, None);
    let mut tls = collector.sink(true, Some(collector.ca.pem()));
    let c = ctx();
    plain
        .send(&[node_down("before-tcp", 1)], &c)
        .await
        .expect("send");
    tls.send(&[node_down("before-tls", 2)], &c)
        .await
        .expect("send");
    collector.wait_for(&["before-tcp-nd-1", "before-tls-nd-2"]);

    collector.stop();
    collector.run();
    // The kept connections died with the old daemon; the sinks notice and
    // connect again instead of writing into a closed socket.
    plain
        .send(&[node_down("after-tcp", 3)], &c)
        .await
        .expect("send after restart");
    tls.send(&[node_down("after-tls", 4)], &c)
        .await
        .expect("send after restart");
    collector.wait_for(&["after-tcp-nd-3", "after-tls-nd-4"]);
}

#[tokio::test]
async fn a_collector_signed_by_another_ca_fails_the_handshake() {
    let collector = Collector::start();
    let stranger = Ca::new("some other CA");
    let mut tls = collector.sink(true, Some(stranger.pem()));
    let err = tls
        .send(&three("stranger", 1), &ctx())
        .await
        .expect_err("the collector's certificate is not trusted");
    assert!(matches!(err, SinkError::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("tls://127.0.0.1:{}", collector.tls)),
        "{text}"
    );
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    println!("{text}");

    // Without a CA the web roots are used, which do not know the test CA.
    let mut web_roots = collector.sink(true, None);
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
