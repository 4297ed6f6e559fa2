//! Node-side aggregation of what the dataplane reports (NIST DE.AE-5).
//!
//! A node may see the same denied connect thousands of times a second; the
//! cluster should hear of it once, promptly, and then as counts. The
//! [`Aggregator`] tells the first occurrence of a cause at once (class
//! `first_seen`), then gathers repeats in windows of `window_ms` and tells
//! each window as one record with its count (class `recurring` or `burst`).
//!
//! Everything here is pure: the caller passes the time in, which keeps the
//! logic testable and lets the node drive flushing from its own timer with
//! [`Aggregator::next_deadline`].

mod cause;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use stockade_policy::{
    AlertClass, AlertFlow, AlertId, AlertKind, AlertWorkload, NewAlert, NodeId, Severity,
};

use cause::CauseKey;

/// What a node saw (one denied connect, one exec of an unknown binary…),
/// once or, when the kernel counted repeats itself, `count` times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// What it is about.
    pub kind: AlertKind,
    /// How serious this occurrence is.
    pub severity: Severity,
    /// When it happened (ms since the Unix epoch).
    pub at_ms: u64,
    /// The workload it concerns, if any.
    pub workload: Option<AlertWorkload>,
    /// The flow it concerns, if any.
    pub flow: Option<AlertFlow>,
    /// One line for people.
    pub summary: String,
    /// How many occurrences it stands for (0 is taken as 1).
    pub count: u64,
}

/// How the [`Aggregator`] groups and classes occurrences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// How long repeats of a cause are gathered into one record, from the
    /// first repeat gathered. Zero makes every repeat its own record.
    pub window_ms: u64,
    /// A window is a burst when its occurrences, spread over the window's
    /// full length, reach this many per second (see [`Aggregator::flush`]).
    pub burst_per_second: u32,
    /// A cause not seen for this long is first-seen again.
    pub remember_ms: u64,
    /// At most this many causes are remembered (at least one is).
    pub max_keys: usize,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            window_ms: 500,
            burst_per_second: 20,
            remember_ms: 60 * 60 * 1000,
            max_keys: 10_000,
        }
    }
}

/// Turns a node's observations into alerts: the first of a cause at once,
/// its repeats as one counted record per window.
///
/// Memory is bounded by [`AggregatorConfig::max_keys`] causes. When a new
/// cause arrives and the bound is reached, the least recently observed
/// cause with no repeats gathered is forgotten (it will be first-seen again
/// if it comes back). If every remembered cause has repeats gathered, the
/// one whose window ends first is closed early: its record is kept and
/// emitted by the next [`Aggregator::flush`], whatever its `now_ms`, and
/// [`Aggregator::next_deadline`] reports it as due. No count is ever
/// dropped.
#[derive(Debug)]
pub struct Aggregator {
    config: AggregatorConfig,
    issuer: Issuer,
    /// Orders observations, so that recency does not depend on clocks.
    next_stamp: u64,
    causes: HashMap<Arc<CauseKey>, Cause>,
    /// Causes with nothing gathered, by the stamp of their last observation:
    /// the first is the one to forget when memory is full.
    idle: BTreeMap<u64, Arc<CauseKey>>,
    /// Causes with repeats gathered, by the end of their window.
    gathering: BTreeMap<Deadline, Arc<CauseKey>>,
    /// Records whose windows were closed before a flush asked for them.
    ready: Vec<Ready>,
}

/// When a window ends, with the stamp of the observation that opened it to
/// tell apart windows ending at the same millisecond.
type Deadline = (u64, u64);

#[derive(Debug)]
struct Cause {
    key: Arc<CauseKey>,
    last_seen_ms: u64,
    /// The stamp of its last observation (its key in `idle` when idle).
    stamp: u64,
    window: Option<Window>,
}

/// Repeats of one cause gathered so far.
#[derive(Debug)]
struct Window {
    deadline: Deadline,
    tally: Tally,
    /// The newest occurrence: the record carries its details (process id,
    /// source port), which are the likeliest to still be of use.
    latest: Observation,
}

#[derive(Clone, Copy, Debug)]
struct Tally {
    count: u64,
    first_seen_ms: u64,
    last_seen_ms: u64,
    severity: Severity,
}

#[derive(Debug)]
struct Ready {
    /// When it could first have been emitted: `next_deadline` reports it.
    due_ms: u64,
    alert: NewAlert,
}

/// Gives records their node and unique ids.
#[derive(Debug)]
struct Issuer {
    node: NodeId,
    id_prefix: String,
    issued: u64,
}

impl Aggregator {
    /// An aggregator for `node` whose alert ids are `{id_prefix}-{n}`. The
    /// prefix must differ between the node's runs (e.g. hold its start
    /// time): the log drops a record whose id it already holds.
    pub fn new(node: NodeId, id_prefix: String, mut config: AggregatorConfig) -> Self {
        // A bound of zero could not hold even the cause being observed.
        config.max_keys = config.max_keys.max(1);
        Aggregator {
            config,
            issuer: Issuer {
                node,
                id_prefix,
                issued: 0,
            },
            next_stamp: 0,
            causes: HashMap::new(),
            idle: BTreeMap::new(),
            gathering: BTreeMap::new(),
            ready: Vec::new(),
        }
    }

    /// Takes an observation. The first of a cause not seen within
    /// `remember_ms` is returned at once as a `first_seen` alert with the
    /// observation's count, so that it is not delayed; any other is gathered for
    /// [`Aggregator::flush`] and `None` is returned.
    ///
    /// A repeat arriving after its cause's window has ended closes that
    /// window (the next flush emits it) and opens a new one.
    pub fn observe(&mut self, observation: Observation) -> Option<NewAlert> {
        let key = CauseKey::of(
            observation.kind,
            observation.workload.as_ref(),
            observation.flow.as_ref(),
        );
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let at_ms = observation.at_ms;

        let Some(cause) = self.causes.get_mut(&key) else {
            self.make_room(at_ms);
            let key = Arc::new(key);
            self.idle.insert(stamp, Arc::clone(&key));
            let cause = Cause {
                key: Arc::clone(&key),
                last_seen_ms: at_ms,
                stamp,
                window: None,
            };
            self.causes.insert(key, cause);
            return Some(self.issuer.first_seen(observation));
        };

        if cause.window.is_none() {
            // Re-indexed below under its new stamp.
            self.idle.remove(&cause.stamp);
        } else if let Some(ended) = cause.window.take_if(|w| at_ms >= w.deadline.0) {
            self.gathering.remove(&ended.deadline);
            let due_ms = ended.deadline.0;
            let alert = self.issuer.repeats(ended, &self.config);
            self.ready.push(Ready { due_ms, alert });
        }
        let seen_recently = at_ms.saturating_sub(cause.last_seen_ms) < self.config.remember_ms;
        cause.last_seen_ms = cause.last_seen_ms.max(at_ms);
        cause.stamp = stamp;

        if let Some(window) = &mut cause.window {
            window.add(observation);
            None
        } else if seen_recently {
            let deadline = (at_ms.saturating_add(self.config.window_ms), stamp);
            self.gathering.insert(deadline, Arc::clone(&cause.key));
            cause.window = Some(Window::open(deadline, observation));
            None
        } else {
            self.idle.insert(stamp, Arc::clone(&cause.key));
            Some(self.issuer.first_seen(observation))
        }
    }

    /// Emits one record for every cause whose window has ended by `now_ms`
    /// (a window opened by a repeat at `t` ends at `t + window_ms`), plus
    /// any closed early; the causes stay remembered.
    ///
    /// Each record has the window's count, first and last occurrence, the
    /// highest severity among them, the newest one's workload and flow, and
    /// its summary prefixed with `"{count}× "`. Its class is `burst` when
    /// the window's rate reaches `burst_per_second`, `recurring` otherwise.
    /// The rate is `count × 1000 / window_ms` occurrences per second: the
    /// count over the window's full length, not over the span between first
    /// and last occurrence, which would make two repeats a millisecond apart
    /// a burst. A window closed before its end is measured the same way,
    /// so it is a burst only if it already was one when closed.
    pub fn flush(&mut self, now_ms: u64) -> Vec<NewAlert> {
        let mut alerts: Vec<NewAlert> = self.ready.drain(..).map(|r| r.alert).collect();
        while let Some(entry) = self.gathering.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let key = entry.remove();
            let cause = self
                .causes
                .get_mut(&key)
                .expect("a gathering cause is remembered");
            let window = cause
                .window
                .take()
                .expect("a cause indexed as gathering has a window");
            self.idle.insert(cause.stamp, key);
            alerts.push(self.issuer.repeats(window, &self.config));
        }
        alerts
    }

    /// Emits everything gathered, whether or not its window has ended (at
    /// shutdown, say).
    pub fn flush_all(&mut self) -> Vec<NewAlert> {
        self.flush(u64::MAX)
    }

    /// When [`Aggregator::flush`] will next have something to emit (ms since
    /// the Unix epoch), or `None` when nothing is gathered. A time in the
    /// past means now.
    pub fn next_deadline(&self) -> Option<u64> {
        let ready = self.ready.iter().map(|r| r.due_ms).min();
        let gathering = self.gathering.keys().next().map(|deadline| deadline.0);
        ready.into_iter().chain(gathering).min()
    }

    /// Frees a place for a new cause observed at `at_ms` (see the memory
    /// bound on [`Aggregator`]).
    fn make_room(&mut self, at_ms: u64) {
        while self.causes.len() >= self.config.max_keys {
            if let Some((_, key)) = self.idle.pop_first() {
                self.causes.remove(&key);
            } else if let Some((deadline, key)) = self.gathering.pop_first() {
                let cause = self
                    .causes
                    .remove(&key)
                    .expect("a gathering cause is remembered");
                let window = cause
                    .window
                    .expect("a cause indexed as gathering has a window");
                let alert = self.issuer.repeats(window, &self.config);
                self.ready.push(Ready {
                    due_ms: deadline.0.min(at_ms),
                    alert,
                });
            } else {
                debug_assert!(false, "every remembered cause is indexed");
                return;
            }
        }
    }

    /// How many causes are remembered (for the memory-bound tests).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        debug_assert_eq!(
            self.causes.len(),
            self.idle.len() + self.gathering.len(),
            "every cause is in exactly one index"
        );
        self.causes.len()
    }
}

impl Window {
    fn open(deadline: Deadline, first: Observation) -> Self {
        Window {
            deadline,
            tally: Tally::of(&first),
            latest: first,
        }
    }

    fn add(&mut self, occurrence: Observation) {
        let tally = &mut self.tally;
        tally.count = tally.count.saturating_add(occurrence.count.max(1));
        tally.first_seen_ms = tally.first_seen_ms.min(occurrence.at_ms);
        tally.last_seen_ms = tally.last_seen_ms.max(occurrence.at_ms);
        tally.severity = tally.severity.max(occurrence.severity);
        // On a tie the later report wins: it is the fresher state.
        if occurrence.at_ms >= self.latest.at_ms {
            self.latest = occurrence;
        }
    }
}

impl Tally {
    fn of(occurrence: &Observation) -> Self {
        Tally {
            count: occurrence.count.max(1),
            first_seen_ms: occurrence.at_ms,
            last_seen_ms: occurrence.at_ms,
            severity: occurrence.severity,
        }
    }
}

impl Issuer {
    fn first_seen(&mut self, occurrence: Observation) -> NewAlert {
        let tally = Tally::of(&occurrence);
        self.issue(AlertClass::FirstSeen, tally, occurrence)
    }

    fn repeats(&mut self, window: Window, config: &AggregatorConfig) -> NewAlert {
        let tally = window.tally;
        // count / (window_ms / 1000) >= burst_per_second, kept in integers;
        // a zero window is taken as one millisecond so it still has a rate.
        let is_burst = u128::from(tally.count) * 1000
            >= u128::from(config.burst_per_second) * u128::from(config.window_ms.max(1));
        let class = if is_burst {
            AlertClass::Burst
        } else {
            AlertClass::Recurring
        };
        self.issue(class, tally, window.latest)
    }

    fn issue(&mut self, class: AlertClass, tally: Tally, latest: Observation) -> NewAlert {
        self.issued += 1;
        // A record of repeats says how many it stands for where people read.
        let summary = match class {
            AlertClass::FirstSeen => latest.summary,
            AlertClass::Recurring | AlertClass::Burst => {
                format!("{}× {}", tally.count, latest.summary)
            }
        };
        NewAlert {
            id: AlertId(format!("{}-{}", self.id_prefix, self.issued)),
            kind: latest.kind,
            severity: tally.severity,
            class,
            node: self.node,
            subject_node: None,
            sink: None,
            workload: latest.workload,
            flow: latest.flow,
            count: tally.count,
            first_seen_ms: tally.first_seen_ms,
            last_seen_ms: tally.last_seen_ms,
            summary,
            change: None,
        }
    }
}
