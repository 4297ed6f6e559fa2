//! Errors of the control plane's storage.

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};

use crate::types::{NodeId, StorageError};

/// Why the Raft storage could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// sled failed (I/O error, corruption, or the database is already open
    /// in another process).
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record could not be encoded or decoded.
    #[error("encoding: {0}")]
    Codec(#[from] serde_json::Error),
    /// The database's data file could not be opened or fsynced.
    #[error("data file: {0}")]
    File(#[from] std::io::Error),
    /// The blocking task that flushed the database to disk died.
    #[error("storage task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Error {
    /// This error as openraft's storage error, about `subject`, raised while
    /// doing `verb`.
    pub(crate) fn storage(self, subject: ErrorSubject<NodeId>, verb: ErrorVerb) -> StorageError {
        StorageIOError::new(subject, verb, AnyError::new(&self)).into()
    }
}

/// The result of the crate's own storage helpers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Encodes a record as JSON.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

/// Decodes a JSON record.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}
