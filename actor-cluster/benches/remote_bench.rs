//! Remoting benchmarks: remote tell throughput (one actor to one remote actor, 100-byte
//! payloads, counted on arrival at the remote actor) and remote ask round-trip latency, over
//! `TcpTransport` on loopback and over `InMemoryTransport`. Run with
//! `cargo bench -p actor-cluster --bench remote_bench` (release profile).
//!
//! Both nodes share one multi-thread runtime with two workers (the machine has two cores).
//! The sending actor keeps at most `WINDOW` messages in flight: the receiver reports its
//! count every `ACK_EVERY` messages (a remote tell back), so the TCP transport's bounded
//! outbound queue never overflows and no message is lost. Throughput is the median of
//! `RUNS` runs with the slowest and fastest beside it; latency is sequential asks from a
//! task, `ASKS` of them after `WARMUP_ASKS`.
//!
//! The limit, measured in the same run: a raw TCP pipe (a bare tokio socket, length-prefixed
//! frames of the same size as a remote tell's frame, written in 64 KiB batches, counted on
//! arrival), interleaved with the remote runs so that both see the same machine load.
//! Arguments: `tcp` runs only the TCP part (for profiling).
//!
//! On a shared machine wall-clock throughput swings with the load; the CPU time the whole
//! process spends per message (summed over its threads from `/proc/self/task/*/schedstat`,
//! Linux only) is steadier, so it is printed too, for the remote tell and the raw pipe.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::remote::Remoting;
use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_cluster::wire::RemoteMessage;
use actor_cluster::{Address, InMemoryHub, Transport};
use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, ReplyTo};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

const PAYLOAD: usize = 100;
const MESSAGES: u64 = 1_000_000;
const RUNS: usize = 5;
const WINDOW: u64 = 10_000;
const ACK_EVERY: u64 = 1_000;
const ASKS: usize = 20_000;
const WARMUP_ASKS: usize = 2_000;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize)]
enum CounterMsg {
    Start {
        run: u32,
        expected: u64,
        driver: ActorRef<DriverMsg>,
    },
    Data(Bytes),
}
impl RemoteMessage for CounterMsg {
    const MANIFEST: &'static str = "bench.CounterMsg";
}

#[derive(Serialize, Deserialize)]
enum DriverMsg {
    Go {
        run: u32,
        n: u64,
        counter: ActorRef<CounterMsg>,
    },
    /// How many messages of run `.0` arrived.
    Progress(u32, u64),
}
impl RemoteMessage for DriverMsg {
    const MANIFEST: &'static str = "bench.DriverMsg";
}

#[derive(Serialize, Deserialize)]
struct Echo(u64, ReplyTo<Echoed>);
impl RemoteMessage for Echo {
    const MANIFEST: &'static str = "bench.Echo";
}

#[derive(Serialize, Deserialize)]
struct Echoed(u64);
impl RemoteMessage for Echoed {
    const MANIFEST: &'static str = "bench.Echoed";
}

/// Counts arrivals; reports progress to the driver and completion to the bench.
struct Counter {
    run: u32,
    count: u64,
    expected: u64,
    driver: Option<ActorRef<DriverMsg>>,
    done: flume::Sender<()>,
}

impl Actor for Counter {
    type Msg = CounterMsg;
    async fn handle(&mut self, msg: CounterMsg, _: &mut Context<Self>) -> ActorResult {
        match msg {
            CounterMsg::Start {
                run,
                expected,
                driver,
            } => {
                self.run = run;
                self.count = 0;
                self.expected = expected;
                self.driver = Some(driver);
            }
            CounterMsg::Data(payload) => {
                debug_assert_eq!(payload.len(), PAYLOAD);
                self.count += 1;
                if self.count.is_multiple_of(ACK_EVERY)
                    && let Some(d) = &self.driver
                {
                    d.tell(DriverMsg::Progress(self.run, self.count));
                }
                if self.count == self.expected {
                    let _ = self.done.send(());
                }
            }
        }
        Ok(())
    }
}

/// Sends `n` payloads to the counter, at most `WINDOW` unacknowledged.
struct Driver {
    run: u32,
    counter: Option<ActorRef<CounterMsg>>,
    n: u64,
    sent: u64,
    acked: u64,
    payload: Bytes,
}

impl Driver {
    fn pump(&mut self) {
        if let Some(counter) = &self.counter {
            while self.sent < self.n && self.sent - self.acked < WINDOW {
                counter.tell(CounterMsg::Data(self.payload.clone()));
                self.sent += 1;
            }
        }
    }
}

impl Actor for Driver {
    type Msg = DriverMsg;
    async fn handle(&mut self, msg: DriverMsg, ctx: &mut Context<Self>) -> ActorResult {
        match msg {
            DriverMsg::Go { run, n, counter } => {
                self.run = run;
                counter.tell(CounterMsg::Start {
                    run,
                    expected: n,
                    driver: ctx.myself().clone(),
                });
                self.counter = Some(counter);
                self.n = n;
                self.sent = 0;
                self.acked = 0;
            }
            // a late report of an earlier run is ignored
            DriverMsg::Progress(run, k) if run == self.run => self.acked = self.acked.max(k),
            DriverMsg::Progress(..) => {}
        }
        self.pump();
        Ok(())
    }
}

struct Echoer;
impl Actor for Echoer {
    type Msg = Echo;
    async fn handle(&mut self, Echo(n, reply): Echo, _: &mut Context<Self>) -> ActorResult {
        reply.reply(Echoed(n));
        Ok(())
    }
}

struct Node {
    system: ActorSystem,
    remoting: Arc<Remoting>,
}

fn node(transport: Arc<dyn Transport>) -> Node {
    let name = transport.local_address().system().to_owned();
    let system =
        ActorSystem::with_settings(&name, Remoting::system_settings(&*transport)).expect("system");
    let remoting = Remoting::start(&system, transport).expect("remoting");
    remoting.register::<CounterMsg>().expect("register");
    remoting.register::<DriverMsg>().expect("register");
    remoting.register::<Echo>().expect("register");
    remoting.register::<Echoed>().expect("register");
    Node { system, remoting }
}

/// Messages per second from a driver on `a` to a counter on `b`, one run per element; with
/// `raw_pipe`, also a raw pipe run of the same frames before each (second element).
async fn tell_throughput(a: &Node, b: &Node, runs: usize, raw_pipe: bool) -> (Vec<Run>, Vec<Run>) {
    let (done_tx, done_rx) = flume::unbounded();
    let counter = b
        .system
        .spawn(
            Props::new(move || Counter {
                run: 0,
                count: 0,
                expected: 0,
                driver: None,
                done: done_tx.clone(),
            }),
            "counter",
        )
        .expect("spawn counter");
    let driver = a
        .system
        .spawn(
            Props::new(|| Driver {
                run: 0,
                counter: None,
                n: 0,
                sent: 0,
                acked: 0,
                payload: Bytes::from(vec![7u8; PAYLOAD]),
            }),
            "driver",
        )
        .expect("spawn driver");
    let remote_counter = a
        .remoting
        .remote_ref::<CounterMsg>(counter.path())
        .expect("remote ref");
    let frame_len = tell_frame_len(&counter, b.remoting.local_uid());
    let mut results = Vec::new();
    let mut pipe = Vec::new();
    for run in 0..runs {
        if raw_pipe {
            let (rate, cpu) = with_cpu(raw_pipe_throughput(frame_len)).await;
            pipe.push(Run { rate, cpu });
        }
        let cpu_before = process_cpu();
        let start = Instant::now();
        driver.tell(DriverMsg::Go {
            run: run as u32,
            n: MESSAGES,
            counter: remote_counter.clone(),
        });
        if tokio::time::timeout(Duration::from_secs(120), done_rx.recv_async())
            .await
            .is_err()
        {
            panic!(
                "not all messages arrived; dead letters a={} b={}",
                a.system.dead_letter_count(),
                b.system.dead_letter_count()
            );
        }
        let rate = MESSAGES as f64 / start.elapsed().as_secs_f64();
        let cpu = match (cpu_before, process_cpu()) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) / MESSAGES as u32),
            _ => None,
        };
        results.push(Run { rate, cpu });
    }
    counter.stop();
    driver.stop();
    (results, pipe)
}

/// `MESSAGES` length-prefixed frames of `frame_len` bytes over a bare loopback socket, in
/// 64 KiB writes: frames per second on arrival.
async fn raw_pipe_throughput(frame_len: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reader = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut frames = FramedRead::new(stream, LengthDelimitedCodec::new());
        let mut received = 0;
        while received < MESSAGES {
            let frame = frames.next().await.expect("eof").expect("read");
            assert_eq!(frame.len(), frame_len);
            received += 1;
        }
        Instant::now()
    });
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let frame = vec![7u8; frame_len];
    let start = Instant::now();
    let mut buf = BytesMut::with_capacity(64 * 1024 + 1024);
    for _ in 0..MESSAGES {
        buf.put_u32(frame_len as u32);
        buf.put_slice(&frame);
        if buf.len() >= 64 * 1024 {
            stream.write_all(&buf).await.expect("write");
            buf.clear();
        }
    }
    stream.write_all(&buf).await.expect("write");
    let end = reader.await.expect("reader panicked");
    MESSAGES as f64 / (end - start).as_secs_f64()
}

/// CPU time all threads of this process have run so far (Linux; `None` elsewhere).
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Runs `f` and returns its result with the process CPU time it took, per message.
async fn with_cpu<T>(f: impl std::future::Future<Output = T>) -> (T, Option<Duration>) {
    let before = process_cpu();
    let out = f.await;
    let per_message = match (before, process_cpu()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) / MESSAGES as u32),
        _ => None,
    };
    (out, per_message)
}

/// The size of one remote tell's frame to `counter` (recipient with uid, manifest, payload).
fn tell_frame_len(counter: &ActorRef<CounterMsg>, uid: u64) -> usize {
    let recipient = format!("{}#{uid}", counter.path());
    let msg = CounterMsg::Data(Bytes::from(vec![7u8; PAYLOAD]));
    let envelope = actor_cluster::wire::user_envelope(&recipient, None, &msg).expect("envelope");
    actor_cluster::wire::encode(&envelope).expect("frame").len()
}

/// Sequential ask round trips from `a` to an echoer on `b`.
async fn ask_latency(a: &Node, b: &Node) -> Vec<Duration> {
    let echoer = b
        .system
        .spawn(Props::new(|| Echoer), "echoer")
        .expect("spawn echoer");
    let remote = a
        .remoting
        .remote_ref::<Echo>(echoer.path())
        .expect("remote ref");
    let mut samples = Vec::with_capacity(ASKS);
    for i in 0..(WARMUP_ASKS + ASKS) {
        let start = Instant::now();
        let Echoed(n) = remote
            .ask(|r| Echo(i as u64, r), TIMEOUT)
            .await
            .expect("ask answered");
        assert_eq!(n, i as u64);
        if i >= WARMUP_ASKS {
            samples.push(start.elapsed());
        }
    }
    samples.sort();
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// One throughput run: messages per second, and process CPU time per message.
struct Run {
    rate: f64,
    cpu: Option<Duration>,
}

/// Median, min and max.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

/// "median (min..max) ns" of the CPU time per message, if measured.
fn cpu_spread(runs: &[Run]) -> String {
    let ns: Option<Vec<f64>> = runs
        .iter()
        .map(|r| r.cpu.map(|d| d.as_nanos() as f64))
        .collect();
    match ns {
        Some(ns) if !ns.is_empty() => {
            let (median, min, max) = spread(ns);
            format!("{median:.0} ns CPU/msg (min {min:.0}, max {max:.0})")
        }
        _ => "CPU time not measured".to_owned(),
    }
}

fn report(name: &str, runs: Vec<Run>, pipe: Vec<Run>, latency: &[Duration]) {
    let count = runs.len();
    let cpu = cpu_spread(&runs);
    let (median, min, max) = spread(runs.iter().map(|r| r.rate).collect());
    println!(
        "{name}: remote tell {:.3} M msgs/s (median of {count}; min {:.3} M, max {:.3} M); {cpu}",
        median / 1e6,
        min / 1e6,
        max / 1e6
    );
    if !pipe.is_empty() {
        let pipe_cpu = cpu_spread(&pipe);
        let (pipe_median, pipe_min, pipe_max) = spread(pipe.iter().map(|r| r.rate).collect());
        println!(
            "{name}: raw TCP pipe of the same frames {:.3} M frames/s (median; min {:.3} M, max {:.3} M); {pipe_cpu}; remote tell = {:.0}% of it",
            pipe_median / 1e6,
            pipe_min / 1e6,
            pipe_max / 1e6,
            100.0 * median / pipe_median
        );
    }
    println!(
        "{name}: remote ask round trip p50 {:.1} us, p99 {:.1} us, max {:.1} us ({} asks)",
        percentile(latency, 0.50).as_secs_f64() * 1e6,
        percentile(latency, 0.99).as_secs_f64() * 1e6,
        latency[latency.len() - 1].as_secs_f64() * 1e6,
        latency.len()
    );
}

async fn tcp_pair() -> (Node, Node) {
    let bind = "127.0.0.1:0".parse().expect("socket address");
    let ta = TcpTransport::bind(TcpSettings::with_secret("bench", bind, "bench-secret"))
        .await
        .expect("bind a");
    let tb = TcpTransport::bind(TcpSettings::with_secret("bench", bind, "bench-secret"))
        .await
        .expect("bind b");
    (node(ta), node(tb))
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!(
            "remote_bench: {MESSAGES} messages of {PAYLOAD} bytes per run, window {WINDOW}, {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let tcp_only = std::env::args().skip(1).any(|a| a == "tcp");
        let (a, b) = tcp_pair().await;
        let (tcp_runs, pipe_runs) = tell_throughput(&a, &b, RUNS, true).await;
        let tcp_latency = ask_latency(&a, &b).await;
        report("TcpTransport", tcp_runs, pipe_runs, &tcp_latency);
        a.system.terminate().await;
        b.system.terminate().await;
        if tcp_only {
            return;
        }

        let hub = InMemoryHub::new();
        let a = node(hub.bind(Address::logical("bench", "a").expect("address")).expect("bind"));
        let b = node(hub.bind(Address::logical("bench", "b").expect("address")).expect("bind"));
        let (mem_runs, _) = tell_throughput(&a, &b, RUNS, false).await;
        let mem_latency = ask_latency(&a, &b).await;
        report("InMemoryTransport", mem_runs, Vec::new(), &mem_latency);
        a.system.terminate().await;
        b.system.terminate().await;
    });
}
