//! Alert delivery of Stockade.
//!
//! This crate owns the sinks that tell people about flows and binaries the
//! policy did not expect — Slack incoming webhooks, SIEMs over syslog (RFC 5424,
//! CEF payload) and generic JSON webhooks — together with deduplication,
//! frequency classes, retries and the delivery cursor that lets a newly elected
//! leader resume exactly where the previous one stopped. It depends only on the
//! `policy` types.
//!
//! The sinks arrive with the alerting issue; until then the crate only marks its
//! place in the architecture.
