use proptest::prelude::*;

use super::*;
use crate::access::{AccessCommand, ApiToken, CertificateAuthority, Role};
use crate::fixtures::{self, sample};
use crate::{AlertSink, Command, Endpoint, Mode, NodeId, Secret, Severity, SinkTarget};

/// A CA whose "certificate" is any PEM block: backups only hash its DER.
fn ca(seed: &str) -> CertificateAuthority {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD.encode(format!("cert of {seed}"));
    CertificateAuthority {
        cert_pem: format!("-----BEGIN CERTIFICATE-----\n{der}\n-----END CERTIFICATE-----\n"),
        key_pem: Secret(format!("key of {seed}")),
    }
}

fn token(id: &str, role: Role) -> Command {
    Command::Access(AccessCommand::CreateApiToken(ApiToken {
        id: id.into(),
        name: format!("{id} token"),
        role,
        secret_sha256: Sha256([7; 32]),
        expires_at_ms: None,
    }))
}

fn slack(name: &str, url: &str) -> Command {
    Command::UpsertSink(AlertSink {
        name: name.into(),
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

/// The sample policy in a cluster with CA `seed`, an admin token and a
/// Slack sink with a secret.
fn cluster(seed: &str) -> ClusterState {
    let mut state = sample();
    Command::batch(vec![
        Command::Access(AccessCommand::SetCertificateAuthority(ca(seed))),
        token("admin1", Role::Admin),
        slack("oncall", "https://hooks.example/secret"),
    ])
    .apply(&mut state)
    .expect("valid cluster");
    state
}

/// A newly initialised cluster with the same CA: no policy, another token.
fn empty(seed: &str) -> ClusterState {
    let mut state = ClusterState::new();
    Command::batch(vec![
        Command::Access(AccessCommand::SetCertificateAuthority(ca(seed))),
        token("fresh", Role::Admin),
    ])
    .apply(&mut state)
    .expect("valid cluster");
    state
}

fn restore(backup: &[u8], allow_foreign: bool, keep: Option<&str>) -> Command {
    Command::Restore {
        backup: String::from_utf8(backup.to_vec()).expect("backups are text"),
        allow_foreign,
        keep_token: keep.map(str::to_owned),
    }
}

#[test]
fn a_restore_into_a_wiped_cluster_gives_the_durable_state_byte_for_byte() {
    let source = cluster("a");
    let file = Backup::write(&source, 42, 1_000).expect("writes");
    let text = std::str::from_utf8(&file).expect("text");
    assert!(text.starts_with("stockade-backup 1\n"), "{text}");
    assert!(
        text.contains("https://hooks.example/secret"),
        "secrets are kept"
    );
    assert_eq!(text.lines().count(), 6);

    let mut target = empty("a");
    target.nodes = source.nodes.clone();
    let applied = restore(&file, false, Some("fresh"))
        .apply(&mut target)
        .expect("restores");
    assert_eq!(applied, crate::Applied::Done);
    // The restoring admin's token was kept; without it the states agree.
    assert!(target.access.api_tokens.contains_key("fresh"));
    Command::Access(AccessCommand::RevokeApiToken { id: "fresh".into() })
        .apply(&mut target)
        .expect("revoke");
    assert_eq!(DurableState::of(&target), DurableState::of(&source));
    assert_eq!(durable_digest(&target), durable_digest(&source));
    assert_eq!(
        DurableState::of(&target).to_json(),
        DurableState::of(&source).to_json()
    );
    // The alert log follows the restored sinks; the CA stays.
    assert!(target.alerts.cursors.contains_key("oncall"));
    assert_eq!(target.access.ca, Some(ca("a")));

    let opened = Backup::open(&file, &target, false).expect("opens");
    assert_eq!(opened.header.source_index, 42);
    assert_eq!(opened.header.taken_at_ms, 1_000);
    assert_eq!(opened.header.durable_digest, durable_digest(&source));
}

#[test]
fn what_is_not_durable_stays_as_the_running_cluster_has_it() {
    let source = cluster("a");
    let file = Backup::write(&source, 1, 1).expect("writes");
    let mut target = cluster("a");
    Command::batch(vec![
        Command::UpsertNode(fixtures::node(2, "10.0.0.2:7400")),
        fixtures::define("prod", "cache", "main"),
        Command::UpsertEndpoint(Endpoint {
            node: NodeId(1),
            ip: "10.1.0.5".parse().expect("ip"),
            port: None,
            identity: fixtures::name("prod", "cache", "main"),
        }),
        Command::UpsertEndpoint(Endpoint {
            node: NodeId(1),
            ip: "10.1.0.6".parse().expect("ip"),
            port: None,
            identity: fixtures::name("prod", "web", "main"),
        }),
        Command::RemoveSink {
            name: "oncall".into(),
        },
        slack("other", "https://hooks.example/other"),
    ])
    .apply(&mut target)
    .expect("changes");
    let revision = target.policy_revision;
    restore(&file, false, None)
        .apply(&mut target)
        .expect("restores");
    assert_eq!(DurableState::of(&target), DurableState::of(&source));
    assert!(target.nodes.contains_key(&NodeId(2)), "membership stays");
    // The endpoint of an identity the backup does not hold is dropped.
    assert_eq!(target.endpoints.len(), 1);
    assert!(target.alerts.cursors.contains_key("oncall"));
    assert!(!target.alerts.cursors.contains_key("other"));
    assert_eq!(target.policy_revision, revision + 1);
}

#[test]
fn damaged_foreign_future_and_unsigned_backups_are_refused_and_change_nothing() {
    let source = cluster("a");
    let file = Backup::write(&source, 1, 1).expect("writes");
    let text = String::from_utf8(file.clone()).expect("text");
    let target = empty("a");

    let refuse = |bytes: &[u8], allow_foreign: bool| {
        let mut state = target.clone();
        let err = restore(bytes, allow_foreign, None)
            .apply(&mut state)
            .expect_err("refused");
        assert_eq!(state, target, "nothing changes");
        assert_eq!(err.field, "backup");
        err.reason
    };

    let other = Backup::write(&cluster("b"), 1, 1).expect("writes");
    let reason = refuse(&other, false);
    assert!(
        reason.contains("another cluster") && reason.contains("--allow-foreign"),
        "{reason}"
    );
    let future = text.replacen("stockade-backup 1", "stockade-backup 2", 1);
    assert!(refuse(future.as_bytes(), false).contains("version 2 is newer"));
    assert!(refuse(b"{\"zones\":{}}", false).contains("not a Stockade backup"));
    assert!(refuse(&file[..file.len() - 10], false).contains("truncated"));
    let flipped = text.replacen("oncall", "oncalm", 1);
    assert!(refuse(flipped.as_bytes(), false).contains("checksum does not match"));

    // An edit whose checksum was recomputed is still not signed.
    let mut lines: Vec<&str> = text.lines().collect();
    let edited_state = lines[2].replace("https://hooks.example/secret", "https://evil.example/");
    let edited_header = {
        let digest = Sha256(sha2::Sha256::digest(edited_state.as_bytes()).into());
        let mut header: BackupHeader = serde_json::from_str(lines[1]).expect("header");
        header.durable_digest = digest;
        serde_json::to_string(&header).expect("header")
    };
    lines[1] = &edited_header;
    lines[2] = &edited_state;
    let signed = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        lines[0], lines[1], lines[2], lines[3], lines[4]
    );
    let sum = Sha256(sha2::Sha256::digest(signed.as_bytes()).into());
    let forged = format!("{signed}sha256 {sum}\n");
    assert!(refuse(forged.as_bytes(), false).contains("not signed by this cluster"));
}

#[test]
fn a_foreign_backup_is_restored_only_when_allowed() {
    let source = cluster("old");
    let file = Backup::write(&source, 9, 9).expect("writes");
    let mut target = empty("new");
    restore(&file, true, Some("fresh"))
        .apply(&mut target)
        .expect("allowed");
    assert_eq!(target.zones, source.zones);
    assert_eq!(target.sinks, source.sinks);
    assert_eq!(target.access.ca, Some(ca("new")), "the CA is not restored");
    assert!(target.access.api_tokens.contains_key("fresh"));
    assert!(target.access.api_tokens.contains_key("admin1"));
}

#[test]
fn a_restore_must_leave_an_admin() {
    let mut source = cluster("a");
    source.access.api_tokens.clear();
    let file = Backup::write(&source, 1, 1).expect("writes");
    let mut target = empty("a");
    let err = restore(&file, false, None)
        .apply(&mut target)
        .expect_err("no admin left");
    assert!(err.reason.contains("no admin token"), "{err}");
    restore(&file, false, Some("fresh"))
        .apply(&mut target)
        .expect("the restoring admin stays");
}

#[test]
fn a_backup_needs_an_initialised_cluster() {
    let err = Backup::write(&sample(), 1, 1).expect_err("no CA");
    assert!(matches!(err, BackupError::NoCertificateAuthority(_)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any single changed byte, anywhere, is refused.
    #[test]
    fn any_flipped_byte_is_refused(at in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let state = cluster("a");
        let mut file = Backup::write(&state, 3, 3).expect("writes");
        let at = at.index(file.len());
        file[at] ^= xor;
        prop_assert!(Backup::open(&file, &state, false).is_err());
        prop_assert!(Backup::open(&file, &state, true).is_err());
    }

    /// Any truncation is refused.
    #[test]
    fn any_truncation_is_refused(at in any::<prop::sample::Index>()) {
        let state = cluster("a");
        let file = Backup::write(&state, 3, 3).expect("writes");
        let at = at.index(file.len());
        prop_assert!(Backup::open(&file[..at], &state, false).is_err());
    }

    /// Backup then restore into a new cluster of the same CA gives the
    /// durable state back, whatever the zones and sinks.
    #[test]
    fn round_trip(zones in prop::collection::btree_set("[a-z][a-z0-9]{0,8}", 0..6),
                  secret in "[ -~]{0,40}") {
        let mut source = cluster("a");
        let mut commands: Vec<Command> = zones
            .iter()
            .map(|z| fixtures::zone(z, Mode::Alert))
            .collect();
        commands.push(slack("extra", &format!("https://hooks.example/{secret}")));
        Command::batch(commands).apply(&mut source).expect("valid");
        let file = Backup::write(&source, 5, 5).expect("writes");
        let mut target = empty("a");
        restore(&file, false, None).apply(&mut target).expect("restores");
        prop_assert_eq!(DurableState::of(&target).to_json(), DurableState::of(&source).to_json());
    }
}

#[test]
fn a_restore_adds_the_backups_audit_entries_and_removes_none() {
    let audited = |name: &str, at_ms: u64, zone: &str| Command::Audited {
        by: crate::Provenance {
            author: crate::Author {
                token_id: format!("id-{name}"),
                token_name: name.into(),
                role: Role::Admin,
            },
            address: None,
            node: crate::NodeId(1),
            at_ms,
        },
        command: Box::new(Command::UpsertZone {
            id: None,
            name: zone.into(),
            mode: crate::Mode::Learn,
            description: String::new(),
        }),
    };
    let mut source = cluster("a");
    audited("alice", 1_000, "staging")
        .apply_logged(&mut source, 10)
        .expect("valid");
    let file = Backup::write(&source, 10, 1_500).expect("writes");
    assert_eq!(
        Backup::open(&file, &source, false).expect("opens").audit,
        Vec::from(source.audit.entries.clone())
    );

    // Made after the backup was taken: a restore must not erase it.
    audited("bob", 2_000, "qa")
        .apply_logged(&mut source, 11)
        .expect("valid");
    restore(&file, false, None)
        .apply_logged(&mut source, 12)
        .expect("restores");
    let names = |state: &ClusterState| -> Vec<String> {
        state
            .audit
            .entries
            .iter()
            .map(|e| e.author.token_name.clone())
            .collect()
    };
    assert_eq!(
        names(&source),
        ["alice", "bob"],
        "alice's entry is not doubled"
    );

    // Into another, newly initialised cluster, the old trail comes along,
    // in time order, beside the new cluster's own entries.
    let mut fresh = empty("b");
    audited("carol", 500, "setup")
        .apply_logged(&mut fresh, 3)
        .expect("valid");
    restore(&file, true, None)
        .apply_logged(&mut fresh, 4)
        .expect("restores");
    assert_eq!(names(&fresh), ["carol", "alice"]);
    let seqs: Vec<u64> = fresh.audit.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2], "restored entries get this log's numbers");
}
