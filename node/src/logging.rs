//! The daemon's logs: text or JSON lines on stderr, filtered by
//! `STOCKADE_LOG` (an `EnvFilter` directive, default `info,openraft=warn`),
//! each line carrying this node's name and, once the node has loaded its
//! identity, its id.
//!
//! The node's name and id are process-wide facts (one node per process),
//! so they are not a span that every spawned task would have to be
//! instrumented with: the event formatter adds them to every line, from
//! whichever task or thread it comes, Raft's and the reconciler's included.
//! In JSON they are the top-level keys `node_id` and `node_name`; in text,
//! `node_id=N node_name=NAME` end the line.

use std::fmt;
use std::io::IsTerminal as _;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (with `message`), `span`/`spans`, `node_id` and `node_name`.
    Json,
}

impl LogFormat {
    /// `STOCKADE_LOG_FORMAT` for the commands that have no node settings:
    /// text when unset, an error naming the value when it is neither
    /// `text` nor `json` (as the node's own `--log-format` would say).
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("STOCKADE_LOG_FORMAT") {
            Err(std::env::VarError::NotPresent) => Ok(LogFormat::Text),
            Err(std::env::VarError::NotUnicode(v)) => {
                Err(format!("STOCKADE_LOG_FORMAT={v:?} is not `text` or `json`"))
            }
            Ok(v) => <Self as clap::ValueEnum>::from_str(&v, false)
                .map_err(|_| format!("STOCKADE_LOG_FORMAT={v:?} is not `text` or `json`")),
        }
    }
}

/// This process's node, once known.
static NODE_NAME: OnceLock<String> = OnceLock::new();
static NODE_ID: OnceLock<u64> = OnceLock::new();

/// Records the node's name for every later line (the first call wins).
pub fn set_node_name(name: &str) {
    let _ = NODE_NAME.set(name.to_owned());
}

/// Records the node's id for every later line (the first call wins: a
/// node's id never changes).
pub fn set_node_id(id: u64) {
    let _ = NODE_ID.set(id);
}

/// Installs the process's log subscriber. Call once, first thing.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("STOCKADE_LOG").unwrap_or_else(|_| "info,openraft=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal();
            builder
                .with_ansi(ansi)
                .event_format(WithNode::new(format::format().with_ansi(ansi), format))
                .init();
        }
        LogFormat::Json => builder
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(WithNode::new(format::format().json(), format))
            .init(),
    }
}

/// An event format that adds the node's name and id to what `inner`
/// writes.
struct WithNode<F> {
    inner: F,
    format: LogFormat,
}

impl<F> WithNode<F> {
    fn new(inner: F, format: LogFormat) -> Self {
        WithNode { inner, format }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithNode<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let name = NODE_NAME.get().map(String::as_str);
        let id = NODE_ID.get().copied();
        writer.write_str(&labelled(&line, self.format, name, id))
    }
}

/// `line` (as the inner format wrote it, newline included) with the node's
/// name and id added.
fn labelled(line: &str, format: LogFormat, name: Option<&str>, id: Option<u64>) -> String {
    let mut label = Vec::new();
    match format {
        LogFormat::Json => {
            if let Some(id) = id {
                label.push(format!("\"node_id\":{id}"));
            }
            if let Some(name) = name {
                let quoted = serde_json::to_string(name).unwrap_or_else(|_| "\"?\"".into());
                label.push(format!("\"node_name\":{quoted}"));
            }
            match line.strip_prefix('{') {
                Some(rest) if !label.is_empty() => {
                    let comma = if rest.trim_start().starts_with('}') {
                        ""
                    } else {
                        ","
                    };
                    format!("{{{}{comma}{rest}", label.join(","))
                }
                _ => line.to_owned(),
            }
        }
        LogFormat::Text => {
            if let Some(id) = id {
                label.push(format!("node_id={id}"));
            }
            if let Some(name) = name {
                label.push(format!("node_name={name}"));
            }
            if label.is_empty() {
                return line.to_owned();
            }
            let body = line.strip_suffix('\n').unwrap_or(line);
            let newline = if body.len() < line.len() { "\n" } else { "" };
            format!("{body} {}{newline}", label.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_get_the_node_as_top_level_keys() {
        let line = "{\"timestamp\":\"t\",\"level\":\"INFO\",\"fields\":{\"message\":\"hi\"}}\n";
        let out = labelled(line, LogFormat::Json, Some("n\"1"), Some(3));
        let value: serde_json::Value = serde_json::from_str(out.trim_end()).expect("still JSON");
        assert_eq!(value["node_id"], 3);
        assert_eq!(value["node_name"], "n\"1");
        assert_eq!(value["fields"]["message"], "hi");
        assert!(out.ends_with('\n'));
        // Before the id is known: the name alone.
        let out = labelled(line, LogFormat::Json, Some("n1"), None);
        let value: serde_json::Value = serde_json::from_str(out.trim_end()).expect("JSON");
        assert_eq!(value["node_name"], "n1");
        assert!(value.get("node_id").is_none());
        assert_eq!(labelled(line, LogFormat::Json, None, None), line);
        let empty = labelled("{}\n", LogFormat::Json, None, Some(2));
        assert_eq!(empty, "{\"node_id\":2}\n");
    }

    #[test]
    fn text_lines_end_with_the_node() {
        let line = "2026-01-01T00:00:00Z  INFO stockade: hi key=1\n";
        assert_eq!(
            labelled(line, LogFormat::Text, Some("n1"), Some(3)),
            "2026-01-01T00:00:00Z  INFO stockade: hi key=1 node_id=3 node_name=n1\n"
        );
        assert_eq!(labelled(line, LogFormat::Text, None, None), line);
    }

    #[test]
    fn the_subscriber_formats_real_events_with_the_node() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .fmt_fields(JsonFields::new())
            .event_format(WithNode::new(format::format().json(), LogFormat::Json))
            .finish();
        set_node_name("test-node");
        set_node_id(7);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("task", n = 1);
            let _entered = span.enter();
            tracing::info!(node = 2, "from a task");
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("UTF-8");
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).expect("JSON");
        assert_eq!(value["node_id"], 7, "{text}");
        assert_eq!(value["node_name"], "test-node", "{text}");
        // A field of the event named like ours does not collide.
        assert_eq!(value["fields"]["node"], 2, "{text}");
        assert_eq!(value["span"]["name"], "task", "{text}");
    }
}
