//! Reliable, ordered, exactly-once delivery of system messages over an at-most-once
//! transport, as two pure state machines (no I/O, no clock).
//!
//! [`SystemSender`] numbers each message from 1, keeps it until a cumulative
//! [`crate::wire::Envelope::SystemAck`] covers it, and retransmits everything unacknowledged,
//! in order, on every [`SenderEvent::Tick`] (the caller ticks every
//! [`DEFAULT_RESEND_INTERVAL`]). [`SystemReceiver`] delivers only the next expected number,
//! acknowledges cumulatively, and ignores duplicates and gaps (a later resend fills them).
//!
//! Either side decides on quarantine when delivery can no longer be guaranteed: the sender's
//! buffer overflows, a message stays unacknowledged for too many ticks, an ack covers
//! numbers never sent, or a message shows that the sender already discarded numbers the
//! receiver still waits for (an unrepairable gap, e.g. a peer that restarted). The remoting
//! layer then closes the association for good and fires `Terminated` for everything watched
//! there, so each watch still ends with exactly one `Terminated`. One pair of state machines
//! lives per association incarnation (peer address plus uid).

use std::collections::VecDeque;
use std::time::Duration;

use crate::wire::SystemMessage;

/// Default capacity of the sender's unacknowledged buffer: 20 000 messages.
///
/// Overflowing it quarantines the association; larger tolerates a longer outage with many
/// watches at the cost of memory.
pub const DEFAULT_SYSTEM_BUFFER_SIZE: usize = 20_000;

/// Suggested interval between [`SenderEvent::Tick`]s: 1 s.
///
/// Shorter repairs losses sooner but resends more on a slow link.
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(1);

/// Default number of ticks a message may stay unacknowledged before quarantine: 21 600
/// (6 hours at the default interval).
///
/// Long, since quarantine is irreversible; shorter frees resources of a dead peer sooner
/// when no failure detector does.
pub const DEFAULT_GIVE_UP_AFTER_TICKS: u32 = 21_600;

/// Why an association must be quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuarantineReason {
    /// The sender's buffer of unacknowledged messages is full.
    BufferOverflow {
        /// The buffer capacity.
        capacity: usize,
    },
    /// A message stayed unacknowledged for too many ticks.
    GaveUp {
        /// The oldest unacknowledged sequence number.
        seq: u64,
        /// Ticks it waited.
        ticks: u32,
    },
    /// An ack covers numbers that were never sent (another incarnation, or corruption).
    AckBeyondSent {
        /// The acknowledged number.
        up_to: u64,
        /// The highest number sent.
        highest_sent: u64,
    },
    /// The sender no longer holds messages the receiver has not received.
    UnrepairableGap {
        /// The next number the receiver expects.
        expected: u64,
        /// The lowest number the sender still holds.
        first_available: u64,
    },
}

/// Settings of a [`SystemSender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderSettings {
    /// Capacity of the unacknowledged buffer.
    pub buffer_size: usize,
    /// Ticks before an unacknowledged message quarantines the association.
    pub give_up_after_ticks: u32,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            buffer_size: DEFAULT_SYSTEM_BUFFER_SIZE,
            give_up_after_ticks: DEFAULT_GIVE_UP_AFTER_TICKS,
        }
    }
}

/// Inputs of the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderEvent {
    /// A new system message to deliver.
    Send(SystemMessage),
    /// A cumulative ack arrived.
    Ack {
        /// Highest number delivered in order by the receiver.
        up_to: u64,
    },
    /// The resend timer fired.
    Tick,
}

/// Outputs of the sender, for the caller to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderAction {
    /// Send `Envelope::System { seq, first_unacked, msg }` to the peer.
    Transmit {
        /// Sequence number.
        seq: u64,
        /// Lowest number still held.
        first_unacked: u64,
        /// The message.
        msg: SystemMessage,
    },
    /// Close the association for good.
    Quarantine(QuarantineReason),
}

#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    msg: SystemMessage,
    ticks: u32,
}

/// The sending half: numbers, buffers and resends system messages.
#[derive(Debug, Clone)]
pub struct SystemSender {
    settings: SenderSettings,
    next_seq: u64,
    unacked: VecDeque<Pending>,
    quarantined: Option<QuarantineReason>,
}

impl Default for SystemSender {
    fn default() -> Self {
        Self::new(SenderSettings::default())
    }
}

impl SystemSender {
    /// A sender for a fresh association.
    pub fn new(settings: SenderSettings) -> Self {
        Self {
            settings,
            next_seq: 1,
            unacked: VecDeque::new(),
            quarantined: None,
        }
    }

    /// How many messages wait for an ack.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// Why the association was quarantined, if it was.
    pub fn quarantined(&self) -> Option<&QuarantineReason> {
        self.quarantined.as_ref()
    }

    fn quarantine(&mut self, reason: QuarantineReason) -> Vec<SenderAction> {
        self.unacked.clear();
        self.quarantined = Some(reason.clone());
        vec![SenderAction::Quarantine(reason)]
    }

    fn first_unacked(&self) -> u64 {
        self.unacked.front().map_or(self.next_seq, |p| p.seq)
    }

    /// Applies one event; returns what to do. After quarantine every event is ignored.
    pub fn on_event(&mut self, event: SenderEvent) -> Vec<SenderAction> {
        if self.quarantined.is_some() {
            return Vec::new();
        }
        match event {
            SenderEvent::Send(msg) => {
                if self.unacked.len() >= self.settings.buffer_size {
                    return self.quarantine(QuarantineReason::BufferOverflow {
                        capacity: self.settings.buffer_size,
                    });
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                self.unacked.push_back(Pending {
                    seq,
                    msg: msg.clone(),
                    ticks: 0,
                });
                vec![SenderAction::Transmit {
                    seq,
                    first_unacked: self.first_unacked(),
                    msg,
                }]
            }
            SenderEvent::Ack { up_to } => {
                if up_to >= self.next_seq {
                    return self.quarantine(QuarantineReason::AckBeyondSent {
                        up_to,
                        highest_sent: self.next_seq - 1,
                    });
                }
                while self.unacked.front().is_some_and(|p| p.seq <= up_to) {
                    self.unacked.pop_front();
                }
                Vec::new()
            }
            SenderEvent::Tick => {
                for pending in &mut self.unacked {
                    pending.ticks = pending.ticks.saturating_add(1);
                }
                if let Some(oldest) = self.unacked.front()
                    && oldest.ticks > self.settings.give_up_after_ticks
                {
                    let reason = QuarantineReason::GaveUp {
                        seq: oldest.seq,
                        ticks: oldest.ticks,
                    };
                    return self.quarantine(reason);
                }
                let first_unacked = self.first_unacked();
                self.unacked
                    .iter()
                    .map(|p| SenderAction::Transmit {
                        seq: p.seq,
                        first_unacked,
                        msg: p.msg.clone(),
                    })
                    .collect()
            }
        }
    }
}

/// Outputs of the receiver, for the caller to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverAction {
    /// Hand the message to the local system (in order, exactly once).
    Deliver(SystemMessage),
    /// Send `Envelope::SystemAck { up_to }` to the peer.
    Ack {
        /// Highest number delivered in order.
        up_to: u64,
    },
    /// Close the association for good.
    Quarantine(QuarantineReason),
}

/// The receiving half: delivers in order, exactly once, and acknowledges.
#[derive(Debug, Clone)]
pub struct SystemReceiver {
    expected: u64,
    quarantined: Option<QuarantineReason>,
}

impl Default for SystemReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemReceiver {
    /// A receiver for a fresh association, expecting number 1.
    pub fn new() -> Self {
        Self {
            expected: 1,
            quarantined: None,
        }
    }

    /// The next sequence number to deliver.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Why the association was quarantined, if it was.
    pub fn quarantined(&self) -> Option<&QuarantineReason> {
        self.quarantined.as_ref()
    }

    /// Handles one `Envelope::System`; returns what to do.
    pub fn on_message(
        &mut self,
        seq: u64,
        first_unacked: u64,
        msg: SystemMessage,
    ) -> Vec<ReceiverAction> {
        if self.quarantined.is_some() {
            return Vec::new();
        }
        if first_unacked > self.expected {
            let reason = QuarantineReason::UnrepairableGap {
                expected: self.expected,
                first_available: first_unacked,
            };
            self.quarantined = Some(reason.clone());
            return vec![ReceiverAction::Quarantine(reason)];
        }
        if seq == self.expected {
            self.expected += 1;
            vec![
                ReceiverAction::Deliver(msg),
                ReceiverAction::Ack { up_to: seq },
            ]
        } else {
            // A duplicate (seq < expected) or a gap (seq > expected): re-ack what we have;
            // the sender's next resend brings the missing numbers in order.
            vec![ReceiverAction::Ack {
                up_to: self.expected - 1,
            }]
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn msg(i: u64) -> SystemMessage {
        SystemMessage::Watch {
            watchee: format!("a{i}"),
            watcher: "w".to_owned(),
        }
    }

    fn transmits(actions: &[SenderAction]) -> Vec<(u64, u64, SystemMessage)> {
        actions
            .iter()
            .filter_map(|a| match a {
                SenderAction::Transmit {
                    seq,
                    first_unacked,
                    msg,
                } => Some((*seq, *first_unacked, msg.clone())),
                SenderAction::Quarantine(_) => None,
            })
            .collect()
    }

    #[test]
    fn in_order_delivery_and_cumulative_ack() {
        let mut tx = SystemSender::default();
        let mut rx = SystemReceiver::new();
        let sent: Vec<_> = (1..=3)
            .flat_map(|i| transmits(&tx.on_event(SenderEvent::Send(msg(i)))))
            .collect();
        // Deliver 1, lose 2, deliver 3 (gap), then resend.
        assert_eq!(
            rx.on_message(sent[0].0, sent[0].1, sent[0].2.clone()),
            vec![
                ReceiverAction::Deliver(msg(1)),
                ReceiverAction::Ack { up_to: 1 }
            ]
        );
        assert_eq!(
            rx.on_message(sent[2].0, sent[2].1, sent[2].2.clone()),
            vec![ReceiverAction::Ack { up_to: 1 }]
        );
        assert!(tx.on_event(SenderEvent::Ack { up_to: 1 }).is_empty());
        assert_eq!(tx.unacked(), 2);
        let resent = transmits(&tx.on_event(SenderEvent::Tick));
        assert_eq!(resent.iter().map(|t| t.0).collect::<Vec<_>>(), vec![2, 3]);
        let mut delivered = Vec::new();
        for (seq, first, m) in resent {
            for action in rx.on_message(seq, first, m) {
                match action {
                    ReceiverAction::Deliver(m) => delivered.push(m),
                    ReceiverAction::Ack { up_to } => {
                        tx.on_event(SenderEvent::Ack { up_to });
                    }
                    ReceiverAction::Quarantine(r) => panic!("unexpected quarantine {r:?}"),
                }
            }
        }
        assert_eq!(delivered, vec![msg(2), msg(3)]);
        assert_eq!(tx.unacked(), 0);
        // A late duplicate is acked again but not delivered.
        assert_eq!(
            rx.on_message(2, 2, msg(2)),
            vec![ReceiverAction::Ack { up_to: 3 }]
        );
    }

    #[test]
    fn quarantine_decisions() {
        let mut small = SystemSender::new(SenderSettings {
            buffer_size: 2,
            give_up_after_ticks: 3,
        });
        small.on_event(SenderEvent::Send(msg(1)));
        small.on_event(SenderEvent::Send(msg(2)));
        assert_eq!(
            small.on_event(SenderEvent::Send(msg(3))),
            vec![SenderAction::Quarantine(QuarantineReason::BufferOverflow {
                capacity: 2
            })]
        );
        assert!(
            small.on_event(SenderEvent::Tick).is_empty(),
            "terminal state"
        );

        let mut slow = SystemSender::new(SenderSettings {
            buffer_size: 10,
            give_up_after_ticks: 2,
        });
        slow.on_event(SenderEvent::Send(msg(1)));
        assert_eq!(transmits(&slow.on_event(SenderEvent::Tick)).len(), 1);
        assert_eq!(transmits(&slow.on_event(SenderEvent::Tick)).len(), 1);
        assert_eq!(
            slow.on_event(SenderEvent::Tick),
            vec![SenderAction::Quarantine(QuarantineReason::GaveUp {
                seq: 1,
                ticks: 3
            })]
        );

        let mut tx = SystemSender::default();
        tx.on_event(SenderEvent::Send(msg(1)));
        assert_eq!(
            tx.on_event(SenderEvent::Ack { up_to: 5 }),
            vec![SenderAction::Quarantine(QuarantineReason::AckBeyondSent {
                up_to: 5,
                highest_sent: 1
            })]
        );

        // A receiver that missed 1..=4 meets a sender that already dropped them.
        let mut rx = SystemReceiver::new();
        assert_eq!(
            rx.on_message(6, 5, msg(6)),
            vec![ReceiverAction::Quarantine(
                QuarantineReason::UnrepairableGap {
                    expected: 1,
                    first_available: 5
                }
            )]
        );
        assert!(rx.on_message(1, 1, msg(1)).is_empty(), "terminal state");
    }

    /// One step of the adversarial network.
    #[derive(Debug, Clone)]
    enum Op {
        SendNext,
        Tick,
        DeliverData { pick: usize, duplicate: bool },
        DropData { pick: usize },
        DeliverAck { pick: usize, duplicate: bool },
        DropAck { pick: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::SendNext),
            1 => Just(Op::Tick),
            4 => (any::<usize>(), any::<bool>())
                .prop_map(|(pick, duplicate)| Op::DeliverData { pick, duplicate }),
            2 => any::<usize>().prop_map(|pick| Op::DropData { pick }),
            3 => (any::<usize>(), any::<bool>())
                .prop_map(|(pick, duplicate)| Op::DeliverAck { pick, duplicate }),
            2 => any::<usize>().prop_map(|pick| Op::DropAck { pick }),
        ]
    }

    struct Sim {
        tx: SystemSender,
        rx: SystemReceiver,
        data: Vec<(u64, u64, SystemMessage)>,
        acks: Vec<u64>,
        delivered: Vec<SystemMessage>,
        sent: u64,
    }

    impl Sim {
        fn sender(&mut self, event: SenderEvent) {
            for action in self.tx.on_event(event) {
                match action {
                    SenderAction::Transmit {
                        seq,
                        first_unacked,
                        msg,
                    } => self.data.push((seq, first_unacked, msg)),
                    SenderAction::Quarantine(r) => panic!("sender quarantined: {r:?}"),
                }
            }
        }

        fn receive(&mut self, (seq, first, m): (u64, u64, SystemMessage)) {
            for action in self.rx.on_message(seq, first, m) {
                match action {
                    ReceiverAction::Deliver(m) => self.delivered.push(m),
                    ReceiverAction::Ack { up_to } => self.acks.push(up_to),
                    ReceiverAction::Quarantine(r) => panic!("receiver quarantined: {r:?}"),
                }
            }
        }

        fn step(&mut self, op: Op, total: u64) {
            match op {
                Op::SendNext if self.sent < total => {
                    self.sent += 1;
                    self.sender(SenderEvent::Send(msg(self.sent)));
                }
                Op::SendNext => {}
                Op::Tick => self.sender(SenderEvent::Tick),
                Op::DeliverData { pick, duplicate } if !self.data.is_empty() => {
                    let i = pick % self.data.len();
                    let packet = if duplicate {
                        self.data[i].clone()
                    } else {
                        self.data.remove(i)
                    };
                    self.receive(packet);
                }
                Op::DropData { pick } if !self.data.is_empty() => {
                    let i = pick % self.data.len();
                    self.data.remove(i);
                }
                Op::DeliverAck { pick, duplicate } if !self.acks.is_empty() => {
                    let i = pick % self.acks.len();
                    let up_to = if duplicate {
                        self.acks[i]
                    } else {
                        self.acks.remove(i)
                    };
                    self.sender(SenderEvent::Ack { up_to });
                }
                Op::DropAck { pick } if !self.acks.is_empty() => {
                    let i = pick % self.acks.len();
                    self.acks.remove(i);
                }
                _ => {}
            }
        }

        /// The network heals: ticks and in-order delivery until everything is acked.
        fn heal(&mut self, total: u64) {
            while self.sent < total {
                self.sent += 1;
                self.sender(SenderEvent::Send(msg(self.sent)));
            }
            for _ in 0..(total + 3) {
                if self.tx.unacked() == 0 {
                    break;
                }
                self.data.clear();
                self.sender(SenderEvent::Tick);
                for packet in std::mem::take(&mut self.data) {
                    self.receive(packet);
                }
                for up_to in std::mem::take(&mut self.acks) {
                    self.sender(SenderEvent::Ack { up_to });
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_message_delivered_once_in_order(
            total in 1u64..40,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let mut sim = Sim {
                tx: SystemSender::new(SenderSettings {
                    buffer_size: 64,
                    give_up_after_ticks: u32::MAX,
                }),
                rx: SystemReceiver::new(),
                data: Vec::new(),
                acks: Vec::new(),
                delivered: Vec::new(),
                sent: 0,
            };
            for op in ops {
                sim.step(op, total);
                // Safety at every step: what was delivered is a prefix, in order, no repeats.
                let prefix: Vec<_> = (1..=sim.delivered.len() as u64).map(msg).collect();
                prop_assert_eq!(&sim.delivered, &prefix);
            }
            sim.heal(total);
            let expected: Vec<_> = (1..=total).map(msg).collect();
            prop_assert_eq!(sim.delivered, expected);
            prop_assert_eq!(sim.tx.unacked(), 0);
            prop_assert_eq!(sim.rx.expected(), total + 1);
        }
    }
}
