//! SQLite runner storage shared by real processes on one host: several processes race for the
//! same shards in one database file, and each shard is won by exactly one of them.
//!
//! The child processes are this test binary run again with [`CHILD_ENV`] set, filtered to
//! [`sqlite_child_process_role`]; the parent synchronises on their stdout lines.
#![cfg(feature = "sqlite")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use actor_coordination::runner_storage::sqlite::SqliteRunnerStorage;
use actor_coordination::runner_storage::{
    Runner, RunnerAddress, RunnerStorage, RunnerStorageConfig, ShardId,
};

/// Set (to `<db path>|<port>`) in a child: makes [`sqlite_child_process_role`] act.
const CHILD_ENV: &str = "ACTOR_COORDINATION_SQLITE_CHILD";
/// Shards every child asks for.
const SHARDS: u32 = 64;
/// Children racing.
const CHILDREN: u16 = 4;
/// Bound for every line the parent waits for.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The child's side: does nothing unless started by the parent test below (with
/// [`CHILD_ENV`] set). Registers a runner, prints `READY`, waits for `go` on stdin, acquires
/// all shards in an order of its own and prints `GOT <numbers>`.
#[test]
fn sqlite_child_process_role() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (path, port) = spec.split_once('|').expect("child spec path|port");
    let port: u16 = port.parse().expect("child port");
    runtime().block_on(async {
        let storage = SqliteRunnerStorage::open(path, RunnerStorageConfig::default())
            .await
            .expect("open")
            .into_typed();
        let runner = Runner::new(RunnerAddress::new("127.0.0.1", port).expect("address"), 1);
        storage.register(&runner, true).await.expect("register");
        println!("READY");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).expect("read go");
        let mut asked: Vec<ShardId> = (0..SHARDS).map(ShardId::default_group).collect();
        asked.rotate_left(usize::from(port) * 16 % SHARDS as usize);
        if port % 2 == 1 {
            asked.reverse();
        }
        let got = storage.acquire(&runner.id, &asked).await.expect("acquire");
        let numbers: Vec<String> = got.iter().map(|s| s.number().to_string()).collect();
        println!("GOT {}", numbers.join(","));
    });
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn processes_racing_on_one_sqlite_file_never_share_a_shard() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("runners.db");
    // Create the schema up front so the race is about locks, not table creation.
    runtime().block_on(async {
        SqliteRunnerStorage::open(&path, RunnerStorageConfig::default())
            .await
            .expect("open");
    });

    let (tx, lines) = channel::<(u16, String)>();
    let mut children = Vec::new();
    for port in 0..CHILDREN {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "sqlite_child_process_role",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}|{port}", path.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((port, line)).is_err() {
                    break;
                }
            }
        });
        children.push(Kill(child));
    }
    let deadline = Instant::now() + LINE_TIMEOUT;
    // The test harness prints `test <name> ... ` before the child's first line, so markers
    // are looked for anywhere in a line.
    let next = |prefix: &str, count: usize| -> Vec<(u16, String)> {
        let mut found = Vec::new();
        while found.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let (port, line) = lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("waiting for {prefix} lines ({e}), got {found:?}"));
            if let Some(at) = line.find(prefix) {
                found.push((port, line[at + prefix.len()..].trim().to_owned()));
            }
        }
        found
    };
    next("READY", usize::from(CHILDREN));
    for child in &mut children {
        let stdin = child.0.stdin.as_mut().expect("stdin");
        writeln!(stdin, "go").expect("send go");
    }
    let mut won: Vec<(u32, u16)> = Vec::new();
    for (port, numbers) in next("GOT ", usize::from(CHILDREN)) {
        won.extend(
            numbers
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| (n.parse::<u32>().expect("number"), port)),
        );
    }
    won.sort_unstable();
    let numbers: Vec<u32> = won.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        (0..SHARDS).collect::<Vec<_>>(),
        "each shard won exactly once: {won:?}"
    );

    let table: Vec<(u32, u16)> = runtime().block_on(async {
        let storage = SqliteRunnerStorage::open(&path, RunnerStorageConfig::default())
            .await
            .expect("open")
            .into_typed();
        assert_eq!(
            storage.get_runners().await.expect("runners").len(),
            usize::from(CHILDREN)
        );
        storage
            .list_locks()
            .await
            .expect("locks")
            .into_iter()
            .map(|lock| (lock.shard.number(), lock.holder.address.port()))
            .collect()
    });
    assert_eq!(
        table, won,
        "the lock table agrees with what each process was told"
    );
}
