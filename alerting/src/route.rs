//! Which sink wants which alert.
//!
//! A sink's filters narrow what it receives: a minimum severity, frequency
//! classes, zones and apps. An empty list means no filter on that field.

use stockade_policy::{Alert, AlertKind, AlertSink};

/// Whether `sink` wants `alert`: its severity reaches the sink's minimum,
/// its class is among the sink's classes, and it concerns one of the sink's
/// zones and one of its apps (`zone/app`), for the lists that are not empty.
///
/// An alert that concerns no zone (about a node, a sink, the backlog) goes
/// only to sinks with neither a zone nor an app filter: a sink scoped to
/// some zones or apps is not told of the cluster at large.
///
/// A `config_change` alert (an audit log entry) goes to the sinks that ask
/// for the audit log (`audit`), whatever their filters, and to no other.
pub fn wants(sink: &AlertSink, alert: &Alert) -> bool {
    if alert.kind == AlertKind::ConfigChange {
        return sink.audit;
    }
    if alert.severity < sink.min_severity {
        return false;
    }
    if !sink.classes.is_empty() && !sink.classes.contains(&alert.class) {
        return false;
    }
    let scoped = !sink.zones.is_empty() || !sink.apps.is_empty();
    if !scoped {
        return true;
    }
    let zones = alert.zones();
    !zones.is_empty()
        && (sink.zones.is_empty() || any_listed(&sink.zones, &zones))
        && (sink.apps.is_empty() || any_listed(&sink.apps, &alert.apps()))
}

/// Whether any of `values` is in `list`.
fn any_listed<S: AsRef<str>>(list: &[String], values: &[S]) -> bool {
    values
        .iter()
        .any(|value| list.iter().any(|listed| listed == value.as_ref()))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;
    use stockade_policy::{
        AlertClass, AlertFlow, AlertId, AlertKind, AlertWorkload, Direction, FlowEnd, IdentityName,
        L4Protocol, NodeId, RuleRef, Severity, SinkTarget, WebhookFormat,
    };

    use super::*;

    fn sink() -> AlertSink {
        AlertSink {
            name: "siem".into(),
            target: SinkTarget::Webhook {
                url: "https://siem.example/alerts".into(),
                token: None,
                format: WebhookFormat::Json,
            },
            min_severity: Severity::Info,
            zones: Vec::new(),
            apps: Vec::new(),
            classes: Vec::new(),
            max_per_minute: None,
            audit: false,
        }
    }

    fn cluster_alert(kind: AlertKind) -> Alert {
        Alert {
            id: AlertId("n1-1".into()),
            seq: 1,
            kind,
            severity: Severity::Warning,
            class: AlertClass::FirstSeen,
            node: NodeId(1),
            subject_node: Some(NodeId(2)),
            sink: None,
            workload: None,
            flow: None,
            count: 1,
            first_seen_ms: 0,
            last_seen_ms: 0,
            summary: "node 2 down".into(),
            change: None,
        }
    }

    fn end(zone: &str, app: Option<&str>, last_octet: u8) -> FlowEnd {
        FlowEnd {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last_octet)),
            port: 443,
            identity: app.map(|app| IdentityName {
                zone: zone.into(),
                app: app.into(),
                service: "api".into(),
            }),
            zone: Some(zone.into()),
        }
    }

    /// A flow from `src_zone/src_app` to `dst_zone/dst_app` (no identity
    /// when the app is `None`).
    fn flow_alert(src: (&str, Option<&str>), dst: (&str, Option<&str>)) -> Alert {
        Alert {
            kind: AlertKind::PolicyViolation,
            subject_node: None,
            flow: Some(AlertFlow {
                src: end(src.0, src.1, 1),
                dst: end(dst.0, dst.1, 2),
                protocol: L4Protocol::Tcp,
                direction: Direction::Egress,
                rule: RuleRef::ZoneIsolation,
            }),
            ..cluster_alert(AlertKind::PolicyViolation)
        }
    }

    #[test]
    fn severity_below_the_minimum_is_not_wanted() {
        let alert = cluster_alert(AlertKind::NodeDown);
        let mut sink = sink();
        sink.min_severity = Severity::Warning;
        assert!(wants(&sink, &alert), "equal to the minimum");
        sink.min_severity = Severity::Critical;
        assert!(!wants(&sink, &alert));
    }

    #[test]
    fn classes_filter_when_listed() {
        let mut alert = cluster_alert(AlertKind::NodeDown);
        let mut sink = sink();
        sink.classes = vec![AlertClass::Burst, AlertClass::FirstSeen];
        assert!(wants(&sink, &alert));
        alert.class = AlertClass::Recurring;
        assert!(!wants(&sink, &alert));
    }

    #[test]
    fn a_zone_filter_matches_either_end_of_the_flow() {
        let alert = flow_alert(("dev", None), ("prod", Some("db")));
        let mut sink = sink();
        sink.zones = vec!["prod".into()];
        assert!(wants(&sink, &alert));
        sink.zones = vec!["staging".into()];
        assert!(!wants(&sink, &alert));
    }

    #[test]
    fn a_zone_filter_matches_the_workload_zone() {
        let mut alert = cluster_alert(AlertKind::UnknownBinary);
        alert.workload = Some(AlertWorkload {
            zone: Some("prod".into()),
            executable: "/tmp/miner".into(),
            ..AlertWorkload::default()
        });
        let mut sink = sink();
        sink.zones = vec!["prod".into()];
        assert!(wants(&sink, &alert));
        sink.apps = vec!["prod/billing".into()];
        assert!(!wants(&sink, &alert), "an unidentified binary is no app's");
    }

    #[test]
    fn an_app_filter_needs_an_identity_of_that_app() {
        let alert = flow_alert(("prod", Some("billing")), ("prod", None));
        let mut sink = sink();
        sink.apps = vec!["prod/billing".into()];
        assert!(wants(&sink, &alert));
        sink.apps = vec!["prod/ledger".into()];
        assert!(!wants(&sink, &alert));
    }

    #[test]
    fn config_changes_go_only_to_sinks_that_ask_for_the_audit_log() {
        let mut alert = cluster_alert(AlertKind::ConfigChange);
        alert.severity = Severity::Info;
        let mut sink = sink();
        assert!(!wants(&sink, &alert), "not asked for");
        sink.audit = true;
        sink.min_severity = Severity::Critical;
        sink.zones = vec!["prod".into()];
        assert!(wants(&sink, &alert), "whatever the filters say");
        // Other alerts still meet the filters of an audit sink.
        assert!(!wants(&sink, &cluster_alert(AlertKind::NodeDown)));
    }

    #[test]
    fn zone_and_app_filters_must_both_match() {
        let alert = flow_alert(("prod", Some("billing")), ("dev", None));
        let mut sink = sink();
        sink.zones = vec!["dev".into()];
        sink.apps = vec!["prod/billing".into()];
        assert!(wants(&sink, &alert));
        sink.zones = vec!["staging".into()];
        assert!(!wants(&sink, &alert), "app matches, zone does not");
        sink.zones = vec!["dev".into()];
        sink.apps = vec!["dev/web".into()];
        assert!(!wants(&sink, &alert), "zone matches, app does not");
    }

    #[test]
    fn zoneless_alerts_go_only_to_unscoped_sinks() {
        for kind in [
            AlertKind::NodeDown,
            AlertKind::SinkFailing,
            AlertKind::BacklogOverflow,
        ] {
            let alert = cluster_alert(kind);
            assert!(wants(&sink(), &alert));
            let mut by_zone = sink();
            by_zone.zones = vec!["prod".into()];
            assert!(!wants(&by_zone, &alert));
            let mut by_app = sink();
            by_app.apps = vec!["prod/billing".into()];
            assert!(!wants(&by_app, &alert));
        }
    }

    const ZONES: [&str; 3] = ["prod", "dev", "staging"];
    const APPS: [&str; 3] = ["billing", "ledger", "web"];

    fn any_end() -> impl Strategy<Value = (&'static str, Option<&'static str>)> {
        (
            prop::sample::select(&ZONES[..]),
            prop::option::of(prop::sample::select(&APPS[..])),
        )
    }

    fn any_alert() -> impl Strategy<Value = Alert> {
        (
            prop::sample::select(&AlertKind::ALL[..]),
            prop::sample::select(vec![Severity::Info, Severity::Warning, Severity::Critical]),
            prop::sample::select(vec![
                AlertClass::FirstSeen,
                AlertClass::Recurring,
                AlertClass::Burst,
            ]),
            prop::option::of((any_end(), any_end())),
        )
            .prop_map(|(kind, severity, class, ends)| {
                let base = match ends {
                    Some((src, dst)) => flow_alert(src, dst),
                    None => cluster_alert(kind),
                };
                Alert {
                    kind,
                    severity,
                    class,
                    ..base
                }
            })
    }

    fn any_filters() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
        let zone = prop::sample::select(&ZONES[..]).prop_map(String::from);
        let app = (
            prop::sample::select(&ZONES[..]),
            prop::sample::select(&APPS[..]),
        )
            .prop_map(|(zone, app)| format!("{zone}/{app}"));
        (
            prop::collection::vec(zone, 0..3),
            prop::collection::vec(app, 0..3),
        )
    }

    proptest! {
        #[test]
        fn an_unfiltered_sink_wants_everything(alert in any_alert()) {
            // But configuration changes, which only audit sinks take.
            prop_assert_eq!(wants(&sink(), &alert), alert.kind != AlertKind::ConfigChange);
            let audit = AlertSink { audit: true, ..sink() };
            prop_assert!(wants(&audit, &alert));
        }

        #[test]
        fn each_filter_only_narrows(
            alert in any_alert(),
            (zones, apps) in any_filters(),
            classes in prop::collection::vec(
                prop::sample::select(vec![AlertClass::FirstSeen, AlertClass::Burst]),
                0..2,
            ),
            critical_only in any::<bool>(),
        ) {
            let mut filtered = sink();
            filtered.zones = zones;
            filtered.apps = apps;
            filtered.classes = classes;
            if critical_only {
                filtered.min_severity = Severity::Critical;
            }
            let wanted = wants(&filtered, &alert);
            let loosenings: [fn(&mut AlertSink); 4] = [
                |s| s.zones.clear(),
                |s| s.apps.clear(),
                |s| s.classes.clear(),
                |s| s.min_severity = Severity::Info,
            ];
            for loosen in loosenings {
                let mut looser = filtered.clone();
                loosen(&mut looser);
                prop_assert!(!wanted || wants(&looser, &alert));
            }
        }
    }
}
