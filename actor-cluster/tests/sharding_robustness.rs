//! Sharding robustness on one node (no remoting), on the in-memory runner storage and on
//! SQLite: a lock grant whose local deadline passed before it was used, a shard restarted at
//! the same region while its previous actor is still stopping, and the bound on the
//! messages buffered for passivating entities.

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actor_cluster::sharding::{
    ClusterSharding, CoordinatorMsg, RegionCtl, ShardRegion, ShardingError, ShardingSettings,
    TTL_PROBE_GROUP, default_shard_id,
};
use actor_core::ActorSystem;
use actor_testkit::{TestProbe, await_assert};
use parking_lot::Mutex;
use sharding_support::{
    ASK, Backend, Cmd, Counter, Event, FlakyStorage, LOCK_TTL, Log, Storage, TYPE, entity_of,
    get_eventually, received, settings, starts,
};

const WAIT: Duration = Duration::from_secs(30);

struct Local {
    system: ActorSystem,
    region: ShardRegion<Cmd>,
    log: Log,
}

fn start_local(settings: ShardingSettings<Cmd>) -> Local {
    let system = ActorSystem::new("local").expect("system");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let sharding = ClusterSharding::get(&system);
    let coordinator = sharding
        .spawn_coordinator(TYPE, &settings)
        .expect("coordinator");
    let region = sharding
        .start_with_coordinator(
            TYPE,
            Counter::factory("local", &log),
            settings,
            entity_of,
            coordinator,
        )
        .expect("region");
    Local {
        system,
        region,
        log,
    }
}

fn add(id: &str, n: u64) -> Cmd {
    Cmd::Add { id: id.into(), n }
}

/// H1: an acquire call that returns after the lock's local deadline (ttl - margin from when
/// the call started) is not used: the shard acquires again and serves only on that fresh
/// grant. (Before the fix the entity started on the first, already expired, grant.)
async fn a_grant_past_its_local_deadline_does_not_activate_the_shard(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    *flaky.slow_next_acquire.lock() = Some(LOCK_TTL);
    let mut s = settings(&storage);
    s.storage = flaky.clone();
    let local = start_local(s.build().expect("settings"));
    local.region.tell(add("late", 1));
    let reading = get_eventually(&local.region, "late", WAIT).await;
    assert_eq!(reading.value, 1, "the buffered message was delivered");
    assert_eq!(starts(&local.log, "late").len(), 1);
    assert_eq!(
        flaky.acquires.load(Ordering::SeqCst),
        2,
        "served on the late grant instead of acquiring again"
    );
    local.system.terminate().await;
}

/// H2: the sharding lock ttl is checked against the storage's (measured with a probe lock):
/// a local validity that outlives the storage's ttl is a typed error carrying both
/// durations, a matching one passes, and the probe lock is released.
async fn the_lock_ttl_is_checked_against_the_storage(backend: Backend) {
    let storage = Storage::open(backend).await;
    let system = ActorSystem::new("local").expect("system");
    let sharding = ClusterSharding::get(&system);
    let too_long = settings(&storage).with_lock_ttl(LOCK_TTL * 2);
    match sharding.check_lock_ttl(TYPE, &too_long).await {
        Err(ShardingError::LockTtlMismatch {
            local_validity,
            storage_ttl,
        }) => {
            assert_eq!(local_validity, LOCK_TTL * 2 - Duration::from_secs(1));
            assert!(storage_ttl <= LOCK_TTL, "{storage_ttl:?}");
        }
        other => panic!("expected LockTtlMismatch, got {other:?}"),
    }
    // The margin must cover the whole difference: equal ttls with no margin are refused too.
    let no_margin = settings(&storage).with_lock_safety_margin(Duration::ZERO);
    assert!(matches!(
        sharding.check_lock_ttl(TYPE, &no_margin).await,
        Err(ShardingError::LockTtlMismatch { .. })
    ));
    let measured = sharding
        .check_lock_ttl(TYPE, &settings(&storage))
        .await
        .expect("matching ttl");
    assert!(
        measured <= LOCK_TTL && measured > LOCK_TTL - Duration::from_secs(1),
        "{measured:?}"
    );
    let locks = storage.storage.list_locks().await.expect("locks");
    assert!(
        locks.iter().all(|l| l.shard.group() != TTL_PROBE_GROUP),
        "probe lock left behind: {locks:?}"
    );
    system.terminate().await;
}

/// H2: a region whose lock ttl outlives the storage's stops without hosting a shard, instead
/// of serving on locks the storage may already have given to another runner. (Before the
/// check the entity started and answered.)
async fn a_region_whose_lock_ttl_outlives_the_storage_never_serves(backend: Backend) {
    let storage = Storage::open(backend).await;
    let local = start_local(
        settings(&storage)
            .with_lock_ttl(LOCK_TTL * 2)
            .build()
            .expect("settings"),
    );
    local.region.tell(add("m", 1));
    let region = local.region.clone();
    await_assert(
        || {
            if region.is_terminated() {
                Ok(())
            } else {
                Err("region still runs")
            }
        },
        WAIT,
        Duration::from_millis(50),
    )
    .await;
    assert!(starts(&local.log, "m").is_empty(), "an entity started");
    let locks = storage.storage.list_locks().await.expect("locks");
    assert!(locks.is_empty(), "{locks:?}");
    local.system.terminate().await;
}

/// H4: a shard given back to the same region while its previous actor is still handing off
/// (a hand-off the coordinator aborted, or a new allocation to the same region) is not
/// served by the stopping actor: the region holds its messages and starts a fresh actor once
/// the old one terminated. Every message reaches the entity, none goes to dead letters.
/// (Before the fix the messages bounced between the region and the stopping shard.)
async fn a_shard_restarted_while_its_old_actor_stops_gets_every_message(backend: Backend) {
    let storage = Storage::open(backend).await;
    let system = ActorSystem::new("local").expect("system");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let coordinator = TestProbe::<CoordinatorMsg>::new(&system);
    let region = ClusterSharding::get(&system)
        .start_with_coordinator(
            TYPE,
            Counter::factory("local", &log),
            settings(&storage).build().expect("settings"),
            entity_of,
            coordinator.actor_ref().clone(),
        )
        .expect("region");
    let ctl = match coordinator.receive_one(ASK).await {
        Some(CoordinatorMsg::Register { region, .. }) => region,
        other => panic!("expected Register, got {other:?}"),
    };
    ctl.tell(RegionCtl::Registered {
        coordinator: coordinator.actor_ref().clone(),
    });
    let shard = default_shard_id("h", 12);
    region.tell(add("h", 1));
    match coordinator.receive_one(ASK).await {
        Some(CoordinatorMsg::GetShardHome { shard: asked, .. }) => assert_eq!(asked, shard),
        other => panic!("expected GetShardHome, got {other:?}"),
    }
    ctl.tell(RegionCtl::ShardHome {
        shard,
        home: ctl.clone(),
    });
    assert_eq!(get_eventually(&region, "h", WAIT).await.value, 1);
    let dead_before = system.dead_letter_count();

    ctl.tell(RegionCtl::HandOff { shard });
    let stopping = log.clone();
    await_assert(
        || {
            let entity_stopping = stopping
                .lock()
                .iter()
                .any(|e| matches!(e, Event::Stopping { id, .. } if id == "h"));
            if entity_stopping {
                Ok(())
            } else {
                Err("entity not stopping yet")
            }
        },
        WAIT,
        Duration::from_millis(10),
    )
    .await;
    // The entity flushes for a second: the shard is handing off. It comes back here.
    ctl.tell(RegionCtl::HostShard {
        shard,
        entities: Vec::new(),
    });
    region.tell(add("h", 2));
    region.tell(add("h", 3));
    // (Messages that beat the HostShard to the region ask where the shard lives.)
    loop {
        match coordinator.receive_one(WAIT).await {
            Some(CoordinatorMsg::ShardStopped { shard: stopped, .. }) => {
                assert_eq!(stopped, shard);
                break;
            }
            Some(CoordinatorMsg::GetShardHome { .. }) => {}
            other => panic!("expected ShardStopped, got {other:?}"),
        }
    }
    region.tell(add("h", 4));
    let reading = get_eventually(&region, "h", WAIT).await;
    assert_eq!(
        reading.value,
        2 + 3 + 4,
        "a fresh instance got every message"
    );
    assert_eq!(received(&log, "h"), vec![1, 2, 3, 4]);
    assert_eq!(starts(&log, "h").len(), 2);
    assert_eq!(system.dead_letter_count(), dead_before, "dead letters");
    system.terminate().await;
}

/// H6: the messages a shard holds for a passivating entity are bounded by
/// `entity_buffer_size`; the overflow goes to dead letters and the rest reach the fresh
/// instance in order. (Before the fix the queue grew without bound: all five arrived.)
async fn a_passivating_entity_buffers_at_most_its_bound(backend: Backend) {
    let storage = Storage::open(backend).await;
    let local = start_local(
        settings(&storage)
            .with_entity_buffer_size(3)
            .build()
            .expect("settings"),
    );
    local.region.tell(add("p", 1));
    assert_eq!(get_eventually(&local.region, "p", WAIT).await.value, 1);
    local.region.tell(Cmd::Passivate { id: "p".into() });
    let log = local.log.clone();
    await_assert(
        || {
            let stopping = log
                .lock()
                .iter()
                .any(|e| matches!(e, Event::Stopping { id, .. } if id == "p"));
            if stopping {
                Ok(())
            } else {
                Err("not stopping yet")
            }
        },
        WAIT,
        Duration::from_millis(10),
    )
    .await;
    // The entity flushes for a second (virtual): these wait at the shard.
    let dead_before = local.system.dead_letter_count();
    for n in [2, 3, 4, 5, 6] {
        local.region.tell(add("p", n));
    }
    let log = local.log.clone();
    await_assert(
        || {
            let stopped = log
                .lock()
                .iter()
                .any(|e| matches!(e, Event::Stopped { id, .. } if id == "p"));
            if stopped {
                Ok(())
            } else {
                Err("not stopped yet")
            }
        },
        WAIT,
        Duration::from_millis(10),
    )
    .await;
    assert_eq!(
        local.system.dead_letter_count() - dead_before,
        2,
        "two over the bound"
    );
    let reading = get_eventually(&local.region, "p", WAIT).await;
    assert_eq!(
        reading.value,
        2 + 3 + 4,
        "the first three reached the fresh instance"
    );
    assert_eq!(received(&local.log, "p"), vec![1, 2, 3, 4]);
    local.system.terminate().await;
}

/// H3: a region that registers again under the same key (its node restarted at the same
/// address) with a new incarnation replaces the old entry: the old region counts as gone
/// (every region is told to forget its homes) and its shards are re-homed, here to the new
/// incarnation. (Before the fix the new registration was ignored, and the old region's
/// death later removed the live one.)
async fn a_region_restarted_at_the_same_address_replaces_the_old_incarnation(backend: Backend) {
    let storage = Storage::open(backend).await;
    let system = ActorSystem::new("local").expect("system");
    let coordinator = ClusterSharding::get(&system)
        .spawn_coordinator(TYPE, &settings(&storage))
        .expect("coordinator");
    let b = TestProbe::<RegionCtl>::new(&system);
    let other = TestProbe::<RegionCtl>::new(&system);
    let register = |probe: &TestProbe<RegionCtl>, runner: &str| {
        coordinator.tell(CoordinatorMsg::Register {
            region: probe.actor_ref().clone(),
            runner: runner.to_owned(),
            proxy: false,
            hosted: Vec::new(),
        });
    };
    register(&other, "other:1#1");
    assert!(matches!(
        other.receive_one(ASK).await,
        Some(RegionCtl::Registered { .. })
    ));
    register(&b, "b:1#1");
    assert!(matches!(
        b.receive_one(ASK).await,
        Some(RegionCtl::Registered { .. })
    ));
    let b_key = b.actor_ref().path().to_string();
    // Give b a shard: ask for shards until one lands there.
    let mut at_b = None;
    for shard in 0..4 {
        coordinator.tell(CoordinatorMsg::GetShardHome {
            shard,
            region: other.actor_ref().clone(),
        });
        match other.receive_one(ASK).await {
            Some(RegionCtl::ShardHome { home, .. }) if home.path().to_string() == b_key => {
                at_b = Some(shard);
            }
            // Allocated to the asker itself.
            Some(RegionCtl::ShardHome { .. } | RegionCtl::HostShard { .. }) => {}
            msg => panic!("expected ShardHome or HostShard, got {msg:?}"),
        }
    }
    let at_b = at_b.expect("least-shards gives b a shard");
    // b's node restarts at the same address: same key, new incarnation.
    register(&b, "b:1#2");
    let mut told = false;
    while let Some(msg) = other.receive_one(Duration::from_secs(1)).await {
        if matches!(&msg, RegionCtl::RegionTerminated { region } if *region == b_key) {
            told = true;
        }
    }
    assert!(
        told,
        "the other region was not told the old incarnation is gone"
    );
    let d = ClusterSharding::distribution(&coordinator, ASK)
        .await
        .expect("distribution");
    assert!(
        d.regions.contains_key(&b_key),
        "new incarnation registered: {d:?}"
    );
    assert!(
        d.regions.values().any(|s| s.contains(&at_b)),
        "the old incarnation's shard was re-homed: {d:?}"
    );
    system.terminate().await;
}

/// The coordinator's internal messages (timers, watches, storage results) are local only: a
/// peer can neither encode nor send one (e.g. a forged "region terminated").
#[test]
fn internal_coordinator_messages_do_not_cross_the_wire() {
    assert!(postcard::to_allocvec(&CoordinatorMsg::Rebalance).is_err());
    assert!(
        postcard::to_allocvec(&CoordinatorMsg::RegionTerminated { region: "r".into() }).is_err()
    );
    // Variant 7 is RegionTerminated (after the seven public requests), followed by a one-byte string.
    let forged = [7u8, 1, b'r'];
    assert!(postcard::from_bytes::<CoordinatorMsg>(&forged).is_err());
    // The public requests still round-trip.
    let bytes = postcard::to_allocvec(&CoordinatorMsg::ShardStopped {
        shard: 3,
        entities: vec!["e".into()],
    })
    .expect("encode");
    assert!(matches!(
        postcard::from_bytes::<CoordinatorMsg>(&bytes),
        Ok(CoordinatorMsg::ShardStopped { shard: 3, .. })
    ));
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $test() {
                    super::$test(super::Backend::Memory).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(start_paused = true)]
                async fn $test() {
                    super::$test(super::Backend::Sqlite).await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_grant_past_its_local_deadline_does_not_activate_the_shard,
    the_lock_ttl_is_checked_against_the_storage,
    a_region_whose_lock_ttl_outlives_the_storage_never_serves,
    a_shard_restarted_while_its_old_actor_stops_gets_every_message,
    a_passivating_entity_buffers_at_most_its_bound,
    a_region_restarted_at_the_same_address_replaces_the_old_incarnation,
);
