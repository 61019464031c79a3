//! Remote death-watch driven by membership: watchers of actors on a node that is downed or
//! removed receive exactly one `Terminated`, from the cluster's decision rather than the
//! remoting layer's loss timeout (set to an hour here). Paused clock.

mod cluster_support;

use std::time::Duration;

use actor_cluster::cluster::ClusterSettings;
use actor_cluster::membership::ClusterEvent;
use actor_cluster::remote::{Quarantined, RemoteQuarantineReason, RemoteSettings, Remoting};
use actor_cluster::wire::RemoteMessage;
use actor_cluster::{FaultInjector, InMemoryHub};
use actor_core::{Actor, ActorRef, ActorResult, Context, Props};
use actor_testkit::TestProbe;
use cluster_support::{Node, await_all_up, fish, start_cluster_with_remote};
use serde::{Deserialize, Serialize};

/// Longest virtual time for failure detection plus downing in the fast profile.
const DETECT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Noop;
impl RemoteMessage for Noop {
    const MANIFEST: &'static str = "cluster-watch.Noop";
}

struct Idle;
impl Actor for Idle {
    type Msg = Noop;
    async fn handle(&mut self, _: Noop, _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// Remoting that never gives up on a lost association by itself.
fn patient_remoting() -> RemoteSettings {
    RemoteSettings::default().loss_timeout(Duration::from_secs(3600))
}

/// Three nodes, all Up, `Noop` registered everywhere, an actor on n3 watched from n1.
async fn watched_cluster(hub: &InMemoryHub) -> (Vec<Node>, TestProbe<()>, ActorRef<Noop>) {
    let nodes = start_cluster_with_remote(
        hub,
        &["n1", "n2", "n3"],
        &ClusterSettings::fast(),
        &patient_remoting(),
    );
    let addresses: Vec<_> = nodes.iter().map(|n| &n.address).collect();
    await_all_up(&nodes.iter().collect::<Vec<_>>(), &addresses).await;
    for node in &nodes {
        Remoting::get(&node.system)
            .expect("remoting")
            .register::<Noop>()
            .expect("register");
    }
    let target = nodes[2]
        .system
        .spawn(Props::new(|| Idle), "target")
        .expect("spawn");
    let remote = Remoting::get(&nodes[0].system)
        .expect("remoting")
        .remote_ref::<Noop>(target.path())
        .expect("remote ref");
    let watcher = TestProbe::<()>::new(&nodes[0].system);
    watcher.watch(&remote).await;
    // the watch is in place: nothing is reported while n3 is healthy
    watcher.expect_no_terminated(Duration::from_secs(2)).await;
    (nodes, watcher, remote)
}

#[tokio::test(start_paused = true)]
async fn a_crashed_node_downed_by_keep_majority_ends_remote_watches_with_one_terminated() {
    let hub = InMemoryHub::new();
    let (nodes, watcher, remote) = watched_cluster(&hub).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let events = TestProbe::<ClusterEvent>::new(&a.system);
    a.cluster.subscribe(events.actor_ref());
    let quarantines = TestProbe::<Quarantined>::new(&a.system);
    a.system.event_stream().subscribe(quarantines.actor_ref());

    assert!(hub.crash(&c.address));
    let downed = fish(&events, DETECT, |e| {
        matches!(e, ClusterEvent::MemberDowned(_))
    })
    .await;
    assert!(
        matches!(&downed, ClusterEvent::MemberDowned(m) if m.address == c.address),
        "{downed:?}"
    );
    // Terminated follows the downing decision promptly (the loss timeout is an hour).
    watcher
        .within(
            Duration::ZERO,
            Duration::from_secs(1),
            watcher.expect_terminated(&remote),
        )
        .await;
    let q = quarantines
        .expect_msg_matching(|q| q.address == c.address)
        .await;
    assert!(
        matches!(&q.reason, RemoteQuarantineReason::Requested { reason } if reason.contains("downed")),
        "{q:?}"
    );
    assert!(remote.is_terminated());
    // exactly one: neither the removal nor anything later reports it again
    fish(
        &events,
        DETECT,
        |e| matches!(e, ClusterEvent::MemberRemoved { member, .. } if member.address == c.address),
    )
    .await;
    watcher.expect_no_terminated(Duration::from_secs(10)).await;
    await_all_up(&[a, b], &[&a.address, &b.address]).await;
    for node in nodes {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_node_that_leaves_ends_remote_watches_with_one_terminated() {
    let hub = InMemoryHub::new();
    let (nodes, watcher, remote) = watched_cluster(&hub).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let events = TestProbe::<ClusterEvent>::new(&a.system);
    a.cluster.subscribe(events.actor_ref());

    c.cluster.leave();
    fish(
        &events,
        DETECT,
        |e| matches!(e, ClusterEvent::MemberRemoved { member, .. } if member.address == c.address),
    )
    .await;
    watcher
        .within(Duration::ZERO, DETECT, watcher.expect_terminated(&remote))
        .await;
    watcher.expect_no_terminated(Duration::from_secs(10)).await;
    assert!(c.system.await_termination(DETECT).await, "the node left");
    await_all_up(&[a, b], &[&a.address, &b.address]).await;
    for node in nodes {
        node.system.terminate().await;
    }
}

#[tokio::test(start_paused = true)]
async fn quarantine_by_hand_ends_watches_once_and_spares_other_incarnations() {
    let hub = InMemoryHub::new();
    let (nodes, watcher, remote) = watched_cluster(&hub).await;
    let (a, c) = (&nodes[0], &nodes[2]);
    let remoting = Remoting::get(&a.system).expect("remoting");
    let quarantines = TestProbe::<Quarantined>::new(&a.system);
    a.system.event_stream().subscribe(quarantines.actor_ref());
    let uid = c.cluster.self_member().uid;

    // another incarnation's uid: nothing happens to the live one
    remoting.quarantine(&c.address, uid + 1, "stale incarnation");
    // this node itself: ignored
    remoting.quarantine(&a.address, a.cluster.self_member().uid, "self");
    watcher.expect_no_terminated(Duration::from_secs(1)).await;
    quarantines.expect_no_msg(Duration::from_millis(100)).await;
    assert!(!remote.is_terminated());

    remoting.quarantine(&c.address, uid, "by hand");
    remoting.quarantine(&c.address, uid, "twice");
    watcher.expect_terminated(&remote).await;
    let q = quarantines.expect_msg_matching(|_| true).await;
    assert_eq!(
        (q.address.clone(), q.uid, q.reason.clone()),
        (
            c.address.clone(),
            Some(uid),
            RemoteQuarantineReason::Requested {
                reason: "by hand".into()
            }
        )
    );
    watcher.expect_no_terminated(Duration::from_secs(2)).await;
    quarantines.expect_no_msg(Duration::from_millis(100)).await;
    for node in nodes {
        node.system.terminate().await;
    }
}
