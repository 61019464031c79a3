//! T1: fencing at the refresh deadline across a partition, with the cut-off node alive.
//!
//! Three nodes a, b, c on one `InMemoryHub` under a paused clock; the coordinator on a. c is
//! cut off from a and b (both ways) and, at the same instant, loses its storage access
//! (acquires fail, refreshes, releases and lock-table reads hang), but keeps running: its
//! downing never decides, so it neither downs itself nor shuts down. The majority downs c,
//! re-homes its shards, and keeps sending to c's entities throughout. c's shards must fence
//! themselves at their refresh deadline (nothing else stops them), before the storage lets
//! their locks go; the entities then answer from a or b.
//!
//! Every entity start and stop is logged with its virtual time and node: no entity is ever
//! active on two nodes at once, and every one of c's entities answers from the majority
//! within [`RECOVERY_BOUND`] of the cut. Once on the in-memory runner storage and once on
//! SQLite.

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::ClusterSettings;
use actor_cluster::sharding::ClusterSharding;
use actor_cluster::{Address, InMemoryHub};
use cluster_support::{Node, address, await_all_up, isolate, start_node};
use parking_lot::Mutex;
use sharding_support::{
    Backend, Cmd, Event, FlakyStorage, LOCK_TTL, Log, Storage, TYPE, add, assert_never_two_at_once,
    assert_no_overlap_in_time, get_eventually, lives, settings, start_region,
};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(30);

/// The test settings' lock safety margin: c's shards fence this long before their locks
/// expire in the storage.
const MARGIN: Duration = Duration::from_secs(1);

/// How long after the cut every entity of c answers from a or b: c's locks expire at most
/// one lock ttl after the cut (c's last refresh started before it); the majority needs about
/// 2 s to notice c (500 ms acceptable heartbeat pause), 1 s stable-after to down it, and then
/// a retry interval (500 ms) for the refused acquire; plus one probe question (500 ms).
const RECOVERY_BOUND: Duration = Duration::from_secs(12);

/// Time between two rounds of traffic to c's entities during the partition.
const TRAFFIC_INTERVAL: Duration = Duration::from_millis(200);

/// The time a probe question may take (an unanswered one is asked again next round).
const PROBE_ASK: Duration = Duration::from_millis(500);

/// c's downing waits this long before deciding: in effect never, so c stays up, alone.
const NEVER: Duration = Duration::from_secs(3600);

/// The seeds a loop over runs uses (the node RNG seeds derive from them).
const SEEDS: u64 = 3;

async fn cut_off_holder_fences_by_its_deadline(backend: Backend, seed: u64) -> Duration {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let names = ["a", "b", "c"];
    let seeds: Vec<Address> = names.iter().map(|n| address(n)).collect();
    let nodes: Vec<Node> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut cluster = ClusterSettings::fast().with_seed_nodes(seeds.clone());
            if *name == "c" {
                cluster.downing = cluster.downing.with_stable_after(NEVER);
            }
            start_node(&hub, name, seed * 10 + i as u64 + 1, cluster)
        })
        .collect();
    let refs: Vec<&Node> = nodes.iter().collect();
    await_all_up(&refs, &seeds.iter().collect::<Vec<_>>()).await;

    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let flaky_c = FlakyStorage::new(storage.storage.clone());
    let base = || settings(&storage).with_min_regions(3);
    let coordinator = ClusterSharding::get(&nodes[0].system)
        .spawn_coordinator(TYPE, &base())
        .expect("coordinator");
    let path = coordinator.path().to_string();
    let regions: Vec<_> = nodes
        .iter()
        .zip(names)
        .map(|(node, name)| {
            let mut s = base();
            if name == "c" {
                s.storage = flaky_c.clone();
            }
            start_region(node, name, &path, &log, s)
        })
        .collect();

    let ids: Vec<String> = (0..24).map(|i| format!("entity-{i}")).collect();
    let mut on_c = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        regions[i % 2].tell(add(id, 1));
        if get_eventually(&regions[i % 2], id, WAIT).await.node == "c" {
            on_c.push(id.clone());
        }
    }
    assert!(!on_c.is_empty(), "seed {seed}: no entity on c");

    let cut = Instant::now();
    flaky_c.set_outage(true);
    isolate(&hub, &address("c"), &[&address("a"), &address("b")]);

    // Traffic from the majority to c's entities all through the partition, until each
    // answers from its new home.
    let mut answered: BTreeMap<String, Duration> = BTreeMap::new();
    let mut n = 1;
    while answered.len() < on_c.len() {
        assert!(
            cut.elapsed() <= RECOVERY_BOUND,
            "seed {seed}: after {:?} only {answered:?} of {on_c:?} answered",
            cut.elapsed()
        );
        let waiting: Vec<(usize, &String)> = on_c
            .iter()
            .enumerate()
            .filter(|(_, id)| !answered.contains_key(*id))
            .collect();
        for (k, id) in &waiting {
            n += 1;
            regions[k % 2].tell(add(id, n));
        }
        let probes = waiting.iter().map(|(k, id)| {
            let region = regions[(k + 1) % 2].actor_ref();
            async move {
                let id = (*id).clone();
                let reading = region
                    .ask(
                        |reply| Cmd::Get {
                            id: id.clone(),
                            reply,
                        },
                        PROBE_ASK,
                    )
                    .await;
                (id, reading)
            }
        });
        for (id, reading) in futures_util::future::join_all(probes).await {
            if let Ok(reading) = reading {
                assert_ne!(reading.node, "c", "seed {seed}: {id} answered from c");
                answered.insert(id, cut.elapsed());
            }
        }
        tokio::time::sleep(TRAFFIC_INTERVAL).await;
    }

    // c was never shut down: its entities stopped because their shards fenced, at the
    // refresh deadline (its last refresh started before the cut).
    assert!(!nodes[2].system.is_terminated(), "seed {seed}: c shut down");
    assert_no_overlap_in_time(&log);
    assert_never_two_at_once(&log);
    let all = lives(&log);
    for id in &on_c {
        let on_c_life = all
            .iter()
            .find(|l| &l.id == id && l.node == "c")
            .expect("a life on c");
        let stopped = on_c_life
            .to
            .unwrap_or_else(|| panic!("seed {seed}: {id} still runs on c"));
        assert!(
            stopped <= cut + LOCK_TTL - MARGIN,
            "seed {seed}: {id} on c stopped {:?} after the cut, past its deadline",
            stopped - cut
        );
        let elsewhere = all
            .iter()
            .find(|l| &l.id == id && l.node != "c")
            .unwrap_or_else(|| panic!("seed {seed}: {id} never restarted"));
        assert!(elsewhere.from >= stopped, "seed {seed}: {id}");
    }
    // Messages sent during the partition reached the new homes.
    let delivered = log
        .lock()
        .iter()
        .filter(|e| matches!(e, Event::Got { id, n, node } if on_c.contains(id) && *n > 1 && node != "c"))
        .count();
    assert!(
        delivered > 0,
        "seed {seed}: no message of the partition delivered"
    );
    let worst = answered.values().copied().max().unwrap_or_default();
    for node in &nodes {
        node.system.terminate().await;
    }
    worst
}

async fn over_seeds(backend: Backend) {
    let mut worst = Duration::ZERO;
    for seed in 1..=SEEDS {
        worst = worst.max(cut_off_holder_fences_by_its_deadline(backend, seed).await);
    }
    eprintln!("{backend:?}: worst time until every entity of c answered: {worst:?}");
    assert!(worst <= RECOVERY_BOUND, "{worst:?}");
}

#[tokio::test(start_paused = true)]
async fn memory_a_cut_off_holder_that_keeps_running_fences_at_its_refresh_deadline() {
    over_seeds(Backend::Memory).await;
}

#[tokio::test(start_paused = true)]
async fn sqlite_a_cut_off_holder_that_keeps_running_fences_at_its_refresh_deadline() {
    over_seeds(Backend::Sqlite).await;
}
