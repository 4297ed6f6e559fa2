//! The demo's sample application and its intruders, all played by
//! `stockade-demo-app` (built next to `stockade`): each part runs its own
//! copy with a few bytes of its own appended, so each binary has its own
//! SHA-256 — which is what a fingerprint registers.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::cluster::Cluster;

/// The application's ports.
pub const API_PORT: u16 = 8443;
/// The database's port.
pub const DB_PORT: u16 = 5432;

/// One part of the application: where it runs and what it does.
#[derive(Clone, Copy, Debug)]
pub struct Part {
    /// The part's name, its binary's and its cgroup's (below its host's
    /// subtree; the policy's identity rules match these).
    pub name: &'static str,
    /// What the part is, for people.
    pub role: &'static str,
    /// The host it runs on.
    pub host: usize,
    /// The port it listens on.
    pub listen: Option<u16>,
    /// The host and port it calls, every half second.
    pub calls: Option<(usize, u16)>,
}

/// The application: portal → records API → database in `prod`, and a
/// developer tool in `dev`, spread over the three hosts.
pub const PARTS: [Part; 4] = [
    Part {
        name: "records-db",
        role: "prod/records/db, the database",
        host: 3,
        listen: Some(DB_PORT),
        calls: None,
    },
    Part {
        name: "records-api",
        role: "prod/records/api, registered by fingerprint",
        host: 2,
        listen: Some(API_PORT),
        calls: Some((3, DB_PORT)),
    },
    Part {
        name: "portal-web",
        role: "prod/portal/web, the front end",
        host: 1,
        listen: None,
        calls: Some((2, API_PORT)),
    },
    Part {
        name: "dev-tool",
        role: "dev/tools/shell, a developer's tool",
        host: 1,
        listen: Some(9000),
        calls: None,
    },
];

/// The registered binary of the records API.
pub const REGISTERED: &str = "records-api";

/// An intruder: a binary, where it runs, and what it reaches for.
#[derive(Clone, Copy, Debug)]
pub struct Intruder {
    /// What it is, for people.
    pub title: &'static str,
    /// Its binary (in the demo's `bin/`).
    pub binary: &'static str,
    /// The binary it replaces first (moved over it, as an attacker who
    /// swapped an installed program would; what runs keeps the old one).
    pub replaces: Option<&'static str>,
    /// The cgroup it runs in, below its host's subtree.
    pub cgroup: &'static str,
    /// The host it runs on.
    pub host: usize,
    /// The alert that says what it is, besides the blocked flow.
    pub alert: Option<&'static str>,
}

/// The intruders, in the order the demo lets them loose. Each calls the
/// database.
pub const INTRUDERS: [Intruder; 3] = [
    Intruder {
        title: "an unregistered binary on host 1 reaches for the database",
        binary: "intruder",
        replaces: None,
        cgroup: "intruder",
        host: 1,
        alert: Some("Unknown binary running"),
    },
    Intruder {
        title: "a modified records API replaces the registered binary on host 2",
        binary: "records-api-modified",
        replaces: Some(REGISTERED),
        cgroup: "records-api",
        host: 2,
        alert: Some("Modified binary running"),
    },
    Intruder {
        title: "the dev tool (zone dev) reaches for the prod database",
        binary: "dev-tool",
        replaces: None,
        cgroup: "dev-tool",
        host: 1,
        alert: None,
    },
];

/// `stockade-demo-app`, next to the running `stockade`.
fn app_binary() -> Result<PathBuf> {
    let path = super::cluster::stockade_binary()?.with_file_name("stockade-demo-app");
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build -p stockade-node` (scripts/demo.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// Writes every part's and intruder's binary to `bin`: copies of
/// `stockade-demo-app`, each with its own trailer (ELF ignores trailing
/// bytes), so each has a digest of its own.
pub fn build_binaries(bin: &Path) -> Result<()> {
    let original = std::fs::read(app_binary()?).context("reading stockade-demo-app")?;
    std::fs::create_dir_all(bin).with_context(|| format!("creating {}", bin.display()))?;
    let names = PARTS
        .iter()
        .map(|part| part.name)
        .chain(["intruder", "records-api-modified"]);
    for name in names {
        let path = bin.join(name);
        let mut file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        file.write_all(&original)?;
        write!(file, "\0stockade demo: {name}\0")?;
        drop(file);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    Ok(())
}

/// Starts `part` on its host, in its cgroup, logging to `logs/NAME.log`.
pub fn start(cluster: &Cluster, dir: &Path, part: &Part) -> Result<()> {
    let binary = dir.join("bin").join(part.name);
    let mut command = cluster
        .lab()
        .workload(part.host, part.name, &binary.to_string_lossy());
    command.arg(part.name).args(["--every", "500"]);
    if let Some(port) = part.listen {
        command.args(["--listen", &port.to_string()]);
    }
    if let Some((host, port)) = part.calls {
        command.args(["--call", &format!("{}:{port}", cluster.lab().address(host))]);
    }
    cluster.spawn_detached(command, &log_of(dir, part.name))
}

/// The log of workload `name`.
pub fn log_of(dir: &Path, name: &str) -> PathBuf {
    dir.join("logs").join(format!("{name}.log"))
}

/// How many calls of workload `name` were answered so far.
pub fn answered_calls(dir: &Path, name: &str) -> usize {
    std::fs::read_to_string(log_of(dir, name))
        .map(|log| log.lines().filter(|line| line.ends_with(" ok")).count())
        .unwrap_or(0)
}

/// Lets `intruder` try the database once; returns what it printed and
/// whether it got through.
pub fn attempt(cluster: &Cluster, dir: &Path, intruder: &Intruder) -> Result<(String, bool)> {
    let bin = dir.join("bin");
    let binary = match intruder.replaces {
        Some(victim) => {
            std::fs::rename(bin.join(intruder.binary), bin.join(victim))
                .with_context(|| format!("replacing {victim} with {}", intruder.binary))?;
            bin.join(victim)
        }
        None => bin.join(intruder.binary),
    };
    let target = format!("{}:{DB_PORT}", cluster.lab().address(3));
    let output = cluster
        .lab()
        .workload(intruder.host, intruder.cgroup, &binary.to_string_lossy())
        .args(["intruder", "--once", "--call", &target])
        .output()
        .with_context(|| format!("running {}", intruder.binary))?;
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    Ok((printed, output.status.success()))
}
