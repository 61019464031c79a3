//! Membership events subscribers receive, computed as the difference of two states.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Gossip, Member, MemberStatus, UniqueAddress};
use crate::Address;

/// A change of the membership as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClusterEvent {
    /// A member appeared, Joining.
    MemberJoined(Member),
    /// A member was moved to WeaklyUp.
    MemberWeaklyUp(Member),
    /// A member was moved to Up.
    MemberUp(Member),
    /// A member is Leaving.
    MemberLeft(Member),
    /// A member is Exiting.
    MemberExited(Member),
    /// A member was marked Down.
    MemberDowned(Member),
    /// A member was removed (its status is now Removed).
    MemberRemoved {
        /// The member, with status Removed.
        member: Member,
        /// Its status before removal (Exiting for a graceful leave, Down otherwise).
        previous_status: MemberStatus,
    },
    /// Some observer suspects this member.
    UnreachableMember(Member),
    /// No observer suspects this member any more.
    ReachableMember(Member),
    /// The leader changed (`None`: no leader).
    LeaderChanged(Option<Address>),
    /// The leader among the members with a role changed.
    RoleLeaderChanged {
        /// The role.
        role: String,
        /// Its new leader, if any.
        leader: Option<Address>,
    },
}

fn status_event(member: &Member) -> Option<ClusterEvent> {
    let m = member.clone();
    Some(match member.status {
        MemberStatus::Joining => ClusterEvent::MemberJoined(m),
        MemberStatus::WeaklyUp => ClusterEvent::MemberWeaklyUp(m),
        MemberStatus::Up => ClusterEvent::MemberUp(m),
        MemberStatus::Leaving => ClusterEvent::MemberLeft(m),
        MemberStatus::Exiting => ClusterEvent::MemberExited(m),
        MemberStatus::Down => ClusterEvent::MemberDowned(m),
        MemberStatus::Removed => return None,
    })
}

fn unreachable_set(gossip: &Gossip, viewer: &UniqueAddress) -> BTreeSet<UniqueAddress> {
    gossip
        .unreachable_members()
        .map(Member::unique_address)
        .filter(|node| node != viewer)
        .collect()
}

/// The events that lead from `old` to `new`, as node `viewer` sees them.
///
/// In this order: member status events (by member order; a member first seen in a later
/// status gets only the event of that status), then `MemberRemoved` for members gone from
/// the state, then `UnreachableMember` / `ReachableMember` (never about `viewer` itself),
/// then `LeaderChanged`, then `RoleLeaderChanged` by role name. A subscriber that wants the
/// current state as events gets `diff(&Gossip::new(), &current, viewer)`.
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{diff, ClusterEvent, Gossip, Member};
///
/// let a = Member::joining(Address::logical("sys", "a")?, 1, Vec::<String>::new());
/// let me = a.unique_address();
/// let joined = Gossip::new().join(a.clone(), &me)?;
/// let events = diff(&Gossip::new(), &joined, &me);
/// assert_eq!(events, vec![
///     ClusterEvent::MemberJoined(a.clone()),
///     ClusterEvent::LeaderChanged(Some(a.address.clone())),
/// ]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn diff(old: &Gossip, new: &Gossip, viewer: &UniqueAddress) -> Vec<ClusterEvent> {
    let mut events = Vec::new();
    for member in new.members() {
        let changed = old
            .member(&member.unique_address())
            .is_none_or(|before| before.status != member.status);
        if changed && let Some(event) = status_event(member) {
            events.push(event);
        }
    }
    for member in old.members() {
        let node = member.unique_address();
        if new.member(&node).is_none() {
            events.push(ClusterEvent::MemberRemoved {
                member: Member {
                    status: MemberStatus::Removed,
                    ..member.clone()
                },
                previous_status: member.status,
            });
        }
    }
    let old_unreachable = unreachable_set(old, viewer);
    let new_unreachable = unreachable_set(new, viewer);
    for node in new_unreachable.difference(&old_unreachable) {
        if let Some(member) = new.member(node) {
            events.push(ClusterEvent::UnreachableMember(member.clone()));
        }
    }
    for node in old_unreachable.difference(&new_unreachable) {
        if let Some(member) = new.member(node) {
            events.push(ClusterEvent::ReachableMember(member.clone()));
        }
    }
    let old_leader = old.leader(viewer).map(|m| m.address.clone());
    let new_leader = new.leader(viewer).map(|m| m.address.clone());
    if old_leader != new_leader {
        events.push(ClusterEvent::LeaderChanged(new_leader));
    }
    let roles: BTreeSet<String> = old.roles().union(&new.roles()).cloned().collect();
    for role in roles {
        let before = old.role_leader(&role, viewer).map(|m| m.address.clone());
        let after = new.role_leader(&role, viewer).map(|m| m.address.clone());
        if before != after {
            events.push(ClusterEvent::RoleLeaderChanged {
                role,
                leader: after,
            });
        }
    }
    events
}

/// A snapshot of the membership as one node sees it: what a state query returns and what a
/// new subscriber receives first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CurrentClusterState {
    /// The members (not Removed), ordered by address then uid.
    pub members: Vec<Member>,
    /// The members some observer suspects (never the viewer itself).
    pub unreachable: Vec<Member>,
    /// The addresses that have seen the current version.
    pub seen_by: BTreeSet<Address>,
    /// The leader, if any.
    pub leader: Option<Address>,
    /// The leader of every role some member has.
    pub role_leaders: BTreeMap<String, Option<Address>>,
}

impl CurrentClusterState {
    /// The snapshot of `gossip` as node `viewer` sees it.
    pub fn of(gossip: &Gossip, viewer: &UniqueAddress) -> Self {
        Self {
            members: gossip.members().cloned().collect(),
            unreachable: gossip
                .unreachable_members()
                .filter(|m| &m.unique_address() != viewer)
                .cloned()
                .collect(),
            seen_by: gossip.seen().iter().map(|n| n.address.clone()).collect(),
            leader: gossip.leader(viewer).map(|m| m.address.clone()),
            role_leaders: gossip
                .roles()
                .into_iter()
                .map(|role| {
                    let leader = gossip.role_leader(&role, viewer).map(|m| m.address.clone());
                    (role, leader)
                })
                .collect(),
        }
    }

    /// The member at `address`, if any.
    pub fn member(&self, address: &Address) -> Option<&Member> {
        self.members.iter().find(|m| &m.address == address)
    }
}
