//! actor-core benchmark: tell throughput against a bare flume channel, ask latency, spawn
//! rate and memory per idle actor. Run with
//! `cargo bench -p actor-core --bench core_bench` (release profile).
//!
//! Throughput is timed until the last message has been *processed*, not queued. Each figure
//! is the median of several runs, with min and max as the spread.

use std::time::{Duration, Instant};

use actor_core::{Actor, ActorResult, ActorSystem, Context, Props};
use tokio::sync::oneshot;

#[allow(dead_code)] // each bench uses some of them
mod actors;
use actors::{Echo, Idle, Parent};

const TELL_MESSAGES: u64 = 10_000_000;
const RUNS: usize = 5;
const ASKS: usize = 200_000;
const SPAWNS: usize = 1_000_000;

struct Counter {
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Counter {
    type Msg = u64;
    async fn handle(&mut self, _msg: u64, _: &mut Context<Self>) -> ActorResult {
        self.seen += 1;
        if self.seen == self.target
            && let Some(d) = self.done.take()
        {
            let _ = d.send(());
        }
        Ok(())
    }
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn tell_once(system: &ActorSystem, n: u64) -> Duration {
    let (tx, rx) = oneshot::channel();
    let done = std::sync::Mutex::new(Some(tx));
    let counter = system
        .spawn_anonymous(Props::new(move || Counter {
            seen: 0,
            target: n,
            done: done.lock().ok().and_then(|mut d| d.take()),
        }))
        .expect("spawn");
    let start = Instant::now();
    for i in 0..n {
        counter.tell(i);
    }
    rx.await.expect("counter finished");
    let elapsed = start.elapsed();
    counter.stop();
    elapsed
}

async fn flume_once(n: u64) -> Duration {
    let (tx, rx) = flume::unbounded::<u64>();
    let start = Instant::now();
    let consumer = tokio::spawn(async move {
        let mut seen = 0u64;
        while rx.recv_async().await.is_ok() {
            seen += 1;
            if seen == n {
                break;
            }
        }
    });
    for i in 0..n {
        let _ = tx.send(i);
    }
    consumer.await.expect("consumer");
    start.elapsed()
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn ask_latencies(system: &ActorSystem) -> (Duration, Duration) {
    let echo = system.spawn_anonymous(Props::new(|| Echo)).expect("spawn");
    for _ in 0..10_000 {
        let _ = echo.ask(|r| r, Duration::from_secs(5)).await;
    }
    let mut samples = Vec::with_capacity(ASKS);
    for _ in 0..ASKS {
        let t = Instant::now();
        echo.ask(|r| r, Duration::from_secs(5)).await.expect("ask");
        samples.push(t.elapsed());
    }
    samples.sort();
    echo.stop();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// The time since `since` once every actor spawned so far has started: an ask through an
/// actor spawned after them, which the dispatcher runs after them. An actor's run loop is
/// made on its first run, on a worker, so the rate of spawns alone does not show that work.
async fn all_started(system: &ActorSystem, since: Instant) -> Duration {
    let probe = system.spawn_anonymous(Props::new(|| Echo)).expect("spawn");
    let _ = probe.ask(|r| r, Duration::from_secs(60)).await;
    since.elapsed()
}

fn main() {
    println!(
        "actor-core bench: {} cores, tokio multi-thread runtime with 2 workers unless noted",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    // (a) + (b): tell vs bare flume, interleaved so both see the same machine state.
    let rt = multi_thread();
    let (tell, flume_rates) = rt.block_on(async {
        let system = ActorSystem::new("bench").expect("system");
        let mut tell = Vec::new();
        let mut flume_rates = Vec::new();
        for _ in 0..RUNS {
            let d = tell_once(&system, TELL_MESSAGES).await;
            tell.push(TELL_MESSAGES as f64 / d.as_secs_f64());
            let d = flume_once(TELL_MESSAGES).await;
            flume_rates.push(TELL_MESSAGES as f64 / d.as_secs_f64());
        }
        system.terminate().await;
        (tell, flume_rates)
    });
    let (t_med, t_min, t_max) = stats(tell);
    let (f_med, f_min, f_max) = stats(flume_rates);
    println!(
        "(a) tell 1->1, {TELL_MESSAGES} msgs: median {:.2} M msgs/s (min {:.2}, max {:.2})",
        t_med / 1e6,
        t_min / 1e6,
        t_max / 1e6
    );
    println!(
        "(b) bare flume channel:        median {:.2} M msgs/s (min {:.2}, max {:.2})",
        f_med / 1e6,
        f_min / 1e6,
        f_max / 1e6
    );
    println!("    ratio a/b = {:.2}", t_med / f_med);

    // (c) ask latency, current-thread and multi-thread.
    for (label, rt) in [
        ("current-thread", current_thread()),
        ("multi-thread", multi_thread()),
    ] {
        // the asker runs as a task on the runtime (as an actor or a request handler would),
        // not on the thread that called `block_on`
        let (p50, p99) = rt.block_on(async {
            let system = ActorSystem::new("bench-ask").expect("system");
            let s = system.clone();
            let r = tokio::spawn(async move { ask_latencies(&s).await })
                .await
                .expect("asker");
            system.terminate().await;
            r
        });
        println!(
            "(c) ask round-trip ({label}, {ASKS} asks): p50 {:.2} us, p99 {:.2} us",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }

    // (d) runs before (d'): the RSS delta must not be hidden by memory an earlier section
    // freed and the allocator kept (measured 0 B per actor after (d') with one malloc arena).
    // (d) spawn rate and memory per idle actor. Spawning runs inside a task on a worker
    // thread, as it does from an actor; from outside the runtime every spawn would also wake
    // a parked worker thread.
    let rt = multi_thread();
    rt.block_on(async {
        let system = ActorSystem::new("bench-spawn").expect("system");
        let before = rss_bytes();
        let s = system.clone();
        let spawned_at = Instant::now();
        let (refs, spawn_time) = tokio::spawn(async move {
            // one recipe for all: its factory is shared, as when an application spawns many
            // actors of a kind
            let props = Props::new(|| Idle);
            let start = Instant::now();
            let mut refs = Vec::with_capacity(SPAWNS);
            for _ in 0..SPAWNS {
                refs.push(s.spawn_anonymous(props.clone()).expect("spawn"));
            }
            (refs, start.elapsed())
        })
        .await
        .expect("spawner");
        let started_time = all_started(&system, spawned_at).await;
        for r in refs.iter().rev().take(1) {
            r.tell(());
        }
        tokio::task::yield_now().await;
        let after = rss_bytes();
        let ref_bytes = std::mem::size_of::<actor_core::ActorRef<()>>();
        println!(
            "(d) spawn {SPAWNS} actors: {:.0} k spawns/s ({:.0} k/s until all had started); RSS delta {:.0} MiB = {} B per idle actor (incl. {ref_bytes} B for the bench's own ref)",
            SPAWNS as f64 / spawn_time.as_secs_f64() / 1e3,
            SPAWNS as f64 / started_time.as_secs_f64() / 1e3,
            (after.saturating_sub(before)) as f64 / (1 << 20) as f64,
            after.saturating_sub(before) / SPAWNS as u64,
        );
        drop(refs);
        let t = Instant::now();
        system.terminate().await;
        println!("    terminate {SPAWNS} actors: {:.2} s", t.elapsed().as_secs_f64());
    });

    // (d'') spawn rate from an actor: one parent spawns its children from a handler, on the
    // multi-thread runtime (the actor runs on the dispatcher's worker, whose wakes of other
    // workers are batched per poll, unlike a plain task's).
    let rt = multi_thread();
    rt.block_on(async {
        let system = ActorSystem::new("bench-spawn-actor").expect("system");
        let parent = system
            .spawn_anonymous(Props::new(|| Parent))
            .expect("spawn");
        let asked_at = Instant::now();
        let spawn_time = parent
            .ask(|r| (SPAWNS, r), Duration::from_secs(600))
            .await
            .expect("parent spawned its children");
        let started_time = all_started(&system, asked_at).await;
        println!(
            "(d'') spawn {SPAWNS} actors from an actor (children of one parent): {:.0} k spawns/s ({:.0} k/s until all had started)",
            SPAWNS as f64 / spawn_time.as_secs_f64() / 1e3,
            SPAWNS as f64 / started_time.as_secs_f64() / 1e3
        );
        system.terminate().await;
    });

    // (d') spawn rate on a current-thread runtime: the framework's own cost, without the
    // multi-thread scheduler waking a parked worker for each new task.
    let rt = current_thread();
    rt.block_on(async {
        let system = ActorSystem::new("bench-spawn-ct").expect("system");
        let props = Props::new(|| Idle);
        let start = Instant::now();
        let mut refs = Vec::with_capacity(SPAWNS);
        for _ in 0..SPAWNS {
            refs.push(system.spawn_anonymous(props.clone()).expect("spawn"));
        }
        let spawn_time = start.elapsed();
        let started_time = all_started(&system, start).await;
        println!(
            "(d') spawn {SPAWNS} actors on a current-thread runtime: {:.0} k spawns/s ({:.0} k/s until all had started)",
            SPAWNS as f64 / spawn_time.as_secs_f64() / 1e3,
            SPAWNS as f64 / started_time.as_secs_f64() / 1e3
        );
        drop(refs);
        system.terminate().await;
    });
}
