//! `stockade policy …`: policy documents checked, compared and questioned
//! without a running cluster.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use stockade_policy::{
    compile, diff as policy_diff, Action, ClusterState, DataplaneEntries, Decision, Direction,
    FlowQuery, IdentityName, L4Protocol, LocalWorkloads, Node, NodeId, PolicyDocument, RuleRef,
    Subject,
};

use crate::cli::{CheckArgs, DecideArgs, DiffArgs, ProtocolArg};

/// The demo policy, built into the binary.
pub const DEMO_POLICY: &str = include_str!("../assets/demo-policy.toml");

/// Reads a policy document from a file, or standard input for `-`.
pub fn read_document(path: &Path) -> Result<PolicyDocument> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the policy from standard input")?;
        text
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading policy document {}", path.display()))?
    };
    PolicyDocument::parse(&text).with_context(|| format!("in {}", path.display()))
}

/// A policy document applied to a fresh cluster state, with one local node
/// so that it can be compiled.
pub struct LoadedPolicy {
    /// The state the document gives a new cluster.
    pub state: ClusterState,
    /// The map contents of the local node.
    pub dataplane: DataplaneEntries,
}

/// The node a policy is compiled for when no cluster is running. Its address
/// is from the documentation range (RFC 5737): no policy names it by accident.
const LOCAL_NODE: NodeId = NodeId(1);

impl LoadedPolicy {
    /// Validates `doc` as a whole and compiles it for a local node.
    pub fn new(doc: &PolicyDocument, local: &LocalWorkloads) -> Result<Self> {
        let mut state = ClusterState::new();
        let batch = doc.import(&state).context("the policy is invalid")?;
        batch
            .apply(&mut state)
            .context("the validated policy did not apply")?;
        stockade_policy::Command::UpsertNode(Node {
            id: LOCAL_NODE,
            name: "local".into(),
            address: "192.0.2.1:7400".parse().context("local node address")?,
            labels: BTreeMap::new(),
        })
        .apply(&mut state)
        .context("adding the local node")?;
        let dataplane = compile(&state, LOCAL_NODE, local)?;
        Ok(LoadedPolicy { state, dataplane })
    }

    /// The subject a command-line party names: `zone/app/service` or an IP
    /// address. For an address, `port` picks among endpoints sharing it.
    pub fn subject(&self, party: &str, port: u16) -> Result<Subject> {
        if let Ok(ip) = party.parse::<IpAddr>() {
            return Ok(self.dataplane.lookup_address(ip, port));
        }
        let parts: Vec<&str> = party.split('/').collect();
        let [zone, app, service] = parts[..] else {
            bail!("`{party}` is neither zone/app/service nor an IP address");
        };
        let name = IdentityName {
            zone: zone.into(),
            app: app.into(),
            service: service.into(),
        };
        let identity = self
            .state
            .identity_by_name(&name)
            .with_context(|| format!("the policy defines no identity `{name}`"))?;
        Ok(Subject {
            identity: identity.id,
            zone: self.state.zones.get(zone).map(|z| z.id),
        })
    }

    /// Both sides' decisions on a flow: the caller's node, then the
    /// receiver's — which exists only when the receiver is in the cluster.
    pub fn decide(
        &self,
        src: Subject,
        dst: Subject,
        protocol: L4Protocol,
        port: u16,
    ) -> (Decision, Option<Decision>) {
        let at = |direction| {
            self.dataplane.decide(&FlowQuery {
                src,
                dst,
                protocol,
                port,
                direction,
            })
        };
        let ingress = (!dst.identity.is_outside_cluster()).then(|| at(Direction::Ingress));
        (at(Direction::Egress), ingress)
    }

    /// One line that says what a decision is and why.
    pub fn describe(&self, decision: &Decision) -> String {
        let mut line = match decision.action {
            Action::Allow => "allow".to_string(),
            Action::Deny => "deny".to_string(),
        };
        if decision.encrypt {
            line.push_str(" (encrypted)");
        }
        if decision.alert {
            line.push_str(" + alert");
        }
        let _ = write!(line, " by {}", decision.rule);
        if let RuleRef::Rule(id) = decision.rule {
            if let Some(rule) = self.state.rules.get(&id) {
                if !rule.spec.description.is_empty() {
                    let _ = write!(line, " ({})", rule.spec.description);
                }
            }
        }
        line
    }
}

/// `stockade policy check FILE`.
pub fn check(args: &CheckArgs) -> Result<ExitCode> {
    let doc = read_document(&args.file)?;
    let loaded = LoadedPolicy::new(&doc, &LocalWorkloads::default())
        .with_context(|| format!("in {}", args.file.display()))?;
    let state = &loaded.state;
    println!("{}: valid", args.file.display());
    for zone in state.zones.values() {
        let identities = state
            .identities
            .values()
            .filter(|i| i.name.zone == zone.name)
            .count();
        println!(
            "  zone {:<12} {:<8} {identities} identities",
            zone.name,
            zone.mode.to_string()
        );
    }
    println!(
        "  {} identity rules, {} fingerprints, {} rules, {} alert sinks; {} policy-map entries per node",
        state.identity_rules.len(),
        state.fingerprints.len(),
        state.rules.len(),
        state.sinks.len(),
        loaded.dataplane.policy.len(),
    );
    Ok(ExitCode::SUCCESS)
}

/// `stockade policy diff BEFORE AFTER`.
pub fn diff(args: &DiffArgs) -> Result<ExitCode> {
    let before = read_document(&args.before)?;
    let after = read_document(&args.after)?;
    let changes = policy_diff(&before, &after);
    print!("{changes}");
    Ok(if args.exit_code && !changes.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `stockade policy decide --from A --to B --port P`.
pub fn decide(args: &DecideArgs) -> Result<ExitCode> {
    let doc = match &args.policy {
        Some(path) => read_document(path)?,
        None => PolicyDocument::parse(DEMO_POLICY).context("the embedded demo policy")?,
    };
    let loaded = LoadedPolicy::new(&doc, &LocalWorkloads::default())?;
    let src = loaded.subject(&args.from, 0).context("--from")?;
    let dst = loaded.subject(&args.to, args.port).context("--to")?;
    let protocol = match args.protocol {
        ProtocolArg::Tcp => L4Protocol::Tcp,
        ProtocolArg::Udp => L4Protocol::Udp,
    };
    let (egress, ingress) = loaded.decide(src, dst, protocol, args.port);
    println!("egress  (caller's node):   {}", loaded.describe(&egress));
    if let Some(ingress) = &ingress {
        println!("ingress (receiver's node): {}", loaded.describe(ingress));
    }
    let allowed = |d: &Decision| d.action == Action::Allow;
    let verdict = if allowed(&egress) && ingress.as_ref().is_none_or(allowed) {
        "allowed"
    } else {
        "denied"
    };
    println!("{} -> {}:{} {verdict}", args.from, args.to, args.port);
    Ok(ExitCode::SUCCESS)
}

/// `stockade policy default`.
pub fn print_default() -> Result<ExitCode> {
    print!("{DEMO_POLICY}");
    Ok(ExitCode::SUCCESS)
}
