//! Sharding robustness on one node (no remoting), on the in-memory runner storage and on
//! SQLite: a lock grant whose local deadline passed before it was used, the lock ttl checked
//! against the storage's, a shard restarted at the same region while its previous actor is
//! still stopping, the bound on the messages buffered for passivating entities, a region
//! restarted at the same address, a stop report after an aborted hand-off, and the
//! coordinator's local-only messages.

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actor_cluster::sharding::{
    ClusterSharding, CoordinatorMsg, MessageExtractor, REMEMBER_CHUNK_BYTES, RegionCtl,
    ShardingError, ShardingSettings, TTL_PROBE_GROUP, default_shard_id,
};
use actor_coordination::runner_storage::{RunnerAddress, RunnerId, ShardId};
use actor_core::{ActorRef, ActorSystem};
use actor_testkit::{TestProbe, await_assert};
use sharding_support::{
    ASK, Backend, Cmd, FlakyStorage, LOCAL_POLL, LOCAL_WAIT as WAIT, LOCK_TTL, Storage, TYPE, add,
    await_distribution, await_event, get_eventually, is_stopped, is_stopping, on_both_backends,
    received, register_probe, settings, settings_through, start_flaky_local, start_local,
    start_probe_region, starts,
};

/// H1 with the storage-call bound: an acquire call slower than the lock's local validity
/// (ttl - margin from when the call started) is given up at that bound and its grant never
/// used; the shard acquires again and serves on that fresh grant. (The pure lock state
/// machine's test covers a grant that returns in time but is handled after its deadline.)
async fn a_grant_past_its_local_deadline_does_not_activate_the_shard(backend: Backend) {
    let storage = Storage::open(backend).await;
    let (local, flaky) = start_flaky_local(&storage, |s| s);
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
    let probe = start_probe_region(settings(&storage)).await;
    let (region, ctl, log) = (&probe.region, &probe.ctl, &probe.log);
    let shard = default_shard_id("h", 12);
    region.tell(add("h", 1));
    match probe.coordinator.receive_one(ASK).await {
        Some(CoordinatorMsg::GetShardHome { shard: asked, .. }) => assert_eq!(asked, shard),
        other => panic!("expected GetShardHome, got {other:?}"),
    }
    ctl.tell(RegionCtl::ShardHome {
        shard,
        home: ctl.clone(),
    });
    assert_eq!(get_eventually(region, "h", WAIT).await.value, 1);
    let dead_before = probe.system.dead_letter_count();

    ctl.tell(RegionCtl::HandOff { shard });
    await_event(log, "stop message of h", |e| is_stopping(e, "h")).await;
    // The entity flushes for a second: the shard is handing off. It comes back here.
    probe.host(shard);
    region.tell(add("h", 2));
    region.tell(add("h", 3));
    // (Messages that beat the HostShard to the region ask where the shard lives.)
    probe.expect_shard_stopped(shard).await;
    region.tell(add("h", 4));
    let reading = get_eventually(region, "h", WAIT).await;
    assert_eq!(
        reading.value,
        2 + 3 + 4,
        "a fresh instance got every message"
    );
    assert_eq!(received(log, "h"), vec![1, 2, 3, 4]);
    assert_eq!(starts(log, "h").len(), 2);
    assert_eq!(
        probe.system.dead_letter_count(),
        dead_before,
        "dead letters"
    );
    probe.system.terminate().await;
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
    await_event(&local.log, "stop message of p", |e| is_stopping(e, "p")).await;
    // The entity flushes for a second (virtual): these wait at the shard.
    let dead_before = local.system.dead_letter_count();
    for n in [2, 3, 4, 5, 6] {
        local.region.tell(add("p", n));
    }
    await_event(&local.log, "stop of p", |e| is_stopped(e, "p")).await;
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
    register_probe(&coordinator, &other, "other:1#1").await;
    register_probe(&coordinator, &b, "b:1#1").await;
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
    // (b's probe still holds the HostShard of its first incarnation: no wait for the answer.)
    coordinator.tell(CoordinatorMsg::Register {
        region: b.actor_ref().clone(),
        runner: "b:1#2".to_owned(),
        proxy: false,
        hosted: Vec::new(),
    });
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

/// A coordinator, two probe regions registered with it, and shard 0 allocated.
struct TwoRegions {
    system: ActorSystem,
    coordinator: ActorRef<CoordinatorMsg>,
    /// Shard 0's home.
    home: TestProbe<RegionCtl>,
    /// The other region.
    other: TestProbe<RegionCtl>,
    /// The home's region key.
    home_key: String,
}

/// Spawns a coordinator with `settings` (two regions before the first allocation),
/// registers two probe regions and has shard 0 allocated.
async fn two_regions_with_shard_0(settings: ShardingSettings<Cmd>) -> TwoRegions {
    let system = ActorSystem::new("local").expect("system");
    let coordinator = ClusterSharding::get(&system)
        .spawn_coordinator(TYPE, &settings.with_min_regions(2))
        .expect("coordinator");
    let r1 = TestProbe::<RegionCtl>::new(&system);
    let r2 = TestProbe::<RegionCtl>::new(&system);
    register_probe(&coordinator, &r1, "h:1#1").await;
    register_probe(&coordinator, &r2, "h:2#1").await;
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
        (r1, r2)
    } else {
        (r2, r1)
    };
    TwoRegions {
        system,
        coordinator,
        home,
        other,
        home_key,
    }
}

/// H7: a shard's stop report that comes after its hand-off was aborted (timed out), or for a
/// shard never handed off, changes nothing: the shard stays where it is, and its remembered
/// entities are still the ones its home reported (stop reports no longer carry an entity
/// list; a late list used to be stored and sent with the next HostShard).
async fn a_stop_report_after_an_aborted_hand_off_is_ignored(backend: Backend) {
    let storage = Storage::open(backend).await;
    let TwoRegions {
        system,
        coordinator,
        home,
        other,
        home_key,
    } = two_regions_with_shard_0(settings(&storage).with_hand_off_timeout(Duration::from_secs(1)))
        .await;
    let (home, other) = (&home, &other);
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
    // The home reported an entity of shard 0 remembered (before the hand-off began); then
    // its stop report comes late, and a stop report comes for a shard never handed off.
    coordinator.tell(CoordinatorMsg::EntitiesChanged {
        shard: 0,
        region: home_key.clone(),
        started: vec!["kept".into()],
        stopped: Vec::new(),
    });
    coordinator.tell(CoordinatorMsg::ShardStopped { shard: 0 });
    coordinator.tell(CoordinatorMsg::ShardStopped { shard: 7 });
    let d = await_distribution(&coordinator, WAIT, |_| Ok(())).await;
    assert_eq!(d.home_of(0), Some(home_key.as_str()), "{d:?}");
    assert!(d.handing_off.is_empty(), "{d:?}");
    // The home dies: shard 0 goes to the other region, with the remembered entity.
    home.actor_ref().stop();
    loop {
        match other.receive_one(WAIT).await {
            Some(RegionCtl::HostShard { shard: 0, entities }) => {
                assert_eq!(entities, vec!["kept".to_owned()]);
                break;
            }
            Some(_) => {}
            None => panic!("shard 0 never re-homed"),
        }
    }
    system.terminate().await;
}

/// A hand-off that times out after the old home was told to hand off (its entities were
/// slow to stop) leaves the shard there: the coordinator tells the home to host it again,
/// with its remembered entities, so they run again there once the old actor stopped.
/// (Before the fix the region had dropped its set at the hand-off and restarted the shard
/// empty: remembered entities stayed down until the shard's next move.)
async fn an_aborted_hand_off_restarts_the_remembered_entities_at_the_old_home(backend: Backend) {
    let storage = Storage::open(backend).await;
    let TwoRegions {
        system,
        coordinator,
        home,
        other,
        home_key,
    } = two_regions_with_shard_0(settings(&storage).with_hand_off_timeout(Duration::from_secs(1)))
        .await;
    let (home, other) = (&home, &other);
    while home.receive_one(Duration::from_millis(100)).await.is_some() {}
    coordinator.tell(CoordinatorMsg::EntitiesChanged {
        shard: 0,
        region: home_key.clone(),
        started: vec!["kept".into()],
        stopped: Vec::new(),
    });
    coordinator.tell(CoordinatorMsg::GracefulShutdown {
        region: home.actor_ref().clone(),
    });
    for probe in [home, other] {
        coordinator.tell(CoordinatorMsg::BeginHandOffAck {
            shard: 0,
            region: probe.actor_ref().path().to_string(),
        });
    }
    // The home is told to hand off, never answers, and the hand-off times out.
    let mut told_to_hand_off = false;
    loop {
        match home.receive_one(WAIT).await {
            Some(RegionCtl::HandOff { shard: 0 }) => told_to_hand_off = true,
            Some(RegionCtl::HostShard { shard: 0, entities }) => {
                assert!(told_to_hand_off, "hosted again before the hand-off");
                assert_eq!(entities, vec!["kept".to_owned()]);
                break;
            }
            Some(_) => {}
            None => panic!("the home was not told to host shard 0 again"),
        }
    }
    let d = await_distribution(&coordinator, WAIT, |_| Ok(())).await;
    assert_eq!(d.home_of(0), Some(home_key.as_str()), "{d:?}");
    assert!(d.handing_off.is_empty(), "{d:?}");
    system.terminate().await;
}

/// H5: refusal reports are answered from one lock-table read at a time, however many come
/// (after a crash every shard of the dead node is refused until its lock expires): six
/// refused shards held by a registered region cost at most two reads, and each reporter is
/// told the holder's region, which is told to host the shard.
async fn refused_shards_are_resolved_one_lock_table_read_at_a_time(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let system = ActorSystem::new("local").expect("system");
    let coordinator = ClusterSharding::get(&system)
        .spawn_coordinator(TYPE, &settings_through(&storage, &flaky))
        .expect("coordinator");
    let holder = TestProbe::<RegionCtl>::new(&system);
    let asker = TestProbe::<RegionCtl>::new(&system);
    let holder_id = RunnerId::new(RunnerAddress::new("holder", 1).expect("address"), 1);
    register_probe(&coordinator, &holder, &holder_id.to_string()).await;
    register_probe(&coordinator, &asker, "asker:1#1").await;
    let shards: Vec<u32> = (0..6).collect();
    let ids: Vec<ShardId> = shards
        .iter()
        .map(|n| ShardId::new(TYPE, *n).expect("shard id"))
        .collect();
    let got = storage
        .storage
        .acquire(&holder_id, &ids)
        .await
        .expect("acquire");
    assert_eq!(got.len(), shards.len());
    let reads_before = flaky.lists.load(Ordering::SeqCst);
    for &shard in &shards {
        coordinator.tell(CoordinatorMsg::ShardLockRefused {
            shard,
            region: asker.actor_ref().clone(),
        });
    }
    let holder_key = holder.actor_ref().path().to_string();
    let mut told = BTreeSet::new();
    while told.len() < shards.len() {
        match asker.receive_one(WAIT).await {
            Some(RegionCtl::ShardHome { shard, home }) => {
                assert_eq!(home.path().to_string(), holder_key, "shard {shard}");
                told.insert(shard);
            }
            other => panic!("expected ShardHome, got {other:?}"),
        }
    }
    let mut hosted = BTreeSet::new();
    while hosted.len() < shards.len() {
        match holder.receive_one(WAIT).await {
            Some(RegionCtl::HostShard { shard, .. }) => {
                hosted.insert(shard);
            }
            other => panic!("expected HostShard, got {other:?}"),
        }
    }
    let reads = flaky.lists.load(Ordering::SeqCst) - reads_before;
    assert!(reads <= 2, "{reads} lock-table reads for six reports");
    let d = await_distribution(&coordinator, WAIT, |_| Ok(())).await;
    assert!(
        shards
            .iter()
            .all(|s| d.home_of(*s) == Some(holder_key.as_str())),
        "{d:?}"
    );
    system.terminate().await;
}

/// Two regions that report the same shard refused while a lock-table read is under way are
/// both told where it lives once the next read answers. (Before the fix only the latest
/// reporter was kept: the other waited for its next report, REFUSALS_BEFORE_REPORT more
/// refused acquires later.)
async fn every_region_reporting_a_refused_shard_is_answered(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    let system = ActorSystem::new("local").expect("system");
    let coordinator = ClusterSharding::get(&system)
        .spawn_coordinator(TYPE, &settings_through(&storage, &flaky))
        .expect("coordinator");
    let holder = TestProbe::<RegionCtl>::new(&system);
    let first = TestProbe::<RegionCtl>::new(&system);
    let second = TestProbe::<RegionCtl>::new(&system);
    let third = TestProbe::<RegionCtl>::new(&system);
    let holder_id = RunnerId::new(RunnerAddress::new("holder", 1).expect("address"), 1);
    register_probe(&coordinator, &holder, &holder_id.to_string()).await;
    for (i, probe) in [&first, &second, &third].into_iter().enumerate() {
        register_probe(&coordinator, probe, &format!("asker:{}#1", i + 1)).await;
    }
    let id = ShardId::new(TYPE, 0).expect("shard id");
    let got = storage
        .storage
        .acquire(&holder_id, std::slice::from_ref(&id))
        .await
        .expect("acquire");
    assert_eq!(got, vec![id.clone()]);
    // The holder keeps its lock (as its region would) while the test waits for reads.
    let keeper = {
        let (storage, holder_id) = (storage.storage.clone(), holder_id.clone());
        tokio::spawn(async move {
            loop {
                let _ = storage.refresh(&holder_id, std::slice::from_ref(&id)).await;
                tokio::time::sleep(LOCK_TTL / 4).await;
            }
        })
    };
    // The first report's read hangs (given up after one lock ttl); two more reports of the
    // same shard come meanwhile and wait for the next read.
    flaky.hang_list_locks.store(true, Ordering::SeqCst);
    coordinator.tell(CoordinatorMsg::ShardLockRefused {
        shard: 0,
        region: first.actor_ref().clone(),
    });
    sharding_support::await_count(&flaky.hung, 1, "hung reads").await;
    flaky.hang_list_locks.store(false, Ordering::SeqCst);
    for probe in [&second, &third] {
        coordinator.tell(CoordinatorMsg::ShardLockRefused {
            shard: 0,
            region: probe.actor_ref().clone(),
        });
    }
    let holder_key = holder.actor_ref().path().to_string();
    for (name, probe) in [("second", &second), ("third", &third)] {
        match probe.receive_one(WAIT).await {
            Some(RegionCtl::ShardHome { shard: 0, home }) => {
                assert_eq!(home.path().to_string(), holder_key, "{name}");
            }
            other => panic!("{name}: expected ShardHome, got {other:?}"),
        }
    }
    keeper.abort();
    system.terminate().await;
}

/// Shard numbers at or above `number_of_shards` from a peer (a buggy region, or a custom
/// extractor breaking its contract) are refused: they neither enter the distribution nor get
/// a home, and the coordinator keeps serving the valid ones. (Before the fix any `u32` was
/// taken: a reported or asked-for shard 5000 became a phantom shard with a home.)
async fn shard_numbers_out_of_range_are_refused(backend: Backend) {
    let storage = Storage::open(backend).await;
    let system = ActorSystem::new("local").expect("system");
    let coordinator = ClusterSharding::get(&system)
        .spawn_coordinator(TYPE, &settings(&storage))
        .expect("coordinator");
    let region = TestProbe::<RegionCtl>::new(&system);
    coordinator.tell(CoordinatorMsg::Register {
        region: region.actor_ref().clone(),
        runner: "r:1#1".into(),
        proxy: false,
        hosted: vec![3, 5000, u32::MAX],
    });
    match region.receive_one(ASK).await {
        Some(RegionCtl::Registered { .. }) => {}
        other => panic!("expected Registered, got {other:?}"),
    }
    for shard in [12, 5000] {
        coordinator.tell(CoordinatorMsg::GetShardHome {
            shard,
            region: region.actor_ref().clone(),
        });
    }
    coordinator.tell(CoordinatorMsg::GetShardHome {
        shard: 11,
        region: region.actor_ref().clone(),
    });
    loop {
        match region.receive_one(WAIT).await {
            Some(RegionCtl::ShardHome { shard, .. }) => {
                assert_eq!(shard, 11, "a home for an out-of-range shard");
                break;
            }
            Some(RegionCtl::HostShard { shard, .. }) => {
                assert!(shard < 12, "asked to host shard {shard}");
            }
            Some(_) => {}
            None => panic!("shard 11 got no home"),
        }
    }
    let d = await_distribution(&coordinator, WAIT, |_| Ok(())).await;
    let key = region.actor_ref().path().to_string();
    assert_eq!(
        d.regions.get(&key).cloned().unwrap_or_default(),
        BTreeSet::from([3, 11]),
        "{d:?}"
    );
    system.terminate().await;
}

/// Routes entity "bad" to shard 12, past the test settings' 12 shards (a broken extractor).
struct OutOfRange;

impl MessageExtractor<Cmd> for OutOfRange {
    fn entity_id(&self, msg: &Cmd) -> String {
        sharding_support::entity_of(msg)
    }

    fn shard_id(&self, entity_id: &str, number_of_shards: u32) -> u32 {
        if entity_id == "bad" {
            number_of_shards
        } else {
            default_shard_id(entity_id, number_of_shards)
        }
    }
}

/// A region whose extractor returns a shard out of range dead-letters the message instead of
/// asking the coordinator for that shard's home.
async fn a_region_drops_messages_its_extractor_puts_out_of_range(backend: Backend) {
    let storage = Storage::open(backend).await;
    let system = ActorSystem::new("local").expect("system");
    let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let coordinator = TestProbe::<CoordinatorMsg>::new(&system);
    let region = ClusterSharding::get(&system)
        .start_with_coordinator(
            TYPE,
            sharding_support::Counter::factory("local", &log),
            settings(&storage).build().expect("settings"),
            OutOfRange,
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
    region.tell(add("bad", 1));
    region.tell(add("good", 1));
    // Every home question over two seconds (unanswered, they are asked again every retry
    // interval): good's shard only.
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut asked = BTreeSet::new();
    while let Some(msg) = coordinator
        .receive_one(until.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        if let CoordinatorMsg::GetShardHome { shard, .. } = msg {
            asked.insert(shard);
        }
    }
    assert_eq!(asked, BTreeSet::from([default_shard_id("good", 12)]));
    system.terminate().await;
}

/// A shard re-homed to a region that is leaving (its lock is held there, but the coordinator
/// had it elsewhere when the graceful shutdown began) is handed off as well, so the region's
/// shutdown can finish. (Without it the shard stayed at the leaving region, which never got
/// its ShutdownDone.)
async fn a_shard_found_at_a_leaving_region_is_handed_off_too(backend: Backend) {
    let storage = Storage::open(backend).await;
    let system = ActorSystem::new("local").expect("system");
    let coordinator = ClusterSharding::get(&system)
        .spawn_coordinator(TYPE, &settings(&storage).with_min_regions(2))
        .expect("coordinator");
    let leaving = TestProbe::<RegionCtl>::new(&system);
    let other = TestProbe::<RegionCtl>::new(&system);
    let leaving_id = RunnerId::new(RunnerAddress::new("leaving", 1).expect("address"), 1);
    register_probe(&coordinator, &leaving, &leaving_id.to_string()).await;
    register_probe(&coordinator, &other, "other:1#1").await;
    // Shards 0 and 1 go to the two regions (least-shards); find the leaving one's.
    for shard in [0, 1] {
        coordinator.tell(CoordinatorMsg::GetShardHome {
            shard,
            region: other.actor_ref().clone(),
        });
    }
    let leaving_key = leaving.actor_ref().path().to_string();
    let d = await_distribution(&coordinator, WAIT, |d| {
        (d.shard_count() == 2)
            .then_some(())
            .ok_or("not allocated".into())
    })
    .await;
    let (at_leaving, at_other) = if d.home_of(0) == Some(leaving_key.as_str()) {
        (0, 1)
    } else {
        (1, 0)
    };
    // The leaving region's shutdown starts the hand-off of its shard (no one acknowledges:
    // it stays under way).
    coordinator.tell(CoordinatorMsg::GracefulShutdown {
        region: leaving.actor_ref().clone(),
    });
    // The other region's shard is really locked by the leaving region's runner: the other
    // region reports it refused, and it is re-homed to the leaving region...
    let lock = ShardId::new(TYPE, at_other).expect("shard id");
    storage
        .storage
        .acquire(&leaving_id, std::slice::from_ref(&lock))
        .await
        .expect("acquire");
    coordinator.tell(CoordinatorMsg::ShardLockRefused {
        shard: at_other,
        region: other.actor_ref().clone(),
    });
    // ...and handed off from there as well.
    let mut begun = BTreeSet::new();
    while !begun.contains(&at_other) {
        match other.receive_one(WAIT).await {
            Some(RegionCtl::BeginHandOff { shard }) => {
                begun.insert(shard);
            }
            Some(_) => {}
            None => panic!("no hand-off of shard {at_other}; began {begun:?}"),
        }
    }
    assert!(begun.contains(&at_leaving), "{begun:?}");
    let d = await_distribution(&coordinator, WAIT, |_| Ok(())).await;
    assert_eq!(d.handing_off, BTreeSet::from([0, 1]), "{d:?}");
    system.terminate().await;
}

/// A long remembered list goes to a shard's new home in messages of at most
/// `REMEMBER_CHUNK_BYTES` of ids (HostShard, then RememberEntities), none lost, so no message
/// exceeds the transport's frame limit.
async fn a_long_remembered_list_travels_in_bounded_chunks(backend: Backend) {
    let storage = Storage::open(backend).await;
    let TwoRegions {
        system,
        coordinator,
        home,
        other,
        home_key,
    } = two_regions_with_shard_0(settings(&storage)).await;
    // 1,000 ids of about 100 bytes: about 100 KiB, more than one chunk.
    let ids: BTreeSet<String> = (0..1000).map(|i| format!("{i:0>100}")).collect();
    let all: Vec<String> = ids.iter().cloned().collect();
    for part in all.chunks(100) {
        coordinator.tell(CoordinatorMsg::EntitiesChanged {
            shard: 0,
            region: home_key.clone(),
            started: part.to_vec(),
            stopped: Vec::new(),
        });
    }
    home.actor_ref().stop();
    let mut got = BTreeSet::new();
    let mut messages = 0;
    while got.len() < ids.len() {
        let entities = match other.receive_one(WAIT).await {
            Some(RegionCtl::HostShard { shard: 0, entities })
            | Some(RegionCtl::RememberEntities { shard: 0, entities }) => entities,
            Some(_) => continue,
            None => panic!("got {} of {} ids", got.len(), ids.len()),
        };
        messages += 1;
        let bytes: usize = entities.iter().map(String::len).sum();
        assert!(
            bytes <= REMEMBER_CHUNK_BYTES,
            "a message with {bytes} bytes of ids"
        );
        got.extend(entities);
    }
    assert_eq!(got, ids);
    assert!(messages >= 2, "{messages} messages");
    system.terminate().await;
}

/// A region told to host a shard with part of its remembered entities, and the rest in a
/// RememberEntities message, starts all of them without a message.
async fn remembered_entities_sent_after_host_shard_start_too(backend: Backend) {
    let storage = Storage::open(backend).await;
    let probe = start_probe_region(settings(&storage).with_remember_entities(true)).await;
    let shard = default_shard_id("a", 12);
    let same_shard: Vec<String> = (0..200)
        .map(|i| format!("e{i}"))
        .filter(|id| default_shard_id(id, 12) == shard)
        .take(3)
        .collect();
    assert_eq!(same_shard.len(), 3);
    probe.ctl.tell(RegionCtl::HostShard {
        shard,
        entities: vec![same_shard[0].clone()],
    });
    probe.ctl.tell(RegionCtl::RememberEntities {
        shard,
        entities: same_shard[1..].to_vec(),
    });
    let log = probe.log.clone();
    await_assert(
        || {
            let missing: Vec<&String> = same_shard
                .iter()
                .filter(|id| starts(&log, id).is_empty())
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("not started: {missing:?}"))
            }
        },
        WAIT,
        LOCAL_POLL,
    )
    .await;
    probe.system.terminate().await;
}

/// The coordinator's internal messages (timers, watches, storage results) are local only: a
/// peer can neither encode nor send one (e.g. a forged "region terminated").
#[test]
fn internal_coordinator_messages_do_not_cross_the_wire() {
    assert!(postcard::to_allocvec(&CoordinatorMsg::Rebalance).is_err());
    assert!(
        postcard::to_allocvec(&CoordinatorMsg::RegionTerminated { region: "r".into() }).is_err()
    );
    // The last public request is variant 7, so RegionTerminated is variant 8: forged, it
    // (followed by a one-byte string) does not decode.
    let last_public = postcard::to_allocvec(&CoordinatorMsg::EntitiesChanged {
        shard: 1,
        region: "r".into(),
        started: Vec::new(),
        stopped: Vec::new(),
    })
    .expect("encode");
    assert_eq!(last_public[0], 7);
    let forged = [8u8, 1, b'r'];
    assert!(postcard::from_bytes::<CoordinatorMsg>(&forged).is_err());
    // The public requests still round-trip.
    let bytes = postcard::to_allocvec(&CoordinatorMsg::ShardStopped { shard: 3 }).expect("encode");
    assert!(matches!(
        postcard::from_bytes::<CoordinatorMsg>(&bytes),
        Ok(CoordinatorMsg::ShardStopped { shard: 3 })
    ));
}

on_both_backends!(
    a_grant_past_its_local_deadline_does_not_activate_the_shard,
    the_lock_ttl_is_checked_against_the_storage,
    a_region_whose_lock_ttl_outlives_the_storage_never_serves,
    a_shard_restarted_while_its_old_actor_stops_gets_every_message,
    a_passivating_entity_buffers_at_most_its_bound,
    a_region_restarted_at_the_same_address_replaces_the_old_incarnation,
    a_stop_report_after_an_aborted_hand_off_is_ignored,
    an_aborted_hand_off_restarts_the_remembered_entities_at_the_old_home,
    refused_shards_are_resolved_one_lock_table_read_at_a_time,
    every_region_reporting_a_refused_shard_is_answered,
    shard_numbers_out_of_range_are_refused,
    a_region_drops_messages_its_extractor_puts_out_of_range,
    a_shard_found_at_a_leaving_region_is_handed_off_too,
    a_long_remembered_list_travels_in_bounded_chunks,
    remembered_entities_sent_after_host_shard_start_too,
);
