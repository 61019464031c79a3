//! The life of one shard's lock at the region hosting it, as a state machine: a shard starts
//! only once `acquire` returned it, every successful refresh extends its validity, and it
//! fences itself (stops at once) when the refresh deadline passes or a refresh no longer
//! returns it, so it has stopped before the storage would give the lock to another runner.
//!
//! Validity is counted from the moment the acquire or refresh call *started* (the storage
//! extended the lock no earlier than that), minus a safety margin for clock drift and the
//! time a stop takes. [`LockState::on_event`] is pure; the shard actor does the I/O.

use std::time::Duration;

use tokio::time::Instant;

/// Where a shard's lock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Not held yet: acquiring (again after a refusal).
    Acquiring,
    /// Held and valid until `valid_until` unless refreshed.
    Held {
        /// Local deadline: the shard fences itself at this instant.
        valid_until: Instant,
    },
    /// Lost or expired: the shard must stop and never run again.
    Fenced,
}

/// What happened to the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockEvent {
    /// `acquire` (started at `started`) returned this shard; its result is handled at `now`.
    Acquired {
        /// When the acquire call started.
        started: Instant,
        /// When the result is handled: a grant whose local deadline has already passed by
        /// then is not used.
        now: Instant,
    },
    /// `acquire` did not return it: another runner holds it.
    Refused,
    /// The storage failed (acquire or refresh); the current deadline still applies.
    StorageFailed,
    /// `refresh` (started at `started`) returned this shard.
    Refreshed {
        /// When the refresh call started.
        started: Instant,
    },
    /// `refresh` did not return it: the lock was taken or released.
    RefreshLost,
    /// The fence timer fired at `now`.
    Deadline {
        /// The current time.
        now: Instant,
    },
}

/// What the shard must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAction {
    /// Start serving: deliver buffered messages.
    Activate,
    /// Try to acquire again after the retry interval.
    RetryAcquire,
    /// (Re)arm the fence timer for this instant.
    ArmFence(Instant),
    /// Stop the shard and its entities now.
    Fence,
}

/// How long a lock stays valid locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    /// The storage's lock ttl.
    pub ttl: Duration,
    /// Subtracted from the ttl.
    pub safety_margin: Duration,
}

impl LockTiming {
    /// The local deadline of a lock extended by a call that started at `started`.
    pub fn deadline(&self, started: Instant) -> Instant {
        started + self.validity()
    }

    /// How long a lock stays valid locally after the call that extended it started
    /// (`ttl - safety_margin`); also the bound on one lock call to the storage.
    pub fn validity(&self) -> Duration {
        self.ttl.saturating_sub(self.safety_margin)
    }
}

impl LockState {
    /// Applies `event`, returning the new state and the actions to carry out.
    pub fn on_event(self, event: LockEvent, timing: LockTiming) -> (LockState, Vec<LockAction>) {
        use LockAction as A;
        use LockEvent as E;
        use LockState as S;
        match (self, event) {
            (S::Fenced, _) => (S::Fenced, Vec::new()),
            (S::Acquiring, E::Acquired { started, now }) => {
                let valid_until = timing.deadline(started);
                if valid_until <= now {
                    // The call took so long that the local deadline passed before the result
                    // was handled: serving now could overlap a new holder. Acquire again (the
                    // storage returns a lock this runner holds with a fresh ttl).
                    return (S::Acquiring, vec![A::RetryAcquire]);
                }
                (
                    S::Held { valid_until },
                    vec![A::Activate, A::ArmFence(valid_until)],
                )
            }
            (S::Acquiring, E::Refused | E::StorageFailed) => (S::Acquiring, vec![A::RetryAcquire]),
            (S::Held { valid_until }, E::Refreshed { started }) => {
                let valid_until = valid_until.max(timing.deadline(started));
                (S::Held { valid_until }, vec![A::ArmFence(valid_until)])
            }
            (S::Held { .. }, E::RefreshLost) => (S::Fenced, vec![A::Fence]),
            (S::Held { valid_until }, E::Deadline { now }) if now >= valid_until => {
                (S::Fenced, vec![A::Fence])
            }
            // Early timer, storage trouble, stale answers: the deadline stands.
            (state @ (S::Held { .. } | S::Acquiring), _) => (state, Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: LockTiming = LockTiming {
        ttl: Duration::from_secs(30),
        safety_margin: Duration::from_secs(3),
    };

    #[tokio::test(start_paused = true)]
    async fn acquire_refresh_and_deadline() {
        let t0 = Instant::now();
        let (s, a) = LockState::Acquiring.on_event(LockEvent::Refused, TIMING);
        assert_eq!(
            (s, a),
            (LockState::Acquiring, vec![LockAction::RetryAcquire])
        );
        let (s, a) = s.on_event(
            LockEvent::Acquired {
                started: t0,
                now: t0,
            },
            TIMING,
        );
        let first = t0 + Duration::from_secs(27);
        assert_eq!(s, LockState::Held { valid_until: first });
        assert_eq!(a, vec![LockAction::Activate, LockAction::ArmFence(first)]);
        // Storage trouble does not extend anything; an early deadline tick changes nothing.
        let (s, a) = s.on_event(LockEvent::StorageFailed, TIMING);
        assert!(a.is_empty());
        let (s, a) = s.on_event(LockEvent::Deadline { now: t0 }, TIMING);
        assert!(a.is_empty());
        // A refresh extends from when it started; an older answer never shortens.
        let t1 = t0 + Duration::from_secs(10);
        let (s, a) = s.on_event(LockEvent::Refreshed { started: t1 }, TIMING);
        let second = t1 + Duration::from_secs(27);
        assert_eq!(a, vec![LockAction::ArmFence(second)]);
        let (s, _) = s.on_event(LockEvent::Refreshed { started: t0 }, TIMING);
        assert_eq!(
            s,
            LockState::Held {
                valid_until: second
            }
        );
        let (s, a) = s.on_event(LockEvent::Deadline { now: second }, TIMING);
        assert_eq!((s, a), (LockState::Fenced, vec![LockAction::Fence]));
        let (s, a) = s.on_event(
            LockEvent::Acquired {
                started: second,
                now: second,
            },
            TIMING,
        );
        assert_eq!((s, a), (LockState::Fenced, vec![]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_refresh_fences_at_once() {
        let (s, _) = LockState::Acquiring.on_event(
            LockEvent::Acquired {
                started: Instant::now(),
                now: Instant::now(),
            },
            TIMING,
        );
        assert_eq!(
            s.on_event(LockEvent::RefreshLost, TIMING),
            (LockState::Fenced, vec![LockAction::Fence])
        );
        // Refresh answers before acquiring mean nothing.
        assert_eq!(
            LockState::Acquiring.on_event(LockEvent::RefreshLost, TIMING),
            (LockState::Acquiring, vec![])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_grant_past_its_local_deadline_is_not_used() {
        let t0 = Instant::now();
        // The acquire call started at t0 and its result is handled at the local deadline
        // (ttl - margin later) or after it: the shard must not activate on it.
        for late in [Duration::from_secs(27), Duration::from_secs(40)] {
            let (s, a) = LockState::Acquiring.on_event(
                LockEvent::Acquired {
                    started: t0,
                    now: t0 + late,
                },
                TIMING,
            );
            assert_eq!(
                (s, a),
                (LockState::Acquiring, vec![LockAction::RetryAcquire]),
                "late by {late:?}"
            );
        }
        // Just before the deadline it is used, with the deadline counted from the start.
        let (s, a) = LockState::Acquiring.on_event(
            LockEvent::Acquired {
                started: t0,
                now: t0 + Duration::from_secs(26),
            },
            TIMING,
        );
        let deadline = t0 + Duration::from_secs(27);
        assert_eq!(
            s,
            LockState::Held {
                valid_until: deadline
            }
        );
        assert_eq!(
            a,
            vec![LockAction::Activate, LockAction::ArmFence(deadline)]
        );
    }
}
