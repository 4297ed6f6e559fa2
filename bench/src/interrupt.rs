//! Ctrl-C and SIGTERM as a flag, so the run unwinds and every guard (the
//! processes, the data directories, the namespaces) is dropped. A second
//! signal exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};

/// Set when the user asked the run to stop.
#[derive(Clone, Debug)]
pub struct Interrupt(Arc<AtomicBool>);

/// The run was interrupted by a signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

impl Interrupt {
    /// Installs the handlers for SIGINT and SIGTERM.
    pub fn install() -> std::io::Result<Interrupt> {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as it was before this
            // signal: a second signal exits with 130.
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))?;
            signal_hook::flag::register(signal, Arc::clone(&flag))?;
        }
        Ok(Interrupt(flag))
    }

    /// Whether a signal came.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err` once a signal came.
    pub fn check(&self) -> Result<(), Interrupted> {
        if self.is_set() {
            Err(Interrupted)
        } else {
            Ok(())
        }
    }

    /// Polls `probe` every 200 ms until it returns `Some`, for at most
    /// `timeout`; a signal ends the wait early. `probe` also says what it
    /// last saw, for the error.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> (Option<T>, String),
    ) -> anyhow::Result<T> {
        let start = Instant::now();
        loop {
            self.check()?;
            let (found, last) = probe();
            if let Some(found) = found {
                return Ok(found);
            }
            if start.elapsed() > timeout {
                anyhow::bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
