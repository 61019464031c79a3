//! File ownership across real processes: each participant is an `owner_probe` child process.
//! The parent synchronises on the lines the children print, never on sleeps, and bounds every
//! wait with a timeout.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// Upper bound for any single expected line (start-up of a child included).
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// A probe child; killed (SIGKILL) when dropped so no test leaves processes behind.
struct Probe {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Probe {
    fn spawn(
        name: &'static str,
        lease: &Path,
        ttl: Duration,
        mode: &str,
        lines: &Sender<(&'static str, String)>,
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_owner_probe"))
            .arg(lease)
            .arg(ttl.as_millis().to_string())
            .arg(mode)
            .arg(format!("127.0.0.1:{}", 4000 + name.len()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn owner_probe");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send((name, line)).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Probe { name, child, stdin }
    }

    fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{command}").expect("write to probe");
        stdin.flush().expect("flush probe stdin");
    }

    fn sigkill(&mut self) {
        // `Child::kill` sends SIGKILL on Unix.
        self.child.kill().expect("kill probe");
        self.child.wait().expect("reap probe");
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed `ROLE`/`STATUS` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    owner: bool,
    id: String,
    /// The epoch for an owner, the current owner's id (or `-`) for a follower.
    detail: String,
}

fn parse(line: &str, prefix: &str) -> Option<Report> {
    let mut words = line.strip_prefix(prefix)?.split_whitespace();
    let owner = match words.next()? {
        "owner" => true,
        "follower" => false,
        _ => return None,
    };
    Some(Report {
        owner,
        id: words.next()?.to_owned(),
        detail: words.next()?.to_owned(),
    })
}

/// Waits for the next line of `from` starting with `prefix`; lines of others are kept aside.
fn expect(
    lines: &Receiver<(&'static str, String)>,
    from: &str,
    prefix: &str,
    aside: &mut Vec<(&'static str, String)>,
) -> String {
    if let Some(i) = aside
        .iter()
        .position(|(n, l)| *n == from && l.starts_with(prefix))
    {
        return aside.remove(i).1;
    }
    let deadline = Instant::now() + LINE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((name, line)) if name == from && line.starts_with(prefix) => return line,
            Ok(other) => aside.push(other),
            Err(e) => panic!(
                "no {prefix:?} line from {from} within {LINE_TIMEOUT:?} ({e}); other lines: {aside:?}"
            ),
        }
    }
}

fn role(
    lines: &Receiver<(&'static str, String)>,
    from: &str,
    aside: &mut Vec<(&'static str, String)>,
) -> Report {
    let line = expect(lines, from, "ROLE ", aside);
    parse(&line, "ROLE ").unwrap_or_else(|| panic!("bad line {line:?}"))
}

fn status(
    probe: &mut Probe,
    lines: &Receiver<(&'static str, String)>,
    aside: &mut Vec<(&'static str, String)>,
) -> Report {
    probe.send("status");
    let line = expect(lines, probe.name, "STATUS ", aside);
    parse(&line, "STATUS ").unwrap_or_else(|| panic!("bad line {line:?}"))
}

#[test]
fn sigkill_of_the_owner_lets_a_follower_take_over_within_the_ttl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lease = dir.path().join("node.lease");
    let ttl = Duration::from_secs(3);
    let (tx, lines) = channel();
    let mut aside = Vec::new();

    let mut a = Probe::spawn("a", &lease, ttl, "join", &tx);
    let a_role = role(&lines, "a", &mut aside);
    assert!(
        a_role.owner,
        "first probe must own a fresh lease: {a_role:?}"
    );

    let _b = Probe::spawn("b", &lease, ttl, "wait", &tx);
    let b_role = role(&lines, "b", &mut aside);
    assert!(!b_role.owner);
    assert_eq!(b_role.detail, a_role.id, "follower must name the owner");

    let killed_at = Instant::now();
    a.sigkill();
    let b_now = role(&lines, "b", &mut aside);
    let took = killed_at.elapsed();
    assert!(b_now.owner, "follower must take over: {b_now:?}");
    assert!(took < ttl, "take-over took {took:?}, ttl is {ttl:?}");
    let a_epoch: u64 = a_role.detail.parse().expect("epoch");
    let b_epoch: u64 = b_now.detail.parse().expect("epoch");
    assert!(b_epoch > a_epoch, "epoch must grow: {a_epoch} -> {b_epoch}");
}

#[test]
fn a_clean_release_hands_over_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lease = dir.path().join("node.lease");
    // A long ttl: a hand-over that waited for expiry would blow the bound below.
    let ttl = Duration::from_secs(60);
    let (tx, lines) = channel();
    let mut aside = Vec::new();

    let mut a = Probe::spawn("a", &lease, ttl, "join", &tx);
    assert!(role(&lines, "a", &mut aside).owner);
    let mut b = Probe::spawn("b", &lease, ttl, "wait", &tx);
    assert!(!role(&lines, "b", &mut aside).owner);

    let released_at = Instant::now();
    a.send("release");
    assert_eq!(expect(&lines, "a", "RELEASED", &mut aside), "RELEASED ok");
    let b_now = role(&lines, "b", &mut aside);
    let took = released_at.elapsed();
    assert!(b_now.owner);
    assert!(took < Duration::from_secs(5), "hand-over took {took:?}");
    assert!(status(&mut b, &lines, &mut aside).owner);
}

#[test]
fn followers_racing_after_the_owner_dies_exactly_one_wins() {
    for round in 0..4 {
        let dir = tempfile::tempdir().expect("temp dir");
        let lease = dir.path().join("node.lease");
        let ttl = Duration::from_secs(3);
        let (tx, lines) = channel();
        let mut aside = Vec::new();

        let mut a = Probe::spawn("a", &lease, ttl, "join", &tx);
        assert!(role(&lines, "a", &mut aside).owner);
        let mut b = Probe::spawn("b", &lease, ttl, "wait", &tx);
        let mut c = Probe::spawn("c", &lease, ttl, "wait", &tx);
        assert!(!role(&lines, "b", &mut aside).owner);
        assert!(!role(&lines, "c", &mut aside).owner);

        a.sigkill();
        let deadline = Instant::now() + LINE_TIMEOUT;
        let (winner_name, winner) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (name, line) = lines.recv_timeout(left).expect("no take-over in time");
            if let Some(report) = parse(&line, "ROLE ") {
                assert!(report.owner, "round {round}: unexpected {line}");
                break (name, report);
            }
            aside.push((name, line));
        };
        let loser = if winner_name == "b" { &mut c } else { &mut b };
        let loser_status = status(loser, &lines, &mut aside);
        assert!(
            !loser_status.owner,
            "round {round}: both followers own the lease"
        );
        assert_eq!(
            loser_status.detail, winner.id,
            "round {round}: loser must name the winner"
        );
        assert!(
            !aside.iter().any(|(_, l)| l.starts_with("ROLE owner")),
            "round {round}: a second owner reported: {aside:?}"
        );
    }
}

#[test]
fn joiners_racing_for_an_expired_lease_exactly_one_wins() {
    for round in 0..4 {
        let dir = tempfile::tempdir().expect("temp dir");
        let lease = dir.path().join("node.lease");
        // An expired record left by an owner that is gone.
        std::fs::write(
            &lease,
            "actor-coordination owner record v1\ninstance_id=dead-owner\nepoch=5\nendpoint=\n\
             expires_at_ms=1000\nreleased=0\nend\n",
        )
        .expect("write stale record");
        let ttl = Duration::from_secs(3);
        let (tx, lines) = channel();
        let mut aside = Vec::new();

        let mut b = Probe::spawn("b", &lease, ttl, "join", &tx);
        let mut c = Probe::spawn("c", &lease, ttl, "join", &tx);
        let b_role = role(&lines, "b", &mut aside);
        let c_role = role(&lines, "c", &mut aside);
        assert!(
            b_role.owner ^ c_role.owner,
            "round {round}: exactly one must own: {b_role:?} {c_role:?}"
        );
        let (winner, loser) = if b_role.owner {
            (b_role, &mut c)
        } else {
            (c_role, &mut b)
        };
        assert_eq!(
            winner.detail, "6",
            "round {round}: epoch continues from the stale record"
        );
        let loser_status = status(loser, &lines, &mut aside);
        assert!(!loser_status.owner);
        assert_eq!(
            loser_status.detail, winner.id,
            "round {round}: loser must name the winner"
        );
    }
}
