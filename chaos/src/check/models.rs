//! The objects a history is checked against.

use std::collections::BTreeSet;
use std::hash::Hash;

/// A sequential object: what it holds, and what one operation does to it.
pub trait Model: Clone + Eq + Hash {
    /// An operation with the outcome the client saw.
    type Op;

    /// The object after `op`, or `None` when `op`'s outcome is impossible
    /// from this state (a read that saw another value).
    fn step(&self, op: &Self::Op) -> Option<Self>;
}

/// A register of one value (a policy key), initially absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Register(pub Option<u64>);

/// An operation on a [`Register`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// Set the value.
    Write(u64),
    /// Read it; the value seen.
    Read(Option<u64>),
    /// Set it to `new` if it holds `expected`; whether it did.
    CompareAndSet {
        /// The value it must hold.
        expected: Option<u64>,
        /// The value it then holds.
        new: u64,
        /// What the client was told.
        swapped: bool,
    },
}

impl Model for Register {
    type Op = RegisterOp;

    fn step(&self, op: &RegisterOp) -> Option<Self> {
        match op {
            RegisterOp::Write(v) => Some(Register(Some(*v))),
            RegisterOp::Read(seen) => (*seen == self.0).then(|| self.clone()),
            RegisterOp::CompareAndSet {
                expected,
                new,
                swapped,
            } => match (*expected == self.0, swapped) {
                (true, true) => Some(Register(Some(*new))),
                (false, false) => Some(self.clone()),
                _ => None,
            },
        }
    }
}

/// A grow-only set (rules added to a policy), initially empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Set(pub BTreeSet<u64>);

/// An operation on a [`Set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// Add an element.
    Add(u64),
    /// Read the whole set; what was seen.
    Read(BTreeSet<u64>),
}

impl Model for Set {
    type Op = SetOp;

    fn step(&self, op: &SetOp) -> Option<Self> {
        match op {
            SetOp::Add(v) => {
                let mut next = self.clone();
                next.0.insert(*v);
                Some(next)
            }
            SetOp::Read(seen) => (*seen == self.0).then(|| self.clone()),
        }
    }
}
