//! The files an installation uses, against the binary they drive:
//! `packaging/stockade.service` must be a valid unit whose `ExecStart` is
//! a real `stockade` command line, and every `stockade` command in
//! `docs/install.md` must exist with the flags it is given.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_stockade");
const UNIT: &str = include_str!("../../packaging/stockade.service");
const GUIDE: &str = include_str!("../../docs/install.md");

/// The unit's `Key=Value` lines by section.
fn sections(unit: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = None;
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_owned());
            continue;
        }
        let (key, value) = line.split_once('=').expect("Key=Value");
        let section = section.clone().expect("a key before any section");
        out.entry(section)
            .or_default()
            .push((key.to_owned(), value.to_owned()));
    }
    out
}

fn value<'a>(sections: &'a BTreeMap<String, Vec<(String, String)>>, key: &str) -> &'a str {
    sections["Service"]
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("[Service] has no {key}="))
}

/// `stockade ARGS --help`, which must succeed.
fn help(args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .arg("--help")
        .output()
        .expect("run stockade");
    assert!(
        output.status.success(),
        "`stockade {} --help` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Checks that `words` (after `stockade`) name a subcommand path whose
/// help lists every `--flag` among them.
fn check_command(words: &[&str]) {
    if words.iter().all(|w| w.starts_with("--")) {
        // `stockade --version` and the like.
        let status = Command::new(BIN)
            .args(words)
            .output()
            .expect("run stockade")
            .status;
        assert!(status.success(), "`stockade {}` fails", words.join(" "));
        return;
    }
    let path: Vec<&str> = words
        .iter()
        .copied()
        .take_while(|w| {
            !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .collect();
    // The longest prefix that is a subcommand path (the rest are positionals).
    let mut len = path.len();
    let text = loop {
        let output = Command::new(BIN)
            .args(&path[..len])
            .arg("--help")
            .output()
            .expect("run stockade");
        if output.status.success() {
            break String::from_utf8_lossy(&output.stdout).into_owned();
        }
        assert!(len > 0, "`stockade {}` is no command", words.join(" "));
        len -= 1;
    };
    assert!(
        len > 0,
        "`stockade {}` names no subcommand",
        words.join(" ")
    );
    for flag in words.iter().filter(|w| w.starts_with("--")) {
        let flag = flag.split('=').next().unwrap_or(flag);
        assert!(
            text.contains(&format!("{flag} "))
                || text.contains(&format!("{flag}\n"))
                || text.contains(&format!("{flag}=")),
            "`stockade {}` has no flag {flag}:\n{text}",
            path[..len].join(" ")
        );
    }
}

#[test]
fn the_unit_runs_a_real_command_with_the_settings_the_daemon_needs() {
    let sections = sections(UNIT);
    assert!(["Unit", "Service", "Install"]
        .iter()
        .all(|s| sections.contains_key(*s)));
    let exec = value(&sections, "ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/stockade"));
    let args: Vec<&str> = words.collect();
    assert_eq!(args, ["start", "--data-dir", "/var/lib/stockade"]);
    check_command(&args);
    assert_eq!(value(&sections, "Restart"), "on-failure");
    assert_eq!(value(&sections, "KillSignal"), "SIGTERM");
    assert_eq!(value(&sections, "LimitMEMLOCK"), "infinity");
    let caps = value(&sections, "CapabilityBoundingSet");
    for cap in [
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_NET_ADMIN",
        "CAP_SYS_ADMIN",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_PTRACE",
    ] {
        assert!(caps.split_whitespace().any(|c| c == cap), "{cap} missing");
    }
    // A private mount namespace would take the pins down with the daemon.
    for key in [
        "ProtectSystem",
        "PrivateTmp",
        "ProtectControlGroups",
        "PrivateMounts",
    ] {
        assert!(
            !sections["Service"].iter().any(|(k, _)| k == key),
            "{key}= would give the daemon a mount namespace of its own"
        );
    }
}

#[test]
fn systemd_accepts_the_unit() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed; skipped");
        return;
    };
    assert!(probe.status.success());
    // `verify` checks the executable exists: point it at the built binary.
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = dir.path().join("stockade.service");
    std::fs::write(&unit, UNIT.replace("/usr/local/bin/stockade", BIN)).expect("write unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // It warns (exit 0) about unknown keys or bad values: none may be about the unit.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("stockade.service"))
        .collect();
    assert!(
        output.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    assert!(Path::new(BIN).exists());
}

#[test]
fn every_command_in_the_install_guide_exists() {
    // The guide's code blocks, with `\`-continued lines joined.
    let mut in_code = false;
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in GUIDE.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        match line.trim_end().strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    let mut checked = 0;
    for line in &lines {
        // A command may follow `sudo`, an environment assignment or `$(`.
        for part in line.split("$(").flat_map(|p| p.split("&&")) {
            let words: Vec<&str> = part
                .split('#')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .skip_while(|w| *w == "sudo" || w.contains('='))
                .collect();
            if words.first() == Some(&"stockade") {
                check_command(&words[1..]);
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 8,
        "only {checked} stockade commands found in the guide"
    );
    // Ask the binary directly for a few it must have.
    help(&["certs", "rotate"]);
    help(&["certs", "status"]);
}
