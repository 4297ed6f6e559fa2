//! `stockade backup`, `stockade restore`, and the policy bundle commands
//! `stockade policy export` / `stockade policy import`: clients of the
//! admin API.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use stockade_policy::{diff, PolicyDocument};

use crate::admin_client::{call_text, put_text, send_bytes};
use crate::cli::ApiArgs;

/// Arguments of `stockade backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (created 0600: it holds secrets); standard
    /// output when `-`. Default: `stockade-<time>.backup` here.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Accept another cluster's backup (a disaster restore into a newly
    /// initialised cluster). Its signature cannot be checked then, only its
    /// checksum: use it only for a file you trust.
    #[arg(long)]
    pub allow_foreign: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade policy export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write the document; standard output when absent.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Write a bundle for another cluster or team: without this cluster's
    /// zone, identity and rule numbers, and without alert sinks.
    #[arg(long)]
    pub bundle: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade policy import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The policy document or bundle (TOML).
    pub file: PathBuf,
    /// Make the cluster's policy equal to the file (what it lacks is
    /// removed). Without it the file is merged in: its entries are added
    /// or replace those of the same name, and nothing is removed.
    #[arg(long)]
    pub replace: bool,
    /// Print the changes and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `stockade backup`.
pub fn backup(args: &BackupArgs) -> Result<()> {
    let file = crate::admin_client::get_bytes(&args.api, "/v1/backup?consistency=linearizable")?;
    let path = match &args.output {
        Some(path) if path.as_os_str() == "-" => {
            std::io::stdout()
                .write_all(&file)
                .context("writing the backup to standard output")?;
            return Ok(());
        }
        Some(path) => path.clone(),
        None => {
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            let stamp: String = now.chars().filter(char::is_ascii_alphanumeric).collect();
            PathBuf::from(format!("stockade-{stamp}.backup"))
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let written = crate::backups::write_atomically(&dir, name, &file)?;
    eprintln!(
        "Backup written to {} ({} bytes, mode 0600: it holds the sinks' secrets).",
        written.display(),
        file.len()
    );
    Ok(())
}

/// `stockade restore FILE`.
pub fn restore(args: &RestoreArgs) -> Result<()> {
    let file =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let path = format!("/v1/restore?allow_foreign={}", args.allow_foreign);
    let reply = send_bytes(&args.api, "POST", &path, &file)
        .with_context(|| format!("restoring {}", args.file.display()))?;
    println!(
        "Restored {} at policy version {}: every node now holds its policy.",
        args.file.display(),
        reply["index"]
    );
    Ok(())
}

/// `stockade policy export`.
pub fn export(args: &ExportArgs) -> Result<()> {
    let text = call_text(
        &args.api,
        "GET",
        "/v1/policy?consistency=linearizable",
        None,
    )?;
    let text = if args.bundle {
        let doc = PolicyDocument::parse(&text).context("reading the cluster's policy")?;
        doc.bundle().to_toml()?
    } else {
        text
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `stockade policy import FILE`: shows what changes, then imports.
pub fn import(args: &ImportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let file =
        PolicyDocument::parse(&text).with_context(|| format!("reading {}", args.file.display()))?;
    let current = call_text(
        &args.api,
        "GET",
        "/v1/policy?consistency=linearizable",
        None,
    )?;
    let current = PolicyDocument::parse(&current).context("reading the cluster's policy")?;
    let target = if args.replace {
        file
    } else {
        current.merged_with(&file)
    };
    let changes = diff(&current, &target);
    if changes.is_empty() {
        println!(
            "No change: the cluster's policy already holds {}.",
            args.file.display()
        );
        return Ok(());
    }
    print!("{changes}");
    if args.dry_run {
        return Ok(());
    }
    let body = target.to_toml()?;
    let reply = put_text(&args.api, "/v1/policy", &body)?;
    if reply["index"].is_null() {
        bail!("unexpected reply: {reply}");
    }
    println!("Imported at policy version {}.", reply["index"]);
    Ok(())
}
