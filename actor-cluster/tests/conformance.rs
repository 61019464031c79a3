//! One conformance suite every transport passes: per-pair order, large frames, oversized
//! sends, peer restart, and blackhole / heal (in-process) or disconnect (TCP).

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_cluster::{
    Address, ChannelMesh, Direction, DisconnectReason, FaultInjector, InMemoryHub, InboundFrame,
    Transport, TransportError, TransportEvent,
};
use bytes::Bytes;

/// Upper bound of any single wait in these tests (virtual time on a paused clock).
const WAIT: Duration = Duration::from_secs(10);

type Node = Arc<dyn Transport>;

/// Makes nodes of one kind of transport.
trait Factory {
    async fn bind(&mut self, name: &str) -> Node;
    /// Shuts `node` down and binds a new incarnation at the same address.
    async fn restart(&mut self, node: Node) -> Node;
}

struct MemoryFactory(InMemoryHub);

impl Factory for MemoryFactory {
    async fn bind(&mut self, name: &str) -> Node {
        self.0
            .bind(Address::logical("conf", name).unwrap())
            .unwrap()
    }

    async fn restart(&mut self, node: Node) -> Node {
        let address = node.local_address().clone();
        node.shutdown().await;
        drop(node);
        self.0.bind(address).unwrap()
    }
}

struct ChannelFactory(ChannelMesh);

impl Factory for ChannelFactory {
    async fn bind(&mut self, name: &str) -> Node {
        self.0
            .bind(Address::logical("conf", name).unwrap())
            .unwrap()
    }

    async fn restart(&mut self, node: Node) -> Node {
        let address = node.local_address().clone();
        node.shutdown().await;
        drop(node);
        self.0.bind(address).unwrap()
    }
}

struct TcpFactory;

fn tcp_settings(bind: std::net::SocketAddr) -> TcpSettings {
    TcpSettings::with_secret("conf", bind, "conformance-secret")
        .reconnect_backoff(Duration::from_millis(5), Duration::from_millis(50))
        .max_reconnect_attempts(20)
}

impl Factory for TcpFactory {
    async fn bind(&mut self, _name: &str) -> Node {
        TcpTransport::bind(tcp_settings("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap()
    }

    async fn restart(&mut self, node: Node) -> Node {
        let socket = node.local_address().socket_addr().unwrap();
        node.shutdown().await;
        drop(node);
        TcpTransport::bind(tcp_settings(socket)).await.unwrap()
    }
}

async fn recv(node: &Node) -> InboundFrame {
    tokio::time::timeout(WAIT, node.inbound().recv_async())
        .await
        .expect("timed out waiting for a frame")
        .expect("inbound channel closed")
}

async fn wait_event(node: &Node, mut pred: impl FnMut(&TransportEvent) -> bool) -> TransportEvent {
    let events = node.events();
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv_async().await.expect("events channel closed");
            if pred(&event) {
                return event;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

fn numbered(sender: &str, i: usize) -> Bytes {
    Bytes::from(format!("{sender}:{i}"))
}

// ---- the suite ----

async fn per_pair_order(f: &mut impl Factory) {
    const N: usize = 500;
    let a = f.bind("a").await;
    let c = f.bind("c").await;
    let b = f.bind("b").await;
    for i in 0..N {
        a.send(b.local_address(), numbered("a", i)).unwrap();
        c.send(b.local_address(), numbered("c", i)).unwrap();
    }
    let mut next = [0usize; 2];
    for _ in 0..2 * N {
        let frame = recv(&b).await;
        let text = std::str::from_utf8(&frame.frame).unwrap().to_owned();
        let (who, i) = text.split_once(':').unwrap();
        let slot = if who == "a" { 0 } else { 1 };
        let expected_from = if slot == 0 { &a } else { &c };
        assert_eq!(&frame.from, expected_from.local_address());
        assert_eq!(frame.from_uid, expected_from.local_uid());
        assert_eq!(
            i.parse::<usize>().unwrap(),
            next[slot],
            "order broken for {who}"
        );
        next[slot] += 1;
    }
    assert_eq!(next, [N, N]);
}

async fn large_frames_and_oversized_send(f: &mut impl Factory) {
    let a = f.bind("a").await;
    let b = f.bind("b").await;
    let limit = a.max_frame_size();
    let big: Bytes = (0..limit)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let almost = big.slice(..limit - 1);
    a.send(b.local_address(), big.clone()).unwrap();
    a.send(b.local_address(), almost.clone()).unwrap();
    assert_eq!(recv(&b).await.frame, big);
    assert_eq!(recv(&b).await.frame, almost);
    let too_big = Bytes::from(vec![0u8; limit + 1]);
    assert_eq!(
        a.send(b.local_address(), too_big),
        Err(TransportError::FrameTooLarge {
            size: limit + 1,
            limit
        })
    );
    // The association still works after the refused send.
    a.send(b.local_address(), Bytes::from_static(b"after"))
        .unwrap();
    assert_eq!(recv(&b).await.frame, "after");
}

async fn peer_restart_is_a_new_incarnation(f: &mut impl Factory) {
    let a = f.bind("a").await;
    let b = f.bind("b").await;
    let old_uid = b.local_uid();
    a.send(b.local_address(), Bytes::from_static(b"first"))
        .unwrap();
    assert_eq!(recv(&b).await.frame, "first");
    wait_event(
        &a,
        |e| matches!(e, TransportEvent::Connected { uid, .. } if *uid == old_uid),
    )
    .await;

    let b2 = f.restart(b).await;
    assert_ne!(b2.local_uid(), old_uid, "a restart must have a new uid");
    // Frames sent while the old connection is being torn down may be lost (at most once):
    // keep sending until the new incarnation receives one.
    let got = tokio::time::timeout(WAIT, async {
        let mut i = 0;
        loop {
            i += 1;
            // The in-process transports refuse while the address is unbound; TCP queues.
            let _ = a.send(b2.local_address(), numbered("again", i));
            if let Ok(Ok(frame)) =
                tokio::time::timeout(Duration::from_millis(20), b2.inbound().recv_async()).await
            {
                return frame;
            }
        }
    })
    .await
    .expect("the restarted peer never received a frame");
    assert_eq!(&got.from, a.local_address());
    let new_uid = b2.local_uid();
    wait_event(
        &a,
        |e| matches!(e, TransportEvent::Connected { uid, .. } if *uid == new_uid),
    )
    .await;
    b2.shutdown().await;
    assert!(matches!(
        b2.send(a.local_address(), Bytes::new()),
        Err(TransportError::ShutDown { .. })
    ));
    // After shutdown both channels report closure once drained.
    let closed = tokio::time::timeout(WAIT, async {
        while b2.inbound().recv_async().await.is_ok() {}
        while b2.events().recv_async().await.is_ok() {}
    });
    closed.await.expect("channels stayed open after shutdown");
}

async fn blackhole_and_heal<F: Factory>(f: &mut F, faults: &dyn FaultInjector) {
    let a = f.bind("a").await;
    let b = f.bind("b").await;
    let c = f.bind("c").await;
    faults.blackhole(a.local_address(), b.local_address(), Direction::Send);
    for i in 0..10 {
        a.send(b.local_address(), numbered("lost", i)).unwrap();
    }
    // The other direction and other pairs still work.
    b.send(a.local_address(), Bytes::from_static(b"b->a"))
        .unwrap();
    assert_eq!(recv(&a).await.frame, "b->a");
    c.send(b.local_address(), Bytes::from_static(b"marker"))
        .unwrap();
    assert_eq!(recv(&b).await.frame, "marker");
    assert!(b.inbound().is_empty(), "blackholed frames arrived");

    faults.pass_through(a.local_address(), b.local_address(), Direction::Both);
    a.send(b.local_address(), Bytes::from_static(b"healed"))
        .unwrap();
    assert_eq!(recv(&b).await.frame, "healed");
    assert!(b.inbound().is_empty());
}

async fn disconnect_and_reassociate(f: &mut impl Factory) {
    let a = f.bind("a").await;
    let b = f.bind("b").await;
    a.send(b.local_address(), Bytes::from_static(b"one"))
        .unwrap();
    assert_eq!(recv(&b).await.frame, "one");
    assert!(a.peers().contains(b.local_address()));
    a.disconnect(b.local_address()).await;
    wait_event(&a, |e| {
        matches!(
            e,
            TransportEvent::Disconnected {
                reason: DisconnectReason::Requested,
                ..
            }
        )
    })
    .await;
    let a_addr = a.local_address().clone();
    wait_event(
        &b,
        |e| matches!(e, TransportEvent::Disconnected { peer, .. } if *peer == a_addr),
    )
    .await;
    a.send(b.local_address(), Bytes::from_static(b"two"))
        .unwrap();
    assert_eq!(recv(&b).await.frame, "two");
}

// ---- in-memory ----

fn memory() -> MemoryFactory {
    MemoryFactory(InMemoryHub::new())
}

#[tokio::test(start_paused = true)]
async fn in_memory_per_pair_order() {
    per_pair_order(&mut memory()).await;
}

#[tokio::test(start_paused = true)]
async fn in_memory_large_frames_and_oversized_send() {
    large_frames_and_oversized_send(&mut memory()).await;
}

#[tokio::test(start_paused = true)]
async fn in_memory_peer_restart() {
    peer_restart_is_a_new_incarnation(&mut memory()).await;
}

#[tokio::test(start_paused = true)]
async fn in_memory_blackhole_and_heal() {
    let mut f = memory();
    let hub = f.0.clone();
    blackhole_and_heal(&mut f, &hub).await;
}

#[tokio::test(start_paused = true)]
async fn in_memory_disconnect_and_reassociate() {
    disconnect_and_reassociate(&mut memory()).await;
}

// ---- channel mesh (bound on the test's runtime; see channel_mesh.rs for threads) ----

fn channel() -> ChannelFactory {
    ChannelFactory(ChannelMesh::new(7))
}

#[tokio::test(start_paused = true)]
async fn channel_per_pair_order() {
    per_pair_order(&mut channel()).await;
}

#[tokio::test(start_paused = true)]
async fn channel_large_frames_and_oversized_send() {
    large_frames_and_oversized_send(&mut channel()).await;
}

#[tokio::test(start_paused = true)]
async fn channel_peer_restart() {
    peer_restart_is_a_new_incarnation(&mut channel()).await;
}

#[tokio::test(start_paused = true)]
async fn channel_blackhole_and_heal() {
    let mut f = channel();
    let mesh = f.0.clone();
    blackhole_and_heal(&mut f, &mesh).await;
}

#[tokio::test(start_paused = true)]
async fn channel_disconnect_and_reassociate() {
    disconnect_and_reassociate(&mut channel()).await;
}

// ---- TCP (real clock, loopback) ----

#[tokio::test]
async fn tcp_per_pair_order() {
    per_pair_order(&mut TcpFactory).await;
}

#[tokio::test]
async fn tcp_large_frames_and_oversized_send() {
    large_frames_and_oversized_send(&mut TcpFactory).await;
}

#[tokio::test]
async fn tcp_peer_restart() {
    peer_restart_is_a_new_incarnation(&mut TcpFactory).await;
}

#[tokio::test]
async fn tcp_disconnect_and_reassociate() {
    disconnect_and_reassociate(&mut TcpFactory).await;
}

// ---- TCP over TLS (feature `tls`) ----

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use actor_cluster::tcp::TlsSettings;

    pub(super) fn settings() -> TlsSettings {
        TlsSettings::mutual_from_pem(
            include_bytes!("fixtures/tls/ca.pem"),
            include_bytes!("fixtures/tls/node.pem"),
            include_bytes!("fixtures/tls/node.key"),
            "cluster.local",
        )
        .unwrap()
    }

    pub(super) struct TlsFactory;

    impl Factory for TlsFactory {
        async fn bind(&mut self, _name: &str) -> Node {
            TcpTransport::bind(tcp_settings("127.0.0.1:0".parse().unwrap()).tls(settings()))
                .await
                .unwrap()
        }

        async fn restart(&mut self, node: Node) -> Node {
            let socket = node.local_address().socket_addr().unwrap();
            node.shutdown().await;
            drop(node);
            TcpTransport::bind(tcp_settings(socket).tls(settings()))
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn tls_per_pair_order() {
        per_pair_order(&mut TlsFactory).await;
    }

    #[tokio::test]
    async fn tls_large_frames_and_oversized_send() {
        large_frames_and_oversized_send(&mut TlsFactory).await;
    }

    #[tokio::test]
    async fn tls_peer_restart() {
        peer_restart_is_a_new_incarnation(&mut TlsFactory).await;
    }

    #[tokio::test]
    async fn tls_disconnect_and_reassociate() {
        disconnect_and_reassociate(&mut TlsFactory).await;
    }

    #[tokio::test]
    async fn plain_peer_is_rejected_by_a_tls_node() {
        let tls_node = TlsFactory.bind("t").await;
        let good = TlsFactory.bind("g").await;
        let plain = TcpFactory.bind("p").await;
        plain
            .send(tls_node.local_address(), Bytes::from_static(b"plain"))
            .unwrap();
        let rejected = wait_event(&tls_node, |e| {
            matches!(e, TransportEvent::ConnectionRejected { .. })
        })
        .await;
        assert!(
            format!("{rejected:?}").contains("tls handshake failed"),
            "{rejected:?}"
        );
        good.send(tls_node.local_address(), Bytes::from_static(b"good"))
            .unwrap();
        let got = recv(&tls_node).await;
        assert_eq!(
            (&got.from, &got.frame[..]),
            (good.local_address(), &b"good"[..])
        );
    }
}
