//! Split brain resolver decisions over tables of partitions, evaluated from both sides, and
//! the stable-after / auto-down timers.

use std::collections::BTreeSet;
use std::time::Duration;

use actor_cluster::Address;
use actor_cluster::downing::{
    AutoDownTracker, DEFAULT_ACQUIRE_LEASE_DELAY_FOR_MINORITY, DEFAULT_STABLE_AFTER, Decision,
    DownAllWhenUnstable, DowningError, DowningSettings, DowningStrategy, DowningView,
    StabilityAction, StabilityTracker, decide, lease_outcome, nodes_to_down,
};
use actor_cluster::membership::{Member, MemberStatus, UniqueAddress};
use tokio::time::Instant;

fn member(i: usize, status: MemberStatus, up_number: u64, roles: &[&str]) -> Member {
    Member {
        address: Address::logical("sys", format!("n{i}")).unwrap(),
        uid: i as u64 + 100,
        status,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        up_number,
    }
}

/// `n` Up members n0..n{n-1}, n0 the oldest.
fn up_members(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| member(i, MemberStatus::Up, i as u64 + 1, &[]))
        .collect()
}

fn ids(members: &[Member], indices: &[usize]) -> BTreeSet<UniqueAddress> {
    indices
        .iter()
        .map(|i| members[*i].unique_address())
        .collect()
}

/// The decision taken by a node of `side` (it cannot reach the rest).
fn side_decision(
    strategy: &DowningStrategy,
    members: &[Member],
    side: &BTreeSet<UniqueAddress>,
) -> (Decision, BTreeSet<UniqueAddress>) {
    let me = side.iter().next().unwrap().clone();
    let unreachable: BTreeSet<UniqueAddress> = members
        .iter()
        .map(Member::unique_address)
        .filter(|n| !side.contains(n))
        .collect();
    let view = DowningView::new(members.to_vec(), unreachable, me);
    let decision = match decide(strategy, &view) {
        // Both sides try the lease; the majority side (no delay) wins it in these tables.
        Decision::AcquireLease { delay } => lease_outcome(delay.is_zero()),
        other => other,
    };
    (decision, nodes_to_down(&decision, &view))
}

/// The members still up after both sides of a two-way split applied their decisions.
fn survivors(
    strategy: &DowningStrategy,
    members: &[Member],
    a: &[usize],
) -> BTreeSet<UniqueAddress> {
    let all: BTreeSet<UniqueAddress> = members.iter().map(Member::unique_address).collect();
    let side_a = ids(members, a);
    let side_b: BTreeSet<UniqueAddress> = all.difference(&side_a).cloned().collect();
    let mut downed = BTreeSet::new();
    // A side that downs itself is gone; a side that downs only the other side survives
    // (the other side's members are gone either way: they shut down or were downed).
    for mine in [&side_a, &side_b] {
        if mine.is_empty() {
            continue;
        }
        let (_, to_down) = side_decision(strategy, members, mine);
        downed.extend(to_down.into_iter().filter(|n| mine.contains(n)));
    }
    all.difference(&downed).cloned().collect()
}

fn keep_majority() -> DowningStrategy {
    DowningStrategy::KeepMajority { role: None }
}

#[test]
fn keep_majority_table() {
    let m = up_members(5);
    // 3-2: the three survive, whichever side holds n0.
    assert_eq!(
        survivors(&keep_majority(), &m, &[0, 1, 2]),
        ids(&m, &[0, 1, 2])
    );
    assert_eq!(
        survivors(&keep_majority(), &m, &[2, 3, 4]),
        ids(&m, &[2, 3, 4])
    );
    let m = up_members(4);
    // 2-2: exactly the side with the lowest address (n0) survives.
    assert_eq!(survivors(&keep_majority(), &m, &[0, 1]), ids(&m, &[0, 1]));
    assert_eq!(survivors(&keep_majority(), &m, &[0, 3]), ids(&m, &[0, 3]));
    assert_eq!(survivors(&keep_majority(), &m, &[1, 2]), ids(&m, &[0, 3]));
    // 1-1.
    let m = up_members(2);
    assert_eq!(survivors(&keep_majority(), &m, &[1]), ids(&m, &[0]));
}

#[test]
fn keep_majority_counts_only_the_role_and_only_full_members() {
    // Role r: side A holds one r member (plus two others), side B two r members.
    let m = vec![
        member(0, MemberStatus::Up, 1, &["r"]),
        member(1, MemberStatus::Up, 2, &[]),
        member(2, MemberStatus::Up, 3, &[]),
        member(3, MemberStatus::Up, 4, &["r"]),
        member(4, MemberStatus::Up, 5, &["r"]),
    ];
    let role = DowningStrategy::KeepMajority {
        role: Some("r".into()),
    };
    assert_eq!(survivors(&role, &m, &[0, 1, 2]), ids(&m, &[3, 4]));
    assert_eq!(
        survivors(&keep_majority(), &m, &[0, 1, 2]),
        ids(&m, &[0, 1, 2])
    );
    // Joining members do not count: 2 Up against 1 Up + 2 Joining.
    let m = vec![
        member(0, MemberStatus::Up, 1, &[]),
        member(1, MemberStatus::Up, 2, &[]),
        member(2, MemberStatus::Up, 3, &[]),
        member(3, MemberStatus::Joining, 0, &[]),
        member(4, MemberStatus::Joining, 0, &[]),
    ];
    assert_eq!(survivors(&keep_majority(), &m, &[0, 1]), ids(&m, &[0, 1]));
}

#[test]
fn keep_oldest_table() {
    let keep_oldest = |down_if_alone| DowningStrategy::KeepOldest {
        down_if_alone,
        role: None,
    };
    let m = up_members(5);
    // The oldest (n0) is on the small side: the small side survives.
    assert_eq!(
        survivors(&keep_oldest(false), &m, &[0, 4]),
        ids(&m, &[0, 4])
    );
    // Oldest alone, without down_if_alone: only the oldest survives.
    assert_eq!(survivors(&keep_oldest(false), &m, &[0]), ids(&m, &[0]));
    // With down_if_alone: the oldest downs itself and the rest survive.
    assert_eq!(
        survivors(&keep_oldest(true), &m, &[0]),
        ids(&m, &[1, 2, 3, 4])
    );
    // down_if_alone does not matter when the oldest has company.
    assert_eq!(survivors(&keep_oldest(true), &m, &[0, 1]), ids(&m, &[0, 1]));
    // Oldest means lowest up-number, not lowest address.
    let m = vec![
        member(0, MemberStatus::Up, 3, &[]),
        member(1, MemberStatus::Up, 2, &[]),
        member(2, MemberStatus::Up, 1, &[]),
    ];
    assert_eq!(survivors(&keep_oldest(false), &m, &[0, 1]), ids(&m, &[2]));
    // Two nodes, down_if_alone: the younger keeps running.
    let m = up_members(2);
    assert_eq!(survivors(&keep_oldest(true), &m, &[0]), ids(&m, &[1]));
}

#[test]
fn static_quorum_table() {
    let quorum = |size| DowningStrategy::StaticQuorum {
        quorum_size: size,
        role: None,
    };
    let m = up_members(5);
    // Quorum 3 in a 2-3 split: the three survive, the two down themselves.
    assert_eq!(survivors(&quorum(3), &m, &[0, 1]), ids(&m, &[2, 3, 4]));
    let (decision, to_down) = side_decision(&quorum(3), &m, &ids(&m, &[0, 1]));
    assert_eq!(decision, Decision::DownReachable);
    assert_eq!(
        to_down,
        ids(&m, &[0, 1]),
        "the small side downs itself, self included"
    );
    // Quorum 3 with 6 members is a misconfiguration: down everything.
    let m6 = up_members(6);
    let (decision, to_down) = side_decision(&quorum(3), &m6, &ids(&m6, &[0, 1, 2]));
    assert_eq!(decision, Decision::DownAll);
    assert_eq!(to_down.len(), 6);
    // Three-way split 2 | 2 | 1 of five with quorum 3: no side survives (safe).
    let (d1, _) = side_decision(&quorum(3), &m, &ids(&m, &[0, 1]));
    let (d2, _) = side_decision(&quorum(3), &m, &ids(&m, &[2, 3]));
    assert_eq!((d1, d2), (Decision::DownReachable, Decision::DownReachable));
}

#[test]
fn lease_majority_delays_the_minority_and_follows_the_lease() {
    let strategy = DowningStrategy::LeaseMajority {
        role: None,
        acquire_lease_delay_for_minority: DEFAULT_ACQUIRE_LEASE_DELAY_FOR_MINORITY,
    };
    let m = up_members(5);
    let view = |side: &[usize]| {
        let mine = ids(&m, side);
        let unreachable: BTreeSet<_> = m
            .iter()
            .map(Member::unique_address)
            .filter(|n| !mine.contains(n))
            .collect();
        DowningView::new(m.clone(), unreachable, mine.iter().next().unwrap().clone())
    };
    assert_eq!(
        decide(&strategy, &view(&[0, 1, 2])),
        Decision::AcquireLease {
            delay: Duration::ZERO
        }
    );
    assert_eq!(
        decide(&strategy, &view(&[3, 4])),
        Decision::AcquireLease {
            delay: DEFAULT_ACQUIRE_LEASE_DELAY_FOR_MINORITY
        }
    );
    assert_eq!(
        DEFAULT_ACQUIRE_LEASE_DELAY_FOR_MINORITY,
        Duration::from_secs(2)
    );
    // Whoever gets the lease survives, even the minority.
    let minority = view(&[3, 4]);
    assert_eq!(
        nodes_to_down(&lease_outcome(true), &minority),
        ids(&m, &[0, 1, 2])
    );
    assert_eq!(
        nodes_to_down(&lease_outcome(false), &minority),
        ids(&m, &[3, 4])
    );
    assert!(
        nodes_to_down(
            &Decision::AcquireLease {
                delay: Duration::ZERO
            },
            &minority
        )
        .is_empty()
    );
}

/// Every two-way split of every cluster of 1 to 7 members: keep-majority and keep-oldest
/// leave exactly one side, static-quorum at most one.
#[test]
fn every_split_leaves_exactly_one_side() {
    for n in 1..=7usize {
        let m = up_members(n);
        for mask in 1u32..(1 << n) {
            let a: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
            let all: BTreeSet<_> = m.iter().map(Member::unique_address).collect();
            let side_a = ids(&m, &a);
            let side_b: BTreeSet<_> = all.difference(&side_a).cloned().collect();
            for strategy in [
                keep_majority(),
                DowningStrategy::KeepOldest {
                    down_if_alone: false,
                    role: None,
                },
                DowningStrategy::KeepOldest {
                    down_if_alone: true,
                    role: None,
                },
            ] {
                let alive = survivors(&strategy, &m, &a);
                assert!(
                    alive == side_a || alive == side_b,
                    "n={n} split {a:?} {}: survivors {alive:?}",
                    strategy.name()
                );
                if strategy == keep_majority() && side_a.len() != side_b.len() {
                    let bigger = if side_a.len() > side_b.len() {
                        &side_a
                    } else {
                        &side_b
                    };
                    assert_eq!(&alive, bigger, "n={n} split {a:?}");
                }
            }
            let quorum = DowningStrategy::StaticQuorum {
                quorum_size: n / 2 + 1,
                role: None,
            };
            let alive = survivors(&quorum, &m, &a);
            assert!(alive.is_empty() || alive == side_a || alive == side_b);
            assert!(
                alive.is_empty() || alive.len() > n / 2,
                "n={n} split {a:?}: survivors {alive:?}"
            );
        }
    }
}

#[test]
fn no_unreachable_member_downs_nobody() {
    let m = up_members(3);
    let view = DowningView::new(m.clone(), [], m[0].unique_address());
    for strategy in [
        keep_majority(),
        DowningStrategy::StaticQuorum {
            quorum_size: 5,
            role: None,
        },
        DowningStrategy::AutoDown {
            after: Duration::from_secs(1),
        },
    ] {
        let decision = decide(&strategy, &view);
        assert_eq!(decision, Decision::DownUnreachable);
        assert!(nodes_to_down(&decision, &view).is_empty());
    }
    // Down members and self are never counted as unreachable.
    let mut m = up_members(3);
    m[2].status = MemberStatus::Down;
    let view = DowningView::new(m.clone(), ids(&m, &[0, 2]), m[0].unique_address());
    assert!(view.unreachable().is_empty());
    assert_eq!(view.members().len(), 2);
}

#[test]
fn settings_defaults_and_validation() {
    let s = DowningSettings::default();
    assert_eq!(s.strategy, keep_majority());
    assert_eq!(s.stable_after, DEFAULT_STABLE_AFTER);
    assert_eq!(DEFAULT_STABLE_AFTER, Duration::from_secs(7));
    assert_eq!(s.down_all_limit(), Some(Duration::from_millis(5250)));
    let short = s.clone().with_stable_after(Duration::from_secs(2));
    assert_eq!(short.down_all_limit(), Some(Duration::from_secs(4)));
    assert_eq!(
        s.clone()
            .with_down_all_when_unstable(DownAllWhenUnstable::Off)
            .down_all_limit(),
        None
    );
    let cases = [
        (
            s.clone().with_stable_after(Duration::ZERO),
            DowningError::ZeroStableAfter,
        ),
        (
            s.clone().with_strategy(DowningStrategy::StaticQuorum {
                quorum_size: 0,
                role: None,
            }),
            DowningError::ZeroQuorumSize,
        ),
        (
            s.clone().with_strategy(DowningStrategy::KeepMajority {
                role: Some(String::new()),
            }),
            DowningError::EmptyRole {
                strategy: "keep-majority",
            },
        ),
        (
            s.clone().with_strategy(DowningStrategy::AutoDown {
                after: Duration::ZERO,
            }),
            DowningError::ZeroAutoDownAfter,
        ),
        (
            s.clone()
                .with_down_all_when_unstable(DownAllWhenUnstable::After(Duration::ZERO)),
            DowningError::ZeroDownAllWhenUnstable,
        ),
    ];
    for (settings, error) in cases {
        assert_eq!(settings.build(), Err(error));
    }
    assert!(s.build().is_ok());
}

fn node(i: usize) -> UniqueAddress {
    member(i, MemberStatus::Up, 1, &[]).unique_address()
}

#[test]
fn stability_window_restarts_on_every_change() {
    let settings = DowningSettings::default();
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let mut tracker = StabilityTracker::new(&settings, t0);
    assert_eq!(tracker.poll(s(100)), StabilityAction::Wait, "all reachable");
    assert_eq!(tracker.next_deadline(), None);
    tracker.observe(s(0), &BTreeSet::from([node(1)]));
    assert_eq!(tracker.next_deadline(), Some(s(7)));
    assert_eq!(tracker.poll(s(6)), StabilityAction::Wait);
    tracker.observe(s(5), &BTreeSet::from([node(1), node(2)]));
    assert_eq!(
        tracker.poll(s(7)),
        StabilityAction::Wait,
        "the change restarted the window"
    );
    assert_eq!(tracker.poll(s(12)), StabilityAction::Decide);
    // Observing the same set again is not a change.
    tracker.observe(s(11), &BTreeSet::from([node(1), node(2)]));
    assert_eq!(tracker.poll(s(12)), StabilityAction::Decide);
    // Back to all reachable: nothing to do, instability over.
    tracker.observe(s(13), &BTreeSet::new());
    assert_eq!(tracker.poll(s(30)), StabilityAction::Wait);
}

#[test]
fn flapping_longer_than_the_limit_downs_all() {
    let settings = DowningSettings::default(); // 7 s + 5.25 s
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut tracker = StabilityTracker::new(&settings, t0);
    // The unreachable set changes every 3 s: never stable for 7 s.
    let mut t = 0;
    while t < 12_000 {
        let set = if (t / 3000) % 2 == 0 {
            BTreeSet::from([node(1)])
        } else {
            BTreeSet::from([node(1), node(2)])
        };
        tracker.observe(ms(t), &set);
        assert_eq!(tracker.poll(ms(t)), StabilityAction::Wait, "t={t}");
        t += 3000;
    }
    assert_eq!(tracker.next_deadline(), Some(ms(12_250)));
    assert_eq!(tracker.poll(ms(12_249)), StabilityAction::Wait);
    assert_eq!(tracker.poll(ms(12_250)), StabilityAction::DownAll);
    // After acting, a new episode starts.
    tracker.decided(ms(12_250));
    assert_eq!(tracker.poll(ms(12_251)), StabilityAction::Wait);
    // Without the rule it just keeps waiting for stability.
    let off = settings.with_down_all_when_unstable(DownAllWhenUnstable::Off);
    let mut tracker = StabilityTracker::new(&off, t0);
    tracker.observe(ms(0), &BTreeSet::from([node(1)]));
    tracker.observe(ms(6000), &BTreeSet::from([node(2)]));
    assert_eq!(tracker.poll(ms(12_500)), StabilityAction::Wait);
    assert_eq!(tracker.poll(ms(13_000)), StabilityAction::Decide);
}

#[test]
fn auto_down_times_each_member_separately() {
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let mut auto = AutoDownTracker::new(Duration::from_secs(5));
    assert_eq!(auto.next_deadline(), None);
    auto.observe(s(0), &BTreeSet::from([node(1)]));
    auto.observe(s(2), &BTreeSet::from([node(1), node(2)]));
    assert_eq!(auto.next_deadline(), Some(s(5)));
    assert_eq!(auto.due(s(5)), BTreeSet::from([node(1)]));
    assert_eq!(auto.due(s(7)), BTreeSet::from([node(1), node(2)]));
    // node 1 came back before its time: forgotten; unreachable again restarts its clock.
    auto.observe(s(3), &BTreeSet::from([node(2)]));
    auto.observe(s(4), &BTreeSet::from([node(1), node(2)]));
    assert_eq!(auto.due(s(8)), BTreeSet::from([node(2)]));
    assert_eq!(auto.due(s(9)), BTreeSet::from([node(1), node(2)]));
}
