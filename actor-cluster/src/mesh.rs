//! The engine shared by [`crate::InMemoryTransport`] and [`crate::ChannelTransport`]: a
//! registry of bound nodes, per-pair links that keep FIFO order under delays, and faults.
//!
//! Every decision is taken under one mutex, so a frame sent directly (no delay, nothing
//! pending on the link) can never overtake a delayed frame of the same pair. Delayed frames
//! go through a per-link task spawned on the sender's runtime, which sleeps with
//! `tokio::time` (instant on a paused clock).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::address::Address;
use crate::fault::{Direction, FaultInjector};
use crate::fault::{FaultError, FaultTable, LinkRule, Verdict, check_probability};
use crate::transport::{
    DisconnectReason, FrameObserver, InboundFrame, TrafficCounts, TransportError, TransportEvent,
};

/// Errors raised when binding a node to an in-process hub.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// A live node is already bound at this address.
    #[error("address {address} is already bound")]
    AddressInUse {
        /// The address in use.
        address: Address,
    },
    /// `bind` was called outside a tokio runtime (delayed delivery needs one).
    #[error("bind must be called from within a tokio runtime")]
    NoRuntime,
}

const LIVE: u8 = 0;
const CRASHED: u8 = 1;
const SHUT_DOWN: u8 = 2;

struct Node {
    uid: u64,
    inbound_tx: flume::Sender<InboundFrame>,
    inbound_rx: flume::Receiver<InboundFrame>,
    events_tx: flume::Sender<TransportEvent>,
    associated: BTreeSet<Address>,
    status: Arc<AtomicU8>,
}

struct Delayed {
    frame: Bytes,
    at: Instant,
    link_id: u64,
}

struct Link {
    id: u64,
    tx: flume::Sender<Delayed>,
    pending: usize,
}

struct MeshState {
    nodes: BTreeMap<Address, Node>,
    faults: FaultTable,
    links: BTreeMap<(Address, Address), Link>,
    next_link_id: u64,
    traffic: TrafficCounts,
    observer: Option<FrameObserver>,
}

/// The shared hub state behind `InMemoryHub` and `ChannelMesh`.
pub(crate) struct MeshCore {
    max_frame_size: usize,
    state: Mutex<MeshState>,
}

impl MeshCore {
    pub(crate) fn new(seed: u64, max_frame_size: usize) -> Arc<Self> {
        Arc::new(Self {
            max_frame_size,
            state: Mutex::new(MeshState {
                nodes: BTreeMap::new(),
                faults: FaultTable::new(seed),
                links: BTreeMap::new(),
                next_link_id: 0,
                traffic: TrafficCounts::default(),
                observer: None,
            }),
        })
    }

    pub(crate) fn bind(self: &Arc<Self>, address: Address) -> Result<MeshTransport, BindError> {
        let runtime = Handle::try_current().map_err(|_| BindError::NoRuntime)?;
        let mut state = self.state.lock();
        if state.nodes.contains_key(&address) {
            return Err(BindError::AddressInUse { address });
        }
        let uid = state.faults.next_uid();
        let (inbound_tx, inbound_rx) = flume::unbounded();
        let (events_tx, events_rx) = flume::unbounded();
        let status = Arc::new(AtomicU8::new(LIVE));
        state.nodes.insert(
            address.clone(),
            Node {
                uid,
                inbound_tx,
                inbound_rx: inbound_rx.clone(),
                events_tx,
                associated: BTreeSet::new(),
                status: status.clone(),
            },
        );
        Ok(MeshTransport {
            core: self.clone(),
            address,
            uid,
            status,
            inbound_rx,
            events_rx,
            runtime,
        })
    }

    /// Removes `address` from the hub, telling its peers with `reason`.
    fn remove_node(&self, address: &Address, uid: Option<u64>, status: u8) -> bool {
        let mut state = self.state.lock();
        if uid.is_some_and(|uid| state.nodes.get(address).is_some_and(|n| n.uid != uid)) {
            return false;
        }
        let Some(node) = state.nodes.remove(address) else {
            return false;
        };
        node.status.store(status, Ordering::SeqCst);
        let reason = if status == CRASHED {
            node.inbound_rx.drain().for_each(drop);
            DisconnectReason::Crashed
        } else {
            DisconnectReason::PeerShutDown
        };
        for peer in &node.associated {
            if let Some(p) = state.nodes.get_mut(peer) {
                p.associated.remove(address);
                let _ = p.events_tx.send(TransportEvent::Disconnected {
                    peer: address.clone(),
                    reason: reason.clone(),
                });
            }
        }
        state
            .links
            .retain(|(from, to), _| from != address && to != address);
        true
    }

    /// Frames and bytes delivered so far (counted when a send passes the fault rules).
    pub(crate) fn traffic(&self) -> TrafficCounts {
        self.state.lock().traffic
    }

    /// Installs (or with `None` removes) the callback that sees every delivered frame.
    pub(crate) fn observe_frames(&self, observer: Option<FrameObserver>) {
        self.state.lock().observer = observer;
    }

    fn deliver_delayed(&self, from: &Address, to: &Address, delayed: Delayed) {
        let mut state = self.state.lock();
        let key = (from.clone(), to.clone());
        match state.links.get_mut(&key) {
            Some(link) if link.id == delayed.link_id => link.pending -= 1,
            _ => return,
        }
        let from_uid = match state.nodes.get(from) {
            Some(node) => node.uid,
            None => return,
        };
        if let Some(dest) = state.nodes.get(to) {
            let _ = dest.inbound_tx.send(InboundFrame {
                from: from.clone(),
                from_uid,
                frame: delayed.frame,
            });
        }
    }
}

async fn run_link(core: Arc<MeshCore>, from: Address, to: Address, rx: flume::Receiver<Delayed>) {
    while let Ok(delayed) = rx.recv_async().await {
        tokio::time::sleep_until(delayed.at).await;
        core.deliver_delayed(&from, &to, delayed);
    }
}

impl FaultInjector for Arc<MeshCore> {
    fn blackhole(&self, a: &Address, b: &Address, direction: Direction) {
        self.state
            .lock()
            .faults
            .update(a, b, direction, |r| r.blackhole = true);
    }

    fn pass_through(&self, a: &Address, b: &Address, direction: Direction) {
        self.state
            .lock()
            .faults
            .update(a, b, direction, |r| *r = LinkRule::default());
    }

    fn delay(&self, a: &Address, b: &Address, direction: Direction, delay: Duration) {
        self.state
            .lock()
            .faults
            .update(a, b, direction, |r| r.delay = delay);
    }

    fn drop_with_probability(
        &self,
        a: &Address,
        b: &Address,
        direction: Direction,
        probability: f64,
    ) -> Result<(), FaultError> {
        check_probability(probability)?;
        self.state
            .lock()
            .faults
            .update(a, b, direction, |r| r.drop_probability = probability);
        Ok(())
    }

    fn crash(&self, address: &Address) -> bool {
        self.remove_node(address, None, CRASHED)
    }

    fn link_rule(&self, from: &Address, to: &Address) -> LinkRule {
        self.state.lock().faults.rule(from, to)
    }
}

/// One node bound to a mesh; the body of both in-process transports.
pub(crate) struct MeshTransport {
    core: Arc<MeshCore>,
    address: Address,
    uid: u64,
    status: Arc<AtomicU8>,
    inbound_rx: flume::Receiver<InboundFrame>,
    events_rx: flume::Receiver<TransportEvent>,
    runtime: Handle,
}

impl MeshTransport {
    pub(crate) fn local_address(&self) -> &Address {
        &self.address
    }

    pub(crate) fn local_uid(&self) -> u64 {
        self.uid
    }

    pub(crate) fn max_frame_size(&self) -> usize {
        self.core.max_frame_size
    }

    pub(crate) fn send(&self, to: &Address, frame: Bytes) -> Result<(), TransportError> {
        if frame.len() > self.core.max_frame_size {
            return Err(TransportError::FrameTooLarge {
                size: frame.len(),
                limit: self.core.max_frame_size,
            });
        }
        match self.status.load(Ordering::SeqCst) {
            LIVE => {}
            // A crashed node's frames vanish silently, as a dead process's would.
            CRASHED => return Ok(()),
            _ => {
                return Err(TransportError::ShutDown {
                    local: self.address.clone(),
                });
            }
        }
        let mut guard = self.core.state.lock();
        let state = &mut *guard;
        let Some(dest) = state.nodes.get(to) else {
            return Err(TransportError::UnknownPeer { peer: to.clone() });
        };
        let to_uid = dest.uid;
        let delay = match state.faults.verdict(&self.address, to) {
            Verdict::Drop => return Ok(()),
            Verdict::Deliver(delay) => delay,
        };
        state.traffic.frames += 1;
        state.traffic.bytes += frame.len() as u64;
        if let Some(observer) = &state.observer {
            observer(&self.address, to, &frame);
        }
        let newly_associated = match state.nodes.get_mut(&self.address) {
            Some(n) if !n.associated.contains(to) => n.associated.insert(to.clone()),
            _ => false,
        };
        if newly_associated {
            if let Some(n) = state.nodes.get(&self.address) {
                let _ = n.events_tx.send(TransportEvent::Connected {
                    peer: to.clone(),
                    uid: to_uid,
                });
            }
            if let Some(d) = state.nodes.get_mut(to) {
                d.associated.insert(self.address.clone());
                let _ = d.events_tx.send(TransportEvent::Connected {
                    peer: self.address.clone(),
                    uid: self.uid,
                });
            }
        }
        let pending = if state.links.is_empty() {
            0
        } else {
            state
                .links
                .get(&(self.address.clone(), to.clone()))
                .map_or(0, |l| l.pending)
        };
        if delay.is_zero() && pending == 0 {
            if let Some(dest) = state.nodes.get(to) {
                let _ = dest.inbound_tx.send(InboundFrame {
                    from: self.address.clone(),
                    from_uid: self.uid,
                    frame,
                });
            }
            return Ok(());
        }
        let key = (self.address.clone(), to.clone());
        if !state.links.contains_key(&key) {
            let (tx, rx) = flume::unbounded();
            state.next_link_id += 1;
            let id = state.next_link_id;
            state.links.insert(key.clone(), Link { id, tx, pending: 0 });
            self.runtime.spawn(run_link(
                self.core.clone(),
                self.address.clone(),
                to.clone(),
                rx,
            ));
        }
        if let Some(link) = state.links.get_mut(&key) {
            link.pending += 1;
            let _ = link.tx.send(Delayed {
                frame,
                at: Instant::now() + delay,
                link_id: link.id,
            });
        }
        Ok(())
    }

    pub(crate) fn inbound(&self) -> flume::Receiver<InboundFrame> {
        self.inbound_rx.clone()
    }

    pub(crate) fn events(&self) -> flume::Receiver<TransportEvent> {
        self.events_rx.clone()
    }

    pub(crate) fn peers(&self) -> Vec<Address> {
        let state = self.core.state.lock();
        state
            .nodes
            .get(&self.address)
            .filter(|n| n.uid == self.uid)
            .map(|n| n.associated.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn disconnect(&self, peer: &Address) {
        let mut state = self.core.state.lock();
        let is_me = state
            .nodes
            .get(&self.address)
            .is_some_and(|n| n.uid == self.uid);
        if !is_me {
            return;
        }
        let was = state
            .nodes
            .get_mut(&self.address)
            .is_some_and(|n| n.associated.remove(peer));
        if !was {
            return;
        }
        if let Some(n) = state.nodes.get(&self.address) {
            let _ = n.events_tx.send(TransportEvent::Disconnected {
                peer: peer.clone(),
                reason: DisconnectReason::Requested,
            });
        }
        if let Some(p) = state.nodes.get_mut(peer) {
            p.associated.remove(&self.address);
            let _ = p.events_tx.send(TransportEvent::Disconnected {
                peer: self.address.clone(),
                reason: DisconnectReason::ClosedByPeer,
            });
        }
        state.links.remove(&(self.address.clone(), peer.clone()));
        state.links.remove(&(peer.clone(), self.address.clone()));
    }

    pub(crate) fn shutdown(&self) {
        if self.status.load(Ordering::SeqCst) == LIVE {
            self.core
                .remove_node(&self.address, Some(self.uid), SHUT_DOWN);
            self.status.store(SHUT_DOWN, Ordering::SeqCst);
        }
    }
}

impl Drop for MeshTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Implements `Transport` for a newtype around `MeshTransport`.
macro_rules! delegate_mesh_transport {
    ($ty:ty) => {
        impl $crate::transport::Transport for $ty {
            fn local_address(&self) -> &$crate::address::Address {
                self.0.local_address()
            }

            fn local_uid(&self) -> u64 {
                self.0.local_uid()
            }

            fn max_frame_size(&self) -> usize {
                self.0.max_frame_size()
            }

            fn send(
                &self,
                to: &$crate::address::Address,
                frame: ::bytes::Bytes,
            ) -> Result<(), $crate::transport::TransportError> {
                self.0.send(to, frame)
            }

            fn inbound(&self) -> ::flume::Receiver<$crate::transport::InboundFrame> {
                self.0.inbound()
            }

            fn events(&self) -> ::flume::Receiver<$crate::transport::TransportEvent> {
                self.0.events()
            }

            fn peers(&self) -> Vec<$crate::address::Address> {
                self.0.peers()
            }

            fn disconnect(
                &self,
                peer: &$crate::address::Address,
            ) -> $crate::transport::BoxFuture<'_, ()> {
                self.0.disconnect(peer);
                Box::pin(::std::future::ready(()))
            }

            fn shutdown(&self) -> $crate::transport::BoxFuture<'_, ()> {
                self.0.shutdown();
                Box::pin(::std::future::ready(()))
            }
        }
    };
}

/// Implements `FaultInjector` for a hub newtype around `Arc<MeshCore>`.
macro_rules! delegate_fault_injector {
    ($ty:ty) => {
        impl $crate::fault::FaultInjector for $ty {
            fn blackhole(&self, a: &Address, b: &Address, direction: $crate::fault::Direction) {
                self.core.blackhole(a, b, direction)
            }

            fn pass_through(&self, a: &Address, b: &Address, direction: $crate::fault::Direction) {
                self.core.pass_through(a, b, direction)
            }

            fn delay(
                &self,
                a: &Address,
                b: &Address,
                direction: $crate::fault::Direction,
                delay: ::std::time::Duration,
            ) {
                self.core.delay(a, b, direction, delay)
            }

            fn drop_with_probability(
                &self,
                a: &Address,
                b: &Address,
                direction: $crate::fault::Direction,
                probability: f64,
            ) -> Result<(), $crate::fault::FaultError> {
                self.core
                    .drop_with_probability(a, b, direction, probability)
            }

            fn crash(&self, address: &Address) -> bool {
                self.core.crash(address)
            }

            fn link_rule(&self, from: &Address, to: &Address) -> $crate::fault::LinkRule {
                self.core.link_rule(from, to)
            }
        }
    };
}

pub(crate) use {delegate_fault_injector, delegate_mesh_transport};
