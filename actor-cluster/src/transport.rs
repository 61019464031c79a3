//! The [`Transport`] trait: moves opaque `Bytes` frames between node [`Address`]es.
//!
//! A transport knows nothing of actors: the remoting layer above encodes envelopes
//! ([`crate::wire`]) into frames, hands them to [`Transport::send`], and reads
//! [`InboundFrame`]s and [`TransportEvent`]s from two channels. Delivery is at most once and
//! in order per (sender, receiver) pair; nothing is retried above the connection level.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::address::Address;

/// A boxed, sendable future, as returned by object-safe async trait methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors returned by [`Transport::send`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No node is bound at the destination address (in-process transports only).
    #[error("unknown peer {peer}")]
    UnknownPeer {
        /// The destination that is not known.
        peer: Address,
    },
    /// The frame is larger than the transport's maximum frame size.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Size of the rejected frame in bytes.
        size: usize,
        /// The configured maximum frame size in bytes.
        limit: usize,
    },
    /// The transport was shut down.
    #[error("transport {local} is shut down")]
    ShutDown {
        /// The local address of the transport.
        local: Address,
    },
    /// The bounded outbound queue to the peer is full; the frame was not queued.
    ///
    /// The caller still holds the frame (clone the `Bytes` before sending; it is a reference
    /// count) and routes it to dead letters. The TCP transport also counts these.
    #[error("outbound queue to {peer} is full ({capacity} frames)")]
    QueueFull {
        /// The destination whose queue is full.
        peer: Address,
        /// The queue capacity in frames.
        capacity: usize,
    },
    /// The address cannot be reached over this kind of transport.
    #[error("address {address} is not reachable over this transport: {reason}")]
    InvalidAddress {
        /// The rejected address.
        address: Address,
        /// Why it cannot be used.
        reason: String,
    },
}

/// A frame received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFrame {
    /// The address of the sending node.
    pub from: Address,
    /// The incarnation uid of the sending node (a restarted node has a new uid).
    pub from_uid: u64,
    /// The frame payload.
    pub frame: Bytes,
}

/// Why an association ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer crashed (fault injection) or its process vanished.
    Crashed,
    /// The peer shut its transport down.
    PeerShutDown,
    /// This side asked for it with [`Transport::disconnect`].
    Requested,
    /// The peer disconnected this node.
    ClosedByPeer,
    /// An I/O error or end of stream on the connection.
    Io(String),
    /// The peer sent input that breaks the protocol (the connection was closed).
    ProtocolViolation(String),
}

/// Why frames queued for a peer were discarded after [`Transport::send`] accepted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Reconnecting to the peer failed for good.
    AssociationFailed,
    /// The association was closed with [`Transport::disconnect`].
    Disconnected,
    /// The transport shut down.
    ShutDown,
    /// The connection broke after the frames were taken from the queue.
    ConnectionLost,
}

/// Why an inbound connection was refused (TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// The first bytes were not a handshake of this protocol.
    BadHandshake(String),
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// Our protocol version.
        ours: u8,
        /// The peer's protocol version.
        theirs: u8,
    },
    /// The peer's proof of the shared secret was wrong.
    AuthenticationFailed,
    /// One side has a shared secret and the other has none.
    SecretMismatch {
        /// Whether this node requires a secret.
        local_requires: bool,
    },
    /// The handshake did not complete in time.
    HandshakeTimeout,
    /// Too many connections were already in their handshake.
    TooManyHandshakes {
        /// The configured limit.
        limit: usize,
    },
    /// A frame length above the limit.
    FrameTooLarge {
        /// The announced frame length.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },
}

/// Transport-level events: association changes and losses the remoting layer reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A peer became reachable, or reconnected (a new `uid` means a new incarnation).
    ///
    /// TCP reports each direction's connection, so a pair that talks both ways sees it twice.
    Connected {
        /// The peer address.
        peer: Address,
        /// The peer's incarnation uid.
        uid: u64,
    },
    /// An association ended.
    Disconnected {
        /// The peer address.
        peer: Address,
        /// Why it ended.
        reason: DisconnectReason,
    },
    /// Connecting to a peer failed after every retry; queued frames were dropped.
    AssociationFailed {
        /// The peer address.
        peer: Address,
        /// How many connection attempts were made.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// Frames accepted by `send` were discarded before being written.
    FramesDropped {
        /// The destination of the frames.
        peer: Address,
        /// How many frames.
        count: u64,
        /// Why.
        reason: DropReason,
    },
    /// An inbound connection was refused or closed for breaking the protocol (logged too).
    ConnectionRejected {
        /// The remote socket address, as text.
        remote: String,
        /// Why.
        reason: RejectReason,
    },
}

/// Moves frames between nodes; held as `Arc<dyn Transport>` by the remoting layer.
///
/// Implementations: [`crate::InMemoryTransport`], [`crate::ChannelTransport`],
/// [`crate::TcpTransport`].
///
/// Frames from one sender to one receiver arrive in the order they were sent, at most once.
/// [`Transport::inbound`] and [`Transport::events`] return clones of one receiver each: every
/// frame or event goes to exactly one consumer, so use one consumer per channel.
pub trait Transport: Send + Sync + 'static {
    /// The address this transport is bound to.
    fn local_address(&self) -> &Address;

    /// The incarnation uid of this node (fresh for every bind).
    fn local_uid(&self) -> u64;

    /// The largest frame, in bytes, [`Transport::send`] accepts.
    fn max_frame_size(&self) -> usize;

    /// Queues a frame for `to` without waiting; delivery is at most once.
    ///
    /// Synchronous on purpose: a `tell` never blocks, and a full queue is reported at once
    /// rather than awaited.
    ///
    /// # Errors
    ///
    /// [`TransportError::FrameTooLarge`] above [`Transport::max_frame_size`],
    /// [`TransportError::ShutDown`] after [`Transport::shutdown`],
    /// [`TransportError::QueueFull`] when the peer's outbound queue is full,
    /// [`TransportError::UnknownPeer`] / [`TransportError::InvalidAddress`] when `to` cannot
    /// be reached by this transport.
    fn send(&self, to: &Address, frame: Bytes) -> Result<(), TransportError>;

    /// The receiver of inbound frames, tagged with the sender's address and uid.
    fn inbound(&self) -> flume::Receiver<InboundFrame>;

    /// The receiver of transport events (connected, disconnected, failures, drops).
    fn events(&self) -> flume::Receiver<TransportEvent>;

    /// The peers currently associated with this node, in address order (for TCP: peers with
    /// an established outbound connection or an authenticated inbound one).
    fn peers(&self) -> Vec<Address>;

    /// Closes the association with `peer`; a later `send` associates again.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the disconnect is decided before the first await.
    fn disconnect(&self, peer: &Address) -> BoxFuture<'_, ()>;

    /// Closes every association and stops accepting frames; idempotent.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the transport is marked shut down before the first await.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Frames and bytes a transport (or an in-process hub) has delivered, for measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCounts {
    /// Frames accepted for delivery (after faults: blackholed or dropped frames are not
    /// counted).
    pub frames: u64,
    /// Their payload bytes (frame bodies, without any transport framing).
    pub bytes: u64,
}

impl TrafficCounts {
    /// The traffic between `earlier` and `self`.
    pub fn since(&self, earlier: &TrafficCounts) -> TrafficCounts {
        TrafficCounts {
            frames: self.frames.saturating_sub(earlier.frames),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// A callback that sees every frame an in-process hub delivers: sender, receiver, frame.
///
/// Called with the hub's lock held: it must be quick and must not use the hub.
pub type FrameObserver = std::sync::Arc<dyn Fn(&Address, &Address, &[u8]) + Send + Sync>;

/// Default maximum frame size of every transport: 256 KiB.
///
/// Large enough for any ordinary message; a larger limit lets one huge frame hold up every
/// other frame on the connection and raises the memory a malicious length can claim.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 256 * 1024;
