//! The clients: each picks a random node and a random operation on the
//! registers (zones, whose description holds the value) and the sets
//! (rules, one per element), runs it through the admin API and records it;
//! and an intruder whose connections the kernel must refuse, which is what
//! raises alerts.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng as StdRng;
use reqwest::Method;
use serde_json::{json, Value};

use crate::api::{Answer, ApiClient};
use crate::history::{Completion, Entry, History, Op, Outcome, Seen};
use crate::netlab::Lab;

/// The zone of the workloads the policy names; it enforces.
pub const ZONE: &str = "chaos";

/// The policy the run starts from: the enforcing zone, the identities the
/// set rules name, and the intruder, known by its cgroup and allowed
/// nothing.
pub fn initial_policy() -> String {
    format!(
        "[[zone]]\nname = \"{ZONE}\"\nmode = \"enforce\"\n\
         [[identity]]\nzone = \"{ZONE}\"\napp = \"a\"\nservice = \"main\"\n\
         [[identity]]\nzone = \"{ZONE}\"\napp = \"b\"\nservice = \"main\"\n\
         [[identity]]\nzone = \"{ZONE}\"\napp = \"intruder\"\nservice = \"main\"\n\
         [[identity_rule]]\nname = \"intruder\"\n\
         identity = {{ zone = \"{ZONE}\", app = \"intruder\", service = \"main\" }}\n\
         match = {{ cgroup_path = \"/intruder\" }}\n"
    )
}

/// What the clients do.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// Registers, numbered from 0.
    pub registers: u32,
    /// Sets, numbered from 0.
    pub sets: u32,
    /// The pause between one client's operations.
    pub think: Duration,
}

/// The zone that holds register `key`.
fn register_zone(key: u32) -> String {
    format!("r{key}")
}

/// The description that marks a rule as element `element` of set `key`.
fn set_marker(key: u32) -> String {
    format!("chaos s{key} e")
}

/// Runs `op` on host `host`'s node for `client` and records it.
pub async fn perform(
    api: &ApiClient,
    history: &History,
    client: usize,
    host: usize,
    op: Op,
) -> Entry {
    let call = history.call(client, host, op.clone());
    let completion = match op {
        Op::Write { key, value } => {
            let body = json!({"mode": "learn", "description": value.to_string()});
            let path = format!("/v1/zones/{}", register_zone(key));
            write(api.call(host, Method::PUT, &path, Some(&body)).await)
        }
        Op::Add { key, element } => {
            let port = 10_000 + element % 50_000;
            let body = json!({
                "from": {"zone": ZONE, "app": "a", "service": "main"},
                "to": {"zone": ZONE, "app": "b", "service": "main"},
                "protocol": "tcp",
                "ports": [port.to_string()],
                "action": "allow",
                "owner": "chaos",
                "description": format!("{}{element}", set_marker(key)),
            });
            write(api.call(host, Method::POST, "/v1/rules", Some(&body)).await)
        }
        Op::Read { key, linearizable } => {
            let consistency = if linearizable {
                "linearizable"
            } else {
                "local"
            };
            let path = format!("/v1/zones/{}?consistency={consistency}", register_zone(key));
            read(
                api.call(host, Method::GET, &path, None).await,
                |status, body| match status {
                    404 => Some(Seen::Register(None)),
                    200 => body["description"]
                        .as_str()
                        .and_then(|d| d.parse().ok())
                        .map(|v| Seen::Register(Some(v))),
                    _ => None,
                },
            )
        }
        Op::ReadSet { key } => {
            let answer = api
                .call(
                    host,
                    Method::GET,
                    "/v1/rules?consistency=linearizable",
                    None,
                )
                .await;
            read(answer, |status, body| {
                (status == 200)
                    .then(|| body.as_array().map(|rules| set_elements(rules, key)))
                    .flatten()
                    .map(Seen::Set)
            })
        }
    };
    history.finish(call, completion)
}

/// The elements of set `key` among `rules`.
fn set_elements(rules: &[Value], key: u32) -> BTreeSet<u64> {
    let marker = set_marker(key);
    rules
        .iter()
        .filter_map(|rule| {
            rule["spec"]["description"]
                .as_str()
                .or_else(|| rule["description"].as_str())?
                .strip_prefix(&marker)?
                .parse()
                .ok()
        })
        .collect()
}

/// A write's outcome: a refusal (4xx) or a request never sent did
/// nothing; anything else short of a 200 may have been committed.
fn write(answer: Answer) -> Completion {
    match answer {
        Answer::Replied { status: 200, body } => Completion {
            outcome: Outcome::Ok,
            seen: None,
            index: body["index"].as_u64(),
            error: None,
        },
        Answer::Replied { status, body } => Completion {
            outcome: if (400..500).contains(&status) {
                Outcome::Fail
            } else {
                Outcome::Info
            },
            seen: None,
            index: None,
            error: Some(format!("{status}: {}", short(&body))),
        },
        Answer::NotSent(e) => failed(Outcome::Fail, e),
        Answer::Lost(e) => failed(Outcome::Info, e),
    }
}

/// A read's outcome: reads change nothing, so any answer but a value is a
/// failure.
fn read(answer: Answer, seen: impl FnOnce(u16, &Value) -> Option<Seen>) -> Completion {
    match answer {
        Answer::Replied { status, body } => match seen(status, &body) {
            Some(seen) => Completion {
                outcome: Outcome::Ok,
                seen: Some(seen),
                index: None,
                error: None,
            },
            None => failed(Outcome::Fail, format!("{status}: {}", short(&body))),
        },
        Answer::NotSent(e) | Answer::Lost(e) => failed(Outcome::Fail, e),
    }
}

fn failed(outcome: Outcome, error: String) -> Completion {
    Completion {
        outcome,
        seen: None,
        index: None,
        error: Some(error),
    }
}

fn short(body: &Value) -> String {
    let text = body["error"]
        .as_str()
        .map_or_else(|| body.to_string(), str::to_owned);
    text.chars().take(160).collect()
}

/// One client: random operations on random hosts until `stop`.
pub async fn client(
    id: usize,
    api: ApiClient,
    history: Arc<History>,
    config: WorkloadConfig,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let hosts: Vec<usize> = api.hosts().collect();
    // Values are unique over the run: the client's number, then a counter.
    let mut next = (id as u64 + 1) * 1_000_000_000;
    while !stop.load(Ordering::Relaxed) {
        let host = hosts[rng.gen_range(0..hosts.len())];
        let op = match rng.gen_range(0..100) {
            0..35 => {
                next += 1;
                Op::Write {
                    key: rng.gen_range(0..config.registers),
                    value: next,
                }
            }
            35..60 => Op::Read {
                key: rng.gen_range(0..config.registers),
                linearizable: true,
            },
            60..70 => Op::Read {
                key: rng.gen_range(0..config.registers),
                linearizable: false,
            },
            70..90 => {
                next += 1;
                Op::Add {
                    key: rng.gen_range(0..config.sets),
                    element: next,
                }
            }
            _ => Op::ReadSet {
                key: rng.gen_range(0..config.sets),
            },
        };
        perform(&api, &history, id, host, op).await;
        tokio::time::sleep(config.think).await;
    }
}

/// Connects `count` times from cgroup `cgroup` of host `host` to `target`
/// with `netcheck`, going on after refusals; returns how many the firewall
/// denied (`None` when netcheck did not say) and what netcheck printed.
pub fn denied_connects(
    lab: &Lab,
    netcheck: &Path,
    host: usize,
    cgroup: &str,
    target: &str,
    count: u32,
) -> (Option<u32>, String) {
    // Out of the harness's process group, like the nodes: Ctrl-C is the
    // harness's to handle.
    let out = lab
        .workload(host, cgroup, &netcheck.to_string_lossy())
        .args(["tcp", target, "--count", &count.to_string(), "--keep-going"])
        .process_group(0)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => return (None, format!("running {}: {e}", netcheck.display())),
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let denied = text
        .split(", ")
        .find_map(|part| part.strip_suffix(" denied by the firewall\n"))
        .and_then(|n| n.parse().ok());
    (denied, text)
}

/// What the intruder tried and what the kernels did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Intrusions {
    /// Connections attempted.
    pub attempted: u32,
    /// Connections the kernel refused.
    pub denied: u32,
    /// Runs whose outcome netcheck did not report, with what it printed.
    pub unclear: Vec<String>,
}

/// The intruder: every `every`, from a random host in `hosts`, a few
/// connections to `target` that the enforcing zone must refuse, whether or
/// not that host's daemon runs. Until `stop`.
pub fn intruder(
    lab: &Lab,
    netcheck: &Path,
    hosts: &[usize],
    target: &str,
    every: Duration,
    seed: u64,
    stop: &AtomicBool,
) -> Intrusions {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x001f_7de5);
    let mut seen = Intrusions::default();
    while !stop.load(Ordering::Relaxed) {
        let host = hosts[rng.gen_range(0..hosts.len())];
        let count = 3;
        seen.attempted += count;
        match denied_connects(lab, netcheck, host, "intruder", target, count) {
            (Some(denied), _) => seen.denied += denied,
            (None, text) => seen.unclear.push(format!("host {host}: {text}")),
        }
        std::thread::sleep(every);
    }
    seen
}
