//! H5: a shard reaches one home even when the lock table a new coordinator read missed it.
//! Once on the in-memory runner storage and once on SQLite, across in-memory cluster nodes
//! under a paused clock: a shard locked just after the new coordinator listed the locks is
//! reported by its region when it registers again, and a shard allocated to a region whose
//! lock is refused (another runner holds it) is re-homed to the holder. Allocation is
//! steered with the [`Prefer`] strategy, so the test decides where the coordinator would put
//! a shard it does not know.

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::InMemoryHub;
use actor_cluster::cluster::ClusterSettings;
use actor_cluster::sharding::{
    ClusterSharding, RegionCtl, ShardRegion, default_shard_id, runner_id,
};
use actor_coordination::runner_storage::{RunnerId, ShardId};
use actor_testkit::await_assert;
use cluster_support::{Node, await_all_up, start_cluster};
use parking_lot::Mutex;
use sharding_support::{
    Backend, Cmd, FlakyStorage, Log, Prefer, Storage, TYPE, add, await_distribution,
    get_eventually, on_both_backends, received, settings, start_region, starts, stop_and_wait,
};

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// How long a message may take to be answered once the shard has its one home: a few retry
/// intervals (500 ms) for the refusal reports and the re-homing, far below the lock ttl.
const ANSWER_BOUND: Duration = Duration::from_secs(10);

async fn cluster(hub: &InMemoryHub, names: &[&str]) -> Vec<Node> {
    let nodes = start_cluster(hub, names, &ClusterSettings::fast());
    let refs: Vec<&Node> = nodes.iter().collect();
    let addresses: Vec<_> = nodes.iter().map(|n| &n.address).collect();
    await_all_up(&refs, &addresses).await;
    nodes
}

/// Waits until `runner` holds `shard`'s lock.
async fn await_lock(storage: &Storage, shard: &ShardId, runner: &RunnerId) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let locks = storage.storage.list_locks().await.expect("locks");
        if locks
            .iter()
            .any(|l| &l.shard == shard && &l.holder == runner)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{runner} never locked {shard}: {locks:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Every region reads entity `id` from node `home` with `total` after `sent` messages.
async fn one_home(regions: &[ShardRegion<Cmd>], log: &Log, id: &str, home: &str, sent: &[u64]) {
    for region in regions {
        let reading = get_eventually(region, id, ANSWER_BOUND).await;
        assert_eq!(reading.node, home, "{id} answered from another home");
    }
    let log = log.clone();
    let want = sent.to_vec();
    await_assert(
        || {
            let got = received(&log, id);
            if got == want {
                Ok(())
            } else {
                Err(format!("{id} got {got:?}, sent {want:?}"))
            }
        },
        WAIT,
        POLL,
    )
    .await;
    assert_eq!(starts(&log, id), vec![home.to_owned()], "{id}");
}

/// The old coordinator gives shard s to a; a's acquire is slow, so the new coordinator
/// (which prefers c for unknown shards) lists the locks before a holds s. Then c asks for s.
/// Before the fix the new coordinator allocated s to c: c's messages waited at c's shard,
/// refused for ever, while a and b sent theirs to a. Now a reports s when it registers with
/// the new coordinator, and every message reaches a.
async fn a_shard_locked_after_the_new_coordinator_listed_the_locks_keeps_one_home(
    backend: Backend,
) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let nodes = cluster(&hub, &["a", "b", "c"]).await;
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let slow_a = FlakyStorage::new(storage.storage.clone());
    let base = || settings(&storage).with_min_regions(3);
    let coordinator = ClusterSharding::get(&nodes[0].system)
        .spawn_coordinator(
            TYPE,
            &base().with_allocation_strategy(Arc::new(Prefer("@a:"))),
        )
        .expect("coordinator");
    let path = coordinator.path().to_string();
    let regions: Vec<ShardRegion<Cmd>> = nodes
        .iter()
        .zip(["a", "b", "c"])
        .map(|(node, name)| {
            let mut s = base();
            if name == "a" {
                s.storage = slow_a.clone();
            }
            start_region(node, name, &path, &log, s)
        })
        .collect();
    await_distribution(&coordinator, WAIT, |d| {
        (d.regions.len() == 3)
            .then_some(())
            .ok_or("not all registered".into())
    })
    .await;

    let id = "e";
    let shard = default_shard_id(id, 12);
    *slow_a.slow_next_acquire.lock() = Some(Duration::from_secs(3));
    regions[1].tell(add(id, 1));
    // a starts s (allocated by the old coordinator) and is still acquiring its lock.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !regions[0]
        .state(Duration::from_secs(1))
        .await
        .is_ok_and(|s| s.shards.contains_key(&shard))
    {
        assert!(tokio::time::Instant::now() < deadline, "a never started s");
        tokio::time::sleep(POLL).await;
    }
    stop_and_wait(&coordinator).await;
    let lock_id = ShardId::new(TYPE, shard).expect("shard id");
    assert!(
        !storage
            .storage
            .list_locks()
            .await
            .expect("locks")
            .iter()
            .any(|l| l.shard == lock_id),
        "s must not be locked before the new coordinator reads the table"
    );
    let coordinator = ClusterSharding::get(&nodes[0].system)
        .spawn_coordinator(
            TYPE,
            &base().with_allocation_strategy(Arc::new(Prefer("@c:"))),
        )
        .expect("new coordinator");
    // a registers again and reports s (still acquiring): the new coordinator knows s is at
    // a before anyone asks.
    await_distribution(&coordinator, WAIT, |d| {
        let a_has_s = d.home_of(shard).is_some_and(|k| k.contains("@a:"));
        (d.regions.len() == 3 && a_has_s)
            .then_some(())
            .ok_or("not all registered again with their shards".into())
    })
    .await;
    // a's lock is taken now, after the new coordinator's read.
    let a_runner = runner_id(&nodes[0].system).expect("runner id");
    await_lock(&storage, &lock_id, &a_runner).await;

    regions[2].tell(add(id, 2));
    regions[0].tell(add(id, 3));
    regions[1].tell(add(id, 4));
    let order = [regions[2].clone(), regions[0].clone(), regions[1].clone()];
    one_home(&order, &log, id, "a", &[1, 2, 3, 4]).await;
    let d = ClusterSharding::distribution(&coordinator, WAIT)
        .await
        .expect("distribution");
    let home = d.home_of(shard).unwrap_or_default();
    assert!(home.contains("@a:"), "s allocated to {home:?}: {d:?}");
    for node in &nodes {
        node.system.terminate().await;
    }
}

/// a hosts shard s and holds its lock, but the coordinator does not know (as when a started
/// s on the previous coordinator's word after registering with this one), so it allocates s
/// to c when c asks. c's shard is refused its lock a few times, c reports it, the
/// coordinator reads the holder again and re-homes s to a: c gives its shard up and its
/// buffered messages go to a. Before the fix c's messages waited at c's refused shard for
/// ever.
async fn a_shard_refused_its_lock_moves_to_the_region_holding_it(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let nodes = cluster(&hub, &["a", "c"]).await;
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let base = || settings(&storage).with_min_regions(2);
    let coordinator = ClusterSharding::get(&nodes[0].system)
        .spawn_coordinator(
            TYPE,
            &base().with_allocation_strategy(Arc::new(Prefer("@c:"))),
        )
        .expect("coordinator");
    let path = coordinator.path().to_string();
    let regions: Vec<ShardRegion<Cmd>> = nodes
        .iter()
        .zip(["a", "c"])
        .map(|(node, name)| start_region(node, name, &path, &log, base()))
        .collect();
    let d = await_distribution(&coordinator, WAIT, |d| {
        (d.regions.len() == 2)
            .then_some(())
            .ok_or("not all registered".into())
    })
    .await;
    let id = "r";
    let shard = default_shard_id(id, 12);
    let lock_id = ShardId::new(TYPE, shard).expect("shard id");
    let a_key = d
        .regions
        .keys()
        .find(|k| k.contains("@a:"))
        .expect("a's key");
    nodes[0]
        .system
        .lookup_str::<RegionCtl>(a_key)
        .expect("a's control actor")
        .tell(RegionCtl::HostShard {
            shard,
            entities: Vec::new(),
        });
    let a_runner = runner_id(&nodes[0].system).expect("runner id");
    await_lock(&storage, &lock_id, &a_runner).await;

    regions[1].tell(add(id, 1));
    regions[0].tell(add(id, 2));
    one_home(
        &[regions[1].clone(), regions[0].clone()],
        &log,
        id,
        "a",
        &[1, 2],
    )
    .await;
    let d = ClusterSharding::distribution(&coordinator, WAIT)
        .await
        .expect("distribution");
    assert!(
        d.home_of(shard).is_some_and(|k| k.contains("@a:")),
        "s re-homed to a: {d:?}"
    );
    let c_state = regions[1].state(WAIT).await.expect("state");
    assert!(
        !c_state.shards.contains_key(&shard),
        "c gave its shard up: {c_state:?}"
    );
    for node in &nodes {
        node.system.terminate().await;
    }
}

on_both_backends!(
    a_shard_locked_after_the_new_coordinator_listed_the_locks_keeps_one_home,
    a_shard_refused_its_lock_moves_to_the_region_holding_it,
);
