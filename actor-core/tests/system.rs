//! The actor system: validated names, the `/user` tree, typed spawn errors, generated names,
//! and termination that stops children before parents and runs every `stopped` hook.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actor_core::{
    Actor, ActorResult, ActorSystem, Context, LookupError, PathError, Props, SpawnError,
    SystemError,
};
use actor_testkit::{TestKit, await_assert};
use common::{Ev, Parent, ParentCmd, Worker, lookup};
use parking_lot::Mutex;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test]
async fn an_invalid_system_name_is_a_typed_error() {
    for bad in ["", "has space", "a/b", "dot.ted", "ümlaut"] {
        match ActorSystem::new(bad) {
            Err(SystemError::InvalidName(PathError::InvalidSystemName { name })) => {
                assert_eq!(name, bad)
            }
            other => panic!("{bad:?}: expected InvalidSystemName, got {other:?}"),
        }
    }
    for good in ["a", "my-system_2", "A-Z"] {
        let system = ActorSystem::new(good).expect("a valid name");
        assert_eq!(system.name(), good);
        system.terminate().await;
    }
}

#[test]
fn a_system_outside_a_runtime_is_a_typed_error() {
    assert!(matches!(
        ActorSystem::new("no-runtime"),
        Err(SystemError::NoRuntime)
    ));
}

#[tokio::test(start_paused = true)]
async fn top_level_actors_live_under_user_and_children_below_them() {
    let kit = TestKit::new("paths");
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    assert_eq!(w.path().to_string(), "actor://paths/user/w");
    assert_eq!(w.path().elements(), vec!["user", "w"]);
    let p = kit.spawn(
        Parent::props(
            "p",
            ev.actor_ref(),
            vec![common::worker_child("c", ev.actor_ref())],
        ),
        "p",
    );
    let c = lookup::<common::Cmd>(&kit, "actor://paths/user/p/c").await;
    assert_eq!(c.path().parent(), Some(p.path()));
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_sibling_name_is_a_typed_error() {
    let kit = TestKit::new("duplicates");
    let ev = kit.probe::<Ev>();
    kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    match kit.system().spawn(Worker::props("w", ev.actor_ref()), "w") {
        Err(SpawnError::DuplicateName { parent, name }) => {
            assert_eq!(parent.to_string(), "actor://duplicates/user");
            assert_eq!(name, "w");
        }
        other => panic!("expected DuplicateName, got {other:?}"),
    }
    // among a parent's children too
    let p = kit.spawn(Parent::props("p", ev.actor_ref(), vec![]), "p");
    let first = p
        .ask(|r| ParentCmd::Spawn(Some("c".into()), r), secs(1))
        .await;
    assert_eq!(first, Ok(Ok("actor://duplicates/user/p/c".to_string())));
    let second = p
        .ask(|r| ParentCmd::Spawn(Some("c".into()), r), secs(1))
        .await;
    match second {
        Ok(Err(SpawnError::DuplicateName { parent, name })) => {
            assert_eq!(parent.to_string(), "actor://duplicates/user/p");
            assert_eq!(name, "c");
        }
        other => panic!("expected DuplicateName, got {other:?}"),
    }
    kit.shutdown().await;
}

/// A refused spawn leaves nothing behind: the refused actor's recipe (and the run loop made
/// for it before the name was checked) is dropped, and its factory never runs.
#[tokio::test(start_paused = true)]
async fn a_refused_spawn_drops_everything_it_made() {
    struct Quiet;
    impl Actor for Quiet {
        type Msg = ();
        async fn handle(&mut self, (): (), _: &mut Context<Self>) -> ActorResult {
            Ok(())
        }
    }
    let kit = TestKit::new("refused");
    kit.spawn(Props::new(|| Quiet), "taken");
    let token = Arc::new(());
    let held = token.clone();
    let refused = kit.system().spawn(
        Props::new(move || -> Quiet {
            let _ = &held;
            panic!("the factory of a refused actor ran")
        }),
        "taken",
    );
    assert!(matches!(refused, Err(SpawnError::DuplicateName { .. })));
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the refused actor's recipe is still held"
    );
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_actor_name_is_a_typed_error() {
    let kit = TestKit::new("bad-actor-names");
    let ev = kit.probe::<Ev>();
    for bad in ["", "a/b", "$reserved", "with space", "q?"] {
        match kit.system().spawn(Worker::props("x", ev.actor_ref()), bad) {
            Err(SpawnError::InvalidName(PathError::InvalidActorName { name })) => {
                assert_eq!(name, bad)
            }
            other => panic!("{bad:?}: expected InvalidActorName, got {other:?}"),
        }
    }
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn anonymous_actors_get_generated_names() {
    let kit = TestKit::new("generated");
    let ev = kit.probe::<Ev>();
    let a = kit.spawn_anonymous(Worker::props("a", ev.actor_ref()));
    let b = kit.spawn_anonymous(Worker::props("b", ev.actor_ref()));
    assert_eq!(a.path().to_string(), "actor://generated/user/$zz");
    assert_eq!(b.path().to_string(), "actor://generated/user/$zy");
    let p = kit.spawn(Parent::props("p", ev.actor_ref(), vec![]), "p");
    let child = p.ask(|r| ParentCmd::Spawn(None, r), secs(1)).await;
    assert_eq!(child, Ok(Ok("actor://generated/user/p/$zz".to_string())));
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn generated_names_sort_in_reverse_creation_order() {
    let kit = TestKit::new("generated-order");
    let ev = kit.probe::<Ev>();
    // 26 * 26 + 1 names cross the one-, two- and three-digit boundaries
    let names: Vec<String> = (0..26 * 26 + 1)
        .map(|i| {
            let r = kit.spawn_anonymous(Worker::props(&format!("w{i}"), ev.actor_ref()));
            r.path().name().to_owned()
        })
        .collect();
    assert_eq!(names[25], "$za");
    assert_eq!(names[26], "$yyz");
    assert_eq!(names[26 * 26], "$xyzz");
    assert!(
        names.windows(2).all(|w| w[0].as_bytes() > w[1].as_bytes()),
        "generated names must sort in reverse creation order"
    );
    kit.shutdown().await;
}

/// A tree node: spawns its children at start and records its name when it stops.
struct Node {
    name: String,
    children: Vec<(String, Props<Node>)>,
    log: Log,
}

/// The names of stopped nodes, in the order their `stopped` hooks ran.
type Log = Arc<Mutex<Vec<String>>>;

fn node(name: &str, log: &Log, children: Vec<(String, Props<Node>)>) -> (String, Props<Node>) {
    let log = log.clone();
    let own = name.to_owned();
    (
        name.to_owned(),
        Props::new(move || Node {
            name: own.clone(),
            children: children.clone(),
            log: log.clone(),
        }),
    )
}

impl Actor for Node {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        for (name, props) in &self.children {
            ctx.spawn(props.clone(), name)?;
        }
        Ok(())
    }
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
    async fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.lock().push(self.name.clone());
    }
}

#[tokio::test(start_paused = true)]
async fn terminate_stops_children_before_parents_and_runs_every_stopped_hook() {
    let kit = TestKit::new("termination-order");
    let log = Arc::new(Mutex::new(Vec::new()));
    // a -> (b -> (c, d), e); f
    let tree = node(
        "a",
        &log,
        vec![
            node(
                "b",
                &log,
                vec![node("c", &log, vec![]), node("d", &log, vec![])],
            ),
            node("e", &log, vec![]),
        ],
    );
    kit.spawn(tree.1, &tree.0);
    let f = node("f", &log, vec![]);
    kit.spawn(f.1, &f.0);
    for leaf in ["a/b/c", "a/b/d", "a/e", "f"] {
        lookup::<()>(&kit, &format!("actor://termination-order/user/{leaf}")).await;
    }
    let system = kit.system().clone();
    let waiter = tokio::spawn({
        let system = system.clone();
        async move { system.when_terminated().await }
    });
    system.terminate().await;
    assert!(system.is_terminated());
    assert!(waiter.await.is_ok());
    let order = log.lock().clone();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["a", "b", "c", "d", "e", "f"], "{order:?}");
    let pos = |n| order.iter().position(|x| *x == n).unwrap_or(usize::MAX);
    for (child, parent) in [("c", "b"), ("d", "b"), ("b", "a"), ("e", "a")] {
        assert!(
            pos(child) < pos(parent),
            "{child} stopped after its parent {parent}: {order:?}"
        );
    }
    // terminating again just returns
    system.terminate().await;
}

#[tokio::test(start_paused = true)]
async fn spawn_and_lookup_after_terminate_are_typed_errors() {
    let system = ActorSystem::new("after-terminate").expect("a valid name");
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = node("a", &log, vec![]);
    system.spawn(a.1, &a.0).expect("spawned before termination");
    system.terminate().await;
    let late = node("late", &log, vec![]);
    match system.spawn(late.1, &late.0) {
        Err(SpawnError::ParentStopping { name, .. }) => assert_eq!(name, "late"),
        other => panic!("expected ParentStopping, got {other:?}"),
    }
    let late = node("late", &log, vec![]);
    assert!(matches!(
        system.spawn_anonymous(late.1),
        Err(SpawnError::ParentStopping { .. })
    ));
    assert!(matches!(
        system.lookup_str::<()>("actor://after-terminate/user/a"),
        Err(LookupError::NotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_childs_name_can_be_reused() {
    let kit = TestKit::new("name-reuse");
    let ev = kit.probe::<Ev>();
    let p = kit.spawn(Parent::props("p", ev.actor_ref(), vec![]), "p");
    let spawn_c = || p.ask(|r| ParentCmd::Spawn(Some("c".into()), r), secs(1));
    assert!(matches!(spawn_c().await, Ok(Ok(_))));
    ev.expect_msg_all_of(vec![Ev::started("p", 1), Ev::started("c", 1)])
        .await;
    assert_eq!(
        p.ask(|r| ParentCmd::StopChild("c".into(), r), secs(1))
            .await,
        Ok(true)
    );
    ev.expect_msg(Ev::stopped("c", 1)).await;
    ev.expect_msg(Ev::child_terminated("p", "c")).await;
    // the parent has handled the termination: the name is free
    assert!(matches!(spawn_c().await, Ok(Ok(_))));
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn termination_completes_after_the_terminate_future_is_dropped() {
    let system = ActorSystem::new("dropped-terminate").expect("a valid name");
    let log = Arc::new(Mutex::new(Vec::new()));
    let a = node("a", &log, vec![]);
    system.spawn(a.1, &a.0).expect("spawned");
    // poll `terminate` once (it starts termination), then drop it
    tokio::select! {
        biased;
        _ = system.terminate() => panic!("terminate cannot be done after one poll"),
        _ = std::future::ready(()) => {}
    }
    // "Dropping the future does not cancel termination"; let it finish while nobody waits
    await_assert(
        || log.lock().iter().any(|n| n == "a"),
        secs(3),
        Duration::from_millis(1),
    )
    .await;
    assert!(
        system.await_termination(secs(3)).await,
        "the system never reported termination; stopped hooks ran: {:?}",
        log.lock()
    );
    assert!(system.is_terminated());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_returns_on_a_multi_thread_runtime() {
    for round in 0..100 {
        let kit = TestKit::new(&format!("terminate-mt-{round}"));
        let ev = kit.probe::<Ev>();
        kit.spawn(Worker::props("w", ev.actor_ref()), "w");
        ev.expect_msg(Ev::started("w", 1)).await;
        let system = kit.system().clone();
        let done = tokio::time::timeout(actor_testkit::default_timeout(), system.terminate()).await;
        assert!(done.is_ok(), "round {round}: terminate() did not return");
        assert!(system.is_terminated());
    }
}

#[tokio::test(start_paused = true)]
async fn a_system_with_an_address_puts_it_in_paths_and_finds_both_forms() {
    let address = actor_core::Address::remote("addressed", "127.0.0.1", 2552);
    let kit = TestKit::with_settings(
        "addressed",
        actor_core::SystemSettings::default().address(address.clone()),
    )
    .expect("a valid system");
    assert_eq!(kit.system().address(), &address);
    let ev = kit.probe::<Ev>();
    let w = kit.spawn(Worker::props("w", ev.actor_ref()), "w");
    assert_eq!(
        w.path().to_string(),
        "actor://addressed@127.0.0.1:2552/user/w"
    );
    for path in [
        "actor://addressed@127.0.0.1:2552/user/w",
        "actor://addressed/user/w",
    ] {
        let found = kit.system().lookup_str::<common::Cmd>(path);
        assert_eq!(found.as_ref().ok(), Some(&w), "{path}");
    }
    assert!(matches!(
        kit.system()
            .lookup_str::<common::Cmd>("actor://addressed@127.0.0.1:2553/user/w"),
        Err(LookupError::ForeignPath { .. })
    ));
    kit.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_extension_is_created_once_per_system() {
    struct Registry(u64);
    let kit = TestKit::new("extensions");
    let other = TestKit::new("extensions-other");
    assert!(kit.system().try_extension::<Registry>().is_none());
    let calls = std::sync::atomic::AtomicU64::new(0);
    let make =
        |_: &ActorSystem| Registry(calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1);
    let first = kit.system().extension(make);
    let again = kit.system().extension(make);
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(first.0, 1);
    let found = kit
        .system()
        .try_extension::<Registry>()
        .expect("created above");
    assert!(Arc::ptr_eq(&first, &found));
    // another system has its own
    assert_eq!(other.system().extension(make).0, 2);
    kit.shutdown().await;
    other.shutdown().await;
}

/// A tree `depth` levels deep, `width` children per node, named by their position.
fn tree(name: &str, depth: u32, width: u32, log: &Log) -> (String, Props<Node>) {
    let children = if depth == 0 {
        vec![]
    } else {
        (0..width)
            .map(|i| tree(&format!("{name}.{i}"), depth - 1, width, log))
            .collect()
    };
    node(name, log, children)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_order_holds_on_a_multi_thread_runtime() {
    for round in 0..10 {
        let kit = TestKit::new(&format!("deep-terminate-{round}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        // 1 + 3 + 9 + 27 actors
        let (name, props) = tree("r", 3, 3, &log);
        kit.spawn(props, &name);
        lookup::<()>(
            &kit,
            &format!("actor://deep-terminate-{round}/user/r/r.2/r.2.2/r.2.2.2"),
        )
        .await;
        let system = kit.system().clone();
        kit.shutdown().await;
        assert!(system.is_terminated());
        let order = log.lock().clone();
        assert_eq!(order.len(), 40, "round {round}: {order:?}");
        let pos = |n: &str| order.iter().position(|x| *x == n);
        for (i, child) in order.iter().enumerate() {
            if let Some((parent, _)) = child.rsplit_once('.') {
                assert!(
                    pos(parent).is_some_and(|p| p > i),
                    "round {round}: {child} stopped after its parent: {order:?}"
                );
            }
        }
    }
}
