//! Errors of the policy engine.

use std::fmt;

/// A command or document that cannot be accepted, with the field at fault and
/// the reason, so the person who wrote it can fix it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationError {
    /// Path of the offending field, e.g. `rule.to.zone` or `batch[3].ports[1]`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ValidationError {
    /// An error on `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error, seen from a container: `prefix.field`.
    pub fn within(self, prefix: &str) -> Self {
        ValidationError {
            field: format!("{prefix}.{}", self.field),
            reason: self.reason,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A policy document that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The text is not a well-formed policy document; the message gives the
    /// line, the column and what was expected there.
    #[error(transparent)]
    Parse(#[from] toml::de::Error),
    /// The policy could not be written out as TOML.
    #[error(transparent)]
    Write(#[from] toml::ser::Error),
}
