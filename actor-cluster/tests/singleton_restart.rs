//! Cluster singleton managers that are restarted or stopped while something is in flight,
//! through real paths (a sibling's failure under an all-for-one guardian, the user's
//! singleton factory panicking), on the in-memory transport under a paused clock.

mod cluster_support;
mod singleton_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actor_cluster::InMemoryHub;
use actor_cluster::cluster::{Cluster, ClusterSettings};
use actor_cluster::remote::Remoting;
use actor_cluster::singleton::{ProxySettings, SingletonSettings, lease_owner};
use actor_coordination::lease::{
    Acquired, BoxFuture, FencingToken, InMemoryLease, InMemoryLeaseRegistry, Lease, LeaseError,
    LeaseSettings, LostCallback,
};
use actor_core::{
    Actor, ActorError, ActorRef, ActorResult, ActorSystem, Context, Props, SupervisorStrategy,
};
use actor_testkit::await_assert;
use cluster_support::{Node, SYSTEM, address};
use singleton_support::{Cmd, Notes, POLL, SingletonNode, TYPE_NAME, Timeline, add_singleton};
use tokio::sync::Notify;
use tokio::time::Instant;

const SETTLE: Duration = Duration::from_secs(30);
const LEASE: &str = "recorder-lease";
const TTL: Duration = Duration::from_secs(3);

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
    /// Releases that reached the registry.
    released: AtomicUsize,
}

impl GatedLease {
    fn new(system: &ActorSystem, registry: &Arc<InMemoryLeaseRegistry>) -> Arc<GatedLease> {
        let owner = lease_owner(system).expect("remoting started");
        let settings = LeaseSettings::builder(LEASE, owner)
            .ttl(TTL)
            .build()
            .expect("lease settings");
        Arc::new(GatedLease {
            inner: InMemoryLease::with_registry(settings, registry.clone()),
            acquires: Gate::default(),
            releases: Gate::default(),
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
            self.inner.acquire_with_lost_callback(on_lost).await
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
/// actor of its node (the singleton manager among them) is restarted with it.
struct Crasher;

impl Actor for Crasher {
    type Msg = ();

    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        Err(ActorError::msg("crash on request"))
    }
}

/// A node that forms a cluster by itself, whose `/user` guardian restarts all its children
/// when one fails, with a [`Crasher`] beside the singleton manager.
fn all_for_one_node(hub: &InMemoryHub, name: &str, seed: u64) -> (Node, ActorRef<()>) {
    let transport = hub.bind(address(name)).expect("bind");
    let settings = Remoting::system_settings(&*transport)
        .seed(seed)
        .guardian_strategy(SupervisorStrategy::all_for_one());
    let system = ActorSystem::with_settings(SYSTEM, settings).expect("system");
    Remoting::start(&system, transport).expect("remoting");
    let cluster = Cluster::join(
        &system,
        ClusterSettings::fast().with_seed_nodes(vec![address(name)]),
    )
    .expect("join");
    let crasher = system
        .spawn(Props::new(|| Crasher), "crasher")
        .expect("crasher");
    let node = Node {
        system,
        address: address(name),
        cluster,
    };
    (node, crasher)
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
    let (node, crasher) = all_for_one_node(&hub, "n1", 1);
    let lease = GatedLease::new(&node.system, &registry);
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
    crasher.tell(());
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

    // the release goes through: then the new incarnation acquires and runs the singleton
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
