//! Shared pieces of the remoting tests: message types, small actors, node set-up and the
//! scenarios every transport runs.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use actor_cluster::Transport;
use actor_cluster::remote::{RemoteSettings, Remoting};
use actor_cluster::wire::RemoteMessage;
use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, ReplyTo};
use actor_testkit::TestKit;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping(pub u32);
impl RemoteMessage for Ping {
    const MANIFEST: &'static str = "test.Ping";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong(pub u32);
impl RemoteMessage for Pong {
    const MANIFEST: &'static str = "test.Pong";
}

/// A request whose answer goes to the asker.
#[derive(Serialize, Deserialize)]
pub struct Double(pub u32, pub ReplyTo<Pong>);
impl RemoteMessage for Double {
    const MANIFEST: &'static str = "test.Double";
}

/// A message carrying a ref the receiver answers to.
#[derive(Serialize, Deserialize)]
pub struct Greet {
    pub name: String,
    pub reply_to: ActorRef<Pong>,
}
impl RemoteMessage for Greet {
    const MANIFEST: &'static str = "test.Greet";
}

/// Answers `Double(n)` with `Pong(2n)`.
pub struct Doubler;
impl Actor for Doubler {
    type Msg = Double;
    async fn handle(&mut self, Double(n, reply): Double, _: &mut Context<Self>) -> ActorResult {
        reply.reply(Pong(n * 2));
        Ok(())
    }
}

/// Answers `Greet` with `Pong(name length)` to the ref in the message.
pub struct Greeter;
impl Actor for Greeter {
    type Msg = Greet;
    async fn handle(&mut self, greet: Greet, _: &mut Context<Self>) -> ActorResult {
        greet.reply_to.tell(Pong(greet.name.len() as u32));
        Ok(())
    }
}

/// Forwards every `Ping` to a local ref (a probe).
pub struct Forward(pub ActorRef<Ping>);
impl Actor for Forward {
    type Msg = Ping;
    async fn handle(&mut self, ping: Ping, _: &mut Context<Self>) -> ActorResult {
        self.0.tell(ping);
        Ok(())
    }
}

/// One node: a test kit whose system is reachable through a transport, with remoting.
pub struct Node {
    pub kit: TestKit,
    pub remoting: Arc<Remoting>,
}

impl Node {
    pub fn system(&self) -> &ActorSystem {
        self.kit.system()
    }

    pub async fn shutdown(self) {
        self.kit.shutdown().await;
    }
}

/// Settings that notice a lost peer within two seconds (virtual time in most tests).
pub fn quick_settings() -> RemoteSettings {
    RemoteSettings::default()
        .loss_timeout(Duration::from_secs(2))
        .tick_interval(Duration::from_millis(100))
}

pub fn node(transport: Arc<dyn Transport>) -> Node {
    node_with(transport, quick_settings())
}

pub fn node_with(transport: Arc<dyn Transport>, settings: RemoteSettings) -> Node {
    let name = transport.local_address().system().to_owned();
    let system = ActorSystem::with_settings(&name, Remoting::system_settings(&*transport)).unwrap();
    let remoting = Remoting::start_with(&system, transport, settings).unwrap();
    remoting.register::<Ping>().unwrap();
    remoting.register::<Pong>().unwrap();
    remoting.register::<Double>().unwrap();
    remoting.register::<Greet>().unwrap();
    Node {
        kit: TestKit::from_system(system),
        remoting,
    }
}

pub const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// 100 tells from `a` arrive at a probe on `b`, in order.
pub async fn tell_arrives_in_order(a: &Node, b: &Node) {
    let probe = b.kit.probe::<Ping>();
    let target = b.kit.spawn(
        Props::new({
            let to = probe.actor_ref().clone();
            move || Forward(to.clone())
        }),
        "forward",
    );
    let remote = a.remoting.remote_ref::<Ping>(target.path()).unwrap();
    assert!(!remote.is_local());
    assert_eq!(remote.path(), target.path());
    for i in 0..100 {
        remote.tell(Ping(i));
    }
    for i in 0..100 {
        probe.expect_msg(Ping(i)).await;
    }
}

/// `ask` on a remote ref gets the remote actor's answer.
pub async fn ask_gets_the_answer(a: &Node, b: &Node) {
    let doubler = b.kit.spawn(Props::new(|| Doubler), "doubler");
    let remote = a.remoting.remote_ref::<Double>(doubler.path()).unwrap();
    for n in [21, 5, 0] {
        let answer = remote.ask(|r| Double(n, r), ASK_TIMEOUT).await;
        assert_eq!(answer, Ok(Pong(n * 2)));
    }
}

/// A ref inside a message resolves on arrival and carries the answer back.
pub async fn ref_in_message_is_usable(a: &Node, b: &Node) {
    let greeter = b.kit.spawn(Props::new(|| Greeter), "greeter");
    let remote = a.remoting.remote_ref::<Greet>(greeter.path()).unwrap();
    let answers = a.kit.probe::<Pong>();
    remote.tell(Greet {
        name: "remote".into(),
        reply_to: answers.actor_ref().clone(),
    });
    answers.expect_msg(Pong(6)).await;
}

/// A remote actor that stops is reported by exactly one `Terminated`.
pub async fn watch_reports_one_termination(a: &Node, b: &Node, quiet: Duration) {
    let doubler = b.kit.spawn(Props::new(|| Doubler), "watched");
    let remote = a.remoting.remote_ref::<Double>(doubler.path()).unwrap();
    // the actor is alive and reachable
    assert_eq!(remote.ask(|r| Double(1, r), ASK_TIMEOUT).await, Ok(Pong(2)));
    let watcher = a.kit.probe::<()>();
    watcher.watch(&remote).await;
    // a second watch of the same actor is the same watch
    watcher.watch(&remote).await;
    doubler.stop();
    watcher.expect_terminated(&remote).await;
    watcher.expect_no_terminated(quiet).await;
}
