//! [`Node`]: what a role's body gets: its actor system, remoting and cluster, the addresses
//! of the other roles, barriers, cross-node probes and refs, the conductor and the trace.

use std::fmt::Display;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::cluster::{Cluster, ClusterError, ClusterSettings};
use actor_cluster::membership::MemberStatus;
use actor_cluster::remote::Remoting;
use actor_cluster::wire::RemoteMessage;
use actor_cluster::{Address, Transport};
use actor_core::{ActorRef, ActorSystem};
use parking_lot::Mutex;

use super::barrier::{BarrierError, Participants};
use super::conductor::Conductor;
use super::report::UnknownRole;
use super::run::Run;
use crate::probe::TestProbe;

/// One role's node in a run, handed to the role's body. Cheap to clone.
///
/// Methods that can only fail through a test bug or a failed run (an unknown role name, a
/// barrier that times out, a ref nobody shared) panic with a message naming what went
/// wrong, like a probe's expectations; the panic fails the role and the run reports it
/// with the role's name and barrier. Each has a `try_` twin returning the error.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

pub(crate) struct NodeInner {
    pub(crate) run: Arc<Run>,
    pub(crate) index: usize,
    pub(crate) system: ActorSystem,
    pub(crate) remoting: Arc<Remoting>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) cluster: Mutex<Option<Arc<Cluster>>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("role", &self.role())
            .field("address", self.self_address())
            .finish_non_exhaustive()
    }
}

impl Node {
    fn run(&self) -> &Run {
        &self.inner.run
    }

    /// This node's role.
    pub fn role(&self) -> &str {
        &self.run().roles[self.inner.index]
    }

    /// Every role of the run, in the order given to the spec.
    pub fn roles(&self) -> &[String] {
        &self.run().roles
    }

    /// Whether this node plays `role`.
    pub fn is(&self, role: &str) -> bool {
        self.role() == role
    }

    /// The roles that are neither crashed nor shut down, in role order.
    pub fn live_roles(&self) -> Vec<String> {
        let run = self.run();
        run.live_roles()
            .into_iter()
            .map(|i| run.roles[i].clone())
            .collect()
    }

    /// This node's actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.inner.system
    }

    /// This node's remoting.
    pub fn remoting(&self) -> &Arc<Remoting> {
        &self.inner.remoting
    }

    /// This node's transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }

    /// Whether the run is simulated (one runtime, paused clock, seeded).
    pub fn is_simulated(&self) -> bool {
        self.run().network.is_simulated()
    }

    /// The run's seed (the mesh's or hub's, and the root of every node's RNG seed).
    pub fn seed(&self) -> u64 {
        self.run().config.seed
    }

    /// This node's cluster membership.
    ///
    /// # Panics
    /// When the node has not joined a cluster (a spec built
    /// [`without_cluster`](super::MultiNodeSpec::without_cluster) and no
    /// [`Node::join_cluster`] yet).
    #[track_caller]
    pub fn cluster(&self) -> Arc<Cluster> {
        match self.try_cluster() {
            Some(c) => c,
            None => panic!(
                "role {}: node.cluster() before the node joined a cluster",
                self.role()
            ),
        }
    }

    /// This node's cluster membership, if it joined one.
    pub fn try_cluster(&self) -> Option<Arc<Cluster>> {
        self.inner.cluster.lock().clone()
    }

    /// Joins the cluster with `settings`; with no seed nodes in them, every role's address
    /// is a seed (the first role's node forms the cluster). Cluster events are recorded in
    /// the trace.
    ///
    /// # Errors
    /// As [`Cluster::join`].
    pub fn join_cluster(&self, settings: ClusterSettings) -> Result<Arc<Cluster>, ClusterError> {
        let settings = if settings.seed_nodes.is_empty() {
            settings.with_seed_nodes(self.run().addresses.clone())
        } else {
            settings
        };
        let cluster = Cluster::join(&self.inner.system, settings)?;
        if let Some(recorder) = super::runner::recorder(&self.inner.system) {
            cluster.subscribe(&recorder);
        }
        *self.inner.cluster.lock() = Some(cluster.clone());
        Ok(cluster)
    }

    /// The transport address of `role`'s node.
    ///
    /// # Panics
    /// When the run has no such role.
    #[track_caller]
    pub fn address(&self, role: &str) -> Address {
        match self.try_address(role) {
            Ok(a) => a,
            Err(e) => panic!("role {}: {e}", self.role()),
        }
    }

    /// The transport address of `role`'s node.
    ///
    /// # Errors
    /// [`UnknownRole`].
    pub fn try_address(&self, role: &str) -> Result<Address, UnknownRole> {
        let i = self.run().index_of(role)?;
        Ok(self.run().addresses[i].clone())
    }

    /// This node's transport address.
    pub fn self_address(&self) -> &Address {
        &self.run().addresses[self.inner.index]
    }

    /// The role whose node is at `address`, if any.
    pub fn role_at(&self, address: &Address) -> Option<&str> {
        self.run().role_at(address)
    }

    /// Runs `body` when this node plays one of `roles`; `None` elsewhere (the future is
    /// not polled).
    pub async fn run_on<T>(&self, roles: &[&str], body: impl Future<Output = T>) -> Option<T> {
        if roles.contains(&self.role()) {
            Some(body.await)
        } else {
            None
        }
    }

    /// Waits until every role still alive has entered barrier `name`.
    ///
    /// Waits up to the spec's barrier time-out (30 s by default, scaled by the time factor);
    /// see [`Node::try_enter_barrier`] for the rules.
    ///
    /// # Panics
    /// When the barrier fails: the message names the barrier and the roles that did not
    /// arrive, or the role that failed meanwhile.
    #[track_caller]
    pub fn enter_barrier(&self, name: &str) -> impl Future<Output = ()> + '_ {
        let caller = Location::caller();
        let name = name.to_owned();
        async move {
            let result = self.try_enter_barrier(&name, None).await;
            self.barrier_or_panic(caller, result)
        }
    }

    /// Waits until every role of `roles` still alive has entered barrier `name`; every
    /// role in `roles` must enter it with the same set, and this node must be one of them.
    ///
    /// # Panics
    /// As [`Node::enter_barrier`], and on an unknown role or a role set that does not
    /// include this node.
    #[track_caller]
    pub fn enter_barrier_for<'a>(
        &'a self,
        name: &str,
        roles: &'a [&'a str],
    ) -> impl Future<Output = ()> + 'a {
        let caller = Location::caller();
        let name = name.to_owned();
        async move {
            let result = self.try_enter_barrier(&name, Some(roles)).await;
            self.barrier_or_panic(caller, result)
        }
    }

    fn barrier_or_panic(&self, caller: &Location<'_>, result: Result<(), BarrierError>) {
        if let Err(e) = result {
            self.run().set_failing_barrier(self.inner.index, e.clone());
            panic!("role {} at {caller}: {e}", self.role());
        }
    }

    /// Enters barrier `name` for `roles` (`None`: every role) and waits for it.
    ///
    /// The barrier completes once every participant still alive has entered it (a role the
    /// conductor crashed or shut down is not expected). A participant that fails, or ends
    /// its body without entering, aborts it for everyone at once; so does the first waiter
    /// whose time-out expires, naming the roles that did not arrive.
    ///
    /// # Errors
    /// A [`BarrierError`] saying why the barrier failed.
    ///
    /// # Cancel safety
    /// Not cancel safe: a dropped wait leaves this role counted as arrived.
    pub async fn try_enter_barrier(
        &self,
        name: &str,
        roles: Option<&[&str]>,
    ) -> Result<(), BarrierError> {
        let timeout = self.run().config.barrier_timeout;
        self.try_enter_barrier_within(name, roles, timeout).await
    }

    /// [`Node::try_enter_barrier`] with an explicit time-out (used as given, not scaled).
    ///
    /// # Errors
    /// As [`Node::try_enter_barrier`].
    pub async fn try_enter_barrier_within(
        &self,
        name: &str,
        roles: Option<&[&str]>,
        timeout: Duration,
    ) -> Result<(), BarrierError> {
        let participants = match roles {
            None => Participants::All,
            Some(names) => self.run().participants(name, names)?,
        };
        self.run()
            .enter_barrier(self.inner.index, name, participants, timeout)
            .await
    }

    /// The conductor: faults between roles, crash and shutdown.
    pub fn conductor(&self) -> Conductor {
        Conductor {
            run: self.inner.run.clone(),
            by: self.inner.index,
        }
    }

    /// Records `event` in the run's trace under this role.
    pub fn trace(&self, event: impl Display) {
        self.run().trace(self.inner.index, event.to_string());
    }

    /// A probe on this node whose ref works from every node: `M` is registered with this
    /// node's remoting, so messages sent to the probe's path from another node arrive. Give
    /// its ref to other roles with [`Node::share_ref`] (or inside a message).
    ///
    /// # Panics
    /// When another type already registered `M::MANIFEST`, or the system is terminating.
    #[track_caller]
    pub fn probe<M: RemoteMessage>(&self) -> TestProbe<M> {
        if let Err(e) = self.inner.remoting.register::<M>() {
            panic!(
                "role {}: cannot register the probe's type: {e}",
                self.role()
            );
        }
        TestProbe::new(&self.inner.system)
    }

    /// Publishes `actor`'s path under `key` for the other roles ([`Node::shared_ref`]).
    /// Publishing a key again replaces it.
    pub fn share_ref<M: Send + 'static>(&self, key: &str, actor: &ActorRef<M>) {
        self.run().share(key, actor.path().to_string());
    }

    /// The ref some role published under `key`, waiting for it up to the barrier time-out:
    /// a remote ref when it lives on another node, the local one otherwise.
    ///
    /// # Panics
    /// When nothing is published under `key` in time, or the path cannot be resolved.
    #[track_caller]
    pub fn shared_ref<M: RemoteMessage>(
        &self,
        key: &str,
    ) -> impl Future<Output = ActorRef<M>> + '_ {
        let caller = Location::caller();
        let key = key.to_owned();
        async move {
            let timeout = self.run().config.barrier_timeout;
            let Some(path) = self.run().shared(&key, timeout).await else {
                panic!(
                    "role {} at {caller}: no ref was shared under {key:?} within {timeout:?}",
                    self.role()
                );
            };
            match self.inner.remoting.remote_ref_str::<M>(&path) {
                Ok(r) => r,
                Err(e) => panic!(
                    "role {} at {caller}: the ref shared under {key:?} ({path}): {e}",
                    self.role()
                ),
            }
        }
    }

    /// A ref to the actor at `path` (such as `/user/echo`) on `role`'s node: remote on
    /// another node, local on this one.
    ///
    /// # Panics
    /// When the role is unknown or the path is malformed (on this node: when no actor of
    /// type `M` lives there).
    #[track_caller]
    pub fn actor_on<M: RemoteMessage>(&self, role: &str, path: &str) -> ActorRef<M> {
        let address = self.address(role);
        let full = format!("{}{address}{path}", actor_core::PATH_SCHEME);
        match self.inner.remoting.remote_ref_str::<M>(&full) {
            Ok(r) => r,
            Err(e) => panic!("role {}: no ref to {full}: {e}", self.role()),
        }
    }

    /// Waits until this node sees exactly `roles` as cluster members, all Up, none
    /// unreachable; up to the spec's convergence time-out.
    ///
    /// # Panics
    /// When that does not happen in time (the message shows the last membership seen), or
    /// the node is not in a cluster.
    #[track_caller]
    pub fn await_members_up(&self, roles: &[&str]) -> impl Future<Output = ()> + '_ {
        let caller = Location::caller();
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        async move { self.members_up(roles, caller).await }
    }

    /// [`Node::await_members_up`] for every role still alive.
    ///
    /// # Panics
    /// As [`Node::await_members_up`].
    #[track_caller]
    pub fn await_cluster_up(&self) -> impl Future<Output = ()> + '_ {
        let caller = Location::caller();
        async move { self.members_up(self.live_roles(), caller).await }
    }

    async fn members_up(&self, roles: Vec<String>, caller: &Location<'_>) {
        let expected: Vec<Address> = roles.iter().map(|r| self.address(r)).collect();
        let Some(cluster) = self.try_cluster() else {
            panic!(
                "role {} at {caller}: waiting for members before the node joined a cluster",
                self.role()
            );
        };
        let timeout = self.run().config.convergence_timeout;
        let check = || {
            let state = cluster.state();
            let ok = state.members.len() == expected.len()
                && state
                    .members
                    .iter()
                    .all(|m| m.status == MemberStatus::Up && expected.contains(&m.address))
                && state.unreachable.is_empty();
            if ok {
                return Ok(());
            }
            let members: Vec<String> = state
                .members
                .iter()
                .map(|m| format!("{} {:?}", self.describe(&m.address), m.status))
                .collect();
            let unreachable: Vec<String> = state
                .unreachable
                .iter()
                .map(|m| self.describe(&m.address))
                .collect();
            Err(format!("members {members:?}, unreachable {unreachable:?}"))
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match check() {
                Ok(()) => return,
                Err(last) => last,
            };
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "role {} at {caller}: the cluster did not reach {roles:?} all Up within {timeout:?}; last seen: {last}",
                    self.role()
                );
            }
            tokio::time::sleep(super::CONVERGENCE_POLL_INTERVAL).await;
        }
    }

    /// A role name for `address` (the address itself if no role is bound there).
    pub(crate) fn describe(&self, address: &Address) -> String {
        match self.run().role_at(address) {
            Some(role) => role.to_owned(),
            None => address.to_string(),
        }
    }
}
