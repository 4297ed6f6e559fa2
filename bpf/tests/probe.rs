//! Loads the real eBPF object into the running kernel, so these tests need
//! root. They fail (rather than skip) when the programs do not run: proving
//! that is their whole point.

use std::{
    fs,
    path::PathBuf,
    process::{Command, Stdio},
};

use stockade_bpf::{ensure_kernel_filesystems, ExecProbe};

/// Where the machine's cgroup v2 hierarchy is mounted (a hybrid layout).
const CGROUP2_ROOT: &str = "/sys/fs/cgroup/unified";

#[test]
fn mounting_kernel_filesystems_is_idempotent() {
    ensure_kernel_filesystems().expect("first call mounts what is missing");
    ensure_kernel_filesystems().expect("second call finds everything mounted");
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let count = |mount_point: &str, fstype: &str| {
        mountinfo
            .lines()
            .filter(|l| {
                l.contains(&format!(" {mount_point} ")) && l.contains(&format!(" - {fstype} "))
            })
            .count()
    };
    assert_eq!(count("/sys/fs/bpf", "bpf"), 1, "{mountinfo}");
    assert_eq!(count("/sys/kernel/tracing", "tracefs"), 1, "{mountinfo}");
}

#[test]
fn exec_tracepoint_counts_execs() {
    ensure_kernel_filesystems().expect("mount bpffs and tracefs");
    let probe = ExecProbe::load_and_attach().expect("load and attach the probe");
    let before = probe.exec_count().expect("read the exec counter");
    const RUNS: u64 = 5;
    for _ in 0..RUNS {
        assert!(Command::new("/bin/true")
            .status()
            .expect("run /bin/true")
            .success());
    }
    let after = probe.exec_count().expect("read the exec counter");
    // The tracepoint fires for every exec on the machine, so other processes
    // can only push the count higher.
    assert!(
        after >= before + RUNS,
        "exec count went from {before} to {after} over {RUNS} execs"
    );
}

/// A cgroup made for one test and removed when it ends, even on failure.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(name: &str) -> Self {
        let path = PathBuf::from(CGROUP2_ROOT).join(format!("{name}-{}", std::process::id()));
        fs::create_dir(&path).expect("create a test cgroup");
        Self(path)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Only an empty cgroup can be removed; the test's child has exited.
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn egress_program_counts_packets_of_its_cgroup_only() {
    ensure_kernel_filesystems().expect("mount bpffs and tracefs");
    let cgroup = TestCgroup::new("stockade-bpf-test");
    let mut probe = ExecProbe::load_and_attach().expect("load and attach the probe");
    probe
        .attach_egress_counter(&cgroup.0)
        .expect("attach the egress counter");

    // Traffic from outside the cgroup (this test process) is not counted.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    socket
        .send_to(b"outside", "127.0.0.1:9")
        .expect("send from outside the cgroup");
    assert_eq!(
        probe
            .egress_packet_count()
            .expect("read the egress counter"),
        0
    );

    // A shell moves itself into the cgroup, then sends datagrams to the
    // discard port on loopback (nothing needs to listen for them to leave).
    const PACKETS: u64 = 3;
    let script = format!(
        "echo $$ > {}/cgroup.procs && for _ in $(seq {PACKETS}); do echo x > /dev/udp/127.0.0.1/9; done",
        cgroup.0.display()
    );
    let status = Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .status()
        .expect("run bash");
    assert!(status.success(), "the cgroup's shell failed: {status}");
    let counted = probe
        .egress_packet_count()
        .expect("read the egress counter");
    assert!(
        counted >= PACKETS,
        "counted {counted} egress packets, expected at least {PACKETS}"
    );
    drop(probe);
}
