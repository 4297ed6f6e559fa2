//! Moving a thread into a lab host's network namespace.
//!
//! A network namespace belongs to a thread, and threads inherit the one of
//! the thread that creates them. The load generator's thread enters the
//! load host's namespace first and only then builds its tokio runtime, so
//! every socket the runtime opens lives in the lab; the rest of the process
//! stays in the machine's own namespace.

use std::fs::File;

use anyhow::Context;
use nix::sched::{setns, CloneFlags};
use stockade_chaos::netlab::Lab;

/// Moves the calling thread into host `host`'s network namespace.
pub fn enter(lab: &Lab, host: usize) -> anyhow::Result<()> {
    let path = format!("/run/netns/{}", lab.netns(host));
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("entering {path}"))?;
    Ok(())
}
