//! Distributed pub-sub on three in-memory nodes under a paused clock: publish across nodes
//! (one message per node), groups, send / send-to-all, unsubscribe, subscriber stop, node
//! crash, dead letters, and refs inside published messages.

mod pubsub_support;

use std::time::Duration;

use actor_cluster::FaultInjector;
use actor_core::{Actor, ActorRef, ActorResult, Context, DeadLetter, Props};
use actor_testkit::{TestProbe, await_assert};
use pubsub_support::*;

/// Longest virtual time a message may take to arrive.
const RECEIVE: Duration = Duration::from_secs(3);

/// Answers every question with the text reversed.
struct Oracle;

impl Actor for Oracle {
    type Msg = Question;
    async fn handle(&mut self, q: Question, _: &mut Context<Self>) -> ActorResult {
        q.reply_to.tell(Answer(q.text.chars().rev().collect()));
        Ok(())
    }
}

/// Everything `probe` receives until it has been quiet for a while (virtual time).
async fn drain(probe: &TestProbe<Chat>) -> Vec<Chat> {
    let mut got = Vec::new();
    while let Some(msg) = probe.receive_one(Duration::from_millis(500)).await {
        got.push(msg);
    }
    got
}

fn chat(text: &str) -> Chat {
    Chat(text.to_owned())
}

#[tokio::test(start_paused = true)]
async fn publish_on_b_reaches_subscribers_on_a_and_c_with_one_message_per_node() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let a1 = TestProbe::<Chat>::new(&a.system);
    let a2 = TestProbe::<Chat>::new(&a.system);
    let c1 = TestProbe::<Chat>::new(&c.system);
    assert!(a.pubsub.subscribe("chat", a1.actor_ref()).await.unwrap());
    assert!(a.pubsub.subscribe("chat", a2.actor_ref()).await.unwrap());
    assert!(c.pubsub.subscribe("chat", c1.actor_ref()).await.unwrap());
    // subscribing twice is acknowledged and changes nothing
    assert!(!a.pubsub.subscribe("chat", a1.actor_ref()).await.unwrap());
    await_topic_nodes(b, "chat", &[&a.address, &c.address]).await;

    let before = (b.frames_to(&a.address), b.frames_to(&c.address));
    assert_eq!(
        b.pubsub.publish("chat", chat("hello")),
        2,
        "two remote nodes"
    );
    a1.expect_msg(chat("hello")).await;
    a2.expect_msg(chat("hello")).await;
    c1.expect_msg(chat("hello")).await;
    // one frame to each node, though a has two subscribers
    assert_eq!(b.frames_to(&a.address), before.0 + 1);
    assert_eq!(b.frames_to(&c.address), before.1 + 1);
    assert_eq!(b.pubsub.remote_messages_sent(), 2);

    // a local publish reaches local subscribers without the network, remote ones once each
    let before = a.frames_to(&c.address);
    assert_eq!(
        a.pubsub.publish("chat", chat("from a")),
        3,
        "two local + one node"
    );
    a1.expect_msg(chat("from a")).await;
    a2.expect_msg(chat("from a")).await;
    c1.expect_msg(chat("from a")).await;
    assert_eq!(a.frames_to(&c.address), before + 1);
    assert_eq!(a.frames_to(&a.address), 0);

    // many publishes: order per publisher is kept, still one frame per node per publish
    let before = b.frames_to(&a.address);
    for i in 0..20 {
        b.pubsub.publish("chat", Chat(format!("m{i}")));
    }
    for i in 0..20 {
        a1.expect_msg(Chat(format!("m{i}"))).await;
        c1.expect_msg(Chat(format!("m{i}"))).await;
    }
    assert_eq!(b.frames_to(&a.address), before + 20);
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn one_per_group_gives_each_group_one_copy() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let workers = [
        TestProbe::<Chat>::new(&a.system),
        TestProbe::<Chat>::new(&a.system),
        TestProbe::<Chat>::new(&c.system),
    ];
    let auditor = TestProbe::<Chat>::new(&b.system);
    a.pubsub
        .subscribe_group("jobs", "workers", workers[0].actor_ref())
        .await
        .unwrap();
    a.pubsub
        .subscribe_group("jobs", "workers", workers[1].actor_ref())
        .await
        .unwrap();
    c.pubsub
        .subscribe_group("jobs", "workers", workers[2].actor_ref())
        .await
        .unwrap();
    b.pubsub
        .subscribe_group("jobs", "audit", auditor.actor_ref())
        .await
        .unwrap();
    await_topic_nodes(b, "jobs", &[&a.address, &b.address, &c.address]).await;

    const N: usize = 12;
    for i in 0..N {
        assert_eq!(
            b.pubsub
                .publish_one_per_group("jobs", Chat(format!("j{i}"))),
            2
        );
    }
    let audited = auditor.receive_n(N).await;
    assert_eq!(
        audited,
        (0..N).map(|i| Chat(format!("j{i}"))).collect::<Vec<_>>()
    );
    // the worker group got each job exactly once, spread over its members
    let mut got = Vec::new();
    for w in &workers {
        let taken = drain(w).await;
        assert!(!taken.is_empty(), "every worker takes a share");
        got.extend(taken);
    }
    got.sort_by_key(|Chat(s)| s[1..].parse::<usize>().unwrap());
    assert_eq!(
        got,
        (0..N).map(|i| Chat(format!("j{i}"))).collect::<Vec<_>>()
    );
    // a plain publish does not reach group members: nobody takes it
    assert_eq!(b.pubsub.publish("jobs", chat("plain")), 0);
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn send_prefers_the_local_instance_and_send_to_all_reaches_every_node() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let probes: Vec<TestProbe<Chat>> = nodes.iter().map(|n| TestProbe::new(&n.system)).collect();
    // one "service" per node at the same path
    let services: Vec<ActorRef<Chat>> = nodes
        .iter()
        .zip(&probes)
        .map(|(node, probe)| {
            let target = probe.actor_ref().clone();
            node.system
                .spawn(Props::new(move || Forward(target.clone())), "service")
                .unwrap()
        })
        .collect();
    for (node, service) in nodes.iter().zip(&services) {
        assert!(node.pubsub.register(service).await.unwrap());
    }
    let b = &nodes[1];
    await_assert(
        || {
            let n = b.pubsub.send_to_all("/user/service", chat("ping"), true);
            // reaching both others proves b knows them; drain below
            if n == 2 {
                Ok(())
            } else {
                Err(format!("reached {n}"))
            }
        },
        WAIT,
        POLL,
    )
    .await;
    for probe in [&probes[0], &probes[2]] {
        assert!(!drain(probe).await.is_empty());
    }
    assert!(drain(&probes[1]).await.is_empty(), "all-but-self skips b");

    // local affinity: b's own instance, every time
    for i in 0..3 {
        assert!(b.pubsub.send("/user/service", Chat(format!("l{i}")), true));
    }
    assert_eq!(drain(&probes[1]).await.len(), 3);
    // without affinity the instances take turns
    for i in 0..6 {
        assert!(b.pubsub.send("/user/service", Chat(format!("r{i}")), false));
    }
    for probe in &probes {
        assert_eq!(
            drain(probe).await.len(),
            2,
            "each instance takes two of six"
        );
    }
    // send to all, self included
    assert_eq!(b.pubsub.send_to_all("/user/service", chat("all"), false), 3);
    for probe in &probes {
        probe.expect_msg(chat("all")).await;
    }
    // unregistering b's instance: local affinity falls back to the others
    assert!(b.pubsub.unregister(&services[1]).await.unwrap());
    assert!(b.pubsub.send("/user/service", chat("fallback"), true));
    probes[1].expect_no_msg(Duration::from_millis(500)).await;
    shutdown(nodes).await;
}

/// Forwards every message to a probe (a real local actor to register for `send`).
struct Forward(ActorRef<Chat>);

impl Actor for Forward {
    type Msg = Chat;
    async fn handle(&mut self, msg: Chat, _: &mut Context<Self>) -> ActorResult {
        self.0.tell(msg);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_stops_delivery_everywhere() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    let on_a = TestProbe::<Chat>::new(&a.system);
    let on_c = TestProbe::<Chat>::new(&c.system);
    a.pubsub.subscribe("news", on_a.actor_ref()).await.unwrap();
    c.pubsub.subscribe("news", on_c.actor_ref()).await.unwrap();
    await_topic_nodes(b, "news", &[&a.address, &c.address]).await;
    b.pubsub.publish("news", chat("one"));
    on_a.expect_msg(chat("one")).await;
    on_c.expect_msg(chat("one")).await;

    assert!(
        a.pubsub
            .unsubscribe("news", on_a.actor_ref())
            .await
            .unwrap()
    );
    assert!(
        !a.pubsub
            .unsubscribe("news", on_a.actor_ref())
            .await
            .unwrap()
    );
    // a's own view changes at once, the others' by gossip
    assert_eq!(a.pubsub.topic_nodes("news"), vec![c.address.clone()]);
    await_topic_nodes(b, "news", &[&c.address]).await;
    let before = b.frames_to(&a.address);
    assert_eq!(b.pubsub.publish("news", chat("two")), 1);
    on_c.expect_msg(chat("two")).await;
    on_a.expect_no_msg(Duration::from_secs(1)).await;
    assert_eq!(
        b.frames_to(&a.address),
        before,
        "nothing is sent to a any more"
    );
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_stopped_subscriber_is_removed() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let [a, b, _] = [&nodes[0], &nodes[1], &nodes[2]];
    let target = TestProbe::<Chat>::new(&a.system);
    let subscriber = a
        .system
        .spawn(
            Props::new({
                let t = target.actor_ref().clone();
                move || Forward(t.clone())
            }),
            "subscriber",
        )
        .unwrap();
    a.pubsub.subscribe("news", &subscriber).await.unwrap();
    await_topic_nodes(b, "news", &[&a.address]).await;
    b.pubsub.publish("news", chat("before"));
    target.expect_msg(chat("before")).await;

    subscriber.stop();
    await_topic_nodes(a, "news", &[]).await;
    await_topic_nodes(b, "news", &[]).await;
    assert_eq!(b.pubsub.publish("news", chat("after")), 0);
    target.expect_no_msg(Duration::from_millis(500)).await;
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_crashed_nodes_subscribers_disappear() {
    let hub = actor_cluster::InMemoryHub::new();
    let mut nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let on_a = TestProbe::<Chat>::new(&nodes[0].system);
    let on_c = TestProbe::<Chat>::new(&nodes[2].system);
    nodes[0]
        .pubsub
        .subscribe("news", on_a.actor_ref())
        .await
        .unwrap();
    nodes[2]
        .pubsub
        .subscribe("news", on_c.actor_ref())
        .await
        .unwrap();
    let (a_addr, c_addr) = (nodes[0].address.clone(), nodes[2].address.clone());
    await_topic_nodes(&nodes[1], "news", &[&a_addr, &c_addr]).await;

    let c = nodes.pop().unwrap();
    assert!(hub.crash(&c.address));
    c.system.terminate().await;
    // keep-majority downs c, the leader removes it: its bucket goes with it
    await_topic_nodes(&nodes[1], "news", &[&a_addr]).await;
    await_topic_nodes(&nodes[0], "news", &[&a_addr]).await;
    assert_eq!(nodes[1].pubsub.publish("news", chat("after")), 1);
    on_a.expect_msg(chat("after")).await;
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn messages_nobody_takes_are_dead_letters() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b"], fast_settings()).await;
    let a = &nodes[0];
    let dead = TestProbe::<DeadLetter>::new(&a.system);
    a.system.event_stream().subscribe(dead.actor_ref());

    assert_eq!(a.pubsub.publish("nobody", chat("lost")), 0);
    let letter = dead.receive_one(RECEIVE).await.expect("a dead letter");
    assert_eq!(letter.message.take::<Chat>(), Some(chat("lost")));
    assert_eq!(letter.recipient, *a.pubsub.mediator().path());

    assert_eq!(a.pubsub.publish_one_per_group("nobody", chat("g")), 0);
    let letter = dead.receive_one(RECEIVE).await.expect("a dead letter");
    assert_eq!(letter.message.take::<Chat>(), Some(chat("g")));

    assert!(!a.pubsub.send("/user/nobody", chat("s"), true));
    assert_eq!(a.pubsub.send_to_all("/user/nobody", chat("t"), false), 0);
    for expected in ["s", "t"] {
        let letter = dead.receive_one(RECEIVE).await.expect("a dead letter");
        assert_eq!(letter.message.take::<Chat>(), Some(chat(expected)));
    }
    // another message type on a known topic has no subscribers either
    let probe = TestProbe::<Chat>::new(&a.system);
    a.pubsub
        .subscribe("typed", probe.actor_ref())
        .await
        .unwrap();
    assert_eq!(a.pubsub.publish("typed", Answer("other type".into())), 0);
    let letter = dead.receive_one(RECEIVE).await.expect("a dead letter");
    assert_eq!(
        letter.message.take::<Answer>(),
        Some(Answer("other type".into()))
    );
    probe.expect_no_msg(Duration::from_millis(200)).await;
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn refs_inside_published_messages_resolve_on_the_receiving_node() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b", "c"], fast_settings()).await;
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    for node in [a, c] {
        let oracle = node.system.spawn(Props::new(|| Oracle), "oracle").unwrap();
        node.pubsub.subscribe("questions", &oracle).await.unwrap();
    }
    // refs of type ActorRef<Answer> resolve where Answer is registered (every node, as
    // remoting asks for every type that crosses nodes)
    for node in &nodes {
        actor_cluster::remote::Remoting::get(&node.system)
            .unwrap()
            .register::<Answer>()
            .unwrap();
    }
    let answers = TestProbe::<Answer>::new(&b.system);
    await_topic_nodes(b, "questions", &[&a.address, &c.address]).await;
    b.pubsub.publish(
        "questions",
        Question {
            text: "abc".into(),
            reply_to: answers.actor_ref().clone(),
        },
    );
    let got = answers.receive_n(2).await;
    assert_eq!(got, vec![Answer("cba".into()), Answer("cba".into())]);
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn gossip_sends_only_what_a_peer_has_not_seen() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["a", "b"], fast_settings()).await;
    let [a, b] = [&nodes[0], &nodes[1]];
    let probe = TestProbe::<Chat>::new(&a.system);
    const TOPICS: usize = 200;
    for i in 0..TOPICS {
        a.pubsub
            .subscribe(&format!("topic-number-{i}"), probe.actor_ref())
            .await
            .unwrap();
    }
    await_topic_nodes(b, &format!("topic-number-{}", TOPICS - 1), &[&a.address]).await;
    for i in 0..TOPICS {
        assert_eq!(
            b.pubsub.topic_nodes(&format!("topic-number-{i}")),
            vec![a.address.clone()]
        );
    }
    // the catch-up carried the whole bucket
    let largest = |from: usize| a.gossip.lock()[from..].iter().map(|(_, len)| *len).max();
    let full = largest(0).expect("a gossiped");
    assert!(
        full > TOPICS * 40,
        "the first delta carries every entry: {full} bytes"
    );

    // steady state: only small status messages
    let mark = a.gossip.lock().len();
    probe.expect_no_msg(Duration::from_secs(2)).await;
    assert!(a.gossip.lock().len() > mark, "gossip goes on");
    let steady = largest(mark).expect("a gossiped");
    assert!(
        steady < 200,
        "steady-state gossip frames are small: {steady} bytes"
    );

    // one new subscription: the delta carries that one entry, not the bucket
    let mark = a.gossip.lock().len();
    a.pubsub
        .subscribe("one-more", probe.actor_ref())
        .await
        .unwrap();
    await_topic_nodes(b, "one-more", &[&a.address]).await;
    let change = largest(mark).expect("a gossiped");
    assert!(
        change < 400,
        "a delta of one entry is small: {change} bytes (the full bucket was {full})"
    );
    shutdown(nodes).await;
}
