//! What a recorded history says: whether the registers and sets behaved
//! as one copy would (linearizability), whether an acknowledged write went
//! missing, and whether a read saw a value nobody wrote.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::check::{linearizable, Operation, Register, RegisterOp, Set, SetOp, Verdict};
use crate::history::{Entry, Op, Outcome, Seen};

/// The verdict on one register or set.
#[derive(Clone, Debug, Serialize)]
pub struct KeyVerdict {
    /// `register 3` or `set 1`.
    pub key: String,
    /// Operations checked (failed ones, and unknown ones nobody saw, are
    /// left out).
    pub operations: usize,
    /// Writes or additions whose outcome the client never learned.
    pub unknown: usize,
    /// Whether some order of them explains every outcome.
    pub linearizable: bool,
    /// When it is not: the operations the search could not place,
    /// described.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stuck: Vec<String>,
}

/// Checks every register and set of `entries` for linearizability. Plain
/// (local) reads are left out: they may lag by design.
///
/// Writes and additions of unknown outcome are what makes the search
/// explode (each may or may not have happened, at any time after its
/// call), so the history is first narrowed, soundly: one whose value no
/// read ever returned is left out (it may always be taken as never having
/// happened), and one whose value a read returned must have taken effect
/// before that read ended, which becomes its return.
pub fn check_linearizability(entries: &[Entry]) -> Vec<KeyVerdict> {
    let seen_by = first_seen(entries);
    let mut registers: BTreeMap<u32, Vec<(&Entry, Operation<RegisterOp>)>> = BTreeMap::new();
    let mut sets: BTreeMap<u32, Vec<(&Entry, Operation<SetOp>)>> = BTreeMap::new();
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    for entry in entries {
        let ret = match (&entry.outcome, &entry.op) {
            (Outcome::Ok, _) => Some(entry.end_ns),
            (Outcome::Fail, _) => continue,
            (Outcome::Info, Op::Write { key, value }) => {
                *unknown.entry(format!("register {key}")).or_default() += 1;
                match seen_by.get(value) {
                    Some(&end) if end >= entry.call_ns => Some(end),
                    // Read before it was called: left open, the search
                    // then finds that read impossible.
                    Some(_) => None,
                    None => continue,
                }
            }
            (Outcome::Info, Op::Add { key, element }) => {
                *unknown.entry(format!("set {key}")).or_default() += 1;
                match seen_by.get(element) {
                    Some(&end) if end >= entry.call_ns => Some(end),
                    Some(_) => None,
                    None => continue,
                }
            }
            // A read whose answer never came did nothing.
            (Outcome::Info, _) => continue,
        };
        let call = entry.call_ns;
        match (&entry.op, &entry.seen) {
            (Op::Write { key, value }, _) => registers
                .entry(*key)
                .or_default()
                .push((entry, timed(call, ret, RegisterOp::Write(*value)))),
            (Op::Add { key, element }, _) => sets
                .entry(*key)
                .or_default()
                .push((entry, timed(call, ret, SetOp::Add(*element)))),
            // A read whose answer never came did nothing: leave it out.
            (
                Op::Read {
                    key,
                    linearizable: true,
                },
                Some(Seen::Register(value)),
            ) if ret.is_some() => registers
                .entry(*key)
                .or_default()
                .push((entry, timed(call, ret, RegisterOp::Read(*value)))),
            (Op::ReadSet { key }, Some(Seen::Set(elements))) if ret.is_some() => sets
                .entry(*key)
                .or_default()
                .push((entry, timed(call, ret, SetOp::Read(elements.clone())))),
            _ => {}
        }
    }
    let mut verdicts = Vec::new();
    for (key, ops) in registers {
        verdicts.push(verdict(
            format!("register {key}"),
            &Register::default(),
            &ops,
        ));
    }
    for (key, ops) in sets {
        verdicts.push(verdict(format!("set {key}"), &Set::default(), &ops));
    }
    for verdict in &mut verdicts {
        verdict.unknown = unknown.get(&verdict.key).copied().unwrap_or(0);
    }
    verdicts
}

/// When each value was first returned by a read (plain reads count: a
/// node shows only what was committed), by the read's end.
fn first_seen(entries: &[Entry]) -> BTreeMap<u64, u64> {
    let mut first: BTreeMap<u64, u64> = BTreeMap::new();
    let mut note = |value: u64, end: u64| {
        let at = first.entry(value).or_insert(end);
        *at = (*at).min(end);
    };
    for entry in entries.iter().filter(|e| e.outcome == Outcome::Ok) {
        match &entry.seen {
            Some(Seen::Register(Some(value))) => note(*value, entry.end_ns),
            Some(Seen::Set(elements)) => {
                for element in elements {
                    note(*element, entry.end_ns);
                }
            }
            _ => {}
        }
    }
    first
}

fn timed<Op>(call: u64, ret: Option<u64>, op: Op) -> Operation<Op> {
    Operation { call, ret, op }
}

fn verdict<M: crate::check::Model>(
    key: String,
    init: &M,
    ops: &[(&Entry, Operation<M::Op>)],
) -> KeyVerdict
where
    M::Op: Clone,
{
    let history: Vec<Operation<M::Op>> = ops.iter().map(|(_, op)| op.clone()).collect();
    let result = linearizable(init, &history);
    let stuck = match &result {
        Verdict::Linearizable(_) => Vec::new(),
        Verdict::NotLinearizable { stuck, .. } => {
            stuck.iter().take(5).map(|&i| describe(ops[i].0)).collect()
        }
    };
    KeyVerdict {
        key,
        operations: history.len(),
        unknown: 0,
        linearizable: result.is_ok(),
        stuck,
    }
}

/// One entry in a line, for reports.
pub fn describe(entry: &Entry) -> String {
    let seen = match &entry.seen {
        Some(Seen::Register(v)) => format!(" saw {v:?}"),
        Some(Seen::Set(s)) => format!(" saw {} elements", s.len()),
        None => String::new(),
    };
    format!(
        "client {} on host {}: {:?}{seen} [{:.3}s..{:.3}s] {:?}",
        entry.client,
        entry.host,
        entry.op,
        entry.call_ns as f64 / 1e9,
        entry.end_ns as f64 / 1e9,
        entry.outcome
    )
}

/// Acknowledged writes the final reads do not show.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LostWrites {
    /// Keys the final reads covered.
    pub keys_read: usize,
    /// Acknowledged register writes overwritten by a write that finished
    /// before they began (or by nothing at all).
    pub registers: Vec<String>,
    /// Acknowledged set additions missing from the final read.
    pub sets: Vec<String>,
}

impl LostWrites {
    /// Whether nothing acknowledged was lost.
    pub fn none(&self) -> bool {
        self.registers.is_empty() && self.sets.is_empty()
    }
}

/// Compares the acknowledged writes with the last successful linearizable
/// read of each key called at or after `final_from_ns` (the reads made
/// once every fault had healed).
pub fn lost_writes(entries: &[Entry], final_from_ns: u64) -> LostWrites {
    let mut last_register: BTreeMap<u32, Option<u64>> = BTreeMap::new();
    let mut last_set: BTreeMap<u32, &BTreeSet<u64>> = BTreeMap::new();
    let finals = entries
        .iter()
        .filter(|e| e.call_ns >= final_from_ns && e.outcome == Outcome::Ok);
    for entry in finals {
        match (&entry.op, &entry.seen) {
            (
                Op::Read {
                    key,
                    linearizable: true,
                },
                Some(Seen::Register(v)),
            ) => {
                last_register.insert(*key, *v);
            }
            (Op::ReadSet { key }, Some(Seen::Set(s))) => {
                last_set.insert(*key, s);
            }
            _ => {}
        }
    }
    let mut lost = LostWrites {
        keys_read: last_register.len() + last_set.len(),
        ..LostWrites::default()
    };
    // Where each value came from: values are unique over the run.
    let writes: BTreeMap<u64, &Entry> = entries
        .iter()
        .filter_map(|e| match e.op {
            Op::Write { value, .. } if e.outcome != Outcome::Fail => Some((value, e)),
            _ => None,
        })
        .collect();
    for entry in entries.iter().filter(|e| e.outcome == Outcome::Ok) {
        match entry.op {
            Op::Write { key, value } => {
                let Some(last) = last_register.get(&key) else {
                    continue;
                };
                let overwritten_by_older = match last.and_then(|v| writes.get(&v)) {
                    // The final value's write finished before this one
                    // began: this one must come later, yet it is gone.
                    Some(source) => source.outcome == Outcome::Ok && source.end_ns < entry.call_ns,
                    None => true,
                };
                if *last != Some(value) && overwritten_by_older {
                    lost.registers.push(describe(entry));
                }
            }
            Op::Add { key, element }
                if last_set.get(&key).is_some_and(|s| !s.contains(&element)) =>
            {
                lost.sets.push(describe(entry));
            }
            _ => {}
        }
    }
    lost
}

/// Reads, plain or linearizable, that returned a value no write wrote.
pub fn phantom_reads(entries: &[Entry]) -> Vec<String> {
    let written: BTreeSet<u64> = entries
        .iter()
        .filter(|e| e.outcome != Outcome::Fail)
        .filter_map(|e| match e.op {
            Op::Write { value, .. } => Some(value),
            Op::Add { element, .. } => Some(element),
            _ => None,
        })
        .collect();
    entries
        .iter()
        .filter(|e| match &e.seen {
            Some(Seen::Register(Some(v))) => !written.contains(v),
            Some(Seen::Set(s)) => s.iter().any(|v| !written.contains(v)),
            _ => false,
        })
        .map(describe)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: Op, call: u64, end: u64, outcome: Outcome, seen: Option<Seen>) -> Entry {
        Entry {
            client: 0,
            host: 1,
            op,
            call_ns: call,
            end_ns: end,
            wall_ms: 0,
            outcome,
            seen,
            index: None,
            error: None,
        }
    }

    fn write(value: u64, call: u64, end: u64, outcome: Outcome) -> Entry {
        entry(Op::Write { key: 1, value }, call, end, outcome, None)
    }

    fn read(seen: Option<u64>, call: u64, end: u64) -> Entry {
        entry(
            Op::Read {
                key: 1,
                linearizable: true,
            },
            call,
            end,
            Outcome::Ok,
            Some(Seen::Register(seen)),
        )
    }

    #[test]
    fn a_stale_linearizable_read_is_caught_and_a_stale_local_read_is_not() {
        let stale = [write(1, 0, 10, Outcome::Ok), read(None, 20, 30)];
        let verdicts = check_linearizability(&stale);
        assert!(!verdicts[0].linearizable, "{verdicts:?}");
        assert!(!verdicts[0].stuck.is_empty());
        let mut local = read(None, 20, 30);
        local.op = Op::Read {
            key: 1,
            linearizable: false,
        };
        let verdicts = check_linearizability(&[write(1, 0, 10, Outcome::Ok), local]);
        assert!(verdicts[0].linearizable, "{verdicts:?}");
    }

    #[test]
    fn an_unknown_write_may_be_seen_or_not_and_a_failed_one_must_not_be() {
        let seen = [write(1, 0, 10, Outcome::Info), read(Some(1), 20, 30)];
        assert!(check_linearizability(&seen)[0].linearizable);
        let not_seen = [write(1, 0, 10, Outcome::Info), read(None, 20, 30)];
        assert!(check_linearizability(&not_seen)[0].linearizable);
        let failed = [write(1, 0, 10, Outcome::Fail), read(Some(1), 20, 30)];
        assert!(!phantom_reads(&failed).is_empty());
    }

    #[test]
    fn an_acknowledged_write_overwritten_by_an_older_one_is_lost() {
        let history = [
            write(1, 0, 10, Outcome::Ok),
            write(2, 20, 30, Outcome::Ok),
            read(Some(1), 100, 110),
        ];
        let lost = lost_writes(&history, 100);
        assert_eq!(lost.registers.len(), 1, "{lost:?}");
        // Concurrent writes may land in either order.
        let history = [
            write(1, 0, 25, Outcome::Ok),
            write(2, 20, 30, Outcome::Ok),
            read(Some(1), 100, 110),
        ];
        assert!(lost_writes(&history, 100).none());
    }

    #[test]
    fn an_acknowledged_add_missing_from_the_final_read_is_lost() {
        let add = |element, outcome| entry(Op::Add { key: 0, element }, 0, 10, outcome, None);
        let final_read = entry(
            Op::ReadSet { key: 0 },
            100,
            110,
            Outcome::Ok,
            Some(Seen::Set(BTreeSet::from([1]))),
        );
        let history = [
            add(1, Outcome::Ok),
            add(2, Outcome::Info),
            final_read.clone(),
        ];
        assert!(lost_writes(&history, 100).none());
        let history = [add(1, Outcome::Ok), add(2, Outcome::Ok), final_read];
        let lost = lost_writes(&history, 100);
        assert_eq!(lost.sets.len(), 1, "{lost:?}");
        assert_eq!(lost.keys_read, 1);
    }

    #[test]
    fn many_unknown_additions_nobody_saw_do_not_explode_the_search() {
        // Each unseen unknown addition could have happened or not: left in,
        // they would make 2^60 candidate states.
        let mut history: Vec<Entry> = (0..60)
            .map(|i| {
                entry(
                    Op::Add { key: 0, element: i },
                    i,
                    i + 1,
                    Outcome::Info,
                    None,
                )
            })
            .collect();
        history.push(entry(
            Op::Add {
                key: 0,
                element: 100,
            },
            0,
            10,
            Outcome::Ok,
            None,
        ));
        for at in 0..50 {
            history.push(entry(
                Op::ReadSet { key: 0 },
                100 + at * 10,
                105 + at * 10,
                Outcome::Ok,
                Some(Seen::Set(BTreeSet::from([100]))),
            ));
        }
        let verdicts = check_linearizability(&history);
        assert!(verdicts[0].linearizable, "{verdicts:?}");
        assert_eq!(verdicts[0].unknown, 60);
    }

    #[test]
    fn an_unknown_write_someone_read_took_effect_before_that_read_ended() {
        let seen_then_overwritten = [
            write(1, 0, 10, Outcome::Info),
            read(Some(1), 20, 30),
            write(2, 40, 50, Outcome::Ok),
            read(Some(2), 60, 70),
        ];
        assert!(check_linearizability(&seen_then_overwritten)[0].linearizable);
        // Seen, then the older value again: impossible either way.
        let flicker = [
            write(1, 0, 10, Outcome::Ok),
            write(2, 15, 16, Outcome::Info),
            read(Some(2), 20, 30),
            read(Some(1), 40, 50),
        ];
        assert!(!check_linearizability(&flicker)[0].linearizable);
    }
}
