//! What makes two observations the same cause.

use std::net::IpAddr;

use stockade_policy::{
    AlertFlow, AlertKind, AlertWorkload, Direction, FlowEnd, IdentityName, L4Protocol, RuleRef,
    Sha256,
};

/// The part of an observation that says what happened, without what varies
/// from one repeat to the next (the process id, the client's ephemeral
/// port): observations with equal keys are counted together.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CauseKey {
    kind: AlertKind,
    workload: Option<WorkloadKey>,
    flow: Option<FlowKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct WorkloadKey {
    identity: Option<IdentityName>,
    zone: Option<String>,
    executable: String,
    sha256: Option<Sha256>,
}

/// A flow end as far as the cause goes: its identity when it has one, since
/// one identity's replicas move between addresses; its address otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum EndKey {
    Identity(IdentityName),
    Address(IpAddr),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    src: EndKey,
    dst: EndKey,
    dst_port: u16,
    protocol: L4Protocol,
    direction: Direction,
    rule: RuleRef,
}

impl CauseKey {
    /// The cause of an observation or of an alert with these details.
    pub(crate) fn of(
        kind: AlertKind,
        workload: Option<&AlertWorkload>,
        flow: Option<&AlertFlow>,
    ) -> Self {
        CauseKey {
            kind,
            workload: workload.map(|w| WorkloadKey {
                identity: w.identity.clone(),
                zone: w.zone.clone(),
                executable: w.executable.clone(),
                sha256: w.sha256,
            }),
            flow: flow.map(|f| FlowKey {
                src: EndKey::of(&f.src),
                dst: EndKey::of(&f.dst),
                dst_port: f.dst.port,
                protocol: f.protocol,
                direction: f.direction,
                rule: f.rule,
            }),
        }
    }
}

impl EndKey {
    fn of(end: &FlowEnd) -> Self {
        match &end.identity {
            Some(identity) => EndKey::Identity(identity.clone()),
            None => EndKey::Address(end.ip),
        }
    }
}
