//! Node-to-node transport of Stockade.
//!
//! This crate owns the QUIC endpoints (quinn + rustls, mutual TLS from the
//! cluster CA) that carry Raft RPCs and writes forwarded to the leader, and the
//! Noise (snow) tunnel that encrypts east-west workload traffic when a rule asks
//! for it. It knows nothing of policy: it moves authenticated frames between
//! nodes whose certificates name their node ids.
//!
//! The transport arrives with the control-plane issue; until then the crate only
//! marks its place in the architecture.
