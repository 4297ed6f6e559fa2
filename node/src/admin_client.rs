//! The CLI's side of the admin API: `token create`, `leave`, `remove`,
//! `voters`, `fingerprint`, `alerts`.

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use crate::cli::{AlertsArgs, ApiArgs, FingerprintArgs, RemoveArgs, TokenCreateArgs, VotersArgs};
use crate::inventory::ExecutableHasher;

/// Calls the admin API and reads its JSON reply; an HTTP error becomes an
/// error with the API's message.
pub(crate) fn call(api: &ApiArgs, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    serde_json::from_str(&call_text(api, method, path, body)?)
        .with_context(|| format!("reading the reply of {path}"))
}

/// Calls the admin API and returns its reply as text.
pub(crate) fn call_text(
    api: &ApiArgs,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<String> {
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let request = authorized(api, method, &url);
    let sent = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    reply_text(method, &url, sent)
}

/// `PUT`s a text body (a TOML policy document) to the admin API and reads
/// its JSON reply.
pub(crate) fn put_text(api: &ApiArgs, path: &str, body: &str) -> Result<Value> {
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let sent = authorized(api, "PUT", &url)
        .set("Content-Type", "text/plain")
        .send_string(body);
    serde_json::from_str(&reply_text("PUT", &url, sent)?)
        .with_context(|| format!("reading the reply of {path}"))
}

/// `GET`s raw bytes (a backup file) from the admin API.
pub(crate) fn get_bytes(api: &ApiArgs, path: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    match authorized(api, "GET", &url).call() {
        Ok(reply) => {
            let mut bytes = Vec::new();
            reply
                .into_reader()
                .take(1 << 30)
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading the reply of {url}"))?;
            Ok(bytes)
        }
        Err(e) => reply_text("GET", &url, Err(e)).map(String::into_bytes),
    }
}

/// Sends raw bytes (a backup file) to the admin API and reads its JSON reply.
pub(crate) fn send_bytes(api: &ApiArgs, method: &str, path: &str, body: &[u8]) -> Result<Value> {
    let url = format!("{}{path}", api.url.trim_end_matches('/'));
    let sent = authorized(api, method, &url)
        .set("Content-Type", "application/octet-stream")
        .send_bytes(body);
    serde_json::from_str(&reply_text(method, &url, sent)?)
        .with_context(|| format!("reading the reply of {path}"))
}

fn authorized(api: &ApiArgs, method: &str, url: &str) -> ureq::Request {
    ureq::request(method, url).set("Authorization", &format!("Bearer {}", api.token))
}

/// The text of a reply; an HTTP error becomes an error with the API's message.
fn reply_text(
    method: &str,
    url: &str,
    sent: std::result::Result<ureq::Response, ureq::Error>,
) -> Result<String> {
    match sent {
        Ok(reply) => reply
            .into_string()
            .with_context(|| format!("reading the reply of {url}")),
        Err(ureq::Error::Status(code, reply)) => {
            let text = reply.into_string().unwrap_or_default();
            bail!("{method} {url}: HTTP {code}: {text}")
        }
        Err(e) => Err(e).with_context(|| format!("{method} {url}")),
    }
}

/// `stockade token create`.
pub fn create_join_token(args: &TokenCreateArgs) -> Result<()> {
    let reply = call(
        &args.api,
        "POST",
        "/v1/join-tokens",
        Some(json!({ "ttl_seconds": args.ttl.as_secs() })),
    )?;
    let token = reply["token"].as_str().context("the reply has no token")?;
    println!("{token}");
    Ok(())
}

/// `stockade leave`.
pub fn leave(api: &ApiArgs) -> Result<()> {
    let status = call(api, "GET", "/v1/status", None)?;
    let id = status["node_id"]
        .as_u64()
        .context("the status has no node_id")?;
    call(api, "DELETE", &format!("/v1/members/{id}"), None)?;
    println!("node {id} left the cluster");
    Ok(())
}

/// `stockade remove NODE`.
pub fn remove(args: &RemoveArgs) -> Result<()> {
    call(
        &args.api,
        "DELETE",
        &format!("/v1/members/{}", args.node),
        None,
    )?;
    println!("node {} removed", args.node);
    Ok(())
}

/// `stockade voters N`.
pub fn voters(args: &VotersArgs) -> Result<()> {
    let reply = call(
        &args.api,
        "PUT",
        "/v1/members/voters",
        Some(json!({ "voters": args.voters })),
    )?;
    // The membership follows on the leader's next check, not at once.
    println!(
        "the cluster keeps {} voters from policy version {}; `GET /v1/status` shows the voters as they change",
        args.voters, reply["index"]
    );
    Ok(())
}

/// `stockade alerts`: the newest alerts, then each sink's progress.
pub fn alerts(args: &AlertsArgs) -> Result<()> {
    let mut path = format!("/v1/alerts?limit={}", args.limit);
    if let Some(kind) = &args.kind {
        path.push_str(&format!("&kind={kind}"));
    }
    let reply = call(&args.api, "GET", &path, None)?;
    println!(
        "{:>6}  {:<24} {:<18} {:<10} {:>6}  {:<24} summary",
        "seq", "last seen", "kind", "class", "count", "delivery"
    );
    for alert in reply["alerts"].as_array().into_iter().flatten() {
        let last_seen = alert["last_seen_ms"].as_u64().map_or_else(
            || "?".into(),
            |ms| {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
                humantime::format_rfc3339_millis(at).to_string()
            },
        );
        let delivery: Vec<String> = alert["delivery"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(sink, state)| format!("{sink}:{}", state.as_str().unwrap_or("?")))
            .collect();
        println!(
            "{:>6}  {:<24} {:<18} {:<10} {:>6}  {:<24} {}",
            alert["seq"],
            last_seen,
            alert["kind"].as_str().unwrap_or("?"),
            alert["class"].as_str().unwrap_or("?"),
            alert["count"],
            delivery.join(" "),
            alert["summary"].as_str().unwrap_or(""),
        );
    }
    println!();
    for sink in reply["sinks"].as_array().into_iter().flatten() {
        println!(
            "sink {}: delivered through {}, {} pending{}",
            sink["name"].as_str().unwrap_or("?"),
            sink["delivered_through"],
            sink["pending"],
            if sink["failing"] == true {
                ", FAILING"
            } else {
                ""
            },
        );
    }
    Ok(())
}

/// `stockade fingerprint PATH... --zone Z --app A`: hashes each file and
/// registers it for the identity, which is defined first if it is new.
pub fn fingerprint(args: &FingerprintArgs) -> Result<()> {
    let identity = json!({ "zone": args.zone, "app": args.app, "service": args.service });
    let known = call(&args.api, "GET", "/v1/identities", None)?;
    let defined = known
        .as_array()
        .is_some_and(|all| all.iter().any(|i| i["name"] == identity));
    if !defined {
        call(&args.api, "POST", "/v1/identities", Some(identity.clone()))?;
    }
    let mut hasher = ExecutableHasher::new();
    for path in &args.paths {
        let (_, sha256) = hasher.hash(path)?;
        let body = json!({ "sha256": sha256.to_string(), "identity": identity, "path": path.display().to_string() });
        let reply = call(&args.api, "POST", "/v1/fingerprints", Some(body))?;
        println!(
            "{sha256}  {}  {}/{}/{} (policy version {})",
            path.display(),
            args.zone,
            args.app,
            args.service,
            reply["index"]
        );
    }
    Ok(())
}
