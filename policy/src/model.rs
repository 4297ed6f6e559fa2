//! The objects a policy is made of: zones, identities, the selectors that give
//! workloads their identity, binary fingerprints, rules, endpoints, nodes and
//! alert sinks.
//!
//! These types are what users write (through the API or a policy document) and
//! what the cluster state stores. Parsing checks the shape of each value (a
//! port range, a hash, a CIDR); [`crate::Command::validate`] checks how values
//! fit together.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::ids::{IdentityId, NodeId, RuleId, ZoneId};

/// How a zone treats a flow no rule decides.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Allow it and record it, to learn a baseline.
    #[default]
    Learn,
    /// Allow it, and raise an alert.
    Alert,
    /// Deny it, and raise an alert.
    Enforce,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Learn => "learn",
            Mode::Alert => "alert",
            Mode::Enforce => "enforce",
        })
    }
}

/// A group of applications with one mode, isolated from other zones unless a
/// rule names both (for example `prod`, `dev`, `pci`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Number allocated by the cluster state.
    pub id: ZoneId,
    /// Unique name.
    pub name: String,
    /// What happens to flows no rule decides.
    pub mode: Mode,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The name of an identity: `zone/app/service`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityName {
    /// The zone the application belongs to.
    pub zone: String,
    /// The application, e.g. `billing`.
    pub app: String,
    /// The service of the application, e.g. `api` or `db`.
    pub service: String,
}

impl fmt::Display for IdentityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.zone, self.app, self.service)
    }
}

/// An application identity with its number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Number allocated by the cluster state.
    pub id: IdentityId,
    /// Its name.
    pub name: IdentityName,
}

/// A SHA-256 digest of an executable, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(pub [u8; 32]);

impl FromStr for Sha256 {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError(format!("`{s}` is not a SHA-256 digest (64 hex digits)"));
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Sha256(out))
    }
}

impl TryFrom<String> for Sha256 {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Sha256> for String {
    fn from(h: Sha256) -> String {
        h.to_string()
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

/// A value that does not have the shape its field requires.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl ParseError {
    /// An error with this message.
    pub(crate) fn new(message: String) -> Self {
        ParseError(message)
    }
}

/// Facts about a workload that an identity rule tests. Every fact given must
/// hold; a fact the selector leaves out is not tested.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSelector {
    /// SHA-256 of the executable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// Glob on the executable's path, e.g. `/opt/billing/bin/*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_path: Option<String>,
    /// Glob on the cgroup v2 path, e.g. `/system.slice/postgresql*.service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_path: Option<String>,
    /// The user name the workload runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Labels the node must carry (all of them, with these values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_labels: BTreeMap<String, String>,
}

impl WorkloadSelector {
    /// Whether the selector tests nothing at all (and so would match every
    /// workload, which validation refuses).
    pub fn is_empty(&self) -> bool {
        self.sha256.is_none()
            && self.exe_path.is_none()
            && self.cgroup_path.is_none()
            && self.user.is_none()
            && self.node_labels.is_empty()
    }
}

/// A named rule that gives the workloads its selector matches an identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRule {
    /// Unique name; rules are tried in the order of their names.
    pub name: String,
    /// The identity matching workloads get.
    pub identity: IdentityName,
    /// What a workload must look like.
    #[serde(rename = "match")]
    pub selector: WorkloadSelector,
}

/// A binary registered (typically from CI) as belonging to an identity.
///
/// Once an identity has any fingerprint, only its fingerprinted binaries
/// carry it: a modified binary loses it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// SHA-256 of the executable.
    pub sha256: Sha256,
    /// The identity the binary carries.
    pub identity: IdentityName,
    /// Where the binary was seen or built, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// Transport protocol a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
    /// Both TCP and UDP.
    Any,
}

impl Protocol {
    /// The concrete protocols this stands for.
    pub fn concrete(self) -> &'static [L4Protocol] {
        match self {
            Protocol::Tcp => &[L4Protocol::Tcp],
            Protocol::Udp => &[L4Protocol::Udp],
            Protocol::Any => &[L4Protocol::Tcp, L4Protocol::Udp],
        }
    }
}

/// A protocol a packet actually has, with its IP protocol number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum L4Protocol {
    /// IP protocol 6.
    Tcp = 6,
    /// IP protocol 17.
    Udp = 17,
}

/// An inclusive range of ports, written `443` or `8000-8080`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    /// First port of the range.
    pub first: u16,
    /// Last port of the range (inclusive).
    pub last: u16,
}

impl PortRange {
    /// Every port.
    pub const ALL: PortRange = PortRange {
        first: 0,
        last: u16::MAX,
    };

    /// The range holding one port.
    pub fn single(port: u16) -> Self {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// Whether the two ranges share a port.
    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    /// How many ports the range holds.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Always false: a range holds at least one port. Present for clippy's
    /// `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl FromStr for PortRange {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| ParseError(format!("`{p}` in `{s}` is not a port (0-65535)")))
        };
        let range = match s.split_once('-') {
            Some((a, b)) => PortRange {
                first: port(a)?,
                last: port(b)?,
            },
            None => PortRange::single(port(s)?),
        };
        if range.first > range.last {
            return Err(ParseError(format!(
                "port range `{s}` ends before it starts"
            )));
        }
        Ok(range)
    }
}

impl TryFrom<String> for PortRange {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PortRange> for String {
    fn from(r: PortRange) -> String {
        r.to_string()
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// What a rule does with the flows it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let the flow through.
    Allow,
    /// Refuse the flow (the caller gets `EPERM`).
    Deny,
}

/// Applications selected by name: a whole zone, one app of it, or one service
/// of an app.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSelector {
    /// The zone.
    pub zone: String,
    /// The app; every app of the zone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// The service; every service of the app when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

impl AppSelector {
    /// Whether an identity of this name is selected.
    pub fn matches(&self, name: &IdentityName) -> bool {
        self.zone == name.zone
            && self.app.as_ref().is_none_or(|a| *a == name.app)
            && self.service.as_ref().is_none_or(|s| *s == name.service)
    }
}

impl fmt::Display for AppSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let app = self.app.as_deref().unwrap_or("*");
        let service = self.service.as_deref().unwrap_or("*");
        write!(f, "{}/{app}/{service}", self.zone)
    }
}

/// One side of a rule: applications by name, or addresses outside the cluster.
///
/// Written `{ zone = "prod", app = "billing" }` or `{ cidr = "10.0.0.0/8" }`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "PeerSpec", into = "PeerSpec")]
pub enum Peer {
    /// Applications of the cluster.
    App(AppSelector),
    /// Addresses that are not cluster endpoints, by prefix.
    Cidr(IpNet),
}

/// The written form of a [`Peer`]: either the app fields or `cidr`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cidr: Option<String>,
}

impl TryFrom<PeerSpec> for Peer {
    type Error = ParseError;

    fn try_from(spec: PeerSpec) -> Result<Self, Self::Error> {
        match (spec.zone, spec.cidr) {
            (Some(zone), None) => Ok(Peer::App(AppSelector {
                zone,
                app: spec.app,
                service: spec.service,
            })),
            (None, Some(cidr)) if spec.app.is_none() && spec.service.is_none() => {
                cidr.parse().map(Peer::Cidr).map_err(|_| {
                    ParseError(format!("cidr `{cidr}` is not an IP prefix like 10.0.0.0/8"))
                })
            }
            (None, None) => Err(ParseError(
                "a peer needs `zone` (with optional `app`, `service`) or `cidr`".into(),
            )),
            _ => Err(ParseError(
                "a peer is either an app (`zone`, `app`, `service`) or a `cidr`, not both".into(),
            )),
        }
    }
}

impl From<Peer> for PeerSpec {
    fn from(peer: Peer) -> PeerSpec {
        match peer {
            Peer::App(sel) => PeerSpec {
                zone: Some(sel.zone),
                app: sel.app,
                service: sel.service,
                cidr: None,
            },
            Peer::Cidr(net) => PeerSpec {
                cidr: Some(net.to_string()),
                ..PeerSpec::default()
            },
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::App(sel) => sel.fmt(f),
            Peer::Cidr(net) => write!(f, "cidr {net}"),
        }
    }
}

/// What a rule says, without its number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Who opens the connection.
    pub from: Peer,
    /// Who is connected to.
    pub to: Peer,
    /// Which transport protocol.
    pub protocol: Protocol,
    /// Destination ports; every port when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
    /// Allow or deny.
    pub action: Action,
    /// Carry the flow through the Noise tunnel between nodes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypt: bool,
    /// Team that owns the rule.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// Why the rule exists.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl RuleSpec {
    /// The rule's port ranges, with "every port" made explicit.
    pub fn port_ranges(&self) -> Vec<PortRange> {
        if self.ports.is_empty() {
            vec![PortRange::ALL]
        } else {
            self.ports.clone()
        }
    }
}

/// A rule with its number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Number allocated by the cluster state; verdicts carry it.
    pub id: RuleId,
    /// What the rule says.
    pub spec: RuleSpec,
}

/// An address where a workload of the cluster can be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The node the workload runs on.
    pub node: NodeId,
    /// Its IP address.
    pub ip: IpAddr,
    /// The port it listens on; every port of the address when absent (a
    /// container or VM with an address of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Its identity.
    pub identity: IdentityName,
}

/// Where an endpoint is: its address and, for bare processes sharing an
/// address, its port. Written `10.0.0.5`, `10.0.0.5:5432` or `[fd00::5]:5432`,
/// so it can key a map in any serialization format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EndpointKey {
    /// The address.
    pub ip: IpAddr,
    /// The port, if the endpoint owns only one port of the address.
    pub port: Option<u16>,
}

impl fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (ip, None) => write!(f, "{ip}"),
            (ip, Some(port)) => write!(f, "{}", SocketAddr::new(ip, port)),
        }
    }
}

impl FromStr for EndpointKey {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(EndpointKey { ip, port: None });
        }
        s.parse::<SocketAddr>()
            .map(|a| EndpointKey {
                ip: a.ip(),
                port: Some(a.port()),
            })
            .map_err(|_| ParseError::new(format!("`{s}` is neither an address nor address:port")))
    }
}

impl TryFrom<String> for EndpointKey {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EndpointKey> for String {
    fn from(key: EndpointKey) -> String {
        key.to_string()
    }
}

impl Endpoint {
    /// Where the endpoint is.
    pub fn key(&self) -> EndpointKey {
        EndpointKey {
            ip: self.ip,
            port: self.port,
        }
    }
}

/// A node of the cluster as the policy sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Raft node id.
    pub id: NodeId,
    /// Name for people, unique.
    pub name: String,
    /// Advertised address of its control-plane (QUIC) port.
    pub address: SocketAddr,
    /// Labels identity rules can test (`cloud = "aws"`, `region = …`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How serious an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Warning,
    /// Act now.
    Critical,
}

/// A secret value (webhook URL, token). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// What documents and API answers show instead of the secret.
    pub const REDACTED: &'static str = "<redacted>";

    /// Whether this is the redaction marker rather than a real secret.
    pub fn is_redacted(&self) -> bool {
        self.0 == Self::REDACTED
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

/// Where an alert sink delivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkTarget {
    /// A Slack incoming webhook.
    Slack {
        /// The webhook URL (a secret: it is the credential).
        webhook_url: Secret,
    },
    /// A SIEM over syslog (RFC 5424) on TCP, optionally TLS.
    Syslog {
        /// `host:port` of the collector.
        address: String,
        /// Use TLS (RFC 5425).
        #[serde(default)]
        tls: bool,
    },
    /// A generic JSON webhook (Splunk HEC, Elastic, …).
    Webhook {
        /// The URL.
        url: String,
        /// Bearer token, if the receiver needs one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Secret>,
    },
}

impl SinkTarget {
    /// The secrets the target holds.
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            SinkTarget::Slack { webhook_url } => vec![webhook_url],
            SinkTarget::Syslog { .. } => vec![],
            SinkTarget::Webhook { token, .. } => token.iter().collect(),
        }
    }

    /// The secrets the target holds, mutably, so they can be redacted or
    /// restored.
    pub fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        match self {
            SinkTarget::Slack { webhook_url } => vec![webhook_url],
            SinkTarget::Syslog { .. } => vec![],
            SinkTarget::Webhook { token, .. } => token.iter_mut().collect(),
        }
    }
}

/// A configured destination for alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSink {
    /// Unique name.
    pub name: String,
    /// Where it delivers.
    pub target: SinkTarget,
    /// Alerts below this severity are not sent.
    pub min_severity: Severity,
    /// Only alerts of these zones; every zone when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<String>,
    /// Only alerts of these apps (`zone/app`); every app when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_print() {
        assert_eq!("443".parse(), Ok(PortRange::single(443)));
        let r: PortRange = "8000-8080".parse().expect("valid range");
        assert_eq!((r.first, r.last, r.len()), (8000, 8080, 81));
        assert_eq!(r.to_string(), "8000-8080");
        assert!("90-80".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
        assert!("http".parse::<PortRange>().is_err());
    }

    #[test]
    fn sha256_round_trips_as_hex() {
        let hex = "ab".repeat(32);
        let h: Sha256 = hex.parse().expect("valid digest");
        assert_eq!(h.to_string(), hex);
        assert!("abc".parse::<Sha256>().is_err());
        assert!("zz".repeat(32).parse::<Sha256>().is_err());
    }

    #[test]
    fn peers_are_an_app_or_a_cidr_never_both() {
        let app: Peer = toml::from_str::<Wrapper>("p = { zone = 'prod', app = 'db' }")
            .expect("app peer")
            .p;
        assert!(matches!(app, Peer::App(ref s) if s.app.as_deref() == Some("db")));
        let cidr = toml::from_str::<Wrapper>("p = { cidr = '10.0.0.0/8' }")
            .expect("cidr peer")
            .p;
        assert!(matches!(cidr, Peer::Cidr(_)));
        let both = toml::from_str::<Wrapper>("p = { zone = 'prod', cidr = '10.0.0.0/8' }");
        assert!(both.expect_err("both").to_string().contains("not both"));
        let bad = toml::from_str::<Wrapper>("p = { cidr = '10.0.0.0/33' }");
        assert!(bad.expect_err("bad cidr").to_string().contains("cidr"));
    }

    #[derive(Debug, Deserialize)]
    struct Wrapper {
        p: Peer,
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let sink = SinkTarget::Slack {
            webhook_url: Secret("https://hooks.example/T0/B0/xyz".into()),
        };
        assert!(!format!("{sink:?}").contains("xyz"));
    }
}
