//! Profiling aid: spawns 300k idle actors from a worker thread.
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let system = ActorSystem::new("p").expect("system");
        tokio::spawn(async move {
            let t = Instant::now();
            let n = 300_000;
            for _ in 0..n {
                system.spawn_anonymous(Props::new(|| Idle)).expect("spawn");
            }
            println!("{:.0} k/s", n as f64 / t.elapsed().as_secs_f64() / 1e3);
        })
        .await
        .expect("task");
    });
}
