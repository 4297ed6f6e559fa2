//! Periodic backups: while this node leads, it writes a backup of the
//! cluster state to its backup directory every interval, keeps the newest
//! `keep` files of this cluster, and records the backup in the replicated
//! state (`last_backup`), so any node can tell when the last one was taken.
//!
//! Every node runs the loop; only the leader acts. Whether one is due is
//! read from the replicated record, so a new leader takes the next backup
//! on time rather than starting its own interval from zero.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use stockade_policy::{durable_digest, Backup, BackupRecord, Command, NodeId};

use crate::clock::now_ms;
use crate::cluster::ControlPlane;
use crate::config::BackupConfig;

/// File names start with this, then the cluster's CA fingerprint.
const PREFIX: &str = "stockade-";
/// File names end with this.
const SUFFIX: &str = ".backup";

/// Runs forever, taking a backup whenever this node leads and one is due.
pub async fn run(control: Arc<ControlPlane>, config: BackupConfig) {
    let tick = (config.interval / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
    let interval_ms = u64::try_from(config.interval.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::time::sleep(tick).await;
        let leading = {
            let metrics = control.raft().raft().metrics();
            let m = metrics.borrow();
            m.current_leader == Some(m.id) && m.state.is_leader()
        };
        let due = control.with_state(|s| {
            s.access.ca.is_some()
                && s.last_backup
                    .as_ref()
                    .is_none_or(|b| now_ms().saturating_sub(b.taken_at_ms) >= interval_ms)
        });
        if leading && due {
            match take(&control, &config).await {
                Ok(file) => tracing::info!(file = %file.display(), "periodic backup written"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "periodic backup failed"),
            }
        }
    }
}

/// Writes one backup into the directory, rotates, and records it.
async fn take(control: &Arc<ControlPlane>, config: &BackupConfig) -> Result<PathBuf> {
    let (index, state) = control.applied_state();
    let taken_at_ms = now_ms();
    let node = NodeId(control.raft().id());
    let dir = config.dir.clone();
    let keep = config.keep;
    let (path, record) = tokio::task::spawn_blocking(move || -> Result<_> {
        let bytes = Backup::write(&state, index, taken_at_ms).context("writing the backup")?;
        let fingerprint = Backup::open(&bytes, &state, false)
            .context("reading back the backup just written")?
            .header
            .ca_fingerprint;
        let cluster = format!("{PREFIX}{}-", &fingerprint[..16.min(fingerprint.len())]);
        let name = format!("{cluster}{}-i{index}{SUFFIX}", file_time(taken_at_ms));
        let path = write_atomically(&dir, &name, &bytes)?;
        rotate(&dir, &cluster, keep)?;
        let record = BackupRecord {
            taken_at_ms,
            source_index: index,
            durable_digest: durable_digest(&state),
            node,
            file: name,
        };
        Ok((path, record))
    })
    .await
    .context("the backup task stopped")??;
    control
        .write(Command::RecordBackup(record))
        .await
        .context("recording the backup in the cluster state")?;
    Ok(path)
}

/// `taken_at_ms` as `YYYYMMDDTHHMMSSmmmZ`: sorts as it orders in time.
fn file_time(taken_at_ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(taken_at_ms);
    humantime::format_rfc3339_millis(at)
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Writes `bytes` to `dir/name` so that the file appears whole or not at
/// all: a 0600 temporary file, synced, renamed, and the directory synced.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temp.display()))?;
    fs::rename(&temp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(path)
}

/// Removes all but the newest `keep` files of this cluster (names starting
/// with `cluster`); other files are left alone.
fn rotate(dir: &Path, cluster: &str, keep: usize) -> Result<()> {
    let mut ours: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(cluster) && name.ends_with(SUFFIX))
        .collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep);
    for name in &ours[..excess] {
        let path = dir.join(name);
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_0600_and_rotated_per_cluster() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = dir.path().join("backups");
        for (i, ms) in [1_000u64, 2_000, 3_000, 4_000].iter().enumerate() {
            let name = format!("{PREFIX}aaaa-{}-i{i}{SUFFIX}", file_time(*ms));
            write_atomically(&dir, &name, b"x").expect("writes");
        }
        write_atomically(&dir, "stockade-bbbb-x.backup", b"y").expect("writes");
        write_atomically(&dir, "notes.txt", b"z").expect("writes");
        rotate(&dir, "stockade-aaaa-", 2).expect("rotates");
        let mut left: Vec<String> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "notes.txt",
                "stockade-aaaa-19700101T000003000Z-i2.backup",
                "stockade-aaaa-19700101T000004000Z-i3.backup",
                "stockade-bbbb-x.backup",
            ]
        );
        let mode = fs::metadata(dir.join(&left[1]))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
