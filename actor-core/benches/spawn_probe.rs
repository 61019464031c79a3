//! Profiling aid (not part of the suite): spawns 1M idle actors on a current-thread runtime.
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let system = ActorSystem::new("p").expect("system");
        let props = Props::new(|| Idle);
        let t = Instant::now();
        let n = 1_000_000;
        for _ in 0..n {
            system.spawn_anonymous(props.clone()).expect("spawn");
        }
        println!("{:.0} k/s", n as f64 / t.elapsed().as_secs_f64() / 1e3);
        std::process::exit(0);
    });
}
