//! Multi-node membership tests, in thread mode and in simulated mode (20 seeds, one seed
//! replayed to an identical trace): three nodes join, the leader leaves, a crashed node is
//! downed and removed.
#![cfg(feature = "multi-node")]

use std::time::Duration;

use actor_testkit::multi_node::{MultiNodeSpec, Node, RoleOutcome, RunReport};

const ROLES: [&str; 3] = ["a", "b", "c"];

/// How many seeds the simulated runs cover.
const SEEDS: u64 = 20;

/// Simulated runs must stay fast: this is a bound on wall time per run.
const SIMULATED_WALL: Duration = Duration::from_secs(1);

/// Three nodes join; the leader (the first role, which formed the cluster) leaves; the
/// other two see it go and agree on a new leader.
async fn leader_leaves(node: Node) {
    node.await_members_up(&ROLES).await;
    let state = node.cluster().state();
    assert_eq!(
        state.leader,
        Some(node.address("a")),
        "the first seed leads"
    );
    let oldest = state
        .members
        .iter()
        .min_by(|x, y| x.age_key().cmp(&y.age_key()))
        .map(|m| m.address.clone());
    assert_eq!(
        oldest,
        Some(node.address("a")),
        "the first seed is the oldest"
    );
    node.enter_barrier("joined").await;

    if node.is("a") {
        node.cluster().leave();
        // a node that left shuts its own actor system down once it is Exiting
        assert!(
            node.system()
                .await_termination(Duration::from_secs(20))
                .await,
            "a did not shut down after leaving"
        );
    } else {
        node.await_members_up(&["b", "c"]).await;
        let state = node.cluster().state();
        let new_leader = state.leader.clone().expect("a leader");
        assert!(
            new_leader == node.address("b") || new_leader == node.address("c"),
            "leader {new_leader}"
        );
        node.trace(format!(
            "new leader {}",
            node.role_at(&new_leader).unwrap_or("?")
        ));
    }
    node.enter_barrier("left").await;
}

fn check_leader_left(report: &RunReport) {
    for role in ["b", "c"] {
        for event in [
            "MemberUp a",
            "MemberUp b",
            "MemberUp c",
            "MemberLeft a",
            "MemberExited a",
            "MemberRemoved a (was Exiting)",
        ] {
            assert!(
                report.trace.contains(role, event),
                "{role} did not see {event}:\n{}",
                report.trace
            );
        }
        assert!(
            !report.trace.contains(role, "MemberDowned a"),
            "{}",
            report.trace
        );
    }
    assert!(
        report.trace.contains("a", "MemberExited a"),
        "a saw itself exit:\n{}",
        report.trace
    );
    let leaders: Vec<&str> = report
        .trace
        .entries
        .iter()
        .filter(|e| e.event.starts_with("new leader "))
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(leaders.len(), 2);
    assert_eq!(leaders[0], leaders[1], "b and c agree on the new leader");
}

/// Three nodes join; a crashes c; a and b see it unreachable, down it (keep-majority) and
/// remove it.
async fn crashed_node_is_downed(node: Node) {
    node.await_members_up(&ROLES).await;
    node.enter_barrier("joined").await;
    node.run_on(&["a"], node.conductor().crash("c")).await;
    // c's body is dropped here; a and b go on
    node.await_members_up(&["a", "b"]).await;
    let state = node.cluster().state();
    assert_eq!(state.leader, Some(node.address("a")));
    assert!(state.members.iter().all(|m| m.address != node.address("c")));
    node.enter_barrier("downed").await;
}

fn check_crash_downed(report: &RunReport) {
    assert_eq!(report.outcome("c"), Some(&RoleOutcome::Crashed));
    for role in ["a", "b"] {
        assert_eq!(report.outcome(role), Some(&RoleOutcome::Finished));
        let events: Vec<&str> = report
            .trace
            .of_role(role)
            .map(|e| e.event.as_str())
            .filter(|e| e.ends_with(" c") || e.contains(" c ("))
            .collect();
        let position = |wanted: &str| {
            events
                .iter()
                .position(|e| *e == wanted)
                .unwrap_or_else(|| panic!("{role} did not see {wanted}:\n{}", report.trace))
        };
        let (up, unreachable, downed, removed) = (
            position("MemberUp c"),
            position("UnreachableMember c"),
            position("MemberDowned c"),
            position("MemberRemoved c (was Down)"),
        );
        assert!(
            up < unreachable && unreachable < downed && downed < removed,
            "{role}: {events:?}"
        );
    }
}

fn spec() -> MultiNodeSpec {
    MultiNodeSpec::new(&ROLES).expect("valid roles")
}

#[test]
fn threads_three_nodes_join_and_the_leader_leaves() {
    let report = spec().run_or_panic(leader_leaves);
    check_leader_left(&report);
}

#[test]
fn threads_a_crashed_node_is_downed_and_removed() {
    let report = spec().run_or_panic(crashed_node_is_downed);
    check_crash_downed(&report);
}

#[test]
fn simulated_three_nodes_join_and_the_leader_leaves_over_20_seeds() {
    for seed in 0..SEEDS {
        let report = spec().simulated(seed).run_or_panic(leader_leaves);
        assert!(
            report.wall < SIMULATED_WALL,
            "seed {seed}: {:?}",
            report.wall
        );
        check_leader_left(&report);
    }
}

#[test]
fn simulated_a_crashed_node_is_downed_over_20_seeds_and_a_seed_replays_exactly() {
    let mut first = None;
    let mut runs = std::collections::BTreeSet::new();
    for seed in 0..SEEDS {
        let report = spec().simulated(seed).run_or_panic(crashed_node_is_downed);
        assert!(
            report.wall < SIMULATED_WALL,
            "seed {seed}: {:?}",
            report.wall
        );
        check_crash_downed(&report);
        runs.insert(report.trace.to_string());
        if seed == 0 {
            first = Some(report);
        }
    }
    // the seed drives the run: the seeds do not all give the same interleaving
    assert!(runs.len() > 1, "20 seeds gave a single run");
    let first = first.expect("seed 0 ran");
    let replay = spec().simulated(0).run_or_panic(crashed_node_is_downed);
    assert_eq!(
        replay.trace, first.trace,
        "seed 0 replayed differently:\n{}\nvs\n{}",
        first.trace, replay.trace
    );
    assert!(first.trace.entries.len() > 20, "{}", first.trace);
}
