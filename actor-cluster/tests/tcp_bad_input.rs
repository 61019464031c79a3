//! Hostile and malformed input over TCP: seeded random bytes, truncated and oversized frames,
//! wrong protocol version, wrong and missing secret. Each bad connection is logged, reported
//! and closed; a good peer keeps being served on its own connection throughout.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::tcp::handshake::{
    self, ClientProof, Hello, PROTOCOL_VERSION, ServerMessage, Transcript,
};
use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_cluster::{Address, DisconnectReason, RejectReason, Transport, TransportEvent, wire};
use bytes::Bytes;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);
const SECRET: &[u8] = b"cluster-secret";
const MAX_FRAME: usize = 4096;

/// Collects log lines of the test thread (the current-thread runtime runs every task there).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

async fn write_frame(stream: &mut TcpStream, body: &[u8]) {
    stream.write_u32(body.len() as u32).await.unwrap();
    stream.write_all(body).await.unwrap();
}

async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let len = stream.read_u32().await.ok()? as usize;
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// Runs the client side of the handshake by hand; returns the server's final answer.
async fn raw_handshake(
    stream: &mut TcpStream,
    claimed: &Address,
    version: u8,
    secret: Option<&[u8]>,
) -> ServerMessage {
    let hello = Hello {
        system: claimed.system().to_owned(),
        host: claimed.host().to_owned(),
        port: claimed.port(),
        uid: 77,
        nonce: [9; 32],
        authenticated: secret.is_some(),
    };
    write_frame(stream, &handshake::encode_hello(version, &hello).unwrap()).await;
    let reply: ServerMessage = handshake::decode(&read_frame(stream).await.unwrap()).unwrap();
    let ServerMessage::Challenge { uid, nonce, .. } = reply else {
        return reply;
    };
    let transcript = Transcript {
        client_nonce: hello.nonce,
        server_nonce: nonce,
        client_uid: hello.uid,
        server_uid: uid,
    };
    let proof = secret.and_then(|s| handshake::client_proof(s, &transcript));
    write_frame(stream, &handshake::encode(&ClientProof { proof }).unwrap()).await;
    handshake::decode(&read_frame(stream).await.unwrap()).unwrap()
}

/// Waits until the server has closed the connection.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut sink = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut sink))
        .await
        .expect("the server kept a bad connection open")
        .ok();
}

async fn next_bad(events: &flume::Receiver<TransportEvent>) -> TransportEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv_async().await.unwrap();
            if matches!(
                event,
                TransportEvent::ConnectionRejected { .. }
                    | TransportEvent::Disconnected {
                        reason: DisconnectReason::ProtocolViolation(_),
                        ..
                    }
            ) {
                return event;
            }
        }
    })
    .await
    .expect("no rejection reported")
}

async fn good_frame(node: &TcpTransport, good: &TcpTransport, text: &'static str) {
    good.send(node.local_address(), Bytes::from_static(text.as_bytes()))
        .unwrap();
    let got = tokio::time::timeout(WAIT, node.inbound().recv_async())
        .await
        .expect("the good peer was not served")
        .unwrap();
    assert_eq!(
        (&got.from, &got.frame[..]),
        (good.local_address(), text.as_bytes())
    );
}

#[tokio::test]
async fn bad_input_is_refused_logged_and_the_good_peer_keeps_working() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let settings = |bind| {
        TcpSettings::with_secret("bad-input", bind, SECRET)
            .max_frame_size(MAX_FRAME)
            .handshake_timeout(Duration::from_secs(5))
    };
    let node = TcpTransport::bind(settings("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let good = TcpTransport::bind(settings("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let events = node.events();
    let target = node.local_address().socket_addr().unwrap();
    let claimed = Address::new("bad-input", "127.0.0.1", 1).unwrap();
    good_frame(&node, &good, "before").await;

    // 1. Seeded random bytes as the first bytes of a connection.
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    for round in 0..24 {
        let len = rng.random_range(0..96);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if round % 3 == 0 && bytes.len() >= 4 {
            // A plausible small length prefix, so truncation paths are hit too.
            bytes[..4].copy_from_slice(&(rng.random_range(0..200u32)).to_be_bytes());
        }
        let mut stream = TcpStream::connect(target).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        stream.shutdown().await.unwrap();
        closed_by_server(&mut stream).await;
        let event = next_bad(&events).await;
        assert!(
            matches!(
                event,
                TransportEvent::ConnectionRejected {
                    reason: RejectReason::BadHandshake(_),
                    ..
                }
            ),
            "round {round}: {event:?}"
        );
    }
    good_frame(&node, &good, "after random bytes").await;

    // 2. Oversized and truncated handshake frames.
    for bytes in [
        u32::MAX.to_be_bytes().to_vec(),
        [&100u32.to_be_bytes()[..], b"ACTR\x01short"].concat(),
    ] {
        let mut stream = TcpStream::connect(target).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        stream.shutdown().await.unwrap();
        closed_by_server(&mut stream).await;
        assert!(matches!(
            next_bad(&events).await,
            TransportEvent::ConnectionRejected {
                reason: RejectReason::BadHandshake(_),
                ..
            }
        ));
    }

    // 3. Wrong protocol version, missing secret, wrong secret: refused with a reason.
    let cases: [(u8, Option<&[u8]>, RejectReason); 3] = [
        (
            PROTOCOL_VERSION + 1,
            Some(SECRET),
            RejectReason::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: PROTOCOL_VERSION + 1,
            },
        ),
        (
            PROTOCOL_VERSION,
            None,
            RejectReason::SecretMismatch {
                local_requires: true,
            },
        ),
        (
            PROTOCOL_VERSION,
            Some(b"not-the-secret"),
            RejectReason::AuthenticationFailed,
        ),
    ];
    for (version, secret, expected) in cases {
        let mut stream = TcpStream::connect(target).await.unwrap();
        let answer = raw_handshake(&mut stream, &claimed, version, secret).await;
        assert!(
            matches!(answer, ServerMessage::Refused { .. }),
            "{expected:?}: {answer:?}"
        );
        closed_by_server(&mut stream).await;
        match next_bad(&events).await {
            TransportEvent::ConnectionRejected { reason, .. } => assert_eq!(reason, expected),
            other => panic!("{other:?}"),
        }
    }
    good_frame(&node, &good, "after bad handshakes").await;

    // 4. An authenticated peer that then sends an oversized length.
    let mut stream = TcpStream::connect(target).await.unwrap();
    let answer = raw_handshake(&mut stream, &claimed, PROTOCOL_VERSION, Some(SECRET)).await;
    assert_eq!(answer, ServerMessage::Accepted);
    write_frame(&mut stream, b"a fine frame").await;
    stream.write_u32(u32::MAX).await.unwrap();
    closed_by_server(&mut stream).await;
    assert_eq!(
        next_bad(&events).await,
        TransportEvent::ConnectionRejected {
            reason: RejectReason::FrameTooLarge {
                size: u32::MAX as usize,
                limit: MAX_FRAME
            },
            remote: stream.local_addr().unwrap().to_string(),
        }
    );
    assert!(matches!(
        next_bad(&events).await,
        TransportEvent::Disconnected { peer, reason: DisconnectReason::ProtocolViolation(_) }
            if peer == claimed
    ));
    // The frame before the bad length was delivered; it is garbage to the wire codec,
    // which refuses it with a typed error.
    let fine = node.inbound().recv_async().await.unwrap();
    assert_eq!(
        (&fine.from, &fine.frame[..]),
        (&claimed, &b"a fine frame"[..])
    );
    assert!(wire::decode(&fine.frame).is_err());

    // 5. An authenticated peer that ends the stream inside a frame.
    let mut stream = TcpStream::connect(target).await.unwrap();
    raw_handshake(&mut stream, &claimed, PROTOCOL_VERSION, Some(SECRET)).await;
    stream.write_u32(100).await.unwrap();
    stream.write_all(&[1; 10]).await.unwrap();
    stream.shutdown().await.unwrap();
    closed_by_server(&mut stream).await;
    match next_bad(&events).await {
        TransportEvent::Disconnected {
            reason: DisconnectReason::ProtocolViolation(why),
            ..
        } => assert!(why.contains("14 of 104"), "{why}"),
        other => panic!("{other:?}"),
    }

    // 6. Seeded random streams after a valid handshake: never a panic, at worst a close.
    for _ in 0..8 {
        let mut stream = TcpStream::connect(target).await.unwrap();
        raw_handshake(&mut stream, &claimed, PROTOCOL_VERSION, Some(SECRET)).await;
        let len = rng.random_range(1..2048);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        stream.write_all(&bytes).await.unwrap();
        stream.shutdown().await.unwrap();
        closed_by_server(&mut stream).await;
    }

    good_frame(&node, &good, "still served").await;
    // The good peer's association never dropped.
    let good_addr = good.local_address().clone();
    assert!(!events.drain().any(|e| matches!(
        &e,
        TransportEvent::Disconnected { peer, .. } if *peer == good_addr
    )));
    let text = logs.text();
    assert!(text.contains("inbound handshake refused"), "{text}");
    assert!(text.contains("inbound frame too large"), "{text}");
    assert!(text.contains("truncated frame"), "{text}");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(text.contains("protocol version mismatch"), "{text}");
}
