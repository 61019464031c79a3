//! `PostgresLease` against a throwaway PostgreSQL server: the conformance suite plus the
//! database-specific failures (a stale holder, a database that stops answering, a dropped
//! connection). Real time: the timing cases use a 2 s TTL.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use actor_coordination::lease::{
    Lease, LeaseError, LeaseOperation, LeaseOwner, LeaseSettings, LossReason, PostgresLease,
    PostgresLeaseSettings,
};
use common::lease_conformance::{
    LeaseHarness, expect_lost, lease_conformance_tests, lost_channel, settings,
};
use common::postgres::{TestDatabase, fresh_database};
use parking_lot::Mutex;
use tokio::time::{Instant, timeout};

const TTL: Duration = Duration::from_secs(2);

/// All handles of one test share one fresh database.
struct Harness {
    db: TestDatabase,
    leases: Mutex<Vec<Arc<PostgresLease>>>,
}

async fn harness() -> Harness {
    Harness {
        db: fresh_database().await,
        leases: Mutex::new(Vec::new()),
    }
}

impl Harness {
    async fn pg_lease(&self, settings: LeaseSettings, offset: Duration) -> Arc<PostgresLease> {
        let backend = PostgresLeaseSettings::default().clock_offset(offset);
        let lease = PostgresLease::connect_with(settings, self.db.config.clone(), backend)
            .await
            .expect("connect to the test database");
        let lease = Arc::new(lease);
        self.leases.lock().push(lease.clone());
        lease
    }
}

impl LeaseHarness for Harness {
    fn ttl(&self) -> Duration {
        TTL
    }

    async fn lease(&self, settings: LeaseSettings) -> Arc<dyn Lease> {
        self.pg_lease(settings, Duration::ZERO).await
    }

    async fn lease_seeing_later(&self, settings: LeaseSettings, ahead: Duration) -> Arc<dyn Lease> {
        self.pg_lease(settings, ahead).await
    }

    fn freeze(&self, owner: &LeaseOwner, frozen: bool) {
        for lease in self.leases.lock().iter() {
            if lease.settings().owner() == owner {
                lease.pause_renewals(frozen);
            }
        }
    }
}

lease_conformance_tests!(tokio::test, harness);

fn owner(id: &str) -> LeaseOwner {
    LeaseOwner::new(id, 1)
}

#[tokio::test]
async fn a_stale_holders_renewal_fails_and_reports_the_take_over() {
    let h = harness().await;
    let a = h
        .pg_lease(settings(&h, "stale", &owner("a")), Duration::ZERO)
        .await;
    let (on_lost, mut lost) = lost_channel();
    let t1 = a
        .acquire_with_lost_callback(on_lost)
        .await
        .unwrap()
        .token()
        .unwrap();
    // b's clock is past a's expiry, so it may take over.
    let b = h
        .pg_lease(settings(&h, "stale", &owner("b")), TTL * 2)
        .await;
    let t2 = b.acquire().await.unwrap().token().unwrap();
    assert!(t2 > t1);
    assert!(!a.renew_now().await.unwrap());
    let (reason, _) = expect_lost(&mut lost, Duration::ZERO).await;
    assert_eq!(reason, LossReason::TakenOver);
    assert!(!a.release().await.unwrap());
    assert!(b.check_lease());
}

#[tokio::test]
async fn the_holder_self_fences_when_the_database_stops_answering() {
    let h = harness().await;
    let s = settings(&h, "hung", &owner("a"));
    let window = s.trusted_window();
    let a = h.pg_lease(s, Duration::ZERO).await;
    let before = Instant::now();
    let (on_lost, mut lost) = lost_channel();
    assert!(
        a.acquire_with_lost_callback(on_lost)
            .await
            .unwrap()
            .is_held()
    );
    let acquired = Instant::now();
    // Lock the lease row in an open transaction: every renewal now blocks in the database.
    let mut blocker = h.db.connect().await;
    let tx = blocker.transaction().await.unwrap();
    tx.query(
        "SELECT token FROM actor_coordination_lease WHERE name = $1 FOR UPDATE",
        &[&"hung"],
    )
    .await
    .unwrap();
    let (reason, lost_at) = expect_lost(&mut lost, TTL * 2).await;
    assert_eq!(reason, LossReason::DeadlinePassed);
    assert!(
        lost_at >= before + window,
        "lost after {:?}",
        lost_at - before
    );
    assert!(
        lost_at < acquired + TTL,
        "lost after {:?}",
        lost_at - acquired
    );
    assert!(!a.check_lease());
    tx.rollback().await.unwrap();
    // Nobody else gets the lease before a fenced itself.
    let b = h
        .pg_lease(settings(&h, "hung", &owner("b")), Duration::ZERO)
        .await;
    let b_acquired = timeout(TTL * 3, async {
        loop {
            if b.acquire().await.unwrap().is_held() {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await; // poll interval
        }
    })
    .await
    .expect("b acquires once a's holding expired");
    assert!(b_acquired > lost_at);
}

#[tokio::test]
async fn a_dropped_connection_is_reestablished() {
    let h = harness().await;
    let a = h
        .pg_lease(settings(&h, "reconnect", &owner("a")), Duration::ZERO)
        .await;
    let token = a.acquire().await.unwrap().token().unwrap();
    let admin = h.db.connect().await;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    // The first operation may see the dead connection; a later one reconnects.
    let renewed = timeout(TTL, async {
        loop {
            if let Ok(held) = a.renew_now().await {
                return held;
            }
            tokio::time::sleep(Duration::from_millis(10)).await; // poll interval
        }
    })
    .await
    .expect("renewal succeeds again");
    assert!(renewed);
    assert_eq!(a.fencing_token(), Some(token));
}

#[tokio::test]
async fn concurrent_connects_create_the_schema_once() {
    let h = Arc::new(harness().await);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                let s = settings(&*h, &format!("schema-{i}"), &owner("a"));
                h.pg_lease(s, Duration::ZERO).await.acquire().await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_held());
    }
}

#[tokio::test]
async fn an_acquire_blocked_in_the_database_fails_within_the_operation_timeout() {
    let h = harness().await;
    let a = h
        .pg_lease(settings(&h, "blocked", &owner("a")), Duration::ZERO)
        .await;
    assert!(a.acquire().await.unwrap().is_held());
    assert!(a.release().await.unwrap());
    let mut blocker = h.db.connect().await;
    let tx = blocker.transaction().await.unwrap();
    tx.query(
        "SELECT token FROM actor_coordination_lease WHERE name = $1 FOR UPDATE",
        &[&"blocked"],
    )
    .await
    .unwrap();
    let b = h
        .pg_lease(settings(&h, "blocked", &owner("b")), Duration::ZERO)
        .await;
    let limit = b.settings().operation_timeout();
    let started = Instant::now();
    let result = b.acquire().await;
    assert!(result.is_err(), "{result:?}");
    assert!(started.elapsed() < limit * 2, "{:?}", started.elapsed());
    assert!(!b.check_lease());
    tx.rollback().await.unwrap();
    assert!(b.acquire().await.unwrap().is_held());
}

#[tokio::test]
async fn connecting_to_a_missing_server_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tokio_postgres::Config::new();
    config.host_path(dir.path()).user("postgres").dbname("none");
    let s = LeaseSettings::builder("nowhere", owner("a"))
        .build()
        .unwrap();
    match PostgresLease::connect(s, config).await {
        Err(LeaseError::Backend {
            name, operation, ..
        }) => {
            assert_eq!(name, "nowhere");
            assert_eq!(operation, LeaseOperation::Connect);
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
}
