//! The seed-join state machine: a lone seed forms a cluster at once, only the first seed may
//! form one by itself and only after the timeout, other nodes retry until joined.

use std::time::Duration;

use actor_cluster::Address;
use actor_cluster::membership::{
    DEFAULT_INIT_JOIN_RESEND_INTERVAL, DEFAULT_RETRY_UNSUCCESSFUL_JOIN_AFTER,
    DEFAULT_SEED_NODE_TIMEOUT, SeedJoin, SeedJoinAction, SeedJoinEvent, SeedJoinSettings,
    SeedJoinState,
};
use tokio::time::Instant;

fn addr(name: &str) -> Address {
    Address::logical("sys", name).unwrap()
}

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn init_join(to: &[&str]) -> SeedJoinAction {
    SeedJoinAction::SendInitJoin {
        to: to.iter().map(|n| addr(n)).collect(),
    }
}

#[test]
fn defaults() {
    assert_eq!(DEFAULT_SEED_NODE_TIMEOUT, Duration::from_secs(5));
    assert_eq!(DEFAULT_INIT_JOIN_RESEND_INTERVAL, Duration::from_secs(1));
    assert_eq!(
        DEFAULT_RETRY_UNSUCCESSFUL_JOIN_AFTER,
        Duration::from_secs(10)
    );
}

#[test]
fn a_node_whose_seeds_are_only_itself_forms_a_cluster_at_once() {
    let t0 = Instant::now();
    for seeds in [vec![addr("a")], vec![], vec![addr("a"), addr("a")]] {
        let (join, actions) = SeedJoin::start(addr("a"), seeds, SeedJoinSettings::default(), t0);
        assert_eq!(actions, vec![SeedJoinAction::JoinSelf]);
        assert!(join.is_done());
        assert_eq!(join.next_deadline(), None);
    }
}

#[test]
fn the_first_seed_forms_the_cluster_only_after_the_timeout() {
    let t0 = Instant::now();
    let seeds = vec![addr("a"), addr("b"), addr("c")];
    let (mut join, actions) = SeedJoin::start(addr("a"), seeds, SeedJoinSettings::default(), t0);
    assert_eq!(actions, vec![init_join(&["b", "c"])]);
    // Others answer that they are not members either.
    assert!(
        join.on_event(at(t0, 10), SeedJoinEvent::InitJoinNack { from: addr("b") })
            .is_empty()
    );
    let mut sent = 1;
    let mut ms = 0;
    while ms < 5000 {
        assert_eq!(join.next_deadline(), Some(at(t0, (ms / 1000 + 1) * 1000)));
        ms = (ms / 1000 + 1) * 1000;
        let actions = join.on_event(at(t0, ms), SeedJoinEvent::Tick);
        if ms < 5000 {
            assert_eq!(actions, vec![init_join(&["b", "c"])], "at {ms} ms");
            sent += 1;
        } else {
            assert_eq!(actions, vec![SeedJoinAction::JoinSelf]);
        }
    }
    assert_eq!(sent, 5, "InitJoin at 0, 1, 2, 3 and 4 s");
    assert!(join.is_done());
    // Early ticks do nothing.
    let (mut early, _) = SeedJoin::start(
        addr("a"),
        vec![addr("a"), addr("b")],
        SeedJoinSettings::default(),
        t0,
    );
    assert!(early.on_event(at(t0, 999), SeedJoinEvent::Tick).is_empty());
}

#[test]
fn the_first_seed_joins_an_existing_cluster_instead() {
    let t0 = Instant::now();
    let (mut join, _) = SeedJoin::start(
        addr("a"),
        vec![addr("a"), addr("b")],
        SeedJoinSettings::default(),
        t0,
    );
    let actions = join.on_event(at(t0, 300), SeedJoinEvent::InitJoinAck { from: addr("b") });
    assert_eq!(actions, vec![SeedJoinAction::SendJoin { to: addr("b") }]);
    // Past the seed-node timeout it must not form its own cluster any more.
    assert!(join.on_event(at(t0, 6000), SeedJoinEvent::Tick).is_empty());
    join.on_event(at(t0, 6100), SeedJoinEvent::Welcome { from: addr("b") });
    assert!(join.is_done());
}

#[test]
fn other_nodes_never_form_a_cluster_by_themselves() {
    let t0 = Instant::now();
    for me in ["b", "z"] {
        let (mut join, actions) = SeedJoin::start(
            addr(me),
            vec![addr("a"), addr("b")],
            SeedJoinSettings::default(),
            t0,
        );
        let others: Vec<&str> = ["a", "b"].into_iter().filter(|n| *n != me).collect();
        assert_eq!(actions, vec![init_join(&others)]);
        for s in 1..=120 {
            let actions = join.on_event(at(t0, s * 1000), SeedJoinEvent::Tick);
            assert_eq!(actions, vec![init_join(&others)], "{me} at {s} s");
        }
        assert!(!join.is_done());
    }
}

#[test]
fn two_seeds_starting_together_form_one_cluster() {
    let t0 = Instant::now();
    let seeds = vec![addr("a"), addr("b")];
    let settings = SeedJoinSettings::default();
    let (mut a, _) = SeedJoin::start(addr("a"), seeds.clone(), settings, t0);
    let (mut b, _) = SeedJoin::start(addr("b"), seeds, settings, t0);
    let mut a_member = false;
    let mut formed = 0;
    let mut b_joined_via = None;
    for s in 1..=10 {
        let now = at(t0, s * 1000);
        for action in a.on_event(now, SeedJoinEvent::Tick) {
            match action {
                SeedJoinAction::JoinSelf => {
                    formed += 1;
                    a_member = true;
                }
                // b is not a member: it answers Nack.
                SeedJoinAction::SendInitJoin { .. } => {
                    a.on_event(now, SeedJoinEvent::InitJoinNack { from: addr("b") });
                }
                SeedJoinAction::SendJoin { .. } => unreachable!("b never acks"),
            }
        }
        for action in b.on_event(now, SeedJoinEvent::Tick) {
            if let SeedJoinAction::SendInitJoin { to } = action {
                assert_eq!(to, vec![addr("a")]);
                let reply = if a_member {
                    SeedJoinEvent::InitJoinAck { from: addr("a") }
                } else {
                    SeedJoinEvent::InitJoinNack { from: addr("a") }
                };
                for next in b.on_event(now, reply) {
                    if let SeedJoinAction::SendJoin { to } = next {
                        b_joined_via = Some(to);
                        b.on_event(now, SeedJoinEvent::Welcome { from: addr("a") });
                    }
                }
            }
        }
    }
    assert_eq!(formed, 1, "exactly one island");
    assert_eq!(b_joined_via, Some(addr("a")));
    assert!(a.is_done() && b.is_done());
}

#[test]
fn a_join_without_welcome_starts_over() {
    let t0 = Instant::now();
    let (mut join, _) = SeedJoin::start(
        addr("c"),
        vec![addr("a"), addr("b")],
        SeedJoinSettings::default(),
        t0,
    );
    join.on_event(t0, SeedJoinEvent::InitJoinAck { from: addr("a") });
    assert_eq!(
        join.state(),
        SeedJoinState::AwaitingWelcome {
            retry_at: at(t0, 10_000)
        }
    );
    // A second ack while waiting does not send a second Join.
    assert!(
        join.on_event(at(t0, 100), SeedJoinEvent::InitJoinAck { from: addr("b") })
            .is_empty()
    );
    assert!(join.on_event(at(t0, 9_999), SeedJoinEvent::Tick).is_empty());
    assert_eq!(
        join.on_event(at(t0, 10_000), SeedJoinEvent::Tick),
        vec![init_join(&["a", "b"])]
    );
    assert!(matches!(
        join.state(),
        SeedJoinState::Discovering {
            form_alone_at: None,
            ..
        }
    ));
    let actions = join.on_event(
        at(t0, 10_500),
        SeedJoinEvent::InitJoinAck { from: addr("b") },
    );
    assert_eq!(actions, vec![SeedJoinAction::SendJoin { to: addr("b") }]);
}

#[test]
fn stray_answers_are_ignored() {
    let t0 = Instant::now();
    let (mut join, _) =
        SeedJoin::start(addr("c"), vec![addr("a")], SeedJoinSettings::default(), t0);
    // An ack from a node that is not a seed.
    assert!(
        join.on_event(t0, SeedJoinEvent::InitJoinAck { from: addr("x") })
            .is_empty()
    );
    assert!(matches!(join.state(), SeedJoinState::Discovering { .. }));
    // Welcome ends the process from any state; nothing happens afterwards.
    join.on_event(t0, SeedJoinEvent::Welcome { from: addr("a") });
    assert!(join.is_done());
    assert!(
        join.on_event(at(t0, 50_000), SeedJoinEvent::Tick)
            .is_empty()
    );
    assert!(
        join.on_event(t0, SeedJoinEvent::InitJoinAck { from: addr("a") })
            .is_empty()
    );
}
