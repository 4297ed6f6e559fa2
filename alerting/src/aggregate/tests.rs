use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use stockade_policy::{Direction, FlowEnd, IdentityName, L4Protocol, RuleRef};

use super::*;

fn identity(app: &str) -> IdentityName {
    IdentityName {
        zone: "prod".into(),
        app: app.into(),
        service: "api".into(),
    }
}

/// A denied connect from `billing` on 10.0.0.1 to 10.0.0.2:`dst_port`.
fn denied(at_ms: u64, src_port: u16, dst_port: u16) -> Observation {
    Observation {
        kind: AlertKind::PolicyViolation,
        severity: Severity::Warning,
        at_ms,
        workload: Some(AlertWorkload {
            identity: Some(identity("billing")),
            zone: Some("prod".into()),
            pid: Some(4000 + u32::from(src_port % 100)),
            executable: "/usr/bin/billing".into(),
            sha256: None,
        }),
        flow: Some(AlertFlow {
            src: FlowEnd {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                port: src_port,
                identity: Some(identity("billing")),
                zone: Some("prod".into()),
            },
            dst: FlowEnd {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                port: dst_port,
                identity: None,
                zone: None,
            },
            protocol: L4Protocol::Tcp,
            direction: Direction::Egress,
            rule: RuleRef::ZoneDefault,
        }),
        summary: format!("billing → 10.0.0.2:{dst_port} denied"),
        count: 1,
    }
}

fn aggregator(config: AggregatorConfig) -> Aggregator {
    Aggregator::new(NodeId(7), "n7.boot1".into(), config)
}

#[test]
fn a_burst_is_told_once_at_once_then_once_with_its_count() {
    let mut agg = aggregator(AggregatorConfig::default());
    let mut alerts = Vec::new();
    for i in 0..500u64 {
        let at_ms = 1_000 + i / 5; // 500 in 100 ms
        alerts.extend(agg.observe(denied(at_ms, 40_000 + i as u16, 443)));
    }
    assert_eq!(alerts.len(), 1, "only the first is told at once");
    assert_eq!(alerts[0].class, AlertClass::FirstSeen);
    assert_eq!(alerts[0].count, 1);
    assert_eq!(alerts[0].id, AlertId("n7.boot1-1".into()));

    let deadline = agg.next_deadline().expect("repeats are gathered");
    assert_eq!(
        deadline,
        1_000 + 500,
        "the window opens at the first repeat"
    );
    assert!(
        agg.flush(deadline - 1).is_empty(),
        "the window has not ended"
    );
    alerts.extend(agg.flush(deadline));

    assert_eq!(alerts.len(), 2);
    let burst = &alerts[1];
    assert_eq!(burst.class, AlertClass::Burst);
    assert_eq!(burst.count, 499);
    assert_eq!((burst.first_seen_ms, burst.last_seen_ms), (1_000, 1_099));
    assert!(burst.summary.starts_with("499× "), "{}", burst.summary);
    assert_eq!(
        burst.flow.as_ref().map(|f| f.src.port),
        Some(40_000 + 499),
        "the newest occurrence's details are kept"
    );
    assert_ne!(burst.id, alerts[0].id);
    assert!(agg.flush_all().is_empty());
    assert_eq!(agg.next_deadline(), None);
}

#[test]
fn a_few_repeats_in_a_window_are_recurring_with_the_highest_severity() {
    let mut agg = aggregator(AggregatorConfig::default());
    assert!(agg.observe(denied(0, 1, 443)).is_some());
    let mut critical = denied(100, 2, 443);
    critical.severity = Severity::Critical;
    assert!(agg.observe(critical).is_none());
    assert!(agg.observe(denied(200, 3, 443)).is_none());
    let alerts = agg.flush(10_000);
    assert_eq!(alerts.len(), 1);
    // 2 in 500 ms is 4/s, under the 20/s burst threshold.
    assert_eq!(alerts[0].class, AlertClass::Recurring);
    assert_eq!(alerts[0].count, 2);
    assert_eq!(alerts[0].severity, Severity::Critical);
}

#[test]
fn the_burst_threshold_is_the_count_over_the_whole_window() {
    let mut agg = aggregator(AggregatorConfig::default());
    agg.observe(denied(0, 1, 443));
    // 20/s over 500 ms is 10: 9 repeats are recurring, 10 a burst.
    for port in 0..9 {
        agg.observe(denied(10, port, 443));
    }
    assert_eq!(agg.flush(600)[0].class, AlertClass::Recurring);
    for port in 0..10 {
        agg.observe(denied(1_000, port, 443));
    }
    assert_eq!(agg.flush(2_000)[0].class, AlertClass::Burst);
}

#[test]
fn a_cause_not_seen_for_remember_ms_is_first_seen_again() {
    let config = AggregatorConfig {
        remember_ms: 10_000,
        ..AggregatorConfig::default()
    };
    let mut agg = aggregator(config);
    assert!(agg.observe(denied(0, 1, 443)).is_some());
    assert!(agg.observe(denied(9_999, 2, 443)).is_none(), "still known");
    assert_eq!(agg.flush(10_499).len(), 1);
    // Remembered from its last occurrence, not its first.
    assert!(agg.observe(denied(19_998, 3, 443)).is_none());
    assert_eq!(agg.flush_all().len(), 1);
    let again = agg.observe(denied(29_998, 4, 443));
    assert_eq!(again.map(|a| a.class), Some(AlertClass::FirstSeen));
}

#[test]
fn counted_observations_add_their_counts() {
    let mut agg = aggregator(AggregatorConfig::default());
    let first = agg
        .observe(Observation {
            count: 3,
            ..denied(1000, 40000, 5432)
        })
        .expect("first seen at once");
    assert_eq!((first.class, first.count), (AlertClass::FirstSeen, 3));
    assert!(agg.observe(denied(1100, 40001, 5432)).is_none());
    let counted = Observation {
        count: 4999,
        ..denied(1200, 40002, 5432)
    };
    assert!(agg.observe(counted).is_none());
    let window = agg.flush(5000);
    assert_eq!(window.len(), 1);
    assert_eq!(
        (window[0].class, window[0].count),
        (AlertClass::Burst, 5000)
    );
}

#[test]
fn the_source_port_and_pid_do_not_make_a_new_cause() {
    let mut agg = aggregator(AggregatorConfig::default());
    assert!(agg.observe(denied(0, 50_001, 443)).is_some());
    assert!(agg.observe(denied(1, 50_002, 443)).is_none());
}

#[test]
fn the_destination_port_makes_a_new_cause() {
    let mut agg = aggregator(AggregatorConfig::default());
    assert!(agg.observe(denied(0, 50_001, 443)).is_some());
    assert!(agg.observe(denied(1, 50_001, 8443)).is_some());
}

#[test]
fn an_identified_end_is_one_cause_whatever_its_address() {
    let mut agg = aggregator(AggregatorConfig::default());
    assert!(agg.observe(denied(0, 1, 443)).is_some());
    let mut moved = denied(1, 1, 443);
    if let Some(flow) = &mut moved.flow {
        flow.src.ip = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9));
    }
    assert!(agg.observe(moved).is_none(), "same source identity");
    let mut other_dst = denied(2, 1, 443);
    if let Some(flow) = &mut other_dst.flow {
        flow.dst.ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
    }
    assert!(agg.observe(other_dst).is_some(), "unidentified: by address");
}

#[test]
fn a_repeat_after_its_window_closes_it_and_opens_the_next() {
    let mut agg = aggregator(AggregatorConfig::default());
    agg.observe(denied(0, 1, 443));
    agg.observe(denied(100, 2, 443)); // window [100, 600)
    agg.observe(denied(700, 3, 443)); // closes it, opens [700, 1200)
    assert_eq!(agg.next_deadline(), Some(600), "the closed one is due");
    let alerts = agg.flush(700);
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].count, alerts[0].last_seen_ms), (1, 100));
    assert_eq!(agg.next_deadline(), Some(1_200));
}

#[test]
fn when_every_remembered_cause_is_gathering_the_oldest_is_closed_early() {
    let config = AggregatorConfig {
        max_keys: 2,
        ..AggregatorConfig::default()
    };
    let mut agg = aggregator(config);
    for port in [1, 2] {
        agg.observe(denied(0, 1, port));
        agg.observe(denied(10 * u64::from(port), 1, port));
    }
    assert_eq!(agg.next_deadline(), Some(510));
    assert!(agg.observe(denied(30, 1, 3)).is_some(), "a new cause");
    assert_eq!(agg.remembered(), 2);
    assert_eq!(agg.next_deadline(), Some(30), "the early record is due");
    let alerts = agg.flush(30);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].flow.as_ref().map(|f| f.dst.port), Some(1));
    assert_eq!(agg.flush_all().iter().map(|a| a.count).sum::<u64>(), 1);
}

#[test]
fn when_memory_is_full_the_least_recently_seen_idle_cause_is_forgotten() {
    let config = AggregatorConfig {
        max_keys: 2,
        ..AggregatorConfig::default()
    };
    let mut agg = aggregator(config);
    agg.observe(denied(0, 1, 1));
    agg.observe(denied(1, 1, 2));
    agg.observe(denied(2, 1, 1)); // port 1 gathering, port 2 idle
    agg.observe(denied(3, 1, 3)); // forgets port 2
    assert_eq!(agg.remembered(), 2);
    assert!(
        agg.observe(denied(4, 1, 1)).is_none(),
        "port 1 is remembered"
    );
    assert!(
        agg.observe(denied(5, 1, 2)).is_some(),
        "port 2 was forgotten"
    );
}

/// One step of a generated run.
#[derive(Clone, Debug)]
enum Step {
    Observe {
        cause: u16,
        src_port: u16,
        critical: bool,
        after_ms: u64,
    },
    Flush {
        after_ms: u64,
    },
}

/// How many distinct causes the generated runs use.
const CAUSES: u16 = 5;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..CAUSES, any::<u16>(), any::<bool>(), 0..400u64).prop_map(
            |(cause, src_port, critical, after_ms)| Step::Observe {
                cause,
                src_port,
                critical,
                after_ms,
            }
        ),
        1 => (0..1_500u64).prop_map(|after_ms| Step::Flush { after_ms }),
    ]
}

fn config() -> impl Strategy<Value = AggregatorConfig> {
    (0..1_000u64, 0..50u32, 0..3_000u64, 1..8usize).prop_map(
        |(window_ms, burst_per_second, remember_ms, max_keys)| AggregatorConfig {
            window_ms,
            burst_per_second,
            remember_ms,
            max_keys,
        },
    )
}

/// Runs the steps (with a final `flush_all`), checking the memory bound and
/// that `flush` emits exactly when `next_deadline` says, and returns every
/// alert emitted and how many observations there were.
fn run(config: &AggregatorConfig, steps: &[Step]) -> (Vec<NewAlert>, u64) {
    let mut agg = aggregator(config.clone());
    let mut now_ms = 1_000;
    let mut alerts = Vec::new();
    let mut observed = 0;
    for step in steps {
        match *step {
            Step::Observe {
                cause,
                src_port,
                critical,
                after_ms,
            } => {
                now_ms += after_ms;
                let mut observation = denied(now_ms, src_port, 1_000 + cause);
                if critical {
                    observation.severity = Severity::Critical;
                }
                alerts.extend(agg.observe(observation));
                observed += 1;
            }
            Step::Flush { after_ms } => {
                now_ms += after_ms;
                let due = agg.next_deadline().is_some_and(|d| d <= now_ms);
                let flushed = agg.flush(now_ms);
                assert_eq!(due, !flushed.is_empty(), "next_deadline foretells flush");
                alerts.extend(flushed);
            }
        }
        assert!(agg.remembered() <= config.max_keys, "memory bound");
    }
    alerts.extend(agg.flush_all());
    assert_eq!(agg.next_deadline(), None);
    (alerts, observed)
}

proptest! {
    #[test]
    fn every_occurrence_is_counted_exactly_once(
        config in config(),
        steps in prop::collection::vec(step(), 0..200),
    ) {
        let (alerts, observed) = run(&config, &steps);
        prop_assert_eq!(alerts.iter().map(|a| a.count).sum::<u64>(), observed);
    }

    #[test]
    fn records_are_well_formed_with_unique_ids(
        config in config(),
        steps in prop::collection::vec(step(), 0..200),
    ) {
        let (alerts, _) = run(&config, &steps);
        let mut ids = HashSet::new();
        for alert in &alerts {
            prop_assert!(ids.insert(alert.id.clone()), "duplicate id {}", alert.id);
            prop_assert!(alert.count >= 1);
            prop_assert!(alert.first_seen_ms <= alert.last_seen_ms);
            prop_assert_eq!(alert.node, NodeId(7));
            if alert.class == AlertClass::FirstSeen {
                prop_assert_eq!(alert.count, 1);
            }
        }
    }

    #[test]
    fn a_cause_is_first_seen_at_most_once_within_remember_ms(
        config in config(),
        steps in prop::collection::vec(step(), 0..200),
    ) {
        // Forgetting to stay within memory may repeat a first-seen; with
        // room for every cause nothing is forgotten.
        let config = AggregatorConfig { max_keys: usize::from(CAUSES), ..config };
        let (alerts, _) = run(&config, &steps);
        let mut last_first_seen: HashMap<CauseKey, u64> = HashMap::new();
        for alert in alerts.iter().filter(|a| a.class == AlertClass::FirstSeen) {
            let key = CauseKey::of(alert.kind, alert.workload.as_ref(), alert.flow.as_ref());
            if let Some(previous) = last_first_seen.insert(key, alert.first_seen_ms) {
                prop_assert!(
                    alert.first_seen_ms - previous >= config.remember_ms,
                    "first-seen at {} and again at {}", previous, alert.first_seen_ms
                );
            }
        }
    }
}
