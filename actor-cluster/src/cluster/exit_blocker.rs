//! Exit blockers: local components that hold this node's graceful leave until their own
//! exit work is done (a cluster singleton's hand-over), bounded by a timeout.
//!
//! How it works is described on [`ExitBlocker`].
//!
//! [`ExitGate`] is the hold as a pure state machine; the daemon feeds it and does the I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actor_core::ActorRef;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::Shared;
use super::protocol::ClusterMsg;

/// The blockers registered on one node: pending ones by id, with their names for logs.
#[derive(Debug, Default)]
pub(crate) struct ExitBlockers {
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    pending: BTreeMap<u64, String>,
}

impl ExitBlockers {
    fn register(&self, name: String) -> u64 {
        let mut inner = self.inner.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.pending.insert(id, name);
        id
    }

    /// Marks `id` done; true if it was pending.
    fn done(&self, id: u64) -> bool {
        self.inner.lock().pending.remove(&id).is_some()
    }

    fn is_pending(&self, id: u64) -> bool {
        self.inner.lock().pending.contains_key(&id)
    }

    /// Whether any blocker is pending.
    pub(crate) fn any_pending(&self) -> bool {
        !self.inner.lock().pending.is_empty()
    }

    /// The names of the pending blockers, in registration order.
    pub(crate) fn pending_names(&self) -> Vec<String> {
        self.inner.lock().pending.values().cloned().collect()
    }
}

/// A local component's hold on this node's graceful leave.
///
/// This is the counterpart of Akka's coordinated-shutdown `cluster-exiting` phase. A
/// component registers with [`Cluster::register_exit_blocker`](crate::Cluster::register_exit_blocker)
/// and calls [`ExitBlocker::done`] once it has finished what it must do before the node goes
/// (dropping the blocker counts as done). While this node is **Leaving** and any blocker
/// is pending, its daemon does not mark the membership states it adopts as *seen by this
/// node*. The state then cannot converge, and the leader (this node or another) moves
/// Leaving members to Exiting, and Exiting or Down members to Removed, only on a converged
/// state: this node stays Leaving, is not removed, and does not shut down. Once every
/// blocker is done, or [`ClusterSettings::exit_blocker_timeout`](crate::ClusterSettings::exit_blocker_timeout)
/// (default [`DEFAULT_EXIT_BLOCKER_TIMEOUT`](crate::cluster::DEFAULT_EXIT_BLOCKER_TIMEOUT)) has
/// passed since the node saw itself Leaving (logged at warn, with the names still
/// pending), it marks its state seen again and the leave goes on as before.
///
/// Nothing changes on the wire: a node that holds its leave simply has not seen the
/// latest state yet, which every node already handles. One rule keeps that quiet: a node
/// answers a gossip only when its adopted state differs from the one received (a holder
/// never appears in the seen set, so "the sender has not seen my state" alone would make
/// two holders answer each other for ever). The price is that, while a leave is held, the
/// leader takes no action at all for anyone (members neither join nor are removed, a
/// downed member elsewhere is not removed either, so a singleton failing over from it
/// waits too), which is why the hold is bounded. Blockers matter only while Leaving: a
/// node that is downed shuts down at once whatever is pending.
///
/// Pending from [`Cluster::register_exit_blocker`](crate::Cluster::register_exit_blocker)
/// until [`done`](ExitBlocker::done) is called or the blocker is dropped. A pending
/// blocker matters only once this node is Leaving: call `done` when the component's exit
/// work is over (it may call it before the node leaves, if it has nothing to do then).
/// Which blockers hold is settled when the node first sees itself Leaving: if none is
/// pending then, the leave goes on and a blocker registered later does not hold it; while a
/// leave is held, one registered meanwhile holds it too (within the same timeout).
///
/// # Examples
///
/// ```
/// use actor_cluster::cluster::{Cluster, ClusterSettings};
/// use actor_cluster::membership::MemberStatus;
/// use actor_cluster::remote::Remoting;
/// use actor_cluster::{Address, InMemoryHub};
/// use actor_core::ActorSystem;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = InMemoryHub::new();
/// let address = Address::logical("doc", "a")?;
/// let transport = hub.bind(address.clone())?;
/// let system = ActorSystem::with_settings("doc", Remoting::system_settings(&*transport))?;
/// Remoting::start(&system, transport)?;
/// let cluster = Cluster::join(&system, ClusterSettings::fast().with_seed_nodes(vec![address]))?;
/// while cluster.self_member().status != MemberStatus::Up {
///     tokio::time::sleep(std::time::Duration::from_millis(50)).await;
/// }
/// let blocker = cluster.register_exit_blocker("flush-journal");
/// cluster.leave();
/// tokio::time::sleep(std::time::Duration::from_secs(2)).await;
/// assert_eq!(cluster.self_member().status, MemberStatus::Leaving); // held
/// blocker.done(); // flushed: the leave goes on
/// assert!(system.await_termination(std::time::Duration::from_secs(10)).await);
/// # Ok(())
/// # }
/// ```
pub struct ExitBlocker {
    id: u64,
    name: String,
    shared: Arc<Shared>,
    daemon: ActorRef<ClusterMsg>,
}

impl ExitBlocker {
    pub(crate) fn register(
        shared: Arc<Shared>,
        daemon: ActorRef<ClusterMsg>,
        name: String,
    ) -> ExitBlocker {
        let id = shared.exit_blockers.register(name.clone());
        // a node already leaving re-checks: it now has a blocker to wait for
        daemon.tell(ClusterMsg::ExitBlockersChanged);
        ExitBlocker {
            id,
            name,
            shared,
            daemon,
        }
    }

    /// Reports this component's exit work done: the node's leave no longer waits for it.
    /// Calling it again does nothing.
    pub fn done(&self) {
        if self.shared.exit_blockers.done(self.id) {
            self.daemon.tell(ClusterMsg::ExitBlockersChanged);
        }
    }

    /// Whether [`done`](ExitBlocker::done) was called.
    pub fn is_done(&self) -> bool {
        !self.shared.exit_blockers.is_pending(self.id)
    }

    /// The name given at registration (it names the blocker in logs).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ExitBlocker {
    fn drop(&mut self) {
        self.done();
    }
}

impl fmt::Debug for ExitBlocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExitBlocker")
            .field("name", &self.name)
            .field("done", &self.is_done())
            .finish()
    }
}

/// Whether a node holds its leave for its exit blockers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitGate {
    /// The node has not been seen Leaving yet.
    NotLeaving,
    /// Leaving with blockers pending: states are not marked seen until `deadline`.
    Holding {
        /// When the hold ends whatever is pending.
        deadline: Instant,
    },
    /// The leave goes on (blockers done, timed out, or none when it began).
    Open,
}

/// What the daemon does after an [`ExitGate`] step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitGateAction {
    /// The hold began: arm the timeout for this long.
    Hold(Duration),
    /// Every blocker is done: mark the state seen again.
    Release,
    /// The timeout passed with blockers pending: log them, mark the state seen again.
    TimedOut,
}

impl ExitGate {
    /// Whether states must not be marked seen by this node.
    pub(crate) fn is_holding(self) -> bool {
        matches!(self, ExitGate::Holding { .. })
    }

    /// The gate once this node's status is known to be `leaving` (Leaving, not yet
    /// Exiting), with blockers `pending` or not, at `now`; zero `timeout` never holds.
    pub(crate) fn step(
        self,
        leaving: bool,
        pending: bool,
        now: Instant,
        timeout: Duration,
    ) -> (ExitGate, Option<ExitGateAction>) {
        match self {
            ExitGate::NotLeaving if !leaving => (self, None),
            ExitGate::NotLeaving if pending && !timeout.is_zero() => (
                ExitGate::Holding {
                    deadline: now + timeout,
                },
                Some(ExitGateAction::Hold(timeout)),
            ),
            ExitGate::NotLeaving => (ExitGate::Open, None),
            // past Leaving (Exiting, Down, removed): nothing left to hold
            ExitGate::Holding { .. } if !leaving => (ExitGate::Open, Some(ExitGateAction::Release)),
            ExitGate::Holding { .. } if !pending => (ExitGate::Open, Some(ExitGateAction::Release)),
            ExitGate::Holding { deadline } if now >= deadline => {
                (ExitGate::Open, Some(ExitGateAction::TimedOut))
            }
            ExitGate::Holding { .. } | ExitGate::Open => (self, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    #[test]
    fn a_leave_without_pending_blockers_is_not_held() {
        let now = Instant::now();
        let gate = ExitGate::NotLeaving;
        assert_eq!(
            gate.step(false, true, now, TIMEOUT),
            (ExitGate::NotLeaving, None)
        );
        assert_eq!(gate.step(true, false, now, TIMEOUT), (ExitGate::Open, None));
        // a zero timeout turns the hold off
        assert_eq!(
            gate.step(true, true, now, Duration::ZERO),
            (ExitGate::Open, None)
        );
    }

    #[test]
    fn a_leave_is_held_until_every_blocker_is_done() {
        let now = Instant::now();
        let (gate, action) = ExitGate::NotLeaving.step(true, true, now, TIMEOUT);
        assert_eq!(action, Some(ExitGateAction::Hold(TIMEOUT)));
        assert!(gate.is_holding());
        let later = now + Duration::from_secs(10);
        assert_eq!(gate.step(true, true, later, TIMEOUT), (gate, None));
        assert_eq!(
            gate.step(true, false, later, TIMEOUT),
            (ExitGate::Open, Some(ExitGateAction::Release))
        );
        // once open it stays open, even if a blocker is registered late
        assert_eq!(
            ExitGate::Open.step(true, true, later, TIMEOUT),
            (ExitGate::Open, None)
        );
    }

    #[test]
    fn a_held_leave_goes_on_at_the_timeout_or_past_leaving() {
        let now = Instant::now();
        let (gate, _) = ExitGate::NotLeaving.step(true, true, now, TIMEOUT);
        assert_eq!(
            gate.step(true, true, now + TIMEOUT, TIMEOUT),
            (ExitGate::Open, Some(ExitGateAction::TimedOut))
        );
        assert_eq!(
            gate.step(false, true, now, TIMEOUT),
            (ExitGate::Open, Some(ExitGateAction::Release))
        );
    }
}
