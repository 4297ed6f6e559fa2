//! A read handle on the applied cluster state, for the HTTP API and the
//! reconciler: they read the state without going through Raft.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::StoredMembership;
use serde::{Deserialize, Serialize};
use stockade_policy::ClusterState;
use tokio::sync::watch;

use crate::types::{LogId, NodeAddr, NodeId};

/// Everything the state machine holds: the cluster state and how far into
/// the log it is. This is also what a snapshot contains.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// The last log entry applied, if any.
    pub last_applied: Option<LogId>,
    /// The last membership configuration applied.
    pub last_membership: StoredMembership<NodeId, NodeAddr>,
    /// The cluster state after that entry.
    pub state: ClusterState,
}

/// The state machine's contents, shared between the state machine (which
/// writes) and [`StateHandle`]s (which read).
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    machine: Arc<RwLock<Machine>>,
    applied: Arc<watch::Sender<Option<LogId>>>,
}

impl Shared {
    pub(crate) fn new(machine: Machine) -> Self {
        let (applied, _) = watch::channel(machine.last_applied);
        Shared {
            machine: Arc::new(RwLock::new(machine)),
            applied: Arc::new(applied),
        }
    }

    /// Reads the machine. A panic while it was written cannot leave it half
    /// changed (commands apply to a copy or validate first), so a poisoned
    /// lock is still read.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Machine> {
        self.machine.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the machine, then tells watchers how far it has got.
    pub(crate) fn write<R>(&self, change: impl FnOnce(&mut Machine) -> R) -> R {
        let (result, last_applied) = {
            let mut machine: RwLockWriteGuard<'_, Machine> =
                self.machine.write().unwrap_or_else(PoisonError::into_inner);
            let result = change(&mut machine);
            (result, machine.last_applied)
        };
        self.applied.send_replace(last_applied);
        result
    }

    pub(crate) fn handle(&self) -> StateHandle {
        StateHandle {
            shared: self.clone(),
        }
    }
}

/// A cheap, cloneable read handle on a node's applied cluster state.
///
/// Reads are local: on a follower they may lag the leader. For a
/// linearizable read, call `Raft::ensure_linearizable` first (it returns the
/// log id the read must see) and then [`StateHandle::wait_applied`] on it.
#[derive(Clone, Debug)]
pub struct StateHandle {
    shared: Shared,
}

impl StateHandle {
    /// Runs `f` on the current state, under a read lock (keep it short).
    pub fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.shared.read().state)
    }

    /// Runs `f` on the current state and the log id it reflects, under one
    /// read lock (keep it short).
    pub fn read_applied<R>(&self, f: impl FnOnce(Option<LogId>, &ClusterState) -> R) -> R {
        let machine = self.shared.read();
        f(machine.last_applied, &machine.state)
    }

    /// A copy of the current state.
    pub fn state(&self) -> ClusterState {
        self.shared.read().state.clone()
    }

    /// A copy of the current state with the log id it reflects: the log
    /// index is the policy version.
    pub fn versioned(&self) -> (Option<LogId>, ClusterState) {
        let machine = self.shared.read();
        (machine.last_applied, machine.state.clone())
    }

    /// The last log entry applied to the state.
    pub fn last_applied(&self) -> Option<LogId> {
        self.shared.read().last_applied
    }

    /// A channel that changes whenever entries are applied or a snapshot is
    /// installed; its value is the last applied log id. The reconciler
    /// waits on it.
    pub fn subscribe(&self) -> watch::Receiver<Option<LogId>> {
        self.shared.applied.subscribe()
    }

    /// Waits until the entry at `index` has been applied.
    pub async fn wait_applied(&self, index: u64) {
        let mut applied = self.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot fail.
        let _ = applied
            .wait_for(|last| last.is_some_and(|l| l.index >= index))
            .await;
    }
}
