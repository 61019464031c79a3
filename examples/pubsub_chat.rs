//! A chat room over distributed pub-sub: three nodes in one process (an in-memory network),
//! one chat member per node subscribed to the topic "room"; every node says hello, every
//! member hears all three lines, then one member leaves and the others still talk.
//!
//! Run with `cargo run -p actor-examples --example pubsub_chat`; it finishes by itself.

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::pubsub::{DistributedPubSub, PubSubSettings, Text};
use actor_cluster::remote::Remoting;
use actor_cluster::{Address, InMemoryHub};
use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props};
use tokio::sync::mpsc;

/// The topic everyone talks on.
const ROOM: &str = "room";

/// How long the whole chat may take before the example gives up.
const DEADLINE: Duration = Duration::from_secs(20);

/// A chat member: prints what it hears and reports it to `main`.
struct Member {
    name: String,
    heard: mpsc::UnboundedSender<(String, String)>,
}

impl Actor for Member {
    type Msg = Text;

    async fn handle(&mut self, line: Text, _: &mut Context<Self>) -> ActorResult {
        println!("[{}] heard: {}", self.name, line.as_str());
        let _ = self.heard.send((self.name.clone(), line.0));
        Ok(())
    }
}

struct Node {
    system: ActorSystem,
    pubsub: Arc<DistributedPubSub>,
    member: ActorRef<Text>,
}

async fn start_node(
    hub: &InMemoryHub,
    name: &str,
    seeds: &[Address],
    heard: &mpsc::UnboundedSender<(String, String)>,
) -> Result<Node, Box<dyn std::error::Error>> {
    let transport = hub.bind(Address::logical("chat", name)?)?;
    let system = ActorSystem::with_settings("chat", Remoting::system_settings(&*transport))?;
    Remoting::start(&system, transport)?;
    Cluster::join(
        &system,
        ClusterSettings::fast().with_seed_nodes(seeds.to_vec()),
    )?;
    let settings = PubSubSettings::default().with_gossip_interval(Duration::from_millis(100));
    let pubsub = DistributedPubSub::start(&system, settings)?;
    let (member_name, heard) = (name.to_owned(), heard.clone());
    let member = system.spawn(
        Props::new(move || Member {
            name: member_name.clone(),
            heard: heard.clone(),
        }),
        "member",
    )?;
    pubsub.subscribe(ROOM, &member).await?;
    Ok(Node {
        system,
        pubsub,
        member,
    })
}

/// Waits until every node sees members of the room on `count` nodes.
async fn until_room_has(nodes: &[Node], count: usize) {
    while nodes
        .iter()
        .any(|n| n.pubsub.topic_nodes(ROOM).len() != count)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Collects `n` (member, line) pairs.
async fn hear(
    rx: &mut mpsc::UnboundedReceiver<(String, String)>,
    n: usize,
) -> Vec<(String, String)> {
    let mut heard = Vec::new();
    while heard.len() < n {
        match rx.recv().await {
            Some(pair) => heard.push(pair),
            None => break,
        }
    }
    heard.sort();
    heard
}

async fn chat() -> Result<(), Box<dyn std::error::Error>> {
    let hub = InMemoryHub::new();
    let names = ["alice", "bob", "carol"];
    let seeds: Vec<Address> = names
        .iter()
        .map(|n| Address::logical("chat", *n))
        .collect::<Result<_, _>>()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut nodes = Vec::new();
    for name in names {
        nodes.push(start_node(&hub, name, &seeds, &tx).await?);
    }
    until_room_has(&nodes, 3).await;
    println!("everyone is in the room");

    for (node, name) in nodes.iter().zip(names) {
        node.pubsub
            .publish(ROOM, Text(format!("hello from {name}")));
    }
    let heard = hear(&mut rx, 9).await;
    assert_eq!(heard.len(), 9, "every member hears every line");

    println!("carol leaves the room");
    nodes[2].pubsub.unsubscribe(ROOM, &nodes[2].member).await?;
    until_room_has(&nodes, 2).await;
    nodes[0]
        .pubsub
        .publish(ROOM, Text::from("carol left, just us now"));
    let heard = hear(&mut rx, 2).await;
    let listeners: Vec<&str> = heard.iter().map(|(who, _)| who.as_str()).collect();
    assert_eq!(listeners, ["alice", "bob"]);

    for node in nodes {
        node.system.terminate().await;
    }
    println!("done");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match tokio::time::timeout(DEADLINE, chat()).await {
        Ok(result) => result,
        Err(_) => Err(format!("the chat did not finish within {DEADLINE:?}").into()),
    }
}
