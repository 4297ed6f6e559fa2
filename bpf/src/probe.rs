//! The toolchain probe: proves that the embedded eBPF object loads, attaches
//! and runs, by counting execs (and, optionally, a cgroup's egress packets).

use std::{fs::File, path::Path};

use aya::{
    maps::PerCpuArray,
    programs::{
        CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, Program, ProgramError, TracePoint,
    },
    Ebpf,
};
use stockade_bpf_common::{ProbeCounters, PROBE_COUNTERS_INDEX, PROBE_COUNTERS_MAP};

use crate::{fs::raise_memlock_rlimit, BpfError};

/// The object `build.rs` built from `ebpf/`. aya wants it 8-byte aligned.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/stockade-bpf-ebpf"));

/// Function names of the probe programs in the kernel crate.
const EXEC_PROGRAM: &str = "stockade_exec_probe";
const EGRESS_PROGRAM: &str = "stockade_egress_probe";

/// The exec tracepoint (`sched/sched_process_exec`) program, loaded and
/// attached, with its counters. Dropping it detaches and unloads everything.
pub struct ExecProbe {
    ebpf: Ebpf,
    egress_loaded: bool,
}

impl ExecProbe {
    /// Loads the embedded object and attaches the exec counter.
    ///
    /// Needs root (`CAP_BPF` and `CAP_PERFMON`) and tracefs mounted: call
    /// [`crate::ensure_kernel_filesystems`] first.
    pub fn load_and_attach() -> Result<Self, BpfError> {
        raise_memlock_rlimit();
        let mut ebpf = Ebpf::load(EBPF_OBJECT).map_err(BpfError::Load)?;
        let exec: &mut TracePoint = program(&mut ebpf, EXEC_PROGRAM)?;
        exec.load().map_err(step_failed(EXEC_PROGRAM, "load"))?;
        exec.attach("sched", "sched_process_exec")
            .map_err(step_failed(EXEC_PROGRAM, "attach"))?;
        Ok(Self {
            ebpf,
            egress_loaded: false,
        })
    }

    /// Attaches the allow-all egress counter to the cgroup v2 directory
    /// `cgroup`, alongside any programs already there (kernel >= 5.7). Can be
    /// called for several cgroups; each stays attached until the probe is
    /// dropped.
    pub fn attach_egress_counter(&mut self, cgroup: &Path) -> Result<(), BpfError> {
        let cgroup_dir = File::open(cgroup).map_err(|source| BpfError::Cgroup {
            path: cgroup.to_owned(),
            source,
        })?;
        let egress: &mut CgroupSkb = program(&mut self.ebpf, EGRESS_PROGRAM)?;
        if !self.egress_loaded {
            egress.load().map_err(step_failed(EGRESS_PROGRAM, "load"))?;
            self.egress_loaded = true;
        }
        // On kernels >= 5.7 aya attaches through a bpf_link, which always
        // coexists with other programs and which the kernel refuses (EINVAL)
        // with any attach flag: so `Single` (no flag), not `AllowMultiple`.
        egress
            .attach(
                cgroup_dir,
                CgroupSkbAttachType::Egress,
                CgroupAttachMode::Single,
            )
            .map_err(step_failed(EGRESS_PROGRAM, "attach"))?;
        Ok(())
    }

    /// Execs counted since the probe was attached, on all CPUs.
    pub fn exec_count(&self) -> Result<u64, BpfError> {
        Ok(self.counters()?.execs)
    }

    /// Egress packets counted in the cgroups given to
    /// [`attach_egress_counter`](Self::attach_egress_counter), on all CPUs.
    pub fn egress_packet_count(&self) -> Result<u64, BpfError> {
        Ok(self.counters()?.egress_packets)
    }

    /// All counters, summed over the per-CPU copies.
    pub fn counters(&self) -> Result<ProbeCounters, BpfError> {
        let map = self
            .ebpf
            .map(PROBE_COUNTERS_MAP)
            .ok_or(BpfError::MissingMap(PROBE_COUNTERS_MAP))?;
        let map_error = |step| {
            move |source| BpfError::Map {
                map: PROBE_COUNTERS_MAP,
                step,
                source,
            }
        };
        let counters =
            PerCpuArray::<_, ProbeCounters>::try_from(map).map_err(map_error("convert"))?;
        let per_cpu = counters
            .get(&PROBE_COUNTERS_INDEX, 0)
            .map_err(map_error("read"))?;
        Ok(per_cpu.iter().fold(ProbeCounters::default(), |sum, cpu| {
            sum.saturating_add(*cpu)
        }))
    }
}

/// Looks up program `name` and views it as the concrete program type `P`.
fn program<'a, P>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, BpfError>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .ok_or(BpfError::MissingProgram(name))?;
    program.try_into().map_err(step_failed(name, "convert"))
}

fn step_failed(program: &'static str, step: &'static str) -> impl FnOnce(ProgramError) -> BpfError {
    move |source| BpfError::Program {
        program,
        step,
        source,
    }
}
