//! Refs: `ask` with its typed errors (timeout in virtual time, dead recipient, dropped reply),
//! equality by path and incarnation, lookup by path with the right and the wrong type, and
//! message adapters.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use actor_core::{ActorPath, AskError, LookupError, PathError};
use actor_testkit::{TestKit, await_assert};
use common::{Cmd, Ev, Worker};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn ask_returns_the_reply() {
    let kit = TestKit::new("ask");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    w.tell(Cmd::Add(40));
    w.tell(Cmd::Add(2));
    assert_eq!(w.ask(Cmd::Get, secs(1)).await, Ok(42));
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ask_times_out_in_virtual_time() {
    let kit = TestKit::new("ask-timeout");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    let wall = std::time::Instant::now();
    let start = tokio::time::Instant::now();
    // the worker keeps the reply handle and never answers
    let result = w.ask(Cmd::Hold, secs(30)).await;
    assert_eq!(
        result,
        Err(AskError::Timeout {
            recipient: w.path().clone(),
            after: secs(30),
        })
    );
    assert!(start.elapsed() >= secs(30));
    assert!(
        wall.elapsed() < secs(5),
        "30 s of virtual time took {:?}",
        wall.elapsed()
    );
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ask_to_a_dead_actor_fails_at_once() {
    let kit = TestKit::new("ask-dead");
    let ev = kit.probe::<Ev>();
    let watcher = kit.probe::<()>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    watcher.watch(&w).await;
    w.stop();
    watcher.expect_terminated(&w).await;
    let start = tokio::time::Instant::now();
    assert_eq!(
        w.ask(Cmd::Get, secs(30)).await,
        Err(AskError::RecipientDead {
            recipient: w.path().clone()
        })
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ask_fails_when_the_reply_handle_is_dropped() {
    let kit = TestKit::new("ask-dropped");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    assert_eq!(
        w.ask(Cmd::Ignore, secs(30)).await,
        Err(AskError::NoReply {
            recipient: w.path().clone()
        })
    );
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ask_fails_when_the_recipient_dies_holding_the_request() {
    let kit = TestKit::new("ask-dies");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    let asking = tokio::spawn({
        let w = w.clone();
        async move { w.ask(Cmd::Hold, secs(30)).await }
    });
    ev.expect_msg(Ev::started("w", 1)).await;
    let watcher = kit.probe::<()>();
    watcher.watch(&w).await;
    w.stop();
    watcher.expect_terminated(&w).await;
    let result = asking.await.expect("the asking task ran");
    assert_eq!(
        result,
        Err(AskError::RecipientDead {
            recipient: w.path().clone()
        })
    );
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
// hashing uses only the path and the uid, which never change
#[allow(clippy::mutable_key_type)]
async fn refs_are_equal_by_path_and_incarnation() {
    let kit = TestKit::new("ref-equality");
    let ev = kit.probe::<Ev>();
    let a = kit.spawn(Worker::props("a", ev.actor_ref()), "a");
    let b = kit.spawn(Worker::props("b", ev.actor_ref()), "b");
    let set: HashSet<_> = [a.clone(), a.clone(), b.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    // a successor under the same name is another incarnation
    let watcher = kit.probe::<()>();
    watcher.watch(&a).await;
    a.stop();
    watcher.expect_terminated(&a).await;
    let a2 = await_assert(
        || kit.system().spawn(Worker::props("a", ev.actor_ref()), "a"),
        secs(3),
        Duration::from_millis(1),
    )
    .await;
    assert_eq!(a.path(), a2.path());
    assert_ne!(a.id().uid(), a2.id().uid());
    assert_ne!(a, a2);
    assert!(!set.contains(&a2));
    assert_eq!(a.to_string(), "actor://ref-equality/user/a");
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn lookup_by_path_checks_the_message_type() {
    let kit = TestKit::new("lookup");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    let path = w.path().clone();
    assert_eq!(
        ActorPath::parse(&path.to_string()).ok().as_ref(),
        Some(&path)
    );

    let found = kit
        .system()
        .lookup::<Cmd>(&path)
        .expect("found with its type");
    assert_eq!(found, w);
    found.tell(Cmd::Add(3));
    assert_eq!(w.ask(Cmd::Get, secs(1)).await, Ok(3));

    match kit.system().lookup::<String>(&path) {
        Err(LookupError::WrongMessageType { path: p, expected }) => {
            assert_eq!(p, path);
            assert_eq!(expected, std::any::type_name::<String>());
        }
        other => panic!("expected WrongMessageType, got {other:?}"),
    }
    assert!(matches!(
        kit.system().lookup_str::<Cmd>("actor://lookup/user/nobody"),
        Err(LookupError::NotFound { .. })
    ));
    assert!(matches!(
        kit.system().lookup_str::<Cmd>("actor://elsewhere/user/w"),
        Err(LookupError::ForeignPath { .. })
    ));
    assert!(matches!(
        kit.system().lookup_str::<Cmd>("http://lookup/user/w"),
        Err(LookupError::InvalidPath(PathError::MissingScheme { .. }))
    ));

    // a stopped actor is not found any more
    w.stop();
    await_assert(
        || {
            matches!(
                kit.system().lookup::<Cmd>(&path),
                Err(LookupError::NotFound { .. })
            )
        },
        secs(3),
        Duration::from_millis(1),
    )
    .await;
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_adapter_maps_messages_and_shares_the_identity() {
    let kit = TestKit::new("adapter");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    let adds = w.adapt(|n: u32| Cmd::Add(n * 10));
    adds.tell(4);
    assert_eq!(w.ask(Cmd::Get, secs(1)).await, Ok(40));
    assert_eq!(adds.id(), w.id());
    // watching the adapter watches the actor
    let watcher = kit.probe::<()>();
    watcher.watch(&adds).await;
    w.stop();
    watcher.expect_terminated(&w).await;
    kit.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_fails_with_recipient_dead_when_the_recipient_dies_on_a_multi_thread_runtime() {
    let kit = TestKit::new("ask-dies-mt");
    let ev = kit.probe::<Ev>();
    for round in 0..200 {
        let name = format!("w{round}");
        let w = kit.spawn(Worker::props(&name, ev.actor_ref()), &name);
        let asking = w.ask(Cmd::Hold, secs(30));
        tokio::pin!(asking);
        // the first poll sends the request
        assert!(futures_util::poll!(&mut asking).is_pending());
        ev.expect_msg(Ev::started(&name, 1)).await;
        // answered after the request was taken (one sender's messages stay in order)
        assert_eq!(w.ask(Cmd::Get, secs(3)).await, Ok(0));
        w.stop();
        assert_eq!(
            asking.await,
            Err(AskError::RecipientDead {
                recipient: w.path().clone()
            }),
            "round {round}"
        );
        ev.expect_msg(Ev::stopped(&name, 1)).await;
    }
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_adapter_reports_its_actors_death() {
    let kit = TestKit::new("adapter-dead");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    let getter = w.adapt(Cmd::Get);
    assert_eq!(getter.ask(|r| r, secs(1)).await, Ok(0));
    let watcher = kit.probe::<()>();
    watcher.watch(&w).await;
    w.stop();
    watcher.expect_terminated(&w).await;
    assert!(getter.is_terminated());
    assert_eq!(
        getter.ask(|r| r, secs(1)).await,
        Err(AskError::RecipientDead {
            recipient: w.path().clone()
        })
    );
    kit.shutdown().await;
}
