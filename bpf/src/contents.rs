//! What the enforcement maps hold, and the writes that turn the maps as
//! they are into the maps as they should be.

use std::collections::BTreeMap;

use aya::Pod;
use sha2::{Digest as _, Sha256};
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

    /// Lowercase hex SHA-256 of every map but `processes`, so that two
    /// nodes (or the daemon and a process reading the pins) can tell
    /// whether they enforce the same thing without shipping the maps.
    ///
    /// `processes` is left out because it legitimately differs from what
    /// the daemon wrote: the kernel's exec and fork hooks add entries of
    /// their own, and the map is an LRU that ages entries out.
    ///
    /// The bytes hashed are, map after map in a fixed order, a one-byte tag,
    /// the entry count (u64, little-endian), then each key's and value's
    /// bytes as the kernel holds them, in key order. Keys and values have a
    /// fixed size per map, so no two contents encode alike. The bytes are in
    /// the machine's own order, as the maps are: digests compare between
    /// nodes of one architecture.
    pub fn enforcement_digest(&self) -> String {
        let mut hasher = Sha256::new();
        hash_map(&mut hasher, 1, &self.policy);
        hash_map(&mut hasher, 2, &self.ipcache);
        hash_map(&mut hasher, 3, &self.cgroups);
        hash_map(&mut hasher, 4, &self.executables);
        hash_map(&mut hasher, 5, &self.zones);
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn hash_map<K: Pod, V: Pod>(hasher: &mut Sha256, tag: u8, map: &BTreeMap<K, V>) {
    hasher.update([tag]);
    hasher.update((map.len() as u64).to_le_bytes());
    for (key, value) in map {
        hasher.update(pod_bytes(key));
        hasher.update(pod_bytes(value));
    }
}

/// The bytes of a map key or value, as the kernel stores them.
///
/// Only called with the integers and the key and value types of
/// `stockade-bpf-common`'s enforcement maps, each `#[repr(C)]` with its
/// padding spelled out as fields: their sizes, which that crate asserts,
/// are the sums of their fields' sizes. So there is no implicit padding, no
/// uninitialised byte to read, and one value always gives the same bytes.
fn pod_bytes<T: Pod>(value: &T) -> &[u8] {
    // SAFETY: `T: Pod` promises a plain-data type that may be viewed as
    // bytes (aya's own `bytes_of` does the same to hand keys to the
    // kernel); the slice covers exactly `value` and borrows it.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(value).cast::<u8>(), size_of::<T>()) }
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

    fn subject(identity: u32) -> Subject {
        Subject { identity, zone: 1 }
    }

    fn sample() -> MapContents {
        let mut maps = MapContents::default();
        maps.policy.insert(
            PolicyKey::lookup(300, 301, 6, 443),
            Verdict {
                rule: 16,
                action: 0,
                encrypt: 0,
                pad: [0; 2],
            },
        );
        maps.ipcache
            .insert(IpcacheKey::new(4, [0; 16], 128, Some(443)), subject(301));
        maps.cgroups.insert(42, subject(300));
        maps.processes.insert(7, subject(300));
        maps.executables.insert(
            ExecKey {
                dev: 1,
                inode: 2,
                ctime_ns: 3,
            },
            subject(300),
        );
        maps.zones.insert(
            1,
            ZoneMode {
                mode: 2,
                pad: [0; 3],
            },
        );
        maps
    }

    #[test]
    fn the_digest_is_lowercase_hex_sha256() {
        let digest = MapContents::default().enforcement_digest();
        assert_eq!(digest.len(), 64);
        assert!(digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(sample().enforcement_digest(), sample().enforcement_digest());
    }

    #[test]
    fn the_digest_changes_with_every_map_but_processes() {
        let base = sample();
        let digest = base.enforcement_digest();
        type Change = fn(&mut MapContents);
        let changes: [(&str, Change); 9] = [
            ("policy value", |m| {
                m.policy.values_mut().for_each(|v| v.action = 1);
            }),
            ("policy key", |m| {
                m.policy
                    .insert(PolicyKey::lookup(1, 2, 17, 53), Verdict::default());
            }),
            ("ipcache", |m| {
                m.ipcache.values_mut().for_each(|v| v.zone = 2);
            }),
            ("ipcache emptied", |m| m.ipcache.clear()),
            ("cgroups", |m| {
                m.cgroups.insert(43, subject(300));
            }),
            ("cgroups value", |m| {
                m.cgroups.insert(42, subject(302));
            }),
            ("executables", |m| {
                m.executables.values_mut().for_each(|v| v.identity = 9);
            }),
            ("zones", |m| {
                m.zones.insert(0, ZoneMode::default());
            }),
            ("zones value", |m| {
                m.zones.insert(1, ZoneMode::default());
            }),
        ];
        for (what, change) in changes {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(changed.enforcement_digest(), digest, "{what}");
        }

        let mut processes = base.clone();
        processes.processes.insert(8, subject(300));
        processes.processes.remove(&7);
        assert_eq!(
            processes.enforcement_digest(),
            digest,
            "processes are left out"
        );
        processes.processes.clear();
        assert_eq!(
            processes.enforcement_digest(),
            digest,
            "processes are left out"
        );
    }

    #[test]
    fn the_same_bytes_in_another_map_are_other_contents() {
        // An address entry and an executable entry are both 24 + 8 bytes:
        // only the map's tag tells them apart.
        let key = IpcacheKey::new(4, [7; 16], 128, Some(80));
        let bytes = pod_bytes(&key);
        let word =
            |i: usize| u64::from_ne_bytes(bytes[i * 8..(i + 1) * 8].try_into().expect("8 bytes"));
        let exec = ExecKey {
            dev: word(0),
            inode: word(1),
            ctime_ns: word(2) as i64,
        };
        assert_eq!(pod_bytes(&exec), bytes);
        let mut address = MapContents::default();
        address.ipcache.insert(key, subject(300));
        let mut binary = MapContents::default();
        binary.executables.insert(exec, subject(300));
        assert_ne!(address.enforcement_digest(), binary.enforcement_digest());
    }

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
