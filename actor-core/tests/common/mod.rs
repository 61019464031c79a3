//! Actors shared by the actor-core integration tests: a `Worker` that adds numbers, fails or
//! panics on command and reports its life to a probe, and a `Parent` that spawns children from
//! type-erased specs and reports their termination.
#![allow(dead_code)] // each test file uses a different part of this module

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actor_core::{
    Actor, ActorError, ActorRef, ActorResult, Context, Failure, Props, ReplyTo, SpawnError,
    Terminated,
};
use actor_testkit::{TestKit, await_assert};

/// What a [`Worker`] takes.
#[derive(Debug)]
pub enum Cmd {
    /// Add to the total and report `Handled`.
    Add(u32),
    /// Return an `Err` from the handler.
    Fail,
    /// Panic in the handler.
    Panic,
    /// Answer with the total.
    Get(ReplyTo<u32>),
    /// Keep the reply handle without answering.
    Hold(ReplyTo<u32>),
    /// Drop the reply handle without answering.
    Ignore(ReplyTo<u32>),
    /// Stop itself.
    StopSelf,
}

/// What the test actors report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    /// `started` (or `post_restart`) ran on instance `instance` (1 for the first).
    Started { name: String, instance: u32 },
    /// `Add(value)` was handled.
    Handled {
        name: String,
        instance: u32,
        value: u32,
    },
    /// `pre_restart` ran on the failed instance.
    PreRestart { name: String, instance: u32 },
    /// `stopped` ran.
    Stopped { name: String, instance: u32 },
    /// A parent's `terminated` hook saw a child (or a watched actor) go.
    ChildTerminated { parent: String, child: String },
}

impl Ev {
    pub fn started(name: &str, instance: u32) -> Ev {
        Ev::Started {
            name: name.into(),
            instance,
        }
    }
    pub fn handled(name: &str, instance: u32, value: u32) -> Ev {
        Ev::Handled {
            name: name.into(),
            instance,
            value,
        }
    }
    pub fn pre_restart(name: &str, instance: u32) -> Ev {
        Ev::PreRestart {
            name: name.into(),
            instance,
        }
    }
    pub fn stopped(name: &str, instance: u32) -> Ev {
        Ev::Stopped {
            name: name.into(),
            instance,
        }
    }
    pub fn child_terminated(parent: &str, child: &str) -> Ev {
        Ev::ChildTerminated {
            parent: parent.into(),
            child: child.into(),
        }
    }
}

/// Adds numbers, fails on command, and reports every hook to `events`.
pub struct Worker {
    name: String,
    instance: u32,
    total: u32,
    events: ActorRef<Ev>,
    held: Vec<ReplyTo<u32>>,
}

impl Worker {
    /// Props for a worker that reports as `name`; each instance gets the next number.
    pub fn props(name: &str, events: &ActorRef<Ev>) -> Props<Worker> {
        let instances = Arc::new(AtomicU32::new(0));
        let name = name.to_owned();
        let events = events.clone();
        Props::new(move || Worker {
            name: name.clone(),
            instance: instances.fetch_add(1, Ordering::SeqCst) + 1,
            total: 0,
            events: events.clone(),
            held: Vec::new(),
        })
    }
}

impl Actor for Worker {
    type Msg = Cmd;

    async fn started(&mut self, _: &mut Context<Self>) -> ActorResult {
        self.events.tell(Ev::started(&self.name, self.instance));
        Ok(())
    }

    async fn handle(&mut self, msg: Cmd, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Cmd::Add(n) => {
                self.total += n;
                self.events.tell(Ev::handled(&self.name, self.instance, n));
            }
            Cmd::Fail => return Err(ActorError::msg(format!("{} fails", self.name))),
            Cmd::Panic => panic!("{} panics", self.name),
            Cmd::Get(r) => {
                r.reply(self.total);
            }
            Cmd::Hold(r) => self.held.push(r),
            Cmd::Ignore(r) => drop(r),
            Cmd::StopSelf => ctx.stop(),
        }
        Ok(())
    }

    async fn pre_restart(&mut self, _: &Failure, _: &mut Context<Self>) {
        self.events.tell(Ev::pre_restart(&self.name, self.instance));
    }

    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.events.tell(Ev::stopped(&self.name, self.instance));
    }
}

/// Spawns one child into a parent's context.
pub type ChildSpec = Arc<dyn Fn(&mut Context<Parent>) -> Result<(), SpawnError> + Send + Sync>;

/// A child spec spawning a worker named `name`.
pub fn worker_child(name: &str, events: &ActorRef<Ev>) -> ChildSpec {
    let props = Worker::props(name, events);
    let name = name.to_owned();
    Arc::new(move |ctx| ctx.spawn(props.clone(), &name).map(drop))
}

/// A child spec spawning a parent named `name` with its own children.
pub fn parent_child(name: &str, props: Props<Parent>) -> ChildSpec {
    let name = name.to_owned();
    Arc::new(move |ctx| ctx.spawn(props.clone(), &name).map(drop))
}

/// What a [`Parent`] takes.
#[derive(Debug)]
pub enum ParentCmd {
    /// Stop the named child; answers whether it was a child.
    StopChild(String, ReplyTo<bool>),
    /// Spawn a worker child; answers with the spawn result.
    Spawn(Option<String>, ReplyTo<Result<String, SpawnError>>),
    /// Watch the named child explicitly (on top of the parent's own child signal); answers
    /// whether it was found.
    WatchChild(String, ReplyTo<bool>),
    /// Fail itself.
    Fail,
}

/// Spawns its children in `started` and reports `Started`, `ChildTerminated` and `Stopped`.
pub struct Parent {
    name: String,
    instance: u32,
    events: ActorRef<Ev>,
    children: Vec<ChildSpec>,
}

impl Parent {
    /// Props for a parent that reports as `name` and spawns `children` at every start.
    pub fn props(name: &str, events: &ActorRef<Ev>, children: Vec<ChildSpec>) -> Props<Parent> {
        let instances = Arc::new(AtomicU32::new(0));
        let name = name.to_owned();
        let events = events.clone();
        Props::new(move || Parent {
            name: name.clone(),
            instance: instances.fetch_add(1, Ordering::SeqCst) + 1,
            events: events.clone(),
            children: children.clone(),
        })
    }
}

impl Actor for Parent {
    type Msg = ParentCmd;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        for spawn in &self.children {
            spawn(ctx)?;
        }
        self.events.tell(Ev::started(&self.name, self.instance));
        Ok(())
    }

    async fn handle(&mut self, msg: ParentCmd, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            ParentCmd::StopChild(name, reply) => {
                let stopped = match ctx.child::<Cmd>(&name) {
                    Some(c) => ctx.stop_child(&c),
                    None => false,
                };
                reply.reply(stopped);
            }
            ParentCmd::Spawn(name, reply) => {
                let props = Worker::props(name.as_deref().unwrap_or("anonymous"), &self.events);
                let result = match name {
                    Some(n) => ctx.spawn(props, &n),
                    None => ctx.spawn_anonymous(props),
                };
                reply.reply(result.map(|r| r.path().to_string()));
            }
            ParentCmd::WatchChild(name, reply) => {
                let child = ctx.child::<Cmd>(&name);
                if let Some(c) = &child {
                    ctx.watch(c);
                }
                reply.reply(child.is_some());
            }
            ParentCmd::Fail => return Err(ActorError::msg(format!("{} fails", self.name))),
        }
        Ok(())
    }

    async fn terminated(&mut self, t: Terminated, _: &mut Context<Self>) -> ActorResult {
        self.events
            .tell(Ev::child_terminated(&self.name, t.path().name()));
        Ok(())
    }

    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.events.tell(Ev::stopped(&self.name, self.instance));
    }
}

/// Waits until a live actor of type `M` is at `path` and returns a ref to it.
pub async fn lookup<M: Send + 'static>(kit: &TestKit, path: &str) -> ActorRef<M> {
    await_assert(
        || kit.system().lookup_str::<M>(path),
        Duration::from_secs(3),
        Duration::from_millis(1),
    )
    .await
}

/// A multi-thread runtime with two worker threads (the benchmark machine's shape).
pub fn two_threads() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A current-thread runtime with time and I/O enabled.
pub fn one_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Answers every request with 7.
pub struct Echo;

impl Actor for Echo {
    type Msg = ReplyTo<u32>;
    async fn handle(&mut self, r: ReplyTo<u32>, _: &mut Context<Self>) -> ActorResult {
        r.reply(7);
        Ok(())
    }
}

/// Acknowledges every message on the channel it carries.
pub struct Ack;

impl Actor for Ack {
    type Msg = std::sync::mpsc::Sender<()>;
    async fn handle(
        &mut self,
        ack: std::sync::mpsc::Sender<()>,
        _: &mut Context<Self>,
    ) -> ActorResult {
        // the receiver may be gone once the test has what it waited for (or failed)
        let _ = ack.send(());
        Ok(())
    }
}

/// Tells every [`Ack`] once per round and waits (blocking the thread) for all acks before the
/// next round; a lost wake leaves an ack missing until `deadline`, and the test fails.
pub fn ack_rounds(
    actors: &[ActorRef<std::sync::mpsc::Sender<()>>],
    rounds: usize,
    who: &str,
    deadline: Duration,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    for round in 0..rounds {
        for a in actors {
            a.tell(tx.clone());
        }
        for i in 0..actors.len() {
            assert!(
                rx.recv_timeout(deadline).is_ok(),
                "{who}: round {round}, only {i} of {} acks",
                actors.len()
            );
        }
    }
}

/// Does nothing with its messages.
pub struct Idle;

impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// What a [`Relay`] takes: its partner, or the ball with the hops left.
pub enum Ball {
    /// The actor to pass the ball to.
    Partner(ActorRef<Ball>),
    /// The ball, with this many hops left (or, for an endless rally, made so far).
    Bounce(u32),
}

/// Passes the ball to its partner until no hops are left, then reports to `done`.
pub struct Relay {
    pub partner: Option<ActorRef<Ball>>,
    pub done: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Actor for Relay {
    type Msg = Ball;
    async fn handle(&mut self, msg: Ball, _: &mut Context<Self>) -> ActorResult {
        match msg {
            Ball::Partner(p) => self.partner = Some(p),
            Ball::Bounce(0) => {
                let _ = self.done.send(());
            }
            Ball::Bounce(n) => {
                if let Some(p) = &self.partner {
                    p.tell(Ball::Bounce(n - 1));
                }
            }
        }
        Ok(())
    }
}

/// Plays `pairs` rallies of `hops` hops, each between an actor of `left` and one of `right`
/// (the same system or two), and waits until every rally has ended; fails naming how many
/// ended when one has not within `deadline`.
pub async fn rally(
    left: &actor_core::ActorSystem,
    right: &actor_core::ActorSystem,
    pairs: usize,
    hops: u32,
    deadline: Duration,
) {
    let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
    let relay = |system: &actor_core::ActorSystem| {
        let done = done.clone();
        system
            .spawn_anonymous(Props::new(move || Relay {
                partner: None,
                done: done.clone(),
            }))
            .unwrap()
    };
    let mut servers = Vec::new();
    for _ in 0..pairs {
        let (a, b) = (relay(left), relay(right));
        a.tell(Ball::Partner(b.clone()));
        b.tell(Ball::Partner(a.clone()));
        servers.push(a);
    }
    for a in &servers {
        a.tell(Ball::Bounce(hops));
    }
    for n in 0..pairs {
        let got = tokio::time::timeout(deadline, finished.recv()).await;
        assert!(
            matches!(got, Ok(Some(()))),
            "only {n} of {pairs} rallies ended"
        );
    }
}
