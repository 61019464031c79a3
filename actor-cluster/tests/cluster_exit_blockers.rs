//! Exit blockers: a graceful leave stays Leaving (not Exiting, not removed, not shut down)
//! while a local exit blocker is pending, goes on once every blocker is done or dropped,
//! and goes on anyway when the exit blocker timeout expires. Paused clock.

mod cluster_support;

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::{ClusterSettings, DEFAULT_EXIT_BLOCKER_TIMEOUT};
use actor_cluster::membership::ClusterEvent;
use actor_cluster::{Address, InMemoryHub};
use actor_testkit::await_assert;
use cluster_support::{Node, POLL, WAIT, await_all_up, start_cluster};
use parking_lot::Mutex;
use tokio::time::Instant;

/// Seeds of the timing tests.
const SEEDS: u64 = 20;

/// Bound from the end of a hold (blockers done, or the timeout) to the leaving node being
/// seen Exiting by another node: a few gossip rounds of [`ClusterSettings::fast`].
const RESUME_BOUND: Duration = Duration::from_secs(1);

/// When one node saw a member Leaving, Exiting and removed.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    left: Option<Instant>,
    exited: Option<Instant>,
    removed: Option<Instant>,
}

/// Records, on `observer`, when the member at `subject` was seen leaving, exiting, removed.
fn watch_leave(observer: &Node, subject: Address) -> Arc<Mutex<Seen>> {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let record = seen.clone();
    observer.cluster.subscribe_fn(move |event| {
        let mut seen = record.lock();
        match event {
            ClusterEvent::MemberLeft(m) if m.address == subject => {
                seen.left.get_or_insert_with(Instant::now);
            }
            ClusterEvent::MemberExited(m) if m.address == subject => {
                seen.exited.get_or_insert_with(Instant::now);
            }
            ClusterEvent::MemberRemoved { member, .. } if member.address == subject => {
                seen.removed.get_or_insert_with(Instant::now);
            }
            _ => {}
        }
    });
    seen
}

/// Waits until `seen` has the removal; returns every time.
async fn await_removed(seen: &Arc<Mutex<Seen>>) -> (Instant, Instant, Instant) {
    await_assert(
        || {
            let s = *seen.lock();
            match (s.left, s.exited, s.removed) {
                (Some(l), Some(e), Some(r)) => Ok((l, e, r)),
                _ => Err(format!("not yet removed: {s:?}")),
            }
        },
        WAIT,
        POLL,
    )
    .await
}

async fn three_nodes(hub: &InMemoryHub, settings: &ClusterSettings) -> Vec<Node> {
    let nodes = start_cluster(hub, &["n1", "n2", "n3"], settings);
    let refs: Vec<&Node> = nodes.iter().collect();
    let addresses: Vec<&Address> = nodes.iter().map(|n| &n.address).collect();
    await_all_up(&refs, &addresses).await;
    nodes
}

async fn shutdown(nodes: &[Node]) {
    for node in nodes {
        node.system.terminate().await;
    }
}

/// `leaver` registers two blockers (one reports done after 2 s, one is dropped after 4 s),
/// then leaves: it stays Leaving until the second, then leaves promptly.
async fn leave_waits_for_blockers(leaver: usize) {
    let hub = InMemoryHub::new();
    let nodes = three_nodes(&hub, &ClusterSettings::fast()).await;
    let observer = &nodes[(leaver + 1) % 3];
    let seen = watch_leave(observer, nodes[leaver].address.clone());
    let (first, second) = (Duration::from_secs(2), Duration::from_secs(4));
    let quick = nodes[leaver].cluster.register_exit_blocker("quick");
    let slow = nodes[leaver].cluster.register_exit_blocker("slow");
    assert_eq!(slow.name(), "slow");
    let left_at = Instant::now();
    nodes[leaver].cluster.leave();
    // the components' exit work, which takes virtual time
    let work = tokio::spawn(async move {
        tokio::time::sleep(first).await;
        quick.done();
        assert!(quick.is_done());
        tokio::time::sleep(second - first).await;
        drop(slow);
    });
    let (left, exited, removed) = await_removed(&seen).await;
    assert!(left < left_at + RESUME_BOUND, "Leaving seen at once");
    assert!(
        exited >= left_at + second,
        "{leaver}: exited {:?} after the leave, before its last blocker was done",
        exited - left_at
    );
    assert!(
        exited <= left_at + second + RESUME_BOUND,
        "{leaver}: exited {:?} after the leave",
        exited - left_at
    );
    assert!(removed >= exited);
    work.await.expect("exit work");
    assert!(nodes[leaver].system.await_termination(WAIT).await);
    shutdown(&nodes).await;
}

#[tokio::test(start_paused = true)]
async fn the_leader_s_leave_waits_until_every_exit_blocker_is_done_or_dropped() {
    leave_waits_for_blockers(0).await;
}

#[tokio::test(start_paused = true)]
async fn another_member_s_leave_waits_until_every_exit_blocker_is_done_or_dropped() {
    leave_waits_for_blockers(1).await;
}

/// A blocker that never reports done holds the leave for exactly the timeout; the leave
/// then completes (Exiting, removed, shut down) and the others go on without the node.
async fn blocker_never_done(seed: u64) {
    let hub = InMemoryHub::new();
    let timeout = Duration::from_secs(5);
    let settings = ClusterSettings::fast().with_exit_blocker_timeout(timeout);
    let leaver = (seed % 3) as usize;
    let nodes = three_nodes(&hub, &settings).await;
    let observer = &nodes[(leaver + 1) % 3];
    let seen = watch_leave(observer, nodes[leaver].address.clone());
    let stuck = nodes[leaver].cluster.register_exit_blocker("stuck");
    let left_at = Instant::now();
    nodes[leaver].cluster.leave();
    let (_, exited, removed) = await_removed(&seen).await;
    assert!(
        exited >= left_at + timeout,
        "seed {seed}: exited {:?} after the leave, before the timeout",
        exited - left_at
    );
    assert!(
        exited <= left_at + timeout + RESUME_BOUND,
        "seed {seed}: exited {:?} after the leave",
        exited - left_at
    );
    assert!(removed >= exited);
    assert!(nodes[leaver].system.await_termination(WAIT).await);
    assert!(!stuck.is_done(), "the leave went on without it");
    let rest: Vec<&Node> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leaver)
        .map(|(_, n)| n)
        .collect();
    let addresses: Vec<&Address> = rest.iter().map(|n| &n.address).collect();
    await_all_up(&rest, &addresses).await;
    shutdown(&nodes).await;
}

#[tokio::test(start_paused = true)]
async fn a_blocker_that_never_reports_done_is_cut_off_by_the_timeout_over_20_seeds() {
    for seed in 1..=SEEDS {
        blocker_never_done(seed).await;
    }
}

/// Without blockers (or with only finished ones) nothing changes: the leave is not held.
#[tokio::test(start_paused = true)]
async fn a_leave_without_pending_blockers_is_not_held() {
    let hub = InMemoryHub::new();
    let nodes = three_nodes(&hub, &ClusterSettings::fast()).await;
    let seen = watch_leave(&nodes[1], nodes[0].address.clone());
    let finished = nodes[0].cluster.register_exit_blocker("finished");
    finished.done();
    let left_at = Instant::now();
    nodes[0].cluster.leave();
    let (_, exited, _) = await_removed(&seen).await;
    assert!(
        exited <= left_at + RESUME_BOUND,
        "exited {:?} after the leave",
        exited - left_at
    );
    assert!(nodes[0].system.await_termination(WAIT).await);
    assert!(DEFAULT_EXIT_BLOCKER_TIMEOUT > RESUME_BOUND);
    shutdown(&nodes).await;
}

/// Frames the two leavers may exchange in [`BOTH_HOLD`] while both hold their leave: their
/// ordinary gossip and heartbeats ([`ClusterSettings::fast`]: one gossip round and one
/// heartbeat round per 100 ms each, with replies) came to 119 in 2 s; the reply storm this
/// test caught came to 7,170.
const PAIR_FRAME_BOUND: u64 = 200;

/// How long both leavers hold their leave in the two-leavers test.
const BOTH_HOLD: Duration = Duration::from_secs(2);

/// Two members that leave at once and both hold their leave do not answer each other's
/// gossip with gossip for ever: a holder's state never shows the other holder as having
/// seen it, so "the sender has not seen my state" alone must not make it reply (before the
/// fix each gossip between them was answered at once, a storm limited only by the link's
/// latency, here 5 ms; on a link without latency virtual time stood still). Both leaves then
/// complete.
#[tokio::test(start_paused = true)]
async fn two_members_holding_their_leave_do_not_gossip_in_a_storm() {
    use actor_cluster::{Direction, FaultInjector};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let hub = InMemoryHub::new();
    let nodes = three_nodes(&hub, &ClusterSettings::fast()).await;
    let (a, b) = (nodes[0].address.clone(), nodes[1].address.clone());
    hub.delay(&a, &b, Direction::Both, Duration::from_millis(5));
    let counting = Arc::new(AtomicBool::new(true));
    let between = Arc::new(AtomicU64::new(0));
    {
        let (counting, between, a, b) = (counting.clone(), between.clone(), a.clone(), b.clone());
        hub.observe_frames(Some(Arc::new(move |from, to, _| {
            let pair = (from == &a && to == &b) || (from == &b && to == &a);
            if pair && counting.load(Ordering::SeqCst) {
                between.fetch_add(1, Ordering::SeqCst);
            }
        })));
    }
    let seen_a = watch_leave(&nodes[2], a.clone());
    let seen_b = watch_leave(&nodes[2], b.clone());
    let hold_a = nodes[0].cluster.register_exit_blocker("hold-a");
    let hold_b = nodes[1].cluster.register_exit_blocker("hold-b");
    nodes[0].cluster.leave();
    nodes[1].cluster.leave();
    let work = tokio::spawn(async move {
        tokio::time::sleep(BOTH_HOLD).await;
        counting.store(false, Ordering::SeqCst);
        hold_a.done();
        hold_b.done();
    });
    await_removed(&seen_a).await;
    await_removed(&seen_b).await;
    work.await.expect("exit work");
    let frames = between.load(Ordering::SeqCst);
    assert!(
        frames <= PAIR_FRAME_BOUND,
        "{frames} frames between the two holders in {BOTH_HOLD:?}"
    );
    assert!(frames > 0, "the two holders still gossip");
    hub.observe_frames(None);
    shutdown(&nodes).await;
}
