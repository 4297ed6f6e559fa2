//! A packet capture on a test host's link (a raw `AF_PACKET` socket in the
//! host's namespace), looking for a marker an application sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sys::socket::{
    recvfrom, setsockopt, socket, sockopt, AddressFamily, LinkAddr, SockFlag, SockProtocol,
    SockType,
};
use nix::sys::time::TimeVal;

/// What a capture saw.
#[derive(Debug, Default)]
pub struct Captured {
    /// Packets on the link (loopback excluded).
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Packets that held the marker.
    pub with_marker: u64,
    /// Packets the kernel dropped because the capture fell behind.
    pub dropped: u64,
}

/// How many packets the kernel dropped on a packet socket.
fn drops(fd: &std::os::fd::OwnedFd) -> u64 {
    use std::os::fd::AsRawFd;
    let mut stats = nix::libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of_val(&stats) as nix::libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `stats`.
    let rc = unsafe {
        nix::libc::getsockopt(
            fd.as_raw_fd(),
            nix::libc::SOL_PACKET,
            nix::libc::PACKET_STATISTICS,
            (&raw mut stats).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        u64::from(stats.tp_drops)
    } else {
        0
    }
}

/// A running capture; [`Capture::stop`] ends it.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Captured>>,
}

impl Capture {
    /// Captures every non-loopback packet in namespace `netns`, counting
    /// those that contain `marker`.
    pub fn start(netns: &str, marker: &[u8]) -> Capture {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let path = format!("/run/netns/{netns}");
        let marker = marker.to_vec();
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let target = std::fs::File::open(&path).expect("open the namespace");
            nix::sched::setns(&target, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("enter the namespace");
            let fd = socket(
                AddressFamily::Packet,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::EthAll,
            )
            .expect("a raw packet socket");
            setsockopt(&fd, sockopt::RcvBufForce, &(64 << 20)).expect("a large receive buffer");
            setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(0, 100_000))
                .expect("a receive timeout");
            ready_tx.send(()).expect("signal ready");
            let mut captured = Captured::default();
            let mut buf = vec![0u8; 1 << 16];
            while !stopping.load(Ordering::Relaxed) {
                let Ok((len, from)) =
                    recvfrom::<LinkAddr>(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut buf)
                else {
                    continue;
                };
                if from.is_some_and(|a| a.ifindex() == 1) {
                    continue; // loopback: inside the host, not on the link
                }
                captured.packets += 1;
                captured.bytes += len as u64;
                if buf[..len].windows(marker.len()).any(|w| w == marker) {
                    captured.with_marker += 1;
                }
            }
            captured.dropped = drops(&fd);
            captured
        });
        ready_rx.recv().expect("the capture starts");
        Capture {
            stop,
            thread: Some(thread),
        }
    }

    /// Ends the capture and says what it saw.
    pub fn stop(mut self) -> Captured {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("stopped once")
            .join()
            .expect("the capture thread")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
