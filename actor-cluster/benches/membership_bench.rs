//! Cost of the pure membership functions as the cluster grows: gossip size on the wire,
//! merge, convergence check, leader actions and event diff, for 10, 25, 50 and 100 members.
//! Run with `cargo bench -p actor-cluster --bench membership_bench` (release profile).
//!
//! Each figure is the median and the 99th percentile of `SAMPLES` timed calls.

use std::hint::black_box;
use std::time::{Duration, Instant};

use actor_cluster::Address;
use actor_cluster::membership::{
    Gossip, Member, MemberStatus, Reachability, UniqueAddress, VectorClock, diff, leader_actions,
};

const SAMPLES: usize = 2_000;
const SIZES: [usize; 4] = [10, 25, 50, 100];

fn node(i: usize) -> UniqueAddress {
    UniqueAddress::new(
        Address::new("bench", format!("10.0.{}.{}", i / 250, i % 250), 2552).unwrap(),
        i as u64 + 1,
    )
}

/// An Up cluster of `n` members, every member seen, each member having changed the state
/// once (a full vector clock), and five observers' records each (a monitoring ring).
fn cluster(n: usize) -> Gossip {
    let ids: Vec<UniqueAddress> = (0..n).map(node).collect();
    let members = ids.iter().enumerate().map(|(i, id)| Member {
        address: id.address.clone(),
        uid: id.uid,
        status: MemberStatus::Up,
        roles: ["backend".to_string()].into(),
        up_number: i as u64 + 1,
    });
    let mut reachability = Reachability::default();
    for (i, observer) in ids.iter().enumerate() {
        for k in 1..=5.min(n - 1) {
            let subject = &ids[(i + k) % n];
            reachability.unreachable(observer, subject);
            reachability.reachable(observer, subject);
        }
    }
    let version: VectorClock = ids.iter().map(|id| (id.clone(), 3)).collect();
    Gossip::from_parts(members, reachability, ids.clone(), version, [])
}

fn time<T>(mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[SAMPLES / 2], samples[SAMPLES * 99 / 100])
}

fn show(name: &str, (median, p99): (Duration, Duration)) {
    println!(
        "  {name:<28} median {:>9.1} µs   p99 {:>9.1} µs",
        median.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}

fn main() {
    for n in SIZES {
        let g = cluster(n);
        let me = node(0);
        let bytes = postcard::to_stdvec(&g).map(|b| b.len()).unwrap_or(0);
        println!("{n} members: gossip {bytes} bytes (postcard)");
        // A concurrent change on two nodes, merged.
        let left = g.mark_unreachable(&node(1), &node(2));
        let right = g
            .set_status(&node(n - 1), MemberStatus::Leaving, &node(n - 1))
            .unwrap();
        show("merge (concurrent)", time(|| left.merge(&right)));
        show("merge (same version)", time(|| g.merge(&g)));
        show("is_converged", time(|| g.is_converged()));
        show("leader", time(|| g.leader(&me).map(Member::unique_address)));
        let joining = g
            .join(
                Member::joining(node(n).address, node(n).uid, ["backend"]),
                &me,
            )
            .unwrap();
        let joining = (0..n).fold(joining, |acc, i| acc.seen_by(&node(i)));
        show(
            "leader_actions (1 joiner)",
            time(|| leader_actions(&joining, &me)),
        );
        show("diff (1 change)", time(|| diff(&g, &right, &me)));
        show("postcard encode", time(|| postcard::to_stdvec(&g)));
    }
}
