//! The values policy objects are made of, each with the written form people
//! use in documents and API calls: digests, port ranges, peers, endpoint
//! addresses and secrets. Parsing checks the shape of a value; how values fit
//! together is for [`crate::Command::validate`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::model::IdentityName;

/// A SHA-256 digest of an executable, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        value_type = String,
        pattern = "^[0-9a-fA-F]{64}$",
        examples("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    )
)]
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

/// Applications selected by name: a whole zone, one app of it, or one service
/// of an app.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A secret value (webhook URL, token). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        description = "A secret value (webhook URL, token). Replies never show it: they carry `<redacted>` in its place."
    )
)]
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
        let secret = Secret("https://hooks.example/T0/B0/xyz".into());
        assert!(!format!("{secret:?}").contains("xyz"));
    }
}
