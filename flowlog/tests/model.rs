//! The flow log against a model: a vector of everything appended.

mod common;

use common::{all, newest_first, open, small, Rec};
use proptest::prelude::*;

fn batch() -> impl Strategy<Value = Vec<(u64, usize)>> {
    prop::collection::vec((0u64..500, 0usize..60), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A full-range query returns what was appended minus what the size
    /// bound dropped (always the oldest), newest first; any range and limit
    /// return the model's answer; reopening changes nothing.
    #[test]
    fn query_matches_the_model(
        batches in prop::collection::vec((batch(), any::<bool>()), 1..30),
        segment_bytes in 128u64..2048,
        segments in 1u64..6,
        since in 0u64..500,
        width in 0u64..500,
        limit in 0usize..80,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = small(segment_bytes, segments);
        let mut log = open(dir.path(), limits);
        let mut appended: Vec<Rec> = Vec::new();
        let mut dropped = 0u64;
        for (batch, reopen) in batches {
            let first = appended.len() as u64;
            let records: Vec<Rec> = batch
                .into_iter()
                .zip(first..)
                .map(|((t, n), id)| Rec { t, id, name: "n".repeat(n) })
                .collect();
            appended.extend(records.iter().cloned());
            log.append(&records).expect("appends");
            prop_assert!(log.stats().bytes <= limits.max_bytes + limits.segment_bytes);
            if reopen {
                dropped += log.stats().dropped_records;
                drop(log);
                log = open(dir.path(), limits);
            }
        }
        let s = log.stats();
        dropped += s.dropped_records;
        prop_assert_eq!(dropped + s.records, appended.len() as u64);
        let model = newest_first(&appended[dropped as usize..]);
        prop_assert_eq!(all(&log), model.clone());

        let until = since + width;
        let want: Vec<Rec> = model
            .iter()
            .filter(|r| r.t >= since && r.t <= until && !r.name.len().is_multiple_of(3))
            .take(limit)
            .cloned()
            .collect();
        let got = log.query(since, until, |r| !r.name.len().is_multiple_of(3), limit).expect("queries");
        prop_assert_eq!(got, want);
        prop_assert_eq!(s.corrupt_records, 0);
    }
}
