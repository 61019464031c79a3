//! Remoting: typed [`ActorRef`](actor_core::ActorRef)s to actors on other nodes, over any
//! [`Transport`](crate::Transport).
//!
//! [`Remoting::start`] attaches to an [`ActorSystem`](actor_core::ActorSystem) whose address
//! is the transport's (build its settings with [`Remoting::system_settings`]). Then:
//!
//! - [`Remoting::register`] makes a [`RemoteMessage`](crate::wire::RemoteMessage) type
//!   receivable here: inbound frames carrying its manifest are decoded into it and told to
//!   the local actor at the recipient path. Register every type that crosses nodes (requests,
//!   replies, and the message types of refs sent inside messages) on every node.
//! - [`Remoting::remote_ref`] gives an `ActorRef<M>` to `actor://<system>@host:port/...`;
//!   `tell` encodes the message (postcard, with `M::MANIFEST`) and sends it at once, without
//!   a task hop. `ask` works too: the `ReplyTo` inside the request crosses as a temporary
//!   path (`actor://<system>@host:port/temp/ask-<n>`) that the answer comes back to.
//! - An `ActorRef<M>` (or `ReplyTo<M>`) inside a message crosses as its path and arrives as a
//!   working ref: local if the path is the receiver's, remote otherwise.
//! - `ctx.watch(&remote_ref)` is remote death-watch: watch/unwatch/terminated travel as
//!   numbered, acknowledged, resent system messages ([`crate::system_delivery`]), and the
//!   watcher gets exactly one `Terminated`, also when the association is lost for longer than
//!   [`RemoteSettings::loss_timeout`], when the peer restarts (a new uid), or when system
//!   delivery breaks: each ends in quarantine of that peer incarnation.
//!
//! Node incarnations: a remote ref binds to the first incarnation (uid) of its node it
//! learns of and sends `<path>#<uid>` as the recipient once it knows it; a node drops
//! envelopes addressed to another uid (dead letter), and a node that sees a peer come back
//! with a new uid quarantines the old one, so old refs never reach a restarted node.
//!
//! Undeliverable inbound messages (unknown path, unknown manifest, an actor that takes
//! another type, a stale uid) are logged and published as dead letters with
//! [`DeadLetterReason::UnknownRecipient`](actor_core::DeadLetterReason). A frame that is not
//! a valid envelope (garbage, a truncated frame, another wire version) closes that peer
//! incarnation's association for good: it is logged, quarantined
//! ([`RemoteQuarantineReason::MalformedFrame`]) and disconnected at the transport, while
//! the node goes on serving every other peer. Nothing a peer sends can panic the node.
//!
//! Limits: a remote actor cannot be stopped through its ref (`stop` logs a warning; send it a
//! message instead); watching a remote actor works when its message type is registered on its
//! node; an adapter ref (`ActorRef::adapt`) crosses as its target's path.
//!
//! # Examples
//! ```
//! use actor_cluster::remote::Remoting;
//! use actor_cluster::wire::RemoteMessage;
//! use actor_cluster::{Address, InMemoryHub};
//! use actor_core::{Actor, ActorResult, ActorSystem, Context, Props, ReplyTo};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Double(u32, ReplyTo<Doubled>);
//! impl RemoteMessage for Double { const MANIFEST: &'static str = "doc.Double"; }
//! #[derive(Serialize, Deserialize)]
//! struct Doubled(u32);
//! impl RemoteMessage for Doubled { const MANIFEST: &'static str = "doc.Doubled"; }
//!
//! struct Doubler;
//! impl Actor for Doubler {
//!     type Msg = Double;
//!     async fn handle(&mut self, Double(n, reply): Double, _: &mut Context<Self>) -> ActorResult {
//!         reply.reply(Doubled(n * 2));
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let hub = InMemoryHub::new();
//! let ta = hub.bind(Address::logical("doc", "a").unwrap()).unwrap();
//! let tb = hub.bind(Address::logical("doc", "b").unwrap()).unwrap();
//! let a = ActorSystem::with_settings("doc", Remoting::system_settings(&*ta)).unwrap();
//! let b = ActorSystem::with_settings("doc", Remoting::system_settings(&*tb)).unwrap();
//! let ra = Remoting::start(&a, ta).unwrap();
//! let rb = Remoting::start(&b, tb).unwrap();
//! for r in [&ra, &rb] {
//!     r.register::<Double>().unwrap();
//!     r.register::<Doubled>().unwrap();
//! }
//! let doubler = b.spawn(Props::new(|| Doubler), "doubler").unwrap();
//! let remote = ra.remote_ref::<Double>(doubler.path()).unwrap();
//! let Doubled(n) = remote.ask(|r| Double(21, r), Duration::from_secs(3)).await.unwrap();
//! assert_eq!(n, 42);
//! a.terminate().await;
//! b.terminate().await;
//! # }
//! ```

mod ask;
mod association;
mod codec;
mod inbound;
mod ref_serde;
mod registry;
mod remote_ref;
mod remoting;
mod settings;
mod watch_proxy;

pub use association::{Quarantined, RemoteQuarantineReason};
pub use inbound::UndeliveredRemoteMessage;
pub use remoting::{RemoteError, Remoting};
pub use settings::{
    DEFAULT_ASSOCIATION_LOSS_TIMEOUT, DEFAULT_INBOUND_BATCH, DEFAULT_REF_CACHE_CAPACITY,
    DEFAULT_TICK_INTERVAL, RemoteSettings,
};
