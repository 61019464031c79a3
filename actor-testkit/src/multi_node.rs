//! MultiNodeSpec: run one test body per role on a cluster of actor systems, with barriers,
//! network faults, crashes, and every role's failure reported by name.
//!
//! [`run_multi_node`]`(&["node-a", "node-b", "node-c"], |node| async move { .. })` runs the
//! body once per role. Each role gets a [`Node`]: its actor system with remoting, its
//! cluster membership ([`Node::cluster`], joined with [`ClusterSettings::fast`] and every
//! role's address as a seed unless the spec says otherwise), the addresses of the others
//! ([`Node::address`]), [`Node::run_on`], barriers ([`Node::enter_barrier`],
//! [`Node::enter_barrier_for`]), probes that other nodes can send to ([`Node::probe`] +
//! [`Node::share_ref`] / [`Node::shared_ref`]), the [`Conductor`] (blackhole, delay, seeded
//! drops, pass-through, crash, shutdown) and a [`Trace`] ([`Node::trace`]).
//!
//! # Two modes, one API
//! - **Threads** (the default, [`run_multi_node`]): one OS thread, one current-thread tokio
//!   runtime and one actor system per role, wired by a
//!   [`ChannelMesh`](actor_cluster::ChannelMesh): real concurrency, real clock, every
//!   message through the wire codec.
//! - **Simulated** ([`run_multi_node_simulated`], [`MultiNodeSpec::simulated`]): every node
//!   on one current-thread runtime with a paused clock over an
//!   [`InMemoryHub`](actor_cluster::InMemoryHub); the hub's faults and every node's RNG come
//!   from the seed, so a seed replays the same run (and the same [`Trace`], timestamps
//!   included). Timers and time-outs cost no wall time: a failover that takes seconds of
//!   cluster time runs in milliseconds.
//!
//! Why not `turmoil`: the in-memory hub already gives what a simulation needs here (paused
//! clock, seeded faults, crash and partition between addresses) with the same frames and
//! codec as the real transports, and it needs no socket abstraction in the transports;
//! turmoil would only add value for running the TCP transport under simulation, which its
//! own tests cover.
//!
//! # Barriers
//! A barrier completes when every participant still alive entered it; roles the conductor
//! crashed or shut down are no longer expected. It fails for everyone at once when a
//! participant fails or ends its body without entering, and when the first waiter's time-out
//! ([`DEFAULT_BARRIER_TIMEOUT`], scaled by the [time factor](crate::time_factor)) expires;
//! the error names the barrier and the roles that did not arrive. Every body starts after
//! the implicit barrier [`START_BARRIER`], so all nodes are bound before any body runs.
//!
//! # Failures
//! A role fails when its body panics (a failed assertion or probe expectation), returns an
//! `Err`, fails at a barrier, cannot start its node, or runs past the run time-out. The
//! run then fails with [`MultiNodeError::Failed`], whose message lists every failed role,
//! the barrier it was at (or had passed last) and the message, the causes before the
//! consequences (barriers that aborted because of them). Every node stays up until every
//! body has ended, so a role that finishes early does not look crashed to the others.
//!
//! # Examples
//! Three nodes form a cluster; the first role's node is the leader:
//! ```
//! use actor_testkit::multi_node::run_multi_node_simulated;
//!
//! let report = run_multi_node_simulated(1, &["a", "b", "c"], |node| async move {
//!     node.await_members_up(&["a", "b", "c"]).await;
//!     assert_eq!(node.cluster().state().leader, Some(node.address("a")));
//!     node.enter_barrier("checked").await;
//! });
//! assert!(report.trace.contains("c", "MemberUp c"));
//! ```
//!
//! A probe on one node, a message from another:
//! ```
//! use actor_cluster::wire::RemoteMessage;
//! use actor_testkit::multi_node::MultiNodeSpec;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Hello(String);
//! impl RemoteMessage for Hello {
//!     const MANIFEST: &'static str = "doc.Hello";
//! }
//!
//! MultiNodeSpec::new(&["a", "b"]).unwrap().without_cluster().run_or_panic(|node| async move {
//!     let probe = node.probe::<Hello>();
//!     node.share_ref(node.role(), probe.actor_ref());
//!     node.enter_barrier("shared").await;
//!     let other = if node.is("a") { "b" } else { "a" };
//!     node.shared_ref::<Hello>(other).await.tell(Hello(node.role().to_owned()));
//!     probe.expect_msg(Hello(other.to_owned())).await;
//!     node.enter_barrier("done").await;
//! });
//! ```

mod barrier;
mod conductor;
mod node;
mod report;
mod run;
mod runner;
mod spec;

use std::time::Duration;

#[doc(no_inline)]
pub use actor_cluster::cluster::ClusterSettings;
pub use barrier::{BarrierError, Position};
pub use conductor::Conductor;
pub use node::Node;
pub use report::{
    ConductorError, FailedRun, FailureKind, MultiNodeError, RoleFailure, RoleOutcome, RunReport,
    Trace, TraceEntry, UnknownRole,
};
pub use runner::RoleResult;
pub use spec::{Mode, MultiNodeSpec, run_multi_node, run_multi_node_simulated};

/// How long a barrier waits for the other roles: 30 s (scaled by the time factor). Long
/// enough for a cluster on a loaded 2-core CI machine to form or fail over between two
/// barriers; a role that really hangs costs this much wall time in thread mode (none in
/// simulated mode).
pub const DEFAULT_BARRIER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one role's body may run: 120 s (scaled). A safety net against a body that
/// waits forever outside any barrier; a normal multi-node test takes a few seconds.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a node's actor system may take to terminate at the end of a run, or to leave
/// the cluster on a graceful [`Conductor::shutdown`]: 10 s (scaled). A leave takes a few
/// gossip rounds; past this the system is terminated anyway and a warning logged.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Node::await_members_up`] waits for the membership: 20 s (scaled). With
/// [`ClusterSettings::fast`] a three-node cluster forms in about a second and a crashed
/// node is downed in a few; the default profile needs much longer.
pub const DEFAULT_CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(20);

/// How often [`Node::await_members_up`] re-reads the membership: 20 ms. Shorter notices
/// sooner in thread mode but takes CPU from the nodes; in simulated mode it only sets the
/// granularity of virtual time.
pub const CONVERGENCE_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The actor system name of every node: `multi-node`.
pub const DEFAULT_SYSTEM_NAME: &str = "multi-node";

/// The barrier every role enters after its node started and before its body runs.
pub const START_BARRIER: &str = "multi-node-start";
