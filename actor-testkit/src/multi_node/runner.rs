//! The runner: starts each role's node, runs its body, collects how it ended, and tears the
//! node down; one thread and runtime per role (thread mode) or every role on one paused
//! current-thread runtime (simulated mode).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actor_cluster::membership::ClusterEvent;
use actor_cluster::remote::Remoting;
use actor_core::{ActorId, ActorPath, ActorRef, ActorSystem, RefBackend, TellError, Watcher};
use futures_util::FutureExt;
use parking_lot::Mutex;

use super::START_BARRIER;
use super::barrier::{Participants, RoleEnd};
use super::node::{Node, NodeInner};
use super::report::{FailureKind, RoleFailure, RoleOutcome};
use super::run::{Phase, Run, Stop};

/// What a role's body may return: `()`, or a `Result` whose error fails the role.
pub trait RoleResult {
    /// `Ok` for success, or the error's text.
    fn into_role_result(self) -> Result<(), String>;
}

impl RoleResult for () {
    fn into_role_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> RoleResult for Result<(), E> {
    fn into_role_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// The path segment under `/system` of a node's trace recorder (it is not an actor: a ref
/// backend that records synchronously, so an event is in the trace as soon as the node's
/// membership state shows it).
const RECORDER_NAME: &str = "multi-node-trace";

/// Records every cluster event its node sees in the run's trace, inside `tell`.
struct Recorder {
    id: ActorId,
    run: Arc<Run>,
    index: usize,
}

impl RefBackend<ClusterEvent> for Recorder {
    fn id(&self) -> &ActorId {
        &self.id
    }

    fn tell(&self, event: ClusterEvent) -> Result<(), TellError<ClusterEvent>> {
        let line = describe_event(&self.run, &event);
        self.run.trace(self.index, line);
        Ok(())
    }

    fn stop(&self, _graceful: bool) {}

    fn watch(&self, _watcher: Watcher) {}

    fn unwatch(&self, _watcher: &ActorId) {}
}

/// The recorder of `system`, if the harness made one.
pub(crate) fn recorder(system: &ActorSystem) -> Option<ActorRef<ClusterEvent>> {
    system
        .try_extension::<RecorderSlot>()
        .map(|slot| slot.0.clone())
}

struct RecorderSlot(ActorRef<ClusterEvent>);

/// A cluster event in role names: `MemberUp node-b`, `LeaderChanged node-a`.
fn describe_event(run: &Run, event: &ClusterEvent) -> String {
    let name = |a: &actor_cluster::Address| {
        run.role_at(a)
            .map(str::to_owned)
            .unwrap_or_else(|| a.to_string())
    };
    match event {
        ClusterEvent::MemberJoined(m) => format!("MemberJoined {}", name(&m.address)),
        ClusterEvent::MemberWeaklyUp(m) => format!("MemberWeaklyUp {}", name(&m.address)),
        ClusterEvent::MemberUp(m) => format!("MemberUp {}", name(&m.address)),
        ClusterEvent::MemberLeft(m) => format!("MemberLeft {}", name(&m.address)),
        ClusterEvent::MemberExited(m) => format!("MemberExited {}", name(&m.address)),
        ClusterEvent::MemberDowned(m) => format!("MemberDowned {}", name(&m.address)),
        ClusterEvent::MemberRemoved {
            member,
            previous_status,
        } => format!(
            "MemberRemoved {} (was {previous_status:?})",
            name(&member.address)
        ),
        ClusterEvent::UnreachableMember(m) => format!("UnreachableMember {}", name(&m.address)),
        ClusterEvent::ReachableMember(m) => format!("ReachableMember {}", name(&m.address)),
        ClusterEvent::LeaderChanged(leader) => match leader {
            Some(a) => format!("LeaderChanged {}", name(a)),
            None => "LeaderChanged none".to_owned(),
        },
        ClusterEvent::RoleLeaderChanged { role, leader } => match leader {
            Some(a) => format!("RoleLeaderChanged {role} {}", name(a)),
            None => format!("RoleLeaderChanged {role} none"),
        },
    }
}

/// Starts role `index`'s node: transport, actor system, remoting, trace recorder and (if
/// the spec says so) cluster membership.
fn bootstrap(run: &Arc<Run>, index: usize) -> Result<Node, String> {
    let address = run.addresses[index].clone();
    let transport = run
        .network
        .bind(address.clone())
        .map_err(|e| format!("cannot bind {address}: {e}"))?;
    let settings = Remoting::system_settings(&*transport).seed(run.node_seed(index));
    let system = ActorSystem::with_settings(&run.config.system_name, settings)
        .map_err(|e| format!("cannot create the actor system: {e}"))?;
    let remoting = Remoting::start(&system, transport.clone())
        .map_err(|e| format!("cannot start remoting: {e}"))?;
    let path = ActorPath::root(system.address().clone())
        .child("system")
        .child(RECORDER_NAME);
    let recorder = ActorRef::from_backend(Arc::new(Recorder {
        id: ActorId::new(path, 0),
        run: run.clone(),
        index,
    }));
    system.extension(|_| RecorderSlot(recorder));
    let node = Node {
        inner: Arc::new(NodeInner {
            run: run.clone(),
            index,
            system,
            remoting,
            transport,
            cluster: Mutex::new(None),
        }),
    };
    if let Some(settings) = &run.config.cluster {
        let settings = settings(&run.roles[index]);
        node.join_cluster(settings)
            .map_err(|e| format!("cannot join the cluster: {e}"))?;
    }
    Ok(node)
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// How a role's body phase ended.
enum BodyEnd {
    Ok,
    Failed(FailureKind, String),
    Stopped(Stop),
}

/// How the role's driver left its node, for the thread runner.
pub(crate) struct Ending {
    pub(crate) outcome: RoleOutcome,
    /// The role crashed: drop its runtime without waiting for anything.
    pub(crate) crashed: bool,
}

/// Runs role `index` from start to end on the current runtime.
pub(crate) async fn drive_role<F, Fut>(run: Arc<Run>, index: usize, body: &F) -> Ending
where
    F: Fn(Node) -> Fut,
    Fut: Future,
    Fut::Output: RoleResult,
{
    let mut stop = run.controls[index].stop.subscribe();
    let mut node: Option<Node> = None;
    let end = {
        let node_slot = &mut node;
        let run = &run;
        let phase = async move {
            let started = match bootstrap(run, index) {
                Ok(n) => n,
                Err(message) => return BodyEnd::Failed(FailureKind::Setup, message),
            };
            *node_slot = Some(started.clone());
            let timeout = run.config.barrier_timeout;
            if let Err(e) = run
                .enter_barrier(index, START_BARRIER, Participants::All, timeout)
                .await
            {
                let message = e.to_string();
                return BodyEnd::Failed(FailureKind::Barrier(e), message);
            }
            let limit = run.config.run_timeout;
            let body = AssertUnwindSafe(body(started)).catch_unwind();
            match tokio::time::timeout(limit, body).await {
                Ok(Ok(result)) => match result.into_role_result() {
                    Ok(()) => BodyEnd::Ok,
                    Err(message) => BodyEnd::Failed(FailureKind::Error, message),
                },
                Ok(Err(payload)) => {
                    let message = panic_message(&*payload);
                    match run.failing_barrier(index) {
                        Some(e) => {
                            // the barrier error says it all (the panic adds the location)
                            let message = e.to_string();
                            BodyEnd::Failed(FailureKind::Barrier(e), message)
                        }
                        None => BodyEnd::Failed(FailureKind::Panicked, message),
                    }
                }
                Err(_) => BodyEnd::Failed(
                    FailureKind::RunTimedOut(limit),
                    format!("the body was still running after {limit:?}"),
                ),
            }
        };
        let phase = AssertUnwindSafe(phase).catch_unwind();
        tokio::pin!(phase);
        tokio::select! {
            biased;
            stop = stop.wait_for(Option::is_some) => match stop.ok().and_then(|s| *s) {
                Some(s) => BodyEnd::Stopped(s),
                None => BodyEnd::Failed(FailureKind::Setup, "the run's stop signal was lost".to_owned()),
            },
            end = &mut phase => match end {
                Ok(end) => end,
                Err(payload) => BodyEnd::Failed(FailureKind::Panicked, panic_message(&*payload)),
            },
        }
    };
    let outcome = match end {
        BodyEnd::Ok => {
            run.role_ended(index, RoleEnd::Finished);
            run.trace(index, "finished");
            RoleOutcome::Finished
        }
        BodyEnd::Failed(kind, message) => {
            let failure = RoleFailure {
                role: run.roles[index].clone(),
                position: run.position(index),
                kind,
                message,
            };
            run.role_ended(index, RoleEnd::Failed(failure.message.clone()));
            run.trace(index, format!("failed: {}", failure.message));
            RoleOutcome::Failed(failure)
        }
        BodyEnd::Stopped(Stop::Crash) => RoleOutcome::Crashed,
        BodyEnd::Stopped(Stop::Shutdown) => RoleOutcome::ShutDown,
    };
    run.set_phase(index, Phase::BodyEnded);
    let mut stop_now = match &outcome {
        RoleOutcome::Crashed => Some(Stop::Crash),
        RoleOutcome::ShutDown => Some(Stop::Shutdown),
        _ => None,
    };
    if stop_now.is_none() {
        // keep the node up for the others until every body has ended
        tokio::select! {
            biased;
            stop = stop.wait_for(Option::is_some) => stop_now = stop.ok().and_then(|s| *s),
            () = run.await_all_bodies_ended() => {}
        }
    }
    let crashed = stop_now == Some(Stop::Crash);
    if let Some(node) = &node {
        match stop_now {
            Some(Stop::Crash) if !run.network.is_simulated() => {
                // the thread runner drops the runtime: the system dies with it
            }
            Some(Stop::Crash) => terminate(&run, node).await,
            Some(Stop::Shutdown) => graceful_shutdown(&run, node).await,
            None => {
                terminate(&run, node).await;
                node.transport().shutdown().await;
            }
        }
    }
    run.set_phase(index, Phase::Stopped);
    Ending { outcome, crashed }
}

/// Terminates the node's system, bounded by the shutdown time-out.
async fn terminate(run: &Run, node: &Node) {
    let limit = run.config.shutdown_timeout;
    if tokio::time::timeout(limit, node.system().terminate())
        .await
        .is_err()
    {
        tracing::warn!(
            role = node.role(),
            ?limit,
            "actor system did not terminate in time"
        );
    }
}

/// Leaves the cluster (if a member), waits for the node to be removed, terminates the
/// system and closes the transport.
async fn graceful_shutdown(run: &Run, node: &Node) {
    if let Some(cluster) = node.try_cluster()
        && !node.system().is_terminated()
    {
        cluster.leave();
        // a node that left terminates its own system once it is Exiting
        let limit = run.config.shutdown_timeout;
        if !node.system().await_termination(limit).await {
            tracing::warn!(
                role = node.role(),
                ?limit,
                "leaving the cluster did not complete in time"
            );
        }
    }
    terminate(run, node).await;
    node.transport().shutdown().await;
}

/// Runs every role on its own thread with its own current-thread runtime.
pub(crate) fn run_threads<F, Fut>(run: &Arc<Run>, body: &F) -> Vec<RoleOutcome>
where
    F: Fn(Node) -> Fut + Sync,
    Fut: Future,
    Fut::Output: RoleResult,
{
    run.mark_start();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..run.roles.len())
            .map(|index| {
                let run = run.clone();
                std::thread::Builder::new()
                    .name(run.roles[index].clone())
                    .spawn_scoped(scope, move || role_thread(run, index, body))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(index, handle)| {
                let joined = handle
                    .map_err(|e| format!("cannot start the role's thread: {e}"))
                    .and_then(|h| h.join().map_err(|p| panic_message(&*p)));
                match joined {
                    Ok(outcome) => outcome,
                    Err(message) => {
                        run.role_ended(index, RoleEnd::Failed(message.clone()));
                        run.set_phase(index, Phase::Stopped);
                        RoleOutcome::Failed(RoleFailure {
                            role: run.roles[index].clone(),
                            position: run.position(index),
                            kind: FailureKind::Setup,
                            message,
                        })
                    }
                }
            })
            .collect()
    })
}

fn role_thread<F, Fut>(run: Arc<Run>, index: usize, body: &F) -> RoleOutcome
where
    F: Fn(Node) -> Fut,
    Fut: Future,
    Fut::Output: RoleResult,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let message = format!("cannot build the role's runtime: {e}");
            run.role_ended(index, RoleEnd::Failed(message.clone()));
            run.set_phase(index, Phase::Stopped);
            return RoleOutcome::Failed(RoleFailure {
                role: run.roles[index].clone(),
                position: run.position(index),
                kind: FailureKind::Setup,
                message,
            });
        }
    };
    let ending = runtime.block_on(drive_role(run, index, body));
    if ending.crashed {
        // abrupt: every task of the node is dropped without running
        runtime.shutdown_background();
    }
    ending.outcome
}

/// Runs every role on one current-thread runtime with a paused clock.
pub(crate) fn run_simulated<F, Fut>(
    run: &Arc<Run>,
    body: &F,
) -> Result<Vec<RoleOutcome>, std::io::Error>
where
    F: Fn(Node) -> Fut,
    Fut: Future,
    Fut::Output: RoleResult,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    let outcomes = runtime.block_on(async {
        run.mark_start();
        let roles = (0..run.roles.len()).map(|index| drive_role(run.clone(), index, body));
        futures_util::future::join_all(roles).await
    });
    Ok(outcomes.into_iter().map(|e| e.outcome).collect())
}
