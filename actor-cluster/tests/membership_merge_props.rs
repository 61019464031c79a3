//! Property tests: the gossip merge is a join (commutative, associative, idempotent), keeps
//! tombstoned incarnations out, and detects concurrent versions.

use std::collections::BTreeSet;

use actor_cluster::Address;
use actor_cluster::membership::{
    ClockOrdering, Gossip, Member, MemberStatus, Reachability, ReachabilityRecord,
    ReachabilityStatus, UniqueAddress, VectorClock,
};
use proptest::prelude::*;

fn node(i: usize) -> UniqueAddress {
    // Four addresses, two incarnations each: exercises same-address different-uid cases.
    let address = Address::logical("sys", format!("n{}", i % 4)).unwrap();
    UniqueAddress::new(address, (i / 4) as u64 + 1)
}

const NODES: usize = 8;

fn status() -> impl Strategy<Value = MemberStatus> {
    proptest::sample::select(MemberStatus::ALL.to_vec())
}

fn member() -> impl Strategy<Value = Member> {
    (
        0..NODES,
        status(),
        proptest::collection::btree_set("[xy]", 0..2),
        0u64..4,
    )
        .prop_map(|(i, status, roles, up_number)| {
            let n = node(i);
            Member {
                address: n.address,
                uid: n.uid,
                status,
                roles,
                up_number,
            }
        })
}

fn reachability() -> impl Strategy<Value = Reachability> {
    proptest::collection::vec((0..NODES, 0..NODES, any::<bool>(), 0u64..4), 0..6).prop_map(
        |records| {
            let mut r = Reachability::default();
            for (o, s, unreachable, version) in records {
                let status = if unreachable {
                    ReachabilityStatus::Unreachable
                } else {
                    ReachabilityStatus::Reachable
                };
                r.insert(node(o), node(s), ReachabilityRecord { status, version });
            }
            r
        },
    )
}

fn clock() -> impl Strategy<Value = VectorClock> {
    proptest::collection::vec((0..NODES, 0u64..3), 0..4)
        .prop_map(|entries| entries.into_iter().map(|(i, v)| (node(i), v)).collect())
}

fn gossip() -> impl Strategy<Value = Gossip> {
    (
        proptest::collection::vec(member(), 0..6),
        reachability(),
        proptest::collection::btree_set(0..NODES, 0..4),
        clock(),
        proptest::collection::btree_set(0..NODES, 0..2),
    )
        .prop_map(|(members, reachability, seen, version, tombstones)| {
            Gossip::from_parts(
                members,
                reachability,
                seen.into_iter().map(node),
                version,
                tombstones.into_iter().map(node),
            )
        })
}

/// Gossips that share history: random operations applied to a common base, so versions
/// are often equal, ordered or concurrent (not just random clocks).
fn related_gossips() -> impl Strategy<Value = (Gossip, Gossip, Gossip)> {
    let op = (0..5usize, 0..NODES, 0..NODES, status());
    (gossip(), proptest::collection::vec((0..3usize, op), 0..12)).prop_map(|(base, ops)| {
        let mut g = [base.clone(), base.clone(), base];
        for (which, (kind, a, b, st)) in ops {
            let by = node(a);
            let target = node(b);
            let current = g[which].clone();
            g[which] = match kind {
                0 => {
                    let m = Member::joining(target.address.clone(), target.uid, ["x"]);
                    current.join(m, &by).unwrap_or(current)
                }
                1 => current.set_status(&target, st, &by).unwrap_or(current),
                2 => current.mark_unreachable(&by, &target),
                3 => current.mark_reachable(&by, &target),
                _ => current.seen_by(&by),
            };
        }
        let [a, b, c] = g;
        (a, b, c)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merge_is_commutative(a in gossip(), b in gossip()) {
        prop_assert_eq!(a.merge(&b), b.merge(&a));
    }

    #[test]
    fn merge_is_associative(a in gossip(), b in gossip(), c in gossip()) {
        prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
    }

    #[test]
    fn merge_is_idempotent(a in gossip(), b in gossip()) {
        prop_assert_eq!(a.merge(&a), a.clone());
        let ab = a.merge(&b);
        prop_assert_eq!(ab.merge(&a), ab.clone());
        prop_assert_eq!(ab.merge(&b), ab.clone());
    }

    #[test]
    fn merge_laws_hold_for_related_histories((a, b, c) in related_gossips()) {
        prop_assert_eq!(a.merge(&b), b.merge(&a));
        prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
        prop_assert_eq!(a.merge(&a), a.clone());
    }

    #[test]
    fn tombstoned_incarnations_never_come_back(a in gossip(), b in gossip()) {
        let merged = a.merge(&b);
        let all: BTreeSet<_> = a.tombstones().union(b.tombstones()).cloned().collect();
        prop_assert_eq!(merged.tombstones(), &all);
        for t in &all {
            prop_assert!(merged.member(t).is_none());
            prop_assert!(!merged.seen().contains(t));
            prop_assert!(merged.reachability().records().all(|(o, s, _)| o != t && s != t));
        }
        // And a tombstoned uid cannot join again.
        for t in a.tombstones() {
            let again = Member::joining(t.address.clone(), t.uid, Vec::<String>::new());
            prop_assert!(a.join(again, t).is_err());
        }
    }

    #[test]
    fn merge_keeps_the_most_progressed_status(a in gossip(), b in gossip()) {
        let merged = a.merge(&b);
        for m in merged.members() {
            let key = m.unique_address();
            let want = [a.member(&key), b.member(&key)]
                .into_iter()
                .flatten()
                .map(|x| x.status)
                .max();
            prop_assert_eq!(Some(m.status), want);
        }
    }

    #[test]
    fn merge_detects_concurrent_versions((a, b, _) in related_gossips()) {
        let merged = a.merge(&b);
        prop_assert_eq!(merged.version(), &a.version().merged(b.version()));
        match a.version().compare(b.version()) {
            ClockOrdering::Concurrent => {
                prop_assert!(merged.seen().is_empty());
                prop_assert_eq!(merged.version().compare(a.version()), ClockOrdering::After);
                prop_assert_eq!(merged.version().compare(b.version()), ClockOrdering::After);
            }
            ClockOrdering::Same => {
                let union: BTreeSet<_> = a.seen().union(b.seen()).cloned().collect();
                let union: BTreeSet<_> =
                    union.difference(merged.tombstones()).cloned().collect();
                prop_assert_eq!(merged.seen(), &union);
            }
            ClockOrdering::After => prop_assert_eq!(merged.version(), a.version()),
            ClockOrdering::Before => prop_assert_eq!(merged.version(), b.version()),
        }
    }

    #[test]
    fn vector_clock_compare_is_antisymmetric(a in clock(), b in clock()) {
        let flip = |o| match o {
            ClockOrdering::Before => ClockOrdering::After,
            ClockOrdering::After => ClockOrdering::Before,
            other => other,
        };
        prop_assert_eq!(a.compare(&b), flip(b.compare(&a)));
        prop_assert_eq!(a.compare(&b) == ClockOrdering::Same, a == b);
        let m = a.merged(&b);
        prop_assert!(matches!(m.compare(&a), ClockOrdering::After | ClockOrdering::Same));
        prop_assert!(matches!(m.compare(&b), ClockOrdering::After | ClockOrdering::Same));
    }

    #[test]
    fn the_unreachable_set_agrees_with_the_per_node_query(a in gossip()) {
        let by_query: BTreeSet<UniqueAddress> = a
            .members()
            .map(Member::unique_address)
            .filter(|n| !a.is_reachable(n))
            .collect();
        prop_assert_eq!(a.unreachable_nodes(), by_query);
    }

    #[test]
    fn gossip_survives_the_wire_codec(a in gossip()) {
        let bytes = postcard::to_stdvec(&a).unwrap();
        prop_assert_eq!(postcard::from_bytes::<Gossip>(&bytes).unwrap(), a);
    }
}

/// A peer's encoding of a state that breaks the invariants (a member under the wrong key,
/// a tombstoned member still listed, a zero clock entry) is normalised on decoding.
#[test]
fn decoding_normalises_a_malformed_peer_state() {
    #[derive(serde::Serialize)]
    struct Raw {
        members: std::collections::BTreeMap<UniqueAddress, Member>,
        reachability: Reachability,
        seen: BTreeSet<UniqueAddress>,
        version: std::collections::BTreeMap<UniqueAddress, u64>,
        tombstones: BTreeSet<UniqueAddress>,
    }
    let (a, b) = (node(0), node(1));
    let member_b = Member::joining(b.address.clone(), b.uid, Vec::<String>::new());
    let raw = Raw {
        // b listed under a's key, and b tombstoned.
        members: [(a.clone(), member_b)].into(),
        reachability: Reachability::default(),
        seen: [a.clone(), b.clone()].into(),
        version: [(a.clone(), 0), (b.clone(), 2)].into(),
        tombstones: [b.clone()].into(),
    };
    let bytes = postcard::to_stdvec(&raw).unwrap();
    let decoded: Gossip = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(decoded.members().count(), 0);
    assert_eq!(decoded.seen(), &BTreeSet::from([a.clone()]));
    let clock: VectorClock = [(b.clone(), 2)].into_iter().collect();
    assert_eq!(decoded.version(), &clock);
    assert_eq!(decoded.merge(&decoded), decoded);
}
