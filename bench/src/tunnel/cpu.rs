//! CPU time, from procfs: the whole machine's (`/proc/stat`) and one
//! process's (`/proc/PID/stat`), in nanoseconds.

use anyhow::Context;

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

fn ticks_to_ns(ticks: u64) -> u64 {
    ticks.saturating_mul(1_000_000_000) / ticks_per_second()
}

/// CPU time every CPU of the machine spent busy so far: user + nice +
/// system + irq + softirq (idle, iowait, steal and the guest times, which
/// are already in user, left out).
pub fn machine_ns() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("no `cpu` line in /proc/stat")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice
    let busy: u64 = [0, 1, 2, 5, 6]
        .iter()
        .map(|i| fields.get(*i).copied().unwrap_or(0))
        .sum();
    Ok(ticks_to_ns(busy))
}

/// User + system CPU time of process `pid` (all its threads, live and
/// exited) so far; `None` once it is gone.
pub fn process_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields are counted
    // from the last `)`. utime and stime are fields 14 and 15 (from 1).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ticks_to_ns(utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_the_machine_have_used_some_cpu() {
        let mut x: u64 = 0;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1, "keeps the loop");
        assert!(process_ns(std::process::id()).is_some_and(|ns| ns > 0));
        assert!(machine_ns().is_ok_and(|ns| ns > 0));
        assert_eq!(process_ns(u32::MAX), None);
    }
}
