//! Chaos testing for Stockade clusters.
//!
//! This crate owns the harness that builds an N-node cluster in network
//! namespaces it creates (and always removes), drives a client workload against
//! it, injects faults — kill -9, SIGSTOP/SIGCONT, cut links, loss, delay,
//! duplication and reordering of node-to-node datagrams — records the history
//! of operations and checks it for lost acknowledged writes and stale reads.
//!
//! The harness arrives with the chaos issue; until then the crate only marks its
//! place in the architecture.
