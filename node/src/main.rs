//! `stockade`: the Stockade daemon and its command-line interface.
//!
//! This binary owns the CLI, configuration and the wiring of the other crates:
//! the HTTP admin API, inventory and binary fingerprinting, and the reconciler
//! that turns the applied cluster state into eBPF map contents. Today it offers
//! the policy tools (check, diff, decide), the demo and uninstall.

mod admin_client;
mod alerts;
mod api;
mod audit_cmd;
mod backup_cmd;
mod backups;
mod baseline_cmd;
mod certs;
mod certs_cmd;
mod cli;
mod clock;
mod cluster;
mod compliance;
mod compliance_cmd;
mod config;
mod console;
mod dataplane;
mod demo;
mod flows;
mod inventory;
mod inventory_cmd;
mod logging;
mod metrics;
mod node;
mod policy_cmd;
mod report;
mod tokens;
mod tunnel;
mod visibility_cmd;

use std::process::ExitCode;

use clap::Parser;

use anyhow::Context as _;
use cli::{Cli, Command, PolicyCommand, TokenCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A node's commands log as its settings say, with its name; the
    // others as STOCKADE_LOG_FORMAT says.
    let outcome = match cli.command {
        Command::Init(args) => args.resolve().and_then(|config| {
            start_logging(&config);
            block_on(node::init(&config))
        }),
        Command::Start(args) => node::start_config(&args).and_then(|config| {
            start_logging(&config);
            block_on(node::run(&config))
        }),
        Command::Join(args) => join(&args),
        command => match logging::LogFormat::from_env() {
            Ok(format) => {
                logging::init(format);
                tool(command)
            }
            Err(e) => Err(anyhow::anyhow!(e)),
        },
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the log subscriber of a node with `config`.
fn start_logging(config: &config::NodeConfig) {
    logging::init(config.log_format);
    logging::set_node_name(&config.name);
}

/// Runs a command that is not a node's life (`init`, `start`, `join`).
fn tool(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Policy(PolicyCommand::Check(args)) => policy_cmd::check(&args),
        Command::Policy(PolicyCommand::Diff(args)) => policy_cmd::diff(&args),
        Command::Policy(PolicyCommand::Decide(args)) => policy_cmd::decide(&args),
        Command::Policy(PolicyCommand::Default) => policy_cmd::print_default(),
        Command::Policy(PolicyCommand::Export(args)) => {
            backup_cmd::export(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Import(args)) => {
            backup_cmd::import(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Backup(args) => backup_cmd::backup(&args).map(|()| ExitCode::SUCCESS),
        Command::Restore(args) => backup_cmd::restore(&args).map(|()| ExitCode::SUCCESS),
        Command::Policy(PolicyCommand::Inventory(args)) => inventory_cmd::run(&args),
        Command::Policy(PolicyCommand::History(args)) => {
            audit_cmd::history(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::ShowVersion(args)) => {
            audit_cmd::show_version(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Rollback(args)) => {
            audit_cmd::rollback(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Audit(args) => audit_cmd::audit(&args).map(|()| ExitCode::SUCCESS),
        Command::Report(compliance_cmd::ReportCommand::Hipaa(args)) => {
            compliance_cmd::hipaa(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Report(compliance_cmd::ReportCommand::Verify(args)) => {
            compliance_cmd::verify(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Uninstall(args) => uninstall(&args),
        Command::Demo(args) => demo::run(&args),
        Command::DemoSupport(args) => demo::support::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Token(TokenCommand::Create(args)) => {
            admin_client::create_join_token(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Certs(command) => certs_cmd::run(&command).map(|()| ExitCode::SUCCESS),
        Command::Leave(args) => admin_client::leave(&args).map(|()| ExitCode::SUCCESS),
        Command::Remove(args) => admin_client::remove(&args).map(|()| ExitCode::SUCCESS),
        Command::Voters(args) => admin_client::voters(&args).map(|()| ExitCode::SUCCESS),
        Command::Alerts(args) => admin_client::alerts(&args).map(|()| ExitCode::SUCCESS),
        Command::Inventory(args) => visibility_cmd::inventory(&args).map(|()| ExitCode::SUCCESS),
        Command::Flows(args) => visibility_cmd::flows(&args).map(|()| ExitCode::SUCCESS),
        Command::Topology(args) => visibility_cmd::topology(&args).map(|()| ExitCode::SUCCESS),
        Command::Baseline(command) => baseline_cmd::run(&command).map(|()| ExitCode::SUCCESS),
        Command::Template(command) => baseline_cmd::template(&command).map(|()| ExitCode::SUCCESS),
        Command::Fingerprint(args) => admin_client::fingerprint(&args).map(|()| ExitCode::SUCCESS),
        Command::Init(_) | Command::Start(_) | Command::Join(_) => {
            anyhow::bail!("a node's life is not a tool: this is a bug")
        }
    }
}

/// Runs a node's async work on a multi-threaded runtime.
fn block_on(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(work)?;
    Ok(ExitCode::SUCCESS)
}

fn join(args: &cli::JoinArgs) -> anyhow::Result<ExitCode> {
    let token: tokens::JoinTokenText = args.token.parse()?;
    let config = args.node.resolve()?;
    start_logging(&config);
    block_on(node::join(&config, &token, args.member))
}

/// `stockade uninstall`.
fn uninstall(args: &cli::UninstallArgs) -> anyhow::Result<ExitCode> {
    let removed = stockade_bpf::uninstall(&args.pin_dir)
        .with_context(|| format!("uninstalling {}", args.pin_dir.display()))?;
    println!(
        "Detached {} hooks and removed {} pinned programs and maps from {}.",
        removed.links,
        removed.pins,
        args.pin_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
