//! Cluster sharding figures on three in-process nodes (in-memory transport, real clock,
//! a two-worker runtime): messages per second to 10,000 entities spread over the nodes
//! (two thirds of the messages cross to another node through the wire codec), and the time to
//! rebalance 100 shards after a node leaves gracefully (from the leave until the coordinator
//! has every shard allocated again with no hand-off left).
//!
//! Run with `cargo bench -p actor-cluster --bench sharding_bench` (release profile). Each
//! figure is a median with its spread (min..max) over `ROUNDS` rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::membership::MemberStatus;
use actor_cluster::remote::Remoting;
use actor_cluster::sharding::{
    ClusterSharding, CoordinatorMsg, EntityContext, ShardRegion, ShardingSettings,
};
use actor_cluster::wire::RemoteMessage;
use actor_cluster::{Address, InMemoryHub};
use actor_coordination::runner_storage::MemoryRunnerStorage;
use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props};
use serde::{Deserialize, Serialize};

const SYSTEM: &str = "bench";
const TYPE: &str = "bench-entity";
const ENTITIES: u32 = 10_000;
const MESSAGES: u64 = 200_000;
const SHARDS: u32 = 100;
const ROUNDS: usize = 5;
const REBALANCE_ROUNDS: usize = 7;
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Serialize, Deserialize)]
struct Hit {
    entity: u32,
}

impl RemoteMessage for Hit {
    const MANIFEST: &'static str = "bench.Hit";
}

struct Entity {
    hits: Arc<AtomicU64>,
}

impl Actor for Entity {
    type Msg = Hit;
    async fn handle(&mut self, _: Hit, _: &mut Context<Self>) -> ActorResult {
        self.hits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct Node {
    system: ActorSystem,
    cluster: Arc<Cluster>,
    region: ShardRegion<Hit>,
    coordinator: ActorRef<CoordinatorMsg>,
}

fn settings(storage: &Arc<MemoryRunnerStorage>) -> ShardingSettings<Hit> {
    ShardingSettings::new(storage.clone())
        .with_number_of_shards(SHARDS)
        .with_retry_interval(Duration::from_millis(100))
        .with_rebalance_interval(Duration::from_secs(1))
        .with_max_simultaneous_rebalance(10)
        .without_idle_passivation()
}

fn start_node(
    hub: &InMemoryHub,
    run: usize,
    name: &str,
    seeds: &[Address],
    storage: &Arc<MemoryRunnerStorage>,
    hits: &Arc<AtomicU64>,
) -> Node {
    let system_name = format!("{SYSTEM}{run}");
    let transport = hub
        .bind(Address::logical(system_name.as_str(), name).expect("address"))
        .expect("bind");
    let system = ActorSystem::with_settings(&system_name, Remoting::system_settings(&*transport))
        .expect("system");
    Remoting::start(&system, transport).expect("remoting");
    let cluster = Cluster::join(
        &system,
        ClusterSettings::fast().with_seed_nodes(seeds.to_vec()),
    )
    .expect("join");
    let hits = hits.clone();
    let sharding = ClusterSharding::get(&system);
    let region = sharding
        .start(
            TYPE,
            move |_: EntityContext<Hit>| {
                let hits = hits.clone();
                Props::new(move || Entity { hits: hits.clone() })
            },
            settings(storage),
            |hit: &Hit| hit.entity.to_string(),
        )
        .expect("sharding");
    let coordinator = sharding
        .coordinator(TYPE, &settings(storage))
        .expect("coordinator proxy");
    Node {
        system,
        cluster,
        region,
        coordinator,
    }
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn cluster(run: usize, hits: &Arc<AtomicU64>) -> Vec<Node> {
    let hub = InMemoryHub::new();
    let names = ["a", "b", "c"];
    let system_name = format!("{SYSTEM}{run}");
    let seeds: Vec<Address> = names
        .iter()
        .map(|n| Address::logical(system_name.as_str(), *n).expect("address"))
        .collect();
    let storage = Arc::new(MemoryRunnerStorage::default());
    let nodes: Vec<Node> = names
        .iter()
        .map(|n| start_node(&hub, run, n, &seeds, &storage, hits))
        .collect();
    until("three nodes up", async || {
        nodes.iter().all(|n| {
            let s = n.cluster.state();
            s.members.len() == 3 && s.members.iter().all(|m| m.status == MemberStatus::Up)
        })
    })
    .await;
    // Keep the hub alive with the nodes (their transports hold it).
    std::mem::forget(hub);
    nodes
}

/// Sends one message to every entity and waits until all arrived (entities started, homes
/// cached everywhere).
async fn touch_all(nodes: &[Node], hits: &AtomicU64) {
    let start = hits.load(Ordering::Relaxed);
    for entity in 0..ENTITIES {
        nodes[entity as usize % 3].region.tell(Hit { entity });
    }
    until("every entity started", async || {
        hits.load(Ordering::Relaxed) >= start + u64::from(ENTITIES)
    })
    .await;
}

fn stats(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
    )
}

async fn throughput() {
    let hits = Arc::new(AtomicU64::new(0));
    let nodes = cluster(0, &hits).await;
    touch_all(&nodes, &hits).await;
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let start_count = hits.load(Ordering::Relaxed);
        let started = Instant::now();
        for i in 0..MESSAGES {
            let entity = (i.wrapping_mul(7919) % u64::from(ENTITIES)) as u32;
            nodes[(i % 3) as usize].region.tell(Hit { entity });
        }
        until("every message handled", async || {
            hits.load(Ordering::Relaxed) >= start_count + MESSAGES
        })
        .await;
        rates.push(MESSAGES as f64 / started.elapsed().as_secs_f64());
    }
    let (median, min, max) = stats(rates);
    println!(
        "messages/s to {ENTITIES} entities over 3 nodes ({MESSAGES} per round, {ROUNDS} rounds): \
         median {median:.0}, spread {min:.0}..{max:.0}"
    );
    for node in &nodes {
        node.system.terminate().await;
    }
}

async fn rebalance() {
    let mut times = Vec::new();
    for run in 1..=REBALANCE_ROUNDS {
        let hits = Arc::new(AtomicU64::new(0));
        let nodes = cluster(run, &hits).await;
        touch_all(&nodes, &hits).await;
        let coordinator = nodes[0].coordinator.clone();
        until("all 100 shards allocated", async || {
            ClusterSharding::distribution(&coordinator, Duration::from_secs(1))
                .await
                .is_ok_and(|d| d.shard_count() == SHARDS as usize && d.handing_off.is_empty())
        })
        .await;
        let started = Instant::now();
        nodes[2].region.graceful_shutdown();
        until("shards of c re-homed", async || {
            ClusterSharding::distribution(&coordinator, Duration::from_secs(1))
                .await
                .is_ok_and(|d| {
                    d.regions.len() == 2
                        && d.shard_count() == SHARDS as usize
                        && d.handing_off.is_empty()
                })
        })
        .await;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        for node in &nodes {
            node.system.terminate().await;
        }
    }
    let (median, min, max) = stats(times);
    println!(
        "rebalance of {SHARDS} shards after a node leaves ({REBALANCE_ROUNDS} runs): \
         median {median:.1} ms, spread {min:.1}..{max:.1} ms"
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        throughput().await;
        rebalance().await;
    });
}
