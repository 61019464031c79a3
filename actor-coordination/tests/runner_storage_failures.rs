//! Runner storage when the database misbehaves: unreachable, silent, or blocked by another
//! session. Every case ends in a typed error within the operation timeout, never a hang.

#[cfg(feature = "postgres")]
mod common;

use std::time::Duration;

use actor_coordination::runner_storage::{
    MemoryRunnerStorage, RunnerStorageConfig, RunnerStorageError,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use actor_coordination::runner_storage::{RunnerAddress, RunnerId, RunnerStorage, ShardId};

/// Bound on a whole test case: far above the operation timeouts used below.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const CASE_BOUND: Duration = Duration::from_secs(30);

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn runner() -> RunnerId {
    RunnerId::new(RunnerAddress::new("127.0.0.1", 9001).expect("address"), 1)
}

#[test]
fn invalid_settings_are_typed_errors() {
    let zero_timeout = RunnerStorageConfig::default().with_operation_timeout(Duration::ZERO);
    assert!(matches!(
        MemoryRunnerStorage::new(zero_timeout),
        Err(RunnerStorageError::InvalidConfig {
            field: "operation_timeout",
            ..
        })
    ));
    let zero_ttl = RunnerStorageConfig::default().with_lock_ttl(Duration::ZERO);
    assert!(matches!(
        MemoryRunnerStorage::new(zero_ttl),
        Err(RunnerStorageError::InvalidConfig {
            field: "lock_ttl",
            ..
        })
    ));
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_blocked_by_another_writer_times_out_then_recovers() {
    use actor_coordination::runner_storage::sqlite::SqliteRunnerStorage;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("runners.db");
    let timeout = Duration::from_millis(200);
    let config = RunnerStorageConfig::default().with_operation_timeout(timeout);
    let storage = SqliteRunnerStorage::open(&path, config)
        .await
        .expect("open")
        .into_typed();

    // Another connection (as another process would) holds the write lock.
    let blocker = rusqlite::Connection::open(&path).expect("open blocker");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take write lock");
    let shard = [ShardId::default_group(1)];
    let result = tokio::time::timeout(CASE_BOUND, storage.acquire(&runner(), &shard))
        .await
        .expect("the busy timeout bounds the wait");
    assert!(
        matches!(result, Err(RunnerStorageError::Timeout { backend: "sqlite", operation: "acquire", after }) if after == timeout),
        "{result:?}"
    );
    blocker
        .execute_batch("ROLLBACK")
        .expect("release write lock");
    assert_eq!(
        storage.acquire(&runner(), &shard).await.expect("acquire"),
        shard
    );
}

/// A call the caller gave up on never takes effect later. Here a lock release is cut short
/// by the caller's timeout while another connection holds the write lock; once that lock is
/// let go, the given-up release must not delete the lock (before, its blocking task went on
/// and deleted it, so it could undo a newer acquire of the same runner).
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_a_given_up_call_does_nothing_afterwards() {
    use actor_coordination::runner_storage::sqlite::SqliteRunnerStorage;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("runners.db");
    // the busy wait outlasts the caller's patience by far
    let config = RunnerStorageConfig::default().with_operation_timeout(Duration::from_secs(20));
    let storage = SqliteRunnerStorage::open(&path, config)
        .await
        .expect("open")
        .into_typed();
    let shard = [ShardId::default_group(1)];
    assert_eq!(
        storage.acquire(&runner(), &shard).await.expect("acquire"),
        shard
    );

    let blocker = rusqlite::Connection::open(&path).expect("open blocker");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take write lock");
    let given_up = tokio::time::timeout(
        Duration::from_millis(100),
        storage.release(&runner(), &shard[0]),
    )
    .await;
    assert!(given_up.is_err(), "the release waits for the write lock");
    blocker
        .execute_batch("ROLLBACK")
        .expect("release write lock");

    // The given-up release took the connection before this read, so the read sees its effect.
    let locks = tokio::time::timeout(CASE_BOUND, storage.list_locks())
        .await
        .expect("bounded")
        .expect("list locks");
    assert_eq!(
        locks
            .iter()
            .map(|l| (&l.shard, &l.holder))
            .collect::<Vec<_>>(),
        vec![(&shard[0], &runner())],
        "the given-up release ran after all"
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_in_a_missing_directory_is_a_typed_error() {
    use actor_coordination::runner_storage::sqlite::SqliteRunnerStorage;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no-such-dir").join("runners.db");
    let result = SqliteRunnerStorage::open(&path, RunnerStorageConfig::default()).await;
    assert!(
        matches!(result, Err(RunnerStorageError::Sqlite(_))),
        "{result:?}"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_that_never_answers_times_out_on_connect() {
    use actor_coordination::runner_storage::postgres::PostgresRunnerStorage;
    // Accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let timeout = Duration::from_millis(300);
    let config = RunnerStorageConfig::default().with_operation_timeout(timeout);
    let url = format!("host=127.0.0.1 port={port} user=nobody dbname=none");
    let result = tokio::time::timeout(CASE_BOUND, PostgresRunnerStorage::connect(&url, config))
        .await
        .expect("the operation timeout bounds connect");
    assert!(
        matches!(
            result,
            Err(RunnerStorageError::Timeout {
                backend: "postgres",
                operation: "connect",
                ..
            })
        ),
        "{result:?}"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_that_refuses_is_a_typed_error() {
    use actor_coordination::runner_storage::postgres::PostgresRunnerStorage;
    // A port that was just free: nothing listens there any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("host=127.0.0.1 port={port} user=nobody dbname=none");
    let result = PostgresRunnerStorage::connect(&url, RunnerStorageConfig::default()).await;
    assert!(
        matches!(result, Err(RunnerStorageError::Postgres(_))),
        "{result:?}"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_blocked_by_another_session_times_out_then_recovers() {
    use actor_coordination::runner_storage::postgres::PostgresRunnerStorage;
    let database = common::postgres::fresh_database().await;
    let timeout = Duration::from_millis(300);
    let config = RunnerStorageConfig::default().with_operation_timeout(timeout);
    let storage = PostgresRunnerStorage::connect(&database.conninfo(), config)
        .await
        .expect("connect")
        .into_typed();
    let shard = [ShardId::default_group(1)];

    // Another session inserts the lock row and keeps its transaction open: our acquire has to
    // wait for that row.
    let mut other = database.connect().await;
    let tx = other.transaction().await.expect("begin");
    tx.execute(
        "INSERT INTO actor_shard_locks (shard_id, holder, expires_at_ms) VALUES ('default:1', 'h:1#1', 0)",
        &[],
    )
    .await
    .expect("insert blocking row");
    let result = tokio::time::timeout(CASE_BOUND, storage.acquire(&runner(), &shard))
        .await
        .expect("the operation timeout bounds acquire");
    assert!(
        matches!(result, Err(RunnerStorageError::Timeout { backend: "postgres", operation: "acquire", after }) if after == timeout),
        "{result:?}"
    );
    tx.rollback().await.expect("rollback");
    // The storage still works; the timed-out acquire may have completed on the server after
    // all, in which case this runner holds the shard already: either way it gets it now.
    assert_eq!(
        storage.acquire(&runner(), &shard).await.expect("acquire"),
        shard
    );
}
