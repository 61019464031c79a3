//! Latency and throughput of file ownership and runner storage backends, in one run.
//!
//! Rows: acquire + release latency (file owner: `join` as owner + `release`; runner storage:
//! `acquire` of one shard + `release`) and renewal / refresh latency (file owner:
//! `renew_now`; runner storage: `refresh` of 16 held shards), each with median, p99 and the
//! sequential rate. Run with `cargo bench -p actor-coordination --bench coordination_storage_bench`.
//! PostgreSQL needs `ACTOR_TEST_POSTGRES_URL` or a local PostgreSQL installation (a throwaway
//! server is started); without either its rows are reported as not run, with the reason.

#[cfg(feature = "postgres")]
#[allow(dead_code)]
#[path = "../tests/common/postgres.rs"]
mod postgres_server;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_coordination::owner::{self, OwnerConfig};
use actor_coordination::runner_storage::{
    MemoryRunnerStorage, Runner, RunnerAddress, RunnerStorage, RunnerStorageConfig, ShardId,
};

/// Samples per row for fast backends.
const SAMPLES: usize = 2_000;
/// Samples per row for backends that touch the disk or the network.
const IO_SAMPLES: usize = 500;
/// Shards refreshed per refresh call.
const REFRESH_BATCH: u32 = 16;

struct Row {
    name: String,
    samples: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn print_row(row: &Row) {
    let mut sorted = row.samples.clone();
    sorted.sort_unstable();
    let total: Duration = sorted.iter().sum();
    let rate = sorted.len() as f64 / total.as_secs_f64();
    println!(
        "{:<44} {:>7} {:>12.1} {:>12.1} {:>12.0}",
        row.name,
        sorted.len(),
        percentile(&sorted, 0.5).as_secs_f64() * 1e6,
        percentile(&sorted, 0.99).as_secs_f64() * 1e6,
        rate
    );
}

async fn measure<F, Fut>(name: impl Into<String>, n: usize, mut op: F) -> Row
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    // Warm-up: caches, prepared statements, connections.
    for _ in 0..n / 10 {
        op().await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        op().await;
        samples.push(start.elapsed());
    }
    let row = Row {
        name: name.into(),
        samples,
    };
    print_row(&row);
    row
}

async fn bench_file_owner(dir: &std::path::Path) {
    let config = OwnerConfig::new(dir.join("bench.lease")).with_ttl(Duration::from_secs(30));
    measure("file owner: join as owner + release", IO_SAMPLES, || {
        let config = config.clone();
        async move {
            let me = owner::join(config).await.expect("join");
            assert!(me.is_owner());
            me.release().await.expect("release");
        }
    })
    .await;
    let me = owner::join(config).await.expect("join");
    measure("file owner: renew_now", IO_SAMPLES, || async {
        me.renew_now().await.expect("renew");
    })
    .await;
    me.release().await.expect("release");
}

async fn bench_storage(label: &str, storage: Arc<dyn RunnerStorage>, n: usize) {
    let runner = Runner::new(RunnerAddress::new("127.0.0.1", 9000).expect("address"), 1);
    storage.register(&runner, true).await.expect("register");
    let shard = [ShardId::default_group(10_000)];
    measure(format!("{label}: acquire 1 shard + release"), n, || async {
        let got = storage.acquire(&runner.id, &shard).await.expect("acquire");
        assert_eq!(got.len(), 1);
        storage
            .release(&runner.id, &shard[0])
            .await
            .expect("release");
    })
    .await;
    let held: Vec<ShardId> = (0..REFRESH_BATCH).map(ShardId::default_group).collect();
    storage
        .acquire(&runner.id, &held)
        .await
        .expect("acquire batch");
    measure(
        format!("{label}: refresh {REFRESH_BATCH} shards"),
        n,
        || async {
            let still = storage.refresh(&runner.id, &held).await.expect("refresh");
            assert_eq!(still.len(), held.len());
        },
    )
    .await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "machine: {} cores available; times in microseconds; rate = sequential operations per second",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<44} {:>7} {:>12} {:>12} {:>12}",
        "row", "n", "median_us", "p99_us", "ops_per_s"
    );
    runtime.block_on(async {
        bench_file_owner(dir.path()).await;

        let config = RunnerStorageConfig::default();
        let memory = MemoryRunnerStorage::new(config).expect("memory storage");
        bench_storage("memory", Arc::new(memory), SAMPLES).await;

        #[cfg(feature = "sqlite")]
        {
            use actor_coordination::runner_storage::sqlite::SqliteRunnerStorage;
            let sqlite = SqliteRunnerStorage::open(dir.path().join("bench.db"), config)
                .await
                .expect("sqlite");
            bench_storage("sqlite", Arc::new(sqlite.into_typed()), IO_SAMPLES).await;
        }

        #[cfg(feature = "postgres")]
        bench_postgres(config).await;
    });
}

#[cfg(feature = "postgres")]
async fn bench_postgres(config: RunnerStorageConfig) {
    use actor_coordination::runner_storage::postgres::PostgresRunnerStorage;
    // The helper panics with an install hint when no server can be found or started.
    let database = match tokio::spawn(postgres_server::fresh_database()).await {
        Ok(database) => database,
        Err(error) => {
            println!("postgres: not run: {error}");
            return;
        }
    };
    let backend = PostgresRunnerStorage::connect(&database.conninfo(), config)
        .await
        .expect("connect postgres");
    bench_storage("postgres", Arc::new(backend.into_typed()), IO_SAMPLES).await;
}
