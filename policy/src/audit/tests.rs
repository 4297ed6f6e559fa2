use std::net::SocketAddr;

use super::*;
use crate::fixtures::sample;
use crate::{AlertSink, Mode, Secret, SinkTarget};

fn provenance(name: &str, at_ms: u64) -> Provenance {
    Provenance {
        author: Author {
            token_id: format!("id{name}"),
            token_name: name.into(),
            role: Role::Operator,
        },
        address: Some(SocketAddr::from(([192, 0, 2, 7], 40000))),
        node: NodeId(1),
        at_ms,
    }
}

fn audited(name: &str, at_ms: u64, command: Command) -> Command {
    Command::Audited {
        by: provenance(name, at_ms),
        command: Box::new(command),
    }
}

fn zone(name: &str, mode: Mode) -> Command {
    Command::UpsertZone {
        id: None,
        name: name.into(),
        mode,
        description: String::new(),
    }
}

fn slack_sink(audit: bool) -> AlertSink {
    AlertSink {
        name: "siem".into(),
        target: SinkTarget::Slack {
            webhook_url: Secret("https://hooks.slack.test/T/B/very-secret".into()),
        },
        min_severity: Severity::Critical,
        zones: vec!["prod".into()],
        apps: vec![],
        classes: vec![],
        max_per_minute: None,
        audit,
    }
}

#[test]
fn audited_changes_name_their_token_address_and_version() {
    let mut state = sample();
    audited("alice", 1_000, zone("staging", Mode::Learn))
        .apply_logged(&mut state, 7)
        .expect("valid");
    audited("bob", 2_000, zone("staging", Mode::Enforce))
        .apply_logged(&mut state, 9)
        .expect("valid");
    // A node's own write is not audited.
    zone("other", Mode::Learn)
        .apply_logged(&mut state, 10)
        .expect("valid");
    let entries: Vec<_> = state.audit.entries.iter().collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[0].seq, entries[0].version, entries[0].at_ms),
        (1, 7, 1_000)
    );
    assert_eq!(entries[0].author.token_name, "alice");
    assert_eq!(entries[1].author.token_name, "bob");
    assert_eq!(entries[1].kind, "upsert_zone");
    assert_eq!(
        entries[1].address,
        Some(SocketAddr::from(([192, 0, 2, 7], 40000)))
    );
    assert!(entries[1].policy_changed);
    assert_eq!(entries[1].outcome, Outcome::Applied);
}

#[test]
fn refused_commands_are_audited_with_the_reason() {
    let mut state = sample();
    let result = audited(
        "alice",
        5,
        Command::RemoveZone {
            name: "nowhere".into(),
        },
    )
    .apply_logged(&mut state, 3);
    assert!(result.is_err());
    let entry = state.audit.entries.back().expect("recorded");
    assert!(
        matches!(&entry.outcome, Outcome::Refused { reason } if reason.contains("nowhere")),
        "{entry:?}"
    );
    assert!(!entry.policy_changed);
}

#[test]
fn secrets_never_reach_the_audit_log() {
    let mut state = sample();
    audited("alice", 5, Command::UpsertSink(slack_sink(false)))
        .apply_logged(&mut state, 3)
        .expect("valid");
    let entry = state.audit.entries.back().expect("recorded");
    assert!(!entry.detail.contains("very-secret"), "{}", entry.detail);
    assert!(entry.detail.contains(Secret::REDACTED), "{}", entry.detail);
    let token = Command::Access(crate::AccessCommand::CreateApiToken(crate::ApiToken {
        id: "abc".into(),
        name: "ci".into(),
        role: Role::Operator,
        secret_sha256: crate::Sha256([7; 32]),
        expires_at_ms: None,
    }));
    assert_eq!(command_kind(&token), "create_api_token");
    assert!(!redacted_detail(&token).contains("0707"));
}

#[test]
fn the_log_keeps_its_retention_and_queries_filter() {
    let mut state = sample();
    state.settings.audit_retention = 3;
    for i in 0..5u64 {
        let mode = if i % 2 == 0 { Mode::Learn } else { Mode::Alert };
        let name = if i < 3 { "alice" } else { "bob" };
        audited(name, 100 * i, zone("staging", mode))
            .apply_logged(&mut state, 10 + i)
            .expect("valid");
    }
    assert_eq!(state.audit.entries.len(), 3);
    assert_eq!(state.audit.trimmed, 2);
    assert_eq!(state.audit.entries[0].seq, 3);
    let bob = AuditFilter {
        token: Some("bob".into()),
        ..AuditFilter::default()
    };
    assert_eq!(state.audit.query(&bob).len(), 2);
    let recent = AuditFilter {
        since_ms: Some(300),
        limit: Some(1),
        ..AuditFilter::default()
    };
    let found = state.audit.query(&recent);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].version, 14);
    let by_id = AuditFilter {
        token: Some("idalice".into()),
        kind: Some("upsert_zone".into()),
        ..AuditFilter::default()
    };
    assert_eq!(state.audit.query(&by_id).len(), 1);
}

#[test]
fn sinks_that_ask_for_the_audit_log_get_config_change_alerts() {
    let mut state = sample();
    audited("alice", 5, zone("staging", Mode::Learn))
        .apply_logged(&mut state, 3)
        .expect("valid");
    assert!(state.alerts.records.is_empty(), "no sink asked for them");
    audited("alice", 6, Command::UpsertSink(slack_sink(true)))
        .apply_logged(&mut state, 4)
        .expect("valid");
    let alert = state.alerts.records.values().last().expect("raised");
    assert_eq!(alert.kind, AlertKind::ConfigChange);
    assert_eq!(alert.id.0, "audit-2");
    let change = alert.change.as_ref().expect("carries the entry");
    assert_eq!(change.author.token_name, "alice");
    assert!(!alert.summary.contains("very-secret"));
    assert!(alert.summary.contains("upsert_sink by token `alice`"));
}

#[test]
fn nodes_cannot_raise_config_change_alerts_themselves() {
    let mut state = sample();
    let mut entry_alert = AuditEntry {
        seq: 1,
        version: 1,
        at_ms: 1,
        author: provenance("x", 1).author,
        address: None,
        node: NodeId(1),
        kind: "upsert_zone".into(),
        detail: "{}".into(),
        outcome: Outcome::Applied,
        policy_changed: true,
    }
    .to_alert();
    entry_alert.node = *state.nodes.keys().next().expect("sample has nodes");
    let err = Command::RaiseAlerts {
        alerts: vec![entry_alert],
    }
    .apply(&mut state)
    .expect_err("refused");
    assert!(err.field.ends_with("kind"), "{err}");
}

#[test]
fn audited_commands_do_not_nest() {
    let mut state = sample();
    let nested = audited("a", 1, audited("b", 1, zone("x", Mode::Learn)));
    assert!(nested.validate(&state).is_err());
    assert!(nested.apply(&mut state).is_err());
}
