//! The manager's state machine: lease gate, hand-over and the singleton's life, as one pure
//! transition function.
//!
//! [`Machine::on_event`] takes one [`Event`] (a new [`Duty`], a lease result, a hand-over
//! message, a timer, the child's termination) and returns the [`Action`]s the manager actor
//! performs (spawn, stop, acquire, release, send, arm a timer). Nothing here does I/O or reads
//! a clock, so every path is unit tested without actors.
//!
//! The rules:
//! - The singleton may run when the duty is [`Duty::Host`], or [`Duty::TakeOver`] once every
//!   older member that may still run an instance confirmed the hand-over
//!   ([`Event::HandOverDone`]); downed ones must be removed. Removed members drop out of the
//!   duty, so the last removal turns it into `Host`. A timeout alone never lets it run.
//! - Removal is not proof that an instance stopped: after an older member is removed
//!   without having confirmed ([`Event::MemberRemoved`]), nothing starts here until the
//!   removal margin elapsed ([`Event::RemovalMarginElapsed`]) or, for a member that left
//!   (not downed), its late confirmation arrived. The margin never stops a running instance.
//! - Lease results count only for the attempt in flight: attempt numbers carry the
//!   manager's incarnation, a stale grant is released only when nothing is held or in
//!   flight, and a loss that overtakes its own grant turns the grant into a release.
//! - No acquire starts while a release is in flight, including releases an earlier
//!   incarnation of the manager issued ([`Machine::with_releases_in_flight`]): the lease
//!   object is shared, and a release lets go of whatever it holds when it runs.
//! - With a lease: acquire first (one request in flight at a time), retry after the acquire
//!   interval, spawn once held. A lost lease stops the child at once; it is re-acquired
//!   only after the child terminated and only while the singleton may still run. An acquire
//!   result that arrives when the manager no longer wants the lease is released.
//! - Stopping: the child is stopped, then (with a lease still held) the lease released, and
//!   only then does the manager tell a successor [`Event::HandOverDone`]-style that it is done.
//! - A child that stops by itself releases the lease and is not spawned again until the duty
//!   stops allowing it to run (the next host change).

use std::collections::BTreeSet;

use actor_coordination::lease::FencingToken;

use super::host::Duty;
use crate::membership::UniqueAddress;

/// Why the singleton is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// This node may no longer run it (not the host, or leaving).
    NotHost,
    /// The lease was lost.
    LeaseLost,
    /// The singleton stopped by itself.
    SelfStopped,
}

/// Where the manager is in the singleton's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Nothing runs here and nothing is asked of this node.
    Standby,
    /// Next in line: asking the previous hosts to hand over; `requests` rounds sent so far.
    TakingOver {
        /// The previous host (the oldest older member, as in [`Duty::TakeOver`]).
        from: UniqueAddress,
        /// Requests sent so far.
        requests: u32,
    },
    /// Waiting for the lease.
    Acquiring,
    /// The lease was not acquired; waiting for the retry timer.
    AcquireBackoff,
    /// The singleton runs (or is being spawned) with this fencing token.
    Active {
        /// The lease's token, if a lease gates the singleton.
        token: Option<FencingToken>,
    },
    /// The child was told to stop; waiting for its termination.
    Stopping {
        /// Why.
        reason: StopReason,
    },
    /// The child terminated; waiting for the lease release.
    Releasing {
        /// Why the child was stopped.
        reason: StopReason,
    },
    /// The singleton stopped by itself; not spawned again until the next host change.
    SelfStopped,
    /// This node left the host role and has nothing running; `to` was told.
    HandedOver {
        /// The successor told, if any.
        to: Option<UniqueAddress>,
    },
}

impl Phase {
    /// A short name for logs and status queries.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Standby => "standby",
            Phase::TakingOver { .. } => "taking-over",
            Phase::Acquiring => "acquiring-lease",
            Phase::AcquireBackoff => "acquire-backoff",
            Phase::Active { .. } => "active",
            Phase::Stopping { .. } => "stopping",
            Phase::Releasing { .. } => "releasing-lease",
            Phase::SelfStopped => "self-stopped",
            Phase::HandedOver { .. } => "handed-over",
        }
    }
}

/// An input of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The duty computed from the current membership (sent on every membership change).
    Duty(Duty),
    /// The lease acquire that was in flight returned: `Some(token)` if held.
    Acquired {
        /// The attempt's number (see [`Action::Acquire`]).
        attempt: u64,
        /// The token if the lease is held, `None` if not held or failed.
        token: Option<FencingToken>,
    },
    /// The holding obtained by `attempt` was lost.
    LeaseLost {
        /// The attempt that obtained it.
        attempt: u64,
    },
    /// A lease release finished.
    Released,
    /// The manager (re)started while its lease object still holds the lease: a holding
    /// left over from before a restart, whose child the restart already stopped (or, with
    /// nothing in flight, the lease object holds a lease the machine does not track, for
    /// instance after a failed release). The machine releases it before anything else, so it
    /// never runs or confirms a hand-over on a holding it does not know; it leaves it to the
    /// releases in flight, if any.
    LeaseHeldAtStart,
    /// The acquire retry timer fired.
    AcquireRetry,
    /// The hand-over retry timer fired.
    HandOverRetry,
    /// The singleton child terminated.
    ChildTerminated,
    /// `from` asks this node to hand the singleton over.
    HandOverToMe {
        /// The asking node.
        from: UniqueAddress,
    },
    /// The previous host is still stopping its singleton.
    HandOverInProgress {
        /// The previous host.
        from: UniqueAddress,
    },
    /// The previous host has stopped its singleton and released its lease.
    HandOverDone {
        /// The previous host.
        from: UniqueAddress,
    },
    /// An older member with the role that was once Up has been removed from the membership
    /// (fed before the [`Event::Duty`] computed from the same membership).
    MemberRemoved {
        /// The removed member.
        member: UniqueAddress,
        /// Whether its last status seen here was Down.
        was_down: bool,
    },
    /// The removal margin timer fired.
    RemovalMarginElapsed,
}

/// An output of the machine, performed by the manager actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn the singleton child with this token.
    Spawn {
        /// The lease's fencing token, if a lease gates the singleton.
        token: Option<FencingToken>,
    },
    /// Stop the singleton child.
    StopChild,
    /// Start acquiring the lease (report as [`Event::Acquired`] with this attempt).
    Acquire {
        /// The attempt's number, also given to its lost-callback.
        attempt: u64,
    },
    /// Release the lease (report [`Event::Released`]).
    Release,
    /// Arm the acquire retry timer.
    ScheduleAcquireRetry,
    /// Arm the hand-over retry timer.
    ScheduleHandOverRetry,
    /// Send `HandOverToMe` to the manager of `to`.
    SendHandOverToMe {
        /// The previous host.
        to: UniqueAddress,
    },
    /// Send `HandOverInProgress` to the manager of `to`.
    SendHandOverInProgress {
        /// The asking node.
        to: UniqueAddress,
    },
    /// Send `HandOverDone` to the manager of `to`.
    SendHandOverDone {
        /// The successor.
        to: UniqueAddress,
    },
    /// Arm (or re-arm) the removal margin timer (report [`Event::RemovalMarginElapsed`]).
    ScheduleRemovalMargin,
    /// Requests to the previous host are exhausted: wait for its removal (log a warning).
    GaveUpAsking {
        /// The previous host.
        from: UniqueAddress,
    },
}

/// The manager's state: the phase plus what the phase needs to remember.
#[derive(Debug, Clone)]
pub struct Machine {
    phase: Phase,
    duty: Duty,
    has_lease: bool,
    max_requests: u32,
    /// Older members that confirmed the hand-over to this node.
    confirmed: BTreeSet<UniqueAddress>,
    /// The members the current round of `HandOverToMe` requests went to.
    asked: BTreeSet<UniqueAddress>,
    /// Whether removals are waited out ([`Machine::with_removal_margin`]).
    removal_margin: bool,
    /// Removed members whose instance may still be stopping: nothing starts here until the
    /// margin timer fired (or each of them confirmed late).
    margin: BTreeSet<UniqueAddress>,
    /// Members of `margin` that were Down when removed (a late confirmation does not count).
    margin_down: bool,
    /// An earlier incarnation of the manager was waiting out a margin that has not run out
    /// ([`Machine::with_margin_running`]); only [`Event::RemovalMarginElapsed`] ends it.
    margin_resumed: bool,
    /// The attempt in flight, if any: only its result counts.
    in_flight: Option<u64>,
    /// The attempt in flight was reported lost before its grant arrived.
    lost_early: bool,
    /// The attempt whose holding this node has, if any.
    holding: Option<u64>,
    /// How many releases are in flight (each [`Event::Released`] answers one).
    releasing: u32,
    /// A grant for another attempt was ignored while the attempt in flight ran: the lease
    /// object may hold it if that attempt is refused.
    stale_grant: bool,
    next_attempt: u64,
}

/// The attempt number of a holding found at start ([`Event::LeaseHeldAtStart`]); never
/// issued to an acquire.
const HELD_AT_START: u64 = 0;

impl Machine {
    /// A machine in [`Phase::Standby`]; `has_lease` when a lease gates the singleton;
    /// `max_requests` hand-over requests before waiting for removal.
    pub fn new(has_lease: bool, max_requests: u32) -> Self {
        Machine {
            phase: Phase::Standby,
            duty: Duty::Standby { host: None },
            has_lease,
            max_requests: max_requests.max(1),
            confirmed: BTreeSet::new(),
            asked: BTreeSet::new(),
            removal_margin: false,
            margin: BTreeSet::new(),
            margin_down: false,
            margin_resumed: false,
            in_flight: None,
            lost_early: false,
            holding: None,
            releasing: 0,
            stale_grant: false,
            next_attempt: 1,
        }
    }

    /// Numbers this machine's acquire attempts in the range of manager `incarnation`, so a
    /// result piped to a restarted manager (results of an earlier incarnation still arrive)
    /// is never taken for one of its own attempts. Attempt numbers are
    /// `incarnation << 32 | n` with `n` counting from 1.
    pub fn with_incarnation(mut self, incarnation: u32) -> Self {
        self.next_attempt = (u64::from(incarnation) << 32) | 1;
        self
    }

    /// Counts `releases` lease releases that earlier incarnations of the manager issued and
    /// whose [`Event::Released`] has not been handled yet: the lease object is shared and a
    /// release lets go of whatever it holds, so nothing is acquired until they are answered
    /// (each [`Event::Released`] answers one, whichever incarnation issued it), and a holding
    /// found at start ([`Event::LeaseHeldAtStart`]) is left to them.
    pub fn with_releases_in_flight(mut self, releases: u32) -> Self {
        self.releasing = releases;
        self
    }

    /// Waits out a removal margin: after an older member that did not confirm the hand-over
    /// is removed ([`Event::MemberRemoved`]), nothing starts here until
    /// [`Event::RemovalMarginElapsed`] (the actor arms the timer on
    /// [`Action::ScheduleRemovalMargin`]).
    pub fn with_removal_margin(mut self, enabled: bool) -> Self {
        self.removal_margin = enabled;
        self
    }

    /// Resumes a removal margin that an earlier incarnation of the manager was waiting out
    /// (its members are not known here, so no late confirmation ends it): nothing starts
    /// until [`Event::RemovalMarginElapsed`].
    pub fn with_margin_running(mut self, running: bool) -> Self {
        self.margin_resumed = running;
        self
    }

    /// Whether a removal margin is being waited out.
    pub fn in_removal_margin(&self) -> bool {
        !self.margin.is_empty() || self.margin_resumed
    }

    /// The attempt whose holding this node has, if any (the number its lost-callback
    /// reports).
    pub fn holding_attempt(&self) -> Option<u64> {
        self.holding
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The current duty.
    pub fn duty(&self) -> &Duty {
        &self.duty
    }

    /// Whether the lease is held (by this manager's last successful acquire).
    pub fn holds_lease(&self) -> bool {
        self.holding.is_some()
    }

    /// Whether one release is in flight and is all this machine waits for about the lease
    /// (nothing held, no acquire and no other release in flight): a holding the lease object
    /// still reports when that release failed is the one it was meant to let go.
    pub fn only_releasing(&self) -> bool {
        self.releasing == 1 && self.in_flight.is_none() && self.holding.is_none()
    }

    /// Whether a singleton not yet running may start here now: it may run, and no removal
    /// margin is being waited out (a margin never stops one that runs).
    fn may_start(&self) -> bool {
        !self.in_removal_margin() && self.may_run()
    }

    /// Whether the singleton may run here now (by the duty and the confirmations).
    pub fn may_run(&self) -> bool {
        match &self.duty {
            Duty::Host => true,
            Duty::TakeOver {
                confirm, removal, ..
            } => confirm
                .iter()
                .chain(removal)
                .all(|m| self.confirmed.contains(m)),
            Duty::HandOver { .. } | Duty::Standby { .. } => false,
        }
    }

    /// Whether nothing runs, is held or is in flight here: no child (running or stopping),
    /// no lease held, no acquire or release in flight. A leaving node whose machine is
    /// quiet has handed over (its successor was told when there is one).
    pub fn is_quiet(&self) -> bool {
        self.quiet()
    }

    fn quiet(&self) -> bool {
        self.in_flight.is_none()
            && self.releasing == 0
            && self.holding.is_none()
            && matches!(
                self.phase,
                Phase::Standby
                    | Phase::TakingOver { .. }
                    | Phase::AcquireBackoff
                    | Phase::SelfStopped
                    | Phase::HandedOver { .. }
            )
    }

    /// The members of a take-over that have not confirmed yet, oldest first.
    fn unconfirmed(&self) -> Vec<UniqueAddress> {
        match &self.duty {
            Duty::TakeOver { confirm, .. } => confirm
                .iter()
                .filter(|m| !self.confirmed.contains(*m))
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Applies `event`; returns the actions to perform, in order.
    pub fn on_event(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Duty(duty) => {
                // confirmations count while their member is still one to wait for; one
                // from a member downed after confirming still proves its instance stopped
                // (a leaving member never hosts again), so it stays while the member
                // waits for removal. A new one from a member already Down is not taken:
                // Down members are not in `confirm`.
                match &duty {
                    Duty::TakeOver {
                        confirm, removal, ..
                    } => self
                        .confirmed
                        .retain(|m| confirm.contains(m) || removal.contains(m)),
                    _ => self.confirmed.clear(),
                }
                self.duty = duty;
                self.reconcile(&mut out);
            }
            Event::HandOverDone { from } if self.margin.contains(&from) => {
                // a confirmation that arrives after its sender's removal still proves its
                // instance stopped (a downed sender's does not: it was never asked)
                if !self.margin_down {
                    self.margin.remove(&from);
                    self.reconcile(&mut out);
                }
            }
            Event::MemberRemoved { member, was_down } => {
                // a member that confirmed has stopped, whether it was then downed or not
                if self.removal_margin && !self.confirmed.contains(&member) {
                    self.margin.insert(member);
                    self.margin_down |= was_down;
                    out.push(Action::ScheduleRemovalMargin);
                }
            }
            Event::RemovalMarginElapsed => {
                if self.in_removal_margin() {
                    self.margin.clear();
                    self.margin_down = false;
                    self.margin_resumed = false;
                    self.reconcile(&mut out);
                }
            }
            Event::HandOverDone { from } => {
                if matches!(&self.duty, Duty::TakeOver { confirm, .. } if confirm.contains(&from)) {
                    self.confirmed.insert(from);
                    self.reconcile(&mut out);
                }
            }
            Event::HandOverInProgress { .. } => {}
            Event::HandOverToMe { from } => {
                if self.quiet() && !self.may_run() {
                    out.push(Action::SendHandOverDone { to: from });
                } else {
                    out.push(Action::SendHandOverInProgress { to: from });
                }
            }
            Event::HandOverRetry => {
                let unconfirmed = self.unconfirmed();
                if let Phase::TakingOver { requests, .. } = &mut self.phase
                    && !unconfirmed.is_empty()
                {
                    if *requests < self.max_requests {
                        *requests += 1;
                        for to in unconfirmed {
                            out.push(Action::SendHandOverToMe { to });
                        }
                        out.push(Action::ScheduleHandOverRetry);
                    } else {
                        for from in unconfirmed {
                            out.push(Action::GaveUpAsking { from });
                        }
                    }
                }
            }
            Event::AcquireRetry => {
                if self.phase == Phase::AcquireBackoff {
                    if self.may_run() {
                        self.start_acquire(&mut out);
                    } else {
                        self.phase = Phase::Standby;
                        self.reconcile(&mut out);
                    }
                }
            }
            Event::Acquired { attempt, token } => {
                if self.in_flight != Some(attempt) {
                    // not the request in flight: a duplicate, or a result piped to a
                    // restarted manager. The lease object is shared, so releasing here
                    // would drop the holding a running child depends on; an acquire in
                    // flight reports the true state if it ran after this one; if it is
                    // refused, this grant may still be held, so it is let go then. A grant
                    // nobody tracks is let go at once.
                    if token.is_some() && self.holding.is_none() {
                        if self.in_flight.is_none() {
                            self.release(&mut out);
                        } else {
                            self.stale_grant = true;
                        }
                    }
                    return out;
                }
                self.in_flight = None;
                let lost_early = std::mem::take(&mut self.lost_early);
                let stale_grant = std::mem::take(&mut self.stale_grant);
                match token {
                    Some(_) if lost_early => {
                        // the loss overtook its grant: never run on it
                        self.release(&mut out);
                        self.after_refusal(&mut out);
                    }
                    Some(token) if self.phase == Phase::Acquiring && self.may_run() => {
                        self.holding = Some(attempt);
                        self.phase = Phase::Active { token: Some(token) };
                        out.push(Action::Spawn { token: Some(token) });
                    }
                    Some(_) => {
                        // a late grant: nobody here wants it any more
                        self.release(&mut out);
                        self.reconcile(&mut out);
                    }
                    None => {
                        if stale_grant {
                            self.release(&mut out);
                        }
                        self.after_refusal(&mut out);
                    }
                }
            }
            Event::LeaseLost { attempt } => {
                if self.holding == Some(attempt) {
                    self.holding = None;
                    match self.phase {
                        Phase::Active { .. } => {
                            self.phase = Phase::Stopping {
                                reason: StopReason::LeaseLost,
                            };
                            out.push(Action::StopChild);
                        }
                        Phase::Releasing { reason } => self.finish_stop(reason, &mut out),
                        _ => {}
                    }
                } else if self.in_flight == Some(attempt) {
                    self.lost_early = true;
                }
            }
            Event::LeaseHeldAtStart => {
                if self.holding.is_none() && self.releasing == 0 && self.in_flight.is_none() {
                    // a singleton that stopped by itself stays down after the release
                    let reason = match self.phase {
                        Phase::SelfStopped => StopReason::SelfStopped,
                        _ => StopReason::NotHost,
                    };
                    self.holding = Some(HELD_AT_START);
                    self.phase = Phase::Releasing { reason };
                    self.release(&mut out);
                }
            }
            Event::ChildTerminated => match self.phase {
                Phase::Stopping { reason } => self.after_child(reason, &mut out),
                Phase::Active { .. } => self.after_child(StopReason::SelfStopped, &mut out),
                _ => {}
            },
            Event::Released => {
                self.releasing = self.releasing.saturating_sub(1);
                if self.releasing > 0 {
                    // another release is still in flight: its answer goes on
                    return out;
                }
                if let Phase::Releasing { reason } = self.phase {
                    self.finish_stop(reason, &mut out);
                } else {
                    self.reconcile(&mut out);
                }
            }
        }
        out
    }

    fn after_child(&mut self, reason: StopReason, out: &mut Vec<Action>) {
        if self.holding.is_some() {
            self.phase = Phase::Releasing { reason };
            self.release(out);
        } else {
            self.finish_stop(reason, out);
        }
    }

    fn finish_stop(&mut self, reason: StopReason, out: &mut Vec<Action>) {
        self.phase = match reason {
            StopReason::SelfStopped => Phase::SelfStopped,
            StopReason::LeaseLost | StopReason::NotHost => Phase::Standby,
        };
        self.reconcile(out);
    }

    /// The acquire in flight came back without a usable holding.
    fn after_refusal(&mut self, out: &mut Vec<Action>) {
        if self.phase == Phase::Acquiring && self.may_run() {
            self.phase = Phase::AcquireBackoff;
            out.push(Action::ScheduleAcquireRetry);
        } else {
            self.reconcile(out);
        }
    }

    fn release(&mut self, out: &mut Vec<Action>) {
        self.holding = None;
        self.releasing += 1;
        out.push(Action::Release);
    }

    fn start_acquire(&mut self, out: &mut Vec<Action>) {
        if self.releasing > 0 && self.in_flight.is_none() {
            // a release still queued could drop the new holding: the last `Released`
            // reconciles again
            self.phase = Phase::Standby;
            return;
        }
        self.phase = Phase::Acquiring;
        if self.in_flight.is_none() {
            let attempt = self.next_attempt;
            self.next_attempt += 1;
            self.in_flight = Some(attempt);
            self.lost_early = false;
            out.push(Action::Acquire { attempt });
        }
    }

    fn start(&mut self, out: &mut Vec<Action>) {
        if self.has_lease {
            self.start_acquire(out);
        } else {
            self.phase = Phase::Active { token: None };
            out.push(Action::Spawn { token: None });
        }
    }

    /// Brings the phase in line with the duty.
    fn reconcile(&mut self, out: &mut Vec<Action>) {
        let may_run = self.may_run();
        match self.phase.clone() {
            // stopping or releasing: the completion reconciles again
            Phase::Stopping { .. } | Phase::Releasing { .. } => {}
            Phase::Active { .. } => {
                if !may_run {
                    self.phase = Phase::Stopping {
                        reason: StopReason::NotHost,
                    };
                    out.push(Action::StopChild);
                }
            }
            // running, about to, or stopped by itself: nothing to do while it may run
            Phase::Acquiring | Phase::AcquireBackoff | Phase::SelfStopped if may_run => {}
            Phase::Standby | Phase::TakingOver { .. } | Phase::HandedOver { .. }
                if self.may_start() =>
            {
                self.start(out)
            }
            // not allowed to run, and nothing running: standby, take-over or hand-over
            Phase::Acquiring
            | Phase::AcquireBackoff
            | Phase::SelfStopped
            | Phase::Standby
            | Phase::TakingOver { .. }
            | Phase::HandedOver { .. } => self.idle(out),
        }
    }

    /// The phase when the singleton may not run here and nothing runs.
    fn idle(&mut self, out: &mut Vec<Action>) {
        match self.duty.clone() {
            Duty::TakeOver { from, .. } => {
                let unconfirmed = self.unconfirmed();
                let asking = matches!(&self.phase, Phase::TakingOver { from: f, .. } if *f == from)
                    && unconfirmed.iter().all(|m| self.asked.contains(m));
                if !asking {
                    // a new round: the first request to every member still to confirm
                    self.phase = Phase::TakingOver { from, requests: 1 };
                    self.asked = unconfirmed.iter().cloned().collect();
                    if !unconfirmed.is_empty() {
                        for to in unconfirmed {
                            out.push(Action::SendHandOverToMe { to });
                        }
                        out.push(Action::ScheduleHandOverRetry);
                    }
                }
            }
            Duty::HandOver { to } => {
                if self.in_flight.is_some() || self.releasing > 0 || self.holding.is_some() {
                    // a grant still in flight is released when it arrives; tell the
                    // successor only once nothing is held
                    self.phase = Phase::Standby;
                    return;
                }
                let told = matches!(&self.phase, Phase::HandedOver { to: t } if *t == to);
                if !told {
                    if let Some(to) = &to {
                        out.push(Action::SendHandOverDone { to: to.clone() });
                    }
                    self.phase = Phase::HandedOver { to };
                }
            }
            Duty::Host | Duty::Standby { .. } => self.phase = Phase::Standby,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Address;

    fn node(name: &str) -> UniqueAddress {
        UniqueAddress::new(Address::logical("sys", name).expect("address"), 1)
    }

    fn token(n: u64) -> Option<FencingToken> {
        Some(FencingToken::new(n))
    }

    // S2: a grant that is not the attempt in flight (a duplicate, or one piped to a
    // restarted manager) must never release the holding the running child depends on
    #[test]
    fn a_stale_grant_while_holding_is_ignored_not_released() {
        let mut m = Machine::new(true, 3);
        let first = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: first,
                token: token(1)
            }),
            vec![Action::Spawn { token: token(1) }]
        );
        for stale in [first, first + 1, 0] {
            assert_eq!(
                m.on_event(Event::Acquired {
                    attempt: stale,
                    token: token(1)
                }),
                vec![],
                "stale grant {stale}"
            );
            assert!(m.holds_lease());
            assert!(matches!(m.phase(), Phase::Active { .. }));
        }
    }

    // S2 variant: a stale "not held" must not end the acquire in flight (else a retry
    // issues a second concurrent acquire)
    #[test]
    fn a_stale_refusal_does_not_end_the_acquire_in_flight() {
        let mut m = Machine::new(true, 3);
        let first = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: first + 41,
                token: None
            }),
            vec![]
        );
        assert_eq!(m.phase(), &Phase::Acquiring);
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: first,
                token: token(2)
            }),
            vec![Action::Spawn { token: token(2) }]
        );
    }

    // S2 (b): a restarted manager's attempts never reuse an id of an earlier incarnation
    #[test]
    fn attempt_ids_are_unique_across_manager_incarnations() {
        let mut seen = std::collections::BTreeSet::new();
        for incarnation in 0..3 {
            let mut m = Machine::new(true, 3).with_incarnation(incarnation);
            let a = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
            m.on_event(Event::Acquired {
                attempt: a,
                token: None,
            });
            let b = acquire_of(&m.on_event(Event::AcquireRetry));
            assert!(seen.insert(a) && seen.insert(b), "{seen:?}");
        }
    }

    // S2 (d): a restarted manager whose lease is still held releases it before anything
    #[test]
    fn a_manager_that_starts_holding_the_lease_releases_it_first() {
        let mut m = Machine::new(true, 3);
        assert_eq!(m.on_event(Event::LeaseHeldAtStart), vec![Action::Release]);
        // host meanwhile: nothing until the release finished
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        let actions = m.on_event(Event::Released);
        assert!(
            matches!(actions[..], [Action::Acquire { .. }]),
            "{actions:?}"
        );
        // a leaving node that started holding confirms only after the release
        let mut m = Machine::new(true, 3);
        m.on_event(Event::LeaseHeldAtStart);
        let b = node("b");
        let hand_over = Duty::HandOver {
            to: Some(b.clone()),
        };
        assert_eq!(m.on_event(Event::Duty(hand_over)), vec![]);
        assert_eq!(
            m.on_event(Event::HandOverToMe { from: b.clone() }),
            vec![Action::SendHandOverInProgress { to: b.clone() }]
        );
        assert_eq!(
            m.on_event(Event::Released),
            vec![Action::SendHandOverDone { to: b }]
        );
    }

    // S3: the loss of an attempt that arrives before its own grant turns the grant into a
    // release plus a backoff; the singleton never runs on a lease already lost
    #[test]
    fn a_loss_that_overtakes_its_grant_releases_and_backs_off() {
        let mut m = Machine::new(true, 3);
        let a = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
        assert_eq!(m.on_event(Event::LeaseLost { attempt: a }), vec![]);
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: a,
                token: token(5)
            }),
            vec![Action::Release, Action::ScheduleAcquireRetry]
        );
        assert!(!m.holds_lease());
        assert_eq!(m.phase(), &Phase::AcquireBackoff);
        assert_eq!(m.on_event(Event::Released), vec![]);
        let b = acquire_of(&m.on_event(Event::AcquireRetry));
        assert_ne!(a, b);
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: b,
                token: token(6)
            }),
            vec![Action::Spawn { token: token(6) }]
        );
    }

    fn take_over(confirm: &[&str], removal: &[&str]) -> Duty {
        let mut all: Vec<&str> = confirm.iter().chain(removal).copied().collect();
        all.sort();
        Duty::TakeOver {
            from: node(all[0]),
            confirm: confirm.iter().map(|n| node(n)).collect(),
            removal: removal.iter().map(|n| node(n)).collect(),
        }
    }

    // S1: every older member that may run an instance must confirm; one confirmation (from
    // the old host that handed over long ago) is not enough
    #[test]
    fn a_take_over_waits_for_every_older_member_to_confirm() {
        let mut m = Machine::new(false, 3);
        let (x, y) = (node("x"), node("y"));
        assert_eq!(
            m.on_event(Event::Duty(take_over(&["x", "y"], &[]))),
            vec![
                Action::SendHandOverToMe { to: x.clone() },
                Action::SendHandOverToMe { to: y.clone() },
                Action::ScheduleHandOverRetry
            ]
        );
        assert_eq!(m.on_event(Event::HandOverDone { from: x.clone() }), vec![]);
        // retries go to the member still to confirm only
        assert_eq!(
            m.on_event(Event::HandOverRetry),
            vec![
                Action::SendHandOverToMe { to: y.clone() },
                Action::ScheduleHandOverRetry
            ]
        );
        assert_eq!(
            m.on_event(Event::HandOverDone { from: y.clone() }),
            vec![Action::Spawn { token: None }]
        );
        // x is removed: y's confirmation still holds, no bounce
        assert_eq!(m.on_event(Event::Duty(take_over(&["y"], &[]))), vec![]);
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        assert!(matches!(m.phase(), Phase::Active { .. }));
    }

    // N1: a member that confirmed the hand-over and is then downed (still Leaving or
    // Exiting) has stopped: its confirmation keeps counting, the running singleton is not
    // stopped, and its removal starts no margin
    #[test]
    fn a_confirmed_member_that_is_then_downed_does_not_stop_the_successor() {
        for has_lease in [false, true] {
            let mut m = Machine::new(has_lease, 3).with_removal_margin(true);
            let x = node("x");
            m.on_event(Event::Duty(take_over(&["x"], &[])));
            let started = m.on_event(Event::HandOverDone { from: x.clone() });
            if has_lease {
                let attempt = acquire_of(&started);
                assert_eq!(
                    m.on_event(Event::Acquired {
                        attempt,
                        token: token(1)
                    }),
                    vec![Action::Spawn { token: token(1) }]
                );
            } else {
                assert_eq!(started, vec![Action::Spawn { token: None }]);
            }
            // x is downed while still leaving
            assert_eq!(m.on_event(Event::Duty(take_over(&[], &["x"]))), vec![]);
            assert!(
                matches!(m.phase(), Phase::Active { .. }),
                "lease {has_lease}"
            );
            assert!(m.may_run());
            assert_eq!(
                m.on_event(Event::MemberRemoved {
                    member: x.clone(),
                    was_down: true
                }),
                vec![]
            );
            assert!(!m.in_removal_margin());
            assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
            assert!(
                matches!(m.phase(), Phase::Active { .. }),
                "lease {has_lease}"
            );
        }
    }

    // N1: a member that is already Down when its confirmation arrives is not believed
    #[test]
    fn a_confirmation_from_a_member_already_down_does_not_count() {
        let mut m = Machine::new(false, 3).with_removal_margin(true);
        let x = node("x");
        assert_eq!(m.on_event(Event::Duty(take_over(&[], &["x"]))), vec![]);
        assert_eq!(m.on_event(Event::HandOverDone { from: x.clone() }), vec![]);
        assert!(!m.may_run());
        assert_eq!(
            m.on_event(Event::MemberRemoved {
                member: x,
                was_down: true
            }),
            vec![Action::ScheduleRemovalMargin]
        );
    }

    #[test]
    fn a_member_that_starts_leaving_during_a_take_over_is_asked_at_once() {
        let mut m = Machine::new(false, 3);
        let (x, y) = (node("x"), node("y"));
        m.on_event(Event::Duty(take_over(&["x"], &[])));
        assert_eq!(
            m.on_event(Event::Duty(take_over(&["x", "y"], &[]))),
            vec![
                Action::SendHandOverToMe { to: x.clone() },
                Action::SendHandOverToMe { to: y.clone() },
                Action::ScheduleHandOverRetry
            ]
        );
        // a downed member is not asked; only its removal counts
        assert_eq!(m.on_event(Event::HandOverDone { from: x }), vec![]);
        assert_eq!(
            m.on_event(Event::HandOverDone { from: y }),
            vec![Action::Spawn { token: None }]
        );
        let mut m = Machine::new(false, 3);
        assert_eq!(m.on_event(Event::Duty(take_over(&[], &["y"]))), vec![]);
        assert_eq!(m.on_event(Event::HandOverDone { from: node("y") }), vec![]);
        assert_eq!(m.on_event(Event::HandOverRetry), vec![]);
        assert_eq!(
            m.on_event(Event::Duty(Duty::Host)),
            vec![Action::Spawn { token: None }]
        );
    }

    // S4: removal is not proof the old instance stopped
    #[test]
    fn an_unconfirmed_removal_is_waited_out_before_starting() {
        let mut m = Machine::new(false, 3).with_removal_margin(true);
        let x = node("x");
        m.on_event(Event::Duty(take_over(&["x"], &[])));
        assert_eq!(
            m.on_event(Event::MemberRemoved {
                member: x.clone(),
                was_down: false
            }),
            vec![Action::ScheduleRemovalMargin]
        );
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        assert!(m.in_removal_margin());
        // its confirmation arrives late: it has stopped, start now
        assert_eq!(
            m.on_event(Event::HandOverDone { from: x }),
            vec![Action::Spawn { token: None }]
        );
    }

    #[test]
    fn a_downed_member_s_removal_is_waited_out_in_full() {
        let mut m = Machine::new(false, 3).with_removal_margin(true);
        let y = node("y");
        m.on_event(Event::Duty(take_over(&[], &["y"])));
        assert_eq!(
            m.on_event(Event::MemberRemoved {
                member: y.clone(),
                was_down: true
            }),
            vec![Action::ScheduleRemovalMargin]
        );
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        assert_eq!(m.on_event(Event::HandOverDone { from: y }), vec![]);
        assert_eq!(
            m.on_event(Event::RemovalMarginElapsed),
            vec![Action::Spawn { token: None }]
        );
    }

    #[test]
    fn a_confirmed_removal_needs_no_margin_and_a_margin_never_stops_a_running_one() {
        let mut m = Machine::new(false, 3).with_removal_margin(true);
        let x = node("x");
        m.on_event(Event::Duty(take_over(&["x"], &[])));
        assert_eq!(
            m.on_event(Event::HandOverDone { from: x.clone() }),
            vec![Action::Spawn { token: None }]
        );
        assert_eq!(
            m.on_event(Event::MemberRemoved {
                member: x,
                was_down: false
            }),
            vec![]
        );
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        // a stray unconfirmed removal while running does not stop the instance
        m.on_event(Event::MemberRemoved {
            member: node("w"),
            was_down: true,
        });
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        assert!(matches!(m.phase(), Phase::Active { .. }));
        // without a margin configured, removals do not wait
        let mut m = Machine::new(false, 3);
        m.on_event(Event::Duty(take_over(&[], &["y"])));
        assert_eq!(
            m.on_event(Event::MemberRemoved {
                member: node("y"),
                was_down: true
            }),
            vec![]
        );
        assert_eq!(
            m.on_event(Event::Duty(Duty::Host)),
            vec![Action::Spawn { token: None }]
        );
    }

    // S5: a refusal that arrives after the duty changed reconciles at once (a leaving host
    // confirms without waiting for the successor's next request)
    #[test]
    fn a_leaving_host_whose_acquire_is_refused_confirms_at_once() {
        let mut m = Machine::new(true, 3);
        let a = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
        let b = node("b");
        assert_eq!(
            m.on_event(Event::Duty(Duty::HandOver {
                to: Some(b.clone())
            })),
            vec![]
        );
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: a,
                token: None
            }),
            vec![Action::SendHandOverDone { to: b }]
        );
    }

    #[test]
    fn a_spawn_that_fails_for_good_counts_as_a_self_stop() {
        let mut m = Machine::new(true, 3);
        let a = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
        m.on_event(Event::Acquired {
            attempt: a,
            token: token(1),
        });
        // the manager feeds ChildTerminated when the spawn failed for good
        assert_eq!(m.on_event(Event::ChildTerminated), vec![Action::Release]);
        assert_eq!(m.on_event(Event::Released), vec![]);
        assert_eq!(m.phase(), &Phase::SelfStopped);
        assert!(!m.holds_lease());
    }

    fn acquire_of(actions: &[Action]) -> u64 {
        match actions {
            [Action::Acquire { attempt }] => *attempt,
            other => panic!("expected one acquire: {other:?}"),
        }
    }

    #[test]
    fn without_a_lease_the_host_spawns_and_a_standby_stops() {
        let mut m = Machine::new(false, 3);
        assert_eq!(
            m.on_event(Event::Duty(Duty::Host)),
            vec![Action::Spawn { token: None }]
        );
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        assert_eq!(
            m.on_event(Event::Duty(Duty::Standby {
                host: Some(node("b"))
            })),
            vec![Action::StopChild]
        );
        assert_eq!(m.on_event(Event::ChildTerminated), vec![]);
        assert_eq!(m.phase(), &Phase::Standby);
    }

    #[test]
    fn with_a_lease_the_host_acquires_then_spawns_with_the_token() {
        let mut m = Machine::new(true, 3);
        assert_eq!(
            m.on_event(Event::Duty(Duty::Host)),
            vec![Action::Acquire { attempt: 1 }]
        );
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: 1,
                token: None
            }),
            vec![Action::ScheduleAcquireRetry]
        );
        assert_eq!(
            m.on_event(Event::AcquireRetry),
            vec![Action::Acquire { attempt: 2 }]
        );
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: 2,
                token: token(4)
            }),
            vec![Action::Spawn { token: token(4) }]
        );
        assert!(m.holds_lease());
    }

    #[test]
    fn a_lost_lease_stops_at_once_and_reacquires_after_the_child_terminated() {
        let mut m = Machine::new(true, 3);
        m.on_event(Event::Duty(Duty::Host));
        m.on_event(Event::Acquired {
            attempt: 1,
            token: token(1),
        });
        assert_eq!(
            m.on_event(Event::LeaseLost { attempt: 1 }),
            vec![Action::StopChild]
        );
        // nothing is acquired while the child still runs
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        assert_eq!(
            m.on_event(Event::ChildTerminated),
            vec![Action::Acquire { attempt: 2 }]
        );
    }

    #[test]
    fn a_stale_loss_is_ignored() {
        let mut m = Machine::new(true, 3);
        m.on_event(Event::Duty(Duty::Host));
        m.on_event(Event::Acquired {
            attempt: 1,
            token: token(1),
        });
        assert_eq!(m.on_event(Event::LeaseLost { attempt: 7 }), vec![]);
        assert!(matches!(m.phase(), Phase::Active { .. }));
    }

    #[test]
    fn a_late_grant_after_losing_the_host_role_is_released() {
        let mut m = Machine::new(true, 3);
        m.on_event(Event::Duty(Duty::Host));
        assert_eq!(
            m.on_event(Event::Duty(Duty::Standby { host: None })),
            vec![]
        );
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: 1,
                token: token(3)
            }),
            vec![Action::Release]
        );
        assert!(!m.holds_lease());
        assert_eq!(m.phase(), &Phase::Standby);
    }

    #[test]
    fn one_acquire_in_flight_at_a_time() {
        let mut m = Machine::new(true, 3);
        m.on_event(Event::Duty(Duty::Host));
        m.on_event(Event::Duty(Duty::Standby { host: None }));
        // host again while the first acquire is still in flight: no second request
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: 1,
                token: token(2)
            }),
            vec![Action::Spawn { token: token(2) }]
        );
    }

    #[test]
    fn a_self_stopped_singleton_releases_and_stays_down_until_the_next_host_change() {
        let mut m = Machine::new(true, 3);
        m.on_event(Event::Duty(Duty::Host));
        m.on_event(Event::Acquired {
            attempt: 1,
            token: token(1),
        });
        assert_eq!(m.on_event(Event::ChildTerminated), vec![Action::Release]);
        assert_eq!(m.on_event(Event::Released), vec![]);
        assert_eq!(m.phase(), &Phase::SelfStopped);
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        m.on_event(Event::Duty(Duty::Standby { host: None }));
        assert_eq!(
            m.on_event(Event::Duty(Duty::Host)),
            vec![Action::Acquire { attempt: 2 }]
        );
    }

    #[test]
    fn take_over_waits_for_confirmation_never_for_a_timeout() {
        let mut m = Machine::new(false, 2);
        let a = node("a");
        assert_eq!(
            m.on_event(Event::Duty(take_over(&["a"], &[]))),
            vec![
                Action::SendHandOverToMe { to: a.clone() },
                Action::ScheduleHandOverRetry
            ]
        );
        assert_eq!(
            m.on_event(Event::HandOverRetry),
            vec![
                Action::SendHandOverToMe { to: a.clone() },
                Action::ScheduleHandOverRetry
            ]
        );
        assert_eq!(
            m.on_event(Event::HandOverRetry),
            vec![Action::GaveUpAsking { from: a.clone() }]
        );
        assert_eq!(
            m.on_event(Event::HandOverInProgress { from: a.clone() }),
            vec![]
        );
        // a confirmation from someone else does not count
        assert_eq!(m.on_event(Event::HandOverDone { from: node("x") }), vec![]);
        assert_eq!(
            m.on_event(Event::HandOverDone { from: a.clone() }),
            vec![Action::Spawn { token: None }]
        );
        // the old host is removed: still running
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
    }

    #[test]
    fn removal_of_the_previous_host_lets_the_take_over_start() {
        let mut m = Machine::new(false, 2);
        m.on_event(Event::Duty(take_over(&["a"], &[])));
        assert_eq!(
            m.on_event(Event::Duty(Duty::Host)),
            vec![Action::Spawn { token: None }]
        );
    }

    #[test]
    fn a_leaving_host_stops_releases_then_confirms() {
        let mut m = Machine::new(true, 3);
        m.on_event(Event::Duty(Duty::Host));
        m.on_event(Event::Acquired {
            attempt: 1,
            token: token(1),
        });
        let b = node("b");
        assert_eq!(
            m.on_event(Event::Duty(Duty::HandOver {
                to: Some(b.clone())
            })),
            vec![Action::StopChild]
        );
        assert_eq!(
            m.on_event(Event::HandOverToMe { from: b.clone() }),
            vec![Action::SendHandOverInProgress { to: b.clone() }]
        );
        assert_eq!(m.on_event(Event::ChildTerminated), vec![Action::Release]);
        assert_eq!(
            m.on_event(Event::HandOverToMe { from: b.clone() }),
            vec![Action::SendHandOverInProgress { to: b.clone() }]
        );
        assert_eq!(
            m.on_event(Event::Released),
            vec![Action::SendHandOverDone { to: b.clone() }]
        );
        assert_eq!(
            m.on_event(Event::HandOverToMe { from: b.clone() }),
            vec![Action::SendHandOverDone { to: b }]
        );
    }

    #[test]
    fn a_standby_that_never_ran_confirms_at_once() {
        let mut m = Machine::new(false, 3);
        m.on_event(Event::Duty(Duty::Standby { host: None }));
        let b = node("b");
        assert_eq!(
            m.on_event(Event::HandOverToMe { from: b.clone() }),
            vec![Action::SendHandOverDone { to: b }]
        );
    }

    #[test]
    fn the_host_does_not_confirm_while_it_still_may_run() {
        let mut m = Machine::new(false, 3);
        m.on_event(Event::Duty(Duty::Host));
        let b = node("b");
        assert_eq!(
            m.on_event(Event::HandOverToMe { from: b.clone() }),
            vec![Action::SendHandOverInProgress { to: b }]
        );
    }

    #[test]
    fn a_leaving_host_with_an_acquire_in_flight_confirms_after_releasing_the_late_grant() {
        let mut m = Machine::new(true, 3);
        m.on_event(Event::Duty(Duty::Host));
        let b = node("b");
        assert_eq!(
            m.on_event(Event::Duty(Duty::HandOver {
                to: Some(b.clone())
            })),
            vec![]
        );
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: 1,
                token: token(1)
            }),
            vec![Action::Release]
        );
        assert_eq!(
            m.on_event(Event::HandOverToMe { from: b.clone() }),
            vec![Action::SendHandOverInProgress { to: b.clone() }]
        );
        assert_eq!(
            m.on_event(Event::Released),
            vec![Action::SendHandOverDone { to: b }]
        );
    }

    // N3: a stale grant released while the release found at start is still in flight: each
    // `Released` answers one release, and no acquire starts before the last one finished
    #[test]
    fn no_acquire_starts_while_a_second_release_is_in_flight() {
        let mut m = Machine::new(true, 3).with_incarnation(1);
        assert_eq!(m.on_event(Event::LeaseHeldAtStart), vec![Action::Release]);
        // a grant piped to the previous incarnation lands: let go as well
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: 1,
                token: token(3)
            }),
            vec![Action::Release]
        );
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        // the first release finished, the second has not: no acquire may overtake it
        assert_eq!(m.on_event(Event::Released), vec![]);
        let actions = m.on_event(Event::Released);
        assert!(
            matches!(actions[..], [Action::Acquire { .. }]),
            "{actions:?}"
        );
    }

    // N4: a grant ignored while another attempt was in flight can still be held by the lease
    // object when that attempt is refused: it is released, and a hand-over waits for that
    #[test]
    fn a_stale_grant_ignored_during_an_acquire_is_released_when_the_acquire_is_refused() {
        let mut m = Machine::new(true, 3).with_incarnation(1);
        let b = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
        // the previous incarnation's grant lands while b is in flight
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: 1,
                token: token(4)
            }),
            vec![]
        );
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt: b,
                token: None
            }),
            vec![Action::Release, Action::ScheduleAcquireRetry]
        );
        // leaving during the backoff: the successor is told only after the release
        let to = node("z");
        let hand_over = Duty::HandOver {
            to: Some(to.clone()),
        };
        assert_eq!(m.on_event(Event::Duty(hand_over)), vec![]);
        assert_eq!(
            m.on_event(Event::Released),
            vec![Action::SendHandOverDone { to }]
        );
    }

    // N5: a restarted manager resumes a removal margin its earlier incarnation was waiting
    // out: it starts nothing until the margin elapsed, not even as the host
    #[test]
    fn a_restarted_manager_waits_out_a_margin_that_was_running() {
        for has_lease in [false, true] {
            let mut m = Machine::new(has_lease, 3)
                .with_removal_margin(true)
                .with_margin_running(true);
            assert!(m.in_removal_margin());
            assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
            let actions = m.on_event(Event::RemovalMarginElapsed);
            assert!(
                matches!(actions[..], [Action::Spawn { .. } | Action::Acquire { .. }]),
                "{actions:?}"
            );
            assert!(!m.in_removal_margin());
        }
    }

    // a release issued by an earlier incarnation (the lease object is shared) drops
    // whatever the lease object holds when it runs: a new incarnation acquires only once
    // it was answered, and leaves a holding found at start to it
    #[test]
    fn a_new_incarnation_waits_for_the_releases_of_earlier_ones() {
        let mut m = Machine::new(true, 3)
            .with_incarnation(1)
            .with_releases_in_flight(1);
        assert_eq!(m.on_event(Event::LeaseHeldAtStart), vec![]);
        assert_eq!(m.on_event(Event::Duty(Duty::Host)), vec![]);
        assert_eq!(m.phase(), &Phase::Standby);
        assert!(!m.is_quiet());
        let actions = m.on_event(Event::Released);
        let attempt = acquire_of(&actions);
        assert_eq!(attempt >> 32, 1, "an attempt of incarnation 1");
        assert_eq!(
            m.on_event(Event::Acquired {
                attempt,
                token: token(2)
            }),
            vec![Action::Spawn { token: token(2) }]
        );
    }

    // an untracked holding found once nothing is in flight is released, and a singleton
    // that stopped by itself stays stopped afterwards
    #[test]
    fn an_untracked_holding_of_a_self_stopped_singleton_is_released_and_it_stays_down() {
        let mut m = Machine::new(true, 3);
        let attempt = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
        m.on_event(Event::Acquired {
            attempt,
            token: token(1),
        });
        assert_eq!(m.on_event(Event::ChildTerminated), vec![Action::Release]);
        assert_eq!(m.on_event(Event::Released), vec![]);
        assert_eq!(m.phase(), &Phase::SelfStopped);
        assert!(m.is_quiet());
        assert_eq!(m.on_event(Event::LeaseHeldAtStart), vec![Action::Release]);
        assert_eq!(m.on_event(Event::Released), vec![]);
        assert_eq!(m.phase(), &Phase::SelfStopped);
    }

    // only a release in flight, nothing held and nothing acquiring: what the manager checks
    // before trying a failed release once more at once
    #[test]
    fn only_releasing_is_one_release_with_nothing_else_in_flight() {
        let mut m = Machine::new(true, 3);
        assert!(!m.only_releasing());
        let attempt = acquire_of(&m.on_event(Event::Duty(Duty::Host)));
        assert!(!m.only_releasing(), "an acquire in flight");
        m.on_event(Event::Acquired {
            attempt,
            token: token(1),
        });
        assert!(!m.only_releasing(), "held");
        assert_eq!(m.on_event(Event::ChildTerminated), vec![Action::Release]);
        assert!(m.only_releasing());
        m.on_event(Event::Released);
        assert!(!m.only_releasing());
        let two = Machine::new(true, 3).with_releases_in_flight(2);
        assert!(!two.only_releasing(), "another release in flight");
    }
}
