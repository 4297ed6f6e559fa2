//! ArcSight Common Event Format: the message syslog sinks carry, which SIEMs
//! (Splunk, QRadar, Sentinel, ArcSight, …) parse into fields.
//!
//! `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension`, where
//! the header escapes `\` and `|`, and the extension is `key=value` pairs
//! separated by spaces whose values escape `\`, `=` and line breaks.

use std::fmt::Write as _;
use std::net::IpAddr;

use stockade_policy::{Alert, AlertKind, AuditEntry, Outcome, Severity};

use super::describe;
use super::digest::Digest;
use super::Context;

/// The product's version, as the CEF header reports it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How many alerts a digest's `msg` describes one by one.
const DIGEST_DETAILED: usize = 3;

/// A header field with `\` and `|` escaped; line breaks become spaces
/// because the header has no escape for them.
pub(crate) fn escape_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An extension value with `\`, `=`, and line breaks escaped (`\n`, `\r`),
/// so that a value can never end early or start a fake key.
pub(crate) fn escape_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// CEF's 0–10 severity: 3 low, 6 medium, 9 very high.
pub(crate) fn severity(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 3,
        Severity::Warning => 6,
        Severity::Critical => 9,
    }
}

/// Which end of a flow an address is.
#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
}

/// A CEF message being put together.
struct Event {
    signature: String,
    name: String,
    severity: u8,
    extension: Vec<(&'static str, String)>,
}

impl Event {
    fn new(signature: &str, name: &str, severity: Severity) -> Event {
        Event {
            signature: signature.to_owned(),
            name: name.to_owned(),
            severity: self::severity(severity),
            extension: Vec::new(),
        }
    }

    fn set(&mut self, key: &'static str, value: impl ToString) {
        self.extension.push((key, value.to_string()));
    }

    /// A custom string with its label (`cs1Label=rule cs1=…`).
    fn custom(&mut self, n: u8, label: &str, value: impl ToString) {
        let (label_key, key) = match n {
            1 => ("cs1Label", "cs1"),
            2 => ("cs2Label", "cs2"),
            3 => ("cs3Label", "cs3"),
            4 => ("cs4Label", "cs4"),
            5 => ("cs5Label", "cs5"),
            _ => ("cs6Label", "cs6"),
        };
        self.set(label_key, label);
        self.set(key, value);
    }

    /// A flow end's address. `src`/`dst` take IPv4 only; CEF reserves
    /// `c6a2`/`c6a3` for IPv6 source and destination addresses.
    fn address(&mut self, ip: IpAddr, side: Side) {
        let (v4, v6, v6_label, label) = match side {
            Side::Src => ("src", "c6a2", "c6a2Label", "Source IPv6 Address"),
            Side::Dst => ("dst", "c6a3", "c6a3Label", "Destination IPv6 Address"),
        };
        match ip.to_canonical() {
            IpAddr::V4(addr) => self.set(v4, addr),
            IpAddr::V6(addr) => {
                self.set(v6_label, label);
                self.set(v6, addr);
            }
        }
    }

    fn render(&self) -> String {
        let mut out = format!(
            "CEF:0|Stockade|Stockade|{}|{}|{}|{}|",
            escape_header(VERSION),
            escape_header(&self.signature),
            escape_header(&self.name),
            self.severity
        );
        for (i, (key, value)) in self.extension.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            // Writing to a String cannot fail.
            let _ = write!(out, "{sep}{key}={}", escape_value(value));
        }
        out
    }
}

/// The CEF message for one alert; fields that do not apply are left out.
pub(crate) fn alert(alert: &Alert, ctx: &Context) -> String {
    let mut e = Event::new(alert.kind.as_str(), alert.kind.title(), alert.severity);
    e.set("rt", alert.last_seen_ms);
    e.set("start", alert.first_seen_ms);
    e.set("end", alert.last_seen_ms);
    e.set("cnt", alert.count);
    if let Some(flow) = &alert.flow {
        e.address(flow.src.ip, Side::Src);
        e.set("spt", flow.src.port);
        e.address(flow.dst.ip, Side::Dst);
        e.set("dpt", flow.dst.port);
        e.set("proto", describe::protocol(flow.protocol));
        match alert.kind {
            AlertKind::PolicyViolation => e.set("act", "blocked"),
            AlertKind::BaselineDeviation => e.set("act", "allowed"),
            _ => {}
        }
        e.custom(1, "rule", describe::rule(flow));
    }
    if let Some(change) = &alert.change {
        config_change(&mut e, change);
    }
    let workload_app = alert
        .workload
        .as_ref()
        .and_then(|w| w.identity.as_ref())
        .map(|n| n.to_string());
    let src_app = alert.flow.as_ref().and_then(|f| f.src.identity.as_ref());
    if let Some(app) = src_app.map(|n| n.to_string()).or(workload_app) {
        e.custom(2, "srcApp", app);
    }
    if let Some(app) = alert.flow.as_ref().and_then(|f| f.dst.identity.as_ref()) {
        e.custom(3, "dstApp", app);
    }
    e.custom(4, "alertId", &alert.id);
    e.custom(5, "class", alert.class.as_str());
    if let Some(zone) = describe::zone(alert) {
        e.custom(6, "zone", zone);
    }
    e.set("externalId", alert.seq);
    e.set("dvchost", ctx.node_name(alert.node));
    // A node alert is about another node than the one reporting it.
    if let Some(subject) = alert.subject_node {
        e.set("dhost", ctx.node_name(subject));
    }
    if let Some(w) = &alert.workload {
        if let Some(pid) = w.pid {
            e.set("spid", pid);
        }
        if !w.executable.is_empty() {
            e.set("fname", &w.executable);
        }
        if let Some(sha) = &w.sha256 {
            e.set("fileHash", sha);
        }
    }
    e.set("msg", &alert.summary);
    e.render()
}

/// The fields of an audit log entry: the token as the source user (`suser`
/// its name, `suid` its id, `spriv` its role), the client's address, what
/// was done (`act`), its outcome, the policy version and the command.
fn config_change(e: &mut Event, change: &AuditEntry) {
    e.set("suser", &change.author.token_name);
    e.set("suid", &change.author.token_id);
    e.set("spriv", change.author.role);
    if let Some(address) = change.address {
        e.address(address.ip(), Side::Src);
        e.set("spt", address.port());
    }
    e.set("act", &change.kind);
    e.set(
        "outcome",
        match change.outcome {
            Outcome::Applied => "success",
            Outcome::Refused { .. } => "failure",
        },
    );
    e.custom(1, "policyVersion", change.version);
    e.custom(3, "command", &change.detail);
}

/// The CEF message for a digest of a burst. `ids` is the text of the ids
/// field (all ids, or as many as fit and the seq range of the rest).
pub(crate) fn digest(digest: &Digest<'_>, ctx: &Context, ids: &str) -> String {
    let mut e = Event::new("digest", &digest.title(), digest.severity);
    e.set("rt", digest.seen_ms.1);
    e.set("start", digest.seen_ms.0);
    e.set("end", digest.seen_ms.1);
    e.set("cnt", digest.occurrences);
    e.custom(4, "alertIds", ids);
    e.set(
        "externalId",
        format!("{}..{}", digest.seqs.0, digest.seqs.1),
    );
    e.set("dvchost", &ctx.hostname);
    let detail: Vec<String> = digest
        .alerts
        .iter()
        .take(DIGEST_DETAILED)
        .map(|a| {
            let app = describe::app(a)
                .map(|app| format!(" {app}"))
                .unwrap_or_default();
            format!(
                "[seq {} {}{app}] {}",
                a.seq,
                a.kind,
                describe::one_line(&a.summary)
            )
        })
        .collect();
    e.set(
        "msg",
        describe::cut(
            &format!("{}; first: {}", digest.summary(), detail.join(" ")),
            2000,
        ),
    );
    e.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::fixtures::{binary_alert, ctx, flow_alert, node_alert};
    use proptest::prelude::*;

    /// Reverses [`escape_value`]; `None` for a lone `\`, an unknown escape or
    /// an unescaped `=`, which a parser would take for a new key.
    fn unescape_value(text: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    '\\' => out.push('\\'),
                    '=' => out.push('='),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    _ => return None,
                },
                '=' | '\n' | '\r' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    #[test]
    fn a_config_change_names_the_token_its_address_and_the_version() {
        let text = alert(&crate::sink::fixtures::config_change_alert(9), &ctx());
        assert!(
            text.starts_with("CEF:0|Stockade|Stockade|")
                && text.contains("|config_change|Configuration changed|3|"),
            "{text}"
        );
        for field in [
            "suser=ci-bot",
            "suid=abc123",
            "spriv=operator",
            "src=192.0.2.9",
            "spt=41234",
            "act=upsert_rule",
            "outcome=success",
            "cs1Label=policyVersion cs1=42",
            "cs4Label=alertId cs4=audit-7",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
    }

    proptest! {
        #[test]
        fn extension_values_round_trip(text in any::<String>()) {
            let escaped = escape_value(&text);
            prop_assert!(!escaped.contains('\n') && !escaped.contains('\r'));
            prop_assert_eq!(unescape_value(&escaped), Some(text));
        }

        #[test]
        fn awkward_values_round_trip(text in "[a=\\\\\n\r|]{0,40}") {
            prop_assert_eq!(unescape_value(&escape_value(&text)), Some(text));
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(escape_header("two\nlines"), "two lines");
        assert_eq!(escape_value("k=v\\x\r\n|"), r"k\=v\\x\r\n|");
    }

    #[test]
    fn a_denied_flow_has_every_field() {
        let text = alert(&flow_alert(42), &ctx());
        assert_eq!(
            text,
            "CEF:0|Stockade|Stockade|0.1.0|policy_violation|Flow blocked by policy|9|\
             rt=1714566896789 start=1714566800000 end=1714566896789 cnt=12 \
             src=10.0.1.5 spt=40112 dst=10.0.2.9 dpt=5432 proto=TCP act=blocked \
             cs1Label=rule cs1=rule 17 (at egress) cs2Label=srcApp cs2=prod/web/frontend \
             cs3Label=dstApp cs3=pci/billing/db cs4Label=alertId cs4=01HZFLOW000042 \
             cs5Label=class cs5=burst cs6Label=zone cs6=prod externalId=42 dvchost=edge-1 \
             spid=4242 fname=/opt/web/bin/frontend \
             fileHash=3f2a9c1b0d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef \
             msg=prod/web/frontend tried pci/billing/db:5432 \\= denied | by rule 17\\nagain"
        );
    }

    #[test]
    fn fields_that_do_not_apply_are_left_out() {
        let binary = alert(&binary_alert(7), &ctx());
        assert!(binary.contains("|unknown_binary|Unknown binary running|6|"));
        for absent in ["src=", "act=", "cs1=", "cs2=", "fileHash="] {
            assert!(!binary.contains(absent), "{absent} in {binary}");
        }
        assert!(binary.contains("cs6=dev") && binary.contains("fname=/tmp/x"));
        let node = alert(&node_alert(3), &ctx());
        assert!(node.contains("dvchost=edge-1 dhost=edge-2 msg=edge-2 missed 3 heartbeats"));
    }

    #[test]
    fn ipv6_addresses_use_their_own_keys() {
        let mut a = flow_alert(1);
        if let Some(flow) = &mut a.flow {
            flow.src.ip = "fd00::5".parse().expect("literal address");
            flow.dst.ip = "::ffff:10.0.2.9".parse().expect("literal address");
        }
        let text = alert(&a, &ctx());
        assert!(text.contains("c6a2Label=Source IPv6 Address c6a2=fd00::5 spt=40112"));
        assert!(text.contains(" dst=10.0.2.9 "), "{text}");
    }

    #[test]
    fn digests_count_and_list() {
        let alerts = vec![flow_alert(1), binary_alert(2), node_alert(3)];
        let d = Digest::new(&alerts);
        let text = digest(&d, &ctx(), "a,b,c");
        assert!(text.starts_with(
            "CEF:0|Stockade|Stockade|0.1.0|digest|Alert digest: 3 alerts (rate limit reached)|9|"
        ));
        assert!(text.contains("cs4Label=alertIds cs4=a,b,c externalId=1..3 dvchost=edge-1"));
        assert!(text.contains("[seq 1 policy_violation prod/web/frontend]"));
    }
}
