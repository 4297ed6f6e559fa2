//! The dataplane benchmark's parts: the veth hosts and the client
//! ([`veth`]), Stockade's dataplane and its netfilter peers on them
//! ([`firewall`], [`netfilter`]), the five measurements ([`conns`],
//! [`latency`], [`memory`], [`alerts`], [`flows`]), the nodes' API and maps as the
//! bench sees them ([`api`], [`maps`]) and the table ([`report`]).

pub mod alerts;
pub mod api;
pub mod conns;
pub mod firewall;
pub mod flows;
pub mod latency;
pub mod maps;
pub mod memory;
pub mod netfilter;
pub mod report;
pub mod veth;
