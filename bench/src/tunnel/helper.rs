//! The traffic ends: a server and two clients, run by the bench as child
//! processes of its own executable (`stockade-tunnel-bench helper ...`)
//! inside a lab host's network namespace, or inside a workload cgroup
//! there, so that the firewall sees them as the workloads they stand for.
//!
//! The first byte a client sends says what the connection is for:
//! [`DISCARD`] (read and count everything until end of stream, then print
//! one JSON line `{"bytes":N,"secs":T}`) or [`ECHO`] (send that byte back,
//! then wait for the client to close). Every other line a helper prints is
//! one JSON object too, read by the bench.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

/// First byte of a throughput connection.
pub const DISCARD: u8 = b'd';
/// First byte of a setup-latency connection.
pub const ECHO: u8 = b'e';
/// The line the server prints once it listens.
pub const READY: &str = "{\"listening\":true}";
/// How long a connect may take before the helper gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a read may block before the helper gives up.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A helper's task (hidden from `--help`: the bench runs them itself).
#[derive(Debug, Subcommand)]
pub enum Helper {
    /// Accept connections on `listen` forever.
    Serve {
        /// The address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
    /// One connection to `to` that writes for `seconds`.
    Send {
        /// The server.
        #[arg(long)]
        to: SocketAddr,
        /// How long to write.
        #[arg(long)]
        seconds: f64,
        /// Bytes per `write`.
        #[arg(long, default_value_t = 128 * 1024)]
        write_bytes: usize,
    },
    /// `count` sequential connect + 1-byte echo + close to `to`.
    Setup {
        /// The server.
        #[arg(long)]
        to: SocketAddr,
        /// How many connections.
        #[arg(long)]
        count: usize,
    },
}

/// Runs a helper; it prints its result on stdout.
pub fn run(helper: &Helper) -> anyhow::Result<()> {
    match helper {
        Helper::Serve { listen } => serve(*listen),
        Helper::Send {
            to,
            seconds,
            write_bytes,
        } => send(*to, *seconds, *write_bytes),
        Helper::Setup { to, count } => setup(*to, *count),
    }
}

/// Prints one line and flushes it (stdout is a pipe, so block buffered).
fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("writing to stdout")?;
    out.flush().context("flushing stdout")
}

fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    say(READY)?;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        std::thread::spawn(move || {
            if let Err(e) = connection(stream) {
                eprintln!("server connection: {e:#}");
            }
        });
    }
    Ok(())
}

/// One accepted connection, by its first byte.
fn connection(mut stream: TcpStream) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut first = [0u8; 1];
    stream
        .read_exact(&mut first)
        .context("reading the first byte")?;
    match first[0] {
        DISCARD => {
            let mut buf = vec![0u8; 256 * 1024];
            let mut bytes: u64 = 1;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => bytes += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("reading"),
                }
            }
            let secs = start.elapsed().as_secs_f64();
            // The client waits for this close: the bytes were all read.
            drop(stream);
            say(&json!({"bytes": bytes, "secs": secs}).to_string())
        }
        ECHO => {
            stream.set_nodelay(true).context("TCP_NODELAY")?;
            stream.write_all(&first).context("echoing")?;
            // Until the client closes.
            let mut rest = [0u8; 64];
            while stream.read(&mut rest).is_ok_and(|n| n > 0) {}
            Ok(())
        }
        other => bail!("unknown first byte {other}"),
    }
}

fn connect(to: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
        .with_context(|| format!("connecting to {to}"))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .context("setting a read timeout")?;
    Ok(stream)
}

fn send(to: SocketAddr, seconds: f64, write_bytes: usize) -> anyhow::Result<()> {
    let mut buf = vec![0x5au8; write_bytes.max(1)];
    buf[0] = DISCARD;
    let mut stream = connect(to)?;
    let duration = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut sent: u64 = 0;
    while start.elapsed() < duration {
        stream.write_all(&buf).context("writing")?;
        sent += buf.len() as u64;
        // Only the first write opens with the marker; the rest is payload.
        buf[0] = 0x5a;
    }
    stream.shutdown(Shutdown::Write).context("shutting down")?;
    // The server closes once it has read everything.
    let mut rest = [0u8; 64];
    while stream.read(&mut rest).context("waiting for the server")? > 0 {}
    let secs = start.elapsed().as_secs_f64();
    say(&json!({"sent": sent, "secs": secs, "cpu_ns": own_cpu_ns()?}).to_string())
}

fn setup(to: SocketAddr, count: usize) -> anyhow::Result<()> {
    let mut micros = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let mut stream = connect(to)?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        stream.write_all(&[ECHO]).context("sending the byte")?;
        let mut echo = [0u8; 1];
        stream.read_exact(&mut echo).context("reading the echo")?;
        drop(stream);
        micros.push(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    say(&json!({"micros": micros, "cpu_ns": own_cpu_ns()?}).to_string())
}

/// This process's user + system CPU time so far, in nanoseconds.
fn own_cpu_ns() -> anyhow::Result<u64> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    let ns = |t: nix::sys::time::TimeVal| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_usec()).unwrap_or(0) * 1_000
    };
    Ok(ns(usage.user_time()) + ns(usage.system_time()))
}
