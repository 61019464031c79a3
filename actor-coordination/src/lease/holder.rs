//! The local view of one lease handle: whether it holds, until when, and who to tell on loss.
//!
//! The protocol is a state enum plus a pure transition function ([`on_event`]); [`Holder`] wraps
//! it in a mutex together with the lost-callbacks, and is shared by the handle, its renewal task
//! and (for the in-memory backend) the registry, which pushes revocations into it.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::{FencingToken, LossReason, LostCallback};

/// What one lease handle believes about its holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HolderState {
    /// Not held: never acquired, released, or lost (and the loss reported).
    Idle,
    /// An acquire is in flight; a revocation observed meanwhile is remembered so the acquire
    /// reports `NotHeld` instead of a holding that is already gone.
    Acquiring {
        /// The attempt's generation.
        generation: u64,
        /// Set if the backend revoked the attempt's grant before the acquire completed.
        revoked: bool,
    },
    /// Held until `deadline` unless renewed.
    Held {
        /// The holding's generation: events of older holdings are ignored.
        generation: u64,
        /// The fencing token of the holding.
        token: FencingToken,
        /// Start of the last successful renewal (or acquire) + ttl - safety margin.
        deadline: Instant,
    },
}

/// Something that happened to a lease handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HolderEvent {
    /// An acquire with this generation is about to ask the backend.
    Attempt { generation: u64 },
    /// The backend granted the attempt; `started` is when the attempt began.
    Granted {
        generation: u64,
        token: FencingToken,
        started: Instant,
    },
    /// The backend refused or failed the attempt.
    Denied { generation: u64 },
    /// A renewal that began at `started` succeeded.
    Renewed { generation: u64, started: Instant },
    /// The backend reported the holding (or the in-flight grant) gone.
    Lost { generation: u64, reason: LossReason },
    /// Time passed: report the loss if the deadline is reached.
    Tick,
    /// The handle released the lease.
    Released,
}

/// What the caller of [`on_event`] must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Effects {
    /// Report this loss (run the lost-callbacks) once.
    pub lost: Option<LossReason>,
}

/// The pure transition function of a lease handle.
///
/// `now` is the current time and `window` is `ttl - safety_margin`. A holding whose deadline has
/// been reached is lost before the event itself is applied, so no event can resurrect it.
pub(crate) fn on_event(
    state: HolderState,
    event: HolderEvent,
    now: Instant,
    window: Duration,
) -> (HolderState, Effects) {
    let mut effects = Effects::default();
    let state = match state {
        HolderState::Held { deadline, .. } if now >= deadline => {
            effects.lost = Some(LossReason::DeadlinePassed);
            HolderState::Idle
        }
        other => other,
    };
    let next = match (state, event) {
        (
            HolderState::Idle | HolderState::Acquiring { .. },
            HolderEvent::Attempt { generation },
        ) => HolderState::Acquiring {
            generation,
            revoked: false,
        },
        (
            HolderState::Acquiring {
                generation,
                revoked,
            },
            HolderEvent::Granted {
                generation: g,
                token,
                started,
            },
        ) if g == generation => {
            let deadline = started + window;
            if revoked || now >= deadline {
                HolderState::Idle
            } else {
                HolderState::Held {
                    generation,
                    token,
                    deadline,
                }
            }
        }
        (HolderState::Acquiring { generation, .. }, HolderEvent::Denied { generation: g })
            if g == generation =>
        {
            HolderState::Idle
        }
        (HolderState::Acquiring { generation, .. }, HolderEvent::Lost { generation: g, .. })
            if g == generation =>
        {
            HolderState::Acquiring {
                generation,
                revoked: true,
            }
        }
        (
            HolderState::Held {
                generation,
                token,
                deadline,
            },
            HolderEvent::Renewed {
                generation: g,
                started,
            },
        ) if g == generation => HolderState::Held {
            generation,
            token,
            deadline: deadline.max(started + window),
        },
        (
            HolderState::Held { generation, .. },
            HolderEvent::Lost {
                generation: g,
                reason,
            },
        ) if g == generation => {
            effects.lost = Some(reason);
            HolderState::Idle
        }
        (HolderState::Held { .. } | HolderState::Acquiring { .. }, HolderEvent::Released) => {
            HolderState::Idle
        }
        // Stale generations, ticks, and events that do not apply to the state change nothing.
        (state, _) => state,
    };
    (next, effects)
}

/// A loss to report; run [`LostNotice::notify`] after releasing every lock.
#[must_use]
pub(crate) struct LostNotice {
    reason: LossReason,
    callbacks: Vec<LostCallback>,
}

impl LostNotice {
    /// Runs the lost-callbacks.
    pub(crate) fn notify(self) {
        for callback in self.callbacks {
            callback(self.reason);
        }
    }
}

/// Mutable part of a [`Holder`].
struct Inner {
    state: HolderState,
    next_generation: u64,
    callbacks: Vec<LostCallback>,
    /// Token of the last grant of this handle, kept after a loss so release can free it.
    last_token: Option<FencingToken>,
}

/// The shared, locked local view of one lease handle.
pub(crate) struct Holder {
    name: String,
    window: Duration,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holder")
            .field("name", &self.name)
            .field("state", &self.inner.lock().state)
            .finish()
    }
}

impl Holder {
    /// Creates an idle holder that trusts a holding for `window` after each renewal start.
    pub(crate) fn new(name: &str, window: Duration) -> Self {
        Holder {
            name: name.to_owned(),
            window,
            inner: Mutex::new(Inner {
                state: HolderState::Idle,
                next_generation: 1,
                callbacks: Vec::new(),
                last_token: None,
            }),
        }
    }

    /// Applies `event`; returns the loss to report, if any.
    pub(crate) fn apply(&self, event: HolderEvent) -> Option<LostNotice> {
        let mut inner = self.inner.lock();
        let (state, effects) = on_event(inner.state, event, Instant::now(), self.window);
        inner.state = state;
        if let HolderState::Held { token, .. } = state {
            inner.last_token = Some(token);
        }
        if matches!(event, HolderEvent::Released) || !matches!(state, HolderState::Held { .. }) {
            // Callbacks belong to a holding; without one they must never run.
            let callbacks = std::mem::take(&mut inner.callbacks);
            if let Some(reason) = effects.lost {
                tracing::info!(lease = %self.name, %reason, "lease lost");
                return Some(LostNotice { reason, callbacks });
            }
        }
        None
    }

    /// Starts an acquire attempt and returns its generation.
    pub(crate) fn begin_attempt(&self) -> (u64, Option<LostNotice>) {
        let generation = {
            let mut inner = self.inner.lock();
            let generation = inner.next_generation;
            inner.next_generation += 1;
            generation
        };
        (generation, self.apply(HolderEvent::Attempt { generation }))
    }

    /// Finishes an attempt the backend granted; on success registers `on_lost` and returns the
    /// token. Returns `None` if the grant was revoked meanwhile or arrived after its deadline.
    pub(crate) fn finish_granted(
        &self,
        generation: u64,
        token: FencingToken,
        started: Instant,
        on_lost: Option<LostCallback>,
    ) -> Option<FencingToken> {
        // Applying a grant never reports a loss: the state was `Acquiring`, not `Held`.
        let _ = self.apply(HolderEvent::Granted {
            generation,
            token,
            started,
        });
        let mut inner = self.inner.lock();
        inner.last_token = Some(token);
        match inner.state {
            HolderState::Held {
                generation: g,
                token,
                ..
            } if g == generation => {
                inner.callbacks.extend(on_lost);
                Some(token)
            }
            _ => None,
        }
    }

    /// If this handle holds the lease now, registers `on_lost` and returns the token; otherwise
    /// gives the callback back.
    pub(crate) fn reacquire_if_held(
        &self,
        on_lost: Option<LostCallback>,
    ) -> Result<FencingToken, Option<LostCallback>> {
        let mut inner = self.inner.lock();
        match inner.state {
            HolderState::Held {
                token, deadline, ..
            } if Instant::now() < deadline => {
                inner.callbacks.extend(on_lost);
                Ok(token)
            }
            _ => Err(on_lost),
        }
    }

    /// Returns the current holding's generation, token and deadline, if still trusted.
    pub(crate) fn holding(&self) -> Option<(u64, FencingToken, Instant)> {
        match self.inner.lock().state {
            HolderState::Held {
                generation,
                token,
                deadline,
            } if Instant::now() < deadline => Some((generation, token, deadline)),
            _ => None,
        }
    }

    /// Returns the deadline of holding `generation`, if it is still the current one (even if
    /// the deadline has passed but the loss is not yet applied).
    pub(crate) fn deadline_of(&self, generation: u64) -> Option<Instant> {
        match self.inner.lock().state {
            HolderState::Held {
                generation: g,
                deadline,
                ..
            } if g == generation => Some(deadline),
            _ => None,
        }
    }

    /// Releases locally; returns whether a trusted holding ended and the token to release in the
    /// backend (the last one granted to this handle, even if already lost).
    pub(crate) fn release(&self) -> (bool, Option<FencingToken>) {
        let was_held = self.holding().is_some();
        // A holding past its deadline is reported lost by the tick-like rule in `on_event`
        // rather than silently released; run that report.
        if let Some(notice) = self.apply(HolderEvent::Released) {
            notice.notify();
        }
        let token = self.inner.lock().last_token.take();
        (was_held, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(9);

    fn held(generation: u64, deadline: Instant) -> HolderState {
        HolderState::Held {
            generation,
            token: FencingToken::new(4),
            deadline,
        }
    }

    #[test]
    fn a_grant_installs_a_holding_with_the_local_deadline() {
        let now = Instant::now();
        let (s, _) = on_event(
            HolderState::Idle,
            HolderEvent::Attempt { generation: 1 },
            now,
            WINDOW,
        );
        let event = HolderEvent::Granted {
            generation: 1,
            token: FencingToken::new(4),
            started: now,
        };
        let (s, fx) = on_event(s, event, now + Duration::from_secs(1), WINDOW);
        assert_eq!(s, held(1, now + WINDOW));
        assert_eq!(fx.lost, None);
    }

    #[test]
    fn a_revocation_during_acquire_makes_the_grant_void_without_a_report() {
        let now = Instant::now();
        let s = HolderState::Acquiring {
            generation: 2,
            revoked: false,
        };
        let lost = HolderEvent::Lost {
            generation: 2,
            reason: LossReason::Revoked,
        };
        let (s, fx) = on_event(s, lost, now, WINDOW);
        assert_eq!(fx.lost, None);
        let granted = HolderEvent::Granted {
            generation: 2,
            token: FencingToken::new(1),
            started: now,
        };
        let (s, fx) = on_event(s, granted, now, WINDOW);
        assert_eq!(s, HolderState::Idle);
        assert_eq!(fx.lost, None);
    }

    #[test]
    fn a_grant_arriving_after_its_deadline_is_void() {
        let now = Instant::now();
        let s = HolderState::Acquiring {
            generation: 1,
            revoked: false,
        };
        let granted = HolderEvent::Granted {
            generation: 1,
            token: FencingToken::new(1),
            started: now,
        };
        let (s, _) = on_event(s, granted, now + WINDOW, WINDOW);
        assert_eq!(s, HolderState::Idle);
    }

    #[test]
    fn a_renewal_extends_from_its_start_and_never_shortens() {
        let now = Instant::now();
        let s = held(1, now + WINDOW);
        let later = now + Duration::from_secs(3);
        let renewed = HolderEvent::Renewed {
            generation: 1,
            started: later,
        };
        let (s2, _) = on_event(s, renewed, later + Duration::from_secs(1), WINDOW);
        assert_eq!(s2, held(1, later + WINDOW));
        let early = HolderEvent::Renewed {
            generation: 1,
            started: now - Duration::from_secs(1),
        };
        let (s3, _) = on_event(s, early, now, WINDOW);
        assert_eq!(s3, s);
    }

    #[test]
    fn no_event_resurrects_a_holding_past_its_deadline() {
        let now = Instant::now();
        let s = held(1, now);
        let renewed = HolderEvent::Renewed {
            generation: 1,
            started: now - Duration::from_secs(1),
        };
        let (s, fx) = on_event(s, renewed, now, WINDOW);
        assert_eq!(s, HolderState::Idle);
        assert_eq!(fx.lost, Some(LossReason::DeadlinePassed));
    }

    #[test]
    fn losses_of_stale_generations_are_ignored() {
        let now = Instant::now();
        let s = held(3, now + WINDOW);
        let lost = HolderEvent::Lost {
            generation: 2,
            reason: LossReason::TakenOver,
        };
        let (s2, fx) = on_event(s, lost, now, WINDOW);
        assert_eq!((s2, fx.lost), (s, None));
        let lost = HolderEvent::Lost {
            generation: 3,
            reason: LossReason::TakenOver,
        };
        let (s3, fx) = on_event(s, lost, now, WINDOW);
        assert_eq!(
            (s3, fx.lost),
            (HolderState::Idle, Some(LossReason::TakenOver))
        );
        // Once idle, the same loss is not reported twice.
        let (s4, fx) = on_event(s3, lost, now, WINDOW);
        assert_eq!((s4, fx.lost), (HolderState::Idle, None));
    }

    #[test]
    fn release_reports_nothing() {
        let now = Instant::now();
        let (s, fx) = on_event(held(1, now + WINDOW), HolderEvent::Released, now, WINDOW);
        assert_eq!((s, fx.lost), (HolderState::Idle, None));
    }
}
