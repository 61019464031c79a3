//! Lease-majority downing with the coordination crate's lease, through
//! `Cluster::join_with_coordination_lease`: in a 2-2 partition exactly the side that wins the
//! shared `InMemoryLeaseRegistry`'s lease survives. Paused clock.

mod cluster_support;

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::{Cluster, ClusterError, ClusterSettings, CoordinationLease};
use actor_cluster::downing::DowningStrategy;
use actor_cluster::remote::Remoting;
use actor_cluster::{Address, InMemoryHub};
use actor_coordination::lease::{
    InMemoryLease, InMemoryLeaseRegistry, Lease, LeaseOwner, LeaseSettings,
};
use actor_core::ActorSystem;
use cluster_support::{Node, WAIT, await_all_up, isolate, start_node_with, try_start_node_with};

const LEASE: &str = "cluster-sbr";

fn settings() -> ClusterSettings {
    ClusterSettings::fast().with_downing_strategy(DowningStrategy::LeaseMajority {
        role: None,
        acquire_lease_delay_for_minority: Duration::from_millis(500),
    })
}

/// This node's handle on the shared lease.
fn lease_of(system: &ActorSystem, registry: &Arc<InMemoryLeaseRegistry>) -> Arc<InMemoryLease> {
    let remoting = Remoting::get(system).expect("remoting");
    let owner = CoordinationLease::owner_for(remoting.local_address(), remoting.local_uid());
    let settings = LeaseSettings::builder(LEASE, owner)
        .ttl(Duration::from_secs(10))
        .build()
        .expect("lease settings");
    Arc::new(InMemoryLease::with_registry(settings, registry.clone()))
}

#[tokio::test(start_paused = true)]
async fn a_coordination_lease_keeps_exactly_the_side_that_won_it() {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let names = ["n1", "n2", "n3", "n4"];
    let seeds: Vec<Address> = names.iter().map(|n| cluster_support::address(n)).collect();
    let mut leases = Vec::new();
    let nodes: Vec<Node> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let settings = settings().with_seed_nodes(seeds.clone());
            start_node_with(&hub, name, i as u64 + 1, |system| {
                let lease = lease_of(system, &registry);
                leases.push(lease.clone());
                Cluster::join_with_coordination_lease(system, settings, lease)
            })
        })
        .collect();
    let all: Vec<_> = nodes.iter().collect();
    let addresses: Vec<_> = nodes.iter().map(|n| &n.address).collect();
    await_all_up(&all, &addresses).await;
    assert_eq!(registry.holder_of(LEASE), None, "no one asks while healthy");

    for node in &nodes[..2] {
        isolate(&hub, &node.address, &[&nodes[2].address, &nodes[3].address]);
    }
    let holder = actor_testkit::await_assert(
        || {
            registry
                .holder_of(LEASE)
                .ok_or("nobody holds the lease yet")
        },
        WAIT,
        Duration::from_millis(50),
    )
    .await;
    let winner = nodes
        .iter()
        .position(|n| {
            let uid = n.cluster.self_member().uid;
            holder == LeaseOwner::for_node(&n.address, uid)
        })
        .expect("the holder is one of the nodes");
    let (winners, losers) = if winner < 2 {
        (&nodes[..2], &nodes[2..])
    } else {
        (&nodes[2..], &nodes[..2])
    };
    for node in losers {
        assert!(
            node.system.await_termination(WAIT).await,
            "{} (losing side) shut down",
            node.address
        );
    }
    let kept: Vec<_> = winners.iter().collect();
    let kept_addresses: Vec<_> = winners.iter().map(|n| &n.address).collect();
    await_all_up(&kept, &kept_addresses).await;
    assert!(winners.iter().all(|n| !n.system.is_terminated()));
    // the winner still holds the lease (renewed in the background), and it never moved
    assert!(leases[winner].check_lease());
    assert_eq!(registry.holder_of(LEASE), Some(holder));
    for node in winners {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_coordination_lease_owned_by_someone_else_is_refused() {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let stranger = LeaseSettings::builder(LEASE, LeaseOwner::new("someone-else", 1))
        .build()
        .expect("lease settings");
    let lease: Arc<dyn Lease> = Arc::new(InMemoryLease::with_registry(stranger, registry));
    let (system, result) = try_start_node_with(&hub, "n1", 1, |system| {
        Cluster::join_with_coordination_lease(system, settings(), lease)
    });
    match result {
        Err(ClusterError::LeaseOwnerMismatch { expected, actual }) => {
            assert_eq!(actual, "someone-else#1");
            assert!(expected.starts_with("clu@n1:0#"), "{expected}");
        }
        other => panic!("expected LeaseOwnerMismatch, got {:?}", other.err()),
    }
    system.terminate().await;
}
