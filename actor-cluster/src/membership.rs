//! Cluster membership as plain data: members, gossip state, merge, convergence, leader and
//! events, all pure functions with no I/O, so the membership actor only wires them to the
//! transport and a timer.
//!
//! # Concepts
//!
//! - **Member** ([`Member`]): one incarnation of a node (address + uid, [`UniqueAddress`])
//!   with a [`MemberStatus`], its roles and an up-number (its age: the order in which the
//!   leader moved it Up). Statuses only move forward ([`MemberStatus::can_move_to`]); their
//!   declaration order is the merge precedence.
//! - **Gossip** ([`Gossip`]): the state every node holds and periodically sends to a peer:
//!   members, reachability observations, the seen set, a [`VectorClock`] version and the
//!   tombstones of removed incarnations. [`Gossip::merge`] is commutative, associative and
//!   idempotent, and [`VectorClock::compare`] tells a newer state from a concurrent one.
//!   Each round a node sends its state to one random peer, preferring peers that have not
//!   seen it ([`select_gossip_target`]).
//! - **Reachability** ([`Reachability`]): "observer cannot reach subject" records, versioned
//!   per observer and gossiped. Being unreachable is an observation, never a status; only
//!   the downing decision turns it into Down.
//! - **Convergence** ([`Gossip::is_converged`]): every reachable member that is not Down has
//!   seen the current version, and every unreachable member is Down (or Exiting). Only then
//!   does the leader act.
//! - **Leader** ([`Gossip::leader`], [`Gossip::role_leader`]): the oldest reachable Up or
//!   Leaving member; before any member is Up, the lowest-address reachable Joining member.
//!   [`leader_actions`] is its whole job: Joining → Up, Leaving → Exiting, Exiting / Down →
//!   Removed.
//! - **Seed join** ([`SeedJoin`]): how a starting node finds the cluster through its seed
//!   nodes, and why only the first seed may form a new cluster by itself.
//! - **Events** ([`ClusterEvent`], [`diff`], [`CurrentClusterState`]): what subscribers see,
//!   computed as the difference between two states, so every node derives its events from
//!   the states it adopted and nothing else.
//!
//! Determinism: all collections are ordered (`BTreeMap`, `BTreeSet`); nothing decides by
//! iterating a hash map. Everything derives `serde` so it can travel in a wire envelope.
//!
//! # Examples
//!
//! Two nodes form a cluster: the first joins itself, the second joins through it, both see
//! the state, and the leader moves them Up.
//!
//! ```
//! use actor_cluster::Address;
//! use actor_cluster::membership::{leader_actions, Gossip, Member, MemberStatus};
//!
//! let a = Member::joining(Address::logical("sys", "a")?, 1, Vec::<String>::new());
//! let b = Member::joining(Address::logical("sys", "b")?, 2, Vec::<String>::new());
//! let (ua, ub) = (a.unique_address(), b.unique_address());
//!
//! let on_a = Gossip::new().join(a, &ua)?.join(b, &ua)?;
//! let (on_b, _) = Gossip::new().receive(&on_a, &ub); // b learns the state, marks it seen
//! let (on_a, _) = on_a.receive(&on_b, &ua);          // a learns that b has seen it
//! assert!(on_a.is_converged());
//!
//! let (on_a, _events) = leader_actions(&on_a, &ua);
//! assert!(on_a.members().all(|m| m.status == MemberStatus::Up));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod events;
mod gossip;
mod gossip_target;
mod leader;
mod member;
mod reachability;
mod seed_join;
mod vector_clock;

pub use events::{ClusterEvent, CurrentClusterState, diff};
pub use gossip::Gossip;
pub use gossip_target::{
    DEFAULT_PREFER_UNSEEN_PROBABILITY, gossip_candidates, select_gossip_target,
};
pub use leader::{leader_actions, weakly_up_actions};
pub use member::{Member, MemberStatus, UniqueAddress};
pub use reachability::{Reachability, ReachabilityRecord, ReachabilityStatus};
pub use seed_join::{
    DEFAULT_INIT_JOIN_RESEND_INTERVAL, DEFAULT_RETRY_UNSUCCESSFUL_JOIN_AFTER,
    DEFAULT_SEED_NODE_TIMEOUT, SeedJoin, SeedJoinAction, SeedJoinEvent, SeedJoinSettings,
    SeedJoinState,
};
pub use vector_clock::{ClockOrdering, VectorClock};

use crate::Address;

/// Errors raised by membership state changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The incarnation was removed before; a removed uid can never come back.
    #[error("{node} was removed from the cluster and cannot join again with the same uid")]
    Tombstoned {
        /// The removed incarnation.
        node: UniqueAddress,
    },
    /// No member has this incarnation.
    #[error("{node} is not a member")]
    UnknownMember {
        /// The unknown incarnation.
        node: UniqueAddress,
    },
    /// No member has this address.
    #[error("no member at {address}")]
    UnknownAddress {
        /// The unknown address.
        address: Address,
    },
    /// The status change is not allowed.
    #[error("{node} cannot move from {from:?} to {to:?}")]
    InvalidTransition {
        /// The member.
        node: UniqueAddress,
        /// Its current status.
        from: MemberStatus,
        /// The refused status.
        to: MemberStatus,
    },
}
