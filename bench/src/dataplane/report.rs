//! The table printed at the end of a run.

use std::fmt::Write;
use std::time::Duration;

use super::conns::Config;
use super::latency::Latency;
use super::memory::Memory;

/// The `q`-quantile of `samples` (nearest rank), or zero when empty.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The whole table, for whatever was measured.
pub fn table(
    conns: Option<(&[Config], u64, usize)>,
    latency: Option<&Latency>,
    memory: Option<&Memory>,
) -> String {
    let mut out = String::new();
    if let Some((configs, connections, repeats)) = conns {
        let base = configs.first().map_or(0.0, Config::median);
        let _ = writeln!(
            out,
            "connections/s over veth (median of {repeats} x {connections})"
        );
        for config in configs {
            let rate = config.median();
            let ratio = if base > 0.0 { rate / base } else { 0.0 };
            let _ = writeln!(out, "  {:<38} {:>8.0}/s  {ratio:.2}", config.name, rate);
        }
    }
    if let Some(latency) = latency {
        let all = &latency.everywhere;
        let _ = writeln!(
            out,
            "API write -> kernel map on all 3 nodes ({} writes): p50 {}  p99 {}  max {}",
            all.len(),
            ms(quantile(all, 0.5)),
            ms(quantile(all, 0.99)),
            ms(quantile(all, 1.0)),
        );
        let acked = &latency.acknowledged;
        let _ = writeln!(
            out,
            "  (API reply: p50 {}  p99 {}  max {})",
            ms(quantile(acked, 0.5)),
            ms(quantile(acked, 0.99)),
            ms(quantile(acked, 1.0)),
        );
    }
    if let Some(memory) = memory {
        let nodes: Vec<String> = memory
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "node{} {} (peak {})",
                    n.host,
                    mib(n.after.rss_kib),
                    mib(n.after.peak_kib)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "daemon RSS with {} identities, {} rules: {}",
            memory.identities,
            memory.rules,
            nodes.join(", ")
        );
        let _ = writeln!(
            out,
            "  (loaded in {:.0} s, {} writes retried, Raft term {} -> {}; \
             dataplanes caught up {:.0} s later)",
            memory.load.as_secs_f64(),
            memory.retries,
            memory.terms.0,
            memory.terms.1,
            memory.converge.as_secs_f64()
        );
        for n in &memory.nodes {
            let _ = writeln!(
                out,
                "  node{}: {} before loading; now heap {} + files {}; maps: {}",
                n.host,
                mib(n.before.rss_kib),
                mib(n.after.anon_kib),
                mib(n.after.file_kib),
                n.counts
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(quantile(&samples, 0.5), Duration::from_millis(100));
        assert_eq!(quantile(&samples, 0.99), Duration::from_millis(198));
        assert_eq!(quantile(&samples, 1.0), Duration::from_millis(200));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
