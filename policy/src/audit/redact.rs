//! What the audit log says about a command: its kind and a compact JSON
//! rendering with every secret replaced by [`Secret::REDACTED`].

use serde_json::Value;

use crate::command::Command;
use crate::Secret;

/// The most characters of a command's JSON an audit entry keeps; longer
/// renderings (a whole imported document) are cut and end with `…`.
pub const MAX_DETAIL_CHARS: usize = 2048;

/// JSON fields whose values are secrets or stand for them wherever they
/// appear (token digests prove nothing, but are no one's business either).
const SECRET_FIELDS: [&str; 4] = ["secret_sha256", "key_pem", "webhook_url", "token"];

/// The command's kind: its `op` (`upsert_rule`, `batch`, …); for access
/// commands, what they do to access (`create_api_token`, …); the kind of
/// the audited command for an audited one.
pub fn command_kind(command: &Command) -> String {
    match command {
        Command::Audited { command, .. } => command_kind(command),
        Command::Access(access) => tag(
            &serde_json::to_value(access).unwrap_or(Value::Null),
            "access",
        ),
        other => tag(&serde_json::to_value(other).unwrap_or(Value::Null), "op"),
    }
}

fn tag(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned()
}

/// The command as compact JSON with its secrets redacted, cut to
/// [`MAX_DETAIL_CHARS`] characters.
pub fn redacted_detail(command: &Command) -> String {
    let mut value = serde_json::to_value(command).unwrap_or(Value::Null);
    redact_value(&mut value);
    let text = value.to_string();
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// Replaces, at any depth, the values of fields that hold secrets. Fields
/// named like [`SECRET_FIELDS`] that are empty or absent stay as they are,
/// so the reader still sees whether there was one.
fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if SECRET_FIELDS.contains(&key.as_str()) && !field.is_null() {
                    *field = Value::String(Secret::REDACTED.into());
                } else {
                    redact_value(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}
