//! Timers keyed per actor: single and periodic messages to self, cancelled by key, on stop
//! and on restart. All time goes through `tokio::time`, so a paused runtime runs timers in
//! virtual time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::cell::LocalCell;
use crate::event_stream::DeadLetterReason;
use crate::mailbox::{Envelope, Pushed, Refused};

/// Names a timer of one actor; starting a timer with a key in use replaces the old timer.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerKey(Cow<'static, str>);

impl From<&'static str> for TimerKey {
    fn from(s: &'static str) -> Self {
        TimerKey(Cow::Borrowed(s))
    }
}

impl From<String> for TimerKey {
    fn from(s: String) -> Self {
        TimerKey(Cow::Owned(s))
    }
}

impl fmt::Debug for TimerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerKey({:?})", self.0)
    }
}

struct ActiveTimer {
    generation: u64,
    repeating: bool,
    task: AbortHandle,
}

/// The timers of one actor.
#[derive(Default)]
pub(crate) struct Timers {
    active: HashMap<TimerKey, ActiveTimer>,
    next_generation: u64,
}

impl Timers {
    /// Starts a timer that sends `msg` once after `delay`.
    pub(crate) fn start_single<M: Send + 'static>(
        &mut self,
        cell: &Arc<LocalCell<M>>,
        key: TimerKey,
        delay: Duration,
        msg: M,
    ) {
        let generation = self.replace(&key);
        let cell = cell.clone();
        let k = key.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let env = Envelope::Timer {
                key: k,
                generation,
                msg,
            };
            let dropped = match cell.push(env) {
                Ok(Pushed::Queued) | Err(Refused::Closed(_)) => None,
                Ok(Pushed::Evicted(old)) => {
                    cell.dead_letter(old, DeadLetterReason::MailboxFull);
                    None
                }
                Ok(Pushed::DroppedNew(env)) | Err(Refused::Full(env)) => Some(env),
            };
            // a full mailbox drops the message (a dead letter) and ends the timer, so that
            // `is_timer_active` does not report it active forever
            if let Some(env) = dropped {
                if let Envelope::Timer {
                    key, generation, ..
                } = &env
                {
                    cell.push_signal(Envelope::TimerDropped {
                        key: key.clone(),
                        generation: *generation,
                    });
                }
                cell.dead_letter(env, DeadLetterReason::MailboxFull);
            }
        });
        self.insert(key, generation, false, task.abort_handle());
    }

    /// Starts a timer that sends a clone of `msg` every `every`; `fixed_rate` catches up on
    /// missed ticks, otherwise the next tick waits a full period after a late one.
    pub(crate) fn start_periodic<M: Clone + Send + 'static>(
        &mut self,
        cell: &Arc<LocalCell<M>>,
        key: TimerKey,
        every: Duration,
        fixed_rate: bool,
        msg: M,
    ) {
        let generation = self.replace(&key);
        let cell = cell.clone();
        let k = key.clone();
        let every = every.max(Duration::from_nanos(1));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
            ticks.set_missed_tick_behavior(if fixed_rate {
                MissedTickBehavior::Burst
            } else {
                MissedTickBehavior::Delay
            });
            loop {
                ticks.tick().await;
                let env = Envelope::Timer {
                    key: k.clone(),
                    generation,
                    msg: msg.clone(),
                };
                // a full mailbox skips this tick; a dead actor ends the timer
                if let Err(crate::error::TellError::Dead(_)) = cell.enqueue(env) {
                    break;
                }
            }
        });
        self.insert(key, generation, true, task.abort_handle());
    }

    fn replace(&mut self, key: &TimerKey) -> u64 {
        self.cancel(key);
        self.next_generation += 1;
        self.next_generation
    }

    fn insert(&mut self, key: TimerKey, generation: u64, repeating: bool, task: AbortHandle) {
        self.active.insert(
            key,
            ActiveTimer {
                generation,
                repeating,
                task,
            },
        );
    }

    /// Whether a timer message is still current; a single timer is done once accepted.
    pub(crate) fn accept(&mut self, key: &TimerKey, generation: u64) -> bool {
        match self.active.get(key) {
            Some(t) if t.generation == generation => {
                if !t.repeating {
                    self.active.remove(key);
                }
                true
            }
            _ => false,
        }
    }

    pub(crate) fn cancel(&mut self, key: &TimerKey) -> bool {
        match self.active.remove(key) {
            Some(t) => {
                t.task.abort();
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_active(&self, key: &TimerKey) -> bool {
        self.active.contains_key(key)
    }

    pub(crate) fn cancel_all(&mut self) {
        for (_, t) in self.active.drain() {
            t.task.abort();
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.cancel_all();
    }
}
