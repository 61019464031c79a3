//! `actor-core`: the local actor runtime.
//!
//! Typed actors ([`Actor`]) run on a tokio runtime, one message at a time, spawned from
//! [`Props`] into an [`ActorSystem`]'s tree under `/user`. [`ActorRef`]s `tell` without
//! blocking and `ask` with a timeout. A failure (an `Err` or a panic in a hook) suspends the
//! actor and its parent's [`SupervisorStrategy`] resumes, restarts, stops or escalates.
//! [`Context::watch`] delivers exactly one [`Terminated`] per watched actor. Timers, receive
//! timeouts, stash and an event stream with dead letters complete the set. All time goes
//! through `tokio::time`, so a test on a paused runtime runs in virtual time.
//!
//! The guarantees are stated in one place, `docs/semantics.md` at the repository root.
//!
//! # Design choices
//! - **Supervision belongs to the parent.** [`Props::supervisor`] sets how an actor supervises
//!   its *children* (Akka classic's placement), which is what makes all-for-one and escalation
//!   expressible. The `/user` guardian's strategy comes from [`SystemSettings`].
//! - **Own mailbox, not a channel crate.** DESIGN.md sketched flume; the mailbox is instead a
//!   mutex-guarded queue in the actor's cell with batch receive: an idle mailbox allocates
//!   nothing, a busy actor locks once per batch, and closing under the same lock means a
//!   message is taken, dead-lettered or refused, never silently dropped. System messages have
//!   their own queue, drained before every user message.
//! - **The run loop is a state machine** (`runner.rs`: Running, Suspended, Restarting,
//!   Stopping), with the cold states boxed so an idle actor's task stays small.
//! - **Actors are tasks of a dispatcher, not tokio tasks** (`dispatcher.rs`). A cell holds its
//!   boxed run loop and is its own waker; a woken actor goes on the system's ready queue (or
//!   straight to a parked worker), and one tokio task per runtime worker thread runs the
//!   ready actors, as Akka's dispatchers do. A spawn then costs two small allocations (the
//!   path and the 208-byte cell) and no runtime bookkeeping; the worker that first runs the
//!   actor makes its 152-byte run loop from the recipe the cell keeps (as Akka makes the
//!   instance on the actor's dispatcher), so a task spawning many actors shares that work
//!   with the other worker threads. Actors that message each other hand over within a
//!   worker's loop without a round through tokio's scheduler. A plain task that wakes many
//!   actors wakes a worker for the first few and then one per batch. An actor gives up its
//!   turn after 64 messages in a row, a worker gives tokio a turn after 256 messages, and
//!   dropping the runtime drops every actor, as tokio does with its tasks.
//! - **Signals keep mailbox order.** [`Terminated`] is queued behind the messages already in
//!   the watcher's mailbox; children are watched implicitly.
//! - **Extension points for remoting**: [`RefBackend`] lets an [`ActorRef`] reach something
//!   other than a local cell, and [`Watcher`] lets a remote layer deliver `Terminated`.
//!
//! # Examples
//! A supervised worker that fails and is restarted by its parent's default strategy:
//! ```
//! use actor_core::{Actor, ActorError, ActorResult, ActorSystem, Context, Props, ReplyTo};
//! use std::time::Duration;
//!
//! enum Job { Run(u32, ReplyTo<u32>), Crash }
//!
//! struct Worker;
//! impl Actor for Worker {
//!     type Msg = Job;
//!     async fn handle(&mut self, job: Job, _: &mut Context<Self>) -> ActorResult {
//!         match job {
//!             Job::Run(n, reply) => { reply.reply(n * 2); Ok(()) }
//!             Job::Crash => Err(ActorError::msg("bad input")),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let system = ActorSystem::new("jobs").unwrap();
//! let worker = system.spawn(Props::new(|| Worker), "worker").unwrap();
//! worker.tell(Job::Crash); // restarted: the mailbox is kept
//! let doubled = worker.ask(|r| Job::Run(21, r), Duration::from_secs(1)).await.unwrap();
//! assert_eq!(doubled, 42);
//! system.terminate().await;
//! # }
//! ```
#![deny(missing_docs)]

mod actor;
mod actor_ref;
mod cell;
mod context;
mod death_watch;
mod dispatcher;
mod error;
mod event_stream;
mod mailbox;
mod path;
mod props;
pub mod remote_support;
mod runner;
mod supervision;
mod system;
mod timers;

pub use actor::Actor;
pub use actor_ref::{ActorRef, RefBackend, ReplyTo, Watcher};
pub use context::Context;
pub use death_watch::Terminated;
pub use error::{
    ActorError, ActorResult, AskError, LookupError, SpawnError, StashFull, SystemError, TellError,
};
pub use event_stream::{DeadLetter, DeadLetterMessage, DeadLetterReason, EventStream};
pub use mailbox::{MailboxConfig, OverflowPolicy};
pub use path::{
    ActorId, ActorPath, Address, PATH_SCHEME, PathError, validate_actor_name, validate_system_name,
};
pub use props::{DEFAULT_STASH_CAPACITY, Props};
pub use supervision::{
    Backoff, Directive, Failure, FailureCause, FailurePhase, StrategyKind, SupervisorStrategy,
    default_decider,
};
pub use system::{ActorSystem, SystemSettings};
pub use timers::TimerKey;
