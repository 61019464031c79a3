//! Singleton test setup: a recording singleton (every start and stop with its node and the
//! virtual time), the no-overlap and restart-within-bound checks, and a cluster of nodes that
//! each run a manager and a proxy. Needs `mod cluster_support;` next to it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::InMemoryHub;
use actor_cluster::cluster::ClusterSettings;
use actor_cluster::remote::Remoting;
use actor_cluster::singleton::{
    ClusterSingletonManager, ClusterSingletonProxy, ManagerMsg, ManagerStatus, ProxySettings,
    SingletonSettings,
};
use actor_cluster::wire::RemoteMessage;
use actor_core::{
    Actor, ActorError, ActorRef, ActorResult, ActorSystem, Context, Failure, Props, ReplyTo,
};
use actor_testkit::await_assert;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::cluster_support::{Node, address, start_node};

/// Name of the recording singleton.
pub const TYPE_NAME: &str = "recorder";

/// Poll interval of waits (virtual time).
pub const POLL: Duration = Duration::from_millis(20);

/// Whether an entry is a start or a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The instance's `started` hook ran.
    Start,
    /// The instance's `stopped` hook ran.
    Stop,
}

/// One start or stop of a singleton instance.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The node it ran on.
    pub node: String,
    /// Virtual time.
    pub at: Instant,
    /// Start or stop.
    pub mark: Mark,
    /// The fencing token it was given.
    pub token: Option<u64>,
}

/// The starts and stops of every instance, in the order they happened.
#[derive(Debug, Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<Entry>>>);

impl Timeline {
    fn record(&self, node: &str, mark: Mark, token: Option<u64>) {
        self.0.lock().push(Entry {
            node: node.to_owned(),
            at: Instant::now(),
            mark,
            token,
        });
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.0.lock().clone()
    }

    /// The nodes with a running instance now.
    pub fn running(&self) -> Vec<String> {
        let mut running: Vec<String> = Vec::new();
        for e in self.entries() {
            match e.mark {
                Mark::Start => running.push(e.node),
                Mark::Stop => {
                    if let Some(i) = running.iter().position(|n| *n == e.node) {
                        running.remove(i);
                    }
                }
            }
        }
        running
    }

    /// The starts after `since`.
    pub fn starts_after(&self, since: Instant) -> Vec<Entry> {
        self.entries()
            .into_iter()
            .filter(|e| e.mark == Mark::Start && e.at >= since)
            .collect()
    }

    /// Panics unless at most one instance ran at any moment (every start comes after the
    /// stop of the instance before it). Returns the number of starts, so a caller can also
    /// check the timeline is not empty.
    pub fn assert_no_overlap(&self) -> usize {
        let entries = self.entries();
        let mut running: Option<&Entry> = None;
        let mut starts = 0;
        for e in &entries {
            match e.mark {
                Mark::Start => {
                    if let Some(other) = running {
                        panic!(
                            "two singletons at once: {} started at {:?} while {} (started {:?}) ran; timeline {entries:#?}",
                            e.node, e.at, other.node, other.at
                        );
                    }
                    running = Some(e);
                    starts += 1;
                }
                Mark::Stop => {
                    let ok = running.is_some_and(|r| r.node == e.node);
                    assert!(ok, "a stop of {} without its start: {entries:#?}", e.node);
                    running = None;
                }
            }
        }
        starts
    }

    /// Waits until an instance runs on `node` (started at or after `since`), within `bound`
    /// of `since`; panics otherwise. Returns the start entry.
    pub async fn await_start(&self, node: &str, since: Instant, bound: Duration) -> Entry {
        let left = (since + bound).saturating_duration_since(Instant::now());
        await_assert(
            || {
                let starts = self.starts_after(since);
                match starts.iter().find(|e| e.node == node) {
                    Some(e) if self.running().iter().any(|n| n == node) => Ok(e.clone()),
                    _ => Err(format!(
                        "no instance on {node} within {bound:?}; timeline {:#?}",
                        self.entries()
                    )),
                }
            },
            left,
            POLL,
        )
        .await
    }

    /// Waits for the first stop on `node` at or after `since` (within `bound` of `since`).
    pub async fn await_stop(&self, node: &str, since: Instant, bound: Duration) -> Entry {
        let left = (since + bound).saturating_duration_since(Instant::now());
        await_assert(
            || {
                self.entries()
                    .into_iter()
                    .find(|e| e.mark == Mark::Stop && e.node == node && e.at >= since)
                    .ok_or_else(|| format!("no stop on {node}: {:#?}", self.entries()))
            },
            left,
            POLL,
        )
        .await
    }

    /// Waits for a start with a token above `token` (within `bound`).
    pub async fn await_newer_start(&self, token: Option<u64>, bound: Duration) -> Entry {
        await_assert(
            || {
                self.entries()
                    .into_iter()
                    .find(|e| e.mark == Mark::Start && e.token > token)
                    .ok_or_else(|| format!("no start after token {token:?}: {:#?}", self.entries()))
            },
            bound,
            POLL,
        )
        .await
    }

    /// Waits until no instance runs (within `bound`); returns the time it happened.
    pub async fn await_none_running(&self, bound: Duration) -> Instant {
        await_assert(
            || {
                if self.running().is_empty() {
                    let last = self.entries().last().map(|e| e.at);
                    Ok(last.unwrap_or_else(Instant::now))
                } else {
                    Err(format!("still running: {:?}", self.running()))
                }
            },
            bound,
            POLL,
        )
        .await
    }
}

/// What the recording singleton takes.
#[derive(Debug, Serialize, Deserialize)]
pub enum Cmd {
    /// Record note `n` (with the node that got it).
    Note(u32),
    /// Answer with the node's name and the fencing token.
    Who(ReplyTo<Me>),
    /// Stop by itself.
    StopYourself,
    /// Fail (the manager's supervision restarts it).
    Fail,
}

impl RemoteMessage for Cmd {
    const MANIFEST: &'static str = "test.singleton.Cmd";
}

/// The answer to [`Cmd::Who`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The node the instance runs on.
    pub node: String,
    /// Its fencing token.
    pub token: Option<u64>,
}

impl RemoteMessage for Me {
    const MANIFEST: &'static str = "test.singleton.Me";
}

/// Notes received by any instance: (note, node).
#[derive(Debug, Clone, Default)]
pub struct Notes(Arc<Mutex<Vec<(u32, String)>>>);

impl Notes {
    /// Every note so far.
    pub fn all(&self) -> Vec<(u32, String)> {
        self.0.lock().clone()
    }

    /// Waits until every note in `expected` arrived on `node` (within `bound`).
    pub async fn await_notes(&self, node: &str, expected: &[u32], bound: Duration) {
        await_assert(
            || {
                let got: Vec<u32> = self
                    .all()
                    .into_iter()
                    .filter(|(_, n)| n == node)
                    .map(|(v, _)| v)
                    .collect();
                if expected.iter().all(|e| got.contains(e)) {
                    Ok(())
                } else {
                    Err(format!("notes on {node}: {got:?}, expected {expected:?}"))
                }
            },
            bound,
            POLL,
        )
        .await
    }
}

/// The recording singleton. Its `stopped` hook takes `stop_delay` (virtual time) before it
/// records the stop, like a singleton that flushes state on the way out: the instance counts
/// as alive until then.
pub struct Recorder {
    node: String,
    token: Option<u64>,
    timeline: Timeline,
    notes: Notes,
    stop_delay: Duration,
}

impl Actor for Recorder {
    type Msg = Cmd;

    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        self.timeline.record(&self.node, Mark::Start, self.token);
        Ok(())
    }

    async fn handle(&mut self, msg: Cmd, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Cmd::Note(n) => self.notes.0.lock().push((n, self.node.clone())),
            Cmd::Who(reply) => {
                reply.reply(Me {
                    node: self.node.clone(),
                    token: self.token,
                });
            }
            Cmd::StopYourself => ctx.stop(),
            Cmd::Fail => return Err(ActorError::msg("asked to fail")),
        }
        Ok(())
    }

    async fn pre_restart(&mut self, _: &Failure, _: &mut Context<Self>) {
        // the failed instance is replaced: it counts as stopped
        self.timeline.record(&self.node, Mark::Stop, self.token);
    }

    async fn stopped(&mut self, _: &mut Context<Self>) {
        if !self.stop_delay.is_zero() {
            tokio::time::sleep(self.stop_delay).await;
        }
        self.timeline.record(&self.node, Mark::Stop, self.token);
    }
}

/// A node running a singleton manager and a proxy.
pub struct SingletonNode {
    /// The node.
    pub node: Node,
    /// Its name (`n1`, ...).
    pub name: String,
    /// Its manager.
    pub manager: ActorRef<ManagerMsg>,
    /// Its proxy.
    pub proxy: ActorRef<Cmd>,
}

impl SingletonNode {
    /// The manager's status.
    pub async fn status(&self) -> ManagerStatus {
        self.manager
            .ask(ManagerMsg::status, Duration::from_secs(3))
            .await
            .expect("manager status")
    }
}

/// Spawns the manager and a proxy on `node`.
pub fn add_singleton(
    node: Node,
    name: &str,
    settings: SingletonSettings,
    proxy: ProxySettings,
    timeline: &Timeline,
    notes: &Notes,
) -> SingletonNode {
    add_slow_singleton(
        node,
        name,
        settings,
        proxy,
        (timeline, notes),
        Duration::ZERO,
    )
}

/// Spawns the manager and a proxy on `node`; the singleton's `stopped` hook takes
/// `stop_delay`.
pub fn add_slow_singleton(
    node: Node,
    name: &str,
    settings: SingletonSettings,
    proxy: ProxySettings,
    (timeline, notes): (&Timeline, &Notes),
    stop_delay: Duration,
) -> SingletonNode {
    add_singleton_with_hook(
        node,
        name,
        settings,
        proxy,
        (timeline, notes),
        stop_delay,
        || {},
    )
}

/// Spawns the manager and a proxy on `node`; `before_spawn` runs in the singleton factory
/// each time the manager starts an instance (inside the manager: a panic there fails the
/// manager, which its supervisor restarts).
pub fn add_singleton_with_hook(
    node: Node,
    name: &str,
    settings: SingletonSettings,
    proxy: ProxySettings,
    (timeline, notes): (&Timeline, &Notes),
    stop_delay: Duration,
    before_spawn: impl Fn() + Send + Sync + 'static,
) -> SingletonNode {
    let (timeline, notes, node_name) = (timeline.clone(), notes.clone(), name.to_owned());
    let manager = ClusterSingletonManager::spawn_with(
        &node.system,
        move |ctx| {
            before_spawn();
            let (timeline, notes, node_name) = (timeline.clone(), notes.clone(), node_name.clone());
            let token = ctx.fencing_token.map(|t| t.value());
            Props::new(move || Recorder {
                node: node_name.clone(),
                token,
                timeline: timeline.clone(),
                notes: notes.clone(),
                stop_delay,
            })
        },
        settings,
    )
    .expect("manager");
    let proxy = ClusterSingletonProxy::spawn::<Cmd>(&node.system, proxy).expect("proxy");
    Remoting::get(&node.system)
        .expect("remoting")
        .register::<Me>()
        .expect("register Me");
    SingletonNode {
        node,
        name: name.to_owned(),
        manager,
        proxy,
    }
}

/// Starts `names` (seeds: all of them, RNG seeds from `seed`) with `cluster` settings, one
/// after the other so the first is the oldest, each with a manager built by `settings` and
/// a proxy.
pub fn start_singleton_cluster(
    hub: &InMemoryHub,
    names: &[&str],
    seed: u64,
    cluster: &ClusterSettings,
    settings: impl Fn(&str, &ActorSystem) -> SingletonSettings,
    proxy: &ProxySettings,
    (timeline, notes): (&Timeline, &Notes),
) -> Vec<SingletonNode> {
    start_slow_singleton_cluster(
        hub,
        names,
        seed,
        cluster,
        settings,
        proxy,
        (timeline, notes),
        Duration::ZERO,
    )
}

/// Like [`start_singleton_cluster`], with singletons whose `stopped` hook takes
/// `stop_delay`.
#[allow(clippy::too_many_arguments)]
pub fn start_slow_singleton_cluster(
    hub: &InMemoryHub,
    names: &[&str],
    seed: u64,
    cluster: &ClusterSettings,
    settings: impl Fn(&str, &ActorSystem) -> SingletonSettings,
    proxy: &ProxySettings,
    (timeline, notes): (&Timeline, &Notes),
    stop_delay: Duration,
) -> Vec<SingletonNode> {
    let seeds: Vec<_> = names.iter().map(|n| address(n)).collect();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let node = start_node(
                hub,
                name,
                seed * 100 + i as u64 + 1,
                cluster.clone().with_seed_nodes(seeds.clone()),
            );
            let settings = settings(name, &node.system);
            add_slow_singleton(
                node,
                name,
                settings,
                proxy.clone(),
                (timeline, notes),
                stop_delay,
            )
        })
        .collect()
}

/// Asks the singleton through `proxy` who it is.
pub async fn who(proxy: &ActorRef<Cmd>, timeout: Duration) -> Me {
    proxy
        .ask(Cmd::Who, timeout)
        .await
        .expect("answer through the proxy")
}

/// Terminates every node still running.
pub async fn shutdown(nodes: Vec<SingletonNode>) {
    for n in nodes {
        n.node.system.terminate().await;
    }
}
