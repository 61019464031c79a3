//! Test setup for cluster tests: N nodes in one process, each an actor system with remoting
//! over one `InMemoryHub`, on a paused clock; helpers to partition nodes and wait for a
//! membership state.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::{Cluster, ClusterError, ClusterSettings};
use actor_cluster::membership::{ClusterEvent, CurrentClusterState, MemberStatus};
use actor_cluster::remote::{RemoteSettings, Remoting};
use actor_cluster::{Address, Direction, FaultInjector, InMemoryHub};
use actor_core::ActorSystem;
use actor_testkit::{TestProbe, await_assert};

/// Name of every test system.
pub const SYSTEM: &str = "clu";

/// Longest virtual time a membership wait may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// Poll interval of membership waits (virtual time).
pub const POLL: Duration = Duration::from_millis(50);

/// One node of the test cluster.
pub struct Node {
    /// Its actor system.
    pub system: ActorSystem,
    /// Its transport address.
    pub address: Address,
    /// Its cluster membership.
    pub cluster: Arc<Cluster>,
}

/// The address of node `name`.
pub fn address(name: &str) -> Address {
    Address::logical(SYSTEM, name).expect("valid test address")
}

/// Starts node `name` (system RNG seeded with `seed`) and joins with `settings`.
pub fn start_node(hub: &InMemoryHub, name: &str, seed: u64, settings: ClusterSettings) -> Node {
    start_node_with(hub, name, seed, |system| Cluster::join(system, settings))
}

/// Starts node `name` with remoting and joins it with `join`; panics if joining fails.
pub fn start_node_with(
    hub: &InMemoryHub,
    name: &str,
    seed: u64,
    join: impl FnOnce(&ActorSystem) -> Result<Arc<Cluster>, ClusterError>,
) -> Node {
    let (system, cluster) = try_start_node_with(hub, name, seed, join);
    Node {
        system,
        address: address(name),
        cluster: cluster.expect("join"),
    }
}

/// Starts node `name` with remoting and returns its system and the result of `join`.
pub fn try_start_node_with(
    hub: &InMemoryHub,
    name: &str,
    seed: u64,
    join: impl FnOnce(&ActorSystem) -> Result<Arc<Cluster>, ClusterError>,
) -> (ActorSystem, Result<Arc<Cluster>, ClusterError>) {
    let transport = hub.bind(address(name)).expect("bind");
    let settings = Remoting::system_settings(&*transport).seed(seed);
    let system = ActorSystem::with_settings(SYSTEM, settings).expect("system");
    Remoting::start(&system, transport).expect("remoting");
    let result = join(&system);
    (system, result)
}

/// [`try_start_node_with`] with explicit remoting settings.
pub fn try_start_node_with_remote(
    hub: &InMemoryHub,
    name: &str,
    seed: u64,
    remote: RemoteSettings,
    join: impl FnOnce(&ActorSystem) -> Result<Arc<Cluster>, ClusterError>,
) -> (ActorSystem, Result<Arc<Cluster>, ClusterError>) {
    let transport = hub.bind(address(name)).expect("bind");
    let settings = Remoting::system_settings(&*transport).seed(seed);
    let system = ActorSystem::with_settings(SYSTEM, settings).expect("system");
    Remoting::start_with(&system, transport, remote).expect("remoting");
    let result = join(&system);
    (system, result)
}

/// [`start_cluster`] with explicit remoting settings on every node.
pub fn start_cluster_with_remote(
    hub: &InMemoryHub,
    names: &[&str],
    settings: &ClusterSettings,
    remote: &RemoteSettings,
) -> Vec<Node> {
    let seeds: Vec<Address> = names.iter().map(|n| address(n)).collect();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let settings = settings.clone().with_seed_nodes(seeds.clone());
            let (system, cluster) =
                try_start_node_with_remote(hub, name, i as u64 + 1, remote.clone(), |s| {
                    Cluster::join(s, settings)
                });
            Node {
                system,
                address: address(name),
                cluster: cluster.expect("join"),
            }
        })
        .collect()
}

/// Starts `names.len()` nodes that all get `names` as their seed list.
pub fn start_cluster(hub: &InMemoryHub, names: &[&str], settings: &ClusterSettings) -> Vec<Node> {
    let seeds: Vec<Address> = names.iter().map(|n| address(n)).collect();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let settings = settings.clone().with_seed_nodes(seeds.clone());
            start_node(hub, name, i as u64 + 1, settings)
        })
        .collect()
}

/// Whether `state` has exactly `expected` as members, all Up.
pub fn all_up(state: &CurrentClusterState, expected: &[&Address]) -> Result<(), String> {
    let members: Vec<(&Address, MemberStatus)> = state
        .members
        .iter()
        .map(|m| (&m.address, m.status))
        .collect();
    let ok = members.len() == expected.len()
        && expected
            .iter()
            .all(|a| members.contains(&(*a, MemberStatus::Up)));
    if ok {
        Ok(())
    } else {
        Err(format!("members {members:?}, expected {expected:?} all Up"))
    }
}

/// Waits until every node in `nodes` sees exactly the members at `expected`, all Up, and
/// agrees on the leader; returns it.
pub async fn await_all_up(nodes: &[&Node], expected: &[&Address]) -> Address {
    await_assert(
        || {
            let mut leaders = Vec::new();
            for node in nodes {
                let state = node.cluster.state();
                all_up(&state, expected).map_err(|e| format!("on {}: {e}", node.address))?;
                if !state.unreachable.is_empty() {
                    return Err(format!(
                        "on {}: unreachable {:?}",
                        node.address, state.unreachable
                    ));
                }
                leaders.push(state.leader.clone());
            }
            match leaders.first() {
                Some(Some(first)) if leaders.iter().all(|l| l.as_ref() == Some(first)) => {
                    Ok(first.clone())
                }
                _ => Err(format!("leaders differ: {leaders:?}")),
            }
        },
        WAIT,
        POLL,
    )
    .await
}

/// Blackholes all traffic between `node` and each of `others`, both ways.
pub fn isolate(hub: &InMemoryHub, node: &Address, others: &[&Address]) {
    for other in others {
        hub.blackhole(node, other, Direction::Both);
    }
}

/// Receives events on `probe` until one matches, within `timeout`; panics otherwise.
pub async fn fish(
    probe: &TestProbe<ClusterEvent>,
    timeout: Duration,
    mut matches: impl FnMut(&ClusterEvent) -> bool,
) -> ClusterEvent {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match probe.receive_one(left).await {
            Some(event) if matches(&event) => return event,
            Some(event) => seen.push(event),
            None => panic!("no matching cluster event within {timeout:?}; got {seen:?}"),
        }
    }
}
