//! Fault injection of the in-process transports: delay on a paused clock, seeded drops,
//! crash, and a conductor driving a mesh of threads.

use std::sync::mpsc;
use std::time::Duration;

use actor_cluster::{
    Address, BindError, ChannelMesh, Direction, DisconnectReason, FaultError, FaultInjector,
    InMemoryHub, Transport, TransportError, TransportEvent,
};
use bytes::Bytes;
use tokio::time::{Instant, timeout};

fn addr(name: &str) -> Address {
    Address::logical("faults", name).unwrap()
}

#[tokio::test(start_paused = true)]
async fn delay_uses_tokio_time_and_keeps_fifo() {
    let hub = InMemoryHub::new();
    let a = hub.bind(addr("a")).unwrap();
    let b = hub.bind(addr("b")).unwrap();
    hub.delay(
        &addr("a"),
        &addr("b"),
        Direction::Send,
        Duration::from_millis(100),
    );
    let start = Instant::now();
    a.send(&addr("b"), Bytes::from_static(b"slow")).unwrap();
    // Healed at once: the next frame has no delay but must not overtake the first.
    hub.pass_through(&addr("a"), &addr("b"), Direction::Both);
    a.send(&addr("b"), Bytes::from_static(b"fast")).unwrap();
    assert!(
        timeout(Duration::from_millis(50), b.inbound().recv_async())
            .await
            .is_err(),
        "a delayed frame arrived early"
    );
    let first = b.inbound().recv_async().await.unwrap();
    assert_eq!(first.frame, "slow");
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(b.inbound().recv_async().await.unwrap().frame, "fast");
    // The reverse direction was never delayed.
    b.send(&addr("a"), Bytes::from_static(b"back")).unwrap();
    assert_eq!(a.inbound().try_recv().unwrap().frame, "back");
}

async fn survivors(seed: u64) -> Vec<usize> {
    let hub = InMemoryHub::with_options(seed, 1024);
    let a = hub.bind(addr("a")).unwrap();
    let b = hub.bind(addr("b")).unwrap();
    hub.drop_with_probability(&addr("a"), &addr("b"), Direction::Send, 0.3)
        .unwrap();
    for i in 0..200usize {
        a.send(&addr("b"), Bytes::copy_from_slice(&i.to_be_bytes()))
            .unwrap();
    }
    b.inbound()
        .drain()
        .map(|f| usize::from_be_bytes(f.frame[..].try_into().unwrap()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn seeded_drops_replay_exactly() {
    let first = survivors(11).await;
    assert_eq!(first, survivors(11).await, "same seed, same drops");
    assert!(first.windows(2).all(|w| w[0] < w[1]), "order kept");
    assert!(
        (100..180).contains(&first.len()),
        "{} of 200 survived a 30% drop",
        first.len()
    );
    assert_ne!(first, survivors(12).await, "another seed drops others");
    let hub = InMemoryHub::new();
    assert_eq!(
        hub.drop_with_probability(&addr("a"), &addr("b"), Direction::Both, 1.5),
        Err(FaultError::InvalidProbability { probability: 1.5 })
    );
}

#[tokio::test(start_paused = true)]
async fn crash_makes_frames_vanish_and_peers_see_it() {
    let hub = InMemoryHub::new();
    let a = hub.bind(addr("a")).unwrap();
    let b = hub.bind(addr("b")).unwrap();
    let old_uid = b.local_uid();
    a.send(&addr("b"), Bytes::from_static(b"hello")).unwrap();
    b.send(&addr("a"), Bytes::from_static(b"queued")).unwrap();
    assert_eq!(a.peers(), vec![addr("b")]);
    assert!(hub.crash(&addr("b")));
    assert!(!hub.crash(&addr("b")), "already gone");
    let events: Vec<_> = a.events().drain().collect();
    assert_eq!(
        events,
        vec![
            TransportEvent::Connected {
                peer: addr("b"),
                uid: old_uid
            },
            TransportEvent::Disconnected {
                peer: addr("b"),
                reason: DisconnectReason::Crashed
            },
        ]
    );
    assert!(a.peers().is_empty());
    assert!(b.inbound().is_empty(), "a crashed node's inbox is lost");
    assert_eq!(
        a.send(&addr("b"), Bytes::new()),
        Err(TransportError::UnknownPeer { peer: addr("b") })
    );
    // Frames of the crashed node vanish without an error, as from a dead process.
    assert_eq!(b.send(&addr("a"), Bytes::from_static(b"ghost")), Ok(()));
    assert_eq!(a.inbound().try_recv().unwrap().frame, "queued");
    assert!(a.inbound().is_empty());
    let b2 = hub.bind(addr("b")).unwrap();
    assert_ne!(b2.local_uid(), old_uid);
    assert!(matches!(
        hub.bind(addr("b")),
        Err(BindError::AddressInUse { .. })
    ));
}

enum Command {
    Send(&'static str),
    NextEvent,
}

/// Two nodes on their own threads and runtimes; the test thread is the conductor.
#[test]
fn channel_mesh_conductor_drives_threads() {
    let mesh = ChannelMesh::new(3);
    let (a_addr, b_addr) = (addr("a"), addr("b"));
    let (ready_tx, ready_rx) = mpsc::channel();
    let (got_tx, got_rx) = mpsc::channel::<String>();
    let node_b = {
        let (mesh, b_addr, ready_tx) = (mesh.clone(), b_addr.clone(), ready_tx.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let b = mesh.bind(b_addr).unwrap();
                ready_tx.send(()).unwrap();
                while let Ok(frame) = b.inbound().recv_async().await {
                    let text = String::from_utf8(frame.frame.to_vec()).unwrap();
                    let stop = text == "stop";
                    got_tx.send(text).unwrap();
                    if stop {
                        break;
                    }
                }
            })
        })
    };
    let (cmd_tx, cmd_rx) = flume::unbounded::<(Command, mpsc::Sender<String>)>();
    let node_a = {
        let (mesh, a_addr, b_addr) = (mesh.clone(), a_addr.clone(), b_addr.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let a = mesh.bind(a_addr).unwrap();
                ready_tx.send(()).unwrap();
                while let Ok((cmd, reply)) = cmd_rx.recv_async().await {
                    let answer = match cmd {
                        Command::Send(text) => format!("{:?}", a.send(&b_addr, Bytes::from(text))),
                        Command::NextEvent => format!("{:?}", a.events().recv_async().await),
                    };
                    reply.send(answer).unwrap();
                }
            })
        })
    };
    ready_rx.recv().unwrap();
    ready_rx.recv().unwrap();
    let ask = |cmd| {
        let (tx, rx) = mpsc::channel();
        cmd_tx.send((cmd, tx)).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    };
    assert_eq!(ask(Command::Send("one")), "Ok(())");
    assert_eq!(got_rx.recv_timeout(Duration::from_secs(10)).unwrap(), "one");
    assert!(ask(Command::NextEvent).contains("Connected"));
    mesh.blackhole(&a_addr, &b_addr, Direction::Both);
    assert_eq!(ask(Command::Send("lost")), "Ok(())");
    mesh.pass_through(&a_addr, &b_addr, Direction::Both);
    mesh.delay(&a_addr, &b_addr, Direction::Send, Duration::from_millis(20));
    assert_eq!(ask(Command::Send("delayed")), "Ok(())");
    assert_eq!(
        got_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "delayed",
        "the blackholed frame must never arrive"
    );
    mesh.pass_through(&a_addr, &b_addr, Direction::Both);
    assert_eq!(ask(Command::Send("stop")), "Ok(())");
    assert_eq!(
        got_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "stop"
    );
    node_b.join().unwrap();
    // Node b's runtime ended and dropped its transport: a sees it leave.
    assert!(ask(Command::NextEvent).contains("PeerShutDown"));
    drop(cmd_tx);
    node_a.join().unwrap();
}

mod fifo_property {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Send { from: usize, to: usize },
        Delay { from: usize, to: usize, millis: u64 },
        Heal { from: usize, to: usize },
        Advance { millis: u64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Send { from, to }),
            2 => (0..3usize, 0..3usize, 1..50u64)
                .prop_map(|(from, to, millis)| Step::Delay { from, to, millis }),
            2 => (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Heal { from, to }),
            1 => (1..30u64).prop_map(|millis| Step::Advance { millis }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Delays that change between frames never reorder a pair, and lose nothing.
        #[test]
        fn per_pair_fifo_under_changing_delays(steps in proptest::collection::vec(step(), 1..120)) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(async move {
                let hub = InMemoryHub::new();
                let names = ["n0", "n1", "n2"];
                let nodes: Vec<_> = names.iter().map(|n| hub.bind(addr(n)).unwrap()).collect();
                let mut sent = [[0u32; 3]; 3];
                for step in steps {
                    match step {
                        Step::Send { from, to } => {
                            let n = sent[from][to];
                            sent[from][to] += 1;
                            nodes[from]
                                .send(&addr(names[to]), Bytes::copy_from_slice(&n.to_be_bytes()))
                                .unwrap();
                        }
                        Step::Delay { from, to, millis } => hub.delay(
                            &addr(names[from]),
                            &addr(names[to]),
                            Direction::Send,
                            Duration::from_millis(millis),
                        ),
                        Step::Heal { from, to } => {
                            hub.pass_through(&addr(names[from]), &addr(names[to]), Direction::Send)
                        }
                        Step::Advance { millis } => {
                            tokio::time::sleep(Duration::from_millis(millis)).await
                        }
                    }
                }
                // Virtual time (paused clock): let every delayed frame land (delays < 50 ms).
                tokio::time::sleep(Duration::from_secs(1)).await;
                for (to, node) in nodes.iter().enumerate() {
                    let mut next = [0u32; 3];
                    for frame in node.inbound().drain() {
                        let from = names.iter().position(|n| addr(n) == frame.from).unwrap();
                        let n = u32::from_be_bytes(frame.frame[..].try_into().unwrap());
                        assert_eq!(n, next[from], "{from}->{to} reordered");
                        next[from] += 1;
                    }
                    for from in 0..3 {
                        assert_eq!(next[from], sent[from][to], "{from}->{to} lost frames");
                    }
                }
            });
        }
    }
}
