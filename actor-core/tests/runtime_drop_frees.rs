//! Dropping the runtime without terminating the system frees every actor once the last
//! handle to the system is gone: cells, paths, queued messages, watchers and extensions.
//! Before, the tree kept itself alive through the system (root -> children -> cell -> system),
//! about 500 bytes per actor for good. One test per binary: it counts the bytes the whole
//! process holds, with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use std::time::Duration;

use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, ReplyTo, SpawnError};

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: the caller's contract is passed on as is
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: the caller's contract is passed on as is
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Counts its own drops: in messages, actors and an extension.
struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Keeps what it is told: a token, or a ref to another actor (so that actors link to each
/// other through their state, as well as through watches).
enum Msg {
    /// Kept for its `Drop`.
    Token {
        _token: Token,
    },
    Peer(ActorRef<Msg>),
    Ping(ReplyTo<()>),
}

#[derive(Default)]
struct Keeper {
    kept: Vec<Msg>,
}

impl Actor for Keeper {
    type Msg = Msg;
    async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            Msg::Ping(reply) => {
                reply.reply(());
            }
            Msg::Peer(ref peer) => {
                ctx.watch(peer);
                self.kept.push(msg);
            }
            Msg::Token { .. } => self.kept.push(msg),
        }
        Ok(())
    }
}

/// An extension that holds refs to actors, as a cluster extension does.
struct Registry {
    _refs: Vec<ActorRef<Msg>>,
    _token: Token,
}

#[test]
fn a_dropped_runtime_frees_every_actor_with_the_last_system_handle() {
    const ACTORS: usize = 20_000;
    let drops = Arc::new(AtomicUsize::new(0));
    let token = || Token(drops.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let base = LIVE.load(Ordering::SeqCst);
    let system = runtime.block_on(async {
        let system = ActorSystem::new("dropped").expect("system");
        let mut refs = Vec::with_capacity(ACTORS);
        for _ in 0..ACTORS {
            refs.push(
                system
                    .spawn_anonymous(Props::new(Keeper::default))
                    .expect("spawn"),
            );
        }
        // every actor keeps a token and a ref to its neighbour, which it watches (a cycle
        // through state and one through watchers), and some are never run before the drop
        for (i, r) in refs.iter().enumerate() {
            r.tell(Msg::Token { _token: token() });
            r.tell(Msg::Peer(refs[(i + 1) % ACTORS].clone()));
        }
        // the first actors have handled theirs; most of the others have not run yet
        for r in &refs[..100] {
            r.ask(Msg::Ping, Duration::from_secs(60))
                .await
                .expect("the first actors answer");
        }
        let first = refs[..100].to_vec();
        system.extension(|_| Registry {
            _refs: first,
            _token: token(),
        });
        system
    });
    let held = LIVE.load(Ordering::SeqCst) - base;
    assert!(
        held > (ACTORS * 400) as isize,
        "the actors hold their memory while the runtime runs ({held} bytes)"
    );
    drop(runtime);
    // what is left of the system refuses work and has nothing to wait for
    let after = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    after.block_on(async {
        assert!(matches!(
            system.spawn_anonymous(Props::new(Keeper::default)),
            Err(SpawnError::ParentStopping { .. })
        ));
        tokio::time::timeout(Duration::from_secs(60), system.terminate())
            .await
            .expect("terminate returns at once");
        assert!(system.is_terminated());
    });
    drop(after);
    drop(system);
    let left = LIVE.load(Ordering::SeqCst) - base;
    assert_eq!(
        drops.load(Ordering::SeqCst),
        ACTORS + 1,
        "every queued or kept token and the extension's were dropped"
    );
    assert!(
        left < (ACTORS * 8) as isize,
        "{left} bytes ({} per actor) still held after the runtime and the last system handle were dropped",
        left / ACTORS as isize
    );
}
