//! The sled storage: openraft's own storage test suite, and what must
//! survive a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftLogReader, RaftSnapshotBuilder};
use stockade_policy::{Applied, Command, Mode, ZoneId};
use stockade_raft::{
    Entry, LogId, LogStore, NodeAddr, Request, StateMachineStore, StorageError, TypeConfig, Vote,
};
use tempfile::TempDir;

/// Opens a fresh database in a temporary folder; the folder is the guard.
struct TempStore;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for TempStore {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temporary folder");
        let (log, sm) = stockade_raft::open(dir.path()).expect("open storage");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(TempStore) {
        panic!("openraft's storage suite fails: {e}");
    }
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn command(term: u64, index: u64, command: Command) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::from(command)),
    }
}

fn zone(name: &str) -> Command {
    Command::UpsertZone {
        id: None,
        name: name.into(),
        mode: Mode::Enforce,
        description: String::new(),
    }
}

fn membership(term: u64, index: u64) -> Entry {
    let voters = BTreeSet::from([1]);
    let nodes: BTreeMap<u64, NodeAddr> = [(1, NodeAddr::new("127.0.0.1:7100"))].into();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![voters], nodes)),
    }
}

fn open(dir: &Path) -> (LogStore, StateMachineStore) {
    stockade_raft::open(dir).expect("open storage")
}

#[tokio::test]
async fn entries_survive_reopening() {
    let dir = tempfile::tempdir().expect("temporary folder");
    {
        let (mut log, _sm) = open(dir.path());
        log.blocking_append([membership(1, 1), command(1, 2, zone("prod"))])
            .await
            .expect("append");
        log.blocking_append([command(1, 3, zone("dev"))])
            .await
            .expect("append");
    }
    let (mut log, _sm) = open(dir.path());
    let entries = log.try_get_log_entries(1..=3).await.expect("read back");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2], command(1, 3, zone("dev")));
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_log_id, Some(log_id(1, 3)));
    assert_eq!(state.last_purged_log_id, None);
}

#[tokio::test]
async fn truncate_and_purge_survive_reopening() {
    let dir = tempfile::tempdir().expect("temporary folder");
    {
        let (mut log, _sm) = open(dir.path());
        let entries = (1..=10).map(|i| command(1, i, zone(&format!("z{i}"))));
        log.blocking_append(entries).await.expect("append");
        log.truncate(log_id(1, 8)).await.expect("truncate");
        log.purge(log_id(1, 3)).await.expect("purge");
    }
    let (mut log, _sm) = open(dir.path());
    let indexes: Vec<u64> = log
        .try_get_log_entries(..)
        .await
        .expect("read back")
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, vec![4, 5, 6, 7]);
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
    assert_eq!(state.last_log_id, Some(log_id(1, 7)));
}

#[tokio::test]
async fn vote_and_committed_survive_reopening() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let vote = Vote::new_committed(4, 2);
    {
        let (mut log, _sm) = open(dir.path());
        log.save_vote(&vote).await.expect("save vote");
        log.save_committed(Some(log_id(4, 9)))
            .await
            .expect("save committed");
    }
    let (mut log, _sm) = open(dir.path());
    assert_eq!(log.read_vote().await.expect("read vote"), Some(vote));
    assert_eq!(
        log.read_committed().await.expect("read committed"),
        Some(log_id(4, 9))
    );
}

#[tokio::test]
async fn a_snapshot_persists_and_is_reloaded() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let built = {
        let (_log, mut sm) = open(dir.path());
        sm.apply([membership(1, 1), command(1, 2, zone("prod"))])
            .await
            .expect("apply");
        let mut builder = sm.get_snapshot_builder().await;
        builder.build_snapshot().await.expect("build snapshot")
    };
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 2)));

    let (_log, mut sm) = open(dir.path());
    let current = sm
        .get_current_snapshot()
        .await
        .expect("read snapshot")
        .expect("a snapshot was persisted");
    assert_eq!(current.meta, built.meta);
    let (applied, membership) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(1, 2)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 1)));
    let handle = sm.handle();
    assert!(handle.read(|state| state.zones.contains_key("prod")));
    assert_eq!(handle.last_applied(), Some(log_id(1, 2)));
}

#[tokio::test]
async fn an_installed_snapshot_replaces_the_state_and_persists() {
    let leader_dir = tempfile::tempdir().expect("temporary folder");
    let follower_dir = tempfile::tempdir().expect("temporary folder");
    let (_leader_log, mut leader) = open(leader_dir.path());
    leader
        .apply([membership(1, 1), command(1, 2, zone("prod"))])
        .await
        .expect("apply");
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    {
        let (_log, mut follower) = open(follower_dir.path());
        follower
            .apply([command(1, 1, zone("stale"))])
            .await
            .expect("apply");
        follower
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .expect("install");
        let state = follower.handle().state();
        assert!(state.zones.contains_key("prod") && !state.zones.contains_key("stale"));
    }
    let (_log, mut follower) = open(follower_dir.path());
    assert_eq!(
        follower.applied_state().await.expect("applied").0,
        Some(log_id(1, 2))
    );
    assert!(follower.handle().read(|s| s.zones.contains_key("prod")));
}

#[tokio::test]
async fn an_invalid_command_answers_its_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (_log, mut sm) = open(dir.path());
    let invalid = Command::RemoveIdentityRule {
        name: "nothing-by-this-name".into(),
    };
    let responses = sm
        .apply([command(1, 1, zone("prod")), command(1, 2, invalid)])
        .await
        .expect("apply");
    assert_eq!(responses[0].results, [Ok(Applied::Zone(ZoneId(1)))]);
    let error = responses[1].results[0]
        .clone()
        .expect_err("the command is invalid");
    assert_eq!(error.field, "name");

    let before = sm.handle().state();
    let responses = sm
        .apply([command(
            1,
            3,
            Command::batch(vec![
                zone("dev"),
                Command::RemoveIdentityRule { name: "no".into() },
            ]),
        )])
        .await
        .expect("apply");
    assert!(responses[0].results[0].is_err());
    assert_eq!(
        sm.handle().state(),
        before,
        "a refused batch changes nothing"
    );
    assert_eq!(sm.handle().last_applied(), Some(log_id(1, 3)));
}

#[tokio::test]
async fn the_commands_of_one_entry_apply_one_by_one() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (_log, mut sm) = open(dir.path());
    let entry = Entry {
        log_id: log_id(1, 1),
        payload: EntryPayload::Normal(Request::from(vec![
            zone("prod"),
            // Refused: nothing by this name. Its neighbours still apply.
            Command::RemoveZone {
                name: "absent".into(),
            },
            zone("dev"),
            // Sees the zone the command before it created.
            Command::RemoveZone { name: "dev".into() },
            // All or nothing within the batch command, alone outside it.
            Command::batch(vec![
                zone("staging"),
                Command::RemoveZone { name: "no".into() },
            ]),
            zone("qa"),
        ])),
    };
    let responses = sm.apply([entry]).await.expect("apply");
    assert_eq!(responses.len(), 1, "one response per entry");
    let results = &responses[0].results;
    assert_eq!(results.len(), 6, "one result per command");
    assert_eq!(results[0], Ok(Applied::Zone(ZoneId(1))));
    assert_eq!(results[1].clone().expect_err("refused").field, "name");
    assert_eq!(results[2], Ok(Applied::Zone(ZoneId(2))));
    assert_eq!(results[3], Ok(Applied::Done));
    assert!(results[4].is_err());
    assert_eq!(results[5], Ok(Applied::Zone(ZoneId(3))));

    let state = sm.handle().state();
    let zones: Vec<&str> = state.zones.keys().map(String::as_str).collect();
    assert_eq!(zones, ["prod", "qa"]);
    assert_eq!(sm.handle().last_applied(), Some(log_id(1, 1)));
}
