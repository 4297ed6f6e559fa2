use super::*;
use crate::fixtures::{allow, app, sample};
use crate::{Command, Mode, NodeId, Provenance, Role, Severity, SinkTarget};

fn author(name: &str) -> Author {
    Author {
        token_id: format!("id{name}"),
        token_name: name.into(),
        role: Role::Admin,
    }
}

fn by(name: &str, command: Command) -> Command {
    Command::Audited {
        by: Provenance {
            author: author(name),
            address: None,
            node: NodeId(1),
            at_ms: 42,
        },
        command: Box::new(command),
    }
}

fn sink(url: &str) -> Command {
    Command::UpsertSink(AlertSink {
        name: "team".into(),
        target: SinkTarget::Slack {
            webhook_url: Secret(url.into()),
        },
        min_severity: Severity::Warning,
        zones: vec![],
        apps: vec![],
        classes: vec![],
        max_per_minute: None,
        audit: false,
    })
}

fn mode(name: &str, mode: Mode) -> Command {
    Command::UpsertZone {
        id: None,
        name: name.into(),
        mode,
        description: String::new(),
    }
}

#[test]
fn every_policy_change_is_a_version_with_its_author_and_diff() {
    let mut state = sample();
    by("alice", mode("dev", Mode::Alert))
        .apply_logged(&mut state, 10)
        .expect("valid");
    // Not a policy change: no version.
    Command::RemoveNode { id: NodeId(99) }
        .apply_logged(&mut state, 11)
        .expect_err("no such node");
    by("bob", sink("https://hooks.test/secret-one"))
        .apply_logged(&mut state, 12)
        .expect("valid");
    let versions: Vec<u64> = state.history.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, [10, 12]);
    let v10 = state.history.get(10).expect("held");
    assert_eq!(v10.authors, [author("alice")]);
    assert_eq!(v10.at_ms, Some(42));
    assert_eq!(
        v10.counts(),
        ChangeCounts {
            added: 0,
            removed: 0,
            changed: 1
        }
    );
    let shown = state.history.get(12).expect("held").diff().to_string();
    assert!(shown.starts_with("+ sink team"), "{shown}");
    assert!(!shown.contains("secret-one"), "{shown}");
}

#[test]
fn rollback_restores_the_old_policy_secrets_included_as_a_new_version() {
    let mut state = sample();
    by("alice", sink("https://hooks.test/old-secret"))
        .apply_logged(&mut state, 5)
        .expect("valid");
    let at_5 = snapshot(&state);
    by("bob", sink("https://hooks.test/new-secret"))
        .apply_logged(&mut state, 6)
        .expect("valid");
    by("bob", mode("prod", Mode::Learn))
        .apply_logged(&mut state, 7)
        .expect("valid");
    by(
        "bob",
        Command::UpsertRule {
            id: None,
            spec: allow(app("prod", "web"), app("prod", "db"), &["6379"]),
        },
    )
    .apply_logged(&mut state, 8)
    .expect("valid");
    let next_rule = state.next_rule_id;

    by("carol", Command::RollbackPolicy { to: 5 })
        .apply_logged(&mut state, 9)
        .expect("rolls back");
    assert_eq!(snapshot(&state), at_5);
    // Nothing is rewritten: the rollback is a version of its own, numbers
    // handed out since stay handed out.
    let v9 = state.history.get(9).expect("a new version");
    assert_eq!(v9.rollback_to, Some(5));
    assert_eq!(v9.authors, [author("carol")]);
    assert!(state.history.get(8).is_some());
    assert_eq!(state.next_rule_id, next_rule);
    let audit = state.audit.entries.back().expect("audited");
    assert_eq!(audit.kind, "rollback_policy");
    assert!(audit.detail.contains("\"to\":5"), "{}", audit.detail);
    // A second rollback to the same version has nothing to do.
    let err = Command::RollbackPolicy { to: 5 }
        .validate(&state)
        .expect_err("no change");
    assert!(err.reason.contains("not changed since version 5"), "{err}");
    // Rolling back the rollback is a rollback too.
    Command::RollbackPolicy { to: 8 }
        .apply_logged(&mut state, 10)
        .expect("rolls forward");
    assert!(matches!(
        &state.sinks["team"].target,
        SinkTarget::Slack { webhook_url } if webhook_url.0.ends_with("new-secret")
    ));
}

#[test]
fn versions_past_the_retention_are_dropped_and_cannot_be_reached() {
    let mut state = sample();
    state.settings.history_retention = 3;
    for (i, m) in [
        Mode::Alert,
        Mode::Learn,
        Mode::Enforce,
        Mode::Alert,
        Mode::Learn,
    ]
    .into_iter()
    .enumerate()
    {
        mode("dev", m)
            .apply_logged(&mut state, 20 + i as u64)
            .expect("valid");
    }
    let versions: Vec<u64> = state.history.versions.iter().map(|v| v.version).collect();
    assert_eq!(versions, [22, 23, 24]);
    assert_eq!(state.history.trimmed, 2);
    let err = Command::RollbackPolicy { to: 21 }
        .validate(&state)
        .expect_err("too old");
    assert_eq!(err.field, "to");
    assert!(
        err.reason.contains("oldest policy version kept (22)"),
        "{err}"
    );
    assert!(Command::RollbackPolicy { to: 22 }.validate(&state).is_ok());
}

#[test]
fn writes_sharing_a_log_entry_make_one_version() {
    let mut state = sample();
    by("alice", mode("dev", Mode::Alert))
        .apply_logged(&mut state, 30)
        .expect("valid");
    by("bob", mode("dev", Mode::Learn))
        .apply_logged(&mut state, 31)
        .expect("valid");
    by("carol", mode("prod", Mode::Alert))
        .apply_logged(&mut state, 31)
        .expect("valid");
    let v31 = state.history.get(31).expect("one version");
    assert_eq!(state.history.versions.len(), 2);
    assert_eq!(v31.authors, [author("bob"), author("carol")]);
    assert_eq!(v31.changes.len(), 2);
    // Changed and changed back within one entry: no change at all.
    mode("prod", Mode::Enforce)
        .apply_logged(&mut state, 31)
        .expect("valid");
    assert_eq!(state.history.get(31).expect("held").changes.len(), 1);
}
