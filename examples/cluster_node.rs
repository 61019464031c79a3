//! Cluster membership over TCP on loopback, printing membership events as they happen.
//!
//! **One process** (the default): three nodes on `127.0.0.1`, each on a port the OS assigns,
//! join one cluster through the same seed list, all become Up, then the third node leaves
//! gracefully; the other two see it leave and be removed, and the program exits by itself
//! within a few seconds (it uses [`ClusterSettings::fast`]).
//!
//! ```text
//! cargo run --example cluster_node
//! ```
//!
//! **Three terminals**: one node per process. Give every node the same seed list (the first
//! seed forms the cluster when no other node answers), and the same shared secret:
//!
//! ```text
//! cargo run --example cluster_node -- --bind 127.0.0.1:25520 --seed 127.0.0.1:25520 --seed 127.0.0.1:25521
//! cargo run --example cluster_node -- --bind 127.0.0.1:25521 --seed 127.0.0.1:25520 --seed 127.0.0.1:25521
//! cargo run --example cluster_node -- --bind 127.0.0.1:25522 --seed 127.0.0.1:25520 --seed 127.0.0.1:25521
//! ```
//!
//! Each node prints the events it sees. Ctrl-C makes a node leave gracefully (the others
//! print `MemberLeft`, `MemberExited`, `MemberRemoved`); killing one instead (Ctrl-\ or
//! `kill -9`) shows `UnreachableMember`, then the split brain resolver's `MemberDowned` after
//! its stable-after window (7 s by default). Options:
//!
//! - `--bind HOST:PORT` this node's address (terminal mode);
//! - `--seed HOST:PORT` a seed node, repeated, in the same order on every node;
//! - `--secret TEXT` the shared secret that authenticates nodes to each other (default: a
//!   fixed demo secret; every node must use the same);
//! - `--insecure-no-auth` runs WITHOUT authentication: anyone who can reach the port can
//!   join and send messages as any node. Only for trusted networks; never the default;
//! - `--fast` uses [`ClusterSettings::fast`] timings (100 ms gossip) instead of the
//!   defaults (1 s gossip, 7 s stable-after);
//! - `--leave-after SECS` leaves gracefully after that many seconds.

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::Address;
use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::membership::{ClusterEvent, CurrentClusterState, MemberStatus};
use actor_cluster::remote::Remoting;
use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_core::{Actor, ActorResult, ActorSystem, Context, Props};

/// The actor system name every node of the demo uses.
const SYSTEM: &str = "cluster-demo";

/// The demo's shared secret when none is given. A real deployment takes its own secret from
/// its configuration or environment.
const DEMO_SECRET: &str = "cluster-node-demo-secret";

/// How long the one-process demo may take before it gives up with a failure.
const DEMO_DEADLINE: Duration = Duration::from_secs(30);

/// How often the demo checks the membership it waits for.
const POLL: Duration = Duration::from_millis(50);

/// How long a leaving node waits for its system to shut down before exiting anyway.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(15);

/// Prints every membership event a node sees, prefixed with the node's name.
struct EventPrinter {
    node: String,
}

impl Actor for EventPrinter {
    type Msg = ClusterEvent;

    async fn handle(&mut self, event: ClusterEvent, _ctx: &mut Context<Self>) -> ActorResult {
        println!("[{}] {}", self.node, describe(&event));
        Ok(())
    }
}

/// One line for an event.
fn describe(event: &ClusterEvent) -> String {
    let member = |name: &str, m: &actor_cluster::membership::Member| {
        format!("{name:<18} {} (uid {})", m.address, m.uid)
    };
    match event {
        ClusterEvent::MemberJoined(m) => member("MemberJoined", m),
        ClusterEvent::MemberWeaklyUp(m) => member("MemberWeaklyUp", m),
        ClusterEvent::MemberUp(m) => member("MemberUp", m),
        ClusterEvent::MemberLeft(m) => member("MemberLeft", m),
        ClusterEvent::MemberExited(m) => member("MemberExited", m),
        ClusterEvent::MemberDowned(m) => member("MemberDowned", m),
        ClusterEvent::MemberRemoved {
            member: m,
            previous_status,
        } => format!(
            "{:<18} {} (was {previous_status:?})",
            "MemberRemoved", m.address
        ),
        ClusterEvent::UnreachableMember(m) => member("UnreachableMember", m),
        ClusterEvent::ReachableMember(m) => member("ReachableMember", m),
        ClusterEvent::LeaderChanged(leader) => match leader {
            Some(a) => format!("{:<18} {a}", "LeaderChanged"),
            None => format!("{:<18} none", "LeaderChanged"),
        },
        ClusterEvent::RoleLeaderChanged { role, leader } => {
            format!("{:<18} {role}: {leader:?}", "RoleLeaderChanged")
        }
    }
}

/// Command-line options.
#[derive(Debug, Default)]
struct Options {
    bind: Option<SocketAddr>,
    seeds: Vec<SocketAddr>,
    secret: Option<String>,
    insecure: bool,
    fast: bool,
    leave_after: Option<Duration>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let socket = |name: &str, v: String| {
            v.parse::<SocketAddr>()
                .map_err(|e| format!("{name} {v}: {e} (expected HOST:PORT, e.g. 127.0.0.1:25520)"))
        };
        match arg.as_str() {
            "--bind" => options.bind = Some(socket("--bind", value("--bind")?)?),
            "--seed" => options.seeds.push(socket("--seed", value("--seed")?)?),
            "--secret" => options.secret = Some(value("--secret")?),
            "--insecure-no-auth" => options.insecure = true,
            "--fast" => options.fast = true,
            "--leave-after" => {
                let v = value("--leave-after")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|e| format!("--leave-after {v}: {e} (expected seconds)"))?;
                options.leave_after = Some(Duration::from_secs(secs));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.insecure && options.secret.is_some() {
        return Err("--secret and --insecure-no-auth exclude each other".into());
    }
    if options.bind.is_none() && !options.seeds.is_empty() {
        return Err("--seed needs --bind (or give neither for the one-process demo)".into());
    }
    Ok(options)
}

const USAGE: &str = "usage: cluster_node [--bind HOST:PORT --seed HOST:PORT... [--secret TEXT | --insecure-no-auth] [--fast] [--leave-after SECS]]
  no options: three nodes in this process, one leaves, exit";

/// One running node: its system and cluster membership.
struct Node {
    name: String,
    system: ActorSystem,
    cluster: Arc<Cluster>,
}

/// Binds a TCP transport, starts a system with remoting on it, and returns them unjoined.
async fn start_system(
    bind: SocketAddr,
    secret: Option<&str>,
) -> Result<ActorSystem, Box<dyn Error>> {
    let tcp = match secret {
        Some(secret) => TcpSettings::with_secret(SYSTEM, bind, secret),
        None => TcpSettings::insecure_no_auth(SYSTEM, bind),
    };
    let transport = TcpTransport::bind(tcp).await?;
    let system = ActorSystem::with_settings(SYSTEM, Remoting::system_settings(&*transport))?;
    Remoting::start(&system, transport)?;
    Ok(system)
}

/// Joins `system` with `settings` and prints its events as `name`.
fn join(
    name: &str,
    system: ActorSystem,
    settings: ClusterSettings,
) -> Result<Node, Box<dyn Error>> {
    let cluster = Cluster::join(&system, settings)?;
    let node = name.to_owned();
    let printer = system.spawn(
        Props::new(move || EventPrinter { node: node.clone() }),
        "events",
    )?;
    cluster.subscribe(&printer);
    Ok(Node {
        name: name.to_owned(),
        system,
        cluster,
    })
}

/// Whether `state` has exactly the members at `expected`, all Up.
fn all_up(state: &CurrentClusterState, expected: &[&Address]) -> bool {
    state.members.len() == expected.len()
        && state
            .members
            .iter()
            .all(|m| m.status == MemberStatus::Up && expected.contains(&&m.address))
}

/// Polls `check` until it holds; false if `deadline` passes first.
async fn wait_until(deadline: tokio::time::Instant, mut check: impl FnMut() -> bool) -> bool {
    while !check() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

/// Three nodes in this process: join, all Up, the third leaves, the others see it go.
async fn demo() -> Result<(), Box<dyn Error>> {
    let deadline = tokio::time::Instant::now() + DEMO_DEADLINE;
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let mut systems = Vec::new();
    for _ in 0..3 {
        systems.push(start_system(loopback, Some(DEMO_SECRET)).await?);
    }
    let seeds: Vec<Address> = systems
        .iter()
        .filter_map(|s| Remoting::get(s).map(|r| r.local_address().clone()))
        .collect();
    println!("three nodes on loopback: {}", list(&seeds));
    let settings = ClusterSettings::fast().with_seed_nodes(seeds.clone());
    let mut nodes = Vec::new();
    for (i, system) in systems.into_iter().enumerate() {
        nodes.push(join(&format!("node-{}", i + 1), system, settings.clone())?);
    }

    let everyone: Vec<&Address> = seeds.iter().collect();
    let converged = wait_until(deadline, || {
        nodes.iter().all(|n| all_up(&n.cluster.state(), &everyone))
    })
    .await;
    if !converged {
        return Err("the three nodes did not all see each other Up in time".into());
    }
    let leader = nodes[0].cluster.state().leader;
    println!(
        "== every node sees three members Up; leader {}",
        leader.map_or("none".into(), |a| a.to_string())
    );

    let leaving = nodes.pop().ok_or("no third node")?;
    println!("== {} leaves the cluster", leaving.name);
    leaving.cluster.leave();
    let left = leaving
        .system
        .await_termination(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
    if !left {
        return Err(format!("{} did not shut down after leaving", leaving.name).into());
    }
    println!("== {} has shut down", leaving.name);
    let remaining: Vec<&Address> = seeds[..2].iter().collect();
    let settled = wait_until(deadline, || {
        nodes.iter().all(|n| all_up(&n.cluster.state(), &remaining))
    })
    .await;
    if !settled {
        return Err("the remaining nodes did not see the third one removed in time".into());
    }
    println!("== the two remaining nodes see each other Up and the third removed; done");
    for node in nodes {
        node.system.terminate().await;
    }
    Ok(())
}

/// One node of a cluster running across terminals; runs until it leaves or is downed.
async fn terminal_node(options: Options) -> Result<(), Box<dyn Error>> {
    let bind = options.bind.ok_or("--bind is required")?;
    let secret = if options.insecure {
        println!("WARNING: running without authentication (--insecure-no-auth)");
        None
    } else {
        Some(options.secret.as_deref().unwrap_or(DEMO_SECRET))
    };
    let system = start_system(bind, secret).await?;
    let seeds = options
        .seeds
        .iter()
        .map(|s| Address::from_socket(SYSTEM, *s))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = if options.fast {
        ClusterSettings::fast()
    } else {
        ClusterSettings::default()
    };
    let name = Remoting::get(&system)
        .map(|r| r.local_address().to_string())
        .unwrap_or_default();
    println!("node {name}, seeds {}; Ctrl-C leaves", list(&seeds));
    let node = join(&name, system, settings.with_seed_nodes(seeds))?;
    let leave_after = async {
        match options.leave_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = node.system.when_terminated() => {
            println!("== this node was removed from the cluster (left or downed)");
            return Ok(());
        }
        signal = tokio::signal::ctrl_c() => signal?,
        () = leave_after => {}
    }
    println!("== leaving the cluster");
    node.cluster.leave();
    if node.system.await_termination(LEAVE_TIMEOUT).await {
        println!("== left");
    } else {
        println!("== no answer from the cluster; shutting down anyway");
        node.system.terminate().await;
    }
    Ok(())
}

fn list(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("{error}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = if options.bind.is_some() {
        terminal_node(options).await
    } else {
        demo().await
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cluster_node failed: {error}");
            ExitCode::FAILURE
        }
    }
}
