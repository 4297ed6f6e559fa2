//! The command line, and the plan of measurements it resolves to.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Compare the write throughput and latency of a 3-node Stockade cluster
/// with a 3-node etcd cluster, both in network namespaces this run creates.
///
/// Needs root (network namespaces) and `etcd` on the PATH. Build the node
/// next to the bench first: `cargo build --release -p stockade-node -p
/// stockade-bench`.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Numbers of concurrent clients to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    pub clients: Vec<usize>,
    /// Seconds measured per point (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds of warm-up per point, not measured.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// A short run CI can afford: clients 1 and 16, 2 s per point, 1 s of
    /// warm-up (overrides `--clients`, `--seconds` and `--warmup`).
    #[arg(long)]
    pub quick: bool,
    /// Size in bytes of the free-text part of each record (the zone's
    /// description; the same bytes in etcd's value).
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Which systems to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "stockade,etcd")]
    pub systems: Vec<SystemArg>,
    /// The `stockade` binary; by default the one next to this executable.
    #[arg(long)]
    pub stockade: Option<PathBuf>,
    /// An extra argument for every `stockade start` and `join` (repeat the
    /// flag for several), e.g. `--stockade-arg=--snapshot-every=100000`.
    #[arg(long = "stockade-arg", allow_hyphen_values = true)]
    pub stockade_args: Vec<String>,
    /// The `etcd` binary.
    #[arg(long, default_value = "etcd")]
    pub etcd: PathBuf,
    /// Where the run's data directories go (removed at the end). It must be
    /// a real disk: fsync on tmpfs costs nothing and would flatter both.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the data directories and logs after the run (for inspection).
    #[arg(long)]
    pub keep: bool,
}

/// A system under test, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SystemArg {
    /// A 3-node Stockade cluster.
    Stockade,
    /// A 3-node etcd cluster.
    Etcd,
}

/// What one run measures.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Client counts, in order.
    pub clients: Vec<usize>,
    /// Measured time per point.
    pub measure: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Bytes of free text per record.
    pub record_bytes: usize,
}

impl Args {
    /// The measurements these arguments ask for.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let (clients, seconds, warmup) = if self.quick {
            (vec![1, 16], 2.0, 1.0)
        } else {
            (self.clients.clone(), self.seconds, self.warmup)
        };
        anyhow::ensure!(
            !clients.is_empty() && clients.iter().all(|c| *c > 0),
            "--clients needs positive numbers"
        );
        anyhow::ensure!(seconds > 0.0, "--seconds must be positive");
        anyhow::ensure!(warmup >= 0.0, "--warmup must not be negative");
        Ok(Plan {
            clients,
            measure: Duration::from_secs_f64(seconds),
            warmup: Duration::from_secs_f64(warmup),
            record_bytes: self.record_bytes,
        })
    }
}
