//! The policy engine's map contents as the kernel's keys and values.

use std::net::IpAddr;

use stockade_bpf::{kernel_dev, MapContents};
use stockade_bpf_common::maps::{
    ExecKey, IpcacheKey, PolicyKey, Subject, Verdict, ZoneMode, ACTION_ALLOW, ACTION_DENY,
    FAMILY_IPV4, FAMILY_IPV6, IPV4_MAPPED_PREFIX_BITS, MODE_ALERT, MODE_ENFORCE, MODE_LEARN,
    UNMANAGED_ZONE,
};
use stockade_policy::{Action, DataplaneEntries, Mode, WorkloadKey};

fn subject(s: &stockade_policy::Subject) -> Subject {
    Subject {
        identity: s.identity.0,
        zone: s.zone.map_or(UNMANAGED_ZONE, |z| z.0),
    }
}

fn mode(mode: Mode) -> ZoneMode {
    let mode = match mode {
        Mode::Learn => MODE_LEARN,
        Mode::Alert => MODE_ALERT,
        Mode::Enforce => MODE_ENFORCE,
    };
    ZoneMode { mode, pad: [0; 3] }
}

/// The family, the 16 bytes of an address in the trie (IPv4 mapped into
/// IPv6) and the number of address bits a prefix of `len` bits fixes.
fn address(ip: IpAddr, len: u8) -> (u8, [u8; 16], u32) {
    match ip {
        IpAddr::V4(v4) => (
            FAMILY_IPV4,
            v4.to_ipv6_mapped().octets(),
            IPV4_MAPPED_PREFIX_BITS + u32::from(len),
        ),
        IpAddr::V6(v6) => (FAMILY_IPV6, v6.octets(), u32::from(len)),
    }
}

/// Encodes `entries` for the kernel.
pub fn encode(entries: &DataplaneEntries) -> MapContents {
    let mut maps = MapContents::default();
    for (key, verdict) in &entries.policy {
        let raw = PolicyKey::new(
            key.src.0,
            key.dst.0,
            key.protocol as u8,
            key.port,
            key.port_prefix_len,
        );
        let action = match verdict.action {
            Action::Allow => ACTION_ALLOW,
            Action::Deny => ACTION_DENY,
        };
        let value = Verdict {
            rule: verdict.rule.to_raw(),
            action,
            encrypt: u8::from(verdict.encrypt),
            pad: [0; 2],
        };
        maps.policy.insert(raw, value);
    }
    for (key, s) in &entries.ipcache {
        let (family, addr, bits) = address(key.net.network(), key.net.prefix_len());
        let raw = IpcacheKey::new(family, addr, bits, key.port);
        maps.ipcache.insert(raw, subject(s));
    }
    for (key, s) in &entries.workloads {
        match key {
            WorkloadKey::Cgroup(id) => maps.cgroups.insert(*id, subject(s)),
            WorkloadKey::Process(pid) => maps.processes.insert(*pid, subject(s)),
        };
    }
    for (key, s) in &entries.executables {
        // Inventory keys carry stat(2)'s device number; the exec hook reads
        // the kernel's.
        let raw = ExecKey {
            dev: kernel_dev(key.dev),
            inode: key.inode,
            ctime_ns: key.ctime_ns,
        };
        maps.executables.insert(raw, subject(s));
    }
    maps.zones = entries
        .zone_modes
        .iter()
        .map(|(z, m)| (z.0, mode(*m)))
        .collect();
    maps.zones
        .insert(UNMANAGED_ZONE, mode(entries.unmanaged_mode));
    maps
}

/// Longest-prefix match over byte keys, as the kernel's LPM trie does it:
/// the entry whose first `prefix_len` bits equal the looked-up key's, with
/// the longest such prefix.
#[cfg(test)]
pub(crate) fn lpm<'a, V>(
    entries: impl Iterator<Item = (u32, &'a [u8], V)>,
    key: &[u8],
) -> Option<V> {
    let matches = |prefix: u32, data: &[u8]| {
        (0..prefix as usize).all(|bit| {
            let mask = 0x80u8 >> (bit % 8);
            data[bit / 8] & mask == key[bit / 8] & mask
        })
    };
    entries
        .filter(|(prefix, data, _)| matches(*prefix, data))
        .max_by_key(|(prefix, _, _)| *prefix)
        .map(|(_, _, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use stockade_policy::{
        compile, ClusterState, Command, IdentityName, L4Protocol, LocalWorkloads, Node, NodeId,
        PolicyDocument, RuleRef,
    };

    /// The demo policy compiled for a local node.
    fn demo() -> (ClusterState, DataplaneEntries) {
        let doc =
            PolicyDocument::parse(crate::policy_cmd::DEMO_POLICY).expect("the demo policy parses");
        let mut state = ClusterState::new();
        doc.import(&state)
            .expect("valid")
            .apply(&mut state)
            .expect("applies");
        Command::UpsertNode(Node {
            id: NodeId(1),
            name: "local".into(),
            address: "192.0.2.1:7400".parse().expect("address"),
            labels: Default::default(),
        })
        .apply(&mut state)
        .expect("node");
        let entries = compile(&state, NodeId(1), &LocalWorkloads::default()).expect("compiles");
        (state, entries)
    }

    proptest! {
        /// The kernel's LPM lookup over the encoded policy keys finds the
        /// verdict the policy engine's reference lookup finds, for every
        /// identity pair, protocol and port.
        #[test]
        fn encoded_policy_trie_decides_like_the_policy_engine(port in any::<u16>(), udp in any::<bool>()) {
            let (state, entries) = demo();
            let maps = encode(&entries);
            let protocol = if udp { L4Protocol::Udp } else { L4Protocol::Tcp };
            let ids: Vec<u32> = state.identities.keys().map(|i| i.0).chain([0, 1, 2]).collect();
            for &src in &ids {
                for &dst in &ids {
                    let expected = entries.lookup_policy(
                        stockade_policy::IdentityId(src),
                        stockade_policy::IdentityId(dst),
                        protocol,
                        port,
                    );
                    let key = PolicyKey::lookup(src, dst, protocol as u8, port);
                    let found = lpm(maps.policy.iter().map(|(k, v)| (k.prefix_len, &k.data[..], *v)), &key.data);
                    prop_assert_eq!(found.map(|v| (v.rule, v.action)), expected.map(|v| (v.rule.to_raw(), match v.action { Action::Allow => ACTION_ALLOW, Action::Deny => ACTION_DENY })));
                }
            }
        }

        /// The encoded address trie gives every address the subject the
        /// policy engine's reference lookup gives it.
        #[test]
        fn encoded_ipcache_resolves_like_the_policy_engine(a in any::<u8>(), b in any::<u8>(), port in any::<u16>()) {
            let (_, entries) = demo();
            let maps = encode(&entries);
            for ip in [IpAddr::from([203, 0, 113, a]), IpAddr::from([198, 51, 100, b]), IpAddr::from([192, 0, 2, 1]), IpAddr::from([10, a, b, 1])] {
                let expected = subject(&entries.lookup_address(ip, port));
                let (family, addr, _) = address(ip, 0);
                let key = IpcacheKey::lookup(family, addr, port);
                let found = lpm(maps.ipcache.iter().map(|(k, v)| (k.prefix_len, &k.data[..], *v)), &key.data)
                    .unwrap_or(Subject { identity: stockade_policy::IdentityId::WORLD.0, zone: UNMANAGED_ZONE });
                prop_assert_eq!(found, expected, "{}:{}", ip, port);
            }
        }
    }

    #[test]
    fn an_ipv6_prefix_never_matches_an_ipv4_address() {
        let v6_world: stockade_policy::IpcacheKey = stockade_policy::IpcacheKey {
            net: "::/0".parse().expect("prefix"),
            port: None,
        };
        let entries = DataplaneEntries {
            ipcache: [(
                v6_world,
                stockade_policy::Subject {
                    identity: stockade_policy::IdentityId(0x0100_0000),
                    zone: None,
                },
            )]
            .into_iter()
            .collect(),
            ..DataplaneEntries::default()
        };
        let maps = encode(&entries);
        let find = |ip: IpAddr| {
            let (family, addr, _) = address(ip, 0);
            let key = IpcacheKey::lookup(family, addr, 443);
            lpm(
                maps.ipcache
                    .iter()
                    .map(|(k, v)| (k.prefix_len, &k.data[..], *v)),
                &key.data,
            )
        };
        assert_eq!(find(IpAddr::from([192, 0, 2, 1])), None);
        assert!(find("2001:db8::1".parse().expect("ip")).is_some());
        assert_eq!(
            entries
                .lookup_address(IpAddr::from([192, 0, 2, 1]), 443)
                .identity,
            stockade_policy::IdentityId::WORLD
        );
    }

    #[test]
    fn verdicts_carry_their_rule_and_modes_include_the_unmanaged_one() {
        let (state, entries) = demo();
        let maps = encode(&entries);
        let records = state
            .identity_by_name(&IdentityName {
                zone: "ehr".into(),
                app: "records".into(),
                service: "api".into(),
            })
            .expect("identity")
            .id
            .0;
        let db = state
            .identity_by_name(&IdentityName {
                zone: "ehr".into(),
                app: "records".into(),
                service: "db".into(),
            })
            .expect("identity")
            .id
            .0;
        let key = PolicyKey::lookup(records, db, 6, 5432);
        let verdict = lpm(
            maps.policy
                .iter()
                .map(|(k, v)| (k.prefix_len, &k.data[..], *v)),
            &key.data,
        )
        .expect("a verdict");
        assert_eq!(
            RuleRef::from_raw(verdict.rule),
            Some(RuleRef::Rule(stockade_policy::RuleId(17)))
        );
        assert_eq!(maps.zones[&UNMANAGED_ZONE].mode, MODE_LEARN);
        assert_eq!(maps.zones.len(), state.zones.len() + 1);
    }
}
