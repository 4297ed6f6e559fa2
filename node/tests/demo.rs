//! `stockade demo` from end to end, as a newcomer runs it: it reaches
//! enforcement, the three intruders are refused, their alerts reach the
//! Slack-compatible receiver, the cluster it leaves answers, and
//! `stockade demo --down` leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::BIN;

/// A port range nothing else on a test machine uses (node N at +N-1).
const CONSOLE_PORT: u16 = 17480;

fn stockade(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run stockade")
}

/// Removes the demo when the test ends, passed or not.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = stockade(&["demo", "--down", "--dir", &self.0.to_string_lossy()]);
    }
}

fn api(token: &str, path: &str) -> Value {
    let url = format!("http://127.0.0.1:{CONSOLE_PORT}{path}");
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(&url)
        .output()
        .expect("run curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// What of a demo is on this machine: namespaces, pins, cgroups, its directory.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut look = |root: &str| {
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("stockade-demo") {
                found.push(format!("{root}/{name}"));
            }
        }
    };
    look("/run/netns");
    look("/sys/fs/bpf");
    look(
        &stockade_bpf::cgroup2_root()
            .expect("cgroup v2")
            .to_string_lossy(),
    );
    if dir.exists() {
        found.push(dir.display().to_string());
    }
    found
}

#[test]
fn the_demo_learns_enforces_blocks_intruders_alerts_and_goes_away() {
    let scratch = tempfile::tempdir().expect("scratch directory");
    let dir = scratch.path().join("demo");
    let dir_arg = dir.to_string_lossy().into_owned();
    assert!(
        leftovers(&dir).is_empty(),
        "a demo is already on this machine: {:?}",
        leftovers(&dir)
    );
    let down = Down(dir.clone());

    let port = CONSOLE_PORT.to_string();
    let out = stockade(&["demo", "--dir", &dir_arg, "--console-port", &port]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stockade demo failed:\n{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "[3/9] A three-node cluster",
        "links learned in zone prod",
        "is in force in all three kernels; the application still works",
        "[9/9] Intruders",
        "The demo cluster is running",
    ] {
        assert!(printed.contains(step), "no {step:?} in:\n{printed}");
    }
    let refusals = printed
        .lines()
        .filter(|l| l.contains("intruder -> 10.77.0.3:5432 refused"))
        .count();
    assert_eq!(refusals, 3, "three intruders refused:\n{printed}");

    // The cluster it leaves answers, with what the walk-through did.
    let token = std::fs::read_to_string(dir.join("admin-token")).expect("the admin token file");
    let token = token.trim();
    assert!(printed.contains(token), "the admin token is printed");
    assert_eq!(api(token, "/v1/zones/prod")["mode"], "enforce");
    let alerts = api(token, "/v1/alerts?limit=100");
    let delivered = |kind: &str| {
        alerts["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["kind"] == kind && a["delivery"]["slack"] == "delivered")
    };
    for kind in ["unknown_binary", "modified_binary"] {
        assert!(delivered(kind), "no delivered {kind} alert: {alerts}");
    }
    assert!(
        delivered("policy_violation") || delivered("baseline_deviation"),
        "no delivered flow alert: {alerts}"
    );
    let slack = std::fs::read_to_string(dir.join("slack.log")).expect("the receiver's log");
    assert!(slack.contains("Modified binary running"), "{slack}");
    // Each node collects its kernel's flow summaries every two seconds, so the
    // records of the last refusals may still be on their way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let denied = api(token, "/v1/flows?action=deny&port=5432");
        if !denied["records"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no denied flow records: {denied}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    // The database link went through the Noise tunnel.
    let topology = api(token, "/v1/topology?level=service");
    let encrypted = topology["edges"].as_array().into_iter().flatten().any(|e| {
        e["from"] == "prod/records/api" && e["to"] == "prod/records/db" && e["encrypted"] == true
    });
    assert!(
        encrypted,
        "no encrypted records-api → records-db edge: {topology}"
    );

    // A second demo is refused while this one runs, naming the way out.
    let again = stockade(&["demo", "--dir", &dir_arg, "--console-port", &port]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("stockade demo --down"));

    let out = stockade(&["demo", "--down", "--dir", &dir_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("The demo is gone"));
    assert!(
        leftovers(&dir).is_empty(),
        "left behind: {:?}",
        leftovers(&dir)
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", CONSOLE_PORT)).is_err(),
        "the forwarder still listens"
    );
    drop(down);
    let out = stockade(&["demo", "--down", "--dir", &dir_arg]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("No demo was running"));
}
