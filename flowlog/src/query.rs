//! Keeps the newest `limit` matches of a query while segments are read in
//! whatever order their time ranges suggest.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Orders records newest first: by time, then by arrival (segment sequence
/// number, then index in the segment), so equal times come out
/// latest-appended first and the order is total.
pub(crate) type Key = (u64, u64, u64);

struct Entry<R> {
    key: Key,
    record: R,
}

impl<R> PartialEq for Entry<R> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<R> Eq for Entry<R> {}
impl<R> PartialOrd for Entry<R> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<R> Ord for Entry<R> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

/// The `limit` largest keys seen so far (a min-heap of them).
pub(crate) struct Top<R> {
    limit: usize,
    heap: BinaryHeap<Reverse<Entry<R>>>,
}

impl<R> Top<R> {
    pub(crate) fn new(limit: usize) -> Self {
        Top {
            limit,
            heap: BinaryHeap::with_capacity(limit.min(4096)),
        }
    }

    fn smallest(&self) -> Option<Key> {
        if self.heap.len() < self.limit {
            return None;
        }
        self.heap.peek().map(|Reverse(e)| e.key)
    }

    /// Whether a record with `key` would be kept, so that the caller can
    /// skip filtering records that could not make it anyway.
    pub(crate) fn would_take(&self, key: Key) -> bool {
        self.smallest().is_none_or(|min| key > min)
    }

    /// Whether no record of a segment with sequence number `seq` and times
    /// up to `max_ms` can displace what is already kept.
    pub(crate) fn cannot_improve(&self, max_ms: u64, seq: u64) -> bool {
        self.smallest()
            .is_some_and(|min| (max_ms, seq, u64::MAX) < min)
    }

    pub(crate) fn offer(&mut self, key: Key, record: R) {
        if self.limit == 0 || !self.would_take(key) {
            return;
        }
        let entry = Reverse(Entry { key, record });
        if self.heap.len() < self.limit {
            self.heap.push(entry);
        } else if let Some(mut smallest) = self.heap.peek_mut() {
            // Replace in place: one sift instead of a push and a pop.
            *smallest = entry;
        }
    }

    /// What was kept, newest first.
    pub(crate) fn into_newest_first(self) -> Vec<R> {
        let mut entries: Vec<Entry<R>> = self.heap.into_iter().map(|Reverse(e)| e).collect();
        entries.sort_unstable_by_key(|e| Reverse(e.key));
        entries.into_iter().map(|e| e.record).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_in_order() {
        let mut top = Top::new(3);
        for (i, t) in [5u64, 1, 9, 7, 9, 3].into_iter().enumerate() {
            top.offer((t, 1, i as u64), (t, i));
        }
        assert_eq!(top.into_newest_first(), vec![(9, 4), (9, 2), (7, 3)]);
    }

    #[test]
    fn knows_when_a_segment_cannot_help() {
        let mut top = Top::new(1);
        assert!(!top.cannot_improve(0, 0), "not full yet");
        top.offer((10, 2, 0), ());
        assert!(top.cannot_improve(9, 5));
        assert!(top.cannot_improve(10, 1), "same time, earlier segment");
        assert!(!top.cannot_improve(10, 3), "same time, later segment");
        assert!(!top.cannot_improve(11, 0));
    }
}
