//! The OpenAPI document against the router it describes, and its schemas
//! against the JSON the API really reads and writes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use stockade_policy::{
    Action, AlertSink, AppSelector, Applied, IdentityId, IdentityName, IdentityRule, Mode, Peer,
    PortRange, Protocol, Rule, RuleId, RuleSpec, Secret, Severity, Sha256, SinkTarget,
    WorkloadSelector, Zone, ZoneId,
};
use stockade_raft::RaftStatus;

use crate::api::error::ErrorBody;
use crate::api::policy::WriteReply;
use crate::cluster::{Consistency, Status};

/// Every route the API serves, by method and path. Keep it in step with the
/// `routes!` calls: a route that is served but missing here, or listed here
/// but not documented, fails `the_document_lists_every_route`.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/endpoints"),
    ("get", "/v1/zones"),
    ("get", "/v1/zones/{name}"),
    ("put", "/v1/zones/{name}"),
    ("delete", "/v1/zones/{name}"),
    ("get", "/v1/identities"),
    ("post", "/v1/identities"),
    ("delete", "/v1/identities/{zone}/{app}/{service}"),
    ("get", "/v1/identity-rules"),
    ("put", "/v1/identity-rules/{name}"),
    ("delete", "/v1/identity-rules/{name}"),
    ("get", "/v1/fingerprints"),
    ("post", "/v1/fingerprints"),
    ("delete", "/v1/fingerprints/{sha256}"),
    ("get", "/v1/rules"),
    ("get", "/v1/rules/hits"),
    ("post", "/v1/rules"),
    ("get", "/v1/rules/{id}"),
    ("put", "/v1/rules/{id}"),
    ("delete", "/v1/rules/{id}"),
    ("get", "/v1/sinks"),
    ("put", "/v1/sinks/{name}"),
    ("delete", "/v1/sinks/{name}"),
    ("get", "/v1/alerts"),
    ("get", "/v1/audit"),
    ("get", "/v1/inventory"),
    ("get", "/v1/flows"),
    ("get", "/v1/flows/stream"),
    ("get", "/v1/topology"),
    ("get", "/v1/baseline"),
    ("post", "/v1/baseline/proposal"),
    ("post", "/v1/baseline/decisions"),
    ("get", "/v1/templates"),
    ("post", "/v1/templates/{name}"),
    ("get", "/v1/policy"),
    ("put", "/v1/policy"),
    ("get", "/v1/policy/history"),
    ("get", "/v1/policy/history/{version}"),
    ("post", "/v1/policy/rollback"),
    ("get", "/v1/status"),
    ("get", "/v1/members"),
    ("get", "/v1/state/digest"),
    ("get", "/v1/backup"),
    ("get", "/v1/backup/last"),
    ("get", "/v1/compliance/hipaa"),
    ("post", "/v1/compliance/hipaa/verify"),
    ("post", "/v1/restore"),
    ("delete", "/v1/members/{id}"),
    ("put", "/v1/members/voters"),
    ("get", "/v1/certs"),
    ("post", "/v1/certs/rotate"),
    ("post", "/v1/tokens"),
    ("delete", "/v1/tokens/{id}"),
    ("post", "/v1/join-tokens"),
    ("get", "/v1/openapi.json"),
    ("get", "/metrics"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// The document exactly as `GET /v1/openapi.json` serves it.
fn document() -> Value {
    let (_router, openapi) = super::super::api().split_for_parts();
    serde_json::to_value(&openapi).expect("the document serializes")
}

/// The operations of the document, by (method, path).
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                out.insert((method.to_string(), path.clone()), op.clone());
            }
        }
    }
    out
}

fn schemas(doc: &Value) -> &serde_json::Map<String, Value> {
    doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas")
}

#[test]
fn the_document_lists_every_route() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(ROUTES.len(), served.len(), "ROUTES lists a route twice");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "documented operations not in ROUTES: {unknown:?}"
    );
}

/// `routes!` registers a handler under the method and path of its
/// `#[utoipa::path]`, so a route added that way is documented by
/// construction. The ways around it are axum's own: a plain route, axum's
/// method routers, a service or fallback, or an axum router turned into an
/// `OpenApiRouter`. None may appear in the API's sources.
#[test]
fn routes_are_only_added_through_utoipa_routes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    // Built at run time so that this file does not match itself.
    let needles: Vec<String> = ["route", "route_service", "nest_service", "fallback"]
        .iter()
        .map(|m| format!(".{m}("))
        .chain([format!("routing{}", "::"), format!("Router{}", "::from(")])
        .collect();
    let mut files = vec![];
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/api is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 5, "found only {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{} uses `{needle}`: register routes with `utoipa_axum::routes!` so they are documented",
                file.display()
            );
        }
    }
}

#[test]
fn key_schemas_exist_and_every_reference_resolves() {
    let doc = document();
    let schemas = schemas(&doc);
    for name in [
        "RuleSpec",
        "Rule",
        "Peer",
        "AppSelector",
        "PortRange",
        "Zone",
        "Mode",
        "Identity",
        "IdentityName",
        "IdentityRule",
        "WorkloadSelector",
        "Fingerprint",
        "Sha256",
        "AlertSink",
        "SinkTarget",
        "Severity",
        "Secret",
        "Applied",
        "WriteReply",
        "ErrorBody",
        "ZoneBody",
        "NewApiToken",
        "NewJoinToken",
        "CreatedToken",
        "VotersBody",
        "StateDigest",
        "Status",
        "MembersReply",
        "MemberEntry",
        "NodeReport",
        "RuleHitsReply",
        "RuleHits",
        "Role",
        "Protocol",
        "Action",
        "ZoneId",
        "IdentityId",
        "RuleId",
        "NodeId",
        "AuditReply",
        "AuditEntry",
        "HistoryReply",
        "VersionReply",
        "RollbackBody",
        "PolicyDiff",
    ] {
        assert!(
            schemas.contains_key(name),
            "no schema `{name}`; have {:?}",
            schemas.keys()
        );
    }
    let mut refs = vec![];
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(schemas.contains_key(name), "dangling reference {r}");
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_operation_but_the_document_needs_a_token_and_says_so() {
    let doc = document();
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for ((method, path), op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.contains_key("200"), "{method} {path} has no 200");
        if path == "/v1/openapi.json" {
            assert_eq!(op["security"], json!([{}]), "the document needs no token");
            continue;
        }
        assert!(
            op.get("security").is_none(),
            "{method} {path} overrides the security"
        );
        let error = &responses["401"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(
            error, "#/components/schemas/ErrorBody",
            "{method} {path}: 401"
        );
        // Checking a report posts the file but writes nothing: any token
        // may, and it does not need the leader.
        let posts_a_read = path == "/v1/compliance/hipaa/verify";
        if method != "get" && !posts_a_read {
            assert!(responses.contains_key("403"), "{method} {path} has no 403");
            assert!(responses.contains_key("503"), "{method} {path} has no 503");
        }
    }
}

#[test]
fn reads_take_the_consistency_query_parameter() {
    let doc = document();
    for ((method, path), op) in operations(&doc) {
        // Not reads of the replicated state: the status, the document, the
        // built-in templates, what the nodes' own flow logs hold (flows,
        // topology, rule hits), what each member says of itself, and the
        // node's own certificate. The
        // state digest reads it, but its point is this node's own copy as
        // applied, whatever the leader has.
        let not_state = [
            "/v1/status",
            "/v1/state/digest",
            "/v1/openapi.json",
            "/v1/templates",
            "/v1/flows",
            "/v1/flows/stream",
            "/v1/topology",
            "/v1/certs",
            "/v1/rules/hits",
            "/v1/members",
            "/metrics",
        ];
        if method != "get" || not_state.contains(&path.as_str()) {
            continue;
        }
        let params = op["parameters"].as_array().expect("parameters");
        let consistency = params
            .iter()
            .find(|p| p["name"] == "consistency")
            .unwrap_or_else(|| panic!("{path} has no `consistency`"));
        assert_eq!(consistency["in"], "query");
        assert_eq!(consistency["required"], json!(false));
        // Every documented value is one the API accepts, and every variant
        // is documented (the match makes a new variant fail to compile).
        let name = |c: Consistency| match c {
            Consistency::Local => "local",
            Consistency::Linearizable => "linearizable",
        };
        let documented: BTreeSet<&str> = enum_values(&consistency["schema"]);
        let real: BTreeSet<&str> = [Consistency::Local, Consistency::Linearizable]
            .into_iter()
            .map(name)
            .collect();
        assert_eq!(documented, real, "{path}");
        for value in documented {
            let parsed: Consistency =
                serde_json::from_value(json!(value)).expect("a documented value parses");
            assert_eq!(name(parsed), value);
        }
    }
}

/// The string values an enum schema allows, through `oneOf`/`type` wrappers.
fn enum_values(schema: &Value) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    if let Some(values) = schema["enum"].as_array() {
        out.extend(values.iter().filter_map(Value::as_str));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for s in schema[key].as_array().into_iter().flatten() {
            out.extend(enum_values(s));
        }
    }
    out
}

fn raft_status() -> RaftStatus {
    RaftStatus {
        node_id: 1,
        role: "leader".into(),
        term: 3,
        leader: Some(1),
        last_log_index: Some(42),
        applied_index: Some(42),
        snapshot_index: Some(40),
        purged_index: Some(10),
        voters: BTreeMap::from([(1, "10.0.0.1:7400".into())]),
        learners: BTreeMap::from([(2, "10.0.0.2:7400".into())]),
        replication: Some(BTreeMap::from([(1, Some(42)), (2, None)])),
        millis_since_quorum_ack: Some(5),
        last_contact_ms: BTreeMap::from([(2, 120)]),
    }
}

/// An audit entry of a refused change, with every optional field.
fn audit_entry() -> stockade_policy::AuditEntry {
    stockade_policy::AuditEntry {
        seq: 3,
        version: 42,
        at_ms: 1_714_566_896_789,
        author: stockade_policy::Author {
            token_id: "abc123".into(),
            token_name: "ci-bot".into(),
            role: stockade_policy::Role::Operator,
        },
        address: Some("192.0.2.9:41234".parse().expect("an address")),
        node: stockade_policy::NodeId(2),
        kind: "remove_zone".into(),
        detail: r#"{"op":"remove_zone","name":"dev"}"#.into(),
        outcome: stockade_policy::Outcome::Refused {
            reason: "name: no zone is named `dev`".into(),
        },
        policy_changed: false,
    }
}

/// A sample of every body and reply type, as JSON, with the schema it must
/// fit. Peers, port ranges, digests and secrets have hand-written schemas,
/// so each of their forms is here.
fn samples() -> Vec<(&'static str, Value)> {
    let sha = Sha256([0xab; 32]);
    let name = IdentityName {
        zone: "prod".into(),
        app: "billing".into(),
        service: "api".into(),
    };
    let spec = RuleSpec {
        from: Peer::App(AppSelector {
            zone: "prod".into(),
            app: Some("billing".into()),
            service: None,
        }),
        to: Peer::Cidr("10.0.0.0/8".parse().expect("a prefix")),
        protocol: Protocol::Tcp,
        ports: vec![
            PortRange::single(443),
            "8000-8080".parse().expect("a range"),
        ],
        action: Action::Allow,
        encrypt: true,
        owner: "payments".into(),
        description: "billing calls the bank".into(),
    };
    let to_zone = RuleSpec {
        from: Peer::App(AppSelector {
            zone: "dev".into(),
            app: None,
            service: None,
        }),
        to: Peer::App(AppSelector {
            zone: "prod".into(),
            app: Some("db".into()),
            service: Some("primary".into()),
        }),
        protocol: Protocol::Any,
        ports: vec![],
        action: Action::Deny,
        encrypt: false,
        owner: String::new(),
        description: String::new(),
    };
    let sink = |target| AlertSink {
        name: "team".into(),
        target,
        min_severity: Severity::Warning,
        zones: vec!["prod".into()],
        apps: vec!["prod/billing".into()],
        classes: vec![],
        max_per_minute: None,
        audit: false,
    };
    fn value<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).expect("a sample serializes")
    }
    let (mut before, mut after) = (
        stockade_policy::PolicyDocument::default(),
        stockade_policy::PolicyDocument::default(),
    );
    before.settings.audit_retention = 10;
    after.zones.push(stockade_policy::DocZone {
        id: Some(ZoneId(1)),
        name: "prod".into(),
        mode: Mode::Enforce,
        description: String::new(),
    });
    vec![
        ("AuditEntry", value(&audit_entry())),
        ("Alert", value(&audit_entry().to_alert().into_alert(7))),
        ("PolicyDiff", value(&stockade_policy::diff(&before, &after))),
        ("RollbackBody", json!({ "to": 42 })),
        ("RuleSpec", value(&spec)),
        ("RuleSpec", value(&to_zone)),
        (
            "Rule",
            value(&Rule {
                id: RuleId(16),
                spec,
            }),
        ),
        (
            "Zone",
            value(&Zone {
                id: ZoneId(1),
                name: "prod".into(),
                mode: Mode::Enforce,
                description: "production".into(),
            }),
        ),
        ("ZoneBody", json!({ "mode": "alert" })),
        ("ZoneBody", json!({ "mode": "learn", "description": "d" })),
        (
            "Identity",
            value(&stockade_policy::Identity {
                id: IdentityId(256),
                name: name.clone(),
            }),
        ),
        ("IdentityName", value(&name)),
        (
            "IdentityRule",
            value(&IdentityRule {
                name: "10-billing".into(),
                identity: name.clone(),
                selector: WorkloadSelector {
                    sha256: Some(sha),
                    exe_path: Some("/opt/billing/bin/*".into()),
                    cgroup_path: None,
                    user: Some("billing".into()),
                    node_labels: BTreeMap::from([("cloud".into(), "aws".into())]),
                },
            }),
        ),
        (
            "Fingerprint",
            value(&stockade_policy::Fingerprint {
                sha256: sha,
                identity: name,
                path: "/opt/billing/bin/api".into(),
            }),
        ),
        (
            "AlertSink",
            value(&sink(SinkTarget::Slack {
                webhook_url: Secret(Secret::REDACTED.into()),
            })),
        ),
        (
            "AlertSink",
            value(&sink(SinkTarget::Syslog {
                address: "siem:6514".into(),
                tls: true,
                ca_pem: None,
            })),
        ),
        (
            "AlertSink",
            value(&sink(SinkTarget::Webhook {
                url: "https://hec.example/services/collector".into(),
                token: Some(Secret("t".into())),
                format: Default::default(),
            })),
        ),
        (
            "WriteReply",
            value(&WriteReply {
                index: 7,
                applied: Applied::Batch(vec![
                    Applied::Zone(ZoneId(1)),
                    Applied::Identity(IdentityId(256)),
                    Applied::Rule(RuleId(16)),
                    Applied::Node(stockade_policy::NodeId(2)),
                    Applied::Done,
                ]),
            }),
        ),
        (
            "WriteReply",
            value(&WriteReply {
                index: 8,
                applied: Applied::Done,
            }),
        ),
        (
            "ErrorBody",
            value(&ErrorBody {
                error: "bad".into(),
                field: Some("rule.to.zone".into()),
            }),
        ),
        (
            "ErrorBody",
            value(&ErrorBody {
                error: "bad".into(),
                field: None,
            }),
        ),
        (
            "NewApiToken",
            json!({ "name": "ci", "role": "operator", "ttl_seconds": 3600 }),
        ),
        ("NewApiToken", json!({ "name": "ops", "role": "admin" })),
        ("NewJoinToken", json!({ "ttl_seconds": 600 })),
        ("VotersBody", json!({ "voters": 5 })),
        (
            "StateDigest",
            value(&super::super::state::StateDigest {
                applied_index: 42,
                digest: sha,
                durable_digest: sha,
            }),
        ),
        (
            "CreatedToken",
            value(&super::super::members::CreatedToken {
                token: "stk_a_b".into(),
                index: 9,
            }),
        ),
        (
            "Status",
            value(&Status {
                name: "n1".into(),
                raft: raft_status(),
                dataplane: Some(crate::dataplane::DataplaneStatus {
                    index: 12,
                    cgroup: "/sys/fs/cgroup".into(),
                    pin_dir: "/sys/fs/bpf/stockade".into(),
                    attachment: "adopted".into(),
                    entries: 40,
                    maps: vec![crate::dataplane::MapUsage {
                        map: "policy".into(),
                        entries: 30,
                        capacity: 1 << 19,
                    }],
                    maps_digest: "ab".repeat(32),
                    allowed: 7,
                    denied: 1,
                    events_lost: 0,
                    error: Some("node 4 is not a member of the cluster state".into()),
                }),
                flows: Some(crate::flows::FlowStatus {
                    events_read: 30,
                    records_written: 12,
                    connections: 900,
                    log_bytes: 4096,
                    log_records: 12,
                    oldest_ms: Some(1_700_000_000_000),
                    summaries: 5,
                    ..crate::flows::FlowStatus::default()
                }),
                tunnel: Some(crate::tunnel::TunnelStatus {
                    port: 7401,
                    local_port: 7402,
                    public_key: "cd".repeat(32),
                    counters: stockade_transport::tunnel::TunnelCounters {
                        sessions_opened: 3,
                        bytes_sent: 1 << 20,
                        frames_replayed: 1,
                        ..Default::default()
                    },
                }),
            }),
        ),
        (
            "Status",
            value(&Status {
                name: "n2".into(),
                raft: RaftStatus {
                    leader: None,
                    replication: None,
                    millis_since_quorum_ack: None,
                    ..raft_status()
                },
                dataplane: None,
                flows: None,
                tunnel: None,
            }),
        ),
        ("MembersReply", value(&members_reply())),
        (
            "RuleHitsReply",
            value(&crate::api::flows::RuleHitsReply {
                hits: vec![
                    crate::flows::hits::RuleHits {
                        rule: stockade_policy::RuleRef::ZoneDefault,
                        connections: 3,
                        allowed: 0,
                        denied: 3,
                        records: 1,
                        last_ms: 1_700_000_000_000,
                    },
                    crate::flows::hits::RuleHits::none(stockade_policy::RuleRef::Rule(RuleId(256))),
                ],
                answered: vec![stockade_policy::NodeId(1)],
                missing: vec![missing_node()],
            }),
        ),
    ]
}

fn missing_node() -> crate::flows::query::MissingNode {
    crate::flows::query::MissingNode {
        node: stockade_policy::NodeId(2),
        name: "n2".into(),
        error: "no answer within 3s".into(),
    }
}

/// One member that answered, with a dataplane, and one that did not.
fn members_reply() -> crate::api::members::MembersReply {
    use crate::api::members::{MemberEntry, MembersReply};
    MembersReply {
        node_id: stockade_policy::NodeId(1),
        leader: Some(stockade_policy::NodeId(1)),
        cluster_index: 42,
        members: vec![
            MemberEntry {
                id: stockade_policy::NodeId(1),
                name: "n1".into(),
                address: "10.0.0.1:7400".into(),
                membership: "voter".into(),
                leader: true,
                last_contact_ms: None,
                report: Some(crate::report::NodeReport {
                    version: "0.1.0".into(),
                    role: "leader".into(),
                    applied_index: Some(42),
                    dataplane_index: Some(40),
                    dataplane_error: None,
                }),
                dataplane_lag: Some(2),
            },
            MemberEntry {
                id: stockade_policy::NodeId(2),
                name: "n2".into(),
                address: "10.0.0.2:7400".into(),
                membership: "learner".into(),
                leader: false,
                last_contact_ms: Some(15),
                report: None,
                dataplane_lag: None,
            },
        ],
        missing: vec![missing_node()],
    }
}

#[test]
fn samples_of_every_body_and_reply_fit_their_schemas() {
    let doc = document();
    let schemas = schemas(&doc);
    for (name, sample) in samples() {
        let schema = &schemas[name];
        if let Err(e) = fits(schemas, schema, &sample, name, Fields::Documented) {
            panic!("{sample} does not fit `{name}`: {e}");
        }
    }
}

#[test]
fn bodies_the_api_refuses_do_not_fit_their_schemas() {
    let doc = document();
    let schemas = schemas(&doc);
    let app = json!({ "zone": "prod", "app": "db" });
    let spec =
        |from: Value| json!({ "from": from, "to": app, "protocol": "tcp", "action": "allow" });
    for (name, bad) in [
        (
            "RuleSpec",
            spec(json!({ "zone": "prod", "cidr": "10.0.0.0/8" })),
        ),
        ("RuleSpec", spec(json!({ "app": "db" }))),
        (
            "RuleSpec",
            spec(json!({ "cidr": "10.0.0.0/8", "service": "x" })),
        ),
        ("RuleSpec", spec(json!({ "App": { "zone": "prod" } }))),
        (
            "RuleSpec",
            json!({ "from": app, "to": app, "protocol": "tcp", "action": "allow", "ports": ["x"] }),
        ),
        (
            "RuleSpec",
            json!({ "from": app, "to": app, "protocol": "icmp", "action": "allow" }),
        ),
        (
            "RuleSpec",
            json!({ "from": app, "to": app, "protocol": "tcp", "action": "allow", "extra": 1 }),
        ),
        ("ZoneBody", json!({ "mode": "block" })),
        ("ZoneBody", json!({ "description": "no mode" })),
        (
            "Fingerprint",
            json!({ "sha256": "abc", "identity": { "zone": "a", "app": "b", "service": "c" } }),
        ),
        (
            "AlertSink",
            json!({ "name": "n", "min_severity": "info", "target": { "kind": "email" } }),
        ),
        ("NewJoinToken", json!({})),
        ("VotersBody", json!({})),
        ("VotersBody", json!({ "voters": "three" })),
        ("VotersBody", json!({ "voters": 3, "learners": 2 })),
    ] {
        // The API refuses these bodies...
        let refused = match name {
            "RuleSpec" => serde_json::from_value::<RuleSpec>(bad.clone()).is_err(),
            "ZoneBody" => {
                serde_json::from_value::<super::super::policy::zones::ZoneBody>(bad.clone())
                    .is_err()
            }
            "Fingerprint" => {
                serde_json::from_value::<stockade_policy::Fingerprint>(bad.clone()).is_err()
            }
            "AlertSink" => serde_json::from_value::<AlertSink>(bad.clone()).is_err(),
            "NewJoinToken" => {
                serde_json::from_value::<super::super::members::NewJoinToken>(bad.clone()).is_err()
            }
            "VotersBody" => {
                serde_json::from_value::<super::super::members::VotersBody>(bad.clone()).is_err()
            }
            other => panic!("no parser for {other}"),
        };
        assert!(refused, "the API accepts {bad} as {name}");
        // ...and the document says so.
        assert!(
            fits(schemas, &schemas[name], &bad, name, Fields::Open).is_err(),
            "{bad} fits `{name}` but the API refuses it"
        );
    }
}

/// How [`fits`] treats object fields its schema does not name.
#[derive(Clone, Copy, PartialEq)]
enum Fields {
    /// As JSON Schema does: allowed unless `additionalProperties` is false.
    Open,
    /// Refused unless `additionalProperties` gives their schema: a sample
    /// of what the API really sends must have every field documented.
    Documented,
}

/// Whether `value` fits `schema`: the part of JSON Schema the document
/// uses (`$ref`, `type`, `enum`, `oneOf`/`anyOf`/`allOf`, `properties`,
/// `required`, `additionalProperties`, `items`, and `pattern` in the few
/// shapes used here).
fn fits(
    schemas: &serde_json::Map<String, Value>,
    schema: &Value,
    value: &Value,
    at: &str,
    fields: Fields,
) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return fits(
            schemas,
            &schemas[name],
            value,
            &format!("{at}->{name}"),
            fields,
        );
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => return Err(format!("{at}: odd type {other}")),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        if !values.contains(value) {
            return Err(format!("{at}: {value} is not one of {values:?}"));
        }
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        let text = value.as_str().unwrap_or_default();
        if !matches_pattern(pattern, text) {
            return Err(format!("{at}: {value} does not match {pattern}"));
        }
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let fitting = options
            .iter()
            .filter(|s| fits(schemas, s, value, at, fields).is_ok())
            .count();
        if fitting != 1 {
            return Err(format!("{at}: {value} fits {fitting} of the oneOf options"));
        }
    }
    if let Some(options) = schema["anyOf"].as_array() {
        if !options
            .iter()
            .any(|s| fits(schemas, s, value, at, fields).is_ok())
        {
            return Err(format!("{at}: {value} fits none of the anyOf options"));
        }
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        fits(schemas, s, value, at, fields)?;
    }
    let describes_object = ["properties", "additionalProperties"]
        .iter()
        .any(|k| schema.get(*k).is_some());
    if let (Some(object), true) = (value.as_object(), describes_object) {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().unwrap_or_default();
            if !object.contains_key(key) {
                return Err(format!("{at}: `{key}` is required"));
            }
        }
        for (key, v) in object {
            let at = format!("{at}.{key}");
            match (
                properties.and_then(|p| p.get(key)),
                &schema["additionalProperties"],
            ) {
                (Some(s), _) => fits(schemas, s, v, &at, fields)?,
                (None, extra @ Value::Object(_)) => fits(schemas, extra, v, &at, fields)?,
                (None, Value::Bool(false)) => return Err(format!("{at}: unknown field")),
                (None, _) if fields == Fields::Documented => {
                    return Err(format!("{at}: undocumented field"))
                }
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            fits(schemas, items, v, &format!("{at}[{i}]"), fields)?;
        }
    }
    Ok(())
}

/// The patterns of this document, checked without a regex engine.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    match pattern {
        "^[0-9a-fA-F]{64}$" => text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()),
        "^[0-9]{1,5}(-[0-9]{1,5})?$" => match text.split_once('-') {
            Some((a, b)) => digits(a, 5) && digits(b, 5),
            None => digits(text, 5),
        },
        other => panic!("the test does not know the pattern {other}"),
    }
}
