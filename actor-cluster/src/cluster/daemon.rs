//! The cluster daemon actor: runs the protocol decisions of [`super::protocol`] and the
//! pure state machines (seed join, heartbeat monitor, split brain resolver) against timers
//! and remoting.

use std::collections::BTreeMap;
use std::sync::Arc;

use actor_core::{Actor, ActorRef, ActorResult, Context};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::exit_blocker::{ExitGate, ExitGateAction};
use super::protocol::{
    ClusterMsg, SelfFate, accept_join, apply_reachability, init_join_reply, monitored_members,
    receive_gossip, self_fate,
};
use super::{ClusterSettings, DowningLease, EXITING_SHUTDOWN_ROUNDS, Shared, daemon_path};
use crate::Address;
use crate::downing::{DowningView, ResolverAction, ResolverEvent, SplitBrainResolver};
use crate::failure_detector::HeartbeatMonitor;
use crate::membership::{
    ClusterEvent, Gossip, Member, MemberStatus, SeedJoin, SeedJoinAction, SeedJoinEvent,
    UniqueAddress, diff, leader_actions, select_gossip_target,
};
use crate::remote::Remoting;

const GOSSIP_TIMER: &str = "cluster-gossip";
const HEARTBEAT_TIMER: &str = "cluster-heartbeat";
const JOIN_TIMER: &str = "cluster-join";
const DOWNING_TIMER: &str = "cluster-downing";
const SHUTDOWN_TIMER: &str = "cluster-shutdown";
const EXIT_BLOCKER_TIMER: &str = "cluster-exit-blockers";

/// The daemon's state; see the module docs.
pub(crate) struct Daemon {
    pub(crate) self_member: Member,
    pub(crate) settings: ClusterSettings,
    pub(crate) remoting: Arc<Remoting>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) seed: u64,
    pub(crate) gossip: Gossip,
    pub(crate) seed_join: Option<SeedJoin>,
    pub(crate) monitor: HeartbeatMonitor,
    pub(crate) resolver: SplitBrainResolver,
    /// Daemon refs of peers, with the member uid known when each was made (a remote ref
    /// binds to one incarnation, so a new uid at an address needs a new ref).
    pub(crate) peers: BTreeMap<Address, (Option<u64>, ActorRef<ClusterMsg>)>,
    pub(crate) rng: Option<ChaCha8Rng>,
    pub(crate) shutting_down: bool,
    pub(crate) lease: Option<Arc<dyn DowningLease>>,
    /// Whether this node holds its leave for its exit blockers.
    pub(crate) exit_gate: ExitGate,
}

impl Daemon {
    fn self_node(&self) -> UniqueAddress {
        self.self_member.unique_address()
    }

    fn send(&mut self, to: &Address, msg: ClusterMsg) {
        if to == &self.self_member.address {
            return;
        }
        let uid = self.gossip.member_by_address(to).map(|m| m.uid);
        if self.peers.get(to).is_none_or(|(known, _)| *known != uid) {
            match self.remoting.remote_ref_str::<ClusterMsg>(&daemon_path(to)) {
                Ok(r) => {
                    self.peers.insert(to.clone(), (uid, r));
                }
                Err(error) => {
                    tracing::warn!(%to, %error, "no route to the cluster daemon of a peer");
                    return;
                }
            }
        }
        if let Some((_, peer)) = self.peers.get(to) {
            peer.tell(msg);
        }
    }

    fn perform_join(&mut self, actions: Vec<SeedJoinAction>, ctx: &mut Context<Self>) {
        for action in actions {
            match action {
                SeedJoinAction::SendInitJoin { to } => {
                    let from = self.self_member.address.clone();
                    for seed in to {
                        self.send(&seed, ClusterMsg::InitJoin { from: from.clone() });
                    }
                }
                SeedJoinAction::SendJoin { to } => {
                    let member = self.self_member.clone();
                    self.send(&to, ClusterMsg::Join { member });
                }
                SeedJoinAction::JoinSelf => {
                    let node = self.self_node();
                    match Gossip::new().join(self.self_member.clone(), &node) {
                        Ok(formed) => self.update(formed, ctx),
                        Err(error) => tracing::error!(%error, "cannot form a cluster"),
                    }
                }
            }
        }
        self.schedule_join(ctx);
    }

    fn schedule_join(&mut self, ctx: &mut Context<Self>) {
        let deadline = self.seed_join.as_ref().and_then(SeedJoin::next_deadline);
        match deadline {
            Some(at) => ctx.start_single_timer(
                JOIN_TIMER,
                at.saturating_duration_since(Instant::now()),
                ClusterMsg::JoinTick,
            ),
            None => {
                ctx.cancel_timer(JOIN_TIMER);
            }
        }
    }

    fn join_event(&mut self, event: SeedJoinEvent, ctx: &mut Context<Self>) {
        let actions = match self.seed_join.as_mut() {
            Some(join) => join.on_event(Instant::now(), event),
            None => Vec::new(),
        };
        self.perform_join(actions, ctx);
    }

    /// Steps the exit gate on `next`, the state about to be adopted, and returns it as this
    /// node may adopt it: not seen by this node while its leave is held for exit blockers,
    /// seen again once the hold ends.
    fn gate_exit(&mut self, next: Gossip, ctx: &mut Context<Self>) -> Gossip {
        let node = self.self_node();
        let leaving = next
            .member(&node)
            .is_some_and(|m| m.status == MemberStatus::Leaving);
        let blockers = &self.shared.exit_blockers;
        let timeout = self.settings.exit_blocker_timeout;
        let (gate, action) =
            self.exit_gate
                .step(leaving, blockers.any_pending(), Instant::now(), timeout);
        self.exit_gate = gate;
        match action {
            Some(ExitGateAction::Hold(timeout)) => {
                let pending = blockers.pending_names();
                tracing::info!(node = %node.address, ?pending, ?timeout, "leaving: the leave waits for the exit blockers");
                ctx.start_single_timer(EXIT_BLOCKER_TIMER, timeout, ClusterMsg::ExitBlockerTimeout);
            }
            Some(ExitGateAction::Release) => {
                tracing::info!(node = %node.address, "exit blockers done: the leave goes on");
                ctx.cancel_timer(EXIT_BLOCKER_TIMER);
            }
            Some(ExitGateAction::TimedOut) => {
                let pending = blockers.pending_names();
                tracing::warn!(node = %node.address, ?pending, ?timeout, "exit blockers still pending at the timeout: the leave goes on without them");
            }
            None => {}
        }
        if gate.is_holding() {
            next.unseen_by(&node)
        } else if action.is_some() && next.member(&node).is_some() {
            next.seen_by(&node)
        } else {
            next
        }
    }

    /// Adopts `next`: publishes the events, updates monitoring and downing, and acts on our
    /// own fate.
    fn update(&mut self, next: Gossip, ctx: &mut Context<Self>) {
        let node = self.self_node();
        let now = Instant::now();
        let next = self.gate_exit(next, ctx);
        let events = diff(&self.gossip, &next, &node);
        self.gossip = next;
        self.shared
            .publish(&self.gossip, &node, &events, ctx.system());
        if self_fate(&self.gossip, &node) == SelfFate::Run {
            self.quarantine_gone_members(&events, ctx);
        }
        self.monitor
            .set_members(monitored_members(&self.gossip), now);
        let is_leader = self
            .gossip
            .leader(&node)
            .is_some_and(|m| m.unique_address() == node);
        let view = DowningView::from_gossip(&self.gossip, &node);
        let actions = self
            .resolver
            .on_event(now, ResolverEvent::Observe { view, is_leader });
        self.perform_downing(actions, ctx);
        match self_fate(&self.gossip, &node) {
            SelfFate::Run => {}
            SelfFate::ShutDownSoon => {
                if !ctx.is_timer_active(SHUTDOWN_TIMER) {
                    let delay = self.settings.gossip_interval * EXITING_SHUTDOWN_ROUNDS;
                    ctx.start_single_timer(SHUTDOWN_TIMER, delay, ClusterMsg::ShutdownTick);
                }
            }
            SelfFate::ShutDownNow => {
                // Tell everyone (our side above all) before going: they may have been
                // downed with us and must learn it.
                let others: Vec<Address> = self
                    .gossip
                    .members()
                    .map(|m| m.address.clone())
                    .filter(|a| a != &node.address)
                    .collect();
                for other in others {
                    let gossip = self.gossip.clone();
                    let from = node.clone();
                    self.send(&other, ClusterMsg::Gossip { from, gossip });
                }
                self.shut_down(ctx);
            }
        }
    }

    /// Closes the remoting association of every member that was downed or removed, so
    /// watchers of actors there receive `Terminated` at once and its frames are dropped.
    ///
    /// A downed member is first sent the state that downs it (it may still be alive and
    /// must learn it, as its frames are dropped from now on). A member removed after a
    /// graceful leave is quarantined only after [`ClusterSettings::quarantine_removed_after`],
    /// so that its last messages (a singleton hand-over) still arrive.
    fn quarantine_gone_members(&mut self, events: &[ClusterEvent], ctx: &mut Context<Self>) {
        for event in events {
            match event {
                ClusterEvent::MemberDowned(member)
                    if member.address != self.self_member.address =>
                {
                    let from = self.self_node();
                    let gossip = self.gossip.clone();
                    self.send(&member.address, ClusterMsg::Gossip { from, gossip });
                    self.remoting
                        .quarantine(&member.address, member.uid, "cluster member downed");
                }
                ClusterEvent::MemberRemoved {
                    member,
                    previous_status,
                } if member.address != self.self_member.address => {
                    let reason = format!("cluster member removed (was {previous_status:?})");
                    if *previous_status == MemberStatus::Exiting {
                        let delay = self.settings.quarantine_removed_after;
                        let (remoting, address, uid) =
                            (self.remoting.clone(), member.address.clone(), member.uid);
                        ctx.system().runtime().spawn(async move {
                            tokio::time::sleep(delay).await;
                            remoting.quarantine(&address, uid, reason);
                        });
                    } else {
                        self.remoting
                            .quarantine(&member.address, member.uid, reason);
                    }
                }
                _ => {}
            }
        }
    }

    fn perform_downing(&mut self, actions: Vec<ResolverAction>, ctx: &mut Context<Self>) {
        let node = self.self_node();
        let mut next = self.gossip.clone();
        let mut changed = false;
        for action in actions {
            match action {
                ResolverAction::Down(nodes) => {
                    for victim in nodes {
                        tracing::info!(node = %victim.address, "downing an unreachable member");
                        if let Ok(downed) = next.down(&victim.address, &node) {
                            next = downed;
                            changed = true;
                        }
                    }
                }
                ResolverAction::AcquireLease => match &self.lease {
                    Some(lease) => ctx.pipe_to_self(lease.acquire(&node.address), |acquired| {
                        ClusterMsg::LeaseResult { acquired }
                    }),
                    None => tracing::warn!("lease-majority without a lease: not downing"),
                },
            }
        }
        match self.resolver.next_deadline() {
            Some(at) => {
                // A deadline already passed means the resolver is waiting for something
                // else (leadership, a state change): check again a round later rather
                // than spinning on a zero delay.
                let delay = match at.saturating_duration_since(Instant::now()) {
                    d if d.is_zero() => self.settings.gossip_interval,
                    d => d,
                };
                ctx.start_single_timer(DOWNING_TIMER, delay, ClusterMsg::DowningTick);
            }
            None => {
                ctx.cancel_timer(DOWNING_TIMER);
            }
        }
        if changed {
            self.update(next, ctx);
        }
    }

    fn shut_down(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        tracing::info!(node = %self.self_member.address, "this node left the cluster or was downed: terminating its actor system");
        ctx.cancel_all_timers();
        let system = ctx.system().clone();
        ctx.system()
            .runtime()
            .spawn(async move { system.terminate().await });
    }

    fn gossip_round(&mut self, ctx: &mut Context<Self>) {
        let node = self.self_node();
        if self.gossip.member(&node).is_none() {
            return;
        }
        let (led, _) = leader_actions(&self.gossip, &node);
        if led != self.gossip {
            self.update(led, ctx);
        }
        let seed = self.seed;
        let rng = self
            .rng
            .get_or_insert_with(|| ChaCha8Rng::seed_from_u64(seed));
        let target = select_gossip_target(&self.gossip, &node, self.settings.prefer_unseen, rng);
        if let Some(target) = target {
            let gossip = self.gossip.clone();
            self.send(&target.address, ClusterMsg::Gossip { from: node, gossip });
        }
    }

    fn heartbeat_round(&mut self, ctx: &mut Context<Self>) {
        let node = self.self_node();
        if self.gossip.member(&node).is_none() {
            return;
        }
        let (targets, changes) = self.monitor.tick(Instant::now());
        let from = self.self_member.address.clone();
        for target in targets {
            self.send(&target, ClusterMsg::Heartbeat { from: from.clone() });
        }
        if !changes.is_empty() {
            let next = apply_reachability(&self.gossip, &node, &changes);
            self.update(next, ctx);
        }
    }
}

impl Actor for Daemon {
    type Msg = ClusterMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        let (join, actions) = SeedJoin::start(
            self.self_member.address.clone(),
            self.settings.seed_nodes.clone(),
            self.settings.seed_join,
            Instant::now(),
        );
        self.seed_join = Some(join);
        self.perform_join(actions, ctx);
        ctx.start_timer_with_fixed_delay(
            GOSSIP_TIMER,
            self.settings.gossip_interval,
            ClusterMsg::GossipTick,
        );
        ctx.start_timer_with_fixed_delay(
            HEARTBEAT_TIMER,
            self.settings.heartbeat_interval,
            ClusterMsg::HeartbeatTick,
        );
        Ok(())
    }

    async fn handle(&mut self, msg: ClusterMsg, ctx: &mut Context<Self>) -> ActorResult {
        if self.shutting_down {
            return Ok(());
        }
        let node = self.self_node();
        match msg {
            ClusterMsg::InitJoin { from } => {
                let reply = init_join_reply(&self.gossip, &node);
                self.send(&from, reply);
            }
            ClusterMsg::InitJoinAck { from } => {
                self.join_event(SeedJoinEvent::InitJoinAck { from }, ctx);
            }
            ClusterMsg::InitJoinNack { from } => {
                self.join_event(SeedJoinEvent::InitJoinNack { from }, ctx);
            }
            ClusterMsg::Join { member } => {
                let to = member.address.clone();
                if let Some(next) = accept_join(&self.gossip, member, &node) {
                    self.update(next, ctx);
                    let gossip = self.gossip.clone();
                    let from = self.self_member.address.clone();
                    self.send(&to, ClusterMsg::Welcome { from, gossip });
                }
            }
            ClusterMsg::Welcome { from, gossip } => {
                if let Some(outcome) = receive_gossip(&self.gossip, &gossip, &node) {
                    self.join_event(SeedJoinEvent::Welcome { from: from.clone() }, ctx);
                    self.update(outcome.gossip, ctx);
                    let gossip = self.gossip.clone();
                    self.send(&from, ClusterMsg::Gossip { from: node, gossip });
                }
            }
            ClusterMsg::Gossip { from, gossip } => {
                if let Some(outcome) = receive_gossip(&self.gossip, &gossip, &node) {
                    let adopted = if self.exit_gate.is_holding() {
                        outcome.gossip.unseen_by(&node)
                    } else {
                        outcome.gossip
                    };
                    if adopted != self.gossip {
                        self.update(adopted, ctx);
                    }
                    // A reply that would tell the sender nothing is not sent. It matters for
                    // a node holding its leave: the sender's state never shows it as having
                    // seen (it does not mark itself), so "not seen by me" is always true; two
                    // holders would otherwise answer each other's gossip for ever.
                    let news = self.gossip != gossip;
                    if outcome.reply && news && !self.shutting_down {
                        let gossip = self.gossip.clone();
                        self.send(&from.address, ClusterMsg::Gossip { from: node, gossip });
                    }
                }
            }
            ClusterMsg::Heartbeat { from } => {
                let me = self.self_member.address.clone();
                self.send(&from, ClusterMsg::HeartbeatRsp { from: me });
            }
            ClusterMsg::HeartbeatRsp { from } => {
                self.monitor.on_response(&from, Instant::now());
            }
            ClusterMsg::Leave { address } => match self.gossip.leave(&address, &node) {
                Ok(next) => self.update(next, ctx),
                Err(error) => tracing::warn!(%error, "cannot leave"),
            },
            ClusterMsg::Down { address } => match self.gossip.down(&address, &node) {
                Ok(next) => self.update(next, ctx),
                Err(error) => tracing::warn!(%error, "cannot down"),
            },
            ClusterMsg::GossipTick => self.gossip_round(ctx),
            ClusterMsg::HeartbeatTick => self.heartbeat_round(ctx),
            ClusterMsg::JoinTick => self.join_event(SeedJoinEvent::Tick, ctx),
            ClusterMsg::DowningTick => {
                let actions = self.resolver.on_event(Instant::now(), ResolverEvent::Tick);
                self.perform_downing(actions, ctx);
            }
            ClusterMsg::ShutdownTick => self.shut_down(ctx),
            ClusterMsg::ExitBlockersChanged | ClusterMsg::ExitBlockerTimeout => {
                let next = self.gate_exit(self.gossip.clone(), ctx);
                if next != self.gossip {
                    // the hold ended: spread that this node has seen the state at once
                    self.update(next, ctx);
                    self.gossip_round(ctx);
                } else if let ExitGate::Holding { deadline } = self.exit_gate
                    && !ctx.is_timer_active(EXIT_BLOCKER_TIMER)
                {
                    // a tick before the deadline (one sent by a peer): keep the timeout armed
                    let left = deadline.saturating_duration_since(Instant::now());
                    ctx.start_single_timer(
                        EXIT_BLOCKER_TIMER,
                        left,
                        ClusterMsg::ExitBlockerTimeout,
                    );
                }
            }
            ClusterMsg::LeaseResult { acquired } => {
                let event = ResolverEvent::LeaseResult { acquired };
                let actions = self.resolver.on_event(Instant::now(), event);
                self.perform_downing(actions, ctx);
            }
        }
        Ok(())
    }
}
