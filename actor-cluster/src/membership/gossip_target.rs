//! Choosing the peer to gossip with: random, preferring peers that have not seen our state.

use rand::Rng;

use super::{Gossip, UniqueAddress};

/// Default probability of picking the gossip target among the peers that have not seen the
/// current version (when there are some): 0.8.
///
/// Higher spreads a new state faster; lower keeps some gossip flowing to peers that have
/// seen it, which is how their newer changes come back (Akka's
/// `gossip-different-view-probability`).
pub const DEFAULT_PREFER_UNSEEN_PROBABILITY: f64 = 0.8;

/// The peers `self_node` may gossip with: every other member it does not itself observe as
/// unreachable, split into those that have not seen the current version and those that have.
///
/// Both lists are in member order. Down members are included: they must learn that they
/// were downed.
pub fn gossip_candidates(
    gossip: &Gossip,
    self_node: &UniqueAddress,
) -> (Vec<UniqueAddress>, Vec<UniqueAddress>) {
    let mut unseen = Vec::new();
    let mut seen = Vec::new();
    for member in gossip.members() {
        let node = member.unique_address();
        if &node == self_node {
            continue;
        }
        let suspected = gossip
            .reachability()
            .record(self_node, &node)
            .is_some_and(|r| r.status == super::ReachabilityStatus::Unreachable);
        if suspected {
            continue;
        }
        if gossip.seen_by_node(&node) {
            seen.push(node);
        } else {
            unseen.push(node);
        }
    }
    (unseen, seen)
}

/// Picks one gossip target for `self_node` with `rng` (a seeded RNG gives a replayable run).
///
/// With probability `prefer_unseen` (clamped to 0..=1) the target is drawn among the peers
/// that have not seen the current version, when there are any; otherwise among all
/// candidates ([`gossip_candidates`]). `None` when there is no candidate.
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{select_gossip_target, Gossip, Member};
/// use rand::SeedableRng;
///
/// let a = Member::joining(Address::logical("sys", "a")?, 1, Vec::<String>::new());
/// let b = Member::joining(Address::logical("sys", "b")?, 2, Vec::<String>::new());
/// let (ua, ub) = (a.unique_address(), b.unique_address());
/// let gossip = Gossip::new().join(a, &ua)?.join(b, &ua)?;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
/// assert_eq!(select_gossip_target(&gossip, &ua, 0.8, &mut rng), Some(ub));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn select_gossip_target<R: Rng + ?Sized>(
    gossip: &Gossip,
    self_node: &UniqueAddress,
    prefer_unseen: f64,
    rng: &mut R,
) -> Option<UniqueAddress> {
    let (unseen, seen) = gossip_candidates(gossip, self_node);
    let p = if prefer_unseen.is_nan() {
        0.0
    } else {
        prefer_unseen.clamp(0.0, 1.0)
    };
    if !unseen.is_empty() && rng.random_bool(p) {
        let i = rng.random_range(0..unseen.len());
        return unseen.get(i).cloned();
    }
    let total = unseen.len() + seen.len();
    if total == 0 {
        return None;
    }
    let i = rng.random_range(0..total);
    unseen.into_iter().chain(seen).nth(i)
}
