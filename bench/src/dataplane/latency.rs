//! Measurement 2: from an API write of a rule to its verdict in the kernel
//! policy map of every node. One write at a time: the clock starts when the
//! request is sent and stops when the rule's key is in all three pinned
//! `STK_POLICY` maps, polled from this process every millisecond.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use hyper::Method;
use stockade_bpf_common::maps::PolicyKey;
use stockade_chaos::netlab::Lab;

use super::api::{allocated, in_host, wait_for_dataplanes, Api};
use super::maps::PolicyMap;
use crate::interrupt::Interrupt;
use crate::stockade::{StockadeCluster, HOSTS};

/// The first port of the rules; each write allows the next one.
const FIRST_PORT: u16 = 20_000;
/// How long a rule may take to reach every node before the run fails.
const REACH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the nodes may take to apply the set-up writes.
const SETTLE: Duration = Duration::from_secs(120);
const TCP: u8 = 6;

/// The latencies of every write.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    /// Until the key was in every node's map.
    pub everywhere: Vec<Duration>,
    /// Until the API replied (the write was committed and applied on the
    /// node that answered).
    pub acknowledged: Vec<Duration>,
}

/// Creates a zone and two identities, then writes `writes` rules one after
/// the other through the leader, from a thread in host 1's namespace.
pub fn measure(
    cluster: &StockadeCluster,
    lab: &Lab,
    writes: usize,
    interrupt: &Interrupt,
) -> anyhow::Result<Latency> {
    ensure!(
        writes <= usize::from(u16::MAX - FIRST_PORT),
        "at most {} writes",
        u16::MAX - FIRST_PORT
    );
    let leader = cluster.leader().context("the cluster has no leader")?;
    let leader_addr = cluster.api_addr(leader);
    let nodes: Vec<_> = HOSTS.iter().map(|h| cluster.api_addr(*h)).collect();
    let pin_dirs: Vec<_> = HOSTS.iter().map(|h| lab.pin_dir(*h)).collect();
    let token = cluster.admin_token();
    in_host(lab, HOSTS[0], |runtime| {
        let maps = pin_dirs
            .iter()
            .map(|dir| PolicyMap::open(dir))
            .collect::<anyhow::Result<Vec<_>>>()?;
        runtime.block_on(async {
            let mut api = Api::new(leader_addr, token);
            api.write(Method::PUT, "/v1/zones/latency", r#"{"mode":"learn"}"#)
                .await?;
            let mut ids = Vec::new();
            let mut index = 0;
            for app in ["client", "server"] {
                let body = format!(r#"{{"zone":"latency","app":"{app}","service":"main"}}"#);
                let reply = api.write(Method::POST, "/v1/identities", &body).await?;
                ids.push(allocated(&reply, "identity")?);
                index = reply["index"].as_u64().unwrap_or(0);
            }
            wait_for_dataplanes(&nodes, token, index, SETTLE, interrupt).await?;

            let mut latency = Latency::default();
            for k in 0..writes {
                interrupt.check()?;
                let port = FIRST_PORT + u16::try_from(k).unwrap_or(u16::MAX);
                let key = PolicyKey::lookup(ids[0], ids[1], TCP, port);
                ensure!(
                    maps.iter().all(|m| m.get(&key).is_none()),
                    "port {port} is allowed before its rule"
                );
                let body = format!(
                    r#"{{"from":{{"zone":"latency","app":"client","service":"main"}},"to":{{"zone":"latency","app":"server","service":"main"}},"protocol":"tcp","ports":["{port}"],"action":"allow"}}"#
                );
                let start = Instant::now();
                let (reply, everywhere) = tokio::join!(
                    async {
                        let reply = api.write(Method::POST, "/v1/rules", &body).await;
                        (reply, start.elapsed())
                    },
                    until_everywhere(&maps, &key, start),
                );
                let (reply, acknowledged) = reply;
                let rule = allocated(&reply?, "rule")?;
                let everywhere = everywhere?;
                for map in &maps {
                    let verdict = map.get(&key).context("the rule's key went away")?;
                    ensure!(
                        verdict.rule == rule,
                        "port {port}: the map names rule {}, the write made rule {rule}",
                        verdict.rule
                    );
                }
                latency.everywhere.push(everywhere);
                latency.acknowledged.push(acknowledged);
                if (k + 1) % 50 == 0 {
                    eprintln!("latency: {} writes", k + 1);
                }
            }
            Ok(latency)
        })
    })
}

/// Polls every map each millisecond until `key` is in all of them; the
/// time since `start` when it was.
async fn until_everywhere(
    maps: &[PolicyMap],
    key: &PolicyKey,
    start: Instant,
) -> anyhow::Result<Duration> {
    let mut seen = vec![false; maps.len()];
    loop {
        for (seen, map) in seen.iter_mut().zip(maps) {
            *seen = *seen || map.get(key).is_some();
        }
        if seen.iter().all(|s| *s) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > REACH_TIMEOUT {
            bail!("after {REACH_TIMEOUT:?} the rule is in the maps of {seen:?} only");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
