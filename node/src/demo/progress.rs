//! The demo's step-by-step display: a numbered heading per step, a spinner
//! with what it is waiting for (on a terminal), and the lines it reports.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// The steps of a walk-through.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    done: usize,
    started: Instant,
}

impl Progress {
    /// A walk-through of `total` steps, starting now.
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            started: Instant::now(),
        }
    }

    /// Starts the next step.
    pub fn step(&mut self, title: &str) -> Step {
        self.done += 1;
        println!(
            "\n\x1b[1m[{}/{}] {title}\x1b[0m  (at {:.1} s)",
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(
            ProgressStyle::with_template("    {spinner} {msg} ({elapsed})")
                .expect("a valid fixed template"),
        );
        spinner.enable_steady_tick(Duration::from_millis(120));
        Step {
            spinner,
            started: Instant::now(),
        }
    }

    /// Time since the walk-through began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// One step under way.
#[derive(Debug)]
pub struct Step {
    spinner: ProgressBar,
    started: Instant,
}

impl Step {
    /// Says what the step is waiting for now.
    pub fn waiting(&self, what: &str) {
        self.spinner.set_message(what.to_owned());
    }

    /// Prints one line of the step's report (shown on any output, not only
    /// on a terminal).
    pub fn say(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        self.spinner.suspend(|| println!("    {line}"));
    }

    /// Ends the step with its outcome.
    pub fn done(self, outcome: impl AsRef<str>) {
        self.spinner.finish_and_clear();
        println!(
            "    \x1b[32m✓\x1b[0m {} ({:.1} s)",
            outcome.as_ref(),
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        // A step abandoned by an error must not leave its spinner drawing.
        self.spinner.finish_and_clear();
    }
}
