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
    ASK, Backend, Cmd, Counter, Event, FlakyStorage, LOCK_TTL, Log, Storage, TYPE,
    await_distribution, entity_of, get, get_eventually, received, settings, starts,
};
use tokio::sync::Notify;

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

/// H1 with the storage-call bound: an acquire call slower than the lock's local validity
/// (ttl - margin from when the call started) is given up at that bound and its grant never
/// used; the shard acquires again and serves on that fresh grant. (The pure lock state
/// machine's test covers a grant that returns in time but is handled after its deadline.)
async fn a_grant_past_its_local_deadline_does_not_activate_the_shard(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let mut s = settings(&storage);
    s.storage = flaky.clone();
    let local = start_local(s.build().expect("settings"));
    assert_ne!(default_shard_id("w", 12), default_shard_id("late", 12));
    get_eventually(&local.region, "w", WAIT).await;
    let before = flaky.acquires.load(Ordering::SeqCst);
    *flaky.slow_next_acquire.lock() = Some(LOCK_TTL);
    let sent_at = tokio::time::Instant::now();
    local.region.tell(add("late", 1));
    let reading = get_eventually(&local.region, "late", WAIT).await;
    assert_eq!(reading.value, 1, "the buffered message was delivered");
    assert_eq!(starts(&local.log, "late").len(), 1);
    assert!(
        sent_at.elapsed() >= LOCK_TTL - Duration::from_secs(1),
        "served before the slow call was given up: {:?}",
        sent_at.elapsed()
    );
    assert_eq!(
        flaky.acquires.load(Ordering::SeqCst) - before,
        1,
        "the slow call returned (it was not given up) or was used"
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

/// Waits until `log` has an event matching `want`.
async fn await_event(log: &Log, what: &str, want: impl Fn(&Event) -> bool) {
    let log = log.clone();
    await_assert(
        || {
            if log.lock().iter().any(&want) {
                Ok(())
            } else {
                Err(format!("no {what} yet"))
            }
        },
        WAIT,
        Duration::from_millis(10),
    )
    .await;
}

fn stops_of(log: &Log, id: &str) -> usize {
    log.lock()
        .iter()
        .filter(|e| matches!(e, Event::Stopped { id: i, .. } if i == id))
        .count()
}

fn local_over(storage: &Storage, flaky: &Arc<FlakyStorage>) -> Local {
    let mut s = settings(storage);
    s.storage = flaky.clone();
    start_local(s.build().expect("settings"))
}

/// A refresh call that never returns is given up after the lock validity: the shard fences
/// at its deadline as with a failed refresh, and once the storage answers again the region
/// refreshes again, so the restarted entity keeps running. (Before the fix the region stayed
/// "refreshing" for ever: every shard it started afterwards fenced one validity later.)
async fn a_hung_refresh_fences_the_shard_and_refreshing_resumes(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let local = local_over(&storage, &flaky);
    local.region.tell(add("f", 1));
    assert_eq!(get_eventually(&local.region, "f", WAIT).await.value, 1);
    let hung_at = tokio::time::Instant::now();
    flaky.hang_refresh.store(true, Ordering::SeqCst);
    await_event(
        &local.log,
        "stop of f",
        |e| matches!(e, Event::Stopped { id, .. } if id == "f"),
    )
    .await;
    assert!(hung_at.elapsed() < LOCK_TTL, "{:?}", hung_at.elapsed());
    assert!(flaky.hung.load(Ordering::SeqCst) >= 1, "no refresh hung");
    flaky.hang_refresh.store(false, Ordering::SeqCst);
    assert_eq!(get_eventually(&local.region, "f", WAIT).await.value, 0);
    // Three lock ttls later the same instance still runs: its lock is refreshed again.
    let stops = stops_of(&local.log, "f");
    let until = tokio::time::Instant::now() + LOCK_TTL * 3;
    while tokio::time::Instant::now() < until {
        assert_eq!(get_eventually(&local.region, "f", WAIT).await.value, 0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(stops_of(&local.log, "f"), stops, "fenced again: no refresh");
    local.system.terminate().await;
}

/// An acquire call that never returns is given up after the lock validity and retried: the
/// shard serves once the storage answers again. (Before the fix the acquire stayed "in
/// flight" for ever and the entity never answered.)
async fn a_hung_acquire_is_given_up_and_retried(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let local = local_over(&storage, &flaky);
    assert_ne!(default_shard_id("w", 12), default_shard_id("x", 12));
    get_eventually(&local.region, "w", WAIT).await;
    flaky.hang_acquire.store(true, Ordering::SeqCst);
    local.region.tell(add("x", 1));
    let hung = flaky.clone();
    await_assert(
        || {
            if hung.hung.load(Ordering::SeqCst) >= 1 {
                Ok(())
            } else {
                Err("the acquire did not hang yet")
            }
        },
        WAIT,
        Duration::from_millis(10),
    )
    .await;
    let recovered_at = tokio::time::Instant::now();
    flaky.hang_acquire.store(false, Ordering::SeqCst);
    assert_eq!(get_eventually(&local.region, "x", WAIT).await.value, 1);
    // The hung call is given up after the validity (ttl - margin), then retried.
    assert!(
        recovered_at.elapsed() <= LOCK_TTL + Duration::from_secs(1),
        "{:?}",
        recovered_at.elapsed()
    );
    local.system.terminate().await;
}

/// A release call that never returns does not hold up a hand-off: the shard reports it
/// stopped once the release timed out (the lock then expires on its own), and the shard
/// can start again here. (Before the fix the release blocked the shard's mailbox for ever
/// and the hand-off never finished.)
async fn a_hung_release_does_not_hold_up_the_hand_off(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let system = ActorSystem::new("local").expect("system");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let coordinator = TestProbe::<CoordinatorMsg>::new(&system);
    let mut s = settings(&storage);
    s.storage = flaky.clone();
    let region = ClusterSharding::get(&system)
        .start_with_coordinator(
            TYPE,
            Counter::factory("local", &log),
            s.build().expect("settings"),
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
    ctl.tell(RegionCtl::HostShard {
        shard,
        entities: Vec::new(),
    });
    region.tell(add("h", 1));
    assert_eq!(get_eventually(&region, "h", WAIT).await.value, 1);

    flaky.hang_release.store(true, Ordering::SeqCst);
    let handed_at = tokio::time::Instant::now();
    ctl.tell(RegionCtl::HandOff { shard });
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
    assert!(
        flaky.hung.load(Ordering::SeqCst) >= 1,
        "the release did not hang"
    );
    // The entity's stop (1 s) plus the release bound (the validity, ttl - margin).
    assert!(
        handed_at.elapsed() <= Duration::from_secs(1) + LOCK_TTL,
        "{:?}",
        handed_at.elapsed()
    );
    flaky.hang_release.store(false, Ordering::SeqCst);
    ctl.tell(RegionCtl::HostShard {
        shard,
        entities: Vec::new(),
    });
    assert_eq!(get_eventually(&region, "h", WAIT).await.value, 0);
    system.terminate().await;
}

/// Reading the lock table that never returns (at the coordinator's start and in the
/// region's ttl check) is given up after the lock ttl and read again: sharding serves once
/// the storage answers. (Before the fix the coordinator never finished its start and the
/// region never registered.)
async fn a_hung_lock_table_read_is_given_up_and_read_again(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    flaky.hang_list_locks.store(true, Ordering::SeqCst);
    let local = local_over(&storage, &flaky);
    local.region.tell(add("l", 1));
    let hung = flaky.clone();
    await_assert(
        || {
            // The coordinator's read and the region's ttl probe.
            if hung.hung.load(Ordering::SeqCst) >= 2 {
                Ok(())
            } else {
                Err("the reads did not hang yet")
            }
        },
        WAIT,
        Duration::from_millis(10),
    )
    .await;
    let recovered_at = tokio::time::Instant::now();
    flaky.hang_list_locks.store(false, Ordering::SeqCst);
    assert_eq!(get_eventually(&local.region, "l", WAIT).await.value, 1);
    // Each hung read is given up after one lock ttl, then retried within a retry interval.
    assert!(
        recovered_at.elapsed() <= LOCK_TTL + Duration::from_secs(2),
        "{:?}",
        recovered_at.elapsed()
    );
    local.system.terminate().await;
}

/// Remember-entities across a fence: a shard that fenced itself (its refreshes failed) comes
/// back in the same region once the storage answers again, and restarts its remembered
/// entity without a message.
async fn remembered_entities_restart_after_a_fence(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let mut s = settings(&storage).with_remember_entities(true);
    s.storage = flaky.clone();
    let local = start_local(s.build().expect("settings"));
    local.region.tell(add("m", 1));
    assert_eq!(get_eventually(&local.region, "m", WAIT).await.value, 1);
    flaky.fail_refresh.store(true, Ordering::SeqCst);
    await_event(
        &local.log,
        "stop of m",
        |e| matches!(e, Event::Stopped { id, .. } if id == "m"),
    )
    .await;
    flaky.fail_refresh.store(false, Ordering::SeqCst);
    let log = local.log.clone();
    await_assert(
        || {
            if starts(&log, "m").len() == 2 {
                Ok(())
            } else {
                Err("not restarted")
            }
        },
        WAIT,
        Duration::from_millis(10),
    )
    .await;
    assert_eq!(get(&local.region, "m").await.value, 0, "a fresh instance");
    local.system.terminate().await;
}

/// H7: a shard's stop report that comes after its hand-off was aborted (timed out) leaves
/// nothing behind: the entity list it carries is not remembered, so a later new home of the
/// shard is not told to start stale entities. (Before the fix the late list was stored and
/// sent with the next HostShard.)
async fn a_stop_report_after_an_aborted_hand_off_is_ignored(backend: Backend) {
    let storage = Storage::open(backend).await;
    let system = ActorSystem::new("local").expect("system");
    let coordinator = ClusterSharding::get(&system)
        .spawn_coordinator(
            TYPE,
            &settings(&storage)
                .with_min_regions(2)
                .with_hand_off_timeout(Duration::from_secs(1)),
        )
        .expect("coordinator");
    let r1 = TestProbe::<RegionCtl>::new(&system);
    let r2 = TestProbe::<RegionCtl>::new(&system);
    for (probe, runner) in [(&r1, "h:1#1"), (&r2, "h:2#1")] {
        coordinator.tell(CoordinatorMsg::Register {
            region: probe.actor_ref().clone(),
            runner: runner.to_owned(),
            proxy: false,
            hosted: Vec::new(),
        });
        assert!(matches!(
            probe.receive_one(ASK).await,
            Some(RegionCtl::Registered { .. })
        ));
    }
    coordinator.tell(CoordinatorMsg::GetShardHome {
        shard: 0,
        region: r1.actor_ref().clone(),
    });
    let d = await_distribution(&coordinator, WAIT, |d| {
        d.home_of(0)
            .map(|_| ())
            .ok_or("shard 0 not allocated".into())
    })
    .await;
    let home_key = d.home_of(0).expect("home").to_owned();
    let (home, other) = if r1.actor_ref().path().to_string() == home_key {
        (&r1, &r2)
    } else {
        (&r2, &r1)
    };
    // The home leaves: the hand-off of shard 0 starts, every region acknowledges, the home
    // is told to hand off and never answers: the hand-off is aborted.
    coordinator.tell(CoordinatorMsg::GracefulShutdown {
        region: home.actor_ref().clone(),
    });
    for probe in [home, other] {
        coordinator.tell(CoordinatorMsg::BeginHandOffAck {
            shard: 0,
            region: probe.actor_ref().path().to_string(),
        });
    }
    await_distribution(&coordinator, WAIT, |d| {
        d.handing_off
            .is_empty()
            .then_some(())
            .ok_or("hand-off still running".into())
    })
    .await;
    coordinator.tell(CoordinatorMsg::ShardStopped {
        shard: 0,
        entities: vec!["stale".into()],
    });
    // The home dies: shard 0 goes to the other region, without the stale list.
    home.actor_ref().stop();
    loop {
        match other.receive_one(WAIT).await {
            Some(RegionCtl::HostShard { shard: 0, entities }) => {
                assert!(
                    entities.is_empty(),
                    "stale remembered entities: {entities:?}"
                );
                break;
            }
            Some(_) => {}
            None => panic!("shard 0 never re-homed"),
        }
    }
    system.terminate().await;
}

/// H7: a refresh answer about a shard actor that has been replaced since the refresh
/// started (the shard was handed off, released, and started again here) is not applied to
/// the new actor: the new one keeps serving. (Before the fix the answer, which no longer
/// listed the shard, fenced the new actor at once.)
async fn a_refresh_answer_for_a_replaced_shard_actor_leaves_the_new_one_alone(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let system = ActorSystem::new("local").expect("system");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let coordinator = TestProbe::<CoordinatorMsg>::new(&system);
    let mut s = settings(&storage);
    s.storage = flaky.clone();
    let region = ClusterSharding::get(&system)
        .start_with_coordinator(
            TYPE,
            Counter::factory("local", &log),
            s.build().expect("settings"),
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
    let host = || RegionCtl::HostShard {
        shard,
        entities: Vec::new(),
    };
    ctl.tell(host());
    region.tell(add("h", 1));
    assert_eq!(get_eventually(&region, "h", WAIT).await.value, 1);

    // The next refresh (asking for the first actor) waits before it reaches the storage.
    let (reach, answer) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    *flaky.refresh_gate.lock() = Some((reach.clone(), answer.clone()));
    let gated = |stage: u64| {
        let flaky = flaky.clone();
        move || {
            if flaky.gated.load(Ordering::SeqCst) == stage {
                Ok(())
            } else {
                Err(format!("refresh not at stage {stage}"))
            }
        }
    };
    await_assert(gated(1), WAIT, Duration::from_millis(10)).await;
    // Meanwhile the shard is handed off: its lock is released.
    ctl.tell(RegionCtl::HandOff { shard });
    loop {
        match coordinator.receive_one(WAIT).await {
            Some(CoordinatorMsg::ShardStopped { .. }) => break,
            Some(CoordinatorMsg::GetShardHome { .. } | CoordinatorMsg::EntitiesChanged { .. }) => {}
            other => panic!("expected ShardStopped, got {other:?}"),
        }
    }
    // The refresh reaches the storage now: the shard is not held, so it is not returned.
    reach.notify_one();
    await_assert(gated(2), WAIT, Duration::from_millis(10)).await;
    // The shard comes back here; a new actor takes the lock and serves.
    ctl.tell(host());
    region.tell(add("h", 2));
    assert_eq!(get_eventually(&region, "h", WAIT).await.value, 2);
    let stops = log
        .lock()
        .iter()
        .filter(|e| matches!(e, Event::Stopped { id, .. } if id == "h"))
        .count();
    // The stale answer arrives.
    answer.notify_one();
    // Over two refresh intervals the new instance keeps running and serving.
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < until {
        assert_eq!(get_eventually(&region, "h", WAIT).await.value, 2);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stops_after = log
        .lock()
        .iter()
        .filter(|e| matches!(e, Event::Stopped { id, .. } if id == "h"))
        .count();
    assert_eq!(
        stops_after, stops,
        "the new actor was fenced by the old answer"
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
    a_hung_refresh_fences_the_shard_and_refreshing_resumes,
    a_hung_acquire_is_given_up_and_retried,
    a_hung_release_does_not_hold_up_the_hand_off,
    a_hung_lock_table_read_is_given_up_and_read_again,
    remembered_entities_restart_after_a_fence,
    a_stop_report_after_an_aborted_hand_off_is_ignored,
    a_refresh_answer_for_a_replaced_shard_actor_leaves_the_new_one_alone,
);
