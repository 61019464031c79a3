//! The leader's duties as a pure function of the gossip.

use super::{ClusterEvent, Gossip, MemberStatus, UniqueAddress, diff};

/// Runs the leader's actions on a converged state, as node `leader`.
///
/// When `leader` is the leader ([`Gossip::leader`]) and the state [has
/// converged](Gossip::is_converged), in one step:
/// - Joining and WeaklyUp members become Up, receiving up-numbers after the highest one
///   assigned so far, in address order;
/// - Leaving members become Exiting;
/// - Exiting and Down members (as they were before this step) are removed: tombstoned and
///   dropped from the state.
///
/// If anything changed, the leader's clock entry is bumped and only it has seen the result.
/// Returns the new state and the events between the two ([`diff`] from the leader's view);
/// otherwise the state unchanged and no events.
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{leader_actions, ClusterEvent, Gossip, Member, MemberStatus};
///
/// let a = Member::joining(Address::logical("sys", "a")?, 1, Vec::<String>::new());
/// let me = a.unique_address();
/// let gossip = Gossip::new().join(a, &me)?;
/// let (next, events) = leader_actions(&gossip, &me);
/// assert_eq!(next.member(&me).map(|m| (m.status, m.up_number)), Some((MemberStatus::Up, 1)));
/// assert!(matches!(events.as_slice(), [ClusterEvent::MemberUp(_), ..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn leader_actions(gossip: &Gossip, leader: &UniqueAddress) -> (Gossip, Vec<ClusterEvent>) {
    let is_leader = gossip
        .leader(leader)
        .is_some_and(|m| &m.unique_address() == leader);
    if !is_leader || !gossip.is_converged() {
        return (gossip.clone(), Vec::new());
    }
    let mut next_up = gossip.members().map(|m| m.up_number).max().unwrap_or(0);
    let mut changes = Vec::new();
    let mut removals = Vec::new();
    for member in gossip.members() {
        let node = member.unique_address();
        match member.status {
            MemberStatus::Joining | MemberStatus::WeaklyUp => {
                let up_number = if member.up_number == 0 {
                    next_up += 1;
                    next_up
                } else {
                    member.up_number
                };
                changes.push((node, MemberStatus::Up, Some(up_number)));
            }
            MemberStatus::Leaving => changes.push((node, MemberStatus::Exiting, None)),
            MemberStatus::Exiting | MemberStatus::Down => removals.push(node),
            MemberStatus::Up | MemberStatus::Removed => {}
        }
    }
    if changes.is_empty() && removals.is_empty() {
        return (gossip.clone(), Vec::new());
    }
    let next = gossip.apply_leader_changes(&changes, &removals, leader);
    let events = diff(gossip, &next, leader);
    (next, events)
}

/// Moves reachable Joining members to WeaklyUp while the state has *not* converged, as node
/// `leader` (optional: lets new members work during a long unreachability).
///
/// Does nothing when `leader` is not the leader or the state has converged (then
/// [`leader_actions`] moves them to Up). Returns the new state and its events.
pub fn weakly_up_actions(gossip: &Gossip, leader: &UniqueAddress) -> (Gossip, Vec<ClusterEvent>) {
    let is_leader = gossip
        .leader(leader)
        .is_some_and(|m| &m.unique_address() == leader);
    if !is_leader || gossip.is_converged() {
        return (gossip.clone(), Vec::new());
    }
    let changes: Vec<_> = gossip
        .members()
        .filter(|m| m.status == MemberStatus::Joining && gossip.is_reachable(&m.unique_address()))
        .map(|m| (m.unique_address(), MemberStatus::WeaklyUp, None))
        .collect();
    if changes.is_empty() {
        return (gossip.clone(), Vec::new());
    }
    let next = gossip.apply_leader_changes(&changes, &[], leader);
    let events = diff(gossip, &next, leader);
    (next, events)
}
