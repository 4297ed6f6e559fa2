//! The table, the ratios and the JSON report.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::chacha::ChaCha;
use super::measure::ModeResult;

/// CPU nanoseconds per byte received.
fn ns_per_byte(ns: u64, bytes: u64) -> f64 {
    ns as f64 / (bytes.max(1)) as f64
}

fn find<'a>(results: &'a [ModeResult], mode: &str) -> Option<&'a ModeResult> {
    results.iter().find(|r| r.mode == mode)
}

/// The table and the ratios, as printed.
pub fn text(results: &[ModeResult], chacha: Option<&ChaCha>, seconds: f64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nsingle TCP stream host 1 → host 2 for {seconds} s; CPU during the transfer\n"
    );
    let _ = writeln!(
        out,
        "{:<13} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "mode", "Gbit/s", "CPU-s", "CPU-s", "ns/B", "ns/B", "setup", "setup", "setup"
    );
    let _ = writeln!(
        out,
        "{:<13} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "", "machine", "parties", "machine", "parties", "p50 µs", "p99 µs", "mean µs"
    );
    for r in results {
        let _ = writeln!(
            out,
            "{:<13} {:>8.2} {:>9.2} {:>9.2} {:>9.3} {:>9.3} {:>9} {:>9} {:>9.0}",
            r.mode,
            r.gbits(),
            r.machine_cpu_ns as f64 / 1e9,
            r.parties_cpu_ns() as f64 / 1e9,
            ns_per_byte(r.machine_cpu_ns, r.bytes),
            ns_per_byte(r.parties_cpu_ns(), r.bytes),
            r.setup.p50_us,
            r.setup.p99_us,
            r.setup.mean_us,
        );
    }
    let _ = writeln!(out, "\nCPU-s of each party during the transfer:");
    for r in results {
        let parties: Vec<String> = r
            .parties
            .iter()
            .map(|p| format!("{} {:.2}", p.name, p.ns as f64 / 1e9))
            .collect();
        let _ = writeln!(out, "  {:<13} {}", r.mode, parties.join(", "));
    }
    if let Some(c) = chacha {
        let _ = writeln!(
            out,
            "\nChaCha20-Poly1305 seal, one core, 64 KiB buffers: {:.2} GB/s = {:.2} Gbit/s",
            c.gbytes(),
            c.gbits()
        );
    }
    let _ = writeln!(out, "\nratios:");
    for line in ratios(results, chacha) {
        let _ = writeln!(out, "  {line}");
    }
    for r in results {
        for (host, tunnel) in &r.tunnel_status {
            let _ = writeln!(out, "\n{} node {host} status.tunnel: {tunnel}", r.mode);
        }
        if r.mode == "stockade" && r.tunnel_status.is_empty() {
            let _ = writeln!(
                out,
                "\nstockade: the nodes' /v1/status has no `tunnel` field"
            );
        }
    }
    out
}

/// The ratios that can be computed from the modes that ran.
fn ratios(results: &[ModeResult], chacha: Option<&ChaCha>) -> Vec<String> {
    let mut lines = Vec::new();
    let plain = find(results, "plain");
    let wg = find(results, "wireguard-go");
    let stockade = find(results, "stockade");
    if let (Some(s), Some(w)) = (stockade, wg) {
        let ratio = s.gbits() / w.gbits().max(1e-9);
        let verdict = if ratio >= 5.0 { "met" } else { "NOT met" };
        lines.push(format!(
            "stockade / wireguard-go throughput: {ratio:.2}× (target ≥ 5×: {verdict})"
        ));
    }
    if let Some(p) = plain {
        for r in [wg, stockade].into_iter().flatten() {
            lines.push(format!(
                "{} / plain throughput: {:.2}",
                r.mode,
                r.gbits() / p.gbits().max(1e-9)
            ));
        }
        for r in [wg, stockade].into_iter().flatten() {
            let base = ns_per_byte(p.machine_cpu_ns, p.bytes).max(1e-12);
            lines.push(format!(
                "{} CPU per byte relative to plain: {:.2}× (machine), {:.2}× (parties)",
                r.mode,
                ns_per_byte(r.machine_cpu_ns, r.bytes) / base,
                ns_per_byte(r.parties_cpu_ns(), r.bytes)
                    / ns_per_byte(p.parties_cpu_ns(), p.bytes).max(1e-12),
            ));
        }
    }
    if let Some(c) = chacha {
        for r in [wg, stockade].into_iter().flatten() {
            lines.push(format!(
                "{} throughput / one core's ChaCha20-Poly1305: {:.2}",
                r.mode,
                r.gbits() / c.gbits().max(1e-9)
            ));
        }
    }
    if lines.is_empty() {
        lines.push("(none: run more than one mode)".into());
    }
    lines
}

/// The machine-readable report.
pub fn json(results: &[ModeResult], chacha: Option<&ChaCha>, seconds: f64) -> Value {
    let modes: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "mode": r.mode,
                "bytes": r.bytes,
                "secs": r.secs,
                "gbit_per_s": r.gbits(),
                "machine_cpu_s": r.machine_cpu_ns as f64 / 1e9,
                "parties_cpu_s": r.parties_cpu_ns() as f64 / 1e9,
                "machine_cpu_ns_per_byte": ns_per_byte(r.machine_cpu_ns, r.bytes),
                "parties_cpu_ns_per_byte": ns_per_byte(r.parties_cpu_ns(), r.bytes),
                "parties": r.parties.iter().map(|p| json!({"name": p.name, "cpu_s": p.ns as f64 / 1e9})).collect::<Vec<_>>(),
                "setup_us": {
                    "count": r.setup.count,
                    "p50": r.setup.p50_us,
                    "p99": r.setup.p99_us,
                    "mean": r.setup.mean_us,
                    "max": r.setup.max_us,
                },
                "tunnel_status": r.tunnel_status.iter().map(|(h, t)| json!({"node": h, "tunnel": t})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "seconds": seconds,
        "modes": modes,
        "chacha20_poly1305_one_core": chacha.map(|c| json!({
            "bytes": c.bytes,
            "secs": c.secs,
            "gbyte_per_s": c.gbytes(),
            "gbit_per_s": c.gbits(),
        })),
        "ratios": ratios(results, chacha),
    })
}
