//! Sharding across in-memory cluster nodes under a paused clock, once on the in-memory runner
//! storage and once on SQLite: allocation, hand-off during traffic (nothing lost, never on
//! two nodes), region death and reallocation, the coordinator rebuilding its map from the
//! lock table, graceful leave with remembered entities.

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actor_cluster::InMemoryHub;
use actor_cluster::cluster::ClusterSettings;
use actor_cluster::remote::Remoting;
use actor_cluster::sharding::{ClusterSharding, ShardDistribution, runner_id};
use actor_testkit::await_assert;
use cluster_support::{address, await_all_up, isolate, start_node};
use sharding_support::{
    ASK, Backend, Cmd, Event, Log, PathForwarder, Reading, Sharded, Storage, TYPE,
    assert_never_two_at_once, await_distribution, entity_of, get, get_eventually, on_both_backends,
    received, settings, start_region, start_sharded, starts,
};

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("entity-{i}")).collect()
}

async fn distribution(sharded: &Sharded) -> ShardDistribution {
    ClusterSharding::distribution(&sharded.coordinator, ASK)
        .await
        .expect("distribution")
}

/// Waits until each of `ids` was started again, last on another node than `gone`.
async fn await_restarted_elsewhere(log: &Log, ids: &[&String], gone: &str) {
    await_assert(
        || {
            for id in ids {
                let s = starts(log, id);
                if s.len() < 2 || s.last().map(String::as_str) == Some(gone) {
                    return Err(format!("{id} not restarted elsewhere: {s:?}"));
                }
            }
            Ok(())
        },
        WAIT,
        POLL,
    )
    .await;
}

async fn shutdown(sharded: Sharded) {
    for node in &sharded.nodes {
        node.system.terminate().await;
    }
}

async fn allocation_spreads_and_every_region_agrees(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    // Every region is there before the first allocation: no rebalance (which would restart
    // entities without their state) while the values are read. Regions register only after
    // their storage ttl check, which takes real time on SQLite.
    let sharded = start_sharded(&hub, &["a", "b", "c"], || {
        settings(&storage).with_min_regions(3)
    })
    .await;
    let ids = ids(24);
    for (i, id) in ids.iter().enumerate() {
        sharded.regions[i % 3].tell(Cmd::Add {
            id: id.clone(),
            n: 1,
        });
    }
    for (i, id) in ids.iter().enumerate() {
        // First through the region that sent the Add (its messages stay in order), then
        // through the others: a region that learnt the home sooner may otherwise overtake
        // an Add still waiting in the sender's buffer.
        let mut homes = BTreeSet::new();
        for k in 0..3 {
            let reading = get(&sharded.regions[(i + k) % 3], id).await;
            assert_eq!(reading.value, 1, "{id}");
            homes.insert(reading.node);
        }
        assert_eq!(homes.len(), 1, "{id} answered from {homes:?}");
    }
    let d = distribution(&sharded).await;
    assert_eq!(d.regions.len(), 3, "{d:?}");
    let loads: Vec<usize> = d.regions.values().map(BTreeSet::len).collect();
    let (min, max) = (loads.iter().min(), loads.iter().max());
    assert!(
        matches!((min, max), (Some(lo), Some(hi)) if hi - lo <= 1 && *lo > 0),
        "least-shards allocation: {loads:?}"
    );
    // Every allocated shard is locked by its region's runner.
    let locks = storage.storage.list_locks().await.expect("locks");
    assert_eq!(locks.len(), d.shard_count(), "{locks:?}");
    // Every node registered as a runner with its incarnation, and holds locks as it.
    let runners = storage.storage.get_runners().await.expect("runners");
    for node in &sharded.nodes {
        let me = runner_id(&node.system).expect("runner id");
        assert!(
            runners.iter().any(|(r, healthy)| r.id == me && *healthy),
            "{me} not registered: {runners:?}"
        );
        assert!(locks.iter().any(|l| l.holder == me), "{me} holds no lock");
    }
    assert_never_two_at_once(&sharded.log);
    shutdown(sharded).await;
}

async fn hand_off_during_traffic_loses_nothing(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let mut sharded = start_sharded(&hub, &["a", "b"], || settings(&storage)).await;
    let ids = ids(12);
    let mut sent: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut n = 0u64;
    let mut send_round = |sharded: &Sharded, sent: &mut BTreeMap<String, Vec<u64>>| {
        for id in &ids {
            n += 1;
            sharded.regions[(n % 2) as usize].tell(Cmd::Add { id: id.clone(), n });
            sent.entry(id.clone()).or_default().push(n);
        }
    };
    send_round(&sharded, &mut sent);
    for id in &ids {
        get(&sharded.regions[0], id).await;
    }

    // A third node joins: the rebalance moves shards to it while traffic goes on.
    let seeds = vec![address("a"), address("b"), address("c")];
    let c = start_node(&hub, "c", 3, ClusterSettings::fast().with_seed_nodes(seeds));
    let all = [&sharded.nodes[0], &sharded.nodes[1], &c];
    await_all_up(&all, &[&all[0].address, &all[1].address, &c.address]).await;
    let path = sharded.coordinator.path().to_string();
    let region_c = start_region(&c, "c", &path, &sharded.log, settings(&storage));
    sharded.nodes.push(c);
    sharded.regions.push(region_c);

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        send_round(&sharded, &mut sent);
        // Traffic keeps flowing every poll interval (virtual time) while the shards move.
        tokio::time::sleep(POLL).await;
        get(&sharded.regions[0], &ids[0]).await;
        let d = distribution(&sharded).await;
        let c_shards = d
            .regions
            .iter()
            .find(|(k, _)| k.contains("@c:"))
            .map_or(0, |(_, s)| s.len());
        let loads: Vec<usize> = d.regions.values().map(BTreeSet::len).collect();
        let spread = loads.iter().max().unwrap_or(&0) - loads.iter().min().unwrap_or(&0);
        if c_shards > 0 && spread <= 1 && d.handing_off.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rebalance: {d:?}"
        );
    }
    send_round(&sharded, &mut sent);
    for id in &ids {
        let expected: u64 = sent[id].iter().sum();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let reading = get_eventually(&sharded.regions[2], id, WAIT).await;
            let mut got = received(&sharded.log, id);
            got.dedup();
            if got.len() == sent[id].len() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id}: got {} of {} messages (value {} of {expected})",
                got.len(),
                sent[id].len(),
                reading.value
            );
            tokio::time::sleep(POLL).await;
        }
        let mut want = sent[id].clone();
        want.sort_unstable();
        assert_eq!(received(&sharded.log, id), want, "{id}: lost or duplicated");
    }
    let moved: Vec<&String> = ids
        .iter()
        .filter(|id| starts(&sharded.log, id).contains(&"c".to_owned()))
        .collect();
    assert!(!moved.is_empty(), "some entity moved to the new node");
    assert_never_two_at_once(&sharded.log);
    shutdown(sharded).await;
}

async fn region_death_reallocates_and_entities_restart_elsewhere(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let sharded = start_sharded(&hub, &["a", "b", "c"], || settings(&storage)).await;
    let ids = ids(24);
    let mut before = BTreeMap::new();
    for id in &ids {
        before.insert(id.clone(), get(&sharded.regions[0], id).await.node);
    }
    let on_c: Vec<&String> = ids.iter().filter(|id| before[*id] == "c").collect();
    assert!(!on_c.is_empty(), "some entities live on c: {before:?}");

    let c = &sharded.nodes[2];
    isolate(
        &hub,
        &c.address,
        &[&sharded.nodes[0].address, &sharded.nodes[1].address],
    );
    assert!(
        c.system.await_termination(WAIT).await,
        "the isolated node downed itself"
    );
    await_distribution(&sharded.coordinator, WAIT, |d| {
        if d.regions.keys().any(|k| k.contains("@c:")) {
            Err("c still registered".into())
        } else {
            Ok(())
        }
    })
    .await;
    for id in &ids {
        let reading = get_eventually(&sharded.regions[1], id, WAIT).await;
        assert_ne!(reading.node, "c", "{id}");
        if before[id] == "c" {
            assert_eq!(starts(&sharded.log, id).last(), Some(&reading.node), "{id}");
        } else {
            assert_eq!(reading.node, before[id], "{id} moved needlessly");
        }
    }
    assert_never_two_at_once(&sharded.log);
    shutdown(sharded).await;
}

async fn new_coordinator_rebuilds_the_map_from_the_lock_table(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    // Both regions before the first allocation: no rebalance moves a shard while the old
    // map is taken (regions register after their storage ttl check, at different instants
    // on SQLite).
    let mut sharded =
        start_sharded(&hub, &["a", "b"], || settings(&storage).with_min_regions(2)).await;
    let ids = ids(16);
    let mut before = BTreeMap::new();
    for id in &ids {
        sharded.regions[0].tell(Cmd::Add {
            id: id.clone(),
            n: 7,
        });
        before.insert(id.clone(), get(&sharded.regions[1], id).await.node);
    }
    let old = distribution(&sharded).await;

    let rebuilt = sharded.replace_coordinator(&settings(&storage), &old).await;
    assert_eq!(rebuilt.shard_count(), old.shard_count());
    for id in &ids {
        let reading = get(&sharded.regions[0], id).await;
        assert_eq!(
            (reading.node.as_str(), reading.value),
            (before[id].as_str(), 7),
            "{id}"
        );
        assert_eq!(starts(&sharded.log, id).len(), 1, "{id} restarted");
    }
    shutdown(sharded).await;
}

async fn graceful_leave_hands_off_and_restarts_remembered_entities(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let sharded = start_sharded(&hub, &["a", "b", "c"], || {
        settings(&storage).with_remember_entities(true)
    })
    .await;
    let ids = ids(24);
    let mut before = BTreeMap::new();
    for id in &ids {
        before.insert(id.clone(), get(&sharded.regions[0], id).await.node);
    }
    let on_c: Vec<&String> = ids.iter().filter(|id| before[*id] == "c").collect();
    assert!(!on_c.is_empty());

    sharded.regions[2]
        .graceful_shutdown_and_wait(WAIT)
        .await
        .expect("region c handed off everything");
    let d = distribution(&sharded).await;
    assert!(!d.regions.keys().any(|k| k.contains("@c:")), "{d:?}");
    assert!(d.handing_off.is_empty(), "{d:?}");
    // Remembered entities come back at their new homes without a message.
    await_restarted_elsewhere(&sharded.log, &on_c, "c").await;
    for id in &ids {
        let reading = get(&sharded.regions[0], id).await;
        assert_ne!(reading.node, "c", "{id}");
    }
    assert_never_two_at_once(&sharded.log);
    shutdown(sharded).await;
}

/// Remember-entities survives a crash: c is cut off and stops (it downs itself; no hand-off
/// reaches anyone), and the entities it ran restart at their shards' new homes without a
/// message, from the remembered sets the coordinator kept. With `move_coordinator` the
/// coordinator is replaced first, so the sets it uses are the ones the regions reported when
/// they registered again. (Before, the ids lived only on the crashed node: nothing
/// restarted until a message came.)
async fn remembered_entities_survive_a_crash(backend: Backend, move_coordinator: bool) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let with_remember = || {
        settings(&storage)
            .with_remember_entities(true)
            .with_min_regions(3)
    };
    let mut sharded = start_sharded(&hub, &["a", "b", "c"], with_remember).await;
    let ids = ids(24);
    let mut before = BTreeMap::new();
    for id in &ids {
        sharded.regions[0].tell(Cmd::Add {
            id: id.clone(),
            n: 1,
        });
        before.insert(id.clone(), get(&sharded.regions[0], id).await.node);
    }
    let on_c: Vec<&String> = ids.iter().filter(|id| before[*id] == "c").collect();
    assert!(!on_c.is_empty(), "some entities live on c: {before:?}");
    if move_coordinator {
        let old = distribution(&sharded).await;
        sharded.replace_coordinator(&with_remember(), &old).await;
    }

    let c = &sharded.nodes[2];
    isolate(
        &hub,
        &c.address,
        &[&sharded.nodes[0].address, &sharded.nodes[1].address],
    );
    assert!(c.system.await_termination(WAIT).await, "c stopped");
    // No message goes to them: they restart from the remembered sets alone.
    await_restarted_elsewhere(&sharded.log, &on_c, "c").await;
    for id in &on_c {
        let reading = get(&sharded.regions[1], id).await;
        assert_ne!(reading.node, "c", "{id}");
        assert_eq!(starts(&sharded.log, id).last(), Some(&reading.node), "{id}");
        assert_eq!(reading.value, 0, "{id} restarted without its state");
    }
    assert_never_two_at_once(&sharded.log);
    shutdown(sharded).await;
}

async fn remembered_entities_restart_after_their_node_crashed(backend: Backend) {
    remembered_entities_survive_a_crash(backend, false).await;
}

async fn remembered_entities_survive_a_coordinator_move_and_a_crash(backend: Backend) {
    remembered_entities_survive_a_crash(backend, true).await;
}

/// A node that leaves the cluster (without calling the region's graceful shutdown) still
/// hands its shards off: its region sees itself leaving, its entities get the stop message,
/// and every entity answers from a remaining node afterwards.
async fn leaving_the_cluster_hands_shards_off_by_itself(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let sharded = start_sharded(&hub, &["a", "b", "c"], || settings(&storage)).await;
    let ids = ids(24);
    let mut before = BTreeMap::new();
    for id in &ids {
        before.insert(id.clone(), get(&sharded.regions[0], id).await.node);
    }
    let on_c: Vec<&String> = ids.iter().filter(|id| before[*id] == "c").collect();
    assert!(!on_c.is_empty());

    let c = &sharded.nodes[2];
    c.cluster.leave();
    assert!(
        c.system.await_termination(WAIT).await,
        "c left and shut down"
    );
    let log = sharded.log.clone();
    for id in &on_c {
        let stopping = log
            .lock()
            .iter()
            .any(|e| matches!(e, Event::Stopping { id: i, node } if i == *id && node == "c"));
        assert!(stopping, "{id} on c never got its hand-off stop message");
    }
    for id in &ids {
        let reading = get_eventually(&sharded.regions[1], id, WAIT).await;
        assert_ne!(reading.node, "c", "{id}");
    }
    assert_never_two_at_once(&sharded.log);
    shutdown(sharded).await;
}

/// A proxy region routes to the entities on the other nodes and is never given a shard.
async fn a_proxy_region_routes_but_hosts_nothing(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let sharded = start_sharded(&hub, &["a", "b"], || settings(&storage)).await;
    let seeds = vec![address("a"), address("b"), address("p")];
    let p = start_node(&hub, "p", 3, ClusterSettings::fast().with_seed_nodes(seeds));
    let all = [&sharded.nodes[0], &sharded.nodes[1], &p];
    await_all_up(&all, &[&all[0].address, &all[1].address, &p.address]).await;
    Remoting::get(&p.system)
        .expect("remoting")
        .register::<Reading>()
        .expect("register");
    let forwarder = PathForwarder::spawn(
        &p.system,
        sharded.coordinator.path().to_string(),
        "coordinator-forwarder",
    );
    let proxy = ClusterSharding::get(&p.system)
        .start_proxy_with_coordinator(TYPE, settings(&storage), entity_of, forwarder)
        .expect("proxy region");
    for id in ids(12) {
        proxy.tell(Cmd::Add {
            id: id.clone(),
            n: 3,
        });
        let reading = get_eventually(&proxy, &id, WAIT).await;
        assert_eq!(reading.value, 3, "{id}");
        assert!(
            reading.node == "a" || reading.node == "b",
            "{id} on {}",
            reading.node
        );
    }
    let d = distribution(&sharded).await;
    assert_eq!(d.regions.len(), 2, "the proxy has no shards: {d:?}");
    assert!(proxy.state(ASK).await.expect("state").shards.is_empty());
    p.system.terminate().await;
    shutdown(sharded).await;
}

on_both_backends!(
    allocation_spreads_and_every_region_agrees,
    hand_off_during_traffic_loses_nothing,
    region_death_reallocates_and_entities_restart_elsewhere,
    new_coordinator_rebuilds_the_map_from_the_lock_table,
    graceful_leave_hands_off_and_restarts_remembered_entities,
    remembered_entities_restart_after_their_node_crashed,
    remembered_entities_survive_a_coordinator_move_and_a_crash,
    leaving_the_cluster_hands_shards_off_by_itself,
    a_proxy_region_routes_but_hosts_nothing,
);
