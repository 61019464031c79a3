//! Supervision: what a parent does when a child fails.
//!
//! An `Err` from a hook or a panic inside one is a [`Failure`]. The failing actor suspends (it
//! processes no further user messages) and reports to its parent, whose
//! [`SupervisorStrategy`] (set with [`Props::supervisor`](crate::Props::supervisor)) picks a
//! [`Directive`]:
//! - `Resume`: keep the instance and its state, drop the failing message. Only for an `Err`:
//!   after a panic the state may be torn, so `Resume` becomes `Restart`.
//! - `Restart`: stop the children, make a fresh instance from the props, keep the mailbox.
//! - `Stop`: stop the child; the parent sees it terminate.
//! - `Escalate`: fail the parent with the same failure; the grandparent decides.
//!
//! One-for-one applies the directive to the failing child, all-for-one to all its siblings.
//! With a restart limit, a child failing more often than `max_restarts` within the window is
//! stopped. [`SupervisorStrategy::restart_with_backoff`] delays each restart exponentially.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ActorError;
use crate::path::ActorPath;

/// What went wrong inside an actor.
#[derive(Debug)]
pub enum FailureCause {
    /// A hook returned `Err`.
    Error(ActorError),
    /// A hook (or the props factory) panicked; the payload's message.
    Panic(String),
}

/// In which part of an actor's life a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePhase {
    /// In the props factory, `started`, or `post_restart`: the actor never became ready.
    Start,
    /// While handling a message or a signal.
    Message,
    /// A child's failure that this actor escalated.
    Escalated,
}

struct FailureInner {
    actor: ActorPath,
    cause: FailureCause,
    phase: FailurePhase,
}

/// A failure reported to a supervisor. Cheap to clone.
#[derive(Clone)]
pub struct Failure(Arc<FailureInner>);

impl Failure {
    pub(crate) fn new(actor: ActorPath, cause: FailureCause, phase: FailurePhase) -> Self {
        Failure(Arc::new(FailureInner {
            actor,
            cause,
            phase,
        }))
    }

    pub(crate) fn escalated_by(&self, actor: ActorPath) -> Self {
        let cause = match &self.0.cause {
            FailureCause::Error(e) => FailureCause::Error(ActorError::msg(format!(
                "escalated from {}: {e}",
                self.0.actor
            ))),
            FailureCause::Panic(p) => FailureCause::Panic(p.clone()),
        };
        Failure::new(actor, cause, FailurePhase::Escalated)
    }

    /// The actor that failed.
    pub fn actor(&self) -> &ActorPath {
        &self.0.actor
    }

    /// What went wrong.
    pub fn cause(&self) -> &FailureCause {
        &self.0.cause
    }

    /// When it went wrong.
    pub fn phase(&self) -> FailurePhase {
        self.0.phase
    }

    /// Whether the failure was a panic.
    pub fn is_panic(&self) -> bool {
        matches!(self.0.cause, FailureCause::Panic(_))
    }

    /// The returned error, if the failure was an `Err`.
    pub fn error(&self) -> Option<&ActorError> {
        match &self.0.cause {
            FailureCause::Error(e) => Some(e),
            FailureCause::Panic(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.cause {
            FailureCause::Error(e) => write!(f, "{} failed: {e}", self.0.actor),
            FailureCause::Panic(p) => write!(f, "{} panicked: {p}", self.0.actor),
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failure({self}, phase: {:?})", self.0.phase)
    }
}

/// What a supervisor does with a failed child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Keep the instance and state; continue with the next message (only after an `Err`).
    Resume,
    /// Replace the instance with a fresh one from the props; the mailbox is kept.
    Restart,
    /// Stop the child.
    Stop,
    /// Fail the supervisor itself with the child's failure.
    Escalate,
}

/// Whether a directive applies to the failing child alone or to all its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// Only the failing child.
    OneForOne,
    /// Every child of the supervisor.
    AllForOne,
}

/// Exponential backoff between restarts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub min: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// Up to this fraction of the delay is added at random (0.0 = none), so that many
    /// children failing together do not restart in lockstep.
    pub random_factor: f64,
    /// A child that ran this long without failing starts again from `min`.
    pub reset_after: Duration,
}

impl Backoff {
    /// The delay before restart number `attempt` (0-based), with `jitter` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let base = self
            .min
            .saturating_mul(2u32.saturating_pow(attempt.min(31)))
            .min(self.max);
        // a NaN, negative or infinite factor counts as none; an overflow saturates
        let factor = if self.random_factor.is_finite() {
            self.random_factor.max(0.0)
        } else {
            0.0
        };
        let scale = 1.0 + factor * jitter.clamp(0.0, 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * scale).unwrap_or(Duration::MAX)
    }
}

type Decider = Arc<dyn Fn(&Failure) -> Directive + Send + Sync>;

/// How an actor supervises its children. The default restarts a child that fails while
/// handling messages, without limit, and stops one that fails while starting (a failing
/// `started` would otherwise restart forever).
#[derive(Clone)]
pub struct SupervisorStrategy(Arc<StrategyInner>);

#[derive(Clone)]
struct StrategyInner {
    kind: StrategyKind,
    max_restarts: Option<u32>,
    within: Option<Duration>,
    backoff: Option<Backoff>,
    decider: Decider,
}

/// The default decider: `Stop` for failures while starting, `Restart` otherwise.
pub fn default_decider(failure: &Failure) -> Directive {
    match failure.phase() {
        FailurePhase::Start => Directive::Stop,
        FailurePhase::Message | FailurePhase::Escalated => Directive::Restart,
    }
}

impl Default for SupervisorStrategy {
    /// The default strategy, shared: actors spawned with it allocate nothing for it.
    fn default() -> Self {
        static DEFAULT: std::sync::OnceLock<SupervisorStrategy> = std::sync::OnceLock::new();
        DEFAULT.get_or_init(SupervisorStrategy::one_for_one).clone()
    }
}

impl SupervisorStrategy {
    /// A one-for-one strategy with the default decider and no restart limit.
    pub fn one_for_one() -> Self {
        SupervisorStrategy(Arc::new(StrategyInner {
            kind: StrategyKind::OneForOne,
            max_restarts: None,
            within: None,
            backoff: None,
            decider: Arc::new(default_decider),
        }))
    }

    fn edit(mut self, f: impl FnOnce(&mut StrategyInner)) -> Self {
        f(Arc::make_mut(&mut self.0));
        self
    }

    /// An all-for-one strategy with the default decider and no restart limit.
    pub fn all_for_one() -> Self {
        SupervisorStrategy::one_for_one().edit(|s| s.kind = StrategyKind::AllForOne)
    }

    /// A strategy that always stops a failing child.
    pub fn stopping() -> Self {
        SupervisorStrategy::one_for_one().with_decider(|_| Directive::Stop)
    }

    /// A one-for-one strategy that restarts after an exponentially growing delay; the
    /// child's mailbox keeps filling meanwhile.
    pub fn restart_with_backoff(min: Duration, max: Duration, random_factor: f64) -> Self {
        SupervisorStrategy::one_for_one().edit(|s| {
            s.backoff = Some(Backoff {
                min,
                max,
                random_factor,
                reset_after: max.saturating_mul(2),
            })
        })
    }

    /// Stop a child that needs more than `max` restarts within `within` (a rolling window
    /// that starts at the first restart).
    pub fn with_max_restarts(self, max: u32, within: Duration) -> Self {
        self.edit(|s| {
            s.max_restarts = Some(max);
            s.within = Some(within);
        })
    }

    /// Decide per failure (look inside with [`Failure::error`] and
    /// [`ActorError::downcast_ref`]).
    pub fn with_decider(
        self,
        decider: impl Fn(&Failure) -> Directive + Send + Sync + 'static,
    ) -> Self {
        let decider: Decider = Arc::new(decider);
        self.edit(|s| s.decider = decider)
    }

    /// The strategy's kind.
    pub fn kind(&self) -> StrategyKind {
        self.0.kind
    }

    /// The backoff settings, for a backoff strategy.
    pub fn backoff(&self) -> Option<&Backoff> {
        self.0.backoff.as_ref()
    }

    /// The directive for a failure: the decider's, with `Resume` turned into `Restart` after a
    /// panic. A decider that panics escalates: the supervisor fails with the child's failure.
    pub fn decide(&self, failure: &Failure) -> Directive {
        let decided =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0.decider)(failure)));
        let Ok(directive) = decided else {
            tracing::error!(%failure, "the supervisor's decider panicked; escalating");
            return Directive::Escalate;
        };
        match directive {
            Directive::Resume if failure.is_panic() => Directive::Restart,
            d => d,
        }
    }

    pub(crate) fn limits(&self) -> (Option<u32>, Option<Duration>) {
        (self.0.max_restarts, self.0.within)
    }
}

impl fmt::Debug for SupervisorStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorStrategy")
            .field("kind", &self.0.kind)
            .field("max_restarts", &self.0.max_restarts)
            .field("within", &self.0.within)
            .field("backoff", &self.0.backoff)
            .finish_non_exhaustive()
    }
}

/// Restart bookkeeping for one child.
#[derive(Debug, Clone)]
pub(crate) struct RestartStats {
    count: u32,
    window_start: Option<Instant>,
    backoff_attempts: u32,
    last_restart: Option<Instant>,
}

impl RestartStats {
    pub(crate) fn new() -> Self {
        RestartStats {
            count: 0,
            window_start: None,
            backoff_attempts: 0,
            last_restart: None,
        }
    }

    /// Records a restart at `now`; false when the strategy's limit is exceeded.
    pub(crate) fn request_restart(&mut self, strategy: &SupervisorStrategy, now: Instant) -> bool {
        let (max, within) = strategy.limits();
        if let (Some(start), Some(within)) = (self.window_start, within)
            && now.duration_since(start) > within
        {
            self.count = 0;
            self.window_start = None;
        }
        if self.window_start.is_none() {
            self.window_start = Some(now);
        }
        self.count += 1;
        max.is_none_or(|m| self.count <= m)
    }

    /// The backoff attempt number for the next restart, reset after a quiet period.
    pub(crate) fn backoff_attempt(&mut self, backoff: &Backoff, now: Instant) -> u32 {
        let attempt = match self.last_restart {
            Some(t) if now.duration_since(t) <= backoff.reset_after => self.backoff_attempts,
            _ => 0,
        };
        self.last_restart = Some(now);
        self.backoff_attempts = attempt + 1;
        attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::{ActorPath, Address};

    fn failure(panic: bool, phase: FailurePhase) -> Failure {
        let path = ActorPath::root(Address::local("t")).child("x");
        let cause = if panic {
            FailureCause::Panic("boom".into())
        } else {
            FailureCause::Error(ActorError::msg("bad"))
        };
        Failure::new(path, cause, phase)
    }

    #[test]
    fn resume_after_panic_becomes_restart() {
        let s = SupervisorStrategy::one_for_one().with_decider(|_| Directive::Resume);
        assert_eq!(
            s.decide(&failure(false, FailurePhase::Message)),
            Directive::Resume
        );
        assert_eq!(
            s.decide(&failure(true, FailurePhase::Message)),
            Directive::Restart
        );
    }

    #[test]
    fn default_decider_stops_start_failures() {
        let s = SupervisorStrategy::default();
        assert_eq!(
            s.decide(&failure(false, FailurePhase::Start)),
            Directive::Stop
        );
        assert_eq!(
            s.decide(&failure(true, FailurePhase::Message)),
            Directive::Restart
        );
    }

    #[test]
    fn restart_limit_within_window() {
        let s = SupervisorStrategy::one_for_one().with_max_restarts(2, Duration::from_secs(10));
        let mut st = RestartStats::new();
        let t0 = Instant::now();
        assert!(st.request_restart(&s, t0));
        assert!(st.request_restart(&s, t0 + Duration::from_secs(1)));
        assert!(!st.request_restart(&s, t0 + Duration::from_secs(2)));
        let mut st = RestartStats::new();
        assert!(st.request_restart(&s, t0));
        assert!(st.request_restart(&s, t0 + Duration::from_secs(1)));
        // the window has passed: counting starts over
        assert!(st.request_restart(&s, t0 + Duration::from_secs(12)));
    }

    #[test]
    fn backoff_attempts_count_one_per_restart() {
        let s = SupervisorStrategy::restart_with_backoff(
            Duration::from_millis(100),
            Duration::from_secs(10),
            0.0,
        );
        let b = *s.backoff().unwrap();
        let mut st = RestartStats::new();
        let t0 = Instant::now();
        let attempts: Vec<u32> = (0..4)
            .map(|i| {
                let now = t0 + Duration::from_millis(10 * i);
                assert!(st.request_restart(&s, now));
                st.backoff_attempt(&b, now)
            })
            .collect();
        assert_eq!(attempts, vec![0, 1, 2, 3]);
        // a quiet period resets the backoff
        let later = t0 + Duration::from_secs(60);
        assert!(st.request_restart(&s, later));
        assert_eq!(st.backoff_attempt(&b, later), 0);
    }

    #[test]
    fn backoff_saturates_instead_of_panicking() {
        let b = Backoff {
            min: Duration::from_secs(1),
            max: Duration::MAX,
            random_factor: 0.2,
            reset_after: Duration::MAX,
        };
        assert!(b.delay(40, 0.5) >= Duration::from_secs(1 << 31));
        let nan = Backoff {
            random_factor: f64::NAN,
            ..b
        };
        assert_eq!(nan.delay(0, 0.5), Duration::from_secs(1));
    }

    #[test]
    fn a_panicking_decider_escalates() {
        let s = SupervisorStrategy::one_for_one().with_decider(|_| panic!("decider bug"));
        assert_eq!(
            s.decide(&failure(false, FailurePhase::Message)),
            Directive::Escalate
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
            random_factor: 0.0,
            reset_after: Duration::from_secs(5),
        };
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(100));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(800));
        assert_eq!(b.delay(9, 0.5), Duration::from_secs(1));
        let j = Backoff {
            random_factor: 0.5,
            ..b
        };
        assert_eq!(j.delay(0, 1.0), Duration::from_millis(150));
    }
}
