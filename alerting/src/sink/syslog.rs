//! Syslog for SIEMs: RFC 5424 lines carrying a CEF message, framed by octet
//! counting (RFC 6587) on TCP or TLS (RFC 5425).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME stockade - MSGID [stockade@32473 …] CEF:0|…`

use std::fmt::Write as _;

use stockade_policy::{Alert, Severity};

use super::cef;
use super::describe;
use super::digest::Digest;
use super::transport::Transport;
use super::{Context, SinkError};

/// The longest line a digest may be. RFC 5425 collectors must take 2048
/// octets and should take 8192; rsyslog's default limit is 8096, so this
/// stays under it with room for the frame.
pub(crate) const MAX_LINE: usize = 8000;

/// Facility `auth` (security/authorization messages).
const FACILITY_AUTH: u8 = 4;

/// The APP-NAME of every line.
const APP_NAME: &str = "stockade";

/// Our structured data element. 32473 is the enterprise number RFC 5612
/// reserves for documentation; `SD-ID`s with an `@` need not be registered.
const SD_ID: &str = "stockade@32473";

/// The longest HOSTNAME RFC 5424 allows.
const MAX_HOSTNAME: usize = 255;

/// The longest APP-NAME and MSGID RFC 5424 allows.
const MAX_APP_NAME: usize = 48;
const MAX_MSGID: usize = 32;

/// A syslog sink: formats lines and writes them on its [`Transport`].
pub(crate) struct Syslog {
    transport: Transport,
}

impl Syslog {
    /// The sink `name` delivering to `address`; see [`Transport::new`].
    pub(crate) fn new(
        name: &str,
        address: &str,
        tls: bool,
        ca_pem: Option<&str>,
    ) -> Result<Syslog, SinkError> {
        Ok(Syslog {
            transport: Transport::new(name, address, tls, ca_pem)?,
        })
    }

    /// Writes one framed line per alert with a single flush.
    pub(crate) async fn send(&mut self, alerts: &[Alert], ctx: &Context) -> Result<(), SinkError> {
        let mut batch = Vec::new();
        for alert in alerts {
            frame(&line(alert, ctx), &mut batch);
        }
        tracing::debug!(
            target = self.transport.origin().target(),
            alerts = alerts.len(),
            bytes = batch.len(),
            "sending syslog batch"
        );
        self.transport.write(&batch).await
    }

    /// Writes one line standing for all of `alerts`.
    pub(crate) async fn send_digest(
        &mut self,
        alerts: &[Alert],
        ctx: &Context,
    ) -> Result<(), SinkError> {
        let mut framed = Vec::new();
        frame(&digest_line(&Digest::new(alerts), ctx), &mut framed);
        self.transport.write(&framed).await
    }
}

/// `msg` framed by octet counting: its length in bytes, a space, itself.
pub(crate) fn frame(msg: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(msg.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(msg.as_bytes());
}

/// PRI: facility `auth` with the alert's severity (critical 2, warning 4,
/// informational 6).
pub(crate) fn pri(severity: Severity) -> u8 {
    let level = match severity {
        Severity::Critical => 2,
        Severity::Warning => 4,
        Severity::Info => 6,
    };
    FACILITY_AUTH * 8 + level
}

/// A header field (HOSTNAME, APP-NAME, MSGID): printable ASCII only, so
/// anything else becomes `_`; at most `max` characters; the NILVALUE `-`
/// when empty.
pub(crate) fn header_field(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if clean.is_empty() {
        "-".to_owned()
    } else {
        clean
    }
}

/// An SD-PARAM value with `"`, `\` and `]` escaped by a backslash.
pub(crate) fn escape_sd(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A whole RFC 5424 line; `params` are the structured data parameters.
fn render(
    severity: Severity,
    time_ms: u64,
    ctx: &Context,
    msgid: &str,
    params: &[(&str, String)],
    msg: &str,
) -> String {
    let mut sd = format!("[{SD_ID}");
    for (name, value) in params {
        // Writing to a String cannot fail.
        let _ = write!(sd, " {name}=\"{}\"", escape_sd(value));
    }
    sd.push(']');
    format!(
        "<{}>1 {} {} {} - {} {sd} {msg}",
        pri(severity),
        describe::timestamp(time_ms).unwrap_or_else(|| "-".to_owned()),
        header_field(&ctx.hostname, MAX_HOSTNAME),
        header_field(APP_NAME, MAX_APP_NAME),
        header_field(msgid, MAX_MSGID),
    )
}

/// The line for one alert.
pub(crate) fn line(alert: &Alert, ctx: &Context) -> String {
    render(
        alert.severity,
        alert.last_seen_ms,
        ctx,
        alert.kind.as_str(),
        &[
            ("id", alert.id.0.clone()),
            ("seq", alert.seq.to_string()),
            ("class", alert.class.as_str().to_owned()),
            ("count", alert.count.to_string()),
        ],
        &cef::alert(alert, ctx),
    )
}

/// The line for a digest, at most [`MAX_LINE`] bytes: the ids that do not
/// fit are given as a sequence range, and the line says so.
pub(crate) fn digest_line(digest: &Digest<'_>, ctx: &Context) -> String {
    let build = |ids: &str| {
        render(
            digest.severity,
            digest.seen_ms.1,
            ctx,
            "digest",
            &[
                ("alerts", digest.alerts.len().to_string()),
                ("seq", format!("{}..{}", digest.seqs.0, digest.seqs.1)),
                ("count", digest.occurrences.to_string()),
            ],
            &cef::digest(digest, ctx, ids),
        )
    };
    let mut budget = MAX_LINE.saturating_sub(build("").len());
    loop {
        let line = build(&digest.ids(budget, ",").text);
        // Escaping can make ids longer than measured; shrink until it fits.
        if line.len() <= MAX_LINE || budget == 0 {
            return line;
        }
        budget = budget.saturating_sub(line.len() - MAX_LINE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::fixtures::{ctx, flow_alert, node_alert};

    #[test]
    fn a_line_is_rfc5424_with_cef() {
        let text = line(&flow_alert(42), &ctx());
        let expected = "<34>1 2024-05-01T12:34:56.789Z edge-1 stockade - policy_violation \
            [stockade@32473 id=\"01HZFLOW000042\" seq=\"42\" class=\"burst\" count=\"12\"] \
            CEF:0|Stockade|Stockade|0.1.0|policy_violation|";
        assert!(text.starts_with(expected), "{text}");
        assert!(!text.contains('\n'));
        assert_eq!(pri(Severity::Warning), 36);
        assert_eq!(pri(Severity::Info), 38);
    }

    #[test]
    fn header_fields_are_printable_ascii() {
        assert_eq!(header_field("", 255), "-");
        assert_eq!(header_field("edge 1\tö", 255), "edge_1__");
        assert_eq!(header_field(&"h".repeat(300), MAX_HOSTNAME).len(), 255);
        let mut c = ctx();
        c.hostname = String::new();
        assert!(line(&node_alert(1), &c).contains(" - stockade - node_down "));
    }

    #[test]
    fn sd_values_escape_quote_backslash_bracket() {
        assert_eq!(escape_sd(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        let mut alert = node_alert(1);
        alert.id.0 = "x\"]y".into();
        assert!(line(&alert, &ctx()).contains(r#"[stockade@32473 id="x\"\]y" seq="1""#));
    }

    #[test]
    fn frames_count_bytes_not_characters() {
        let mut out = Vec::new();
        frame("héllo", &mut out);
        frame("x", &mut out);
        assert_eq!(out, "6 héllo1 x".as_bytes());
    }

    #[test]
    fn big_digests_fit_and_say_what_was_left_out() {
        let alerts: Vec<Alert> = (1..=2000).map(node_alert).collect();
        let text = digest_line(&Digest::new(&alerts), &ctx());
        assert!(text.len() <= MAX_LINE, "{}", text.len());
        assert!(text.starts_with("<38>1 1970-01-01T00:00:04.000Z edge-1 stockade - digest "));
        assert!(text.contains(r#"[stockade@32473 alerts="2000" seq="1..2000" count="4000"]"#));
        assert!(text.contains("cs4=01HZNODE000001,01HZNODE000002,"));
        assert!(text.contains("more: seq "), "{text}");
        let few: Vec<Alert> = (1..=3).map(node_alert).collect();
        let text = digest_line(&Digest::new(&few), &ctx());
        assert!(text.contains("cs4=01HZNODE000001,01HZNODE000002,01HZNODE000003 "));
    }
}
