//! The current snapshot, persisted in the `snapshot` tree of the sled
//! database.
//!
//! One snapshot is kept: its meta data under `meta` and its bytes under
//! `data`, written together in one atomic batch and fsynced before a save
//! returns. A save never replaces a snapshot with an older one, which guards
//! against a snapshot built from an older state finishing after a newer one
//! was installed from the leader.

use std::sync::Arc;

use crate::error::{decode, encode, Result};
use crate::store::flush;
use crate::types::SnapshotMeta;

const META: &[u8] = b"meta";
const DATA: &[u8] = b"data";

/// The persisted current snapshot of one node.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotStore {
    db: sled::Db,
    tree: sled::Tree,
    /// Serializes saves, so the compare-and-replace is not raced.
    saving: Arc<tokio::sync::Mutex<()>>,
}

impl SnapshotStore {
    /// The snapshot kept in `db`.
    pub(crate) fn open(db: &sled::Db) -> Result<Self> {
        Ok(SnapshotStore {
            db: db.clone(),
            tree: db.open_tree("snapshot")?,
            saving: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The current snapshot's meta data and bytes, if one was saved.
    pub(crate) fn load(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>> {
        let (Some(meta), Some(data)) = (self.tree.get(META)?, self.tree.get(DATA)?) else {
            return Ok(None);
        };
        Ok(Some((decode(&meta)?, data.to_vec())))
    }

    fn load_meta(&self) -> Result<Option<SnapshotMeta>> {
        self.tree.get(META)?.map(|m| decode(&m)).transpose()
    }

    /// Makes this snapshot the current one and puts it on disk, unless the
    /// current one covers more of the log. Returns whether it was saved.
    pub(crate) async fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<bool> {
        let _guard = self.saving.lock().await;
        if let Some(current) = self.load_meta()? {
            if current.last_log_id > meta.last_log_id {
                tracing::info!(
                    current = %current,
                    skipped = %meta,
                    "a newer snapshot is already saved"
                );
                return Ok(false);
            }
        }
        let mut batch = sled::Batch::default();
        batch.insert(META, encode(meta)?);
        batch.insert(DATA, data);
        self.tree.apply_batch(batch)?;
        flush(&self.db, None).await?;
        Ok(true)
    }
}
