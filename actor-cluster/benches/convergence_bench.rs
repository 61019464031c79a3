//! Membership convergence and steady-state traffic of real cluster daemons, for 10, 25, 50
//! and 100 nodes in one process on the in-memory transport under a paused clock (virtual
//! time), with the default settings (1 s gossip and heartbeat intervals, 3 seed nodes).
//!
//! Run with `cargo bench -p actor-cluster --bench convergence_bench` (release profile);
//! pass sizes to run only those, e.g. `-- 10 25`.
//!
//! For each size it prints:
//! - **formed**: virtual time from starting every node at once until the first seed is Up
//!   (it forms the cluster after the seed-node timeout, 5 s by default, when no other seed
//!   answers as a member);
//! - **converge**: virtual time from the start to every node seeing all `n` members Up, no
//!   one unreachable, and its state seen by all `n` (convergence);
//! - **gossip B/node/s** and **heartbeat B/node/s**: bytes sent per node per second during
//!   `STEADY` seconds of virtual time after convergence, split by message kind (gossip and
//!   welcome states; heartbeats and their answers), counted on the hub as frames are
//!   delivered, plus the average size of one gossip frame;
//! - **wall**: real time the whole run took in this process (the cost of simulating `n`
//!   nodes on one thread, not a property of the protocol).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::cluster::{Cluster, ClusterMsg, ClusterSettings};
use actor_cluster::membership::MemberStatus;
use actor_cluster::remote::Remoting;
use actor_cluster::wire::{self, Envelope, RemoteMessage};
use actor_cluster::{Address, InMemoryHub};
use actor_core::ActorSystem;
use parking_lot::Mutex;

const SIZES: [usize; 4] = [10, 25, 50, 100];
/// Seed nodes every node is given (the first forms the cluster).
const SEEDS: usize = 3;
/// Virtual time measured in steady state.
const STEADY: Duration = Duration::from_secs(30);
/// Poll interval of the convergence check (virtual time): the resolution of `converge`.
const POLL: Duration = Duration::from_millis(10);
/// Give up when a size has not converged after this much virtual time.
const LIMIT: Duration = Duration::from_secs(600);

/// Bytes and frames per message kind.
#[derive(Default)]
struct Kinds(BTreeMap<&'static str, (u64, u64)>);

fn kind(frame: &[u8]) -> &'static str {
    match wire::decode(frame) {
        Ok(Envelope::User {
            manifest, payload, ..
        }) if manifest == ClusterMsg::MANIFEST => {
            match wire::decode_message::<ClusterMsg>(&manifest, &payload) {
                Ok(ClusterMsg::Gossip { .. } | ClusterMsg::Welcome { .. }) => "gossip",
                Ok(ClusterMsg::Heartbeat { .. } | ClusterMsg::HeartbeatRsp { .. }) => "heartbeat",
                Ok(_) => "join",
                Err(_) => "other",
            }
        }
        Ok(Envelope::System { .. } | Envelope::SystemAck { .. }) => "system",
        _ => "other",
    }
}

struct Row {
    n: usize,
    formed: Duration,
    converge: Duration,
    gossip: f64,
    heartbeat: f64,
    other: f64,
    gossip_frame: f64,
    wall: Duration,
}

fn run(n: usize) -> Result<Row, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    let wall = Instant::now();
    let mut row = runtime.block_on(simulate(n))?;
    row.wall = wall.elapsed();
    Ok(row)
}

async fn simulate(n: usize) -> Result<Row, String> {
    let hub = InMemoryHub::new();
    let addresses: Vec<Address> = (0..n)
        .map(|i| Address::logical("conv", format!("node-{i:03}")).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let settings = ClusterSettings::default().with_seed_nodes(addresses[..SEEDS].to_vec());
    let start = tokio::time::Instant::now();
    let mut nodes = Vec::with_capacity(n);
    for (i, address) in addresses.iter().enumerate() {
        let transport = hub.bind(address.clone()).map_err(|e| e.to_string())?;
        let system_settings = Remoting::system_settings(&*transport).seed(i as u64 + 1);
        let system =
            ActorSystem::with_settings("conv", system_settings).map_err(|e| e.to_string())?;
        Remoting::start(&system, transport).map_err(|e| e.to_string())?;
        let cluster = Cluster::join(&system, settings.clone()).map_err(|e| e.to_string())?;
        nodes.push((system, cluster));
    }
    let converged = |nodes: &[(ActorSystem, Arc<Cluster>)]| {
        nodes.iter().all(|(_, cluster)| {
            let state = cluster.state();
            state.members.len() == n
                && state.members.iter().all(|m| m.status == MemberStatus::Up)
                && state.unreachable.is_empty()
                && state.seen_by.len() == n
        })
    };
    let mut formed = None;
    while !converged(&nodes) {
        if formed.is_none() && nodes[0].1.self_member().status == MemberStatus::Up {
            formed = Some(start.elapsed());
        }
        if start.elapsed() > LIMIT {
            return Err(format!("{n} nodes did not converge within {LIMIT:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
    let converge = start.elapsed();
    let formed = formed.unwrap_or(converge);

    let kinds = Arc::new(Mutex::new(Kinds::default()));
    let observer = {
        let kinds = kinds.clone();
        Arc::new(move |_: &Address, _: &Address, frame: &[u8]| {
            let mut kinds = kinds.lock();
            let entry = kinds.0.entry(kind(frame)).or_default();
            entry.0 += 1;
            entry.1 += frame.len() as u64;
        })
    };
    let before = hub.traffic();
    hub.observe_frames(Some(observer));
    tokio::time::sleep(STEADY).await;
    hub.observe_frames(None);
    let total = hub.traffic().since(&before);
    let kinds = std::mem::take(&mut *kinds.lock());
    let per_node_second = |bytes: u64| bytes as f64 / n as f64 / STEADY.as_secs_f64();
    let (gossip_frames, gossip_bytes) = kinds.0.get("gossip").copied().unwrap_or_default();
    let heartbeat_bytes = kinds.0.get("heartbeat").map_or(0, |k| k.1);
    let other = total.bytes - gossip_bytes - heartbeat_bytes;
    for (system, _) in &nodes {
        system.terminate().await;
    }
    Ok(Row {
        n,
        formed,
        converge,
        gossip: per_node_second(gossip_bytes),
        heartbeat: per_node_second(heartbeat_bytes),
        other: per_node_second(other),
        gossip_frame: gossip_bytes as f64 / gossip_frames.max(1) as f64,
        wall: Duration::ZERO,
    })
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        SIZES.to_vec()
    } else {
        sizes
    };
    println!(
        "convergence and steady-state traffic, default settings (1 s gossip/heartbeat), {SEEDS} seeds, {}s steady window, virtual time",
        STEADY.as_secs()
    );
    println!(
        "{:>5} {:>9} {:>11} {:>16} {:>19} {:>13} {:>15} {:>9}",
        "nodes",
        "formed",
        "converge",
        "gossip B/node/s",
        "heartbeat B/node/s",
        "other B/n/s",
        "gossip frame B",
        "wall"
    );
    for n in sizes {
        match run(n) {
            Ok(r) => println!(
                "{:>5} {:>8.2}s {:>10.2}s {:>16.0} {:>19.0} {:>13.1} {:>15.0} {:>8.1}s",
                r.n,
                r.formed.as_secs_f64(),
                r.converge.as_secs_f64(),
                r.gossip,
                r.heartbeat,
                r.other,
                r.gossip_frame,
                r.wall.as_secs_f64()
            ),
            Err(error) => println!("{n:>5} failed: {error}"),
        }
    }
}
