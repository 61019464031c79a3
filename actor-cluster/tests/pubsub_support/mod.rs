//! Test setup for pub-sub tests: N cluster nodes on one `InMemoryHub` under a paused clock,
//! each with pub-sub started, and a transport wrapper that counts the frames each node sends
//! to pub-sub topic endpoints (to check "one network message per node per publish").

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::pubsub::{DistributedPubSub, PubSubSettings};
use actor_cluster::remote::Remoting;
use actor_cluster::transport::BoxFuture;
use actor_cluster::wire::{self, EnvelopeRef, RemoteMessage};
use actor_cluster::{
    Address, InMemoryHub, InboundFrame, Transport, TransportError, TransportEvent,
};
use actor_core::ActorSystem;
use actor_testkit::await_assert;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

#[path = "../cluster_support/mod.rs"]
pub mod cluster_support;

pub use cluster_support::{POLL, SYSTEM, WAIT, address, await_all_up};

/// Gossip interval of the test mediators (virtual time).
pub const GOSSIP: Duration = Duration::from_millis(100);

/// A chat line: the published message of most tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat(pub String);

impl RemoteMessage for Chat {
    const MANIFEST: &'static str = "test.pubsub.Chat";
}

/// A published question whose answer goes back to the asker on another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Question {
    /// The question.
    pub text: String,
    /// Where the answer goes (crosses the wire as a path).
    pub reply_to: actor_core::ActorRef<Answer>,
}

impl RemoteMessage for Question {
    const MANIFEST: &'static str = "test.pubsub.Question";
}

/// The answer to a [`Question`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer(pub String);

impl RemoteMessage for Answer {
    const MANIFEST: &'static str = "test.pubsub.Answer";
}

/// Frames sent by one node to pub-sub endpoints, by destination node.
pub type FrameCounts = Arc<Mutex<BTreeMap<Address, u64>>>;

/// Sizes of the frames one node sent to other nodes' mediators (registry gossip), in order.
pub type GossipFrames = Arc<Mutex<Vec<(Address, usize)>>>;

/// A transport that counts outbound user frames addressed to pub-sub topic endpoints and
/// records the sizes of gossip frames to mediators.
pub struct CountingTransport {
    inner: Arc<dyn Transport>,
    counts: FrameCounts,
    gossip: GossipFrames,
}

impl Transport for CountingTransport {
    fn local_address(&self) -> &Address {
        self.inner.local_address()
    }
    fn local_uid(&self) -> u64 {
        self.inner.local_uid()
    }
    fn max_frame_size(&self) -> usize {
        self.inner.max_frame_size()
    }
    fn send(&self, to: &Address, frame: Bytes) -> Result<(), TransportError> {
        if let Ok(EnvelopeRef::User { recipient, .. }) = wire::decode_ref(&frame)
            && recipient.contains("/system/pubsub-mediator/topic-")
        {
            *self.counts.lock().entry(to.clone()).or_default() += 1;
        } else if let Ok(EnvelopeRef::User { recipient, .. }) = wire::decode_ref(&frame)
            && recipient.contains("/system/pubsub-mediator")
        {
            self.gossip.lock().push((to.clone(), frame.len()));
        }
        self.inner.send(to, frame)
    }
    fn inbound(&self) -> flume::Receiver<InboundFrame> {
        self.inner.inbound()
    }
    fn events(&self) -> flume::Receiver<TransportEvent> {
        self.inner.events()
    }
    fn peers(&self) -> Vec<Address> {
        self.inner.peers()
    }
    fn disconnect(&self, peer: &Address) -> BoxFuture<'_, ()> {
        self.inner.disconnect(peer)
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
}

/// One node: system, address, cluster, pub-sub and its endpoint frame counts.
pub struct PsNode {
    /// Its actor system.
    pub system: ActorSystem,
    /// Its transport address.
    pub address: Address,
    /// Its cluster membership.
    pub cluster: Arc<Cluster>,
    /// Its pub-sub.
    pub pubsub: Arc<DistributedPubSub>,
    /// Frames it sent to topic endpoints, by destination.
    pub frames: FrameCounts,
    /// Gossip frames it sent to other mediators.
    pub gossip: GossipFrames,
}

impl PsNode {
    /// Frames this node sent to topic endpoints on `to`.
    pub fn frames_to(&self, to: &Address) -> u64 {
        self.frames.lock().get(to).copied().unwrap_or(0)
    }

    /// As a `cluster_support::Node` view for its helpers.
    pub fn as_node(&self) -> cluster_support::Node {
        cluster_support::Node {
            system: self.system.clone(),
            address: self.address.clone(),
            cluster: self.cluster.clone(),
        }
    }
}

/// Pub-sub settings of the tests: fast gossip, short tombstone lifetime.
pub fn fast_settings() -> PubSubSettings {
    PubSubSettings::default()
        .with_gossip_interval(GOSSIP)
        .with_removed_ttl(Duration::from_secs(10))
}

/// Starts one node `name` with seeds `seeds` and pub-sub `settings`.
pub fn start_node(
    hub: &InMemoryHub,
    name: &str,
    seed: u64,
    seeds: &[Address],
    settings: PubSubSettings,
) -> PsNode {
    let address = address(name);
    let counts = FrameCounts::default();
    let gossip = GossipFrames::default();
    let transport: Arc<dyn Transport> = Arc::new(CountingTransport {
        inner: hub.bind(address.clone()).expect("bind"),
        counts: counts.clone(),
        gossip: gossip.clone(),
    });
    let system_settings = Remoting::system_settings(&*transport).seed(seed);
    let system = ActorSystem::with_settings(SYSTEM, system_settings).expect("system");
    Remoting::start(&system, transport).expect("remoting");
    let cluster = Cluster::join(
        &system,
        ClusterSettings::fast().with_seed_nodes(seeds.to_vec()),
    )
    .expect("join");
    let pubsub = DistributedPubSub::start(&system, settings).expect("pub-sub");
    PsNode {
        system,
        address,
        cluster,
        pubsub,
        frames: counts,
        gossip,
    }
}

/// Starts the nodes `names` (all seeds), waits until all are Up.
pub async fn start_cluster(
    hub: &InMemoryHub,
    names: &[&str],
    settings: PubSubSettings,
) -> Vec<PsNode> {
    let seeds: Vec<Address> = names.iter().map(|n| address(n)).collect();
    let nodes: Vec<PsNode> = names
        .iter()
        .enumerate()
        .map(|(i, name)| start_node(hub, name, i as u64 + 1, &seeds, settings.clone()))
        .collect();
    let views: Vec<cluster_support::Node> = nodes.iter().map(PsNode::as_node).collect();
    let refs: Vec<&cluster_support::Node> = views.iter().collect();
    let addresses: Vec<&Address> = seeds.iter().collect();
    await_all_up(&refs, &addresses).await;
    nodes
}

/// Waits until `node` knows exactly `expected` as the nodes with subscribers of `topic`.
pub async fn await_topic_nodes(node: &PsNode, topic: &str, expected: &[&Address]) {
    let mut expected: Vec<Address> = expected.iter().map(|a| (*a).clone()).collect();
    expected.sort();
    await_assert(
        || {
            let seen = node.pubsub.topic_nodes(topic);
            if seen == expected {
                Ok(())
            } else {
                Err(format!(
                    "{} sees {topic:?} on {seen:?}, expected {expected:?}",
                    node.address
                ))
            }
        },
        WAIT,
        POLL,
    )
    .await
}

/// Terminates every node.
pub async fn shutdown(nodes: Vec<PsNode>) {
    for node in nodes {
        node.system.terminate().await;
    }
}
