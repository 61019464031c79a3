//! The topic registry as per-node versioned buckets, and the pure functions of its gossip.
//!
//! Every node owns one [`Bucket`]: its entries (a topic endpoint, a group endpoint or an
//! actor registered for `send`, each under a [`Key`]) and a version that grows by one on
//! every local change; each entry carries the bucket version at which it last changed. A
//! removed entry stays as a tombstone (no path) so the removal can spread, and is pruned
//! after a while. Gossip compares versions: a peer's [`Registry::versions`] tells which
//! entries it lacks ([`Registry::delta_for`]), and [`Registry::merge`] applies what a peer
//! sent. Only the owner writes its bucket, so merging is taking the higher version.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::membership::UniqueAddress;

/// What a registry key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum KeyKind {
    /// Subscribers of a topic (optionally of one group).
    Topic,
    /// An actor registered for `send` under its path.
    Path,
}

/// One registry entry's name: kind, topic or path, group, message manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Key {
    pub(crate) kind: KeyKind,
    /// The topic, or the registered actor's path without its address (`/user/a`).
    pub(crate) name: String,
    /// The group (topics only).
    pub(crate) group: Option<String>,
    /// The manifest of the message type the subscribers take.
    pub(crate) manifest: String,
}

/// An entry: the version of its last change and the actor path it points at (`None`: a
/// tombstone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) version: u64,
    pub(crate) path: Option<String>,
}

/// One node's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bucket {
    pub(crate) owner: UniqueAddress,
    pub(crate) version: u64,
    pub(crate) entries: BTreeMap<Key, Entry>,
}

impl Bucket {
    fn new(owner: UniqueAddress) -> Self {
        Bucket {
            owner,
            version: 0,
            entries: BTreeMap::new(),
        }
    }
}

/// A change of one entry as seen by this node (to apply to the routing table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) owner: UniqueAddress,
    pub(crate) key: Key,
    pub(crate) path: Option<String>,
}

/// What [`Registry::merge_bounded`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Merged {
    /// The entries that changed.
    pub(crate) changes: Vec<Change>,
    /// Entries left out because the delta had more than the bound.
    pub(crate) dropped: usize,
}

/// Keeps the changes of `bucket` older than its `keep + 1`-th oldest (fewer when versions
/// tie, which only a faulty peer sends) and lowers its version to just below the first
/// change left out. Returns the new version, `None` when nothing is kept.
fn cut_short(bucket: &mut Bucket, keep: usize) -> Option<u64> {
    let mut versions: Vec<u64> = bucket.entries.values().map(|e| e.version).collect();
    versions.sort_unstable();
    let first_left_out = *versions.get(keep)?;
    let version = first_left_out.checked_sub(1)?;
    bucket.entries.retain(|_, e| e.version <= version);
    if bucket.entries.is_empty() {
        return None;
    }
    bucket.version = bucket.version.min(version);
    Some(bucket.version)
}

/// The buckets this node knows, its own included.
#[derive(Debug)]
pub(crate) struct Registry {
    self_node: UniqueAddress,
    buckets: BTreeMap<UniqueAddress, Bucket>,
    /// When each tombstone was first seen here (for pruning).
    tombstones: BTreeMap<(UniqueAddress, Key), Instant>,
}

impl Registry {
    pub(crate) fn new(self_node: UniqueAddress) -> Self {
        let mut buckets = BTreeMap::new();
        buckets.insert(self_node.clone(), Bucket::new(self_node.clone()));
        Registry {
            self_node,
            buckets,
            tombstones: BTreeMap::new(),
        }
    }

    /// Sets (or, with `None`, removes) one of this node's entries; bumps the version.
    pub(crate) fn put_local(&mut self, key: Key, path: Option<String>, now: Instant) {
        let node = self.self_node.clone();
        let bucket = self
            .buckets
            .entry(node.clone())
            .or_insert_with(|| Bucket::new(node.clone()));
        bucket.version += 1;
        let version = bucket.version;
        if path.is_none() {
            self.tombstones.insert((node, key.clone()), now);
        } else {
            self.tombstones.remove(&(node, key.clone()));
        }
        bucket.entries.insert(key, Entry { version, path });
    }

    /// The version of every known bucket.
    pub(crate) fn versions(&self) -> BTreeMap<UniqueAddress, u64> {
        self.buckets
            .iter()
            .map(|(owner, b)| (owner.clone(), b.version))
            .collect()
    }

    /// Whether `theirs` has a newer version than ours of any bucket of `is_member`'s nodes.
    pub(crate) fn other_has_newer(
        &self,
        theirs: &BTreeMap<UniqueAddress, u64>,
        is_member: impl Fn(&UniqueAddress) -> bool,
    ) -> bool {
        theirs.iter().any(|(owner, &v)| {
            owner != &self.self_node
                && is_member(owner)
                && v > self.buckets.get(owner).map_or(0, |b| b.version)
        })
    }

    /// The entries a peer with versions `theirs` lacks, at most `max_entries` of them. A
    /// bucket cut short carries the version of its last included entry, so the peer asks for
    /// the rest in a later round.
    pub(crate) fn delta_for(
        &self,
        theirs: &BTreeMap<UniqueAddress, u64>,
        max_entries: usize,
    ) -> Vec<Bucket> {
        let mut left = max_entries;
        let mut delta = Vec::new();
        for (owner, bucket) in &self.buckets {
            if left == 0 {
                break;
            }
            let known = theirs.get(owner).copied().unwrap_or(0);
            if bucket.version <= known {
                continue;
            }
            let mut newer: Vec<(&Key, &Entry)> = bucket
                .entries
                .iter()
                .filter(|(_, e)| e.version > known)
                .collect();
            newer.sort_by_key(|(_, e)| e.version);
            let version = if newer.len() > left {
                newer.truncate(left);
                newer.last().map_or(known, |(_, e)| e.version)
            } else {
                bucket.version
            };
            left -= newer.len();
            delta.push(Bucket {
                owner: owner.clone(),
                version,
                entries: newer
                    .into_iter()
                    .map(|(k, e)| (k.clone(), e.clone()))
                    .collect(),
            });
        }
        delta
    }

    /// Applies a peer's delta without a bound on its size (tests).
    #[cfg(test)]
    pub(crate) fn merge(
        &mut self,
        delta: Vec<Bucket>,
        is_member: impl Fn(&UniqueAddress) -> bool,
        now: Instant,
    ) -> Vec<Change> {
        self.merge_bounded(delta, usize::MAX, is_member, now)
            .changes
    }

    /// Applies a peer's delta, at most `max_entries` of its entries: buckets of this node
    /// and of nodes `is_member` refuses are ignored (a removed node must not come back
    /// through a late delta). A bucket cut short keeps its oldest changes and takes the
    /// version just below the first change left out, so the rest is asked for in a later
    /// round (nothing is lost when the peer is honest, it only takes more rounds).
    pub(crate) fn merge_bounded(
        &mut self,
        delta: Vec<Bucket>,
        max_entries: usize,
        is_member: impl Fn(&UniqueAddress) -> bool,
        now: Instant,
    ) -> Merged {
        let mut merged = Merged::default();
        let mut left = max_entries;
        for mut incoming in delta {
            if incoming.owner == self.self_node || !is_member(&incoming.owner) {
                continue;
            }
            let known = self.buckets.get(&incoming.owner).map_or(0, |b| b.version);
            if incoming.version <= known {
                continue;
            }
            if incoming.entries.len() > left {
                let before = incoming.entries.len();
                let Some(cut) = cut_short(&mut incoming, left) else {
                    merged.dropped += before;
                    continue;
                };
                merged.dropped += before - incoming.entries.len();
                if cut <= known {
                    continue;
                }
            }
            left -= incoming.entries.len();
            self.merge_bucket(incoming, now, &mut merged.changes);
        }
        merged
    }

    fn merge_bucket(&mut self, incoming: Bucket, now: Instant, changes: &mut Vec<Change>) {
        let owner = incoming.owner.clone();
        let bucket = self
            .buckets
            .entry(owner.clone())
            .or_insert_with(|| Bucket::new(owner.clone()));
        for (key, entry) in incoming.entries {
            if entry.version > incoming.version {
                // an entry newer than its own bucket is malformed: ignore it
                continue;
            }
            let current = bucket.entries.get(&key);
            if current.is_some_and(|c| c.version >= entry.version) {
                continue;
            }
            let was = current.and_then(|c| c.path.clone());
            if entry.path.is_none() {
                self.tombstones
                    .entry((owner.clone(), key.clone()))
                    .or_insert(now);
            } else {
                self.tombstones.remove(&(owner.clone(), key.clone()));
            }
            if was != entry.path {
                changes.push(Change {
                    owner: owner.clone(),
                    key: key.clone(),
                    path: entry.path.clone(),
                });
            }
            bucket.entries.insert(key, entry);
        }
        bucket.version = incoming.version;
    }

    /// Drops the bucket of a node that left the cluster; returns its live entries as
    /// removals.
    pub(crate) fn remove_node(&mut self, node: &UniqueAddress) -> Vec<Change> {
        if node == &self.self_node {
            return Vec::new();
        }
        self.tombstones.retain(|(owner, _), _| owner != node);
        let Some(bucket) = self.buckets.remove(node) else {
            return Vec::new();
        };
        bucket
            .entries
            .into_iter()
            .filter(|(_, e)| e.path.is_some())
            .map(|(key, _)| Change {
                owner: node.clone(),
                key,
                path: None,
            })
            .collect()
    }

    /// Forgets tombstones older than `ttl`.
    pub(crate) fn prune(&mut self, now: Instant, ttl: Duration) {
        let expired: Vec<(UniqueAddress, Key)> = self
            .tombstones
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= ttl)
            .map(|(k, _)| k.clone())
            .collect();
        for (owner, key) in expired {
            self.tombstones.remove(&(owner.clone(), key.clone()));
            if let Some(bucket) = self.buckets.get_mut(&owner)
                && bucket.entries.get(&key).is_some_and(|e| e.path.is_none())
            {
                bucket.entries.remove(&key);
            }
        }
    }

    /// The buckets (own included), for inspection.
    #[cfg(test)]
    pub(crate) fn buckets(&self) -> &BTreeMap<UniqueAddress, Bucket> {
        &self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Address;

    fn node(name: &str) -> UniqueAddress {
        UniqueAddress::new(Address::logical("t", name).unwrap(), 1)
    }

    fn key(topic: &str) -> Key {
        Key {
            kind: KeyKind::Topic,
            name: topic.into(),
            group: None,
            manifest: "m".into(),
        }
    }

    fn sync(from: &Registry, to: &mut Registry, max: usize) -> Vec<Change> {
        let delta = from.delta_for(&to.versions(), max);
        to.merge(delta, |_| true, Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn deltas_carry_only_what_the_peer_lacks() {
        let now = Instant::now();
        let (a, b) = (node("a"), node("b"));
        let mut ra = Registry::new(a.clone());
        let mut rb = Registry::new(b.clone());
        ra.put_local(key("x"), Some("p1".into()), now);
        ra.put_local(key("y"), Some("p2".into()), now);
        let changes = sync(&ra, &mut rb, 100);
        assert_eq!(changes.len(), 2);
        // nothing new: an empty delta
        assert!(ra.delta_for(&rb.versions(), 100).is_empty());
        ra.put_local(key("x"), None, now);
        let delta = ra.delta_for(&rb.versions(), 100);
        assert_eq!(delta.len(), 1);
        assert_eq!(
            delta[0].entries.len(),
            1,
            "only the changed entry: {delta:?}"
        );
        let changes = rb.merge(delta, |_| true, now);
        assert_eq!(
            changes,
            vec![Change {
                owner: a.clone(),
                key: key("x"),
                path: None
            }]
        );
        assert_eq!(
            rb.versions(),
            ra.versions().into_iter().chain([(b, 0)]).collect()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_bounded_delta_catches_up_over_several_rounds() {
        let now = Instant::now();
        let mut ra = Registry::new(node("a"));
        let mut rb = Registry::new(node("b"));
        for i in 0..10 {
            ra.put_local(key(&format!("t{i}")), Some(format!("p{i}")), now);
        }
        let mut rounds = 0;
        while !ra.delta_for(&rb.versions(), 3).is_empty() {
            let delta = ra.delta_for(&rb.versions(), 3);
            assert!(delta.iter().map(|b| b.entries.len()).sum::<usize>() <= 3);
            rb.merge(delta, |_| true, now);
            rounds += 1;
        }
        assert_eq!(rounds, 4);
        assert_eq!(rb.buckets()[&node("a")], ra.buckets()[&node("a")]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_oversized_delta_is_cut_and_the_rest_comes_in_later_rounds() {
        let now = Instant::now();
        let (a, b, c) = (node("a"), node("b"), node("c"));
        let mut ra = Registry::new(a.clone());
        let mut rc = Registry::new(c.clone());
        for i in 0..6 {
            ra.put_local(key(&format!("a{i}")), Some(format!("pa{i}")), now);
        }
        for i in 0..4 {
            rc.put_local(key(&format!("c{i}")), Some(format!("pc{i}")), now);
        }
        // b relays both buckets in one delta, with no bound on the sending side
        let mut rb = Registry::new(b.clone());
        sync(&ra, &mut rb, 100);
        sync(&rc, &mut rb, 100);
        let mut rd = Registry::new(node("d"));
        let delta = rb.delta_for(&rd.versions(), usize::MAX);
        assert_eq!(delta.iter().map(|b| b.entries.len()).sum::<usize>(), 10);
        let merged = rd.merge_bounded(delta, 4, |_| true, now);
        assert_eq!(merged.changes.len(), 4);
        assert_eq!(merged.dropped, 6);
        // a's four oldest changes are kept, a's bucket is below its fifth change, and c's
        // bucket (nothing left of the bound) is untouched
        assert_eq!(rd.versions()[&a], 4);
        assert!(!rd.versions().contains_key(&c));
        let keys: Vec<&str> = merged.changes.iter().map(|c| c.key.name.as_str()).collect();
        assert_eq!(keys, ["a0", "a1", "a2", "a3"]);
        // the next rounds bring the rest
        let mut rounds = 1;
        loop {
            let delta = rb.delta_for(&rd.versions(), usize::MAX);
            if delta.is_empty() {
                break;
            }
            let merged = rd.merge_bounded(delta, 4, |_| true, now);
            assert!(merged.changes.len() <= 4);
            rounds += 1;
        }
        assert_eq!(rounds, 3);
        assert_eq!(live(&rd), live(&rb));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_never_keeps_part_of_a_version_tie() {
        let now = Instant::now();
        let a = node("a");
        let entry = |version| Entry {
            version,
            path: Some(format!("p{version}")),
        };
        // a faulty bucket: two entries at version 2
        let forged = Bucket {
            owner: a.clone(),
            version: 3,
            entries: [
                (key("x"), entry(1)),
                (key("y"), entry(2)),
                (key("z"), entry(2)),
            ]
            .into(),
        };
        let mut rb = Registry::new(node("b"));
        let merged = rb.merge_bounded(vec![forged.clone()], 2, |_| true, now);
        assert_eq!(merged.changes.len(), 1, "{merged:?}");
        assert_eq!(merged.dropped, 2);
        assert_eq!(rb.versions()[&a], 1);
        // nothing fits: nothing changes, not even the version
        let mut rc = Registry::new(node("c"));
        let merged = rc.merge_bounded(vec![forged], 0, |_| true, now);
        assert_eq!(merged.changes, vec![]);
        assert_eq!(merged.dropped, 3);
        assert!(!rc.versions().contains_key(&a));
    }

    #[tokio::test(start_paused = true)]
    async fn non_members_own_bucket_and_stale_entries_are_ignored() {
        let now = Instant::now();
        let (a, b) = (node("a"), node("b"));
        let mut ra = Registry::new(a.clone());
        let mut rb = Registry::new(b.clone());
        ra.put_local(key("x"), Some("p".into()), now);
        // b refuses a's bucket while a is not a member
        let delta = ra.delta_for(&rb.versions(), 10);
        assert!(rb.merge(delta.clone(), |n| n != &a, now).is_empty());
        // nobody can overwrite a node's own bucket
        let forged = vec![Bucket {
            owner: b.clone(),
            version: 99,
            entries: BTreeMap::new(),
        }];
        assert!(rb.merge(forged, |_| true, now).is_empty());
        assert_eq!(rb.versions()[&b], 0);
        // an entry claiming a version above its bucket's is ignored
        let bad = vec![Bucket {
            owner: a.clone(),
            version: 1,
            entries: [(
                key("z"),
                Entry {
                    version: 5,
                    path: Some("q".into()),
                },
            )]
            .into(),
        }];
        assert!(rb.merge(bad, |_| true, now).is_empty());
        // and a removed node's bucket disappears with its entries reported
        let mut rc = Registry::new(node("c"));
        sync(&ra, &mut rc, 10);
        assert_eq!(
            rc.remove_node(&a),
            vec![Change {
                owner: a.clone(),
                key: key("x"),
                path: None
            }]
        );
        assert!(!rc.versions().contains_key(&a));
    }

    #[tokio::test(start_paused = true)]
    async fn tombstones_are_pruned_after_the_ttl() {
        let mut ra = Registry::new(node("a"));
        let start = Instant::now();
        ra.put_local(key("x"), Some("p".into()), start);
        ra.put_local(key("x"), None, start);
        ra.prune(start + Duration::from_secs(5), Duration::from_secs(10));
        assert_eq!(ra.buckets()[&node("a")].entries.len(), 1);
        ra.prune(start + Duration::from_secs(10), Duration::from_secs(10));
        assert!(ra.buckets()[&node("a")].entries.is_empty());
        // the version stays: peers still see nothing new
        assert_eq!(ra.versions()[&node("a")], 2);
    }

    #[tokio::test(start_paused = true)]
    async fn other_has_newer_compares_member_buckets_only() {
        let now = Instant::now();
        let mut ra = Registry::new(node("a"));
        let rb = Registry::new(node("b"));
        ra.put_local(key("x"), Some("p".into()), now);
        assert!(rb.other_has_newer(&ra.versions(), |_| true));
        assert!(!rb.other_has_newer(&ra.versions(), |n| n != &node("a")));
        assert!(!ra.other_has_newer(&rb.versions(), |_| true));
    }

    /// One step of a random run: a node changes an entry, or one node gossips to another.
    #[derive(Debug, Clone)]
    enum Step {
        Put { node: usize, topic: u8, live: bool },
        Gossip { from: usize, to: usize },
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0..3usize, 0..4u8, any::<bool>()).prop_map(|(node, topic, live)| Step::Put {
                node,
                topic,
                live
            }),
            (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Gossip { from, to }),
        ]
    }

    /// The live entries of every bucket, as a comparable value.
    fn live(r: &Registry) -> Vec<(UniqueAddress, Key, String)> {
        r.buckets
            .iter()
            .flat_map(|(owner, b)| {
                b.entries
                    .iter()
                    .filter_map(move |(k, e)| e.path.clone().map(|p| (owner.clone(), k.clone(), p)))
            })
            .collect()
    }

    proptest::proptest! {
        /// Whatever the order of changes and exchanges (deltas bounded to 2 entries, of
        /// which the receiver accepts 1), a few full rounds of status/delta exchanges leave
        /// every node with the same view, and that view is each owner's own bucket.
        #[test]
        fn gossip_converges(steps in proptest::collection::vec(step(), 0..60)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            rt.block_on(async {
                let nodes = [node("a"), node("b"), node("c")];
                let mut regs: Vec<Registry> = nodes.iter().cloned().map(Registry::new).collect();
                let mut counter = 0u32;
                let exchange = |regs: &mut Vec<Registry>, from: usize, to: usize| {
                    if from == to {
                        return;
                    }
                    // `from` sends its status; `to` answers with what `from` lacks
                    // the sender bounds a delta to 2 entries, the receiver accepts 1 of them
                    let delta = regs[to].delta_for(&regs[from].versions(), 2);
                    regs[from].merge_bounded(delta, 1, |_| true, Instant::now());
                };
                for s in steps {
                    match s {
                        Step::Put { node: n, topic, live } => {
                            counter += 1;
                            let path = live.then(|| format!("p{counter}"));
                            regs[n].put_local(key(&format!("t{topic}")), path, Instant::now());
                        }
                        Step::Gossip { from, to } => exchange(&mut regs, from, to),
                    }
                }
                for _ in 0..40 {
                    for from in 0..3 {
                        for to in 0..3 {
                            exchange(&mut regs, from, to);
                        }
                    }
                }
                let views: Vec<_> = regs.iter().map(live).collect();
                assert_eq!(&views[0], &views[1]);
                assert_eq!(&views[1], &views[2]);
                for (i, owner) in nodes.iter().enumerate() {
                    for r in &regs {
                        assert_eq!(r.buckets.get(owner).map_or(0, |b| b.version),
                            regs[i].buckets[owner].version);
                    }
                }
            });
        }
    }
}
