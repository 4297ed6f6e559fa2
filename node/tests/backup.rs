//! Backup and restore on a real three-node cluster (see DESIGN.md): a
//! backup taken, the policy changed and the backup restored gives the
//! durable state back byte for byte on every node; a tampered or foreign
//! backup is refused and changes nothing; a cluster wiped and initialised
//! anew takes the backup with `--allow-foreign`; periodic backups appear in
//! the configured directory and are rotated.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;
use sha2::Digest as _;
use stockade_chaos::netlab::Lab;
use stockade_chaos::nodes::{wait_for, Nodes};

use common::{call, cli_as, BIN, SETTLE};

const POLICY: &str = include_str!("../assets/demo-cluster-policy.toml");

fn ok(output: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

fn refused(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "accepted: {text}");
    text
}

/// The durable digest every node of `hosts` reports, once they agree on
/// `expected`.
fn wait_for_durable(nodes: &Nodes, hosts: &[usize], expected: &str) {
    wait_for(
        &format!("durable digest {expected} everywhere"),
        SETTLE,
        || {
            let seen: Vec<String> = hosts
                .iter()
                .map(|&h| {
                    call(nodes, h, "GET", "/v1/state/digest", None)["durable_digest"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect();
            (
                seen.iter().all(|d| d == expected).then_some(()),
                format!("{seen:?}"),
            )
        },
    )
    .expect("every node holds the restored state");
}

fn durable(nodes: &Nodes, host: usize) -> String {
    call(nodes, host, "GET", "/v1/state/digest", None)["durable_digest"]
        .as_str()
        .expect("a durable digest")
        .to_owned()
}

/// The backup files of `dir`.
fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".backup"))
                .collect()
        })
        .unwrap_or_default()
}

fn form(nodes: &mut Nodes, backups: &Path) {
    nodes.node_args = vec![
        "--no-dataplane".into(),
        "--backup-dir".into(),
        backups.display().to_string(),
        "--backup-interval".into(),
        "2s".into(),
        "--backup-keep".into(),
        "2".into(),
    ];
    nodes.form_cluster(3, SETTLE).expect("the cluster forms");
    wait_for("three voters", SETTLE, || {
        let n = nodes.members(1, "voters").len();
        ((n == 3).then_some(()), format!("{n}"))
    })
    .expect("three voters");
}

#[test]
fn a_backup_restores_byte_for_byte_and_a_tampered_or_foreign_one_is_refused() {
    let lab = Lab::new(3).expect("a three-host lab");
    let dir = tempfile::tempdir().expect("temp dir");
    let backups = dir.path().join("backups");
    let first = dir.path().join("first");
    let mut nodes =
        Nodes::init(&lab, Path::new(BIN), &first, &["--no-dataplane"]).expect("stockade init");
    form(&mut nodes, &backups);
    let admin = nodes.admin_token.clone();

    // Policy with a sink holding a secret, and a second token.
    call(&nodes, 2, "PUT", "/v1/policy", Some(POLICY));
    let created = call(
        &nodes,
        3,
        "POST",
        "/v1/tokens",
        Some(r#"{"name":"ops","role":"operator"}"#),
    );
    let ops = created["token"].as_str().expect("a token").to_owned();

    // Periodic backups: recorded in the state, written 0600, rotated to 2.
    wait_for("periodic backups, two kept", SETTLE, || {
        let last = call(&nodes, 3, "GET", "/v1/backup/last", None);
        let names = files(&backups);
        let taken = last["file"].as_str().map(str::to_owned);
        let done = names.len() == 2 && taken.as_ref().is_some_and(|f| names.contains(f));
        // Two kept of more taken: the oldest recorded file is gone.
        (
            (done && last["source_index"].as_u64() > Some(0)).then_some(last.clone()),
            format!("{names:?} {last}"),
        )
    })
    .expect("periodic backups");
    let seen: BTreeSet<String> = (0..10)
        .flat_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(700));
            files(&backups)
        })
        .collect();
    assert!(seen.len() > 2, "backups are rotated: {seen:?}");
    assert!(files(&backups).len() <= 2);
    for name in files(&backups) {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(backups.join(&name)).map(|m| m.permissions().mode());
        assert_eq!(mode.ok().map(|m| m & 0o777), Some(0o600), "{name}");
    }

    // An on-demand backup, and the durable digest it holds.
    let file = dir.path().join("cluster.backup");
    ok(&cli_as(
        &lab,
        &nodes,
        1,
        &admin,
        &["backup", "-o", &file.display().to_string()],
    ));
    let text = std::fs::read_to_string(&file).expect("the backup");
    assert!(
        text.contains("http://10.77.0.1:9099/services/demo"),
        "secrets are kept"
    );
    let header: Value = serde_json::from_str(text.lines().nth(1).expect("header")).expect("json");
    let expected = header["durable_digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    assert_eq!(durable(&nodes, 1), expected);

    // Tampered backups are refused and change nothing.
    let damaged = dir.path().join("damaged.backup");
    std::fs::write(&damaged, text.replacen("services/demo", "services/evil", 1)).expect("write");
    let err = refused(&cli_as(
        &lab,
        &nodes,
        2,
        &admin,
        &["restore", &damaged.display().to_string()],
    ));
    assert!(err.contains("checksum does not match"), "{err}");
    let forged = dir.path().join("forged.backup");
    std::fs::write(&forged, forge(&text)).expect("write");
    let err = refused(&cli_as(
        &lab,
        &nodes,
        2,
        &admin,
        &["restore", &forged.display().to_string()],
    ));
    assert!(err.contains("not signed by this cluster"), "{err}");
    let err = refused(&cli_as(
        &lab,
        &nodes,
        2,
        &ops,
        &["restore", &file.display().to_string()],
    ));
    assert!(err.contains("admin"), "{err}");
    wait_for_durable(&nodes, &[1, 2, 3], &expected);

    // Change the policy, then restore: every node is back, byte for byte.
    call(
        &nodes,
        1,
        "PUT",
        "/v1/zones/extra",
        Some(r#"{"mode":"learn"}"#),
    );
    call(&nodes, 1, "DELETE", "/v1/sinks/slack", None);
    assert_ne!(durable(&nodes, 1), expected);
    ok(&cli_as(
        &lab,
        &nodes,
        3,
        &admin,
        &["restore", &file.display().to_string()],
    ));
    wait_for_durable(&nodes, &[1, 2, 3], &expected);

    // A policy bundle to share: no numbers, no sinks; merging it back into
    // the cluster it came from changes nothing.
    let bundle = dir.path().join("bundle.toml");
    let path = bundle.display().to_string();
    ok(&cli_as(
        &lab,
        &nodes,
        1,
        &admin,
        &["policy", "export", "--bundle", "-o", &path],
    ));
    let shared = std::fs::read_to_string(&bundle).expect("the bundle");
    assert!(
        shared.contains("[[zone]]") && !shared.contains("id ="),
        "{shared}"
    );
    assert!(
        !shared.contains("[[sink]]") && !shared.contains("9099"),
        "{shared}"
    );
    let merged = ok(&cli_as(
        &lab,
        &nodes,
        2,
        &admin,
        &["policy", "import", &path],
    ));
    assert!(merged.contains("No change"), "{merged}");

    // Disaster: every node and its data gone; a new cluster on the same hosts.
    for host in 1..=3 {
        nodes.kill(host).expect("kill");
        nodes.wipe(host).expect("wipe");
    }
    drop(nodes);
    let second = dir.path().join("second");
    let mut nodes =
        Nodes::init(&lab, Path::new(BIN), &second, &["--no-dataplane"]).expect("a new cluster");
    form(&mut nodes, &backups);
    let fresh = nodes.admin_token.clone();
    let err = refused(&cli_as(
        &lab,
        &nodes,
        1,
        &fresh,
        &["restore", &file.display().to_string()],
    ));
    assert!(
        err.contains("another cluster") && err.contains("--allow-foreign"),
        "{err}"
    );
    let path = file.display().to_string();
    ok(&cli_as(
        &lab,
        &nodes,
        1,
        &fresh,
        &["restore", &path, "--allow-foreign"],
    ));
    // The old admin token works again; the new cluster's own is revoked
    // with it, and the durable state is the backup's, byte for byte.
    let fresh_id = fresh.split('_').nth(1).expect("token id").to_owned();
    let reply = nodes
        .api(
            2,
            "DELETE",
            &format!("/v1/tokens/{fresh_id}"),
            Some(&admin),
            None,
        )
        .expect("curl");
    assert_eq!(reply.status, 200, "{}", reply.body);
    nodes.admin_token = admin.clone();
    wait_for_durable(&nodes, &[1, 2, 3], &expected);
    // The old cluster's audit trail came with the backup (the `ops` token
    // was created there); the restore and the revocation follow it.
    let audit = call(&nodes, 3, "GET", "/v1/audit?limit=1000", None);
    let kinds: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        audit
            .to_string()
            .contains("\"token_name\":\"created by stockade init\""),
        "{audit}"
    );
    let created_ops = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .any(|e| e["kind"] == "create_api_token" && e["detail"].to_string().contains("ops"));
    assert!(created_ops, "the old cluster's entries are kept: {audit}");
    assert!(
        kinds.ends_with(&["restore", "revoke_api_token"]),
        "the restore, then the revocation, follow the old entries: {kinds:?}"
    );
    // The new cluster's periodic backups are its own, kept apart.
    wait_for("the new cluster's backups", SETTLE, || {
        let prefixes: BTreeSet<String> = files(&backups)
            .iter()
            .map(|n| n.split('-').take(2).collect::<Vec<_>>().join("-"))
            .collect();
        ((prefixes.len() == 2).then_some(()), format!("{prefixes:?}"))
    })
    .expect("both clusters' backups");
}

/// `text` with the sink's secret changed and its digests and checksum
/// recomputed: only the HMAC, which needs the cluster's key, is stale.
fn forge(text: &str) -> String {
    let hex = |bytes: &[u8]| -> String {
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let lines: Vec<&str> = text.lines().collect();
    let state = lines[2].replace("services/demo", "services/evil");
    let mut header: Value = serde_json::from_str(lines[1]).expect("header");
    header["durable_digest"] = Value::String(hex(state.as_bytes()));
    // Magic, header, state, audit log, HMAC: everything but the checksum.
    let signed = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        lines[0], header, state, lines[3], lines[4]
    );
    let sum = hex(signed.as_bytes());
    format!("{signed}sha256 {sum}\n")
}
