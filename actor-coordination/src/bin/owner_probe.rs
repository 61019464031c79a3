//! A child process for the file-ownership tests: joins an election and reports on stdout.
//!
//! Usage: `owner_probe <lease_path> <ttl_ms> <join|wait> [endpoint]`.
//!
//! Prints `ROLE owner <id> <epoch>` or `ROLE follower <id> <owner id or ->` after joining; in
//! `wait` mode a follower then waits for ownership and prints `ROLE owner ...` when it gets it.
//! Commands on stdin: `status` (prints `STATUS owner <id> <epoch>` or
//! `STATUS follower <id> <owner id or ->`), `release` (prints `RELEASED` and exits). `LOST
//! <reason>` is printed if ownership is lost. End of stdin exits.

use std::io::{BufRead, Write};
use std::time::Duration;

use actor_coordination::owner::{self, Owner, OwnerConfig, Role};

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn role_line(prefix: &str, owner: &Owner) -> String {
    match owner.role() {
        Role::Owner { epoch } => format!("{prefix} owner {} {epoch}", owner.instance_id()),
        Role::Follower { owner: view } => {
            let current = owner.current_owner().ok().flatten().or(view);
            let id = current.map_or_else(|| "-".to_owned(), |r| r.instance_id);
            format!("{prefix} follower {} {id}", owner.instance_id())
        }
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(ttl), Some(mode)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: owner_probe <lease_path> <ttl_ms> <join|wait> [endpoint]");
        return std::process::ExitCode::from(2);
    };
    let Ok(ttl_ms) = ttl.parse::<u64>() else {
        eprintln!("ttl_ms must be an integer, got {ttl:?}");
        return std::process::ExitCode::from(2);
    };
    let mut config = OwnerConfig::new(path).with_ttl(Duration::from_millis(ttl_ms));
    if let Some(endpoint) = args.get(3) {
        config = config.with_endpoint(endpoint.clone());
    }
    let wait = mode == "wait";
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(run(config, wait))
}

async fn run(config: OwnerConfig, wait: bool) -> std::process::ExitCode {
    let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut me = match owner::join(config).await {
        Ok(me) => me,
        Err(e) => {
            eprintln!("join failed: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    say(role_line("ROLE", &me));
    let mut waiting = wait && !me.is_owner();
    let mut lost_reported = false;
    loop {
        let lost = me.lost();
        tokio::select! {
            biased;
            command = commands.recv() => match command.as_deref() {
                Some("status") => say(role_line("STATUS", &me)),
                Some("release") => {
                    let result = me.release().await;
                    say(format!("RELEASED {}", if result.is_ok() { "ok" } else { "error" }));
                    return std::process::ExitCode::SUCCESS;
                }
                Some(other) => eprintln!("unknown command {other:?}"),
                None => return std::process::ExitCode::SUCCESS,
            },
            reason = lost, if !lost_reported => {
                lost_reported = true;
                say(format!("LOST {reason:?}"));
            }
            result = me.wait_for_ownership(), if waiting => {
                if let Err(e) = result {
                    eprintln!("waiting failed: {e}");
                    return std::process::ExitCode::from(1);
                }
                waiting = false;
                say(role_line("ROLE", &me));
            }
        }
    }
}
