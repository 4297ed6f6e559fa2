//! The report judged on small clusters: the judgements follow the state,
//! the signature holds, and every rendering carries the whole report.

use proptest::prelude::*;
use stockade_policy::{
    AccessCommand, CertificateAuthority, ClusterState, Command, Mode, NodeId, PolicyDocument,
    Secret,
};

use crate::*;

const POLICY: &str = r#"
[settings]
cluster_name = "st-example"
unmanaged_mode = "learn"

[[zone]]
name = "prod"
mode = "learn"

[[zone]]
name = "dev"
mode = "enforce"

[[identity]]
zone = "prod"
app = "records"
service = "api"

[[identity]]
zone = "prod"
app = "records"
service = "db"

[[identity]]
zone = "dev"
app = "tools"
service = "shell"

[[rule]]
from = { zone = "prod", app = "records", service = "api" }
to = { zone = "prod", app = "records", service = "db" }
protocol = "tcp"
ports = ["5432"]
action = "allow"
encrypt = true

[[sink]]
name = "siem"
min_severity = "warning"
max_per_minute = 60
audit = true
target = { kind = "syslog", address = "127.0.0.1:6514" }
"#;

fn ca(seed: &str) -> CertificateAuthority {
    CertificateAuthority {
        // "cert of SEED", base64: a certificate only needs to be PEM here.
        cert_pem: format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            match seed {
                "a" => "Y2VydCBvZiBh",
                _ => "Y2VydCBvZiBi",
            }
        ),
        key_pem: Secret(format!("key of {seed}")),
    }
}

fn cluster(seed: &str) -> ClusterState {
    let mut state = ClusterState::new();
    Command::Access(AccessCommand::SetCertificateAuthority(ca(seed)))
        .apply(&mut state)
        .expect("a CA");
    let document = PolicyDocument::parse(POLICY).expect("the test policy parses");
    document
        .import(&state)
        .expect("the test policy is valid")
        .apply(&mut state)
        .expect("applies");
    state
}

fn evidence(state: &ClusterState, tally: FlowTally) -> Evidence<'_> {
    Evidence {
        state,
        applied_index: 40,
        now_ms: 1_790_000_000_000,
        node: NodeId(1),
        members: vec![MemberEvidence {
            node: NodeId(1),
            name: "node-1".into(),
            answer: Some(MemberAnswer {
                applied_index: Some(40),
                dataplane_index: Some(40),
                dataplane_error: None,
            }),
        }],
        flows: FlowEvidence {
            window_ms: 24 * 3600 * 1000,
            answered: vec![NodeId(1)],
            missing: vec![],
            tally,
        },
    }
}

fn set_mode(state: &mut ClusterState, zone: &str, mode: Mode) {
    Command::UpsertZone {
        id: None,
        name: zone.into(),
        mode,
        description: String::new(),
    }
    .apply(state)
    .expect("a valid zone");
}

#[test]
fn every_control_of_the_crosswalk_is_judged_in_order() {
    let state = cluster("a");
    let report = HipaaReport::make(&evidence(&state, FlowTally::default())).expect("signs");
    let ids: Vec<&str> = report.controls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, CONTROLS.iter().map(|c| c.id).collect::<Vec<_>>());
    assert_eq!(ids.first(), Some(&"ID.AM-2"));
    assert_eq!(ids.last(), Some(&"DE.DP-4"));
    assert_eq!(report.controls.len(), 21);
    assert_eq!(report.cluster, "st-example");
    assert_eq!(
        report.summary.met + report.summary.partly_met + report.summary.not_met,
        21
    );
    for c in &report.controls {
        assert!(!c.finding.evidence.is_empty(), "{} lists no evidence", c.id);
        assert!(!c.hipaa.is_empty(), "{} maps to no HIPAA section", c.id);
    }
}

#[test]
fn enforcing_every_workload_zone_meets_segmentation() {
    let mut state = cluster("a");
    let status = |state: &ClusterState| {
        let report = HipaaReport::make(&evidence(state, FlowTally::default())).expect("signs");
        let control = report.control("PR.AC-5").expect("PR.AC-5").clone();
        control
    };
    let before = status(&state);
    assert_eq!(before.finding.status, Status::PartlyMet);
    assert!(before
        .finding
        .gaps
        .contains(&"set zone `prod` to enforce".to_owned()));
    set_mode(&mut state, "prod", Mode::Enforce);
    assert_eq!(status(&state).finding.status, Status::Met);
    set_mode(&mut state, "prod", Mode::Learn);
    set_mode(&mut state, "dev", Mode::Learn);
    assert_eq!(status(&state).finding.status, Status::NotMet);
}

#[test]
fn encryption_is_judged_by_the_share_of_cross_node_flows() {
    let state = cluster("a");
    let judge = |cross_node, encrypted| {
        let tally = FlowTally {
            flows: 100,
            cross_node,
            cross_node_encrypted: encrypted,
            ..FlowTally::default()
        };
        let report = HipaaReport::make(&evidence(&state, tally)).expect("signs");
        report.control("PR.DS-2").expect("PR.DS-2").clone()
    };
    assert_eq!(judge(10, 10).finding.status, Status::Met);
    let partly = judge(10, 4);
    assert_eq!(partly.finding.status, Status::PartlyMet);
    assert!(
        partly
            .finding
            .evidence
            .iter()
            .any(|e| e.contains("4 of 10") && e.contains("40.0%")),
        "{:?}",
        partly.finding.evidence
    );
}

#[test]
fn a_missing_backup_fails_pr_ip_4_and_a_recent_one_meets_it() {
    let mut state = cluster("a");
    let judge = |state: &ClusterState| {
        HipaaReport::make(&evidence(state, FlowTally::default()))
            .expect("signs")
            .control("PR.IP-4")
            .expect("PR.IP-4")
            .finding
            .status
    };
    assert_eq!(judge(&state), Status::NotMet);
    let record = |taken_at_ms| {
        Command::RecordBackup(stockade_policy::BackupRecord {
            taken_at_ms,
            source_index: 30,
            durable_digest: stockade_policy::Sha256([7; 32]),
            node: NodeId(1),
            file: "stockade.backup".into(),
        })
    };
    let now = 1_790_000_000_000;
    let old = record(now - 3 * 24 * 3600 * 1000);
    old.apply(&mut state).expect("records");
    assert_eq!(judge(&state), Status::PartlyMet);
    record(now - 3600 * 1000)
        .apply(&mut state)
        .expect("records");
    assert_eq!(judge(&state), Status::Met);
}

#[test]
fn a_report_verifies_only_unchanged_and_on_its_own_cluster() {
    let state = cluster("a");
    let report = HipaaReport::make(&evidence(&state, FlowTally::default())).expect("signs");
    report.verify(&state).expect("its own cluster verifies it");

    let mut changed = report.clone();
    changed.controls[2].finding.status = Status::Met;
    assert_eq!(changed.verify(&state), Err(ReportError::Altered));

    // Changed, with the digest recomputed: the signature gives it away.
    let digest = {
        use sha2::Digest as _;
        stockade_policy::Sha256(sha2::Sha256::digest(changed.contents()).into())
    };
    changed.digest = digest.to_string();
    assert!(matches!(
        changed.verify(&state),
        Err(ReportError::NotSigned { .. })
    ));
    assert!(matches!(
        report.verify(&cluster("b")),
        Err(ReportError::NotSigned { .. })
    ));
}

#[test]
fn html_escapes_names_and_embeds_the_report() {
    let mut state = cluster("a");
    let mut settings = state.settings.clone();
    settings.cluster_name = "<b>St Mary's</b> & co </script>".into();
    Command::SetSettings(settings)
        .apply(&mut state)
        .expect("a valid name");
    let report = HipaaReport::make(&evidence(&state, FlowTally::default())).expect("signs");
    let html = report.to_html();
    assert!(!html.contains("<b>St Mary"), "the name is escaped");
    assert!(html.contains("&#60;b&#62;St Mary"), "{html}");
    assert!(html.contains("PR.AC-5") && html.contains("164.312(e)(1)"));
    assert_eq!(
        html.matches("</script>").count(),
        1,
        "the data cannot end its element"
    );
    let back = HipaaReport::parse(&html).expect("the embedded report reads back");
    assert_eq!(back, report);
    back.verify(&state).expect("and verifies");
}

#[test]
fn the_pdf_holds_every_control_and_the_report_itself() {
    let state = cluster("a");
    let report = HipaaReport::make(&evidence(&state, FlowTally::default())).expect("signs");
    let pdf = report.to_pdf().expect("renders");
    assert!(pdf.starts_with(b"%PDF-"));
    let doc = lopdf::Document::load_mem(&pdf).expect("a readable PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    assert!(pages.len() >= 2, "21 controls take more than a page");
    let text = doc.extract_text(&pages).expect("text");
    for control in CONTROLS {
        assert!(
            text.contains(control.id),
            "{} is not in the PDF",
            control.id
        );
    }
    assert!(text.contains("st-example"));
    let back = HipaaReport::parse_pdf(&pdf).expect("the embedded report reads back");
    assert_eq!(back, report);
    back.verify(&state).expect("and verifies");
}

proptest! {
    /// Any flow counts give a report whose totals add up and whose
    /// signature checks; a share is never over 100%.
    #[test]
    fn any_flow_counts_give_a_consistent_signed_report(
        flows in 0u64..1_000_000,
        cross in 0u64..1_000,
        encrypted in 0u64..1_000,
    ) {
        let state = cluster("a");
        let tally = FlowTally {
            flows,
            cross_node: cross,
            cross_node_encrypted: encrypted.min(cross),
            ..FlowTally::default()
        };
        let report = HipaaReport::make(&evidence(&state, tally)).expect("signs");
        let s = report.summary;
        prop_assert_eq!(s.met + s.partly_met + s.not_met, CONTROLS.len());
        prop_assert!(report.verify(&state).is_ok());
        let json = serde_json::to_string(&report).expect("json");
        prop_assert_eq!(HipaaReport::parse(&json).expect("parses"), report);
    }
}
