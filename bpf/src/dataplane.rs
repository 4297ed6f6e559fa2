//! A node's dataplane, open: typed handles on its pinned maps, the writes
//! that bring them to the desired contents, and what the kernel reports back
//! (counters, flow summaries, events).

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use aya::{
    maps::{
        lpm_trie::{Key, LpmTrie},
        Array, HashMap, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf,
    },
    Ebpf, Pod,
};
use stockade_bpf_common::{
    config::{DataplaneConfig, DataplaneStats, CONFIG_INDEX, CONFIG_MAP, STATS_INDEX, STATS_MAP},
    events::EVENT_MAP,
    maps::{
        ExecKey, FlowKey, FlowStats, IpcacheKey, PolicyKey, Subject, Verdict, ZoneMode, CGROUP_MAP,
        EXEC_MAP, FLOW_MAP, IPCACHE_MAP, POLICY_MAP, PROCESS_MAP, ZONE_MAP,
    },
};

use crate::{
    contents::{diff, MapContents, MapDiff},
    events::EventReader,
    flows::FlowSummaries,
    loader::{self, Attachment, DataplaneSettings},
    offsets, BpfError,
};

/// The pinned maps of one node, loaded, attached and ready for writes.
///
/// Dropping it closes the daemon's handles only: hooks and maps stay pinned
/// and in force until [`crate::uninstall`].
pub struct Dataplane {
    settings: DataplaneSettings,
    attachment: Attachment,
    maps: Maps,
    /// What this process last wrote (or found, on adoption), so a write
    /// touches only what changed. Processes are not mirrored: the kernel
    /// writes them too.
    written: MapContents,
    // Keeps the object's remaining handles (programs) open.
    _ebpf: Ebpf,
}

struct Maps {
    enforcement: EnforcementMaps,
    flows: Option<PerCpuHashMap<MapData, FlowKey, FlowStats>>,
    config: Array<MapData, DataplaneConfig>,
    stats: PerCpuArray<MapData, DataplaneStats>,
    events: Option<RingBuf<MapData>>,
}

/// The maps [`MapContents`] mirrors: what decides a flow.
struct EnforcementMaps {
    policy: LpmTrie<MapData, [u8; 12], Verdict>,
    ipcache: LpmTrie<MapData, [u8; 20], Subject>,
    cgroups: HashMap<MapData, u64, Subject>,
    processes: HashMap<MapData, u32, Subject>,
    executables: HashMap<MapData, ExecKey, Subject>,
    zones: HashMap<MapData, u32, ZoneMode>,
}

impl EnforcementMaps {
    fn take(ebpf: &mut Ebpf) -> Result<Self, BpfError> {
        Ok(EnforcementMaps {
            policy: take(ebpf, POLICY_MAP)?,
            ipcache: take(ebpf, IPCACHE_MAP)?,
            cgroups: take(ebpf, CGROUP_MAP)?,
            processes: take(ebpf, PROCESS_MAP)?,
            executables: take(ebpf, EXEC_MAP)?,
            zones: take(ebpf, ZONE_MAP)?,
        })
    }

    /// The maps pinned in `maps_dir`, opened by their pins alone: nothing
    /// is loaded or attached.
    fn from_pins(maps_dir: &Path) -> Result<Self, BpfError> {
        Ok(EnforcementMaps {
            policy: from_pin(maps_dir, POLICY_MAP)?,
            ipcache: from_pin(maps_dir, IPCACHE_MAP)?,
            cgroups: from_pin(maps_dir, CGROUP_MAP)?,
            processes: from_pin(maps_dir, PROCESS_MAP)?,
            executables: from_pin(maps_dir, EXEC_MAP)?,
            zones: from_pin(maps_dir, ZONE_MAP)?,
        })
    }

    fn read(&self) -> Result<MapContents, BpfError> {
        Ok(MapContents {
            policy: read_trie(&self.policy, POLICY_MAP, |prefix_len, data| PolicyKey {
                prefix_len,
                data,
            })?,
            ipcache: read_trie(&self.ipcache, IPCACHE_MAP, |prefix_len, data| IpcacheKey {
                prefix_len,
                data,
            })?,
            cgroups: read_hash(&self.cgroups, CGROUP_MAP)?,
            processes: read_hash(&self.processes, PROCESS_MAP)?,
            executables: read_hash(&self.executables, EXEC_MAP)?,
            zones: read_hash(&self.zones, ZONE_MAP)?,
        })
    }
}

/// Everything the enforcement maps pinned under a node's pin folder hold
/// now, as [`Dataplane::read`] would return it, without loading or
/// attaching anything: for another process (a test harness, a checker) to
/// inspect a running node's kernel state.
///
/// It only reads. The kernel hands out read-write descriptors for pins
/// (aya asks for no narrower access), so this is read-only by intent, not
/// by the kernel's enforcement. Entries are read one by one while the node
/// may be writing: a read during a reconciliation can see a mix of before
/// and after.
pub fn read_pinned(pin_dir: &Path) -> Result<MapContents, BpfError> {
    EnforcementMaps::from_pins(&loader::maps_dir(pin_dir))?.read()
}

/// How many entries a write changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Entries inserted or changed.
    pub upserts: usize,
    /// Entries removed.
    pub deletes: usize,
}

fn map_error(map: &'static str, step: &'static str) -> impl FnOnce(MapError) -> BpfError {
    move |source| BpfError::Map { map, step, source }
}

fn take<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, BpfError>
where
    M: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or(BpfError::MissingMap(name))?;
    M::try_from(map).map_err(map_error(name, "convert"))
}

pub(crate) fn from_pin<M>(maps_dir: &Path, name: &'static str) -> Result<M, BpfError>
where
    M: TryFrom<aya::maps::Map, Error = MapError>,
{
    let path = maps_dir.join(name);
    let data = MapData::from_pin(&path).map_err(|source| BpfError::OpenPin { path, source })?;
    let map = aya::maps::Map::from_map_data(data).map_err(map_error(name, "convert"))?;
    M::try_from(map).map_err(map_error(name, "convert"))
}

impl Dataplane {
    /// Loads, attaches (or adopts) and configures the dataplane of
    /// `settings`. Needs root.
    pub fn open(settings: DataplaneSettings) -> Result<Self, BpfError> {
        let (mut ebpf, attachment) = loader::load(&settings)?;
        let mut maps = Maps {
            enforcement: EnforcementMaps::take(&mut ebpf)?,
            flows: Some(take(&mut ebpf, FLOW_MAP)?),
            config: take(&mut ebpf, CONFIG_MAP)?,
            stats: take(&mut ebpf, STATS_MAP)?,
            events: Some(take(&mut ebpf, EVENT_MAP)?),
        };
        let config = offsets::config_for(&settings.cgroup)?;
        maps.config
            .set(CONFIG_INDEX, config, 0)
            .map_err(map_error(CONFIG_MAP, "write"))?;
        let mut dataplane = Dataplane {
            settings,
            attachment,
            maps,
            written: MapContents::default(),
            _ebpf: ebpf,
        };
        dataplane.written = dataplane.read()?;
        dataplane.written.processes.clear();
        Ok(dataplane)
    }

    /// Whether the hooks were attached now or adopted from an earlier run.
    pub fn attachment(&self) -> Attachment {
        self.attachment
    }

    /// The settings it was opened with.
    pub fn settings(&self) -> &DataplaneSettings {
        &self.settings
    }

    /// Brings the maps to `desired`, writing only what differs from what
    /// this process last wrote. Process entries are upserted where the
    /// kernel holds another value, and removed only when `alive` says the
    /// process is gone (the exec and fork hooks add entries of their own).
    pub fn write(
        &mut self,
        desired: &MapContents,
        alive: impl Fn(u32) -> bool,
    ) -> Result<WriteSummary, BpfError> {
        let mut summary = WriteSummary::default();
        let m = &mut self.maps.enforcement;
        let w = &mut self.written;
        // Identities before the policy that names them; deletions of
        // verdicts last, so a flow never falls between two entries.
        apply_hash(
            &mut m.zones,
            ZONE_MAP,
            &mut w.zones,
            &desired.zones,
            &mut summary,
        )?;
        apply_hash(
            &mut m.executables,
            EXEC_MAP,
            &mut w.executables,
            &desired.executables,
            &mut summary,
        )?;
        apply_hash(
            &mut m.cgroups,
            CGROUP_MAP,
            &mut w.cgroups,
            &desired.cgroups,
            &mut summary,
        )?;
        write_processes(&mut m.processes, &desired.processes, alive, &mut summary)?;
        apply_trie(
            &mut m.ipcache,
            IPCACHE_MAP,
            &mut w.ipcache,
            &desired.ipcache,
            &mut summary,
            |k| (k.prefix_len, k.data),
        )?;
        apply_trie(
            &mut m.policy,
            POLICY_MAP,
            &mut w.policy,
            &desired.policy,
            &mut summary,
            |k| (k.prefix_len, k.data),
        )?;
        Ok(summary)
    }

    /// Everything the maps hold now, read from the kernel.
    pub fn read(&self) -> Result<MapContents, BpfError> {
        self.maps.enforcement.read()
    }

    /// The kernel programs' counters, summed over CPUs.
    pub fn stats(&self) -> Result<DataplaneStats, BpfError> {
        let per_cpu = self
            .maps
            .stats
            .get(&STATS_INDEX, 0)
            .map_err(map_error(STATS_MAP, "read"))?;
        Ok(per_cpu.iter().fold(DataplaneStats::default(), |sum, cpu| {
            sum.saturating_add(*cpu)
        }))
    }

    /// The flow summaries' reader. There is one; a second call fails.
    pub fn take_flows(&mut self) -> Result<FlowSummaries, BpfError> {
        self.maps
            .flows
            .take()
            .map(FlowSummaries::new)
            .ok_or(BpfError::MissingMap(FLOW_MAP))
    }

    /// Tells the connect hook where this node's tunnel listens on the
    /// loopback address (0: no tunnel, and connections a rule encrypts are
    /// refused).
    pub fn set_tunnel_port(&mut self, port: u16) -> Result<(), BpfError> {
        let mut config = self
            .maps
            .config
            .get(&CONFIG_INDEX, 0)
            .map_err(map_error(CONFIG_MAP, "read"))?;
        config.tunnel_port = port;
        self.maps
            .config
            .set(CONFIG_INDEX, config, 0)
            .map_err(map_error(CONFIG_MAP, "write"))
    }

    /// The event ring buffer's reader. There is one; a second call fails.
    pub fn take_events(&mut self) -> Result<EventReader, BpfError> {
        self.maps
            .events
            .take()
            .map(EventReader::new)
            .ok_or(BpfError::MissingMap(EVENT_MAP))
    }
}

fn apply_hash<K: Pod + Ord, V: Pod + PartialEq>(
    map: &mut HashMap<MapData, K, V>,
    name: &'static str,
    written: &mut BTreeMap<K, V>,
    desired: &BTreeMap<K, V>,
    summary: &mut WriteSummary,
) -> Result<(), BpfError> {
    let MapDiff { upserts, deletes } = diff(written, desired);
    for (key, value) in upserts {
        map.insert(key, value, 0)
            .map_err(map_error(name, "write"))?;
        written.insert(key, value);
        summary.upserts += 1;
    }
    for key in deletes {
        remove_if_present(map.remove(&key)).map_err(map_error(name, "delete"))?;
        written.remove(&key);
        summary.deletes += 1;
    }
    Ok(())
}

fn apply_trie<K: Ord + Copy, D: Pod, V: Pod + PartialEq>(
    map: &mut LpmTrie<MapData, D, V>,
    name: &'static str,
    written: &mut BTreeMap<K, V>,
    desired: &BTreeMap<K, V>,
    summary: &mut WriteSummary,
    raw: impl Fn(&K) -> (u32, D),
) -> Result<(), BpfError> {
    let MapDiff { upserts, deletes } = diff(written, desired);
    for (key, value) in upserts {
        let (prefix, data) = raw(&key);
        map.insert(&Key::new(prefix, data), value, 0)
            .map_err(map_error(name, "write"))?;
        written.insert(key, value);
        summary.upserts += 1;
    }
    for key in deletes {
        let (prefix, data) = raw(&key);
        remove_if_present(map.remove(&Key::new(prefix, data)))
            .map_err(map_error(name, "delete"))?;
        written.remove(&key);
        summary.deletes += 1;
    }
    Ok(())
}

/// A key that is already gone is what a delete wanted.
fn remove_if_present(result: Result<(), MapError>) -> Result<(), MapError> {
    match result {
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc_enoent()) => {
            Ok(())
        }
        other => other,
    }
}

const fn libc_enoent() -> i32 {
    2
}

fn write_processes(
    map: &mut HashMap<MapData, u32, Subject>,
    desired: &BTreeMap<u32, Subject>,
    alive: impl Fn(u32) -> bool,
    summary: &mut WriteSummary,
) -> Result<(), BpfError> {
    for (pid, subject) in desired {
        if map.get(pid, 0).ok() != Some(*subject) {
            map.insert(pid, subject, 0)
                .map_err(map_error(PROCESS_MAP, "write"))?;
            summary.upserts += 1;
        }
    }
    let gone: Vec<u32> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|pid| !desired.contains_key(pid) && !alive(*pid))
        .collect();
    for pid in gone {
        remove_if_present(map.remove(&pid)).map_err(map_error(PROCESS_MAP, "delete"))?;
        summary.deletes += 1;
    }
    Ok(())
}

fn read_hash<K: Pod + Ord, V: Pod>(
    map: &HashMap<MapData, K, V>,
    name: &'static str,
) -> Result<BTreeMap<K, V>, BpfError> {
    map.iter()
        .collect::<Result<_, _>>()
        .map_err(map_error(name, "read"))
}

fn read_trie<K: Ord, D: Pod, V: Pod>(
    map: &LpmTrie<MapData, D, V>,
    name: &'static str,
    key: impl Fn(u32, D) -> K,
) -> Result<BTreeMap<K, V>, BpfError> {
    map.iter()
        .map(|item| item.map(|(k, v)| (key(k.prefix_len(), k.data()), v)))
        .collect::<Result<_, _>>()
        .map_err(map_error(name, "read"))
}

/// Whether a process with this pid exists (for [`Dataplane::write`]).
pub fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The cgroup v2 id (inode number) of a cgroup directory.
pub fn cgroup_id(path: &Path) -> Result<u64, BpfError> {
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|source| BpfError::Cgroup {
            path: PathBuf::from(path),
            source,
        })
}

/// The kernel's encoding of a device number (`MKDEV`: major in the bits
/// above 20) from the user-space encoding `stat(2)` reports.
pub fn kernel_dev(st_dev: u64) -> u64 {
    let major = ((st_dev >> 8) & 0xfff) | ((st_dev >> 32) & !0xfff);
    let minor = (st_dev & 0xff) | ((st_dev >> 12) & !0xff);
    (major << 20) | minor
}

/// The key the exec hook computes for the file with this metadata.
pub fn exec_key(metadata: &fs::Metadata) -> ExecKey {
    ExecKey {
        dev: kernel_dev(metadata.dev()),
        inode: metadata.ino(),
        ctime_ns: metadata.ctime() * 1_000_000_000 + metadata.ctime_nsec(),
    }
}
