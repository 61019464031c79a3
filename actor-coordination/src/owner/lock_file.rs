//! The exclusive OS lock that makes one process the owner: taken with `File::try_lock`, freed by
//! the OS when the holder closes the file or dies (even by SIGKILL).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An open lock file whose exclusive lock this process holds.
#[derive(Debug)]
pub(crate) struct LockFile {
    file: File,
    path: PathBuf,
}

/// Outcome of one attempt to take the lock.
#[derive(Debug)]
pub(crate) enum TryLock {
    /// The lock is ours until the returned file is dropped.
    Acquired(LockFile),
    /// Another open file (another process, or another owner in this one) holds it.
    Held,
}

/// How many times a lock whose file was replaced under us is retried before giving up.
const REPLACED_RETRIES: usize = 3;

/// Tries once, without blocking, to take the exclusive lock on `path` (created if missing).
pub(crate) fn try_acquire(path: &Path) -> io::Result<TryLock> {
    for _ in 0..REPLACED_RETRIES {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(TryLock::Held),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let lock = LockFile {
            file,
            path: path.to_owned(),
        };
        // The file may have been unlinked and recreated between open and lock: a lock on an
        // orphaned inode excludes no one, so only a lock on the file the path names counts.
        if lock.still_named_by_path()? {
            return Ok(TryLock::Acquired(lock));
        }
    }
    Ok(TryLock::Held)
}

impl LockFile {
    /// Whether the path still names the file we hold the lock on.
    #[cfg(unix)]
    pub(crate) fn still_named_by_path(&self) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let ours = self.file.metadata()?;
        match std::fs::metadata(&self.path) {
            Ok(current) => Ok(current.dev() == ours.dev() && current.ino() == ours.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the path still names the file we hold the lock on (only existence is checked
    /// where file identity is not available).
    #[cfg(not(unix))]
    pub(crate) fn still_named_by_path(&self) -> io::Result<bool> {
        Ok(self.path.exists())
    }

    /// The epoch last stored in the lock file by a holder, if readable.
    pub(crate) fn stored_epoch(&mut self) -> Option<u64> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0)).ok()?;
        self.file.read_to_string(&mut text).ok()?;
        text.trim().parse().ok()
    }

    /// Stores `epoch` in the lock file, so the next holder can continue the sequence even when
    /// the record file is lost or corrupt. Only the lock holder writes here.
    pub(crate) fn store_epoch(&mut self, epoch: u64) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(format!("{epoch}\n").as_bytes())?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_file_cannot_take_a_held_lock_until_it_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("l.lock");
        let first = match try_acquire(&path).expect("io") {
            TryLock::Acquired(lock) => lock,
            TryLock::Held => panic!("fresh lock held"),
        };
        assert!(matches!(try_acquire(&path).expect("io"), TryLock::Held));
        drop(first);
        assert!(matches!(
            try_acquire(&path).expect("io"),
            TryLock::Acquired(_)
        ));
    }

    #[test]
    fn epoch_survives_in_the_lock_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("l.lock");
        let TryLock::Acquired(mut lock) = try_acquire(&path).expect("io") else {
            panic!("fresh lock held")
        };
        assert_eq!(lock.stored_epoch(), None);
        lock.store_epoch(41).expect("store");
        drop(lock);
        let TryLock::Acquired(mut lock) = try_acquire(&path).expect("io") else {
            panic!("free lock held")
        };
        assert_eq!(lock.stored_epoch(), Some(41));
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_lock_file_is_detected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("l.lock");
        let TryLock::Acquired(lock) = try_acquire(&path).expect("io") else {
            panic!("fresh lock held")
        };
        assert!(lock.still_named_by_path().expect("stat"));
        std::fs::remove_file(&path).expect("unlink");
        assert!(!lock.still_named_by_path().expect("stat"));
    }
}
