//! Measurement 1: TCP connections per second from namespace A to namespace
//! B over a veth pair, with no firewall, with Stockade's dataplane holding
//! more and more rules, and with iptables and nftables for comparison.

use std::path::Path;

use anyhow::{ensure, Context};

use super::firewall::Installed;
use super::netfilter::{Kind, Ruleset};
use super::veth::{server, Client, ClientCgroup, Server, VethPair};
use crate::interrupt::Interrupt;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Connections per measured run.
    pub connections: u64,
    /// Measured runs per configuration (the median is reported).
    pub repeats: usize,
    /// Unmeasured connections before the runs of each configuration.
    pub warmup: u64,
    /// Stockade rule counts, one configuration each.
    pub stockade_rules: Vec<usize>,
    /// Rules (iptables) and addresses (nftables) of the netfilter peers.
    pub netfilter_rules: usize,
}

/// The runs of one configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// What was measured, for the table.
    pub name: String,
    /// The rate of each run, connections per second.
    pub rates: Vec<f64>,
}

impl Config {
    /// The median of the runs.
    pub fn median(&self) -> f64 {
        let mut rates = self.rates.clone();
        rates.sort_by(f64::total_cmp);
        match rates.len() {
            0 => 0.0,
            n if n % 2 == 1 => rates[n / 2],
            n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
        }
    }
}

/// Runs every configuration of `plan`, no firewall first.
pub fn measure(plan: &Plan, netcheck: &Path, interrupt: &Interrupt) -> anyhow::Result<Vec<Config>> {
    let pair = VethPair::new().context("creating namespaces A and B")?;
    let cgroup = ClientCgroup::new()?;
    let _server = Server::start(&pair, netcheck)?;
    let client = Client {
        netns: pair.client_netns(),
        cgroup: cgroup.client(),
        netcheck,
    };
    let mut configs = Vec::new();

    configs.push(runs(plan, &client, "no firewall".into(), interrupt)?);

    for &rules in &plan.stockade_rules {
        interrupt.check()?;
        let name = format!(
            "stockade, {rules} rule{}",
            if rules == 1 { "" } else { "s" }
        );
        eprintln!("conns: {name}: loading");
        let mut installed = Installed::install(cgroup.subtree(), rules, netcheck, server())
            .with_context(|| format!("installing {name}"))?;
        let (policy, ipcache) = installed.entries();
        installed
            .check_enforces(&client)
            .with_context(|| format!("checking that {name} enforces"))?;
        eprintln!(
            "conns: {name}: {policy} policy and {ipcache} address entries; \
             the flow is refused (EPERM) without its rule and allowed with it"
        );
        configs.push(runs(plan, &client, name, interrupt)?);
    }

    for kind in [Kind::Iptables, Kind::Nftables] {
        interrupt.check()?;
        let n = plan.netfilter_rules;
        let name = match kind {
            Kind::Iptables => format!("iptables, {n} rules (linear chain)"),
            Kind::Nftables => format!("nftables, {n} addresses (set)"),
        };
        eprintln!("conns: {name}: loading");
        let _ruleset = Ruleset::load(&pair, kind, n).with_context(|| format!("loading {name}"))?;
        configs.push(runs(plan, &client, name, interrupt)?);
    }
    Ok(configs)
}

/// The warm-up, then the measured runs of one configuration.
fn runs(
    plan: &Plan,
    client: &Client,
    name: String,
    interrupt: &Interrupt,
) -> anyhow::Result<Config> {
    if plan.warmup > 0 {
        client
            .rate(plan.warmup)
            .with_context(|| format!("{name}: warm-up"))?;
    }
    let mut rates = Vec::new();
    for run in 1..=plan.repeats {
        interrupt.check()?;
        let rate = client
            .rate(plan.connections)
            .with_context(|| format!("{name}: run {run}"))?;
        ensure!(rate > 0.0, "{name}: no connection went through");
        eprintln!(
            "conns: {name}: run {run}: {} connections, {rate:.0}/s",
            plan.connections
        );
        rates.push(rate);
    }
    Ok(Config { name, rates })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_run() {
        let config = |rates: &[f64]| Config {
            name: String::new(),
            rates: rates.to_vec(),
        };
        assert_eq!(config(&[3.0, 1.0, 2.0]).median(), 2.0);
        assert_eq!(config(&[4.0, 1.0, 2.0, 3.0]).median(), 2.5);
    }
}
