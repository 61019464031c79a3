//! Failure detection and downing through the cluster daemon, on a paused clock.

mod cluster_support;

use std::time::Duration;

use actor_cluster::cluster::ClusterSettings;
use actor_cluster::downing::DowningStrategy;
use actor_cluster::membership::{ClusterEvent, MemberStatus};
use actor_cluster::{FaultInjector, InMemoryHub};
use actor_testkit::TestProbe;
use cluster_support::{await_all_up, fish, isolate, start_cluster};

const DETECT: Duration = Duration::from_secs(10);

/// What the isolated node does once the others downed it.
#[derive(Clone, Copy)]
enum Isolated {
    /// It downs itself (minority side) and terminates its system.
    ShutsDown,
    /// It downs the others and goes on alone (auto-down: an island).
    FormsIsland,
}

async fn crashed_node_is_downed(settings: ClusterSettings, isolated: Isolated) {
    let hub = InMemoryHub::new();
    let nodes = start_cluster(&hub, &["n1", "n2", "n3"], &settings);
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    await_all_up(&[a, b, c], &[&a.address, &b.address, &c.address]).await;
    let probe = TestProbe::<ClusterEvent>::new(&a.system);
    a.cluster.subscribe(probe.actor_ref());

    isolate(&hub, &c.address, &[&a.address, &b.address]);

    let unreachable = fish(&probe, DETECT, |e| {
        matches!(e, ClusterEvent::UnreachableMember(_))
    })
    .await;
    assert!(
        matches!(&unreachable, ClusterEvent::UnreachableMember(m) if m.address == c.address),
        "{unreachable:?}"
    );
    let downed = fish(&probe, DETECT, |e| {
        matches!(e, ClusterEvent::MemberDowned(_))
    })
    .await;
    assert!(
        matches!(&downed, ClusterEvent::MemberDowned(m) if m.address == c.address),
        "{downed:?}"
    );
    let removed = fish(&probe, DETECT, |e| {
        matches!(e, ClusterEvent::MemberRemoved { .. })
    })
    .await;
    assert!(
        matches!(&removed, ClusterEvent::MemberRemoved { member, previous_status: MemberStatus::Down } if member.address == c.address),
        "{removed:?}"
    );
    await_all_up(&[a, b], &[&a.address, &b.address]).await;
    match isolated {
        Isolated::ShutsDown => {
            assert!(
                c.system.await_termination(DETECT).await,
                "the downed node shut down"
            );
        }
        Isolated::FormsIsland => {
            // Auto-down is unsafe: the cut-off node downs the others and stays up alone.
            await_all_up(&[c], &[&c.address]).await;
            c.system.terminate().await;
        }
    }
    for node in &nodes[..2] {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_isolated_node_becomes_unreachable_and_keep_majority_downs_it() {
    crashed_node_is_downed(ClusterSettings::fast(), Isolated::ShutsDown).await;
}

#[tokio::test(start_paused = true)]
async fn an_isolated_node_is_auto_downed_in_the_fast_profile() {
    let settings = ClusterSettings::fast().with_downing_strategy(DowningStrategy::AutoDown {
        after: Duration::from_millis(500),
    });
    crashed_node_is_downed(settings, Isolated::FormsIsland).await;
}

#[tokio::test(start_paused = true)]
async fn a_partition_that_heals_before_downing_gives_reachable_member() {
    // A stable-after longer than the partition: nothing is downed.
    let mut settings = ClusterSettings::fast();
    settings.downing = settings.downing.with_stable_after(Duration::from_secs(30));
    let hub = InMemoryHub::new();
    let nodes = start_cluster(&hub, &["n1", "n2", "n3"], &settings);
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    await_all_up(&[a, b, c], &[&a.address, &b.address, &c.address]).await;
    let probe = TestProbe::<ClusterEvent>::new(&a.system);
    a.cluster.subscribe(probe.actor_ref());

    isolate(&hub, &c.address, &[&a.address, &b.address]);
    fish(
        &probe,
        DETECT,
        |e| matches!(e, ClusterEvent::UnreachableMember(m) if m.address == c.address),
    )
    .await;
    for other in [&a.address, &b.address] {
        hub.pass_through(&c.address, other, actor_cluster::Direction::Both);
    }
    fish(
        &probe,
        DETECT,
        |e| matches!(e, ClusterEvent::ReachableMember(m) if m.address == c.address),
    )
    .await;
    await_all_up(&[a, b, c], &[&a.address, &b.address, &c.address]).await;
    for node in nodes {
        node.system.terminate().await;
    }
}
