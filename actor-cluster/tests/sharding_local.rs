//! Sharding on one node (no remoting), once on the in-memory runner storage and once on
//! SQLite: shard-lock refusal, passivation with buffered messages, idle passivation, the
//! region's bounded buffer and its one-question-per-shard cache.

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::sharding::{
    ClusterSharding, CoordinatorMsg, RegionCtl, ShardMapChanged, ShardingError, ShardingSettings,
    default_shard_id, runner_id,
};
use actor_coordination::runner_storage::{RunnerAddress, RunnerId, ShardId};
use actor_core::ActorSystem;
use actor_testkit::TestProbe;
use parking_lot::Mutex;
use sharding_support::{
    ASK, Backend, Cmd, Counter, Event, LOCAL_WAIT as WAIT, LOCK_TTL, Log, Storage, TYPE, add,
    await_event, entity_of, get, get_eventually, is_stopped, is_stopping, on_both_backends,
    register_probe, settings, start_flaky_local, start_local, start_probe_region, starts,
};

async fn lock_refused_while_another_runner_holds_the_shard(backend: Backend) {
    let storage = Storage::open(backend).await;
    let local = start_local(settings(&storage).build().expect("settings"));
    // The coordinator is up (it read the empty lock table) once any entity answers.
    let warm_up = "w";
    assert_ne!(default_shard_id(warm_up, 12), default_shard_id("x", 12));
    get(&local.region, warm_up).await;
    // Now another runner takes the lock of x's shard.
    let shard = ShardId::new(TYPE, default_shard_id("x", 12)).expect("shard id");
    let other = RunnerId::new(RunnerAddress::new("other", 1).expect("address"), 7);
    assert_eq!(
        storage
            .storage
            .acquire(&other, std::slice::from_ref(&shard))
            .await
            .expect("acquire"),
        vec![shard.clone()]
    );
    local.region.tell(add("x", 1));
    let refused = local
        .region
        .actor_ref()
        .ask(
            |reply| Cmd::Get {
                id: "x".into(),
                reply,
            },
            ASK,
        )
        .await;
    assert!(
        refused.is_err(),
        "answered while another runner held the lock"
    );
    assert!(
        starts(&local.log, "x").is_empty(),
        "entity started without the lock"
    );
    // The shard runs here (buffering), but holds no entity.
    let state = local.region.state(ASK).await.expect("state");
    assert_eq!(state.shards.get(&shard.number()), Some(&0), "{state:?}");

    storage
        .storage
        .release(&other, &shard)
        .await
        .expect("release");
    let reading = get_eventually(&local.region, "x", WAIT).await;
    assert_eq!(reading.value, 1, "the buffered message was delivered");
    let me = runner_id(&local.system).expect("runner id");
    let locks = storage.storage.list_locks().await.expect("locks");
    assert!(
        locks.iter().any(|l| l.shard == shard && l.holder == me),
        "{locks:?}"
    );
    local.system.terminate().await;
}

async fn passivation_buffers_messages(backend: Backend) {
    let storage = Storage::open(backend).await;
    let local = start_local(settings(&storage).build().expect("settings"));
    local.region.tell(add("p", 1));
    assert_eq!(get(&local.region, "p").await.value, 1);
    local.region.tell(Cmd::Passivate { id: "p".into() });
    // Once the entity has its stop message (it flushes for a second), send more.
    await_event(&local.log, "stop message of p", |e| is_stopping(e, "p")).await;
    local.region.tell(add("p", 2));
    local.region.tell(add("p", 3));
    let reading = get(&local.region, "p").await;
    assert_eq!(
        reading.value, 5,
        "a fresh instance got both buffered messages"
    );
    assert_eq!(starts(&local.log, "p").len(), 2);
    let events: Vec<Event> = local.log.lock().clone();
    let stopped_at = events
        .iter()
        .position(|e| matches!(e, Event::Stopped { id, .. } if id == "p"))
        .expect("stopped");
    let got_2 = events
        .iter()
        .position(|e| matches!(e, Event::Got { id, n: 2, .. } if id == "p"))
        .expect("got 2");
    assert!(
        stopped_at < got_2,
        "buffered message reached the old instance"
    );
    local.system.terminate().await;
}

async fn idle_entities_are_passivated(backend: Backend) {
    let storage = Storage::open(backend).await;
    let local = start_local(
        settings(&storage)
            .with_passivation_idle_timeout(Duration::from_secs(10))
            .build()
            .expect("settings"),
    );
    local.region.tell(add("idle", 4));
    assert_eq!(get(&local.region, "idle").await.value, 4);
    await_event(&local.log, "idle stop", |e| is_stopped(e, "idle")).await;
    assert_eq!(
        get(&local.region, "idle").await.value,
        0,
        "a fresh instance"
    );
    assert_eq!(starts(&local.log, "idle").len(), 2);
    local.system.terminate().await;
}

async fn region_buffers_bounded_and_asks_once_per_shard(backend: Backend) {
    let storage = Storage::open(backend).await;
    let probe = start_probe_region(settings(&storage).with_buffer_size(5)).await;
    let (system, region, ctl, coordinator) =
        (&probe.system, &probe.region, &probe.ctl, &probe.coordinator);
    let dead_before = system.dead_letter_count();
    for n in 1..=8 {
        region.tell(add("b", n));
    }
    let shard = match coordinator.receive_one(ASK).await {
        Some(CoordinatorMsg::GetShardHome { shard, .. }) => shard,
        other => panic!("expected GetShardHome, got {other:?}"),
    };
    assert_eq!(shard, default_shard_id("b", 12));
    let dead = system.dead_letter_count() - dead_before;
    assert!(
        dead >= 3,
        "three messages over the bound went to dead letters, saw {dead}"
    );
    ctl.tell(RegionCtl::ShardHome {
        shard,
        home: ctl.clone(),
    });
    // The home answer takes two hops (control actor, region): until then the buffer is
    // full and a question is refused; ask until it is through.
    assert_eq!(
        get_eventually(region, "b", WAIT).await.value,
        1 + 2 + 3 + 4 + 5
    );
    // The home is cached: no second question for the shard.
    region.tell(add("b", 100));
    coordinator.expect_no_msg(Duration::from_secs(1)).await;
    assert_eq!(get(region, "b").await.value, 115);
    system.terminate().await;
}

/// Receives from `probe` until a message matches `want` (others are returned, in order).
async fn next_matching(
    probe: &TestProbe<RegionCtl>,
    mut want: impl FnMut(&RegionCtl) -> bool,
) -> (RegionCtl, Vec<RegionCtl>) {
    let mut skipped = Vec::new();
    loop {
        match probe.receive_one(ASK).await {
            Some(msg) if want(&msg) => return (msg, skipped),
            Some(msg) => skipped.push(msg),
            None => panic!("no matching message; got {skipped:?}"),
        }
    }
}

/// The coordinator's side of allocation and hand-off, with probes as regions: nothing is
/// allocated before `min_regions` registered; a rebalance tells every region
/// `BeginHandOff`, sends `HandOff` to the old home only after every region acknowledged, and
/// starts the shard at its new home only after the old home reported it stopped.
async fn coordinator_allocates_after_min_regions_and_hands_off_in_order(backend: Backend) {
    let storage = Storage::open(backend).await;
    let system = ActorSystem::new("local").expect("system");
    let coordinator = ClusterSharding::get(&system)
        .spawn_coordinator(
            TYPE,
            &settings(&storage)
                .with_min_regions(2)
                .with_max_simultaneous_rebalance(1),
        )
        .expect("coordinator");
    let r1 = TestProbe::<RegionCtl>::new(&system);
    let r2 = TestProbe::<RegionCtl>::new(&system);
    register_probe(&coordinator, &r1, "h:1#1").await;
    for shard in 0..4 {
        coordinator.tell(CoordinatorMsg::GetShardHome {
            shard,
            region: r1.actor_ref().clone(),
        });
    }
    r1.expect_no_msg(Duration::from_secs(1)).await;

    // The second region: the deferred shards are allocated, least-shards.
    register_probe(&coordinator, &r2, "h:2#1").await;
    let d = ClusterSharding::distribution(&coordinator, ASK)
        .await
        .expect("distribution");
    assert_eq!(d.shard_count(), 4, "{d:?}");
    let loads: Vec<usize> = d.regions.values().map(|s| s.len()).collect();
    assert_eq!(loads, vec![2, 2], "least-shards: {d:?}");
    assert!(d.handing_off.is_empty());

    // r1 leaves: each of its shards is handed off.
    let r1_key = r1.actor_ref().path().to_string();
    let r1_shards: Vec<u32> = d.regions[&r1_key].iter().copied().collect();
    coordinator.tell(CoordinatorMsg::GracefulShutdown {
        region: r1.actor_ref().clone(),
    });
    let moving = r1_shards[0];
    let (_, _) = next_matching(
        &r1,
        |m| matches!(m, RegionCtl::BeginHandOff { shard } if *shard == moving),
    )
    .await;
    let (_, _) = next_matching(
        &r2,
        |m| matches!(m, RegionCtl::BeginHandOff { shard } if *shard == moving),
    )
    .await;
    // Only r1 acknowledged: no HandOff yet.
    coordinator.tell(CoordinatorMsg::BeginHandOffAck {
        shard: moving,
        region: r1_key.clone(),
    });
    let quiet = r1.receive_one(Duration::from_millis(500)).await;
    assert!(
        !matches!(quiet, Some(RegionCtl::HandOff { .. })),
        "HandOff before every ack: {quiet:?}"
    );
    coordinator.tell(CoordinatorMsg::BeginHandOffAck {
        shard: moving,
        region: r2.actor_ref().path().to_string(),
    });
    next_matching(
        &r1,
        |m| matches!(m, RegionCtl::HandOff { shard } if *shard == moving),
    )
    .await;
    // Not started at r2 before the old home reported it stopped.
    let early = r2.receive_one(Duration::from_millis(500)).await;
    assert!(
        !matches!(early, Some(RegionCtl::HostShard { shard, .. }) if shard == moving),
        "started before the old home stopped it"
    );
    // Its remembered entities (reported by the old home as they started) go to the new home.
    coordinator.tell(CoordinatorMsg::EntitiesChanged {
        shard: moving,
        region: r1_key.clone(),
        started: vec!["e1".into(), "e2".into()],
        stopped: vec!["e2".into()],
    });
    coordinator.tell(CoordinatorMsg::ShardStopped { shard: moving });
    let (host, _) = next_matching(
        &r2,
        |m| matches!(m, RegionCtl::HostShard { shard, .. } if *shard == moving),
    )
    .await;
    assert!(
        matches!(&host, RegionCtl::HostShard { entities, .. } if entities == &vec!["e1".to_owned()]),
        "remembered entities travel with the hand-off: {host:?}"
    );
    system.terminate().await;
}

/// A region whose lock refreshes fail fences its shard (stops its entities) by the local
/// deadline, while the lock is still valid in storage: before any other runner could take
/// it.
async fn a_region_that_cannot_refresh_fences_before_its_lock_expires(backend: Backend) {
    let storage = Storage::open(backend).await;
    let (local, flaky) = start_flaky_local(&storage, |s| s);
    let maps = TestProbe::<ShardMapChanged>::new(&local.system);
    local.system.event_stream().subscribe(maps.actor_ref());
    local.region.tell(add("f", 1));
    assert_eq!(get(&local.region, "f").await.value, 1);
    // The allocation of f's shard was published (after the registration's event).
    loop {
        let map = maps
            .receive_one(ASK)
            .await
            .expect("a ShardMapChanged event with f's shard");
        assert_eq!(map.type_name, TYPE);
        if map
            .distribution
            .home_of(default_shard_id("f", 12))
            .is_some()
        {
            break;
        }
    }

    let failing_since = tokio::time::Instant::now();
    flaky
        .fail_refresh
        .store(true, std::sync::atomic::Ordering::SeqCst);
    await_event(&local.log, "fence of f", |e| is_stopped(e, "f")).await;
    // Fenced within one ttl of the last successful refresh, which was before the failures.
    assert!(
        failing_since.elapsed() < LOCK_TTL,
        "{:?}",
        failing_since.elapsed()
    );
    let shard = ShardId::new(TYPE, default_shard_id("f", 12)).expect("shard id");
    let me = runner_id(&local.system).expect("runner id");
    let locks = storage.storage.list_locks().await.expect("locks");
    assert!(
        locks.iter().any(|l| l.shard == shard && l.holder == me),
        "fenced only after the lock expired: {locks:?}"
    );
    // Once the storage is back, the shard is acquired again and the entity answers.
    flaky
        .fail_refresh
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(get_eventually(&local.region, "f", WAIT).await.value, 0);
    local.system.terminate().await;
}

#[tokio::test(start_paused = true)]
async fn bad_type_names_settings_and_double_starts_are_typed_errors() {
    let storage = Storage::open(Backend::Memory).await;
    let system = ActorSystem::new("local").expect("system");
    let sharding = ClusterSharding::get(&system);
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let coordinator = sharding
        .spawn_coordinator(TYPE, &settings(&storage))
        .expect("coordinator");
    let start = |type_name: &str, s: ShardingSettings<Cmd>| {
        sharding.start_with_coordinator(
            type_name,
            Counter::factory("local", &log),
            s,
            entity_of,
            coordinator.clone(),
        )
    };
    assert!(matches!(
        start("bad name/x", settings(&storage)),
        Err(ShardingError::InvalidTypeName { name }) if name == "bad name/x"
    ));
    assert!(matches!(
        start(TYPE, settings(&storage).with_number_of_shards(0)),
        Err(ShardingError::InvalidSettings {
            field: "number_of_shards",
            ..
        })
    ));
    start(TYPE, settings(&storage)).expect("first start");
    assert!(matches!(
        start(TYPE, settings(&storage)),
        Err(ShardingError::AlreadyStarted { type_name }) if type_name == TYPE
    ));
    assert!(sharding.region::<Cmd>(TYPE).is_some());
    assert!(
        sharding.region::<String>(TYPE).is_none(),
        "another message type"
    );
    // Without a cluster the singleton coordinator cannot start.
    assert!(matches!(
        sharding.start(
            "other",
            Counter::factory("local", &log),
            settings(&storage),
            entity_of
        ),
        Err(ShardingError::Singleton(_))
    ));
    system.terminate().await;
}

on_both_backends!(
    lock_refused_while_another_runner_holds_the_shard,
    passivation_buffers_messages,
    idle_entities_are_passivated,
    region_buffers_bounded_and_asks_once_per_shard,
    coordinator_allocates_after_min_regions_and_hands_off_in_order,
    a_region_that_cannot_refresh_fences_before_its_lock_expires,
);
