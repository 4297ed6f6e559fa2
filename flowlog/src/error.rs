//! The one error type of the flow log.

use std::io;
use std::path::PathBuf;

/// Why a flow-log operation failed, always naming the file involved, so an
/// operator reading the node's log knows which file to look at.
///
/// Corruption found while reading is *not* an error: it is repaired or skipped
/// and counted in [`crate::FlowLogStats`], because a damaged history must never
/// stop a node from enforcing policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowLogError {
    /// The operating system refused a read, write, create, delete or sync.
    #[error("flow log: I/O error on {}: {source}", path.display())]
    Io {
        /// The file or folder the operation was on.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A `.flog` file in the folder does not start with the flow-log magic:
    /// the folder is shared with something else, and deleting or truncating
    /// that file could destroy someone's data, so the log refuses to open.
    #[error(
        "flow log: {} is not a Stockade flow-log segment (no STKFLOG1 header); refusing to use the folder",
        path.display()
    )]
    Foreign {
        /// The file that is not ours.
        path: PathBuf,
    },
    /// A segment written by a newer (or unknown) format version: reading it
    /// with the wrong decoder would misreport flows, so it is refused.
    #[error(
        "flow log: {} has format version {found}, this build reads version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        /// The segment.
        path: PathBuf,
        /// The version in its header.
        found: u32,
        /// The version this build writes and reads.
        supported: u32,
    },
    /// One record encodes to more than [`crate::MAX_RECORD_BYTES`]; such a
    /// record is a bug upstream, and bounding it keeps a corrupt length field
    /// from making a reader allocate gigabytes. Nothing of the batch is written.
    #[error(
        "flow log: a record of {size} bytes exceeds the {max}-byte limit (not written to {})",
        path.display()
    )]
    RecordTooLarge {
        /// The segment the batch was headed for.
        path: PathBuf,
        /// The encoded size of the record.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The record type cannot be encoded with postcard (for instance a map
    /// with non-serializable keys). Nothing of the batch is written.
    #[error("flow log: cannot encode a record for {}: {source}", path.display())]
    Encode {
        /// The segment the batch was headed for.
        path: PathBuf,
        /// What postcard said.
        #[source]
        source: postcard::Error,
    },
    /// The limits cannot be honoured (a zero size, or a budget smaller than
    /// one segment).
    #[error("flow log: invalid limits for {}: {reason}", path.display())]
    InvalidLimits {
        /// The log's folder.
        path: PathBuf,
        /// What is wrong with them.
        reason: String,
    },
}

impl FlowLogError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        FlowLogError::Io {
            path: path.into(),
            source,
        }
    }
}
