//! Measurement 3: each daemon's resident memory once the cluster holds many
//! identities and rules. They are loaded through the API by concurrent
//! clients (one write each: the only bulk path, `PUT /v1/policy`, replaces
//! the whole policy and takes at most axum's default 2 MB body), within a
//! time budget; then every dataplane must reach the last write's index
//! before `VmRSS` and `VmHWM` are read from `/proc/<pid>/status`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper::Method;
use stockade_chaos::netlab::Lab;
use tokio::task::JoinSet;

use super::api::{in_host, wait_for_dataplanes, Api};
use super::maps::Counts;
use crate::interrupt::Interrupt;
use crate::stockade::{StockadeCluster, HOSTS};

/// Zones the identities are spread over.
const ZONES: usize = 10;
/// The port of the first rules; every `identities` rules take the next.
const FIRST_PORT: usize = 10_000;
/// How long the dataplanes may take to catch up after the last write.
const CONVERGE: Duration = Duration::from_secs(30 * 60);

/// What to load.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Identities to define.
    pub identities: usize,
    /// Rules to write.
    pub rules: usize,
    /// Concurrent API clients.
    pub concurrency: usize,
    /// Time for loading both; what is not written by then is left out.
    pub budget: Duration,
}

/// A process's memory, from `/proc/<pid>/status`, KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most that was ever resident.
    pub peak_kib: u64,
    /// `RssAnon`: the resident heap and stacks.
    pub anon_kib: u64,
    /// `RssFile`: resident pages of mapped files (the binary, sled's files).
    pub file_kib: u64,
}

impl Rss {
    /// Reads the memory of process `pid`.
    pub fn of(pid: u32) -> anyhow::Result<Rss> {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| {
                    l.strip_prefix(name)?
                        .trim()
                        .strip_suffix("kB")?
                        .trim()
                        .parse()
                        .ok()
                })
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok(Rss {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
            anon_kib: field("RssAnon:")?,
            file_kib: field("RssFile:")?,
        })
    }
}

/// One daemon's memory and maps.
#[derive(Clone, Debug)]
pub struct NodeMemory {
    /// Its lab host.
    pub host: usize,
    /// Before the load.
    pub before: Rss,
    /// Once its dataplane reached the last write.
    pub after: Rss,
    /// Its kernel maps' entries.
    pub counts: Counts,
}

/// The outcome.
#[derive(Clone, Debug)]
pub struct Memory {
    /// Identities written.
    pub identities: usize,
    /// Rules written.
    pub rules: usize,
    /// Time spent writing them.
    pub load: Duration,
    /// Time the dataplanes then took to reach the last write.
    pub converge: Duration,
    /// Writes retried because the cluster had no leader or a connection
    /// failed.
    pub retries: usize,
    /// The Raft term before and after: each new term is an election.
    pub terms: (u64, u64),
    /// Each daemon.
    pub nodes: Vec<NodeMemory>,
}

/// Loads the identities and rules of `plan`, waits for every dataplane,
/// and reads each daemon's memory.
pub fn measure(
    cluster: &StockadeCluster,
    lab: &Lab,
    plan: &Plan,
    interrupt: &Interrupt,
) -> anyhow::Result<Memory> {
    let leader = cluster.leader().context("the cluster has no leader")?;
    let leader_addr = cluster.api_addr(leader);
    let nodes: Vec<_> = HOSTS.iter().map(|h| cluster.api_addr(*h)).collect();
    let token = cluster.admin_token();
    let rss = |host: usize| -> anyhow::Result<Rss> {
        let pid = cluster
            .nodes()
            .pid(host)
            .with_context(|| format!("node {host} is not running"))?;
        Rss::of(pid)
    };
    let before = HOSTS
        .iter()
        .map(|h| rss(*h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut memory = in_host(lab, HOSTS[0], |runtime| {
        runtime.block_on(async {
            let mut api = Api::new(leader_addr, token);
            let term = |status: serde_json::Value| status["term"].as_u64().unwrap_or(0);
            let term_before = term(api.status().await?);
            for zone in 0..ZONES {
                let path = format!("/v1/zones/mem{zone}");
                api.write(Method::PUT, &path, r#"{"mode":"learn"}"#).await?;
            }
            let start = Instant::now();
            let deadline = start + plan.budget;
            let n = plan.identities.max(1);
            let ids = Load::run(
                "identities",
                leader_addr,
                token,
                plan.identities,
                plan.concurrency,
                deadline,
                interrupt,
                Arc::new(|i| ("/v1/identities", identity(i).to_string())),
            )
            .await?;
            let rules = Load::run(
                "rules",
                leader_addr,
                token,
                if ids.written < plan.identities {
                    0
                } else {
                    plan.rules
                },
                plan.concurrency,
                deadline,
                interrupt,
                Arc::new(move |k| ("/v1/rules", rule(k, n))),
            )
            .await?;
            let load = start.elapsed();
            let index = ids.last_index.max(rules.last_index);
            eprintln!("memory: waiting for every dataplane to reach index {index}");
            let converge = wait_for_dataplanes(&nodes, token, index, CONVERGE, interrupt).await?;
            let term_after = term(api.status().await?);
            Ok(Memory {
                identities: ids.written,
                rules: rules.written,
                load,
                converge,
                retries: ids.retries + rules.retries,
                terms: (term_before, term_after),
                nodes: Vec::new(),
            })
        })
    })?;
    for (host, before) in HOSTS.into_iter().zip(before) {
        let counts = Counts::read(&lab.pin_dir(host))
            .with_context(|| format!("counting node {host}'s map entries"))?;
        memory.nodes.push(NodeMemory {
            host,
            before,
            after: rss(host)?,
            counts,
        });
    }
    Ok(memory)
}

/// The `i`-th identity: `mem<z>/a<i>/main`.
fn identity(i: usize) -> serde_json::Value {
    serde_json::json!({"zone": format!("mem{}", i % ZONES), "app": format!("a{i}"), "service": "main"})
}

/// The `k`-th rule among `n` identities: from identity `k mod n` to
/// another, on a port of its own, so every rule is a distinct policy key.
fn rule(k: usize, n: usize) -> String {
    let (src, dst) = (k % n, (k + 1 + k / n) % n);
    let port = (FIRST_PORT + k / n).min(usize::from(u16::MAX));
    serde_json::json!({
        "from": identity(src),
        "to": identity(dst),
        "protocol": "tcp",
        "ports": [port.to_string()],
        "action": "allow",
    })
    .to_string()
}

/// Makes the `i`-th write: its path and JSON body.
type Make = Arc<dyn Fn(usize) -> (&'static str, String) + Send + Sync>;

/// What a load wrote.
struct Load {
    written: usize,
    last_index: u64,
    retries: usize,
}

impl Load {
    /// `total` POSTs by `concurrency` clients, each on its own connection,
    /// until all are written, the deadline passes or a signal comes.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        what: &'static str,
        addr: SocketAddr,
        token: &str,
        total: usize,
        concurrency: usize,
        deadline: Instant,
        interrupt: &Interrupt,
        make: Make,
    ) -> anyhow::Result<Load> {
        let start = Instant::now();
        let next = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicUsize::new(0));
        let retries = Arc::new(AtomicUsize::new(0));
        let mut clients = JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let (next, written, make) = (next.clone(), written.clone(), make.clone());
            let retries = retries.clone();
            let (token, interrupt) = (token.to_owned(), interrupt.clone());
            clients.spawn(async move {
                let mut api = Api::new(addr, &token);
                let mut last_index = 0;
                while Instant::now() < deadline && !interrupt.is_set() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let (path, body) = make(i);
                    last_index =
                        last_index.max(post(&mut api, path, &body, &retries, &interrupt).await?);
                    written.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(last_index)
            });
        }
        let mut last_index = 0;
        let mut report = tokio::time::interval(Duration::from_secs(10));
        report.tick().await;
        loop {
            tokio::select! {
                done = clients.join_next() => match done {
                    None => break,
                    Some(joined) => {
                        last_index = last_index.max(joined.context("a client panicked")??);
                    }
                },
                _ = report.tick() => {
                    let n = written.load(Ordering::Relaxed);
                    eprintln!(
                        "memory: {n}/{total} {what}, {:.0}/s, {} retries",
                        n as f64 / start.elapsed().as_secs_f64(),
                        retries.load(Ordering::Relaxed),
                    );
                }
            }
        }
        interrupt.check()?;
        let written = written.load(Ordering::Relaxed);
        let retries = retries.load(Ordering::Relaxed);
        eprintln!(
            "memory: {written}/{total} {what} in {:.1} s ({retries} retries)",
            start.elapsed().as_secs_f64()
        );
        Ok(Load {
            written,
            last_index,
            retries,
        })
    }
}

/// How long one write may keep failing for want of a leader before the
/// load gives up.
const UNAVAILABLE_FOR: Duration = Duration::from_secs(120);

/// One POST, retried while the connection fails or the cluster has no
/// leader (an election), not when it refuses the write or a signal came;
/// the log index of the write (0 when a retry found it already done).
/// Retries are counted.
async fn post(
    api: &mut Api,
    path: &str,
    body: &str,
    retries: &AtomicUsize,
    interrupt: &Interrupt,
) -> anyhow::Result<u64> {
    let start = Instant::now();
    let mut retried = false;
    loop {
        interrupt.check()?;
        let error = match api.call(Method::POST, path, Some(body)).await {
            Ok((200, reply)) => return Ok(reply["index"].as_u64().unwrap_or(0)),
            Ok((503, reply)) => anyhow::anyhow!("503 {reply}"),
            // A retry of a write whose reply was lost, that had taken effect.
            Ok((400, reply))
                if retried
                    && reply["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("already defined")) =>
            {
                return Ok(0)
            }
            Ok((status, reply)) => bail!("POST {path} {body}: {status} {reply}"),
            Err(e) => e,
        };
        if start.elapsed() > UNAVAILABLE_FOR {
            return Err(error.context(format!(
                "POST {path} {body}: still failing after {UNAVAILABLE_FOR:?}"
            )));
        }
        retried = true;
        retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_a_distinct_policy_key() {
        let keys: std::collections::BTreeSet<_> = (0..100_000)
            .map(|k| {
                let v: serde_json::Value = serde_json::from_str(&rule(k, 10_000)).expect("json");
                (v["from"]["app"].to_string(), v["ports"][0].to_string())
            })
            .collect();
        assert_eq!(keys.len(), 100_000);
    }
}
