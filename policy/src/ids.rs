//! Numeric identifiers, and the values reserved among them.
//!
//! The dataplane works with numbers, not names: every zone, identity and rule
//! has a number the cluster state allocates once and never reuses for anything
//! else while the object exists. The low identity numbers are reserved for the
//! identities every cluster has.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The number of a zone, as the dataplane's mode map knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZoneId(pub u32);

/// The number of an identity, as the dataplane's maps know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityId(pub u32);

impl IdentityId {
    /// A workload no identity rule or fingerprint vouches for: an unregistered
    /// binary, or a registered one that was modified.
    pub const UNKNOWN: IdentityId = IdentityId(0);
    /// Any address outside the cluster that no CIDR rule names.
    pub const WORLD: IdentityId = IdentityId(1);
    /// Stockade itself: the daemons and their control-plane traffic, which no
    /// policy may cut.
    pub const CLUSTER: IdentityId = IdentityId(2);
    /// A Stockade node's address seen as the source of an inbound flow: a
    /// workload on that node, which already decided the flow at egress with
    /// the full identity of the caller.
    pub const NODE: IdentityId = IdentityId(3);
    /// The first number handed to an identity defined by a user. Numbers below
    /// are reserved for the identities above and future built-in ones.
    pub const FIRST_ALLOCATED: u32 = 256;
    /// Identities of the CIDRs that rules name are derived when compiling, from
    /// this number up; user identities stay below it.
    pub const FIRST_CIDR: u32 = 0x0100_0000;

    /// Whether this number is one of the reserved identities.
    pub fn is_reserved(self) -> bool {
        self.0 < Self::FIRST_ALLOCATED
    }

    /// Whether this identity stands for addresses outside the cluster (the
    /// world, or a CIDR a rule names): no Stockade node checks such a flow's
    /// receiving side.
    pub fn is_outside_cluster(self) -> bool {
        self == Self::WORLD || self.0 >= Self::FIRST_CIDR
    }

    /// Whether this number may be given to a user-defined identity.
    pub fn is_allocatable(self) -> bool {
        (Self::FIRST_ALLOCATED..Self::FIRST_CIDR).contains(&self.0)
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UNKNOWN => f.write_str("unknown"),
            Self::WORLD => f.write_str("world"),
            Self::CLUSTER => f.write_str("cluster"),
            Self::NODE => f.write_str("node"),
            IdentityId(n) => write!(f, "{n}"),
        }
    }
}

/// The number of a rule written by a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleId(pub u32);

impl RuleId {
    /// The first number handed to a user rule; the numbers below name the
    /// built-in reasons of [`RuleRef`].
    pub const FIRST_ALLOCATED: u32 = 16;
}

/// The number of a node of the cluster (the Raft node id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What produced a verdict: a user's rule or one of the built-in defaults.
///
/// Every verdict carries one, so a flow record can say which rule allowed or
/// dropped it. In the kernel it is one `u32`: see [`RuleRef::to_raw`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleRef {
    /// The rule with this id.
    Rule(RuleId),
    /// Stockade's own control-plane traffic, always allowed.
    ClusterTraffic,
    /// Two zones no rule connects are isolated from each other.
    ZoneIsolation,
    /// No rule matched; the verdict is the default of the zone's mode.
    ZoneDefault,
    /// An inbound flow from another node's workload, decided at egress by
    /// that node.
    EgressChecked,
    /// A rule asked for encryption the tunnel cannot give (no tunnel on the
    /// node, not TCP, or IPv6): the flow is refused rather than sent in
    /// the clear.
    TunnelUnavailable,
}

impl RuleRef {
    const RAW_CLUSTER_TRAFFIC: u32 = 1;
    const RAW_ZONE_ISOLATION: u32 = 2;
    const RAW_ZONE_DEFAULT: u32 = 3;
    const RAW_EGRESS_CHECKED: u32 = 4;
    const RAW_TUNNEL_UNAVAILABLE: u32 = 5;

    /// The number the dataplane stores for this reference.
    pub fn to_raw(self) -> u32 {
        match self {
            RuleRef::Rule(RuleId(n)) => n,
            RuleRef::ClusterTraffic => Self::RAW_CLUSTER_TRAFFIC,
            RuleRef::ZoneIsolation => Self::RAW_ZONE_ISOLATION,
            RuleRef::ZoneDefault => Self::RAW_ZONE_DEFAULT,
            RuleRef::EgressChecked => Self::RAW_EGRESS_CHECKED,
            RuleRef::TunnelUnavailable => Self::RAW_TUNNEL_UNAVAILABLE,
        }
    }

    /// The reference a number from the dataplane stands for, if any.
    pub fn from_raw(raw: u32) -> Option<RuleRef> {
        match raw {
            Self::RAW_CLUSTER_TRAFFIC => Some(RuleRef::ClusterTraffic),
            Self::RAW_ZONE_ISOLATION => Some(RuleRef::ZoneIsolation),
            Self::RAW_ZONE_DEFAULT => Some(RuleRef::ZoneDefault),
            Self::RAW_EGRESS_CHECKED => Some(RuleRef::EgressChecked),
            Self::RAW_TUNNEL_UNAVAILABLE => Some(RuleRef::TunnelUnavailable),
            n if n >= RuleId::FIRST_ALLOCATED => Some(RuleRef::Rule(RuleId(n))),
            _ => None,
        }
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleRef::Rule(RuleId(n)) => write!(f, "rule {n}"),
            RuleRef::ClusterTraffic => f.write_str("cluster traffic"),
            RuleRef::ZoneIsolation => f.write_str("zone isolation"),
            RuleRef::ZoneDefault => f.write_str("zone default"),
            RuleRef::EgressChecked => f.write_str("checked at egress"),
            RuleRef::TunnelUnavailable => f.write_str("tunnel unavailable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_refs_round_trip_through_their_raw_form() {
        for r in [
            RuleRef::Rule(RuleId(16)),
            RuleRef::Rule(RuleId(u32::MAX)),
            RuleRef::ClusterTraffic,
            RuleRef::ZoneIsolation,
            RuleRef::ZoneDefault,
            RuleRef::EgressChecked,
            RuleRef::TunnelUnavailable,
        ] {
            assert_eq!(RuleRef::from_raw(r.to_raw()), Some(r));
        }
        assert_eq!(RuleRef::from_raw(0), None);
    }

    #[test]
    fn reserved_identities_are_not_allocatable() {
        for id in [IdentityId::UNKNOWN, IdentityId::WORLD, IdentityId::CLUSTER] {
            assert!(id.is_reserved());
            assert!(!id.is_allocatable());
        }
        assert!(IdentityId(256).is_allocatable());
        assert!(!IdentityId(IdentityId::FIRST_CIDR).is_allocatable());
    }
}
