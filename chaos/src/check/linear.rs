//! The linearizability search.

use std::collections::{BTreeMap, HashSet};

use super::models::Model;

/// One operation of a history, as a client recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<Op> {
    /// When the client invoked it (monotonic, any unit).
    pub call: u64,
    /// When it returned, or `None` when its outcome is unknown (timed out,
    /// the client or its node crashed): it may have taken effect at any
    /// time after `call`, or never.
    pub ret: Option<u64>,
    /// What it did and what the client saw. Failed operations (known not
    /// to have taken effect) are left out of the history.
    pub op: Op,
}

/// What the checker concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations explains every outcome: here is one
    /// (indexes into the history; unknown operations only when they took
    /// effect).
    Linearizable(Vec<usize>),
    /// No order does. The longest prefix of completed operations the search
    /// could explain, and the completed operations it could not place next.
    NotLinearizable {
        /// The operations of the deepest explained prefix, in order.
        deepest: Vec<usize>,
        /// Operations that had to come next but whose outcome was impossible.
        stuck: Vec<usize>,
    },
}

impl Verdict {
    /// Whether the history is linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Linearizable(_))
    }
}

/// Whether `history`, starting from `init`, is linearizable.
pub fn linearizable<M: Model>(init: &M, history: &[Operation<M::Op>]) -> Verdict {
    let n = history.len();
    let must = (0..n).filter(|&i| history[i].ret.is_some()).count();
    let mut done = vec![false; n];
    let mut order = Vec::new();
    let mut seen: HashSet<(Vec<bool>, M)> = HashSet::new();
    let mut deepest: (usize, Vec<usize>) = (0, Vec::new());
    let mut stack: Vec<(M, Vec<usize>)> = vec![(init.clone(), candidates(history, &done))];
    let mut completed = 0;
    while let Some((state, choices)) = stack.last_mut() {
        if completed == must {
            return Verdict::Linearizable(order);
        }
        let Some(next) = choices.pop() else {
            // Every choice here failed: undo the operation that led here.
            stack.pop();
            if let Some(undone) = order.pop() {
                done[undone] = false;
                if history[undone].ret.is_some() {
                    completed -= 1;
                }
            }
            continue;
        };
        let Some(after) = state.step(&history[next].op) else {
            continue;
        };
        done[next] = true;
        if !seen.insert((done.clone(), after.clone())) {
            done[next] = false;
            continue;
        }
        order.push(next);
        if history[next].ret.is_some() {
            completed += 1;
        }
        if completed > deepest.0 {
            deepest = (completed, order.clone());
        }
        let choices = candidates(history, &done);
        stack.push((after, choices));
    }
    let stuck = {
        let mut done = vec![false; n];
        for &i in &deepest.1 {
            done[i] = true;
        }
        candidates(history, &done)
            .into_iter()
            .filter(|&i| history[i].ret.is_some())
            .collect()
    };
    Verdict::NotLinearizable {
        deepest: deepest.1,
        stuck,
    }
}

/// The operations that may take effect next: not done, and called before
/// every pending completed operation returned (an operation that returned
/// must take effect before any operation called after its return).
fn candidates<Op>(history: &[Operation<Op>], done: &[bool]) -> Vec<usize> {
    let horizon = history
        .iter()
        .zip(done)
        .filter(|(_, &d)| !d)
        .filter_map(|(o, _)| o.ret)
        .min()
        .unwrap_or(u64::MAX);
    let mut next: Vec<usize> = (0..history.len())
        .filter(|&i| !done[i] && history[i].call <= horizon)
        .collect();
    // Taken from the back: completed operations first, earliest call
    // first; unknown ones last.
    next.sort_by_key(|&i| (history[i].ret.is_some(), std::cmp::Reverse(history[i].call)));
    next
}

/// Checks each key's operations on its own (a history of independent
/// objects is linearizable when each object's is), from `init` each; the
/// verdict of every key, in key order.
pub fn by_key<K: Ord + Clone, M: Model>(
    init: &M,
    history: &[(K, Operation<M::Op>)],
) -> BTreeMap<K, Verdict>
where
    M::Op: Clone,
{
    let mut keys: BTreeMap<K, Vec<Operation<M::Op>>> = BTreeMap::new();
    for (key, op) in history {
        keys.entry(key.clone()).or_default().push(op.clone());
    }
    keys.into_iter()
        .map(|(key, ops)| {
            let verdict = linearizable(init, &ops);
            (key, verdict)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::check::{Register, RegisterOp, Set, SetOp};

    fn op(call: u64, ret: Option<u64>, op: RegisterOp) -> Operation<RegisterOp> {
        Operation { call, ret, op }
    }

    #[test]
    fn concurrent_writes_may_be_read_in_either_order() {
        // Two overlapping writes; reads after both see the one that came last.
        let history = [
            op(0, Some(10), RegisterOp::Write(1)),
            op(1, Some(9), RegisterOp::Write(2)),
            op(11, Some(12), RegisterOp::Read(Some(1))),
            op(13, Some(14), RegisterOp::Read(Some(1))),
        ];
        assert!(linearizable(&Register::default(), &history).is_ok());
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let history = [
            op(0, Some(1), RegisterOp::Write(1)),
            op(2, Some(3), RegisterOp::Write(2)),
            op(4, Some(5), RegisterOp::Read(Some(1))),
        ];
        let verdict = linearizable(&Register::default(), &history);
        let Verdict::NotLinearizable { deepest, stuck } = verdict else {
            panic!("a stale read passed");
        };
        assert_eq!(deepest, vec![0, 1]);
        assert_eq!(stuck, vec![2]);
    }

    #[test]
    fn reads_cannot_flip_back_and_forth() {
        // One write concurrent with two sequential reads: once a read saw
        // the new value, a later read cannot see the old one.
        let history = [
            op(0, Some(100), RegisterOp::Write(7)),
            op(10, Some(20), RegisterOp::Read(Some(7))),
            op(30, Some(40), RegisterOp::Read(None)),
        ];
        assert!(!linearizable(&Register::default(), &history).is_ok());
    }

    #[test]
    fn an_unknown_write_may_or_may_not_have_happened() {
        let took_effect = [
            op(0, None, RegisterOp::Write(3)),
            op(5, Some(6), RegisterOp::Read(Some(3))),
        ];
        assert!(linearizable(&Register::default(), &took_effect).is_ok());
        let did_not = [
            op(0, None, RegisterOp::Write(3)),
            op(5, Some(6), RegisterOp::Read(None)),
        ];
        assert!(linearizable(&Register::default(), &did_not).is_ok());
        // But it cannot take effect before it was called.
        let too_early = [
            op(0, Some(1), RegisterOp::Read(Some(3))),
            op(5, None, RegisterOp::Write(3)),
        ];
        assert!(!linearizable(&Register::default(), &too_early).is_ok());
    }

    #[test]
    fn compare_and_set_outcomes_must_fit_the_value() {
        let cas = |expected, new, swapped| RegisterOp::CompareAndSet {
            expected,
            new,
            swapped,
        };
        let ok = [
            op(0, Some(1), RegisterOp::Write(1)),
            op(2, Some(3), cas(Some(1), 2, true)),
            op(4, Some(5), cas(Some(1), 3, false)),
            op(6, Some(7), RegisterOp::Read(Some(2))),
        ];
        assert!(linearizable(&Register::default(), &ok).is_ok());
        let double_swap = [
            op(0, Some(1), RegisterOp::Write(1)),
            op(2, Some(10), cas(Some(1), 2, true)),
            op(3, Some(10), cas(Some(1), 3, true)),
        ];
        assert!(!linearizable(&Register::default(), &double_swap).is_ok());
    }

    #[test]
    fn a_set_loses_no_acknowledged_add() {
        let set = |items: &[u64]| items.iter().copied().collect::<BTreeSet<u64>>();
        let ok = [
            Operation {
                call: 0,
                ret: Some(5),
                op: SetOp::Add(1),
            },
            Operation {
                call: 1,
                ret: Some(6),
                op: SetOp::Add(2),
            },
            Operation {
                call: 2,
                ret: Some(3),
                op: SetOp::Read(set(&[2])),
            },
            Operation {
                call: 7,
                ret: Some(8),
                op: SetOp::Read(set(&[1, 2])),
            },
        ];
        assert!(linearizable(&Set::default(), &ok).is_ok());
        let lost = [
            Operation {
                call: 0,
                ret: Some(1),
                op: SetOp::Add(1),
            },
            Operation {
                call: 2,
                ret: Some(3),
                op: SetOp::Add(2),
            },
            Operation {
                call: 4,
                ret: Some(5),
                op: SetOp::Read(set(&[2])),
            },
        ];
        assert!(!linearizable(&Set::default(), &lost).is_ok());
    }

    #[test]
    fn keys_are_checked_apart() {
        let history = [
            ("a", op(0, Some(1), RegisterOp::Write(1))),
            ("b", op(0, Some(1), RegisterOp::Write(2))),
            ("a", op(2, Some(3), RegisterOp::Read(Some(1)))),
            ("b", op(2, Some(3), RegisterOp::Read(Some(1)))),
        ];
        let verdicts = by_key(&Register::default(), &history);
        assert!(verdicts["a"].is_ok());
        assert!(!verdicts["b"].is_ok());
    }

    /// A history of `clients` clients over one register, as a real
    /// register would produce it: each operation takes effect at one
    /// instant inside its interval, in instant order.
    fn real_history() -> impl Strategy<Value = Vec<Operation<RegisterOp>>> {
        let step = (0..3u8, 1..4u64, 0..20u64, 0..20u64, any::<bool>());
        prop::collection::vec(step, 1..14).prop_map(|steps| {
            let mut value = None;
            let mut now = 0;
            let mut ops = Vec::new();
            for (kind, v, before, after, unknown) in steps {
                now += 1;
                // Intervals reach several neighbours: the operations overlap.
                let effect = 1000 + now * 50;
                let op = match kind {
                    0 => {
                        value = Some(v);
                        RegisterOp::Write(v)
                    }
                    1 => RegisterOp::Read(value),
                    _ => {
                        let swapped = value == Some(v);
                        if swapped {
                            value = Some(v + 1);
                        }
                        RegisterOp::CompareAndSet {
                            expected: Some(v),
                            new: v + 1,
                            swapped,
                        }
                    }
                };
                // Reads never time out here: an unknown read tells nothing.
                let unknown = unknown && !matches!(op, RegisterOp::Read(_));
                ops.push(Operation {
                    call: effect - before * 10,
                    ret: (!unknown).then_some(effect + after * 10),
                    op,
                });
            }
            ops
        })
    }

    proptest! {
        #[test]
        fn what_a_real_register_does_is_linearizable(history in real_history()) {
            let verdict = linearizable(&Register::default(), &history);
            prop_assert!(verdict.is_ok(), "{history:?}: {verdict:?}");
        }

        #[test]
        fn a_read_of_a_value_never_written_is_not(history in real_history()) {
            let mut history = history;
            let end = history.iter().filter_map(|o| o.ret.or(Some(o.call))).max().unwrap_or(0);
            history.push(op(end + 1, Some(end + 2), RegisterOp::Read(Some(999))));
            prop_assert!(!linearizable(&Register::default(), &history).is_ok());
        }
    }
}
