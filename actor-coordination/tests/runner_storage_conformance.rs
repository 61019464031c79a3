//! One conformance suite for every runner storage backend: memory, SQLite, PostgreSQL.
//!
//! [`conformance_suite`] takes a factory that builds a fresh, empty storage (plus a way to move
//! that storage's clock forward) and runs every check against it. PostgreSQL runs against a
//! throwaway server (see `common/postgres.rs`); without one the test fails with an install hint.

#[cfg(feature = "postgres")]
mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actor_coordination::runner_storage::{
    MachineId, MemoryRunnerStorage, Runner, RunnerAddress, RunnerId, RunnerStorage,
    RunnerStorageConfig, ShardId,
};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Lock ttl used by every backend under test.
const TTL: Duration = Duration::from_secs(30);

/// A storage under test and its clock.
struct Subject {
    storage: Arc<dyn RunnerStorage>,
    /// Moves the storage's clock forward.
    advance: Arc<dyn Fn(Duration) -> Boxed<()> + Send + Sync>,
    /// Opens another handle on the same store (its own connection, as another process would
    /// have; the same object for the in-memory store). Its clock is not advanced.
    connect: Arc<dyn Fn() -> Boxed<Arc<dyn RunnerStorage>> + Send + Sync>,
}

fn address(port: u16) -> RunnerAddress {
    RunnerAddress::new("127.0.0.1", port).expect("address")
}

fn runner(port: u16, incarnation: u64) -> Runner {
    Runner::new(address(port), incarnation)
}

fn shards(numbers: impl IntoIterator<Item = u32>) -> Vec<ShardId> {
    numbers.into_iter().map(ShardId::default_group).collect()
}

/// `(shard number, holder port, holder incarnation)` of every live lock.
async fn lock_table(storage: &dyn RunnerStorage) -> Vec<(u32, u16, u64)> {
    storage
        .list_locks()
        .await
        .expect("list locks")
        .into_iter()
        .map(|lock| {
            (
                lock.shard.number(),
                lock.holder.address.port(),
                lock.holder.incarnation,
            )
        })
        .collect()
}

/// Runs every check, each on a fresh storage from `factory`, naming the check that fails.
async fn conformance_suite<F>(factory: F)
where
    F: Fn() -> Boxed<Subject>,
{
    type Check = fn(Subject) -> Boxed<()>;
    let checks: [(&str, Check); 9] = [
        ("registration_and_machine_ids", |s| {
            Box::pin(registration_and_machine_ids(s))
        }),
        ("health_and_unregister", |s| {
            Box::pin(health_and_unregister(s))
        }),
        ("acquire_returns_exactly_what_it_got", |s| {
            Box::pin(acquire_returns_exactly_what_it_got(s))
        }),
        ("refresh_and_release_only_touch_own_locks", |s| {
            Box::pin(refresh_and_release_only_touch_own_locks(s))
        }),
        ("a_new_incarnation_does_not_inherit_locks", |s| {
            Box::pin(a_new_incarnation_does_not_inherit_locks(s))
        }),
        ("locks_expire_on_the_storage_clock", |s| {
            Box::pin(locks_expire_on_the_storage_clock(s))
        }),
        ("refresh_keeps_a_lock_alive", |s| {
            Box::pin(refresh_keeps_a_lock_alive(s))
        }),
        ("refresh_racing_acquire_never_drops_shards", |s| {
            Box::pin(refresh_racing_acquire_never_drops_shards(s))
        }),
        ("racing_runners_never_share_a_shard", |s| {
            Box::pin(racing_runners_never_share_a_shard(s))
        }),
    ];
    for (name, check) in checks {
        let subject = factory().await;
        let outcome = tokio::spawn(check(subject)).await;
        if let Err(error) = outcome {
            panic!("conformance check {name} failed: {error}");
        }
    }
}

async fn registration_and_machine_ids(s: Subject) {
    let storage = &*s.storage;
    let a = runner(9001, 1);
    let b = runner(9002, 1)
        .with_weight(3)
        .with_groups(["orders", "users"])
        .expect("groups");
    let ma = storage.register(&a, true).await.expect("register a");
    let mb = storage.register(&b, false).await.expect("register b");
    assert_ne!(ma, mb, "registered runners get distinct machine ids");

    // A new incarnation at the same address replaces the entry and keeps the machine id.
    let a2 = runner(9001, 2);
    assert_eq!(storage.register(&a2, true).await.expect("re-register"), ma);
    let listed = storage.get_runners().await.expect("runners");
    assert_eq!(listed, vec![(a2, true), (b.clone(), false)]);

    let c = runner(9003, 1);
    let mc = storage.register(&c, true).await.expect("register c");
    let ids: BTreeSet<MachineId> = [ma, mb, mc].into_iter().collect();
    assert_eq!(ids.len(), 3, "machine ids stay unique: {ids:?}");
}

async fn health_and_unregister(s: Subject) {
    let storage = &*s.storage;
    let a = runner(9001, 1);
    let b = runner(9002, 1);
    storage.register(&a, true).await.expect("register");
    let mb = storage.register(&b, true).await.expect("register");
    storage
        .set_runner_health(a.address(), false)
        .await
        .expect("health");
    // Unknown addresses are a no-op, not an error.
    storage
        .set_runner_health(&address(1), false)
        .await
        .expect("health of unknown");
    assert_eq!(
        storage.get_runners().await.expect("runners"),
        vec![(a.clone(), false), (b.clone(), true)]
    );

    storage.unregister(a.address()).await.expect("unregister");
    storage
        .unregister(&address(1))
        .await
        .expect("unregister unknown");
    assert_eq!(
        storage.get_runners().await.expect("runners"),
        vec![(b.clone(), true)]
    );
    let again = storage.register(&a, true).await.expect("register again");
    assert_ne!(
        again, mb,
        "a returning runner does not collide with a registered one"
    );
}

async fn acquire_returns_exactly_what_it_got(s: Subject) {
    let storage = &*s.storage;
    let a = runner(9001, 1).id;
    let b = runner(9002, 1).id;
    assert_eq!(
        storage
            .acquire(&a, &shards([1, 2, 3]))
            .await
            .expect("acquire"),
        shards([1, 2, 3])
    );
    assert_eq!(
        storage
            .acquire(&b, &shards([2, 3, 4]))
            .await
            .expect("acquire"),
        shards([4])
    );
    // Already held ones come back too; duplicates are asked once.
    assert_eq!(
        storage
            .acquire(&a, &shards([5, 1, 5]))
            .await
            .expect("acquire"),
        shards([5, 1])
    );
    assert_eq!(
        storage.acquire(&a, &[]).await.expect("acquire nothing"),
        Vec::<ShardId>::new()
    );
    let other_group = ShardId::new("orders", 1).expect("shard");
    assert_eq!(
        storage
            .acquire(&b, std::slice::from_ref(&other_group))
            .await
            .expect("acquire"),
        vec![other_group.clone()]
    );

    let table = storage.list_locks().await.expect("locks");
    let summary: Vec<(String, u16)> = table
        .iter()
        .map(|l| (l.shard.to_string(), l.holder.address.port()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("default:1".into(), 9001),
            ("default:2".into(), 9001),
            ("default:3".into(), 9001),
            ("default:4".into(), 9002),
            ("default:5".into(), 9001),
            ("orders:1".into(), 9002),
        ]
    );
    assert!(
        table
            .iter()
            .all(|l| l.expires_in > Duration::ZERO && l.expires_in <= TTL),
        "{table:?}"
    );
}

async fn refresh_and_release_only_touch_own_locks(s: Subject) {
    let storage = &*s.storage;
    let a = runner(9001, 1).id;
    let b = runner(9002, 1).id;
    storage
        .acquire(&a, &shards([1, 2, 3]))
        .await
        .expect("acquire");
    storage.acquire(&b, &shards([4])).await.expect("acquire");
    assert_eq!(
        storage
            .refresh(&a, &shards([1, 2, 4, 9]))
            .await
            .expect("refresh"),
        shards([1, 2])
    );
    assert_eq!(
        storage.refresh(&a, &[]).await.expect("refresh nothing"),
        Vec::<ShardId>::new()
    );

    storage
        .release(&a, &ShardId::default_group(4))
        .await
        .expect("release foreign");
    storage
        .release(&a, &ShardId::default_group(1))
        .await
        .expect("release own");
    assert_eq!(
        lock_table(storage).await,
        vec![(2, 9001, 1), (3, 9001, 1), (4, 9002, 1)]
    );
    assert_eq!(
        storage
            .acquire(&b, &shards([1]))
            .await
            .expect("acquire released"),
        shards([1])
    );

    storage.release_all(&a).await.expect("release all");
    assert_eq!(lock_table(storage).await, vec![(1, 9002, 1), (4, 9002, 1)]);
    assert_eq!(
        storage.acquire(&b, &shards([2, 3])).await.expect("acquire"),
        shards([2, 3])
    );
}

async fn a_new_incarnation_does_not_inherit_locks(s: Subject) {
    let storage = &*s.storage;
    let old = runner(9001, 1);
    let new = runner(9001, 2);
    storage.register(&old, true).await.expect("register");
    storage
        .acquire(&old.id, &shards([1, 2]))
        .await
        .expect("acquire");
    storage.register(&new, true).await.expect("re-register");

    assert!(
        storage
            .acquire(&new.id, &shards([1, 2]))
            .await
            .expect("acquire")
            .is_empty()
    );
    assert!(
        storage
            .refresh(&new.id, &shards([1, 2]))
            .await
            .expect("refresh")
            .is_empty()
    );
    storage
        .release(&new.id, &ShardId::default_group(1))
        .await
        .expect("release");
    storage.release_all(&new.id).await.expect("release all");
    assert_eq!(lock_table(storage).await, vec![(1, 9001, 1), (2, 9001, 1)]);

    // Once the old incarnation's locks expire, the new one can take them.
    (s.advance)(TTL + Duration::from_secs(1)).await;
    assert_eq!(
        storage
            .acquire(&new.id, &shards([1, 2]))
            .await
            .expect("acquire"),
        shards([1, 2])
    );
    assert!(
        storage
            .refresh(&old.id, &shards([1, 2]))
            .await
            .expect("refresh")
            .is_empty()
    );
}

async fn locks_expire_on_the_storage_clock(s: Subject) {
    let storage = &*s.storage;
    let a = runner(9001, 1).id;
    let b = runner(9002, 1).id;
    storage.acquire(&a, &shards([1, 2])).await.expect("acquire");
    (s.advance)(TTL - Duration::from_secs(5)).await;
    assert!(
        storage
            .acquire(&b, &shards([1]))
            .await
            .expect("acquire")
            .is_empty(),
        "not expired yet"
    );

    (s.advance)(Duration::from_secs(6)).await;
    assert!(
        lock_table(storage).await.is_empty(),
        "expired locks are not listed"
    );
    assert_eq!(
        storage.acquire(&b, &shards([1])).await.expect("acquire"),
        shards([1])
    );
    // The old holder lost shard 1 to b; shard 2 expired but nobody took it, so it is still
    // the old holder's to refresh.
    assert_eq!(
        storage.refresh(&a, &shards([1, 2])).await.expect("refresh"),
        shards([2])
    );
    assert_eq!(lock_table(storage).await, vec![(1, 9002, 1), (2, 9001, 1)]);
}

async fn refresh_keeps_a_lock_alive(s: Subject) {
    let storage = &*s.storage;
    let a = runner(9001, 1).id;
    let b = runner(9002, 1).id;
    storage.acquire(&a, &shards([1])).await.expect("acquire");
    for _ in 0..3 {
        (s.advance)(TTL * 2 / 3).await;
        assert_eq!(
            storage.refresh(&a, &shards([1])).await.expect("refresh"),
            shards([1])
        );
    }
    assert!(
        storage
            .acquire(&b, &shards([1]))
            .await
            .expect("acquire")
            .is_empty()
    );
    let table = storage.list_locks().await.expect("locks");
    assert!(
        table[0].expires_in > TTL / 2,
        "refresh renewed the full ttl: {table:?}"
    );
}

async fn refresh_racing_acquire_never_drops_shards(s: Subject) {
    let storage = Arc::clone(&s.storage);
    let a = runner(9001, 1).id;
    let held = shards(0..8);
    assert_eq!(storage.acquire(&a, &held).await.expect("acquire"), held);
    let acquirer = {
        let (storage, a) = ((s.connect)().await, a.clone());
        tokio::spawn(async move {
            for n in 100..124 {
                // Re-acquiring held shards together with new ones, as a runner does when it
                // is assigned more shards.
                let asked: Vec<ShardId> = shards([n, n + 100, n % 8]);
                let got = storage.acquire(&a, &asked).await.expect("acquire");
                assert_eq!(
                    got, asked,
                    "acquire of free or own shards must get them all"
                );
            }
        })
    };
    let refresher = {
        let (storage, a, held) = ((s.connect)().await, a.clone(), held.clone());
        tokio::spawn(async move {
            for _ in 0..24 {
                let still = storage.refresh(&a, &held).await.expect("refresh");
                assert_eq!(still, held, "a refresh racing an acquire dropped shards");
            }
        })
    };
    acquirer.await.expect("acquirer");
    refresher.await.expect("refresher");
    let table = lock_table(&*storage).await;
    assert_eq!(table.len(), 8 + 48);
    assert!(table.iter().all(|(_, port, _)| *port == 9001));
}

async fn racing_runners_never_share_a_shard(s: Subject) {
    let contenders: Vec<RunnerId> = (0..4).map(|i| runner(9100 + i, 7).id).collect();
    let mut handles = Vec::new();
    for _ in &contenders {
        handles.push((s.connect)().await);
    }
    for round in 0..5u32 {
        let wanted: Vec<u32> = (round * 100..round * 100 + 16).collect();
        let mut tasks = Vec::new();
        for (i, (id, storage)) in contenders.iter().zip(&handles).enumerate() {
            // Each contender asks in a different order, to provoke lock-order conflicts.
            let mut asked = wanted.clone();
            asked.rotate_left(i * 4);
            if i % 2 == 1 {
                asked.reverse();
            }
            let (id, storage) = (id.clone(), Arc::clone(storage));
            tasks.push(tokio::spawn(async move {
                let got = storage.acquire(&id, &shards(asked)).await.expect("acquire");
                (id, got)
            }));
        }
        let mut owners: Vec<(u32, u16)> = Vec::new();
        for task in tasks {
            let (id, got) = task.await.expect("task");
            owners.extend(got.iter().map(|shard| (shard.number(), id.address.port())));
        }
        owners.sort_unstable();
        let numbers: Vec<u32> = owners.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            numbers, wanted,
            "round {round}: each shard won exactly once: {owners:?}"
        );
        let table: Vec<(u32, u16)> = lock_table(&*s.storage)
            .await
            .into_iter()
            .filter(|(n, _, _)| wanted.contains(n))
            .map(|(n, p, _)| (n, p))
            .collect();
        assert_eq!(
            table, owners,
            "round {round}: the lock table agrees with acquire"
        );
    }
}

// ---- backends ----

fn memory_subject() -> Boxed<Subject> {
    Box::pin(async {
        let storage = MemoryRunnerStorage::new(RunnerStorageConfig::default().with_lock_ttl(TTL))
            .expect("storage");
        let storage: Arc<dyn RunnerStorage> = Arc::new(storage);
        let shared = Arc::clone(&storage);
        Subject {
            storage,
            advance: Arc::new(|by| Box::pin(tokio::time::advance(by))),
            connect: Arc::new(move || {
                let shared = Arc::clone(&shared);
                Box::pin(async move { shared })
            }),
        }
    })
}

#[tokio::test(start_paused = true)]
async fn memory_storage_passes_the_conformance_suite() {
    conformance_suite(memory_subject).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_storage_passes_the_conformance_suite() {
    use actor_coordination::runner_storage::sqlite::SqliteRunnerStorage;
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    conformance_suite(move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("runners-{n}.db"));
        Box::pin(async move {
            let open = move || {
                let path = path.clone();
                async move {
                    SqliteRunnerStorage::open(
                        &path,
                        RunnerStorageConfig::default().with_lock_ttl(TTL),
                    )
                    .await
                    .expect("open sqlite")
                }
            };
            let backend = open().await;
            let clock = backend.clone();
            Subject {
                storage: Arc::new(backend.into_typed()),
                advance: Arc::new(move |by| {
                    clock.advance_clock(by);
                    Box::pin(async {})
                }),
                connect: Arc::new(move || {
                    let open = open.clone();
                    Box::pin(async move {
                        let handle: Arc<dyn RunnerStorage> = Arc::new(open().await.into_typed());
                        handle
                    })
                }),
            }
        })
    })
    .await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_storage_passes_the_conformance_suite() {
    use actor_coordination::runner_storage::postgres::PostgresRunnerStorage;
    conformance_suite(|| {
        Box::pin(async {
            let conninfo = common::postgres::fresh_database().await.conninfo();
            let open = move || {
                let conninfo = conninfo.clone();
                async move {
                    PostgresRunnerStorage::connect(
                        &conninfo,
                        RunnerStorageConfig::default().with_lock_ttl(TTL),
                    )
                    .await
                    .expect("connect postgres")
                }
            };
            let backend = open().await;
            let clock = backend.clone();
            Subject {
                storage: Arc::new(backend.into_typed()),
                advance: Arc::new(move |by| {
                    clock.advance_clock(by);
                    Box::pin(async {})
                }),
                connect: Arc::new(move || {
                    let open = open.clone();
                    Box::pin(async move {
                        let handle: Arc<dyn RunnerStorage> = Arc::new(open().await.into_typed());
                        handle
                    })
                }),
            }
        })
    })
    .await;
}
