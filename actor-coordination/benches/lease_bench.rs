//! Lease latency and renewal throughput for the in-memory and PostgreSQL backends, in one run.
//!
//! Rows: acquire + release (one sequential round trip of each, a free lease, one handle) and
//! renewal (`renew_now` of a held lease), each with median, p99 and the sequential rate (for
//! the renewal row: renewals per second from one handle). Run with
//! `cargo bench -p actor-coordination --bench lease_bench`. PostgreSQL uses
//! `ACTOR_TEST_POSTGRES_URL` or starts a throwaway server like the tests (Unix socket, fsync off);
//! if neither is possible its rows are reported as not run, with the reason.

#[cfg(feature = "postgres")]
#[allow(dead_code)]
#[path = "../tests/common/postgres.rs"]
mod postgres_server;

use std::future::Future;
use std::time::{Duration, Instant};

use actor_coordination::lease::{InMemoryLease, Lease, LeaseOwner, LeaseSettings};

/// Samples per in-memory row.
const MEMORY_SAMPLES: usize = 20_000;
/// Samples per PostgreSQL row.
#[cfg(feature = "postgres")]
const POSTGRES_SAMPLES: usize = 1_000;
/// Untimed iterations before each row.
const WARM_UP: usize = 50;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn row<F, Fut>(name: &str, n: usize, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..WARM_UP {
        op().await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        op().await;
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let total: Duration = samples.iter().sum();
    println!(
        "{:<40} {:>7} {:>12.1} {:>12.1} {:>12.0}",
        name,
        n,
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        n as f64 / total.as_secs_f64()
    );
}

fn settings() -> LeaseSettings {
    LeaseSettings::builder("bench", LeaseOwner::new("bench-node", 1))
        .build()
        .expect("default settings are valid")
}

async fn in_memory() {
    let lease = InMemoryLease::new(settings());
    row("in-memory acquire + release", MEMORY_SAMPLES, || async {
        assert!(lease.acquire().await.expect("in-memory").is_held());
        assert!(lease.release().await.expect("in-memory"));
    })
    .await;
    assert!(lease.acquire().await.expect("in-memory").is_held());
    row("in-memory renewal", MEMORY_SAMPLES, || async {
        assert!(lease.renew_now().await.expect("in-memory"));
    })
    .await;
}

#[cfg(feature = "postgres")]
async fn postgres() {
    use actor_coordination::lease::PostgresLease;
    let db = match tokio::spawn(postgres_server::fresh_database()).await {
        Ok(db) => db,
        Err(error) => {
            let reason = error
                .try_into_panic()
                .ok()
                .and_then(|p| p.downcast::<String>().ok().map(|s| *s))
                .unwrap_or_else(|| "unknown".to_owned());
            println!("postgres rows not run: {reason}");
            return;
        }
    };
    let lease = PostgresLease::connect(settings(), db.config.clone())
        .await
        .expect("connect to the bench database");
    row("postgres acquire + release", POSTGRES_SAMPLES, || async {
        assert!(lease.acquire().await.expect("postgres").is_held());
        assert!(lease.release().await.expect("postgres"));
    })
    .await;
    assert!(lease.acquire().await.expect("postgres").is_held());
    row("postgres renewal", POSTGRES_SAMPLES, || async {
        assert!(lease.renew_now().await.expect("postgres"));
    })
    .await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "lease backends, {} CPUs, one handle, sequential operations",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<40} {:>7} {:>12} {:>12} {:>12}",
        "row", "samples", "median µs", "p99 µs", "ops/s"
    );
    runtime.block_on(async {
        in_memory().await;
        #[cfg(feature = "postgres")]
        postgres().await;
    });
}
