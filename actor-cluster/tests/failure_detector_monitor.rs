//! One node's heartbeat monitor: targets, suspicion and recovery, ring changes.

use std::collections::BTreeSet;
use std::time::Duration;

use actor_cluster::Address;
use actor_cluster::failure_detector::{
    HeartbeatMonitor, HeartbeatTargets, PhiAccrualSettings, ReachabilityChange,
};
use tokio::time::Instant;

fn addr(name: &str) -> Address {
    Address::logical("sys", name).unwrap()
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

#[test]
fn a_silent_peer_becomes_unreachable_and_comes_back() {
    let (me, b, c) = (addr("a"), addr("b"), addr("c"));
    let t0 = Instant::now();
    let mut monitor = HeartbeatMonitor::new(me.clone(), PhiAccrualSettings::default(), 5).unwrap();
    monitor.set_members([me, b.clone(), c.clone()], t0);
    let mut log = Vec::new();
    for s in 0..=40 {
        let now = secs(t0, s);
        let (send_to, changes) = monitor.tick(now);
        assert_eq!(send_to, BTreeSet::from([b.clone(), c.clone()]), "at {s} s");
        for change in changes {
            log.push((s, change));
        }
        // b answers throughout; c is silent from 10 s to 25 s.
        monitor.on_response(&b, now);
        if !(10..25).contains(&s) {
            monitor.on_response(&c, now);
        }
    }
    // Last answer at 9 s; with 1 s heartbeats and a 3 s pause phi crosses 8 between 13 and
    // 15 s. The first answer at 25 s makes c reachable at the next round.
    assert_eq!(log.len(), 2, "{log:?}");
    let (went, ref change) = log[0];
    assert_eq!(change, &ReachabilityChange::Unreachable(c.clone()));
    assert!((13..=15).contains(&went), "unreachable at {went} s");
    assert_eq!(log[1], (26, ReachabilityChange::Reachable(c.clone())));
    assert!(monitor.suspected().is_empty());
}

#[test]
fn a_suspected_peer_stays_monitored_and_another_one_is_added() {
    let nodes: Vec<Address> = (0..10).map(|i| addr(&format!("n{i}"))).collect();
    let me = nodes[0].clone();
    let t0 = Instant::now();
    let mut monitor = HeartbeatMonitor::new(me.clone(), PhiAccrualSettings::default(), 3).unwrap();
    monitor.set_members(nodes.clone(), t0);
    let first = monitor.targets().clone();
    assert_eq!(first.len(), 3);
    assert_eq!(
        first,
        HeartbeatTargets::new(nodes.clone(), 3).targets(&me, &BTreeSet::new())
    );
    let silent = first.iter().next().unwrap().clone();
    let mut now = t0;
    let mut changes = Vec::new();
    for s in 0..30 {
        now = secs(t0, s);
        let (_, c) = monitor.tick(now);
        changes.extend(c);
        for peer in monitor.targets().clone() {
            if peer != silent {
                monitor.on_response(&peer, now);
            }
        }
    }
    assert_eq!(
        changes,
        vec![ReachabilityChange::Unreachable(silent.clone())]
    );
    let targets = monitor.targets().clone();
    assert_eq!(
        targets.len(),
        4,
        "three reachable ones plus the suspected one"
    );
    assert!(targets.contains(&silent) && first.is_subset(&targets));
    // The added target is expected from when it was added; it answers, so no suspicion.
    let (_, c) = monitor.tick(secs(now, 1));
    assert!(c.is_empty(), "{c:?}");
}

#[test]
fn members_leaving_the_ring_are_forgotten() {
    let (me, b, c) = (addr("a"), addr("b"), addr("c"));
    let t0 = Instant::now();
    let mut monitor = HeartbeatMonitor::new(me.clone(), PhiAccrualSettings::default(), 5).unwrap();
    monitor.set_members([me.clone(), b.clone(), c.clone()], t0);
    // c is silent and becomes suspected, then leaves the cluster.
    for s in 0..20 {
        monitor.tick(secs(t0, s));
        monitor.on_response(&b, secs(t0, s));
    }
    assert_eq!(monitor.suspected(), &BTreeSet::from([c.clone()]));
    monitor.set_members([me, b.clone()], secs(t0, 20));
    assert!(monitor.suspected().is_empty());
    assert_eq!(monitor.targets(), &BTreeSet::from([b.clone()]));
    // Responses from peers we do not monitor are ignored.
    monitor.on_response(&c, secs(t0, 21));
    let (send_to, changes) = monitor.tick(secs(t0, 21));
    assert_eq!(send_to, BTreeSet::from([b]));
    assert!(changes.is_empty());
}
