//! Child processes the bench owns: started in a process group of their own
//! (Ctrl-C at the terminal reaches only the bench, which then stops them),
//! their stdout read line by line, their stderr kept in a log file, and
//! killed when dropped — on success, on error and on Ctrl-C alike.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::interrupt::Interrupt;

/// How often waits look at the interrupt flag.
const TICK: Duration = Duration::from_millis(100);

/// A running child process, killed on drop.
pub struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    log: PathBuf,
    /// How long it gets to exit after SIGTERM before SIGKILL; zero for
    /// SIGKILL at once.
    grace: Duration,
}

impl Proc {
    /// Starts `command`; its stdout is read line by line, its stdout or
    /// stderr (whichever is not read) goes to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Proc> {
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{name}: no stdout pipe"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            name: name.to_owned(),
            child,
            lines,
            log: log.to_owned(),
            grace: Duration::ZERO,
        })
    }

    /// Asks for SIGTERM, and `grace` to exit, before SIGKILL on drop.
    pub fn with_grace(mut self, grace: Duration) -> Proc {
        self.grace = grace;
        self
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to its log (its stderr).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The next line it prints, waiting at most `timeout`.
    pub fn next_line(
        &mut self,
        timeout: Duration,
        interrupt: &Interrupt,
    ) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            interrupt.check()?;
            match self.lines.recv_timeout(TICK) {
                Ok(line) => return Ok(line),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    bail!(
                        "{} ended ({status:?}) without the expected output; its stderr:\n{}",
                        self.name,
                        self.log()
                    );
                }
                Err(RecvTimeoutError::Timeout) if start.elapsed() > timeout => {
                    bail!(
                        "{} printed nothing for {timeout:?}; its stderr:\n{}",
                        self.name,
                        self.log()
                    );
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// The next line it prints, as JSON.
    pub fn next_json(
        &mut self,
        timeout: Duration,
        interrupt: &Interrupt,
    ) -> anyhow::Result<serde_json::Value> {
        let line = self.next_line(timeout, interrupt)?;
        serde_json::from_str(&line).with_context(|| format!("{} printed {line:?}", self.name))
    }

    /// Waits at most `timeout` for it to exit.
    pub fn wait(&mut self, timeout: Duration, interrupt: &Interrupt) -> anyhow::Result<ExitStatus> {
        let start = Instant::now();
        loop {
            interrupt.check()?;
            if let Some(status) = self.child.try_wait().context("waiting")? {
                return Ok(status);
            }
            if start.elapsed() > timeout {
                bail!("{} still runs after {timeout:?}", self.name);
            }
            std::thread::sleep(TICK.min(Duration::from_millis(10)));
        }
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.is_running() {
            return;
        }
        if !self.grace.is_zero() {
            if let Ok(pid) = i32::try_from(self.child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let start = Instant::now();
            while start.elapsed() < self.grace && self.is_running() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
