//! [`TcpTransport`]: length-prefixed frames over tokio TCP, with an authenticated handshake.
//!
//! - Frames: a big-endian `u32` length then the bytes, at most
//!   [`TcpSettings::max_frame_size`] ([`crate::DEFAULT_MAX_FRAME_SIZE`] by default). A larger
//!   send is a [`TransportError::FrameTooLarge`] at the sender; a larger inbound length closes
//!   that connection with a logged error and a [`TransportEvent::ConnectionRejected`].
//! - Handshake ([`handshake`]): protocol version, system name, node uid, and an HMAC-SHA256
//!   challenge-response over a shared secret in both directions. Running without a secret is
//!   the explicit [`TcpSettings::insecure_no_auth`].
//! - One connection per direction: frames to a peer go over the connection this node opened
//!   (lazily, on the first send); frames from a peer arrive on the connection it opened. So
//!   there is never a race between two connections for one pair, and order per pair holds.
//! - Each peer has a bounded outbound queue; a full queue fails the send with
//!   [`TransportError::QueueFull`], bumps [`TcpTransport::overflow_count`] and hands the frame
//!   to the [`TcpSettings::on_overflow`] callback (for dead letters). A writer task
//!   drains the queue into one buffer (up to [`TcpSettings::write_coalesce_bytes`]) and
//!   writes it with one `write_all`.
//! - A lost connection is re-dialled on the next frame, with exponential backoff; after
//!   [`TcpSettings::max_reconnect_attempts`] failures the queued frames are dropped and
//!   reported ([`TransportEvent::AssociationFailed`], [`TransportEvent::FramesDropped`]).
//! - Malformed input never panics: it closes that one connection, logs, and reports.
//! - With the `tls` feature, `TcpSettings::tls` runs every connection over TLS (rustls,
//!   ring provider, mutual certificates) under the same handshake.

pub mod handshake;

mod backoff;
mod conn;
mod frame;
mod inbound;
mod outbound;
mod settings;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::task::{AbortHandle, JoinHandle};

use crate::address::{Address, AddressError};
use crate::transport::{
    BoxFuture, DisconnectReason, DropReason, InboundFrame, RejectReason, Transport, TransportError,
    TransportEvent,
};

pub use frame::FrameError;
pub use settings::{
    Auth, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_INBOUND_QUEUE_CAPACITY,
    DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_MAX_RECONNECT_ATTEMPTS,
    DEFAULT_OUTBOUND_QUEUE_CAPACITY, DEFAULT_RECONNECT_BACKOFF_MAX, DEFAULT_RECONNECT_BACKOFF_MIN,
    DEFAULT_WRITE_COALESCE_BYTES, OverflowHandler, RECONNECT_BACKOFF_FACTOR, TcpSettings,
    TcpSettingsError,
};
#[cfg(feature = "tls")]
pub use settings::{TlsError, TlsSettings};

/// Pause after a failed `accept` (e.g. out of file descriptors): 10 ms.
///
/// Avoids a busy loop while the condition lasts; longer delays accepting healthy peers.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Errors of [`TcpTransport::bind`].
#[derive(Debug, thiserror::Error)]
pub enum TcpBindError {
    /// The settings are invalid.
    #[error(transparent)]
    Settings(#[from] TcpSettingsError),
    /// The listener could not be bound.
    #[error("cannot bind {addr}: {error}")]
    Bind {
        /// The requested socket address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The bound socket address cannot form an [`Address`] (e.g. IPv6).
    #[error("bound address is unusable: {0}")]
    Address(#[from] AddressError),
}

struct Outbound {
    tx: flume::Sender<Bytes>,
    task: AbortHandle,
    id: u64,
    /// Whether the writer currently holds an authenticated connection.
    connected: bool,
}

struct InboundConn {
    peer: Option<Address>,
    task: AbortHandle,
}

#[derive(Default)]
struct State {
    outbound: BTreeMap<Address, Outbound>,
    inbound: BTreeMap<u64, InboundConn>,
    next_id: u64,
    accept: Option<JoinHandle<()>>,
}

/// State shared by the transport handle and its tasks.
pub(crate) struct Shared {
    settings: TcpSettings,
    address: Address,
    uid: u64,
    runtime: Handle,
    /// Taken on shutdown so that, once the readers are gone, `inbound()` reports closure.
    inbound_tx: Mutex<Option<flume::Sender<InboundFrame>>>,
    inbound_rx: flume::Receiver<InboundFrame>,
    /// Taken on shutdown, after the last events, so `events()` reports closure.
    events_tx: Mutex<Option<flume::Sender<TransportEvent>>>,
    events_rx: flume::Receiver<TransportEvent>,
    state: Mutex<State>,
    shut_down: AtomicBool,
    overflow: AtomicU64,
}

impl Shared {
    pub(crate) fn emit(&self, event: TransportEvent) {
        if let Some(tx) = &*self.events_tx.lock() {
            let _ = tx.send(event);
        }
    }

    fn spawn_inbound(self: &Arc<Self>, stream: TcpStream, remote: SocketAddr) {
        let mut state = self.state.lock();
        let limit = self.settings.max_pending_handshakes;
        if state.inbound.values().filter(|c| c.peer.is_none()).count() >= limit {
            drop(state);
            drop(stream);
            tracing::warn!(local = %self.address, %remote, limit,
                "too many handshakes in progress; connection closed");
            self.emit(TransportEvent::ConnectionRejected {
                remote: remote.to_string(),
                reason: RejectReason::TooManyHandshakes { limit },
            });
            return;
        }
        state.next_id += 1;
        let id = state.next_id;
        let task = self
            .runtime
            .spawn(inbound::serve(self.clone(), stream, remote, id));
        state.inbound.insert(
            id,
            InboundConn {
                peer: None,
                task: task.abort_handle(),
            },
        );
    }

    /// Records the peer of an inbound connection once its handshake succeeded.
    pub(crate) fn inbound_identified(&self, id: u64, peer: &Address) {
        if let Some(conn) = self.state.lock().inbound.get_mut(&id) {
            conn.peer = Some(peer.clone());
        }
    }

    pub(crate) fn inbound_closed(&self, id: u64) {
        self.state.lock().inbound.remove(&id);
    }

    /// Records whether writer `id` of `peer` holds a connection (for [`Transport::peers`]).
    pub(crate) fn outbound_connected(&self, peer: &Address, id: u64, connected: bool) {
        if let Some(out) = self.state.lock().outbound.get_mut(peer)
            && out.id == id
        {
            out.connected = connected;
        }
    }

    /// Removes the outbound entry of `peer` if it is still incarnation `id` of the writer.
    pub(crate) fn remove_outbound(&self, peer: &Address, id: u64) {
        let mut state = self.state.lock();
        if state.outbound.get(peer).is_some_and(|o| o.id == id) {
            state.outbound.remove(peer);
        }
    }

    fn abort_all(&self) -> Option<JoinHandle<()>> {
        let mut state = self.state.lock();
        for (peer, out) in std::mem::take(&mut state.outbound) {
            out.task.abort();
            let queued = out.tx.len() as u64;
            if queued > 0 {
                self.emit(TransportEvent::FramesDropped {
                    peer,
                    count: queued,
                    reason: DropReason::ShutDown,
                });
            }
        }
        for (_, conn) in std::mem::take(&mut state.inbound) {
            conn.task.abort();
        }
        let accept = state.accept.take();
        if let Some(accept) = &accept {
            accept.abort();
        }
        drop(state);
        self.inbound_tx.lock().take();
        self.events_tx.lock().take();
        accept
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => shared.spawn_inbound(stream, remote),
            Err(error) => {
                tracing::warn!(local = %shared.address, %error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// A transport over TCP; see the [module docs](self).
///
/// # Examples
///
/// ```
/// use actor_cluster::tcp::{TcpSettings, TcpTransport};
/// use actor_cluster::Transport;
/// use bytes::Bytes;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let bind = "127.0.0.1:0".parse().unwrap();
/// let a = TcpTransport::bind(TcpSettings::with_secret("sys", bind, "s3cret")).await.unwrap();
/// let b = TcpTransport::bind(TcpSettings::with_secret("sys", bind, "s3cret")).await.unwrap();
/// a.send(b.local_address(), Bytes::from_static(b"over tcp")).unwrap();
/// let got = b.inbound().recv_async().await.unwrap();
/// assert_eq!((got.from, got.from_uid), (a.local_address().clone(), a.local_uid()));
/// assert_eq!(got.frame, "over tcp");
/// # }
/// ```
pub struct TcpTransport {
    shared: Arc<Shared>,
}

impl TcpTransport {
    /// Validates `settings`, binds the listener and starts accepting connections.
    ///
    /// # Errors
    ///
    /// [`TcpBindError::Settings`] for invalid settings, [`TcpBindError::Bind`] when the
    /// socket cannot be bound, [`TcpBindError::Address`] for an IPv6 bind address.
    pub async fn bind(settings: TcpSettings) -> Result<Arc<Self>, TcpBindError> {
        settings.validate()?;
        let listener =
            TcpListener::bind(settings.bind)
                .await
                .map_err(|error| TcpBindError::Bind {
                    addr: settings.bind,
                    error,
                })?;
        let local = listener.local_addr().map_err(|error| TcpBindError::Bind {
            addr: settings.bind,
            error,
        })?;
        let address = Address::from_socket(settings.system.clone(), local)?;
        let (inbound_tx, inbound_rx) = flume::bounded(settings.inbound_queue_capacity);
        let (events_tx, events_rx) = flume::unbounded();
        let shared = Arc::new(Shared {
            settings,
            address,
            uid: rand::random::<u64>().max(1),
            runtime: Handle::current(),
            inbound_tx: Mutex::new(Some(inbound_tx)),
            inbound_rx,
            events_tx: Mutex::new(Some(events_tx)),
            events_rx,
            state: Mutex::new(State::default()),
            shut_down: AtomicBool::new(false),
            overflow: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(shared.clone(), listener));
        shared.state.lock().accept = Some(accept);
        Ok(Arc::new(Self { shared }))
    }

    /// How many frames were refused because a peer's outbound queue was full.
    pub fn overflow_count(&self) -> u64 {
        self.shared.overflow.load(Ordering::Relaxed)
    }

    /// The settings this transport runs with.
    pub fn settings(&self) -> &TcpSettings {
        &self.shared.settings
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.shared.shut_down.store(true, Ordering::SeqCst);
        self.shared.abort_all();
    }
}

impl Transport for TcpTransport {
    fn local_address(&self) -> &Address {
        &self.shared.address
    }

    fn local_uid(&self) -> u64 {
        self.shared.uid
    }

    fn max_frame_size(&self) -> usize {
        self.shared.settings.max_frame_size
    }

    fn send(&self, to: &Address, frame: Bytes) -> Result<(), TransportError> {
        let limit = self.shared.settings.max_frame_size;
        if frame.len() > limit {
            return Err(TransportError::FrameTooLarge {
                size: frame.len(),
                limit,
            });
        }
        if self.shared.shut_down.load(Ordering::SeqCst) {
            return Err(TransportError::ShutDown {
                local: self.shared.address.clone(),
            });
        }
        let capacity = self.shared.settings.outbound_queue_capacity;
        let mut state = self.shared.state.lock();
        let mut frame = frame;
        for _ in 0..2 {
            if !state.outbound.contains_key(to) {
                // Checked once per association, not on every frame.
                if to.socket_addr().is_none() {
                    return Err(TransportError::InvalidAddress {
                        address: to.clone(),
                        reason: "the host is not an IP address".to_owned(),
                    });
                }
                let (tx, rx) = flume::bounded(capacity);
                state.next_id += 1;
                let id = state.next_id;
                let task = self.shared.runtime.spawn(outbound::run(
                    self.shared.clone(),
                    to.clone(),
                    id,
                    rx,
                ));
                state.outbound.insert(
                    to.clone(),
                    Outbound {
                        tx,
                        task: task.abort_handle(),
                        id,
                        connected: false,
                    },
                );
            }
            let Some(out) = state.outbound.get(to) else {
                break;
            };
            match out.tx.try_send(frame) {
                Ok(()) => return Ok(()),
                Err(flume::TrySendError::Full(frame)) => {
                    self.shared.overflow.fetch_add(1, Ordering::Relaxed);
                    drop(state);
                    if let Some(handler) = &self.shared.settings.on_overflow {
                        (handler.0)(to, frame);
                    }
                    return Err(TransportError::QueueFull {
                        peer: to.clone(),
                        capacity,
                    });
                }
                Err(flume::TrySendError::Disconnected(back)) => {
                    // The writer ended (association failed); start a fresh one.
                    state.outbound.remove(to);
                    frame = back;
                }
            }
        }
        Err(TransportError::ShutDown {
            local: self.shared.address.clone(),
        })
    }

    fn inbound(&self) -> flume::Receiver<InboundFrame> {
        self.shared.inbound_rx.clone()
    }

    fn events(&self) -> flume::Receiver<TransportEvent> {
        self.shared.events_rx.clone()
    }

    fn peers(&self) -> Vec<Address> {
        let state = self.shared.state.lock();
        let mut peers: Vec<Address> = state
            .outbound
            .iter()
            .filter(|(_, out)| out.connected)
            .map(|(peer, _)| peer.clone())
            .collect();
        peers.extend(state.inbound.values().filter_map(|c| c.peer.clone()));
        peers.sort();
        peers.dedup();
        peers
    }

    fn disconnect(&self, peer: &Address) -> BoxFuture<'_, ()> {
        let mut found = false;
        {
            let mut state = self.shared.state.lock();
            if let Some(out) = state.outbound.remove(peer) {
                found = true;
                out.task.abort();
                let queued = out.tx.len() as u64;
                if queued > 0 {
                    self.shared.emit(TransportEvent::FramesDropped {
                        peer: peer.clone(),
                        count: queued,
                        reason: DropReason::Disconnected,
                    });
                }
            }
            state.inbound.retain(|_, conn| {
                if conn.peer.as_ref() == Some(peer) {
                    found = true;
                    conn.task.abort();
                    false
                } else {
                    true
                }
            });
        }
        if found {
            self.shared.emit(TransportEvent::Disconnected {
                peer: peer.clone(),
                reason: DisconnectReason::Requested,
            });
        }
        Box::pin(std::future::ready(()))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.shared.shut_down.store(true, Ordering::SeqCst);
        let accept = self.shared.abort_all();
        Box::pin(async move {
            if let Some(accept) = accept {
                // Wait until the listener is dropped so the port can be bound again.
                let _ = accept.await;
            }
        })
    }
}
