//! Validation of single commands against the state they would change.
//!
//! Each check names the field at fault. The checks keep the state consistent:
//! every name a rule, identity rule, fingerprint, endpoint or sink uses refers
//! to something that exists, and nothing is removed while it is referred to.

use globset::Glob;

use crate::command::Command;
use crate::error::ValidationError;
use crate::ids::{IdentityId, RuleId, ZoneId};
use crate::model::{
    Action, AlertSink, AppSelector, Endpoint, EndpointKey, Fingerprint, IdentityName, IdentityRule,
    Node, Peer, Protocol, RuleSpec, SinkTarget, WorkloadSelector,
};
use crate::state::ClusterState;

type Result = std::result::Result<(), ValidationError>;

fn fail(field: impl Into<String>, reason: impl Into<String>) -> Result {
    Err(ValidationError::new(field, reason))
}

/// Checks one command (not a batch) against `state`.
pub(crate) fn command(command: &Command, state: &ClusterState) -> Result {
    match command {
        Command::UpsertZone { id, name, .. } => zone(*id, name, state),
        Command::RemoveZone { name } => zone_removal(name, state),
        Command::DefineIdentity { id, name } => identity(*id, name, state),
        Command::RemoveIdentity { name } => identity_removal(name, state),
        Command::UpsertIdentityRule(rule) => identity_rule(rule, state),
        Command::RemoveIdentityRule { name } => match state.identity_rules.contains_key(name) {
            true => Ok(()),
            false => fail("name", format!("no identity rule is named `{name}`")),
        },
        Command::RegisterFingerprint(fingerprint) => self::fingerprint(fingerprint, state),
        Command::RemoveFingerprint { sha256 } => match state.fingerprints.contains_key(sha256) {
            true => Ok(()),
            false => fail(
                "sha256",
                format!("no binary with digest {sha256} is registered"),
            ),
        },
        Command::UpsertRule { id, spec } => rule(*id, spec, state),
        Command::RemoveRule { id } => match state.rules.contains_key(id) {
            true => Ok(()),
            false => fail("id", format!("there is no rule {}", id.0)),
        },
        Command::UpsertEndpoint(endpoint) => self::endpoint(endpoint, state),
        Command::RemoveEndpoint { ip, port } => match state.endpoints.contains_key(&EndpointKey {
            ip: *ip,
            port: *port,
        }) {
            true => Ok(()),
            false => fail(
                "ip",
                format!(
                    "there is no endpoint at {}",
                    EndpointKey {
                        ip: *ip,
                        port: *port
                    }
                ),
            ),
        },
        Command::UpsertNode(node) => self::node(node, state),
        Command::RemoveNode { id } => node_removal(*id, state),
        Command::UpsertSink(sink) => self::sink(sink, state),
        Command::RemoveSink { name } => match state.sinks.contains_key(name) {
            true => Ok(()),
            false => fail("name", format!("no alert sink is named `{name}`")),
        },
        Command::SetSettings(_) => Ok(()),
        Command::Batch(_) => unreachable!("batches are validated by applying them to a copy"),
    }
}

/// Names are short, lower-case and free of separators, so they read well in
/// `zone/app/service`, in alert messages and in metric labels.
fn name(field: &str, value: &str) -> Result {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    if value.is_empty() {
        return fail(field, "must not be empty");
    }
    if value.len() > 63 {
        return fail(field, format!("`{value}` is longer than 63 characters"));
    }
    if !value.chars().all(ok_char) || !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return fail(
            field,
            format!(
                "`{value}` must start with a letter or digit and hold only a-z, 0-9, `-`, `_`, `.`"
            ),
        );
    }
    Ok(())
}

fn zone_exists(field: &str, zone: &str, state: &ClusterState) -> Result {
    match state.zones.contains_key(zone) {
        true => Ok(()),
        false => fail(field, format!("unknown zone `{zone}`")),
    }
}

fn identity_exists(field: &str, identity: &IdentityName, state: &ClusterState) -> Result {
    match state.identity_by_name(identity) {
        Some(_) => Ok(()),
        None => fail(field, format!("unknown identity `{identity}`")),
    }
}

fn zone(id: Option<ZoneId>, zone_name: &str, state: &ClusterState) -> Result {
    name("name", zone_name)?;
    match (state.zones.get(zone_name), id) {
        (Some(existing), Some(id)) if existing.id != id => fail(
            "id",
            format!(
                "zone `{zone_name}` already has id {}, not {}",
                existing.id.0, id.0
            ),
        ),
        (None, Some(id)) if id.0 == 0 => fail("id", "zone id 0 is reserved"),
        (None, Some(id)) => match state.zone_by_id(id) {
            Some(other) => fail(
                "id",
                format!("zone id {} is already used by zone `{}`", id.0, other.name),
            ),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn zone_removal(zone: &str, state: &ClusterState) -> Result {
    zone_exists("name", zone, state)?;
    if let Some(identity) = state.identities.values().find(|i| i.name.zone == zone) {
        return fail(
            "name",
            format!("zone `{zone}` still holds identity `{}`", identity.name),
        );
    }
    let names_zone = |peer: &Peer| matches!(peer, Peer::App(sel) if sel.zone == zone);
    if let Some(rule) = state
        .rules
        .values()
        .find(|r| names_zone(&r.spec.from) || names_zone(&r.spec.to))
    {
        return fail(
            "name",
            format!("rule {} still names zone `{zone}`", rule.id.0),
        );
    }
    if let Some(sink) = state
        .sinks
        .values()
        .find(|s| s.zones.iter().any(|z| z == zone))
    {
        return fail(
            "name",
            format!("alert sink `{}` still routes zone `{zone}`", sink.name),
        );
    }
    Ok(())
}

fn identity(id: Option<IdentityId>, identity: &IdentityName, state: &ClusterState) -> Result {
    name("name.zone", &identity.zone)?;
    name("name.app", &identity.app)?;
    name("name.service", &identity.service)?;
    zone_exists("name.zone", &identity.zone, state)?;
    if let Some(existing) = state.identity_by_name(identity) {
        return fail(
            "name",
            format!(
                "identity `{identity}` is already defined with id {}",
                existing.id.0
            ),
        );
    }
    match id {
        Some(id) if !id.is_allocatable() => fail(
            "id",
            format!(
                "identity id {} is outside the range for user identities ({}..{})",
                id.0,
                IdentityId::FIRST_ALLOCATED,
                IdentityId::FIRST_CIDR
            ),
        ),
        Some(id) => match state.identities.get(&id) {
            Some(other) => fail(
                "id",
                format!("identity id {} is already used by `{}`", id.0, other.name),
            ),
            None => Ok(()),
        },
        None if state.next_identity_id >= IdentityId::FIRST_CIDR => {
            fail("id", "no identity ids are left to allocate")
        }
        None => Ok(()),
    }
}

fn identity_removal(identity: &IdentityName, state: &ClusterState) -> Result {
    identity_exists("name", identity, state)?;
    let still = |what: String| fail("name", format!("{what} still refers to `{identity}`"));
    if let Some(rule) = state
        .identity_rules
        .values()
        .find(|r| r.identity == *identity)
    {
        return still(format!("identity rule `{}`", rule.name));
    }
    if let Some(fp) = state
        .fingerprints
        .values()
        .find(|f| f.identity == *identity)
    {
        return still(format!("fingerprint {}", fp.sha256));
    }
    if let Some(ep) = state.endpoints.values().find(|e| e.identity == *identity) {
        return still(format!("endpoint {}", ep.key()));
    }
    // A rule that names this very service, or the app when this is its last
    // service, would be left naming nothing.
    let app_survives = state
        .identities
        .values()
        .any(|i| i.name.zone == identity.zone && i.name.app == identity.app && i.name != *identity);
    let dangles = |peer: &Peer| match peer {
        Peer::App(AppSelector {
            zone,
            app: Some(app),
            service,
        }) if *zone == identity.zone && *app == identity.app => match service {
            Some(service) => *service == identity.service,
            None => !app_survives,
        },
        _ => false,
    };
    if let Some(rule) = state
        .rules
        .values()
        .find(|r| dangles(&r.spec.from) || dangles(&r.spec.to))
    {
        return still(format!("rule {}", rule.id.0));
    }
    Ok(())
}

fn identity_rule(rule: &IdentityRule, state: &ClusterState) -> Result {
    name("name", &rule.name)?;
    identity_exists("identity", &rule.identity, state)?;
    workload_selector(&rule.selector)
}

fn workload_selector(selector: &WorkloadSelector) -> Result {
    if selector.is_empty() {
        return fail(
            "match",
            "an identity rule must test at least one of sha256, exe_path, cgroup_path, user, node_labels",
        );
    }
    for (field, glob) in [
        ("match.exe_path", &selector.exe_path),
        ("match.cgroup_path", &selector.cgroup_path),
    ] {
        if let Some(glob) = glob {
            if !glob.starts_with('/') {
                return fail(field, format!("`{glob}` must be an absolute path glob"));
            }
            if let Err(e) = Glob::new(glob) {
                return fail(field, format!("`{glob}` is not a valid glob: {}", e.kind()));
            }
        }
    }
    if let Some(user) = &selector.user {
        if user.is_empty() {
            return fail("match.user", "must not be empty");
        }
    }
    for key in selector.node_labels.keys() {
        if key.is_empty() {
            return fail("match.node_labels", "label names must not be empty");
        }
    }
    Ok(())
}

fn fingerprint(fingerprint: &Fingerprint, state: &ClusterState) -> Result {
    identity_exists("identity", &fingerprint.identity, state)?;
    match state.fingerprints.get(&fingerprint.sha256) {
        Some(existing) if existing.identity != fingerprint.identity => fail(
            "sha256",
            format!(
                "binary {} is already registered as `{}`; remove that fingerprint first",
                fingerprint.sha256, existing.identity
            ),
        ),
        _ => Ok(()),
    }
}

fn rule(id: Option<RuleId>, spec: &RuleSpec, state: &ClusterState) -> Result {
    if let Some(id) = id {
        if id.0 < RuleId::FIRST_ALLOCATED {
            return fail(
                "id",
                format!(
                    "rule ids below {} are reserved for built-in verdicts",
                    RuleId::FIRST_ALLOCATED
                ),
            );
        }
    } else if state.next_rule_id == u32::MAX {
        return fail("id", "no rule ids are left to allocate");
    }
    peer("from", &spec.from, state)?;
    peer("to", &spec.to, state)?;
    if matches!((&spec.from, &spec.to), (Peer::Cidr(_), Peer::Cidr(_))) {
        return fail(
            "to",
            "a rule between two CIDRs names no workload of the cluster",
        );
    }
    for (i, range) in spec.ports.iter().enumerate() {
        if let Some((j, _)) = spec.ports[..i]
            .iter()
            .enumerate()
            .find(|(_, earlier)| earlier.overlaps(range))
        {
            return fail(
                format!("ports[{i}]"),
                format!("port range {range} overlaps ports[{j}] ({})", spec.ports[j]),
            );
        }
    }
    if spec.encrypt {
        if spec.action != Action::Allow {
            return fail("encrypt", "only an allow rule can encrypt its flows");
        }
        if matches!(spec.from, Peer::Cidr(_)) || matches!(spec.to, Peer::Cidr(_)) {
            return fail(
                "encrypt",
                "flows to or from a CIDR leave the cluster and cannot be tunnelled",
            );
        }
    }
    if spec.action == Action::Deny {
        cluster_traffic_untouched(spec, state)?;
    }
    Ok(())
}

fn peer(field: &str, peer: &Peer, state: &ClusterState) -> Result {
    match peer {
        Peer::App(selector) => {
            zone_exists(&format!("{field}.zone"), &selector.zone, state)?;
            match (&selector.app, &selector.service) {
                (None, Some(_)) => fail(
                    format!("{field}.service"),
                    "a service can only be named together with its app",
                ),
                (Some(app), None) if !state.app_exists(&selector.zone, app) => fail(
                    format!("{field}.app"),
                    format!("unknown app `{}/{app}`", selector.zone),
                ),
                (Some(app), Some(service)) => {
                    let identity = IdentityName {
                        zone: selector.zone.clone(),
                        app: app.clone(),
                        service: service.clone(),
                    };
                    identity_exists(&format!("{field}.service"), &identity, state)
                }
                _ => Ok(()),
            }
        }
        Peer::Cidr(net) => {
            if net.trunc() != *net {
                return fail(
                    format!("{field}.cidr"),
                    format!("`{net}` has host bits set; did you mean `{}`?", net.trunc()),
                );
            }
            Ok(())
        }
    }
}

/// Stockade's own traffic is always allowed; a deny rule that reads as if it
/// would cut it is a mistake the author should hear about.
fn cluster_traffic_untouched(spec: &RuleSpec, state: &ClusterState) -> Result {
    if spec.protocol == Protocol::Tcp {
        return Ok(()); // the control plane speaks QUIC, over UDP
    }
    let ports = spec.port_ranges();
    for (field, peer) in [("from", &spec.from), ("to", &spec.to)] {
        let Peer::Cidr(net) = peer else { continue };
        for node in state.nodes.values() {
            let addr = node.address;
            // Peers talk from and to their control-plane port, so the port
            // matters on both sides.
            if net.contains(&addr.ip()) && ports.iter().any(|r| r.contains(addr.port())) {
                return fail(
                    format!("{field}.cidr"),
                    format!(
                        "denying {net} on these ports would cut the cluster's own traffic with node `{}` ({addr}); narrow the CIDR or the ports",
                        node.name
                    ),
                );
            }
        }
    }
    Ok(())
}

fn endpoint(endpoint: &Endpoint, state: &ClusterState) -> Result {
    if !state.nodes.contains_key(&endpoint.node) {
        return fail("node", format!("unknown node {}", endpoint.node));
    }
    identity_exists("identity", &endpoint.identity, state)?;
    if endpoint.ip.is_unspecified() || endpoint.ip.is_multicast() {
        return fail(
            "ip",
            format!("{} cannot be the address of a workload", endpoint.ip),
        );
    }
    if endpoint.port == Some(0) {
        return fail(
            "port",
            "port 0 is not a listening port; leave it out for every port",
        );
    }
    if let Some(node) = state.nodes.values().find(|n| {
        n.address.ip() == endpoint.ip && endpoint.port.is_none_or(|p| p == n.address.port())
    }) {
        return fail(
            "port",
            format!(
                "{} is the control-plane address of node `{}`",
                endpoint.key(),
                node.name
            ),
        );
    }
    Ok(())
}

fn node(node: &Node, state: &ClusterState) -> Result {
    name("name", &node.name)?;
    if let Some(other) = state
        .nodes
        .values()
        .find(|n| n.name == node.name && n.id != node.id)
    {
        return fail(
            "name",
            format!(
                "node name `{}` is already used by node {}",
                node.name, other.id
            ),
        );
    }
    if node.address.port() == 0 || node.address.ip().is_unspecified() {
        return fail(
            "address",
            format!("{} is not an address peers can reach", node.address),
        );
    }
    if let Some(other) = state
        .nodes
        .values()
        .find(|n| n.address == node.address && n.id != node.id)
    {
        return fail(
            "address",
            format!(
                "{} is already the address of node `{}`",
                node.address, other.name
            ),
        );
    }
    Ok(())
}

fn node_removal(id: crate::ids::NodeId, state: &ClusterState) -> Result {
    if !state.nodes.contains_key(&id) {
        return fail("id", format!("unknown node {id}"));
    }
    if let Some(ep) = state.endpoints.values().find(|e| e.node == id) {
        return fail(
            "id",
            format!("endpoint {} still runs on node {id}", ep.key()),
        );
    }
    Ok(())
}

fn sink(sink: &AlertSink, state: &ClusterState) -> Result {
    name("name", &sink.name)?;
    if sink.target.secrets().iter().any(|s| s.is_redacted()) {
        return fail(
            "target",
            "a secret is still the redaction marker; give the real value",
        );
    }
    match &sink.target {
        SinkTarget::Slack { webhook_url } if !webhook_url.0.starts_with("https://") => fail(
            "target.webhook_url",
            "a Slack webhook URL starts with https://",
        ),
        SinkTarget::Syslog { address, .. } => match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(())
            }
            _ => fail("target.address", format!("`{address}` is not host:port")),
        },
        SinkTarget::Webhook { url, .. }
            if !(url.starts_with("https://") || url.starts_with("http://")) =>
        {
            fail("target.url", format!("`{url}` is not an http(s) URL"))
        }
        _ => Ok(()),
    }?;
    for (i, zone) in sink.zones.iter().enumerate() {
        zone_exists(&format!("zones[{i}]"), zone, state)?;
    }
    for (i, app) in sink.apps.iter().enumerate() {
        let field = format!("apps[{i}]");
        match app.split_once('/') {
            Some((zone, name)) if state.app_exists(zone, name) => {}
            Some(_) => return fail(field, format!("unknown app `{app}`")),
            None => return fail(field, format!("`{app}` is not zone/app")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::fixtures::{allow, app, define, name, node, sample, zone};
    use crate::{
        Action, AlertSink, ClusterState, Command, Endpoint, IdentityId, IdentityRule, Mode, NodeId,
        Peer, Protocol, RuleSpec, Secret, Severity, SinkTarget, WorkloadSelector,
    };

    /// Applies `command` to the sample state, expects it refused, and checks
    /// the error names `field` and that nothing changed.
    fn refused(command: Command, field: &str, reason_part: &str) {
        let mut state = sample();
        let before = state.clone();
        let err = command
            .apply(&mut state)
            .expect_err("command must be refused");
        assert_eq!(err.field, field, "wrong field in: {err}");
        assert!(
            err.reason.contains(reason_part),
            "reason of `{err}` does not mention `{reason_part}`"
        );
        assert_eq!(state, before, "a refused command changed the state");
    }

    fn cidr(net: &str) -> Peer {
        Peer::Cidr(net.parse().expect("test cidr"))
    }

    #[test]
    fn unknown_zone_is_named() {
        refused(
            define("staging", "web", "main"),
            "name.zone",
            "unknown zone `staging`",
        );
        refused(
            Command::UpsertRule {
                id: None,
                spec: allow(app("prod", "web"), app("qa", "db"), &[]),
            },
            "to.zone",
            "unknown zone `qa`",
        );
    }

    #[test]
    fn unknown_app_and_service_are_named() {
        refused(
            Command::UpsertRule {
                id: None,
                spec: allow(app("prod", "cache"), app("prod", "db"), &[]),
            },
            "from.app",
            "unknown app `prod/cache`",
        );
        let mut spec = allow(app("prod", "web"), app("prod", "db"), &[]);
        if let Peer::App(sel) = &mut spec.to {
            sel.service = Some("replica".into());
        }
        refused(
            Command::UpsertRule { id: None, spec },
            "to.service",
            "prod/db/replica",
        );
    }

    #[test]
    fn overlapping_port_ranges_are_refused() {
        refused(
            Command::UpsertRule {
                id: None,
                spec: allow(
                    app("prod", "web"),
                    app("prod", "db"),
                    &["5000-6000", "80", "5432"],
                ),
            },
            "ports[2]",
            "overlaps ports[0]",
        );
    }

    #[test]
    fn identity_id_reuse_is_refused() {
        let taken = sample()
            .identity_by_name(&name("prod", "db", "main"))
            .expect("fixture identity")
            .id;
        refused(
            Command::DefineIdentity {
                id: Some(taken),
                name: name("prod", "cache", "main"),
            },
            "id",
            "already used by `prod/db/main`",
        );
        refused(
            Command::DefineIdentity {
                id: Some(IdentityId::CLUSTER),
                name: name("prod", "cache", "main"),
            },
            "id",
            "outside the range",
        );
        refused(define("prod", "db", "main"), "name", "already defined");
    }

    #[test]
    fn cidr_with_host_bits_is_refused() {
        refused(
            Command::UpsertRule {
                id: None,
                spec: allow(app("prod", "web"), cidr("10.1.2.3/8"), &["443"]),
            },
            "to.cidr",
            "did you mean `10.0.0.0/8`",
        );
    }

    #[test]
    fn rule_that_would_cut_cluster_traffic_is_refused() {
        let mut spec = allow(app("prod", "web"), cidr("10.0.0.0/24"), &[]);
        spec.action = Action::Deny;
        spec.protocol = Protocol::Any;
        refused(
            Command::UpsertRule {
                id: None,
                spec: spec.clone(),
            },
            "to.cidr",
            "cut the cluster's own traffic",
        );
        // The same deny on ports the control plane does not use is fine.
        spec.ports = vec!["22".parse().expect("port")];
        Command::UpsertRule { id: None, spec }
            .apply(&mut sample())
            .expect("a deny that spares the control-plane port is accepted");
    }

    #[test]
    fn nonsensical_rules_are_refused() {
        let mut encrypted_deny = allow(app("prod", "web"), app("prod", "db"), &[]);
        encrypted_deny.action = Action::Deny;
        encrypted_deny.encrypt = true;
        refused(
            Command::UpsertRule {
                id: None,
                spec: encrypted_deny,
            },
            "encrypt",
            "allow",
        );
        let between_cidrs = allow(cidr("10.9.0.0/16"), cidr("10.8.0.0/16"), &[]);
        refused(
            Command::UpsertRule {
                id: None,
                spec: between_cidrs,
            },
            "to",
            "two CIDRs",
        );
        let spec = allow(app("prod", "web"), app("prod", "db"), &[]);
        refused(
            Command::UpsertRule {
                id: Some(crate::RuleId(3)),
                spec,
            },
            "id",
            "reserved",
        );
    }

    #[test]
    fn bad_names_are_refused() {
        refused(zone("Prod", Mode::Learn), "name", "a-z");
        refused(zone("", Mode::Learn), "name", "empty");
        refused(zone(&"x".repeat(64), Mode::Learn), "name", "longer than 63");
        refused(define("prod", "web/x", "main"), "name.app", "a-z");
    }

    #[test]
    fn identity_rules_must_test_something_valid() {
        let rule = |selector| {
            Command::UpsertIdentityRule(IdentityRule {
                name: "web".into(),
                identity: name("prod", "web", "main"),
                selector,
            })
        };
        refused(rule(WorkloadSelector::default()), "match", "at least one");
        refused(
            rule(WorkloadSelector {
                exe_path: Some("/opt/[web".into()),
                ..Default::default()
            }),
            "match.exe_path",
            "not a valid glob",
        );
        refused(
            rule(WorkloadSelector {
                cgroup_path: Some("system.slice/*".into()),
                ..Default::default()
            }),
            "match.cgroup_path",
            "absolute",
        );
    }

    #[test]
    fn referenced_objects_cannot_be_removed() {
        refused(
            Command::RemoveZone {
                name: "prod".into(),
            },
            "name",
            "still holds identity",
        );
        refused(
            Command::RemoveIdentity {
                name: name("prod", "db", "main"),
            },
            "name",
            "rule 16",
        );
        let mut state = sample();
        Command::UpsertEndpoint(Endpoint {
            node: NodeId(1),
            ip: "10.0.0.7".parse().expect("ip"),
            port: None,
            identity: name("dev", "web", "main"),
        })
        .apply(&mut state)
        .expect("valid endpoint");
        let err = Command::RemoveNode { id: NodeId(1) }
            .apply(&mut state)
            .expect_err("node with endpoints");
        assert!(err.reason.contains("10.0.0.7"), "{err}");
    }

    #[test]
    fn endpoints_cannot_take_a_node_control_address() {
        refused(
            Command::UpsertEndpoint(Endpoint {
                node: NodeId(1),
                ip: "10.0.0.1".parse().expect("ip"),
                port: Some(7400),
                identity: name("prod", "web", "main"),
            }),
            "port",
            "control-plane address of node `node-1`",
        );
        refused(
            Command::UpsertEndpoint(Endpoint {
                node: NodeId(9),
                ip: "10.0.0.9".parse().expect("ip"),
                port: None,
                identity: name("prod", "web", "main"),
            }),
            "node",
            "unknown node 9",
        );
    }

    #[test]
    fn nodes_need_reachable_distinct_addresses() {
        let mut twin = node(2, "10.0.0.1:7400");
        refused(
            Command::UpsertNode(twin.clone()),
            "address",
            "already the address",
        );
        twin.address = "0.0.0.0:7400".parse().expect("addr");
        refused(
            Command::UpsertNode(twin),
            "address",
            "not an address peers can reach",
        );
    }

    #[test]
    fn sinks_are_checked() {
        let sink = |target| AlertSink {
            name: "ops".into(),
            target,
            min_severity: Severity::Warning,
            zones: vec![],
            apps: vec![],
        };
        refused(
            Command::UpsertSink(sink(SinkTarget::Slack {
                webhook_url: Secret("http://insecure".into()),
            })),
            "target.webhook_url",
            "https://",
        );
        refused(
            Command::UpsertSink(sink(SinkTarget::Slack {
                webhook_url: Secret(Secret::REDACTED.into()),
            })),
            "target",
            "redaction marker",
        );
        refused(
            Command::UpsertSink(sink(SinkTarget::Syslog {
                address: "siem.local".into(),
                tls: true,
            })),
            "target.address",
            "host:port",
        );
        let mut routed = sink(SinkTarget::Syslog {
            address: "siem.local:6514".into(),
            tls: true,
        });
        routed.apps = vec!["prod/payroll".into()];
        refused(
            Command::UpsertSink(routed),
            "apps[0]",
            "unknown app `prod/payroll`",
        );
    }

    #[test]
    fn a_batch_is_all_or_nothing_and_names_the_failing_command() {
        let batch = Command::Batch(vec![
            zone("qa", Mode::Alert),
            define("qa", "web", "main"),
            define("qa", "web", "main"),
        ]);
        refused(batch, "batch[2].name", "already defined");
    }

    #[test]
    fn valid_commands_leave_a_consistent_state() {
        let mut state = ClusterState::new();
        let spec = RuleSpec {
            protocol: Protocol::Udp,
            ..allow(app("prod", "web"), cidr("0.0.0.0/0"), &["53"])
        };
        Command::Batch(vec![
            zone("prod", Mode::Alert),
            define("prod", "web", "main"),
            Command::UpsertRule { id: None, spec },
        ])
        .apply(&mut state)
        .expect("valid batch");
        assert_eq!(state.rules.len(), 1);
        assert_eq!(state.next_rule_id, crate::RuleId::FIRST_ALLOCATED + 1);
    }
}
