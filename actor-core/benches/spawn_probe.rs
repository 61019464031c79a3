//! Profiling aid (not part of the suite): spawns 1M idle actors, on a current-thread runtime
//! by default or on a two-worker multi-thread runtime with `SPAWN_MT=1`; from a task by
//! default, or from an actor's handler (as children of one parent) with `SPAWN_FROM_ACTOR=1`;
//! `SPAWN_KEEP=1` keeps every ref in a vector, as core_bench's (d) does. Prints the rate at
//! which spawns returned, and the rate until every actor had started (an ask through an actor
//! spawned after them all, which runs after them).
use actor_core::*;
use std::time::{Duration, Instant};

#[allow(dead_code)] // each bench uses some of them
mod actors;
use actors::{Echo, Idle, Parent};
fn main() {
    let multi_thread = std::env::var_os("SPAWN_MT").is_some();
    let from_actor = std::env::var_os("SPAWN_FROM_ACTOR").is_some();
    let keep = std::env::var_os("SPAWN_KEEP").is_some();
    let rt = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("rt");
    rt.block_on(async {
        let system = ActorSystem::new("p").expect("system");
        let n = 1_000_000;
        let t0 = Instant::now();
        let elapsed = if from_actor {
            let parent = system
                .spawn_anonymous(Props::new(|| Parent))
                .expect("spawn");
            parent
                .ask(|r| (n, r), Duration::from_secs(600))
                .await
                .expect("parent")
        } else {
            let system = system.clone();
            tokio::spawn(async move {
                let props = Props::new(|| Idle);
                let mut refs = Vec::with_capacity(if keep { n } else { 0 });
                let t = Instant::now();
                for _ in 0..n {
                    let r = system.spawn_anonymous(props.clone()).expect("spawn");
                    if keep {
                        refs.push(r);
                    }
                }
                let elapsed = t.elapsed();
                std::mem::forget(refs);
                elapsed
            })
            .await
            .expect("spawner")
        };
        let last = system.spawn_anonymous(Props::new(|| Echo)).expect("spawn");
        last.ask(|r| r, Duration::from_secs(600))
            .await
            .expect("all started");
        let started = t0.elapsed();
        println!(
            "{:.0} k/s; all started: {:.0} k/s",
            n as f64 / elapsed.as_secs_f64() / 1e3,
            n as f64 / started.as_secs_f64() / 1e3
        );
        std::process::exit(0);
    });
}
