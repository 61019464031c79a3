//! The reliable system-message channel running over a lossy in-memory link: wire envelopes
//! in frames, a resend tick on the paused clock, 30% seeded drops both ways.

use std::time::Duration;

use actor_cluster::system_delivery::{
    DEFAULT_RESEND_INTERVAL, ReceiverAction, SenderAction, SenderEvent, SystemReceiver,
    SystemSender,
};
use actor_cluster::wire::{self, Envelope, SystemMessage};
use actor_cluster::{Address, Direction, FaultInjector, InMemoryHub, Transport};

fn watch(i: u64) -> SystemMessage {
    SystemMessage::Watch {
        watchee: format!("actor://sys@b:0/user/w{i}"),
        watcher: "actor://sys@a:0/user/watcher".to_owned(),
    }
}

#[tokio::test(start_paused = true)]
async fn every_system_message_arrives_once_in_order_despite_drops() {
    const TOTAL: u64 = 100;
    for seed in [1, 2, 3] {
        let hub = InMemoryHub::with_options(seed, 64 * 1024);
        let (a_addr, b_addr) = (
            Address::logical("sys", "a").unwrap(),
            Address::logical("sys", "b").unwrap(),
        );
        let a = hub.bind(a_addr.clone()).unwrap();
        let b = hub.bind(b_addr.clone()).unwrap();
        hub.drop_with_probability(&a_addr, &b_addr, Direction::Both, 0.3)
            .unwrap();
        hub.delay(&a_addr, &b_addr, Direction::Both, Duration::from_millis(3));

        let (a_inbound, b_inbound) = (a.inbound(), b.inbound());
        let mut sender = SystemSender::default();
        let mut receiver = SystemReceiver::new();
        let mut delivered = Vec::new();
        let transmit = |actions: Vec<SenderAction>| {
            for action in actions {
                match action {
                    SenderAction::Transmit {
                        seq,
                        first_unacked,
                        msg,
                    } => {
                        let env = Envelope::System {
                            seq,
                            first_unacked,
                            msg,
                        };
                        a.send(&b_addr, wire::encode(&env).unwrap()).unwrap();
                    }
                    SenderAction::Quarantine(reason) => panic!("quarantined: {reason:?}"),
                }
            }
        };
        for i in 1..=TOTAL {
            transmit(sender.on_event(SenderEvent::Send(watch(i))));
        }
        let mut tick = tokio::time::interval(DEFAULT_RESEND_INTERVAL / 10);
        let mut ticks = 0;
        while sender.unacked() > 0 {
            tokio::select! {
                biased;
                frame = b_inbound.recv_async() => {
                    let Envelope::System { seq, first_unacked, msg } =
                        wire::decode(&frame.unwrap().frame).unwrap() else { panic!("not a system envelope") };
                    for action in receiver.on_message(seq, first_unacked, msg) {
                        match action {
                            ReceiverAction::Deliver(msg) => delivered.push(msg),
                            ReceiverAction::Ack { up_to } => {
                                let ack = wire::encode(&Envelope::SystemAck { up_to }).unwrap();
                                b.send(&a_addr, ack).unwrap();
                            }
                            ReceiverAction::Quarantine(reason) => panic!("quarantined: {reason:?}"),
                        }
                    }
                }
                frame = a_inbound.recv_async() => {
                    let Envelope::SystemAck { up_to } = wire::decode(&frame.unwrap().frame).unwrap()
                        else { panic!("not an ack") };
                    transmit(sender.on_event(SenderEvent::Ack { up_to }));
                }
                _ = tick.tick() => {
                    ticks += 1;
                    assert!(ticks < 1_000, "seed {seed}: not converging");
                    transmit(sender.on_event(SenderEvent::Tick));
                }
            }
        }
        let expected: Vec<_> = (1..=TOTAL).map(watch).collect();
        assert_eq!(delivered, expected, "seed {seed}");
        assert!(ticks > 1, "seed {seed}: drops should have forced resends");
    }
}
