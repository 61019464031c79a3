//! Remoting between two actor systems over `InMemoryTransport`, on a paused clock: tell, ask,
//! refs in messages, death-watch, dead letters, association loss and node restarts.

mod remote_support;

use std::time::Duration;

use actor_cluster::remote::{Quarantined, RemoteQuarantineReason, UndeliveredRemoteMessage};
use actor_cluster::{Address, FaultInjector, InMemoryHub, Transport, TransportEvent, wire};
use actor_core::{DeadLetter, DeadLetterReason, Props};
use remote_support::*;

fn pair(hub: &InMemoryHub) -> (Node, Node) {
    let a = hub.bind(Address::logical("mem", "a").unwrap()).unwrap();
    let b = hub.bind(Address::logical("mem", "b").unwrap()).unwrap();
    (node(a), node(b))
}

#[tokio::test(start_paused = true)]
async fn remote_tell_arrives_in_order() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    tell_arrives_in_order(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn remote_ask_gets_the_answer() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    ask_gets_the_answer(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn remote_ask_to_a_silent_actor_times_out() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    // a probe takes the request but never answers
    let silent = b.kit.probe::<Double>();
    let remote = a
        .remoting
        .remote_ref::<Double>(silent.actor_ref().path())
        .unwrap();
    let answer = remote.ask(|r| Double(1, r), Duration::from_secs(2)).await;
    assert!(
        matches!(answer, Err(actor_core::AskError::Timeout { .. })),
        "{answer:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_actor_ref_in_a_message_resolves_and_takes_the_reply() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    ref_in_message_is_usable(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn remote_watch_reports_one_terminated_when_the_actor_stops() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    watch_reports_one_termination(&a, &b, Duration::from_secs(5)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn watching_a_remote_path_with_no_actor_reports_terminated() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let path = format!("{}/user/nobody", b.system().address());
    let remote = a.remoting.remote_ref_str::<Ping>(&path).unwrap();
    let watcher = a.kit.probe::<()>();
    watcher.watch(&remote).await;
    watcher.expect_terminated(&remote).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unwatch_cancels_a_remote_watch() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let doubler = b.kit.spawn(Props::new(|| Doubler), "d");
    let remote = a.remoting.remote_ref::<Double>(doubler.path()).unwrap();
    let watcher = a.kit.probe::<()>();
    watcher.watch(&remote).await;
    watcher.unwatch(&remote).await;
    doubler.stop();
    watcher.expect_no_terminated(Duration::from_secs(5)).await;
    a.shutdown().await;
    b.shutdown().await;
}

fn dead_letters(node: &Node) -> actor_testkit::TestProbe<DeadLetter> {
    let probe = node.kit.probe::<DeadLetter>();
    node.system().event_stream().subscribe(probe.actor_ref());
    probe
}

#[tokio::test(start_paused = true)]
async fn a_manifest_the_recipient_does_not_take_goes_to_dead_letters() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let dead = dead_letters(&b);
    let pongs = b.kit.probe::<Pong>();
    // a Ping sent to an actor that takes Pong: same shape on the wire, refused by manifest
    let right = a
        .remoting
        .remote_ref::<Pong>(pongs.actor_ref().path())
        .unwrap();
    let wrong = a
        .remoting
        .remote_ref::<Ping>(pongs.actor_ref().path())
        .unwrap();
    // the right type first: the recipient is now resolved and cached on b
    right.tell(Pong(1));
    pongs.expect_msg(Pong(1)).await;
    wrong.tell(Ping(7));
    let letter = dead
        .expect_msg_matching(|d| d.recipient == *pongs.actor_ref().path())
        .await;
    assert_eq!(letter.reason, DeadLetterReason::UnknownRecipient);
    assert_eq!(letter.message.take::<Ping>(), Some(Ping(7)));
    pongs.expect_no_msg(Duration::from_secs(1)).await;
    // and the cached recipient still takes its own type
    right.tell(Pong(2));
    pongs.expect_msg(Pong(2)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_unknown_path_goes_to_dead_letters() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let dead = dead_letters(&b);
    let path = format!("{}/user/missing", b.system().address());
    a.remoting
        .remote_ref_str::<Ping>(&path)
        .unwrap()
        .tell(Ping(3));
    let letter = dead
        .expect_msg_matching(|d| d.recipient.to_string() == path)
        .await;
    assert_eq!(letter.reason, DeadLetterReason::UnknownRecipient);
    assert_eq!(letter.message.take::<Ping>(), Some(Ping(3)));
    a.shutdown().await;
    b.shutdown().await;
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Unregistered(u8);
impl actor_cluster::wire::RemoteMessage for Unregistered {
    const MANIFEST: &'static str = "test.Unregistered";
}

#[tokio::test(start_paused = true)]
async fn an_unknown_manifest_goes_to_dead_letters() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let dead = dead_letters(&b);
    let pings = b.kit.probe::<Ping>();
    a.remoting
        .remote_ref::<Unregistered>(pings.actor_ref().path())
        .unwrap()
        .tell(Unregistered(1));
    let letter = dead
        .expect_msg_matching(|d| d.recipient == *pings.actor_ref().path())
        .await;
    let undelivered = letter.message.take::<UndeliveredRemoteMessage>().unwrap();
    assert_eq!(undelivered.manifest, "test.Unregistered");
    pings.expect_no_msg(Duration::from_secs(1)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_crashed_node_ends_remote_watches_with_one_terminated() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let quarantines = a.kit.probe::<Quarantined>();
    a.system().event_stream().subscribe(quarantines.actor_ref());
    let doubler = b.kit.spawn(Props::new(|| Doubler), "d");
    let remote = a.remoting.remote_ref::<Double>(doubler.path()).unwrap();
    assert_eq!(remote.ask(|r| Double(2, r), ASK_TIMEOUT).await, Ok(Pong(4)));
    let watcher = a.kit.probe::<()>();
    watcher.watch(&remote).await;
    assert!(hub.crash(b.remoting.local_address()));
    // quarantine after the loss timeout (2 s in these tests), not before
    watcher.expect_no_terminated(Duration::from_secs(1)).await;
    watcher.expect_terminated(&remote).await;
    watcher.expect_no_terminated(Duration::from_secs(5)).await;
    let q = quarantines.expect_msg_matching(|_| true).await;
    assert_eq!(&q.address, b.remoting.local_address());
    assert!(
        matches!(q.reason, RemoteQuarantineReason::AssociationLost { .. }),
        "{q:?}"
    );
    assert!(remote.is_terminated());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_restarted_node_is_not_reached_by_old_refs() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let b_addr = b.remoting.local_address().clone();
    let quarantines = a.kit.probe::<Quarantined>();
    a.system().event_stream().subscribe(quarantines.actor_ref());
    let first = b.kit.probe::<Ping>();
    let target = b.kit.spawn(
        Props::new({
            let to = first.actor_ref().clone();
            move || Forward(to.clone())
        }),
        "target",
    );
    let doubler = b.kit.spawn(Props::new(|| Doubler), "doubler");
    let old = a.remoting.remote_ref::<Ping>(target.path()).unwrap();
    let old_doubler = a.remoting.remote_ref::<Double>(doubler.path()).unwrap();
    // a round trip: `a` has seen b's incarnation before the crash
    assert_eq!(
        old_doubler.ask(|r| Double(1, r), ASK_TIMEOUT).await,
        Ok(Pong(2))
    );
    old.tell(Ping(1));
    first.expect_msg(Ping(1)).await;

    assert!(hub.crash(&b_addr));
    b.shutdown().await;
    let b2 = node(hub.bind(b_addr.clone()).unwrap());
    assert_ne!(b2.remoting.local_uid(), 0);
    let dead = dead_letters(&b2);
    let second = b2.kit.probe::<Ping>();
    b2.kit.spawn(
        Props::new({
            let to = second.actor_ref().clone();
            move || Forward(to.clone())
        }),
        "target",
    );

    old.tell(Ping(2));
    // the new incarnation drops it: addressed to the old uid
    let letter = dead
        .expect_msg_matching(|d| d.recipient == *target.path())
        .await;
    let undelivered = letter.message.take::<UndeliveredRemoteMessage>().unwrap();
    assert!(
        undelivered.reason.contains("incarnation"),
        "{undelivered:?}"
    );
    // and `a` quarantines the old incarnation once it sees the new one
    let q = quarantines.expect_msg_matching(|_| true).await;
    assert!(
        matches!(q.reason, RemoteQuarantineReason::Restarted { new_uid } if new_uid == b2.remoting.local_uid()),
        "{q:?}"
    );
    assert!(old.is_terminated());
    old.tell(Ping(3));
    second.expect_no_msg(Duration::from_secs(1)).await;
    // a fresh ref reaches the new incarnation
    let fresh = a.remoting.remote_ref::<Ping>(target.path()).unwrap();
    fresh.tell(Ping(4));
    second.expect_msg(Ping(4)).await;
    a.shutdown().await;
    b2.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn watch_and_terminated_survive_a_lossy_link() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let doubler = b.kit.spawn(Props::new(|| Doubler), "d");
    let remote = a.remoting.remote_ref::<Double>(doubler.path()).unwrap();
    assert_eq!(remote.ask(|r| Double(3, r), ASK_TIMEOUT).await, Ok(Pong(6)));
    let (addr_a, addr_b) = (a.remoting.local_address(), b.remoting.local_address());
    hub.drop_with_probability(addr_a, addr_b, actor_cluster::Direction::Both, 0.6)
        .unwrap();
    let watcher = a.kit.probe::<()>();
    watcher.watch(&remote).await;
    // let the Watch get through (resent every tick until acknowledged)
    watcher.expect_no_terminated(Duration::from_secs(3)).await;
    doubler.stop();
    watcher.expect_terminated(&remote).await;
    watcher.expect_no_terminated(Duration::from_secs(5)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_malformed_frame_closes_that_association_and_the_node_keeps_serving() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let b_addr = b.remoting.local_address().clone();
    let quarantines = b.kit.probe::<Quarantined>();
    b.system().event_stream().subscribe(quarantines.actor_ref());
    let pings = b.kit.probe::<Ping>();
    let target = b.kit.spawn(
        Props::new({
            let to = pings.actor_ref().clone();
            move || Forward(to.clone())
        }),
        "target",
    );
    let good =
        wire::encode(&wire::user_envelope(target.path().to_string(), None, &Ping(7)).unwrap())
            .unwrap();
    let garbage: [&[u8]; 4] = [
        b"",
        &[0xff, 1, 2],
        &[wire::WIRE_VERSION, 0, 200, 200, 200],
        &[wire::WIRE_VERSION, 9],
    ];
    for (i, bad) in garbage.into_iter().enumerate() {
        let rogue = hub
            .bind(Address::logical("mem", format!("rogue{i}")).unwrap())
            .unwrap();
        // a well-formed frame from this peer is served
        rogue.send(&b_addr, good.clone()).unwrap();
        pings.expect_msg(Ping(7)).await;
        rogue
            .send(&b_addr, bytes::Bytes::copy_from_slice(bad))
            .unwrap();
        let q = quarantines.expect_msg_matching(|_| true).await;
        assert_eq!(
            (&q.address, q.uid),
            (rogue.local_address(), Some(rogue.local_uid())),
            "frame {i}"
        );
        assert!(
            matches!(q.reason, RemoteQuarantineReason::MalformedFrame { .. }),
            "{q:?}"
        );
        // the transport association is closed too
        let events = rogue.events();
        loop {
            match events.recv_async().await.unwrap() {
                TransportEvent::Disconnected { peer, .. } if peer == b_addr => break,
                _ => continue,
            }
        }
        // for good: this incarnation is not served any more, well-formed frames or not
        rogue.send(&b_addr, good.clone()).unwrap();
        rogue
            .send(&b_addr, bytes::Bytes::copy_from_slice(bad))
            .unwrap();
        pings.expect_no_msg(Duration::from_millis(500)).await;
        quarantines.expect_no_msg(Duration::from_millis(100)).await;
    }
    // every other peer is served as before
    ask_gets_the_answer(&a, &b).await;
    let from_a = a.remoting.remote_ref::<Ping>(target.path()).unwrap();
    from_a.tell(Ping(8));
    pings.expect_msg(Ping(8)).await;
    quarantines.expect_no_msg(Duration::from_millis(100)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ask_through_a_quarantined_ref_fails_at_once() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let doubler = b.kit.spawn(Props::new(|| Doubler), "d");
    let remote = a.remoting.remote_ref::<Double>(doubler.path()).unwrap();
    assert_eq!(remote.ask(|r| Double(3, r), ASK_TIMEOUT).await, Ok(Pong(6)));
    let watcher = a.kit.probe::<()>();
    watcher.watch(&remote).await;
    hub.crash(b.remoting.local_address());
    watcher.expect_terminated(&remote).await;
    let answer = remote.ask(|r| Double(3, r), ASK_TIMEOUT).await;
    assert!(
        matches!(answer, Err(actor_core::AskError::RecipientDead { .. })),
        "{answer:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_new_actor_at_a_cached_path_gets_the_next_messages() {
    let hub = InMemoryHub::new();
    let (a, b) = pair(&hub);
    let forward_to = |probe: &actor_testkit::TestProbe<Ping>| {
        let to = probe.actor_ref().clone();
        Props::new(move || Forward(to.clone()))
    };
    let first = b.kit.probe::<Ping>();
    let old = b.kit.spawn(forward_to(&first), "target");
    let remote = a.remoting.remote_ref::<Ping>(old.path()).unwrap();
    // resolved and cached on b
    remote.tell(Ping(1));
    first.expect_msg(Ping(1)).await;
    let watcher = b.kit.probe::<()>();
    watcher.watch(&old).await;
    old.stop();
    watcher.expect_terminated(&old).await;
    let second = b.kit.probe::<Ping>();
    b.kit.spawn(forward_to(&second), "target");
    remote.tell(Ping(2));
    second.expect_msg(Ping(2)).await;
    first.expect_no_msg(Duration::from_millis(100)).await;
    a.shutdown().await;
    b.shutdown().await;
}
