//! Cluster singleton failover and hand-over times, three nodes in one process on the
//! in-memory transport.
//!
//! Run with `cargo bench -p actor-cluster --bench singleton_bench` (release profile). It
//! prints, each as median / p99 / min / max over the runs:
//!
//! - **failover (virtual, default settings)**: from the host's crash (its transport vanishes
//!   and its system stops) to the singleton's `started` hook on the next oldest node, under a
//!   paused clock with `ClusterSettings::default()` and `SingletonSettings` defaults, one run
//!   per seed. Virtual time is deterministic: it measures the protocol (failure detection,
//!   the downing decision's stable-after, removal, gossip rounds, then the default removal
//!   margin of 5 s, which a crashed host that never confirmed always costs), not this
//!   machine.
//! - **hand-over (virtual, default settings)**: from `Cluster::leave()` on the host to the
//!   singleton's `started` hook on the next oldest node (the old instance has stopped by
//!   then: that is what the hand-over guarantees).
//! - **failover / hand-over (wall clock, `ClusterSettings::fast()`)**: the same on a real
//!   clock with the fast test profile (100 ms gossip and heartbeats), a few runs each.

use std::time::Duration;

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::membership::MemberStatus;
use actor_cluster::remote::Remoting;
use actor_cluster::singleton::{ClusterSingletonManager, SingletonSettings};
use actor_cluster::wire::RemoteMessage;
use actor_cluster::{Address, FaultInjector, InMemoryHub};
use actor_core::{Actor, ActorResult, ActorSystem, Context, Props};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Runs per virtual-time figure (one per seed).
const VIRTUAL_RUNS: u64 = 30;
/// Runs per wall-clock figure.
const WALL_RUNS: u64 = 5;
/// Give up on a run after this long.
const LIMIT: Duration = Duration::from_secs(300);
/// Poll interval while waiting for membership (virtual or real).
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Serialize, Deserialize)]
struct Nothing;

impl RemoteMessage for Nothing {
    const MANIFEST: &'static str = "bench.singleton.Nothing";
}

/// A singleton that reports its start (node index, time).
struct Probe {
    node: usize,
    started: mpsc::UnboundedSender<(usize, Instant)>,
}

impl Actor for Probe {
    type Msg = Nothing;

    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        let _ = self.started.send((self.node, Instant::now()));
        Ok(())
    }

    async fn handle(&mut self, _: Nothing, _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Fault {
    Crash,
    Leave,
}

fn address(i: usize) -> Address {
    match Address::logical("bench", format!("n{i}")) {
        Ok(a) => a,
        Err(e) => panic!("address: {e}"),
    }
}

async fn wait_until(mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !check() {
        assert!(Instant::now() < deadline, "no progress within {LIMIT:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// One run: three nodes, the singleton on n0, then `fault` on n0; returns the time from the
/// fault to the start on another node.
async fn run(seed: u64, settings: ClusterSettings, fault: Fault) -> Duration {
    let hub = InMemoryHub::with_options(seed, actor_cluster::DEFAULT_MAX_FRAME_SIZE);
    let seeds: Vec<Address> = (0..3).map(address).collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut nodes: Vec<(ActorSystem, std::sync::Arc<Cluster>)> = Vec::new();
    for i in 0..3 {
        let transport = hub.bind(address(i)).expect("bind");
        let system = ActorSystem::with_settings(
            "bench",
            Remoting::system_settings(&*transport).seed(seed * 10 + i as u64),
        )
        .expect("system");
        Remoting::start(&system, transport).expect("remoting");
        let cluster =
            Cluster::join(&system, settings.clone().with_seed_nodes(seeds.clone())).expect("join");
        let started = tx.clone();
        ClusterSingletonManager::spawn(
            &system,
            Props::new(move || Probe {
                node: i,
                started: started.clone(),
            }),
            SingletonSettings::new("probe"),
        )
        .expect("manager");
        // one after the other, so n0 is the oldest
        wait_until(|| cluster.self_member().status == MemberStatus::Up).await;
        nodes.push((system, cluster));
    }
    wait_until(|| {
        nodes.iter().all(|(_, c)| {
            c.state()
                .members
                .iter()
                .all(|m| m.status == MemberStatus::Up)
        }) && nodes.iter().all(|(_, c)| c.state().members.len() == 3)
    })
    .await;
    let (first, _) = rx.recv().await.expect("a first start");
    assert_eq!(first, 0, "the oldest hosts");
    let at = Instant::now();
    match fault {
        Fault::Crash => {
            hub.crash(&address(0));
            nodes[0].0.terminate().await;
        }
        Fault::Leave => nodes[0].1.leave(),
    }
    let (next, started) = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("a start within the limit")
        .expect("a start");
    assert_ne!(next, 0);
    let took = started - at;
    for (system, _) in nodes {
        system.terminate().await;
    }
    took
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

fn real_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let pct = |p: f64| samples[((n as f64 * p).ceil() as usize).clamp(1, n) - 1];
    println!(
        "{name:<46} median {:>8.3} s   p99 {:>8.3} s   min {:>8.3} s   max {:>8.3} s   ({n} runs)",
        pct(0.5).as_secs_f64(),
        pct(0.99).as_secs_f64(),
        samples[0].as_secs_f64(),
        samples[n - 1].as_secs_f64(),
    );
}

fn main() {
    let wall = std::time::Instant::now();
    for (name, fault) in [
        ("failover after crash (virtual, default)", Fault::Crash),
        ("hand-over on leave (virtual, default)", Fault::Leave),
    ] {
        let samples = (1..=VIRTUAL_RUNS)
            .map(|seed| paused_runtime().block_on(run(seed, ClusterSettings::default(), fault)))
            .collect();
        report(name, samples);
    }
    for (name, fault) in [
        ("failover after crash (wall, fast)", Fault::Crash),
        ("hand-over on leave (wall, fast)", Fault::Leave),
    ] {
        let samples = (1..=WALL_RUNS)
            .map(|seed| real_runtime().block_on(run(seed, ClusterSettings::fast(), fault)))
            .collect();
        report(name, samples);
    }
    println!(
        "(whole bench took {:.1} s of wall time)",
        wall.elapsed().as_secs_f64()
    );
}
