//! `stockade demo`: the newest working slice of
//! Stockade, end to end on one machine.
//!
//! The demo takes the embedded hospital policy through everything that exists
//! today: validation, identification of sample workloads (one of them a
//! tampered binary), compilation into one node's map contents, decisions on
//! sample flows with the rule behind each, and the eBPF dataplane loaded and
//! attached in the running kernel.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use stockade_bpf::{diff, MapContents};
use stockade_policy::{
    explain, ExecKey, L4Protocol, LocalExecutable, LocalWorkload, LocalWorkloads, PolicyDocument,
    Resolution, Sha256, WorkloadFacts, WorkloadKey,
};

use crate::cli::DemoArgs;
use crate::dataplane::encode;
use crate::policy_cmd::{read_document, LoadedPolicy, DEMO_POLICY};

/// The digest the demo policy registers for the records API.
const RECORDS_API_SHA256: &str = "5d41402abc4b2a76b9719d911017c592ae2b6a8c6f2c5f0c1a4e5e0b8f3a9c11";
/// The demo's process running a modified build of the records API.
const TAMPERED_PID: u32 = 1303;

/// `stockade demo`.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let doc = match &args.policy {
        Some(path) => read_document(path)?,
        None => PolicyDocument::parse(DEMO_POLICY).context("the embedded demo policy")?,
    };
    let workloads = sample_workloads()?;
    let loaded = LoadedPolicy::new(&doc, &workloads)?;
    let state = &loaded.state;

    println!("== Policy");
    for zone in state.zones.values() {
        println!(
            "  zone {:<8} {:<8} {}",
            zone.name,
            zone.mode.to_string(),
            zone.description
        );
    }
    println!(
        "  {} rules, {} identities",
        state.rules.len(),
        state.identities.len()
    );

    println!("\n== Workloads on this node, identified");
    for workload in &workloads.workloads {
        let how = explain(state, stockade_policy::NodeId(1), &workload.facts)?;
        let subject = loaded.dataplane.workloads[&workload.key];
        println!(
            "  {:<46} -> {:<40} id {}",
            describe_workload(workload),
            describe(&how),
            subject.identity
        );
    }

    println!("\n== Flows, as both sides' hooks decide them");
    let show = |label: String, src, dst, port| {
        let (egress, ingress) = loaded.decide(src, dst, L4Protocol::Tcp, port);
        println!("  {label}");
        println!("      egress:  {}", loaded.describe(&egress));
        if let Some(ingress) = ingress {
            println!("      ingress: {}", loaded.describe(&ingress));
        }
    };
    for (from, to, port) in [
        ("ehr/portal/web", "ehr/records/api", 8443),
        ("ehr/records/api", "ehr/records/db", 5432),
        ("ehr/portal/web", "ehr/records/db", 5432),
        ("billing/invoicing/worker", "ehr/records/api", 8443),
        ("dev/sandbox/shell", "ehr/records/db", 5432),
        ("ehr/records/api", "203.0.113.7", 443),
        ("ehr/records/api", "198.51.100.9", 25),
        ("dev/sandbox/shell", "198.51.100.9", 443),
    ] {
        let (src, dst) = (loaded.subject(from, 0)?, loaded.subject(to, port)?);
        show(format!("{from} -> {to}:{port}"), src, dst, port);
    }
    // The modified build of the records API, by its process.
    let tampered = loaded.dataplane.workloads[&WorkloadKey::Process(TAMPERED_PID)];
    let db = loaded.subject("ehr/records/db", 5432)?;
    show(
        format!("pid {TAMPERED_PID} (modified records-api) -> ehr/records/db:5432"),
        tampered,
        db,
        5432,
    );

    let maps = encode(&loaded.dataplane);
    println!("\n== Map contents for this node, as the kernel reads them");
    show_sizes(&maps);

    // A change reaches the kernel as the few writes that differ.
    let mut changed = doc.clone();
    if let Some(zone) = changed.zones.iter_mut().find(|z| z.name == "billing") {
        zone.mode = stockade_policy::Mode::Enforce;
    }
    let after = encode(&LoadedPolicy::new(&changed, &workloads)?.dataplane);
    let zones = diff(&maps.zones, &after.zones);
    let policy = diff(&maps.policy, &after.policy);
    println!(
        "\n== Switching billing to enforce writes {} zone entries and {} policy entries{}",
        zones.upserts.len() + zones.deletes.len(),
        policy.upserts.len() + policy.deletes.len(),
        if policy.is_empty() {
            " (rules are unchanged)"
        } else {
            ""
        },
    );

    if args.no_bpf {
        println!("\n== eBPF: skipped (--no-bpf)");
    } else {
        println!("\n== eBPF dataplane, enforcing in this kernel");
        crate::demo_kernel::run()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints each map's entries and bytes (keys and values as laid out for the
/// kernel).
fn show_sizes(maps: &MapContents) {
    fn line<K, V>(name: &str, map: &std::collections::BTreeMap<K, V>) {
        let bytes = map.len() * (std::mem::size_of::<K>() + std::mem::size_of::<V>());
        println!("  {name:<12} {:>5} entries {bytes:>7} bytes", map.len());
    }
    line("policy", &maps.policy);
    line("ipcache", &maps.ipcache);
    line("cgroups", &maps.cgroups);
    line("processes", &maps.processes);
    line("executables", &maps.executables);
    line("zones", &maps.zones);
}

fn sha(hex: &str) -> Result<Sha256> {
    hex.parse().context("demo digest")
}

/// Workloads a hospital node might run, one of them a tampered build.
fn sample_workloads() -> Result<LocalWorkloads> {
    let process = |pid, exe: &str, sha256, user: &str| LocalWorkload {
        key: WorkloadKey::Process(pid),
        facts: WorkloadFacts {
            exe_path: Some(exe.into()),
            exe_sha256: Some(sha256),
            cgroup_path: None,
            user: Some(user.into()),
        },
    };
    let registered = sha(RECORDS_API_SHA256)?;
    let tampered = sha(&"e3".repeat(32))?;
    let other = sha(&"a1".repeat(32))?;
    Ok(LocalWorkloads {
        workloads: vec![
            process(1201, "/opt/portal/bin/portal", other, "www"),
            process(1302, "/opt/records/bin/records-api", registered, "records"),
            process(
                TAMPERED_PID,
                "/opt/records/bin/records-api",
                tampered,
                "records",
            ),
            LocalWorkload {
                key: WorkloadKey::Cgroup(4242),
                facts: WorkloadFacts {
                    exe_path: Some("/usr/lib/postgresql/16/bin/postgres".into()),
                    exe_sha256: Some(other),
                    cgroup_path: Some("/system.slice/postgresql@16-main.service".into()),
                    user: Some("postgres".into()),
                },
            },
            process(88, "/usr/sbin/sshd", other, "root"),
        ],
        executables: vec![LocalExecutable {
            key: ExecKey {
                dev: 0x803,
                inode: 131_077,
                ctime_ns: 1_764_000_000_000_000_000,
            },
            facts: WorkloadFacts {
                exe_path: Some("/opt/records/bin/records-api".into()),
                exe_sha256: Some(registered),
                ..WorkloadFacts::default()
            },
        }],
        daemon: vec![WorkloadKey::Process(1)],
    })
}

fn describe_workload(workload: &LocalWorkload) -> String {
    let exe = workload.facts.exe_path.as_deref().unwrap_or("?");
    match workload.key {
        WorkloadKey::Process(pid) => format!("pid {pid} {exe}"),
        WorkloadKey::Cgroup(id) => format!("cgroup {id} {exe}"),
    }
}

/// How a workload was identified, in a few words.
pub(crate) fn describe(resolution: &Resolution) -> String {
    match resolution {
        Resolution::Fingerprint { identity } => format!("{identity} (fingerprint)"),
        Resolution::Rule { rule, identity } => format!("{identity} (rule {rule})"),
        Resolution::Unverified { claimed, .. } => format!("UNVERIFIED, claims {claimed}"),
        Resolution::Unmanaged => "unmanaged".into(),
    }
}
