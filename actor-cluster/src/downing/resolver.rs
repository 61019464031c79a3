//! The whole downing provider as one pure state machine: stability window, strategy, lease
//! and auto-down, driven by explicit instants.

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::{
    AutoDownTracker, Decision, DowningError, DowningSettings, DowningStrategy, DowningView,
    StabilityAction, StabilityTracker, decide, lease_outcome, nodes_to_down,
};
use crate::membership::UniqueAddress;

/// An input of the [`SplitBrainResolver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverEvent {
    /// The membership or reachability changed: the node's current view, and whether it is
    /// the leader of its side (only the leader acts on decisions).
    Observe {
        /// The current view.
        view: DowningView,
        /// Whether this node is the leader among the members it can reach.
        is_leader: bool,
    },
    /// Time passed (the caller's timer fired at or after
    /// [`SplitBrainResolver::next_deadline`]).
    Tick,
    /// The lease attempt asked for by [`ResolverAction::AcquireLease`] finished.
    LeaseResult {
        /// Whether the lease was acquired.
        acquired: bool,
    },
}

/// An output of the [`SplitBrainResolver`], for the caller to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverAction {
    /// Mark these members Down (possibly including ourselves).
    Down(BTreeSet<UniqueAddress>),
    /// Try to acquire the downing lease now, then report [`ResolverEvent::LeaseResult`].
    AcquireLease,
}

/// Where the resolver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolverPhase {
    /// Watching the unreachable set.
    Watching,
    /// Lease-majority decided to try the lease at `at` (later on the minority side).
    LeaseDelay {
        /// When to try.
        at: Instant,
    },
    /// Waiting for the lease result.
    AwaitingLease,
}

/// The downing provider's decision logic, with the I/O (marking Down, taking the lease, the
/// timer) left to the caller.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_cluster::Address;
/// use actor_cluster::downing::{DowningSettings, DowningView, ResolverAction, ResolverEvent, SplitBrainResolver};
/// use actor_cluster::membership::{Member, MemberStatus};
/// use tokio::time::Instant;
///
/// let members: Vec<Member> = (0..3)
///     .map(|i| Member {
///         status: MemberStatus::Up,
///         up_number: i + 1,
///         ..Member::joining(Address::logical("sys", format!("n{i}")).unwrap(), i, Vec::<String>::new())
///     })
///     .collect();
/// let crashed = members[2].unique_address();
/// let t0 = Instant::now();
/// let mut resolver = SplitBrainResolver::new(DowningSettings::default(), t0)?;
/// let view = DowningView::new(members.clone(), [crashed.clone()], members[0].unique_address());
/// assert!(resolver.on_event(t0, ResolverEvent::Observe { view, is_leader: true }).is_empty());
/// let at = resolver.next_deadline().unwrap(); // t0 + stable-after
/// assert_eq!(at, t0 + Duration::from_secs(7));
/// assert_eq!(resolver.on_event(at, ResolverEvent::Tick), vec![ResolverAction::Down([crashed].into())]);
/// # Ok::<(), actor_cluster::downing::DowningError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SplitBrainResolver {
    settings: DowningSettings,
    stability: StabilityTracker,
    auto_down: Option<AutoDownTracker>,
    view: Option<DowningView>,
    is_leader: bool,
    phase: ResolverPhase,
}

impl SplitBrainResolver {
    /// A resolver starting at `at` with nothing unreachable.
    ///
    /// # Errors
    ///
    /// The [`DowningError`] of [`DowningSettings::validate`].
    pub fn new(settings: DowningSettings, at: Instant) -> Result<Self, DowningError> {
        settings.validate()?;
        let auto_down = match settings.strategy {
            DowningStrategy::AutoDown { after } => Some(AutoDownTracker::new(after)),
            _ => None,
        };
        Ok(Self {
            stability: StabilityTracker::new(&settings, at),
            settings,
            auto_down,
            view: None,
            is_leader: false,
            phase: ResolverPhase::Watching,
        })
    }

    /// The current phase.
    pub fn phase(&self) -> ResolverPhase {
        self.phase
    }

    /// When the caller should deliver [`ResolverEvent::Tick`] next, if anything is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            ResolverPhase::LeaseDelay { at } => Some(at),
            ResolverPhase::AwaitingLease => None,
            ResolverPhase::Watching => match &self.auto_down {
                Some(auto) => auto.next_deadline(),
                None => self.stability.next_deadline(),
            },
        }
    }

    /// Feeds one event at `at` and returns the actions to perform.
    pub fn on_event(&mut self, at: Instant, event: ResolverEvent) -> Vec<ResolverAction> {
        match event {
            ResolverEvent::Observe { view, is_leader } => {
                let changed = self
                    .view
                    .as_ref()
                    .is_none_or(|old| old.unreachable() != view.unreachable());
                self.stability.observe(at, view.unreachable());
                if let Some(auto) = &mut self.auto_down {
                    auto.observe(at, view.unreachable());
                }
                if changed && self.phase != ResolverPhase::Watching {
                    // The picture changed under a pending lease decision: start over.
                    self.phase = ResolverPhase::Watching;
                }
                self.view = Some(view);
                self.is_leader = is_leader;
                self.evaluate(at)
            }
            ResolverEvent::Tick => self.evaluate(at),
            ResolverEvent::LeaseResult { acquired } => {
                if self.phase != ResolverPhase::AwaitingLease {
                    return Vec::new();
                }
                self.phase = ResolverPhase::Watching;
                self.act(at, lease_outcome(acquired))
            }
        }
    }

    fn act(&mut self, at: Instant, decision: Decision) -> Vec<ResolverAction> {
        self.stability.decided(at);
        let Some(view) = &self.view else {
            return Vec::new();
        };
        let to_down = nodes_to_down(&decision, view);
        if to_down.is_empty() {
            Vec::new()
        } else {
            vec![ResolverAction::Down(to_down)]
        }
    }

    fn evaluate(&mut self, at: Instant) -> Vec<ResolverAction> {
        if !self.is_leader {
            return Vec::new();
        }
        let Some(view) = &self.view else {
            return Vec::new();
        };
        if let Some(auto) = &self.auto_down {
            let due = auto.due(at);
            return if due.is_empty() {
                Vec::new()
            } else {
                vec![ResolverAction::Down(due)]
            };
        }
        match self.phase {
            ResolverPhase::AwaitingLease => Vec::new(),
            ResolverPhase::LeaseDelay { at: when } => {
                if at >= when {
                    self.phase = ResolverPhase::AwaitingLease;
                    vec![ResolverAction::AcquireLease]
                } else {
                    Vec::new()
                }
            }
            ResolverPhase::Watching => match self.stability.poll(at) {
                StabilityAction::Wait => Vec::new(),
                StabilityAction::DownAll => self.act(at, Decision::DownAll),
                StabilityAction::Decide => match decide(&self.settings.strategy, view) {
                    Decision::AcquireLease { delay } => {
                        // A decision was reached: the instability episode ends here.
                        self.stability.decided(at);
                        if delay.is_zero() {
                            self.phase = ResolverPhase::AwaitingLease;
                            vec![ResolverAction::AcquireLease]
                        } else {
                            self.phase = ResolverPhase::LeaseDelay { at: at + delay };
                            Vec::new()
                        }
                    }
                    decision => self.act(at, decision),
                },
            },
        }
    }
}
