//! A throwaway PostgreSQL server for tests: one server per test binary, one database per test.
//!
//! If `ACTOR_TEST_POSTGRES_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/postgres`), tests
//! create their databases on that server (and leave them behind, named `actor_test_*`).
//! Otherwise the first call starts a private server: `initdb` into a fresh temporary directory
//! and a postmaster that listens *only* on a Unix socket in that directory
//! (`listen_addresses = ''`), so parallel test binaries never compete for a TCP port. The
//! binaries are looked for in `ACTOR_TEST_POSTGRES_BIN`, on `PATH`, and in Debian's
//! `/usr/lib/postgresql/<version>/bin`. When running as root (which `initdb` refuses), the server
//! runs as `nobody` through `runuser`. The server is stopped (`pg_ctl stop -m immediate`) and
//! its directory removed when the test process exits; a watchdog process does the same if the
//! test process is killed. If no server can be found, the test panics with how to install one:
//! there are no silent skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

/// Environment variable naming an existing server to use instead of starting one.
pub const URL_ENV: &str = "ACTOR_TEST_POSTGRES_URL";
/// Environment variable naming a directory holding `initdb`, `pg_ctl` and `postgres`.
pub const BIN_ENV: &str = "ACTOR_TEST_POSTGRES_BIN";
/// The port number the private server's socket file is named after (`.s.PGSQL.<port>`); no TCP
/// port is opened.
const SOCKET_PORT: u16 = 5432;
/// User the private server runs as when the tests run as root.
const UNPRIVILEGED_USER: &str = "nobody";

const INSTALL_HINT: &str = "no PostgreSQL server for the tests: install one \
    (Debian/Ubuntu: `apt-get install postgresql-15`; its binaries land in \
    /usr/lib/postgresql/15/bin, found automatically), or point ACTOR_TEST_POSTGRES_BIN at a \
    directory holding initdb and pg_ctl, or set ACTOR_TEST_POSTGRES_URL to a server the tests \
    may create databases on";

/// A fresh, empty database for one test.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// The database's name.
    pub name: String,
    /// How to connect to it.
    pub config: Config,
}

impl TestDatabase {
    /// Opens a connection (its driver task runs on the current runtime).
    pub async fn connect(&self) -> Client {
        connect(&self.config).await
    }

    /// Returns the connection settings as a libpq key/value string.
    pub fn conninfo(&self) -> String {
        conninfo(&self.config)
    }
}

/// Creates a new database on the test server (starting the server on first use).
///
/// # Panics
///
/// If no server is available (with instructions to install one) or the database cannot be made.
pub async fn fresh_database() -> TestDatabase {
    let base = match tokio::task::spawn_blocking(server).await {
        Ok(config) => config,
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "actor_test_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = base.clone();
    admin.dbname("postgres");
    let client = connect(&admin).await;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    let mut config = base.clone();
    config.dbname(&name);
    TestDatabase { name, config }
}

async fn connect(config: &Config) -> Client {
    let (client, driver) = config
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to test PostgreSQL ({}): {e}", conninfo(config)));
    tokio::spawn(async move {
        let _ = driver.await;
    });
    client
}

fn conninfo(config: &Config) -> String {
    let mut parts = Vec::new();
    for host in config.get_hosts() {
        match host {
            Host::Tcp(name) => parts.push(format!("host={name}")),
            Host::Unix(path) => parts.push(format!("host={}", path.display())),
        }
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={user}"));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!("password={}", String::from_utf8_lossy(password)));
    }
    if let Some(dbname) = config.get_dbname() {
        parts.push(format!("dbname={dbname}"));
    }
    parts.join(" ")
}

/// The base connection settings of this binary's server, started on first call.
fn server() -> Config {
    static SERVER: OnceLock<Result<Config, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(config) => config.clone(),
        Err(message) => panic!("{message}"),
    }
}

fn start() -> Result<Config, String> {
    if let Ok(url) = std::env::var(URL_ENV) {
        return url
            .parse::<Config>()
            .map_err(|e| format!("{URL_ENV}={url} is not a valid connection string: {e}"));
    }
    let bin = find_binaries().ok_or_else(|| INSTALL_HINT.to_owned())?;
    LocalServer::start(&bin)
}

/// Finds a directory holding `initdb` and `pg_ctl`.
fn find_binaries() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(BIN_ENV).map(PathBuf::from) {
        return has_tools(&dir).then_some(dir);
    }
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|dir| has_tools(dir))
    {
        return Some(dir);
    }
    // Debian: /usr/lib/postgresql/<major>/bin; prefer the newest major version.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// A private postmaster in a temporary directory.
struct LocalServer;

impl LocalServer {
    fn start(bin: &Path) -> Result<Config, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("actor-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let run_as = if is_root() {
            let (uid, gid) = user_ids(UNPRIVILEGED_USER)?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to {UNPRIVILEGED_USER}: {e}", dir.display()))?;
            Some(UNPRIVILEGED_USER)
        } else {
            None
        };
        let data = dir.join("data");
        let tool = |name: &str| {
            let mut command = match run_as {
                Some(user) => {
                    let mut c = Command::new("runuser");
                    c.args(["-u", user, "--"]).arg(bin.join(name));
                    c
                }
                None => Command::new(bin.join(name)),
            };
            // The tools resolve their working directory; make it one they can enter.
            command.current_dir(&dir);
            command
        };
        run(tool("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]))?;
        let options = format!(
            "-c listen_addresses='' -k {} -p {SOCKET_PORT} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        let stop_command = format!(
            "{}{} -D {} stop -m immediate",
            run_as
                .map(|u| format!("runuser -u {u} -- "))
                .unwrap_or_default(),
            bin.join("pg_ctl").display(),
            data.display()
        );
        let cleanup = format!(
            "cd /; {stop_command} >/dev/null 2>&1; rm -rf {}",
            dir.display()
        );
        run(tool("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]))?;
        register_cleanup(cleanup);
        let mut config = Config::new();
        config
            .host_path(&dir)
            .port(SOCKET_PORT)
            .user("postgres")
            .dbname("postgres");
        Ok(config)
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_ids(user: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let output = Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| format!("id {flag} {user}: {e}"))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("no user {user} to run PostgreSQL as (needed when root)"))
    };
    Ok((id("-u")?, id("-g")?))
}

static CLEANUP: OnceLock<String> = OnceLock::new();

unsafe extern "C" {
    // SAFETY: libc's `atexit` only stores the function pointer; `stop_at_exit` is a plain
    // `extern "C" fn` that lives for the whole program.
    safe fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn stop_at_exit() {
    if let Some(cleanup) = CLEANUP.get() {
        let _ = Command::new("sh")
            .args(["-c", cleanup])
            .stdin(Stdio::null())
            .status();
    }
}

/// Stops the server and removes its directory when this process exits, normally (`atexit`) or
/// not (a detached watchdog that waits for this process to disappear).
fn register_cleanup(cleanup: String) {
    let watchdog = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; {cleanup}",
        std::process::id()
    );
    let _ = Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if CLEANUP.set(cleanup).is_ok() {
        atexit(stop_at_exit);
    }
}
