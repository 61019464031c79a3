//! The background renewal task of a held lease, which also enforces the local deadline.

use std::sync::Arc;

use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep_until, timeout};

use super::handle::{Backend, RenewOutcome};
use super::holder::{Holder, HolderEvent};
use super::{FencingToken, LeaseSettings};

/// Spawns the renewal task of holding `generation`, granted by an attempt that began at
/// `started`; returns its abort handle.
///
/// The task renews every renewal interval (measured from the start of the previous attempt) and
/// stops when the holding ends. It reports the loss itself when the local deadline passes, even
/// while a renewal is still waiting for the backend, so a hung backend cannot keep it trusting a
/// holding past its deadline.
pub(crate) fn spawn<B: Backend>(
    holder: Arc<Holder>,
    backend: Arc<B>,
    settings: &LeaseSettings,
    generation: u64,
    token: FencingToken,
    started: Instant,
) -> AbortHandle {
    let interval = settings.renewal_interval();
    let operation_timeout = settings.operation_timeout();
    let name = settings.name().to_owned();
    let task = async move {
        let mut next = started + interval;
        loop {
            let Some(deadline) = holder.deadline_of(generation) else {
                return;
            };
            tokio::select! {
                biased;
                () = sleep_until(deadline) => {
                    if let Some(notice) = holder.apply(HolderEvent::Tick) {
                        notice.notify();
                    }
                    return;
                }
                () = sleep_until(next) => {}
            }
            let attempt = Instant::now();
            next = attempt + interval;
            if backend.renewals_paused() {
                continue;
            }
            let answer = tokio::select! {
                biased;
                () = sleep_until(deadline) => {
                    if let Some(notice) = holder.apply(HolderEvent::Tick) {
                        notice.notify();
                    }
                    return;
                }
                answer = timeout(operation_timeout, backend.renew(token)) => answer,
            };
            let event = match answer {
                Ok(Ok(RenewOutcome::Renewed)) => HolderEvent::Renewed {
                    generation,
                    started: attempt,
                },
                Ok(Ok(RenewOutcome::Lost(reason))) => HolderEvent::Lost { generation, reason },
                Ok(Err(error)) => {
                    tracing::warn!(lease = %name, %error, "lease renewal failed; retrying");
                    continue;
                }
                Err(_elapsed) => {
                    tracing::warn!(lease = %name, timeout = ?operation_timeout, "lease renewal timed out; retrying");
                    continue;
                }
            };
            if let Some(notice) = holder.apply(event) {
                notice.notify();
            }
        }
    };
    tokio::spawn(task).abort_handle()
}
