//! Member life-cycle scenarios on the pure membership state: forming a cluster, convergence,
//! leader election and actions, graceful leave, downing, re-joining, and the events each
//! node derives.

use std::collections::{BTreeMap, BTreeSet};

use actor_cluster::Address;
use actor_cluster::membership::{
    ClockOrdering, ClusterEvent, CurrentClusterState, Gossip, Member, MemberStatus,
    MembershipError, Reachability, UniqueAddress, VectorClock, diff, leader_actions,
    weakly_up_actions,
};

fn addr(name: &str) -> Address {
    Address::logical("sys", name).unwrap()
}

fn joining(name: &str, uid: u64, roles: &[&str]) -> Member {
    Member::joining(addr(name), uid, roles.iter().copied())
}

fn with(member: Member, status: MemberStatus, up_number: u64) -> Member {
    Member {
        status,
        up_number,
        ..member
    }
}

/// A state holding `members`, seen by all of them.
fn seen_by_all(members: &[Member]) -> Gossip {
    Gossip::from_parts(
        members.iter().cloned(),
        Reachability::default(),
        members.iter().map(Member::unique_address),
        VectorClock::new(),
        [],
    )
}

/// A tiny in-process "network": every node's state; gossip is exchanged between every
/// reachable pair until nothing changes. Nodes in `cut` neither send nor receive.
struct Net {
    states: BTreeMap<UniqueAddress, Gossip>,
    events: BTreeMap<UniqueAddress, Vec<ClusterEvent>>,
    cut: BTreeSet<UniqueAddress>,
}

impl Net {
    fn new() -> Self {
        Self {
            states: BTreeMap::new(),
            events: BTreeMap::new(),
            cut: BTreeSet::new(),
        }
    }

    fn set(&mut self, node: &UniqueAddress, next: Gossip) {
        let old = self.states.get(node).cloned().unwrap_or_default();
        self.events
            .entry(node.clone())
            .or_default()
            .extend(diff(&old, &next, node));
        self.states.insert(node.clone(), next);
    }

    fn state(&self, node: &UniqueAddress) -> &Gossip {
        &self.states[node]
    }

    fn spread(&mut self) {
        for _ in 0..50 {
            let mut changed = false;
            let nodes: Vec<UniqueAddress> = self.states.keys().cloned().collect();
            for from in &nodes {
                for to in &nodes {
                    if from == to || self.cut.contains(from) || self.cut.contains(to) {
                        continue;
                    }
                    let remote = self.states[from].clone();
                    // A removed node does not get gossip any more.
                    if remote.tombstones().contains(to) {
                        continue;
                    }
                    let (next, _) = self.states[to].receive(&remote, to);
                    if next != self.states[to] {
                        self.set(to, next);
                        changed = true;
                    }
                }
            }
            if !changed {
                return;
            }
        }
        panic!("gossip did not settle");
    }

    fn leader_step(&mut self, node: &UniqueAddress) -> Vec<ClusterEvent> {
        let (next, events) = leader_actions(self.state(node), node);
        self.set(node, next);
        events
    }

    fn take_events(&mut self, node: &UniqueAddress) -> Vec<ClusterEvent> {
        std::mem::take(self.events.entry(node.clone()).or_default())
    }
}

/// Three nodes a, b, c (uids 1, 2, 3) joined through a, all Up after one leader step.
fn three_node_cluster() -> (Net, [UniqueAddress; 3]) {
    let (a, b, c) = (
        joining("a", 1, &["x"]),
        joining("b", 2, &["y"]),
        joining("c", 3, &["x"]),
    );
    let ids = [a.unique_address(), b.unique_address(), c.unique_address()];
    let mut net = Net::new();
    let g = Gossip::new().join(a, &ids[0]).unwrap();
    net.set(&ids[0], g);
    // b and c ask a to join; a adds them; they start from an empty state.
    let g = net.state(&ids[0]).join(b, &ids[0]).unwrap();
    let g = g.join(c, &ids[0]).unwrap();
    net.set(&ids[0], g);
    net.set(&ids[1], Gossip::new());
    net.set(&ids[2], Gossip::new());
    net.spread();
    let leader = net
        .state(&ids[0])
        .leader(&ids[0])
        .map(Member::unique_address);
    assert_eq!(leader.as_ref(), Some(&ids[0]));
    net.leader_step(&ids[0]);
    net.spread();
    (net, ids)
}

#[test]
fn three_nodes_join_converge_and_agree_on_members_and_leader() {
    let (mut net, ids) = three_node_cluster();
    for id in &ids {
        let g = net.state(id);
        assert!(g.is_converged(), "{id}");
        let ups: Vec<(Address, u64)> = g
            .members()
            .map(|m| {
                assert_eq!(m.status, MemberStatus::Up);
                (m.address.clone(), m.up_number)
            })
            .collect();
        assert_eq!(ups, vec![(addr("a"), 1), (addr("b"), 2), (addr("c"), 3)]);
        assert_eq!(g.leader(id).map(|m| m.address.clone()), Some(addr("a")));
        assert_eq!(
            g.role_leader("x", id).map(|m| m.address.clone()),
            Some(addr("a"))
        );
        assert_eq!(
            g.role_leader("y", id).map(|m| m.address.clone()),
            Some(addr("b"))
        );
    }
    // Every node saw the same story: three joined, then three up, leader a.
    for id in &ids {
        let events = net.take_events(id);
        let ups = events
            .iter()
            .filter(|e| matches!(e, ClusterEvent::MemberUp(_)))
            .count();
        assert_eq!(ups, 3, "{id}: {events:?}");
        assert!(events.contains(&ClusterEvent::LeaderChanged(Some(addr("a")))));
    }
    assert_eq!(net.state(&ids[0]), net.state(&ids[1]));
    assert_eq!(net.state(&ids[1]), net.state(&ids[2]));
}

#[test]
fn the_leader_leaves_gracefully_and_the_next_oldest_takes_over() {
    let (mut net, [a, b, c]) = three_node_cluster();
    for id in [&a, &b, &c] {
        net.take_events(id);
    }
    let g = net.state(&a).leave(&addr("a"), &a).unwrap();
    net.set(&a, g);
    net.spread();
    // Still the leader while Leaving: it moves itself to Exiting.
    assert_eq!(
        net.state(&a).leader(&a).map(Member::unique_address),
        Some(a.clone())
    );
    net.leader_step(&a);
    net.spread();
    assert_eq!(
        net.state(&b).member(&a).map(|m| m.status),
        Some(MemberStatus::Exiting)
    );
    // Exiting members are not leaders: b (up-number 2) is next.
    assert_eq!(
        net.state(&b).leader(&b).map(Member::unique_address),
        Some(b.clone())
    );
    net.leader_step(&b);
    net.spread();
    // a learns from the last gossip it received that it was removed.
    let (on_a, _) = net.state(&a).receive(net.state(&b), &a);
    assert!(on_a.is_removed(&a));
    assert!(!on_a.seen().contains(&a));
    for id in [&b, &c] {
        let g = net.state(id);
        assert!(g.member(&a).is_none());
        assert!(g.tombstones().contains(&a));
        let events = net.take_events(id);
        assert!(events.contains(&ClusterEvent::MemberLeft(with(
            joining("a", 1, &["x"]),
            MemberStatus::Leaving,
            1
        ))));
        assert!(
            events.iter().any(|e| matches!(
                e,
                ClusterEvent::MemberRemoved { member, previous_status: MemberStatus::Exiting }
                    if member.unique_address() == a && member.status == MemberStatus::Removed
            )),
            "{id}: {events:?}"
        );
        assert!(events.contains(&ClusterEvent::LeaderChanged(Some(addr("b")))));
        assert!(events.contains(&ClusterEvent::RoleLeaderChanged {
            role: "x".into(),
            leader: Some(addr("c")),
        }));
    }
}

#[test]
fn an_unreachable_member_blocks_convergence_until_it_is_down() {
    let (mut net, [a, b, c]) = three_node_cluster();
    // c crashes: a's detector suspects it.
    net.cut.insert(c.clone());
    let g = net.state(&a).mark_unreachable(&a, &c);
    net.set(&a, g);
    // d asks to join meanwhile.
    let d = joining("d", 4, &[]);
    let ud = d.unique_address();
    let g = net.state(&a).join(d, &a).unwrap();
    net.set(&a, g);
    net.set(&ud, Gossip::new());
    net.spread();
    assert!(!net.state(&a).is_converged());
    let before = net.state(&a).clone();
    assert!(
        net.leader_step(&a).is_empty(),
        "no leader action without convergence"
    );
    assert_eq!(net.state(&a), &before);
    assert_eq!(
        net.state(&b).member(&ud).map(|m| m.status),
        Some(MemberStatus::Joining)
    );
    // b sees the unreachability too, as an event.
    assert!(
        net.take_events(&b)
            .iter()
            .any(|e| matches!(e, ClusterEvent::UnreachableMember(m) if m.unique_address() == c))
    );

    // The downing decision marks c Down: convergence returns, the leader removes c and
    // moves d up.
    let g = net.state(&a).down(&addr("c"), &a).unwrap();
    net.set(&a, g);
    net.spread();
    assert!(net.state(&a).is_converged());
    let events = net.leader_step(&a);
    assert!(events.iter().any(|e| matches!(
        e,
        ClusterEvent::MemberRemoved {
            previous_status: MemberStatus::Down,
            ..
        }
    )));
    assert!(events.iter().any(
        |e| matches!(e, ClusterEvent::MemberUp(m) if m.unique_address() == ud && m.up_number == 4)
    ));
    net.spread();
    for id in [&a, &b, &ud] {
        assert!(net.state(id).member(&c).is_none());
        assert!(net.state(id).unreachable_members().next().is_none());
    }
}

#[test]
fn a_partition_that_heals_gives_reachable_member() {
    let (mut net, [a, b, c]) = three_node_cluster();
    for id in [&a, &b, &c] {
        net.take_events(id);
    }
    let g = net.state(&a).mark_unreachable(&a, &c);
    net.set(&a, g);
    net.spread();
    let g = net.state(&a).mark_reachable(&a, &c);
    net.set(&a, g);
    net.spread();
    for id in [&a, &b] {
        let events = net.take_events(id);
        let kinds: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                ClusterEvent::UnreachableMember(m) if m.unique_address() == c => {
                    Some("unreachable")
                }
                ClusterEvent::ReachableMember(m) if m.unique_address() == c => Some("reachable"),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, vec!["unreachable", "reachable"], "{id}");
    }
    // c never gets events about itself.
    assert!(net.take_events(&c).iter().all(|e| !matches!(
        e,
        ClusterEvent::UnreachableMember(_) | ClusterEvent::ReachableMember(_)
    )));
    assert!(net.state(&c).is_converged());
}

#[test]
fn a_new_incarnation_replaces_the_old_one_and_the_old_uid_cannot_return() {
    let (net, [a, _b, c]) = three_node_cluster();
    let g = net.state(&a).clone();
    let reborn = joining("c", 33, &["x"]);
    let next = g.join(reborn.clone(), &a).unwrap();
    assert!(next.member(&c).is_none());
    assert!(next.tombstones().contains(&c));
    assert_eq!(
        next.member_by_address(&addr("c"))
            .map(|m| (m.uid, m.status)),
        Some((33, MemberStatus::Joining))
    );
    let events = diff(&g, &next, &a);
    assert_eq!(
        events,
        vec![
            ClusterEvent::MemberJoined(reborn),
            ClusterEvent::MemberRemoved {
                member: with(joining("c", 3, &["x"]), MemberStatus::Removed, 3),
                previous_status: MemberStatus::Up,
            },
        ]
    );
    // The old incarnation is gone for good, even if an old gossip still holds it.
    let old_again = joining("c", 3, &["x"]);
    assert_eq!(
        next.join(old_again, &a),
        Err(MembershipError::Tombstoned { node: c.clone() })
    );
    assert!(next.merge(&g).member(&c).is_none());
    // Joining twice with the same incarnation changes nothing.
    let once = next.join(joining("c", 33, &[]), &a).unwrap();
    assert_eq!(once, next);
}

#[test]
fn leader_is_the_oldest_reachable_up_or_leaving_member() {
    let a = with(joining("a", 1, &[]), MemberStatus::Up, 3);
    let b = with(joining("b", 2, &[]), MemberStatus::Leaving, 1);
    let c = with(joining("c", 3, &[]), MemberStatus::Up, 2);
    let d = joining("d", 4, &[]);
    let g = seen_by_all(&[a.clone(), b.clone(), c.clone(), d.clone()]);
    let me = a.unique_address();
    assert_eq!(
        g.leader(&me),
        Some(&b),
        "lowest up-number, not lowest address"
    );
    // b unreachable: the next oldest.
    let g2 = g.mark_unreachable(&me, &b.unique_address());
    assert_eq!(g2.leader(&me), Some(&c));
    // ... but b, viewing itself, counts itself reachable.
    assert_eq!(g2.leader(&b.unique_address()), Some(&b));
    // Equal up-numbers: ties by address.
    let e = with(joining("e", 5, &[]), MemberStatus::Up, 1);
    let tie = seen_by_all(&[e.clone(), with(joining("f", 6, &[]), MemberStatus::Up, 1)]);
    assert_eq!(tie.leader(&e.unique_address()), Some(&e));
}

#[test]
fn leader_while_nobody_is_up_is_the_lowest_address_reachable_joining_member() {
    let (a, b, c) = (
        joining("a", 1, &["r"]),
        joining("b", 2, &[]),
        joining("c", 3, &["r"]),
    );
    let g = seen_by_all(&[c.clone(), b.clone(), a.clone()]);
    assert_eq!(g.leader(&c.unique_address()), Some(&a));
    let g = g.mark_unreachable(&b.unique_address(), &a.unique_address());
    assert_eq!(g.leader(&c.unique_address()), Some(&b));
    assert_eq!(g.role_leader("r", &c.unique_address()), Some(&c));
    assert_eq!(g.role_leader("missing", &c.unique_address()), None);
    // Up members that are all unreachable: no leader (a Joining one must not take over).
    let up = with(joining("a", 1, &[]), MemberStatus::Up, 1);
    let g = seen_by_all(&[up.clone(), b.clone()])
        .mark_unreachable(&b.unique_address(), &up.unique_address());
    assert_eq!(g.leader(&b.unique_address()), None);
}

#[test]
fn only_the_converged_leader_acts() {
    let (a, b) = (joining("a", 1, &[]), joining("b", 2, &[]));
    let (ua, ub) = (a.unique_address(), b.unique_address());
    let g = seen_by_all(&[a, b]);
    // b is not the leader.
    let (same, events) = leader_actions(&g, &ub);
    assert_eq!(same, g);
    assert!(events.is_empty());
    // Not converged: b has not seen the latest change.
    let unseen = g.set_status(&ua, MemberStatus::Up, &ua).unwrap();
    assert!(!unseen.is_converged());
    assert!(leader_actions(&unseen, &ua).1.is_empty());
    // Converged leader: both up, up-numbers in address order, leader's version bumped.
    let (up, events) = leader_actions(&g, &ua);
    assert_eq!(
        up.members().map(|m| m.up_number).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(up.version().compare(g.version()), ClockOrdering::After);
    assert_eq!(up.seen(), &BTreeSet::from([ua.clone()]));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ClusterEvent::MemberUp(_)))
            .count(),
        2
    );
    // Nothing left to do: no change, no events.
    let up = up.seen_by(&ub);
    let (again, events) = leader_actions(&up, &ua);
    assert_eq!(again, up);
    assert!(events.is_empty());
}

#[test]
fn up_numbers_continue_after_the_highest_assigned() {
    let a = with(joining("a", 1, &[]), MemberStatus::Up, 1);
    let z = with(joining("z", 9, &[]), MemberStatus::Up, 7);
    let (m, n) = (joining("m", 3, &[]), joining("n", 4, &[]));
    let g = seen_by_all(&[a.clone(), z, m.clone(), n.clone()]);
    let (up, _) = leader_actions(&g, &a.unique_address());
    assert_eq!(up.member(&m.unique_address()).map(|x| x.up_number), Some(8));
    assert_eq!(up.member(&n.unique_address()).map(|x| x.up_number), Some(9));
}

#[test]
fn leaving_then_exiting_then_removed_takes_two_leader_steps() {
    let a = with(joining("a", 1, &[]), MemberStatus::Up, 1);
    let b = with(joining("b", 2, &[]), MemberStatus::Leaving, 2);
    let (ua, ub) = (a.unique_address(), b.unique_address());
    let g = seen_by_all(&[a, b]);
    let (g, events) = leader_actions(&g, &ua);
    assert_eq!(g.member(&ub).map(|m| m.status), Some(MemberStatus::Exiting));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClusterEvent::MemberExited(_)))
    );
    // b must see Exiting before it is removed (it is reachable).
    assert!(!g.is_converged());
    let g = g.seen_by(&ub);
    let (g, events) = leader_actions(&g, &ua);
    assert!(g.member(&ub).is_none());
    assert!(events.iter().any(|e| matches!(
        e,
        ClusterEvent::MemberRemoved {
            previous_status: MemberStatus::Exiting,
            ..
        }
    )));
}

#[test]
fn an_unreachable_exiting_member_does_not_block_convergence() {
    let a = with(joining("a", 1, &[]), MemberStatus::Up, 1);
    let b = with(joining("b", 2, &[]), MemberStatus::Exiting, 2);
    let c = with(joining("c", 3, &[]), MemberStatus::Up, 3);
    let (ua, ub, uc) = (a.unique_address(), b.unique_address(), c.unique_address());
    let g = seen_by_all(&[a.clone(), b, c.clone()])
        .mark_unreachable(&ua, &ub)
        .seen_by(&uc);
    assert!(g.is_converged());
    let g2 = seen_by_all(&[a, with(joining("b", 2, &[]), MemberStatus::Up, 2), c])
        .mark_unreachable(&ua, &ub)
        .seen_by(&uc);
    assert!(!g2.is_converged(), "an unreachable Up member blocks");
}

#[test]
fn observations_of_a_down_observer_do_not_count() {
    let a = with(joining("a", 1, &[]), MemberStatus::Up, 1);
    let b = with(joining("b", 2, &[]), MemberStatus::Up, 2);
    let (ua, ub) = (a.unique_address(), b.unique_address());
    let g = seen_by_all(&[a, b]).mark_unreachable(&ub, &ua);
    assert!(!g.is_reachable(&ua));
    let g = g.down(&addr("b"), &ua).unwrap();
    assert!(g.is_reachable(&ua));
}

#[test]
fn weakly_up_only_while_not_converged() {
    let a = with(joining("a", 1, &[]), MemberStatus::Up, 1);
    let b = with(joining("b", 2, &[]), MemberStatus::Up, 2);
    let c = joining("c", 3, &[]);
    let (ua, ub, uc) = (a.unique_address(), b.unique_address(), c.unique_address());
    let g = seen_by_all(&[a, b, c]);
    assert!(
        weakly_up_actions(&g, &ua).1.is_empty(),
        "converged: leader_actions' job"
    );
    let g = g.mark_unreachable(&ua, &ub);
    let (g, events) = weakly_up_actions(&g, &ua);
    assert_eq!(
        g.member(&uc).map(|m| m.status),
        Some(MemberStatus::WeaklyUp)
    );
    assert!(
        matches!(events.as_slice(), [ClusterEvent::MemberWeaklyUp(m)] if m.unique_address() == uc)
    );
}

#[test]
fn status_changes_are_validated() {
    let a = with(joining("a", 1, &[]), MemberStatus::Up, 1);
    let ua = a.unique_address();
    let g = seen_by_all(&[a]);
    assert_eq!(
        g.set_status(&ua, MemberStatus::Joining, &ua),
        Err(MembershipError::InvalidTransition {
            node: ua.clone(),
            from: MemberStatus::Up,
            to: MemberStatus::Joining
        })
    );
    assert_eq!(g.set_status(&ua, MemberStatus::Up, &ua), Ok(g.clone()));
    assert_eq!(
        g.leave(&addr("nobody"), &ua),
        Err(MembershipError::UnknownAddress {
            address: addr("nobody")
        })
    );
    let ghost = UniqueAddress::new(addr("a"), 99);
    assert_eq!(
        g.set_status(&ghost, MemberStatus::Down, &ua),
        Err(MembershipError::UnknownMember { node: ghost })
    );
    // Removed via set_status tombstones the member.
    let gone = g.set_status(&ua, MemberStatus::Removed, &ua).unwrap();
    assert!(gone.member(&ua).is_none() && gone.tombstones().contains(&ua));
}

#[test]
fn the_transition_table_is_exact() {
    use MemberStatus::*;
    let allowed: &[(MemberStatus, &[MemberStatus])] = &[
        (Joining, &[WeaklyUp, Up, Leaving, Down, Removed]),
        (WeaklyUp, &[Up, Leaving, Down, Removed]),
        (Up, &[Leaving, Down, Removed]),
        (Leaving, &[Exiting, Down, Removed]),
        (Exiting, &[Down, Removed]),
        (Down, &[Removed]),
        (Removed, &[]),
    ];
    for (from, tos) in allowed {
        for to in MemberStatus::ALL {
            assert_eq!(
                from.can_move_to(to),
                tos.contains(&to),
                "{from:?} -> {to:?}"
            );
        }
    }
    // The merge precedence is the declaration order, and no allowed transition goes back in
    // it except Exiting -> Down (Down ranks above Exiting).
    assert_eq!(
        MemberStatus::ALL.to_vec(),
        vec![Joining, WeaklyUp, Up, Leaving, Exiting, Down, Removed]
    );
    for from in MemberStatus::ALL {
        for to in MemberStatus::ALL {
            if from.can_move_to(to) {
                assert!(to > from, "{from:?} -> {to:?} must move forward");
            }
        }
    }
}

#[test]
fn member_merge_picks_progress_roles_and_lowest_up_number() {
    let m = joining("a", 1, &["x"]);
    let up = Member {
        roles: ["y".to_string()].into(),
        ..with(m.clone(), MemberStatus::Up, 4)
    };
    let down = with(m.clone(), MemberStatus::Down, 2);
    let merged = up.merged(&down);
    assert_eq!(merged.status, MemberStatus::Down);
    assert_eq!(merged.up_number, 2);
    assert_eq!(
        merged.roles,
        BTreeSet::from(["x".to_string(), "y".to_string()])
    );
    assert_eq!(m.merged(&up).up_number, 4, "an unassigned 0 never wins");
    assert!(
        up.is_older_than(&m),
        "assigned up-numbers are older than unassigned"
    );
}

#[test]
fn a_stale_unreachable_record_never_overrides_a_newer_reachable_one() {
    let a = with(joining("a", 1, &[]), MemberStatus::Up, 1);
    let b = with(joining("b", 2, &[]), MemberStatus::Up, 2);
    let (ua, ub) = (a.unique_address(), b.unique_address());
    let base = seen_by_all(&[a, b]);
    let suspected = base.mark_unreachable(&ua, &ub);
    let healed = suspected.mark_reachable(&ua, &ub);
    assert!(healed.is_reachable(&ub));
    assert!(healed.merge(&suspected).is_reachable(&ub));
    assert!(suspected.merge(&healed).is_reachable(&ub));
    let record = healed.reachability().record(&ua, &ub).map(|r| r.version);
    assert_eq!(record, Some(2));
    // Recording the same verdict twice is not a change.
    assert_eq!(healed.mark_reachable(&ua, &ub), healed);
}

#[test]
fn a_subscriber_gets_the_current_state_first() {
    let (net, [a, b, c]) = three_node_cluster();
    let g = net.state(&b).mark_unreachable(&b, &c);
    let state = CurrentClusterState::of(&g, &b);
    assert_eq!(state.members.len(), 3);
    assert_eq!(
        state
            .unreachable
            .iter()
            .map(Member::unique_address)
            .collect::<Vec<_>>(),
        vec![c.clone()]
    );
    assert_eq!(state.leader, Some(addr("a")));
    assert_eq!(
        state.role_leaders,
        BTreeMap::from([
            ("x".to_string(), Some(addr("a"))),
            ("y".to_string(), Some(addr("b")))
        ])
    );
    assert_eq!(state.seen_by, BTreeSet::from([addr("b")]));
    assert_eq!(state.member(&addr("c")).map(|m| m.up_number), Some(3));
    // c does not list itself as unreachable.
    assert!(CurrentClusterState::of(&g, &c).unreachable.is_empty());
    // The state as events: every member's status, unreachability, leaders.
    let events = diff(&Gossip::new(), &g, &a);
    assert_eq!(events.len(), 3 + 1 + 1 + 2, "{events:?}");
    assert!(matches!(events[3], ClusterEvent::UnreachableMember(ref m) if m.unique_address() == c));
    assert_eq!(events[4], ClusterEvent::LeaderChanged(Some(addr("a"))));
}

#[test]
fn receive_reports_how_the_versions_relate() {
    let a = joining("a", 1, &[]);
    let b = joining("b", 2, &[]);
    let (ua, ub) = (a.unique_address(), b.unique_address());
    let base = seen_by_all(&[a, b]);
    let newer = base.set_status(&ua, MemberStatus::Up, &ua).unwrap();
    assert_eq!(base.receive(&newer, &ub).1, ClockOrdering::Before);
    assert_eq!(newer.receive(&base, &ub).1, ClockOrdering::After);
    assert_eq!(base.receive(&base, &ub).1, ClockOrdering::Same);
    let other = base.set_status(&ub, MemberStatus::Up, &ub).unwrap();
    let (merged, ordering) = newer.receive(&other, &ub);
    assert_eq!(ordering, ClockOrdering::Concurrent);
    assert_eq!(merged.seen(), &BTreeSet::from([ub.clone()]));
    assert!(merged.members().all(|m| m.status == MemberStatus::Up));
}
