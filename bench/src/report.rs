//! The results table.

use std::fmt::Write as _;

use crate::load::PointResult;

/// Every point measured on one system.
#[derive(Debug)]
pub struct SystemRun {
    /// The system's short name.
    pub system: &'static str,
    /// One result per client count, in the plan's order.
    pub points: Vec<PointResult>,
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// The table: per client count, a row per system, then the ratio
/// Stockade/etcd of writes/s and of p50 latency when both were measured.
pub fn table(runs: &[SystemRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>7}  {:<14} {:>10} {:>9} {:>9} {:>7}",
        "clients", "system", "writes/s", "p50 ms", "p99 ms", "errors"
    );
    let rows = runs.iter().map(|r| r.points.len()).max().unwrap_or(0);
    for i in 0..rows {
        for run in runs {
            let Some(p) = run.points.get(i) else {
                continue;
            };
            let _ = writeln!(
                out,
                "{:>7}  {:<14} {:>10.1} {:>9} {:>9} {:>7}",
                p.clients,
                run.system,
                p.writes_per_sec(),
                ms(p.latency_ms(0.5)),
                ms(p.latency_ms(0.99)),
                p.errors
            );
        }
        let find = |name: &str| {
            runs.iter()
                .find(|r| r.system == name)
                .and_then(|r| r.points.get(i))
        };
        if let (Some(s), Some(e)) = (find("stockade"), find("etcd")) {
            let _ = writeln!(
                out,
                "{:>7}  {:<14} {:>10} {:>9}",
                s.clients,
                "stockade/etcd",
                ratio(Some(s.writes_per_sec()), Some(e.writes_per_sec())),
                ratio(s.latency_ms(0.5), e.latency_ms(0.5)),
            );
        }
    }
    out
}
