//! The CLI's view of what the cluster observed: `stockade inventory`,
//! `stockade flows` and `stockade topology`.

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::admin_client::{call, call_text};
use crate::cli::{FlowsArgs, InventoryArgs, TopologyArgs};
use crate::clock::now_ms;

/// `stockade inventory`: every node's workloads as a table.
pub fn inventory(args: &InventoryArgs) -> Result<()> {
    let mut query = Vec::new();
    if let Some(zone) = &args.zone {
        query.push(format!("zone={}", encode(zone)));
    }
    if let Some(app) = &args.app {
        query.push(format!("app={}", encode(app)));
    }
    if let Some(node) = args.node {
        query.push(format!("node={node}"));
    }
    if args.unknown {
        query.push("unknown=true".into());
    }
    let path = format!("/v1/inventory?{}", query.join("&"));
    let entries = call(&args.api, "GET", &path, None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{:<10} {:<16} {:>5}  {:<34} {:<10} {:<16} {:<24} {:<14} listening",
        "node", "status", "procs", "executable", "user", "sha256", "identity", "cgroup"
    );
    for entry in entries.as_array().into_iter().flatten() {
        let listening: Vec<String> = entry["listening"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| format!("{}/{}", text(&l["protocol"]), l["port"]))
            .collect();
        let identity = match entry.get("identity") {
            Some(i) => format!(
                "{}/{}/{}",
                text(&i["zone"]),
                text(&i["app"]),
                text(&i["service"])
            ),
            None => match entry.get("zone") {
                Some(zone) => format!("{}/(unknown)", text(zone)),
                None => "(unknown)".into(),
            },
        };
        let status = match text(&entry["status"]).as_str() {
            "identified" => "identified".to_owned(),
            other => other.to_uppercase(),
        };
        println!(
            "{:<10} {:<16} {:>5}  {:<34} {:<10} {:<16} {:<24} {:<14} {}",
            text(&entry["node_name"]),
            status,
            entry["processes"],
            text(&entry["exe"]),
            text(&entry["user"]),
            text(&entry["sha256"]).chars().take(16).collect::<String>(),
            identity,
            text(&entry["cgroup"]),
            listening.join(" "),
        );
    }
    Ok(())
}

/// `stockade flows`: the newest flow records of every node.
pub fn flows(args: &FlowsArgs) -> Result<()> {
    let mut query = vec![format!("limit={}", args.limit)];
    for filter in &args.filters {
        let Some((name, value)) = filter.split_once('=') else {
            bail!("`{filter}` is not NAME=VALUE");
        };
        query.push(format!("{name}={}", encode(value)));
    }
    if let Some(since) = args.since {
        query.push(format!("since_ms={}", since_ms(since)));
    }
    if args.jsonl {
        query.push("format=jsonl".into());
        let body = call_text(
            &args.api,
            "GET",
            &format!("/v1/flows?{}", query.join("&")),
            None,
        )?;
        print!("{body}");
        return Ok(());
    }
    let reply = call(
        &args.api,
        "GET",
        &format!("/v1/flows?{}", query.join("&")),
        None,
    )?;
    println!(
        "{:<24} {:>4} {:<7} {:<6} {:<40} {:<40} {:>7}  rule",
        "last seen", "node", "dir", "verdict", "source", "destination", "conns"
    );
    for record in reply["records"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:>4} {:<7} {:<6} {:<40} {:<40} {:>7}  {}",
            time(&record["last_ms"]),
            record["node"],
            text(&record["direction"]),
            text(&record["action"]),
            end(&record["src"]),
            end(&record["dst"]),
            record["connections"],
            rule(&record["rule"]),
        );
    }
    for missing in reply["missing"].as_array().into_iter().flatten() {
        eprintln!(
            "partial result: node {} ({}) did not answer: {}",
            missing["node"],
            text(&missing["name"]),
            text(&missing["error"]),
        );
    }
    Ok(())
}

/// `stockade topology`: the graph as a summary, its DOT source, or an SVG
/// picture rendered by Graphviz.
pub fn topology(args: &TopologyArgs) -> Result<()> {
    let mut query = vec![format!("level={}", encode(&args.level))];
    if let Some(since) = args.since {
        query.push(format!("since_ms={}", since_ms(since)));
    }
    if args.dot || args.svg.is_some() {
        query.push("format=dot".into());
        let dot = call_text(
            &args.api,
            "GET",
            &format!("/v1/topology?{}", query.join("&")),
            None,
        )?;
        if args.dot {
            print!("{dot}");
        }
        if let Some(path) = &args.svg {
            let svg = render_svg(&dot)?;
            std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        return Ok(());
    }
    let reply = call(
        &args.api,
        "GET",
        &format!("/v1/topology?{}", query.join("&")),
        None,
    )?;
    for edge in reply["edges"].as_array().into_iter().flatten() {
        let ports: Vec<String> = edge["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p.to_string())
            .collect();
        println!(
            "{} -> {}  {}/{}  {} connections ({} allowed, {} denied){}",
            text(&edge["from"]),
            text(&edge["to"]),
            text(&edge["protocol"]),
            ports.join(","),
            edge["connections"],
            edge["allowed"],
            edge["denied"],
            if edge["encrypted"] == true {
                ", encrypted"
            } else {
                ""
            },
        );
    }
    for missing in reply["missing"].as_array().into_iter().flatten() {
        eprintln!(
            "partial result: node {} did not answer: {}",
            missing["node"],
            text(&missing["error"])
        );
    }
    Ok(())
}

/// SVG of a DOT graph, by Graphviz's `dot` (Debian's `graphviz` package).
pub fn render_svg(dot: &str) -> Result<Vec<u8>> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running Graphviz's `dot` (install the `graphviz` package)")?;
    child
        .stdin
        .take()
        .context("dot's standard input")?
        .write_all(dot.as_bytes())
        .context("writing the graph to dot")?;
    let out = child.wait_with_output().context("waiting for dot")?;
    if !out.status.success() {
        bail!(
            "dot could not render the graph: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn since_ms(since: humantime::Duration) -> u64 {
    now_ms().saturating_sub(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// A query-string value, percent-encoded.
pub(crate) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn time(ms: &Value) -> String {
    ms.as_u64().map_or_else(
        || "?".into(),
        |ms| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            humantime::format_rfc3339_millis(at).to_string()
        },
    )
}

/// One end of a flow for people: who it is, where, and which process.
fn end(end: &Value) -> String {
    let who = match end.get("identity") {
        Some(i) if !i.is_null() => {
            format!(
                "{}/{}/{}",
                text(&i["zone"]),
                text(&i["app"]),
                text(&i["service"])
            )
        }
        _ => text(&end["class"]),
    };
    let process = match end.get("process") {
        Some(p) if !p.is_null() => format!(" {}[{}]", text(&p["exe"]), p["pid"]),
        _ => String::new(),
    };
    format!("{who} {}:{}{process}", text(&end["ip"]), end["port"])
}

fn rule(rule: &Value) -> String {
    match rule {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(","),
        other => text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("prod/web api"), "prod%2Fweb%20api");
        assert_eq!(encode("a-b_c.d~"), "a-b_c.d~");
    }
}
