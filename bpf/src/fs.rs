//! Kernel filesystems the loader needs, and the memlock rlimit.

use std::{
    fs,
    fs::File,
    io,
    path::{Path, PathBuf},
};

use nix::{
    mount::{mount, MsFlags},
    sys::resource::{setrlimit, Resource, RLIM_INFINITY},
};

use crate::BpfError;

/// Where bpffs is mounted; programs and maps are pinned below it.
pub const BPFFS_PATH: &str = "/sys/fs/bpf";
/// Where tracefs is mounted; aya reads tracepoint ids from it to attach.
pub const TRACEFS_PATH: &str = "/sys/kernel/tracing";

const MOUNTINFO: &str = "/proc/self/mountinfo";
/// Serialises check-then-mount across processes: several daemons share one
/// kernel in tests, and a second bpffs mounted over the first would hide
/// everything pinned in it.
const MOUNT_LOCK: &str = "/run/lock/stockade-mount.lock";

/// Mounts bpffs at [`BPFFS_PATH`] and tracefs at [`TRACEFS_PATH`] unless
/// `/proc/self/mountinfo` shows them there already. Idempotent and safe to
/// call from several processes at once; needs `CAP_SYS_ADMIN` only when
/// something is actually mounted.
pub fn ensure_kernel_filesystems() -> Result<(), BpfError> {
    let lock = File::create(MOUNT_LOCK).map_err(|source| mounts_error(MOUNT_LOCK, source))?;
    lock.lock()
        .map_err(|source| mounts_error(MOUNT_LOCK, source))?;
    for (fstype, target) in [("bpf", BPFFS_PATH), ("tracefs", TRACEFS_PATH)] {
        let mountinfo =
            fs::read_to_string(MOUNTINFO).map_err(|source| mounts_error(MOUNTINFO, source))?;
        if is_mounted(&mountinfo, target, fstype) {
            continue;
        }
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(Some(fstype), target, Some(fstype), flags, None::<&str>).map_err(|source| {
            BpfError::Mount {
                fstype,
                target,
                source,
            }
        })?;
        tracing::info!(fstype, target, "mounted kernel filesystem");
    }
    // Dropping `lock` closes the file, which releases the lock.
    Ok(())
}

fn mounts_error(what: &str, source: io::Error) -> BpfError {
    BpfError::Mounts {
        what: what.to_owned(),
        source,
    }
}

/// Mount points of `fstype` in a `/proc/self/mountinfo` text.
fn mount_points<'a>(mountinfo: &'a str, fstype: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    mountinfo.lines().filter_map(move |line| {
        let (before, after) = line.split_once(" - ")?;
        (after.split(' ').next() == Some(fstype))
            .then(|| before.split(' ').nth(4))
            .flatten()
    })
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid layout).
pub fn cgroup2_root() -> Result<PathBuf, BpfError> {
    let mountinfo =
        fs::read_to_string(MOUNTINFO).map_err(|source| mounts_error(MOUNTINFO, source))?;
    let root = mount_points(&mountinfo, "cgroup2")
        .next()
        .map(PathBuf::from);
    root.ok_or_else(|| BpfError::NotCgroup2(PathBuf::from("/sys/fs/cgroup")))
}

/// The cgroup v2 mount that holds `path`, if any (the longest that does).
pub(crate) fn cgroup2_mount_of(path: &Path) -> Result<Option<PathBuf>, BpfError> {
    let mountinfo =
        fs::read_to_string(MOUNTINFO).map_err(|source| mounts_error(MOUNTINFO, source))?;
    let mount = mount_points(&mountinfo, "cgroup2")
        .map(Path::new)
        .filter(|mount| path.starts_with(mount))
        .max_by_key(|mount| mount.components().count())
        .map(Path::to_owned);
    Ok(mount)
}

/// Whether a `/proc/self/mountinfo` text has a `fstype` mount at `target`.
///
/// A line reads `id parent major:minor root MOUNT_POINT options [optional
/// fields...] - FSTYPE source super-options`; the optional fields vary in
/// number, hence the split on the ` - ` separator.
fn is_mounted(mountinfo: &str, target: &str, fstype: &str) -> bool {
    mount_points(mountinfo, fstype).any(|point| point == target)
}

/// Tries to lift `RLIMIT_MEMLOCK`. Kernels since 5.11 charge BPF memory to
/// the cgroup instead, so a refusal (as in some containers) is only logged.
pub(crate) fn raise_memlock_rlimit() {
    if let Err(err) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) {
        tracing::info!(%err, "cannot raise RLIMIT_MEMLOCK; continuing (not needed on kernel >= 5.11)");
    }
}

#[cfg(test)]
mod tests {
    use super::is_mounted;

    const SAMPLE: &str = "\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
52 23 0:45 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:7 master:1 - bpf bpf rw,mode=700
53 23 0:12 / /sys/kernel/debug rw,relatime - debugfs debugfs rw
";

    #[test]
    fn finds_a_mount_despite_optional_fields() {
        assert!(is_mounted(SAMPLE, "/sys/fs/bpf", "bpf"));
        assert!(is_mounted(SAMPLE, "/sys/fs/cgroup/unified", "cgroup2"));
    }

    #[test]
    fn wants_both_the_mount_point_and_the_type() {
        assert!(!is_mounted(SAMPLE, "/sys/kernel/tracing", "tracefs"));
        assert!(!is_mounted(SAMPLE, "/sys/kernel/debug", "tracefs"));
        assert!(!is_mounted(SAMPLE, "/sys/fs/bpf/sub", "bpf"));
        assert!(!is_mounted("garbage\n\n", "/sys/fs/bpf", "bpf"));
    }
}
