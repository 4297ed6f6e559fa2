//! The replicated control plane of Stockade.
//!
//! This crate owns the openraft type configuration, the sled-backed log store
//! and state machine (which holds [`stockade_policy::ClusterState`] and applies
//! [`stockade_policy::Command`]s to it), snapshots and linearizable reads. Every
//! node of a cluster runs one Raft member; what it commits is the single source
//! of truth for policy, identities, endpoints and alert delivery.
//!
//! The control plane arrives with its own issue; until then the crate only marks
//! its place in the architecture.
