//! Checkers of recorded histories: whether what clients saw could have
//! happened on one copy of the data, one operation at a time.
//!
//! [`linearizable`] is a Wing–Gong search with Lowe's memoisation: it
//! orders the completed operations so that each takes effect between its
//! call and its return, and prunes states (which operations are done, what
//! the object holds) it has already explored. Operations whose outcome the
//! client never learned (a timeout, a crash) may take effect at any time
//! after their call, or never. Histories of independent keys are checked
//! one key at a time ([`by_key`]), which keeps the search small.

mod linear;
mod models;

pub use linear::{by_key, linearizable, Operation, Verdict};
pub use models::{Model, Register, RegisterOp, Set, SetOp};
