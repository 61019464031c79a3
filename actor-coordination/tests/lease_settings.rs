//! `LeaseSettings` validation: every invalid value is a typed error carrying that value.

use std::time::Duration;

use actor_coordination::lease::settings::{DEFAULT_OPERATION_TIMEOUT, DEFAULT_TTL, MAX_NAME_LEN};
use actor_coordination::lease::{LeaseOwner, LeaseSettings, LeaseSettingsError};

fn owner() -> LeaseOwner {
    LeaseOwner::new("node-a", 1)
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn valid_settings_keep_every_value() {
    let s = LeaseSettings::builder("job", owner())
        .ttl(SECOND * 12)
        .renewal_interval(SECOND * 2)
        .safety_margin(SECOND * 3)
        .operation_timeout(SECOND)
        .build()
        .unwrap();
    assert_eq!(s.name(), "job");
    assert_eq!(s.owner(), &owner());
    assert_eq!(s.ttl(), SECOND * 12);
    assert_eq!(s.renewal_interval(), SECOND * 2);
    assert_eq!(s.safety_margin(), SECOND * 3);
    assert_eq!(s.operation_timeout(), SECOND);
    assert_eq!(s.trusted_window(), SECOND * 9);
}

#[test]
fn defaults_are_the_named_constants() {
    let s = LeaseSettings::builder("job", owner()).build().unwrap();
    assert_eq!(s.ttl(), DEFAULT_TTL);
    assert_eq!(s.renewal_interval(), DEFAULT_TTL / 3);
    assert_eq!(s.operation_timeout(), DEFAULT_OPERATION_TIMEOUT);
}

#[test]
fn names_and_owners_must_be_present_and_bounded() {
    assert_eq!(
        LeaseSettings::builder("", owner()).build(),
        Err(LeaseSettingsError::EmptyName)
    );
    let long = "x".repeat(MAX_NAME_LEN + 1);
    assert_eq!(
        LeaseSettings::builder(long.clone(), owner()).build(),
        Err(LeaseSettingsError::NameTooLong {
            len: MAX_NAME_LEN + 1,
            max: MAX_NAME_LEN
        })
    );
    assert!(
        LeaseSettings::builder("x".repeat(MAX_NAME_LEN), owner())
            .build()
            .is_ok()
    );
    let err = LeaseSettings::builder("job", LeaseOwner::new("", 1)).build();
    assert_eq!(
        err,
        Err(LeaseSettingsError::EmptyOwner {
            name: "job".to_owned()
        })
    );
    assert!(err.unwrap_err().to_string().contains("job"));
    assert_eq!(
        LeaseSettings::builder("job", LeaseOwner::new(long, 1)).build(),
        Err(LeaseSettingsError::OwnerTooLong {
            len: MAX_NAME_LEN + 1,
            max: MAX_NAME_LEN
        })
    );
}

#[test]
fn zero_durations_are_rejected() {
    let b = || LeaseSettings::builder("job", owner());
    let name = "job".to_owned();
    assert_eq!(
        b().ttl(Duration::ZERO).build(),
        Err(LeaseSettingsError::ZeroTtl { name: name.clone() })
    );
    assert_eq!(
        b().renewal_interval(Duration::ZERO).build(),
        Err(LeaseSettingsError::ZeroRenewalInterval { name: name.clone() })
    );
    assert_eq!(
        b().operation_timeout(Duration::ZERO).build(),
        Err(LeaseSettingsError::ZeroOperationTimeout { name })
    );
    // A TTL so short that its default interval rounds to zero.
    assert_eq!(
        b().ttl(Duration::from_nanos(2)).build(),
        Err(LeaseSettingsError::ZeroRenewalInterval {
            name: "job".to_owned()
        })
    );
}

#[test]
fn the_timing_must_leave_room_to_renew() {
    let b = || LeaseSettings::builder("job", owner()).ttl(SECOND * 10);
    let err = b().renewal_interval(SECOND * 5).build().unwrap_err();
    assert_eq!(
        err,
        LeaseSettingsError::RenewalIntervalTooLong {
            renewal_interval: SECOND * 5,
            ttl: SECOND * 10
        }
    );
    assert!(err.to_string().contains("5s"), "{err}");
    assert_eq!(
        b().renewal_interval(SECOND * 4)
            .safety_margin(SECOND * 6)
            .build(),
        Err(LeaseSettingsError::SafetyMarginTooLong {
            safety_margin: SECOND * 6,
            renewal_interval: SECOND * 4,
            ttl: SECOND * 10
        })
    );
    assert_eq!(
        b().safety_margin(SECOND * 2)
            .operation_timeout(SECOND * 8)
            .build(),
        Err(LeaseSettingsError::OperationTimeoutTooLong {
            operation_timeout: SECOND * 8,
            limit: SECOND * 8
        })
    );
    assert!(
        b().safety_margin(Duration::ZERO)
            .operation_timeout(SECOND * 9)
            .build()
            .is_ok()
    );
}

#[test]
fn a_restarted_owner_is_a_different_owner() {
    let before = LeaseOwner::for_node("10.0.0.1:2552", 1);
    let after = LeaseOwner::for_node("10.0.0.1:2552", 2);
    assert_ne!(before, after);
    assert_eq!(before.id(), after.id());
    assert_eq!(after.to_string(), "10.0.0.1:2552#2");
}

#[test]
fn a_process_owner_keeps_its_incarnation_within_the_process() {
    let a = LeaseOwner::for_this_process("worker");
    let b = LeaseOwner::for_this_process("worker");
    assert_eq!(a, b);
    assert_eq!(a.id(), "worker");
}
