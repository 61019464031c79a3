//! [`ActorSystem`]: owns the guardian tree (`/user`, `/system`), the event stream, dead
//! letters and extensions, and terminates everything children-first.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::actor::Actor;
use crate::actor_ref::ActorRef;
use crate::cell::{CellCore, CellHandle, LocalCell, SystemMsg};
use crate::context::Context;
use crate::dispatcher::Dispatcher;
use crate::error::{ActorResult, LookupError, SpawnError, SystemError};
use crate::event_stream::{DeadLetterReason, EventStream};
#[cfg(test)]
use crate::mailbox::MailboxConfig;
use crate::path::{ActorId, ActorPath, Address, validate_actor_name, validate_system_name};
use crate::props::Props;
use crate::supervision::SupervisorStrategy;

/// Settings of an actor system.
#[derive(Debug, Clone, Default)]
pub struct SystemSettings {
    /// How the `/user` guardian supervises top-level actors (default: restart on message
    /// failures, stop on start failures, no limit).
    pub guardian_strategy: SupervisorStrategy,
    /// Seed of the system's random numbers (backoff jitter, and later gossip peer choice):
    /// the same seed gives the same choices. `None` seeds from the clock and process id.
    pub seed: Option<u64>,
    /// The address the system is reachable at; `None` for a local-only system. Remote
    /// layers set it so that paths carry `host:port`.
    pub address: Option<Address>,
}

impl SystemSettings {
    /// Sets the guardian's strategy.
    pub fn guardian_strategy(mut self, strategy: SupervisorStrategy) -> Self {
        self.guardian_strategy = strategy;
        self
    }

    /// Seeds the system's random numbers.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the address that paths carry.
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }
}

pub(crate) struct SystemInner {
    name: Arc<str>,
    address: Address,
    uid: u64,
    settings: SystemSettings,
    pub(crate) event_stream: EventStream,
    next_uid: AtomicU64,
    rng: AtomicU64,
    root: Mutex<Option<Arc<RootCell>>>,
    user: Mutex<Option<Arc<dyn CellHandle>>>,
    system: Mutex<Option<Arc<dyn CellHandle>>>,
    terminated: watch::Sender<bool>,
    extensions: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    runtime: tokio::runtime::Handle,
    pub(crate) dispatcher: Dispatcher,
    /// The runtime has several worker threads (tunes `ask`).
    pub(crate) multi_thread: bool,
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl SystemInner {
    pub(crate) fn dead_letter<M: Send + 'static>(
        &self,
        recipient: ActorPath,
        msg: M,
        reason: DeadLetterReason,
    ) {
        self.event_stream.record_dead_letter(recipient, msg, reason);
    }

    pub(crate) fn random_u64(&self) -> u64 {
        splitmix64(self.rng.fetch_add(GOLDEN_GAMMA, Ordering::Relaxed))
    }

    pub(crate) fn random_f64(&self) -> f64 {
        (self.random_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The guardians still in the tree (none once the system has terminated).
    pub(crate) fn root_children(&self) -> Vec<Arc<dyn CellHandle>> {
        let root = self.root.lock().clone();
        root.map(|r| r.core.child_list()).unwrap_or_default()
    }

    /// The runtime went away (its actors are abandoned): lets go of the tree and of the
    /// extensions, which may hold refs to actors, so that nothing keeps the system alive
    /// but its handles. Spawning fails from here on, as after termination.
    pub(crate) fn abandon(&self) {
        let root = self.root.lock().take();
        if let Some(root) = &root {
            root.core.abandon();
        }
        let guardians = (self.user.lock().take(), self.system.lock().take());
        let extensions = std::mem::take(&mut *self.extensions.lock());
        crate::dispatcher::drop_quietly((root, guardians, extensions), "an abandoned system");
    }
}

/// A running actor system: the root of an actor tree. Cheap to clone.
///
/// Create it inside a tokio runtime; its actors run on that runtime, as tasks of the system's
/// dispatcher (one tokio task per runtime worker thread runs them all). Call
/// [`ActorSystem::terminate`] to stop every actor (children before parents) and run their
/// `stopped` hooks.
///
/// # Examples
/// ```
/// use actor_core::{Actor, ActorResult, ActorSystem, Context, Props};
///
/// struct Greeter;
/// impl Actor for Greeter {
///     type Msg = String;
///     async fn handle(&mut self, name: String, _: &mut Context<Self>) -> ActorResult {
///         println!("hello, {name}");
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let system = ActorSystem::new("hello").unwrap();
/// let greeter = system.spawn(Props::new(|| Greeter), "greeter").unwrap();
/// assert_eq!(greeter.path().to_string(), "actor://hello/user/greeter");
/// greeter.tell("world".to_string());
/// system.terminate().await;
/// # }
/// ```
#[derive(Clone)]
pub struct ActorSystem {
    pub(crate) inner: Arc<SystemInner>,
}

/// The guardians' actor: it does nothing but supervise its children.
struct Guardian;

impl Actor for Guardian {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

impl ActorSystem {
    /// A system with default settings.
    ///
    /// # Errors
    /// [`SystemError::InvalidName`] unless the name is `[a-zA-Z0-9-_]+`;
    /// [`SystemError::NoRuntime`] outside a tokio runtime.
    pub fn new(name: &str) -> Result<Self, SystemError> {
        ActorSystem::with_settings(name, SystemSettings::default())
    }

    /// A system with the given settings.
    ///
    /// # Errors
    /// As [`ActorSystem::new`].
    pub fn with_settings(name: &str, settings: SystemSettings) -> Result<Self, SystemError> {
        validate_system_name(name)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SystemError::NoRuntime)?;
        let seed = settings.seed.unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            nanos ^ ((std::process::id() as u64) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
        });
        let address = settings
            .address
            .clone()
            .unwrap_or_else(|| Address::local(name));
        let (terminated, _) = watch::channel(false);
        let inner = Arc::new(SystemInner {
            name: name.into(),
            address: address.clone(),
            uid: splitmix64(seed ^ 0x5eed).max(1),
            event_stream: EventStream::default(),
            next_uid: AtomicU64::new(1),
            rng: AtomicU64::new(seed),
            root: Mutex::new(None),
            user: Mutex::new(None),
            system: Mutex::new(None),
            terminated,
            extensions: Mutex::new(HashMap::new()),
            runtime: runtime.clone(),
            settings,
            dispatcher: Dispatcher::new(Dispatcher::workers_for(&runtime)),
            multi_thread: runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread,
        });
        Dispatcher::start(&inner, &runtime);
        let root = Arc::new(RootCell {
            core: CellCore::new(
                ActorId::new(ActorPath::root(address), 0),
                ActorSystem::from_inner(inner.clone()),
                None,
            ),
        });
        let root_handle: Arc<dyn CellHandle> = root.clone();
        *inner.root.lock() = Some(root);
        let user_props =
            Props::new(|| Guardian).supervisor(inner.settings.guardian_strategy.clone());
        // the root is fresh and open, so spawning the guardians cannot fail
        if let Ok(user) = spawn_cell(
            &root_handle,
            user_props,
            root_handle.core().id.path().child("user"),
        ) {
            *inner.user.lock() = Some(user);
        }
        if let Ok(system) = spawn_cell(
            &root_handle,
            Props::new(|| Guardian),
            root_handle.core().id.path().child("system"),
        ) {
            *inner.system.lock() = Some(system);
        }
        Ok(ActorSystem { inner })
    }

    pub(crate) fn from_inner(inner: Arc<SystemInner>) -> Self {
        ActorSystem { inner }
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address its paths carry.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// This system's incarnation uid (a restarted system gets a new one).
    pub fn uid(&self) -> u64 {
        self.inner.uid
    }

    /// The settings it was created with.
    pub fn settings(&self) -> &SystemSettings {
        &self.inner.settings
    }

    /// Spawns a top-level actor under `/user`.
    ///
    /// # Errors
    /// [`SpawnError::InvalidName`], [`SpawnError::DuplicateName`], or
    /// [`SpawnError::ParentStopping`] once the system terminates.
    pub fn spawn<A: Actor>(
        &self,
        props: Props<A>,
        name: &str,
    ) -> Result<ActorRef<A::Msg>, SpawnError> {
        spawn_child(
            &self.guardian(&self.inner.user, "user", name)?,
            props,
            Some(name),
        )
    }

    /// Spawns a top-level actor under `/user` with a generated name.
    ///
    /// # Errors
    /// [`SpawnError::ParentStopping`] once the system terminates.
    pub fn spawn_anonymous<A: Actor>(
        &self,
        props: Props<A>,
    ) -> Result<ActorRef<A::Msg>, SpawnError> {
        spawn_child(
            &self.guardian(&self.inner.user, "user", "$anonymous")?,
            props,
            None,
        )
    }

    /// Spawns an infrastructure actor under `/system` (stopped after all `/user` actors).
    ///
    /// # Errors
    /// As [`ActorSystem::spawn`].
    pub fn spawn_system_actor<A: Actor>(
        &self,
        props: Props<A>,
        name: &str,
    ) -> Result<ActorRef<A::Msg>, SpawnError> {
        spawn_child(
            &self.guardian(&self.inner.system, "system", name)?,
            props,
            Some(name),
        )
    }

    /// The guardian in `slot`, or `ParentStopping` once the system has terminated.
    fn guardian(
        &self,
        slot: &Mutex<Option<Arc<dyn CellHandle>>>,
        guardian_name: &str,
        name: &str,
    ) -> Result<Arc<dyn CellHandle>, SpawnError> {
        let guardian = slot.lock().clone();
        guardian.ok_or_else(|| SpawnError::ParentStopping {
            parent: ActorPath::root(self.inner.address.clone()).child(guardian_name),
            name: name.to_owned(),
        })
    }

    /// Finds a live local actor by path and returns a ref of the requested message type.
    ///
    /// # Errors
    /// [`LookupError::NotFound`], [`LookupError::ForeignPath`] for another system's path,
    /// [`LookupError::WrongMessageType`] when the actor takes another type.
    pub fn lookup<M: Send + 'static>(&self, path: &ActorPath) -> Result<ActorRef<M>, LookupError> {
        let ours = path.address() == &self.inner.address
            || (path.address().is_local() && path.address().system() == self.name());
        if !ours {
            return Err(LookupError::ForeignPath {
                path: path.clone(),
                system: self.name().to_owned(),
            });
        }
        let not_found = || LookupError::NotFound { path: path.clone() };
        let root = self.inner.root.lock().clone();
        let mut cur: Arc<dyn CellHandle> = root.ok_or_else(not_found)?;
        for e in path.elements() {
            let next = cur.core().children.lock().get(e.as_bytes()).cloned();
            cur = next.ok_or_else(not_found)?;
        }
        if cur.core().is_dead() {
            return Err(not_found());
        }
        cur.as_any()
            .downcast::<LocalCell<M>>()
            .map(ActorRef::local)
            .map_err(|_| LookupError::WrongMessageType {
                path: path.clone(),
                expected: std::any::type_name::<M>(),
            })
    }

    /// [`ActorSystem::lookup`] from a path string.
    ///
    /// # Errors
    /// [`LookupError::InvalidPath`] for a malformed string, else as `lookup`.
    pub fn lookup_str<M: Send + 'static>(&self, path: &str) -> Result<ActorRef<M>, LookupError> {
        self.lookup(&ActorPath::parse(path)?)
    }

    /// The system's event stream.
    pub fn event_stream(&self) -> &EventStream {
        &self.inner.event_stream
    }

    /// Publishes a message as a dead letter (for layers that route messages, e.g. remoting).
    pub fn publish_dead_letter<M: Send + 'static>(
        &self,
        recipient: ActorPath,
        msg: M,
        reason: DeadLetterReason,
    ) {
        self.inner.dead_letter(recipient, msg, reason);
    }

    /// A number from the system's seeded generator.
    pub fn random_u64(&self) -> u64 {
        self.inner.random_u64()
    }

    /// The system's extension of type `T`, created by `init` on first use. Concurrent first
    /// uses may both run `init`; one result wins and both callers get it.
    pub fn extension<T: Send + Sync + 'static>(
        &self,
        init: impl FnOnce(&ActorSystem) -> T,
    ) -> Arc<T> {
        let key = TypeId::of::<T>();
        if let Some(e) = self.inner.extensions.lock().get(&key).cloned()
            && let Ok(t) = e.downcast::<T>()
        {
            return t;
        }
        let fresh: Arc<dyn Any + Send + Sync> = Arc::new(init(self));
        let stored = self
            .inner
            .extensions
            .lock()
            .entry(key)
            .or_insert(fresh)
            .clone();
        match stored.downcast::<T>() {
            Ok(t) => t,
            Err(_) => unreachable_extension(),
        }
    }

    /// The extension of type `T` if one was created.
    pub fn try_extension<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let e = self
            .inner
            .extensions
            .lock()
            .get(&TypeId::of::<T>())
            .cloned()?;
        e.downcast::<T>().ok()
    }

    /// Stops every actor (children before parents, `/user` before `/system`), runs their
    /// `stopped` hooks, and returns once all have stopped. Calling it again just waits.
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel termination.
    pub async fn terminate(&self) {
        let user = self.inner.user.lock().clone();
        match user {
            Some(u) => u.send_system(SystemMsg::Stop),
            None => {
                let _ = self.inner.terminated.send_replace(true);
            }
        }
        self.when_terminated().await;
    }

    /// Resolves once the system has terminated.
    pub async fn when_terminated(&self) {
        let mut rx = self.inner.terminated.subscribe();
        let _ = rx.wait_for(|t| *t).await;
    }

    /// Whether the system has terminated.
    pub fn is_terminated(&self) -> bool {
        *self.inner.terminated.borrow()
    }

    /// The tokio runtime the system's actors run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    /// How many dead letters were recorded.
    pub fn dead_letter_count(&self) -> u64 {
        self.inner.event_stream.dead_letter_count()
    }

    /// Waits until the system terminates or `timeout` passes; true if it terminated.
    pub async fn await_termination(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.when_terminated())
            .await
            .is_ok()
    }
}

#[cold]
fn unreachable_extension() -> ! {
    panic!("extension map holds a value of another type under a TypeId")
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("name", &self.inner.name)
            .field("address", &self.inner.address)
            .field("uid", &self.inner.uid)
            .finish()
    }
}

/// The root of the tree: not an actor, just the parent of the two guardians. It stops the
/// system guardian after the user guardian and marks the system terminated after both.
struct RootCell {
    core: CellCore,
}

impl CellHandle for RootCell {
    fn core(&self) -> &CellCore {
        &self.core
    }

    fn rouse(&self) -> bool {
        false
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    /// Handles the message at once: the root has no run loop.
    fn accept_system(&self, msg: SystemMsg) -> bool {
        let system = &self.core.system.inner;
        match msg {
            SystemMsg::Failed { child, failure } => {
                tracing::error!(guardian = %child, %failure, "a guardian failed; terminating the actor system");
                if let Some(u) = system.user.lock().clone() {
                    u.send_system(SystemMsg::Stop);
                }
            }
            SystemMsg::Terminated(id) => {
                self.core.children.lock().remove(id.path().name_bytes());
                match id.path().name() {
                    "user" => {
                        if let Some(s) = system.system.lock().clone() {
                            s.send_system(SystemMsg::Stop);
                        }
                    }
                    _ => {
                        {
                            let children = self.core.children.lock();
                            self.core.close_children(&children);
                        }
                        system.user.lock().take();
                        system.system.lock().take();
                        system.root.lock().take();
                        // dropped after the lock is released: an extension's Drop may use
                        // the system's extensions
                        let extensions = std::mem::take(&mut *system.extensions.lock());
                        drop(extensions);
                        system.dispatcher.terminate();
                        let _ = system.terminated.send_replace(true);
                    }
                }
            }
            SystemMsg::Stop | SystemMsg::Resume | SystemMsg::Restart(_) => {}
        }
        false
    }
}

/// Spawns an actor as a child of `parent`.
pub(crate) fn spawn_child<A: Actor>(
    parent: &Arc<dyn CellHandle>,
    props: Props<A>,
    name: Option<&str>,
) -> Result<ActorRef<A::Msg>, SpawnError> {
    let path = match name {
        Some(n) => {
            validate_actor_name(n)?;
            parent.core().id.path().child(n)
        }
        None => parent.core().generated_child_path(),
    };
    spawn_cell(parent, props, path).map(ActorRef::local)
}

fn spawn_cell<A: Actor>(
    parent: &Arc<dyn CellHandle>,
    props: Props<A>,
    path: ActorPath,
) -> Result<Arc<LocalCell<A::Msg>>, SpawnError> {
    let pcore = parent.core();
    let system = &pcore.system;
    let uid = system.inner.next_uid.fetch_add(1, Ordering::Relaxed);
    let core = CellCore::new(
        ActorId::new(path, uid),
        system.clone(),
        Some(parent.clone()),
    );
    let cell = LocalCell::<A::Msg>::new(core, &props.mailbox, props.recipe.0);
    {
        let mut children = pcore.children.lock();
        let refused = if pcore.children_closed(&children) {
            Some(SpawnError::ParentStopping {
                parent: pcore.id.path().clone(),
                name: cell.core.id.path().name().to_owned(),
            })
        } else if !children.insert(cell.clone()) {
            Some(SpawnError::DuplicateName {
                parent: pcore.id.path().clone(),
                name: cell.core.id.path().name().to_owned(),
            })
        } else {
            None
        };
        if let Some(error) = refused {
            // nothing else holds the cell: it goes, with the recipe it kept
            return Err(error);
        }
    }
    system.inner.dispatcher.schedule(cell.clone());
    Ok(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Idle;
    impl Actor for Idle {
        type Msg = ();
        async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
            Ok(())
        }
    }

    /// Memory per idle actor is a benchmark target, and the boxed run loop is its largest part
    /// (152 bytes at the time of writing, in debug and release builds; 200 while the context
    /// kept its own copy of the system handle the cell has, 192 while the idle wait sat inside
    /// a `match` on `batch.pop_front()` (the scrutinee, an `Option` of an envelope, lives
    /// across the await) and `states` and `process` were `async fn`s). It was 432 while `run`
    /// and `guarded` were `async fn`s, which keep their by-value arguments twice; 280 while the
    /// context kept its cell beside its own ref and a recipe of 32 bytes; 248 while the run
    /// loop awaited a termination signal in the scope of its envelope and the cold states in
    /// a match on the state (a value in scope across an await stays in the future, even when
    /// moved out of).
    #[tokio::test]
    async fn an_idle_actor_task_stays_small() {
        let system = ActorSystem::new("size").unwrap();
        let guardian = system.guardian(&system.inner.user, "user", "x").unwrap();
        let core = CellCore::new(
            ActorId::new(ActorPath::parse("actor://size/user/x").unwrap(), 99),
            system.clone(),
            Some(guardian),
        );
        let recipe = Props::new(|| Idle).recipe;
        let cell = LocalCell::<()>::new(core, &MailboxConfig::default(), recipe.0.clone());
        let ctx = Context::new(cell, recipe);
        let fut = crate::runner::Runner::new(ctx).run();
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 152, "an idle actor's task future is {size} bytes");
        // the cell is the other large part (288 bytes with the children, the watchers and the
        // count of generated names inline, and a mutex around the run loop; 200 with the
        // run loop's waker kept in the mailbox and no recipe to start from)
        let cell_size = std::mem::size_of::<LocalCell<()>>();
        assert!(cell_size <= 192, "an actor's cell is {cell_size} bytes");
        drop(fut);
        system.terminate().await;
    }
}
