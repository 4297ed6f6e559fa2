//! Chaos testing for Stockade clusters, in the manner of Jepsen.
//!
//! `stockade-chaos run` builds an N-node cluster in network namespaces it
//! creates (and always removes), drives a client workload against it,
//! injects seeded faults — kill -9, SIGSTOP/SIGCONT, partitions, loss,
//! duplication, reordering and delay of node-to-node datagrams, membership
//! changes, rolling restarts, a daemon crash under enforcement — records
//! the history of operations and checks it.
//!
//! - The cluster: test hosts ([`netlab`]), `stockade` processes on them
//!   ([`nodes`]), the UDP relay that carries node-to-node datagrams and
//!   injects link faults ([`relay`]), and alert sinks: a recording HTTP
//!   server ([`receiver`]) and a real rsyslogd ([`rsyslog`]).
//! - The run: the clients and the intruder ([`workload`]) talking through
//!   [`api`], the faults ([`faults`]) and the [`nemesis`] that injects
//!   them, all recorded in the [`history`]; [`run`] ties them together.
//! - The verdicts: linearizability ([`check`], applied by [`analysis`]),
//!   the checks after healing ([`verify`]), and the [`report`] with its
//!   [`timeline`] picture.

pub mod analysis;
pub mod api;
pub mod check;
pub mod faults;
pub mod history;
pub mod nemesis;
pub mod nodes;
pub mod receiver;
pub mod relay;
pub mod report;
pub mod rsyslog;
pub mod run;
pub mod timeline;
pub mod verify;
pub mod workload;

pub use stockade_netlab as netlab;
