//! `stockade report hipaa` and `stockade report verify`: clients of the
//! compliance API.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand, ValueEnum};

use crate::admin_client::{get_bytes, send_bytes};
use crate::cli::ApiArgs;

/// Subcommands of `stockade report`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The HIPAA Security Rule / NIST CSF report of the live cluster: each
    /// subcategory of the crosswalk met, partly met or not met, with the
    /// evidence; dated, signed by the cluster.
    Hipaa(HipaaArgs),
    /// Check a report made earlier (JSON, HTML or PDF): unchanged, and made
    /// by this cluster.
    Verify(VerifyArgs),
}

/// How `stockade report hipaa` writes the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON.
    Json,
    /// One self-contained HTML page.
    Html,
    /// A PDF document.
    Pdf,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Html => "html",
            Format::Pdf => "pdf",
        }
    }
}

/// Arguments of `stockade report hipaa`.
#[derive(Debug, Args)]
pub struct HipaaArgs {
    /// The format.
    #[arg(long, value_enum, default_value = "html")]
    pub format: Format,
    /// Where to write it; standard output when `-`. Default:
    /// `stockade-hipaa-<time>.<format>` here.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// How far back the flow logs are read, e.g. `24h`, `7d` (at most 90d).
    #[arg(long, default_value = "24h")]
    pub window: String,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade report verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The report file.
    pub file: PathBuf,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `stockade report hipaa`.
pub fn hipaa(args: &HipaaArgs) -> Result<()> {
    let path = format!(
        "/v1/compliance/hipaa?format={}&window={}&consistency=linearizable",
        args.format.name(),
        args.window
    );
    let report = get_bytes(&args.api, &path).context("making the report")?;
    let output = match &args.output {
        Some(path) if path.as_os_str() == "-" => {
            return std::io::stdout()
                .write_all(&report)
                .context("writing the report to standard output");
        }
        Some(path) => path.clone(),
        None => {
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            let stamp: String = now.chars().filter(char::is_ascii_alphanumeric).collect();
            PathBuf::from(format!("stockade-hipaa-{stamp}.{}", args.format.name()))
        }
    };
    std::fs::write(&output, &report).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("HIPAA report written to {}.", output.display());
    Ok(())
}

/// `stockade report verify FILE`.
pub fn verify(args: &VerifyArgs) -> Result<()> {
    let file =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let reply = send_bytes(&args.api, "POST", "/v1/compliance/hipaa/verify", &file)
        .with_context(|| format!("{} does not verify", args.file.display()))?;
    println!(
        "{} is valid: the report of {} made {} at policy version {} ({} met, {} partly met, {} not met), unchanged and signed by this cluster.",
        args.file.display(),
        reply["cluster"].as_str().unwrap_or("?"),
        reply["generated_at"].as_str().unwrap_or("?"),
        reply["policy_version"],
        reply["summary"]["met"],
        reply["summary"]["partly_met"],
        reply["summary"]["not_met"],
    );
    Ok(())
}
