//! Profiling aid (not part of the suite): spawns 1M idle actors, on a current-thread runtime
//! by default or from a task on a two-worker multi-thread runtime with `SPAWN_MT=1`.
use actor_core::*;
use std::time::Instant;
struct Idle;
impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}
fn main() {
    let multi_thread = std::env::var_os("SPAWN_MT").is_some();
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
        let spawner = tokio::spawn(async move {
            let props = Props::new(|| Idle);
            let t = Instant::now();
            let n = 1_000_000;
            for _ in 0..n {
                system.spawn_anonymous(props.clone()).expect("spawn");
            }
            println!("{:.0} k/s", n as f64 / t.elapsed().as_secs_f64() / 1e3);
        });
        let _ = spawner.await;
        std::process::exit(0);
    });
}
