//! Property tests of the policy history: a rollback to any version held
//! gives back exactly the policy of that version, and the history never
//! holds more versions than its retention.

use proptest::prelude::*;
use stockade_policy::{
    Action, AlertSink, AppSelector, ClusterState, Command, IdentityName, Mode, Peer,
    PolicyDocument, PortRange, Protocol, RuleId, RuleSpec, Secret, Secrets, Severity, SinkTarget,
};

const ZONES: &[&str] = &["prod", "dev"];
const APPS: &[&str] = &["web", "db"];

fn pick(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(names).prop_map(str::to_string)
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Learn), Just(Mode::Alert), Just(Mode::Enforce)]
}

fn selector() -> impl Strategy<Value = Peer> {
    (pick(ZONES), proptest::option::of(pick(APPS))).prop_map(|(zone, app)| {
        Peer::App(AppSelector {
            zone,
            app,
            service: None,
        })
    })
}

/// Policy changes, many of them refused against the state they meet.
fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        3 => (pick(ZONES), mode()).prop_map(|(name, mode)| Command::UpsertZone {
            id: None, name, mode, description: String::new(),
        }),
        1 => pick(ZONES).prop_map(|name| Command::RemoveZone { name }),
        2 => (pick(ZONES), pick(APPS)).prop_map(|(zone, app)| Command::DefineIdentity {
            id: None, name: IdentityName { zone, app, service: "main".into() },
        }),
        1 => (pick(ZONES), pick(APPS)).prop_map(|(zone, app)| Command::RemoveIdentity {
            name: IdentityName { zone, app, service: "main".into() },
        }),
        3 => (proptest::option::of(1u32..6), selector(), selector(), 1u16..4).prop_map(
            |(id, from, to, port)| Command::UpsertRule {
                id: id.map(RuleId),
                spec: RuleSpec {
                    from, to, protocol: Protocol::Tcp,
                    ports: vec![PortRange::single(port * 1000)],
                    action: Action::Allow, encrypt: false,
                    owner: String::new(), description: String::new(),
                },
            }
        ),
        1 => (1u32..6).prop_map(|id| Command::RemoveRule { id: RuleId(id) }),
        2 => (0u8..3).prop_map(|n| Command::UpsertSink(AlertSink {
            name: "team".into(),
            target: SinkTarget::Slack { webhook_url: Secret(format!("https://hooks.test/{n}")) },
            min_severity: Severity::Warning,
            zones: vec![], apps: vec![], classes: vec![],
            max_per_minute: None, audit: n == 2,
        })),
        1 => Just(Command::RemoveSink { name: "team".into() }),
    ]
}

/// Applies `commands` as log entries 1, 2, …; returns the state and the
/// policy (secrets included) after each entry, by index.
fn run(commands: &[Command], retention: u32) -> (ClusterState, Vec<PolicyDocument>) {
    let mut state = ClusterState::new();
    state.settings.history_retention = retention;
    let mut docs = vec![PolicyDocument::export(&state, Secrets::Reveal)];
    for (i, command) in commands.iter().enumerate() {
        let _ = command.apply_logged(&mut state, i as u64 + 1);
        docs.push(PolicyDocument::export(&state, Secrets::Reveal));
    }
    (state, docs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rollback_to_a_held_version_gives_back_its_policy(
        commands in proptest::collection::vec(command(), 1..40),
        retention in 2u32..50,
        pick in any::<prop::sample::Index>(),
    ) {
        let (mut state, docs) = run(&commands, retention);
        let held: Vec<u64> = state.history.versions.iter().map(|v| v.version).collect();
        prop_assume!(!held.is_empty());
        let to = held[pick.index(held.len())];
        let current = PolicyDocument::export(&state, Secrets::Reveal);
        // The reconstruction is exact for every version held.
        for version in &held {
            prop_assert_eq!(
                &state.history.document_at(&current, *version).expect("held"),
                &docs[*version as usize]
            );
        }
        let next = commands.len() as u64 + 1;
        match (Command::RollbackPolicy { to }).apply_logged(&mut state, next) {
            Ok(_) => {
                prop_assert_eq!(PolicyDocument::export(&state, Secrets::Reveal), docs[to as usize].clone());
                let last = state.history.versions.back().expect("the rollback is a version");
                prop_assert_eq!(last.version, next);
                prop_assert_eq!(last.rollback_to, Some(to));
            }
            // Only when the policy is already that of `to`.
            Err(e) => {
                prop_assert_eq!(&docs[to as usize], &current, "{}", e);
            }
        }
    }

    #[test]
    fn the_history_never_exceeds_its_retention(
        commands in proptest::collection::vec(command(), 1..60),
        retention in 2u32..8,
    ) {
        let (state, _) = run(&commands, retention);
        prop_assert!(state.history.versions.len() <= retention as usize);
        let versions: Vec<u64> = state.history.versions.iter().map(|v| v.version).collect();
        prop_assert!(versions.windows(2).all(|w| w[0] < w[1]), "{:?}", versions);
        prop_assert!(state.history.versions.iter().all(|v| !v.changes.is_empty()));
    }
}
