//! Pub-sub benchmark: publish throughput to 1, 10 and 100 subscribers spread over three
//! nodes (in-memory transport, one process). Run with
//! `cargo bench -p actor-cluster --bench pubsub_bench` (release profile).
//!
//! The three nodes share one multi-thread runtime with two workers (the machine has two
//! cores). Subscriber `i` lives on node `[a, c, b][i % 3]`, so one subscriber is remote and
//! more are spread evenly; node `b` publishes. A publish sends one message to each remote
//! node holding subscribers and fans out locally on arrival. The publisher keeps at most
//! `WINDOW` publishes ahead of the slowest delivery, so queues stay bounded. Each figure is
//! the median of `RUNS` runs with the slowest and fastest beside it: publishes per second
//! and deliveries (subscriber receipts) per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::pubsub::{DistributedPubSub, PubSubSettings};
use actor_cluster::remote::Remoting;
use actor_cluster::wire::RemoteMessage;
use actor_cluster::{Address, InMemoryHub};
use actor_core::{Actor, ActorResult, ActorSystem, Context, Props};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

const RUNS: usize = 5;
const WINDOW: u64 = 2_000;
const TOPIC: &str = "bench";
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Serialize, Deserialize)]
struct Tick(u64);
impl RemoteMessage for Tick {
    const MANIFEST: &'static str = "bench.Tick";
}

/// Counts deliveries into a shared counter, waking the publisher now and then.
struct Subscriber {
    delivered: Arc<AtomicU64>,
    wake: Arc<Notify>,
}

impl Actor for Subscriber {
    type Msg = Tick;
    async fn handle(&mut self, _: Tick, _: &mut Context<Self>) -> ActorResult {
        let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(256) {
            self.wake.notify_one();
        }
        Ok(())
    }
}

struct Bench {
    systems: Vec<ActorSystem>,
    publisher: Arc<DistributedPubSub>,
    delivered: Arc<AtomicU64>,
    wake: Arc<Notify>,
    subscribers: u64,
}

async fn setup(subscribers: usize, run: usize) -> Bench {
    let hub = InMemoryHub::new();
    let names = ["a", "b", "c"];
    let seeds: Vec<Address> = names
        .iter()
        .map(|n| Address::logical(format!("bench{run}"), *n).expect("address"))
        .collect();
    let mut systems = Vec::new();
    let mut pubsubs = Vec::new();
    for address in &seeds {
        let transport = hub.bind(address.clone()).expect("bind");
        let system = ActorSystem::with_settings(
            &format!("bench{run}"),
            Remoting::system_settings(&*transport),
        )
        .expect("system");
        Remoting::start(&system, transport).expect("remoting");
        Cluster::join(
            &system,
            ClusterSettings::fast().with_seed_nodes(seeds.clone()),
        )
        .expect("join");
        let settings = PubSubSettings::default().with_gossip_interval(Duration::from_millis(50));
        pubsubs.push(DistributedPubSub::start(&system, settings).expect("pub-sub"));
        systems.push(system);
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let wake = Arc::new(Notify::new());
    let placement = [0, 2, 1];
    let mut nodes_used = std::collections::BTreeSet::new();
    for i in 0..subscribers {
        let node = placement[i % 3];
        nodes_used.insert(node);
        let (d, w) = (delivered.clone(), wake.clone());
        let subscriber = systems[node]
            .spawn(
                Props::new(move || Subscriber {
                    delivered: d.clone(),
                    wake: w.clone(),
                }),
                &format!("sub-{i}"),
            )
            .expect("spawn");
        pubsubs[node]
            .subscribe(TOPIC, &subscriber)
            .await
            .expect("subscribe");
    }
    let publisher = pubsubs[1].clone();
    let started = Instant::now();
    while publisher.topic_nodes(TOPIC).len() != nodes_used.len() {
        assert!(started.elapsed() < SETUP_TIMEOUT, "gossip did not converge");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Bench {
        systems,
        publisher,
        delivered,
        wake,
        subscribers: subscribers as u64,
    }
}

/// Publishes `n` ticks, at most `WINDOW` ahead of deliveries; returns the elapsed time.
async fn run(bench: &Bench, n: u64) -> Duration {
    let start = Instant::now();
    let per = bench.subscribers;
    for i in 0..n {
        if i >= WINDOW {
            let needed = (i - WINDOW) * per;
            while bench.delivered.load(Ordering::Relaxed) < needed {
                bench.wake.notified().await;
            }
        }
        bench.publisher.publish(TOPIC, Tick(i));
    }
    let total = n * per;
    while bench.delivered.load(Ordering::Relaxed) < total {
        tokio::select! {
            _ = bench.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    }
    start.elapsed()
}

fn summary(label: &str, mut rates: Vec<f64>) {
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{label}: median {:.0}/s (min {:.0}, max {:.0})",
        median,
        rates[0],
        rates[rates.len() - 1]
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("pub-sub publish throughput, 3 in-memory nodes, 2 worker threads, {RUNS} runs");
    for (subscribers, publishes) in [(1usize, 200_000u64), (10, 50_000), (100, 5_000)] {
        runtime.block_on(async {
            let mut publish_rates = Vec::new();
            let mut delivery_rates = Vec::new();
            for r in 0..RUNS {
                let bench = setup(subscribers, r).await;
                let elapsed = run(&bench, publishes).await.as_secs_f64();
                publish_rates.push(publishes as f64 / elapsed);
                delivery_rates.push((publishes * bench.subscribers) as f64 / elapsed);
                for system in &bench.systems {
                    system.terminate().await;
                }
            }
            println!("{subscribers} subscribers ({publishes} publishes per run):");
            summary("  publishes", publish_rates);
            summary("  deliveries", delivery_rates);
        });
    }
}
