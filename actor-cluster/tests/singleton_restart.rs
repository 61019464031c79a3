//! Cluster singleton managers that are restarted or stopped while something is in flight,
//! through real paths (a sibling's failure under an all-for-one guardian, the user's
//! singleton factory panicking), on the in-memory transport under a paused clock.

mod cluster_support;
mod singleton_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::membership::ClusterEvent;
use actor_cluster::remote::Remoting;
use actor_cluster::singleton::{ProxySettings, SingletonSettings, lease_owner};
use actor_cluster::{Address, FaultInjector, InMemoryHub};
use actor_coordination::lease::{
    Acquired, BoxFuture, FencingToken, InMemoryLease, InMemoryLeaseRegistry, Lease, LeaseError,
    LeaseSettings, LostCallback,
};
use actor_core::{
    Actor, ActorError, ActorRef, ActorResult, ActorSystem, Context, Props, SupervisorStrategy,
};
use actor_testkit::{TestProbe, await_assert};
use cluster_support::{Node, SYSTEM, address, await_all_up, start_node};
use parking_lot::Mutex;
use singleton_support::{
    Cmd, Notes, POLL, SingletonNode, TYPE_NAME, Timeline, add_singleton, add_singleton_with_hook,
    shutdown, who,
};
use tokio::sync::Notify;
use tokio::time::Instant;

const SETTLE: Duration = Duration::from_secs(30);
const LEASE: &str = "recorder-lease";
const TTL: Duration = Duration::from_secs(3);

/// Operation timeout of the gated leases (at most `TTL` minus its safety margin).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(1);

/// Operation timeout of the gated lease whose release is held across a manager restart:
/// the manager gives the call up after twice that (5 s), longer than the test holds it.
const LONG_OPERATION_TIMEOUT: Duration = Duration::from_millis(2500);

/// How long the manager waits for one call on such a lease.
const CALL_BOUND: Duration = Duration::from_secs(2);

/// Holds the next call of one kind (acquire or release) once armed, until opened.
#[derive(Debug, Default)]
struct Gate {
    armed: AtomicBool,
    held: AtomicUsize,
    notify: Notify,
}

impl Gate {
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    fn open(&self) {
        self.notify.notify_one();
    }

    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.held.fetch_add(1, Ordering::SeqCst);
            self.notify.notified().await;
        }
    }
}

/// An in-memory lease whose next acquire or release can be held in flight.
#[derive(Debug)]
struct GatedLease {
    inner: InMemoryLease,
    acquires: Gate,
    releases: Gate,
    /// Acquires that returned from the registry.
    acquired: AtomicUsize,
    /// Releases that reached the registry.
    released: AtomicUsize,
}

impl GatedLease {
    /// With an operation timeout of `operation_timeout`: the manager gives a call up after
    /// twice that ([`actor_cluster::singleton::LEASE_CALL_TIMEOUT_FACTOR`]).
    fn new(
        system: &ActorSystem,
        registry: &Arc<InMemoryLeaseRegistry>,
        operation_timeout: Duration,
    ) -> Arc<GatedLease> {
        let owner = lease_owner(system).expect("remoting started");
        let settings = LeaseSettings::builder(LEASE, owner)
            .ttl(TTL)
            .operation_timeout(operation_timeout)
            .build()
            .expect("lease settings");
        Self::with_settings(settings, registry)
    }

    fn with_settings(
        settings: LeaseSettings,
        registry: &Arc<InMemoryLeaseRegistry>,
    ) -> Arc<GatedLease> {
        Arc::new(GatedLease {
            inner: InMemoryLease::with_registry(settings, registry.clone()),
            acquires: Gate::default(),
            releases: Gate::default(),
            acquired: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
        })
    }
}

impl Lease for GatedLease {
    fn settings(&self) -> &LeaseSettings {
        self.inner.settings()
    }

    fn acquire(&self) -> BoxFuture<'_, Result<Acquired, LeaseError>> {
        Box::pin(async move {
            self.acquires.pass().await;
            self.inner.acquire().await
        })
    }

    fn acquire_with_lost_callback(
        &self,
        on_lost: LostCallback,
    ) -> BoxFuture<'_, Result<Acquired, LeaseError>> {
        Box::pin(async move {
            self.acquires.pass().await;
            let result = self.inner.acquire_with_lost_callback(on_lost).await;
            self.acquired.fetch_add(1, Ordering::SeqCst);
            result
        })
    }

    fn release(&self) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(async move {
            self.releases.pass().await;
            let result = self.inner.release().await;
            self.released.fetch_add(1, Ordering::SeqCst);
            result
        })
    }

    fn check_lease(&self) -> bool {
        self.inner.check_lease()
    }

    fn fencing_token(&self) -> Option<FencingToken> {
        self.inner.fencing_token()
    }
}

/// A top-level actor that fails when told: under an all-for-one guardian, every top-level
/// actor of its node (the singleton manager among them) is restarted with it. Counts its
/// starts, so a test sees the restart happen.
struct Crasher(Arc<AtomicUsize>);

impl Actor for Crasher {
    type Msg = ();

    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        Err(ActorError::msg("crash on request"))
    }
}

/// A [`Crasher`] and how often it started.
struct CrasherRef {
    actor: ActorRef<()>,
    starts: Arc<AtomicUsize>,
}

impl CrasherRef {
    /// Fails the crasher and waits until the guardian restarted it (and all its siblings).
    async fn crash_siblings(&self) -> Instant {
        let before = self.starts.load(Ordering::SeqCst);
        self.actor.tell(());
        await_assert(
            || match self.starts.load(Ordering::SeqCst) {
                n if n > before => Ok(Instant::now()),
                n => Err(format!("crasher started {n} times")),
            },
            SETTLE,
            POLL,
        )
        .await
    }
}

/// A node that joins through `seeds` (itself first: it forms a cluster by itself), whose
/// `/user` guardian restarts all its children when one fails, with a [`Crasher`] beside
/// the singleton manager.
fn all_for_one_node(
    hub: &InMemoryHub,
    name: &str,
    seed: u64,
    seeds: Vec<Address>,
    removal: ClusterSettings,
) -> (Node, CrasherRef) {
    let transport = hub.bind(address(name)).expect("bind");
    let settings = Remoting::system_settings(&*transport)
        .seed(seed)
        .guardian_strategy(SupervisorStrategy::all_for_one());
    let system = ActorSystem::with_settings(SYSTEM, settings).expect("system");
    Remoting::start(&system, transport).expect("remoting");
    let cluster = Cluster::join(&system, removal.with_seed_nodes(seeds)).expect("join");
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    let actor = system
        .spawn(Props::new(move || Crasher(counter.clone())), "crasher")
        .expect("crasher");
    let node = Node {
        system,
        address: address(name),
        cluster,
    };
    (node, CrasherRef { actor, starts })
}

fn proxy_settings() -> ProxySettings {
    ProxySettings::new(TYPE_NAME).with_identify_interval(Duration::from_millis(200))
}

/// Polls `check` for `window`: it must hold the whole time.
async fn assert_for(window: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        if let Err(why) = check() {
            panic!("{why}");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn phase(node: &SingletonNode) -> String {
    node.status().await.phase
}

/// The manager is restarted while a release it issued is still in flight; the new
/// incarnation must not acquire (and so must not run the singleton) before that release
/// is done, since it would drop the new holding (the lease object is shared by the
/// incarnations, and a release lets go of whatever it holds).
#[tokio::test(start_paused = true)]
async fn a_release_from_before_a_manager_restart_never_drops_the_new_holding() {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let (node, crasher) =
        all_for_one_node(&hub, "n1", 1, vec![address("n1")], ClusterSettings::fast());
    let lease = GatedLease::new(&node.system, &registry, LONG_OPERATION_TIMEOUT);
    let settings = SingletonSettings::new(TYPE_NAME)
        .with_lease(lease.clone())
        .with_acquire_retry_interval(Duration::from_millis(500));
    let n1 = add_singleton(node, "n1", settings, proxy_settings(), &timeline, &notes);
    let first = timeline.await_start("n1", t0, SETTLE).await;

    // the singleton stops itself: the manager releases the lease, and the release is held
    lease.releases.arm();
    n1.proxy.tell(Cmd::StopYourself);
    await_assert(
        || match lease.releases.held() {
            1 => Ok(()),
            n => Err(format!("{n} releases held")),
        },
        SETTLE,
        POLL,
    )
    .await;
    let stopped_at = Instant::now();
    assert_eq!(phase(&n1).await, "releasing-lease");

    // a sibling fails: the guardian restarts the manager while its release is in flight
    crasher.crash_siblings().await;
    let deadline = Instant::now() + SETTLE;
    while phase(&n1).await == "releasing-lease" {
        assert!(Instant::now() < deadline, "the manager was not restarted");
        tokio::time::sleep(POLL).await;
    }
    assert_for(Duration::from_secs(2), || {
        let starts = timeline.starts_after(stopped_at);
        if starts.is_empty() && lease.released.load(Ordering::SeqCst) == 0 {
            Ok(())
        } else {
            Err(format!(
                "the restarted manager acquired (and started {starts:?}) while its earlier release was in flight"
            ))
        }
    })
    .await;

    // the release is still in flight (the manager gives a call up only after twice the
    // operation timeout), and now goes through: then the new incarnation acquires and runs
    // the singleton
    assert!(Instant::now() < stopped_at + LONG_OPERATION_TIMEOUT * 2);
    lease.releases.open();
    let second = timeline.await_newer_start(first.token, SETTLE).await;
    assert_eq!(second.node, "n1");
    assert_for(TTL * 2, || {
        let holder = registry.holder_of(LEASE);
        if lease.check_lease()
            && holder.as_ref().map(|o| o.id()) == lease_owner(&n1.node.system).as_ref().map(|o| o.id())
            && lease.fencing_token().map(|t| t.value()) == second.token
        {
            Ok(())
        } else {
            Err(format!(
                "the singleton runs with token {:?} but the lease is held by {holder:?} (token {:?}); timeline {:?}",
                second.token,
                lease.fencing_token(),
                timeline.entries()
            ))
        }
    })
    .await;
    assert_eq!(timeline.running(), vec!["n1".to_owned()]);
    let status = n1.status().await;
    assert!(status.active && status.holds_lease, "{status:?}");
    n1.node.system.terminate().await;
}

/// Removal margin of the margin test: long enough that a restart lands well inside it.
const MARGIN: Duration = Duration::from_secs(3);

/// Bound from the end of the margin to the start (the timer, the spawn).
const START_BOUND: Duration = Duration::from_secs(1);

fn margin_settings() -> SingletonSettings {
    SingletonSettings::new(TYPE_NAME)
        .with_hand_over_retry_interval(Duration::from_millis(200))
        .with_removal_margin(MARGIN)
}

/// Records on `node` when the member at `subject` is removed.
fn removal_of(node: &Node, subject: Address) -> Arc<Mutex<Option<Instant>>> {
    let removed: Arc<Mutex<Option<Instant>>> = Arc::default();
    let record = removed.clone();
    node.cluster.subscribe_fn(move |event| {
        if let ClusterEvent::MemberRemoved { member, .. } = event
            && member.address == subject
        {
            record.lock().get_or_insert_with(Instant::now);
        }
    });
    removed
}

/// The host n1 crashes and is downed and removed; its successor n2 waits out the removal
/// margin. Inside the margin n2's manager is restarted (a sibling fails under the
/// all-for-one guardian): the new incarnation still waits out what is left of the margin.
async fn restart_inside_the_margin(seed: u64) {
    let hub = InMemoryHub::new();
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let seeds: Vec<Address> = ["n1", "n2", "n3"].iter().map(|n| address(n)).collect();
    let cluster = ClusterSettings::fast().with_seed_nodes(seeds.clone());
    let n1 = start_node(&hub, "n1", seed * 10 + 1, cluster.clone());
    let (n2, crasher) = all_for_one_node(&hub, "n2", seed * 10 + 2, seeds, cluster.clone());
    let n3 = start_node(&hub, "n3", seed * 10 + 3, cluster);
    await_all_up(
        &[&n1, &n2, &n3],
        &[&address("n1"), &address("n2"), &address("n3")],
    )
    .await;
    let removed = removal_of(&n2, address("n1"));
    let nodes: Vec<SingletonNode> = [(n1, "n1"), (n2, "n2"), (n3, "n3")]
        .into_iter()
        .map(|(node, name)| {
            add_singleton(
                node,
                name,
                margin_settings(),
                proxy_settings(),
                &timeline,
                &notes,
            )
        })
        .collect();
    timeline.await_start("n1", t0, SETTLE).await;

    let mut nodes = nodes.into_iter();
    let n1 = nodes.next().expect("n1");
    let nodes: Vec<SingletonNode> = nodes.collect();
    assert!(hub.crash(&n1.node.address));
    n1.node.system.terminate().await;
    let removed_at = await_assert(
        || {
            removed
                .lock()
                .ok_or_else(|| "n1 not removed yet".to_owned())
        },
        SETTLE,
        POLL,
    )
    .await;
    let restarted_at = crasher.crash_siblings().await;
    assert!(
        restarted_at < removed_at + MARGIN,
        "seed {seed}: the restart came {:?} after the removal, not inside the margin",
        restarted_at - removed_at
    );
    let started = timeline.await_start("n2", removed_at, SETTLE).await;
    assert!(
        started.at >= removed_at + MARGIN,
        "seed {seed}: the restarted manager started {:?} after n1's removal, margin {MARGIN:?}",
        started.at - removed_at
    );
    assert!(
        started.at <= removed_at + MARGIN + START_BOUND,
        "seed {seed}: started {:?} after n1's removal",
        started.at - removed_at
    );
    assert_eq!(timeline.assert_no_overlap(), 2, "seed {seed}");
    assert_eq!(who(&nodes[1].proxy, SETTLE).await.node, "n2");
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_manager_restarted_inside_a_removal_margin_waits_it_out_over_20_seeds() {
    for seed in 1..=20 {
        restart_inside_the_margin(seed).await;
    }
}

/// Bound from a leave to the singleton running on the successor (stop, confirm, spawn).
const HAND_OVER_BOUND: Duration = Duration::from_secs(2);

/// n2's singleton factory panics the first time n2 starts an instance (when n1 leaves):
/// the manager fails inside `spawn_child` and the guardian restarts it. The restarted
/// manager re-subscribes and reconciles: the singleton runs on n2, and when n2 leaves in
/// turn the restarted manager sees it and hands over to n3 within the bound.
#[tokio::test(start_paused = true)]
async fn a_manager_restarted_by_a_panicking_factory_resubscribes_and_reconciles() {
    let hub = InMemoryHub::new();
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let names = ["n1", "n2", "n3"];
    let seeds: Vec<Address> = names.iter().map(|n| address(n)).collect();
    let panics = Arc::new(AtomicUsize::new(0));
    let nodes: Vec<SingletonNode> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cluster = ClusterSettings::fast().with_seed_nodes(seeds.clone());
            let node = start_node(&hub, name, i as u64 + 1, cluster);
            let panic_once = (*name == "n2").then(|| AtomicBool::new(true));
            let panics = panics.clone();
            add_singleton_with_hook(
                node,
                name,
                margin_settings(),
                proxy_settings(),
                (&timeline, &notes),
                Duration::ZERO,
                move || {
                    if panic_once
                        .as_ref()
                        .is_some_and(|p| p.swap(false, Ordering::SeqCst))
                    {
                        panics.fetch_add(1, Ordering::SeqCst);
                        panic!("singleton factory fails once");
                    }
                },
            )
        })
        .collect();
    {
        let refs: Vec<&Node> = nodes.iter().map(|n| &n.node).collect();
        let addresses: Vec<&Address> = nodes.iter().map(|n| &n.node.address).collect();
        await_all_up(&refs, &addresses).await;
    }
    timeline.await_start("n1", t0, SETTLE).await;

    let left_at = Instant::now();
    nodes[0].node.cluster.leave();
    let on_n2 = timeline.await_start("n2", left_at, HAND_OVER_BOUND).await;
    assert_eq!(
        panics.load(Ordering::SeqCst),
        1,
        "the factory panicked once"
    );
    assert_eq!(who(&nodes[1].proxy, SETTLE).await.node, "n2");

    let left_at = Instant::now();
    nodes[1].node.cluster.leave();
    let on_n3 = timeline.await_start("n3", left_at, HAND_OVER_BOUND).await;
    let stopped = timeline.await_stop("n2", on_n2.at, SETTLE).await;
    assert!(stopped.at <= on_n3.at);
    assert_eq!(timeline.assert_no_overlap(), 3);
    assert_eq!(who(&nodes[2].proxy, SETTLE).await.node, "n3");
    shutdown(nodes).await;
}

/// The manager is stopped (its system goes on) while its lease acquire is in flight; the
/// acquire is granted afterwards. Nobody will handle that grant, so it must be released,
/// not held and renewed for as long as the process lives.
#[tokio::test(start_paused = true)]
async fn a_grant_that_arrives_after_the_manager_stopped_is_released() {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let (node, _crasher) =
        all_for_one_node(&hub, "n1", 1, vec![address("n1")], ClusterSettings::fast());
    let lease = GatedLease::new(&node.system, &registry, LONG_OPERATION_TIMEOUT);
    lease.acquires.arm();
    let settings = SingletonSettings::new(TYPE_NAME)
        .with_lease(lease.clone())
        .with_acquire_retry_interval(Duration::from_millis(500));
    let n1 = add_singleton(node, "n1", settings, proxy_settings(), &timeline, &notes);
    await_assert(
        || match lease.acquires.held() {
            1 => Ok(()),
            n => Err(format!("{n} acquires held")),
        },
        SETTLE,
        POLL,
    )
    .await;

    let probe = TestProbe::<()>::new(&n1.node.system);
    probe.watch(&n1.manager).await;
    n1.manager.stop();
    probe.expect_terminated(&n1.manager).await;
    lease.acquires.open();
    let owner = lease_owner(&n1.node.system).expect("owner");
    await_assert(
        || match lease.acquired.load(Ordering::SeqCst) {
            1 => Ok(()),
            n => Err(format!("{n} acquires returned")),
        },
        SETTLE,
        POLL,
    )
    .await;
    await_assert(
        || match registry.holder_of(LEASE) {
            None if !lease.check_lease() => Ok(()),
            holder => Err(format!("the lease is still held by {holder:?}")),
        },
        SETTLE,
        POLL,
    )
    .await;
    // and stays free (nothing renews it); nothing ever ran
    assert_for(TTL * 2, || match registry.holder_of(LEASE) {
        None => Ok(()),
        Some(holder) => Err(format!("held again by {holder:?} (this node: {owner:?})")),
    })
    .await;
    assert!(timeline.entries().is_empty(), "{:?}", timeline.entries());
    n1.node.system.terminate().await;
}

/// Bound from a hung call being given up on to the singleton running: the acquire retry
/// interval (500 ms), a refused acquire while the old holding is being let go, the spawn.
const AFTER_GIVE_UP_BOUND: Duration = Duration::from_secs(2);

/// The lease's acquire hangs for ever (a lease implementation without its own timeout):
/// the manager gives the call up after [`CALL_BOUND`], handles it as refused and acquires
/// again, and the singleton runs. Before, the manager waited for that answer for ever and
/// the singleton never started.
#[tokio::test(start_paused = true)]
async fn a_hung_lease_acquire_is_given_up_and_acquired_again() {
    assert_eq!(
        CALL_BOUND,
        OPERATION_TIMEOUT * actor_cluster::singleton::LEASE_CALL_TIMEOUT_FACTOR
    );
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let (node, _crasher) =
        all_for_one_node(&hub, "n1", 1, vec![address("n1")], ClusterSettings::fast());
    let lease = GatedLease::new(&node.system, &registry, OPERATION_TIMEOUT);
    lease.acquires.arm();
    let settings = SingletonSettings::new(TYPE_NAME)
        .with_lease(lease.clone())
        .with_acquire_retry_interval(Duration::from_millis(500));
    let n1 = add_singleton(node, "n1", settings, proxy_settings(), &timeline, &notes);
    await_assert(
        || match lease.acquires.held() {
            1 => Ok(Instant::now()),
            n => Err(format!("{n} acquires held")),
        },
        SETTLE,
        POLL,
    )
    .await;
    // the held acquire is never let through
    let started = timeline.await_start("n1", t0, SETTLE).await;
    assert!(
        started.at >= t0 + CALL_BOUND,
        "started {:?} after the manager, before the hung call was given up",
        started.at - t0
    );
    assert!(
        started.at <= t0 + CALL_BOUND + AFTER_GIVE_UP_BOUND,
        "started {:?} after the manager",
        started.at - t0
    );
    assert_eq!(lease.acquires.held(), 1, "only the first acquire hung");
    assert_eq!(lease.fencing_token().map(|t| t.value()), started.token);
    let status = n1.status().await;
    assert!(status.active && status.holds_lease, "{status:?}");
    n1.node.system.terminate().await;
}

/// Bound from n1's lease being let go to n2 running the singleton: the confirmation, one
/// acquire, the spawn (no acquire retry, which would take 500 ms).
const HAND_OVER_AFTER_RELEASE: Duration = Duration::from_millis(300);

/// The host n1 leaves and its lease release hangs for ever. The manager gives the release
/// up after [`CALL_BOUND`] and at once releases the holding its lease object still reports,
/// before it confirms the hand-over; the hand-over then completes: n1's leave goes on long before the exit blocker timeout (30 s)
/// and n2 runs the singleton, never overlapping n1's. Before, the answer never came: the
/// manager never became quiet, n1's leave was held for the whole exit blocker timeout, and
/// n1's lease object kept renewing the lease, so n2 never ran the singleton.
#[tokio::test(start_paused = true)]
async fn a_hung_lease_release_does_not_hold_the_leave_or_the_successor() {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let names = ["n1", "n2", "n3"];
    let seeds: Vec<Address> = names.iter().map(|n| address(n)).collect();
    let mut leases = Vec::new();
    let nodes: Vec<SingletonNode> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let cluster = ClusterSettings::fast().with_seed_nodes(seeds.clone());
            let node = start_node(&hub, name, i as u64 + 1, cluster);
            let lease = GatedLease::new(&node.system, &registry, OPERATION_TIMEOUT);
            leases.push(lease.clone());
            let settings = margin_settings()
                .with_lease(lease)
                .with_acquire_retry_interval(Duration::from_millis(500));
            add_singleton(node, name, settings, proxy_settings(), &timeline, &notes)
        })
        .collect();
    {
        let refs: Vec<&Node> = nodes.iter().map(|n| &n.node).collect();
        let addresses: Vec<&Address> = nodes.iter().map(|n| &n.node.address).collect();
        await_all_up(&refs, &addresses).await;
    }
    timeline.await_start("n1", t0, SETTLE).await;
    let removed = removal_of(&nodes[1].node, address("n1"));

    leases[0].releases.arm();
    let left_at = Instant::now();
    nodes[0].node.cluster.leave();
    let stopped = timeline.await_stop("n1", left_at, SETTLE).await;
    let on_n2 = timeline.await_start("n2", left_at, SETTLE).await;
    assert_eq!(leases[0].releases.held(), 1, "n1's release hung");
    // n1 released again at once (before telling n2), so n2's first acquire succeeds
    assert!(
        on_n2.at <= stopped.at + CALL_BOUND + HAND_OVER_AFTER_RELEASE,
        "n2 started {:?} after n1's instance stopped",
        on_n2.at - stopped.at
    );
    let removed_at = await_assert(
        || {
            removed
                .lock()
                .ok_or_else(|| "n1 not removed yet".to_owned())
        },
        SETTLE,
        POLL,
    )
    .await;
    assert!(
        removed_at <= stopped.at + CALL_BOUND + AFTER_GIVE_UP_BOUND,
        "n1 was removed {:?} after its instance stopped: its leave was held",
        removed_at - stopped.at
    );
    assert_eq!(timeline.assert_no_overlap(), 2);
    assert_eq!(leases[1].fencing_token().map(|t| t.value()), on_n2.token);
    assert_eq!(who(&nodes[1].proxy, SETTLE).await.node, "n2");
    shutdown(nodes.into_iter().skip(1).collect()).await;
}

/// The singleton stops itself, the manager's release of the lease is held, and the manager
/// is then stopped for good. It waits for that release (bounded by twice the operation
/// timeout) before it is gone: a release running after the manager is gone could drop the
/// holding of the next manager spawned on the same lease object. Before, the manager was
/// gone at once and its release ran later.
#[tokio::test(start_paused = true)]
async fn a_manager_stopped_for_good_waits_for_its_running_release() {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let (node, _crasher) =
        all_for_one_node(&hub, "n1", 1, vec![address("n1")], ClusterSettings::fast());
    let lease = GatedLease::new(&node.system, &registry, LONG_OPERATION_TIMEOUT);
    let settings = SingletonSettings::new(TYPE_NAME)
        .with_lease(lease.clone())
        .with_acquire_retry_interval(Duration::from_millis(500));
    let n1 = add_singleton(node, "n1", settings, proxy_settings(), &timeline, &notes);
    timeline.await_start("n1", t0, SETTLE).await;

    lease.releases.arm();
    n1.proxy.tell(Cmd::StopYourself);
    await_assert(
        || match lease.releases.held() {
            1 => Ok(()),
            n => Err(format!("{n} releases held")),
        },
        SETTLE,
        POLL,
    )
    .await;
    let probe = TestProbe::<()>::new(&n1.node.system);
    probe.watch(&n1.manager).await;
    n1.manager.stop();
    // the held release goes through a second later, within the manager's bound (5 s)
    let opened_at = Instant::now() + Duration::from_secs(1);
    let gated = lease.clone();
    let opener = tokio::spawn(async move {
        tokio::time::sleep_until(opened_at).await;
        gated.releases.open();
    });
    probe.expect_terminated(&n1.manager).await;
    assert!(
        Instant::now() >= opened_at,
        "the manager was gone {:?} before its release ran",
        opened_at - Instant::now()
    );
    assert_eq!(lease.released.load(Ordering::SeqCst), 1);
    assert_eq!(registry.holder_of(LEASE), None);
    assert!(!lease.check_lease());
    opener.await.expect("opener");
    n1.node.system.terminate().await;
}

/// How long each failing release of [`FailingRelease`] takes (virtual time).
const FAILING_RELEASE_TAKES: Duration = Duration::from_millis(10);

/// An in-memory lease whose releases fail (after [`FAILING_RELEASE_TAKES`]) without
/// releasing anything: the lease object goes on holding and renewing, as a lease that
/// cannot reach its backend might.
#[derive(Debug)]
struct FailingRelease {
    inner: InMemoryLease,
    fail: AtomicBool,
    releases: AtomicUsize,
}

impl Lease for FailingRelease {
    fn settings(&self) -> &LeaseSettings {
        self.inner.settings()
    }

    fn acquire(&self) -> BoxFuture<'_, Result<Acquired, LeaseError>> {
        self.inner.acquire()
    }

    fn acquire_with_lost_callback(
        &self,
        on_lost: LostCallback,
    ) -> BoxFuture<'_, Result<Acquired, LeaseError>> {
        self.inner.acquire_with_lost_callback(on_lost)
    }

    fn release(&self) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(async move {
            self.releases.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                tokio::time::sleep(FAILING_RELEASE_TAKES).await;
                return Err(LeaseError::Timeout {
                    name: LEASE.to_owned(),
                    operation: actor_coordination::lease::LeaseOperation::Release,
                    timeout: FAILING_RELEASE_TAKES,
                });
            }
            self.inner.release().await
        })
    }

    fn check_lease(&self) -> bool {
        self.inner.check_lease()
    }

    fn fencing_token(&self) -> Option<FencingToken> {
        self.inner.fencing_token()
    }
}

/// Acquire retry interval of the failing-release test: a failed release is retried after it.
const RETRY: Duration = Duration::from_millis(500);

/// How long the failing-release test watches the releases.
const WATCH: Duration = Duration::from_secs(3);

/// The singleton stops itself and every release of the lease fails while the lease object
/// goes on holding: the manager tries a failed release once more at once, then again once
/// per acquire retry interval, not in a tight loop (before, each failed answer issued the next release at once: about 300
/// calls in 3 s here, one per 10 ms the failing call takes, and with a call that fails at
/// once virtual time stood still). Once a release goes through, the retries stop, and the
/// singleton that stopped itself stays stopped.
#[tokio::test(start_paused = true)]
async fn a_failing_release_is_retried_at_the_acquire_interval_not_in_a_loop() {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let (node, _crasher) =
        all_for_one_node(&hub, "n1", 1, vec![address("n1")], ClusterSettings::fast());
    let owner = lease_owner(&node.system).expect("remoting started");
    let settings = LeaseSettings::builder(LEASE, owner)
        .ttl(TTL)
        .build()
        .expect("lease settings");
    let lease = Arc::new(FailingRelease {
        inner: InMemoryLease::with_registry(settings, registry.clone()),
        fail: AtomicBool::new(true),
        releases: AtomicUsize::new(0),
    });
    let settings = SingletonSettings::new(TYPE_NAME)
        .with_lease(lease.clone())
        .with_acquire_retry_interval(RETRY);
    let n1 = add_singleton(node, "n1", settings, proxy_settings(), &timeline, &notes);
    let started = timeline.await_start("n1", t0, SETTLE).await;

    n1.proxy.tell(Cmd::StopYourself);
    let stopped = timeline.await_stop("n1", started.at, SETTLE).await;
    await_assert(
        || match lease.releases.load(Ordering::SeqCst) {
            0 => Err("no release yet".to_owned()),
            _ => Ok(()),
        },
        SETTLE,
        POLL,
    )
    .await;
    let from = Instant::now();
    let before = lease.releases.load(Ordering::SeqCst);
    assert_for(WATCH, || {
        if lease.check_lease() {
            Ok(())
        } else {
            Err("the failing lease let go".to_owned())
        }
    })
    .await;
    let calls = lease.releases.load(Ordering::SeqCst) - before;
    // a failed release is tried once more at once, then again after each interval
    let most = 2 * ((WATCH.as_millis() / RETRY.as_millis()) as usize + 1);
    assert!(
        calls <= most,
        "{calls} release calls in {:?} (at most {most}: two per {RETRY:?})",
        Instant::now() - from
    );
    assert!(
        calls >= 2,
        "{calls} release calls: the failed release is retried"
    );

    // the backend comes back: the next retry releases, and the retries stop
    lease.fail.store(false, Ordering::SeqCst);
    await_assert(
        || match registry.holder_of(LEASE) {
            None if !lease.check_lease() => Ok(()),
            holder => Err(format!("still held by {holder:?}")),
        },
        SETTLE,
        POLL,
    )
    .await;
    let after = lease.releases.load(Ordering::SeqCst);
    assert_for(WATCH, || match lease.releases.load(Ordering::SeqCst) {
        n if n == after => Ok(()),
        n => Err(format!(
            "{} more release calls after the lease was let go",
            n - after
        )),
    })
    .await;
    assert!(stopped.at >= started.at);
    assert_eq!(timeline.starts_after(t0).len(), 1, "it stayed stopped");
    assert_eq!(n1.status().await.phase, "self-stopped");
    n1.node.system.terminate().await;
}
