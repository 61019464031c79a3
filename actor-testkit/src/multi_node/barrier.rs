//! Barriers: the coordinator every role reports to, as a pure state machine.
//!
//! [`Coordinator`] knows each role's life state (running, finished, failed, crashed, shut
//! down), where it is (at a barrier, after one) and the pending barriers. Each event
//! ([`Coordinator::enter`], [`Coordinator::time_out`], [`Coordinator::role_ended`]) returns the [`Release`]s to deliver: which waiting role gets
//! which result. The node side holds the waiters' channels and does the waiting; this module
//! does no I/O and takes no time, so every rule is unit-tested below.
//!
//! Rules:
//! - A barrier completes when every participant that is still alive has entered it; a role
//!   that crashed or was shut down by the conductor is no longer expected.
//! - A participant that failed, or that finished its body without entering, aborts the
//!   barrier for everyone at once (no one waits for the time-out).
//! - The first waiter whose time-out expires aborts the barrier for everyone, naming the
//!   roles that did not arrive.
//! - Roles that enter one barrier name with different role sets abort it.
//! - An aborted barrier stays aborted: a role entering it later fails at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::START_BARRIER;

/// Why a barrier did not complete for a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarrierError {
    /// A waiter's time-out expired before every participant arrived.
    #[error(
        "barrier {barrier:?} timed out after {timeout:?}: {} did not arrive (arrived: {})",
        list(missing),
        list(arrived)
    )]
    TimedOut {
        /// The barrier.
        barrier: String,
        /// The time-out that expired.
        timeout: Duration,
        /// The participants that had not arrived.
        missing: Vec<String>,
        /// The participants that had arrived.
        arrived: Vec<String>,
    },
    /// A participant failed (panicked, returned an error, or failed at another barrier).
    #[error("barrier {barrier:?} aborted: role {role} failed: {message}")]
    RoleFailed {
        /// The barrier.
        barrier: String,
        /// The failed participant.
        role: String,
        /// Its failure.
        message: String,
    },
    /// A participant finished its body without entering the barrier.
    #[error("barrier {barrier:?} aborted: role {role} finished its body without entering it")]
    RoleFinished {
        /// The barrier.
        barrier: String,
        /// The participant that finished.
        role: String,
    },
    /// Two roles entered the barrier with different role sets.
    #[error(
        "barrier {barrier:?} aborted: {role} entered it for [{}] but {first} for [{}]",
        list(roles),
        list(first_roles)
    )]
    DifferentRoles {
        /// The barrier.
        barrier: String,
        /// The role whose set differs from the first entrant's.
        role: String,
        /// Its set.
        roles: Vec<String>,
        /// The first role to enter.
        first: String,
        /// The first entrant's set.
        first_roles: Vec<String>,
    },
    /// A role entered a barrier whose role set does not include it.
    #[error(
        "role {role} entered barrier {barrier:?}, which is only for [{}]",
        list(roles)
    )]
    NotAParticipant {
        /// The barrier.
        barrier: String,
        /// The role.
        role: String,
        /// The barrier's roles.
        roles: Vec<String>,
    },
    /// A barrier's role set names a role the run does not have.
    #[error(
        "barrier {barrier:?} names unknown role {role:?} (roles: {})",
        list(known)
    )]
    UnknownRole {
        /// The barrier.
        barrier: String,
        /// The unknown name.
        role: String,
        /// The run's roles.
        known: Vec<String>,
    },
    /// The wait ended without a result (the run is tearing down).
    #[error("barrier {barrier:?} aborted: {reason}")]
    RunEnded {
        /// The barrier.
        barrier: String,
        /// Why the run ended.
        reason: String,
    },
}

impl BarrierError {
    /// The barrier this error is about.
    pub fn barrier(&self) -> &str {
        match self {
            BarrierError::TimedOut { barrier, .. }
            | BarrierError::RoleFailed { barrier, .. }
            | BarrierError::RoleFinished { barrier, .. }
            | BarrierError::DifferentRoles { barrier, .. }
            | BarrierError::NotAParticipant { barrier, .. }
            | BarrierError::UnknownRole { barrier, .. }
            | BarrierError::RunEnded { barrier, .. } => barrier,
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Where a role is in its body, as far as barriers tell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Position {
    /// It has not entered any barrier of its body yet (the harness's
    /// [`START_BARRIER`](super::START_BARRIER) does not count).
    #[default]
    Start,
    /// It entered this barrier and did not pass it (it waits there, or the barrier failed).
    At(String),
    /// It passed this barrier last.
    After(String),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Start => f.write_str("before the first barrier"),
            Position::At(b) => write!(f, "at barrier {b:?}"),
            Position::After(b) => write!(f, "after barrier {b:?}"),
        }
    }
}

/// How a role's body ended, as the coordinator needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoleEnd {
    /// The body returned normally.
    Finished,
    /// The body failed (or its node could not start).
    Failed(String),
    /// The conductor crashed the role.
    Crashed,
    /// The conductor shut the role down.
    ShutDown,
}

/// A role's life state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Life {
    Running,
    Ended(RoleEnd),
}

impl Life {
    /// Whether barriers no longer expect this role.
    fn gone(&self) -> bool {
        matches!(
            self,
            Life::Ended(RoleEnd::Crashed) | Life::Ended(RoleEnd::ShutDown)
        )
    }
}

/// Which roles a barrier is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Participants {
    /// Every role of the run (minus those crashed or shut down).
    All,
    /// These roles, by index.
    Only(BTreeSet<usize>),
}

/// One result to deliver to a waiting role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Release {
    /// The role to wake.
    pub(crate) role: usize,
    /// The barrier it waits at.
    pub(crate) barrier: String,
    /// Passed, or why not.
    pub(crate) result: Result<(), BarrierError>,
}

#[derive(Debug)]
struct Pending {
    participants: Participants,
    first: usize,
    arrived: BTreeSet<usize>,
}

/// The barrier state of one run. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Coordinator {
    roles: Vec<String>,
    life: Vec<Life>,
    positions: Vec<Position>,
    pending: BTreeMap<String, Pending>,
    aborted: BTreeMap<String, BarrierError>,
}

impl Coordinator {
    /// A coordinator for `roles`, all running, none at a barrier.
    pub(crate) fn new(roles: Vec<String>) -> Self {
        let n = roles.len();
        Coordinator {
            roles,
            life: vec![Life::Running; n],
            positions: vec![Position::Start; n],
            pending: BTreeMap::new(),
            aborted: BTreeMap::new(),
        }
    }

    /// Where `role` is.
    pub(crate) fn position(&self, role: usize) -> Position {
        self.positions.get(role).cloned().unwrap_or_default()
    }

    /// Whether `role` was crashed or shut down by the conductor.
    pub(crate) fn is_gone(&self, role: usize) -> bool {
        self.life.get(role).is_some_and(Life::gone)
    }

    /// The indices of the roles not crashed or shut down.
    pub(crate) fn live_roles(&self) -> Vec<usize> {
        (0..self.roles.len())
            .filter(|&r| !self.is_gone(r))
            .collect()
    }

    /// Resolves role names into a participant set.
    pub(crate) fn participants(
        &self,
        barrier: &str,
        names: &[&str],
    ) -> Result<Participants, BarrierError> {
        let mut set = BTreeSet::new();
        for name in names {
            match self.roles.iter().position(|r| r == name) {
                Some(i) => {
                    set.insert(i);
                }
                None => {
                    return Err(BarrierError::UnknownRole {
                        barrier: barrier.to_owned(),
                        role: (*name).to_owned(),
                        known: self.roles.clone(),
                    });
                }
            }
        }
        Ok(self.normalize(Participants::Only(set)))
    }

    /// `Only(every role)` is `All`.
    fn normalize(&self, p: Participants) -> Participants {
        match p {
            Participants::Only(set) if set.len() == self.roles.len() => Participants::All,
            other => other,
        }
    }

    fn names(&self, set: impl IntoIterator<Item = usize>) -> Vec<String> {
        set.into_iter().map(|i| self.roles[i].clone()).collect()
    }

    fn members(&self, p: &Participants) -> BTreeSet<usize> {
        match p {
            Participants::All => (0..self.roles.len()).collect(),
            Participants::Only(set) => set.clone(),
        }
    }

    /// `role` enters `barrier` for `participants`.
    pub(crate) fn enter(
        &mut self,
        role: usize,
        barrier: &str,
        participants: Participants,
    ) -> Vec<Release> {
        let participants = self.normalize(participants);
        self.positions[role] = Position::At(barrier.to_owned());
        if let Some(error) = self.aborted.get(barrier) {
            return vec![Release {
                role,
                barrier: barrier.to_owned(),
                result: Err(error.clone()),
            }];
        }
        if !self.members(&participants).contains(&role) {
            return vec![Release {
                role,
                barrier: barrier.to_owned(),
                result: Err(BarrierError::NotAParticipant {
                    barrier: barrier.to_owned(),
                    role: self.roles[role].clone(),
                    roles: self.names(self.members(&participants)),
                }),
            }];
        }
        let pending = self
            .pending
            .entry(barrier.to_owned())
            .or_insert_with(|| Pending {
                participants: participants.clone(),
                first: role,
                arrived: BTreeSet::new(),
            });
        pending.arrived.insert(role);
        if pending.participants != participants {
            let (first, first_set) = (pending.first, pending.participants.clone());
            let error = BarrierError::DifferentRoles {
                barrier: barrier.to_owned(),
                role: self.roles[role].clone(),
                roles: self.names(self.members(&participants)),
                first: self.roles[first].clone(),
                first_roles: self.names(self.members(&first_set)),
            };
            return self.abort(barrier, error);
        }
        self.check(barrier)
    }

    /// A waiter at `barrier` ran out of time (`timeout`): aborts it unless it completed.
    pub(crate) fn time_out(&mut self, barrier: &str, timeout: Duration) -> Vec<Release> {
        let Some(pending) = self.pending.get(barrier) else {
            return Vec::new();
        };
        let members = self.members(&pending.participants);
        let arrived: Vec<usize> = members
            .iter()
            .copied()
            .filter(|r| pending.arrived.contains(r) && !self.life[*r].gone())
            .collect();
        let missing: Vec<usize> = members
            .iter()
            .copied()
            .filter(|r| !pending.arrived.contains(r) && !self.life[*r].gone())
            .collect();
        let error = BarrierError::TimedOut {
            barrier: barrier.to_owned(),
            timeout,
            missing: self.names(missing),
            arrived: self.names(arrived),
        };
        self.abort(barrier, error)
    }

    /// `role`'s body ended as `end`: pending barriers complete or abort accordingly.
    pub(crate) fn role_ended(&mut self, role: usize, end: RoleEnd) -> Vec<Release> {
        match (&self.life[role], &end) {
            // a finished role may still be crashed or shut down; other ends are final
            (Life::Running, _)
            | (Life::Ended(RoleEnd::Finished), RoleEnd::Crashed | RoleEnd::ShutDown) => {
                self.life[role] = Life::Ended(end);
            }
            _ => return Vec::new(),
        }
        let names: Vec<String> = self.pending.keys().cloned().collect();
        names.iter().flat_map(|b| self.check(b)).collect()
    }

    /// Completes or aborts `barrier` if its participants allow it.
    fn check(&mut self, barrier: &str) -> Vec<Release> {
        let Some(pending) = self.pending.get(barrier) else {
            return Vec::new();
        };
        let mut complete = true;
        for r in self.members(&pending.participants) {
            match &self.life[r] {
                Life::Ended(RoleEnd::Crashed | RoleEnd::ShutDown) => {}
                Life::Ended(RoleEnd::Failed(message)) => {
                    let error = BarrierError::RoleFailed {
                        barrier: barrier.to_owned(),
                        role: self.roles[r].clone(),
                        message: message.clone(),
                    };
                    return self.abort(barrier, error);
                }
                Life::Ended(RoleEnd::Finished) if !pending.arrived.contains(&r) => {
                    let error = BarrierError::RoleFinished {
                        barrier: barrier.to_owned(),
                        role: self.roles[r].clone(),
                    };
                    return self.abort(barrier, error);
                }
                Life::Ended(RoleEnd::Finished) => {}
                Life::Running => complete &= pending.arrived.contains(&r),
            }
        }
        if !complete {
            return Vec::new();
        }
        let Some(done) = self.pending.remove(barrier) else {
            return Vec::new();
        };
        done.arrived
            .into_iter()
            .map(|role| {
                // the harness's own start barrier does not count as a place in the body
                self.positions[role] = if barrier == START_BARRIER {
                    Position::Start
                } else {
                    Position::After(barrier.to_owned())
                };
                Release {
                    role,
                    barrier: barrier.to_owned(),
                    result: Ok(()),
                }
            })
            .collect()
    }

    fn abort(&mut self, barrier: &str, error: BarrierError) -> Vec<Release> {
        self.aborted.insert(barrier.to_owned(), error.clone());
        let Some(pending) = self.pending.remove(barrier) else {
            return Vec::new();
        };
        pending
            .arrived
            .into_iter()
            .map(|role| Release {
                role,
                barrier: barrier.to_owned(),
                result: Err(error.clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> Coordinator {
        Coordinator::new(vec!["a".into(), "b".into(), "c".into()])
    }

    fn ok(role: usize, barrier: &str) -> Release {
        Release {
            role,
            barrier: barrier.into(),
            result: Ok(()),
        }
    }

    #[test]
    fn the_start_barrier_leaves_roles_at_the_start() {
        let mut c = Coordinator::new(vec!["a".into()]);
        assert_eq!(
            c.enter(0, START_BARRIER, Participants::All),
            vec![ok(0, START_BARRIER)]
        );
        assert_eq!(c.position(0), Position::Start);
        assert_eq!(c.position(0).to_string(), "before the first barrier");
    }

    #[test]
    fn completes_when_the_last_participant_arrives() {
        let mut c = coordinator();
        assert!(c.enter(0, "x", Participants::All).is_empty());
        assert!(c.enter(2, "x", Participants::All).is_empty());
        assert_eq!(c.position(0), Position::At("x".into()));
        assert_eq!(
            c.enter(1, "x", Participants::All),
            vec![ok(0, "x"), ok(1, "x"), ok(2, "x")]
        );
        assert_eq!(c.position(1), Position::After("x".into()));
        // the name is free again for a later round
        assert!(c.enter(0, "x", Participants::All).is_empty());
    }

    #[test]
    fn a_subset_barrier_ignores_the_other_roles() {
        let mut c = coordinator();
        let ab = c.participants("s", &["a", "b"]).unwrap();
        assert!(c.enter(1, "s", ab.clone()).is_empty());
        assert_eq!(c.enter(0, "s", ab), vec![ok(0, "s"), ok(1, "s")]);
        let all = c.participants("t", &["c", "b", "a"]).unwrap();
        assert_eq!(all, Participants::All);
    }

    #[test]
    fn time_out_names_the_missing_roles_and_releases_everyone() {
        let mut c = coordinator();
        c.enter(0, "x", Participants::All);
        c.enter(1, "x", Participants::All);
        let releases = c.time_out("x", Duration::from_secs(30));
        let error = BarrierError::TimedOut {
            barrier: "x".into(),
            timeout: Duration::from_secs(30),
            missing: vec!["c".into()],
            arrived: vec!["a".into(), "b".into()],
        };
        assert_eq!(releases.len(), 2);
        assert!(releases.iter().all(|r| r.result == Err(error.clone())));
        assert_eq!(
            error.to_string(),
            "barrier \"x\" timed out after 30s: c did not arrive (arrived: a, b)"
        );
        // the late role fails at once
        assert_eq!(c.enter(2, "x", Participants::All)[0].result, Err(error));
        assert_eq!(c.position(2), Position::At("x".into()));
    }

    #[test]
    fn a_failed_participant_aborts_at_once_before_and_after_arrival() {
        let mut c = coordinator();
        c.enter(0, "x", Participants::All);
        let releases = c.role_ended(2, RoleEnd::Failed("boom".into()));
        let error = BarrierError::RoleFailed {
            barrier: "x".into(),
            role: "c".into(),
            message: "boom".into(),
        };
        assert_eq!(
            releases,
            vec![Release {
                role: 0,
                barrier: "x".into(),
                result: Err(error)
            }]
        );
        // a later barrier that includes the failed role fails on entry
        let r = c.enter(1, "y", Participants::All);
        assert!(matches!(&r[0].result, Err(BarrierError::RoleFailed { role, .. }) if role == "c"));
    }

    #[test]
    fn a_finished_participant_aborts_but_a_crashed_one_is_not_expected() {
        let mut c = coordinator();
        c.enter(0, "x", Participants::All);
        let r = c.role_ended(1, RoleEnd::Finished);
        assert!(
            matches!(&r[0].result, Err(BarrierError::RoleFinished { role, .. }) if role == "b")
        );

        let mut c = coordinator();
        c.enter(0, "x", Participants::All);
        c.enter(1, "x", Participants::All);
        assert_eq!(
            c.role_ended(2, RoleEnd::Crashed),
            vec![ok(0, "x"), ok(1, "x")]
        );
        assert_eq!(c.live_roles(), vec![0, 1]);
        assert_eq!(c.enter(0, "y", Participants::All), Vec::new());
        assert_eq!(
            c.role_ended(1, RoleEnd::ShutDown),
            vec![ok(0, "y")],
            "a shut-down role is not expected either"
        );
    }

    #[test]
    fn a_finished_role_that_arrived_does_not_block_and_can_still_crash() {
        let mut c = coordinator();
        c.enter(0, "x", Participants::All);
        assert!(c.role_ended(0, RoleEnd::Finished).is_empty());
        assert!(c.enter(1, "x", Participants::All).is_empty());
        assert_eq!(
            c.enter(2, "x", Participants::All),
            vec![ok(0, "x"), ok(1, "x"), ok(2, "x")]
        );
        assert!(c.role_ended(0, RoleEnd::Crashed).is_empty());
        assert!(c.is_gone(0));
        // a failure after a crash changes nothing
        assert!(c.role_ended(0, RoleEnd::Failed("late".into())).is_empty());
        assert!(c.is_gone(0));
    }

    #[test]
    fn bad_role_sets_are_refused() {
        let mut c = coordinator();
        assert!(matches!(
            c.participants("x", &["a", "zz"]),
            Err(BarrierError::UnknownRole { role, .. }) if role == "zz"
        ));
        let ab = c.participants("x", &["a", "b"]).unwrap();
        let r = c.enter(2, "x", ab.clone());
        assert!(
            matches!(&r[0].result, Err(BarrierError::NotAParticipant { role, .. }) if role == "c")
        );
        c.enter(0, "y", ab);
        let r = c.enter(1, "y", Participants::All);
        assert_eq!(r.len(), 2, "both entrants are released");
        let message = r[0].result.clone().unwrap_err().to_string();
        assert_eq!(
            message,
            "barrier \"y\" aborted: b entered it for [a, b, c] but a for [a, b]"
        );
    }
}
