//! The shared table of in-memory leases: one slot per name, compare-and-set under one mutex.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::lease::handle::RenewOutcome;
use crate::lease::holder::{Holder, HolderEvent, LostNotice};
use crate::lease::{FencingToken, LeaseOwner, LossReason};

/// The registry that [`InMemoryLease`](super::InMemoryLease)s sharing it exclude each other
/// through.
///
/// Leases with the same name and the same registry are mutually exclusive; leases on different
/// registries never see each other. Share one registry between the "nodes" of a test by putting
/// it in an [`Arc`]. Time is read from `tokio::time`, so a test on a paused clock drives expiry.
///
/// A slot's holding expires `ttl` after its last acquire or renewal; expiry is evaluated when
/// the slot is next used, so no timer runs here. The fencing token of each name survives
/// release, expiry and [`clear`](Self::clear).
///
/// The methods after [`new`](Self::new) are test hooks: they inspect the table or inject the
/// failures a real backend can have (a holder that stops renewing, a revoked lease).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use actor_coordination::lease::{InMemoryLease, InMemoryLeaseRegistry, Lease, LeaseOwner, LeaseSettings};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Arc::new(InMemoryLeaseRegistry::new());
/// let owner = LeaseOwner::new("node-a", 1);
/// let lease = InMemoryLease::with_registry(LeaseSettings::builder("job", owner.clone()).build()?, registry.clone());
/// lease.acquire().await?;
/// assert_eq!(registry.holder_of("job"), Some(owner));
/// registry.clear();
/// assert!(!lease.check_lease());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct InMemoryLeaseRegistry {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    slots: BTreeMap<String, Slot>,
    paused: BTreeSet<LeaseOwner>,
}

/// One lease name.
#[derive(Debug, Default)]
struct Slot {
    /// The last token issued for this name; never decreases.
    last_token: u64,
    holding: Option<Holding>,
}

/// A live (or expired but not yet replaced) holding of a slot.
#[derive(Debug)]
struct Holding {
    owner: LeaseOwner,
    token: FencingToken,
    expires_at: Instant,
    /// The handles that hold it (several handles of one owner may share a holding); told when
    /// the holding ends other than by their own release.
    watchers: Vec<Watcher>,
}

#[derive(Debug)]
struct Watcher {
    holder: Weak<Holder>,
    generation: u64,
}

impl Holding {
    fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }

    /// Tells every watcher its holding ended; returns the notices to run after unlocking.
    fn revoke(self, reason: LossReason) -> Vec<LostNotice> {
        self.watchers
            .into_iter()
            .filter_map(|watcher| {
                let holder = watcher.holder.upgrade()?;
                holder.apply(HolderEvent::Lost {
                    generation: watcher.generation,
                    reason,
                })
            })
            .collect()
    }
}

fn notify(notices: Vec<LostNotice>) {
    for notice in notices {
        notice.notify();
    }
}

impl InMemoryLeaseRegistry {
    /// Creates an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compare-and-set: grants `name` to `owner` if the slot is free, expired, or already
    /// `owner`'s; registers the handle so that a later revocation reaches it.
    pub(crate) fn try_acquire(
        &self,
        name: &str,
        owner: &LeaseOwner,
        ttl: Duration,
        holder: &Arc<Holder>,
        generation: u64,
    ) -> Option<FencingToken> {
        let now = Instant::now();
        let watcher = Watcher {
            holder: Arc::downgrade(holder),
            generation,
        };
        let mut notices = Vec::new();
        let granted = {
            let mut table = self.table.lock();
            let frozen = table.paused.contains(owner);
            let slot = table.slots.entry(name.to_owned()).or_default();
            match &mut slot.holding {
                Some(holding) if holding.is_live(now) => {
                    if holding.owner == *owner && frozen {
                        // A frozen owner's writes do not reach the registry: acquiring again
                        // must not extend its holding behind `pause_renewals`' back.
                        None
                    } else if holding.owner == *owner {
                        // Idempotent: the same owner (perhaps through another handle) keeps
                        // its token, and the acquire counts as a renewal.
                        holding.expires_at = holding.expires_at.max(now + ttl);
                        holding.watchers.push(watcher);
                        Some(holding.token)
                    } else {
                        None
                    }
                }
                _ => {
                    if let Some(expired) = slot.holding.take() {
                        // The previous holder's local deadline has passed already; if its
                        // runtime has not yet reported that, report it now, before the new
                        // holder's acquire returns.
                        let reason = if expired.owner == *owner {
                            LossReason::DeadlinePassed
                        } else {
                            LossReason::TakenOver
                        };
                        notices = expired.revoke(reason);
                    }
                    slot.last_token += 1;
                    let token = FencingToken::new(slot.last_token);
                    slot.holding = Some(Holding {
                        owner: owner.clone(),
                        token,
                        expires_at: now + ttl,
                        watchers: vec![watcher],
                    });
                    Some(token)
                }
            }
        };
        notify(notices);
        granted
    }

    /// Extends `owner`'s live holding of `name` with `token` by `ttl` from now.
    pub(crate) fn renew(
        &self,
        name: &str,
        owner: &LeaseOwner,
        token: FencingToken,
        ttl: Duration,
    ) -> RenewOutcome {
        let now = Instant::now();
        let mut table = self.table.lock();
        let holding = table.slots.get_mut(name).and_then(|s| s.holding.as_mut());
        match holding {
            Some(h) if h.owner == *owner && h.token == token && h.is_live(now) => {
                h.expires_at = now + ttl;
                RenewOutcome::Renewed
            }
            Some(h) if h.owner != *owner && h.is_live(now) => {
                RenewOutcome::Lost(LossReason::TakenOver)
            }
            _ => RenewOutcome::Lost(LossReason::Revoked),
        }
    }

    /// Frees `owner`'s live holding of `name` with `token`; other handles sharing it are told.
    pub(crate) fn release(&self, name: &str, owner: &LeaseOwner, token: FencingToken) -> bool {
        let now = Instant::now();
        let released = {
            let mut table = self.table.lock();
            match table.slots.get_mut(name) {
                Some(slot)
                    if slot.holding.as_ref().is_some_and(|h| {
                        h.owner == *owner && h.token == token && h.is_live(now)
                    }) =>
                {
                    slot.holding.take()
                }
                _ => None,
            }
        };
        match released {
            Some(holding) => {
                // The releasing handle is idle already, so only other handles react.
                notify(holding.revoke(LossReason::Revoked));
                true
            }
            None => false,
        }
    }

    /// Returns `true` while [`pause_renewals`](Self::pause_renewals) holds for `owner`.
    pub(crate) fn renewals_paused(&self, owner: &LeaseOwner) -> bool {
        self.table.lock().paused.contains(owner)
    }

    /// Returns the owner whose holding of `name` is live now, if any.
    pub fn holder_of(&self, name: &str) -> Option<LeaseOwner> {
        let now = Instant::now();
        let table = self.table.lock();
        let holding = table.slots.get(name)?.holding.as_ref()?;
        holding.is_live(now).then(|| holding.owner.clone())
    }

    /// Returns the last fencing token issued for `name` (live or not), if any was.
    pub fn last_token_of(&self, name: &str) -> Option<FencingToken> {
        let table = self.table.lock();
        let slot = table.slots.get(name)?;
        (slot.last_token > 0).then(|| FencingToken::new(slot.last_token))
    }

    /// Ends the holding of `name` now, as if its TTL had run out; its holders' lost-callbacks
    /// run (reason [`LossReason::Revoked`]) before this returns. Returns whether it was live.
    pub fn force_expire(&self, name: &str) -> bool {
        let now = Instant::now();
        let holding = {
            let mut table = self.table.lock();
            table.slots.get_mut(name).and_then(|s| s.holding.take())
        };
        match holding {
            Some(holding) => {
                let was_live = holding.is_live(now);
                notify(holding.revoke(LossReason::Revoked));
                was_live
            }
            None => false,
        }
    }

    /// Ends every holding; lost-callbacks run (reason [`LossReason::Revoked`]) before this
    /// returns. Fencing tokens are kept, so they still grow afterwards.
    pub fn clear(&self) {
        let holdings: Vec<Holding> = {
            let mut table = self.table.lock();
            table
                .slots
                .values_mut()
                .filter_map(|slot| slot.holding.take())
                .collect()
        };
        for holding in holdings {
            notify(holding.revoke(LossReason::Revoked));
        }
    }

    /// Freezes `owner`'s renewals, like a process that stops being scheduled: its holdings are
    /// no longer extended, so they pass their local deadline and then expire. An acquire by
    /// the same owner while its holding is live is refused meanwhile (it would otherwise count
    /// as a renewal); once the holding expired, the owner may acquire afresh.
    pub fn pause_renewals(&self, owner: &LeaseOwner) {
        self.table.lock().paused.insert(owner.clone());
    }

    /// Undoes [`pause_renewals`](Self::pause_renewals) for `owner`.
    pub fn resume_renewals(&self, owner: &LeaseOwner) {
        self.table.lock().paused.remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    /// Acquires `name` for `owner` through a bare holder (no renewal task: a frozen runtime),
    /// recording its loss report.
    fn hold(
        registry: &InMemoryLeaseRegistry,
        owner: &LeaseOwner,
    ) -> (Arc<Holder>, FencingToken, Arc<Mutex<Option<LossReason>>>) {
        let holder = Arc::new(Holder::new("x", TTL - TTL / 10));
        let (generation, _) = holder.begin_attempt();
        let started = Instant::now();
        let token = registry
            .try_acquire("x", owner, TTL, &holder, generation)
            .expect("free slot");
        let report = Arc::new(Mutex::new(None));
        let sink = report.clone();
        let granted = holder.finish_granted(
            generation,
            token,
            started,
            Some(Box::new(move |reason| *sink.lock() = Some(reason))),
        );
        assert_eq!(granted, Some(token));
        (holder, token, report)
    }

    #[tokio::test(start_paused = true)]
    async fn a_take_over_reports_the_old_holders_loss_before_it_is_granted() {
        let registry = InMemoryLeaseRegistry::new();
        let (_a, a_token, a_report) = hold(&registry, &LeaseOwner::new("a", 1));
        tokio::time::advance(TTL).await;
        // a's runtime never ran its deadline timer; the take-over reports for it.
        assert_eq!(*a_report.lock(), None);
        let (_b, b_token, _) = hold(&registry, &LeaseOwner::new("b", 1));
        assert_eq!(*a_report.lock(), Some(LossReason::DeadlinePassed));
        assert!(b_token > a_token);
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_slot_is_not_taken_and_the_same_owner_shares_it() {
        let registry = InMemoryLeaseRegistry::new();
        let a_owner = LeaseOwner::new("a", 1);
        let (_a, token, _) = hold(&registry, &a_owner);
        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        let other = Arc::new(Holder::new("x", TTL));
        let (generation, _) = other.begin_attempt();
        let b_owner = LeaseOwner::new("b", 1);
        assert_eq!(
            registry.try_acquire("x", &b_owner, TTL, &other, generation),
            None
        );
        assert_eq!(
            registry.try_acquire("x", &a_owner, TTL, &other, generation),
            Some(token)
        );
        assert_eq!(
            registry.renew("x", &b_owner, token, TTL),
            RenewOutcome::Lost(LossReason::TakenOver)
        );
        assert_eq!(
            registry.renew("x", &a_owner, token, TTL),
            RenewOutcome::Renewed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_owner_cannot_extend_its_holding_by_acquiring_again() {
        let registry = InMemoryLeaseRegistry::new();
        let a_owner = LeaseOwner::new("a", 1);
        let (_a, _, _) = hold(&registry, &a_owner);
        registry.pause_renewals(&a_owner);
        tokio::time::advance(TTL / 2).await;
        // another handle of the same owner: no grant, and above all no extension
        let again = Arc::new(Holder::new("x", TTL - TTL / 10));
        let (generation, _) = again.begin_attempt();
        assert_eq!(
            registry.try_acquire("x", &a_owner, TTL, &again, generation),
            None
        );
        // the holding expires at its original time: another owner takes it then
        tokio::time::advance(TTL / 2).await;
        let (_b, _, _) = hold(&registry, &LeaseOwner::new("b", 1));
        assert_eq!(registry.holder_of("x"), Some(LeaseOwner::new("b", 1)));
        // once resumed, the same owner may share a live holding again
        registry.resume_renewals(&a_owner);
    }
}
