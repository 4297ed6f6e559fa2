//! Applying a command as a log entry: the bookkeeping the state machine
//! adds to [`Command::apply`] — the policy history and the audit log, both
//! keyed by the entry's index, the policy version.

use crate::audit;
use crate::baseline::LinkChoice;
use crate::command::{Applied, Command};
use crate::error::ValidationError;
use crate::history::{self, VersionMeta};
use crate::state::ClusterState;

impl Command {
    /// Applies the command as the entry at log index `version` (what the
    /// state machine does): like [`Command::apply`], and besides, a change
    /// to the policy document is recorded in the policy history as
    /// `version`, and an [audited](Command::Audited) command in the audit
    /// log, whatever its outcome. The time recorded is the one the command
    /// carries: applying never reads a clock.
    pub fn apply_logged(
        &self,
        state: &mut ClusterState,
        version: u64,
    ) -> Result<Applied, ValidationError> {
        let (by, inner) = match self {
            Command::Audited { by, command } => (Some(by), command.as_ref()),
            other => (None, other),
        };
        let before = inner.touches_document().then(|| history::snapshot(state));
        let result = self.apply(state);
        let mut changed = false;
        if let (Some(before), Ok(_)) = (before, &result) {
            let after = history::snapshot(state);
            if before != after {
                changed = true;
                let meta = VersionMeta {
                    at_ms: by.map(|b| b.at_ms),
                    author: by.map(|b| b.author.clone()),
                    rollback_to: match inner {
                        Command::RollbackPolicy { to } => Some(*to),
                        _ => None,
                    },
                };
                let retention = state.settings.history_retention as usize;
                state
                    .history
                    .record(version, meta, &before, &after, retention);
            }
        }
        if let Some(by) = by {
            audit::record(state, version, by, inner, &result, changed);
        }
        result
    }

    /// Whether applying the command may change the policy document (and
    /// so make a version of the policy history). Spelt out for every kind,
    /// so that a new command must be classified.
    fn touches_document(&self) -> bool {
        match self {
            Command::UpsertZone { .. }
            | Command::RemoveZone { .. }
            | Command::DefineIdentity { .. }
            | Command::RemoveIdentity { .. }
            | Command::UpsertIdentityRule(_)
            | Command::RemoveIdentityRule { .. }
            | Command::RegisterFingerprint(_)
            | Command::RemoveFingerprint { .. }
            | Command::UpsertRule { .. }
            | Command::RemoveRule { .. }
            | Command::UpsertSink(_)
            | Command::RemoveSink { .. }
            | Command::SetSettings(_)
            | Command::RollbackPolicy { .. }
            | Command::Restore { .. } => true,
            Command::DecideLinks { decision, .. } => *decision == LinkChoice::Accept,
            Command::Batch { commands } => commands.iter().any(Command::touches_document),
            Command::Audited { command, .. } => command.touches_document(),
            Command::UpsertEndpoint(_)
            | Command::RemoveEndpoint { .. }
            | Command::UpsertNode(_)
            | Command::RemoveNode { .. }
            | Command::RaiseAlerts { .. }
            | Command::AckDelivery { .. }
            | Command::ReportInventory(_)
            | Command::PublishTunnelKey(_)
            | Command::RecordBackup(_)
            | Command::LearnEdges { .. }
            | Command::Access(_) => false,
        }
    }
}
