//! Counters as sharded entities: three nodes in one process (an in-memory network), a
//! `counter` entity type sharded over them with an in-memory shard-lock table, the
//! coordinator running as a cluster singleton. Twelve counters are incremented through
//! different nodes and each answers from its home; then node `c` leaves gracefully: its
//! region hands its shards off (every entity there gets its stop message first, and the
//! shard locks are released), the counters it hosted start again on `a` or `b` on their next
//! message, and every counter answers from its new home.
//!
//! Run with `cargo run -p actor-examples --example sharding_counters`; it prints where each
//! counter lives before and after and finishes by itself in a few seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::membership::MemberStatus;
use actor_cluster::remote::Remoting;
use actor_cluster::sharding::{ClusterSharding, EntityContext, ShardRegion, ShardingSettings};
use actor_cluster::wire::RemoteMessage;
use actor_cluster::{Address, InMemoryHub};
use actor_coordination::runner_storage::{MemoryRunnerStorage, RunnerStorageConfig};
use actor_core::{Actor, ActorResult, ActorSystem, Context, Props, ReplyTo};
use serde::{Deserialize, Serialize};

const SYSTEM: &str = "demo";
const TYPE: &str = "counter";
/// How long the whole demo may take before it gives up.
const DEADLINE: Duration = Duration::from_secs(30);
/// How long one question to a counter may take.
const ASK: Duration = Duration::from_secs(3);

/// What a counter takes.
#[derive(Debug, Serialize, Deserialize)]
enum CounterMsg {
    Add {
        counter: String,
        by: u64,
    },
    Get {
        counter: String,
        reply: ReplyTo<Value>,
    },
    /// Sent by the shard before a hand-off or passivation.
    Stop,
}

impl RemoteMessage for CounterMsg {
    const MANIFEST: &'static str = "example.CounterMsg";
}

/// A counter's answer: its value and the node it runs on.
#[derive(Debug, Serialize, Deserialize)]
struct Value {
    value: u64,
    node: String,
}

impl RemoteMessage for Value {
    const MANIFEST: &'static str = "example.Value";
}

struct Counter {
    node: String,
    id: String,
    value: u64,
}

impl Actor for Counter {
    type Msg = CounterMsg;

    async fn handle(&mut self, msg: CounterMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            CounterMsg::Add { by, .. } => self.value += by,
            CounterMsg::Get { reply, .. } => {
                reply.reply(Value {
                    value: self.value,
                    node: self.node.clone(),
                });
            }
            CounterMsg::Stop => {
                println!(
                    "  [{}] counter {} stops at {} (hand-off)",
                    self.node, self.id, self.value
                );
                ctx.stop();
            }
        }
        Ok(())
    }
}

fn counter_of(msg: &CounterMsg) -> String {
    match msg {
        CounterMsg::Add { counter, .. } | CounterMsg::Get { counter, .. } => counter.clone(),
        CounterMsg::Stop => String::new(),
    }
}

struct Node {
    name: String,
    system: ActorSystem,
    cluster: Arc<Cluster>,
    region: ShardRegion<CounterMsg>,
}

fn start_node(
    hub: &InMemoryHub,
    name: &str,
    seeds: &[Address],
    storage: &Arc<MemoryRunnerStorage>,
) -> Result<Node, Box<dyn std::error::Error>> {
    let transport = hub.bind(Address::logical(SYSTEM, name)?)?;
    let system = ActorSystem::with_settings(SYSTEM, Remoting::system_settings(&*transport))?;
    let remoting = Remoting::start(&system, transport)?;
    remoting.register::<Value>()?;
    let cluster = Cluster::join(
        &system,
        ClusterSettings::fast().with_seed_nodes(seeds.to_vec()),
    )?;
    let settings = ShardingSettings::new(storage.clone())
        .with_number_of_shards(30)
        .with_lock_ttl(Duration::from_secs(3))
        .with_lock_safety_margin(Duration::from_millis(500))
        .with_retry_interval(Duration::from_millis(200))
        .with_rebalance_interval(Duration::from_secs(1))
        .with_stop_message(|| CounterMsg::Stop);
    let node = name.to_owned();
    let region = ClusterSharding::get(&system).start(
        TYPE,
        move |entity: EntityContext<CounterMsg>| {
            let (node, id) = (node.clone(), entity.entity_id().to_owned());
            Props::new(move || Counter {
                node: node.clone(),
                id: id.clone(),
                value: 0,
            })
        },
        settings,
        counter_of,
    )?;
    Ok(Node {
        name: name.to_owned(),
        system,
        cluster,
        region,
    })
}

/// Polls until `check` holds; an error after [`DEADLINE`].
async fn until(what: &str, mut check: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting until {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Asks `counter` through `region` until it answers (a counter whose shard is moving answers
/// once it has started at its new home).
async fn value_of(region: &ShardRegion<CounterMsg>, counter: &str) -> Result<Value, String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let asked = region
            .actor_ref()
            .ask(
                |reply| CounterMsg::Get {
                    counter: counter.to_owned(),
                    reply,
                },
                ASK,
            )
            .await;
        match asked {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() > deadline => {
                return Err(format!("counter {counter} did not answer: {error}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Prints every counter as `node` sees it; with `at_least`, first waits until each counter
/// reached that value (increments sent through other nodes may still be on their way).
async fn print_counters(
    node: &Node,
    counters: &[String],
    at_least: u64,
) -> Result<BTreeMap<String, String>, String> {
    let mut homes = BTreeMap::new();
    for counter in counters {
        let mut value = value_of(&node.region, counter).await?;
        let deadline = Instant::now() + DEADLINE;
        while value.value < at_least && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            value = value_of(&node.region, counter).await?;
        }
        println!("  {counter:<11} = {:>3}  on {}", value.value, value.node);
        homes.insert(counter.clone(), value.node);
    }
    Ok(homes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = InMemoryHub::new();
    let names = ["a", "b", "c"];
    let seeds: Vec<Address> = names
        .iter()
        .map(|n| Address::logical(SYSTEM, *n))
        .collect::<Result<_, _>>()?;
    let storage = Arc::new(MemoryRunnerStorage::new(
        RunnerStorageConfig::default().with_lock_ttl(Duration::from_secs(3)),
    )?);
    let nodes = names
        .iter()
        .map(|n| start_node(&hub, n, &seeds, &storage))
        .collect::<Result<Vec<_>, _>>()?;
    until("all three nodes are up", || {
        nodes.iter().all(|n| {
            let state = n.cluster.state();
            state.members.len() == 3 && state.members.iter().all(|m| m.status == MemberStatus::Up)
        })
    })
    .await?;
    println!("three nodes up; counters incremented through every node:");

    let counters: Vec<String> = (1..=12).map(|i| format!("counter-{i:02}")).collect();
    for (i, counter) in counters.iter().enumerate() {
        for by in 1..=3 {
            nodes[(i + by) % 3].region.tell(CounterMsg::Add {
                counter: counter.clone(),
                by: by as u64,
            });
        }
    }
    let before = print_counters(&nodes[0], &counters, 6).await?;

    println!("node c leaves: its region hands its shards off first");
    let leaving = &nodes[2];
    leaving
        .region
        .graceful_shutdown_and_wait(DEADLINE)
        .await
        .map_err(|e| e.to_string())?;
    leaving.cluster.leave();
    if !leaving.system.await_termination(DEADLINE).await {
        return Err("node c did not shut down".into());
    }
    println!("node c is gone; the counters it hosted start again elsewhere:");
    let after = print_counters(&nodes[0], &counters, 0).await?;
    let moved = counters.iter().filter(|c| before[*c] != after[*c]).count();
    let left_on_c = after.values().filter(|n| n.as_str() == "c").count();
    println!(
        "{moved} counters moved from c (their in-memory values were not persisted), {left_on_c} left on c"
    );
    for node in &nodes[..2] {
        println!("stopping node {}", node.name);
        node.system.terminate().await;
    }
    if left_on_c > 0 {
        return Err("a counter still answered from the node that left".into());
    }
    Ok(())
}
