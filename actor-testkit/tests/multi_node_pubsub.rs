//! Multi-node pub-sub test, in thread mode and in simulated mode (20 seeds, one replayed to
//! an identical trace): three nodes; subscribe on a and c, publish on b, both receive;
//! a unsubscribes and stops receiving; a node crash removes its subscribers.
#![cfg(feature = "multi-node")]

use std::time::Duration;

use actor_cluster::pubsub::{DistributedPubSub, PubSubSettings};
use actor_cluster::wire::RemoteMessage;
use actor_testkit::await_assert;
use actor_testkit::multi_node::{MultiNodeSpec, Node, RoleOutcome, RunReport};
use serde::{Deserialize, Serialize};

const ROLES: [&str; 3] = ["a", "b", "c"];
const TOPIC: &str = "news";

/// How many seeds the simulated runs cover.
const SEEDS: u64 = 20;

/// Simulated runs must stay fast: a bound on wall time per run.
const SIMULATED_WALL: Duration = Duration::from_secs(2);

/// How long a node waits for gossip (or downing) to change what it knows of a topic.
const CONVERGE: Duration = Duration::from_secs(20);

/// Poll interval of those waits.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Chat(String);

impl RemoteMessage for Chat {
    const MANIFEST: &'static str = "multi-node.pubsub.Chat";
}

fn chat(text: &str) -> Chat {
    Chat(text.to_owned())
}

/// Waits until `pubsub` knows exactly the nodes of `roles` as holding subscribers.
async fn await_topic_on(node: &Node, pubsub: &DistributedPubSub, roles: &[&str]) {
    let mut expected: Vec<_> = roles.iter().map(|r| node.address(r)).collect();
    expected.sort();
    await_assert(
        || {
            let seen = pubsub.topic_nodes(TOPIC);
            if seen == expected {
                Ok(())
            } else {
                Err(format!(
                    "{} sees {TOPIC:?} on {seen:?}, expected {expected:?}",
                    node.role()
                ))
            }
        },
        CONVERGE,
        POLL,
    )
    .await;
    node.trace(format!("{TOPIC} on {roles:?}"));
}

async fn pubsub_across_nodes(node: Node) {
    node.await_members_up(&ROLES).await;
    let settings = PubSubSettings::default().with_gossip_interval(Duration::from_millis(100));
    let pubsub = DistributedPubSub::start(node.system(), settings).expect("pub-sub");
    let probe = node.probe::<Chat>();
    if node.is("a") || node.is("c") {
        assert!(
            pubsub
                .subscribe(TOPIC, probe.actor_ref())
                .await
                .expect("subscribe")
        );
    }
    node.enter_barrier("subscribed").await;

    // b publishes once it knows both subscribers; a and c receive
    node.run_on(&["b"], async {
        await_topic_on(&node, &pubsub, &["a", "c"]).await;
        assert_eq!(
            pubsub.publish(TOPIC, chat("hello")),
            2,
            "one message per node"
        );
    })
    .await;
    if !node.is("b") {
        probe.expect_msg(chat("hello")).await;
        node.trace("received hello");
    }
    node.enter_barrier("received").await;

    // a unsubscribes: only c receives
    node.run_on(&["a"], async {
        assert!(
            pubsub
                .unsubscribe(TOPIC, probe.actor_ref())
                .await
                .expect("unsubscribe")
        );
    })
    .await;
    node.enter_barrier("unsubscribed").await;
    node.run_on(&["b"], async {
        await_topic_on(&node, &pubsub, &["c"]).await;
        assert_eq!(pubsub.publish(TOPIC, chat("only c")), 1);
    })
    .await;
    if node.is("c") {
        probe.expect_msg(chat("only c")).await;
        node.trace("received only c");
    }
    node.enter_barrier("published to c").await;
    if node.is("a") {
        probe.expect_no_msg(Duration::from_millis(500)).await;
    }

    // a subscribes again; then c crashes and its subscriber disappears from b's view
    node.run_on(&["a"], async {
        assert!(
            pubsub
                .subscribe(TOPIC, probe.actor_ref())
                .await
                .expect("subscribe")
        );
    })
    .await;
    node.run_on(&["b"], await_topic_on(&node, &pubsub, &["a", "c"]))
        .await;
    node.enter_barrier("resubscribed").await;
    node.run_on(&["a"], node.conductor().crash("c")).await;
    // c's body is dropped here; a and b go on
    node.run_on(&["b"], async {
        await_topic_on(&node, &pubsub, &["a"]).await;
        assert_eq!(pubsub.publish(TOPIC, chat("after crash")), 1);
    })
    .await;
    if node.is("a") {
        probe.expect_msg(chat("after crash")).await;
        node.trace("received after crash");
    }
    node.enter_barrier("done").await;
}

fn check(report: &RunReport) {
    assert_eq!(report.outcome("c"), Some(&RoleOutcome::Crashed));
    for role in ["a", "b"] {
        assert_eq!(report.outcome(role), Some(&RoleOutcome::Finished));
    }
    for (role, event) in [
        ("a", "received hello"),
        ("c", "received hello"),
        ("c", "received only c"),
        ("b", r#"news on ["c"]"#),
        ("b", r#"news on ["a"]"#),
        ("a", "received after crash"),
    ] {
        assert!(
            report.trace.contains(role, event),
            "{role} did not record {event}:\n{}",
            report.trace
        );
    }
}

fn spec() -> MultiNodeSpec {
    MultiNodeSpec::new(&ROLES).expect("valid roles")
}

#[test]
fn threads_subscribe_on_a_publish_on_b_received_on_a_and_c_unsubscribe_and_crash() {
    let report = spec().run_or_panic(pubsub_across_nodes);
    check(&report);
}

#[test]
fn simulated_pubsub_across_nodes_over_20_seeds_and_a_seed_replays_exactly() {
    let mut first = None;
    for seed in 0..SEEDS {
        let report = spec().simulated(seed).run_or_panic(pubsub_across_nodes);
        assert!(
            report.wall < SIMULATED_WALL,
            "seed {seed}: {:?}",
            report.wall
        );
        check(&report);
        if seed == 0 {
            first = Some(report);
        }
    }
    let first = first.expect("seed 0 ran");
    let replay = spec().simulated(0).run_or_panic(pubsub_across_nodes);
    assert_eq!(
        replay.trace, first.trace,
        "seed 0 replayed differently:\n{}\nvs\n{}",
        first.trace, replay.trace
    );
}
