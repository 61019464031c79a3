//! Profiling aid (not part of the suite): 2M ask round trips to one echo actor from a task, on
//! a current-thread runtime by default or a two-worker multi-thread runtime with `ASK_MT=1`.
//! Prints the mean round trip.
use actor_core::*;
use std::time::{Duration, Instant};

#[allow(dead_code)] // each bench uses some of them
mod actors;
use actors::Echo;
fn main() {
    let multi_thread = std::env::var_os("ASK_MT").is_some();
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
        let asker = tokio::spawn(async move {
            let echo = system.spawn_anonymous(Props::new(|| Echo)).expect("spawn");
            let n: u32 = std::env::var("ASKS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2_000_000);
            let t = Instant::now();
            for _ in 0..n {
                echo.ask(|r| r, Duration::from_secs(5)).await.expect("ask");
            }
            println!(
                "mean ask round trip {:.3} us",
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        });
        let _ = asker.await;
    });
}
