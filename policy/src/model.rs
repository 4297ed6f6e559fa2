//! The objects a policy is made of: zones, identities, the selectors that give
//! workloads their identity, binary fingerprints, rules, endpoints, nodes and
//! alert sinks.
//!
//! These types are what users write (through the API or a policy document) and
//! what the cluster state stores. The values they are made of, with their
//! written forms, live in [`crate::values`]; [`crate::Command::validate`]
//! checks how it all fits together.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::alert::AlertClass;

use crate::ids::{IdentityId, NodeId, RuleId, ZoneId};
use crate::values::{EndpointKey, Peer, PortRange, Secret, Sha256};

/// How a zone treats a flow no rule decides.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    /// Number allocated by the cluster state.
    pub id: IdentityId,
    /// Its name.
    pub name: IdentityName,
}

/// Facts about a workload that an identity rule tests. Every fact given must
/// hold; a fact the selector leaves out is not tested.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum L4Protocol {
    /// IP protocol 6.
    Tcp = 6,
    /// IP protocol 17.
    Udp = 17,
}

/// What a rule does with the flows it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Action {
    /// Let the flow through.
    Allow,
    /// Refuse the flow (the caller gets `EPERM`).
    Deny,
}

/// What a rule says, without its number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rule {
    /// Number allocated by the cluster state; verdicts carry it.
    pub id: RuleId,
    /// What the rule says.
    pub spec: RuleSpec,
}

/// An address where a workload of the cluster can be reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Endpoint {
    /// The node the workload runs on.
    pub node: NodeId,
    /// Its IP address.
    #[cfg_attr(feature = "openapi", schema(value_type = String, examples("10.0.0.7")))]
    pub ip: IpAddr,
    /// The port it listens on; every port of the address when absent (a
    /// container or VM with an address of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Its identity.
    pub identity: IdentityName,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Warning,
    /// Act now.
    Critical,
}

/// Where an alert sink delivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SinkTarget {
    /// A Slack incoming webhook.
    Slack {
        /// The webhook URL (a secret: it is the credential).
        webhook_url: Secret,
    },
    /// A SIEM over syslog (RFC 5424) on TCP with octet-counting framing
    /// (RFC 6587), optionally TLS (RFC 5425); the message is in CEF.
    Syslog {
        /// `host:port` of the collector.
        address: String,
        /// Use TLS (RFC 5425).
        #[serde(default)]
        tls: bool,
        /// PEM certificate(s) of the CA that signed the collector's
        /// certificate; the public web roots when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_pem: Option<String>,
    },
    /// A generic JSON webhook (Splunk HEC, Elastic, …).
    Webhook {
        /// The URL.
        url: String,
        /// The token the receiver wants, if any; sent in the scheme the
        /// format implies (`Bearer`, `Splunk`, `ApiKey`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Secret>,
        /// The body's shape.
        #[serde(default)]
        format: WebhookFormat,
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

/// The body a JSON webhook receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookFormat {
    /// `{"alerts": [ … ]}`, token as `Authorization: Bearer`.
    #[default]
    Json,
    /// Splunk HTTP Event Collector: one `{"time", "host", "sourcetype",
    /// "event"}` object per alert, token as `Authorization: Splunk`.
    SplunkHec,
    /// Elasticsearch `_bulk`: NDJSON `create` actions with the alert id as
    /// the document id (so repeats are dropped), token as
    /// `Authorization: ApiKey`.
    ElasticBulk,
}

/// A configured destination for alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Only alerts of these frequency classes; every class when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<AlertClass>,
    /// At most this many messages a minute; what arrives faster is sent as
    /// one digest message with a count. Unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_minute: Option<u32>,
    /// Also deliver the audit log: every change made through the admin
    /// API, as a `config_change` alert (info severity), whatever the
    /// filters above say. Other sinks never receive those.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audit: bool,
}
