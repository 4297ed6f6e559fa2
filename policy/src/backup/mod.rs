//! Backups of the cluster state: a versioned, checksummed and signed file
//! holding the [durable part](DurableState) of the state, secrets included.
//!
//! # Format (version 1)
//!
//! A UTF-8 text file of six lines, each ending in `\n`:
//!
//! ```text
//! stockade-backup 1                  magic and format version
//! {"ca_fingerprint":…,…}             the header (JSON, one line)
//! {"settings":…,…}                   the durable state (canonical JSON)
//! [{"seq":1,…},…]                    the audit log (JSON, oldest first)
//! hmac-sha256 <64 hex digits>        HMAC of lines 1-4, keyed by the cluster CA
//! sha256 <64 hex digits>             SHA-256 of lines 1-5
//! ```
//!
//! The audit log travels with the backup but is not part of the durable
//! state: a restore adds the entries the cluster does not hold to its log
//! and never removes one, since an audit trail that a restore could roll
//! back would prove nothing.
//!
//! # Integrity, tampering and foreign backups
//!
//! The last line is a checksum of everything before it: any damage
//! (truncation, a flipped byte anywhere) is found and named. A checksum
//! alone can be recomputed by whoever edits the file, so line 4 is an
//! HMAC-SHA256 keyed by a key derived from the cluster CA's private key,
//! which only the cluster holds: a backup edited by anyone else is refused
//! as not signed by this cluster. The header names the cluster by its CA
//! fingerprint (the SHA-256 of the CA certificate, as join tokens pin it):
//! another cluster's backup is refused as foreign, unless the restore
//! explicitly allows it (a disaster restore into a newly initialised
//! cluster). A foreign backup's HMAC cannot be checked — the key that made
//! it is gone with its cluster — so such a restore trusts the file's
//! provenance and is protected against damage only.
//!
//! The file carries sink secrets and token hashes but not the CA key; it
//! must still be kept like the data directories (mode 0600).
//!
//! Everything is checked before anything is used: [`Backup::open`] either
//! returns the whole backup or a [`BackupError`] saying what is wrong.

mod durable;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

pub use durable::{durable_digest, DurableState};

use crate::audit::AuditEntry;
use crate::cluster_key::ClusterKey;
use crate::state::ClusterState;
use crate::Sha256;

/// The first word of every backup.
pub const BACKUP_MAGIC: &str = "stockade-backup";

/// The format version this code writes and the newest it reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;

/// What a backup says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupHeader {
    /// Lowercase hex SHA-256 of the DER certificate of the cluster CA:
    /// which cluster the backup is of.
    pub ca_fingerprint: String,
    /// When it was taken (ms since the Unix epoch).
    pub taken_at_ms: u64,
    /// The log index (policy version) of the state it holds.
    pub source_index: u64,
    /// SHA-256 of the durable state it holds ([`DurableState::digest`]).
    pub durable_digest: Sha256,
}

/// A backup, checked and read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// What it says about itself.
    pub header: BackupHeader,
    /// The durable state it holds.
    pub state: DurableState,
    /// The audit log as it was, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// Why a backup cannot be written or is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    /// The file does not start with the magic word.
    #[error("not a Stockade backup: it does not start with `{BACKUP_MAGIC}`")]
    NotABackup,
    /// Written by a newer Stockade.
    #[error("backup format version {found} is newer than this stockade reads (up to {BACKUP_FORMAT_VERSION}); restore it with a newer stockade")]
    FutureVersion {
        /// The version the file declares.
        found: u32,
    },
    /// The file ends early.
    #[error("the backup is truncated: {0}")]
    Truncated(&'static str),
    /// The checksum does not match: the file was damaged or edited.
    #[error("the backup is corrupt: its SHA-256 checksum does not match its contents (the file was damaged or changed)")]
    ChecksumMismatch,
    /// A part of the file cannot be read.
    #[error("the backup is corrupt: {0}")]
    Malformed(String),
    /// The HMAC does not match this cluster's key.
    #[error("the backup is not signed by this cluster: its HMAC does not match (it was changed by someone without the cluster's CA key)")]
    NotSigned,
    /// Another cluster's backup, and the restore did not allow it.
    #[error("the backup is of another cluster (CA fingerprint {backup}), this cluster's CA is {cluster}; restore it only on purpose, with allow_foreign (`--allow-foreign`)")]
    Foreign {
        /// The CA fingerprint in the backup.
        backup: String,
        /// This cluster's.
        cluster: String,
    },
    /// The cluster has no CA yet (not initialised), or its CA cannot be read.
    #[error("this cluster has no usable certificate authority: {0}")]
    NoCertificateAuthority(String),
}

impl Backup {
    /// Writes a backup of `state`, taken at `taken_at_ms` from log index
    /// `source_index`, signed with the state's CA key.
    pub fn write(
        state: &ClusterState,
        source_index: u64,
        taken_at_ms: u64,
    ) -> Result<Vec<u8>, BackupError> {
        let ca = cluster_key(state)?;
        let durable = DurableState::of(state);
        let payload = durable.to_json();
        let header = BackupHeader {
            ca_fingerprint: ca.fingerprint().to_owned(),
            taken_at_ms,
            source_index,
            durable_digest: Sha256(sha2::Sha256::digest(&payload).into()),
        };
        let mut out = format!("{BACKUP_MAGIC} {BACKUP_FORMAT_VERSION}\n").into_bytes();
        serde_json::to_writer(&mut out, &header)
            .map_err(|e| BackupError::Malformed(format!("cannot encode the header: {e}")))?;
        out.push(b'\n');
        out.extend_from_slice(&payload);
        out.push(b'\n');
        let audit: Vec<&AuditEntry> = state.audit.entries.iter().collect();
        serde_json::to_writer(&mut out, &audit)
            .map_err(|e| BackupError::Malformed(format!("cannot encode the audit log: {e}")))?;
        out.push(b'\n');
        let mac = ca.sign(&out);
        out.extend_from_slice(format!("hmac-sha256 {mac}\n").as_bytes());
        let sum = Sha256(sha2::Sha256::digest(&out).into());
        out.extend_from_slice(format!("sha256 {sum}\n").as_bytes());
        Ok(out)
    }

    /// Checks `bytes` as a backup to restore into `state` and reads it:
    /// magic, version, checksum, structure, cluster and signature, in that
    /// order. `allow_foreign` accepts another cluster's backup (whose
    /// signature cannot be checked here).
    pub fn open(
        bytes: &[u8],
        state: &ClusterState,
        allow_foreign: bool,
    ) -> Result<Backup, BackupError> {
        let (signed, mac) = Self::check_sum(bytes)?;
        let mut lines = signed.split_inclusive(|b| *b == b'\n');
        let (Some(_), Some(header), Some(payload), Some(audit), None) = (
            lines.next(),
            lines.next(),
            lines.next(),
            lines.next(),
            lines.next(),
        ) else {
            return Err(BackupError::Malformed(
                "expected a header line, a state line and an audit log line".into(),
            ));
        };
        let header: BackupHeader = serde_json::from_slice(header)
            .map_err(|e| BackupError::Malformed(format!("the header cannot be read: {e}")))?;
        let payload = &payload[..payload.len() - 1];
        if Sha256(sha2::Sha256::digest(payload).into()) != header.durable_digest {
            return Err(BackupError::Malformed(
                "the state does not match the digest in the header".into(),
            ));
        }
        let ca = cluster_key(state)?;
        if header.ca_fingerprint != ca.fingerprint() {
            if !allow_foreign {
                return Err(BackupError::Foreign {
                    backup: header.ca_fingerprint,
                    cluster: ca.fingerprint().to_owned(),
                });
            }
        } else if !ca.verify(signed, &mac) {
            return Err(BackupError::NotSigned);
        }
        let state: DurableState = serde_json::from_slice(payload)
            .map_err(|e| BackupError::Malformed(format!("the state cannot be read: {e}")))?;
        if state.to_json() != payload {
            return Err(BackupError::Malformed(
                "the state is not in canonical form".into(),
            ));
        }
        let audit: Vec<AuditEntry> = serde_json::from_slice(audit)
            .map_err(|e| BackupError::Malformed(format!("the audit log cannot be read: {e}")))?;
        Ok(Backup {
            header,
            state,
            audit,
        })
    }

    /// Checks magic, version and checksum; returns the signed part (lines
    /// 1-4) and the HMAC.
    fn check_sum(bytes: &[u8]) -> Result<(&[u8], Sha256), BackupError> {
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let first = std::str::from_utf8(first).map_err(|_| BackupError::NotABackup)?;
        let version = first
            .strip_prefix(BACKUP_MAGIC)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or(BackupError::NotABackup)?;
        if bytes.len() == first.len() {
            return Err(BackupError::Truncated("it ends after the first line"));
        }
        match version.parse::<u32>() {
            Ok(BACKUP_FORMAT_VERSION) => {}
            Ok(found) if found > BACKUP_FORMAT_VERSION => {
                return Err(BackupError::FutureVersion { found })
            }
            _ => {
                return Err(BackupError::Malformed(format!(
                    "`{version}` is not a format version"
                )))
            }
        }
        let body = bytes
            .strip_suffix(b"\n")
            .ok_or(BackupError::Truncated("its last line is incomplete"))?;
        let (summed, sum_line) =
            split_last_line(body).ok_or(BackupError::Truncated("the checksum line is missing"))?;
        let sum = sum_line
            .strip_prefix(b"sha256 ")
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| hex.parse::<Sha256>().ok())
            .ok_or(BackupError::Truncated("the checksum line is missing"))?;
        if Sha256(sha2::Sha256::digest(summed).into()) != sum {
            return Err(BackupError::ChecksumMismatch);
        }
        let body = &summed[..summed.len() - 1];
        let (signed, mac_line) = split_last_line(body)
            .ok_or_else(|| BackupError::Malformed("the HMAC line is missing".into()))?;
        let mac = mac_line
            .strip_prefix(b"hmac-sha256 ")
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| hex.parse::<Sha256>().ok())
            .ok_or_else(|| BackupError::Malformed("the HMAC line is missing".into()))?;
        Ok((signed, mac))
    }
}

/// A restore's checks on top of [`Backup::open`]: the restored state must
/// keep an admin token. Returns the backup to put in place.
pub(crate) fn check_restore(
    backup: &str,
    allow_foreign: bool,
    keep_token: Option<&str>,
    state: &ClusterState,
) -> Result<Backup, crate::ValidationError> {
    let opened = Backup::open(backup.as_bytes(), state, allow_foreign)
        .map_err(|e| crate::ValidationError::new("backup", e.to_string()))?;
    let kept_admin = keep_token
        .and_then(|id| state.access.api_tokens.get(id))
        .is_some_and(|t| t.role == crate::Role::Admin);
    let admin_in_backup = opened
        .state
        .api_tokens
        .values()
        .any(|t| t.role == crate::Role::Admin);
    if !kept_admin && !admin_in_backup {
        return Err(crate::ValidationError::new(
            "backup",
            "the backup holds no admin token, and no admin token of this cluster is kept: nobody could administer the cluster afterwards",
        ));
    }
    Ok(opened)
}

/// The record of the last backup taken, kept in the replicated state so
/// that any node can report it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupRecord {
    /// When it was taken (ms since the Unix epoch).
    pub taken_at_ms: u64,
    /// The log index of the state it holds.
    pub source_index: u64,
    /// SHA-256 of the durable state it holds.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub durable_digest: Sha256,
    /// The node that wrote it.
    pub node: crate::NodeId,
    /// The file's name in that node's backup directory.
    pub file: String,
}

/// Splits `text` at its last `\n`: everything up to and including it, and
/// the last line. `None` when there is no `\n`.
fn split_last_line(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = text.iter().rposition(|b| *b == b'\n')?;
    Some((&text[..=at], &text[at + 1..]))
}

/// The cluster's key for backups.
fn cluster_key(state: &ClusterState) -> Result<ClusterKey, BackupError> {
    ClusterKey::of(state, "backup").map_err(|e| BackupError::NoCertificateAuthority(e.to_string()))
}
