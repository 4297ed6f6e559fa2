//! Three Raft members in this process over the real QUIC transport: they
//! form a cluster, converge, survive the loss of their leader, take a
//! restarted member back, bring a lagging one up to date by snapshot, and
//! gather concurrent writes into shared log entries.

mod common;

use std::collections::BTreeSet;

use common::{zone, Cluster, WAIT};
use openraft::RaftLogReader;
use stockade_policy::{Applied, Command};
use stockade_raft::RaftSettings;

fn settings() -> RaftSettings {
    RaftSettings::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_converge_and_survive_the_loss_of_their_leader() {
    let mut cluster = Cluster::form(settings()).await;

    // Writes through the leader and through a follower, which forwards.
    let first = cluster
        .member(1)
        .write(zone("prod"))
        .await
        .expect("write on the leader");
    assert!(matches!(first.result, Ok(Applied::Zone(_))));
    let second = cluster
        .member(2)
        .write(zone("dev"))
        .await
        .expect("write forwarded by a follower");
    assert!(second.log_id.index > first.log_id.index);

    // An invalid command is committed and answered with its error.
    let invalid = cluster
        .member(3)
        .write(Command::RemoveIdentityRule {
            name: "absent".into(),
        })
        .await
        .expect("the write itself succeeds");
    let error = invalid.result.expect_err("the command is refused");
    assert_eq!(error.field, "name");

    cluster.converge(invalid.log_id.index).await;
    let states: Vec<_> = cluster
        .members
        .values()
        .map(|m| m.raft.state().state())
        .collect();
    assert!(states.iter().all(|s| *s == states[0]), "states converge");
    assert_eq!(states[0].zones.len(), 2);

    // A linearizable read on a follower sees every committed write.
    let zones = cluster
        .member(3)
        .read_linearizable(|s| s.zones.len())
        .await
        .expect("linearizable read");
    assert_eq!(zones, 2);

    let status = cluster.member(1).status();
    assert_eq!(status.role, "leader");
    assert_eq!(status.voters.len(), 3);
    assert_eq!(status.applied_index, Some(invalid.log_id.index));

    // The leader goes; the others elect a new one and go on.
    cluster.stop(1).await;
    let leader = cluster.leader_other_than(1).await;
    assert!(leader == 2 || leader == 3);
    let after = cluster
        .member(2)
        .write(zone("staging"))
        .await
        .expect("write after failover");
    cluster.converge(after.log_id.index).await;
    for member in cluster.members.values() {
        assert!(member
            .raft
            .state()
            .read(|s| s.zones.contains_key("staging")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_rejoins_with_its_state() {
    let mut cluster = Cluster::form(settings()).await;
    let before = cluster.member(1).write(zone("prod")).await.expect("write");
    cluster.converge(before.log_id.index).await;

    cluster.stop(3).await;
    {
        // What member 3 acknowledged is on its disk.
        let (mut log, _) = stockade_raft::open(&cluster.data_dir(3)).expect("open its storage");
        let entries = log
            .try_get_log_entries(before.log_id.index..=before.log_id.index)
            .await
            .expect("read its log");
        assert_eq!(entries.len(), 1, "the acknowledged entry is on disk");
    }
    let during = cluster
        .member(1)
        .write(zone("dev"))
        .await
        .expect("write with one member down");

    cluster.start(3).await;
    let restarted = cluster.member(3);
    // From its own disk: the log it had is replayed up to the committed id
    // it saved, before the leader has told it anything new.
    restarted
        .raft()
        .wait(Some(WAIT))
        .applied_index_at_least(Some(before.log_id.index), "replays its own log")
        .await
        .expect("replays its log");
    assert!(restarted.state().read(|s| s.zones.contains_key("prod")));
    // Then from the leader: what it missed.
    cluster.converge(during.log_id.index).await;
    assert!(cluster
        .member(3)
        .state()
        .read(|s| s.zones.contains_key("dev")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_member_is_brought_up_to_date_by_snapshot() {
    // Small snapshots, sent in many small chunks (one streaming call each).
    let small_snapshots = RaftSettings {
        snapshot_every: 5,
        keep_logs_after_snapshot: 0,
        snapshot_chunk_bytes: 256,
        ..settings()
    };
    let mut cluster = Cluster::form(small_snapshots).await;
    let first = cluster.member(1).write(zone("z0")).await.expect("write");
    cluster.converge(first.log_id.index).await;
    cluster.stop(3).await;

    let mut last = first.log_id.index;
    for i in 1..=30 {
        last = cluster
            .member(1)
            .write(zone(&format!("z{i}")))
            .await
            .expect("write")
            .log_id
            .index;
    }
    // The leader has snapshotted and purged past what member 3 holds.
    cluster
        .member(1)
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index > first.log_id.index + 5),
            "the leader purges its log",
        )
        .await
        .expect("the leader purges");

    cluster.start(3).await;
    cluster.converge(last).await;
    let member = cluster.member(3);
    let metrics = member.metrics();
    assert!(
        metrics
            .snapshot
            .is_some_and(|s| s.index > first.log_id.index),
        "member 3 installed a snapshot: {metrics:?}"
    );
    assert_eq!(member.state().state(), cluster.member(1).state().state());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_entries_and_each_gets_its_own_result() {
    const WRITERS: usize = 200;
    let cluster = Cluster::form(settings()).await;
    let before = cluster.member(1).metrics().last_log_index.unwrap_or(0);

    // Half through the leader, half through a follower (which forwards
    // whole batches); every fifth command is refused (no such zone).
    let refused = |i: usize| i.is_multiple_of(5);
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let member = cluster.member(if i % 2 == 0 { 1 } else { 2 }).clone();
            let command = if refused(i) {
                Command::RemoveZone {
                    name: format!("absent-{i}"),
                }
            } else {
                zone(&format!("z{i}"))
            };
            tokio::spawn(async move { member.write(command).await })
        })
        .collect();
    let mut answers = Vec::new();
    for writer in writers {
        answers.push(writer.await.expect("writer").expect("the write commits"));
    }
    let last = answers
        .iter()
        .map(|c| c.log_id.index)
        .max()
        .expect("answers");
    cluster.converge(last).await;

    let state = cluster.member(3).state().state();
    let mut zone_ids = BTreeSet::new();
    for (i, answer) in answers.iter().enumerate() {
        if refused(i) {
            let error = answer.result.clone().expect_err("refused");
            assert_eq!(error.field, "name", "command {i}");
        } else {
            let Ok(Applied::Zone(id)) = answer.result else {
                panic!("command {i}: {:?}", answer.result);
            };
            assert_eq!(state.zones[&format!("z{i}")].id, id, "command {i}");
            assert!(zone_ids.insert(id), "zone id {id:?} given twice");
        }
    }
    assert_eq!(state.zones.len(), WRITERS - WRITERS / 5);

    let entries = cluster.member(1).metrics().last_log_index.unwrap_or(0) - before;
    let indexes: BTreeSet<u64> = answers.iter().map(|c| c.log_id.index).collect();
    eprintln!("{WRITERS} commands in {entries} log entries");
    assert!(
        entries < WRITERS as u64 / 4,
        "{WRITERS} commands took {entries} log entries"
    );
    assert!(indexes.len() as u64 <= entries);
}
