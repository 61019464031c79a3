//! What the incarnations of one manager share: a restart makes a fresh manager (and a fresh
//! [`Machine`](super::state_machine::Machine)) from the props, but some facts outlive it.
//!
//! - Each incarnation numbers its lease attempts in its own range (results piped to an
//!   earlier incarnation still arrive, and must not be taken for the new one's).
//! - A removal margin being waited out is waited out to its end by the next incarnation.
//! - Lease releases still in flight: the lease object is shared, and a release lets go of
//!   whatever it holds, so a new incarnation acquires only once every release an earlier one
//!   issued has been answered (the answer reaches whichever incarnation runs by then).
//! - Whether the manager has stopped for good: an acquire still in flight then is released
//!   by its own task once granted, since no manager will handle the grant (the lease object
//!   would otherwise hold and renew it for as long as the process lives).
//! - The exit blocker that holds this node's graceful leave until the singleton has handed
//!   over: one for all incarnations, so a restart does not let the leave go on early.
//! - Lease release calls still running: a manager that stops for good waits for them in its
//!   stop hook (each is bounded), so none of them runs after the manager is gone, where it
//!   could drop the holding of a manager spawned next on the same lease object.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cluster::ExitBlocker;

/// The state one manager's incarnations share; see the module docs.
#[derive(Debug)]
pub(crate) struct Lineage {
    incarnations: AtomicU32,
    margin_until: Mutex<Option<Instant>>,
    releases: AtomicU32,
    /// Release calls running (started, not yet finished or dropped).
    running_releases: AtomicU32,
    /// Signalled whenever a running release finishes.
    release_finished: Notify,
    stopped: AtomicBool,
    exit_blocker: ExitBlocker,
}

/// A release call running; dropping it (when the call finished or was dropped) counts it
/// finished.
pub(crate) struct RunningRelease(Arc<Lineage>);

impl Drop for RunningRelease {
    fn drop(&mut self) {
        self.0.running_releases.fetch_sub(1, Ordering::SeqCst);
        self.0.release_finished.notify_waiters();
    }
}

impl Lineage {
    pub(crate) fn new(exit_blocker: ExitBlocker) -> Lineage {
        Lineage {
            incarnations: AtomicU32::new(0),
            margin_until: Mutex::new(None),
            releases: AtomicU32::new(0),
            running_releases: AtomicU32::new(0),
            release_finished: Notify::new(),
            stopped: AtomicBool::new(false),
            exit_blocker,
        }
    }

    /// The number of the next incarnation (0 for the first).
    pub(crate) fn next_incarnation(&self) -> u32 {
        self.incarnations.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a removal margin an earlier incarnation started is still running.
    pub(crate) fn margin_running(&self) -> bool {
        self.margin_until.lock().is_some_and(|t| t > Instant::now())
    }

    /// When the running removal margin ends, if one runs.
    pub(crate) fn margin_until(&self) -> Option<Instant> {
        *self.margin_until.lock()
    }

    /// Records the end of the removal margin being waited out (`None`: none is).
    pub(crate) fn set_margin_until(&self, until: Option<Instant>) {
        *self.margin_until.lock() = until;
    }

    /// A lease release was issued (its `Released` answer is due).
    pub(crate) fn release_issued(&self) {
        self.releases.fetch_add(1, Ordering::SeqCst);
    }

    /// A release's answer was handled (by whichever incarnation).
    pub(crate) fn release_answered(&self) {
        // never below zero, even for an answer this count did not see issued
        let _ = self
            .releases
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Releases issued whose answers have not been handled yet.
    pub(crate) fn releases_in_flight(&self) -> u32 {
        self.releases.load(Ordering::SeqCst)
    }

    /// A release call starts; keep the guard until it finished.
    pub(crate) fn release_running(self: &Arc<Self>) -> RunningRelease {
        self.running_releases.fetch_add(1, Ordering::SeqCst);
        RunningRelease(self.clone())
    }

    /// Waits until no release call runs.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    pub(crate) async fn releases_finished(&self) {
        loop {
            let finished = self.release_finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if self.running_releases.load(Ordering::SeqCst) == 0 {
                return;
            }
            finished.await;
        }
    }

    /// The manager stopped for good: a grant that arrives from now on is released by the
    /// task that acquired it. Call it before checking the lease object in the stop hook:
    /// either that check sees a grant, or the grant's task sees this.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// Whether the manager stopped for good.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// The exit blocker of this manager.
    pub(crate) fn exit_blocker(&self) -> &ExitBlocker {
        &self.exit_blocker
    }
}
