//! A supervision restart of a pub-sub mediator, on three in-memory nodes under a paused
//! clock: the restarted mediator keeps its registry version (so peers accept its later
//! changes), keeps its subscriptions and registrations, and still watches its subscribers.
//!
//! The restart is caused with the test-only hook `DistributedPubSub::inject_mediator_failure`
//! (nothing a user or a peer sends can make the mediator fail).

mod pubsub_support;

use std::time::Duration;

use actor_testkit::TestProbe;
use pubsub_support::*;

/// Longest virtual time a message may take to arrive.
const QUIET: Duration = Duration::from_secs(2);

fn chat(text: &str) -> Chat {
    Chat(text.to_owned())
}

#[tokio::test(start_paused = true)]
async fn a_restarted_mediator_keeps_its_subscriptions_and_spreads_later_changes() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let old = TestProbe::<Chat>::new(&a.system);
    let service = TestProbe::<Chat>::new(&a.system);
    assert!(a.pubsub.subscribe("old", old.actor_ref()).await.unwrap());
    assert!(a.pubsub.register(service.actor_ref()).await.unwrap());
    // some churn, so that the peers hold a's bucket at a version well above zero
    for i in 0..5 {
        let extra = TestProbe::<Chat>::new(&a.system);
        let topic = format!("churn-{i}");
        assert!(a.pubsub.subscribe(&topic, extra.actor_ref()).await.unwrap());
        assert!(
            a.pubsub
                .unsubscribe(&topic, extra.actor_ref())
                .await
                .unwrap()
        );
    }
    await_topic_nodes(b, "old", &[&a.address]).await;
    await_topic_nodes(c, "old", &[&a.address]).await;
    for i in 0..5 {
        await_topic_nodes(b, &format!("churn-{i}"), &[]).await;
    }

    a.pubsub.inject_mediator_failure();
    // the request is handled by the restarted instance (the mailbox survives the restart)
    let new = TestProbe::<Chat>::new(&a.system);
    assert!(a.pubsub.subscribe("new", new.actor_ref()).await.unwrap());
    assert_eq!(a.pubsub.mediator_restarts(), 1);
    // the subscription survived: subscribing again changes nothing
    assert!(!a.pubsub.subscribe("old", old.actor_ref()).await.unwrap());

    // a subscription made after the restart is seen and delivered from the other nodes
    await_topic_nodes(b, "new", &[&a.address]).await;
    await_topic_nodes(c, "new", &[&a.address]).await;
    assert_eq!(b.pubsub.publish("new", chat("new from b")), 1);
    new.expect_msg(chat("new from b")).await;
    assert_eq!(c.pubsub.publish("new", chat("new from c")), 1);
    new.expect_msg(chat("new from c")).await;

    // the subscription made before the restart still receives, remotely and locally
    assert_eq!(b.pubsub.publish("old", chat("old from b")), 1);
    old.expect_msg(chat("old from b")).await;
    assert_eq!(a.pubsub.publish("old", chat("old from a")), 1);
    old.expect_msg(chat("old from a")).await;
    // and the registration too
    let service_path = format!("/system/{}", service.name());
    assert!(b.pubsub.send(&service_path, chat("to service"), false));
    service.expect_msg(chat("to service")).await;
    // nothing reached the wrong subscriber
    new.expect_no_msg(QUIET).await;
    old.expect_no_msg(QUIET).await;

    // a removal after the restart reaches the peers
    assert!(a.pubsub.unsubscribe("old", old.actor_ref()).await.unwrap());
    await_topic_nodes(b, "old", &[]).await;
    await_topic_nodes(c, "old", &[]).await;
    assert_eq!(b.pubsub.publish("old", chat("gone")), 0);
    old.expect_no_msg(QUIET).await;

    // subscribers are still watched: one that stops is removed everywhere
    new.actor_ref().stop();
    await_topic_nodes(b, "new", &[]).await;
    await_topic_nodes(c, "new", &[]).await;
    await_topic_nodes(a, "new", &[]).await;
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn repeated_restarts_keep_the_registry_consistent() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b"], fast_settings()).await;
    let [a, b] = [&nodes[0], &nodes[1]];
    let probes: Vec<TestProbe<Chat>> = (0..3).map(|_| TestProbe::new(&a.system)).collect();
    for (round, probe) in probes.iter().enumerate() {
        let topic = format!("t{round}");
        assert!(a.pubsub.subscribe(&topic, probe.actor_ref()).await.unwrap());
        await_topic_nodes(b, &topic, &[&a.address]).await;
        a.pubsub.inject_mediator_failure();
    }
    // the last failure is handled before this request
    assert!(
        !a.pubsub
            .subscribe("t0", probes[0].actor_ref())
            .await
            .unwrap()
    );
    assert_eq!(a.pubsub.mediator_restarts(), 3);
    for (round, probe) in probes.iter().enumerate() {
        let topic = format!("t{round}");
        assert_eq!(b.pubsub.publish(&topic, Chat(topic.clone())), 1);
        probe.expect_msg(Chat(topic)).await;
    }
    for probe in &probes {
        probe.expect_no_msg(QUIET).await;
    }
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_restarted_mediator_still_follows_membership() {
    let hub = actor_cluster::InMemoryHub::new();
    let mut nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let on_c = TestProbe::<Chat>::new(&nodes[2].system);
    assert!(
        nodes[2]
            .pubsub
            .subscribe("news", on_c.actor_ref())
            .await
            .unwrap()
    );
    let (a, c_address) = (&nodes[0], nodes[2].address.clone());
    await_topic_nodes(a, "news", &[&c_address]).await;
    a.pubsub.inject_mediator_failure();
    let on_a = TestProbe::<Chat>::new(&a.system);
    assert!(a.pubsub.subscribe("news", on_a.actor_ref()).await.unwrap());
    assert_eq!(a.pubsub.mediator_restarts(), 1);
    // c crashes: keep-majority downs it, and the restarted mediator drops its bucket
    let c = nodes.pop().unwrap();
    assert!(actor_cluster::FaultInjector::crash(&hub, &c.address));
    c.system.terminate().await;
    await_topic_nodes(&nodes[0], "news", &[&nodes[0].address]).await;
    await_topic_nodes(&nodes[1], "news", &[&nodes[0].address]).await;
    assert_eq!(nodes[1].pubsub.publish("news", chat("after")), 1);
    on_a.expect_msg(chat("after")).await;
    shutdown(nodes).await;
}
