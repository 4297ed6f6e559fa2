//! Alert delivery of Stockade.
//!
//! Nodes turn what their dataplane reports into alerts ([`aggregate`]):
//! repeats of one cause within a window become one record with a count, and
//! each record is classed as first-seen, recurring or burst. The records are
//! appended through Raft (see `stockade_policy::AlertLog`), and the elected
//! leader forwards them: [`route`] decides which sink wants which alert,
//! [`throttle`] keeps each sink under its rate limit by folding the excess
//! into one digest message, and [`sink`] speaks the sinks' protocols —
//! Slack incoming webhooks (Block Kit), SIEMs over syslog (RFC 5424 with a
//! CEF message, octet-counted on TCP or TLS) and JSON webhooks (plain, Splunk
//! HEC, Elasticsearch bulk). The crate depends only on the `policy` types;
//! the leader-only forwarding loop lives in the node, which owns Raft.

pub mod aggregate;
pub mod route;
pub mod sink;
pub mod throttle;
