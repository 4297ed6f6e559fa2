//! The netfilter peers, in the server's namespace only: a linear iptables
//! INPUT chain (non-matching DROPs, then the ACCEPT of the real flow), and
//! an nftables set of blocked addresses that one rule looks up. Dropping a
//! rule set flushes it.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context};

use super::veth::{in_netns, run, VethPair, CLIENT_ADDR, SERVER_PORT};

/// Which netfilter front end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `iptables` (here the nf_tables back end of iptables 1.8), one rule
    /// per address, evaluated in order.
    Iptables,
    /// `nft`, one rule and a hashed set of addresses.
    Nftables,
}

/// A rule set loaded in namespace B.
pub struct Ruleset<'a> {
    pair: &'a VethPair,
    kind: Kind,
}

/// `count` distinct addresses of 10.200.0.0/16 that never send anything.
fn blocked(count: usize) -> impl Iterator<Item = Ipv4Addr> {
    (0..count).map(|i| {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 200, 0, 1)) + i)
    })
}

/// `iptables-restore` input: `rules - 1` DROPs that match nothing the
/// client sends, then the ACCEPT of the client's flow.
fn iptables_rules(rules: usize) -> String {
    let mut text = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
    for addr in blocked(rules.saturating_sub(1)) {
        text.push_str(&format!(
            "-A INPUT -s {addr}/32 -p tcp -m tcp --dport {SERVER_PORT} -j DROP\n"
        ));
    }
    text.push_str(&format!(
        "-A INPUT -s {CLIENT_ADDR}/32 -p tcp -m tcp --dport {SERVER_PORT} -j ACCEPT\nCOMMIT\n"
    ));
    text
}

/// `nft -f` input: `rules` addresses in a set, one rule that drops them.
fn nftables_rules(rules: usize) -> String {
    let elements: Vec<String> = blocked(rules).map(|a| a.to_string()).collect();
    format!(
        "table inet bench {{\n\
         \tset blocked {{ type ipv4_addr; elements = {{ {} }} }}\n\
         \tchain input {{ type filter hook input priority 0; policy accept; \
         ip saddr @blocked drop; accept; }}\n}}\n",
        elements.join(", ")
    )
}

/// Runs `program args` in namespace B with `input` on its stdin.
fn feed(pair: &VethPair, program: &str, args: &[&str], input: &str) -> anyhow::Result<()> {
    let mut child = in_netns(pair.server_netns(), program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("feeding {program}"))?;
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("waiting for {program}"))?;
    ensure!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

impl<'a> Ruleset<'a> {
    /// Loads `rules` rules (iptables) or addresses (nftables) in namespace
    /// B and checks they are there.
    pub fn load(pair: &'a VethPair, kind: Kind, rules: usize) -> anyhow::Result<Ruleset<'a>> {
        // The guard first: a half-loaded set is flushed too.
        let ruleset = Ruleset { pair, kind };
        let netns = pair.server_netns();
        match kind {
            Kind::Iptables => {
                feed(pair, "iptables-restore", &[], &iptables_rules(rules))?;
                let saved = run(in_netns(netns, "iptables-save").args(["-t", "filter"]))?;
                let loaded = saved.lines().filter(|l| l.starts_with("-A INPUT")).count();
                ensure!(
                    loaded == rules,
                    "iptables holds {loaded} rules, not {rules}"
                );
            }
            Kind::Nftables => {
                feed(pair, "nft", &["-f", "-"], &nftables_rules(rules))?;
                let listed =
                    run(in_netns(netns, "nft").args(["list", "set", "inet", "bench", "blocked"]))?;
                let loaded = listed.matches("10.200.").count();
                ensure!(
                    loaded == rules,
                    "the nftables set holds {loaded} addresses, not {rules}"
                );
            }
        }
        Ok(ruleset)
    }
}

impl Drop for Ruleset<'_> {
    fn drop(&mut self) {
        let netns = self.pair.server_netns();
        let mut command: Command = match self.kind {
            Kind::Iptables => in_netns(netns, "iptables"),
            Kind::Nftables => in_netns(netns, "nft"),
        };
        match self.kind {
            Kind::Iptables => command.args(["-w", "-F", "INPUT"]),
            Kind::Nftables => command.args(["delete", "table", "inet", "bench"]),
        };
        if let Err(e) = run(&mut command) {
            eprintln!("cleanup: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_ends_with_the_accept_and_the_set_holds_every_address() {
        let chain = iptables_rules(10_000);
        let rules: Vec<&str> = chain.lines().filter(|l| l.starts_with("-A")).collect();
        assert_eq!(rules.len(), 10_000);
        assert!(rules[9_999].contains("10.88.0.1/32") && rules[9_999].ends_with("ACCEPT"));
        assert!(rules[..9_999].iter().all(|r| r.ends_with("DROP")));
        let set = nftables_rules(10_000);
        assert_eq!(set.matches("10.200.").count(), 10_000);
        assert!(!set.contains("10.88.0.1"));
    }
}
