//! The destination node's own check of a tunnelled connection: the sender
//! is a member node (its key proved it), and the policy this node applies
//! allows the claimed source an encrypted connection to the destination,
//! which must be this node's to deliver.

use std::sync::{Arc, Mutex};

use stockade_policy::{
    compile, tunnel_destination, Action, ClusterState, DataplaneEntries, Direction, FlowQuery,
    IdentityId, L4Protocol, LocalWorkloads, NodeId, Subject,
};
use stockade_transport::tunnel::{Opening, Refusal};

/// Whether `opening`, from a member node, may be delivered by node `me`.
pub fn admit(
    state: &ClusterState,
    entries: &DataplaneEntries,
    me: NodeId,
    opening: &Opening,
) -> Result<(), Refusal> {
    let destination = opening.destination;
    if tunnel_destination(state, destination.ip(), destination.port()) != Some(me) {
        return Err(Refusal::NotHere);
    }
    // The identity must exist here; its zone is what this state says, not
    // what the sender claimed.
    let identity = IdentityId(opening.source_identity);
    let Some(source) = state
        .identities
        .get(&identity)
        .filter(|_| identity.is_allocatable())
    else {
        return Err(Refusal::Policy);
    };
    let src = Subject {
        identity,
        zone: state.zones.get(&source.name.zone).map(|z| z.id),
    };
    let dst = entries.lookup_address(destination.ip(), destination.port());
    let decision = entries.decide(&FlowQuery {
        src,
        dst,
        protocol: L4Protocol::Tcp,
        port: destination.port(),
        direction: Direction::Egress,
    });
    if decision.action == Action::Allow && decision.encrypt {
        Ok(())
    } else {
        Err(Refusal::Policy)
    }
}

/// The compiled addresses and rules of this node's applied state, rebuilt
/// when the policy revision moves.
#[derive(Default)]
pub struct CompiledPolicy {
    cached: Mutex<Option<(u64, Arc<DataplaneEntries>)>>,
}

impl CompiledPolicy {
    /// The entries for `state` as node `me` compiles them (without local
    /// workloads: only addresses and rules are needed).
    pub fn get(&self, state: &ClusterState, me: NodeId) -> Option<Arc<DataplaneEntries>> {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((revision, entries)) = cached.as_ref() {
            if *revision == state.policy_revision {
                return Some(Arc::clone(entries));
            }
        }
        let entries = Arc::new(compile(state, me, &LocalWorkloads::default()).ok()?);
        *cached = Some((state.policy_revision, Arc::clone(&entries)));
        Some(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockade_policy::{Command, Endpoint, IdentityName, Mode, Node, Peer, PortRange, RuleSpec};

    fn apply(state: &mut ClusterState, command: Command) {
        command.apply(state).expect("a valid command");
    }

    fn name(app: &str) -> IdentityName {
        IdentityName {
            zone: "prod".into(),
            app: app.into(),
            service: "main".into(),
        }
    }

    /// prod (enforce) with web and db; db on node 2 at 10.0.0.2:5432; web
    /// may reach db encrypted.
    fn state(encrypt: bool) -> ClusterState {
        let mut state = ClusterState::new();
        apply(
            &mut state,
            Command::UpsertZone {
                id: None,
                name: "prod".into(),
                mode: Mode::Enforce,
                description: String::new(),
            },
        );
        for app in ["web", "db"] {
            apply(
                &mut state,
                Command::DefineIdentity {
                    id: None,
                    name: name(app),
                },
            );
        }
        for id in [1, 2] {
            apply(
                &mut state,
                Command::UpsertNode(Node {
                    id: NodeId(id),
                    name: format!("n{id}"),
                    address: format!("10.0.0.{id}:7400").parse().expect("addr"),
                    labels: Default::default(),
                }),
            );
        }
        apply(
            &mut state,
            Command::UpsertEndpoint(Endpoint {
                node: NodeId(2),
                ip: "10.0.0.2".parse().expect("ip"),
                port: Some(5432),
                identity: name("db"),
            }),
        );
        let app = |a: &str| {
            Peer::App(stockade_policy::AppSelector {
                zone: "prod".into(),
                app: Some(a.into()),
                service: None,
            })
        };
        apply(
            &mut state,
            Command::UpsertRule {
                id: None,
                spec: RuleSpec {
                    from: app("web"),
                    to: app("db"),
                    protocol: stockade_policy::Protocol::Tcp,
                    ports: vec!["5432".parse::<PortRange>().expect("port")],
                    action: Action::Allow,
                    encrypt,
                    owner: String::new(),
                    description: String::new(),
                },
            },
        );
        state
    }

    fn opening(state: &ClusterState, app: &str, destination: &str) -> Opening {
        Opening {
            destination: destination.parse().expect("addr"),
            source_identity: state.identity_by_name(&name(app)).expect("identity").id.0,
            source_zone: 0,
        }
    }

    fn check(state: &ClusterState, me: u64, opening: &Opening) -> Result<(), Refusal> {
        let entries = compile(state, NodeId(me), &LocalWorkloads::default()).expect("compile");
        admit(state, &entries, NodeId(me), opening)
    }

    #[test]
    fn an_encrypted_rule_admits_its_source_to_its_destination_only() {
        let s = state(true);
        assert_eq!(check(&s, 2, &opening(&s, "web", "10.0.0.2:5432")), Ok(()));
        assert_eq!(
            check(&s, 2, &opening(&s, "db", "10.0.0.2:5432")),
            Err(Refusal::Policy),
            "another identity, claimed by a genuine node, is refused"
        );
        assert_eq!(
            check(&s, 1, &opening(&s, "web", "10.0.0.2:5432")),
            Err(Refusal::NotHere),
            "a node never relays to what is not its own"
        );
        let mut unknown = opening(&s, "web", "10.0.0.2:5432");
        unknown.source_identity = 9999;
        assert_eq!(check(&s, 2, &unknown), Err(Refusal::Policy));
    }

    #[test]
    fn a_rule_that_does_not_encrypt_admits_nothing_through_the_tunnel() {
        let s = state(false);
        assert_eq!(
            check(&s, 2, &opening(&s, "web", "10.0.0.2:5432")),
            Err(Refusal::Policy)
        );
    }
}
