//! Cluster daemon over the in-memory transport on a paused clock: joining, gossip
//! convergence, leader, and subscriptions.

mod cluster_support;

use std::time::Duration;

use actor_cluster::InMemoryHub;
use actor_cluster::cluster::{Cluster, ClusterError, ClusterSettings};
use actor_cluster::membership::{ClusterEvent, MemberStatus};
use actor_cluster::remote::Remoting;
use actor_core::ActorSystem;
use actor_testkit::TestProbe;
use cluster_support::{address, await_all_up, start_cluster, start_node};

#[tokio::test(start_paused = true)]
async fn three_nodes_with_the_same_seed_list_join_and_agree_on_members_and_leader() {
    let hub = InMemoryHub::new();
    let nodes = start_cluster(&hub, &["n1", "n2", "n3"], &ClusterSettings::fast());
    let addresses: Vec<_> = nodes.iter().map(|n| &n.address).collect();
    let refs: Vec<_> = nodes.iter().collect();
    let leader = await_all_up(&refs, &addresses).await;
    // The first seed formed the cluster, so it is the oldest member and the leader.
    assert_eq!(leader, address("n1"));
    for node in &nodes {
        let me = node.cluster.self_member();
        assert_eq!(me.status, MemberStatus::Up);
        assert_eq!(me.address, node.address);
        assert!(Cluster::get(&node.system).is_some());
    }
    let up_numbers: Vec<u64> = nodes[0]
        .cluster
        .state()
        .members
        .iter()
        .map(|m| m.up_number)
        .collect();
    assert!(up_numbers.iter().all(|&n| n > 0), "{up_numbers:?}");
    for node in nodes {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_node_whose_seed_list_is_only_itself_forms_a_cluster_of_one() {
    let hub = InMemoryHub::new();
    let me = address("solo");
    let node = start_node(
        &hub,
        "solo",
        1,
        ClusterSettings::fast().with_seed_nodes(vec![me.clone()]),
    );
    let leader = await_all_up(&[&node], &[&me]).await;
    assert_eq!(leader, me);
    node.system.terminate().await;
}

#[tokio::test(start_paused = true)]
async fn later_nodes_join_through_a_running_seed() {
    let hub = InMemoryHub::new();
    let seed = address("s1");
    let settings = ClusterSettings::fast().with_seed_nodes(vec![seed.clone()]);
    let first = start_node(&hub, "s1", 1, settings.clone());
    await_all_up(&[&first], &[&seed]).await;
    let second = start_node(&hub, "s2", 2, settings.clone());
    let third = start_node(&hub, "s3", 3, settings);
    let leader = await_all_up(
        &[&first, &second, &third],
        &[&first.address, &second.address, &third.address],
    )
    .await;
    assert_eq!(leader, seed);
    for node in [first, second, third] {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_gets_the_current_state_first_then_changes() {
    let hub = InMemoryHub::new();
    let seed = address("a");
    let settings = ClusterSettings::fast().with_seed_nodes(vec![seed.clone()]);
    let a = start_node(&hub, "a", 1, settings.clone());
    let b = start_node(&hub, "b", 2, settings.clone());
    await_all_up(&[&a, &b], &[&a.address, &b.address]).await;

    let probe = TestProbe::<ClusterEvent>::new(&b.system);
    b.cluster.subscribe(probe.actor_ref());
    let current = probe.receive_n(3).await;
    let state = b.cluster.state();
    assert_eq!(
        current,
        vec![
            ClusterEvent::MemberUp(state.members[0].clone()),
            ClusterEvent::MemberUp(state.members[1].clone()),
            ClusterEvent::LeaderChanged(Some(seed.clone())),
        ]
    );

    // Then changes: a third node joins and comes Up.
    let c = start_node(&hub, "c", 3, settings);
    let joined = probe
        .fish_for_message(|e| matches!(e, ClusterEvent::MemberJoined(m) if m.address == c.address))
        .await;
    let ClusterEvent::MemberJoined(member) = joined else {
        unreachable!("matched MemberJoined");
    };
    assert_eq!(member.status, MemberStatus::Joining);
    probe
        .fish_for_message(|e| matches!(e, ClusterEvent::MemberUp(m) if m.address == c.address))
        .await;
    for node in [a, b, c] {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn join_needs_remoting_and_happens_once() {
    let system = ActorSystem::new("plain").expect("system");
    let err = Cluster::join(&system, ClusterSettings::fast()).err();
    assert!(
        matches!(err, Some(ClusterError::RemotingNotStarted { .. })),
        "{err:?}"
    );
    system.terminate().await;

    let hub = InMemoryHub::new();
    let node = start_node(&hub, "once", 1, ClusterSettings::fast());
    let again = Cluster::join(&node.system, ClusterSettings::fast()).err();
    assert!(
        matches!(again, Some(ClusterError::AlreadyJoined { .. })),
        "{again:?}"
    );
    let bad = ClusterSettings::fast().with_gossip_interval(Duration::ZERO);
    let hub2 = InMemoryHub::new();
    let t = hub2.bind(address("bad")).expect("bind");
    let other = ActorSystem::with_settings("clu", Remoting::system_settings(&*t)).expect("system");
    Remoting::start(&other, t).expect("remoting");
    assert!(matches!(
        Cluster::join(&other, bad),
        Err(ClusterError::Settings(_))
    ));
    node.system.terminate().await;
    other.terminate().await;
}

/// One three-node formation from scratch: the events node n1 sees, and the virtual time
/// until every node is Up.
async fn formation() -> (Vec<ClusterEvent>, Duration) {
    let start = tokio::time::Instant::now();
    let hub = InMemoryHub::new();
    let seed = address("n1");
    let settings = ClusterSettings::fast().with_seed_nodes(vec![seed]);
    let first = start_node(&hub, "n1", 1, settings.clone());
    let probe = TestProbe::<ClusterEvent>::new(&first.system);
    first.cluster.subscribe(probe.actor_ref());
    let others = [
        start_node(&hub, "n2", 2, settings.clone()),
        start_node(&hub, "n3", 3, settings),
    ];
    await_all_up(
        &[&first, &others[0], &others[1]],
        &[&first.address, &others[0].address, &others[1].address],
    )
    .await;
    let elapsed = start.elapsed();
    let mut events = Vec::new();
    while let Some(event) = probe.receive_one(Duration::ZERO).await {
        events.push(event);
    }
    for node in others.into_iter().chain([first]) {
        node.system.terminate().await;
    }
    (events, elapsed)
}

#[tokio::test(start_paused = true)]
async fn the_same_seeds_give_the_same_run() {
    let (events, elapsed) = formation().await;
    assert!(events.len() >= 6, "{events:?}");
    assert_eq!(formation().await, (events, elapsed));
}

#[tokio::test(start_paused = true)]
async fn only_the_first_seed_forms_the_cluster_and_the_others_retry_until_it_is_up() {
    let hub = InMemoryHub::new();
    let seeds = vec![address("n1"), address("n2"), address("n3")];
    let settings = ClusterSettings::fast().with_seed_nodes(seeds.clone());
    let n2 = start_node(&hub, "n2", 2, settings.clone());
    let n3 = start_node(&hub, "n3", 3, settings.clone());
    // Well past the seed-node timeout: without the first seed, nobody forms an island.
    tokio::time::sleep(actor_cluster::cluster::FAST_SEED_NODE_TIMEOUT * 5).await;
    for node in [&n2, &n3] {
        assert!(
            node.cluster.state().members.is_empty(),
            "{:?}",
            node.cluster.state()
        );
        assert_eq!(node.cluster.self_member().status, MemberStatus::Joining);
    }
    let n1 = start_node(&hub, "n1", 1, settings);
    let leader = await_all_up(&[&n1, &n2, &n3], &[&seeds[0], &seeds[1], &seeds[2]]).await;
    assert_eq!(leader, seeds[0]);
    for node in [n1, n2, n3] {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn role_leaders_are_reported() {
    let hub = InMemoryHub::new();
    let seed = address("r1");
    let settings = ClusterSettings::fast().with_seed_nodes(vec![seed.clone()]);
    let r1 = start_node(&hub, "r1", 1, settings.clone());
    let r2 = start_node(&hub, "r2", 2, settings.with_roles(["backend"]));
    await_all_up(&[&r1, &r2], &[&r1.address, &r2.address]).await;
    let state = r1.cluster.state();
    assert_eq!(
        state.role_leaders.get("backend"),
        Some(&Some(r2.address.clone()))
    );
    assert!(r2.cluster.self_member().has_role("backend"));
    let probe = TestProbe::<ClusterEvent>::new(&r1.system);
    r1.cluster.subscribe(probe.actor_ref());
    probe
        .fish_for_message(|e| {
            matches!(e, ClusterEvent::RoleLeaderChanged { role, leader: Some(l) } if role == "backend" && *l == r2.address)
        })
        .await;
    for node in [r1, r2] {
        node.system.terminate().await;
    }
}
