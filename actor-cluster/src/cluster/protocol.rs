//! The cluster daemon's messages and its protocol decisions as pure functions over the
//! membership types; the daemon actor only performs the I/O they ask for.

use serde::{Deserialize, Serialize};

use crate::Address;
use crate::failure_detector::ReachabilityChange;
use crate::membership::{ClockOrdering, Gossip, Member, MemberStatus, UniqueAddress};
use crate::wire::RemoteMessage;

/// What cluster daemons send each other, plus the daemon's own timer ticks.
///
/// Every node's daemon lives at [`DAEMON_PATH`](super::DAEMON_PATH) and receives this type
/// through remoting. The tick variants, `LeaseResult` and the exit-blocker variants are only
/// sent by a daemon to itself; a peer sending them can at worst make a round happen early,
/// feed a lease result the resolver ignores unless it is waiting for one, or make a leaving
/// node check its exit blockers again (the timeout check compares against its own deadline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClusterMsg {
    /// A joining node asks a seed whether it is a cluster member.
    InitJoin {
        /// The asking node.
        from: Address,
    },
    /// The seed is a member: the asker may send [`ClusterMsg::Join`].
    InitJoinAck {
        /// The seed.
        from: Address,
    },
    /// The seed is not a member (yet).
    InitJoinNack {
        /// The seed.
        from: Address,
    },
    /// A node asks to join as this member.
    Join {
        /// The joining member (Joining).
        member: Member,
    },
    /// The join was accepted; the state includes the new member.
    Welcome {
        /// The accepting node.
        from: Address,
        /// The state after the join.
        gossip: Gossip,
    },
    /// One gossip round: the sender's whole state.
    Gossip {
        /// The sender.
        from: UniqueAddress,
        /// Its state.
        gossip: Gossip,
    },
    /// A heartbeat from a monitoring node.
    Heartbeat {
        /// The monitoring node.
        from: Address,
    },
    /// The answer to a heartbeat.
    HeartbeatRsp {
        /// The monitored node.
        from: Address,
    },
    /// Mark the member at this address Leaving (graceful leave).
    Leave {
        /// The leaving member's address.
        address: Address,
    },
    /// Mark the member at this address Down.
    Down {
        /// The member's address.
        address: Address,
    },
    /// Timer: a gossip round and the leader's duties.
    GossipTick,
    /// Timer: a heartbeat round and failure detection.
    HeartbeatTick,
    /// Timer: the seed-join process's deadline.
    JoinTick,
    /// Timer: the downing provider's deadline.
    DowningTick,
    /// Timer: an Exiting node has spread its state and now shuts down.
    ShutdownTick,
    /// Local: the downing lease attempt finished.
    LeaseResult {
        /// Whether the lease was acquired.
        acquired: bool,
    },
    /// Local: an exit blocker was registered or reported done
    /// ([`ExitBlocker`](super::ExitBlocker)); a leaving node checks whether its leave may go on.
    ExitBlockersChanged,
    /// Timer: a leave held for exit blockers reached
    /// [`ClusterSettings::exit_blocker_timeout`](super::ClusterSettings::exit_blocker_timeout).
    ExitBlockerTimeout,
}

impl RemoteMessage for ClusterMsg {
    const MANIFEST: &'static str = "actor_cluster.ClusterMsg";
}

/// Whether `self_node` is an active member of `gossip` (present and not Down or Removed).
pub fn is_active_member(gossip: &Gossip, self_node: &UniqueAddress) -> bool {
    gossip
        .member(self_node)
        .is_some_and(|m| !matches!(m.status, MemberStatus::Down | MemberStatus::Removed))
}

/// The answer to an `InitJoin`: an ack when this node is an active member.
pub fn init_join_reply(gossip: &Gossip, self_node: &UniqueAddress) -> ClusterMsg {
    let from = self_node.address.clone();
    if is_active_member(gossip, self_node) {
        ClusterMsg::InitJoinAck { from }
    } else {
        ClusterMsg::InitJoinNack { from }
    }
}

/// The state after accepting `member`'s join, or `None` when this node cannot accept it
/// (not a member itself, or the incarnation was removed before).
pub fn accept_join(gossip: &Gossip, member: Member, self_node: &UniqueAddress) -> Option<Gossip> {
    if !is_active_member(gossip, self_node) {
        return None;
    }
    gossip.join(member, self_node).ok()
}

/// What to do with a received gossip state.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipOutcome {
    /// The state to adopt.
    pub gossip: Gossip,
    /// Whether to send the adopted state back to the sender (it had an older or concurrent
    /// version, so it lacks something we have).
    pub reply: bool,
}

/// Receives `remote` into `local` on `self_node`; `None` when this node is not a member of
/// `remote` (a state of another cluster, or one from before we joined) and must ignore it.
pub fn receive_gossip(
    local: &Gossip,
    remote: &Gossip,
    self_node: &UniqueAddress,
) -> Option<GossipOutcome> {
    if remote.member(self_node).is_none() && !remote.is_removed(self_node) {
        return None;
    }
    let (gossip, ordering) = local.receive(remote, self_node);
    let reply = matches!(ordering, ClockOrdering::After | ClockOrdering::Concurrent)
        || !remote.seen_by_node(self_node);
    Some(GossipOutcome { gossip, reply })
}

/// Records this node's own reachability observations in the gossip.
pub fn apply_reachability(
    gossip: &Gossip,
    self_node: &UniqueAddress,
    changes: &[ReachabilityChange],
) -> Gossip {
    let mut next = gossip.clone();
    for change in changes {
        let (address, unreachable) = match change {
            ReachabilityChange::Unreachable(a) => (a, true),
            ReachabilityChange::Reachable(a) => (a, false),
        };
        let Some(subject) = next.member_by_address(address).map(Member::unique_address) else {
            continue;
        };
        next = if unreachable {
            next.mark_unreachable(self_node, &subject)
        } else {
            next.mark_reachable(self_node, &subject)
        };
    }
    next
}

/// What this node's own status means for its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfFate {
    /// Keep running.
    Run,
    /// Exiting: spread the state a little longer, then shut down.
    ShutDownSoon,
    /// Down or removed: shut down now.
    ShutDownNow,
}

/// This node's fate in `gossip`.
pub fn self_fate(gossip: &Gossip, self_node: &UniqueAddress) -> SelfFate {
    if gossip.is_removed(self_node) {
        return SelfFate::ShutDownNow;
    }
    match gossip.member(self_node).map(|m| m.status) {
        Some(MemberStatus::Down | MemberStatus::Removed) => SelfFate::ShutDownNow,
        Some(MemberStatus::Exiting) => SelfFate::ShutDownSoon,
        _ => SelfFate::Run,
    }
}

/// The addresses the failure detector should know about: every member not Down or Removed.
pub fn monitored_members(gossip: &Gossip) -> Vec<Address> {
    gossip
        .members()
        .filter(|m| !matches!(m.status, MemberStatus::Down | MemberStatus::Removed))
        .map(|m| m.address.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: &str, uid: u64) -> Member {
        Member::joining(
            Address::logical("sys", n).expect("valid"),
            uid,
            Vec::<String>::new(),
        )
    }

    #[test]
    fn join_is_accepted_only_by_members() {
        let a = member("a", 1);
        let ua = a.unique_address();
        assert_eq!(accept_join(&Gossip::new(), member("b", 2), &ua), None);
        assert!(matches!(
            init_join_reply(&Gossip::new(), &ua),
            ClusterMsg::InitJoinNack { .. }
        ));
        let formed = Gossip::new().join(a, &ua).expect("join self");
        assert!(matches!(
            init_join_reply(&formed, &ua),
            ClusterMsg::InitJoinAck { .. }
        ));
        let joined = accept_join(&formed, member("b", 2), &ua).expect("accepted");
        assert_eq!(joined.members().count(), 2);
    }

    #[test]
    fn foreign_gossip_is_ignored_and_older_gossip_gets_a_reply() {
        let a = member("a", 1);
        let b = member("b", 2);
        let (ua, ub) = (a.unique_address(), b.unique_address());
        let on_a = Gossip::new().join(a, &ua).expect("join");
        assert_eq!(receive_gossip(&Gossip::new(), &on_a, &ub), None);
        let on_a = on_a.join(b, &ua).expect("join b");
        let outcome = receive_gossip(&Gossip::new(), &on_a, &ub).expect("member");
        assert!(outcome.gossip.seen_by_node(&ub));
        // b's state is newer than nothing, and a has not seen b's view: reply.
        assert!(outcome.reply);
        let back = receive_gossip(&on_a, &outcome.gossip, &ua).expect("member");
        assert!(back.gossip.is_converged());
        assert!(!back.reply, "same version already seen by a");
    }

    #[test]
    fn fate_follows_own_status() {
        let a = member("a", 1);
        let ua = a.unique_address();
        let g = Gossip::new().join(a.clone(), &ua).expect("join");
        assert_eq!(self_fate(&g, &ua), SelfFate::Run);
        let downed = g.down(&a.address, &ua).expect("down");
        assert_eq!(self_fate(&downed, &ua), SelfFate::ShutDownNow);
    }
}
