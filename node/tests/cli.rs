//! The `stockade` binary, run as a user would run it.

use std::path::Path;
use std::process::{Command, Output};

fn stockade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stockade"))
        .args(args)
        .output()
        .expect("the stockade binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a test policy");
    path.to_str().expect("temp paths are UTF-8").to_owned()
}

fn default_policy() -> String {
    let out = stockade(&["policy", "default"]);
    assert!(out.status.success());
    text(&out.stdout)
}

#[test]
fn help_lists_the_subcommands() {
    let out = stockade(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for sub in ["policy", "uninstall", "demo"] {
        assert!(help.contains(sub), "--help lacks `{sub}`:\n{help}");
    }
}

#[test]
fn the_embedded_policy_checks_clean() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "policy.toml", &default_policy());
    let out = stockade(&["policy", "check", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("valid") && report.contains("zone ehr"),
        "{report}"
    );
}

#[test]
fn an_invalid_policy_is_refused_naming_the_entry_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = default_policy().replacen(
        "to = { zone = \"ehr\", app = \"records\", service = \"db\" }",
        "to = { zone = \"ehr\", app = \"records\", service = \"cache\" }",
        1,
    );
    let file = write(dir.path(), "broken.toml", &broken);
    let out = stockade(&["policy", "check", &file]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("rule[1].to.service") && err.contains("ehr/records/cache"),
        "{err}"
    );

    let garbled = write(
        dir.path(),
        "garbled.toml",
        "[[zone]]\nname = \"prod\"\nmode = \"strict\"\n",
    );
    let out = stockade(&["policy", "check", &garbled]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("garbled.toml") && err.contains("strict"),
        "{err}"
    );
}

#[test]
fn diff_shows_a_mode_change_and_gates_ci() {
    let dir = tempfile::tempdir().expect("temp dir");
    let before = default_policy();
    let after = before.replacen("mode = \"alert\"", "mode = \"enforce\"", 1);
    let (a, b) = (
        write(dir.path(), "a.toml", &before),
        write(dir.path(), "b.toml", &after),
    );
    let out = stockade(&["policy", "diff", &a, &b, "--exit-code"]);
    assert_eq!(out.status.code(), Some(1));
    let shown = text(&out.stdout);
    assert!(shown.contains("~ zone billing"), "{shown}");
    let same = stockade(&["policy", "diff", &a, &a, "--exit-code"]);
    assert!(same.status.success());
    assert!(text(&same.stdout).contains("no differences"));
}

#[test]
fn decide_names_the_rule_behind_the_verdict() {
    let out = stockade(&[
        "policy",
        "decide",
        "--from",
        "ehr/records/api",
        "--to",
        "ehr/records/db",
        "--port",
        "5432",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("allow by rule 17") && shown.ends_with("allowed\n"),
        "{shown}"
    );

    let out = stockade(&[
        "policy",
        "decide",
        "--from",
        "dev/sandbox/shell",
        "--to",
        "ehr/records/db",
        "--port",
        "5432",
    ]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("zone isolation") && shown.ends_with("denied\n"),
        "{shown}"
    );

    let out = stockade(&[
        "policy",
        "decide",
        "--from",
        "ehr/nobody/x",
        "--to",
        "1.2.3.4",
        "--port",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no identity `ehr/nobody/x`"));
}

#[test]
fn inventory_names_the_identity_a_policy_gives_each_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = r#"
        [[zone]]
        name = "tools"
        mode = "learn"

        [[identity]]
        zone = "tools"
        app = "sleeper"
        service = "main"

        [[identity_rule]]
        name = "sleepers"
        identity = { zone = "tools", app = "sleeper", service = "main" }
        match = { exe_path = "/usr/bin/sleep" }
    "#;
    let file = write(dir.path(), "inventory.toml", policy);
    let mut child = Command::new("/usr/bin/sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let out = stockade(&["policy", "inventory", "--policy", &file]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let line = listing
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{} ", child.id())))
        .unwrap_or_else(|| panic!("pid {} not listed:\n{listing}", child.id()));
    assert!(
        line.contains("tools/sleeper/main (rule sleepers)"),
        "{line}"
    );
}
