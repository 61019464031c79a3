//! Test setup for sharding: a counter entity that logs its life to a shared log, the
//! runner-storage fixtures (in-memory and SQLite in a temporary directory, and a wrapper
//! whose calls fail, hang or wait), a coordinator reached by path (what the singleton proxy
//! does), one-node setups (with a real or a probe coordinator), clusters of sharded nodes on
//! one `InMemoryHub` under a paused clock, waits on the log, and `on_both_backends!`, which
//! runs a test once per storage.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actor_cluster::InMemoryHub;
use actor_cluster::cluster::ClusterSettings;
use actor_cluster::remote::Remoting;
use actor_cluster::sharding::{
    Allocation, ClusterSharding, CoordinatorMsg, EntityContext, RegionCtl, ShardAllocationStrategy,
    ShardDistribution, ShardRegion, ShardingSettings,
};
use actor_cluster::wire::RemoteMessage;
use actor_coordination::runner_storage::{
    BoxFuture, MachineId, MemoryRunnerStorage, Runner, RunnerAddress, RunnerId, RunnerStorage,
    RunnerStorageConfig, RunnerStorageError, ShardId, ShardLock, sqlite::SqliteRunnerStorage,
};
use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, ReplyTo};
use actor_testkit::{TestProbe, await_assert};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::cluster_support::{Node, await_all_up, start_cluster};

/// The entity type name used by the tests.
pub const TYPE: &str = "counter";

/// Lock ttl of the tests (virtual time; the SQLite clock follows the tokio clock).
pub const LOCK_TTL: Duration = Duration::from_secs(6);

/// How far the SQLite storage's clock moves with each step of virtual time.
pub const SQLITE_CLOCK_STEP: Duration = Duration::from_millis(250);

/// Pause between two questions to an entity that did not answer (virtual time).
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Longest an answer may take in a test (virtual time).
pub const ASK: Duration = Duration::from_secs(3);

/// What entities record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Entity `id` started on `node` at `at` (virtual time).
    Started {
        id: String,
        node: String,
        at: tokio::time::Instant,
    },
    /// Entity `id` on `node` got `Add(n)`.
    Got { id: String, n: u64, node: String },
    /// Entity `id` on `node` got the stop message.
    Stopping { id: String, node: String },
    /// Entity `id` on `node` stopped at `at` (virtual time).
    Stopped {
        id: String,
        node: String,
        at: tokio::time::Instant,
    },
}

/// The log every entity of a test writes to.
pub type Log = Arc<Mutex<Vec<Event>>>;

/// The entity messages.
#[derive(Debug, Serialize, Deserialize)]
pub enum Cmd {
    /// Adds `n`.
    Add { id: String, n: u64 },
    /// Answers the current value.
    Get { id: String, reply: ReplyTo<Reading> },
    /// Asks the shard to passivate this entity.
    Passivate { id: String },
    /// The stop message (passivation and hand-off).
    Stop,
}

impl RemoteMessage for Cmd {
    const MANIFEST: &'static str = "test.sharding.Cmd";
}

/// The answer to `Get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The entity.
    pub id: String,
    /// Its value.
    pub value: u64,
    /// Where it runs.
    pub node: String,
}

impl RemoteMessage for Reading {
    const MANIFEST: &'static str = "test.sharding.Reading";
}

/// The extractor.
pub fn entity_of(cmd: &Cmd) -> String {
    match cmd {
        Cmd::Add { id, .. } | Cmd::Get { id, .. } | Cmd::Passivate { id } => id.clone(),
        Cmd::Stop => String::new(),
    }
}

/// The counter entity.
pub struct Counter {
    ctx: EntityContext<Cmd>,
    node: String,
    value: u64,
    log: Log,
}

impl Counter {
    /// The entity factory of node `node`.
    pub fn factory(
        node: &str,
        log: &Log,
    ) -> impl Fn(EntityContext<Cmd>) -> Props<Counter> + Send + Sync + 'static {
        let node = node.to_owned();
        let log = log.clone();
        move |ctx| {
            let (node, log) = (node.clone(), log.clone());
            Props::new(move || Counter {
                ctx: ctx.clone(),
                node: node.clone(),
                value: 0,
                log: log.clone(),
            })
        }
    }

    fn id(&self) -> String {
        self.ctx.entity_id().to_owned()
    }
}

impl Actor for Counter {
    type Msg = Cmd;

    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        self.log.lock().push(Event::Started {
            id: self.id(),
            node: self.node.clone(),
            at: tokio::time::Instant::now(),
        });
        Ok(())
    }

    async fn handle(&mut self, msg: Cmd, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Cmd::Add { n, .. } => {
                self.value += n;
                self.log.lock().push(Event::Got {
                    id: self.id(),
                    n,
                    node: self.node.clone(),
                });
            }
            Cmd::Get { reply, .. } => {
                reply.reply(Reading {
                    id: self.id(),
                    value: self.value,
                    node: self.node.clone(),
                });
            }
            Cmd::Passivate { .. } => self.ctx.passivate(),
            Cmd::Stop => {
                self.log.lock().push(Event::Stopping {
                    id: self.id(),
                    node: self.node.clone(),
                });
                // Flushing takes a while (virtual time): messages meanwhile must be buffered.
                tokio::time::sleep(Duration::from_secs(1)).await;
                ctx.stop();
            }
        }
        Ok(())
    }

    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.lock().push(Event::Stopped {
            id: self.id(),
            node: self.node.clone(),
            at: tokio::time::Instant::now(),
        });
    }
}

/// Checks that no entity was ever running on two nodes at once, from the log.
pub fn assert_never_two_at_once(log: &Log) {
    let mut active: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for event in log.lock().iter() {
        match event {
            Event::Started { id, node, .. } => {
                let nodes = active.entry(id.clone()).or_default();
                let others: Vec<&String> = nodes
                    .iter()
                    .filter(|(n, c)| *n != node && **c > 0)
                    .map(|(n, _)| n)
                    .collect();
                assert!(
                    others.is_empty(),
                    "entity {id} started on {node} while running on {others:?}"
                );
                *nodes.entry(node.clone()).or_default() += 1;
            }
            Event::Stopped { id, node, .. } => {
                if let Some(count) = active.get_mut(id).and_then(|n| n.get_mut(node)) {
                    *count = count.saturating_sub(1);
                }
            }
            Event::Got { .. } | Event::Stopping { .. } => {}
        }
    }
}

/// One run of an entity on a node: from its start to its stop (`None`: still running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Life {
    /// The entity.
    pub id: String,
    /// The node it ran on.
    pub node: String,
    /// When it started (virtual time).
    pub from: tokio::time::Instant,
    /// When it stopped, if it did.
    pub to: Option<tokio::time::Instant>,
}

/// Every run of every entity, from the log's start and stop events.
pub fn lives(log: &Log) -> Vec<Life> {
    let mut lives: Vec<Life> = Vec::new();
    for event in log.lock().iter() {
        match event {
            Event::Started { id, node, at } => lives.push(Life {
                id: id.clone(),
                node: node.clone(),
                from: *at,
                to: None,
            }),
            Event::Stopped { id, node, at } => {
                if let Some(life) = lives
                    .iter_mut()
                    .find(|l| &l.id == id && &l.node == node && l.to.is_none())
                {
                    life.to = Some(*at);
                }
            }
            Event::Got { .. } | Event::Stopping { .. } => {}
        }
    }
    lives
}

/// Checks, by the virtual times of the start and stop events, that no two runs of one
/// entity on different nodes overlap (a run that never stopped lasts for ever). A stop and
/// a start at the same instant do not overlap.
pub fn assert_no_overlap_in_time(log: &Log) {
    let lives = lives(log);
    for (i, a) in lives.iter().enumerate() {
        for b in &lives[i + 1..] {
            if a.id != b.id || a.node == b.node {
                continue;
            }
            let a_before_b = a.to.is_some_and(|end| end <= b.from);
            let b_before_a = b.to.is_some_and(|end| end <= a.from);
            assert!(
                a_before_b || b_before_a,
                "entity {} ran on {} and {} at once: {a:?} {b:?}",
                a.id,
                a.node,
                b.node
            );
        }
    }
}

/// The `Add` amounts entity `id` received, sorted.
pub fn received(log: &Log, id: &str) -> Vec<u64> {
    let mut got: Vec<u64> = log
        .lock()
        .iter()
        .filter_map(|e| match e {
            Event::Got { id: i, n, .. } if i == id => Some(*n),
            _ => None,
        })
        .collect();
    got.sort_unstable();
    got
}

/// The nodes entity `id` was started on, in order.
pub fn starts(log: &Log, id: &str) -> Vec<String> {
    log.lock()
        .iter()
        .filter_map(|e| match e {
            Event::Started { id: i, node, .. } if i == id => Some(node.clone()),
            _ => None,
        })
        .collect()
}

/// Which runner storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `MemoryRunnerStorage` (virtual-time expiry).
    Memory,
    /// `SqliteRunnerStorage` in a temporary file; its clock follows the tokio clock (see
    /// [`Storage::open`]).
    Sqlite,
}

/// A runner storage for one test.
pub struct Storage {
    /// The storage every node shares.
    pub storage: Arc<dyn RunnerStorage>,
    dir: Option<PathBuf>,
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

impl Storage {
    /// Opens a fresh storage of `backend` with [`LOCK_TTL`]. SQLite expires locks on the
    /// wall clock; a background task moves its clock forward with the (paused) tokio clock in
    /// [`SQLITE_CLOCK_STEP`] steps, so expiry happens in virtual time as with the memory
    /// storage.
    pub async fn open(backend: Backend) -> Storage {
        let config = RunnerStorageConfig::default().with_lock_ttl(LOCK_TTL);
        match backend {
            Backend::Memory => Storage {
                storage: Arc::new(MemoryRunnerStorage::new(config).expect("config")),
                dir: None,
            },
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!(
                    "sharding-test-{}-{}",
                    std::process::id(),
                    NEXT_DIR.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let sqlite = SqliteRunnerStorage::open(dir.join("locks.db"), config)
                    .await
                    .expect("open sqlite");
                let clock = sqlite.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(SQLITE_CLOCK_STEP).await;
                        clock.advance_clock(SQLITE_CLOCK_STEP);
                    }
                });
                Storage {
                    storage: Arc::new(sqlite.clone().into_typed()),
                    dir: Some(dir),
                }
            }
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A runner storage whose calls can be made to fail or to hang (a storage outage, a lost
/// connection, as one region sees it); everything else goes to the wrapped storage.
///
/// A call made while its `hang_*` flag is set never returns (clearing the flag later does
/// not wake it): only the caller's own timeout gets it out.
pub struct FlakyStorage {
    inner: Arc<dyn RunnerStorage>,
    /// While set, `refresh` fails.
    pub fail_refresh: AtomicBool,
    /// While set, `acquire` fails.
    pub fail_acquire: AtomicBool,
    /// When set, the next `acquire` waits this long (virtual time) before it reaches the
    /// storage (a slow call), once.
    pub slow_next_acquire: Mutex<Option<Duration>>,
    /// While set, `acquire` hangs.
    pub hang_acquire: AtomicBool,
    /// While set, `refresh` hangs.
    pub hang_refresh: AtomicBool,
    /// While set, `release` hangs.
    pub hang_release: AtomicBool,
    /// While set, `list_locks` hangs.
    pub hang_list_locks: AtomicBool,
    /// When set, the next `refresh` waits for the first notification before it reaches the
    /// storage and for the second before it returns its answer, once (a slow call whose
    /// answer describes an earlier moment than the one it is handled at).
    pub refresh_gate: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
    /// Where the gated refresh is: 1 waiting to reach the storage, 2 waiting to answer.
    pub gated: AtomicU64,
    /// How many `acquire` calls returned.
    pub acquires: AtomicU64,
    /// How many `list_locks` calls were made.
    pub lists: AtomicU64,
    /// How many calls hung.
    pub hung: AtomicU64,
}

impl FlakyStorage {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn RunnerStorage>) -> Arc<FlakyStorage> {
        Arc::new(FlakyStorage {
            inner,
            fail_refresh: AtomicBool::new(false),
            fail_acquire: AtomicBool::new(false),
            slow_next_acquire: Mutex::new(None),
            hang_acquire: AtomicBool::new(false),
            hang_refresh: AtomicBool::new(false),
            hang_release: AtomicBool::new(false),
            hang_list_locks: AtomicBool::new(false),
            refresh_gate: Mutex::new(None),
            gated: AtomicU64::new(0),
            acquires: AtomicU64::new(0),
            lists: AtomicU64::new(0),
            hung: AtomicU64::new(0),
        })
    }

    /// Starts or ends a full outage of this node's storage access: acquires fail, refreshes,
    /// releases and lock-table reads hang.
    pub fn set_outage(&self, on: bool) {
        for flag in [
            &self.fail_acquire,
            &self.hang_refresh,
            &self.hang_release,
            &self.hang_list_locks,
        ] {
            flag.store(on, Ordering::SeqCst);
        }
    }

    /// A call that never returns when `flag` is set (counted in `hung`).
    fn gate<'a, T: Send + 'a>(
        &'a self,
        flag: &AtomicBool,
        call: BoxFuture<'a, Result<T, RunnerStorageError>>,
    ) -> BoxFuture<'a, Result<T, RunnerStorageError>> {
        if flag.load(Ordering::SeqCst) {
            self.hung.fetch_add(1, Ordering::SeqCst);
            return Box::pin(std::future::pending());
        }
        call
    }
}

fn made_to_fail<T>(operation: &str) -> Result<T, RunnerStorageError> {
    Err(RunnerStorageError::Backend {
        backend: "flaky",
        message: format!("{operation} made to fail"),
    })
}

impl RunnerStorage for FlakyStorage {
    fn register<'a>(
        &'a self,
        runner: &'a Runner,
        healthy: bool,
    ) -> BoxFuture<'a, Result<MachineId, RunnerStorageError>> {
        self.inner.register(runner, healthy)
    }
    fn unregister<'a>(
        &'a self,
        address: &'a RunnerAddress,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        self.inner.unregister(address)
    }
    fn get_runners(&self) -> BoxFuture<'_, Result<Vec<(Runner, bool)>, RunnerStorageError>> {
        self.inner.get_runners()
    }
    fn set_runner_health<'a>(
        &'a self,
        address: &'a RunnerAddress,
        healthy: bool,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        self.inner.set_runner_health(address, healthy)
    }
    fn acquire<'a>(
        &'a self,
        runner: &'a RunnerId,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<Vec<ShardId>, RunnerStorageError>> {
        if self.fail_acquire.load(Ordering::SeqCst) {
            return Box::pin(async { made_to_fail("acquire") });
        }
        let delay = self.slow_next_acquire.lock().take();
        let call = Box::pin(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let result = self.inner.acquire(runner, shards).await;
            self.acquires.fetch_add(1, Ordering::SeqCst);
            result
        });
        self.gate(&self.hang_acquire, call)
    }
    fn refresh<'a>(
        &'a self,
        runner: &'a RunnerId,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<Vec<ShardId>, RunnerStorageError>> {
        if self.fail_refresh.load(Ordering::SeqCst) {
            return Box::pin(async { made_to_fail("refresh") });
        }
        if let Some((reach, answer)) = self.refresh_gate.lock().take() {
            return Box::pin(async move {
                self.gated.store(1, Ordering::SeqCst);
                reach.notified().await;
                let result = self.inner.refresh(runner, shards).await;
                self.gated.store(2, Ordering::SeqCst);
                answer.notified().await;
                result
            });
        }
        self.gate(&self.hang_refresh, self.inner.refresh(runner, shards))
    }
    fn release<'a>(
        &'a self,
        runner: &'a RunnerId,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        self.gate(&self.hang_release, self.inner.release(runner, shard))
    }
    fn release_all<'a>(
        &'a self,
        runner: &'a RunnerId,
    ) -> BoxFuture<'a, Result<(), RunnerStorageError>> {
        self.inner.release_all(runner)
    }
    fn list_locks(&self) -> BoxFuture<'_, Result<Vec<ShardLock>, RunnerStorageError>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.gate(&self.hang_list_locks, self.inner.list_locks())
    }
}

/// Sharding settings for tests over `storage`.
pub fn settings(storage: &Storage) -> ShardingSettings<Cmd> {
    ShardingSettings::new(storage.storage.clone())
        .with_number_of_shards(12)
        .with_lock_ttl(LOCK_TTL)
        .with_lock_safety_margin(Duration::from_secs(1))
        .with_retry_interval(Duration::from_millis(500))
        .with_rebalance_interval(Duration::from_secs(2))
        .with_hand_off_timeout(Duration::from_secs(10))
        .with_stop_message(|| Cmd::Stop)
}

/// Forwards every message to the actor at a path, looked up afresh each time: what the
/// singleton proxy does, so regions reach a coordinator that was replaced.
pub struct PathForwarder {
    path: String,
}

impl PathForwarder {
    /// Spawns a forwarder to `path` on `system`, named `name`.
    pub fn spawn(system: &ActorSystem, path: String, name: &str) -> ActorRef<CoordinatorMsg> {
        system
            .spawn(
                Props::new(move || PathForwarder { path: path.clone() }),
                name,
            )
            .expect("spawn forwarder")
    }
}

impl Actor for PathForwarder {
    type Msg = CoordinatorMsg;
    async fn handle(&mut self, msg: CoordinatorMsg, ctx: &mut Context<Self>) -> ActorResult {
        let system = ctx.system();
        let target = match Remoting::get(system) {
            Some(remoting) => remoting.remote_ref_str::<CoordinatorMsg>(&self.path).ok(),
            None => system.lookup_str::<CoordinatorMsg>(&self.path).ok(),
        };
        if let Some(target) = target {
            target.tell(msg);
        }
        Ok(())
    }
}

/// A cluster of sharded nodes.
pub struct Sharded {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Their regions (same order).
    pub regions: Vec<ShardRegion<Cmd>>,
    /// The coordinator (on the first node).
    pub coordinator: ActorRef<CoordinatorMsg>,
    /// The log of every entity.
    pub log: Log,
}

/// Starts `names` as a cluster, waits until all are Up, spawns the coordinator on the first
/// node and a region (through a path forwarder to the coordinator) on every node.
pub async fn start_sharded(
    hub: &InMemoryHub,
    names: &[&str],
    settings: impl Fn() -> ShardingSettings<Cmd>,
) -> Sharded {
    let nodes = start_cluster(hub, names, &ClusterSettings::fast());
    let refs: Vec<&Node> = nodes.iter().collect();
    let addresses: Vec<&actor_cluster::Address> = nodes.iter().map(|n| &n.address).collect();
    await_all_up(&refs, &addresses).await;
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let coordinator = ClusterSharding::get(&nodes[0].system)
        .spawn_coordinator(TYPE, &settings())
        .expect("coordinator");
    let path = coordinator.path().to_string();
    let regions = nodes
        .iter()
        .zip(names)
        .map(|(node, name)| start_region(node, name, &path, &log, settings()))
        .collect();
    Sharded {
        nodes,
        regions,
        coordinator,
        log,
    }
}

/// Stops `actor` and waits until it terminated.
pub async fn stop_and_wait<M: Send + 'static>(actor: &ActorRef<M>) {
    actor.stop();
    await_assert(
        || {
            if actor.is_terminated() {
                Ok(())
            } else {
                Err("still running")
            }
        },
        LOCAL_WAIT,
        LOCAL_POLL,
    )
    .await;
}

impl Sharded {
    /// Replaces the coordinator (as when the singleton moved): stops it, spawns a new one
    /// with `settings` at the same path, and waits until its distribution is `old` again
    /// (every region registered again with its shards); returns that distribution.
    pub async fn replace_coordinator(
        &mut self,
        settings: &ShardingSettings<Cmd>,
        old: &ShardDistribution,
    ) -> ShardDistribution {
        stop_and_wait(&self.coordinator).await;
        self.coordinator = ClusterSharding::get(&self.nodes[0].system)
            .spawn_coordinator(TYPE, settings)
            .expect("new coordinator");
        await_distribution(&self.coordinator, LOCAL_WAIT, |d| {
            if d == old {
                Ok(())
            } else {
                Err("not the old map yet".into())
            }
        })
        .await
    }
}

/// Starts the region of `node` (named `name` in the log) reaching the coordinator at `path`.
pub fn start_region(
    node: &Node,
    name: &str,
    path: &str,
    log: &Log,
    settings: ShardingSettings<Cmd>,
) -> ShardRegion<Cmd> {
    let remoting = Remoting::get(&node.system).expect("remoting");
    remoting.register::<Reading>().expect("register");
    let forwarder = PathForwarder::spawn(&node.system, path.to_owned(), "coordinator-forwarder");
    ClusterSharding::get(&node.system)
        .start_with_coordinator(
            TYPE,
            Counter::factory(name, log),
            settings,
            entity_of,
            forwarder,
        )
        .expect("region")
}

/// Asks entity `id` through `region` for its reading.
pub async fn get(region: &ShardRegion<Cmd>, id: &str) -> Reading {
    region
        .actor_ref()
        .ask(
            |reply| Cmd::Get {
                id: id.to_owned(),
                reply,
            },
            ASK,
        )
        .await
        .unwrap_or_else(|e| panic!("entity {id} did not answer: {e}"))
}

/// Asks entity `id` until it answers (each try [`ASK`]), at most `max` in virtual time.
pub async fn get_eventually(region: &ShardRegion<Cmd>, id: &str, max: Duration) -> Reading {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        let answer = region
            .actor_ref()
            .ask(
                |reply| Cmd::Get {
                    id: id.to_owned(),
                    reply,
                },
                ASK,
            )
            .await;
        match answer {
            Ok(reading) => return reading,
            Err(error) if tokio::time::Instant::now() >= deadline => {
                panic!("entity {id} did not answer within {max:?}: {error}")
            }
            // Refused at once (a full buffer, a dead ref): poll again a little later.
            Err(_) => tokio::time::sleep(RETRY_PAUSE).await,
        }
    }
}

/// The set of nodes named in `readings`.
pub fn nodes_of(readings: &[Reading]) -> BTreeSet<String> {
    readings.iter().map(|r| r.node.clone()).collect()
}

/// `Cmd::Add` for entity `id`.
pub fn add(id: &str, n: u64) -> Cmd {
    Cmd::Add { id: id.into(), n }
}

/// An allocation strategy that puts every new shard on the region whose key contains
/// `prefer` (least-shards among the others when none does) and never rebalances: a test
/// decides where shards go.
#[derive(Debug, Clone)]
pub struct Prefer(pub &'static str);

impl ShardAllocationStrategy for Prefer {
    fn allocate(&self, _shard: u32, current: &Allocation) -> Option<String> {
        current
            .keys()
            .find(|k| k.contains(self.0))
            .or_else(|| {
                current
                    .iter()
                    .min_by_key(|(k, s)| (s.len(), (*k).clone()))
                    .map(|(k, _)| k)
            })
            .cloned()
    }

    fn rebalance(&self, _: &Allocation, _: &BTreeSet<u32>) -> BTreeSet<u32> {
        BTreeSet::new()
    }
}

/// Polls `coordinator`'s distribution until `check` accepts it (at most `max`, virtual time).
pub async fn await_distribution(
    coordinator: &ActorRef<CoordinatorMsg>,
    max: Duration,
    mut check: impl FnMut(&ShardDistribution) -> Result<(), String>,
) -> ShardDistribution {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        let d = ClusterSharding::distribution(coordinator, ASK).await;
        let why = match &d {
            Ok(d) => match check(d) {
                Ok(()) => return d.clone(),
                Err(why) => why,
            },
            Err(e) => e.to_string(),
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "distribution never settled: {why}; last {d:?}"
        );
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Waits this long at most for a one-node condition (virtual time).
pub const LOCAL_WAIT: Duration = Duration::from_secs(30);

/// Poll interval of the one-node waits (virtual time).
pub const LOCAL_POLL: Duration = Duration::from_millis(10);

/// One node without remoting: a coordinator spawned directly and the region.
pub struct Local {
    /// The node.
    pub system: ActorSystem,
    /// Its region.
    pub region: ShardRegion<Cmd>,
    /// The entities' log.
    pub log: Log,
}

/// Starts a [`Local`] node with `settings`.
pub fn start_local(settings: ShardingSettings<Cmd>) -> Local {
    let system = ActorSystem::new("local").expect("system");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let sharding = ClusterSharding::get(&system);
    let coordinator = sharding
        .spawn_coordinator(TYPE, &settings)
        .expect("coordinator");
    let region = sharding
        .start_with_coordinator(
            TYPE,
            Counter::factory("local", &log),
            settings,
            entity_of,
            coordinator,
        )
        .expect("region");
    Local {
        system,
        region,
        log,
    }
}

/// The test settings over `storage`, reached through `flaky`.
pub fn settings_through(storage: &Storage, flaky: &Arc<FlakyStorage>) -> ShardingSettings<Cmd> {
    let mut s = settings(storage);
    s.storage = flaky.clone();
    s
}

/// A [`Local`] node whose storage access goes through a [`FlakyStorage`] over `storage`
/// (returned, to make calls fail or hang); `configure` adjusts the test settings.
pub fn start_flaky_local(
    storage: &Storage,
    configure: impl FnOnce(ShardingSettings<Cmd>) -> ShardingSettings<Cmd>,
) -> (Local, Arc<FlakyStorage>) {
    let flaky = FlakyStorage::new(storage.storage.clone());
    let settings = configure(settings_through(storage, &flaky));
    (start_local(settings.build().expect("settings")), flaky)
}

/// Registers `region` (a probe playing a region) with `coordinator` as runner `runner` and
/// waits for the answer.
pub async fn register_probe(
    coordinator: &ActorRef<CoordinatorMsg>,
    region: &TestProbe<RegionCtl>,
    runner: &str,
) {
    coordinator.tell(CoordinatorMsg::Register {
        region: region.actor_ref().clone(),
        runner: runner.to_owned(),
        proxy: false,
        hosted: Vec::new(),
    });
    match region.receive_one(ASK).await {
        Some(RegionCtl::Registered { .. }) => {}
        other => panic!("expected Registered, got {other:?}"),
    }
}

/// One node without remoting whose region talks to a test probe instead of a coordinator;
/// the probe has answered the region's registration.
pub struct ProbeRegion {
    /// The node.
    pub system: ActorSystem,
    /// Its region.
    pub region: ShardRegion<Cmd>,
    /// The entities' log.
    pub log: Log,
    /// Plays the coordinator.
    pub coordinator: TestProbe<CoordinatorMsg>,
    /// The region's control actor (tell it what the coordinator would).
    pub ctl: ActorRef<RegionCtl>,
}

/// Starts a [`ProbeRegion`] with `settings` and registers it.
pub async fn start_probe_region(settings: ShardingSettings<Cmd>) -> ProbeRegion {
    let system = ActorSystem::new("local").expect("system");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let coordinator = TestProbe::<CoordinatorMsg>::new(&system);
    let region = ClusterSharding::get(&system)
        .start_with_coordinator(
            TYPE,
            Counter::factory("local", &log),
            settings.build().expect("settings"),
            entity_of,
            coordinator.actor_ref().clone(),
        )
        .expect("region");
    let ctl = match coordinator.receive_one(ASK).await {
        Some(CoordinatorMsg::Register { region, proxy, .. }) => {
            assert!(!proxy, "a hosting region registered as a proxy");
            region
        }
        other => panic!("expected Register, got {other:?}"),
    };
    ctl.tell(RegionCtl::Registered {
        coordinator: coordinator.actor_ref().clone(),
    });
    ProbeRegion {
        system,
        region,
        log,
        coordinator,
        ctl,
    }
}

impl ProbeRegion {
    /// Tells the region to host `shard` (as the coordinator would).
    pub fn host(&self, shard: u32) {
        self.ctl.tell(RegionCtl::HostShard {
            shard,
            entities: Vec::new(),
        });
    }

    /// Receives from the coordinator probe until the region reports `shard` stopped (home
    /// questions and remembered-entity updates on the way are skipped).
    pub async fn expect_shard_stopped(&self, shard: u32) {
        loop {
            match self.coordinator.receive_one(LOCAL_WAIT).await {
                Some(CoordinatorMsg::ShardStopped { shard: stopped, .. }) => {
                    assert_eq!(stopped, shard);
                    return;
                }
                Some(
                    CoordinatorMsg::GetShardHome { .. } | CoordinatorMsg::EntitiesChanged { .. },
                ) => {}
                other => panic!("expected ShardStopped, got {other:?}"),
            }
        }
    }
}

/// Waits until `log` has an event `want` accepts (`what` names it in the failure).
pub async fn await_event(log: &Log, what: &str, want: impl Fn(&Event) -> bool) {
    await_assert(
        || {
            if log.lock().iter().any(&want) {
                Ok(())
            } else {
                Err(format!("no {what} yet"))
            }
        },
        LOCAL_WAIT,
        LOCAL_POLL,
    )
    .await;
}

/// Whether `event` is entity `id` getting its stop message.
pub fn is_stopping(event: &Event, id: &str) -> bool {
    matches!(event, Event::Stopping { id: i, .. } if i == id)
}

/// Whether `event` is entity `id` stopping.
pub fn is_stopped(event: &Event, id: &str) -> bool {
    matches!(event, Event::Stopped { id: i, .. } if i == id)
}

/// How many times entity `id` stopped.
pub fn stops_of(log: &Log, id: &str) -> usize {
    log.lock().iter().filter(|e| is_stopped(e, id)).count()
}

/// Waits until `counter` reached `at_least` (`what` names it in the failure).
pub async fn await_count(counter: &AtomicU64, at_least: u64, what: &str) {
    await_assert(
        || {
            if counter.load(Ordering::SeqCst) >= at_least {
                Ok(())
            } else {
                Err(format!("{what}: not {at_least} yet"))
            }
        },
        LOCAL_WAIT,
        LOCAL_POLL,
    )
    .await;
}

/// Defines `memory::<test>` and `sqlite::<test>` tokio tests (paused clock) running each
/// `async fn <test>(Backend)` of the invoking module once per runner storage.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $test() {
                    super::$test(super::Backend::Memory).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(start_paused = true)]
                async fn $test() {
                    super::$test(super::Backend::Sqlite).await;
                }
            )*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use on_both_backends;
