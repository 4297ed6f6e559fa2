//! From the policy engine's [`DataplaneEntries`] to the bytes of the eBPF
//! maps, and from the maps as they are to the writes that make them as they
//! should be.
//!
//! The reconciler (arriving with the kernel hooks) compiles the state for
//! this node on every applied index, encodes it here, diffs it against the
//! pinned maps and writes only the difference.

mod diff;
mod encode;

pub use diff::diff;
pub use encode::{encode, MapContents};
