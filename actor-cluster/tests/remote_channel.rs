//! Remoting between two threads, each with its own tokio runtime and actor system, over
//! `ChannelTransport`: tell, ask, a ref in a message, and death-watch across threads.

mod remote_support;

use std::time::Duration;

use actor_cluster::{Address, ChannelMesh};
use actor_core::{ActorPath, Props};
use remote_support::*;

/// What the test asks of node b's thread.
enum ToB {
    StopWatched,
    Finish,
}

#[test]
fn remote_tell_ask_and_watch_between_threads() {
    let mesh = ChannelMesh::new(7);
    let b_addr = Address::logical("chan", "b").unwrap();
    let (paths_tx, paths_rx) = std::sync::mpsc::channel::<(ActorPath, ActorPath, ActorPath)>();
    let (to_b, from_test) = flume::unbounded::<ToB>();
    let node_b = {
        let mesh = mesh.clone();
        let b_addr = b_addr.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let b = node(mesh.bind(b_addr).unwrap());
                let doubler = b.kit.spawn(Props::new(|| Doubler), "doubler");
                let greeter = b.kit.spawn(Props::new(|| Greeter), "greeter");
                let watched = b.kit.spawn(Props::new(|| Doubler), "watched");
                paths_tx
                    .send((
                        doubler.path().clone(),
                        greeter.path().clone(),
                        watched.path().clone(),
                    ))
                    .unwrap();
                while let Ok(cmd) = from_test.recv_async().await {
                    match cmd {
                        ToB::StopWatched => watched.stop(),
                        ToB::Finish => break,
                    }
                }
                b.shutdown().await;
            })
        })
    };
    let (doubler, greeter, watched) = paths_rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let a = node(mesh.bind(Address::logical("chan", "a").unwrap()).unwrap());
        let remote = a.remoting.remote_ref::<Double>(&doubler).unwrap();
        for n in 0..20 {
            assert_eq!(
                remote.ask(|r| Double(n, r), ASK_TIMEOUT).await,
                Ok(Pong(2 * n))
            );
        }
        let answers = a.kit.probe::<Pong>();
        let greeter = a.remoting.remote_ref::<Greet>(&greeter).unwrap();
        greeter.tell(Greet {
            name: "thread".into(),
            reply_to: answers.actor_ref().clone(),
        });
        answers.expect_msg(Pong(6)).await;
        let watched = a.remoting.remote_ref::<Double>(&watched).unwrap();
        let watcher = a.kit.probe::<()>();
        watcher.watch(&watched).await;
        // the watch is registered on b once an ask after it has been answered (same order)
        assert_eq!(
            watched.ask(|r| Double(1, r), ASK_TIMEOUT).await,
            Ok(Pong(2))
        );
        to_b.send(ToB::StopWatched).unwrap();
        watcher.expect_terminated(&watched).await;
        watcher
            .expect_no_terminated(Duration::from_millis(100))
            .await;
        to_b.send(ToB::Finish).unwrap();
        a.shutdown().await;
    });
    node_b.join().unwrap();
}
