//! A node's pinned maps, read from the bench process: whether a policy key
//! is in force, and how many entries each enforcement map holds.

use std::fmt;
use std::path::Path;

use anyhow::Context;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{HashMap, Map, MapData};
use stockade_bpf_common::maps::{
    ExecKey, PolicyKey, Subject, Verdict, ZoneMode, CGROUP_MAP, EXEC_MAP, IPCACHE_MAP, POLICY_MAP,
    PROCESS_MAP, ZONE_MAP,
};

fn open(pin_dir: &Path, name: &str) -> anyhow::Result<Map> {
    let path = pin_dir.join("maps").join(name);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    Map::from_map_data(data).with_context(|| format!("reading the type of {}", path.display()))
}

/// The policy trie of one node.
pub struct PolicyMap(LpmTrie<MapData, [u8; 12], Verdict>);

impl PolicyMap {
    /// Opens `<pin_dir>/maps/STK_POLICY`.
    pub fn open(pin_dir: &Path) -> anyhow::Result<PolicyMap> {
        let trie = LpmTrie::try_from(open(pin_dir, POLICY_MAP)?)
            .with_context(|| format!("{POLICY_MAP} is not the policy trie"))?;
        Ok(PolicyMap(trie))
    }

    /// The verdict the kernel finds for `key` (a longest-prefix match), if
    /// any.
    pub fn get(&self, key: &PolicyKey) -> Option<Verdict> {
        self.0.get(&Key::new(key.prefix_len, key.data), 0).ok()
    }
}

/// Entries of a node's enforcement maps.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Policy trie.
    pub policy: usize,
    /// Address trie.
    pub ipcache: usize,
    /// Executable identities.
    pub executables: usize,
    /// Process identities.
    pub processes: usize,
    /// Cgroup identities.
    pub cgroups: usize,
    /// Zone modes.
    pub zones: usize,
}

impl Counts {
    /// Counts the entries of the maps pinned under `pin_dir`.
    pub fn read(pin_dir: &Path) -> anyhow::Result<Counts> {
        let policy: LpmTrie<_, [u8; 12], Verdict> = LpmTrie::try_from(open(pin_dir, POLICY_MAP)?)?;
        let ipcache: LpmTrie<_, [u8; 20], Subject> =
            LpmTrie::try_from(open(pin_dir, IPCACHE_MAP)?)?;
        let executables: HashMap<_, ExecKey, Subject> =
            HashMap::try_from(open(pin_dir, EXEC_MAP)?)?;
        let processes: HashMap<_, u32, Subject> = HashMap::try_from(open(pin_dir, PROCESS_MAP)?)?;
        let cgroups: HashMap<_, u64, Subject> = HashMap::try_from(open(pin_dir, CGROUP_MAP)?)?;
        let zones: HashMap<_, u32, ZoneMode> = HashMap::try_from(open(pin_dir, ZONE_MAP)?)?;
        Ok(Counts {
            policy: policy.keys().filter(Result::is_ok).count(),
            ipcache: ipcache.keys().filter(Result::is_ok).count(),
            executables: executables.keys().filter(Result::is_ok).count(),
            processes: processes.keys().filter(Result::is_ok).count(),
            cgroups: cgroups.keys().filter(Result::is_ok).count(),
            zones: zones.keys().filter(Result::is_ok).count(),
        })
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {}, ipcache {}, executables {}, processes {}, cgroups {}, zones {}",
            self.policy, self.ipcache, self.executables, self.processes, self.cgroups, self.zones
        )
    }
}
