//! [`Conductor`]: network faults between roles and the end of a role (crash, shutdown),
//! callable from any role's body.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use actor_cluster::Direction;

use super::report::ConductorError;
use super::run::{Phase, Run, Stop};

/// Injects faults into a run: cut, slow down, make lossy or heal the link between two roles,
/// crash a role or shut it down. Get it from [`Node::conductor`](super::Node::conductor); any role may call it,
/// and every action is recorded in the run's trace under the calling role.
///
/// Faults apply to the transport between the two roles' nodes (a
/// [`ChannelMesh`](actor_cluster::ChannelMesh) in thread mode, an
/// [`InMemoryHub`](actor_cluster::InMemoryHub) in simulated mode): a blackholed frame is
/// silently lost, as on a broken network; the failure detector notices the silence.
///
/// Each action panics on a role the run does not have (a test bug) and has a `try_` twin
/// that returns the error instead.
#[derive(Clone)]
pub struct Conductor {
    pub(crate) run: Arc<Run>,
    /// The role that calls (for the trace).
    pub(crate) by: usize,
}

impl std::fmt::Debug for Conductor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conductor")
            .field("by", &self.run.roles[self.by])
            .finish()
    }
}

#[track_caller]
fn or_panic<T>(what: &str, caller: &Location<'_>, result: Result<T, ConductorError>) -> T {
    match result {
        Ok(t) => t,
        Err(e) => panic!("conductor {what} at {caller}: {e}"),
    }
}

impl Conductor {
    /// Drops every frame between roles `a` and `b`, both ways.
    ///
    /// # Panics
    /// When a role is unknown (see [`Conductor::try_blackhole`]).
    #[track_caller]
    pub fn blackhole(&self, a: &str, b: &str) {
        or_panic(
            "blackhole",
            Location::caller(),
            self.try_blackhole(a, b, Direction::Both),
        )
    }

    /// Drops the frames between roles `a` and `b` in `direction` (`Send`: only `a -> b`).
    ///
    /// # Errors
    /// [`ConductorError::UnknownRole`].
    pub fn try_blackhole(
        &self,
        a: &str,
        b: &str,
        direction: Direction,
    ) -> Result<(), ConductorError> {
        let (ia, ib) = (self.run.index_of(a)?, self.run.index_of(b)?);
        self.run.network.faults().blackhole(
            &self.run.addresses[ia],
            &self.run.addresses[ib],
            direction,
        );
        self.run
            .trace(self.by, format!("blackhole {a} <-> {b} ({direction:?})"));
        Ok(())
    }

    /// Heals the link between roles `a` and `b`, both ways (removes every fault on it).
    ///
    /// # Panics
    /// When a role is unknown (see [`Conductor::try_pass_through`]).
    #[track_caller]
    pub fn pass_through(&self, a: &str, b: &str) {
        or_panic(
            "pass_through",
            Location::caller(),
            self.try_pass_through(a, b, Direction::Both),
        )
    }

    /// Heals the link between roles `a` and `b` in `direction`.
    ///
    /// # Errors
    /// [`ConductorError::UnknownRole`].
    pub fn try_pass_through(
        &self,
        a: &str,
        b: &str,
        direction: Direction,
    ) -> Result<(), ConductorError> {
        let (ia, ib) = (self.run.index_of(a)?, self.run.index_of(b)?);
        self.run.network.faults().pass_through(
            &self.run.addresses[ia],
            &self.run.addresses[ib],
            direction,
        );
        self.run
            .trace(self.by, format!("pass-through {a} <-> {b} ({direction:?})"));
        Ok(())
    }

    /// Delays every frame between roles `a` and `b`, both ways, by `delay` (order on the
    /// link is kept; in simulated mode the delay is virtual time).
    ///
    /// # Panics
    /// When a role is unknown (see [`Conductor::try_delay`]).
    #[track_caller]
    pub fn delay(&self, a: &str, b: &str, delay: Duration) {
        or_panic(
            "delay",
            Location::caller(),
            self.try_delay(a, b, Direction::Both, delay),
        )
    }

    /// Delays the frames between roles `a` and `b` in `direction` by `delay`.
    ///
    /// # Errors
    /// [`ConductorError::UnknownRole`].
    pub fn try_delay(
        &self,
        a: &str,
        b: &str,
        direction: Direction,
        delay: Duration,
    ) -> Result<(), ConductorError> {
        let (ia, ib) = (self.run.index_of(a)?, self.run.index_of(b)?);
        self.run.network.faults().delay(
            &self.run.addresses[ia],
            &self.run.addresses[ib],
            direction,
            delay,
        );
        self.run.trace(
            self.by,
            format!("delay {a} <-> {b} ({direction:?}) by {delay:?}"),
        );
        Ok(())
    }

    /// Drops each frame between roles `a` and `b` in `direction` with `probability`, from the
    /// run's seeded generator (in simulated mode the same seed drops the same frames).
    ///
    /// # Errors
    /// [`ConductorError::UnknownRole`], [`ConductorError::InvalidProbability`] outside
    /// `0.0..=1.0`.
    pub fn try_drop_frames(
        &self,
        a: &str,
        b: &str,
        direction: Direction,
        probability: f64,
    ) -> Result<(), ConductorError> {
        let (ia, ib) = (self.run.index_of(a)?, self.run.index_of(b)?);
        self.run
            .network
            .faults()
            .drop_with_probability(
                &self.run.addresses[ia],
                &self.run.addresses[ib],
                direction,
                probability,
            )
            .map_err(|_| ConductorError::InvalidProbability { probability })?;
        self.run.trace(
            self.by,
            format!("drop {a} <-> {b} ({direction:?}) with probability {probability}"),
        );
        Ok(())
    }

    /// Crashes `role`: its transport dies at once (frames to and from it vanish, its peers
    /// see it disconnected), its body is dropped at its next await, and its actor system
    /// dies without a goodbye. Barriers stop expecting it. Returns once its body is dropped
    /// (a role that crashes itself never returns from this call).
    ///
    /// In thread mode the role's runtime is dropped, so no `stopped` hook runs; in simulated
    /// mode (one runtime for all) its system is terminated after the transport died, so
    /// hooks run but nothing they send leaves the node.
    ///
    /// # Panics
    /// When the role is unknown or already gone (see [`Conductor::try_crash`]).
    #[track_caller]
    pub fn crash(&self, role: &str) -> impl Future<Output = ()> + '_ {
        let caller = Location::caller();
        let role = role.to_owned();
        async move { or_panic("crash", caller, self.try_crash(&role).await) }
    }

    /// [`Conductor::crash`], returning the error instead of panicking.
    ///
    /// # Errors
    /// [`ConductorError::UnknownRole`], [`ConductorError::Gone`] when the role was already
    /// crashed or shut down.
    pub async fn try_crash(&self, role: &str) -> Result<(), ConductorError> {
        let index = self.run.index_of(role)?;
        self.run.mark_gone(index, Stop::Crash)?;
        self.run.trace(self.by, format!("crash {role}"));
        self.run.network.faults().crash(&self.run.addresses[index]);
        self.run.controls[index]
            .stop
            .send_replace(Some(Stop::Crash));
        self.run.await_phase(index, Phase::BodyEnded).await;
        Ok(())
    }

    /// Shuts `role` down gracefully: its body is dropped at its next await; if it is a
    /// cluster member it leaves the cluster (peers see it leave, not fail) and waits, up to
    /// the run's shutdown time-out, for its node to be removed; then its actor system
    /// terminates (every `stopped` hook runs) and its transport closes. Barriers stop
    /// expecting it. Returns once its system has terminated (a role that shuts itself down
    /// never returns from this call).
    ///
    /// # Panics
    /// When the role is unknown or already gone (see [`Conductor::try_shutdown`]).
    #[track_caller]
    pub fn shutdown(&self, role: &str) -> impl Future<Output = ()> + '_ {
        let caller = Location::caller();
        let role = role.to_owned();
        async move { or_panic("shutdown", caller, self.try_shutdown(&role).await) }
    }

    /// [`Conductor::shutdown`], returning the error instead of panicking.
    ///
    /// # Errors
    /// As [`Conductor::try_crash`].
    pub async fn try_shutdown(&self, role: &str) -> Result<(), ConductorError> {
        let index = self.run.index_of(role)?;
        self.run.mark_gone(index, Stop::Shutdown)?;
        self.run.trace(self.by, format!("shut down {role}"));
        self.run.controls[index]
            .stop
            .send_replace(Some(Stop::Shutdown));
        self.run.await_phase(index, Phase::Stopped).await;
        Ok(())
    }
}
