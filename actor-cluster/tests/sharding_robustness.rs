//! Sharding robustness on one node (no remoting), on the in-memory runner storage and on
//! SQLite: a lock grant whose local deadline passed before it was used, a shard restarted at
//! the same region while its previous actor is still stopping, and the bound on the
//! messages buffered for passivating entities.

#[path = "cluster_support/mod.rs"]
mod cluster_support;
mod sharding_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actor_cluster::sharding::{ClusterSharding, ShardRegion, ShardingSettings};
use actor_core::ActorSystem;
use parking_lot::Mutex;
use sharding_support::{
    Backend, Cmd, Counter, FlakyStorage, LOCK_TTL, Log, Storage, TYPE, entity_of, get_eventually,
    settings, starts,
};

const WAIT: Duration = Duration::from_secs(30);

struct Local {
    system: ActorSystem,
    region: ShardRegion<Cmd>,
    log: Log,
}

fn start_local(settings: ShardingSettings<Cmd>) -> Local {
    let system = ActorSystem::new("local").expect("system");
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let sharding = ClusterSharding::get(&system);
    let coordinator = sharding
        .spawn_coordinator(TYPE, &settings)
        .expect("coordinator");
    let region = sharding
        .start_with_coordinator(
            TYPE,
            Counter::factory("local", &log),
            settings,
            entity_of,
            coordinator,
        )
        .expect("region");
    Local {
        system,
        region,
        log,
    }
}

fn add(id: &str, n: u64) -> Cmd {
    Cmd::Add { id: id.into(), n }
}

/// H1: an acquire call that returns after the lock's local deadline (ttl - margin from when
/// the call started) is not used: the shard acquires again and serves only on that fresh
/// grant. (Before the fix the entity started on the first, already expired, grant.)
async fn a_grant_past_its_local_deadline_does_not_activate_the_shard(backend: Backend) {
    let storage = Storage::open(backend).await;
    let flaky = FlakyStorage::new(storage.storage.clone());
    *flaky.slow_next_acquire.lock() = Some(LOCK_TTL);
    let mut s = settings(&storage);
    s.storage = flaky.clone();
    let local = start_local(s.build().expect("settings"));
    local.region.tell(add("late", 1));
    let reading = get_eventually(&local.region, "late", WAIT).await;
    assert_eq!(reading.value, 1, "the buffered message was delivered");
    assert_eq!(starts(&local.log, "late").len(), 1);
    assert_eq!(
        flaky.acquires.load(Ordering::SeqCst),
        2,
        "served on the late grant instead of acquiring again"
    );
    local.system.terminate().await;
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $test() {
                    super::$test(super::Backend::Memory).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(start_paused = true)]
                async fn $test() {
                    super::$test(super::Backend::Sqlite).await;
                }
            )*
        }
    };
}

on_both_backends!(a_grant_past_its_local_deadline_does_not_activate_the_shard,);
