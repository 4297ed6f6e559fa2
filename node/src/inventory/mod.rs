//! What runs on this node: its processes, their executables hashed and
//! cached, and the inventory it reports to the cluster.

mod hash;
pub mod procs;
pub mod report;

pub use hash::{key_of, ExecutableHasher};
