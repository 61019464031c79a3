//! Review findings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props};
use actor_testkit::TestProbe;

/// Counts the bytes live on the current thread (a current-thread runtime keeps every actor on
/// the test's thread).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| l.set(l.get() + layout.size() as isize));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.with(|l| l.get())
}

struct Idle;
impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

/// Watches `target` and stops itself at once.
struct WatchAndDie(ActorRef<()>);
impl Actor for WatchAndDie {
    type Msg = ();
    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        if std::env::var_os("NO_WATCH").is_none() {
            ctx.watch(&self.0);
        }
        ctx.stop();
        Ok(())
    }
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> ActorResult {
        Ok(())
    }
}

async fn churn(system: &ActorSystem, probe: &TestProbe<()>, target: &ActorRef<()>, n: usize) {
    for _ in 0..n {
        let t = target.clone();
        let w = system
            .spawn_anonymous(Props::new(move || WatchAndDie(t.clone())))
            .unwrap();
        probe.watch(&w).await;
        probe.expect_terminated(&w).await;
        // let the parent process the child's termination and the task be freed
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
}

/// Regression (review finding):
/// `SystemState::watchers`), so a long-lived actor watched by short-lived ones keeps every dead
/// watcher's cell (and its parent chain) alive until it dies itself.
#[tokio::test(start_paused = true)]
async fn dead_watchers_are_not_kept_by_a_live_target() {
    let system = ActorSystem::new("leak").unwrap();
    let probe = TestProbe::<()>::new(&system);
    let target = system.spawn(Props::new(|| Idle), "target").unwrap();
    churn(&system, &probe, &target, 200).await;
    let before = live();
    churn(&system, &probe, &target, 1000).await;
    let grown = live() - before;
    eprintln!("live bytes grew by {grown} over 1000 dead watchers");
    assert!(
        grown < 64 * 1024,
        "live bytes grew by {grown} over 1000 dead watchers"
    );
    system.terminate().await;
}
