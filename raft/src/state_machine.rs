//! The state machine: the cluster state in memory, snapshots on sled.
//!
//! Committed entries are applied to an in-memory [`ClusterState`]; the state
//! reaches the disk through snapshots, each of which is fsynced before
//! openraft is told it exists. On start the state machine loads the
//! persisted snapshot, and openraft re-applies the log after it (up to the
//! saved committed log id).
//!
//! [`ClusterState`]: stockade_policy::ClusterState

use std::io::Cursor;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};

use crate::error::{decode, encode, Error, Result};
use crate::handle::{Machine, Shared, StateHandle};
use crate::snapshot::SnapshotStore;
use crate::types::{
    Entry, LogId, Response, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// The state machine of one node.
#[derive(Debug)]
pub struct StateMachineStore {
    shared: Shared,
    snapshots: SnapshotStore,
}

impl StateMachineStore {
    /// The state machine kept in `db`, loaded from its persisted snapshot
    /// (or empty).
    pub fn open(db: &sled::Db) -> Result<Self> {
        let snapshots = SnapshotStore::open(db)?;
        let machine = match snapshots.load()? {
            Some((meta, data)) => restore(&meta, &data)?,
            None => Machine::default(),
        };
        Ok(StateMachineStore {
            shared: Shared::new(machine),
            snapshots,
        })
    }

    /// A read handle on the applied state.
    pub fn handle(&self) -> StateHandle {
        self.shared.handle()
    }

    /// Applies one entry to `machine` and says what it did.
    fn apply_entry(machine: &mut Machine, entry: Entry) -> Response {
        machine.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => Response::done(),
            // Each command on its own, in order: a refused command leaves
            // the state as it was and does not stop the ones after it. The
            // entry's index is the policy version its changes make, which
            // the audit log and the policy history record.
            EntryPayload::Normal(request) => Response {
                results: request
                    .commands
                    .iter()
                    .map(|command| command.apply_logged(&mut machine.state, entry.log_id.index))
                    .collect(),
            },
            EntryPayload::Membership(membership) => {
                machine.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                Response::done()
            }
        }
    }
}

/// The machine a snapshot holds. Its meta data is authoritative for how far
/// into the log it reaches.
fn restore(meta: &SnapshotMeta, data: &[u8]) -> Result<Machine> {
    let stored: Machine = decode(data)?;
    Ok(Machine {
        last_applied: meta.last_log_id,
        last_membership: meta.last_membership.clone(),
        state: stored.state,
    })
}

fn snapshot_error(
    meta: Option<&SnapshotMeta>,
    verb: ErrorVerb,
) -> impl FnOnce(Error) -> StorageError + '_ {
    move |e| {
        e.storage(
            ErrorSubject::Snapshot(meta.map(SnapshotMeta::signature)),
            verb,
        )
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let machine = self.shared.read();
        Ok((machine.last_applied, machine.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        Ok(self.shared.write(|machine| {
            entries
                .into_iter()
                .map(|entry| Self::apply_entry(machine, entry))
                .collect()
        }))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let machine = restore(meta, &data).map_err(snapshot_error(Some(meta), ErrorVerb::Read))?;
        // On disk first: once the state machine reflects the snapshot,
        // openraft may purge the log it replaces.
        let saved = self
            .snapshots
            .save(meta, &data)
            .await
            .map_err(snapshot_error(Some(meta), ErrorVerb::Write))?;
        if saved {
            tracing::info!(snapshot = %meta, "installed snapshot");
            self.shared.write(|current| *current = machine);
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let loaded = self
            .snapshots
            .load()
            .map_err(snapshot_error(None, ErrorVerb::Read))?;
        Ok(loaded.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Builds snapshots of the state machine, concurrently with `apply`.
#[derive(Debug)]
pub struct SnapshotBuilder {
    shared: Shared,
    snapshots: SnapshotStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        // Copy under the lock, encode outside it, so `apply` waits only for
        // the copy.
        let machine = self.shared.read().clone();
        let meta = SnapshotMeta {
            last_log_id: machine.last_applied,
            last_membership: machine.last_membership.clone(),
            snapshot_id: snapshot_id(machine.last_applied),
        };
        let data = encode(&machine).map_err(snapshot_error(Some(&meta), ErrorVerb::Write))?;
        self.snapshots
            .save(&meta, &data)
            .await
            .map_err(snapshot_error(Some(&meta), ErrorVerb::Write))?;
        tracing::info!(snapshot = %meta, bytes = data.len(), "built snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// A fresh snapshot id: where the snapshot ends and when it was built (two
/// snapshots at the same log id may still differ in bytes).
fn snapshot_id(last: Option<LogId>) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    match last {
        Some(id) => format!("{}-{}-{nanos}", id.leader_id, id.index),
        None => format!("none-{nanos}"),
    }
}
