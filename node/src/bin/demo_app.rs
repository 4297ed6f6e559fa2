//! `stockade-demo-app`: the sample application `stockade demo` runs as its
//! workloads (the web front end, the records API, its database, a developer
//! tool) and its intruders.
//!
//! One small program plays every part; `stockade demo` gives each part a
//! copy with bytes of its own, so each has its own SHA-256 fingerprint.
//!
//! ```text
//! stockade-demo-app NAME [--listen PORT] [--call HOST:PORT]... [--every MS] [--once]
//! ```
//!
//! With `--listen` it answers every line it is sent with `NAME ok`. Every
//! `--every` milliseconds (1000) it sends its name to each `--call` address
//! and prints one line per attempt: `NAME -> ADDR ok` or `NAME -> ADDR
//! refused: ERROR`. With `--once` it tries each address once and exits with
//! status 0 if all answered, 1 otherwise.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long one call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// The parsed command line.
struct Part {
    name: String,
    listen: Option<u16>,
    calls: Vec<SocketAddr>,
    every: Duration,
    once: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Part, String> {
    let name = args
        .next()
        .filter(|n| !n.starts_with('-'))
        .ok_or("the first argument must be the part's name")?;
    let mut part = Part {
        name,
        listen: None,
        calls: Vec::new(),
        every: Duration::from_millis(1000),
        once: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let port = value()?;
                part.listen = Some(port.parse().map_err(|_| format!("bad port {port:?}"))?);
            }
            "--call" => {
                let addr = value()?;
                part.calls.push(
                    addr.parse()
                        .map_err(|_| format!("bad address {addr:?} (want IP:PORT)"))?,
                );
            }
            "--every" => {
                let ms = value()?;
                let ms: u64 = ms.parse().map_err(|_| format!("bad --every {ms:?}"))?;
                part.every = Duration::from_millis(ms.max(10));
            }
            "--once" => part.once = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if part.listen.is_none() && part.calls.is_empty() {
        return Err("nothing to do: give --listen or --call".into());
    }
    Ok(part)
}

/// Answers each line of each connection with `NAME ok`.
fn serve(name: String, listener: TcpListener) {
    for stream in listener.incoming().flatten() {
        let name = name.clone();
        std::thread::spawn(move || {
            let Ok(reader) = stream.try_clone() else {
                return;
            };
            let mut writer = stream;
            for line in BufReader::new(reader).lines() {
                if line.is_err() || writeln!(writer, "{name} ok").is_err() {
                    break;
                }
            }
        });
    }
}

/// One call: connect, send the name, read the answer.
fn call(name: &str, addr: SocketAddr) -> std::io::Result<String> {
    let stream = TcpStream::connect_timeout(&addr, CALL_TIMEOUT)?;
    stream.set_read_timeout(Some(CALL_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    writeln!(writer, "{name}")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(answer.trim().to_owned())
}

/// Tries every address once; true when all answered.
fn call_all(part: &Part) -> bool {
    let mut all = true;
    for addr in &part.calls {
        match call(&part.name, *addr) {
            Ok(_) => println!("{} -> {addr} ok", part.name),
            Err(e) => {
                all = false;
                println!("{} -> {addr} refused: {e}", part.name);
            }
        }
    }
    all
}

fn main() -> ExitCode {
    let part = match parse(std::env::args().skip(1)) {
        Ok(part) => part,
        Err(e) => {
            eprintln!("stockade-demo-app: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(port) = part.listen {
        let listener = match TcpListener::bind(("0.0.0.0", port)) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("stockade-demo-app: listening on port {port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let name = part.name.clone();
        std::thread::spawn(move || serve(name, listener));
    }
    if part.once {
        return if call_all(&part) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    loop {
        if !part.calls.is_empty() {
            call_all(&part);
        }
        std::thread::sleep(part.every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> impl Iterator<Item = String> + '_ {
        text.split_whitespace().map(str::to_owned)
    }

    #[test]
    fn parts_parse_and_bad_ones_are_named() {
        let part =
            parse(args("api --listen 8443 --call 10.0.0.3:5432 --every 250")).expect("valid");
        assert_eq!(
            (
                part.name.as_str(),
                part.listen,
                part.calls.len(),
                part.every
            ),
            ("api", Some(8443), 1, Duration::from_millis(250))
        );
        for (bad, says) in [
            ("--listen 1", "name"),
            ("web", "nothing to do"),
            ("web --call db", "bad address"),
            ("web --listen", "needs a value"),
            ("web --listen 8080 --fast", "unknown argument"),
        ] {
            let err = parse(args(bad)).err().expect(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_server_answers_and_a_closed_port_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        std::thread::spawn(move || serve("db".into(), listener));
        assert_eq!(call("api", addr).expect("answered"), "db ok");
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed_addr = closed.local_addr().expect("address");
        drop(closed);
        assert!(call("api", closed_addr).is_err());
    }
}
