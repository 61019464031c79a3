//! The reader task of one accepted connection: handshake as the listening side, then frames.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

use super::Shared;
use super::conn::Conn;
use super::frame::{FrameCodec, FrameError};
use super::handshake::{
    self, HANDSHAKE_MAX_FRAME, HandshakeError, ServerIdentity, ServerMessage, ServerState,
};
use super::outbound::nonce;
use crate::address::Address;
use crate::transport::{DisconnectReason, InboundFrame, RejectReason, TransportEvent};

fn reject_reason(error: &HandshakeError) -> RejectReason {
    match error {
        HandshakeError::VersionMismatch { ours, theirs } => RejectReason::VersionMismatch {
            ours: *ours,
            theirs: *theirs,
        },
        HandshakeError::AuthenticationFailed => RejectReason::AuthenticationFailed,
        HandshakeError::SecretMismatch { local_requires } => RejectReason::SecretMismatch {
            local_requires: *local_requires,
        },
        HandshakeError::Timeout => RejectReason::HandshakeTimeout,
        other => RejectReason::BadHandshake(other.to_string()),
    }
}

/// Serves one accepted connection until it closes or breaks the protocol.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, remote: SocketAddr, id: u64) {
    let _ = stream.set_nodelay(true);
    let handshake = timeout(shared.settings.handshake_timeout, async {
        let conn = server_conn(&shared, stream).await?;
        let mut framed = Framed::new(conn, FrameCodec::new(HANDSHAKE_MAX_FRAME));
        let identified = server_handshake(&shared, &mut framed).await?;
        Ok((framed, identified))
    })
    .await
    .unwrap_or(Err(HandshakeError::Timeout));
    let (mut framed, (peer, uid)) = match handshake {
        Ok(accepted) => accepted,
        Err(error) => {
            tracing::warn!(local = %shared.address, %remote, %error, "inbound handshake refused");
            shared.emit(TransportEvent::ConnectionRejected {
                remote: remote.to_string(),
                reason: reject_reason(&error),
            });
            shared.inbound_closed(id);
            return;
        }
    };
    let Some(inbound_tx) = shared.inbound_tx.lock().clone() else {
        shared.inbound_closed(id);
        return;
    };
    shared.inbound_identified(id, &peer);
    shared.emit(TransportEvent::Connected {
        peer: peer.clone(),
        uid,
    });
    framed.codec_mut().set_max(shared.settings.max_frame_size);
    let reason = loop {
        match framed.next().await {
            Some(Ok(frame)) => {
                let inbound = InboundFrame {
                    from: peer.clone(),
                    from_uid: uid,
                    frame: frame.freeze(),
                };
                // Fast path without a future; wait (pushing back on TCP) only when full.
                let pushed = match inbound_tx.try_send(inbound) {
                    Ok(()) => Ok(()),
                    Err(flume::TrySendError::Full(inbound)) => {
                        inbound_tx.send_async(inbound).await.map_err(|_| ())
                    }
                    Err(flume::TrySendError::Disconnected(_)) => Err(()),
                };
                if pushed.is_err() {
                    break DisconnectReason::Io("inbound channel closed".to_owned());
                }
            }
            Some(Err(FrameError::TooLarge { size, limit })) => {
                tracing::error!(local = %shared.address, %peer, %remote, size, limit,
                    "inbound frame too large; closing the connection");
                shared.emit(TransportEvent::ConnectionRejected {
                    remote: remote.to_string(),
                    reason: RejectReason::FrameTooLarge { size, limit },
                });
                break DisconnectReason::ProtocolViolation(format!(
                    "frame of {size} bytes exceeds the limit of {limit} bytes"
                ));
            }
            Some(Err(error @ FrameError::Truncated { .. })) => {
                tracing::warn!(local = %shared.address, %peer, %remote, %error,
                    "truncated frame; closing the connection");
                break DisconnectReason::ProtocolViolation(error.to_string());
            }
            Some(Err(FrameError::Io(error))) => break DisconnectReason::Io(error.to_string()),
            None => break DisconnectReason::Io("connection closed by peer".to_owned()),
        }
    };
    shared.inbound_closed(id);
    shared.emit(TransportEvent::Disconnected { peer, reason });
}

async fn next_frame(
    framed: &mut Framed<Conn, FrameCodec>,
) -> Result<bytes::BytesMut, HandshakeError> {
    match framed.next().await {
        Some(Ok(frame)) => Ok(frame),
        Some(Err(e)) => Err(HandshakeError::Malformed(e.to_string())),
        None => Err(HandshakeError::Closed),
    }
}

#[cfg(feature = "tls")]
async fn server_conn(shared: &Shared, stream: TcpStream) -> Result<Conn, HandshakeError> {
    match &shared.settings.tls {
        Some(tls) => tokio_rustls::TlsAcceptor::from(tls.server.clone())
            .accept(stream)
            .await
            .map(|s| Conn::TlsServer(Box::new(s)))
            .map_err(|e| HandshakeError::Tls(e.to_string())),
        None => Ok(Conn::Plain(stream)),
    }
}

#[cfg(not(feature = "tls"))]
async fn server_conn(_shared: &Shared, stream: TcpStream) -> Result<Conn, HandshakeError> {
    Ok(Conn::Plain(stream))
}

async fn server_handshake(
    shared: &Shared,
    framed: &mut Framed<Conn, FrameCodec>,
) -> Result<(Address, u64), HandshakeError> {
    let me = ServerIdentity {
        system: shared.address.system(),
        uid: shared.uid,
        secret: shared.settings.secret(),
    };
    let io = |e: FrameError| HandshakeError::Io(e.to_string());
    let mut state = ServerState::AwaitHello;
    loop {
        let frame = next_frame(framed).await?;
        let (next, reply) = match handshake::server_step(state, &frame, me, nonce()) {
            Ok(step) => step,
            Err(error) => {
                if error.is_refusal() {
                    let refused = ServerMessage::Refused {
                        reason: error.to_string(),
                    };
                    if let Ok(frame) = handshake::encode(&refused) {
                        let _ = framed.send(frame).await;
                    }
                }
                return Err(error);
            }
        };
        framed.send(handshake::encode(&reply)?).await.map_err(io)?;
        if let ServerState::Accepted { hello } = next {
            let peer = Address::new(hello.system, hello.host, hello.port)
                .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
            return Ok((peer, hello.uid));
        }
        state = next;
    }
}
