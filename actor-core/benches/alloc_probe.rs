//! Profiling aid (not part of the suite): counts allocations by (size, align) while 10,000
//! idle actors are spawned on a current-thread runtime.
use actor_core::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[allow(dead_code)] // each bench uses some of them
mod actors;
use actors::Idle;

struct Counting;
static ON: AtomicBool = AtomicBool::new(false);
static HIST: Mutex<Vec<(usize, usize, usize)>> = Mutex::new(Vec::new());
thread_local!(static IN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) && !IN.with(|c| c.replace(true)) {
            let mut h = HIST.lock().unwrap();
            match h.iter_mut().find(|e| e.0 == l.size() && e.1 == l.align()) {
                Some(e) => e.2 += 1,
                None => h.push((l.size(), l.align(), 1)),
            }
            drop(h);
            IN.with(|c| c.set(false));
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let system = ActorSystem::new("p").expect("system");
        let props = Props::new(|| Idle);
        let mut refs = Vec::with_capacity(10_000);
        ON.store(true, Ordering::Relaxed);
        for _ in 0..10_000 {
            refs.push(system.spawn_anonymous(props.clone()).expect("spawn"));
        }
        tokio::task::yield_now().await;
        ON.store(false, Ordering::Relaxed);
        let mut h = HIST.lock().unwrap().clone();
        h.sort_by_key(|e| std::cmp::Reverse(e.2));
        for (size, align, n) in h.iter().take(12) {
            println!("size {size:5} align {align:4}: {n}");
        }
        std::process::exit(0);
    });
}
