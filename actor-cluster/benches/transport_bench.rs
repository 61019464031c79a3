//! Transport benchmarks: frame throughput (TCP, raw TCP pipe, in-memory) and TCP ping-pong
//! round-trip latency. Run with
//! `cargo bench -p actor-cluster --bench transport_bench` (release profile).
//!
//! Throughput counts frames on arrival at the receiving side; each figure is the median of
//! `RUNS` runs, with the slowest and fastest run beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actor_cluster::tcp::{TcpSettings, TcpTransport};
use actor_cluster::wire::{self, EnvelopeRef, RemoteMessage};
use actor_cluster::{Address, InMemoryHub, Transport, TransportError};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

const PAYLOAD: usize = 100;
const FRAMES: usize = 1_000_000;
const RUNS: usize = 5;
const PINGS: usize = 20_000;
const WARMUP_PINGS: usize = 2_000;

fn payload() -> Bytes {
    Bytes::from(vec![7u8; PAYLOAD])
}

/// Sends `FRAMES` frames from `a` to `b` and returns frames per second on arrival.
async fn transport_throughput(a: Arc<dyn Transport>, b: Arc<dyn Transport>) -> f64 {
    let inbound = b.inbound();
    let to = b.local_address().clone();
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let frame = payload();
        let mut sent = 0;
        while sent < FRAMES {
            match a.send(&to, frame.clone()) {
                Ok(()) => sent += 1,
                Err(TransportError::QueueFull { .. }) => tokio::task::yield_now().await,
                Err(e) => panic!("send failed: {e}"),
            }
        }
        a
    });
    let mut received = 0;
    while received < FRAMES {
        let frame = inbound.recv_async().await.expect("inbound closed");
        assert_eq!(frame.frame.len(), PAYLOAD);
        received += 1 + inbound.drain().count();
    }
    let elapsed = start.elapsed();
    let _a = sender.await.expect("sender panicked");
    FRAMES as f64 / elapsed.as_secs_f64()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Blob(#[serde(with = "serde_bytes_compat")] Vec<u8>);

impl RemoteMessage for Blob {
    const MANIFEST: &'static str = "bench.Blob";
}

/// Encodes a `Vec<u8>` as one byte string (postcard: length + bytes), like `serde_bytes`.
mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let bytes: bytes::Bytes = serde::Deserialize::deserialize(d)?;
        Ok(bytes.to_vec())
    }
}

/// Like [`transport_throughput`], but each message is a user envelope encoded on send
/// (`encode_user`) and decoded on arrival (`decode_ref`, then the 100-byte message): a remote
/// tell minus actor dispatch.
async fn envelope_throughput(a: Arc<dyn Transport>, b: Arc<dyn Transport>) -> f64 {
    let inbound = b.inbound();
    let to = b.local_address().clone();
    let recipient = format!("actor://{to}/user/sink");
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let blob = Blob(vec![7u8; PAYLOAD]);
        let mut sent = 0;
        while sent < FRAMES {
            let frame = wire::encode_user(&recipient, None, &blob).expect("encode");
            loop {
                match a.send(&to, frame.clone()) {
                    Ok(()) => break,
                    Err(TransportError::QueueFull { .. }) => tokio::task::yield_now().await,
                    Err(e) => panic!("send failed: {e}"),
                }
            }
            sent += 1;
        }
        a
    });
    let mut received = 0;
    let decode = |frame: &Bytes| {
        let EnvelopeRef::User {
            manifest, payload, ..
        } = wire::decode_ref(frame).expect("decode")
        else {
            panic!("not a user envelope")
        };
        let blob: Blob = wire::decode_message(manifest, payload).expect("decode message");
        assert_eq!(blob.0.len(), PAYLOAD);
    };
    while received < FRAMES {
        let first = inbound.recv_async().await.expect("inbound closed");
        decode(&first.frame);
        received += 1;
        for frame in inbound.drain() {
            decode(&frame.frame);
            received += 1;
        }
    }
    let elapsed = start.elapsed();
    let _a = sender.await.expect("sender panicked");
    FRAMES as f64 / elapsed.as_secs_f64()
}

/// The same length-prefixed 100-byte frames over a bare socket: the ceiling for TCP.
async fn raw_pipe_throughput() -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reader = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let mut frames = FramedRead::new(stream, LengthDelimitedCodec::new());
        let mut received = 0;
        while received < FRAMES {
            let frame = frames.next().await.expect("eof").expect("read");
            assert_eq!(frame.len(), PAYLOAD);
            received += 1;
        }
        Instant::now()
    });
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let frame = payload();
    let start = Instant::now();
    let mut buf = BytesMut::with_capacity(64 * 1024 + 1024);
    for _ in 0..FRAMES {
        buf.put_u32(PAYLOAD as u32);
        buf.put_slice(&frame);
        if buf.len() >= 64 * 1024 {
            stream.write_all(&buf).await.expect("write");
            buf.clear();
        }
    }
    stream.write_all(&buf).await.expect("write");
    let end = reader.await.expect("reader panicked");
    FRAMES as f64 / (end - start).as_secs_f64()
}

async fn tcp_pair() -> (Arc<TcpTransport>, Arc<TcpTransport>) {
    let settings = || TcpSettings::with_secret("bench", "127.0.0.1:0".parse().unwrap(), "bench");
    let a = TcpTransport::bind(settings()).await.expect("bind a");
    let b = TcpTransport::bind(settings()).await.expect("bind b");
    (a, b)
}

/// Ping-pong over TCP; returns sorted round-trip times.
async fn tcp_round_trips() -> Vec<Duration> {
    let (a, b) = tcp_pair().await;
    let echo = {
        let b = b.clone();
        tokio::spawn(async move {
            let inbound = b.inbound();
            while let Ok(frame) = inbound.recv_async().await {
                if b.send(&frame.from, frame.frame).is_err() {
                    break;
                }
            }
        })
    };
    let inbound = a.inbound();
    let mut samples = Vec::with_capacity(PINGS);
    for i in 0..WARMUP_PINGS + PINGS {
        let start = Instant::now();
        a.send(b.local_address(), payload()).expect("ping");
        inbound.recv_async().await.expect("pong");
        if i >= WARMUP_PINGS {
            samples.push(start.elapsed());
        }
    }
    echo.abort();
    samples.sort();
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn summary(name: &str, mut runs: Vec<f64>) {
    runs.sort_by(f64::total_cmp);
    println!(
        "{name:<28} median {:>12.0} frames/s   (min {:.0}, max {:.0}, {} runs)",
        runs[runs.len() / 2],
        runs[0],
        runs[runs.len() - 1],
        runs.len()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "transport_bench: {PAYLOAD}-byte frames, {FRAMES} frames per run, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    runtime.block_on(async {
        let mut tcp = Vec::new();
        let mut raw = Vec::new();
        let mut memory = Vec::new();
        let mut envelopes = Vec::new();
        for _ in 0..RUNS {
            let (a, b) = tcp_pair().await;
            tcp.push(transport_throughput(a, b).await);
            let (a, b) = tcp_pair().await;
            envelopes.push(envelope_throughput(a, b).await);
            raw.push(raw_pipe_throughput().await);
            let hub = InMemoryHub::new();
            let a = hub.bind(Address::logical("bench", "a").expect("address")).expect("bind");
            let b = hub.bind(Address::logical("bench", "b").expect("address")).expect("bind");
            memory.push(transport_throughput(a, b).await);
        }
        summary("TcpTransport", tcp);
        summary("TcpTransport + wire codec", envelopes);
        summary("raw TCP pipe (limit)", raw);
        summary("InMemoryTransport", memory);
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for _ in 0..RUNS {
            let samples = tcp_round_trips().await;
            p50s.push(percentile(&samples, 0.50));
            p99s.push(percentile(&samples, 0.99));
        }
        p50s.sort();
        p99s.sort();
        println!(
            "TcpTransport round trip      p50 median {:?} (min {:?}, max {:?}); p99 median {:?} (min {:?}, max {:?}); {PINGS} pings per run",
            p50s[RUNS / 2],
            p50s[0],
            p50s[RUNS - 1],
            p99s[RUNS / 2],
            p99s[0],
            p99s[RUNS - 1],
        );
    });
}
