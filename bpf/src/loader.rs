//! Loading, attaching and pinning: a node's programs, links and maps live
//! under its pin folder, so enforcement outlives the daemon (fail closed) and
//! a restarted daemon adopts what is there instead of attaching twice.
//!
//! Layout of the pin folder: `maps/<NAME>`, `programs/<name>`,
//! `links/<name>`. A link pin is what keeps a hook attached; removing it
//! (with no process holding the link) detaches the hook.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

use aya::{
    programs::{
        links::{FdLink, PinnedLink},
        CgroupAttachMode, Program, ProgramError, SockOps,
    },
    Ebpf, EbpfLoader,
};

use crate::{
    fs::{ensure_kernel_filesystems, raise_memlock_rlimit},
    programs::{Hook, ProgramSpec, PROGRAMS, TUNNEL_HANDOVER},
    BpfError,
};

/// The object `build.rs` built from `ebpf/`. aya wants it 8-byte aligned.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/stockade-bpf-ebpf"));

/// Where a node's dataplane lives: its pin folder and its cgroup subtree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataplaneSettings {
    /// Folder in bpffs for this node's pins (default `/sys/fs/bpf/stockade`).
    pub pin_dir: PathBuf,
    /// The cgroup v2 directory whose subtree this node enforces.
    pub cgroup: PathBuf,
}

/// Where the maps of the node pinned under `pin_dir` are.
pub(crate) fn maps_dir(pin_dir: &Path) -> PathBuf {
    pin_dir.join("maps")
}

impl DataplaneSettings {
    pub(crate) fn maps_dir(&self) -> PathBuf {
        maps_dir(&self.pin_dir)
    }
    fn programs_dir(&self) -> PathBuf {
        self.pin_dir.join("programs")
    }
    fn links_dir(&self) -> PathBuf {
        self.pin_dir.join("links")
    }
}

/// How the hooks came to be in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// Every hook was attached now.
    Attached,
    /// Every hook was already pinned and in force; nothing was attached.
    Adopted,
    /// Some hooks were pinned, the missing ones were attached now.
    Repaired,
}

/// Loads the object with its maps pinned (created, or reused from the pin
/// folder), then makes sure every hook is attached and pinned.
pub(crate) fn load(settings: &DataplaneSettings) -> Result<(Ebpf, Attachment), BpfError> {
    ensure_kernel_filesystems()?;
    raise_memlock_rlimit();
    for dir in [
        settings.maps_dir(),
        settings.programs_dir(),
        settings.links_dir(),
    ] {
        create_dir(&dir)?;
    }
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(settings.maps_dir())
        .load(EBPF_OBJECT)
        .map_err(BpfError::Load)?;
    let mut attached = 0;
    for spec in PROGRAMS {
        let link_pin = settings.links_dir().join(spec.name);
        if link_is_pinned(&link_pin)? {
            continue;
        }
        attach(&mut ebpf, spec, settings)?;
        attached += 1;
    }
    let attachment = match attached {
        0 => Attachment::Adopted,
        n if n == PROGRAMS.len() => Attachment::Attached,
        _ => Attachment::Repaired,
    };
    attach_tunnel_handover(&mut ebpf, settings)?;
    Ok((ebpf, attachment))
}

/// Attaches the `sock_ops` hand-over for as long as `ebpf` lives (see
/// [`TUNNEL_HANDOVER`]).
fn attach_tunnel_handover(ebpf: &mut Ebpf, settings: &DataplaneSettings) -> Result<(), BpfError> {
    let name = TUNNEL_HANDOVER;
    let cgroup = File::open(&settings.cgroup).map_err(|source| BpfError::Cgroup {
        path: settings.cgroup.clone(),
        source,
    })?;
    let failed = |step| step_failed(name, step);
    let program: &mut SockOps = ebpf
        .program_mut(name)
        .ok_or(BpfError::MissingProgram(name))?
        .try_into()
        .map_err(failed("convert"))?;
    program.load().map_err(failed("load"))?;
    program
        .attach(cgroup, CgroupAttachMode::Single)
        .map_err(failed("attach"))?;
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), BpfError> {
    fs::create_dir_all(dir).map_err(|source| BpfError::Pin {
        path: dir.to_owned(),
        source,
    })
}

/// Whether a link is pinned at `path` and still a link. A pin that is not a
/// link (a stale or foreign file) is an error naming the path, not something
/// to overwrite silently.
fn link_is_pinned(path: &Path) -> Result<bool, BpfError> {
    if !path.exists() {
        return Ok(false);
    }
    PinnedLink::from_pin(path)
        .map(|_| true)
        .map_err(|source| BpfError::Adopt {
            path: path.to_owned(),
            reason: source.to_string(),
        })
}

fn attach(
    ebpf: &mut Ebpf,
    spec: &ProgramSpec,
    settings: &DataplaneSettings,
) -> Result<(), BpfError> {
    let cgroup = || {
        File::open(&settings.cgroup).map_err(|source| BpfError::Cgroup {
            path: settings.cgroup.clone(),
            source,
        })
    };
    let program = ebpf
        .program_mut(spec.name)
        .ok_or(BpfError::MissingProgram(spec.name))?;
    let failed = |step| step_failed(spec.name, step);
    // On kernels >= 5.7 aya attaches cgroup programs through a bpf_link,
    // which coexists with other programs and which the kernel refuses
    // (EINVAL) with any attach flag: so `Single` (no flag).
    let link: FdLink = match (spec.hook, program) {
        (Hook::SockAddr, Program::CgroupSockAddr(p)) => {
            p.load().map_err(failed("load"))?;
            let id = p
                .attach(cgroup()?, CgroupAttachMode::Single)
                .map_err(failed("attach"))?;
            let link = p.take_link(id).map_err(failed("take link"))?;
            FdLink::try_from(link).map_err(|e| link_failed(spec.name, e))?
        }
        (Hook::Sock, Program::CgroupSock(p)) => {
            p.load().map_err(failed("load"))?;
            let id = p
                .attach(cgroup()?, CgroupAttachMode::Single)
                .map_err(failed("attach"))?;
            let link = p.take_link(id).map_err(failed("take link"))?;
            FdLink::try_from(link).map_err(|e| link_failed(spec.name, e))?
        }
        (Hook::Skb(direction), Program::CgroupSkb(p)) => {
            p.load().map_err(failed("load"))?;
            let id = p
                .attach(cgroup()?, direction, CgroupAttachMode::Single)
                .map_err(failed("attach"))?;
            let link = p.take_link(id).map_err(failed("take link"))?;
            FdLink::try_from(link).map_err(|e| link_failed(spec.name, e))?
        }
        (Hook::TracePoint(category, event), Program::TracePoint(p)) => {
            p.load().map_err(failed("load"))?;
            let id = p.attach(category, event).map_err(failed("attach"))?;
            let link = p.take_link(id).map_err(failed("take link"))?;
            FdLink::try_from(link).map_err(|e| link_failed(spec.name, e))?
        }
        (_, _) => return Err(BpfError::MissingProgram(spec.name)),
    };
    pin_program(ebpf, spec, settings)?;
    let path = settings.links_dir().join(spec.name);
    link.pin(&path).map_err(|source| BpfError::Pin {
        path,
        source: io::Error::other(source),
    })?;
    Ok(())
}

fn pin_program(
    ebpf: &mut Ebpf,
    spec: &ProgramSpec,
    settings: &DataplaneSettings,
) -> Result<(), BpfError> {
    let path = settings.programs_dir().join(spec.name);
    // A program pin left by an earlier run whose link is gone is stale.
    if path.exists() {
        fs::remove_file(&path).map_err(|source| BpfError::Pin {
            path: path.clone(),
            source,
        })?;
    }
    let program = ebpf
        .program_mut(spec.name)
        .ok_or(BpfError::MissingProgram(spec.name))?;
    program.pin(&path).map_err(|source| BpfError::Pin {
        path,
        source: io::Error::other(source),
    })
}

fn step_failed(program: &'static str, step: &'static str) -> impl FnOnce(ProgramError) -> BpfError {
    move |source| BpfError::Program {
        program,
        step,
        source,
    }
}

fn link_failed(program: &'static str, source: impl std::fmt::Display) -> BpfError {
    BpfError::Link {
        program,
        reason: source.to_string(),
    }
}

/// What [`uninstall`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uninstalled {
    /// Hooks detached (link pins removed).
    pub links: usize,
    /// Pinned programs and maps removed.
    pub pins: usize,
}

/// Detaches every hook pinned under `pin_dir` and removes every pin and the
/// folder itself. Safe to run when nothing is installed.
pub fn uninstall(pin_dir: &Path) -> Result<Uninstalled, BpfError> {
    let mut removed = Uninstalled::default();
    if !pin_dir.exists() {
        return Ok(removed);
    }
    let pin_error = |path: &Path| {
        let path = path.to_owned();
        move |source| BpfError::Pin { path, source }
    };
    for (sub, is_links) in [("links", true), ("programs", false), ("maps", false)] {
        let dir = pin_dir.join(sub);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.map_err(pin_error(&dir))?.path();
            if is_links {
                // Unpinning drops the last reference to the link, which
                // detaches its program.
                match PinnedLink::from_pin(&path) {
                    Ok(link) => {
                        link.unpin().map_err(pin_error(&path))?;
                    }
                    Err(_) => fs::remove_file(&path).map_err(pin_error(&path))?,
                }
                removed.links += 1;
            } else {
                fs::remove_file(&path).map_err(pin_error(&path))?;
                removed.pins += 1;
            }
        }
        fs::remove_dir(&dir).map_err(pin_error(&dir))?;
    }
    fs::remove_dir(pin_dir).map_err(pin_error(pin_dir))?;
    Ok(removed)
}
