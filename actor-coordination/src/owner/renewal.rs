//! The owner's renewal protocol: an explicit state machine ([`on_event`]) and the background task
//! that does its I/O.
//!
//! The owner holds the OS lock the whole time, so renewal never needs to read the record
//! before writing it (no read-then-write race): it only refreshes the record's expiry and
//! checks that the lock file is still the one the path names. The owner fences itself (fires
//! `lost` and drops the lock) when a renewal does not succeed before its local deadline, the
//! start of its last successful renewal plus the ttl.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::LostReason;
use super::lock_file::LockFile;
use super::record::{self, OwnerRecord};

/// Where an owner stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RenewalState {
    /// Holding the lease; it must renew before `deadline`.
    Owning {
        /// Start of the last successful renewal plus the ttl.
        deadline: Instant,
        /// The error of the last renewal, if it failed.
        last_error: Option<String>,
    },
    /// Fenced: `lost` fired and the lock is gone.
    Lost(LostReason),
    /// Handed over cleanly.
    Released,
}

/// What happened to the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RenewalEvent {
    /// A renewal that started at `started` wrote the record.
    Renewed {
        /// When the renewal started (before its write).
        started: Instant,
    },
    /// A renewal failed; it may be retried until the deadline.
    RenewFailed {
        /// When the failure was seen.
        now: Instant,
        /// What failed.
        error: String,
    },
    /// The lock file was unlinked or replaced: our lock no longer excludes anyone.
    LockReplaced,
    /// Time passed without a renewal.
    Tick {
        /// The current time.
        now: Instant,
    },
    /// The user asked for a clean hand-over (or dropped the owner).
    Release,
}

/// The I/O the task must perform after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RenewalAction {
    /// Tell the user the lease is lost, then drop the lock.
    FireLostAndUnlock(LostReason),
    /// Mark the record released, then drop the lock.
    WriteReleasedAndUnlock,
}

/// The pure transition function of the renewal protocol.
pub(crate) fn on_event(
    state: RenewalState,
    event: RenewalEvent,
    ttl: Duration,
) -> (RenewalState, Vec<RenewalAction>) {
    let RenewalState::Owning {
        deadline,
        last_error,
    } = state
    else {
        return (state, Vec::new());
    };
    let lose = |reason: LostReason| {
        (
            RenewalState::Lost(reason.clone()),
            vec![RenewalAction::FireLostAndUnlock(reason)],
        )
    };
    match event {
        RenewalEvent::Renewed { started } if started < deadline => (
            RenewalState::Owning {
                deadline: started + ttl,
                last_error: None,
            },
            Vec::new(),
        ),
        RenewalEvent::Renewed { .. } => lose(LostReason::DeadlineMissed),
        RenewalEvent::RenewFailed { now, error } if now >= deadline => {
            lose(LostReason::RenewalFailed { error })
        }
        RenewalEvent::RenewFailed { error, .. } => (
            RenewalState::Owning {
                deadline,
                last_error: Some(error),
            },
            Vec::new(),
        ),
        RenewalEvent::LockReplaced => lose(LostReason::LockReplaced),
        RenewalEvent::Tick { now } if now >= deadline => match last_error {
            Some(error) => lose(LostReason::RenewalFailed { error }),
            None => lose(LostReason::DeadlineMissed),
        },
        RenewalEvent::Tick { .. } => (
            RenewalState::Owning {
                deadline,
                last_error,
            },
            Vec::new(),
        ),
        RenewalEvent::Release => (
            RenewalState::Released,
            vec![RenewalAction::WriteReleasedAndUnlock],
        ),
    }
}

/// A request from the [`Owner`](super::Owner) handle to its renewal task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Hand over cleanly; the reply says whether the release record was written.
    Release(oneshot::Sender<std::io::Result<()>>),
    /// Renew right now; the reply carries the outcome.
    RenewNow(oneshot::Sender<Result<(), LostReason>>),
}

/// Everything the renewal task owns.
pub(crate) struct RenewalTask {
    pub(crate) lock: LockFile,
    pub(crate) lease_path: PathBuf,
    pub(crate) record: OwnerRecord,
    pub(crate) ttl: Duration,
    pub(crate) renew_interval: Duration,
    pub(crate) deadline: Instant,
    pub(crate) commands: tokio::sync::mpsc::Receiver<Command>,
    pub(crate) lost: watch::Sender<Option<LostReason>>,
}

/// Outcome of one renewal attempt.
enum Attempt {
    Renewed,
    Failed(String),
    LockReplaced,
}

impl RenewalTask {
    /// Runs until the lease is lost or released; the lock is dropped when this returns.
    pub(crate) async fn run(mut self) {
        let mut state = RenewalState::Owning {
            deadline: self.deadline,
            last_error: None,
        };
        let mut next_renewal = Instant::now() + self.renew_interval;
        let mut pending_reply: Option<oneshot::Sender<Result<(), LostReason>>> = None;
        while let RenewalState::Owning { deadline, .. } = state {
            let wake = next_renewal.min(deadline);
            let event = tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(Command::Release(reply)) => {
                        let (next, actions) = on_event(state, RenewalEvent::Release, self.ttl);
                        state = next;
                        let written = self.apply(actions).await;
                        let _ = reply.send(written);
                        continue;
                    }
                    Some(Command::RenewNow(reply)) => {
                        pending_reply = Some(reply);
                        None
                    }
                    // The handle was dropped without release: hand over as cleanly as we can.
                    None => Some(RenewalEvent::Release),
                },
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        Some(RenewalEvent::Tick { now: Instant::now() })
                    } else {
                        None
                    }
                }
            };
            let event = match event {
                Some(event) => event,
                None => {
                    let started = Instant::now();
                    next_renewal = started + self.renew_interval;
                    match self.renew_once().await {
                        Attempt::Renewed => RenewalEvent::Renewed { started },
                        Attempt::Failed(error) => {
                            tracing::warn!(%error, path = %self.lease_path.display(), "owner renewal failed");
                            RenewalEvent::RenewFailed {
                                now: Instant::now(),
                                error,
                            }
                        }
                        Attempt::LockReplaced => RenewalEvent::LockReplaced,
                    }
                }
            };
            let (next, actions) = on_event(state, event, self.ttl);
            state = next;
            let _ = self.apply(actions).await;
            if let Some(reply) = pending_reply.take() {
                let outcome = match &state {
                    RenewalState::Owning { .. } => Ok(()),
                    RenewalState::Lost(reason) => Err(reason.clone()),
                    RenewalState::Released => Err(LostReason::Released),
                };
                let _ = reply.send(outcome);
            }
        }
        // Any renew request that arrives from now on finds the channel closed.
    }

    async fn renew_once(&mut self) -> Attempt {
        let expires_at = SystemTime::now() + self.ttl;
        let record = OwnerRecord {
            expires_at,
            ..self.record.clone()
        };
        let path = self.lease_path.clone();
        // The lock check is two `stat` calls and stays inline; the write (with its fsync) goes
        // to the blocking pool.
        let lock_check = self.lock.still_named_by_path();
        match lock_check {
            Ok(true) => {}
            Ok(false) => return Attempt::LockReplaced,
            Err(e) => return Attempt::Failed(format!("checking the lock file: {e}")),
        }
        let written =
            tokio::task::spawn_blocking(move || record::write_atomically(&path, &record)).await;
        match written {
            Ok(Ok(())) => {
                self.record.expires_at = expires_at;
                Attempt::Renewed
            }
            Ok(Err(e)) => Attempt::Failed(format!("writing the record: {e}")),
            Err(e) => Attempt::Failed(format!("renewal thread failed: {e}")),
        }
    }

    async fn apply(&mut self, actions: Vec<RenewalAction>) -> std::io::Result<()> {
        let mut result = Ok(());
        for action in actions {
            match action {
                RenewalAction::FireLostAndUnlock(reason) => {
                    tracing::warn!(?reason, path = %self.lease_path.display(), "ownership lost");
                    self.lost.send_replace(Some(reason));
                    // The lock is dropped when the task ends, right after this.
                }
                RenewalAction::WriteReleasedAndUnlock => {
                    let record = OwnerRecord {
                        released: true,
                        expires_at: SystemTime::now(),
                        ..self.record.clone()
                    };
                    let path = self.lease_path.clone();
                    result = match tokio::task::spawn_blocking(move || {
                        record::write_atomically(&path, &record)
                    })
                    .await
                    {
                        Ok(written) => written,
                        Err(e) => Err(std::io::Error::other(e.to_string())),
                    };
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);

    fn owning(at: Instant) -> RenewalState {
        RenewalState::Owning {
            deadline: at + TTL,
            last_error: None,
        }
    }

    #[test]
    fn a_timely_renewal_moves_the_deadline_from_its_start() {
        let t0 = Instant::now();
        let started = t0 + Duration::from_secs(1);
        let (state, actions) = on_event(owning(t0), RenewalEvent::Renewed { started }, TTL);
        assert_eq!(
            state,
            RenewalState::Owning {
                deadline: started + TTL,
                last_error: None
            }
        );
        assert!(actions.is_empty());
    }

    #[test]
    fn failures_are_retried_until_the_deadline_then_fence() {
        let t0 = Instant::now();
        let failed = |now| RenewalEvent::RenewFailed {
            now,
            error: "disk".into(),
        };
        let (state, actions) = on_event(owning(t0), failed(t0 + Duration::from_secs(2)), TTL);
        let retrying = RenewalState::Owning {
            deadline: t0 + TTL,
            last_error: Some("disk".into()),
        };
        assert_eq!(state, retrying);
        assert!(actions.is_empty());
        let (state, actions) = on_event(state, failed(t0 + TTL), TTL);
        let reason = LostReason::RenewalFailed {
            error: "disk".into(),
        };
        assert_eq!(state, RenewalState::Lost(reason.clone()));
        assert_eq!(
            actions,
            vec![RenewalAction::FireLostAndUnlock(reason.clone())]
        );
        // The deadline passing after failures reports the last failure.
        let (state, _) = on_event(retrying, RenewalEvent::Tick { now: t0 + TTL }, TTL);
        assert_eq!(state, RenewalState::Lost(reason));
    }

    #[test]
    fn a_late_renewal_or_a_passed_deadline_fences() {
        let t0 = Instant::now();
        let late = RenewalEvent::Renewed { started: t0 + TTL };
        assert_eq!(
            on_event(owning(t0), late, TTL).0,
            RenewalState::Lost(LostReason::DeadlineMissed)
        );
        let tick = RenewalEvent::Tick { now: t0 + TTL };
        assert_eq!(
            on_event(owning(t0), tick, TTL).0,
            RenewalState::Lost(LostReason::DeadlineMissed)
        );
        let early = RenewalEvent::Tick { now: t0 };
        assert_eq!(on_event(owning(t0), early, TTL).0, owning(t0));
    }

    #[test]
    fn a_replaced_lock_fences_at_once() {
        let t0 = Instant::now();
        let (state, actions) = on_event(owning(t0), RenewalEvent::LockReplaced, TTL);
        assert_eq!(state, RenewalState::Lost(LostReason::LockReplaced));
        assert_eq!(
            actions,
            vec![RenewalAction::FireLostAndUnlock(LostReason::LockReplaced)]
        );
    }

    #[test]
    fn release_writes_the_release_record_and_terminal_states_ignore_events() {
        let t0 = Instant::now();
        let (state, actions) = on_event(owning(t0), RenewalEvent::Release, TTL);
        assert_eq!(state, RenewalState::Released);
        assert_eq!(actions, vec![RenewalAction::WriteReleasedAndUnlock]);
        for event in [
            RenewalEvent::Release,
            RenewalEvent::LockReplaced,
            RenewalEvent::Tick { now: t0 + TTL * 2 },
            RenewalEvent::Renewed { started: t0 },
        ] {
            assert_eq!(
                on_event(RenewalState::Released, event.clone(), TTL),
                (RenewalState::Released, vec![])
            );
            let lost = RenewalState::Lost(LostReason::LockReplaced);
            assert_eq!(on_event(lost.clone(), event, TTL), (lost, vec![]));
        }
    }
}
