//! The per-peer failure detector registry.

use std::collections::BTreeSet;
use std::time::Duration;

use actor_cluster::Address;
use actor_cluster::failure_detector::{
    FailureDetectorError, FailureDetectorRegistry, PhiAccrualSettings,
};
use tokio::time::Instant;

fn addr(name: &str) -> Address {
    Address::logical("sys", name).unwrap()
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

#[test]
fn invalid_settings_are_rejected() {
    let bad = PhiAccrualSettings::default().with_threshold(-1.0);
    assert!(matches!(
        FailureDetectorRegistry::new(bad),
        Err(FailureDetectorError::InvalidThreshold { .. })
    ));
}

#[test]
fn a_crashed_peer_becomes_unavailable_and_a_live_one_does_not() {
    let mut r = FailureDetectorRegistry::new(PhiAccrualSettings::default()).unwrap();
    let t0 = Instant::now();
    let (b, c) = (addr("b"), addr("c"));
    for s in 0..20 {
        r.heartbeat(&b, secs(t0, s));
        if s < 10 {
            r.heartbeat(&c, secs(t0, s));
        }
    }
    assert_eq!(r.unavailable(secs(t0, 19)), BTreeSet::from([c.clone()]));
    assert!(r.is_available(&b, secs(t0, 20)));
    assert!(!r.is_available(&c, secs(t0, 20)));
    assert!(r.phi(&c, secs(t0, 20)) > r.phi(&b, secs(t0, 20)));
    // Unknown peers are not suspected.
    assert!(r.is_available(&addr("z"), secs(t0, 1000)));
    assert_eq!(r.phi(&addr("z"), secs(t0, 1000)), 0.0);
}

#[test]
fn expecting_a_silent_peer_eventually_suspects_it() {
    let mut r = FailureDetectorRegistry::new(PhiAccrualSettings::default()).unwrap();
    let t0 = Instant::now();
    let b = addr("b");
    r.expect(&b, t0);
    assert!(r.is_available(&b, secs(t0, 3)));
    assert!(!r.is_available(&b, secs(t0, 10)));
    // expect() on a monitored peer does not count as a heartbeat.
    let mut r = FailureDetectorRegistry::new(PhiAccrualSettings::default()).unwrap();
    r.heartbeat(&b, t0);
    r.expect(&b, secs(t0, 9));
    assert!(!r.is_available(&b, secs(t0, 10)));
}

#[test]
fn removing_and_retaining_peers_drops_their_history() {
    let mut r = FailureDetectorRegistry::new(PhiAccrualSettings::default()).unwrap();
    let t0 = Instant::now();
    for name in ["b", "c", "d"] {
        r.heartbeat(&addr(name), t0);
    }
    r.remove(&addr("b"));
    r.retain(&BTreeSet::from([addr("c"), addr("x")]));
    assert_eq!(r.peers().cloned().collect::<Vec<_>>(), vec![addr("c")]);
    assert_eq!(r.unavailable(secs(t0, 60)), BTreeSet::from([addr("c")]));
}
