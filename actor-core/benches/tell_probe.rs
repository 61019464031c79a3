//! Profiling aid (not part of the suite): tells `TELLS` (default 10M) messages from a task to
//! one counting actor on a two-worker multi-thread runtime (`TELL_CT=1`: current-thread), and
//! prints the rate, timed until the last message was handled.
use actor_core::*;
use std::time::Instant;
use tokio::sync::oneshot;
struct Counter {
    seen: u64,
    target: u64,
    done: Option<oneshot::Sender<()>>,
}
impl Actor for Counter {
    type Msg = u64;
    async fn handle(&mut self, _: u64, _: &mut Context<Self>) -> ActorResult {
        self.seen += 1;
        if self.seen == self.target
            && let Some(d) = self.done.take()
        {
            let _ = d.send(());
        }
        Ok(())
    }
}
fn main() {
    let n: u64 = std::env::var("TELLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let rt = if std::env::var_os("TELL_CT").is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .expect("rt");
    rt.block_on(async move {
        let system = ActorSystem::new("p").expect("system");
        let teller = tokio::spawn(async move {
            for round in 0..5 {
                let (tx, rx) = oneshot::channel();
                let done = std::sync::Mutex::new(Some(tx));
                let counter = system
                    .spawn_anonymous(Props::new(move || Counter {
                        seen: 0,
                        target: n,
                        done: done.lock().ok().and_then(|mut d| d.take()),
                    }))
                    .expect("spawn");
                let t = Instant::now();
                for i in 0..n {
                    counter.tell(i);
                }
                rx.await.expect("counter finished");
                println!(
                    "round {round}: {:.2} M msgs/s",
                    n as f64 / t.elapsed().as_secs_f64() / 1e6
                );
                counter.stop();
            }
        });
        let _ = teller.await;
    });
}
