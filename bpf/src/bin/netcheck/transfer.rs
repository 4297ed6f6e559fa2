//! Moving data, for tests that check what arrives: `echo` sends back
//! whatever each connection sends; `send` sends a pattern built from a
//! marker over one or more connections and checks the echo is identical.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

use super::CONNECT_TIMEOUT;

/// Echoes every connection on `target`, each in a thread of its own,
/// forever. Says `listening on ADDR` once the socket listens.
pub fn echo(target: SocketAddr) -> std::io::Result<std::convert::Infallible> {
    let listener = TcpListener::bind(target)?;
    super::widen_backlog(&listener)?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                thread::spawn(move || {
                    if let Err(e) = echo_one(stream) {
                        eprintln!("echo: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("accept: {e}");
                thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}

fn echo_one(mut stream: TcpStream) -> std::io::Result<()> {
    let mut back = stream.try_clone()?;
    std::io::copy(&mut stream, &mut back)?;
    back.shutdown(std::net::Shutdown::Write)
}

/// `bytes` of `marker` repeated (and cut to length).
fn pattern(marker: &[u8], bytes: usize) -> Vec<u8> {
    marker.iter().copied().cycle().take(bytes).collect()
}

/// Sends `bytes` of the marker's pattern over each of `connections`
/// parallel connections and checks each echo. Errors say what failed.
pub fn send(
    target: SocketAddr,
    marker: &str,
    bytes: usize,
    connections: usize,
) -> Result<(), String> {
    let data = std::sync::Arc::new(pattern(marker.as_bytes(), bytes));
    let workers: Vec<_> = (0..connections)
        .map(|i| {
            let data = std::sync::Arc::clone(&data);
            thread::spawn(move || one(target, &data).map_err(|e| format!("connection {i}: {e}")))
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| "a sending thread panicked".to_string())??;
    }
    Ok(())
}

fn one(target: SocketAddr, data: &[u8]) -> std::io::Result<()> {
    let stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)?;
    let mut reader = stream.try_clone()?;
    let mut writer = stream;
    let to_send = data.to_vec();
    let sending = thread::spawn(move || {
        writer.write_all(&to_send)?;
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut echoed = Vec::with_capacity(data.len());
    let read = reader.read_to_end(&mut echoed);
    sending
        .join()
        .map_err(|_| std::io::Error::other("the writer panicked"))??;
    read?;
    if echoed != data {
        return Err(std::io::Error::other(format!(
            "the echo differs: {} bytes back for {} sent",
            echoed.len(),
            data.len()
        )));
    }
    Ok(())
}
