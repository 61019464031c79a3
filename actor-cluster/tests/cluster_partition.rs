//! Partitions and larger clusters through the cluster daemon, on a paused clock.

mod cluster_support;

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::Address;
use actor_cluster::cluster::{Cluster, ClusterError, DowningLease};
use actor_cluster::downing::DowningStrategy;
use actor_cluster::transport::BoxFuture;
use parking_lot::Mutex;

use actor_cluster::InMemoryHub;
use actor_cluster::cluster::ClusterSettings;
use actor_cluster::membership::{ClusterEvent, MemberStatus};
use actor_testkit::TestProbe;
use cluster_support::{await_all_up, fish, isolate, start_cluster};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(start_paused = true)]
async fn a_two_two_partition_under_keep_majority_leaves_exactly_the_side_with_the_lowest_address() {
    let hub = InMemoryHub::new();
    let nodes = start_cluster(&hub, &["n1", "n2", "n3", "n4"], &ClusterSettings::fast());
    let all: Vec<_> = nodes.iter().collect();
    let addresses: Vec<_> = nodes.iter().map(|n| &n.address).collect();
    await_all_up(&all, &addresses).await;
    let probe = TestProbe::<ClusterEvent>::new(&nodes[0].system);
    nodes[0].cluster.subscribe(probe.actor_ref());

    for node in &nodes[..2] {
        isolate(&hub, &node.address, &[&nodes[2].address, &nodes[3].address]);
    }

    // The side holding n1 (the lowest address) survives; the other side downs itself.
    for node in &nodes[2..] {
        assert!(
            node.system.await_termination(WAIT).await,
            "{} shut down",
            node.address
        );
    }
    for _ in 0..2 {
        let removed = fish(&probe, WAIT, |e| {
            matches!(e, ClusterEvent::MemberRemoved { .. })
        })
        .await;
        assert!(
            matches!(&removed, ClusterEvent::MemberRemoved { member, previous_status: MemberStatus::Down }
                if member.address == nodes[2].address || member.address == nodes[3].address),
            "{removed:?}"
        );
    }
    let leader = await_all_up(&all[..2], &addresses[..2]).await;
    assert_eq!(leader, nodes[0].address);
    assert!(!nodes[0].system.is_terminated() && !nodes[1].system.is_terminated());
    for node in &nodes[..2] {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_fifty_node_cluster_converges() {
    let hub = InMemoryHub::new();
    let names: Vec<String> = (0..50).map(|i| format!("n{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // Every node gets all fifty as seeds; the first forms the cluster.
    let nodes = start_cluster(&hub, &names, &ClusterSettings::fast());
    let all: Vec<_> = nodes.iter().collect();
    let addresses: Vec<_> = nodes.iter().map(|n| &n.address).collect();
    let leader = await_all_up(&all, &addresses).await;
    assert_eq!(leader, nodes[0].address);
    for node in nodes {
        node.system.terminate().await;
    }
}

/// A lease shared in process: the first owner to ask holds it for good.
#[derive(Default)]
struct SharedLease(Arc<Mutex<Option<Address>>>);

impl DowningLease for SharedLease {
    fn acquire(&self, owner: &Address) -> BoxFuture<'static, bool> {
        let holder = self.0.clone();
        let owner = owner.clone();
        Box::pin(async move {
            let mut holder = holder.lock();
            let held = holder.get_or_insert_with(|| owner.clone());
            *held == owner
        })
    }
}

#[tokio::test(start_paused = true)]
async fn lease_majority_keeps_exactly_the_side_that_won_the_lease() {
    let hub = InMemoryHub::new();
    let settings = ClusterSettings::fast().with_downing_strategy(DowningStrategy::LeaseMajority {
        role: None,
        acquire_lease_delay_for_minority: Duration::from_millis(500),
    });
    let names = ["n1", "n2", "n3", "n4"];
    let seeds: Vec<Address> = names.iter().map(|n| cluster_support::address(n)).collect();
    let holder = Arc::new(Mutex::new(None));
    let nodes: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let settings = settings.clone().with_seed_nodes(seeds.clone());
            cluster_support::start_node_with(&hub, name, i as u64 + 1, |system| {
                Cluster::join_with_lease(system, settings, Arc::new(SharedLease(holder.clone())))
            })
        })
        .collect();
    let all: Vec<_> = nodes.iter().collect();
    let addresses: Vec<_> = nodes.iter().map(|n| &n.address).collect();
    await_all_up(&all, &addresses).await;

    for node in &nodes[..2] {
        isolate(&hub, &node.address, &[&nodes[2].address, &nodes[3].address]);
    }
    let winner = actor_testkit::await_assert(
        || holder.lock().clone().ok_or("nobody holds the lease yet"),
        WAIT,
        Duration::from_millis(50),
    )
    .await;
    let (winners, losers) = if winner == nodes[0].address || winner == nodes[1].address {
        (&nodes[..2], &nodes[2..])
    } else {
        (&nodes[2..], &nodes[..2])
    };
    for node in losers {
        assert!(
            node.system.await_termination(WAIT).await,
            "{} shut down",
            node.address
        );
    }
    let kept: Vec<_> = winners.iter().collect();
    let kept_addresses: Vec<_> = winners.iter().map(|n| &n.address).collect();
    await_all_up(&kept, &kept_addresses).await;
    assert!(winners.iter().all(|n| !n.system.is_terminated()));
    for node in winners {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn lease_majority_without_a_lease_is_refused() {
    let hub = InMemoryHub::new();
    let settings = ClusterSettings::fast().with_downing_strategy(DowningStrategy::LeaseMajority {
        role: None,
        acquire_lease_delay_for_minority: Duration::from_millis(500),
    });
    let (system, result) =
        cluster_support::try_start_node_with(&hub, "nolease", 1, |s| Cluster::join(s, settings));
    assert!(
        matches!(result, Err(ClusterError::LeaseRequired)),
        "{:?}",
        result.err()
    );
    system.terminate().await;
}
