//! The manager actor: runs the [`Machine`] on membership changes, lease results, hand-over
//! messages and timers, and performs its actions (spawn, stop, acquire, release, send).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use actor_coordination::lease::{Acquired, FencingToken, Lease, LeaseError, LeaseOperation};
use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, SpawnError};
use tracing::{debug, info, warn};

use super::host::{Duty, duty, singleton_host};
use super::lineage::Lineage;
use super::protocol::{Inner, ManagerMsg, ManagerStatus, SingletonLocation};
use super::state_machine::{Action, Event, Machine, Phase};
use super::{
    LEASE_CALL_TIMEOUT_FACTOR, SingletonError, SingletonSettings, lease_owner, manager_name,
    singleton_manager_path_at,
};
use crate::Address;
use crate::cluster::Cluster;
use crate::membership::{ClusterEvent, MemberStatus, UniqueAddress};
use crate::remote::Remoting;
use crate::wire::RemoteMessage;

const ACQUIRE_RETRY_TIMER: &str = "singleton-acquire-retry";
const HAND_OVER_RETRY_TIMER: &str = "singleton-hand-over-retry";
const SPAWN_RETRY_TIMER: &str = "singleton-spawn-retry";
const REMOVAL_MARGIN_TIMER: &str = "singleton-removal-margin";
const RELEASE_RETRY_TIMER: &str = "singleton-release-retry";

/// How long the manager waits for one call on `lease` ([`LEASE_CALL_TIMEOUT_FACTOR`] times
/// its operation timeout).
fn lease_call_bound(lease: &dyn Lease) -> std::time::Duration {
    lease.settings().operation_timeout() * LEASE_CALL_TIMEOUT_FACTOR
}

/// Runs one call on `lease`, given up on (dropped) after [`lease_call_bound`]: a lease
/// implementation that hangs must not keep the manager waiting for an answer for ever.
async fn bounded<T>(
    lease: &dyn Lease,
    operation: LeaseOperation,
    call: impl Future<Output = Result<T, LeaseError>>,
) -> Result<T, LeaseError> {
    let bound = lease_call_bound(lease);
    match tokio::time::timeout(bound, call).await {
        Ok(result) => result,
        Err(_elapsed) => Err(LeaseError::Timeout {
            name: lease.settings().name().to_owned(),
            operation,
            timeout: bound,
        }),
    }
}

/// What a singleton instance is told when it is created: where it runs and its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingletonContext {
    /// The singleton's type name.
    pub type_name: String,
    /// The node it runs on.
    pub node: Address,
    /// The lease's fencing token for this holding, if a lease gates the singleton. Pass it
    /// with every write to a resource that rejects older tokens.
    pub fencing_token: Option<FencingToken>,
}

type Factory<A> = Arc<dyn Fn(&SingletonContext) -> Props<A> + Send + Sync>;

/// Spawns the per-node manager of a cluster singleton. See the [module docs](super).
#[derive(Debug, Clone, Copy)]
pub struct ClusterSingletonManager;

impl ClusterSingletonManager {
    /// Spawns the manager of `settings.type_name` on this node at
    /// `/user/singleton-manager-<type_name>`; call it on every node. The singleton is spawned
    /// from `singleton` as the manager's child named `type_name` while this node hosts it.
    ///
    /// # Errors
    /// [`SingletonError::ClusterNotJoined`], invalid settings
    /// ([`SingletonError::InvalidTypeName`], [`SingletonError::InvalidSetting`]),
    /// [`SingletonError::LeaseOwnerMismatch`] when the lease's owner is not this node,
    /// [`SingletonError::Remote`] when a message type's manifest clashes,
    /// [`SingletonError::Spawn`] when a manager of that name exists already.
    pub fn spawn<A: Actor>(
        system: &ActorSystem,
        singleton: Props<A>,
        settings: SingletonSettings,
    ) -> Result<ActorRef<ManagerMsg>, SingletonError>
    where
        A::Msg: RemoteMessage,
    {
        Self::spawn_with(system, move |_| singleton.clone(), settings)
    }

    /// Like [`spawn`](Self::spawn), with a factory that builds the singleton's props from a
    /// [`SingletonContext`] (node, fencing token) each time it is started.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn).
    pub fn spawn_with<A: Actor>(
        system: &ActorSystem,
        factory: impl Fn(&SingletonContext) -> Props<A> + Send + Sync + 'static,
        settings: SingletonSettings,
    ) -> Result<ActorRef<ManagerMsg>, SingletonError>
    where
        A::Msg: RemoteMessage,
    {
        let name = manager_name(&settings.type_name);
        Self::spawn_named(system, &name, factory, settings)
    }

    /// Like [`spawn_with`](Self::spawn_with) under an explicit actor name, which must be
    /// `singleton-manager-<type_name>`: any other name is refused, since proxies find the
    /// manager by that name and a misnamed one would silently break routing.
    ///
    /// # Errors
    /// [`SingletonError::MisnamedManager`], else as [`spawn`](Self::spawn).
    pub fn spawn_named<A: Actor>(
        system: &ActorSystem,
        name: &str,
        factory: impl Fn(&SingletonContext) -> Props<A> + Send + Sync + 'static,
        settings: SingletonSettings,
    ) -> Result<ActorRef<ManagerMsg>, SingletonError>
    where
        A::Msg: RemoteMessage,
    {
        settings.validate()?;
        let expected = manager_name(&settings.type_name);
        if name != expected {
            return Err(SingletonError::MisnamedManager {
                type_name: settings.type_name.clone(),
                expected,
                given: name.to_owned(),
            });
        }
        let cluster = Cluster::get(system).ok_or_else(|| SingletonError::ClusterNotJoined {
            system: system.name().to_owned(),
        })?;
        let remoting = Remoting::get(system).ok_or_else(|| SingletonError::ClusterNotJoined {
            system: system.name().to_owned(),
        })?;
        if let Some(lease) = &settings.lease
            && let Some(expected) = lease_owner(system)
            && lease.settings().owner() != &expected
        {
            return Err(SingletonError::LeaseOwnerMismatch {
                expected: expected.to_string(),
                found: lease.settings().owner().to_string(),
            });
        }
        remoting.register::<ManagerMsg>()?;
        remoting.register::<ManagerStatus>()?;
        remoting.register::<SingletonLocation>()?;
        remoting.register::<A::Msg>()?;
        let me = cluster.self_member().unique_address();
        let factory: Factory<A> = Arc::new(factory);
        // this node's graceful leave waits until the singleton has handed over
        let exit_blocker =
            cluster.register_exit_blocker(format!("singleton {}", settings.type_name));
        let lineage = Arc::new(Lineage::new(exit_blocker));
        let props = Props::new(move || {
            let incarnation = lineage.next_incarnation();
            Manager::<A> {
                settings: settings.clone(),
                factory: factory.clone(),
                cluster: cluster.clone(),
                remoting: remoting.clone(),
                me: me.clone(),
                machine: Machine::new(settings.lease.is_some(), settings.max_hand_over_retries)
                    .with_incarnation(incarnation)
                    .with_margin_running(lineage.margin_running())
                    .with_releases_in_flight(lineage.releases_in_flight())
                    .with_removal_margin(!settings.removal_margin.is_zero()),
                child: None,
                host: None,
                events: None,
                older: BTreeMap::new(),
                incarnation,
                lineage: lineage.clone(),
                leaving: false,
                release_retried: false,
            }
        });
        Ok(system.spawn(props, name)?)
    }
}

struct Manager<A: Actor> {
    settings: SingletonSettings,
    factory: Factory<A>,
    cluster: Arc<Cluster>,
    remoting: Arc<Remoting>,
    me: UniqueAddress,
    machine: Machine,
    child: Option<ActorRef<A::Msg>>,
    host: Option<Address>,
    events: Option<ActorRef<ClusterEvent>>,
    /// Older members with the role that were once Up, as last seen, and whether they were
    /// Down: a member that disappears from the membership has been removed.
    older: BTreeMap<UniqueAddress, bool>,
    /// This instance's number among the manager's restarts (tags its releases).
    incarnation: u32,
    /// What this manager's incarnations share (margin, releases in flight, exit blocker).
    lineage: Arc<Lineage>,
    /// Whether this node is leaving (Leaving or Exiting, or gone), as last seen.
    leaving: bool,
    /// The release in flight is the one immediate retry of a release that failed.
    release_retried: bool,
}

impl<A: Actor> Manager<A> {
    fn type_name(&self) -> &str {
        &self.settings.type_name
    }

    fn lease(&self) -> Option<Arc<dyn Lease>> {
        self.settings.lease.clone()
    }

    fn status(&self) -> ManagerStatus {
        let token = match self.machine.phase() {
            Phase::Active { token } => token.map(FencingToken::value),
            _ => None,
        };
        ManagerStatus {
            active: self.child.is_some() && matches!(self.machine.phase(), Phase::Active { .. }),
            phase: self.machine.phase().name().to_owned(),
            host: self.host.clone(),
            fencing_token: token,
            holds_lease: self.machine.holds_lease(),
        }
    }

    fn location(&self) -> SingletonLocation {
        match (self.machine.phase(), &self.child) {
            (Phase::Active { .. }, Some(child)) => {
                SingletonLocation::Here(child.path().to_string())
            }
            (Phase::HandedOver { to: Some(to) }, _) => {
                SingletonLocation::MovedTo(to.address.clone())
            }
            _ => SingletonLocation::NotHere,
        }
    }

    fn on_membership(&mut self, ctx: &mut Context<Self>) {
        let state = self.cluster.state();
        let role = self.settings.role.clone();
        let role = role.as_deref();
        let host = singleton_host(&state.members, role).map(|m| m.address.clone());
        if host != self.host {
            debug!(singleton = %self.type_name(), node = %self.me.address, from = ?self.host, to = ?host, "singleton host changed");
            self.host = host;
        }
        // removals first: the duty computed from this membership may already let it start
        let mine = state.members.iter().find(|m| m.unique_address() == self.me);
        let older: BTreeMap<UniqueAddress, bool> = match mine {
            Some(mine) => state
                .members
                .iter()
                .filter(|m| {
                    m.up_number != 0 && role.is_none_or(|r| m.has_role(r)) && m.is_older_than(mine)
                })
                .map(|m| (m.unique_address(), m.status == MemberStatus::Down))
                .collect(),
            None => BTreeMap::new(),
        };
        let removed: Vec<(UniqueAddress, bool)> = self
            .older
            .iter()
            .filter(|(m, _)| mine.is_some() && !older.contains_key(*m))
            .map(|(m, down)| (m.clone(), *down))
            .collect();
        if mine.is_some() {
            self.older = older;
        }
        // a node that left never comes back: once leaving, always leaving
        self.leaving |= mine.is_some_and(|m| {
            matches!(
                m.status,
                MemberStatus::Leaving | MemberStatus::Exiting | MemberStatus::Down
            )
        });
        for (member, was_down) in removed {
            debug!(singleton = %self.type_name(), node = %self.me.address, removed = %member, was_down, "older member removed");
            self.step(Event::MemberRemoved { member, was_down }, ctx);
        }
        if mine.is_none() && matches!(self.machine.duty(), Duty::HandOver { .. }) {
            // this node left and saw its own removal: it never gets another duty, and
            // keeping the hand-over lets it confirm once its (slow) stop is over, so a
            // successor waiting out the removal margin may start at once
            return;
        }
        let duty = duty(&state.members, &self.me, role);
        if &duty != self.machine.duty() {
            debug!(singleton = %self.type_name(), node = %self.me.address, ?duty, "singleton duty");
        }
        self.step(Event::Duty(duty), ctx);
    }

    fn step(&mut self, event: Event, ctx: &mut Context<Self>) {
        let mut queue = vec![event];
        while let Some(event) = queue.pop() {
            let before = self.machine.phase().name();
            let actions = self.machine.on_event(event);
            let after = self.machine.phase().name();
            if before != after {
                debug!(singleton = %self.type_name(), node = %self.me.address, from = before, to = after, "singleton manager phase");
            }
            for action in actions {
                if let Some(follow_up) = self.perform(action, ctx) {
                    queue.push(follow_up);
                }
            }
        }
        if !self.machine.in_removal_margin() {
            // elapsed, or ended by late confirmations: a restart need not wait it out
            self.lineage.set_margin_until(None);
        }
        self.report_exit();
    }

    /// Releases a holding of the lease object that the machine does not know of, once
    /// nothing is in flight: left by a release that failed twice (tried again after the
    /// acquire interval), by an acquire given up on, or by an earlier incarnation.
    fn release_untracked_holding(&mut self, ctx: &mut Context<Self>) {
        if let Some(lease) = self.lease()
            && self.machine.is_quiet()
            && lease.check_lease()
        {
            warn!(singleton = %self.type_name(), node = %self.me.address, "the lease is held but this manager does not track it: releasing it");
            self.step(Event::LeaseHeldAtStart, ctx);
        }
    }

    /// Lets this node's leave go on once it is leaving and nothing runs, is held or is in
    /// flight here (the singleton stopped, its lease released, the successor told).
    fn report_exit(&self) {
        let blocker = self.lineage.exit_blocker();
        if self.leaving && self.machine.is_quiet() && !blocker.is_done() {
            info!(singleton = %self.type_name(), node = %self.me.address, "singleton handed over: this node's leave may go on");
            blocker.done();
        }
    }

    /// Performs one action; an event to feed back when the action completed at once.
    fn perform(&mut self, action: Action, ctx: &mut Context<Self>) -> Option<Event> {
        match action {
            Action::Spawn { token } => {
                // the grant may have been lost between its arrival and now (its loss
                // callback can even overtake it): never start on a lease not held
                if let Some(lease) = self.lease()
                    && !lease.check_lease()
                    && let Some(attempt) = self.machine.holding_attempt()
                {
                    warn!(singleton = %self.type_name(), node = %self.me.address, attempt, "lease no longer held when spawning");
                    return Some(Event::LeaseLost { attempt });
                }
                self.spawn_child(token, ctx)
            }
            Action::StopChild => match self.child.take() {
                Some(child) => {
                    info!(singleton = %self.type_name(), node = %self.me.address, "stopping singleton");
                    ctx.stop_child(&child);
                    // the child's termination arrives later; keep it known until then
                    self.child = Some(child);
                    None
                }
                None => {
                    ctx.cancel_timer(SPAWN_RETRY_TIMER);
                    Some(Event::ChildTerminated)
                }
            },
            Action::Acquire { attempt } => {
                if let Some(lease) = self.lease() {
                    debug!(singleton = %self.type_name(), node = %self.me.address, attempt, "acquiring singleton lease");
                    let me = ctx.myself().clone();
                    let lineage = self.lineage.clone();
                    ctx.pipe_to_self(
                        async move {
                            let on_lost = Box::new(move |reason| {
                                me.tell(ManagerMsg::internal(Inner::LeaseLost { attempt, reason }))
                            });
                            let acquire = lease.acquire_with_lost_callback(on_lost);
                            let result =
                                bounded(&*lease, LeaseOperation::Acquire, acquire).await;
                            if lineage.is_stopped() && matches!(result, Ok(Acquired::Held(_))) {
                                // the manager stopped for good while this was in flight: no
                                // one will handle the grant, so let it go here
                                debug!(attempt, "releasing a lease granted after the singleton manager stopped");
                                let release = lease.release();
                                if let Err(error) =
                                    bounded(&*lease, LeaseOperation::Release, release).await
                                {
                                    warn!(attempt, %error, "releasing a late grant failed (it expires after its ttl)");
                                }
                            }
                            result
                        },
                        move |result| {
                            let result = match result {
                                Ok(Acquired::Held(token)) => Ok(Some(token)),
                                Ok(Acquired::NotHeld) => Ok(None),
                                Err(e) => Err(e.to_string()),
                            };
                            ManagerMsg::internal(Inner::Acquired { attempt, result })
                        },
                    );
                }
                None
            }
            Action::Release => {
                if let Some(lease) = self.lease() {
                    debug!(singleton = %self.type_name(), node = %self.me.address, "releasing singleton lease");
                    // counted until its answer is handled, by this incarnation or a later one
                    self.lineage.release_issued();
                    let incarnation = self.incarnation;
                    let running = self.lineage.release_running();
                    let release = async move {
                        let result =
                            bounded(&*lease, LeaseOperation::Release, lease.release()).await;
                        drop(running);
                        result
                    };
                    ctx.pipe_to_self(release, move |r| {
                        ManagerMsg::internal(Inner::Released {
                            incarnation,
                            result: r.map_err(|e| e.to_string()),
                        })
                    });
                    None
                } else {
                    Some(Event::Released)
                }
            }
            Action::ScheduleAcquireRetry => {
                ctx.start_single_timer(
                    ACQUIRE_RETRY_TIMER,
                    self.settings.acquire_retry_interval,
                    ManagerMsg::internal(Inner::AcquireRetry),
                );
                None
            }
            Action::ScheduleHandOverRetry => {
                ctx.start_single_timer(
                    HAND_OVER_RETRY_TIMER,
                    self.settings.hand_over_retry_interval,
                    ManagerMsg::internal(Inner::HandOverRetry),
                );
                None
            }
            Action::SendHandOverToMe { to } => {
                debug!(singleton = %self.type_name(), node = %self.me.address, previous = %to, "HandOverToMe");
                self.send(&to, Inner::HandOverToMe(self.me.clone()));
                None
            }
            Action::SendHandOverInProgress { to } => {
                debug!(singleton = %self.type_name(), node = %self.me.address, successor = %to, "HandOverInProgress");
                self.send(&to, Inner::HandOverInProgress(self.me.clone()));
                None
            }
            Action::SendHandOverDone { to } => {
                info!(singleton = %self.type_name(), node = %self.me.address, successor = %to, "HandOverDone");
                self.send(&to, Inner::HandOverDone(self.me.clone()));
                None
            }
            Action::ScheduleRemovalMargin => {
                self.lineage
                    .set_margin_until(Some(Instant::now() + self.settings.removal_margin));
                info!(singleton = %self.type_name(), node = %self.me.address, margin = ?self.settings.removal_margin, "an older member was removed without confirming the hand-over; waiting out the removal margin");
                ctx.start_single_timer(
                    REMOVAL_MARGIN_TIMER,
                    self.settings.removal_margin,
                    ManagerMsg::internal(Inner::RemovalMarginElapsed),
                );
                None
            }
            Action::GaveUpAsking { from } => {
                warn!(singleton = %self.type_name(), node = %self.me.address, previous = %from, retries = self.settings.max_hand_over_retries, "no hand-over confirmation; waiting for the previous host's removal");
                None
            }
        }
    }

    fn send(&self, to: &UniqueAddress, msg: Inner) {
        let path = singleton_manager_path_at(&to.address, self.type_name());
        match self.remoting.remote_ref_str::<ManagerMsg>(&path) {
            Ok(manager) => manager.tell(ManagerMsg(msg)),
            Err(e) => {
                debug!(singleton = %self.type_name(), %path, error = %e, "peer manager not reachable")
            }
        }
    }

    /// Spawns the child; an event to feed back when it could not be spawned for good.
    fn spawn_child(
        &mut self,
        token: Option<FencingToken>,
        ctx: &mut Context<Self>,
    ) -> Option<Event> {
        if self.child.is_some() {
            return None;
        }
        let context = SingletonContext {
            type_name: self.type_name().to_owned(),
            node: self.me.address.clone(),
            fencing_token: token,
        };
        let props = (self.factory)(&context);
        match ctx.spawn(props, &self.settings.type_name) {
            Ok(child) => {
                ctx.watch_with(
                    &child,
                    ManagerMsg::internal(Inner::ChildTerminated(child.id().clone())),
                );
                info!(singleton = %self.type_name(), node = %self.me.address, fencing_token = ?token.map(FencingToken::value), "singleton started");
                self.child = Some(child);
                None
            }
            Err(SpawnError::DuplicateName { .. }) => {
                // a predecessor (from before a manager restart) is still stopping
                ctx.start_single_timer(
                    SPAWN_RETRY_TIMER,
                    self.settings.spawn_retry_interval,
                    ManagerMsg::internal(Inner::SpawnRetry),
                );
                None
            }
            Err(e) => {
                // not a name still taken: it will not work by retrying. Handled like a
                // singleton that stopped by itself (the lease is released, the status says
                // so), instead of an "active" manager with nothing running
                warn!(singleton = %self.type_name(), error = %e, "could not spawn the singleton; not retrying until the next host change");
                Some(Event::ChildTerminated)
            }
        }
    }
}

impl<A: Actor> Actor for Manager<A> {
    type Msg = ManagerMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let events = ctx
            .myself()
            .adapt(|_: ClusterEvent| ManagerMsg::internal(Inner::Cluster));
        // after a restart the old subscription (same actor identity) is still registered
        self.cluster.unsubscribe(&events);
        self.cluster.subscribe(&events);
        // a margin an earlier incarnation was waiting out: arm the timer for what is left
        let margin_until = self.lineage.margin_until();
        if self.machine.in_removal_margin()
            && let Some(until) = margin_until
        {
            ctx.start_single_timer(
                REMOVAL_MARGIN_TIMER,
                until.saturating_duration_since(Instant::now()),
                ManagerMsg::internal(Inner::RemovalMarginElapsed),
            );
        }
        self.events = Some(events);
        // a restart has stopped the child, but the lease object may still hold the lease
        // of the previous incarnation: release it before anything else
        if let Some(lease) = self.lease()
            && lease.check_lease()
        {
            self.step(Event::LeaseHeldAtStart, ctx);
        }
        self.on_membership(ctx);
        Ok(())
    }

    async fn handle(&mut self, msg: ManagerMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg.0 {
            Inner::Cluster => self.on_membership(ctx),
            Inner::Status(reply) => {
                reply.reply(self.status());
            }
            Inner::Locate(reply) => {
                reply.reply(self.location());
            }
            Inner::HandOverToMe(from) => {
                debug!(singleton = %self.type_name(), node = %self.me.address, successor = %from, "received HandOverToMe");
                self.step(Event::HandOverToMe { from }, ctx)
            }
            Inner::HandOverInProgress(from) => {
                debug!(singleton = %self.type_name(), node = %self.me.address, previous = %from, "received HandOverInProgress");
                self.step(Event::HandOverInProgress { from }, ctx)
            }
            Inner::HandOverDone(from) => {
                info!(singleton = %self.type_name(), node = %self.me.address, previous = %from, "received HandOverDone");
                self.step(Event::HandOverDone { from }, ctx)
            }
            Inner::Acquired { attempt, result } => {
                let token = match result {
                    Ok(token) => {
                        debug!(singleton = %self.type_name(), node = %self.me.address, attempt, held = token.is_some(), "lease acquire result");
                        token
                    }
                    Err(error) => {
                        warn!(singleton = %self.type_name(), node = %self.me.address, attempt, %error, "lease acquire failed");
                        None
                    }
                };
                self.step(Event::Acquired { attempt, token }, ctx);
                // an acquire given up on may still have been granted inside the lease
                // object: if nothing here wants it, let it go
                self.release_untracked_holding(ctx);
            }
            Inner::LeaseLost { attempt, reason } => {
                warn!(singleton = %self.type_name(), node = %self.me.address, attempt, %reason, "singleton lease lost");
                self.step(Event::LeaseLost { attempt }, ctx)
            }
            Inner::Released {
                incarnation,
                result,
            } => {
                let failed = result.is_err();
                if let Err(error) = result {
                    warn!(singleton = %self.type_name(), %error, "lease release failed (it expires after its ttl)");
                }
                if incarnation != self.incarnation {
                    debug!(singleton = %self.type_name(), node = %self.me.address, incarnation, "a release issued before a manager restart is done");
                }
                // every release in flight counts, whichever incarnation issued it: this
                // machine started counting those of earlier incarnations
                self.lineage.release_answered();
                if failed
                    && !self.release_retried
                    && self.machine.only_releasing()
                    && self.lease().is_some_and(|l| l.check_lease())
                {
                    // the lease object still holds what this release was to let go: try
                    // once more at once, before the machine counts it let go (a leaving
                    // node would otherwise tell its successor while still holding)
                    self.release_retried = true;
                    self.perform(Action::Release, ctx);
                    return Ok(());
                }
                self.release_retried = false;
                self.step(Event::Released, ctx);
                if failed {
                    // the lease object may still hold: try again after the acquire
                    // interval, not at once (a lease whose release fails at once would
                    // otherwise be called in a tight loop)
                    ctx.start_single_timer(
                        RELEASE_RETRY_TIMER,
                        self.settings.acquire_retry_interval,
                        ManagerMsg::internal(Inner::ReleaseRetry),
                    );
                } else {
                    self.release_untracked_holding(ctx);
                }
            }
            Inner::ReleaseRetry => self.release_untracked_holding(ctx),
            Inner::AcquireRetry => self.step(Event::AcquireRetry, ctx),
            Inner::HandOverRetry => self.step(Event::HandOverRetry, ctx),
            Inner::RemovalMarginElapsed => self.step(Event::RemovalMarginElapsed, ctx),
            Inner::SpawnRetry => {
                if let Phase::Active { token } = *self.machine.phase()
                    && let Some(event) = self.spawn_child(token, ctx)
                {
                    self.step(event, ctx);
                }
            }
            Inner::ChildTerminated(id) => {
                // a stale signal (a child from before a manager restart) is not ours
                if self.child.as_ref().is_some_and(|c| c.id() == &id) {
                    self.child = None;
                    info!(singleton = %self.type_name(), node = %self.me.address, "singleton stopped");
                    self.step(Event::ChildTerminated, ctx);
                }
            }
        }
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(events) = self.events.take() {
            self.cluster.unsubscribe(&events);
        }
        // from now on an acquire still in flight releases its own grant; one granted
        // before this line is seen by the check below
        self.lineage.stop();
        if let Some(lease) = self.lease() {
            // a release still running must not run after this manager is gone: it would
            // drop the holding of a manager spawned next on the same lease object (each
            // release is bounded, so this wait is too)
            let bound = lease_call_bound(&*lease);
            if tokio::time::timeout(bound, self.lineage.releases_finished())
                .await
                .is_err()
            {
                warn!(singleton = %self.type_name(), ?bound, "a lease release was still running when the manager stopped");
            }
        }
        // the child stopped before this hook (children first): let the lease go now
        if let Some(lease) = self.lease()
            && lease.check_lease()
            && let Err(error) = bounded(&*lease, LeaseOperation::Release, lease.release()).await
        {
            warn!(singleton = %self.type_name(), %error, "lease release on stop failed");
        }
        // nothing of this singleton runs here any more: a leave need not wait for it
        self.lineage.exit_blocker().done();
        // a leaving node whose system shuts down (usually once it was removed) confirms
        // once more now that its singleton has stopped: a successor waiting out the removal
        // margin may start at once if the message still gets through
        if let Duty::HandOver { to: Some(to) } = self.machine.duty().clone() {
            debug!(singleton = %self.type_name(), node = %self.me.address, successor = %to, "HandOverDone on stop");
            self.send(&to, Inner::HandOverDone(self.me.clone()));
        }
    }
}
