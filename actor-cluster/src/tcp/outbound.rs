//! The writer task of one peer: lazy connect, handshake, coalesced writes, reconnect.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

use super::Shared;
use super::backoff::Backoff;
use super::conn::Conn;
use super::frame::{FrameCodec, put_frame};
use super::handshake::{
    self, ClientState, HANDSHAKE_MAX_FRAME, HandshakeError, Hello, PROTOCOL_VERSION, ServerMessage,
};
use crate::address::Address;
use crate::transport::{DisconnectReason, DropReason, TransportEvent};

/// A fresh random nonce from the thread-local CSPRNG.
pub(crate) fn nonce() -> handshake::Nonce {
    let mut n = [0u8; 32];
    rand::rng().fill_bytes(&mut n);
    n
}

/// Runs until the queue closes (shutdown) or the association fails for good.
pub(crate) async fn run(shared: Arc<Shared>, peer: Address, id: u64, rx: flume::Receiver<Bytes>) {
    let mut pending: Option<Bytes> = None;
    loop {
        if pending.is_none() {
            match rx.recv_async().await {
                Ok(frame) => pending = Some(frame),
                Err(_) => return,
            }
        }
        let (stream, peer_uid) = match connect_with_backoff(&shared, &peer).await {
            Ok(connected) => connected,
            Err((attempts, error)) => {
                shared.remove_outbound(&peer, id);
                let dropped = 1 + rx.drain().count() as u64;
                tracing::warn!(local = %shared.address, %peer, attempts, %error, dropped,
                    "association failed");
                shared.emit(TransportEvent::AssociationFailed {
                    peer: peer.clone(),
                    attempts,
                    error,
                });
                shared.emit(TransportEvent::FramesDropped {
                    peer,
                    count: dropped,
                    reason: DropReason::AssociationFailed,
                });
                return;
            }
        };
        tracing::debug!(local = %shared.address, %peer, peer_uid, "outbound association up");
        shared.outbound_connected(&peer, id, true);
        shared.emit(TransportEvent::Connected {
            peer: peer.clone(),
            uid: peer_uid,
        });
        let first = pending.take();
        let (end, lost) = match stream {
            Conn::Plain(stream) => {
                let (reader, writer) = stream.into_split();
                write_loop(&shared, reader, writer, first, &rx).await
            }
            #[cfg(feature = "tls")]
            tls => {
                let (reader, writer) = tokio::io::split(tls);
                write_loop(&shared, reader, writer, first, &rx).await
            }
        };
        shared.outbound_connected(&peer, id, false);
        if lost > 0 {
            shared.emit(TransportEvent::FramesDropped {
                peer: peer.clone(),
                count: lost,
                reason: DropReason::ConnectionLost,
            });
        }
        match end {
            None => return,
            Some(reason) => {
                tracing::debug!(local = %shared.address, %peer, ?reason, "outbound association down");
                shared.emit(TransportEvent::Disconnected {
                    peer: peer.clone(),
                    reason,
                });
            }
        }
    }
}

async fn connect_with_backoff(
    shared: &Shared,
    peer: &Address,
) -> Result<(Conn, u64), (u32, String)> {
    let settings = &shared.settings;
    let mut backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = match timeout(settings.handshake_timeout, connect_once(shared, peer)).await {
            Ok(result) => result,
            Err(_) => Err(HandshakeError::Timeout),
        };
        match result {
            Ok(connected) => return Ok(connected),
            Err(error) => {
                tracing::warn!(local = %shared.address, %peer, attempts, %error,
                    "connection attempt failed");
                if attempts >= settings.max_reconnect_attempts {
                    return Err((attempts, error.to_string()));
                }
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn next_frame(framed: &mut Framed<Conn, FrameCodec>) -> Result<BytesMut, HandshakeError> {
    match framed.next().await {
        Some(Ok(frame)) => Ok(frame),
        Some(Err(e)) => Err(HandshakeError::Io(e.to_string())),
        None => Err(HandshakeError::Closed),
    }
}

async fn connect_once(shared: &Shared, peer: &Address) -> Result<(Conn, u64), HandshakeError> {
    let socket = peer
        .socket_addr()
        .ok_or_else(|| HandshakeError::Io(format!("{peer} has no IP host")))?;
    let stream = timeout(shared.settings.connect_timeout, TcpStream::connect(socket))
        .await
        .map_err(|_| HandshakeError::Timeout)?
        .map_err(|e| HandshakeError::Io(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let conn = client_conn(shared, stream).await?;
    let mut framed = Framed::new(conn, FrameCodec::new(HANDSHAKE_MAX_FRAME));
    let secret = shared.settings.secret();
    let hello = Hello {
        system: shared.address.system().to_owned(),
        host: shared.address.host().to_owned(),
        port: shared.address.port(),
        uid: shared.uid,
        nonce: nonce(),
        authenticated: secret.is_some(),
    };
    let io = |e: super::FrameError| HandshakeError::Io(e.to_string());
    framed
        .send(handshake::encode_hello(PROTOCOL_VERSION, &hello)?)
        .await
        .map_err(io)?;
    let mut state = ClientState::AwaitChallenge {
        client_nonce: hello.nonce,
        client_uid: hello.uid,
    };
    loop {
        let message = handshake::decode::<ServerMessage>(&next_frame(&mut framed).await?)?;
        let (next, proof) = handshake::client_step(state, message, secret, peer.system())?;
        if let Some(proof) = proof {
            framed.send(handshake::encode(&proof)?).await.map_err(io)?;
        }
        if let ClientState::Accepted { server_uid } = next {
            return Ok((framed.into_parts().io, server_uid));
        }
        state = next;
    }
}

#[cfg(feature = "tls")]
async fn client_conn(shared: &Shared, stream: TcpStream) -> Result<Conn, HandshakeError> {
    match &shared.settings.tls {
        Some(tls) => tokio_rustls::TlsConnector::from(tls.client.clone())
            .connect(tls.server_name.clone(), stream)
            .await
            .map(|s| Conn::TlsClient(Box::new(s)))
            .map_err(|e| HandshakeError::Tls(e.to_string())),
        None => Ok(Conn::Plain(stream)),
    }
}

#[cfg(not(feature = "tls"))]
async fn client_conn(_shared: &Shared, stream: TcpStream) -> Result<Conn, HandshakeError> {
    Ok(Conn::Plain(stream))
}

/// Writes queued frames, coalesced, until the queue closes (`None`) or the connection
/// breaks (`Some(reason)`); also returns how many dequeued frames were lost.
async fn write_loop<R, W>(
    shared: &Shared,
    mut reader: R,
    mut writer: W,
    first: Option<Bytes>,
    rx: &flume::Receiver<Bytes>,
) -> (Option<DisconnectReason>, u64)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let coalesce = shared.settings.write_coalesce_bytes;
    let mut buf = BytesMut::with_capacity(coalesce + 1024);
    let mut probe = [0u8; 64];
    let mut next = first;
    loop {
        let frame = match next.take() {
            Some(frame) => frame,
            None => {
                tokio::select! {
                    biased;
                    read = reader.read(&mut probe) => {
                        let reason = match read {
                            Ok(0) => DisconnectReason::Io("connection closed by peer".to_owned()),
                            Ok(_) => DisconnectReason::ProtocolViolation(
                                "unexpected data from the accepting side".to_owned(),
                            ),
                            Err(e) => DisconnectReason::Io(e.to_string()),
                        };
                        return (Some(reason), 0);
                    }
                    frame = rx.recv_async() => match frame {
                        Ok(frame) => frame,
                        Err(_) => {
                            let _ = writer.shutdown().await;
                            return (None, 0);
                        }
                    },
                }
            }
        };
        let mut count = 1u64;
        put_frame(&mut buf, &frame);
        while buf.len() < coalesce {
            match rx.try_recv() {
                Ok(frame) => {
                    put_frame(&mut buf, &frame);
                    count += 1;
                }
                Err(_) => break,
            }
        }
        // flush: a no-op on plain TCP, pushes buffered records out under TLS.
        let written = match writer.write_all(&buf).await {
            Ok(()) => writer.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            return (Some(DisconnectReason::Io(e.to_string())), count);
        }
        buf.clear();
    }
}
