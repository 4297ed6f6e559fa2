//! The one error type of this crate.

use std::{io, path::PathBuf};

use aya::{maps::MapError, programs::ProgramError, EbpfError};

/// What went wrong while preparing the kernel or driving an eBPF program.
///
/// Each variant names the step that failed; the underlying cause is its
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BpfError {
    /// `/proc/self/mountinfo` (or a lock file beside the mount) was unusable.
    #[error("cannot inspect mounts: {what}")]
    Mounts {
        /// What was being read or locked.
        what: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Mounting a kernel filesystem failed.
    #[error("cannot mount {fstype} at {target}")]
    Mount {
        /// Filesystem type, e.g. `bpf`.
        fstype: &'static str,
        /// Mount point.
        target: &'static str,
        /// The `mount(2)` error.
        #[source]
        source: nix::Error,
    },
    /// The kernel (or aya) rejected the embedded eBPF object.
    #[error("cannot load the eBPF object")]
    Load(#[source] EbpfError),
    /// The embedded object lacks a program this crate expects.
    #[error("eBPF program `{0}` not found in the object")]
    MissingProgram(&'static str),
    /// Converting, loading (verifying) or attaching a program failed.
    #[error("eBPF program `{program}`: {step} failed")]
    Program {
        /// Program (function) name.
        program: &'static str,
        /// The step that failed: `convert`, `load` or `attach`.
        step: &'static str,
        /// aya's error, with the verifier log when loading failed.
        #[source]
        source: ProgramError,
    },
    /// The embedded object lacks a map this crate expects.
    #[error("eBPF map `{0}` not found in the object")]
    MissingMap(&'static str),
    /// Converting or reading a map failed.
    #[error("eBPF map `{map}`: {step} failed")]
    Map {
        /// Map name.
        map: &'static str,
        /// The step that failed: `convert`, `read`, `write` or `delete`.
        step: &'static str,
        /// aya's error.
        #[source]
        source: MapError,
    },
    /// A pinned map could not be opened (missing, not a map, or no
    /// permission).
    #[error("cannot open the pinned map {path}")]
    OpenPin {
        /// The pin's path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: MapError,
    },
    /// A cgroup directory to attach to could not be opened.
    #[error("cannot open cgroup {path}")]
    Cgroup {
        /// The cgroup v2 directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A pin (file in bpffs) could not be created, read or removed.
    #[error("cannot use the pin {path}")]
    Pin {
        /// The pin's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Something pinned where a hook's link belongs is not a usable link.
    #[error("cannot adopt the pinned link {path}: {reason}; run `stockade uninstall` to clear it")]
    Adopt {
        /// The pin's path.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A program's link could not be kept as a pinnable link.
    #[error("eBPF program `{program}`: cannot keep its link: {reason}")]
    Link {
        /// Program (function) name.
        program: &'static str,
        /// aya's explanation.
        reason: String,
    },
    /// The directory to attach to is not in a cgroup v2 hierarchy.
    #[error("{0} is not inside a mounted cgroup v2 hierarchy")]
    NotCgroup2(PathBuf),
    /// The kernel's BTF lacks a type or field the exec hook needs.
    #[error("kernel types (BTF): {0}")]
    KernelTypes(String),
    /// A tracepoint's format lacks a field the hooks need.
    #[error("tracepoint {event} has no field `{field}`")]
    TracepointField {
        /// The tracepoint.
        event: String,
        /// The missing field.
        field: String,
    },
}
