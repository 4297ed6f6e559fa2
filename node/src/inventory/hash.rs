//! SHA-256 of executables, cached by (device, inode, change time).
//!
//! The change time moves whenever a file's content or metadata is written,
//! and cannot be set back by an unprivileged writer, so a cached digest is
//! only ever reused for the exact file it was computed from; a binary that
//! is rewritten in place gets a new key and is hashed again.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256 as Sha256Hasher};
use stockade_policy::{ExecKey, Sha256};

/// Why a file could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The file could not be opened, examined or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file kept changing while it was read.
    #[error("{0}: the file changed while it was being hashed")]
    Unstable(PathBuf),
}

/// Hashes executables, remembering each digest under the file's key.
#[derive(Debug, Default)]
pub struct ExecutableHasher {
    cache: HashMap<ExecKey, Sha256>,
    /// Files actually read (not served from the cache).
    #[cfg(test)]
    reads: u64,
}

/// The cache key of a file: what makes a digest still valid.
pub fn key_of(metadata: &std::fs::Metadata) -> ExecKey {
    ExecKey {
        dev: metadata.dev(),
        inode: metadata.ino(),
        ctime_ns: metadata.ctime() * 1_000_000_000 + metadata.ctime_nsec(),
    }
}

impl ExecutableHasher {
    /// A hasher with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key and digest of the file at `path`.
    pub fn hash(&mut self, path: &Path) -> Result<(ExecKey, Sha256), HashError> {
        let io = |source| HashError::Io {
            path: path.to_owned(),
            source,
        };
        // A writer racing the read moves the change time: read again, and
        // give up on a file that will not hold still.
        for _ in 0..3 {
            let mut file = File::open(path).map_err(io)?;
            let before = key_of(&file.metadata().map_err(io)?);
            if let Some(digest) = self.cache.get(&before) {
                return Ok((before, *digest));
            }
            let digest = digest_of(&mut file).map_err(io)?;
            #[cfg(test)]
            {
                self.reads += 1;
            }
            if key_of(&file.metadata().map_err(io)?) == before {
                self.cache.insert(before, digest);
                return Ok((before, digest));
            }
        }
        Err(HashError::Unstable(path.to_owned()))
    }

    /// How many files were read rather than found in the cache.
    #[cfg(test)]
    fn reads(&self) -> u64 {
        self.reads
    }
}

fn digest_of(file: &mut File) -> std::io::Result<Sha256> {
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(Sha256(hasher.finalize().into()));
        }
        hasher.update(&buffer[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_file_is_hashed_once_and_a_rewritten_one_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tool");
        std::fs::write(&path, b"abc").expect("write");
        let mut hasher = ExecutableHasher::new();
        let (key, digest) = hasher.hash(&path).expect("hash");
        // SHA-256("abc"), FIPS 180-2 example.
        assert_eq!(
            digest.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hasher.hash(&path).expect("hash again"), (key, digest));
        assert_eq!(hasher.reads(), 1, "the second hash came from the cache");

        // One byte changed in place: a new change time, so a new key and digest.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"abd").expect("rewrite");
        let (new_key, new_digest) = hasher.hash(&path).expect("hash the new content");
        assert_ne!(new_key, key);
        assert_ne!(new_digest, digest);
        assert_eq!(hasher.reads(), 2);
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = ExecutableHasher::new()
            .hash(Path::new("/nonexistent/stockade-test"))
            .expect_err("no such file");
        assert!(
            err.to_string().contains("/nonexistent/stockade-test"),
            "{err}"
        );
    }
}
