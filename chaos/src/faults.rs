//! The faults the nemesis can inject, by name, as `--faults` lists them.

use std::fmt;
use std::str::FromStr;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// kill -9 a random node, restart it later.
    Kill,
    /// kill -9 the leader, restart it later.
    KillLeader,
    /// SIGSTOP a random node, SIGCONT it later.
    Pause,
    /// SIGSTOP the leader, SIGCONT it later.
    PauseLeader,
    /// Cut the leader off from every other node.
    PartitionLeader,
    /// The leader and one other node on one side, the rest on the other.
    PartitionLeaderMinority,
    /// Two sides that cannot see each other, and a node that sees both.
    PartitionBridge,
    /// Cut one random node off.
    PartitionOne,
    /// Two random halves.
    PartitionHalves,
    /// Lose a share of the datagrams between nodes.
    Loss,
    /// Duplicate a share of them.
    Duplicate,
    /// Delay them by a random time, reordering them.
    Reorder,
    /// Remove a node from the cluster, wipe it, and join it again.
    Membership,
    /// Restart every node in turn (SIGTERM, start).
    RollingRestart,
    /// kill -9 a node and check its kernel still enforces meanwhile.
    CrashEnforce,
}

impl Fault {
    /// Every fault, in the order `all` lists them.
    pub const ALL: [Fault; 15] = [
        Fault::Kill,
        Fault::KillLeader,
        Fault::Pause,
        Fault::PauseLeader,
        Fault::PartitionLeader,
        Fault::PartitionLeaderMinority,
        Fault::PartitionBridge,
        Fault::PartitionOne,
        Fault::PartitionHalves,
        Fault::Loss,
        Fault::Duplicate,
        Fault::Reorder,
        Fault::Membership,
        Fault::RollingRestart,
        Fault::CrashEnforce,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::KillLeader => "kill-leader",
            Fault::Pause => "pause",
            Fault::PauseLeader => "pause-leader",
            Fault::PartitionLeader => "partition-leader",
            Fault::PartitionLeaderMinority => "partition-leader-minority",
            Fault::PartitionBridge => "partition-bridge",
            Fault::PartitionOne => "partition-one",
            Fault::PartitionHalves => "partition-halves",
            Fault::Loss => "loss",
            Fault::Duplicate => "duplicate",
            Fault::Reorder => "reorder",
            Fault::Membership => "membership",
            Fault::RollingRestart => "rolling-restart",
            Fault::CrashEnforce => "crash-enforce",
        }
    }

    /// Whether it cuts links between nodes (its recovery is measured from
    /// the heal).
    pub fn is_partition(self) -> bool {
        matches!(
            self,
            Fault::PartitionLeader
                | Fault::PartitionLeaderMinority
                | Fault::PartitionBridge
                | Fault::PartitionOne
                | Fault::PartitionHalves
        )
    }

    /// The fewest nodes it makes sense with.
    pub fn min_nodes(self) -> usize {
        match self {
            Fault::PartitionLeaderMinority | Fault::PartitionBridge => 5,
            _ => 3,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--faults` entry that names no fault or group.
#[derive(Debug, thiserror::Error)]
#[error("unknown fault `{0}`: expected one of {list} or a group (all, process, partitions, links)", list = names())]
pub struct UnknownFault(String);

fn names() -> String {
    Fault::ALL.map(Fault::name).join(", ")
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

/// Parses a comma-separated list of faults and groups (`all`, `process`,
/// `partitions`, `links`), without repeats, in the order given.
pub fn parse_list(list: &str) -> Result<Vec<Fault>, UnknownFault> {
    let mut faults = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let group: Vec<Fault> = match name {
            "all" => Fault::ALL.to_vec(),
            "process" => vec![
                Fault::Kill,
                Fault::KillLeader,
                Fault::Pause,
                Fault::PauseLeader,
                Fault::CrashEnforce,
            ],
            "partitions" => Fault::ALL
                .into_iter()
                .filter(|f| f.is_partition())
                .collect(),
            "links" => vec![Fault::Loss, Fault::Duplicate, Fault::Reorder],
            single => vec![single.parse()?],
        };
        for fault in group {
            if !faults.contains(&fault) {
                faults.push(fault);
            }
        }
    }
    if faults.is_empty() {
        return Err(UnknownFault(list.to_owned()));
    }
    Ok(faults)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_parses_from_its_own_name() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>().ok(), Some(fault));
        }
    }

    #[test]
    fn groups_expand_without_repeats_and_unknown_names_are_named() {
        let faults = parse_list("kill,process,loss").expect("parses");
        assert_eq!(faults[0], Fault::Kill);
        assert_eq!(faults.iter().filter(|f| **f == Fault::Kill).count(), 1);
        assert!(faults.contains(&Fault::Loss));
        let err = parse_list("kill,parition").expect_err("a typo");
        assert!(err.to_string().contains("`parition`"), "{err}");
        assert!(parse_list(" , ").is_err());
    }
}
