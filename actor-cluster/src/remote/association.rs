//! Per-peer state: the peer's incarnation (shared with remote refs), the reliable
//! system-message channel, the remote actors watched from here and the local actors watched
//! from there, and the quarantine decision.
//!
//! [`Association`] does no I/O: each method returns [`AssocAction`]s for the remoting task to
//! perform (send an envelope, hand a system message to the local side, quarantine).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actor_core::{ActorId, ActorPath, Watcher};
use tokio::time::Instant;

use crate::address::Address;
use crate::system_delivery::{
    QuarantineReason, ReceiverAction, SenderAction, SenderEvent, SenderSettings, SystemReceiver,
    SystemSender,
};
use crate::wire::{Envelope, SystemMessage};

/// One incarnation of a peer node as remote refs see it: the address, the uid once learnt,
/// and whether it was quarantined (then refs bound to it never send again).
#[derive(Debug)]
pub(crate) struct Incarnation {
    pub(crate) address: Address,
    uid: AtomicU64,
    quarantined: AtomicBool,
}

impl Incarnation {
    pub(crate) fn new(address: Address) -> Self {
        Incarnation {
            address,
            uid: AtomicU64::new(0),
            quarantined: AtomicBool::new(false),
        }
    }

    /// The peer's uid, once learnt.
    pub(crate) fn uid(&self) -> Option<u64> {
        match self.uid.load(Ordering::Acquire) {
            0 => None,
            uid => Some(uid),
        }
    }

    pub(crate) fn bind(&self, uid: u64) {
        self.uid.store(uid, Ordering::Release);
    }

    pub(crate) fn is_quarantined(&self) -> bool {
        self.quarantined.load(Ordering::Acquire)
    }

    fn quarantine(&self) {
        self.quarantined.store(true, Ordering::Release);
    }
}

/// Why a peer incarnation was quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteQuarantineReason {
    /// System-message delivery broke (see [`crate::system_delivery`]).
    SystemDelivery(QuarantineReason),
    /// The peer came back with another uid: it restarted.
    Restarted {
        /// The new incarnation's uid.
        new_uid: u64,
    },
    /// The association stayed lost for the loss timeout.
    AssociationLost {
        /// How long it was lost.
        after: Duration,
    },
    /// [`Remoting::quarantine`](super::Remoting::quarantine) was called, e.g. by the cluster
    /// daemon for a member that was downed or removed.
    Requested {
        /// The caller's reason.
        reason: String,
    },
    /// The peer sent a frame that is not a valid envelope of this wire version.
    MalformedFrame {
        /// What the decoder reported.
        error: String,
    },
}

/// Published on the actor system's event stream when a peer incarnation is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The peer's address.
    pub address: Address,
    /// The quarantined incarnation's uid, if it was ever learnt.
    pub uid: Option<u64>,
    /// Why.
    pub reason: RemoteQuarantineReason,
}

/// What the remoting task does for an association.
#[derive(Debug)]
pub(crate) enum AssocAction {
    /// Send this envelope to the peer.
    Send(Envelope),
    /// A system message from the peer, in order, exactly once.
    Deliver(SystemMessage),
    /// Quarantine this incarnation.
    Quarantine(RemoteQuarantineReason),
}

/// A remote actor watched by local actors.
struct WatchedRemote {
    id: ActorId,
    watchers: BTreeMap<ActorId, Watcher>,
    /// The watcher path sent in `Watch` (the first watcher's), repeated in `Unwatch`.
    key: String,
}

/// The state of one association (one peer incarnation).
pub(crate) struct Association {
    pub(crate) inc: Arc<Incarnation>,
    sender: SystemSender,
    receiver: SystemReceiver,
    watching: BTreeMap<ActorPath, WatchedRemote>,
    /// Local actors watched from the peer: path -> the peer's watcher keys.
    pub(crate) watched_by: BTreeMap<ActorPath, BTreeSet<String>>,
    /// Since when the transport reports the association lost.
    pub(crate) lost_since: Option<Instant>,
}

impl Association {
    pub(crate) fn new(inc: Arc<Incarnation>, settings: SenderSettings) -> Self {
        Association {
            inc,
            sender: SystemSender::new(settings),
            receiver: SystemReceiver::new(),
            watching: BTreeMap::new(),
            watched_by: BTreeMap::new(),
            lost_since: None,
        }
    }

    fn sender_actions(actions: Vec<SenderAction>) -> Vec<AssocAction> {
        actions
            .into_iter()
            .map(|a| match a {
                SenderAction::Transmit {
                    seq,
                    first_unacked,
                    msg,
                } => AssocAction::Send(Envelope::System {
                    seq,
                    first_unacked,
                    msg,
                }),
                SenderAction::Quarantine(r) => {
                    AssocAction::Quarantine(RemoteQuarantineReason::SystemDelivery(r))
                }
            })
            .collect()
    }

    /// Sends a system message reliably.
    pub(crate) fn send_system(&mut self, msg: SystemMessage) -> Vec<AssocAction> {
        Self::sender_actions(self.sender.on_event(SenderEvent::Send(msg)))
    }

    /// An `Envelope::System` from the peer.
    pub(crate) fn on_system(
        &mut self,
        seq: u64,
        first_unacked: u64,
        msg: SystemMessage,
    ) -> Vec<AssocAction> {
        self.receiver
            .on_message(seq, first_unacked, msg)
            .into_iter()
            .map(|a| match a {
                ReceiverAction::Deliver(m) => AssocAction::Deliver(m),
                ReceiverAction::Ack { up_to } => AssocAction::Send(Envelope::SystemAck { up_to }),
                ReceiverAction::Quarantine(r) => {
                    AssocAction::Quarantine(RemoteQuarantineReason::SystemDelivery(r))
                }
            })
            .collect()
    }

    /// An `Envelope::SystemAck` from the peer.
    pub(crate) fn on_ack(&mut self, up_to: u64) -> Vec<AssocAction> {
        Self::sender_actions(self.sender.on_event(SenderEvent::Ack { up_to }))
    }

    /// The periodic tick: resend what is unacknowledged, and quarantine after a long loss.
    pub(crate) fn tick(&mut self, now: Instant, loss_timeout: Duration) -> Vec<AssocAction> {
        if let Some(since) = self.lost_since
            && now.duration_since(since) >= loss_timeout
        {
            return vec![AssocAction::Quarantine(
                RemoteQuarantineReason::AssociationLost {
                    after: now.duration_since(since),
                },
            )];
        }
        Self::sender_actions(self.sender.on_event(SenderEvent::Tick))
    }

    /// Whether system messages wait for an ack (the peer must be reachable).
    pub(crate) fn has_unacked(&self) -> bool {
        self.sender.unacked() > 0
    }

    /// Whether anything is watched across this association, either way.
    pub(crate) fn has_watches(&self) -> bool {
        !self.watching.is_empty() || !self.watched_by.is_empty()
    }

    /// A local `watcher` watches the remote `watchee`; the first watcher sends `Watch`.
    pub(crate) fn watch(&mut self, watchee: ActorId, watcher: Watcher) -> Vec<AssocAction> {
        let path = watchee.path().clone();
        if let Some(w) = self.watching.get_mut(&path) {
            w.watchers.insert(watcher.id().clone(), watcher);
            return Vec::new();
        }
        let key = watcher.id().path().to_string();
        let msg = SystemMessage::Watch {
            watchee: path.to_string(),
            watcher: key.clone(),
        };
        let mut watchers = BTreeMap::new();
        watchers.insert(watcher.id().clone(), watcher);
        self.watching.insert(
            path,
            WatchedRemote {
                id: watchee,
                watchers,
                key,
            },
        );
        self.send_system(msg)
    }

    /// A local watcher cancels its watch; the last one sends `Unwatch`.
    pub(crate) fn unwatch(&mut self, watchee: &ActorPath, watcher: &ActorId) -> Vec<AssocAction> {
        let Some(w) = self.watching.get_mut(watchee) else {
            return Vec::new();
        };
        w.watchers.remove(watcher);
        if !w.watchers.is_empty() {
            return Vec::new();
        }
        let key = w.key.clone();
        self.watching.remove(watchee);
        self.send_system(SystemMessage::Unwatch {
            watchee: watchee.to_string(),
            watcher: key,
        })
    }

    /// The peer reports `actor` terminated: its local watchers, to notify.
    pub(crate) fn remote_terminated(&mut self, actor: &ActorPath) -> Vec<(Watcher, ActorId)> {
        match self.watching.remove(actor) {
            Some(w) => w
                .watchers
                .into_values()
                .map(|watcher| (watcher, w.id.clone()))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Quarantines this incarnation: refs stop sending, and every local watcher of an actor
    /// there is returned, to be notified.
    pub(crate) fn quarantine(&mut self) -> Vec<(Watcher, ActorId)> {
        self.inc.quarantine();
        self.watched_by.clear();
        std::mem::take(&mut self.watching)
            .into_values()
            .flat_map(|w| {
                let id = w.id;
                w.watchers
                    .into_values()
                    .map(move |watcher| (watcher, id.clone()))
            })
            .collect()
    }
}
