//! What the rules alone say about a flow between two named sides, without a
//! node or its workloads: the question baseline proposals ask ("does a rule
//! already allow this edge?").
//!
//! It reuses the expansion [`super::compile`] performs, so its answer is the
//! policy-map lookup the kernel would make, precedence included — a
//! narrower deny rule still wins over a wide allow rule here too.

use std::net::IpAddr;

use super::index::IdentityIndex;
use super::{policy, CidrIdentities, DataplaneEntries, Verdict};
use crate::state::ClusterState;
use crate::{IdentityName, L4Protocol};

/// The rule verdicts of a state, expanded once and then looked up per flow.
pub(crate) struct RuleVerdicts<'a> {
    index: IdentityIndex<'a>,
    cidrs: CidrIdentities,
    entries: DataplaneEntries,
}

impl<'a> RuleVerdicts<'a> {
    /// Expands every rule of `state`.
    pub(crate) fn of(state: &'a ClusterState) -> Self {
        let cidrs = CidrIdentities::of(state);
        let entries = DataplaneEntries {
            policy: policy(state, &cidrs),
            ..DataplaneEntries::default()
        };
        RuleVerdicts {
            index: IdentityIndex::of(state),
            cidrs,
            entries,
        }
    }

    /// The verdict of the rule that decides a flow from `from` to the
    /// identity `to`, if any rule does.
    pub(crate) fn toward_identity(
        &self,
        from: &IdentityName,
        to: &IdentityName,
        protocol: L4Protocol,
        port: u16,
    ) -> Option<Verdict> {
        let src = self.index.get(from)?;
        let dst = self.index.get(to)?;
        self.entries.lookup_policy(src, dst, protocol, port)
    }

    /// The verdict of the rule that decides a flow from `from` to an address
    /// outside the cluster, if any rule does. The address takes the
    /// identity of the longest prefix a rule names that holds it, as in the
    /// ipcache; an address no rule's prefix holds is the world, which no
    /// rule decides.
    pub(crate) fn toward_address(
        &self,
        from: &IdentityName,
        to: IpAddr,
        protocol: L4Protocol,
        port: u16,
    ) -> Option<Verdict> {
        let src = self.index.get(from)?;
        let dst = self
            .cidrs
            .0
            .iter()
            .filter(|(net, _)| net.contains(&to))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|(_, id)| *id)?;
        self.entries.lookup_policy(src, dst, protocol, port)
    }
}
