//! Pub-sub refusals: limits on topics, subscribers and registered actors with typed errors,
//! invalid names and settings, starting without a cluster or twice, registering what is not
//! a local actor.

mod pubsub_support;

use std::time::Duration;

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::pubsub::{DistributedPubSub, PubSubError, PubSubSettings, PubSubSettingsError};
use actor_cluster::remote::Remoting;
use actor_core::{ActorSystem, Props};
use actor_testkit::TestProbe;
use pubsub_support::*;

#[tokio::test(start_paused = true)]
async fn limits_refuse_with_typed_errors() {
    let hub = actor_cluster::InMemoryHub::new();
    let settings = fast_settings()
        .with_max_topics(2)
        .with_max_subscribers_per_topic(2)
        .with_max_registered_paths(1)
        .with_max_name_length(8);
    let nodes = start_cluster(&hub, &["a"], settings).await;
    let a = &nodes[0];
    let probes: Vec<TestProbe<Chat>> = (0..4).map(|_| TestProbe::new(&a.system)).collect();

    a.pubsub
        .subscribe("t1", probes[0].actor_ref())
        .await
        .unwrap();
    a.pubsub
        .subscribe("t2", probes[0].actor_ref())
        .await
        .unwrap();
    match a.pubsub.subscribe("t3", probes[0].actor_ref()).await {
        Err(PubSubError::TooManyTopics { topic, limit }) => {
            assert_eq!((topic.as_str(), limit), ("t3", 2));
        }
        other => panic!("expected TooManyTopics, got {other:?}"),
    }
    // groups count as subscribers of their topic
    a.pubsub
        .subscribe_group("t1", "g", probes[1].actor_ref())
        .await
        .unwrap();
    match a.pubsub.subscribe("t1", probes[2].actor_ref()).await {
        Err(PubSubError::TooManySubscribers { topic, limit }) => {
            assert_eq!((topic.as_str(), limit), ("t1", 2));
        }
        other => panic!("expected TooManySubscribers, got {other:?}"),
    }
    // a refused subscriber receives nothing; the accepted ones do
    assert_eq!(a.pubsub.publish("t1", Chat("x".into())), 1);
    probes[0].expect_msg(Chat("x".into())).await;
    probes[2].expect_no_msg(Duration::from_millis(200)).await;
    // freeing a slot makes room again
    assert!(
        a.pubsub
            .unsubscribe("t2", probes[0].actor_ref())
            .await
            .unwrap()
    );
    a.pubsub
        .subscribe("t3", probes[3].actor_ref())
        .await
        .unwrap();

    // names
    for (topic, reason) in [("", "empty"), ("much-too-long", "longer")] {
        match a.pubsub.subscribe(topic, probes[0].actor_ref()).await {
            Err(PubSubError::InvalidName {
                what: "topic",
                name,
                reason: r,
            }) => {
                assert_eq!(name, topic);
                assert!(r.contains(reason), "{r}");
            }
            other => panic!("expected InvalidName for {topic:?}, got {other:?}"),
        }
    }
    assert!(matches!(
        a.pubsub
            .subscribe_group("t1", "", probes[0].actor_ref())
            .await,
        Err(PubSubError::InvalidName { what: "group", .. })
    ));

    // registered actors: one allowed, a second path refused, the same path replaced
    let s1 = a.system.spawn(Props::new(|| Sink), "s1").unwrap();
    let s2 = a.system.spawn(Props::new(|| Sink), "s2").unwrap();
    assert!(a.pubsub.register(&s1).await.unwrap());
    match a.pubsub.register(&s2).await {
        Err(PubSubError::TooManyRegistered { path, limit }) => {
            assert_eq!((path.as_str(), limit), ("/user/s2", 1));
        }
        other => panic!("expected TooManyRegistered, got {other:?}"),
    }
    // an adapter is not a local actor of the message type
    let adapter = s1.adapt(|c: Chat| c);
    assert!(matches!(
        a.pubsub.register(&adapter).await,
        Err(PubSubError::NotLocal { .. })
    ));
    shutdown(nodes).await;
}

/// Takes chat lines and does nothing.
struct Sink;

impl actor_core::Actor for Sink {
    type Msg = Chat;
    async fn handle(
        &mut self,
        _: Chat,
        _: &mut actor_core::Context<Self>,
    ) -> actor_core::ActorResult {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn starting_needs_a_cluster_valid_settings_and_happens_once() {
    let hub = actor_cluster::InMemoryHub::new();
    let address = address("lonely");
    let transport = hub.bind(address.clone()).unwrap();
    let system =
        ActorSystem::with_settings(SYSTEM, Remoting::system_settings(&*transport)).unwrap();
    Remoting::start(&system, transport).unwrap();
    assert!(matches!(
        DistributedPubSub::get(&system),
        Err(PubSubError::ClusterNotJoined { system }) if system == SYSTEM
    ));
    Cluster::join(
        &system,
        ClusterSettings::fast().with_seed_nodes(vec![address.clone()]),
    )
    .unwrap();

    let bad = PubSubSettings::default().with_gossip_interval(Duration::ZERO);
    assert!(matches!(
        DistributedPubSub::start(&system, bad),
        Err(PubSubError::Settings(PubSubSettingsError::ZeroDuration {
            name: "gossip_interval"
        }))
    ));
    assert_eq!(
        PubSubSettings::default()
            .with_max_delta_entries(0)
            .validate(),
        Err(PubSubSettingsError::ZeroLimit {
            name: "max_delta_entries"
        })
    );
    let pubsub = DistributedPubSub::start(&system, fast_settings()).unwrap();
    // started once: start again is refused, get returns the running one
    assert!(matches!(
        DistributedPubSub::start(&system, fast_settings()),
        Err(PubSubError::AlreadyStarted { .. })
    ));
    let again = DistributedPubSub::get(&system).unwrap();
    assert_eq!(again.mediator().path(), pubsub.mediator().path());
    assert_eq!(
        again.mediator().path().to_string(),
        format!("actor://{address}/system/pubsub-mediator")
    );
    system.terminate().await;
}
