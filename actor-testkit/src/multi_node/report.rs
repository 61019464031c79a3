//! What a run produces: each role's outcome, the failures, the trace, and the errors of
//! building or running a spec.

use std::fmt;
use std::time::Duration;

use super::barrier::{BarrierError, Position};

/// How a role's body failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The body panicked (a failed assertion or expectation).
    Panicked,
    /// The body returned an error.
    Error,
    /// A barrier failed for the role (it timed out, or another role failed).
    Barrier(BarrierError),
    /// The role's node could not start (actor system, remoting or cluster join).
    Setup,
    /// The body was still running when the run's time limit passed.
    RunTimedOut(Duration),
}

/// One role's failure: the role, where it was, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFailure {
    /// The role.
    pub role: String,
    /// The barrier it was at or had passed last when it failed.
    pub position: Position,
    /// What kind of failure.
    pub kind: FailureKind,
    /// The panic message, the error, or the barrier error.
    pub message: String,
}

impl RoleFailure {
    /// Whether this failure is only the echo of another role's failure (a barrier aborted
    /// because some other role failed or finished early).
    pub fn is_consequence(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::Barrier(BarrierError::RoleFailed { .. })
                | FailureKind::Barrier(BarrierError::RunEnded { .. })
        )
    }
}

impl fmt::Display for RoleFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            FailureKind::Panicked => "panicked",
            FailureKind::Error => "returned an error",
            FailureKind::Barrier(_) => "barrier failed",
            FailureKind::Setup => "could not start its node",
            FailureKind::RunTimedOut(_) => "did not finish",
        };
        write!(
            f,
            "role {} failed {}: {what}: {}",
            self.role, self.position, self.message
        )
    }
}

/// How one role's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleOutcome {
    /// The body returned normally.
    Finished,
    /// The conductor crashed the role (its body was dropped).
    Crashed,
    /// The conductor shut the role down (its body was dropped).
    ShutDown,
    /// The body failed.
    Failed(RoleFailure),
}

/// One line of a run's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// Time since the run started (virtual time in simulated mode).
    pub at: Duration,
    /// The role that recorded it.
    pub role: String,
    /// What happened.
    pub event: String,
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>9.3}s {}: {}",
            self.at.as_secs_f64(),
            self.role,
            self.event
        )
    }
}

/// What a run recorded: barriers, conductor actions, membership events each node saw, role
/// ends and [`Node::trace`](super::Node::trace) lines, in the order they happened.
///
/// In simulated mode a seed replays its run exactly, so two runs with one seed give equal
/// traces (timestamps included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The entries, oldest first.
    pub entries: Vec<TraceEntry>,
}

impl Trace {
    /// The entries recorded by `role`.
    pub fn of_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a TraceEntry> + 'a {
        self.entries.iter().filter(move |e| e.role == role)
    }

    /// Whether some entry of `role` is exactly `event`.
    pub fn contains(&self, role: &str, event: &str) -> bool {
        self.of_role(role).any(|e| e.event == event)
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "{entry}")?;
        }
        Ok(())
    }
}

/// The result of a run that passed (or the details of one that failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Each role and its outcome, in role order.
    pub outcomes: Vec<(String, RoleOutcome)>,
    /// The trace.
    pub trace: Trace,
    /// The seed of a simulated run (`None` in thread mode).
    pub seed: Option<u64>,
    /// Wall-clock time the run took.
    pub wall: Duration,
}

impl RunReport {
    /// The outcome of `role`.
    pub fn outcome(&self, role: &str) -> Option<&RoleOutcome> {
        self.outcomes
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, outcome)| outcome)
    }

    /// The failures, the causes first, then the consequences (barriers they aborted).
    pub fn failures(&self) -> Vec<&RoleFailure> {
        let mut failures: Vec<&RoleFailure> = self
            .outcomes
            .iter()
            .filter_map(|(_, o)| match o {
                RoleOutcome::Failed(f) => Some(f),
                _ => None,
            })
            .collect();
        failures.sort_by_key(|f| f.is_consequence());
        failures
    }
}

/// A run that failed: the failures (causes first) and the whole report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRun {
    /// The report, with every outcome and the trace.
    pub report: RunReport,
}

impl FailedRun {
    /// The failures, the causes first.
    pub fn failures(&self) -> Vec<&RoleFailure> {
        self.report.failures()
    }
}

impl fmt::Display for FailedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures = self.failures();
        write!(
            f,
            "multi-node run failed ({} of {} roles",
            failures.len(),
            self.report.outcomes.len()
        )?;
        if let Some(seed) = self.report.seed {
            write!(f, ", simulated, seed {seed}")?;
        }
        f.write_str("):")?;
        for failure in failures {
            write!(f, "\n  {failure}")?;
        }
        Ok(())
    }
}

/// Errors of building or running a [`MultiNodeSpec`](super::MultiNodeSpec).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultiNodeError {
    /// The spec has no roles.
    #[error("a multi-node run needs at least one role")]
    NoRoles,
    /// A role name is not `[a-zA-Z0-9-_]+`.
    #[error("invalid role name {role:?}: expected one or more of [a-zA-Z0-9-_]")]
    InvalidRole {
        /// The rejected name.
        role: String,
    },
    /// A role appears twice.
    #[error("role {role:?} appears twice")]
    DuplicateRole {
        /// The repeated name.
        role: String,
    },
    /// The actor system name is invalid.
    #[error("invalid actor system name {name:?}: expected one or more of [a-zA-Z0-9-_]")]
    InvalidSystemName {
        /// The rejected name.
        name: String,
    },
    /// A duration setting is zero.
    #[error("the {what} must be greater than zero")]
    ZeroDuration {
        /// Which setting.
        what: &'static str,
    },
    /// `run` was called on a thread that runs a tokio runtime (from `#[tokio::test]` or
    /// inside `block_on`); the harness builds its own runtimes, so call it from a plain
    /// `#[test]`.
    #[error(
        "a multi-node run cannot start inside a tokio runtime: call it from a plain #[test], not #[tokio::test]"
    )]
    InsideRuntime,
    /// The runtime for the run could not be built.
    #[error("cannot build the tokio runtime for the run: {message}")]
    Runtime {
        /// The I/O error's text.
        message: String,
    },
    /// One or more roles failed.
    #[error("{0}")]
    Failed(Box<FailedRun>),
}

/// A role name that the run does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {role:?} (roles: {})", known.join(", "))]
pub struct UnknownRole {
    /// The unknown name.
    pub role: String,
    /// The run's roles.
    pub known: Vec<String>,
}

/// Errors of the conductor's faults.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConductorError {
    /// The role does not exist.
    #[error(transparent)]
    UnknownRole(#[from] UnknownRole),
    /// A drop probability outside `0.0..=1.0` (or NaN).
    #[error("drop probability {probability} is outside 0.0..=1.0")]
    InvalidProbability {
        /// The rejected probability.
        probability: f64,
    },
    /// The role was already crashed or shut down.
    #[error("role {role} is already gone (crashed or shut down)")]
    Gone {
        /// The role.
        role: String,
    },
}
