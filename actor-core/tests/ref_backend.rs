//! Refs backed by something other than a local cell (what remoting builds on): messages go
//! through the backend, and a watch of such a ref signals exactly once however often the
//! backend reports the termination.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use actor_core::{
    Actor, ActorId, ActorPath, ActorRef, ActorResult, Context, MailboxConfig, OverflowPolicy,
    Props, RefBackend, TellError, Terminated, Watcher,
};
use actor_testkit::{TestKit, TestProbe};
use parking_lot::Mutex;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A stand-in for a remote actor: records what is sent and who watches.
#[derive(Default)]
struct Recorded {
    sent: Vec<u32>,
    watchers: Vec<Watcher>,
    unwatched: Vec<ActorId>,
    stops: Vec<bool>,
}

struct FakeRemote {
    id: ActorId,
    log: Arc<Mutex<Recorded>>,
}

impl RefBackend<u32> for FakeRemote {
    fn id(&self) -> &ActorId {
        &self.id
    }
    fn tell(&self, msg: u32) -> Result<(), TellError<u32>> {
        self.log.lock().sent.push(msg);
        Ok(())
    }
    fn stop(&self, graceful: bool) {
        self.log.lock().stops.push(graceful);
    }
    fn watch(&self, watcher: Watcher) {
        self.log.lock().watchers.push(watcher);
    }
    fn unwatch(&self, watcher: &ActorId) {
        self.log.lock().unwatched.push(watcher.clone());
    }
}

fn fake_remote() -> (ActorRef<u32>, Arc<Mutex<Recorded>>) {
    let path = ActorPath::parse("actor://far@127.0.0.1:2552/user/remote").expect("a valid path");
    let log = Arc::new(Mutex::new(Recorded::default()));
    let r = ActorRef::from_backend(Arc::new(FakeRemote {
        id: ActorId::new(path, 42),
        log: log.clone(),
    }));
    (r, log)
}

#[derive(Debug)]
enum WMsg {
    Watch(ActorRef<u32>),
    Unwatch(ActorRef<u32>),
    Ping(u32),
}

/// Watches on command; reports pings and termination signals.
struct Watching {
    report: ActorRef<String>,
}

impl Actor for Watching {
    type Msg = WMsg;
    async fn handle(&mut self, msg: WMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            WMsg::Watch(t) => {
                ctx.watch(&t);
                self.report.tell("watching".into());
            }
            WMsg::Unwatch(t) => {
                ctx.unwatch(&t);
                self.report.tell("unwatched".into());
            }
            WMsg::Ping(n) => self.report.tell(format!("ping {n}")),
        }
        Ok(())
    }
    async fn terminated(&mut self, t: Terminated, _: &mut Context<Self>) -> ActorResult {
        self.report.tell(format!("terminated {}", t.actor()));
        Ok(())
    }
}

fn spawn_watching(
    kit: &TestKit,
    props: impl Fn(Props<Watching>) -> Props<Watching>,
) -> (ActorRef<WMsg>, TestProbe<String>) {
    let report = kit.probe::<String>();
    let to = report.actor_ref().clone();
    let a = kit.spawn(
        props(Props::new(move || Watching { report: to.clone() })),
        "watching",
    );
    (a, report)
}

#[tokio::test(start_paused = true)]
async fn a_backend_ref_carries_messages_stops_and_identity() {
    let (r, log) = fake_remote();
    assert!(!r.is_local());
    assert!(!r.is_terminated());
    assert_eq!(
        r.path().to_string(),
        "actor://far@127.0.0.1:2552/user/remote"
    );
    r.tell(1);
    assert!(r.try_tell(2).is_ok());
    r.poison_pill();
    r.stop();
    let log = log.lock();
    assert_eq!(log.sent, vec![1, 2]);
    assert_eq!(log.stops, vec![true, false]);
}

#[tokio::test(start_paused = true)]
async fn a_watch_through_a_backend_signals_exactly_once() {
    let kit = TestKit::new("backend-watch");
    let (a, report) = spawn_watching(&kit, |p| p);
    let (remote, log) = fake_remote();
    a.tell(WMsg::Watch(remote.clone()));
    report.expect_msg("watching".into()).await;
    let watcher = log
        .lock()
        .watchers
        .first()
        .cloned()
        .expect("the backend saw the watch");
    assert_eq!(watcher.id(), a.id());
    // the remote layer may report a termination more than once: one signal
    watcher.notify_terminated(remote.id().clone());
    watcher.notify_terminated(remote.id().clone());
    report
        .expect_msg(format!("terminated {}", remote.id()))
        .await;
    report.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn unwatch_through_a_backend_reaches_it_and_silences_the_signal() {
    let kit = TestKit::new("backend-unwatch");
    let (a, report) = spawn_watching(&kit, |p| p);
    let (remote, log) = fake_remote();
    a.tell(WMsg::Watch(remote.clone()));
    a.tell(WMsg::Unwatch(remote.clone()));
    report.expect_msg("watching".into()).await;
    report.expect_msg("unwatched".into()).await;
    let watcher = log
        .lock()
        .watchers
        .first()
        .cloned()
        .expect("the backend saw the watch");
    assert_eq!(log.lock().unwatched, vec![a.id().clone()]);
    // a late report after the unwatch is ignored
    watcher.notify_terminated(remote.id().clone());
    report.expect_no_msg(secs(1)).await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_system_message_does_not_take_a_bounded_mailbox_slot() {
    let kit = TestKit::new("backend-bounded");
    let one = NonZeroUsize::new(1).expect("non-zero");
    let (a, report) = spawn_watching(&kit, |p| {
        p.with_mailbox(MailboxConfig::bounded(one, OverflowPolicy::FailSender))
    });
    let (remote, log) = fake_remote();
    a.tell(WMsg::Watch(remote.clone()));
    report.expect_msg("watching".into()).await;
    let watcher = log
        .lock()
        .watchers
        .first()
        .cloned()
        .expect("the backend saw the watch");
    // the actor is idle with an empty mailbox; a termination signal arrives
    watcher.notify_terminated(remote.id().clone());
    // its one user slot is still free
    assert!(
        a.try_tell(WMsg::Ping(1)).is_ok(),
        "a user message was refused by an empty mailbox of capacity 1"
    );
    report
        .expect_msg_all_of(vec![format!("terminated {}", remote.id()), "ping 1".into()])
        .await;
    kit.shutdown().await;
}
