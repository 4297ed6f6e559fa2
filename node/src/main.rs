//! `stockade`: the Stockade daemon and its command-line interface.
//!
//! This binary owns the CLI, configuration and the wiring of the other crates:
//! the HTTP admin API, inventory and binary fingerprinting, and the reconciler
//! that turns the applied cluster state into eBPF map contents. Today it offers
//! the policy tools (check, diff, decide), the eBPF probe and the demo.

mod cli;
mod demo;
mod policy_cmd;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, PolicyCommand};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("STOCKADE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Policy(PolicyCommand::Check(args)) => policy_cmd::check(&args),
        Command::Policy(PolicyCommand::Diff(args)) => policy_cmd::diff(&args),
        Command::Policy(PolicyCommand::Decide(args)) => policy_cmd::decide(&args),
        Command::Policy(PolicyCommand::Default) => policy_cmd::print_default(),
        Command::Probe(args) => demo::probe(&args),
        Command::Demo(args) => demo::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
