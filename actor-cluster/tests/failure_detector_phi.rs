//! The phi-accrual failure detector against published values and an independent
//! computation of the formula, plus the monitoring ring.

use std::collections::BTreeSet;
use std::time::Duration;

use actor_cluster::Address;
use actor_cluster::failure_detector::{
    DEFAULT_ACCEPTABLE_HEARTBEAT_PAUSE, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_SAMPLE_SIZE,
    DEFAULT_MIN_STD_DEVIATION, DEFAULT_MONITORED_PEERS, DEFAULT_THRESHOLD, FailureDetectorError,
    HeartbeatTargets, PhiAccrualFailureDetector, PhiAccrualSettings, phi, ring_hash,
};
use proptest::prelude::*;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The normal CDF by the logistic approximation, computed directly (not via the crate).
fn expected_phi(elapsed: f64, mean: f64, std: f64) -> f64 {
    let y = (elapsed - mean) / std;
    let cdf = 1.0 / (1.0 + (-y * (1.5976 + 0.070566 * y * y)).exp());
    -(1.0 - cdf).log10()
}

fn cdf_of(phi: f64) -> f64 {
    1.0 - 10f64.powf(-phi)
}

#[test]
fn defaults_are_akkas() {
    assert_eq!(DEFAULT_THRESHOLD, 8.0);
    assert_eq!(DEFAULT_HEARTBEAT_INTERVAL, Duration::from_secs(1));
    assert_eq!(DEFAULT_ACCEPTABLE_HEARTBEAT_PAUSE, Duration::from_secs(3));
    assert_eq!(DEFAULT_MIN_STD_DEVIATION, ms(100));
    assert_eq!(DEFAULT_MAX_SAMPLE_SIZE, 1000);
    assert_eq!(DEFAULT_MONITORED_PEERS, 5);
    let s = PhiAccrualSettings::default();
    assert_eq!(s.first_heartbeat_estimate, DEFAULT_HEARTBEAT_INTERVAL);
}

/// Akka's published "realistic phi values" for mean 1000 ms, deviation 100 ms.
#[test]
fn phi_matches_akka_published_table() {
    let table = [
        (0.0, 0.0),
        (500.0, 0.1),
        (1000.0, 0.3),
        (1200.0, 1.6),
        (1400.0, 4.7),
        (1600.0, 10.8),
        (1700.0, 15.3),
    ];
    for (elapsed, published) in table {
        let got = phi(elapsed, 1000.0, 100.0);
        assert!(
            (got - published).abs() <= 0.1,
            "phi({elapsed}) = {got}, published {published}"
        );
    }
    // A larger deviation gives a lower phi for the same lateness.
    assert!(phi(1100.0, 1000.0, 500.0) < phi(1100.0, 1000.0, 100.0));
}

/// The approximation's CDF against the standard normal CDF Φ(z) (mean 0, deviation 10).
#[test]
fn cdf_of_phi_is_close_to_the_normal_cdf() {
    let table = [
        (0.0, 0.5, 0.001),
        (6.0, 0.7257, 0.001),
        (15.0, 0.9332, 0.001),
        (20.0, 0.97725, 0.001),
        (25.0, 0.99379, 0.001),
        (35.0, 0.99977, 0.001),
        (40.0, 0.99997, 0.0001),
    ];
    for (elapsed, normal_cdf, tolerance) in table {
        let got = cdf_of(phi(elapsed, 0.0, 10.0));
        assert!(
            (got - normal_cdf).abs() <= tolerance,
            "cdf({elapsed}) = {got}, normal {normal_cdf}"
        );
    }
}

#[test]
fn phi_handles_outliers_without_overflow() {
    let far_late = phi(10.0, 0.0, 1.0);
    assert!(
        far_late.is_finite() && (far_late - 38.0).abs() <= 1.0,
        "{far_late}"
    );
    assert_eq!(phi(-25.0, 0.0, 1.0), 0.0);
    // Absurd silence saturates (possibly to +inf) but never yields NaN.
    let absurd = phi(1e9, 0.0, 1.0);
    assert!(!absurd.is_nan() && absurd > DEFAULT_THRESHOLD);
}

#[test]
fn phi_is_zero_before_any_heartbeat() {
    let d = PhiAccrualFailureDetector::new(PhiAccrualSettings::default()).unwrap();
    let t = Instant::now();
    assert!(!d.is_monitoring());
    assert_eq!(d.phi(t + Duration::from_secs(3600)), 0.0);
    assert!(d.is_available(t + Duration::from_secs(3600)));
}

#[test]
fn first_heartbeat_seeds_history_with_interval_and_quarter_deviation() {
    let mut d = PhiAccrualFailureDetector::new(PhiAccrualSettings::default()).unwrap();
    let t0 = Instant::now();
    d.heartbeat(t0);
    let samples: Vec<f64> = d.history().intervals().collect();
    assert_eq!(samples, vec![750.0, 1250.0]);
    assert_eq!(d.history().mean(), 1000.0);
    assert_eq!(d.history().std_deviation(), 250.0);
    // phi right after the first heartbeat: mean 1000 + 3000 pause, deviation 250.
    let at = t0 + ms(2000);
    let want = expected_phi(2000.0, 4000.0, 250.0);
    assert!((d.phi(at) - want).abs() < 1e-9);
}

/// A fixed heartbeat history: phi equals the formula evaluated on the history's own mean and
/// deviation, computed here independently.
#[test]
fn phi_for_a_fixed_history_matches_the_formula() {
    let settings = PhiAccrualSettings::default();
    let mut d = PhiAccrualFailureDetector::new(settings).unwrap();
    let t0 = Instant::now();
    let gaps = [1000u64, 1100, 900, 1050, 950, 1200, 800, 1000];
    let mut at = t0;
    d.heartbeat(at);
    for gap in gaps {
        at += ms(gap);
        d.heartbeat(at);
    }
    let mut samples = vec![750.0, 1250.0];
    samples.extend(gaps.iter().map(|g| *g as f64));
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
    let std = var.sqrt().max(100.0);
    for elapsed in [0u64, 1000, 3000, 4000, 4200, 4500, 5000] {
        let want = expected_phi(elapsed as f64, mean + 3000.0, std);
        let got = d.phi(at + ms(elapsed));
        // The direct `1 - cdf` loses digits to cancellation far in the tail (1 - cdf is
        // about 10^-phi); allow for that rounding error and nothing more.
        let tolerance = 1e-6 + 10f64.powf(want) * 1e-15;
        assert!(
            (got - want).abs() < tolerance,
            "elapsed {elapsed}: got {got}, want {want}"
        );
        assert_eq!(d.is_available(at + ms(elapsed)), want < 8.0);
    }
}

#[test]
fn regular_heartbeats_then_silence_is_detected_after_the_pause() {
    let mut d = PhiAccrualFailureDetector::new(PhiAccrualSettings::default()).unwrap();
    let t0 = Instant::now();
    for i in 0..30 {
        d.heartbeat(t0 + ms(1000 * i));
    }
    let last = t0 + ms(29_000);
    // Within interval + acceptable pause: fine.
    assert!(d.is_available(last + ms(1000)));
    assert!(d.is_available(last + ms(3900)));
    // Well past it: suspected.
    assert!(!d.is_available(last + ms(5000)));
    // phi grows with silence.
    let phis: Vec<f64> = (0..60).map(|i| d.phi(last + ms(i * 100))).collect();
    assert!(phis.windows(2).all(|w| w[0] <= w[1]), "{phis:?}");
}

#[test]
fn heartbeat_after_an_outage_is_not_recorded() {
    let mut d = PhiAccrualFailureDetector::new(PhiAccrualSettings::default()).unwrap();
    let t0 = Instant::now();
    d.heartbeat(t0);
    d.heartbeat(t0 + ms(1000));
    assert_eq!(d.history().len(), 3);
    let back = t0 + ms(60_000);
    assert!(!d.is_available(back));
    d.heartbeat(back);
    assert_eq!(
        d.history().len(),
        3,
        "the 59 s gap must not enter the history"
    );
    assert!(d.is_available(back + ms(500)), "the peer is back");
}

#[test]
fn history_is_bounded_by_max_sample_size() {
    let settings = PhiAccrualSettings::default().with_max_sample_size(3);
    let mut d = PhiAccrualFailureDetector::new(settings).unwrap();
    let t0 = Instant::now();
    for (i, gap) in [0u64, 100, 200, 300, 400].iter().enumerate() {
        d.heartbeat(t0 + ms(gap * i as u64));
    }
    let samples: Vec<f64> = d.history().intervals().collect();
    assert_eq!(samples.len(), 3);
    // Instants 0, 100, 400, 900, 1600: the last three intervals 300, 500, 700.
    assert_eq!(samples, vec![300.0, 500.0, 700.0]);
    assert_eq!(d.history().mean(), 500.0);
}

#[test]
fn min_std_deviation_floors_a_regular_history() {
    let settings = PhiAccrualSettings::default()
        .with_acceptable_heartbeat_pause(Duration::ZERO)
        .with_max_sample_size(4);
    let mut d = PhiAccrualFailureDetector::new(settings).unwrap();
    let t0 = Instant::now();
    for i in 0..10 {
        d.heartbeat(t0 + ms(1000 * i));
    }
    let last = t0 + ms(9000);
    assert_eq!(d.history().std_deviation(), 0.0);
    let want = expected_phi(1100.0, 1000.0, 100.0);
    assert!((d.phi(last + ms(1100)) - want).abs() < 1e-9);
}

#[test]
fn settings_are_validated() {
    let base = PhiAccrualSettings::default;
    assert!(base().build().is_ok());
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            base().with_threshold(bad).build(),
            Err(FailureDetectorError::InvalidThreshold { .. })
        ));
    }
    assert_eq!(
        base().with_max_sample_size(0).build(),
        Err(FailureDetectorError::ZeroSampleSize)
    );
    assert_eq!(
        base().with_min_std_deviation(Duration::ZERO).build(),
        Err(FailureDetectorError::ZeroMinStdDeviation)
    );
    assert_eq!(
        base().with_heartbeat_interval(Duration::ZERO).build(),
        Err(FailureDetectorError::ZeroFirstHeartbeatEstimate)
    );
    assert!(PhiAccrualFailureDetector::new(base().with_max_sample_size(0)).is_err());
    // A zero pause is valid (Akka allows it).
    assert!(
        base()
            .with_acceptable_heartbeat_pause(Duration::ZERO)
            .build()
            .is_ok()
    );
}

proptest! {
    #[test]
    fn phi_never_decreases_with_silence(
        gaps in proptest::collection::vec(1u64..3000, 1..40),
        a in 0u64..20_000,
        b in 0u64..20_000,
    ) {
        let mut d = PhiAccrualFailureDetector::new(PhiAccrualSettings::default()).unwrap();
        let mut at = Instant::now();
        d.heartbeat(at);
        for gap in gaps {
            at += ms(gap);
            d.heartbeat(at);
        }
        let (lo, hi) = (a.min(b), a.max(b));
        let (p_lo, p_hi) = (d.phi(at + ms(lo)), d.phi(at + ms(hi)));
        prop_assert!(!p_lo.is_nan() && !p_hi.is_nan());
        prop_assert!(p_lo <= p_hi, "phi({lo}) = {p_lo} > phi({hi}) = {p_hi}");
    }
}

fn nodes(n: usize) -> Vec<Address> {
    (0..n)
        .map(|i| Address::logical("sys", format!("node-{i}")).unwrap())
        .collect()
}

#[test]
fn ring_hash_is_fnv1a_of_the_display_form() {
    let address = Address::new("sys", "10.0.0.1", 2552).unwrap();
    let mut want: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"sys@10.0.0.1:2552" {
        want ^= u64::from(*byte);
        want = want.wrapping_mul(0x100_0000_01b3);
    }
    assert_eq!(ring_hash(&address), want);
}

#[test]
fn ring_targets_are_bounded_and_exclude_self() {
    let all = nodes(20);
    let ring = HeartbeatTargets::new(all.iter().cloned(), DEFAULT_MONITORED_PEERS);
    for node in &all {
        let targets = ring.targets(node, &BTreeSet::new());
        assert_eq!(targets.len(), DEFAULT_MONITORED_PEERS);
        assert!(!targets.contains(node));
    }
}

#[test]
fn every_node_is_watched_by_exactly_k_observers() {
    for (n, k) in [(20, 5), (7, 3), (10, 1)] {
        let all = nodes(n);
        let ring = HeartbeatTargets::new(all.iter().cloned(), k);
        for node in &all {
            assert_eq!(
                ring.observers(node, &BTreeSet::new()).len(),
                k,
                "n={n} k={k} node {node}"
            );
        }
    }
}

#[test]
fn small_clusters_monitor_everyone_else() {
    let all = nodes(3);
    let ring = HeartbeatTargets::new(all.iter().cloned(), 5);
    let targets = ring.targets(&all[0], &BTreeSet::new());
    assert_eq!(targets, all[1..].iter().cloned().collect());
    let alone = HeartbeatTargets::new(all[..1].iter().cloned(), 5);
    assert!(alone.targets(&all[0], &BTreeSet::new()).is_empty());
}

#[test]
fn unreachable_peers_stay_monitored_without_counting() {
    let all = nodes(12);
    let ring = HeartbeatTargets::new(all.iter().cloned(), 3);
    let me = &all[0];
    let base = ring.targets(me, &BTreeSet::new());
    let unreachable: BTreeSet<Address> = base.iter().take(2).cloned().collect();
    let targets = ring.targets(me, &unreachable);
    assert!(unreachable.is_subset(&targets));
    let reachable = targets.difference(&unreachable).count();
    assert_eq!(reachable, 3);
    assert_eq!(targets.len(), 5);
}

#[test]
fn ring_is_the_same_whatever_the_input_order() {
    let all = nodes(15);
    let mut reversed = all.clone();
    reversed.reverse();
    let a = HeartbeatTargets::new(all.iter().cloned(), 4);
    let b = HeartbeatTargets::new(reversed, 4);
    assert_eq!(a, b);
    // A node not (yet) on the ring monitors its would-be successors.
    let newcomer = Address::logical("sys", "newcomer").unwrap();
    assert_eq!(a.targets(&newcomer, &BTreeSet::new()).len(), 4);
}
