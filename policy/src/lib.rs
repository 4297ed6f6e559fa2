//! The policy engine of Stockade: pure, deterministic, free of I/O.
//!
//! This crate owns the domain of the firewall. It defines what a policy is —
//! [zones](Zone) with their [modes](Mode), application [identities](Identity)
//! named `zone/app/service`, the [identity rules](IdentityRule) and binary
//! [fingerprints](Fingerprint) that give workloads those identities, and the
//! [rules](Rule) between applications or toward CIDRs — and holds it all in
//! one [`ClusterState`]. The state changes only through [`Command`]s, which
//! are validated (every error names the field at fault) and applied
//! deterministically, so that Raft can replicate commands and every node
//! arrives at a byte-identical state. [`compile`] turns the state into the
//! exact eBPF map contents one node needs, and [`DataplaneEntries::decide`]
//! is the reference of how the kernel decides over them. Policies can be
//! exported to a TOML [document](PolicyDocument), reviewed, [diffed](diff())
//! and imported back as one all-or-nothing batch.
//!
//! What the dataplane saw comes back as [flow records](FlowRecord), which a
//! [`FlowFilter`] queries and [`topology()`] folds into a graph of who talks
//! to whom, by zone, app, service or process.
//!
//! Zones in `learn` mode build a [`Baseline`] of the flows they make;
//! [`propose`] turns it into the narrowest allow rules that cover it, for an
//! operator to accept, snooze or deny link by link. [Templates](templates)
//! give the rule a common server (DNS, NTP, PostgreSQL, …) needs.
//!
//! A [`Backup`] is a versioned, checksummed file of the [durable
//! part](DurableState) of the state, signed with a key only the cluster
//! holds; [`Command::Restore`] puts it back on every node at one log index.
//! A policy [bundle](PolicyDocument::bundle) shares a policy with another
//! cluster without its numbers or sinks.
//!
//! Nothing here performs I/O, reads a clock or draws a random number.
//!
//! With the `openapi` feature (off by default), the types the admin API reads
//! and writes also implement `utoipa::ToSchema`, matching their JSON form.

mod access;
mod alert;
mod audit;
pub mod backup;
mod baseline;
mod bundle;
mod cluster_key;
mod command;
pub mod compile;
mod diff;
mod document;
mod error;
mod flow;
mod history;
mod ids;
mod inventory;
mod logged;
mod model;
#[cfg(feature = "openapi")]
mod openapi;
mod resolve;
mod state;
mod template;
mod topology;
mod tunnel;
mod validate;
mod values;

pub use access::{
    Access, AccessCommand, ApiToken, CertificateAuthority, JoinToken, Role, MAX_VOTERS,
};
pub use alert::{
    Alert, AlertClass, AlertFlow, AlertId, AlertKind, AlertLog, AlertWorkload, Cursor, FlowEnd,
    NewAlert, MAX_ALERTS_PER_COMMAND,
};
pub use audit::{
    command_kind, redacted_detail, AuditEntry, AuditFilter, AuditLog, Author, Outcome, Provenance,
    MAX_DETAIL_CHARS,
};
pub use backup::{
    durable_digest, Backup, BackupError, BackupHeader, BackupRecord, DurableState,
    BACKUP_FORMAT_VERSION, BACKUP_MAGIC,
};
pub use baseline::{
    propose, Baseline, BaselineEdge, EdgeKey, EdgeTarget, LinkChoice, LinkDecision, ObservedEdge,
    Proposal, ProposedLink, ProposedRule, LEARNED_RULE_OWNER, MAX_EDGES_PER_COMMAND,
};
pub use cluster_key::{ClusterKey, NoClusterKey};
pub use command::{Applied, Command};
pub use compile::{
    compile, explain, CompileError, DataplaneEntries, Decision, Direction, ExecKey, FlowQuery,
    IpcacheKey, LocalExecutable, LocalWorkload, LocalWorkloads, PolicyKey, Verdict, WorkloadKey,
};
pub use diff::{diff, Change, DiffEntry, PolicyDiff};
pub use document::{DocIdentity, DocRule, DocZone, PolicyDocument, Secrets};
pub use error::{DocumentError, ValidationError};
#[cfg(feature = "openapi")]
pub use flow::rule_ref_schema;
pub use flow::{FlowFilter, FlowPeer, FlowProcess, FlowRecord, PeerClass};
pub use history::{
    ChangeCounts, DocEntry, PolicyHistory, PolicyVersion, Section, VersionChange, VersionMeta,
    MAX_HISTORY_CHANGES,
};
pub use ids::{IdentityId, NodeId, RuleId, RuleRef, ZoneId};
pub use inventory::{
    InventoryFilter, InventoryWorkload, ListeningPort, NodeInventory, WorkloadStatus,
    MAX_INVENTORY_WORKLOADS,
};
pub use model::{
    Action, AlertSink, Endpoint, Fingerprint, Identity, IdentityName, IdentityRule, L4Protocol,
    Mode, Node, Protocol, Rule, RuleSpec, Severity, SinkTarget, WebhookFormat, WorkloadSelector,
    Zone,
};
pub use resolve::{Resolution, Subject, WorkloadFacts};
pub use state::{ClusterState, Settings};
pub use template::{apply_template, templates, Template, TemplateParams};
pub use topology::{to_dot, topology, Level, Topology, TopologyEdge, TopologyNode};
pub use tunnel::{
    tunnel_destination, TunnelKey, MAX_TUNNEL_CERT_LEN, MAX_TUNNEL_SIGNATURE_HEX_LEN,
    TUNNEL_PUBLIC_KEY_HEX_LEN,
};
pub use values::{AppSelector, EndpointKey, ParseError, Peer, PortRange, Secret, Sha256};

#[cfg(test)]
mod fixtures;
