//! How long a report takes on a large cluster: judging and signing, the
//! HTML and PDF renderings, and counting flow records (what each node does
//! with its log). Prints figures; run with `cargo bench -p stockade-compliance`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use stockade_compliance::{
    Evidence, FlowEvidence, FlowTally, HipaaReport, MemberAnswer, MemberEvidence,
};
use stockade_policy::{
    AccessCommand, Action, CertificateAuthority, ClusterState, Command, Direction, FlowPeer,
    FlowRecord, IdentityName, L4Protocol, NodeId, PeerClass, PolicyDocument, RuleId, RuleRef,
    Secret,
};

const ZONES: usize = 20;
const APPS_PER_ZONE: usize = 50;
const NODES: u64 = 100;
const RECORDS: usize = 1_000_000;

/// 20 zones of 50 apps (1 000 identities) and 1 000 rules between them.
fn large_cluster() -> ClusterState {
    let mut doc = String::new();
    for z in 0..ZONES {
        let mode = if z.is_multiple_of(2) {
            "enforce"
        } else {
            "alert"
        };
        writeln!(doc, "[[zone]]\nname = \"z{z}\"\nmode = \"{mode}\"").expect("a string");
        for a in 0..APPS_PER_ZONE {
            writeln!(
                doc,
                "[[identity]]\nzone = \"z{z}\"\napp = \"a{a}\"\nservice = \"main\""
            )
            .expect("a string");
            let to = (a + 1) % APPS_PER_ZONE;
            writeln!(
                doc,
                "[[rule]]\nfrom = {{ zone = \"z{z}\", app = \"a{a}\" }}\n\
                 to = {{ zone = \"z{z}\", app = \"a{to}\" }}\nprotocol = \"tcp\"\n\
                 ports = [\"{}\"]\naction = \"allow\"\nencrypt = {}",
                8000 + a,
                a.is_multiple_of(3)
            )
            .expect("a string");
        }
    }
    let mut state = ClusterState::new();
    Command::Access(AccessCommand::SetCertificateAuthority(
        CertificateAuthority {
            cert_pem: "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n".into(),
            key_pem: Secret("key".into()),
        },
    ))
    .apply(&mut state)
    .expect("a CA");
    PolicyDocument::parse(&doc)
        .expect("the document parses")
        .import(&state)
        .expect("the document is valid")
        .apply(&mut state)
        .expect("it applies");
    state
}

fn peer(i: usize, node: u64) -> FlowPeer {
    FlowPeer {
        ip: std::net::IpAddr::from([10, 0, (node % 250) as u8, (i % 250) as u8]),
        port: 8000,
        class: if i.is_multiple_of(50) {
            PeerClass::Unknown
        } else {
            PeerClass::Workload
        },
        identity: Some(IdentityName {
            zone: format!("z{}", i % ZONES),
            app: format!("a{}", i % APPS_PER_ZONE),
            service: "main".into(),
        }),
        zone: None,
        node: Some(NodeId(node)),
        process: None,
    }
}

fn records() -> Vec<FlowRecord> {
    (0..RECORDS)
        .map(|i| {
            let node = (i as u64) % NODES + 1;
            FlowRecord {
                node: NodeId(node),
                first_ms: 0,
                last_ms: 1,
                direction: if i.is_multiple_of(2) {
                    Direction::Egress
                } else {
                    Direction::Ingress
                },
                protocol: L4Protocol::Tcp,
                src: peer(i, node),
                dst: peer(i + 1, (node % NODES) + 1),
                action: if i % 10 == 0 {
                    Action::Deny
                } else {
                    Action::Allow
                },
                rule: RuleRef::Rule(RuleId(100)),
                connections: 3,
                encrypted: i.is_multiple_of(3),
            }
        })
        .collect()
}

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let state = large_cluster();
    let records = records();
    let mut tally = FlowTally::default();
    let counting = median(5, || {
        let mut t = FlowTally::default();
        for r in &records {
            t.add(black_box(r));
        }
        tally = t;
    });
    let members = (1..=NODES)
        .map(|n| MemberEvidence {
            node: NodeId(n),
            name: format!("node-{n}"),
            answer: Some(MemberAnswer {
                applied_index: Some(5),
                dataplane_index: Some(5),
                dataplane_error: None,
            }),
        })
        .collect();
    let evidence = Evidence {
        state: &state,
        applied_index: 5,
        now_ms: 1_790_000_000_000,
        node: NodeId(1),
        members,
        flows: FlowEvidence {
            window_ms: 24 * 3600 * 1000,
            answered: (1..=NODES).map(NodeId).collect(),
            missing: vec![],
            tally,
        },
    };
    let mut report = None;
    let making = median(11, || {
        report = Some(HipaaReport::make(&evidence).expect("signs"))
    });
    let report = report.expect("made");
    let html = median(11, || {
        black_box(report.to_html());
    });
    let pdf = median(5, || {
        black_box(report.to_pdf().expect("renders"));
    });
    let verify = median(11, || report.verify(&state).expect("verifies"));
    println!(
        "cluster: {} identities, {} rules, {NODES} nodes",
        state.identities.len(),
        state.rules.len()
    );
    println!(
        "count {RECORDS} flow records: {:.1} ms ({:.0} ns a record)",
        counting.as_secs_f64() * 1e3,
        counting.as_nanos() as f64 / RECORDS as f64
    );
    println!("judge and sign: {:.2} ms", making.as_secs_f64() * 1e3);
    println!(
        "HTML: {:.2} ms ({} bytes)",
        html.as_secs_f64() * 1e3,
        report.to_html().len()
    );
    println!(
        "PDF: {:.2} ms ({} bytes)",
        pdf.as_secs_f64() * 1e3,
        report.to_pdf().map(|p| p.len()).unwrap_or(0)
    );
    println!("verify: {:.3} ms", verify.as_secs_f64() * 1e3);
}
