//! `stockade audit` and `stockade policy history | show-version | rollback`:
//! the audit log and the policy history through the admin API.

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::admin_client::call;
use crate::cli::ApiArgs;
use crate::visibility_cmd::encode;

/// Arguments of `stockade audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only changes made at or after this long ago (`10m`, `2h`, `7d`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<std::time::Duration>,
    /// Only changes made with this token (its id or its name).
    #[arg(long)]
    pub token: Option<String>,
    /// Only changes of this kind (`upsert_rule`, `batch`, `rollback_policy`, …).
    #[arg(long)]
    pub kind: Option<String>,
    /// The newest this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print the reply's JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade policy history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print the reply's JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade policy show-version`.
#[derive(Debug, Args)]
pub struct ShowVersionArgs {
    /// The policy version (a log index `stockade policy history` lists).
    pub version: u64,
    /// Print the whole policy as it was right after it (TOML, secrets
    /// redacted) instead of its diff.
    #[arg(long)]
    pub document: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Arguments of `stockade policy rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The version whose policy to restore (as a new version).
    #[arg(long)]
    pub to: u64,
    /// Where the admin API is.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `2024-05-01T12:34:56.789Z`, or `-` when absent.
fn time(ms: &Value) -> String {
    ms.as_u64().map_or_else(
        || "-".into(),
        |ms| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            humantime::format_rfc3339_millis(at).to_string()
        },
    )
}

/// `name (role)` of an author object.
fn author(author: &Value) -> String {
    format!(
        "{} ({})",
        author["token_name"].as_str().unwrap_or("?"),
        author["role"].as_str().unwrap_or("?")
    )
}

/// `stockade audit`.
pub fn audit(args: &AuditArgs) -> Result<()> {
    let mut path = format!("/v1/audit?limit={}", args.limit);
    if let Some(since) = args.since {
        let since_ms = crate::clock::now_ms()
            .saturating_sub(u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
        path.push_str(&format!("&since_ms={since_ms}"));
    }
    if let Some(token) = &args.token {
        path.push_str(&format!("&token={}", encode(token)));
    }
    if let Some(kind) = &args.kind {
        path.push_str(&format!("&kind={}", encode(kind)));
    }
    let reply = call(&args.api, "GET", &path, None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(());
    }
    println!(
        "{:>6}  {:>8}  {:<24}  {:<24} {:<22} {:<18} outcome",
        "seq", "version", "at", "token", "from", "kind"
    );
    for entry in reply["entries"].as_array().into_iter().flatten() {
        let outcome = match entry["outcome"]["status"].as_str() {
            Some("refused") => format!(
                "refused: {}",
                entry["outcome"]["reason"].as_str().unwrap_or("?")
            ),
            other => other.unwrap_or("?").to_owned(),
        };
        println!(
            "{:>6}  {:>8}  {:<24}  {:<24} {:<22} {:<18} {outcome}",
            entry["seq"],
            entry["version"],
            time(&entry["at_ms"]),
            author(&entry["author"]),
            entry["address"].as_str().unwrap_or("-"),
            entry["kind"].as_str().unwrap_or("?"),
        );
        println!("        {}", entry["detail"].as_str().unwrap_or(""));
    }
    Ok(())
}

/// `stockade policy history`.
pub fn history(args: &HistoryArgs) -> Result<()> {
    let reply = call(&args.api, "GET", "/v1/policy/history", None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reply)?);
        return Ok(());
    }
    println!(
        "{:>8}  {:<24}  {:>5} {:>7} {:>7}  by",
        "version", "at", "added", "removed", "changed"
    );
    for v in reply["versions"].as_array().into_iter().flatten() {
        let authors: Vec<String> = v["authors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(author)
            .collect();
        let by = if authors.is_empty() {
            "(a node, on its own)".to_owned()
        } else {
            authors.join(", ")
        };
        let rollback = v["rollback_to"]
            .as_u64()
            .map(|to| format!("  rollback to {to}"))
            .unwrap_or_default();
        println!(
            "{:>8}  {:<24}  {:>5} {:>7} {:>7}  {by}{rollback}",
            v["version"],
            time(&v["at_ms"]),
            v["counts"]["added"],
            v["counts"]["removed"],
            v["counts"]["changed"],
        );
    }
    println!(
        "\n{} versions held (settings.history_retention = {}); {} older dropped",
        reply["versions"].as_array().map_or(0, Vec::len),
        reply["retention"],
        reply["trimmed"]
    );
    Ok(())
}

/// `stockade policy show-version N`.
pub fn show_version(args: &ShowVersionArgs) -> Result<()> {
    let path = format!(
        "/v1/policy/history/{}{}",
        args.version,
        if args.document { "?document=true" } else { "" }
    );
    let reply = call(&args.api, "GET", &path, None)?;
    if args.document {
        print!(
            "{}",
            reply["document"]
                .as_str()
                .context("the reply has no document")?
        );
        return Ok(());
    }
    let authors: Vec<String> = reply["authors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(author)
        .collect();
    println!(
        "version {} at {} by {}",
        reply["version"],
        time(&reply["at_ms"]),
        if authors.is_empty() {
            "a node, on its own".to_owned()
        } else {
            authors.join(", ")
        }
    );
    if let Some(to) = reply["rollback_to"].as_u64() {
        println!("a rollback to version {to}");
    }
    for entry in reply["diff"]["entries"].as_array().into_iter().flatten() {
        let (section, key) = (
            entry["section"].as_str().unwrap_or("?"),
            entry["key"].as_str().unwrap_or("?"),
        );
        let change = &entry["change"];
        if let Some(added) = change.get("added") {
            println!(
                "+ {section} {key}: {}",
                added["after"].as_str().unwrap_or("")
            );
        } else if let Some(removed) = change.get("removed") {
            println!(
                "- {section} {key}: {}",
                removed["before"].as_str().unwrap_or("")
            );
        } else if let Some(changed) = change.get("changed") {
            println!(
                "~ {section} {key}:\n    was {}\n    now {}",
                changed["before"].as_str().unwrap_or(""),
                changed["after"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `stockade policy rollback --to N`.
pub fn rollback(args: &RollbackArgs) -> Result<()> {
    let reply = call(
        &args.api,
        "POST",
        "/v1/policy/rollback",
        Some(json!({ "to": args.to })),
    )?;
    println!(
        "restored the policy of version {} as version {}",
        args.to, reply["index"]
    );
    Ok(())
}
