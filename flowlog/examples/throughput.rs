//! Measures the flow log with flow-shaped records: append throughput, bytes
//! on disk, reopen (index rebuild) time and a few query shapes.
//!
//! `cargo run --release -p stockade-flowlog --example throughput [RECORDS] [DIR]`
//! (1 000 000 records in a temporary folder by default).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stockade_flowlog::{FlowLog, FlowLogError, Limits, Record};

/// Roughly what a node records per process-level flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flow {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    src_port: u16,
    dst_port: u16,
    proto: u8,
    verdict: u8,
    direction: u8,
    src_identity: u32,
    dst_identity: u32,
    identity_name: String,
    exe: String,
    packets: u64,
    bytes: u64,
    first_ms: u64,
    last_ms: u64,
}

impl Record for Flow {
    fn time_ms(&self) -> u64 {
        self.last_ms
    }
}

/// A small deterministic generator, so runs are comparable.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const NAMES: [&str; 4] = [
    "prod/web/frontend",
    "prod/api/orders",
    "prod/db/postgres",
    "dev/batch/reports",
];
const EXES: [&str; 4] = [
    "/usr/bin/curl",
    "/usr/local/bin/orders",
    "/usr/lib/postgresql/16/bin/postgres",
    "/usr/bin/python3",
];
const PORTS: [u16; 4] = [443, 8080, 5432, 53];
const START_MS: u64 = 1_750_000_000_000;

/// Flow `i`: about one per millisecond, up to 20 ms out of order.
fn flow(i: u64, rng: &mut XorShift) -> Flow {
    let r = rng.next();
    let k = (r % 4) as usize;
    let host = |n: u64| Ipv4Addr::from(0x0a00_0000 | (n as u32 & 0xffff)).to_ipv6_mapped();
    let last_ms = START_MS + i - (r >> 8) % 20;
    Flow {
        src: host(r >> 16),
        dst: host(r >> 32),
        src_port: 32_768 + (r >> 40) as u16 % 28_000,
        dst_port: PORTS[k],
        proto: 6,
        verdict: (r >> 50) as u8 % 3,
        direction: (r >> 52) as u8 % 2,
        src_identity: 100 + k as u32,
        dst_identity: 200 + ((r >> 54) % 4) as u32,
        identity_name: NAMES[k].to_string(),
        exe: EXES[k].to_string(),
        packets: (r >> 20) % 5_000,
        bytes: (r >> 12) % 10_000_000,
        first_ms: last_ms - (r >> 4) % 60_000,
        last_ms,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn run(dir: &Path, n: u64) -> Result<(), FlowLogError> {
    let limits = Limits::default();
    let mut log: FlowLog<Flow> = FlowLog::open(dir, limits)?;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut batch = Vec::with_capacity(1000);
    let mut i = 0;
    let started = Instant::now();
    while i < n {
        batch.clear();
        batch.extend((i..n.min(i + 1000)).map(|j| flow(j, &mut rng)));
        i += batch.len() as u64;
        log.append(&batch)?;
    }
    let appended = started.elapsed();
    let synced = Instant::now();
    log.sync()?;
    let sync = synced.elapsed();
    let s = log.stats();
    println!(
        "append: {n} records in batches of 1000 in {} = {:.0} records/s (then sync {})",
        ms(appended),
        n as f64 / appended.as_secs_f64(),
        ms(sync)
    );
    println!(
        "disk: {} bytes in {} segments = {:.1} MB per million records ({:.1} B/record)",
        s.bytes,
        s.segments,
        s.bytes as f64 / n as f64,
        s.bytes as f64 / n as f64
    );
    if s.dropped_records > 0 {
        println!(
            "  (the 256 MiB budget dropped {} records)",
            s.dropped_records
        );
    }
    drop(log);

    let t = Instant::now();
    let log: FlowLog<Flow> = FlowLog::open(dir, limits)?;
    println!(
        "reopen (reads every record to rebuild the index): {}",
        ms(t.elapsed())
    );

    // Queries that return many records go last: freeing a million records
    // makes the allocator's next large request slow, which would be charged
    // to the query after it.
    let (all, mid) = (u64::MAX, START_MS + n / 2);
    let shapes: [(&str, u64, u64, Option<u16>, usize); 5] = [
        ("full range, newest 100", 0, all, None, 100),
        (
            "full range, dst_port 5432, newest 1000",
            0,
            all,
            Some(5432),
            1000,
        ),
        (
            "one minute in the middle, no limit",
            mid,
            mid + 60_000,
            None,
            usize::MAX,
        ),
        (
            "full range, dst_port 5432, no limit",
            0,
            all,
            Some(5432),
            usize::MAX,
        ),
        ("full range, no limit", 0, all, None, usize::MAX),
    ];
    for (what, since, until, port, limit) in shapes {
        let t = Instant::now();
        let got = log.query(
            since,
            until,
            |f| port.is_none_or(|p| f.dst_port == p),
            limit,
        )?;
        println!("query {what}: {} records in {}", got.len(), ms(t.elapsed()));
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    match args.next() {
        Some(dir) => run(Path::new(&dir), n)?,
        None => {
            let dir = tempfile::tempdir()?;
            run(dir.path(), n)?;
        }
    }
    Ok(())
}
