//! Pub-sub under a peer that sends too much and a node that stops answering, on in-memory
//! nodes under a paused clock: a receiver's bound on gossip entries only slows catching up,
//! and `send` avoids an unreachable node while another one holds the path.

mod pubsub_support;

use std::time::Duration;

use actor_cluster::FaultInjector;
use actor_cluster::membership::MemberStatus;
use actor_core::{Actor, ActorRef, ActorResult, Context, Props};
use actor_testkit::{TestProbe, await_assert};
use pubsub_support::*;

/// Longest virtual time a message may take to arrive.
const QUIET: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_receiver_bound_on_gossip_entries_only_delays_catching_up() {
    let hub = actor_cluster::InMemoryHub::new();
    let seeds = [address("a"), address("b")];
    // a sends deltas of up to 3000 entries and gossips rarely; b accepts 3 entries per
    // message and asks every 100 ms, so each of b's rounds brings one delta from a
    let slow = fast_settings().with_gossip_interval(Duration::from_secs(30));
    let nodes = vec![
        start_node(&hub, "a", 1, &seeds, slow),
        start_node(
            &hub,
            "b",
            2,
            &seeds,
            fast_settings().with_max_received_entries(3),
        ),
    ];
    let views: Vec<_> = nodes.iter().map(PsNode::as_node).collect();
    await_all_up(
        &views.iter().collect::<Vec<_>>(),
        &seeds.iter().collect::<Vec<_>>(),
    )
    .await;
    let [a, b] = [&nodes[0], &nodes[1]];
    let probe = TestProbe::<Chat>::new(&a.system);
    let topics: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    for topic in &topics {
        assert!(a.pubsub.subscribe(topic, probe.actor_ref()).await.unwrap());
    }
    // sample what b knows (virtual time, well below b's gossip interval) until it knows all
    let known = || {
        topics
            .iter()
            .filter(|t| !b.pubsub.topic_nodes(t).is_empty())
            .count()
    };
    let mut seen = vec![0];
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.last() != Some(&12) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b saw only {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        let n = known();
        if seen.last() != Some(&n) {
            seen.push(n);
        }
    }
    // one delta at a time, three entries each: the bound cut every delta short
    assert_eq!(seen, [0, 3, 6, 9, 12]);
    for i in 0..12 {
        assert_eq!(b.pubsub.publish(&format!("t{i}"), Chat(format!("m{i}"))), 1);
    }
    for i in 0..12 {
        probe.expect_msg(Chat(format!("m{i}"))).await;
    }
    shutdown(nodes).await;
}

/// Forwards every message to a probe (a real local actor at the same path on every node).
struct Forward(ActorRef<Chat>);

impl Actor for Forward {
    type Msg = Chat;
    async fn handle(&mut self, msg: Chat, _: &mut Context<Self>) -> ActorResult {
        self.0.tell(msg);
        Ok(())
    }
}

/// Everything `probe` receives until it has been quiet for a while (virtual time).
async fn drain(probe: &TestProbe<Chat>) -> usize {
    let mut n = 0;
    while probe.receive_one(QUIET).await.is_some() {
        n += 1;
    }
    n
}

#[tokio::test(start_paused = true)]
async fn send_avoids_an_unreachable_node_while_another_holds_the_path() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    // one service at the same path on a and c
    let probes = [TestProbe::<Chat>::new(&a.system), TestProbe::new(&c.system)];
    for (node, probe) in [a, c].into_iter().zip(&probes) {
        let target = probe.actor_ref().clone();
        let service = node
            .system
            .spawn(Props::new(move || Forward(target.clone())), "service")
            .unwrap();
        assert!(node.pubsub.register(&service).await.unwrap());
    }
    await_assert(
        || match b
            .pubsub
            .send_to_all("/user/service", Chat("ping".into()), true)
        {
            2 => Ok(()),
            n => Err(format!("b reaches {n} instances")),
        },
        WAIT,
        POLL,
    )
    .await;
    for probe in &probes {
        assert!(drain(probe).await > 0);
    }
    // both reachable: they take turns
    for i in 0..4 {
        assert!(b.pubsub.send("/user/service", Chat(format!("r{i}")), false));
    }
    assert_eq!(drain(&probes[0]).await, 2);
    assert_eq!(drain(&probes[1]).await, 2);

    // c stops answering; b sees it unreachable before it is downed
    assert!(hub.crash(&c.address));
    await_assert(
        || {
            let state = b.cluster.state();
            if state.unreachable.iter().any(|m| m.address == c.address) {
                Ok(())
            } else {
                Err("c is not unreachable yet".to_owned())
            }
        },
        WAIT,
        POLL,
    )
    .await;
    // b's mediator has the event (told under the lock that changed the state) and handles
    // it before this request
    assert!(
        !b.pubsub
            .unsubscribe("sync", probes[0].actor_ref())
            .await
            .unwrap()
    );
    for i in 0..6 {
        assert!(b.pubsub.send("/user/service", Chat(format!("u{i}")), false));
    }
    // c was still a member in b's routing when those were sent: the choice avoided it
    let c_status = b
        .cluster
        .state()
        .members
        .iter()
        .find(|m| m.address == c.address)
        .map(|m| m.status);
    assert_eq!(c_status, Some(MemberStatus::Up), "c must not be downed yet");
    assert_eq!(
        b.pubsub
            .send_to_all("/user/service", Chat("all".into()), true),
        2,
        "c's instance is still known"
    );
    let mut got = Vec::new();
    while let Some(msg) = probes[0].receive_one(QUIET).await {
        got.push(msg.0);
    }
    let expected: Vec<String> = (0..6)
        .map(|i| format!("u{i}"))
        .chain(["all".to_owned()])
        .collect();
    assert_eq!(got, expected, "every send went to a");
    shutdown(nodes).await;
}
