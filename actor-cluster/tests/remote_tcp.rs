//! Remoting between two actor systems over `TcpTransport` on 127.0.0.1 (real clock): tell,
//! ask, refs in messages, death-watch, and association loss.

mod remote_support;

use std::time::Duration;

use actor_cluster::remote::RemoteSettings;
use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_core::Props;
use remote_support::*;

async fn tcp_node(settings: RemoteSettings) -> Node {
    let bind = "127.0.0.1:0".parse().unwrap();
    let transport = TcpTransport::bind(
        TcpSettings::with_secret("tcp", bind, "remote-test-secret")
            .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(20))
            .max_reconnect_attempts(2),
    )
    .await
    .unwrap();
    node_with(transport, settings)
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
