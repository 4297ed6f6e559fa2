//! Stockade's dataplane on the client's cgroup, driven through the library
//! as the node's reconciler drives it: the netcheck binary is the client
//! app, the server's address and port the server app, one rule allows the
//! flow and `N - 1` other rules (and as many other addresses) fill the
//! tries. Dropping it uninstalls everything.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{ensure, Context};
use stockade_bpf::common::maps::{
    IpcacheKey, PolicyKey, Subject, Verdict, ZoneMode, ACTION_ALLOW, FAMILY_IPV4, MODE_ENFORCE,
    MODE_LEARN, UNMANAGED_ZONE,
};
use stockade_bpf::{exec_key, process_exists, Dataplane, DataplaneSettings, MapContents};

use super::veth::Client;

/// The client app's identity (the netcheck binary).
const CLIENT: u32 = 300;
/// The server app's identity (the server's address and port).
const SERVER: u32 = 301;
/// Their zone, which enforces: only a rule lets a flow through.
const ZONE: u32 = 1;
/// The rule number of the allow rule; the others follow it.
const ALLOW_RULE: u32 = 16;
/// First identity of the other rules' peers.
const OTHER_IDENTITIES: u32 = 1000;
const TCP: u8 = 6;

/// The Stockade dataplane, installed at a cgroup subtree with a rule set.
pub struct Installed {
    dataplane: Option<Dataplane>,
    pin_dir: PathBuf,
    maps: MapContents,
    allow: (PolicyKey, Verdict),
}

impl Installed {
    /// Loads and attaches the dataplane at `cgroup` (pins in a folder of
    /// this run) and writes `rules` rules (at least the allow rule).
    pub fn install(
        cgroup: &Path,
        rules: usize,
        netcheck: &Path,
        server: SocketAddrV4,
    ) -> anyhow::Result<Installed> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pin_dir = Path::new(stockade_bpf::BPFFS_PATH).join(format!(
            "stk-dpbench-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let metadata = std::fs::metadata(netcheck)
            .with_context(|| format!("reading {}", netcheck.display()))?;
        let (maps, allow) = contents(rules, &metadata, server);
        // The guard exists before the first pin does.
        let mut installed = Installed {
            dataplane: None,
            pin_dir: pin_dir.clone(),
            maps,
            allow,
        };
        let dataplane = Dataplane::open(DataplaneSettings {
            pin_dir,
            cgroup: cgroup.to_owned(),
        })
        .context("opening the dataplane")?;
        installed.dataplane = Some(dataplane);
        installed.write()?;
        Ok(installed)
    }

    fn write(&mut self) -> anyhow::Result<()> {
        let dataplane = self
            .dataplane
            .as_mut()
            .context("the dataplane is not open")?;
        dataplane
            .write(&self.maps, process_exists)
            .context("writing the maps")?;
        Ok(())
    }

    /// Checks that the dataplane decides: without the allow rule a
    /// connection is refused with `EPERM`, with it the connection succeeds.
    pub fn check_enforces(&mut self, client: &Client) -> anyhow::Result<()> {
        let (key, verdict) = self.allow;
        self.maps.policy.remove(&key);
        self.write()?;
        let refused = client.connect_once()?;
        let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
        ensure!(
            !refused.status.success() && stderr.contains("Operation not permitted"),
            "without its rule the connection was not refused with EPERM: {} {stderr}",
            refused.status
        );
        self.maps.policy.insert(key, verdict);
        self.write()?;
        let allowed = client.connect_once()?;
        ensure!(
            allowed.status.success(),
            "with its rule the connection failed: {}",
            String::from_utf8_lossy(&allowed.stderr)
        );
        Ok(())
    }

    /// Entries in the policy and address tries.
    pub fn entries(&self) -> (usize, usize) {
        (self.maps.policy.len(), self.maps.ipcache.len())
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        drop(self.dataplane.take());
        if let Err(e) = stockade_bpf::uninstall(&self.pin_dir) {
            eprintln!("cleanup: uninstalling {}: {e}", self.pin_dir.display());
        }
    }
}

fn mapped(ip: Ipv4Addr) -> [u8; 16] {
    ip.to_ipv6_mapped().octets()
}

/// The maps of a node whose only workload is netcheck, with `rules` rules
/// (one of them the allow rule, returned too) and as many addresses.
fn contents(
    rules: usize,
    netcheck: &std::fs::Metadata,
    server: SocketAddrV4,
) -> (MapContents, (PolicyKey, Verdict)) {
    let mode = |mode| ZoneMode { mode, pad: [0; 3] };
    let verdict = |rule| Verdict {
        rule,
        action: ACTION_ALLOW,
        encrypt: 0,
        pad: [0; 2],
    };
    let mut maps = MapContents::default();
    maps.executables.insert(
        exec_key(netcheck),
        Subject {
            identity: CLIENT,
            zone: ZONE,
        },
    );
    maps.zones = BTreeMap::from([
        (UNMANAGED_ZONE, mode(MODE_LEARN)),
        (ZONE, mode(MODE_ENFORCE)),
    ]);
    maps.ipcache.insert(
        IpcacheKey::new(FAMILY_IPV4, mapped(*server.ip()), 128, Some(server.port())),
        Subject {
            identity: SERVER,
            zone: ZONE,
        },
    );
    let allow = (
        PolicyKey::lookup(CLIENT, SERVER, TCP, server.port()),
        verdict(ALLOW_RULE),
    );
    maps.policy.insert(allow.0, allow.1);
    // The others: 100 sources times as many destinations as it takes, each
    // pair on a port of its own, and one address of 10.128.0.0/9 for each.
    for i in 1..rules {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        let (src, dst) = (OTHER_IDENTITIES + i % 100, OTHER_IDENTITIES + 100 + i / 100);
        let port = 1024 + (i % 60_000) as u16;
        maps.policy.insert(
            PolicyKey::lookup(src, dst, TCP, port),
            verdict(ALLOW_RULE + i),
        );
        let address = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i);
        maps.ipcache.insert(
            IpcacheKey::new(FAMILY_IPV4, mapped(address), 128, None),
            Subject {
                identity: dst,
                zone: ZONE,
            },
        );
    }
    (maps, allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tries_hold_as_many_distinct_rules_and_addresses_as_asked() {
        let metadata = std::fs::metadata("/").expect("stat /");
        let server = SocketAddrV4::new(Ipv4Addr::new(10, 88, 0, 2), 7000);
        for rules in [1, 10_000, 100_000] {
            let (maps, (key, _)) = contents(rules, &metadata, server);
            assert_eq!(maps.policy.len(), rules);
            assert_eq!(maps.ipcache.len(), rules);
            assert!(maps.policy.contains_key(&key));
        }
    }
}
