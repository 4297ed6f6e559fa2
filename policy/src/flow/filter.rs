//! Which flow records a query asks for.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{FlowPeer, FlowRecord, PeerClass};
use crate::ids::{NodeId, RuleId, RuleRef};
use crate::{Action, Direction, IdentityName, L4Protocol, ParseError};

/// A query over flow records: every criterion given must hold, and a filter
/// with none matches every record.
///
/// It is read from a URL query string (or JSON) so that the API, the CLI and
/// the UI share one vocabulary:
///
/// ```text
/// ?zone=prod&app=billing&protocol=tcp&port=5432&action=deny&rule=17&since_ms=1700000000000
/// ```
///
/// - `node`: the node that recorded the flow.
/// - `zone`, `app`, `service`: one end (either) is in that zone (by its own
///   zone or its identity's) and has an identity of that app and service.
///   Given together they must hold for the same end, so `zone=prod&app=web`
///   means "prod's web", not "anything in prod talking to any web".
/// - `identity`: either end has this identity, written `zone/app/service`
///   (in JSON the object form `{"zone", "app", "service"}` is also read).
/// - `ip`: either end has this address.
/// - `port`: the destination port.
/// - `protocol` (`tcp`, `udp`), `action` (`allow`, `deny`), `direction`
///   (`egress`, `ingress`).
/// - `rule`: what decided: a user rule's number (`17`), or a built-in reason
///   by name (`cluster_traffic`, `zone_isolation`, `zone_default`,
///   `egress_checked`). In JSON the record's own form `{"rule": 17}` is also
///   read.
/// - `since_ms`, `until_ms`: the record's window `[first_ms, last_ms]`
///   overlaps this range (both ends inclusive, ms since the Unix epoch).
/// - `unknown=true`: an end is a workload without identity.
///
/// Unknown parameters are ignored rather than refused, so that an endpoint
/// can read its own parameters (a topology `level`, a `limit`) from the same
/// query string. Serialising a filter writes the query form above.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FilterSpec", into = "FilterSpec")]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct FlowFilter {
    /// The node that recorded the flow.
    #[cfg_attr(feature = "openapi", param(value_type = Option<u64>))]
    pub node: Option<NodeId>,
    /// The zone of one end.
    pub zone: Option<String>,
    /// The app of one end's identity.
    pub app: Option<String>,
    /// The service of one end's identity.
    pub service: Option<String>,
    /// The identity of either end.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    pub identity: Option<IdentityName>,
    /// The address of either end.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    pub ip: Option<IpAddr>,
    /// The destination port.
    pub port: Option<u16>,
    /// The transport protocol.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    pub protocol: Option<L4Protocol>,
    /// What the dataplane did.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    pub action: Option<Action>,
    /// What decided.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    pub rule: Option<RuleRef>,
    /// Which side's hook recorded the flow.
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    pub direction: Option<Direction>,
    /// The window ends at or after this time.
    pub since_ms: Option<u64>,
    /// The window starts at or before this time.
    pub until_ms: Option<u64>,
    /// Only flows with an unidentified workload at one end.
    pub unknown: bool,
}

impl FlowFilter {
    /// Whether `record` is one the query asks for.
    pub fn matches(&self, record: &FlowRecord) -> bool {
        let ends = [&record.src, &record.dst];
        let names_given = self.zone.is_some() || self.app.is_some() || self.service.is_some();
        self.node.is_none_or(|n| record.node == n)
            && (!names_given || ends.iter().any(|end| self.names_match(end)))
            && self
                .identity
                .as_ref()
                .is_none_or(|name| ends.iter().any(|end| end.identity.as_ref() == Some(name)))
            && self.ip.is_none_or(|ip| ends.iter().any(|end| end.ip == ip))
            && self.port.is_none_or(|port| record.dst.port == port)
            && self.protocol.is_none_or(|p| record.protocol == p)
            && self.action.is_none_or(|a| record.action == a)
            && self.rule.is_none_or(|r| record.rule == r)
            && self.direction.is_none_or(|d| record.direction == d)
            && self.since_ms.is_none_or(|since| record.last_ms >= since)
            && self.until_ms.is_none_or(|until| record.first_ms <= until)
            && (!self.unknown || ends.iter().any(|end| end.class == PeerClass::Unknown))
    }

    /// Whether one end satisfies all of `zone`, `app` and `service` given.
    fn names_match(&self, end: &FlowPeer) -> bool {
        let identity = end.identity.as_ref();
        self.zone.as_ref().is_none_or(|zone| {
            end.zone.as_ref() == Some(zone) || identity.is_some_and(|i| i.zone == *zone)
        }) && self
            .app
            .as_ref()
            .is_none_or(|app| identity.is_some_and(|i| i.app == *app))
            && self
                .service
                .as_ref()
                .is_none_or(|service| identity.is_some_and(|i| i.service == *service))
    }
}

/// The written form of a [`FlowFilter`]: plain values a query string can
/// carry, checked when converted.
#[derive(Default, Serialize, Deserialize)]
struct FilterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity: Option<IdentityArg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    protocol: Option<L4Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule: Option<RuleArg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unknown: bool,
}

/// An identity as a query gives it: `zone/app/service`, or (JSON) the object.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum IdentityArg {
    Text(String),
    Name(IdentityName),
}

/// A rule as a query gives it: its number or a built-in name (as text in a
/// query string, as a number in JSON), or (JSON) a record's `{"rule": N}`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RuleArg {
    Text(String),
    Number(u32),
    Ref(RuleRef),
}

const BUILT_IN_RULES: [(&str, RuleRef); 5] = [
    ("cluster_traffic", RuleRef::ClusterTraffic),
    ("zone_isolation", RuleRef::ZoneIsolation),
    ("zone_default", RuleRef::ZoneDefault),
    ("egress_checked", RuleRef::EgressChecked),
    ("tunnel_unavailable", RuleRef::TunnelUnavailable),
];

fn parse_identity(text: &str) -> Result<IdentityName, ParseError> {
    let parts: Vec<&str> = text.split('/').collect();
    match parts[..] {
        [zone, app, service] if parts.iter().all(|p| !p.is_empty()) => Ok(IdentityName {
            zone: zone.into(),
            app: app.into(),
            service: service.into(),
        }),
        _ => Err(ParseError::new(format!(
            "identity `{text}` is not of the form zone/app/service"
        ))),
    }
}

fn rule_from_number(n: u32) -> Result<RuleRef, ParseError> {
    if n >= RuleId::FIRST_ALLOCATED {
        Ok(RuleRef::Rule(RuleId(n)))
    } else {
        Err(ParseError::new(format!(
            "rule `{n}` is not a rule id: user rules are numbered from {}",
            RuleId::FIRST_ALLOCATED
        )))
    }
}

fn parse_rule(text: &str) -> Result<RuleRef, ParseError> {
    if let Some((_, rule)) = BUILT_IN_RULES.iter().find(|(name, _)| *name == text) {
        return Ok(*rule);
    }
    match text.parse::<u32>() {
        Ok(n) => rule_from_number(n),
        Err(_) => Err(ParseError::new(format!(
            "rule `{text}` is neither a rule id nor one of cluster_traffic, \
             zone_isolation, zone_default, egress_checked"
        ))),
    }
}

/// The query form of a rule: its number, or the built-in reason's name.
fn rule_text(rule: RuleRef) -> String {
    match rule {
        RuleRef::Rule(RuleId(n)) => n.to_string(),
        other => BUILT_IN_RULES
            .iter()
            .find(|(_, r)| *r == other)
            .map_or_else(String::new, |(name, _)| (*name).to_string()),
    }
}

impl TryFrom<FilterSpec> for FlowFilter {
    type Error = ParseError;

    fn try_from(spec: FilterSpec) -> Result<Self, Self::Error> {
        let identity = match spec.identity {
            None => None,
            Some(IdentityArg::Name(name)) => Some(name),
            Some(IdentityArg::Text(text)) => Some(parse_identity(&text)?),
        };
        let rule = match spec.rule {
            None => None,
            Some(RuleArg::Ref(rule)) => Some(rule),
            Some(RuleArg::Number(n)) => Some(rule_from_number(n)?),
            Some(RuleArg::Text(text)) => Some(parse_rule(&text)?),
        };
        Ok(FlowFilter {
            node: spec.node,
            zone: spec.zone,
            app: spec.app,
            service: spec.service,
            identity,
            ip: spec.ip,
            port: spec.port,
            protocol: spec.protocol,
            action: spec.action,
            rule,
            direction: spec.direction,
            since_ms: spec.since_ms,
            until_ms: spec.until_ms,
            unknown: spec.unknown,
        })
    }
}

impl From<FlowFilter> for FilterSpec {
    fn from(filter: FlowFilter) -> Self {
        FilterSpec {
            node: filter.node,
            zone: filter.zone,
            app: filter.app,
            service: filter.service,
            identity: filter.identity.map(|i| IdentityArg::Text(i.to_string())),
            ip: filter.ip,
            port: filter.port,
            protocol: filter.protocol,
            action: filter.action,
            rule: filter.rule.map(|r| RuleArg::Text(rule_text(r))),
            direction: filter.direction,
            since_ms: filter.since_ms,
            until_ms: filter.until_ms,
            unknown: filter.unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::sample::sample;

    /// The positions in the sample of the records `filter` matches.
    fn hits(filter: &FlowFilter) -> Vec<usize> {
        let records = sample();
        (0..records.len())
            .filter(|&i| filter.matches(&records[i]))
            .collect()
    }

    #[test]
    fn an_empty_filter_matches_everything() {
        assert_eq!(hits(&FlowFilter::default()).len(), sample().len());
    }

    #[test]
    fn names_must_hold_for_the_same_end() {
        let prod_web = FlowFilter {
            zone: Some("prod".into()),
            app: Some("web".into()),
            ..FlowFilter::default()
        };
        assert_eq!(hits(&prod_web), [0, 5]);
        let dev_db = FlowFilter {
            zone: Some("dev".into()),
            app: Some("db".into()),
            ..FlowFilter::default()
        };
        assert_eq!(hits(&dev_db), Vec::<usize>::new());
        let dev = FlowFilter {
            zone: Some("dev".into()),
            ..FlowFilter::default()
        };
        assert_eq!(hits(&dev), [4]);
    }

    #[test]
    fn an_identityless_end_matches_by_its_own_zone() {
        let prod_unknown = FlowFilter {
            zone: Some("prod".into()),
            unknown: true,
            ..FlowFilter::default()
        };
        assert_eq!(hits(&prod_unknown), [7]);
    }

    #[test]
    fn each_criterion_narrows() {
        let by = |filter: FlowFilter| hits(&filter);
        let f = FlowFilter::default;
        assert_eq!(
            by(FlowFilter {
                node: Some(NodeId(3)),
                ..f()
            }),
            [3]
        );
        assert_eq!(
            by(FlowFilter {
                identity: Some(crate::fixtures::name("prod", "db", "postgres")),
                ..f()
            }),
            [2, 3, 4, 7]
        );
        assert_eq!(
            by(FlowFilter {
                ip: "8.8.8.8".parse().ok(),
                ..f()
            }),
            [5]
        );
        assert_eq!(
            by(FlowFilter {
                port: Some(8080),
                ..f()
            }),
            [0, 1, 6]
        );
        assert_eq!(
            by(FlowFilter {
                protocol: Some(L4Protocol::Udp),
                ..f()
            }),
            [5]
        );
        assert_eq!(
            by(FlowFilter {
                action: Some(Action::Deny),
                ..f()
            }),
            [4, 6, 7]
        );
        assert_eq!(
            by(FlowFilter {
                rule: Some(RuleRef::EgressChecked),
                ..f()
            }),
            [1, 3]
        );
        assert_eq!(
            by(FlowFilter {
                direction: Some(Direction::Ingress),
                ..f()
            }),
            [1, 3, 6]
        );
    }

    #[test]
    fn a_time_range_selects_overlapping_windows() {
        let range = |since_ms, until_ms| FlowFilter {
            since_ms,
            until_ms,
            ..FlowFilter::default()
        };
        // The scan is seen at 5000..6000, everything else at 1000..2000.
        assert_eq!(hits(&range(Some(2_000), Some(5_000))).len(), sample().len());
        assert_eq!(hits(&range(Some(2_001), None)), [6]);
        assert_eq!(hits(&range(None, Some(999))), Vec::<usize>::new());
        assert_eq!(hits(&range(Some(5_500), Some(5_600))), [6]);
    }

    #[test]
    fn rules_and_identities_have_a_text_form() {
        assert_eq!(parse_rule("17"), Ok(RuleRef::Rule(RuleId(17))));
        assert_eq!(parse_rule("zone_default"), Ok(RuleRef::ZoneDefault));
        for rule in [
            RuleRef::Rule(RuleId(99)),
            RuleRef::ClusterTraffic,
            RuleRef::EgressChecked,
        ] {
            assert_eq!(parse_rule(&rule_text(rule)), Ok(rule));
        }
        let err = parse_rule("3").expect_err("a built-in's raw number is not a rule id");
        assert!(err.to_string().contains("`3`"), "{err}");
        let err = parse_rule("rule 17").expect_err("the display form is not the query form");
        assert!(err.to_string().contains("`rule 17`"), "{err}");
        assert!(parse_identity("prod/web").is_err());
        assert!(parse_identity("prod//web").is_err());
        assert_eq!(
            parse_identity("prod/web/front").map(|i| i.to_string()),
            Ok("prod/web/front".to_string())
        );
    }
}
