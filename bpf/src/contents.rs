//! What the enforcement maps hold, and the writes that turn the maps as
//! they are into the maps as they should be.

use std::collections::BTreeMap;

use stockade_bpf_common::maps::{ExecKey, IpcacheKey, PolicyKey, Subject, Verdict, ZoneMode};

/// Every enforcement map of one node, keyed and valued as the kernel reads
/// them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapContents {
    /// The policy trie.
    pub policy: BTreeMap<PolicyKey, Verdict>,
    /// The address trie.
    pub ipcache: BTreeMap<IpcacheKey, Subject>,
    /// Identities of cgroups, by cgroup id.
    pub cgroups: BTreeMap<u64, Subject>,
    /// Identities of processes, by pid (thread group id).
    pub processes: BTreeMap<u32, Subject>,
    /// Identities of executables.
    pub executables: BTreeMap<ExecKey, Subject>,
    /// Zone modes, with `UNMANAGED_ZONE` for workloads in no zone.
    pub zones: BTreeMap<u32, ZoneMode>,
}

impl MapContents {
    /// Entries over all maps.
    pub fn len(&self) -> usize {
        self.policy.len()
            + self.ipcache.len()
            + self.cgroups.len()
            + self.processes.len()
            + self.executables.len()
            + self.zones.len()
    }

    /// Whether every map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Entries to write and keys to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDiff<K, V> {
    /// Keys that are missing or hold another value, with the value they need.
    pub upserts: Vec<(K, V)>,
    /// Keys that must go.
    pub deletes: Vec<K>,
}

impl<K, V> MapDiff<K, V> {
    /// Whether the map is already as it should be.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// What to write to `current` to make it equal to `desired`: nothing for
/// entries that already hold the right value.
pub fn diff<K: Ord + Clone, V: PartialEq + Clone>(
    current: &BTreeMap<K, V>,
    desired: &BTreeMap<K, V>,
) -> MapDiff<K, V> {
    let upserts = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let deletes = current
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    MapDiff { upserts, deletes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn applying_the_diff_reaches_the_desired_map(
            current in proptest::collection::btree_map(0u16..64, any::<u8>(), 0..40),
            desired in proptest::collection::btree_map(0u16..64, any::<u8>(), 0..40),
        ) {
            let d = diff(&current, &desired);
            let mut map = current.clone();
            for k in &d.deletes {
                prop_assert!(map.remove(k).is_some(), "deletes only what exists");
            }
            for (k, v) in &d.upserts {
                prop_assert_ne!(current.get(k), Some(v), "writes only what changes");
                map.insert(*k, *v);
            }
            prop_assert_eq!(&map, &desired);
            prop_assert!(diff(&desired, &desired).is_empty());
        }
    }
}
