//! Gossip target selection, and a 50-node cluster converging by random gossip (pure state,
//! seeded RNG, so one seed gives one run).

use std::collections::BTreeMap;

use actor_cluster::Address;
use actor_cluster::membership::{
    ClockOrdering, DEFAULT_PREFER_UNSEEN_PROBABILITY, Gossip, Member, MemberStatus, Reachability,
    UniqueAddress, VectorClock, gossip_candidates, leader_actions, select_gossip_target,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn member(i: usize) -> Member {
    Member::joining(
        Address::logical("sys", format!("n{i:03}")).unwrap(),
        i as u64 + 1,
        Vec::<String>::new(),
    )
}

#[test]
fn candidates_exclude_self_and_peers_self_suspects_but_keep_down_ones() {
    let ms: Vec<Member> = (0..4).map(member).collect();
    let ids: Vec<UniqueAddress> = ms.iter().map(Member::unique_address).collect();
    let g = Gossip::from_parts(
        ms.clone(),
        Reachability::default(),
        [ids[0].clone(), ids[1].clone()],
        VectorClock::new(),
        [],
    );
    let (unseen, seen) = gossip_candidates(&g, &ids[0]);
    assert_eq!(seen, vec![ids[1].clone()]);
    assert_eq!(unseen, vec![ids[2].clone(), ids[3].clone()]);
    // ids[2] is suspected by ids[0] (not by someone else) and ids[3] is Down.
    let g = g
        .mark_unreachable(&ids[0], &ids[2])
        .set_status(&ids[3], MemberStatus::Down, &ids[1])
        .unwrap();
    let (unseen, seen) = gossip_candidates(&g, &ids[0]);
    // ids[1] made the last change, so only it has seen the new version.
    assert_eq!(unseen, vec![ids[3].clone()]);
    assert_eq!(seen, vec![ids[1].clone()]);
    // Someone else's suspicion does not stop ids[1] from gossiping with ids[2].
    let (unseen, _) = gossip_candidates(&g, &ids[1]);
    assert!(unseen.contains(&ids[2]));
}

#[test]
fn selection_prefers_unseen_peers_and_is_seeded() {
    let ms: Vec<Member> = (0..5).map(member).collect();
    let ids: Vec<UniqueAddress> = ms.iter().map(Member::unique_address).collect();
    // Everyone but ids[4] has seen the state.
    let g = Gossip::from_parts(
        ms,
        Reachability::default(),
        ids[..4].to_vec(),
        VectorClock::new(),
        [],
    );
    let me = &ids[0];
    let draw = |p: f64, seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..2000)
            .map(|_| select_gossip_target(&g, me, p, &mut rng).unwrap())
            .collect::<Vec<_>>()
    };
    assert!(draw(1.0, 1).iter().all(|t| t == &ids[4]));
    assert_eq!(draw(0.8, 9), draw(0.8, 9), "same seed, same choices");
    // p = 0.8 with one unseen peer among four: expected share 0.8 + 0.2 / 4 = 0.85.
    let share = draw(DEFAULT_PREFER_UNSEEN_PROBABILITY, 3)
        .iter()
        .filter(|t| *t == &ids[4])
        .count() as f64
        / 2000.0;
    assert!((0.82..0.88).contains(&share), "{share}");
    // p = 0: uniform over the four peers, never self.
    let uniform = draw(0.0, 5);
    assert!(uniform.iter().all(|t| t != me));
    for peer in &ids[1..] {
        let n = uniform.iter().filter(|t| *t == peer).count();
        assert!((400..600).contains(&n), "{peer}: {n}");
    }
    // No candidate at all.
    let alone = Gossip::new().join(member(0), &ids[0]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    assert_eq!(select_gossip_target(&alone, &ids[0], 0.8, &mut rng), None);
}

/// Runs gossip rounds (every node sends its state to one selected peer) until every node
/// holds the same converged state; returns the number of rounds.
fn rounds_until_agreement(
    states: &mut BTreeMap<UniqueAddress, Gossip>,
    rng: &mut ChaCha8Rng,
    limit: usize,
) -> usize {
    for round in 1..=limit {
        let nodes: Vec<UniqueAddress> = states.keys().cloned().collect();
        for from in &nodes {
            let state = states[from].clone();
            if let Some(to) =
                select_gossip_target(&state, from, DEFAULT_PREFER_UNSEEN_PROBABILITY, rng)
            {
                let (next, _) = states[&to].receive(&state, &to);
                states.insert(to, next);
            }
        }
        let first = states.values().next().unwrap();
        if first.is_converged() && states.values().all(|g| g == first) {
            return round;
        }
    }
    panic!("no agreement within {limit} rounds");
}

#[test]
fn fifty_nodes_converge_by_random_gossip() {
    let ms: Vec<Member> = (0..50).map(member).collect();
    let ids: Vec<UniqueAddress> = ms.iter().map(Member::unique_address).collect();
    for seed in 0..5 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // n000 accepted every join; each other node knows itself and n000 (the seed's reply).
        let mut on_seed = Gossip::new();
        for m in &ms {
            on_seed = on_seed.join(m.clone(), &ids[0]).unwrap();
        }
        let mut states: BTreeMap<UniqueAddress, Gossip> = BTreeMap::new();
        for id in &ids {
            states.insert(id.clone(), on_seed.clone().seen_by(id));
        }
        let joined = rounds_until_agreement(&mut states, &mut rng, 60);
        // The leader moves everyone Up; the new state spreads again.
        let leader = states[&ids[0]].leader(&ids[0]).unwrap().unique_address();
        assert_eq!(leader, ids[0]);
        let (up, events) = leader_actions(&states[&leader], &leader);
        // 50 MemberUp; n000 led the Joining cluster and still leads: no LeaderChanged.
        assert_eq!(events.len(), 50, "{events:?}");
        states.insert(leader.clone(), up);
        let upped = rounds_until_agreement(&mut states, &mut rng, 60);
        let g = &states[&ids[49]];
        assert!(g.members().all(|m| m.status == MemberStatus::Up));
        assert_eq!(g.members().map(|m| m.up_number).max(), Some(50));
        assert_eq!(g.version().compare(on_seed.version()), ClockOrdering::After);
        // Epidemic spread: a few times log2(50) rounds (measured 9-12 and 16-18), not 50.
        eprintln!("seed {seed}: {joined} and {upped} rounds");
        assert!(
            joined <= 25 && upped <= 25,
            "seed {seed}: {joined} and {upped} rounds"
        );
    }
}
