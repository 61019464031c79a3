//! A cluster singleton that survives the loss of its node: three nodes in one process (an
//! in-memory network), a `job-scheduler` singleton behind a lease on a shared in-memory
//! registry, jobs sent through a proxy on the youngest node. The oldest node (the host) is
//! cut off the network; the others down it, and once it is removed the next oldest acquires
//! the lease (with a higher fencing token) and starts the scheduler. The jobs sent meanwhile
//! wait in the proxy's buffer. The scheduler writes every job to a sink that rejects writes
//! carrying a token older than the newest it has seen, so a late write of the old host
//! bounces.
//!
//! Run with `cargo run -p actor-examples --example singleton_failover`; it prints the
//! timeline and finishes by itself in a few seconds.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::membership::{ClusterEvent, MemberStatus};
use actor_cluster::pubsub::Text;
use actor_cluster::remote::Remoting;
use actor_cluster::singleton::{
    ClusterSingletonManager, ClusterSingletonProxy, ManagerMsg, ProxySettings, SingletonSettings,
    lease_owner,
};
use actor_cluster::{Address, FaultInjector, InMemoryHub};
use actor_coordination::lease::{InMemoryLease, InMemoryLeaseRegistry, LeaseSettings};
use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props};

const SYSTEM: &str = "demo";
const SINGLETON: &str = "job-scheduler";
const LEASE: &str = "job-scheduler-lease";
/// How long a holding lasts without renewal (renewed every third of it).
const LEASE_TTL: Duration = Duration::from_secs(5);
/// How long the whole demo may take before it gives up.
const DEADLINE: Duration = Duration::from_secs(30);

/// Seconds since the demo started, for the timeline.
fn t() -> String {
    static START: OnceLock<Instant> = OnceLock::new();
    format!(
        "{:6.2}s",
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    )
}

/// A store that only accepts writes carrying the newest fencing token it has seen.
#[derive(Default)]
struct Sink {
    newest: u64,
    accepted: Vec<String>,
    rejected: Vec<String>,
}

impl Sink {
    fn write(&mut self, token: u64, entry: String) -> bool {
        if token < self.newest {
            self.rejected.push(entry);
            return false;
        }
        self.newest = token;
        self.accepted.push(entry);
        true
    }
}

/// The singleton: schedules (here: records) the jobs it is sent.
struct JobScheduler {
    node: String,
    token: u64,
    sink: Arc<Mutex<Sink>>,
}

impl Actor for JobScheduler {
    type Msg = Text;

    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        println!(
            "{} [{}] job-scheduler STARTED with fencing token {}",
            t(),
            self.node,
            self.token
        );
        Ok(())
    }

    async fn handle(&mut self, job: Text, _: &mut Context<Self>) -> ActorResult {
        let entry = format!("{} by {} (token {})", job.as_str(), self.node, self.token);
        let ok = self
            .sink
            .lock()
            .map(|mut s| s.write(self.token, entry))
            .unwrap_or(false);
        let verdict = if ok { "written" } else { "REJECTED" };
        println!(
            "{} [{}]   {} -> sink {verdict}",
            t(),
            self.node,
            job.as_str()
        );
        Ok(())
    }

    async fn stopped(&mut self, _: &mut Context<Self>) {
        println!("{} [{}] job-scheduler stopped", t(), self.node);
    }
}

/// Prints the membership changes one node sees.
struct Observer {
    node: String,
}

impl Actor for Observer {
    type Msg = ClusterEvent;

    async fn handle(&mut self, event: ClusterEvent, _: &mut Context<Self>) -> ActorResult {
        let line = match &event {
            ClusterEvent::UnreachableMember(m) => format!("{} is unreachable", m.address.host()),
            ClusterEvent::MemberDowned(m) => format!("{} is marked Down", m.address.host()),
            ClusterEvent::MemberRemoved { member, .. } => {
                format!("{} is removed", member.address.host())
            }
            _ => return Ok(()),
        };
        println!("{} [{}] sees: {line}", t(), self.node);
        Ok(())
    }
}

struct Node {
    name: String,
    system: ActorSystem,
    cluster: Arc<Cluster>,
    manager: ActorRef<ManagerMsg>,
    proxy: ActorRef<Text>,
}

fn start_node(
    hub: &InMemoryHub,
    name: &str,
    seeds: &[Address],
    registry: &Arc<InMemoryLeaseRegistry>,
    sink: &Arc<Mutex<Sink>>,
) -> Result<Node, Box<dyn std::error::Error>> {
    let transport = hub.bind(Address::logical(SYSTEM, name)?)?;
    let system = ActorSystem::with_settings(SYSTEM, Remoting::system_settings(&*transport))?;
    Remoting::start(&system, transport)?;
    let cluster = Cluster::join(
        &system,
        ClusterSettings::fast().with_seed_nodes(seeds.to_vec()),
    )?;
    // the lease's owner is this node's address plus its uid
    let owner = lease_owner(&system).ok_or("remoting is started")?;
    let lease = InMemoryLease::with_registry(
        LeaseSettings::builder(LEASE, owner)
            .ttl(LEASE_TTL)
            .build()?,
        registry.clone(),
    );
    let settings = SingletonSettings::new(SINGLETON)
        .with_lease(Arc::new(lease))
        .with_acquire_retry_interval(Duration::from_millis(500))
        // the lease alone keeps two instances apart: no need to wait a removal margin
        .with_removal_margin(Duration::ZERO);
    let (node, sink) = (name.to_owned(), sink.clone());
    let manager = ClusterSingletonManager::spawn_with(
        &system,
        move |ctx| {
            let (node, sink) = (node.clone(), sink.clone());
            let token = ctx.fencing_token.map_or(0, |t| t.value());
            Props::new(move || JobScheduler {
                node: node.clone(),
                token,
                sink: sink.clone(),
            })
        },
        settings,
    )?;
    let proxy = ClusterSingletonProxy::spawn::<Text>(
        &system,
        ProxySettings::new(SINGLETON).with_identify_interval(Duration::from_millis(200)),
    )?;
    let observer_name = name.to_owned();
    let observer = system.spawn(
        Props::new(move || Observer {
            node: observer_name.clone(),
        }),
        "observer",
    )?;
    cluster.subscribe(&observer);
    Ok(Node {
        name: name.to_owned(),
        system,
        cluster,
        manager,
        proxy,
    })
}

/// Polls until `check` holds; an error after [`DEADLINE`].
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting until {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The node whose manager runs the singleton now, if any.
async fn active_host(nodes: &[Node]) -> Option<String> {
    for node in nodes {
        if let Ok(status) = node
            .manager
            .ask(ManagerMsg::status, Duration::from_secs(1))
            .await
            && status.active
        {
            return Some(node.name.clone());
        }
    }
    None
}

fn lease_line(registry: &InMemoryLeaseRegistry) -> String {
    let holder = registry
        .holder_of(LEASE)
        .map_or("nobody".to_owned(), |o| o.to_string());
    let token = registry.last_token_of(LEASE).map_or(0, |t| t.value());
    format!("lease holder {holder}, last fencing token {token}")
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "{} three nodes start; the oldest will host {SINGLETON}",
        t()
    );
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let sink = Arc::new(Mutex::new(Sink::default()));
    let names = ["n1", "n2", "n3"];
    let seeds: Vec<Address> = names
        .iter()
        .map(|n| Address::logical(SYSTEM, *n))
        .collect::<Result<_, _>>()?;
    let mut nodes = Vec::new();
    for name in names {
        nodes.push(start_node(&hub, name, &seeds, &registry, &sink)?);
        // one after the other, so n1 is the oldest
        let last = &nodes[nodes.len() - 1];
        until("the node is up", async || {
            last.cluster.self_member().status == MemberStatus::Up
        })
        .await?;
    }
    until("the singleton runs", async || {
        active_host(&nodes).await.is_some()
    })
    .await?;
    let host = active_host(&nodes).await.unwrap_or_default();
    println!("{} host is {host}; {}", t(), lease_line(&registry));

    let sender = &nodes[2];
    println!(
        "{} sending jobs 1-3 through the proxy on {}",
        t(),
        sender.name
    );
    for i in 1..=3 {
        sender.proxy.tell(Text(format!("job-{i}")));
    }
    until("jobs 1-3 are written", async || {
        sink.lock().map(|s| s.accepted.len() >= 3).unwrap_or(false)
    })
    .await?;

    let killed = nodes.remove(0);
    println!(
        "{} *** {} loses its network (as if killed; cut off, it downs itself) ***",
        t(),
        killed.name
    );
    hub.crash(&Address::logical(SYSTEM, &killed.name)?);
    let sender = &nodes[1];
    until("the sender sees the host unreachable", async || {
        !sender.cluster.state().unreachable.is_empty()
    })
    .await?;
    println!(
        "{} sending jobs 4-6 through the proxy on {} (buffered until a new host runs)",
        t(),
        sender.name
    );
    for i in 4..=6 {
        sender.proxy.tell(Text(format!("job-{i}")));
    }
    until("the singleton runs on a survivor", async || {
        active_host(&nodes).await.is_some()
    })
    .await?;
    let host = active_host(&nodes).await.unwrap_or_default();
    println!("{} host is {host}; {}", t(), lease_line(&registry));
    until("jobs 4-6 are written", async || {
        sink.lock().map(|s| s.accepted.len() >= 6).unwrap_or(false)
    })
    .await?;

    // a write the old host started before it was cut off lands only now
    let stale = {
        let mut sink = sink.lock().map_err(|_| "sink poisoned")?;
        let ok = sink.write(1, "job-3 (late retry) by n1 (token 1)".to_owned());
        println!(
            "{} [n1]   a late write with token 1 -> sink {}",
            t(),
            if ok { "written" } else { "REJECTED" }
        );
        !ok
    };
    if !stale {
        return Err("the sink accepted a stale token".into());
    }
    killed.system.terminate().await;
    for node in nodes {
        node.system.terminate().await;
    }

    let sink = sink.lock().map_err(|_| "sink poisoned")?;
    println!("{} done. the sink holds:", t());
    for entry in &sink.accepted {
        println!("          {entry}");
    }
    println!("        and rejected: {:?}", sink.rejected);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::time::timeout(DEADLINE, demo())
        .await
        .map_err(|_| "the demo did not finish in time")?
}
