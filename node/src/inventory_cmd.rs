//! `stockade policy inventory`: every process on this machine with the
//! identity a policy document gives it, and why.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use stockade_policy::{explain, LocalWorkloads, NodeId, PolicyDocument, Resolution, WorkloadFacts};

use crate::cli::LocalInventoryArgs;
use crate::inventory::{procs, ExecutableHasher};
use crate::policy_cmd::{read_document, LoadedPolicy, DEMO_POLICY};

/// `stockade policy inventory [--policy FILE]`.
pub fn run(args: &LocalInventoryArgs) -> Result<ExitCode> {
    let doc = match &args.policy {
        Some(path) => read_document(path)?,
        None => PolicyDocument::parse(DEMO_POLICY).context("the embedded demo policy")?,
    };
    let loaded = LoadedPolicy::new(&doc, &LocalWorkloads::default())?;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let users = procs::user_names(&passwd);
    let mut hasher = ExecutableHasher::new();
    println!(
        "{:>7}  {:<10} {:<16} {:<40} identity",
        "pid", "user", "sha256", "executable"
    );
    for process in procs::scan(Path::new("/proc")).context("reading /proc")? {
        // A process may exit, or its binary be replaced, while we look.
        let Ok((_, sha256)) = hasher.hash(&process.exe) else {
            continue;
        };
        let user = users.get(&process.uid).cloned();
        let facts = WorkloadFacts {
            exe_path: Some(process.exe.display().to_string()),
            exe_sha256: Some(sha256),
            cgroup_path: process.cgroup_path.clone(),
            user: user.clone(),
        };
        let resolution = explain(&loaded.state, NodeId(1), &facts)?;
        println!(
            "{:>7}  {:<10} {:<16} {:<40} {}",
            process.pid,
            user.unwrap_or_else(|| process.uid.to_string()),
            &sha256.to_string()[..16],
            process.exe.display(),
            describe(&resolution)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How a workload was identified, in a few words.
fn describe(resolution: &Resolution) -> String {
    match resolution {
        Resolution::Fingerprint { identity } => format!("{identity} (fingerprint)"),
        Resolution::Rule { rule, identity } => format!("{identity} (rule {rule})"),
        Resolution::Unverified { claimed, .. } => format!("UNVERIFIED, claims {claimed}"),
        Resolution::Unmanaged => "unmanaged".into(),
    }
}
