//! Delivery of published and sent messages: to the remote nodes' endpoints (one message
//! per node), to local subscribers, to one node of several in turn, or to dead letters.

use std::sync::atomic::Ordering;

use actor_core::{ActorRef, DeadLetterReason};

use super::DistributedPubSub;
use super::endpoint::EndpointState;
use super::routing::{RemoteTarget, Table, Targets};
use crate::wire::RemoteMessage;

impl DistributedPubSub {
    pub(super) fn tell_remote<M: RemoteMessage>(&self, target: &RemoteTarget, msg: M) -> bool {
        match target.get::<M>(&self.shared.remoting) {
            Some(r) => {
                r.tell(msg);
                self.shared.remote_sends.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Tells the local target (an endpoint's subscribers or a registered actor); the count
    /// of actors told, or the message back.
    pub(super) fn tell_local<M: RemoteMessage + Clone>(
        &self,
        targets: &Targets,
        msg: M,
    ) -> Result<usize, M> {
        let Some(local) = &targets.local else {
            return Err(msg);
        };
        if let Some(endpoint) = local.downcast_ref::<EndpointState<M>>() {
            return endpoint.deliver(msg);
        }
        match local.downcast_ref::<ActorRef<M>>() {
            Some(actor) => {
                actor.tell(msg);
                Ok(1)
            }
            None => Err(msg),
        }
    }

    /// Sends to every node of `targets` (the local one unless `skip_local`).
    pub(super) fn deliver_all<M: RemoteMessage + Clone>(
        &self,
        targets: &Targets,
        msg: M,
        skip_local: bool,
    ) -> Result<usize, M> {
        let mut sent = 0;
        for target in targets.remote.values() {
            if self.tell_remote(target, msg.clone()) {
                sent += 1;
            }
        }
        if skip_local {
            return if sent > 0 { Ok(sent) } else { Err(msg) };
        }
        match self.tell_local(targets, msg) {
            Ok(n) => Ok(sent + n),
            Err(_) if sent > 0 => Ok(sent),
            Err(msg) => Err(msg),
        }
    }

    /// Sends to one node of `targets`: the local one first with `local_affinity`, else the
    /// nodes in turn, skipping the ones `table` marks unreachable unless no other node is
    /// left.
    pub(super) fn deliver_one<M: RemoteMessage + Clone>(
        &self,
        table: &Table,
        targets: &Targets,
        msg: M,
        local_affinity: bool,
    ) -> bool {
        if local_affinity && targets.local.is_some() {
            return self.tell_local(targets, msg).is_ok();
        }
        let has_local = targets.local.is_some();
        let reachable = targets
            .remote
            .keys()
            .filter(|n| !table.is_unreachable(n))
            .count();
        // only suspected nodes hold it: try them anyway (a suspicion may be wrong)
        let avoid = reachable > 0 || has_local;
        let remote = if avoid {
            reachable
        } else {
            targets.remote.len()
        };
        let nodes = remote + usize::from(has_local);
        if nodes == 0 {
            return false;
        }
        let turn = targets.turn.fetch_add(1, Ordering::Relaxed) % nodes;
        let chosen = targets
            .remote
            .iter()
            .filter(|(n, _)| !avoid || !table.is_unreachable(n))
            .nth(turn);
        match chosen {
            Some((_, target)) => self.tell_remote(target, msg),
            None => self.tell_local(targets, msg).is_ok(),
        }
    }

    pub(super) fn dead_letter<M: Send + 'static>(&self, name: &str, msg: M) {
        tracing::debug!(
            topic_or_path = name,
            "pub-sub message nobody takes; dead letter"
        );
        self.shared.system.publish_dead_letter(
            self.mediator.path().clone(),
            msg,
            DeadLetterReason::UnknownRecipient,
        );
    }
}
