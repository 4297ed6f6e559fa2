//! Short seeded chaos runs: real `stockade` nodes in network namespaces
//! under a client workload and faults, checked by `stockade-chaos`'s
//! checkers (linearizability, no lost write, identical state machines,
//! kernel maps equal to the compiled policy, every alert delivered, the
//! kernel refusing the intruder throughout, no panic). Longer runs are
//! `stockade-chaos run` (see the README).
//!
//! The runs take the machine's two cores: one at a time.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use stockade_chaos::faults::parse_list;
use stockade_chaos::run::{run, Options};
use stockade_chaos::workload::WorkloadConfig;

mod common;

use common::{netcheck, BIN};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn scenario(nodes: usize, voters: usize, faults: &str, seconds: u64, seed: u64) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let out = tempfile::tempdir().expect("temp dir");
    let options = Options {
        nodes,
        voters,
        duration: Duration::from_secs(seconds),
        seed,
        faults: parse_list(faults).expect("known faults"),
        clients: 3,
        workload: WorkloadConfig {
            registers: 4,
            sets: 2,
            think: Duration::from_millis(30),
        },
        hold: (Duration::from_secs(2), Duration::from_secs(5)),
        quiet: (Duration::from_secs(1), Duration::from_secs(3)),
        out: out.path().to_owned(),
        stockade: Path::new(BIN).to_owned(),
        netcheck: netcheck(),
    };
    let report = run(&options, &AtomicBool::new(false)).expect("the run is carried out");
    let summary = report.summary();
    eprintln!("{summary}");
    if !report.passed() {
        let kept = out.keep();
        panic!(
            "a checker failed; the report is in {}:\n{summary}",
            kept.display()
        );
    }
    assert!(!report.faults.is_empty(), "no fault was injected");
    assert!(
        report.operations.ok > 100,
        "too few operations succeeded: {summary}"
    );
    for file in [
        "report.json",
        "summary.txt",
        "history.jsonl",
        "timeline.svg",
    ] {
        let path = out.path().join(file);
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        assert!(len > 0, "{} is missing or empty", path.display());
    }
}

#[test]
fn three_nodes_keep_every_acknowledged_write_across_crashes_and_pauses() {
    scenario(
        3,
        3,
        "kill,kill-leader,pause,pause-leader,crash-enforce",
        40,
        7,
    );
}

#[test]
fn five_nodes_stay_linearizable_across_partitions_and_bad_links() {
    scenario(5, 5, "partitions,links", 50, 11);
}

#[test]
fn membership_changes_and_rolling_restarts_under_load_lose_nothing() {
    scenario(4, 3, "membership,rolling-restart,kill", 40, 23);
}
