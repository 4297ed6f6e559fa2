//! Proposals: the narrowest allow rules that cover a zone's baseline, as the
//! operator reviews them before accepting.
//!
//! A learned rule never reaches further than what was seen: it names the
//! exact caller and target identities (or the exact /32 or /128 address),
//! one protocol and the observed ports one by one. Accepting links creates
//! the very [`RuleSpec`]s a proposal shows, because both come from
//! [`learned_rules`].

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde::Serialize;

use super::{EdgeKey, EdgeTarget, LinkDecision};
use crate::compile::RuleVerdicts;
use crate::document::{DocRule, PolicyDocument, Secrets};
use crate::error::ValidationError;
use crate::ids::NodeId;
use crate::state::ClusterState;
use crate::{
    diff, Action, AppSelector, IdentityName, L4Protocol, Peer, PolicyDiff, PortRange, Protocol,
    RuleSpec,
};

/// The owner of the rules accepted from a baseline, so they can be told
/// apart from rules people wrote.
pub const LEARNED_RULE_OWNER: &str = "baseline";

/// The description of the rules accepted from a baseline.
const LEARNED_RULE_DESCRIPTION: &str = "learned: accepted from the observed baseline";

/// One link of a proposed rule: a baseline edge with what was seen of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposedLink {
    /// The edge; pass it back to accept, snooze or deny the link.
    pub key: EdgeKey,
    /// Connections seen on it, cluster-wide.
    pub connections: u64,
    /// When it was first seen (ms since the Unix epoch).
    pub first_ms: u64,
    /// When it was last seen (ms since the Unix epoch).
    pub last_ms: u64,
    /// The nodes that saw it.
    pub nodes: BTreeSet<NodeId>,
    /// Whether it is snoozed and shown only because snoozed links were
    /// asked for (a link seen again after its snooze is not snoozed).
    pub snoozed: bool,
}

/// One rule a proposal suggests: every proposed link of one caller, target
/// and protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposedRule {
    /// The identity that opens the connections.
    pub from: IdentityName,
    /// Where they go.
    pub to: EdgeTarget,
    /// TCP or UDP.
    pub protocol: L4Protocol,
    /// The observed destination ports, ascending.
    pub ports: Vec<u16>,
    /// The links the rule covers, in key order.
    pub links: Vec<ProposedLink>,
    /// The rule accepting every one of `links` creates.
    pub spec: RuleSpec,
}

/// The allow rules a zone's baseline calls for, as a reviewer sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proposal {
    /// The zone.
    pub zone: String,
    /// The rules to add, ordered by caller, target and protocol.
    pub rules: Vec<ProposedRule>,
    /// Baseline edges of the zone the current rules already allow.
    pub covered: Vec<EdgeKey>,
    /// Baseline edges of the zone a deny rule refuses: a person decided
    /// against them, so they are not proposed (and a narrower allow rule
    /// would not win over an equally narrow deny anyway).
    pub refused: Vec<EdgeKey>,
    /// The change to the policy document adding `rules` would make.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub diff: PolicyDiff,
}

/// The proposal for `zone`: the baseline edges where either side is in the
/// zone that no rule decides yet, except denied links and — unless
/// `include_snoozed` — links snoozed and not seen since.
pub fn propose(
    state: &ClusterState,
    zone: &str,
    include_snoozed: bool,
) -> Result<Proposal, ValidationError> {
    if !state.zones.contains_key(zone) {
        return Err(ValidationError::new(
            "zone",
            format!("unknown zone `{zone}`"),
        ));
    }
    let verdicts = RuleVerdicts::of(state);
    let (mut covered, mut refused) = (Vec::new(), Vec::new());
    let mut groups: BTreeMap<Group, Vec<ProposedLink>> = BTreeMap::new();
    for (key, edge) in &state.baseline.edges {
        if !key.touches_zone(zone) {
            continue;
        }
        match rule_verdict(&verdicts, key) {
            Some(Action::Allow) => {
                covered.push(key.clone());
                continue;
            }
            Some(Action::Deny) => {
                refused.push(key.clone());
                continue;
            }
            None => {}
        }
        let snoozed = match state.baseline.decisions.get(key) {
            Some(LinkDecision::Denied { .. }) => continue,
            Some(LinkDecision::Snoozed { at_ms }) => edge.last_ms <= *at_ms,
            None => false,
        };
        if snoozed && !include_snoozed {
            continue;
        }
        groups.entry(group_of(key)).or_default().push(ProposedLink {
            key: key.clone(),
            connections: edge.connections,
            first_ms: edge.first_ms,
            last_ms: edge.last_ms,
            nodes: edge.nodes.clone(),
            snoozed,
        });
    }
    let rules: Vec<ProposedRule> = groups
        .into_iter()
        .map(|((from, to, protocol), links)| {
            let ports: BTreeSet<u16> = links.iter().map(|l| l.key.port).collect();
            let spec = learned_spec(&from, &to, protocol, &ports);
            ProposedRule {
                from,
                to,
                protocol,
                ports: ports.into_iter().collect(),
                links,
                spec,
            }
        })
        .collect();
    let before = PolicyDocument::export(state, Secrets::Redact);
    let mut after = before.clone();
    after
        .rules
        .extend(rules.iter().map(|r| DocRule::from_spec(None, &r.spec)));
    Ok(Proposal {
        zone: zone.to_owned(),
        diff: diff(&before, &after),
        rules,
        covered,
        refused,
    })
}

/// The rules that allow exactly `links`: one per caller, target and
/// protocol, listing the observed ports. Accepting links creates these;
/// proposals show them.
pub(crate) fn learned_rules<'a>(links: impl IntoIterator<Item = &'a EdgeKey>) -> Vec<RuleSpec> {
    let mut groups: BTreeMap<Group, BTreeSet<u16>> = BTreeMap::new();
    for link in links {
        groups.entry(group_of(link)).or_default().insert(link.port);
    }
    groups
        .iter()
        .map(|((from, to, protocol), ports)| learned_spec(from, to, *protocol, ports))
        .collect()
}

/// What links share a learned rule by.
type Group = (IdentityName, EdgeTarget, L4Protocol);

fn group_of(key: &EdgeKey) -> Group {
    (key.from.clone(), key.to.clone(), key.protocol)
}

fn learned_spec(
    from: &IdentityName,
    to: &EdgeTarget,
    protocol: L4Protocol,
    ports: &BTreeSet<u16>,
) -> RuleSpec {
    let exactly = |name: &IdentityName| {
        Peer::App(AppSelector {
            zone: name.zone.clone(),
            app: Some(name.app.clone()),
            service: Some(name.service.clone()),
        })
    };
    RuleSpec {
        from: exactly(from),
        to: match to {
            EdgeTarget::Identity(name) => exactly(name),
            EdgeTarget::Address(ip) => Peer::Cidr(IpNet::from(*ip)),
        },
        protocol: match protocol {
            L4Protocol::Tcp => Protocol::Tcp,
            L4Protocol::Udp => Protocol::Udp,
        },
        ports: ports.iter().copied().map(PortRange::single).collect(),
        action: Action::Allow,
        encrypt: false,
        owner: LEARNED_RULE_OWNER.to_owned(),
        description: LEARNED_RULE_DESCRIPTION.to_owned(),
    }
}

/// What the current rules do with the edge, if any rule decides it.
fn rule_verdict(verdicts: &RuleVerdicts<'_>, key: &EdgeKey) -> Option<Action> {
    let verdict = match &key.to {
        EdgeTarget::Identity(to) => verdicts.toward_identity(&key.from, to, key.protocol, key.port),
        EdgeTarget::Address(ip) => verdicts.toward_address(&key.from, *ip, key.protocol, key.port),
    };
    verdict.map(|v| v.action)
}
