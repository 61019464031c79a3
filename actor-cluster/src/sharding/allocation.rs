//! Where shards go: the pluggable [`ShardAllocationStrategy`] and its default,
//! [`LeastShardAllocationStrategy`], as pure functions over the current allocation.
//!
//! Regions are named by their key (the path of the region's control actor); an allocation is
//! a `BTreeMap` from region key to the shards it hosts, so every decision is deterministic.

use std::collections::{BTreeMap, BTreeSet};

/// The current allocation: region key to the shards it hosts (every eligible region is
/// present, also with no shards).
pub type Allocation = BTreeMap<String, BTreeSet<u32>>;

/// Decides which region hosts a new shard and which shards move in a rebalance.
///
/// Implementations must be pure and deterministic: the coordinator may move and a new one
/// must come to the same decisions from the same state.
pub trait ShardAllocationStrategy: Send + Sync + 'static {
    /// The region (a key of `current`) that should host `shard`, which no region hosts now;
    /// `None` when `current` is empty.
    fn allocate(&self, shard: u32, current: &Allocation) -> Option<String>;

    /// The shards to move away from their regions now. `in_progress` are the shards being
    /// moved already; the returned set never includes them.
    fn rebalance(&self, current: &Allocation, in_progress: &BTreeSet<u32>) -> BTreeSet<u32>;
}

/// Least-shards allocation: a new shard goes to the region with the fewest shards (ties to
/// the lowest key); a rebalance moves shards from regions above their fair share
/// (`total / regions`, the remainder going to the most loaded) until every region is within
/// one shard of every other, at most `max_simultaneous` at a time.
///
/// # Examples
///
/// ```
/// use std::collections::{BTreeMap, BTreeSet};
/// use actor_cluster::sharding::{LeastShardAllocationStrategy, ShardAllocationStrategy};
///
/// let strategy = LeastShardAllocationStrategy::new(10);
/// let mut current = BTreeMap::new();
/// current.insert("a".to_owned(), BTreeSet::from([0, 1, 2, 3]));
/// current.insert("b".to_owned(), BTreeSet::new());
/// assert_eq!(strategy.allocate(9, &current).as_deref(), Some("b"));
/// assert_eq!(strategy.rebalance(&current, &BTreeSet::new()).len(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeastShardAllocationStrategy {
    max_simultaneous: usize,
}

impl LeastShardAllocationStrategy {
    /// A strategy moving at most `max_simultaneous` shards at once (at least one).
    pub fn new(max_simultaneous: usize) -> Self {
        Self {
            max_simultaneous: max_simultaneous.max(1),
        }
    }
}

impl ShardAllocationStrategy for LeastShardAllocationStrategy {
    fn allocate(&self, _shard: u32, current: &Allocation) -> Option<String> {
        current
            .iter()
            .min_by(|(ka, a), (kb, b)| a.len().cmp(&b.len()).then_with(|| ka.cmp(kb)))
            .map(|(key, _)| key.clone())
    }

    fn rebalance(&self, current: &Allocation, in_progress: &BTreeSet<u32>) -> BTreeSet<u32> {
        let budget = self.max_simultaneous.saturating_sub(in_progress.len());
        if budget == 0 || current.is_empty() {
            return BTreeSet::new();
        }
        let total: usize = current.values().map(BTreeSet::len).sum();
        let regions = current.len();
        let (floor, remainder) = (total / regions, total % regions);
        // Most loaded first (ties by key), so the remainder's extra shard stays where it is.
        let mut by_load: Vec<(&String, &BTreeSet<u32>)> = current.iter().collect();
        by_load.sort_by(|(ka, a), (kb, b)| b.len().cmp(&a.len()).then_with(|| ka.cmp(kb)));
        let mut moving = BTreeSet::new();
        for (rank, (_, shards)) in by_load.into_iter().enumerate() {
            let fair = floor + usize::from(rank < remainder);
            let excess = shards.len().saturating_sub(fair);
            // The highest-numbered shards move: a stable, deterministic choice.
            for shard in shards
                .iter()
                .rev()
                .filter(|s| !in_progress.contains(s))
                .take(excess)
            {
                if moving.len() == budget {
                    return moving;
                }
                moving.insert(*shard);
            }
        }
        moving
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn alloc(regions: &[&[u32]]) -> Allocation {
        regions
            .iter()
            .enumerate()
            .map(|(i, shards)| (format!("r{i}"), shards.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn allocates_to_the_least_loaded_region_ties_by_key() {
        let s = LeastShardAllocationStrategy::new(3);
        assert_eq!(
            s.allocate(7, &alloc(&[&[1, 2], &[3], &[4]])).as_deref(),
            Some("r1")
        );
        assert_eq!(
            s.allocate(7, &alloc(&[&[1], &[], &[]])).as_deref(),
            Some("r1")
        );
        assert_eq!(s.allocate(7, &Allocation::new()), None);
    }

    #[test]
    fn balanced_allocation_does_not_move() {
        let s = LeastShardAllocationStrategy::new(3);
        assert!(
            s.rebalance(&alloc(&[&[1, 2], &[3, 4], &[5]]), &BTreeSet::new())
                .is_empty()
        );
    }

    #[test]
    fn rebalance_is_bounded_and_skips_shards_in_progress() {
        let s = LeastShardAllocationStrategy::new(3);
        let current = alloc(&[&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], &[]]);
        let moving = s.rebalance(&current, &BTreeSet::new());
        assert_eq!(moving, BTreeSet::from([7, 8, 9]));
        let moving = s.rebalance(&current, &BTreeSet::from([9]));
        assert_eq!(moving, BTreeSet::from([7, 8]));
        assert!(s.rebalance(&current, &BTreeSet::from([1, 2, 3])).is_empty());
    }

    proptest! {
        /// Repeated rebalance rounds (moved shards re-allocated by `allocate`) end with every
        /// region within one shard of every other, and never lose or duplicate a shard.
        #[test]
        fn rebalance_converges(loads in proptest::collection::vec(0usize..40, 1..6), max in 1usize..8) {
            let s = LeastShardAllocationStrategy::new(max);
            let mut next = 0u32;
            let mut current: Allocation = Allocation::new();
            for (i, load) in loads.iter().enumerate() {
                let shards = (0..*load).map(|_| { next += 1; next }).collect();
                current.insert(format!("r{i}"), shards);
            }
            for _ in 0..200 {
                let moving = s.rebalance(&current, &BTreeSet::new());
                prop_assert!(moving.len() <= max);
                if moving.is_empty() { break; }
                for shards in current.values_mut() {
                    shards.retain(|x| !moving.contains(x));
                }
                for shard in moving {
                    let to = s.allocate(shard, &current).expect("a region");
                    current.get_mut(&to).expect("known region").insert(shard);
                }
            }
            let lens: Vec<usize> = current.values().map(BTreeSet::len).collect();
            let (min, maxl) = (lens.iter().min().copied().unwrap_or(0), lens.iter().max().copied().unwrap_or(0));
            prop_assert!(maxl - min <= 1, "loads {:?}", lens);
            let all: BTreeSet<u32> = current.values().flatten().copied().collect();
            prop_assert_eq!(all.len() as u32, next);
        }
    }
}
