//! Partitions and larger clusters through the cluster daemon, on a paused clock.

mod cluster_support;

use std::time::Duration;

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
