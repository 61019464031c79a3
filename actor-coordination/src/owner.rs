//! File-based owner election: one owner per lease file among the processes of one host.
//!
//! [`join`] makes this process either the **owner** (it renews the lease in the background) or
//! a **follower** (it knows the current owner's instance id and advertised endpoint). Two files
//! make up a lease:
//!
//! * `<lease_path>.lock`: an exclusive OS file lock ([`std::fs::File::try_lock`]) held for as long
//!   as this process is owner. The lock is the truth: at most one open file holds it, and the
//!   OS frees it the moment the holder closes it or dies (even by SIGKILL), so taking over
//!   needs no expiry guess and two processes can never both win.
//! * `<lease_path>`: the record (instance id, epoch, endpoint, expiry), replaced atomically
//!   (temporary file, fsync, rename) so readers never see a partial write. It only informs
//!   followers; a stale, corrupt or missing record never blocks a take-over.
//!
//! Unlike a pure-TTL file lease, renewal never reads the record before writing it, and take-over
//! is a single lock attempt, so there is no read-then-write race and no double take-over. The
//! owner fences itself: when it cannot renew the record before its deadline (start of its last
//! successful renewal plus the ttl), or finds its lock file replaced, [`Owner::lost`] fires and
//! the lock is dropped. The epoch grows on every change of owner and can serve as a fencing
//! token. A process that is frozen (not dead) keeps the OS lock, so no one takes over while it
//! lives; its record goes stale, which followers see as "no live owner".
//!
//! The lock is advisory and local: it works across processes on one host, not across hosts
//! sharing a network file system.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use actor_coordination::owner::{self, OwnerConfig, Role};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), owner::OwnerError> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let config = OwnerConfig::new(dir.path().join("runtime.lease"))
//!     .with_ttl(Duration::from_secs(3))
//!     .with_endpoint("127.0.0.1:4000");
//!
//! let first = owner::join(config.clone()).await?;
//! assert!(first.is_owner());
//!
//! let second = owner::join(config).await?;
//! let Role::Follower { owner: Some(current) } = second.role() else { panic!("not a follower") };
//! assert_eq!(current.instance_id, first.instance_id());
//! assert_eq!(current.endpoint.as_deref(), Some("127.0.0.1:4000"));
//!
//! first.release().await?;
//! let mut second = second;
//! second.wait_for_ownership().await?;
//! assert!(second.is_owner());
//! # Ok(())
//! # }
//! ```

mod config;
mod instance_id;
mod lock_file;
pub mod record;
mod renewal;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use config::{DEFAULT_POLL_INTERVAL, DEFAULT_TTL, MIN_TTL, OwnerConfig};
pub use record::{OwnerRecord, RecordError};

use lock_file::TryLock;
use renewal::{Command, RenewalTask};

/// How long a new follower waits for a freshly elected owner to write its record.
///
/// The lock is taken before the record is written, so a follower can arrive in between; it
/// re-reads for up to this long before reporting the owner as unknown.
pub const FOLLOWER_RECORD_GRACE: Duration = Duration::from_millis(200);

/// Step between record re-reads during [`FOLLOWER_RECORD_GRACE`].
const FOLLOWER_RECORD_STEP: Duration = Duration::from_millis(5);

/// Why an owner stopped being owner without releasing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// Renewals failed until the deadline passed; the last error is kept.
    RenewalFailed {
        /// The last renewal error.
        error: String,
    },
    /// No renewal succeeded before the deadline (the process stalled).
    DeadlineMissed,
    /// The lock file was unlinked or replaced, so the held lock no longer excludes anyone.
    LockReplaced,
    /// The owner was released (only reported to a renewal requested after release).
    Released,
}

/// Errors of file ownership.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// A setting is invalid.
    #[error("invalid owner setting {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A file operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The record file exists but is not a valid record; it counts as "no live owner".
    #[error("corrupt owner record {path}: {source}")]
    CorruptRecord {
        /// The record file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: RecordError,
    },
    /// The lease was lost while an operation needed it.
    #[error("ownership lost: {reason:?}")]
    Lost {
        /// Why.
        reason: LostReason,
    },
    /// The operation needs this handle to be the owner.
    #[error("this instance is not the owner")]
    NotOwner,
}

/// This instance's role in the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This instance owns the lease and renews it in the background.
    Owner {
        /// The epoch this ownership started with.
        epoch: u64,
    },
    /// Another instance owns the lease.
    Follower {
        /// The live owner according to its record; `None` when the record is missing, stale or
        /// corrupt (for example an owner that is frozen, or was elected a moment ago).
        owner: Option<OwnerRecord>,
    },
}

/// The result of [`join`]: the owner with its renewal task, or a follower's view of the owner.
///
/// Dropping an owner hands the lease over as [`Owner::release`] does, best effort.
#[derive(Debug)]
pub struct Owner {
    config: OwnerConfig,
    instance_id: String,
    role: Role,
    lost: watch::Receiver<Option<LostReason>>,
    commands: Option<mpsc::Sender<Command>>,
    task: Option<JoinHandle<()>>,
}

/// Joins the election for `config.lease_path`: owner if the lock is free, follower otherwise.
///
/// # Errors
///
/// [`OwnerError::InvalidConfig`] for invalid settings; [`OwnerError::Io`] when the lock or
/// record file cannot be opened or written. A corrupt record is not an error here: it counts as
/// "no live owner".
///
/// # Cancel safety
///
/// Not cancel safe while becoming owner: dropping the future after the lock was taken drops
/// the lock again, but the record may already name this instance until it expires.
pub async fn join(config: OwnerConfig) -> Result<Owner, OwnerError> {
    config.validate()?;
    let instance_id = instance_id::fresh();
    let (_, lost) = watch::channel(None);
    let mut owner = Owner {
        config,
        instance_id,
        role: Role::Follower { owner: None },
        lost,
        commands: None,
        task: None,
    };
    if !owner.try_take_over().await? {
        owner.role = Role::Follower {
            owner: owner.follower_view().await,
        };
    }
    Ok(owner)
}

/// Reads the record at `lease_path`: `Ok(None)` when none was written yet.
///
/// # Errors
///
/// [`OwnerError::CorruptRecord`] for a corrupt or truncated record, [`OwnerError::Io`] when the
/// file cannot be read.
pub fn read_record(lease_path: &Path) -> Result<Option<OwnerRecord>, OwnerError> {
    match record::read(lease_path) {
        Ok(None) => Ok(None),
        Ok(Some(Ok(record))) => Ok(Some(record)),
        Ok(Some(Err(source))) => Err(OwnerError::CorruptRecord {
            path: lease_path.to_owned(),
            source,
        }),
        Err(source) => Err(OwnerError::Io {
            operation: "reading",
            path: lease_path.to_owned(),
            source,
        }),
    }
}

impl Owner {
    /// This instance's role as of the last election step.
    pub fn role(&self) -> Role {
        match &self.role {
            Role::Owner { .. } if self.is_lost() => Role::Follower { owner: None },
            role => role.clone(),
        }
    }

    /// Whether this instance owns the lease right now (not lost, not released).
    pub fn is_owner(&self) -> bool {
        matches!(self.role, Role::Owner { .. }) && !self.is_lost()
    }

    /// This instance's id, unique per join (pid, start time and random bits).
    ///
    /// A follower learns the owner's id from [`Role::Follower`] or [`Owner::current_owner`].
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The epoch of this ownership, or `None` for a follower.
    pub fn epoch(&self) -> Option<u64> {
        match self.role {
            Role::Owner { epoch } => Some(epoch),
            Role::Follower { .. } => None,
        }
    }

    /// The settings this instance joined with.
    pub fn config(&self) -> &OwnerConfig {
        &self.config
    }

    /// Whether the lease was lost (never true for a follower).
    pub fn is_lost(&self) -> bool {
        self.lost.borrow().is_some()
    }

    /// Completes when the owner can no longer renew the lease; never completes for a follower.
    ///
    /// The caller must stop touching owned state when it fires: another instance may take
    /// over right after.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the returned future only observes a signal.
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static {
        let mut lost = self.lost.clone();
        let watching = self.task.is_some();
        async move {
            if !watching {
                return std::future::pending().await;
            }
            let reason = match lost.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone(),
                Err(_) => None,
            };
            match reason {
                Some(reason) => reason,
                // The renewal task ended without reporting a loss: it was released.
                None => std::future::pending().await,
            }
        }
    }

    /// Reads the record and returns the live owner it names, if any.
    ///
    /// # Errors
    ///
    /// [`OwnerError::CorruptRecord`] when the record is corrupt (no live owner can be named),
    /// [`OwnerError::Io`] when it cannot be read.
    pub fn current_owner(&self) -> Result<Option<OwnerRecord>, OwnerError> {
        let record = read_record(&self.config.lease_path)?;
        Ok(record.filter(|r| r.is_live_at(SystemTime::now())))
    }

    /// Tries once to become owner; returns whether this instance owns the lease afterwards.
    ///
    /// # Errors
    ///
    /// [`OwnerError::Io`] when the lock or record file cannot be used.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: see [`join`].
    pub async fn try_take_over(&mut self) -> Result<bool, OwnerError> {
        if self.is_owner() {
            return Ok(true);
        }
        let ttl = self.config.ttl;
        // Taken before the record is written: the deadline is never later than its expiry.
        let started = tokio::time::Instant::now();
        let attempt = {
            let (config, instance_id) = (self.config.clone(), self.instance_id.clone());
            tokio::task::spawn_blocking(move || become_owner(&config, instance_id)).await
        };
        let (lock, record) = match attempt {
            Ok(Ok(Some(won))) => won,
            Ok(Ok(None)) => return Ok(false),
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(OwnerError::Io {
                    operation: "locking",
                    path: self.config.lock_path(),
                    source: io::Error::other(e.to_string()),
                });
            }
        };
        let (epoch, lease_path) = (record.epoch, self.config.lease_path.clone());
        tracing::info!(epoch, instance = %self.instance_id, path = %lease_path.display(), "became owner");

        let (commands_tx, commands_rx) = mpsc::channel(4);
        let (lost_tx, lost_rx) = watch::channel(None);
        let task = RenewalTask {
            lock,
            lease_path,
            record,
            ttl,
            renew_interval: self.config.effective_renew_interval(),
            deadline: started + ttl,
            commands: commands_rx,
            lost: lost_tx,
        };
        self.task = Some(tokio::spawn(task.run()));
        self.commands = Some(commands_tx);
        self.lost = lost_rx;
        self.role = Role::Owner { epoch };
        Ok(true)
    }

    /// Waits until this instance becomes owner, retrying the lock every poll interval.
    ///
    /// Returns at once for an owner. A clean release or the owner's death is noticed within
    /// one poll interval.
    ///
    /// # Errors
    ///
    /// [`OwnerError::Io`] when the lock or record file cannot be used.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe between attempts; see [`join`] for an attempt that is cut short.
    pub async fn wait_for_ownership(&mut self) -> Result<(), OwnerError> {
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.try_take_over().await? {
                return Ok(());
            }
        }
    }

    /// Renews the record right now instead of waiting for the next interval.
    ///
    /// # Errors
    ///
    /// [`OwnerError::NotOwner`] for a follower; [`OwnerError::Lost`] when the lease is lost
    /// (a failed renewal that is still before the deadline is not an error: it is retried).
    pub async fn renew_now(&self) -> Result<(), OwnerError> {
        let commands = self.commands.as_ref().ok_or(OwnerError::NotOwner)?;
        let (reply_tx, reply_rx) = oneshot::channel();
        let lost = || OwnerError::Lost {
            reason: self.lost.borrow().clone().unwrap_or(LostReason::Released),
        };
        commands
            .send(Command::RenewNow(reply_tx))
            .await
            .map_err(|_| lost())?;
        match reply_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(OwnerError::Lost { reason }),
            Err(_) => Err(lost()),
        }
    }

    /// Hands the lease over: marks the record released and frees the lock at once, so a
    /// waiting follower takes over within its poll interval. A no-op for a follower or a lost
    /// owner.
    ///
    /// # Errors
    ///
    /// [`OwnerError::Io`] when the release record cannot be written; the lock is freed anyway.
    pub async fn release(mut self) -> Result<(), OwnerError> {
        self.release_inner().await
    }

    async fn release_inner(&mut self) -> Result<(), OwnerError> {
        let Some(commands) = self.commands.take() else {
            return Ok(());
        };
        let (reply_tx, reply_rx) = oneshot::channel();
        let result = match commands.send(Command::Release(reply_tx)).await {
            Ok(()) => reply_rx.await.unwrap_or(Ok(())),
            // The task already ended (lost): nothing to hand over.
            Err(_) => Ok(()),
        };
        if let Some(task) = self.task.take() {
            // The task ends right after replying; waiting makes sure the lock is dropped.
            let _ = task.await;
        }
        result.map_err(|source| OwnerError::Io {
            operation: "writing",
            path: self.config.lease_path.clone(),
            source,
        })
    }

    async fn follower_view(&self) -> Option<OwnerRecord> {
        let deadline = tokio::time::Instant::now() + FOLLOWER_RECORD_GRACE;
        loop {
            match self.current_owner() {
                Ok(Some(record)) => return Some(record),
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "no live owner in record"),
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(FOLLOWER_RECORD_STEP).await;
        }
    }
}

/// Takes the lock if it is free, then continues the epoch and writes this instance's record.
/// Blocking; `Ok(None)` when another open file holds the lock.
fn become_owner(
    config: &OwnerConfig,
    instance_id: String,
) -> Result<Option<(lock_file::LockFile, OwnerRecord)>, OwnerError> {
    let lock_path = config.lock_path();
    let io_err = |operation, path: &Path| {
        let path = path.to_owned();
        move |source| OwnerError::Io {
            operation,
            path,
            source,
        }
    };
    let mut lock =
        match lock_file::try_acquire(&lock_path).map_err(io_err("locking", &lock_path))? {
            TryLock::Acquired(lock) => lock,
            TryLock::Held => return Ok(None),
        };
    // We hold the lock: nobody else writes either file now, so reading then writing is safe.
    let lease_path = &config.lease_path;
    let previous = match read_record(lease_path) {
        Ok(record) => record.map(|r| r.epoch),
        Err(OwnerError::CorruptRecord { source, .. }) => {
            tracing::warn!(%source, path = %lease_path.display(), "ignoring corrupt owner record");
            None
        }
        Err(e) => return Err(e),
    };
    let epoch = previous.max(lock.stored_epoch()).unwrap_or(0) + 1;
    lock.store_epoch(epoch)
        .map_err(io_err("writing", &lock_path))?;
    let record = OwnerRecord {
        instance_id,
        epoch,
        endpoint: config.endpoint.clone(),
        expires_at: SystemTime::now() + config.ttl,
        released: false,
    };
    record::write_atomically(lease_path, &record).map_err(io_err("writing", lease_path))?;
    Ok(Some((lock, record)))
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Dropping the command sender makes the renewal task hand over and end; if there is
        // no runtime to run it any more, dropping the task drops the lock.
        self.commands.take();
    }
}
