//! Sharding with the coordinator as a cluster singleton (`ClusterSharding::start`), once on
//! the in-memory runner storage and once on SQLite: three nodes, the oldest (hosting the
//! coordinator) fails; the coordinator restarts on the next oldest, rebuilds its map from
//! the lock table, the failed node's shards are reallocated, and every entity answers again
//! (the ones on surviving nodes from where they were, never restarted).

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::InMemoryHub;
use actor_cluster::cluster::ClusterSettings;
use actor_cluster::remote::Remoting;
use actor_cluster::sharding::{ClusterSharding, ShardRegion};
use cluster_support::{Node, await_all_up, isolate, start_cluster};
use parking_lot::Mutex;
use sharding_support::{
    Backend, Cmd, Counter, Log, Reading, Storage, TYPE, assert_never_two_at_once, entity_of, get,
    get_eventually, settings, starts,
};

const WAIT: Duration = Duration::from_secs(90);

fn start(node: &Node, name: &str, log: &Log, storage: &Storage) -> ShardRegion<Cmd> {
    Remoting::get(&node.system)
        .expect("remoting")
        .register::<Reading>()
        .expect("register");
    ClusterSharding::get(&node.system)
        .start(
            TYPE,
            Counter::factory(name, log),
            settings(storage),
            entity_of,
        )
        .expect("start sharding")
}

async fn coordinator_fails_over_and_every_entity_answers(backend: Backend) {
    let storage = Storage::open(backend).await;
    let hub = InMemoryHub::new();
    let names = ["a", "b", "c"];
    let nodes = start_cluster(&hub, &names, &ClusterSettings::fast());
    let all: Vec<&Node> = nodes.iter().collect();
    let addresses: Vec<_> = nodes.iter().map(|n| &n.address).collect();
    await_all_up(&all, &addresses).await;
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let regions: Vec<ShardRegion<Cmd>> = nodes
        .iter()
        .zip(names)
        .map(|(node, name)| start(node, name, &log, &storage))
        .collect();

    let ids: Vec<String> = (0..30).map(|i| format!("user-{i}")).collect();
    let mut before = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        regions[i % 3].tell(Cmd::Add {
            id: id.clone(),
            n: 5,
        });
        let reading = get_eventually(&regions[i % 3], id, WAIT).await;
        assert_eq!(reading.value, 5, "{id}");
        before.insert(id.clone(), reading.node);
    }
    let homes: std::collections::BTreeSet<&String> = before.values().collect();
    assert_eq!(homes.len(), 3, "entities on every node: {before:?}");

    // The oldest node (a: the coordinator's host) fails.
    isolate(
        &hub,
        &nodes[0].address,
        &[&nodes[1].address, &nodes[2].address],
    );
    assert!(
        nodes[0].system.await_termination(WAIT).await,
        "the isolated node downed itself"
    );
    for id in &ids {
        let reading = get_eventually(&regions[1], id, WAIT).await;
        assert_ne!(reading.node, "a", "{id}");
        if before[id] == "a" {
            assert_eq!(reading.value, 0, "{id} restarted fresh");
        } else {
            assert_eq!(
                (reading.node.as_str(), reading.value),
                (before[id].as_str(), 5),
                "{id} kept its home"
            );
            assert_eq!(starts(&log, id).len(), 1, "{id} was not restarted");
        }
        // The other survivor agrees.
        assert_eq!(get(&regions[2], id).await.node, reading.node, "{id}");
    }
    assert_never_two_at_once(&log);
    for node in &nodes[1..] {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn memory_coordinator_fails_over_and_every_entity_answers() {
    coordinator_fails_over_and_every_entity_answers(Backend::Memory).await;
}

#[tokio::test(start_paused = true)]
async fn sqlite_coordinator_fails_over_and_every_entity_answers() {
    coordinator_fails_over_and_every_entity_answers(Backend::Sqlite).await;
}
