//! Cluster singleton behind a lease on a shared `InMemoryLeaseRegistry`, under a paused clock:
//! a 2-1 partition where both sides host, a force-expired lease, a holder whose renewals
//! freeze, the fencing token, and the lease owner check. Every fault test runs 20 seeds and
//! checks both that instances never overlap and that one runs again within a bound.

mod cluster_support;
mod singleton_support;

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::ClusterSettings;
use actor_cluster::downing::DowningStrategy;
use actor_cluster::singleton::{
    ClusterSingletonManager, ProxySettings, SingletonError, SingletonSettings, lease_owner,
};
use actor_cluster::{FaultInjector, InMemoryHub};
use actor_coordination::lease::{
    Acquired, BoxFuture, FencingToken, InMemoryLease, InMemoryLeaseRegistry, Lease, LeaseError,
    LeaseOwner, LeaseSettings, LostCallback,
};
use actor_core::{ActorSystem, Props};
use actor_testkit::await_assert;
use cluster_support::{address, await_all_up, isolate, start_node};
use singleton_support::{
    Mark, Notes, POLL, Recorder, SingletonNode, TYPE_NAME, Timeline, shutdown,
    start_singleton_cluster, who,
};
use tokio::time::Instant;

const SEEDS: u64 = 20;
const SETTLE: Duration = Duration::from_secs(30);
const LEASE: &str = "recorder-lease";
const TTL: Duration = Duration::from_secs(3);
const ACQUIRE_RETRY: Duration = Duration::from_millis(500);

/// Bound on the time from a lease loss (or the holder's death) to an instance running again:
/// the acquire retry interval plus the TTL of a holding nobody released.
const RESTART_BOUND: Duration = Duration::from_secs(5);

/// Bound on a graceful hand-over with a lease: stop, release, confirm, acquire (well under
/// the TTL, which a hand-over must not wait for).
const HAND_OVER_BOUND: Duration = Duration::from_secs(1);

fn lease_for(system: &ActorSystem, registry: &Arc<InMemoryLeaseRegistry>) -> Arc<dyn Lease> {
    let owner = lease_owner(system).expect("remoting started");
    let settings = LeaseSettings::builder(LEASE, owner)
        .ttl(TTL)
        .build()
        .expect("lease settings");
    Arc::new(InMemoryLease::with_registry(settings, registry.clone()))
}

async fn leased_cluster(
    hub: &InMemoryHub,
    seed: u64,
    cluster: ClusterSettings,
    registry: &Arc<InMemoryLeaseRegistry>,
    timeline: &Timeline,
    notes: &Notes,
) -> Vec<SingletonNode> {
    let nodes = start_singleton_cluster(
        hub,
        &["n1", "n2", "n3"],
        seed,
        &cluster,
        |_, system| {
            SingletonSettings::new(TYPE_NAME)
                .with_lease(lease_for(system, registry))
                .with_acquire_retry_interval(ACQUIRE_RETRY)
                // the lease alone keeps instances apart: no removal margin
                .with_removal_margin(Duration::ZERO)
        },
        &ProxySettings::new(TYPE_NAME).with_identify_interval(Duration::from_millis(200)),
        (timeline, notes),
    );
    let refs: Vec<_> = nodes.iter().map(|n| &n.node).collect();
    let addresses: Vec<_> = nodes.iter().map(|n| &n.node.address).collect();
    await_all_up(&refs, &addresses).await;
    nodes
}

/// Auto-down: a cut-off node downs the others and goes on alone, so after a partition both
/// sides have a host.
fn island_settings() -> ClusterSettings {
    ClusterSettings::fast().with_downing_strategy(DowningStrategy::AutoDown {
        after: Duration::from_millis(500),
    })
}

#[tokio::test(start_paused = true)]
async fn the_host_holds_the_lease_and_its_singleton_gets_the_fencing_token() {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let nodes = leased_cluster(
        &hub,
        1,
        ClusterSettings::fast(),
        &registry,
        &timeline,
        &notes,
    )
    .await;
    let start = timeline.await_start("n1", t0, SETTLE).await;
    let n1 = &nodes[0];
    let owner = lease_owner(&n1.node.system).expect("owner");
    assert_eq!(registry.holder_of(LEASE), Some(owner.clone()));
    assert_eq!(owner.incarnation(), n1.node.cluster.self_member().uid);
    let token = registry.last_token_of(LEASE).map(|t| t.value());
    assert!(token.is_some());
    assert_eq!(start.token, token);
    let me = who(&nodes[2].proxy, SETTLE).await;
    assert_eq!((me.node.as_str(), me.token), ("n1", token));
    let status = n1.status().await;
    assert!(status.active && status.holds_lease, "{status:?}");
    assert_eq!(status.fencing_token, token);
    for n in &nodes[1..] {
        let status = n.status().await;
        assert!(!status.active && !status.holds_lease, "{status:?}");
    }
    shutdown(nodes).await;
}

async fn partition_with_shared_lease(seed: u64) {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let mut nodes =
        leased_cluster(&hub, seed, island_settings(), &registry, &timeline, &notes).await;
    timeline.await_start("n1", t0, SETTLE).await;

    let (a1, a2, a3) = (address("n1"), address("n2"), address("n3"));
    isolate(&hub, &a1, &[&a2, &a3]);
    // both sides host: n1 alone, n2 for the majority; only the lease holder runs one
    let n2_status = await_assert(
        || {
            let (n1, n2) = (
                &nodes[0].node.cluster.state(),
                &nodes[1].node.cluster.state(),
            );
            let alone = n1.members.len() == 1;
            let majority = n2.members.len() == 2;
            if alone && majority {
                Ok(())
            } else {
                Err(format!(
                    "n1 sees {:?}, n2 sees {:?}",
                    n1.members, n2.members
                ))
            }
        },
        SETTLE,
        POLL,
    );
    n2_status.await;
    let status = await_assert_status(&nodes[1], "acquire-backoff").await;
    assert_eq!(status.host, Some(a2.clone()), "n2 thinks it hosts");
    let n1_status = nodes[0].status().await;
    assert!(n1_status.active, "{n1_status:?}");
    assert_eq!(n1_status.host, Some(a1.clone()), "n1 thinks it hosts");
    // for a while: still one instance, on n1
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(timeline.running(), vec!["n1".to_owned()], "seed {seed}");

    // n1 dies: its lease is released on the way down, n2 takes it
    let n1 = nodes.remove(0);
    let died_at = Instant::now();
    assert!(hub.crash(&n1.node.address));
    n1.node.system.terminate().await;
    let started = timeline.await_start("n2", died_at, RESTART_BOUND).await;
    let first = timeline.entries()[0].token;
    assert!(started.token > first, "{started:?} after {first:?}");
    assert_eq!(timeline.assert_no_overlap(), 2, "seed {seed}");
    shutdown(nodes).await;
}

async fn await_assert_status(
    node: &SingletonNode,
    phase: &str,
) -> actor_cluster::singleton::ManagerStatus {
    let deadline = Instant::now() + SETTLE;
    loop {
        let status = node.status().await;
        if status.phase == phase {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{} never reached {phase}: {status:?}",
            node.name
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_two_one_partition_with_a_shared_lease_runs_at_most_one_instance_over_20_seeds() {
    for seed in 1..=SEEDS {
        partition_with_shared_lease(seed).await;
    }
}

async fn force_expired(seed: u64) {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let nodes = leased_cluster(
        &hub,
        seed,
        ClusterSettings::fast(),
        &registry,
        &timeline,
        &notes,
    )
    .await;
    let first = timeline.await_start("n1", t0, SETTLE).await;
    let expired_at = Instant::now();
    assert!(registry.force_expire(LEASE));
    let again = timeline.await_newer_start(first.token, RESTART_BOUND).await;
    assert_eq!(again.node, "n1");
    let entries = timeline.entries();
    let marks: Vec<_> = entries.iter().map(|e| (e.node.as_str(), e.mark)).collect();
    assert_eq!(
        marks,
        vec![("n1", Mark::Start), ("n1", Mark::Stop), ("n1", Mark::Start)],
        "seed {seed}"
    );
    // stopped at once (no virtual time passed), back with a newer token
    assert_eq!(entries[1].at, expired_at, "seed {seed}");
    assert!(again.token > first.token, "{again:?} after {first:?}");
    assert_eq!(timeline.assert_no_overlap(), 2);
    let me = who(&nodes[1].proxy, SETTLE).await;
    assert_eq!(me.token, again.token);
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_force_expired_lease_stops_the_singleton_which_comes_back_after_reacquiring_over_20_seeds()
 {
    for seed in 1..=SEEDS {
        force_expired(seed).await;
    }
}

async fn frozen_holder(seed: u64) {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let nodes = leased_cluster(&hub, seed, island_settings(), &registry, &timeline, &notes).await;
    timeline.await_start("n1", t0, SETTLE).await;
    let owner: LeaseOwner = lease_owner(&nodes[0].node.system).expect("owner");
    let margin = LeaseSettings::builder(LEASE, owner.clone())
        .ttl(TTL)
        .build()
        .expect("settings")
        .safety_margin();

    // n1 freezes: no renewals, no network; the others make n2 the host, which contends
    let frozen_at = Instant::now();
    registry.pause_renewals(&owner);
    isolate(&hub, &address("n1"), &[&address("n2"), &address("n3")]);
    let stopped_at = timeline.await_stop("n1", frozen_at, TTL).await.at;
    assert!(
        stopped_at <= frozen_at + TTL - margin,
        "stopped {:?} after freezing, deadline {:?}",
        stopped_at - frozen_at,
        TTL - margin
    );
    // one runs again within the bound, but not before the frozen holding expired in the
    // registry: n1 stopped at (last renewal + TTL - margin), the holding lives until (last
    // renewal + TTL), and not even n1 itself may take it again before (it is frozen)
    let next = await_assert(
        || match timeline.starts_after(stopped_at).first() {
            Some(e) => Ok(e.clone()),
            None => Err(format!("no restart: {:#?}", timeline.entries())),
        },
        RESTART_BOUND,
        POLL,
    )
    .await;
    assert!(
        next.at >= stopped_at + margin,
        "seed {seed}: {} started {:?} after n1 stopped, before the holding expired",
        next.node,
        next.at - stopped_at
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(timeline.assert_no_overlap() >= 2, "seed {seed}");
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_holder_whose_renewals_freeze_stops_by_its_deadline_before_anyone_else_starts_over_20_seeds()
 {
    for seed in 1..=SEEDS {
        frozen_holder(seed).await;
    }
}

/// A lease whose node crashed: from [`CrashableLease::crash`] on, nothing it does reaches
/// the registry (no release on the way down), like a process that died holding the lease.
#[derive(Debug)]
struct CrashableLease {
    inner: InMemoryLease,
    crashed: std::sync::atomic::AtomicBool,
}

impl CrashableLease {
    fn crash(&self) {
        self.crashed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner
            .registry()
            .pause_renewals(self.inner.settings().owner());
    }
}

impl Lease for CrashableLease {
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
        if self.crashed.load(std::sync::atomic::Ordering::SeqCst) {
            Box::pin(std::future::ready(Ok(false)))
        } else {
            self.inner.release()
        }
    }

    fn check_lease(&self) -> bool {
        self.inner.check_lease()
    }

    fn fencing_token(&self) -> Option<FencingToken> {
        self.inner.fencing_token()
    }
}

/// The holder crashes without releasing: its holding lives on in the registry until the
/// TTL from its last renewal, and no other node may start before that; one runs again
/// within the bound.
async fn holder_crashes_without_releasing(seed: u64) {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let leases = Arc::new(parking_lot::Mutex::new(Vec::<Arc<CrashableLease>>::new()));
    let t0 = Instant::now();
    let mut nodes = {
        let leases = leases.clone();
        start_singleton_cluster(
            &hub,
            &["n1", "n2", "n3"],
            seed,
            &ClusterSettings::fast(),
            |_, system| {
                let owner = lease_owner(system).expect("remoting started");
                let settings = LeaseSettings::builder(LEASE, owner)
                    .ttl(TTL)
                    .build()
                    .expect("lease settings");
                let lease = Arc::new(CrashableLease {
                    inner: InMemoryLease::with_registry(settings, registry.clone()),
                    crashed: false.into(),
                });
                leases.lock().push(lease.clone());
                SingletonSettings::new(TYPE_NAME)
                    .with_lease(lease)
                    .with_acquire_retry_interval(ACQUIRE_RETRY)
                    .with_removal_margin(Duration::ZERO)
            },
            &ProxySettings::new(TYPE_NAME).with_identify_interval(Duration::from_millis(200)),
            (&timeline, &notes),
        )
    };
    {
        let refs: Vec<_> = nodes.iter().map(|n| &n.node).collect();
        let addresses: Vec<_> = nodes.iter().map(|n| &n.node.address).collect();
        await_all_up(&refs, &addresses).await;
    }
    let first = timeline.await_start("n1", t0, SETTLE).await;
    let lease = leases.lock()[0].clone();
    let settings = lease.settings().clone();
    // let a renewal or two happen, then n1 dies between two renewals
    tokio::time::sleep(TTL / 2).await;
    let crashed_at = Instant::now();
    lease.crash();
    let n1 = nodes.remove(0);
    assert!(hub.crash(&n1.node.address));
    n1.node.system.terminate().await;
    assert!(
        registry.holder_of(LEASE).is_some(),
        "seed {seed}: the crash released the lease"
    );
    // the holding outlives the crash by at least ttl - renewal interval
    let earliest = crashed_at + settings.ttl() - settings.renewal_interval();
    let next = timeline.await_start("n2", crashed_at, RESTART_BOUND).await;
    assert!(
        next.at >= earliest,
        "seed {seed}: n2 started {:?} after the crash, before the unreleased holding expired",
        next.at - crashed_at
    );
    assert!(next.token > first.token, "{next:?} after {first:?}");
    assert_eq!(timeline.assert_no_overlap(), 2, "seed {seed}");
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_crashes_without_releasing_is_replaced_only_after_its_ttl_over_20_seeds() {
    for seed in 1..=SEEDS {
        holder_crashes_without_releasing(seed).await;
    }
}

async fn graceful_leave_with_lease(seed: u64) {
    let hub = InMemoryHub::new();
    let registry = Arc::new(InMemoryLeaseRegistry::new());
    let (timeline, notes) = (Timeline::default(), Notes::default());
    let t0 = Instant::now();
    let nodes = leased_cluster(
        &hub,
        seed,
        ClusterSettings::fast(),
        &registry,
        &timeline,
        &notes,
    )
    .await;
    let first = timeline.await_start("n1", t0, SETTLE).await;
    let left_at = Instant::now();
    nodes[0].node.cluster.leave();
    // the old host released before the successor acquired: no wait for the TTL
    let next = timeline.await_start("n2", left_at, HAND_OVER_BOUND).await;
    assert!(next.token > first.token, "{next:?} after {first:?}");
    let n2_owner = lease_owner(&nodes[1].node.system).expect("owner");
    assert_eq!(registry.holder_of(LEASE), Some(n2_owner));
    assert_eq!(timeline.assert_no_overlap(), 2, "seed {seed}");
    shutdown(nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_graceful_leave_releases_the_lease_before_the_successor_acquires_it_over_20_seeds() {
    for seed in 1..=SEEDS {
        graceful_leave_with_lease(seed).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_owned_by_another_node_is_refused() {
    let hub = InMemoryHub::new();
    let node = start_node(
        &hub,
        "n1",
        1,
        ClusterSettings::fast().with_seed_nodes(vec![address("n1")]),
    );
    let settings = LeaseSettings::builder(LEASE, LeaseOwner::new("someone-else", 1))
        .build()
        .expect("settings");
    let lease: Arc<dyn Lease> = Arc::new(InMemoryLease::new(settings));
    let err = ClusterSingletonManager::spawn(
        &node.system,
        Props::new(|| -> Recorder { unreachable!("never spawned") }),
        SingletonSettings::new(TYPE_NAME).with_lease(lease),
    )
    .expect_err("foreign owner");
    match err {
        SingletonError::LeaseOwnerMismatch { expected, found } => {
            assert_eq!(found, "someone-else#1");
            assert!(expected.starts_with("clu@n1:0#"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
    node.system.terminate().await;
}
