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

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::remote::Remoting;
use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_cluster::wire::RemoteMessage;
use actor_cluster::{Address, InMemoryHub, Transport};
use actor_core::{Actor, ActorRef, ActorResult, ActorSystem, Context, Props, ReplyTo};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

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

/// Messages per second from a driver on `a` to a counter on `b`, one run per element.
async fn tell_throughput(a: &Node, b: &Node, runs: usize) -> Vec<f64> {
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
    let mut results = Vec::new();
    for run in 0..runs {
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
        results.push(MESSAGES as f64 / start.elapsed().as_secs_f64());
    }
    counter.stop();
    driver.stop();
    results
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

fn report(name: &str, mut runs: Vec<f64>, latency: &[Duration]) {
    runs.sort_by(f64::total_cmp);
    let median = runs[runs.len() / 2];
    println!(
        "{name}: remote tell {:.3} M msgs/s (median of {}; min {:.3} M, max {:.3} M)",
        median / 1e6,
        runs.len(),
        runs[0] / 1e6,
        runs[runs.len() - 1] / 1e6
    );
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
        let (a, b) = tcp_pair().await;
        let tcp_runs = tell_throughput(&a, &b, RUNS).await;
        let tcp_latency = ask_latency(&a, &b).await;
        report("TcpTransport", tcp_runs, &tcp_latency);
        a.system.terminate().await;
        b.system.terminate().await;

        let hub = InMemoryHub::new();
        let a = node(hub.bind(Address::logical("bench", "a").expect("address")).expect("bind"));
        let b = node(hub.bind(Address::logical("bench", "b").expect("address")).expect("bind"));
        let mem_runs = tell_throughput(&a, &b, RUNS).await;
        let mem_latency = ask_latency(&a, &b).await;
        report("InMemoryTransport", mem_runs, &mem_latency);
        a.system.terminate().await;
        b.system.terminate().await;
    });
}
