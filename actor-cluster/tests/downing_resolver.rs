//! The split brain resolver state machine: stability window, strategies, lease phases,
//! down-all when unstable and auto-down, all on explicit instants.

use std::collections::BTreeSet;
use std::time::Duration;

use actor_cluster::Address;
use actor_cluster::downing::{
    DownAllWhenUnstable, DowningError, DowningSettings, DowningStrategy, DowningView,
    ResolverAction, ResolverEvent, ResolverPhase, SplitBrainResolver,
};
use actor_cluster::membership::{Member, MemberStatus, UniqueAddress};
use tokio::time::Instant;

fn members(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            address: Address::logical("sys", format!("n{i}")).unwrap(),
            uid: i as u64 + 1,
            status: MemberStatus::Up,
            roles: BTreeSet::new(),
            up_number: i as u64 + 1,
        })
        .collect()
}

fn ids(m: &[Member], idx: &[usize]) -> BTreeSet<UniqueAddress> {
    idx.iter().map(|i| m[*i].unique_address()).collect()
}

fn observe(m: &[Member], me: usize, unreachable: &[usize], is_leader: bool) -> ResolverEvent {
    ResolverEvent::Observe {
        view: DowningView::new(m.to_vec(), ids(m, unreachable), m[me].unique_address()),
        is_leader,
    }
}

fn ms(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

#[test]
fn keep_majority_downs_a_crashed_node_after_stable_after() {
    let m = members(3);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(DowningSettings::default(), t0).unwrap();
    assert!(r.on_event(t0, observe(&m, 0, &[2], true)).is_empty());
    assert_eq!(r.next_deadline(), Some(ms(t0, 7000)));
    assert!(r.on_event(ms(t0, 6999), ResolverEvent::Tick).is_empty());
    assert_eq!(
        r.on_event(ms(t0, 7000), ResolverEvent::Tick),
        vec![ResolverAction::Down(ids(&m, &[2]))]
    );
}

#[test]
fn only_the_leader_acts() {
    let m = members(3);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(DowningSettings::default(), t0).unwrap();
    r.on_event(t0, observe(&m, 1, &[2], false));
    assert!(r.on_event(ms(t0, 60_000), ResolverEvent::Tick).is_empty());
}

#[test]
fn the_minority_side_downs_itself() {
    let m = members(5);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(DowningSettings::default(), t0).unwrap();
    r.on_event(t0, observe(&m, 3, &[0, 1, 2], true));
    assert_eq!(
        r.on_event(ms(t0, 7000), ResolverEvent::Tick),
        vec![ResolverAction::Down(ids(&m, &[3, 4]))]
    );
}

#[test]
fn a_partition_that_heals_before_stable_after_downs_nobody() {
    let m = members(3);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(DowningSettings::default(), t0).unwrap();
    r.on_event(t0, observe(&m, 0, &[2], true));
    assert!(
        r.on_event(ms(t0, 5000), observe(&m, 0, &[], true))
            .is_empty()
    );
    assert_eq!(r.next_deadline(), None);
    for t in [7000, 20_000, 100_000] {
        assert!(r.on_event(ms(t0, t), ResolverEvent::Tick).is_empty());
    }
}

#[test]
fn a_flapping_cluster_is_downed_entirely() {
    let m = members(4);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(DowningSettings::default(), t0).unwrap();
    // The unreachable set changes every 4 s, so it is never stable for 7 s.
    let mut t = 0;
    while t < 12_250 {
        let unreachable: &[usize] = if (t / 4000) % 2 == 0 { &[3] } else { &[2, 3] };
        assert!(
            r.on_event(ms(t0, t), observe(&m, 0, unreachable, true))
                .is_empty(),
            "t={t}"
        );
        t += 4000;
    }
    assert_eq!(r.next_deadline(), Some(ms(t0, 12_250)));
    assert_eq!(
        r.on_event(ms(t0, 12_250), ResolverEvent::Tick),
        vec![ResolverAction::Down(ids(&m, &[0, 1, 2, 3]))]
    );
}

fn lease_majority() -> DowningSettings {
    DowningSettings::default().with_strategy(DowningStrategy::LeaseMajority {
        role: None,
        acquire_lease_delay_for_minority: Duration::from_secs(2),
    })
}

#[test]
fn lease_majority_majority_side_tries_at_once_and_wins() {
    let m = members(5);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(lease_majority(), t0).unwrap();
    r.on_event(t0, observe(&m, 0, &[3, 4], true));
    assert_eq!(
        r.on_event(ms(t0, 7000), ResolverEvent::Tick),
        vec![ResolverAction::AcquireLease]
    );
    assert_eq!(r.phase(), ResolverPhase::AwaitingLease);
    assert_eq!(r.next_deadline(), None);
    assert!(
        r.on_event(ms(t0, 7100), ResolverEvent::Tick).is_empty(),
        "no second attempt"
    );
    assert_eq!(
        r.on_event(ms(t0, 7200), ResolverEvent::LeaseResult { acquired: true }),
        vec![ResolverAction::Down(ids(&m, &[3, 4]))]
    );
    assert_eq!(r.phase(), ResolverPhase::Watching);
    // A stray result later is ignored.
    assert!(
        r.on_event(ms(t0, 7300), ResolverEvent::LeaseResult { acquired: false })
            .is_empty()
    );
}

#[test]
fn lease_majority_minority_side_waits_then_loses() {
    let m = members(5);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(lease_majority(), t0).unwrap();
    r.on_event(t0, observe(&m, 3, &[0, 1, 2], true));
    assert!(r.on_event(ms(t0, 7000), ResolverEvent::Tick).is_empty());
    assert_eq!(r.phase(), ResolverPhase::LeaseDelay { at: ms(t0, 9000) });
    assert_eq!(r.next_deadline(), Some(ms(t0, 9000)));
    assert!(r.on_event(ms(t0, 8999), ResolverEvent::Tick).is_empty());
    assert_eq!(
        r.on_event(ms(t0, 9000), ResolverEvent::Tick),
        vec![ResolverAction::AcquireLease]
    );
    assert_eq!(
        r.on_event(ms(t0, 9100), ResolverEvent::LeaseResult { acquired: false }),
        vec![ResolverAction::Down(ids(&m, &[3, 4]))]
    );
}

#[test]
fn lease_majority_minority_that_gets_the_lease_survives() {
    let m = members(5);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(lease_majority(), t0).unwrap();
    r.on_event(t0, observe(&m, 3, &[0, 1, 2], true));
    r.on_event(ms(t0, 7000), ResolverEvent::Tick);
    r.on_event(ms(t0, 9000), ResolverEvent::Tick);
    assert_eq!(
        r.on_event(ms(t0, 9100), ResolverEvent::LeaseResult { acquired: true }),
        vec![ResolverAction::Down(ids(&m, &[0, 1, 2]))]
    );
}

#[test]
fn a_change_during_the_lease_delay_starts_over() {
    let m = members(5);
    let t0 = Instant::now();
    let mut r = SplitBrainResolver::new(lease_majority(), t0).unwrap();
    r.on_event(t0, observe(&m, 3, &[0, 1, 2], true));
    r.on_event(ms(t0, 7000), ResolverEvent::Tick);
    assert!(matches!(r.phase(), ResolverPhase::LeaseDelay { .. }));
    assert!(
        r.on_event(ms(t0, 8000), observe(&m, 3, &[0, 1], true))
            .is_empty()
    );
    assert_eq!(r.phase(), ResolverPhase::Watching);
    assert_eq!(r.next_deadline(), Some(ms(t0, 15_000)));
    // Now 3-2 for our side: majority, tries at once.
    assert_eq!(
        r.on_event(ms(t0, 15_000), ResolverEvent::Tick),
        vec![ResolverAction::AcquireLease]
    );
}

#[test]
fn auto_down_downs_each_member_after_its_own_delay() {
    let m = members(4);
    let t0 = Instant::now();
    let settings = DowningSettings::default()
        .with_strategy(DowningStrategy::AutoDown {
            after: Duration::from_secs(3),
        })
        .with_down_all_when_unstable(DownAllWhenUnstable::Off);
    let mut r = SplitBrainResolver::new(settings, t0).unwrap();
    r.on_event(t0, observe(&m, 0, &[3], true));
    r.on_event(ms(t0, 1000), observe(&m, 0, &[2, 3], true));
    assert_eq!(r.next_deadline(), Some(ms(t0, 3000)));
    assert_eq!(
        r.on_event(ms(t0, 3000), ResolverEvent::Tick),
        vec![ResolverAction::Down(ids(&m, &[3]))]
    );
    assert_eq!(
        r.on_event(ms(t0, 4000), ResolverEvent::Tick),
        vec![ResolverAction::Down(ids(&m, &[2, 3]))]
    );
    // Auto-down ignores majorities: even the "minority" leader downs the others.
    let mut r = SplitBrainResolver::new(
        DowningSettings::default().with_strategy(DowningStrategy::AutoDown {
            after: Duration::from_secs(3),
        }),
        t0,
    )
    .unwrap();
    r.on_event(t0, observe(&m, 0, &[1, 2, 3], true));
    assert_eq!(
        r.on_event(ms(t0, 3000), ResolverEvent::Tick),
        vec![ResolverAction::Down(ids(&m, &[1, 2, 3]))]
    );
}

#[test]
fn invalid_settings_are_rejected() {
    let bad = DowningSettings::default().with_stable_after(Duration::ZERO);
    assert!(matches!(
        SplitBrainResolver::new(bad, Instant::now()),
        Err(DowningError::ZeroStableAfter)
    ));
}
