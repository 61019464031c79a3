//! Cluster members, their life-cycle statuses and the allowed transitions.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Address;

/// One incarnation of a node: its address plus the uid it drew when it started.
///
/// A node restarted on the same address is a new incarnation with a new uid; the old one is
/// never confused with it. Ordered by address, then uid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UniqueAddress {
    /// Where the node listens.
    pub address: Address,
    /// The incarnation's random uid.
    pub uid: u64,
}

impl UniqueAddress {
    /// Pairs an address with an incarnation uid.
    pub fn new(address: Address, uid: u64) -> Self {
        Self { address, uid }
    }
}

impl fmt::Display for UniqueAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.address, self.uid)
    }
}

/// The life-cycle status of a member.
///
/// The variant order is the merge precedence: when two gossips disagree about a member the
/// merge keeps the *most progressed* status (`Joining < WeaklyUp < Up < Leaving < Exiting <
/// Down < Removed`), so a status never moves backwards through gossip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Asked to join; not yet moved up by the leader.
    Joining,
    /// Joining, moved up provisionally while the cluster had not converged (optional).
    WeaklyUp,
    /// A full member.
    Up,
    /// Asked to leave gracefully.
    Leaving,
    /// Leaving, confirmed by the leader; about to be removed.
    Exiting,
    /// Declared dead by the downing decision; about to be removed.
    Down,
    /// Gone from the cluster; its uid is tombstoned and can never come back.
    Removed,
}

impl MemberStatus {
    /// Every status, in precedence order.
    pub const ALL: [MemberStatus; 7] = [
        MemberStatus::Joining,
        MemberStatus::WeaklyUp,
        MemberStatus::Up,
        MemberStatus::Leaving,
        MemberStatus::Exiting,
        MemberStatus::Down,
        MemberStatus::Removed,
    ];

    /// Whether a member may move from `self` to `to` (staying put is not a transition).
    ///
    /// Joining → WeaklyUp, Up, Leaving, Down, Removed; WeaklyUp → Up, Leaving, Down, Removed;
    /// Up → Leaving, Down, Removed; Leaving → Exiting, Down, Removed; Exiting → Down, Removed;
    /// Down → Removed; Removed → nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use actor_cluster::membership::MemberStatus::*;
    ///
    /// assert!(Joining.can_move_to(Up));
    /// assert!(!Up.can_move_to(Joining));
    /// assert!(!Removed.can_move_to(Up));
    /// ```
    pub fn can_move_to(self, to: MemberStatus) -> bool {
        use MemberStatus::*;
        match self {
            Joining => matches!(to, WeaklyUp | Up | Leaving | Down | Removed),
            WeaklyUp => matches!(to, Up | Leaving | Down | Removed),
            Up => matches!(to, Leaving | Down | Removed),
            Leaving => matches!(to, Exiting | Down | Removed),
            Exiting => matches!(to, Down | Removed),
            Down => matches!(to, Removed),
            Removed => false,
        }
    }

    /// Whether a member in this status counts as a cluster participant (not Down or Removed).
    pub fn is_active(self) -> bool {
        !matches!(self, MemberStatus::Down | MemberStatus::Removed)
    }
}

/// A member of the cluster as the gossip knows it.
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{Member, MemberStatus};
///
/// let member = Member::joining(Address::logical("sys", "a").unwrap(), 7, ["backend"]);
/// assert_eq!(member.status, MemberStatus::Joining);
/// assert!(member.has_role("backend"));
/// assert_eq!(member.up_number, 0); // not yet assigned
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Where the member listens.
    pub address: Address,
    /// The member's incarnation uid.
    pub uid: u64,
    /// Its life-cycle status.
    pub status: MemberStatus,
    /// The roles it was started with.
    pub roles: BTreeSet<String>,
    /// Order in which the leader moved it to Up (1 is the oldest); 0 while not yet assigned.
    pub up_number: u64,
}

impl Member {
    /// A new Joining member with the given roles and no up-number.
    pub fn joining<R: Into<String>>(
        address: Address,
        uid: u64,
        roles: impl IntoIterator<Item = R>,
    ) -> Self {
        Self {
            address,
            uid,
            status: MemberStatus::Joining,
            roles: roles.into_iter().map(Into::into).collect(),
            up_number: 0,
        }
    }

    /// The member's incarnation.
    pub fn unique_address(&self) -> UniqueAddress {
        UniqueAddress::new(self.address.clone(), self.uid)
    }

    /// Whether the member has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// Whether `self` is older than `other`: a lower up-number (an unassigned 0 counts as
    /// youngest), ties by address.
    pub fn is_older_than(&self, other: &Member) -> bool {
        self.age_key() < other.age_key()
    }

    /// The key members are ordered by age with: (up-number, 0 as infinity; address; uid).
    pub fn age_key(&self) -> (u64, &Address, u64) {
        let up = if self.up_number == 0 {
            u64::MAX
        } else {
            self.up_number
        };
        (up, &self.address, self.uid)
    }

    /// Joins two views of the same incarnation: the most progressed status, the union of the
    /// roles, and the lowest assigned up-number. Commutative, associative and idempotent.
    pub fn merged(&self, other: &Member) -> Member {
        let up_number = match (self.up_number, other.up_number) {
            (0, n) | (n, 0) => n,
            (a, b) => a.min(b),
        };
        Member {
            address: self.address.clone(),
            uid: self.uid,
            status: self.status.max(other.status),
            roles: self.roles.union(&other.roles).cloned().collect(),
            up_number,
        }
    }
}
