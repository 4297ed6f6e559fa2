//! Validation of single commands against the state they would change.
//!
//! Each check names the field at fault. The checks keep the state consistent:
//! every name a rule, identity rule, fingerprint, endpoint or sink uses refers
//! to something that exists, and nothing is removed while it is referred to.

use globset::Glob;

use crate::command::Command;
use crate::error::ValidationError;
use crate::ids::{IdentityId, ZoneId};
use crate::state::{ClusterState, Settings};
use crate::{
    AlertSink, AppSelector, Endpoint, EndpointKey, Fingerprint, IdentityName, IdentityRule, Node,
    Peer, SinkTarget, WorkloadSelector,
};

mod alert;
mod baseline;
mod inventory;
mod rule;
mod tunnel;

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
        Command::UpsertRule { id, spec } => rule::rule(*id, spec, state),
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
        Command::SetSettings(settings) => self::settings(settings),
        Command::RaiseAlerts { alerts } => alert::alerts(alerts, state),
        Command::AckDelivery { sink, through, .. } => alert::acknowledgement(sink, *through, state),
        Command::ReportInventory(report) => inventory::report(report, state),
        Command::PublishTunnelKey(key) => tunnel::key(key, state),
        Command::LearnEdges { node, edges } => baseline::learned_edges(*node, edges, state),
        Command::DecideLinks {
            links, decision, ..
        } => baseline::decision(links, *decision, state),
        Command::Access(access) => access.validate(state),
        Command::Restore {
            backup,
            allow_foreign,
            keep_token,
        } => crate::backup::check_restore(backup, *allow_foreign, keep_token.as_deref(), state)
            .map(drop),
        Command::RecordBackup(record) => {
            match record.file.is_empty() || record.file.contains('/') {
                true => fail("file", "must be a file name, not empty and without `/`"),
                false => Ok(()),
            }
        }
        Command::Batch { .. } | Command::Audited { .. } | Command::RollbackPolicy { .. } => {
            unreachable!(
                "batches, audited commands and rollbacks are validated by `Command::validate`"
            )
        }
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
        SinkTarget::Slack { webhook_url } if !is_http_url(&webhook_url.0) => fail(
            "target.webhook_url",
            "a Slack webhook URL starts with https:// (or http:// for a local relay)",
        ),
        SinkTarget::Syslog {
            ca_pem: Some(pem), ..
        } if !pem.contains("-----BEGIN CERTIFICATE-----") => fail(
            "target.ca_pem",
            "not a PEM certificate (no BEGIN CERTIFICATE line)",
        ),
        SinkTarget::Syslog { address, .. } => match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(())
            }
            _ => fail("target.address", format!("`{address}` is not host:port")),
        },
        SinkTarget::Webhook { url, .. } if !is_http_url(url) => {
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
    if sink.max_per_minute == Some(0) {
        return fail(
            "max_per_minute",
            "0 messages a minute would never deliver; leave it out for no limit",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;

fn is_http_url(url: &str) -> bool {
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty())
}

fn settings(settings: &Settings) -> Result {
    const MAX_CLUSTER_NAME: usize = 64;
    let name = &settings.cluster_name;
    if name.chars().count() > MAX_CLUSTER_NAME
        || name.chars().any(char::is_control)
        || name.trim() != name
    {
        return fail(
            "cluster_name",
            format!("{name:?} must be at most {MAX_CLUSTER_NAME} printable characters, without leading or trailing spaces"),
        );
    }
    const RETENTION: std::ops::RangeInclusive<u32> = 10..=1_000_000;
    const BASELINE_EDGES: std::ops::RangeInclusive<u32> = 100..=1_000_000;
    const HISTORY: std::ops::RangeInclusive<u32> = 2..=100_000;
    for (field, value, range) in [
        ("alert_retention", settings.alert_retention, RETENTION),
        ("audit_retention", settings.audit_retention, RETENTION),
        ("history_retention", settings.history_retention, HISTORY),
        (
            "baseline_max_edges",
            settings.baseline_max_edges,
            BASELINE_EDGES,
        ),
    ] {
        if !range.contains(&value) {
            return fail(
                field,
                format!("{value} is outside {}..={}", range.start(), range.end()),
            );
        }
    }
    Ok(())
}
