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

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::cluster::ExitBlocker;

/// The state one manager's incarnations share; see the module docs.
#[derive(Debug)]
pub(crate) struct Lineage {
    incarnations: AtomicU32,
    margin_until: Mutex<Option<Instant>>,
    releases: AtomicU32,
    stopped: AtomicBool,
    exit_blocker: ExitBlocker,
}

impl Lineage {
    pub(crate) fn new(exit_blocker: ExitBlocker) -> Lineage {
        Lineage {
            incarnations: AtomicU32::new(0),
            margin_until: Mutex::new(None),
            releases: AtomicU32::new(0),
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
