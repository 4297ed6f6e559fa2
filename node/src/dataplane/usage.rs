//! How full each kernel map is: the entries the daemon keeps in it against
//! the most it can hold, for `GET /v1/status` and `/metrics`.

use serde::Serialize;
use stockade_bpf::MapContents;
use stockade_bpf_common::capacity;
use utoipa::ToSchema;

/// One map's use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct MapUsage {
    /// The map: `policy`, `ipcache`, `cgroups`, `processes`,
    /// `executables`, `zones` or `flows`.
    pub map: String,
    /// Entries in it. For the enforcement maps, those the daemon last
    /// wrote (the kernel adds process entries of its own to `processes`,
    /// an LRU map); for `flows`, the summaries the last collection read.
    pub entries: u64,
    /// The most entries it can hold (its `max_entries`).
    pub capacity: u64,
}

impl MapUsage {
    /// `entries / capacity`: 0 empty, 1 full. A hash or trie map that is
    /// full refuses new entries; an LRU map (`processes`, `flows`) evicts
    /// its oldest.
    pub fn pressure(&self) -> f64 {
        if self.capacity == 0 {
            return 0.0;
        }
        // Entry counts are far below 2^52: the conversion is exact.
        self.entries as f64 / self.capacity as f64
    }
}

fn usage(map: &str, entries: usize, capacity: u32) -> MapUsage {
    MapUsage {
        map: map.to_owned(),
        entries: entries as u64,
        capacity: u64::from(capacity),
    }
}

/// The use of each enforcement map holding `maps`.
pub fn enforcement(maps: &MapContents) -> Vec<MapUsage> {
    vec![
        usage("policy", maps.policy.len(), capacity::POLICY),
        usage("ipcache", maps.ipcache.len(), capacity::IPCACHE),
        usage("cgroups", maps.cgroups.len(), capacity::CGROUPS),
        usage("processes", maps.processes.len(), capacity::PROCESSES),
        usage("executables", maps.executables.len(), capacity::EXECUTABLES),
        usage("zones", maps.zones.len(), capacity::ZONES),
    ]
}

/// The use of the flow summaries' map, holding `summaries`.
pub fn flows(summaries: u64) -> MapUsage {
    MapUsage {
        map: "flows".into(),
        entries: summaries,
        capacity: u64::from(capacity::FLOWS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_is_the_share_of_capacity_in_use() {
        let empty = enforcement(&MapContents::default());
        assert_eq!(empty.len(), 6);
        assert!(empty.iter().all(|m| m.entries == 0 && m.pressure() == 0.0));
        let half = flows(u64::from(capacity::FLOWS) / 2);
        assert!((half.pressure() - 0.5).abs() < f64::EPSILON);
        let none = MapUsage {
            map: "x".into(),
            entries: 3,
            capacity: 0,
        };
        assert_eq!(none.pressure(), 0.0);
    }
}
