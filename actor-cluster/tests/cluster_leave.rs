//! Graceful leave and manual down through the cluster daemon, on a paused clock.

mod cluster_support;

use std::time::Duration;

use actor_cluster::cluster::ClusterSettings;
use actor_cluster::membership::{ClusterEvent, MemberStatus};
use actor_cluster::{FaultInjector, InMemoryHub};
use actor_testkit::TestProbe;
use cluster_support::{address, await_all_up, fish, start_cluster};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(start_paused = true)]
async fn the_leader_leaves_gracefully_everyone_sees_it_removed_and_a_new_leader() {
    let hub = InMemoryHub::new();
    let nodes = start_cluster(&hub, &["n1", "n2", "n3"], &ClusterSettings::fast());
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let leader = await_all_up(&[a, b, c], &[&a.address, &b.address, &c.address]).await;
    assert_eq!(leader, a.address);
    let probes: Vec<TestProbe<ClusterEvent>> = [b, c]
        .iter()
        .map(|n| {
            let probe = TestProbe::new(&n.system);
            n.cluster.subscribe(probe.actor_ref());
            probe
        })
        .collect();

    a.cluster.leave();

    for probe in &probes {
        fish(
            probe,
            WAIT,
            |e| matches!(e, ClusterEvent::MemberLeft(m) if m.address == a.address),
        )
        .await;
        let removed = fish(probe, WAIT, |e| {
            matches!(e, ClusterEvent::MemberRemoved { .. })
        })
        .await;
        assert!(
            matches!(&removed, ClusterEvent::MemberRemoved { member, previous_status: MemberStatus::Exiting } if member.address == a.address),
            "{removed:?}"
        );
    }
    // The next oldest member leads.
    let new_leader = await_all_up(&[b, c], &[&b.address, &c.address]).await;
    assert_eq!(new_leader, address("n2"));
    assert!(
        a.system.await_termination(WAIT).await,
        "the leaving node shut down"
    );
    for node in &nodes[1..] {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_manually_downed_node_is_removed_and_shuts_down() {
    let hub = InMemoryHub::new();
    let nodes = start_cluster(&hub, &["n1", "n2", "n3"], &ClusterSettings::fast());
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    await_all_up(&[a, b, c], &[&a.address, &b.address, &c.address]).await;

    b.cluster.down(c.address.clone());

    assert!(
        c.system.await_termination(WAIT).await,
        "the downed node shut down"
    );
    await_all_up(&[a, b], &[&a.address, &b.address]).await;
    for node in &nodes[..2] {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_node_rejoins_as_a_new_incarnation_replacing_the_old_one() {
    let hub = InMemoryHub::new();
    let settings = ClusterSettings::fast();
    let nodes = start_cluster(&hub, &["n1", "n2", "n3"], &settings);
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    await_all_up(&[a, b, c], &[&a.address, &b.address, &c.address]).await;
    let old_uid = c.cluster.self_member().uid;

    assert!(hub.crash(&c.address));
    c.system.terminate().await;
    let restarted = cluster_support::start_node(
        &hub,
        "n3",
        3,
        settings.with_seed_nodes(vec![a.address.clone()]),
    );
    let new_uid = restarted.cluster.self_member().uid;
    assert_ne!(new_uid, old_uid);

    await_all_up(
        &[a, b, &restarted],
        &[&a.address, &b.address, &restarted.address],
    )
    .await;
    for node in [a, b, &restarted] {
        let state = node.cluster.state();
        let member = state.member(&restarted.address).expect("n3 is a member");
        assert_eq!(member.uid, new_uid, "on {}", node.address);
    }
    restarted.system.terminate().await;
    for node in &nodes[..2] {
        node.system.terminate().await;
    }
}
