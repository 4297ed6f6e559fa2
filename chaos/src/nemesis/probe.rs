//! The nemesis's probes: writes through every surviving node at once, to
//! time when the cluster takes writes again and when every node has
//! caught up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::{Nemesis, PROBE_CLIENT, RECOVERY_DEADLINE};
use crate::history::{Op, Outcome};
use crate::workload::perform;

impl Nemesis<'_, '_> {
    /// Writes the probe register through hosts other than `exclude` until
    /// a write is accepted; the time from `since` to that acceptance.
    pub(super) fn probe_write(&mut self, exclude: &[usize], since: Instant) -> Result<f64, String> {
        let since_ns = self
            .history
            .now_ns()
            .saturating_sub(u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX));
        self.probe_until_ok(exclude)
            .map(|(_, end_ns)| end_ns.saturating_sub(since_ns) as f64 / 1e6)
    }

    /// Writes the probe register through every host but `exclude` at once,
    /// each host again and again until one write is accepted: the first
    /// acceptance is when the cluster took writes again, whichever node
    /// learned of the new leader first. Its log index and when it ended.
    fn probe_until_ok(&mut self, exclude: &[usize]) -> Result<(u64, u64), String> {
        let targets: Vec<usize> = self
            .hosts
            .iter()
            .copied()
            .filter(|h| !exclude.contains(h))
            .collect();
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        let accepted = AtomicBool::new(false);
        let next_value = AtomicU64::new(self.next_value);
        let (api, history, key) = (&self.probe_api, &self.history, self.probe_key);
        let loops = targets.iter().map(|&host| {
            let (accepted, next_value) = (&accepted, &next_value);
            async move {
                let mut last = String::new();
                // Every call runs to its end and is recorded: a write
                // abandoned midway could still take effect unseen.
                while !accepted.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let value = next_value.fetch_add(1, Ordering::Relaxed) + 1;
                    let entry =
                        perform(api, history, PROBE_CLIENT, host, Op::Write { key, value }).await;
                    if entry.outcome == Outcome::Ok {
                        accepted.store(true, Ordering::Relaxed);
                        return Ok((entry.index, entry.end_ns));
                    }
                    last = entry.error.unwrap_or_default();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(format!("host {host}: {last}"))
            }
        });
        let outcomes = self.runtime.block_on(join_all(loops));
        self.next_value = next_value.load(Ordering::Relaxed);
        let first = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .min_by_key(|(_, end_ns)| *end_ns);
        match first {
            Some((Some(index), end_ns)) => Ok((*index, *end_ns)),
            Some((None, _)) => Err("a write reply without an index".to_owned()),
            None => Err(format!(
                "no write accepted within {RECOVERY_DEADLINE:?}: {:?}",
                outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().err())
                    .collect::<Vec<_>>()
            )),
        }
    }

    /// Makes a write, then waits until every host has applied it: the time
    /// from now to then.
    pub fn converge(&mut self, exclude: &[usize]) -> Result<f64, String> {
        let healed = Instant::now();
        let (index, _) = self.probe_until_ok(exclude)?;
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        loop {
            let api = &self.probe_api;
            let behind: Vec<usize> = self.runtime.block_on(async {
                let calls = self.hosts.iter().map(|&h| async move {
                    let applied = api
                        .status(h)
                        .await
                        .and_then(|s| s["applied_index"].as_u64());
                    (h, applied.is_some_and(|a| a >= index))
                });
                join_all(calls)
                    .await
                    .into_iter()
                    .filter(|(_, done)| !done)
                    .map(|(h, _)| h)
                    .collect()
            });
            if behind.is_empty() {
                return Ok(ms(healed.elapsed()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "hosts {behind:?} had not applied index {index} {RECOVERY_DEADLINE:?} after the heal"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
