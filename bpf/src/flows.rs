//! Reading the kernel's flow summaries.

use std::collections::BTreeMap;

use aya::maps::{MapData, PerCpuHashMap};
use stockade_bpf_common::maps::{FlowKey, FlowStats, FLOW_MAP};

use crate::error::BpfError;

/// The per-CPU map in which the hooks count every decided flow by
/// [`FlowKey`]. It is read on its own schedule by whoever takes it from the
/// [`crate::Dataplane`], so reading thousands of summaries never holds up
/// map writes.
pub struct FlowSummaries {
    map: PerCpuHashMap<MapData, FlowKey, FlowStats>,
}

impl FlowSummaries {
    pub(crate) fn new(map: PerCpuHashMap<MapData, FlowKey, FlowStats>) -> Self {
        FlowSummaries { map }
    }

    /// Every summary, each summed over CPUs: the count added up, the first
    /// and last decision over all CPUs.
    pub fn read(&self) -> Result<BTreeMap<FlowKey, FlowStats>, BpfError> {
        let mut out = BTreeMap::new();
        for item in self.map.iter() {
            let (key, per_cpu) = item.map_err(|source| BpfError::Map {
                map: FLOW_MAP,
                step: "read",
                source,
            })?;
            out.insert(key, sum(per_cpu.iter()));
        }
        Ok(out)
    }
}

/// One summary from its per-CPU copies (CPUs that never saw the flow hold
/// zeros).
fn sum<'a>(per_cpu: impl Iterator<Item = &'a FlowStats>) -> FlowStats {
    let mut total = FlowStats::default();
    for cpu in per_cpu.filter(|s| s.count > 0) {
        total.count = total.count.saturating_add(cpu.count);
        if total.first_seen_ns == 0 || cpu.first_seen_ns < total.first_seen_ns {
            total.first_seen_ns = cpu.first_seen_ns;
        }
        total.last_seen_ns = total.last_seen_ns.max(cpu.last_seen_ns);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_copies_add_up_and_span_every_cpu() {
        let copies = [
            FlowStats::default(),
            FlowStats {
                count: 2,
                first_seen_ns: 50,
                last_seen_ns: 90,
            },
            FlowStats {
                count: 3,
                first_seen_ns: 10,
                last_seen_ns: 70,
            },
        ];
        assert_eq!(
            sum(copies.iter()),
            FlowStats {
                count: 5,
                first_seen_ns: 10,
                last_seen_ns: 90,
            }
        );
        assert_eq!(sum([].iter()), FlowStats::default());
    }
}
