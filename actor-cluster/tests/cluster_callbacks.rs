//! Membership event callbacks (`Cluster::subscribe_fn`): the current state first, then every
//! change in order, the same sequence an actor subscriber gets; unsubscribe; a panicking
//! callback is dropped and the node goes on. Paused clock.

mod cluster_support;

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::ClusterSettings;
use actor_cluster::membership::ClusterEvent;
use actor_testkit::{TestProbe, await_assert};
use cluster_support::{POLL, WAIT, await_all_up, start_cluster};
use parking_lot::Mutex;

type Seen = Arc<Mutex<Vec<ClusterEvent>>>;

fn recorder(seen: &Seen) -> impl FnMut(&ClusterEvent) + Send + 'static {
    let seen = seen.clone();
    move |event| seen.lock().push(event.clone())
}

#[tokio::test(start_paused = true)]
async fn callbacks_get_the_state_then_every_change_like_actor_subscribers() {
    let hub = actor_cluster::InMemoryHub::new();
    let nodes = start_cluster(&hub, &["n1", "n2", "n3"], &ClusterSettings::fast());
    let [a, b, c] = [&nodes[0], &nodes[1], &nodes[2]];
    // subscribed before anything happened: both see the whole history
    let early: Seen = Arc::default();
    let early_id = a.cluster.subscribe_fn(recorder(&early));
    let probe = TestProbe::<ClusterEvent>::new(&a.system);
    a.cluster.subscribe(probe.actor_ref());
    await_all_up(&[a, b, c], &[&a.address, &b.address, &c.address]).await;

    // subscribed late: the current state first
    let late: Seen = Arc::default();
    let late_id = a.cluster.subscribe_fn(recorder(&late));
    let replay = late.lock().clone();
    let ups = replay
        .iter()
        .filter(|e| matches!(e, ClusterEvent::MemberUp(_)))
        .count();
    assert_eq!(ups, 3, "{replay:?}");
    assert!(
        replay
            .iter()
            .any(|e| matches!(e, ClusterEvent::LeaderChanged(Some(l)) if *l == a.address)),
        "{replay:?}"
    );

    // a panicking callback is dropped; the others and the node go on
    let panics = a.cluster.subscribe_fn(|event| {
        if matches!(event, ClusterEvent::MemberLeft(_)) {
            panic!("callback failure on purpose");
        }
    });

    c.cluster.leave();
    await_assert(
        || {
            let got = late.lock();
            if got
                .iter()
                .any(|e| matches!(e, ClusterEvent::MemberRemoved { member, .. } if member.address == c.address))
            {
                Ok(())
            } else {
                Err(format!("late callback saw {got:?}"))
            }
        },
        WAIT,
        POLL,
    )
    .await;
    assert!(!a.cluster.unsubscribe_fn(panics), "dropped after its panic");
    await_all_up(&[a, b], &[&a.address, &b.address]).await;

    // the early callback saw exactly what the actor subscriber saw, in the same order
    let mut from_actor = Vec::new();
    while let Some(event) = probe.receive_one(Duration::from_millis(10)).await {
        from_actor.push(event);
    }
    assert_eq!(*early.lock(), from_actor);
    // and the late one the tail of it, after its replay
    let late_seen = late.lock().clone();
    assert!(from_actor.ends_with(&late_seen[replay.len()..]));

    assert!(a.cluster.unsubscribe_fn(early_id));
    assert!(a.cluster.unsubscribe_fn(late_id));
    assert!(!a.cluster.unsubscribe_fn(late_id));
    let frozen = late.lock().len();
    b.cluster.leave();
    assert!(b.system.await_termination(WAIT).await);
    await_all_up(&[a], &[&a.address]).await;
    assert_eq!(late.lock().len(), frozen, "no events after unsubscribing");
    a.system.terminate().await;
}
