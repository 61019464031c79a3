//! Transports, wire codec and reliable system-message delivery for clustered actors.
//!
//! This crate is the layer under remoting: it moves opaque [`bytes::Bytes`] frames between
//! nodes and defines what those frames contain. The transport and wire modules do not use
//! `actor-core`; the remoting layer ([`remote`]) plugs on top by holding an
//! `Arc<dyn Transport>`, encoding [`wire::Envelope`]s into frames, routing inbound frames by
//! recipient path, and running one [`system_delivery`] sender/receiver pair per association.
//!
//! - [`Transport`]: the object-safe trait (local address and uid, `send`, inbound frames and
//!   [`TransportEvent`]s as flume receivers, peers, disconnect, shutdown).
//! - [`InMemoryTransport`] on an [`InMemoryHub`]: one process, paused-clock friendly, with
//!   fault injection ([`FaultInjector`]: blackhole, heal, delay, seeded random drop, crash).
//! - [`ChannelTransport`] on a [`ChannelMesh`]: the same between threads that each run their
//!   own runtime, faults driven from any thread (the multi-node harness's conductor).
//! - [`TcpTransport`] ([`tcp`]): length-prefixed frames, an HMAC-SHA256 challenge-response
//!   handshake, lazy connect, reconnect with backoff, bounded outbound queues, coalesced
//!   writes; optional TLS (feature `tls`).
//! - [`wire`]: one versioned envelope (postcard) with manifest-checked user payloads
//!   ([`wire::RemoteMessage`]).
//! - [`system_delivery`]: numbered, acknowledged, resent system messages and the quarantine
//!   decision, as pure state machines.
//! - [`membership`], [`failure_detector`], [`downing`]: the pure, transport-independent
//!   parts of cluster membership (gossip state and its merge, convergence, leader, events,
//!   seed join; phi-accrual failure detection and the monitoring ring; split brain resolver
//!   decisions), plain data and functions taking explicit instants.
//! - [`cluster`]: the cluster daemon wiring them to remoting and timers ([`Cluster::join`]).
//!
//! Guarantees of every transport: frames from one sender to one receiver arrive in send
//! order, at most once; a restarted node is a new incarnation with a new uid, visible in
//! [`InboundFrame::from_uid`] and [`TransportEvent::Connected`].
//!
//! # Examples
//!
//! Two in-memory nodes exchange a wire envelope:
//!
//! ```
//! use actor_cluster::wire::{self, Envelope, RemoteMessage};
//! use actor_cluster::{Address, InMemoryHub, Transport};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Greet {
//!     name: String,
//! }
//! impl RemoteMessage for Greet {
//!     const MANIFEST: &'static str = "example.Greet";
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = InMemoryHub::new();
//! let a = hub.bind(Address::logical("demo", "node-a")?)?;
//! let b = hub.bind(Address::logical("demo", "node-b")?)?;
//!
//! let greet = Greet { name: "b".into() };
//! let envelope = wire::user_envelope("actor://demo@node-b:0/user/greeter", None, &greet)?;
//! a.send(b.local_address(), wire::encode(&envelope)?)?;
//!
//! let inbound = b.inbound().recv_async().await?;
//! assert_eq!(&inbound.from, a.local_address());
//! let Envelope::User { recipient, manifest, payload, .. } = wire::decode(&inbound.frame)? else {
//!     unreachable!("a user envelope was sent");
//! };
//! assert_eq!(recipient, "actor://demo@node-b:0/user/greeter");
//! assert_eq!(wire::decode_message::<Greet>(&manifest, &payload)?, greet);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod address;
mod channel;
pub mod cluster;
pub mod downing;
pub mod failure_detector;
mod fault;
mod in_memory;
pub mod membership;
mod mesh;
pub mod pubsub;
pub mod remote;
pub mod sharding;
pub mod singleton;
pub mod system_delivery;
pub mod tcp;
pub mod transport;
pub mod wire;

pub use address::{Address, AddressError};
pub use channel::{ChannelMesh, ChannelTransport};
pub use cluster::{Cluster, ClusterError, ClusterSettings};
pub use fault::{Direction, FaultError, FaultInjector, LinkRule};
pub use in_memory::{DEFAULT_FAULT_SEED, InMemoryHub, InMemoryTransport};
pub use mesh::BindError;
pub use tcp::TcpTransport;
pub use transport::{
    BoxFuture, DEFAULT_MAX_FRAME_SIZE, DisconnectReason, DropReason, InboundFrame, RejectReason,
    Transport, TransportError, TransportEvent,
};
