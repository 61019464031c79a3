//! One conformance suite for every `Lease` backend.
//!
//! A backend's test binary implements [`LeaseHarness`] and expands
//! [`lease_conformance_tests!`] with its test attribute; each case below becomes one test named
//! `conformance::<case>`. The cases only use the `Lease` trait plus the harness hooks, so they
//! hold every backend to the same contract.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actor_coordination::lease::{
    Acquired, Lease, LeaseOwner, LeaseSettings, LossReason, LostCallback,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// What the suite needs from a backend beyond the `Lease` trait.
pub trait LeaseHarness {
    /// The TTL the timing cases use; short for real-time backends.
    fn ttl(&self) -> Duration;

    /// Creates a handle for `settings` in the backend shared by this test.
    fn lease(&self, settings: LeaseSettings) -> impl Future<Output = Arc<dyn Lease>>;

    /// Creates a handle that sees the backend's clock `ahead` later than now, so holdings whose
    /// TTL runs out within `ahead` look expired to it. (In virtual time: advance the clock.)
    fn lease_seeing_later(
        &self,
        settings: LeaseSettings,
        ahead: Duration,
    ) -> impl Future<Output = Arc<dyn Lease>>;

    /// Stops (`true`) or resumes (`false`) every renewal of `owner`, like a frozen process.
    fn freeze(&self, owner: &LeaseOwner, frozen: bool);
}

/// The settings of lease `name` held by `owner` with the harness's TTL.
pub fn settings(harness: &impl LeaseHarness, name: &str, owner: &LeaseOwner) -> LeaseSettings {
    LeaseSettings::builder(name, owner.clone())
        .ttl(harness.ttl())
        .build()
        .expect("valid test settings")
}

/// A lost-callback that sends `(reason, when)` on a channel.
pub fn lost_channel() -> (LostCallback, mpsc::UnboundedReceiver<(LossReason, Instant)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let callback: LostCallback = Box::new(move |reason| {
        let _ = tx.send((reason, Instant::now()));
    });
    (callback, rx)
}

/// Receives the next loss report, failing the test after `bound`.
pub async fn expect_lost(
    rx: &mut mpsc::UnboundedReceiver<(LossReason, Instant)>,
    bound: Duration,
) -> (LossReason, Instant) {
    match timeout(bound, rx.recv()).await {
        Ok(Some(report)) => report,
        Ok(None) => panic!("the lost-callback was dropped without running"),
        Err(_) => panic!("no loss reported within {bound:?}"),
    }
}

/// Asserts the callback can never run again: its sender is gone and nothing is queued.
pub async fn expect_callback_gone(rx: &mut mpsc::UnboundedReceiver<(LossReason, Instant)>) {
    match timeout(Duration::from_secs(5), rx.recv()).await {
        Ok(None) => {}
        Ok(Some(report)) => panic!("unexpected loss report {report:?}"),
        Err(_) => panic!("the lost-callback is still registered"),
    }
}

fn owners() -> (LeaseOwner, LeaseOwner) {
    (LeaseOwner::new("node-a", 1), LeaseOwner::new("node-b", 1))
}

/// Two owners: only one holds at a time.
pub async fn exclusion(h: &impl LeaseHarness) {
    let (a_owner, b_owner) = owners();
    let a = h.lease(settings(h, "exclusive", &a_owner)).await;
    let b = h.lease(settings(h, "exclusive", &b_owner)).await;
    let token = a
        .acquire()
        .await
        .unwrap()
        .token()
        .expect("a acquires a free lease");
    assert_eq!(b.acquire().await.unwrap(), Acquired::NotHeld);
    assert!(a.check_lease());
    assert_eq!(a.fencing_token(), Some(token));
    assert!(!b.check_lease());
    assert_eq!(b.fencing_token(), None);
    // Other names are independent.
    let other = h.lease(settings(h, "other", &b_owner)).await;
    assert!(other.acquire().await.unwrap().is_held());
}

/// The same owner acquiring again, through the same or another handle, keeps its token; a
/// restarted owner (new incarnation) is a different owner.
pub async fn reacquire_is_idempotent(h: &impl LeaseHarness) {
    let (a_owner, _) = owners();
    let a = h.lease(settings(h, "idem", &a_owner)).await;
    let first = a.acquire().await.unwrap();
    assert!(first.is_held());
    assert_eq!(a.acquire().await.unwrap(), first);
    let a_again = h.lease(settings(h, "idem", &a_owner)).await;
    assert_eq!(a_again.acquire().await.unwrap(), first);
    let restarted = LeaseOwner::new(a_owner.id(), a_owner.incarnation() + 1);
    let a_restarted = h.lease(settings(h, "idem", &restarted)).await;
    assert_eq!(a_restarted.acquire().await.unwrap(), Acquired::NotHeld);
}

/// Release reports whether it held, and frees the lease for others at once.
pub async fn release_lets_another_acquire(h: &impl LeaseHarness) {
    let (a_owner, b_owner) = owners();
    let a = h.lease(settings(h, "handover", &a_owner)).await;
    let b = h.lease(settings(h, "handover", &b_owner)).await;
    assert!(!a.release().await.unwrap(), "never acquired");
    assert!(a.acquire().await.unwrap().is_held());
    assert!(a.release().await.unwrap());
    assert!(!a.check_lease());
    assert!(!a.release().await.unwrap(), "released already");
    assert!(b.acquire().await.unwrap().is_held());
    assert!(!a.acquire().await.unwrap().is_held());
}

/// Tokens grow on every change of holder, across releases.
pub async fn fencing_token_grows_and_survives_release(h: &impl LeaseHarness) {
    let (a_owner, b_owner) = owners();
    let a = h.lease(settings(h, "fenced", &a_owner)).await;
    let b = h.lease(settings(h, "fenced", &b_owner)).await;
    let t1 = a.acquire().await.unwrap().token().unwrap();
    assert!(a.release().await.unwrap());
    let t2 = b.acquire().await.unwrap().token().unwrap();
    assert!(t2 > t1, "{t2} > {t1}");
    assert!(b.release().await.unwrap());
    let t3 = a.acquire().await.unwrap().token().unwrap();
    assert!(t3 > t2, "{t3} > {t2}");
    // A handle created after all that (a fresh process) still sees the counter.
    assert!(a.release().await.unwrap());
    let fresh = h
        .lease(settings(h, "fenced", &LeaseOwner::new("node-c", 9)))
        .await;
    let t4 = fresh.acquire().await.unwrap().token().unwrap();
    assert!(t4 > t3, "{t4} > {t3}");
}

/// A holder that stops renewing loses the lease to another owner after the TTL; its stale
/// renewal fails, it reports the loss once, and its release reports `false`.
pub async fn ttl_expiry_lets_another_acquire(h: &impl LeaseHarness) {
    let (a_owner, b_owner) = owners();
    let ttl = h.ttl();
    let a = h.lease(settings(h, "expiring", &a_owner)).await;
    let (on_lost, mut lost) = lost_channel();
    let t1 = a
        .acquire_with_lost_callback(on_lost)
        .await
        .unwrap()
        .token()
        .unwrap();
    h.freeze(&a_owner, true);
    let b = h
        .lease_seeing_later(settings(h, "expiring", &b_owner), ttl + ttl / 10)
        .await;
    let t2 = b
        .acquire()
        .await
        .unwrap()
        .token()
        .expect("expired lease is free");
    assert!(t2 > t1);
    h.freeze(&a_owner, false);
    let (reason, _) = expect_lost(&mut lost, ttl * 2).await;
    assert!(
        matches!(reason, LossReason::DeadlinePassed | LossReason::TakenOver),
        "{reason:?}"
    );
    assert!(!a.check_lease());
    expect_callback_gone(&mut lost).await;
    assert!(!a.release().await.unwrap());
    assert!(b.check_lease(), "the old holder's release must not touch b");
}

/// The lost-callback never fires for a failed acquire, fires once per registration after a
/// successful one, and never again.
pub async fn lost_fires_once_and_only_after_acquire(h: &impl LeaseHarness) {
    let (a_owner, b_owner) = owners();
    let ttl = h.ttl();
    let a = h.lease(settings(h, "lost-once", &a_owner)).await;
    let b = h.lease(settings(h, "lost-once", &b_owner)).await;
    assert!(b.acquire().await.unwrap().is_held());
    let (on_lost, mut refused) = lost_channel();
    assert_eq!(
        a.acquire_with_lost_callback(on_lost).await.unwrap(),
        Acquired::NotHeld
    );
    expect_callback_gone(&mut refused).await;
    assert!(b.release().await.unwrap());

    let (first_cb, mut first) = lost_channel();
    let (second_cb, mut second) = lost_channel();
    let token = a.acquire_with_lost_callback(first_cb).await.unwrap();
    assert!(token.is_held());
    assert!(first.try_recv().is_err(), "nothing fired at acquire");
    assert_eq!(
        a.acquire_with_lost_callback(second_cb).await.unwrap(),
        token
    );
    h.freeze(&a_owner, true);
    let (r1, _) = expect_lost(&mut first, ttl * 2).await;
    let (r2, _) = expect_lost(&mut second, ttl * 2).await;
    assert_eq!(r1, LossReason::DeadlinePassed);
    assert_eq!(r2, LossReason::DeadlinePassed);
    expect_callback_gone(&mut first).await;
    expect_callback_gone(&mut second).await;
    h.freeze(&a_owner, false);
    assert!(!a.release().await.unwrap());
}

/// `check_lease` turns false, and the loss is reported, by the local deadline: after
/// `ttl - safety_margin` from the acquire and before the full TTL.
pub async fn check_lease_false_after_deadline(h: &impl LeaseHarness) {
    let (a_owner, _) = owners();
    let settings = settings(h, "deadline", &a_owner);
    let window = settings.trusted_window();
    let ttl = settings.ttl();
    let a = h.lease(settings).await;
    let before = Instant::now();
    let (on_lost, mut lost) = lost_channel();
    assert!(
        a.acquire_with_lost_callback(on_lost)
            .await
            .unwrap()
            .is_held()
    );
    let acquired = Instant::now();
    h.freeze(&a_owner, true);
    assert!(a.check_lease());
    let (reason, at) = expect_lost(&mut lost, ttl * 2).await;
    assert_eq!(reason, LossReason::DeadlinePassed);
    assert!(at >= before + window, "lost {:?} too early", at - before);
    assert!(
        at < acquired + ttl,
        "lost {:?} after the ttl",
        at - acquired
    );
    assert!(!a.check_lease());
    assert_eq!(a.fencing_token(), None);
    h.freeze(&a_owner, false);
}

/// Releasing drops the lost-callbacks without running them.
pub async fn release_drops_callbacks(h: &impl LeaseHarness) {
    let (a_owner, _) = owners();
    let a = h.lease(settings(h, "quiet", &a_owner)).await;
    let (on_lost, mut lost) = lost_channel();
    assert!(
        a.acquire_with_lost_callback(on_lost)
            .await
            .unwrap()
            .is_held()
    );
    assert!(a.release().await.unwrap());
    expect_callback_gone(&mut lost).await;
}

/// Many owners racing for a free lease: exactly one wins.
pub async fn concurrent_acquire_has_one_winner(h: &impl LeaseHarness) {
    let mut leases = Vec::new();
    for i in 0..8 {
        let owner = LeaseOwner::new(format!("racer-{i}"), 1);
        leases.push(h.lease(settings(h, "race", &owner)).await);
    }
    let tasks: Vec<_> = leases
        .iter()
        .map(|lease| {
            let lease = lease.clone();
            tokio::spawn(async move { lease.acquire().await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_held() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(leases.iter().filter(|l| l.check_lease()).count(), 1);
}

/// Expands to one test per conformance case, in a module `conformance`.
///
/// `$attr` is the test attribute (e.g. `tokio::test(start_paused = true)`); `$harness` is an
/// async function returning the harness for one test.
macro_rules! lease_conformance_tests {
    ($attr:meta, $harness:path) => {
        mod conformance {
            use super::*;
            use $crate::common::lease_conformance as suite;

            #[$attr]
            async fn exclusion() {
                suite::exclusion(&$harness().await).await;
            }
            #[$attr]
            async fn reacquire_is_idempotent() {
                suite::reacquire_is_idempotent(&$harness().await).await;
            }
            #[$attr]
            async fn release_lets_another_acquire() {
                suite::release_lets_another_acquire(&$harness().await).await;
            }
            #[$attr]
            async fn fencing_token_grows_and_survives_release() {
                suite::fencing_token_grows_and_survives_release(&$harness().await).await;
            }
            #[$attr]
            async fn ttl_expiry_lets_another_acquire() {
                suite::ttl_expiry_lets_another_acquire(&$harness().await).await;
            }
            #[$attr]
            async fn lost_fires_once_and_only_after_acquire() {
                suite::lost_fires_once_and_only_after_acquire(&$harness().await).await;
            }
            #[$attr]
            async fn check_lease_false_after_deadline() {
                suite::check_lease_false_after_deadline(&$harness().await).await;
            }
            #[$attr]
            async fn concurrent_acquire_has_one_winner() {
                suite::concurrent_acquire_has_one_winner(&$harness().await).await;
            }
            #[$attr]
            async fn release_drops_callbacks() {
                suite::release_drops_callbacks(&$harness().await).await;
            }
        }
    };
}
pub(crate) use lease_conformance_tests;
