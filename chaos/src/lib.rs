//! Chaos testing for Stockade clusters.
//!
//! This crate owns the harness that builds an N-node cluster in network
//! namespaces it creates (and always removes), drives a client workload against
//! it, injects faults — kill -9, SIGSTOP/SIGCONT, cut links, loss, delay,
//! duplication and reordering of node-to-node datagrams — records the history
//! of operations and checks it for lost acknowledged writes and stale reads.
//!
//! Today it provides the test hosts ([`netlab::Lab`]), the running of
//! `stockade` processes on them ([`nodes`]), and the alert sinks tests
//! deliver to: a recording HTTP server ([`receiver`]) and a real rsyslogd
//! ([`rsyslog`]), the linearizability checker of recorded histories
//! ([`check`]), and the UDP relay that injects node-to-node faults ([`relay`]).

pub mod check;
pub mod netlab;
pub mod nodes;
pub mod receiver;
pub mod relay;
pub mod rsyslog;
pub mod timeline;
