//! TcpTransport behaviour beyond the conformance suite: authentication outcomes between real
//! transports, queue overflow, association failure and its reports.

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_cluster::{
    DropReason, InboundFrame, RejectReason, Transport, TransportError, TransportEvent,
};
use bytes::Bytes;

const WAIT: Duration = Duration::from_secs(10);

fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn quick(settings: TcpSettings) -> TcpSettings {
    settings
        .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .max_reconnect_attempts(2)
}

async fn node(secret: Option<&str>) -> Arc<TcpTransport> {
    let settings = match secret {
        Some(secret) => TcpSettings::with_secret("tcp", localhost(), secret),
        None => TcpSettings::insecure_no_auth("tcp", localhost()),
    };
    TcpTransport::bind(quick(settings)).await.unwrap()
}

async fn recv(node: &TcpTransport) -> InboundFrame {
    tokio::time::timeout(WAIT, node.inbound().recv_async())
        .await
        .expect("timed out waiting for a frame")
        .unwrap()
}

async fn wait_event(
    node: &TcpTransport,
    mut pred: impl FnMut(&TransportEvent) -> bool,
) -> TransportEvent {
    let events = node.events();
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv_async().await.unwrap();
            if pred(&event) {
                return event;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// A good peer's frame arrives, and nothing from anyone else is queued before or after it.
async fn only_good_frames_arrive(n: &TcpTransport, good: &TcpTransport) {
    good.send(n.local_address(), Bytes::from_static(b"marker"))
        .unwrap();
    let got = recv(n).await;
    assert_eq!(
        (&got.from, &got.frame[..]),
        (good.local_address(), &b"marker"[..])
    );
    assert!(n.inbound().is_empty());
}

#[tokio::test]
async fn wrong_secret_is_refused_and_reported() {
    let n = node(Some("right")).await;
    let good = node(Some("right")).await;
    let wrong = node(Some("wrong")).await;
    wrong
        .send(n.local_address(), Bytes::from_static(b"intruder"))
        .unwrap();
    let failed = wait_event(&wrong, |e| {
        matches!(e, TransportEvent::AssociationFailed { .. })
    })
    .await;
    let TransportEvent::AssociationFailed {
        attempts, error, ..
    } = failed
    else {
        unreachable!()
    };
    assert_eq!(attempts, 2);
    assert!(error.contains("authentication failed"), "{error}");
    wait_event(&wrong, |e| {
        matches!(
            e,
            TransportEvent::FramesDropped {
                count: 1,
                reason: DropReason::AssociationFailed,
                ..
            }
        )
    })
    .await;
    // The node saw two aborted handshakes and logged them; its good peer is unaffected.
    for _ in 0..2 {
        wait_event(&n, |e| {
            matches!(e, TransportEvent::ConnectionRejected { .. })
        })
        .await;
    }
    only_good_frames_arrive(&n, &good).await;
}

#[tokio::test]
async fn missing_secret_is_refused_on_both_sides() {
    let n = node(Some("right")).await;
    let good = node(Some("right")).await;
    let insecure = node(None).await;
    insecure
        .send(n.local_address(), Bytes::from_static(b"intruder"))
        .unwrap();
    let rejected = wait_event(&n, |e| {
        matches!(e, TransportEvent::ConnectionRejected { .. })
    })
    .await;
    assert!(matches!(
        rejected,
        TransportEvent::ConnectionRejected {
            reason: RejectReason::SecretMismatch {
                local_requires: true
            },
            ..
        }
    ));
    let failed = wait_event(&insecure, |e| {
        matches!(e, TransportEvent::AssociationFailed { .. })
    })
    .await;
    assert!(
        format!("{failed:?}").contains("refused by peer"),
        "{failed:?}"
    );
    // And the other way: a secured node does not talk to an insecure one.
    n.send(insecure.local_address(), Bytes::from_static(b"x"))
        .unwrap();
    let rejected = wait_event(&insecure, |e| {
        matches!(e, TransportEvent::ConnectionRejected { .. })
    })
    .await;
    assert!(matches!(
        rejected,
        TransportEvent::ConnectionRejected {
            reason: RejectReason::SecretMismatch {
                local_requires: false
            },
            ..
        }
    ));
    only_good_frames_arrive(&n, &good).await;
}

#[tokio::test]
async fn insecure_pair_exchanges_frames() {
    let a = node(None).await;
    let b = node(None).await;
    a.send(b.local_address(), Bytes::from_static(b"ping"))
        .unwrap();
    assert_eq!(recv(&b).await.frame, "ping");
    b.send(a.local_address(), Bytes::from_static(b"pong"))
        .unwrap();
    let got = recv(&a).await;
    assert_eq!(
        (got.from_uid, &got.frame[..]),
        (b.local_uid(), &b"pong"[..])
    );
    assert_eq!(a.peers(), vec![b.local_address().clone()]);
    assert_eq!(b.peers(), vec![a.local_address().clone()]);
    // Once b is gone and a has noticed, b is no longer a peer of a.
    b.shutdown().await;
    let b_addr = b.local_address().clone();
    wait_event(
        &a,
        |e| matches!(e, TransportEvent::Disconnected { peer, .. } if *peer == b_addr),
    )
    .await;
    wait_event(
        &a,
        |e| matches!(e, TransportEvent::Disconnected { peer, .. } if *peer == b_addr),
    )
    .await;
    assert!(a.peers().is_empty(), "{:?}", a.peers());
}

#[tokio::test]
async fn full_outbound_queue_fails_the_send_and_counts() {
    // A listener that never accepts: the handshake cannot complete, frames stay queued.
    let silent = std::net::TcpListener::bind(localhost()).unwrap();
    let target = actor_cluster::Address::from_socket("tcp", silent.local_addr().unwrap()).unwrap();
    let dead_letters = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = dead_letters.clone();
    let a = TcpTransport::bind(
        TcpSettings::insecure_no_auth("tcp", localhost())
            .outbound_queue_capacity(4)
            .on_overflow(move |peer, frame| sink.lock().push((peer.clone(), frame))),
    )
    .await
    .unwrap();
    // No await between sends: the writer task has not run, so exactly 4 fit.
    for i in 0..4u8 {
        a.send(&target, Bytes::from(vec![i])).unwrap();
    }
    assert_eq!(
        a.send(&target, Bytes::from_static(b"overflow")),
        Err(TransportError::QueueFull {
            peer: target.clone(),
            capacity: 4
        })
    );
    assert_eq!(a.overflow_count(), 1);
    assert_eq!(
        *dead_letters.lock(),
        vec![(target.clone(), Bytes::from_static(b"overflow"))]
    );
    a.shutdown().await;
    assert!(matches!(
        a.send(&target, Bytes::new()),
        Err(TransportError::ShutDown { .. })
    ));
}

#[tokio::test]
async fn unreachable_peer_fails_the_association_then_retries_on_next_send() {
    let port = std::net::TcpListener::bind(localhost())
        .unwrap()
        .local_addr()
        .unwrap();
    let target = actor_cluster::Address::from_socket("tcp", port).unwrap();
    let a = node(None).await;
    for i in 0..3u8 {
        a.send(&target, Bytes::from(vec![i])).unwrap();
    }
    let failed = wait_event(&a, |e| {
        matches!(e, TransportEvent::AssociationFailed { .. })
    })
    .await;
    assert!(matches!(
        failed,
        TransportEvent::AssociationFailed { attempts: 2, .. }
    ));
    wait_event(&a, |e| {
        matches!(
            e,
            TransportEvent::FramesDropped {
                count: 3,
                reason: DropReason::AssociationFailed,
                ..
            }
        )
    })
    .await;
    // A node now listens there: the next send starts a fresh association and gets through.
    let b = TcpTransport::bind(quick(TcpSettings::insecure_no_auth("tcp", port)))
        .await
        .unwrap();
    a.send(&target, Bytes::from_static(b"now")).unwrap();
    assert_eq!(recv(&b).await.frame, "now");
}

#[tokio::test]
async fn wrong_system_name_is_not_associated() {
    let b = node(None).await;
    let wrong = actor_cluster::Address::new(
        "other-system",
        b.local_address().host(),
        b.local_address().port(),
    )
    .unwrap();
    let a = node(None).await;
    a.send(&wrong, Bytes::from_static(b"misdirected")).unwrap();
    let failed = wait_event(&a, |e| {
        matches!(e, TransportEvent::AssociationFailed { .. })
    })
    .await;
    assert!(format!("{failed:?}").contains("other-system"), "{failed:?}");
    assert!(b.inbound().is_empty());
}

#[tokio::test]
async fn pending_handshakes_are_bounded() {
    let n = TcpTransport::bind(
        TcpSettings::with_secret("tcp", localhost(), "right").max_pending_handshakes(1),
    )
    .await
    .unwrap();
    let good = node(Some("right")).await;
    let target = n.local_address().socket_addr().unwrap();
    // A client that connects and says nothing holds the only handshake slot.
    let mut slow = tokio::net::TcpStream::connect(target).await.unwrap();
    // The next connection is closed at once.
    let mut extra = tokio::net::TcpStream::connect(target).await.unwrap();
    let rejected = wait_event(&n, |e| {
        matches!(e, TransportEvent::ConnectionRejected { .. })
    })
    .await;
    assert!(matches!(
        rejected,
        TransportEvent::ConnectionRejected {
            reason: RejectReason::TooManyHandshakes { limit: 1 },
            ..
        }
    ));
    let mut sink = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut extra, &mut sink)
        .await
        .ok();
    // The slow client gives up; its slot frees and the good peer gets through.
    tokio::io::AsyncWriteExt::shutdown(&mut slow).await.unwrap();
    wait_event(&n, |e| {
        matches!(
            e,
            TransportEvent::ConnectionRejected {
                reason: RejectReason::BadHandshake(_),
                ..
            }
        )
    })
    .await;
    only_good_frames_arrive(&n, &good).await;
}
