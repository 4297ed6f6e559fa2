//! The demo's kernel part: a small policy compiled by the policy engine and
//! enforced by the real eBPF hooks on a cgroup made for the demo, with bash
//! as the registered client. Everything it creates is removed when it ends.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result};
use stockade_bpf::{cgroup2_root, process_exists, uninstall, Dataplane, DataplaneSettings};
use stockade_policy::{
    compile, Endpoint, IdentityName, LocalExecutable, LocalWorkload, LocalWorkloads, NodeId,
    PolicyDocument, WorkloadFacts, WorkloadKey,
};

use crate::dataplane::encode;
use crate::inventory::ExecutableHasher;
use crate::policy_cmd::LoadedPolicy;

/// The demo's cgroup and pin folder, removed on drop.
struct DemoSandbox {
    cgroup: PathBuf,
    pin_dir: PathBuf,
}

impl DemoSandbox {
    fn new() -> Result<Self> {
        let name = format!("stockade-demo-{}", std::process::id());
        let cgroup = cgroup2_root()?.join(&name);
        fs::create_dir(&cgroup).with_context(|| format!("creating {}", cgroup.display()))?;
        Ok(DemoSandbox {
            cgroup,
            pin_dir: Path::new(stockade_bpf::BPFFS_PATH).join(name),
        })
    }

    /// Runs bash (or a copy) in the demo cgroup, trying a TCP connection.
    fn connect(&self, bash: &Path, port: u16) -> Result<String> {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec \"$0\" -c 'exec 3<>/dev/tcp/127.0.0.1/{port}'",
            self.cgroup.display()
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(bash)
            .output()
            .context("running the demo client")?;
        Ok(if out.status.success() {
            "connected".into()
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("Operation not permitted") {
                "refused by the kernel (EPERM)".into()
            } else {
                format!("failed: {}", err.trim())
            }
        })
    }
}

impl Drop for DemoSandbox {
    fn drop(&mut self) {
        if let Err(e) = uninstall(&self.pin_dir) {
            eprintln!("demo cleanup: {e}");
        }
        let _ = fs::write(self.cgroup.join("cgroup.kill"), "1");
        for _ in 0..50 {
            if fs::remove_dir(&self.cgroup).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

fn policy(sha256: &str, port: u16, with_rule: bool) -> String {
    let rule = if with_rule {
        format!(
            "[[rule]]\nfrom = {{ zone = \"clinic\", app = \"viewer\" }}\n\
             to = {{ zone = \"clinic\", app = \"records\" }}\n\
             protocol = \"tcp\"\nports = [\"{port}\"]\naction = \"allow\"\n"
        )
    } else {
        String::new()
    };
    format!(
        "[[zone]]\nname = \"clinic\"\nmode = \"enforce\"\n\
         [[identity]]\nzone = \"clinic\"\napp = \"viewer\"\nservice = \"main\"\n\
         [[identity]]\nzone = \"clinic\"\napp = \"records\"\nservice = \"main\"\n\
         [[identity_rule]]\nname = \"clinic-cgroup\"\n\
         identity = {{ zone = \"clinic\", app = \"viewer\", service = \"main\" }}\n\
         match = {{ cgroup_path = \"/\" }}\n\
         [[fingerprint]]\nsha256 = \"{sha256}\"\n\
         identity = {{ zone = \"clinic\", app = \"viewer\", service = \"main\" }}\n{rule}"
    )
}

/// Shows the hooks refusing and allowing connections as the policy says.
pub fn run() -> Result<()> {
    let sandbox = DemoSandbox::new()?;
    let listener = TcpListener::bind("127.0.0.1:0").context("listening on loopback")?;
    let port = listener.local_addr()?.port();
    let bash = fs::canonicalize("/bin/bash").context("finding bash")?;
    let (key, sha256) = ExecutableHasher::new().hash(&bash)?;

    // A copy of bash with one byte of its version text changed.
    let tampered = std::env::temp_dir().join(format!("stockade-demo-bash-{}", std::process::id()));
    let mut bytes = fs::read(&bash)?;
    if let Some(at) = bytes.windows(8).position(|w| w == b"GNU bash") {
        bytes[at] = b'g';
    }
    fs::write(&tampered, &bytes)?;
    fs::set_permissions(&tampered, fs::Permissions::from_mode(0o755))?;
    let _remove_copy = RemoveOnDrop(tampered.clone());

    let mut dataplane = Dataplane::open(DataplaneSettings {
        pin_dir: sandbox.pin_dir.clone(),
        cgroup: sandbox.cgroup.clone(),
    })
    .context("loading the eBPF dataplane (are you root?)")?;
    println!(
        "  hooks attached to {}, pins in {}",
        sandbox.cgroup.display(),
        sandbox.pin_dir.display()
    );
    let local = LocalWorkloads {
        workloads: vec![LocalWorkload {
            key: WorkloadKey::Cgroup(stockade_bpf::cgroup_id(&sandbox.cgroup)?),
            facts: WorkloadFacts {
                cgroup_path: Some("/".into()),
                ..WorkloadFacts::default()
            },
        }],
        executables: vec![LocalExecutable {
            key,
            facts: WorkloadFacts {
                exe_path: Some(bash.display().to_string()),
                exe_sha256: Some(sha256),
                ..WorkloadFacts::default()
            },
        }],
        daemon: vec![],
    };
    let mut enforce = |with_rule: bool| -> Result<()> {
        let doc = PolicyDocument::parse(&policy(&sha256.to_string(), port, with_rule))
            .context("the demo's kernel policy")?;
        let mut state = LoadedPolicy::new(&doc, &local)?.state;
        stockade_policy::Command::UpsertEndpoint(Endpoint {
            node: NodeId(1),
            ip: "127.0.0.1".parse()?,
            port: Some(port),
            identity: IdentityName {
                zone: "clinic".into(),
                app: "records".into(),
                service: "main".into(),
            },
        })
        .apply(&mut state)?;
        let maps = encode(&compile(&state, NodeId(1), &local)?);
        dataplane.write(&maps, process_exists)?;
        Ok(())
    };

    println!("  zone clinic enforces; bash is registered as clinic/viewer, 127.0.0.1:{port} is clinic/records");
    enforce(false)?;
    println!(
        "  no rule yet:           bash -> records: {}",
        sandbox.connect(&bash, port)?
    );
    enforce(true)?;
    println!(
        "  rule viewer->records: bash -> records: {}",
        sandbox.connect(&bash, port)?
    );
    println!(
        "  a modified bash:       copy -> records: {}",
        sandbox.connect(&tampered, port)?
    );
    drop(dataplane);
    Ok(())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}
