//! The [`DataplaneConfig`] of this node on this kernel: its cgroup subtree,
//! the offsets of the kernel fields the exec tracepoint reads (from BTF),
//! and the offsets of tracepoint fields (from tracefs format files).

use std::{fs, path::Path};

use stockade_bpf_common::config::{DataplaneConfig, KernelOffsets, TracepointOffsets};

use crate::{
    btf::KernelBtf,
    dataplane::cgroup_id,
    fs::{cgroup2_mount_of, TRACEFS_PATH},
    BpfError,
};

/// The configuration for hooks attached at `cgroup`.
pub(crate) fn config_for(cgroup: &Path) -> Result<DataplaneConfig, BpfError> {
    Ok(DataplaneConfig {
        subtree_cgroup_id: cgroup_id(cgroup)?,
        subtree_level: cgroup_level(cgroup)?,
        ready: 1,
        kernel: kernel_offsets()?,
        tracepoints: tracepoint_offsets()?,
        tunnel_port: 0,
        pad: 0,
    })
}

/// Depth of `cgroup` below the root of the cgroup v2 mount it lives in.
fn cgroup_level(cgroup: &Path) -> Result<u32, BpfError> {
    let cgroup = cgroup.canonicalize().map_err(|source| BpfError::Cgroup {
        path: cgroup.to_owned(),
        source,
    })?;
    let root = cgroup2_mount_of(&cgroup)?.ok_or_else(|| BpfError::NotCgroup2(cgroup.clone()))?;
    let below = cgroup
        .strip_prefix(&root)
        .map(|rest| rest.components().count())
        .unwrap_or(0);
    u32::try_from(below).map_err(|_| BpfError::NotCgroup2(cgroup.clone()))
}

fn kernel_offsets() -> Result<KernelOffsets, BpfError> {
    let btf = KernelBtf::from_sys_fs().map_err(|e| BpfError::KernelTypes(e.to_string()))?;
    let at = |strukt: &str, member: &str| {
        btf.member_offset(strukt, member)
            .map_err(|e| BpfError::KernelTypes(e.to_string()))
    };
    // The inode change time moved: i_ctime_sec/i_ctime_nsec since 6.11,
    // __i_ctime (a timespec64) in 6.6 to 6.10, i_ctime before.
    let (ctime_sec, ctime_nsec) = if btf.has_member("inode", "i_ctime_sec") {
        (at("inode", "i_ctime_sec")?, at("inode", "i_ctime_nsec")?)
    } else {
        let field = if btf.has_member("inode", "__i_ctime") {
            "__i_ctime"
        } else {
            "i_ctime"
        };
        let base = at("inode", field)?;
        (
            base + at("timespec64", "tv_sec")?,
            base + at("timespec64", "tv_nsec")?,
        )
    };
    Ok(KernelOffsets {
        task_mm: at("task_struct", "mm")?,
        mm_exe_file: at("mm_struct", "exe_file")?,
        file_inode: at("file", "f_inode")?,
        inode_sb: at("inode", "i_sb")?,
        sb_dev: at("super_block", "s_dev")?,
        inode_ino: at("inode", "i_ino")?,
        inode_ctime_sec: ctime_sec,
        inode_ctime_nsec: ctime_nsec,
    })
}

fn tracepoint_offsets() -> Result<TracepointOffsets, BpfError> {
    let exec = format_file("sched_process_exec")?;
    let fork = format_file("sched_process_fork")?;
    Ok(TracepointOffsets {
        exec_filename: field_offset(&exec, "sched_process_exec", "filename")?,
        fork_parent_pid: field_offset(&fork, "sched_process_fork", "parent_pid")?,
        fork_child_pid: field_offset(&fork, "sched_process_fork", "child_pid")?,
    })
}

fn format_file(event: &str) -> Result<String, BpfError> {
    let path = format!("{TRACEFS_PATH}/events/sched/{event}/format");
    fs::read_to_string(&path).map_err(|source| BpfError::Mounts { what: path, source })
}

/// The offset of `field` in a tracefs format description, whose lines read
/// `field:<type> <name>;\toffset:<n>;\tsize:<n>;...`.
pub(crate) fn field_offset(format: &str, event: &str, field: &str) -> Result<u32, BpfError> {
    format
        .lines()
        .filter_map(|line| line.trim().strip_prefix("field:"))
        .find_map(|line| {
            let mut parts = line.split(';');
            let declaration = parts.next()?;
            let name = declaration.split_whitespace().last()?;
            let name = name.split('[').next()?;
            (name == field).then(|| {
                parts
                    .find_map(|p| p.trim().strip_prefix("offset:"))
                    .and_then(|n| n.parse().ok())
            })?
        })
        .ok_or_else(|| BpfError::TracepointField {
            event: event.to_owned(),
            field: field.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORK: &str = "name: sched_process_fork\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\
        \tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\
        \tfield:char child_comm[16];\toffset:16;\tsize:16;\tsigned:0;\n\
        \tfield:pid_t child_pid;\toffset:32;\tsize:4;\tsigned:1;\n";

    #[test]
    fn finds_fields_of_every_declaration_shape() {
        assert_eq!(field_offset(FORK, "fork", "parent_pid").ok(), Some(12));
        assert_eq!(field_offset(FORK, "fork", "child_pid").ok(), Some(32));
        assert_eq!(field_offset(FORK, "fork", "child_comm").ok(), Some(16));
        assert_eq!(field_offset(FORK, "fork", "parent_comm").ok(), Some(8));
    }

    #[test]
    fn a_missing_field_is_named_in_the_error() {
        let err = field_offset(FORK, "sched_process_fork", "prio").expect_err("absent");
        assert!(err.to_string().contains("sched_process_fork"), "{err}");
        assert!(err.to_string().contains("prio"), "{err}");
    }
}
