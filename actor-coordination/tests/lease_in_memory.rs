//! `InMemoryLease`: the conformance suite plus the registry's own behaviour, on a paused clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actor_coordination::lease::{
    InMemoryLease, InMemoryLeaseRegistry, Lease, LeaseOwner, LeaseSettings, LossReason,
};
use common::lease_conformance::{
    LeaseHarness, expect_callback_gone, expect_lost, lease_conformance_tests, lost_channel,
    settings,
};
use tokio::time::{Instant, sleep};

const TTL: Duration = Duration::from_secs(30);

/// All handles of one test share one registry.
struct Harness {
    registry: Arc<InMemoryLeaseRegistry>,
}

async fn harness() -> Harness {
    Harness {
        registry: Arc::new(InMemoryLeaseRegistry::new()),
    }
}

impl LeaseHarness for Harness {
    fn ttl(&self) -> Duration {
        TTL
    }

    async fn lease(&self, settings: LeaseSettings) -> Arc<dyn Lease> {
        Arc::new(InMemoryLease::with_registry(
            settings,
            self.registry.clone(),
        ))
    }

    async fn lease_seeing_later(&self, settings: LeaseSettings, ahead: Duration) -> Arc<dyn Lease> {
        // One clock for everyone: let the time pass (virtually).
        sleep(ahead).await;
        self.lease(settings).await
    }

    fn freeze(&self, owner: &LeaseOwner, frozen: bool) {
        if frozen {
            self.registry.pause_renewals(owner);
        } else {
            self.registry.resume_renewals(owner);
        }
    }
}

lease_conformance_tests!(tokio::test(start_paused = true), harness);

fn owner(id: &str) -> LeaseOwner {
    LeaseOwner::new(id, 1)
}

fn lease(h: &Harness, name: &str, id: &str) -> InMemoryLease {
    InMemoryLease::with_registry(settings(h, name, &owner(id)), h.registry.clone())
}

#[tokio::test(start_paused = true)]
async fn renewals_keep_the_lease_for_many_ttls() {
    let h = harness().await;
    let a = lease(&h, "kept", "a");
    let b = lease(&h, "kept", "b");
    let (on_lost, mut lost) = lost_channel();
    let token = a.acquire_with_lost_callback(on_lost).await.unwrap();
    sleep(TTL * 10).await;
    assert!(a.check_lease());
    assert_eq!(a.fencing_token(), token.token());
    assert_eq!(h.registry.holder_of("kept"), Some(owner("a")));
    assert!(!b.acquire().await.unwrap().is_held());
    assert!(lost.try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn loss_is_reported_before_another_owner_can_acquire() {
    let h = harness().await;
    let a = lease(&h, "gap", "a");
    let b = lease(&h, "gap", "b");
    let (on_lost, mut lost) = lost_channel();
    let acquired_at = Instant::now();
    assert!(
        a.acquire_with_lost_callback(on_lost)
            .await
            .unwrap()
            .is_held()
    );
    // Renew once (at ttl/3), then freeze: the deadline counts from the last renewal's start.
    sleep(TTL / 2).await;
    h.registry.pause_renewals(&owner("a"));
    let renewed_at = acquired_at + TTL / 3;
    let step = TTL / 100;
    let b_acquired_at = loop {
        if b.acquire().await.unwrap().is_held() {
            break Instant::now();
        }
        sleep(step).await;
    };
    let (reason, lost_at) = expect_lost(&mut lost, Duration::ZERO).await;
    assert_eq!(reason, LossReason::DeadlinePassed);
    let margin = a.settings().safety_margin();
    assert_eq!(lost_at, renewed_at + TTL - margin);
    assert!(b_acquired_at >= renewed_at + TTL);
    assert!(lost_at + margin <= b_acquired_at);
}

#[tokio::test(start_paused = true)]
async fn force_expire_reports_the_loss_before_it_returns() {
    let h = harness().await;
    let a = lease(&h, "forced", "a");
    let b = lease(&h, "forced", "b");
    let (on_lost, mut lost) = lost_channel();
    let t1 = a
        .acquire_with_lost_callback(on_lost)
        .await
        .unwrap()
        .token()
        .unwrap();
    assert!(h.registry.force_expire("forced"));
    let (reason, _) = lost.try_recv().expect("reported synchronously");
    assert_eq!(reason, LossReason::Revoked);
    assert!(!a.check_lease());
    assert_eq!(h.registry.holder_of("forced"), None);
    let t2 = b.acquire().await.unwrap().token().unwrap();
    assert!(t2 > t1);
    assert!(!h.registry.force_expire("missing"));
}

#[tokio::test(start_paused = true)]
async fn clear_revokes_every_holding_and_keeps_the_tokens() {
    let h = harness().await;
    let x = lease(&h, "x", "a");
    let y = lease(&h, "y", "b");
    let (x_cb, mut x_lost) = lost_channel();
    let (y_cb, mut y_lost) = lost_channel();
    let tx = x
        .acquire_with_lost_callback(x_cb)
        .await
        .unwrap()
        .token()
        .unwrap();
    assert!(y.acquire_with_lost_callback(y_cb).await.unwrap().is_held());
    h.registry.clear();
    assert_eq!(x_lost.try_recv().unwrap().0, LossReason::Revoked);
    assert_eq!(y_lost.try_recv().unwrap().0, LossReason::Revoked);
    expect_callback_gone(&mut x_lost).await;
    assert!(!x.check_lease() && !y.check_lease());
    assert_eq!(h.registry.holder_of("x"), None);
    assert_eq!(h.registry.last_token_of("x"), Some(tx));
    let again = x.acquire().await.unwrap().token().unwrap();
    assert!(again > tx);
}

#[tokio::test(start_paused = true)]
async fn releasing_one_handle_revokes_its_sibling() {
    let h = harness().await;
    let first = lease(&h, "shared", "a");
    let second = lease(&h, "shared", "a");
    let (on_lost, mut lost) = lost_channel();
    let token = first.acquire_with_lost_callback(on_lost).await.unwrap();
    assert_eq!(second.acquire().await.unwrap(), token);
    assert!(second.release().await.unwrap());
    assert_eq!(lost.try_recv().unwrap().0, LossReason::Revoked);
    assert!(!first.check_lease());
    assert!(lease(&h, "shared", "b").acquire().await.unwrap().is_held());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_lease_stops_renewing_and_expires() {
    let h = harness().await;
    let a = lease(&h, "dropped", "a");
    assert!(a.acquire().await.unwrap().is_held());
    drop(a);
    assert_eq!(h.registry.holder_of("dropped"), Some(owner("a")));
    let b = lease(&h, "dropped", "b");
    assert!(!b.acquire().await.unwrap().is_held());
    sleep(TTL).await;
    assert_eq!(h.registry.holder_of("dropped"), None);
    assert!(b.acquire().await.unwrap().is_held());
}

#[tokio::test(start_paused = true)]
async fn private_registries_do_not_exclude() {
    let s = |id| LeaseSettings::builder("solo", owner(id)).build().unwrap();
    let a = InMemoryLease::new(s("a"));
    let b = InMemoryLease::new(s("b"));
    assert!(a.acquire().await.unwrap().is_held());
    assert!(b.acquire().await.unwrap().is_held());
    assert!(!Arc::ptr_eq(a.registry(), b.registry()));
}

#[tokio::test(start_paused = true)]
async fn resumed_renewals_keep_a_holding_that_did_not_lapse() {
    let h = harness().await;
    let a = lease(&h, "blip", "a");
    assert!(a.acquire().await.unwrap().is_held());
    h.registry.pause_renewals(&owner("a"));
    // Miss one renewal (at ttl/3), resume before the deadline (0.9 ttl).
    sleep(TTL / 2).await;
    h.registry.resume_renewals(&owner("a"));
    sleep(TTL * 3).await;
    assert!(a.check_lease());
    assert!(a.renew_now().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_threads_see_one_holder_at_a_time() {
    // Real threads and a real clock: handles of 4 owners grab and release one lease many times;
    // a shared counter checks that no two believe they hold it at once.
    use std::sync::atomic::{AtomicUsize, Ordering};
    let h = harness().await;
    let inside = Arc::new(AtomicUsize::new(0));
    let wins = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let lease = lease(&h, "contended", &format!("node-{i}"));
        let (inside, wins) = (inside.clone(), wins.clone());
        tasks.push(tokio::spawn(async move {
            let mut won = 0;
            while won < 50 {
                if lease.acquire().await.unwrap().is_held() {
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    won += 1;
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    assert!(lease.release().await.unwrap());
                }
                tokio::task::yield_now().await;
            }
            wins.fetch_add(won, Ordering::SeqCst);
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every owner wins 50 times");
    assert_eq!(wins.load(Ordering::SeqCst), 200);
}
