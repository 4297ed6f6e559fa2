//! The kernel hooks, loaded into the running kernel and attached to cgroups
//! these tests create: every test writes map contents directly (the policy
//! engine's compilation is tested in `stockade-node`), runs
//! `stockade-netcheck` inside the enforced cgroup and checks what the kernel
//! did. Needs root. Everything created is removed on drop, also on failure.

use std::{
    collections::BTreeMap,
    fs,
    net::{TcpListener, UdpSocket},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use stockade_bpf::{
    common::{
        events::{
            EVENT_EXEC, EVENT_FLOW, FLAG_ALERT, FLAG_DENIED, FLAG_ENCRYPTED, FLAG_FIRST_SEEN,
            FLAG_UNKNOWN_BINARY,
        },
        maps::{
            IpcacheKey, PolicyKey, Subject, Verdict, ZoneMode, ACTION_ALLOW, FAMILY_IPV4,
            MODE_ALERT, MODE_ENFORCE, MODE_LEARN, RULE_TUNNEL_UNAVAILABLE, RULE_ZONE_DEFAULT,
            RULE_ZONE_ISOLATION, UNMANAGED_ZONE,
        },
    },
    exec_key, read_pinned, target_destination, uninstall, Attachment, BpfError, Dataplane,
    DataplaneSettings, Event, MapContents, TunnelTargets,
};

const CGROUP2_ROOT: &str = "/sys/fs/cgroup/unified";
const NETCHECK: &str = env!("CARGO_BIN_EXE_stockade-netcheck");

const CLIENT: u32 = 300;
const SERVER: u32 = 301;
const OTHER_ZONE_SERVER: u32 = 302;
const PROD: u32 = 1;
const DEV: u32 = 2;

/// A node's worth of kernel state for one test: a cgroup subtree with a
/// workload cgroup, and a pin folder. Dropping it uninstalls the dataplane,
/// kills what runs in the cgroups and removes them.
struct Sandbox {
    subtree: PathBuf,
    workload: PathBuf,
    pin_dir: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "stk-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        stockade_bpf::ensure_kernel_filesystems().expect("mount bpffs and tracefs");
        let subtree = Path::new(CGROUP2_ROOT).join(&name);
        let workload = subtree.join("workload");
        fs::create_dir_all(&workload).expect("create the test cgroups");
        Sandbox {
            subtree,
            workload,
            pin_dir: Path::new("/sys/fs/bpf").join(name),
        }
    }

    fn settings(&self) -> DataplaneSettings {
        DataplaneSettings {
            pin_dir: self.pin_dir.clone(),
            cgroup: self.subtree.clone(),
        }
    }

    fn open(&self) -> Dataplane {
        Dataplane::open(self.settings()).expect("open the dataplane")
    }

    /// Runs `program args` inside the workload cgroup: a shell moves itself
    /// there, then execs the program, so the exec hook sees it.
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
            self.workload.display()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(program)
            .args(args)
            .output()
            .expect("run a workload")
    }

    fn cgroup_id(&self) -> u64 {
        stockade_bpf::cgroup_id(&self.workload).expect("workload cgroup id")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = uninstall(&self.pin_dir);
        for cgroup in [&self.workload, &self.subtree] {
            let _ = fs::write(cgroup.join("cgroup.kill"), "1");
        }
        for cgroup in [&self.workload, &self.subtree] {
            for _ in 0..50 {
                if fs::remove_dir(cgroup).is_ok() || !cgroup.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

fn subject(identity: u32, zone: u32) -> Subject {
    Subject { identity, zone }
}

fn mode(mode: u8) -> ZoneMode {
    ZoneMode { mode, pad: [0; 3] }
}

/// A node where the netcheck binary is the client app in `prod`, and
/// 127.0.0.1:`port` is the server app (in `server_zone`).
fn contents(port: u16, server: Subject, prod_mode: u8) -> MapContents {
    let netcheck = fs::metadata(NETCHECK).expect("stat netcheck");
    let mut maps = MapContents::default();
    maps.executables
        .insert(exec_key(&netcheck), subject(CLIENT, PROD));
    maps.zones = BTreeMap::from([
        (UNMANAGED_ZONE, mode(MODE_LEARN)),
        (PROD, mode(prod_mode)),
        (DEV, mode(MODE_LEARN)),
    ]);
    let loopback = std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets();
    maps.ipcache.insert(
        IpcacheKey::new(FAMILY_IPV4, loopback, 128, Some(port)),
        server,
    );
    maps
}

fn allow(maps: &mut MapContents, src: u32, dst: u32, protocol: u8, port: u16) {
    maps.policy.insert(
        PolicyKey::lookup(src, dst, protocol, port),
        Verdict {
            rule: 16,
            action: ACTION_ALLOW,
            encrypt: 0,
            pad: [0; 2],
        },
    );
}

fn write(dataplane: &mut Dataplane, maps: &MapContents) {
    dataplane
        .write(maps, stockade_bpf::process_exists)
        .expect("write the maps");
}

fn events(dataplane: &mut Dataplane) -> Vec<Event> {
    let mut reader = dataplane.take_events().expect("the event reader");
    let mut out = Vec::new();
    reader.drain(|e| out.push(e));
    out
}

/// A loopback TCP listener (kept open by the caller), its port, and the
/// `ADDR:PORT` netcheck connects to.
fn tcp_server() -> (TcpListener, u16, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    (listener, port, format!("127.0.0.1:{port}"))
}

/// Whether the kernel refused the flow (the hooks' EPERM).
fn refused(output: &Output) -> bool {
    stderr(output).contains("Operation not permitted")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const TCP: u8 = 6;
const UDP: u8 = 17;

#[test]
fn enforce_refuses_with_eperm_until_a_rule_allows() {
    let sandbox = Sandbox::new();
    let (_listener, port, target) = tcp_server();
    let mut dataplane = sandbox.open();
    assert_eq!(dataplane.attachment(), Attachment::Attached);
    let mut maps = contents(port, subject(SERVER, PROD), MODE_ENFORCE);
    write(&mut dataplane, &maps);

    let denied = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(!denied.status.success(), "connected without a rule");
    assert!(refused(&denied), "{}", stderr(&denied));

    allow(&mut maps, CLIENT, SERVER, TCP, port);
    write(&mut dataplane, &maps);
    let allowed = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));

    let events = events(&mut dataplane);
    let denial = events
        .iter()
        .find(|e| e.kind == EVENT_FLOW && e.flags & FLAG_DENIED != 0)
        .expect("a denial event");
    assert_eq!(
        (
            denial.src.identity,
            denial.dst.identity,
            denial.dst_port,
            denial.protocol
        ),
        (CLIENT, SERVER, port, TCP)
    );
    assert_eq!(denial.rule, RULE_ZONE_DEFAULT);
    assert_ne!(denial.pid, 0);
    assert!(
        events
            .iter()
            .any(|e| e.kind == EVENT_EXEC && e.src.identity == CLIENT),
        "the exec hook reported the client"
    );
    let flows = dataplane
        .take_flows()
        .expect("the flow summaries")
        .read()
        .expect("flow summaries");
    assert!(flows
        .iter()
        .any(|(k, v)| k.src_identity == CLIENT && k.rule == 16 && v.count >= 1));
    let stats = dataplane.stats().expect("stats");
    assert!(stats.denied >= 1 && stats.allowed >= 1, "{stats:?}");
}

#[test]
fn a_flood_of_denials_is_one_event_and_a_count() {
    let sandbox = Sandbox::new();
    let (_listener, port, target) = tcp_server();
    let mut dataplane = sandbox.open();
    write(
        &mut dataplane,
        &contents(port, subject(SERVER, PROD), MODE_ENFORCE),
    );
    let flood = sandbox.run(
        Path::new(NETCHECK),
        &["tcp", &target, "--count", "300", "--keep-going"],
    );
    let said = String::from_utf8_lossy(&flood.stdout);
    assert!(said.contains("300 denied by the firewall"), "{said}");

    let denials: Vec<Event> = events(&mut dataplane)
        .into_iter()
        .filter(|e| e.kind == EVENT_FLOW)
        .collect();
    assert_eq!(denials.len(), 1, "told once: {denials:?}");
    assert_eq!(denials[0].flags, FLAG_DENIED | FLAG_ALERT | FLAG_FIRST_SEEN);
    let counted: u64 = dataplane
        .take_flows()
        .expect("the flow summaries")
        .read()
        .expect("flow summaries")
        .iter()
        .filter(|(k, _)| k.src_identity == CLIENT && k.pid == denials[0].pid)
        .map(|(_, v)| v.count)
        .sum();
    assert_eq!(counted, 300, "every denial is counted");
    assert_eq!(dataplane.stats().expect("stats").events_lost, 0);
}

#[test]
fn alert_mode_allows_with_an_alert_and_learn_mode_records() {
    let sandbox = Sandbox::new();
    let (_listener, port, target) = tcp_server();
    let mut dataplane = sandbox.open();

    write(
        &mut dataplane,
        &contents(port, subject(SERVER, PROD), MODE_ALERT),
    );
    let alerted = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(alerted.status.success(), "{}", stderr(&alerted));

    write(
        &mut dataplane,
        &contents(port, subject(SERVER, PROD), MODE_LEARN),
    );
    let learned = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(learned.status.success(), "{}", stderr(&learned));

    let flows: Vec<Event> = events(&mut dataplane)
        .into_iter()
        .filter(|e| e.kind == EVENT_FLOW)
        .collect();
    // Each process's flow is a summary of its own, told once: alerted in
    // alert mode, only recorded in learn mode.
    let flags: Vec<u8> = flows.iter().map(|e| e.flags).collect();
    assert_eq!(
        flags,
        vec![FLAG_ALERT | FLAG_FIRST_SEEN, FLAG_FIRST_SEEN],
        "{flows:?}"
    );
    assert!(flows.iter().all(|e| e.pid != 0), "the processes are named");
    let summary = dataplane
        .take_flows()
        .expect("the flow summaries")
        .read()
        .expect("flow summaries");
    let count: u64 = summary
        .iter()
        .filter(|(k, _)| k.src_identity == CLIENT && k.dst_identity == SERVER)
        .map(|(_, v)| v.count)
        .sum();
    assert_eq!(count, 2, "both connections are counted: {summary:?}");
}

#[test]
fn zones_are_isolated_unless_a_rule_names_both() {
    let sandbox = Sandbox::new();
    let (_listener, port, target) = tcp_server();
    let mut dataplane = sandbox.open();
    // Both zones learn: only isolation can refuse.
    let mut maps = contents(port, subject(OTHER_ZONE_SERVER, DEV), MODE_LEARN);
    write(&mut dataplane, &maps);
    let denied = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(refused(&denied), "{}", stderr(&denied));

    allow(&mut maps, CLIENT, OTHER_ZONE_SERVER, TCP, port);
    write(&mut dataplane, &maps);
    let allowed = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    let isolation = events(&mut dataplane)
        .into_iter()
        .find(|e| e.flags & FLAG_DENIED != 0)
        .expect("a denial");
    assert_eq!(isolation.rule, RULE_ZONE_ISOLATION);
}

#[test]
fn a_modified_binary_has_no_identity_and_is_refused() {
    let sandbox = Sandbox::new();
    let (_listener, port, target) = tcp_server();
    let dir = tempfile::tempdir().expect("temp dir");
    let modified = dir.path().join("netcheck-modified");
    let mut bytes = fs::read(NETCHECK).expect("read netcheck");
    let marker = b"stockade-netcheck-marker-0123456";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the marker is in the binary");
    bytes[at + marker.len() - 1] = b'7';
    fs::write(&modified, &bytes).expect("write the modified copy");
    fs::set_permissions(
        &modified,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("make it executable");

    let mut dataplane = sandbox.open();
    let mut maps = contents(port, subject(SERVER, PROD), MODE_ENFORCE);
    allow(&mut maps, CLIENT, SERVER, TCP, port);
    // The workload cgroup belongs to the client app, whose binaries are
    // registered: anything else in it is unverified (unknown, in prod).
    maps.cgroups.insert(sandbox.cgroup_id(), subject(0, PROD));
    write(&mut dataplane, &maps);

    let original = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(original.status.success(), "{}", stderr(&original));
    let copy = sandbox.run(&modified, &["tcp", &target]);
    assert!(refused(&copy), "{}", stderr(&copy));

    let events = events(&mut dataplane);
    let unknown = events
        .iter()
        .find(|e| e.kind == EVENT_EXEC && e.flags & FLAG_UNKNOWN_BINARY != 0)
        .expect("an unknown-binary event");
    let path = String::from_utf8_lossy(&unknown.path);
    assert!(path.contains("netcheck-modified"), "{path}");
    assert_eq!(unknown.src, subject(0, PROD));
}

#[test]
fn udp_connect_and_sendto_are_refused_likewise() {
    let sandbox = Sandbox::new();
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let target = format!("127.0.0.1:{port}");
    let mut dataplane = sandbox.open();
    let mut maps = contents(port, subject(SERVER, PROD), MODE_ENFORCE);
    write(&mut dataplane, &maps);
    for mode in ["udp-connect", "udp-sendto"] {
        let denied = sandbox.run(Path::new(NETCHECK), &[mode, &target]);
        assert!(refused(&denied), "{mode}: {}", stderr(&denied));
    }
    allow(&mut maps, CLIENT, SERVER, UDP, port);
    write(&mut dataplane, &maps);
    for mode in ["udp-connect", "udp-sendto"] {
        let sent = sandbox.run(Path::new(NETCHECK), &[mode, &target]);
        assert!(sent.status.success(), "{mode}: {}", stderr(&sent));
    }
}

#[test]
fn a_connection_a_rule_encrypts_goes_into_the_tunnel_with_its_destination_filed() {
    let sandbox = Sandbox::new();
    let (server, port, target) = tcp_server();
    server.set_nonblocking(true).expect("nonblocking server");
    let tunnel = TcpListener::bind("127.0.0.1:0").expect("tunnel listener");
    let tunnel_port = tunnel.local_addr().expect("addr").port();
    let mut dataplane = sandbox.open();
    let mut targets = TunnelTargets::open_pinned(&sandbox.pin_dir).expect("the targets");
    let mut maps = contents(port, subject(SERVER, PROD), MODE_ENFORCE);
    allow(&mut maps, CLIENT, SERVER, TCP, port);
    for verdict in maps.policy.values_mut() {
        verdict.encrypt = 1;
    }
    write(&mut dataplane, &maps);

    // Without a tunnel the connection is refused, never made in the clear.
    let refused_now = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(refused(&refused_now), "{}", stderr(&refused_now));

    dataplane
        .set_tunnel_port(tunnel_port)
        .expect("set the port");
    let sent = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let (_conn, client) = tunnel.accept().expect("the tunnel got the connection");
    assert!(
        server.accept().is_err(),
        "the destination itself got no connection"
    );
    let filed = targets
        .take(client.port())
        .expect("read the targets")
        .expect("the destination is filed under the client's port");
    assert_eq!(
        target_destination(&filed),
        Some(format!("127.0.0.1:{port}").parse().expect("addr"))
    );
    assert_eq!((filed.src_identity, filed.src_zone), (CLIENT, PROD));
    assert_eq!((filed.dst_identity, filed.rule), (SERVER, 16));
    assert_eq!(
        targets.take(client.port()).expect("read"),
        None,
        "taken once"
    );

    let flows = events(&mut dataplane);
    assert!(
        flows
            .iter()
            .any(|e| e.rule == RULE_TUNNEL_UNAVAILABLE && e.flags & FLAG_DENIED != 0),
        "the refusal is recorded: {flows:?}"
    );
    assert!(
        flows
            .iter()
            .any(|e| e.rule == 16 && e.flags & FLAG_ENCRYPTED != 0),
        "the tunnelled flow is recorded as encrypted: {flows:?}"
    );
}

/// What bpftool lists as attached to a cgroup, one line per program.
fn attached(cgroup: &Path) -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["cgroup", "show"])
        .arg(cgroup)
        .output()
        .expect("run bpftool (apt package bpftool)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn pins_outlive_the_loader_are_adopted_once_and_uninstall_removes_all() {
    let sandbox = Sandbox::new();
    let (_listener, port, target) = tcp_server();
    let maps = contents(port, subject(SERVER, PROD), MODE_ENFORCE);
    {
        let mut dataplane = sandbox.open();
        write(&mut dataplane, &maps);
    }
    // The loader is gone (as after kill -9): the pins keep the deny.
    let denied = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(refused(&denied), "{}", stderr(&denied));
    let hooks = attached(&sandbox.subtree);
    assert_eq!(
        hooks.len(),
        7,
        "connect4/6, sendmsg4/6, post_bind4/6, ingress: {hooks:?}"
    );

    let dataplane = sandbox.open();
    assert_eq!(dataplane.attachment(), Attachment::Adopted);
    let mut now = attached(&sandbox.subtree);
    let handover = now
        .iter()
        .position(|hook| hook.contains("stockade_sockops"))
        .expect("the tunnel hand-over is attached while its loader lives");
    now.remove(handover);
    assert_eq!(now, hooks, "no second attachment");
    let found = dataplane.read().expect("read the maps");
    assert_eq!(found.executables, maps.executables, "the maps were kept");
    assert_eq!(found.ipcache, maps.ipcache);
    drop(dataplane);

    let removed = uninstall(&sandbox.pin_dir).expect("uninstall");
    assert_eq!(removed.links, 10);
    assert!(!sandbox.pin_dir.exists(), "nothing left pinned");
    assert!(
        attached(&sandbox.subtree).is_empty(),
        "nothing left attached"
    );
    let free = sandbox.run(Path::new(NETCHECK), &["tcp", &target]);
    assert!(free.status.success(), "{}", stderr(&free));
}

#[test]
fn another_process_reads_the_pinned_maps_as_the_loader_does() {
    let sandbox = Sandbox::new();
    let mut maps = contents(7000, subject(SERVER, PROD), MODE_ENFORCE);
    allow(&mut maps, CLIENT, SERVER, TCP, 7000);
    maps.cgroups
        .insert(sandbox.cgroup_id(), subject(CLIENT, PROD));
    // A pid nobody will exec as in this test: the entry stays as written.
    maps.processes.insert(u32::MAX - 1, subject(CLIENT, PROD));
    let mut dataplane = sandbox.open();
    write(&mut dataplane, &maps);

    let read = dataplane.read().expect("read through the loader");
    let pinned = read_pinned(&sandbox.pin_dir).expect("read the pins");
    assert_eq!(pinned, read);
    assert_eq!(pinned, maps, "the pins hold what was written");
    assert_eq!(pinned.enforcement_digest(), read.enforcement_digest());
    assert_eq!(pinned.enforcement_digest(), maps.enforcement_digest());

    // Without the loader (as after kill -9) the pins still answer, and a
    // change through another handle shows.
    drop(dataplane);
    let mut reopened = sandbox.open();
    maps.zones.insert(PROD, mode(MODE_LEARN));
    write(&mut reopened, &maps);
    drop(reopened);
    let after = read_pinned(&sandbox.pin_dir).expect("read the pins again");
    assert_eq!(after, maps);
    assert_ne!(after.enforcement_digest(), pinned.enforcement_digest());

    let missing = read_pinned(&sandbox.pin_dir.join("nothing-here"));
    assert!(
        matches!(missing, Err(BpfError::OpenPin { .. })),
        "{missing:?}"
    );
}

#[test]
fn mounting_kernel_filesystems_is_idempotent() {
    stockade_bpf::ensure_kernel_filesystems().expect("first call mounts what is missing");
    stockade_bpf::ensure_kernel_filesystems().expect("second call finds everything mounted");
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
