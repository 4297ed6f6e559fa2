//! An alert's facts written for people, shared by the formats so that Slack,
//! CEF and digests say the same thing the same way.

use std::net::SocketAddr;

use stockade_policy::{Alert, AlertFlow, AlertWorkload, Direction, FlowEnd, L4Protocol, Sha256};
use time::OffsetDateTime;

use super::Context;

/// What an alert calls an app it cannot name.
pub(crate) const UNKNOWN: &str = "unknown";

/// The identity (`zone/app/service`) of the workload the alert concerns:
/// its workload's, else the flow's end on the raising node. `None` for
/// alerts about no workload at all (nodes, sinks), `unknown` when there is a
/// workload without identity.
pub(crate) fn app(alert: &Alert) -> Option<String> {
    if let Some(name) = alert.workload.as_ref().and_then(|w| w.identity.as_ref()) {
        return Some(name.to_string());
    }
    if let Some(flow) = &alert.flow {
        let local = match flow.direction {
            Direction::Egress => &flow.src,
            Direction::Ingress => &flow.dst,
        };
        if let Some(name) = &local.identity {
            return Some(name.to_string());
        }
    }
    (alert.workload.is_some() || alert.flow.is_some()).then(|| UNKNOWN.to_owned())
}

/// The zone(s) the alert concerns: its workload's, else every zone it
/// touches; `None` when it touches none.
pub(crate) fn zone(alert: &Alert) -> Option<String> {
    if let Some(zone) = alert.workload.as_ref().and_then(|w| w.zone.as_ref()) {
        return Some(zone.clone());
    }
    let zones = alert.zones();
    (!zones.is_empty()).then(|| zones.join(", "))
}

/// The name of the node the alert is about: the subject of a node alert,
/// else the node that raised it.
pub(crate) fn node(alert: &Alert, ctx: &Context) -> String {
    ctx.node_name(alert.subject_node.unwrap_or(alert.node))
}

/// The first 12 hex digits of a digest: enough to tell binaries apart at a
/// glance, short enough for a chat line.
pub(crate) fn short_sha(sha: &Sha256) -> String {
    let mut hex = sha.to_string();
    hex.truncate(12);
    hex
}

/// The executable with its pid and short digest, e.g.
/// `/usr/bin/curl (pid 4242, sha256 3f2a9c1b0d4e)`; `None` when the path is
/// not known.
pub(crate) fn binary(workload: &AlertWorkload) -> Option<String> {
    if workload.executable.is_empty() {
        return None;
    }
    let mut extra = Vec::new();
    if let Some(pid) = workload.pid {
        extra.push(format!("pid {pid}"));
    }
    if let Some(sha) = &workload.sha256 {
        extra.push(format!("sha256 {}", short_sha(sha)));
    }
    Some(if extra.is_empty() {
        workload.executable.clone()
    } else {
        format!("{} ({})", workload.executable, extra.join(", "))
    })
}

/// `TCP` or `UDP`.
pub(crate) fn protocol(protocol: L4Protocol) -> &'static str {
    match protocol {
        L4Protocol::Tcp => "TCP",
        L4Protocol::Udp => "UDP",
    }
}

/// One end of a flow: `10.0.0.7:5432 (prod/billing/db)`, IPv6 addresses in
/// brackets.
pub(crate) fn end(end: &FlowEnd) -> String {
    let addr = SocketAddr::new(end.ip, end.port);
    match &end.identity {
        Some(name) => format!("{addr} ({name})"),
        None => addr.to_string(),
    }
}

/// The flow on one line: `src → dst TCP`.
pub(crate) fn flow(flow: &AlertFlow) -> String {
    format!(
        "{} → {} {}",
        end(&flow.src),
        end(&flow.dst),
        protocol(flow.protocol)
    )
}

/// What decided the flow and where: `rule 12 (at egress)`.
pub(crate) fn rule(flow: &AlertFlow) -> String {
    let side = match flow.direction {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    };
    format!("{} (at {side})", flow.rule)
}

/// RFC 3339 in UTC with milliseconds (`2024-05-01T12:34:56.789Z`); `None`
/// for instants past the year 9999, which RFC 3339 cannot write.
pub(crate) fn timestamp(ms: u64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    ))
}

/// `text` on one line: every run of whitespace (newlines included) becomes
/// one space, so that a summary cannot break a line-oriented format.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` cut to at most `max` characters, with `…` when it was cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        assert_eq!(timestamp(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            timestamp(1_714_566_896_789).as_deref(),
            Some("2024-05-01T12:34:56.789Z")
        );
        assert_eq!(timestamp(u64::MAX), None);
    }

    #[test]
    fn ipv6_ends_are_bracketed() {
        let end = FlowEnd {
            ip: "fd00::7".parse().expect("literal address"),
            port: 443,
            identity: None,
            zone: None,
        };
        assert_eq!(super::end(&end), "[fd00::7]:443");
    }

    #[test]
    fn cutting_keeps_whole_characters() {
        assert_eq!(cut("héllo", 10), "héllo");
        assert_eq!(cut("héllo", 5), "héllo");
        assert_eq!(cut("héllo", 3), "hé…");
        assert_eq!(one_line(" a\n b\r\n\tc "), "a b c");
    }
}
