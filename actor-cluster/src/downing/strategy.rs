//! The split brain resolver decisions as pure functions.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::DowningStrategy;
use crate::membership::{Gossip, Member, MemberStatus, UniqueAddress};

/// What one node knows when it decides: the members, which of them it considers
/// unreachable, and itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DowningView {
    members: Vec<Member>,
    unreachable: BTreeSet<UniqueAddress>,
    self_node: UniqueAddress,
}

impl DowningView {
    /// A view over `members` (Down and Removed ones are ignored), with the unreachable ones
    /// (never `self_node`, which is on its own side by definition).
    pub fn new(
        members: impl IntoIterator<Item = Member>,
        unreachable: impl IntoIterator<Item = UniqueAddress>,
        self_node: UniqueAddress,
    ) -> Self {
        let mut members: Vec<Member> = members
            .into_iter()
            .filter(|m| m.status.is_active())
            .collect();
        members.sort_by(|a, b| (&a.address, a.uid).cmp(&(&b.address, b.uid)));
        members.dedup_by(|a, b| a.unique_address() == b.unique_address());
        let known: BTreeSet<UniqueAddress> = members.iter().map(Member::unique_address).collect();
        let unreachable = unreachable
            .into_iter()
            .filter(|n| n != &self_node && known.contains(n))
            .collect();
        Self {
            members,
            unreachable,
            self_node,
        }
    }

    /// The view of `gossip` from `self_node`: its members and unreachable members.
    pub fn from_gossip(gossip: &Gossip, self_node: &UniqueAddress) -> Self {
        Self::new(
            gossip.members().cloned(),
            gossip.unreachable_members().map(Member::unique_address),
            self_node.clone(),
        )
    }

    /// The members considered (not Down or Removed), ordered by address.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The unreachable members.
    pub fn unreachable(&self) -> &BTreeSet<UniqueAddress> {
        &self.unreachable
    }

    /// The deciding node.
    pub fn self_node(&self) -> &UniqueAddress {
        &self.self_node
    }

    fn is_reachable(&self, member: &Member) -> bool {
        !self.unreachable.contains(&member.unique_address())
    }

    /// The members the decision counts: Up and Leaving ones with the role (Joining and
    /// WeaklyUp members are not yet full members and Exiting ones are already going); if
    /// there are none, every member with the role; if still none, every member.
    fn counted(&self, role: Option<&str>) -> Vec<&Member> {
        let with_role = |m: &&Member| role.is_none_or(|r| m.has_role(r));
        let settled: Vec<&Member> = self
            .members
            .iter()
            .filter(with_role)
            .filter(|m| matches!(m.status, MemberStatus::Up | MemberStatus::Leaving))
            .collect();
        if !settled.is_empty() {
            return settled;
        }
        let any_with_role: Vec<&Member> = self.members.iter().filter(with_role).collect();
        if !any_with_role.is_empty() {
            return any_with_role;
        }
        self.members.iter().collect()
    }

    /// (reachable, unreachable) counts among the counted members.
    fn sides(&self, counted: &[&Member]) -> (usize, usize) {
        let reachable = counted.iter().filter(|m| self.is_reachable(m)).count();
        (reachable, counted.len() - reachable)
    }

    /// Whether our side is the minority (ties: the side without the lowest address).
    fn is_minority(&self, role: Option<&str>) -> bool {
        let counted = self.counted(role);
        let (reachable, unreachable) = self.sides(&counted);
        match reachable.cmp(&unreachable) {
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => counted
                .iter()
                .min_by(|a, b| (&a.address, a.uid).cmp(&(&b.address, b.uid)))
                .is_some_and(|lowest| !self.is_reachable(lowest)),
        }
    }
}

/// The outcome of a downing decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// Our side survives: down the unreachable members.
    DownUnreachable,
    /// Our side loses: down every reachable member, ourselves included.
    DownReachable,
    /// Nobody can be trusted to survive: down every member.
    DownAll,
    /// Try to take the lease after `delay`, then apply [`lease_outcome`].
    AcquireLease {
        /// Zero on the majority side; the minority delay otherwise.
        delay: Duration,
    },
}

/// The decision `strategy` makes on `view` once the unreachable set is stable.
///
/// With no unreachable member every strategy answers [`Decision::DownUnreachable`], which
/// downs nobody. [`DowningStrategy::AutoDown`] also answers `DownUnreachable`: its timing is
/// per member ([`super::AutoDownTracker`]), not the stable-after window.
pub fn decide(strategy: &DowningStrategy, view: &DowningView) -> Decision {
    if view.unreachable.is_empty() {
        return Decision::DownUnreachable;
    }
    match strategy {
        DowningStrategy::KeepMajority { role } => {
            if view.is_minority(role.as_deref()) {
                Decision::DownReachable
            } else {
                Decision::DownUnreachable
            }
        }
        DowningStrategy::KeepOldest {
            down_if_alone,
            role,
        } => {
            let counted = view.counted(role.as_deref());
            let Some(oldest) = counted.iter().min_by(|a, b| a.age_key().cmp(&b.age_key())) else {
                return Decision::DownUnreachable;
            };
            let (reachable, unreachable) = view.sides(&counted);
            let oldest_reachable = view.is_reachable(oldest);
            let alone = if oldest_reachable {
                reachable == 1 && unreachable >= 1
            } else {
                unreachable == 1 && reachable >= 1
            };
            match (oldest_reachable, *down_if_alone && alone) {
                (true, false) | (false, true) => Decision::DownUnreachable,
                (true, true) | (false, false) => Decision::DownReachable,
            }
        }
        DowningStrategy::StaticQuorum { quorum_size, role } => {
            let counted = view.counted(role.as_deref());
            if counted.len() > quorum_size.saturating_mul(2).saturating_sub(1) {
                return Decision::DownAll;
            }
            let (reachable, _) = view.sides(&counted);
            if reachable >= *quorum_size {
                Decision::DownUnreachable
            } else {
                Decision::DownReachable
            }
        }
        DowningStrategy::LeaseMajority {
            role,
            acquire_lease_delay_for_minority,
        } => Decision::AcquireLease {
            delay: if view.is_minority(role.as_deref()) {
                *acquire_lease_delay_for_minority
            } else {
                Duration::ZERO
            },
        },
        DowningStrategy::AutoDown { .. } => Decision::DownUnreachable,
    }
}

/// The lease-majority decision once the lease attempt finished: the side that took the lease
/// downs the unreachable members, the other side downs itself.
pub fn lease_outcome(acquired: bool) -> Decision {
    if acquired {
        Decision::DownUnreachable
    } else {
        Decision::DownReachable
    }
}

/// The members `decision` marks Down in `view` (every role, not only the counted one).
///
/// [`Decision::AcquireLease`] downs nobody yet.
pub fn nodes_to_down(decision: &Decision, view: &DowningView) -> BTreeSet<UniqueAddress> {
    let pick = |keep: &dyn Fn(&Member) -> bool| -> BTreeSet<UniqueAddress> {
        view.members
            .iter()
            .filter(|m| keep(m))
            .map(Member::unique_address)
            .collect()
    };
    match decision {
        Decision::DownUnreachable => pick(&|m| !view.is_reachable(m)),
        Decision::DownReachable => pick(&|m| view.is_reachable(m)),
        Decision::DownAll => pick(&|_| true),
        Decision::AcquireLease { .. } => BTreeSet::new(),
    }
}
