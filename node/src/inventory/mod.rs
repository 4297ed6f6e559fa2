//! What runs on this node: executables hashed and cached (and, with the
//! kernel enforcement work, processes and cgroups).

mod hash;
pub mod procs;

pub use hash::{key_of, ExecutableHasher};
