//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Stockade: a distributed firewall that protects workloads by application
/// identity, enforced in the kernel with eBPF.
#[derive(Debug, Parser)]
#[command(name = "stockade", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with policy documents (TOML): validate, compare, ask what a flow would meet.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Load Stockade's eBPF probe into the kernel and show that it runs (needs root).
    Probe(ProbeArgs),
    /// Walk through the embedded demo policy: validate it, compile it for a node,
    /// decide sample flows, and prove the eBPF dataplane loads (needs root).
    Demo(DemoArgs),
}

/// Subcommands of `stockade policy`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy document as a whole; print what it holds, or what is wrong.
    Check(CheckArgs),
    /// Show what changes from one policy document to another, entry by entry.
    Diff(DiffArgs),
    /// Decide one flow under a policy document, and name the rule that decides it.
    Decide(DecideArgs),
    /// Print the embedded demo policy document.
    Default,
}

/// Arguments of `stockade policy check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The policy document; `-` reads standard input.
    pub file: PathBuf,
}

/// Arguments of `stockade policy diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The policy as it is.
    pub before: PathBuf,
    /// The policy as proposed.
    pub after: PathBuf,
    /// Exit with status 1 when the documents differ (for CI gates).
    #[arg(long)]
    pub exit_code: bool,
}

/// Arguments of `stockade policy decide`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The policy document; the embedded demo policy when absent.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Who opens the connection: `zone/app/service`, or an IP address outside
    /// the cluster.
    #[arg(long)]
    pub from: String,
    /// Who is connected to: `zone/app/service`, or an IP address.
    #[arg(long)]
    pub to: String,
    /// Destination port.
    #[arg(long)]
    pub port: u16,
    /// Transport protocol.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Tcp)]
    pub protocol: ProtocolArg,
}

/// A transport protocol on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ProtocolArg {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Arguments of `stockade probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// How many test executions to count.
    #[arg(long, default_value_t = 5)]
    pub execs: u32,
}

/// Arguments of `stockade demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this policy document instead of the embedded one.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Skip the eBPF part (for machines without root or BPF).
    #[arg(long)]
    pub no_bpf: bool,
}
