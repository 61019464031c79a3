//! Downing: deciding which unreachable (or which reachable!) members to mark Down.
//!
//! Failure detection only says "observer X cannot reach Y". Whether Y crashed or the
//! network split, no node can tell, and a wrong guess on both sides of a partition gives two
//! clusters (split brain). A downing provider turns unreachability into Down, and the split
//! brain resolver strategies here make that decision so that at most one side survives:
//!
//! - **keep-majority** (the default): the side with more members survives; an even split
//!   keeps the side holding the lowest address.
//! - **keep-oldest**: the side holding the oldest member survives; with `down_if_alone`, an
//!   oldest member cut off alone downs itself instead of the rest.
//! - **static-quorum**: a side with at least `quorum_size` members survives; a smaller side
//!   downs itself. Too many members for the quorum (more than `2 × quorum - 1`) downs all.
//! - **lease-majority**: the side that takes a shared lease survives; the minority side waits
//!   a little before trying, so the majority normally wins. The decision is split in two:
//!   [`decide`] asks for the lease ([`Decision::AcquireLease`]), and [`lease_outcome`] turns
//!   the result into downing one side.
//! - **down-all when unstable**: if the unreachable set keeps changing for longer than
//!   `stable_after` plus a limit, everything is downed rather than risk an unsafe guess.
//! - **auto-down** (unsafe for production): any member unreachable for a fixed time is
//!   downed, on both sides of a partition, so a partition yields two clusters. Only for tests
//!   and single-process use.
//!
//! All of it is pure: [`decide`] maps a [`DowningView`] to a [`Decision`], [`nodes_to_down`]
//! lists the members to mark Down (possibly our own side, self included), and the timers
//! are small state machines taking explicit instants ([`StabilityTracker`],
//! [`AutoDownTracker`]). [`SplitBrainResolver`] combines them into the provider's whole
//! decision logic as one state machine (events in, actions out); only the leader of each
//! side acts.
//!
//! # Examples
//!
//! A 3-2 split under keep-majority: the side of three downs the two it cannot reach.
//!
//! ```
//! use std::collections::BTreeSet;
//! use actor_cluster::Address;
//! use actor_cluster::downing::{decide, nodes_to_down, Decision, DowningStrategy, DowningView};
//! use actor_cluster::membership::{Member, MemberStatus};
//!
//! let members: Vec<Member> = (0..5)
//!     .map(|i| Member {
//!         status: MemberStatus::Up,
//!         up_number: i + 1,
//!         ..Member::joining(Address::logical("sys", format!("n{i}")).unwrap(), i, Vec::<String>::new())
//!     })
//!     .collect();
//! let unreachable: BTreeSet<_> = members[3..].iter().map(Member::unique_address).collect();
//! let view = DowningView::new(members.clone(), unreachable.clone(), members[0].unique_address());
//! let decision = decide(&DowningStrategy::default(), &view);
//! assert_eq!(decision, Decision::DownUnreachable);
//! assert_eq!(nodes_to_down(&decision, &view), unreachable);
//! ```

mod auto_down;
mod resolver;
mod settings;
mod stability;
mod strategy;

pub use auto_down::AutoDownTracker;
pub use resolver::{ResolverAction, ResolverEvent, ResolverPhase, SplitBrainResolver};
pub use settings::{
    DEFAULT_ACQUIRE_LEASE_DELAY_FOR_MINORITY, DEFAULT_STABLE_AFTER, DownAllWhenUnstable,
    DowningError, DowningSettings, DowningStrategy, MIN_DOWN_ALL_WHEN_UNSTABLE,
};
pub use stability::{StabilityAction, StabilityTracker};
pub use strategy::{Decision, DowningView, decide, lease_outcome, nodes_to_down};
