//! Renders a synthetic chaos run with [`stockade_chaos::timeline`], for
//! looking at: `cargo run -p stockade-chaos --example timeline_sample -- OUT.svg [OPS]`.

use stockade_chaos::timeline::{render_svg, FaultSpan, OpPoint, Outcome, Timeline};

/// xorshift64*: enough randomness for a picture, without a dependency.
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .unwrap_or_else(|| "/tmp/timeline-sample.svg".to_string());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(4000);
    let duration_s = 60.0;
    let faults = vec![
        FaultSpan {
            start_s: 10.0,
            end_s: 25.0,
            label: "partition {n1} | {n2 n3}".into(),
        },
        FaultSpan {
            start_s: 18.0,
            end_s: 30.0,
            label: "loss 30% n2<->n3".into(),
        },
        FaultSpan {
            start_s: 40.0,
            end_s: 40.0,
            label: "kill -9 n3".into(),
        },
    ];
    let leaders = vec![
        (0.4, Some(1)),
        (11.2, None),
        (12.9, Some(2)),
        (40.0, None),
        (41.5, Some(1)),
    ];
    let kinds = ["write", "read", "lin-read", "add", "read-set"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let ops = (0..n)
        .map(|i| {
            let start_s = i as f64 / n as f64 * duration_s;
            let no_leader = (11.2..12.9).contains(&start_s) || (40.0..41.5).contains(&start_s);
            let faulty = (10.0..30.0).contains(&start_s);
            // Log-normal-ish latency around 3 ms, slower under faults.
            let mut latency_ms = 3.0 * (rng.next() * 2.5 - 0.8).exp();
            if faulty && rng.next() < 0.3 {
                latency_ms *= 10.0 + 90.0 * rng.next();
            }
            let roll = rng.next();
            let outcome = if no_leader && roll < 0.6 || faulty && roll < 0.03 {
                latency_ms = 5000.0 + rng.next() * 50.0;
                Outcome::Unknown
            } else if no_leader && roll < 0.9 || roll < 0.01 {
                Outcome::Fail
            } else {
                Outcome::Ok
            };
            if rng.next() < 0.02 {
                latency_ms = 0.0;
            }
            let kind = kinds[(rng.next() * kinds.len() as f64) as usize % kinds.len()];
            OpPoint {
                start_s,
                latency_ms,
                outcome,
                kind: kind.to_string(),
            }
        })
        .collect();
    let timeline = Timeline {
        title: "register + set workload, 3 nodes, partition & loss & kill -9 (synthetic)".into(),
        duration_s,
        ops,
        faults,
        leaders,
    };
    let svg = render_svg(&timeline);
    if let Err(e) = std::fs::write(&out, &svg) {
        eprintln!("writing {out}: {e}");
        std::process::exit(1);
    }
    println!("{out}: {} bytes", svg.len());
}
