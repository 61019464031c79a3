//! The gossiped membership state and its merge.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    ClockOrdering, Member, MemberStatus, MembershipError, Reachability, UniqueAddress, VectorClock,
};
use crate::Address;

/// The membership state every node gossips: members, reachability observations, which nodes
/// have seen this version, the version itself and the tombstones of removed incarnations.
///
/// # The merge
///
/// [`Gossip::merge`] is a join: commutative, associative and idempotent, so gossip may be
/// exchanged in any order, duplicated or repeated and every node still ends on the same
/// state.
/// - Members are keyed by incarnation ([`UniqueAddress`]); two views of one incarnation merge
///   with [`Member::merged`] (most progressed status, union of roles, lowest up-number).
/// - Tombstones are a grow-only set; a tombstoned incarnation is dropped from the members,
///   the seen set and the reachability table, so a removed uid can never come back.
/// - Reachability merges per (observer, subject) record ([`Reachability::merged`]).
/// - Versions merge entry-wise ([`VectorClock::merged`]). The seen set follows the version:
///   equal versions union their seen sets, a newer version keeps its own, and concurrent
///   versions give an empty seen set (nobody has seen the merged state yet); the receiving
///   node then marks itself seen ([`Gossip::receive`]).
///
/// # Growth
///
/// Pruning would break the merge laws, so nothing is pruned: the tombstone set and the
/// version clock keep one entry per incarnation that ever changed the state. That is a few
/// dozen bytes per departed node; a long-lived cluster with heavy churn would want Akka's
/// time-based tombstone pruning, which needs a removal timestamp and is not done here.
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{Gossip, Member};
///
/// let a = Member::joining(Address::logical("sys", "a")?, 1, Vec::<String>::new());
/// let b = Member::joining(Address::logical("sys", "b")?, 2, Vec::<String>::new());
/// let left = Gossip::new().join(a.clone(), &a.unique_address())?;
/// let right = Gossip::new().join(b.clone(), &b.unique_address())?;
/// let merged = left.merge(&right);
/// assert_eq!(merged, right.merge(&left));
/// assert_eq!(merged.members().count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "RawGossip")]
pub struct Gossip {
    members: BTreeMap<UniqueAddress, Member>,
    reachability: Reachability,
    seen: BTreeSet<UniqueAddress>,
    version: VectorClock,
    tombstones: BTreeSet<UniqueAddress>,
}

/// The wire shape of a [`Gossip`]; decoding re-keys members by their own incarnation and
/// normalises, so a peer cannot smuggle in a tombstoned or mis-keyed member.
#[derive(Deserialize)]
struct RawGossip {
    members: BTreeMap<UniqueAddress, Member>,
    reachability: Reachability,
    seen: BTreeSet<UniqueAddress>,
    version: VectorClock,
    tombstones: BTreeSet<UniqueAddress>,
}

impl From<RawGossip> for Gossip {
    fn from(raw: RawGossip) -> Self {
        Gossip::from_parts(
            raw.members.into_values(),
            raw.reachability,
            raw.seen,
            raw.version,
            raw.tombstones,
        )
    }
}

impl Gossip {
    /// The empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a state from its parts, normalised: Removed members become tombstones, and
    /// tombstoned incarnations leave the members, seen set and reachability table.
    pub fn from_parts(
        members: impl IntoIterator<Item = Member>,
        reachability: Reachability,
        seen: impl IntoIterator<Item = UniqueAddress>,
        version: VectorClock,
        tombstones: impl IntoIterator<Item = UniqueAddress>,
    ) -> Self {
        let mut map: BTreeMap<UniqueAddress, Member> = BTreeMap::new();
        for member in members {
            let key = member.unique_address();
            let merged = match map.get(&key) {
                Some(existing) => existing.merged(&member),
                None => member,
            };
            map.insert(key, merged);
        }
        let mut gossip = Self {
            members: map,
            reachability,
            seen: seen.into_iter().collect(),
            version,
            tombstones: tombstones.into_iter().collect(),
        };
        gossip.normalise();
        gossip
    }

    fn normalise(&mut self) {
        for (node, member) in &self.members {
            if member.status == MemberStatus::Removed {
                self.tombstones.insert(node.clone());
            }
        }
        let tombstones = &self.tombstones;
        self.members.retain(|node, _| !tombstones.contains(node));
        self.seen.retain(|node| !tombstones.contains(node));
        self.reachability.remove_nodes(tombstones);
    }

    /// The members (never Removed ones), ordered by address then uid.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// The member with this incarnation, if present.
    pub fn member(&self, node: &UniqueAddress) -> Option<&Member> {
        self.members.get(node)
    }

    /// The incarnation at `address`; if, transiently, several (two concurrent joins), the
    /// least progressed one, then the lowest uid.
    pub fn member_by_address(&self, address: &Address) -> Option<&Member> {
        self.members
            .values()
            .filter(|m| &m.address == address)
            .min_by_key(|m| (m.status, m.uid))
    }

    /// The reachability observations.
    pub fn reachability(&self) -> &Reachability {
        &self.reachability
    }

    /// The nodes that have seen this version.
    pub fn seen(&self) -> &BTreeSet<UniqueAddress> {
        &self.seen
    }

    /// The version of this state.
    pub fn version(&self) -> &VectorClock {
        &self.version
    }

    /// The incarnations removed for good.
    pub fn tombstones(&self) -> &BTreeSet<UniqueAddress> {
        &self.tombstones
    }

    /// Whether the incarnation `node` was removed from the cluster (tombstoned): a node that
    /// finds itself removed in a received state must shut down, and may only come back as a
    /// new incarnation.
    pub fn is_removed(&self, node: &UniqueAddress) -> bool {
        self.tombstones.contains(node)
    }

    /// Whether `node` has seen this version.
    pub fn seen_by_node(&self, node: &UniqueAddress) -> bool {
        self.seen.contains(node)
    }

    /// This state without `node` in its seen set (the version does not change): a leaving
    /// node holding its leave for its exit blockers keeps the state from converging.
    pub(crate) fn unseen_by(mut self, node: &UniqueAddress) -> Self {
        self.seen.remove(node);
        self
    }

    /// This state with `node` recorded as having seen it (the version does not change).
    pub fn seen_by(mut self, node: &UniqueAddress) -> Self {
        if !self.tombstones.contains(node) {
            self.seen.insert(node.clone());
        }
        self
    }

    /// The join of two states; see the type docs for the rules.
    pub fn merge(&self, other: &Gossip) -> Gossip {
        let mut members = self.members.clone();
        for (node, member) in &other.members {
            let merged = match members.get(node) {
                Some(existing) => existing.merged(member),
                None => member.clone(),
            };
            members.insert(node.clone(), merged);
        }
        let seen = match self.version.compare(&other.version) {
            ClockOrdering::Same => self.seen.union(&other.seen).cloned().collect(),
            ClockOrdering::After => self.seen.clone(),
            ClockOrdering::Before => other.seen.clone(),
            ClockOrdering::Concurrent => BTreeSet::new(),
        };
        let mut merged = Gossip {
            members,
            reachability: self.reachability.merged(&other.reachability),
            seen,
            version: self.version.merged(&other.version),
            tombstones: self.tombstones.union(&other.tombstones).cloned().collect(),
        };
        merged.normalise();
        merged
    }

    /// What `receiver` does with a remote state: merges it with `self`, marks itself seen,
    /// and says how the remote version related to the local one (`Concurrent` means changes
    /// were made concurrently and the merged state is new to everyone else).
    pub fn receive(&self, remote: &Gossip, receiver: &UniqueAddress) -> (Gossip, ClockOrdering) {
        let ordering = self.version.compare(&remote.version);
        (self.merge(remote).seen_by(receiver), ordering)
    }

    /// A local change made by `by`: bumps `by`'s clock entry; only `by` has seen the result.
    fn changed(mut self, by: &UniqueAddress) -> Self {
        self.version = self.version.incremented(by);
        self.seen.clear();
        self.normalise();
        self.seen_by(by)
    }

    /// Adds `member` as Joining (its status and up-number are reset), made by node `by`.
    ///
    /// Joining again with the same incarnation changes nothing. A new incarnation at the
    /// address of an existing one replaces it: the old uid is tombstoned.
    ///
    /// # Errors
    ///
    /// [`MembershipError::Tombstoned`] when this incarnation was already removed.
    pub fn join(&self, member: Member, by: &UniqueAddress) -> Result<Gossip, MembershipError> {
        let node = member.unique_address();
        if self.tombstones.contains(&node) {
            return Err(MembershipError::Tombstoned { node });
        }
        if self.members.contains_key(&node) {
            return Ok(self.clone());
        }
        let mut next = self.clone();
        let old: Vec<UniqueAddress> = next
            .members
            .keys()
            .filter(|n| n.address == node.address)
            .cloned()
            .collect();
        next.tombstones.extend(old);
        next.members.insert(
            node,
            Member {
                status: MemberStatus::Joining,
                up_number: 0,
                ..member
            },
        );
        Ok(next.changed(by))
    }

    /// Moves the member `node` to `status`, made by node `by`.
    ///
    /// Moving to the status it already has changes nothing; moving to Removed tombstones it.
    ///
    /// # Errors
    ///
    /// [`MembershipError::UnknownMember`] when `node` is not a member, or
    /// [`MembershipError::InvalidTransition`] when [`MemberStatus::can_move_to`] forbids it.
    pub fn set_status(
        &self,
        node: &UniqueAddress,
        status: MemberStatus,
        by: &UniqueAddress,
    ) -> Result<Gossip, MembershipError> {
        let member = self
            .members
            .get(node)
            .ok_or_else(|| MembershipError::UnknownMember { node: node.clone() })?;
        if member.status == status {
            return Ok(self.clone());
        }
        if !member.status.can_move_to(status) {
            return Err(MembershipError::InvalidTransition {
                node: node.clone(),
                from: member.status,
                to: status,
            });
        }
        let mut next = self.clone();
        if let Some(m) = next.members.get_mut(node) {
            m.status = status;
        }
        Ok(next.changed(by))
    }

    /// Marks the member at `address` Leaving (a graceful leave), made by node `by`.
    ///
    /// # Errors
    ///
    /// As [`Gossip::set_status`]; [`MembershipError::UnknownAddress`] when no member is there.
    pub fn leave(&self, address: &Address, by: &UniqueAddress) -> Result<Gossip, MembershipError> {
        let node = self.incarnation_at(address)?;
        self.set_status(&node, MemberStatus::Leaving, by)
    }

    /// Marks the member at `address` Down (the downing decision), made by node `by`.
    ///
    /// # Errors
    ///
    /// As [`Gossip::leave`].
    pub fn down(&self, address: &Address, by: &UniqueAddress) -> Result<Gossip, MembershipError> {
        let node = self.incarnation_at(address)?;
        self.set_status(&node, MemberStatus::Down, by)
    }

    fn incarnation_at(&self, address: &Address) -> Result<UniqueAddress, MembershipError> {
        self.member_by_address(address)
            .map(Member::unique_address)
            .ok_or_else(|| MembershipError::UnknownAddress {
                address: address.clone(),
            })
    }

    /// Records that `observer` suspects `subject` (a change made by `observer` when new).
    pub fn mark_unreachable(&self, observer: &UniqueAddress, subject: &UniqueAddress) -> Gossip {
        let mut next = self.clone();
        if next.reachability.unreachable(observer, subject) {
            next.changed(observer)
        } else {
            next
        }
    }

    /// Records that `observer` hears `subject` again (a change made by `observer` when new).
    pub fn mark_reachable(&self, observer: &UniqueAddress, subject: &UniqueAddress) -> Gossip {
        let mut next = self.clone();
        if next.reachability.reachable(observer, subject) {
            next.changed(observer)
        } else {
            next
        }
    }

    /// Whether an observer's opinion counts: it is a member that is not Down.
    fn counts_as_observer(&self, observer: &UniqueAddress) -> bool {
        self.members
            .get(observer)
            .is_some_and(|m| m.status != MemberStatus::Down)
    }

    /// Whether no counting observer (a member that is not Down) records `node` unreachable.
    pub fn is_reachable(&self, node: &UniqueAddress) -> bool {
        !self
            .reachability
            .is_unreachable_by_any(node, |o| self.counts_as_observer(o))
    }

    /// The members some counting observer (a member that is not Down) records unreachable.
    ///
    /// One pass over the reachability records: use it instead of calling
    /// [`Gossip::is_reachable`] per member.
    pub fn unreachable_nodes(&self) -> BTreeSet<UniqueAddress> {
        self.reachability
            .records()
            .filter(|(observer, subject, record)| {
                record.status == super::ReachabilityStatus::Unreachable
                    && self.members.contains_key(*subject)
                    && self.counts_as_observer(observer)
            })
            .map(|(_, subject, _)| subject.clone())
            .collect()
    }

    /// The members some counting observer records unreachable, in member order.
    pub fn unreachable_members(&self) -> impl Iterator<Item = &Member> {
        let unreachable = self.unreachable_nodes();
        self.members
            .iter()
            .filter(move |(node, _)| unreachable.contains(*node))
            .map(|(_, m)| m)
    }

    /// Whether the state has converged: every reachable member that is not Down has seen
    /// this version, and every unreachable member is Down or Exiting.
    ///
    /// An unreachable Exiting member does not block (as in Akka): it is leaving and may
    /// already have shut down. A Down member is neither required to have seen the state nor
    /// blocks it; the leader may then remove it.
    pub fn is_converged(&self) -> bool {
        let unreachable = self.unreachable_nodes();
        self.members.iter().all(|(node, m)| {
            if unreachable.contains(node) {
                matches!(m.status, MemberStatus::Down | MemberStatus::Exiting)
            } else {
                m.status == MemberStatus::Down || self.seen.contains(node)
            }
        })
    }

    fn leader_among<'a>(
        &'a self,
        viewer: &UniqueAddress,
        mut eligible: impl FnMut(&Member) -> bool,
    ) -> Option<&'a Member> {
        let unreachable = self.unreachable_nodes();
        let candidates = || {
            self.members
                .iter()
                .filter(|(node, _)| *node == viewer || !unreachable.contains(*node))
        };
        let settled = candidates()
            .map(|(_, m)| m)
            .filter(|m| matches!(m.status, MemberStatus::Up | MemberStatus::Leaving))
            .filter(|m| eligible(m))
            .min_by(|a, b| a.age_key().cmp(&b.age_key()));
        if settled.is_some() {
            return settled;
        }
        let any_up = self
            .members
            .values()
            .any(|m| matches!(m.status, MemberStatus::Up | MemberStatus::Leaving) && eligible(m));
        if any_up {
            // Up members exist but none is reachable: no leader until downing decides.
            return None;
        }
        candidates()
            .map(|(_, m)| m)
            .filter(|m| matches!(m.status, MemberStatus::Joining | MemberStatus::WeaklyUp))
            .filter(|m| eligible(m))
            .min_by(|a, b| (&a.address, a.uid).cmp(&(&b.address, b.uid)))
    }

    /// The leader as seen by `viewer` (who always counts itself reachable).
    ///
    /// The oldest reachable Up or Leaving member (lowest up-number, ties by address); while
    /// no member is Up or Leaving, the lowest-address reachable Joining or WeaklyUp member, so
    /// a new cluster can form. `None` when Up members exist but none is reachable.
    pub fn leader(&self, viewer: &UniqueAddress) -> Option<&Member> {
        self.leader_among(viewer, |_| true)
    }

    /// The leader among the members with `role`, by the same rule as [`Gossip::leader`].
    pub fn role_leader(&self, role: &str, viewer: &UniqueAddress) -> Option<&Member> {
        self.leader_among(viewer, |m| m.has_role(role))
    }

    /// Every role some member has, sorted.
    pub fn roles(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.roles.iter().cloned())
            .collect()
    }

    /// Applies status changes and up-numbers without validation (leader actions).
    pub(crate) fn apply_leader_changes(
        &self,
        changes: &[(UniqueAddress, MemberStatus, Option<u64>)],
        removals: &[UniqueAddress],
        by: &UniqueAddress,
    ) -> Gossip {
        let mut next = self.clone();
        for (node, status, up_number) in changes {
            if let Some(m) = next.members.get_mut(node) {
                m.status = *status;
                if let Some(n) = up_number {
                    m.up_number = *n;
                }
            }
        }
        next.tombstones.extend(removals.iter().cloned());
        next.changed(by)
    }
}
