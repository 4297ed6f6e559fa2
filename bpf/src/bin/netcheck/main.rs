//! `stockade-netcheck`: does this process get through the firewall?
//!
//! Opens one flow (or many, with `--count`) the way an application would and
//! reports the outcome, with the OS error when the kernel refused it — the
//! dataplane tests and benchmarks run it inside the cgroups they enforce.
//!
//! ```text
//! stockade-netcheck tcp 10.0.0.2:5432            # connect, then close
//! stockade-netcheck udp-connect 10.0.0.2:53      # connect(2) a UDP socket
//! stockade-netcheck udp-sendto 10.0.0.2:53       # sendto(2), unconnected
//! stockade-netcheck tcp 10.0.0.2:80 --count 5000 # rate of connect+close
//! stockade-netcheck tcp 10.0.0.2:80 --count 500 --keep-going  # count refusals
//! stockade-netcheck tcp 10.0.0.2:80 --count 200000 --rate 20000  # paced
//! stockade-netcheck serve 10.0.0.2:80            # accept and close, forever
//! stockade-netcheck echo 10.0.0.2:80             # echo every connection, forever
//! stockade-netcheck send 10.0.0.2:80 --marker M --bytes N --connections K
//!                                                # send, check the echo
//! ```

use std::{
    io::Write,
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    process::ExitCode,
    time::{Duration, Instant},
};

mod transfer;

/// How long a TCP connect may take before it counts as refused by silence.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Changed by a test to make a modified copy of this binary; never read.
#[used]
static MARKER: [u8; 32] = *b"stockade-netcheck-marker-0123456";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(target)) = (args.first(), args.get(1)) else {
        eprintln!(
            "usage: stockade-netcheck tcp|udp-connect|udp-sendto ADDR:PORT [--count N [--keep-going]]"
        );
        eprintln!("       stockade-netcheck serve ADDR:PORT");
        return ExitCode::from(2);
    };
    let target: SocketAddr = match target.parse() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: `{target}` is not an ADDR:PORT: {e}");
            return ExitCode::from(2);
        }
    };
    if mode == "serve" {
        let Err(e) = serve(target);
        eprintln!("error: serve {target}: {e}");
        return ExitCode::from(1);
    }
    if mode == "echo" {
        let Err(e) = transfer::echo(target);
        eprintln!("error: echo {target}: {e}");
        return ExitCode::from(1);
    }
    if mode == "send" {
        return send(target, &args);
    }
    let count = match args.iter().position(|a| a == "--count") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<u64>().ok()) {
            Some(n) if n > 0 => n,
            _ => {
                eprintln!("error: --count needs a positive number");
                return ExitCode::from(2);
            }
        },
        None => 1,
    };
    // A burst of refused flows (alerting tests) must not stop at the first.
    let keep_going = args.iter().any(|a| a == "--keep-going");
    // A steady load (benchmarks) rather than as fast as possible.
    let rate = match args.iter().position(|a| a == "--rate") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<u64>().ok()) {
            Some(n) if n > 0 => Some(n),
            _ => {
                eprintln!("error: --rate needs a positive number of flows per second");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let start = Instant::now();
    let (mut refused, mut denied) = (0u64, 0u64);
    for i in 0..count {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        if let Err(e) = open(mode, target) {
            if !keep_going {
                eprintln!("error: {mode} {target}: {e}");
                return ExitCode::from(1);
            }
            refused += 1;
            // EPERM is the firewall's answer; ECONNREFUSED is the peer's.
            if e.raw_os_error() == Some(1) {
                denied += 1;
            }
        }
    }
    if keep_going {
        println!("{count} flows, {refused} refused, {denied} denied by the firewall");
    } else if count > 1 {
        let secs = start.elapsed().as_secs_f64();
        println!("{count} flows in {secs:.3} s: {:.0}/s", count as f64 / secs);
    } else {
        println!("ok");
    }
    ExitCode::SUCCESS
}

/// `send`: the marker's pattern over parallel connections, echo checked.
fn send(target: SocketAddr, args: &[String]) -> ExitCode {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let number = |name: &str, default: usize| match value(name) {
        None => Some(default),
        Some(n) => n.parse::<usize>().ok().filter(|n| *n > 0),
    };
    let marker = value("--marker").map_or("stockade", String::as_str);
    let (Some(bytes), Some(connections)) = (number("--bytes", 1 << 20), number("--connections", 1))
    else {
        eprintln!("error: --bytes and --connections need positive numbers");
        return ExitCode::from(2);
    };
    if marker.is_empty() {
        eprintln!("error: --marker must not be empty");
        return ExitCode::from(2);
    }
    match transfer::send(target, marker, bytes, connections) {
        Ok(()) => {
            println!("ok: {connections} × {bytes} bytes echoed whole");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: send {target}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Accepts TCP connections on `target` and closes each at once, forever:
/// the other end of `tcp --count N`. Says `listening on ADDR` once the
/// socket listens, so a caller knows when to start.
fn serve(target: SocketAddr) -> std::io::Result<std::convert::Infallible> {
    let listener = TcpListener::bind(target)?;
    widen_backlog(&listener)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => drop(stream),
            // A peer that gave up before the accept (ECONNABORTED) or a
            // passing shortage of descriptors ends one connection, not the
            // server.
            Err(e) => {
                eprintln!("accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}

/// Raises the accept queue from std's fixed 128 to the namespace's
/// `net.core.somaxconn`. A client that connects as fast as it can outruns
/// the accept loop whenever the server is off the CPU for a moment; with a
/// short queue the kernel then drops SYNs, and each costs the client a 1 s
/// retransmission — a stall that has nothing to do with what is measured.
pub(crate) fn widen_backlog(listener: &TcpListener) -> std::io::Result<()> {
    // On a socket that already listens, listen(2) only changes the queue's
    // length; the largest allowed is the namespace's somaxconn.
    nix::sys::socket::listen(listener, nix::sys::socket::Backlog::MAXALLOWABLE)
        .map_err(std::io::Error::from)
}

fn open(mode: &str, target: SocketAddr) -> std::io::Result<()> {
    let any = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    match mode {
        // A dropped SYN would otherwise retry for two minutes.
        "tcp" => TcpStream::connect_timeout(&target, CONNECT_TIMEOUT).map(drop),
        "udp-connect" => {
            let socket = UdpSocket::bind(any)?;
            socket.connect(target)?;
            socket.send(b"stockade").map(drop)
        }
        "udp-sendto" => UdpSocket::bind(any)?.send_to(b"stockade", target).map(drop),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("unknown mode `{other}` (tcp, udp-connect, udp-sendto)"),
        )),
    }
}
