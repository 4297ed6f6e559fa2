//! The maps, pinned by name so a restarted daemon finds the same ones, and
//! the small accessors every hook uses.

use aya_ebpf::{
    macros::map,
    maps::{
        lpm_trie::Key, Array, HashMap, LpmTrie, LruHashMap, LruPerCpuHashMap, PerCpuArray, RingBuf,
    },
};
use stockade_bpf_common::{
    capacity,
    config::{DataplaneConfig, DataplaneStats, CONFIG_INDEX, STATS_INDEX},
    maps::{
        ExecKey, FlowKey, FlowStats, IpcacheKey, PolicyKey, Subject, Verdict, ZoneMode,
        IDENTITY_WORLD,
    },
    tunnel::TunnelTarget,
};

#[map]
pub static STK_POLICY: LpmTrie<[u8; 12], Verdict> = LpmTrie::pinned(capacity::POLICY, 0);
#[map]
pub static STK_IPCACHE: LpmTrie<[u8; 20], Subject> = LpmTrie::pinned(capacity::IPCACHE, 0);
#[map]
pub static STK_CGROUPS: HashMap<u64, Subject> = HashMap::pinned(capacity::CGROUPS, 0);
#[map]
pub static STK_PROCS: LruHashMap<u32, Subject> = LruHashMap::pinned(capacity::PROCESSES, 0);
#[map]
pub static STK_EXECS: HashMap<ExecKey, Subject> = HashMap::pinned(capacity::EXECUTABLES, 0);
#[map]
pub static STK_ZONES: HashMap<u32, ZoneMode> = HashMap::pinned(capacity::ZONES, 0);
#[map]
pub static STK_SOCKETS: LruHashMap<u64, u32> = LruHashMap::pinned(capacity::SOCKETS, 0);
#[map]
pub static STK_FLOWS: LruPerCpuHashMap<FlowKey, FlowStats> =
    LruPerCpuHashMap::pinned(capacity::FLOWS, 0);
#[map]
pub static STK_REDIRECTS: LruHashMap<u64, TunnelTarget> = LruHashMap::pinned(capacity::TUNNELED, 0);
#[map]
pub static STK_TUNNELED: LruHashMap<u32, TunnelTarget> = LruHashMap::pinned(capacity::TUNNELED, 0);
#[map]
pub static STK_EVENTS: RingBuf = RingBuf::pinned(capacity::EVENT_BYTES, 0);
#[map]
pub static STK_CONFIG: Array<DataplaneConfig> = Array::pinned(1, 0);
#[map]
pub static STK_STATS: PerCpuArray<DataplaneStats> = PerCpuArray::pinned(1, 0);

/// The node's settings, once user space has written them.
#[inline(always)]
pub fn config() -> Option<&'static DataplaneConfig> {
    STK_CONFIG.get(CONFIG_INDEX).filter(|c| c.ready != 0)
}

/// Applies `update` to this CPU's counters.
#[inline(always)]
pub fn bump(update: impl FnOnce(&mut DataplaneStats)) {
    if let Some(stats) = STK_STATS.get_ptr_mut(STATS_INDEX) {
        // SAFETY: from a successful lookup, so valid and aligned; this CPU's
        // copy, and programs do not migrate between CPUs while they run.
        update(unsafe { &mut *stats });
    }
}

/// A copy of the value under `key` in a hash map.
#[inline(always)]
pub fn hash_get<K, V: Copy>(map: &HashMap<K, V>, key: &K) -> Option<V> {
    // SAFETY: a successful lookup returns a valid, aligned value pointer.
    map.get_ptr(key).map(|p| unsafe { *p })
}

/// A copy of the value under `key` in an LRU hash map.
#[inline(always)]
pub fn lru_get<K, V: Copy>(map: &LruHashMap<K, V>, key: &K) -> Option<V> {
    // SAFETY: as for `hash_get`.
    map.get_ptr(key).map(|p| unsafe { *p })
}

/// The subject of a remote address and port by longest prefix; world when
/// no entry covers it.
#[inline(always)]
pub fn address_subject(family: u8, addr: [u8; 16], port: u16) -> Subject {
    let key = IpcacheKey::lookup(family, addr, port);
    STK_IPCACHE
        .get(Key::new(key.prefix_len, key.data))
        .copied()
        .unwrap_or(Subject {
            identity: IDENTITY_WORLD,
            zone: 0,
        })
}

/// The policy verdict for one flow, if a rule covers it.
#[inline(always)]
pub fn policy_verdict(src: u32, dst: u32, protocol: u8, port: u16) -> Option<Verdict> {
    let key = PolicyKey::lookup(src, dst, protocol, port);
    STK_POLICY.get(Key::new(key.prefix_len, key.data)).copied()
}
