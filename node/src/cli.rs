//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::NodeArgs;

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
    /// Create a new cluster: its CA, this node as its first member, and the
    /// first admin API token (printed once).
    Init(NodeArgs),
    /// Run this node from its data directory.
    Start(NodeArgs),
    /// Join an existing cluster with a join token, then run as its member.
    Join(JoinArgs),
    /// Manage join tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show or renew the certificate of the node behind the admin API (by
    /// default this host's); run it on each host in turn.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Compliance reports of the live cluster, and checking them later.
    #[command(subcommand)]
    Report(crate::compliance_cmd::ReportCommand),
    /// Take the node behind the admin API out of the cluster.
    Leave(ApiArgs),
    /// Take another node out of the cluster.
    Remove(RemoveArgs),
    /// Set how many voters the control plane keeps (an odd number from 1
    /// to 7); the leader then promotes learners or demotes voters.
    Voters(VotersArgs),
    /// List what runs on every node, with each workload's identity; unknown
    /// binaries stand out.
    Inventory(InventoryArgs),
    /// Query the flow records of every node: who talked to whom, which
    /// process, the verdict and the rule that decided it.
    Flows(FlowsArgs),
    /// Draw the cluster's observed topology (zones, apps, services or
    /// processes, and the flows between them).
    Topology(TopologyArgs),
    /// Turn what learning zones were seen to do into allow rules.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Apply pre-canned rules for common servers (DNS, NTP, PostgreSQL,
    /// Redis, HTTP).
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Register binaries (e.g. from a CI pipeline) as an application's: only
    /// these binaries will carry its identity.
    Fingerprint(FingerprintArgs),
    /// Work with policy documents (TOML): validate, compare, ask what a flow would meet.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List the cluster's alerts with their delivery to each sink.
    Alerts(AlertsArgs),
    /// List the changes made through the admin API: who (token name and
    /// role), what, when, from where, and the policy version each made.
    Audit(crate::audit_cmd::AuditArgs),
    /// Write a backup of the whole cluster state (policy, identities,
    /// fingerprints, sinks with their secrets, API tokens, the audit log): versioned,
    /// checksummed and signed by the cluster.
    Backup(crate::backup_cmd::BackupArgs),
    /// Restore a backup on every node at once (one Raft command); a
    /// corrupt, tampered or foreign file is refused and changes nothing.
    Restore(crate::backup_cmd::RestoreArgs),
    /// Detach this node's eBPF hooks and remove everything it pinned (run
    /// with the node stopped).
    Uninstall(UninstallArgs),
    /// Run a three-node cluster on this machine (in network namespaces, as
    /// root) and watch it learn a sample application, enforce, and block and
    /// alert on intruders; `--down` removes it.
    Demo(DemoArgs),
    /// The demo's background helper: its Slack-compatible receiver and the
    /// forwarders to its nodes (started by `stockade demo`).
    #[command(hide = true)]
    DemoSupport(DemoSupportArgs),
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
    /// Write the cluster's policy (secrets redacted); `--bundle` leaves out
    /// its numbers and sinks, to share with another cluster or team.
    Export(crate::backup_cmd::ExportArgs),
    /// Merge a policy document or bundle into the cluster's policy (or
    /// `--replace` it), printing what changes.
    Import(crate::backup_cmd::ImportArgs),
    /// List this machine's processes with the identity a policy document
    /// gives each (offline: no cluster needed).
    Inventory(LocalInventoryArgs),
    /// List the cluster's policy versions held, with who made each.
    History(crate::audit_cmd::HistoryArgs),
    /// Show what one policy version changed (or, with `--document`, the
    /// whole policy as it was then).
    ShowVersion(crate::audit_cmd::ShowVersionArgs),
    /// Restore the cluster's policy as it was at a version, as a new
    /// version (nothing is rewritten).
    Rollback(crate::audit_cmd::RollbackArgs),
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

/// Arguments of `stockade uninstall`.
#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The node's bpffs pin folder.
    #[arg(long, env = "STOCKADE_PIN_DIR", default_value = stockade_bpf::DEFAULT_PIN_DIR)]
    pub pin_dir: std::path::PathBuf,
}

/// Arguments of `stockade demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Remove a demo left running (its nodes, workloads, namespaces,
    /// cgroups, pins and directory) instead of starting one.
    #[arg(long)]
    pub down: bool,
    /// After the walk-through, stay in the foreground printing Slack
    /// messages; Ctrl-C then removes the demo.
    #[arg(long, conflicts_with = "down")]
    pub follow: bool,
    /// The first of the three local ports that reach the nodes' admin API
    /// and console (node N at PORT + N - 1).
    #[arg(long, default_value_t = 7480, value_parser = clap::value_parser!(u16).range(1..=65533))]
    pub console_port: u16,
    /// Where the demo keeps its nodes' data, logs and binaries.
    #[arg(long, default_value = "/var/lib/stockade-demo")]
    pub dir: PathBuf,
}

/// Arguments of `stockade demo-support`.
#[derive(Debug, Args)]
pub struct DemoSupportArgs {
    /// The demo's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The first local port forwarded to the nodes.
    #[arg(long)]
    pub console_port: u16,
}

/// Arguments of `stockade join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The join token (from `stockade token create`).
    #[arg(long, env = "STOCKADE_JOIN_TOKEN")]
    pub token: String,
    /// The QUIC address of any member of the cluster.
    pub member: std::net::SocketAddr,
    /// This node's settings.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Subcommands of `stockade token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a single-use join token that pins the cluster CA.
    Create(TokenCreateArgs),
}

/// Subcommands of `stockade certs`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Show the node's certificate: serial, validity, CA fingerprint; warn
    /// when fewer than 30 days are left.
    Status(CertsStatusArgs),
    /// Renew the node's certificate without downtime: a new key, signed by
    /// the cluster CA, used for new connections at once (open ones go on).
    Rotate(ApiArgs),
}

/// Arguments of `stockade certs status`.
#[derive(Debug, Args)]
pub struct CertsStatusArgs {
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// How long the token stays valid, e.g. `30m`, `1h`, `2d`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: std::time::Duration,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Only alerts of this kind (`policy_violation`, `unknown_binary`, …).
    #[arg(long)]
    pub kind: Option<String>,
    /// The newest this many.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The node id to remove.
    pub node: u64,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade voters`.
#[derive(Debug, Args)]
pub struct VotersArgs {
    /// The number of voters to keep.
    pub voters: u8,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// How to reach a node's admin API.
#[derive(Clone, Debug, Args)]
pub struct ApiArgs {
    /// Base URL of the admin API.
    #[arg(
        long = "api",
        env = "STOCKADE_API",
        default_value = "http://127.0.0.1:7480"
    )]
    pub url: String,
    /// An admin API token.
    #[arg(long = "api-token", env = "STOCKADE_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Arguments of `stockade fingerprint`.
#[derive(Debug, Args)]
pub struct FingerprintArgs {
    /// The executables to register.
    #[arg(required = true)]
    pub paths: Vec<std::path::PathBuf>,
    /// Zone of the application.
    #[arg(long)]
    pub zone: String,
    /// The application.
    #[arg(long)]
    pub app: String,
    /// The service of the application.
    #[arg(long, default_value = "main")]
    pub service: String,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade policy inventory`.
#[derive(Debug, Args)]
pub struct LocalInventoryArgs {
    /// The policy document; the embedded demo policy when absent.
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

/// Arguments of `stockade inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Only workloads of this zone.
    #[arg(long)]
    pub zone: Option<String>,
    /// Only workloads of this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Only workloads of this node (its id).
    #[arg(long)]
    pub node: Option<u64>,
    /// Only workloads whose binary has no identity.
    #[arg(long)]
    pub unknown: bool,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade flows`.
#[derive(Debug, Args)]
pub struct FlowsArgs {
    /// Filters, as `GET /v1/flows` takes them: `zone=prod`, `app=web`,
    /// `node=2`, `action=deny`, `port=5432`, `unknown=true`, …
    #[arg(value_name = "NAME=VALUE")]
    pub filters: Vec<String>,
    /// Only flows seen within this long (e.g. `10m`, `2h`).
    #[arg(long)]
    pub since: Option<humantime::Duration>,
    /// The newest this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON lines (one record per line, as a SIEM takes them).
    #[arg(long)]
    pub jsonl: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade topology`.
#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// `zone`, `app`, `service` or `process`.
    #[arg(long, default_value = "app")]
    pub level: String,
    /// Only flows seen within this long (e.g. `10m`, `2h`).
    #[arg(long)]
    pub since: Option<humantime::Duration>,
    /// Render the picture to this SVG file (with Graphviz's `dot`).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print the Graphviz DOT source.
    #[arg(long)]
    pub dot: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Subcommands of `stockade baseline`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// The narrowest allow rules that cover what a zone was seen to do and
    /// the policy does not allow yet, link by link, with the diff.
    Propose(ProposeArgs),
    /// Accept proposed links: their allow rules are created.
    Accept(LinkArgs),
    /// Snooze proposed links: hidden until they are seen again.
    Snooze(LinkArgs),
    /// Deny proposed links: never proposed again.
    Deny(LinkArgs),
}

/// Arguments of `stockade baseline propose`.
#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// The zone.
    #[arg(long)]
    pub zone: String,
    /// Also show snoozed links that were not seen again.
    #[arg(long)]
    pub include_snoozed: bool,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade baseline accept|snooze|deny`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The zone whose proposal the links come from.
    #[arg(long)]
    pub zone: String,
    /// The links, by their number in `stockade baseline propose`.
    #[arg(value_name = "LINK", required_unless_present = "all")]
    pub links: Vec<usize>,
    /// Every link of the proposal.
    #[arg(long, conflicts_with = "links")]
    pub all: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Subcommands of `stockade template`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the templates.
    List(ApiArgs),
    /// Allow a template's server ports from its clients.
    Apply(TemplateApplyArgs),
}

/// Arguments of `stockade template apply`.
#[derive(Debug, Args)]
pub struct TemplateApplyArgs {
    /// The template: dns, ntp, postgresql, redis or http.
    pub name: String,
    /// Who connects: `zone`, `zone/app` or `zone/app/service`.
    #[arg(long)]
    pub clients: String,
    /// The server: `zone[/app[/service]]`, or an address block outside the
    /// cluster such as `192.0.2.53/32`.
    #[arg(long)]
    pub server: String,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}
