//! A real rsyslogd as the test's SIEM: one plain TCP and one TLS (gtls
//! driver) input, everything received written to a file in RFC 5424.
//!
//! Each collector has its own configuration, certificates, pid file and
//! work directory in a temporary directory, and may run inside a test
//! host's network namespace. The system's rsyslog is not touched, and no
//! local-socket or kernel input is loaded.

use std::fs;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::netlab::in_netns;

/// Debian's rsyslogd (packages `rsyslog` and `rsyslog-gnutls`).
pub const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// How long rsyslogd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a collector could not run or did not receive.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// A file, a certificate or the process could not be made.
    #[error("{what}: {reason}")]
    Setup {
        /// What was being done.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// rsyslogd did not listen in time (or exited).
    #[error("rsyslogd did not listen on port {port}; its output:\n{log}")]
    NotListening {
        /// The port.
        port: u16,
        /// What rsyslogd printed.
        log: String,
    },
    /// Not everything expected arrived in time.
    #[error("missing {missing:?} after {after:?}; received:\n{received}\nrsyslogd:\n{log}")]
    Missing {
        /// What did not arrive.
        missing: Vec<String>,
        /// How long the wait was.
        after: Duration,
        /// What did arrive.
        received: String,
        /// What rsyslogd printed.
        log: String,
    },
}

fn setup(what: impl Into<String>) -> impl FnOnce(String) -> CollectorError {
    let what = what.into();
    move |reason| CollectorError::Setup { what, reason }
}

/// A CA made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Result<TestCa, CollectorError> {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| setup("CA parameters")(e.to_string()))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(|e| setup("CA key")(e.to_string()))?;
        let issuer = CertifiedIssuer::self_signed(params, key)
            .map_err(|e| setup("self-signing the CA")(e.to_string()))?;
        Ok(TestCa { issuer })
    }

    /// Its certificate, as PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `ip` and its key, as PEM.
    pub fn server_cert(&self, ip: IpAddr) -> Result<(String, String), CollectorError> {
        let mut params = CertificateParams::new(vec![ip.to_string()])
            .map_err(|e| setup("server parameters")(e.to_string()))?;
        params
            .distinguished_name
            .push(DnType::CommonName, ip.to_string());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(|e| setup("server key")(e.to_string()))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| setup("signing the server certificate")(e.to_string()))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Where a collector listens.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The address both inputs bind.
    pub ip: IpAddr,
    /// The plain TCP port.
    pub plain: u16,
    /// The TLS port.
    pub tls: u16,
    /// The network namespace (`/run/netns/NAME`) to run in; the test's own
    /// when absent.
    pub netns: Option<String>,
}

/// A running rsyslogd; killed and reaped when dropped, test failure or not.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A collector: its directory, placement, CA, and the daemon while it runs.
pub struct Collector {
    dir: TempDir,
    placement: Placement,
    ca: TestCa,
    daemon: Option<Daemon>,
}

impl Collector {
    /// Writes certificates and configuration, then starts rsyslogd.
    pub fn start(placement: Placement) -> Result<Collector, CollectorError> {
        if !std::path::Path::new(RSYSLOGD).exists() {
            return Err(setup("finding rsyslogd")(format!(
                "{RSYSLOGD} is missing: apt-get install rsyslog rsyslog-gnutls"
            )));
        }
        let dir = tempfile::tempdir().map_err(|e| setup("temporary directory")(e.to_string()))?;
        let ca = TestCa::new("stockade test collector CA")?;
        let (cert, key) = ca.server_cert(placement.ip)?;
        let collector = Collector {
            dir,
            placement,
            ca,
            daemon: None,
        };
        for (name, contents) in [
            ("ca.pem", collector.ca.pem()),
            ("cert.pem", cert),
            ("key.pem", key),
            ("rsyslog.conf", collector.config()),
        ] {
            fs::write(collector.path(name), contents)
                .map_err(|e| setup(format!("writing {name}"))(e.to_string()))?;
        }
        fs::create_dir(collector.path("work"))
            .map_err(|e| setup("work directory")(e.to_string()))?;
        let mut collector = collector;
        collector.run()?;
        Ok(collector)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> String {
        let d = self.dir.path().display();
        let Placement { ip, plain, tls, .. } = &self.placement;
        format!(
            r#"global(
    workDirectory="{d}/work"
    defaultNetstreamDriverCAFile="{d}/ca.pem"
    defaultNetstreamDriverCertFile="{d}/cert.pem"
    defaultNetstreamDriverKeyFile="{d}/key.pem"
)
module(load="imtcp")
input(type="imtcp" address="{ip}" port="{plain}")
input(type="imtcp" address="{ip}" port="{tls}"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
action(type="omfile" file="{d}/received.log" template="RSYSLOG_SyslogProtocol23Format")
"#
        )
    }

    /// Starts rsyslogd in the foreground and waits until both ports accept.
    pub fn run(&mut self) -> Result<(), CollectorError> {
        let log = fs::File::create(self.path("rsyslogd.out"))
            .map_err(|e| setup("the daemon's log")(e.to_string()))?;
        let err = log
            .try_clone()
            .map_err(|e| setup("the daemon's log")(e.to_string()))?;
        let mut command = match &self.placement.netns {
            Some(netns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{netns}"))
                    .arg("--")
                    .arg(RSYSLOGD);
                c
            }
            None => Command::new(RSYSLOGD),
        };
        let child = command
            .arg("-n")
            .arg("-f")
            .arg(self.path("rsyslog.conf"))
            .arg("-i")
            .arg(self.path("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| setup("starting rsyslogd")(e.to_string()))?;
        let mut daemon = Daemon(child);
        let deadline = Instant::now() + START_TIMEOUT;
        for port in [self.placement.plain, self.placement.tls] {
            let addr = SocketAddr::new(self.placement.ip, port);
            while !self.accepts(addr) {
                let exited = daemon.0.try_wait().ok().flatten().is_some();
                if exited || Instant::now() > deadline {
                    return Err(CollectorError::NotListening {
                        port,
                        log: self.daemon_log(),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.daemon = Some(daemon);
        Ok(())
    }

    fn accepts(&self, addr: SocketAddr) -> bool {
        let connect = || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).map(drop);
        match &self.placement.netns {
            Some(netns) => in_netns(netns, connect).is_ok(),
            None => connect().is_ok(),
        }
    }

    /// Stops rsyslogd (a collector that is down).
    pub fn stop(&mut self) {
        self.daemon = None;
    }

    /// The CA that signed the collector's certificate, as PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// `IP:PORT` of the plain TCP input.
    pub fn plain_addr(&self) -> SocketAddr {
        SocketAddr::new(self.placement.ip, self.placement.plain)
    }

    /// `IP:PORT` of the TLS input.
    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::new(self.placement.ip, self.placement.tls)
    }

    /// What rsyslogd printed.
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.path("rsyslogd.out")).unwrap_or_default()
    }

    /// Every line received so far.
    pub fn lines(&self) -> Vec<String> {
        fs::read_to_string(self.path("received.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The received lines once each of `texts` appears in them.
    pub fn wait_for(
        &self,
        texts: &[&str],
        timeout: Duration,
    ) -> Result<Vec<String>, CollectorError> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = fs::read_to_string(self.path("received.log")).unwrap_or_default();
            if texts.iter().all(|t| text.contains(t)) {
                return Ok(text.lines().map(str::to_owned).collect());
            }
            if Instant::now() > deadline {
                return Err(CollectorError::Missing {
                    missing: texts
                        .iter()
                        .filter(|t| !text.contains(*t))
                        .map(|t| (*t).to_owned())
                        .collect(),
                    after: timeout,
                    received: text,
                    log: self.daemon_log(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
