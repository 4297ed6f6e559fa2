//! `stockade demo-support`: the demo's one background helper, started by
//! `stockade demo` and killed by `stockade demo --down`.
//!
//! - The Slack-compatible receiver the cluster's alerts go to: it listens
//!   on host 1 of the demo's lab ([`RECEIVER_PORT`]), answers `ok` as Slack
//!   does, and appends each message's text to the demo's `slack.log`.
//! - The way in from this machine: the demo's nodes live in network
//!   namespaces that have no route to it, so each node's admin API and
//!   console is forwarded from `127.0.0.1:<port + host - 1>` to its host.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use stockade_netlab::{host_address, host_netns, in_netns};
use tokio::net::{TcpListener, TcpStream};

use super::{API_PORT, DEMO_HOSTS, LAB_TAG, RECEIVER_PORT};
use crate::cli::DemoSupportArgs;

/// Runs the receiver and the forwarders until the process is killed.
pub fn run(args: &DemoSupportArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args.dir.join(super::SLACK_LOG), args.console_port))
}

async fn serve(slack_log: PathBuf, console_port: u16) -> Result<()> {
    let receiver = SocketAddr::from((host_address(1), RECEIVER_PORT));
    let listener = in_netns(&host_netns(LAB_TAG, 1), || {
        std::net::TcpListener::bind(receiver)
    })
    .with_context(|| format!("listening on {receiver} in the demo's host 1"))?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let app = Router::new()
        .route("/services/{*path}", post(receive))
        .with_state(Arc::new(slack_log));
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });
    for host in 1..=DEMO_HOSTS {
        let port = console_port + u16::try_from(host - 1).expect("a handful of demo hosts");
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(local)
            .await
            .with_context(|| format!("listening on {local} (pass another --console-port)"))?;
        tokio::spawn(forward(listener, host));
    }
    receiver.await?.context("the Slack receiver stopped")
}

/// One Slack incoming-webhook message: its `text` becomes a line of the log.
async fn receive(State(log): State<Arc<PathBuf>>, Json(message): Json<Value>) -> &'static str {
    let text = message["text"]
        .as_str()
        .unwrap_or("(a message without text)");
    if let Err(e) = append(&log, text) {
        eprintln!("demo-support: writing {}: {e}", log.display());
    }
    "ok"
}

fn append(log: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)?;
    // One message, one line: the demo prints the log line by line.
    writeln!(file, "{}", text.replace('\n', " "))
}

/// Forwards every connection to `listener` to host `host`'s admin API.
async fn forward(listener: TcpListener, host: usize) {
    let target = SocketAddr::from((host_address(host), API_PORT));
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            // A socket belongs to the namespace it was made in: make it on
            // a thread that entered the host's namespace.
            let connected = tokio::task::spawn_blocking(move || {
                in_netns(&host_netns(LAB_TAG, host), || {
                    let stream = std::net::TcpStream::connect(target)?;
                    stream.set_nonblocking(true)?;
                    Ok(stream)
                })
            })
            .await;
            let Ok(Ok(stream)) = connected else {
                return;
            };
            if let Ok(mut server) = TcpStream::from_std(stream) {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}
