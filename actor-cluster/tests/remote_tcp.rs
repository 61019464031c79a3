//! Remoting between two actor systems over `TcpTransport` on 127.0.0.1 (real clock): tell,
//! ask, refs in messages, death-watch, and association loss.

mod remote_support;

use std::time::Duration;

use actor_cluster::remote::{Quarantined, RemoteQuarantineReason, RemoteSettings};
use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_cluster::{Transport, TransportEvent, wire};
use actor_core::Props;
use remote_support::*;

async fn tcp_transport() -> std::sync::Arc<TcpTransport> {
    let bind = "127.0.0.1:0".parse().unwrap();
    TcpTransport::bind(
        TcpSettings::with_secret("tcp", bind, "remote-test-secret")
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20))
            .max_reconnect_attempts(2),
    )
    .await
    .unwrap()
}

async fn tcp_node(settings: RemoteSettings) -> Node {
    node_with(tcp_transport().await, settings)
}

async fn pair() -> (Node, Node) {
    (
        tcp_node(quick_settings()).await,
        tcp_node(quick_settings()).await,
    )
}

#[tokio::test]
async fn tcp_remote_tell_arrives_in_order() {
    let (a, b) = pair().await;
    tell_arrives_in_order(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn tcp_remote_ask_gets_the_answer() {
    let (a, b) = pair().await;
    ask_gets_the_answer(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn tcp_an_actor_ref_in_a_message_resolves_and_takes_the_reply() {
    let (a, b) = pair().await;
    ref_in_message_is_usable(&a, &b).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn tcp_remote_watch_reports_one_terminated_when_the_actor_stops() {
    let (a, b) = pair().await;
    watch_reports_one_termination(&a, &b, Duration::from_millis(200)).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn tcp_a_node_that_goes_away_ends_remote_watches() {
    let fast_loss = quick_settings()
        .loss_timeout(Duration::from_millis(300))
        .tick_interval(Duration::from_millis(20));
    let a = tcp_node(fast_loss).await;
    let b = tcp_node(quick_settings()).await;
    let doubler = b.kit.spawn(Props::new(|| Doubler), "d");
    let remote = a.remoting.remote_ref::<Double>(doubler.path()).unwrap();
    assert_eq!(remote.ask(|r| Double(2, r), ASK_TIMEOUT).await, Ok(Pong(4)));
    let watcher = a.kit.probe::<()>();
    watcher.watch(&remote).await;
    b.remoting.transport().shutdown().await;
    watcher.expect_terminated(&remote).await;
    watcher
        .expect_no_terminated(Duration::from_millis(200))
        .await;
    assert!(remote.is_terminated());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn tcp_a_malformed_frame_closes_that_association_and_the_node_keeps_serving() {
    let (a, b) = pair().await;
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
    // an authenticated peer (it has the secret) that sends raw frames
    let rogue = tcp_transport().await;
    let rogue_events = rogue.events();
    let good =
        wire::encode(&wire::user_envelope(target.path().to_string(), None, &Ping(7)).unwrap())
            .unwrap();
    rogue.send(&b_addr, good.clone()).unwrap();
    pings.expect_msg(Ping(7)).await;
    rogue
        .send(
            &b_addr,
            bytes::Bytes::from_static(&[wire::WIRE_VERSION, 0, 200]),
        )
        .unwrap();
    let q = quarantines.expect_msg_matching(|_| true).await;
    assert_eq!(
        (&q.address, q.uid),
        (rogue.local_address(), Some(rogue.local_uid()))
    );
    assert!(
        matches!(q.reason, RemoteQuarantineReason::MalformedFrame { .. }),
        "{q:?}"
    );
    // b closed the connection: the rogue sees it
    loop {
        let event = tokio::time::timeout(ASK_TIMEOUT, rogue_events.recv_async())
            .await
            .expect("the connection is closed")
            .unwrap();
        if matches!(&event, TransportEvent::Disconnected { peer, .. } if *peer == b_addr) {
            break;
        }
    }
    // for good: the same incarnation, reconnected, is not served
    rogue.send(&b_addr, good).unwrap();
    pings.expect_no_msg(Duration::from_millis(300)).await;
    // every other peer is served as before
    ask_gets_the_answer(&a, &b).await;
    quarantines.expect_no_msg(Duration::from_millis(100)).await;
    rogue.shutdown().await;
    a.shutdown().await;
    b.shutdown().await;
}
