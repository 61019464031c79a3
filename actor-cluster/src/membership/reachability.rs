//! Reachability: which observer currently fails to reach which member.
//!
//! Unreachability is an *observation*, not a member status: each observer's failure
//! detector verdicts are recorded under the observer, versioned by that observer's own
//! counter, and gossiped. A member is unreachable when at least one active observer's latest
//! record says so; it becomes reachable again once every such observer has recorded it
//! reachable.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::UniqueAddress;

/// What one observer last concluded about one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReachabilityStatus {
    /// The observer receives the subject's heartbeats.
    Reachable,
    /// The observer's failure detector suspects the subject.
    Unreachable,
}

/// One observation, stamped with the observer's counter at the time it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReachabilityRecord {
    /// The verdict.
    pub status: ReachabilityStatus,
    /// The observer's counter when it recorded the verdict; later records have higher ones.
    pub version: u64,
}

impl ReachabilityRecord {
    fn key(&self) -> (u64, ReachabilityStatus) {
        (self.version, self.status)
    }
}

/// All observers' records: observer → subject → latest record.
///
/// Merging keeps, per (observer, subject), the record with the higher version (ties: the
/// Unreachable one), which is a join: commutative, associative and idempotent. Reachable
/// records are kept rather than deleted, so a stale Unreachable record arriving later cannot
/// win; records of removed nodes are dropped by [`Reachability::remove_nodes`].
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{Reachability, UniqueAddress};
///
/// let a = UniqueAddress::new(Address::logical("sys", "a").unwrap(), 1);
/// let b = UniqueAddress::new(Address::logical("sys", "b").unwrap(), 2);
/// let mut r = Reachability::default();
/// r.unreachable(&a, &b);
/// assert!(r.is_unreachable_by_any(&b, |_| true));
/// r.reachable(&a, &b);
/// assert!(!r.is_unreachable_by_any(&b, |_| true));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reachability {
    records: BTreeMap<UniqueAddress, BTreeMap<UniqueAddress, ReachabilityRecord>>,
}

impl Reachability {
    /// The records, ordered by observer then subject.
    pub fn records(
        &self,
    ) -> impl Iterator<Item = (&UniqueAddress, &UniqueAddress, ReachabilityRecord)> {
        self.records.iter().flat_map(|(observer, subjects)| {
            subjects
                .iter()
                .map(move |(subject, record)| (observer, subject, *record))
        })
    }

    /// The record `observer` holds about `subject`, if any.
    pub fn record(
        &self,
        observer: &UniqueAddress,
        subject: &UniqueAddress,
    ) -> Option<ReachabilityRecord> {
        self.records.get(observer)?.get(subject).copied()
    }

    /// Sets a record directly (used by merges and tests; keeps the higher one).
    pub fn insert(
        &mut self,
        observer: UniqueAddress,
        subject: UniqueAddress,
        record: ReachabilityRecord,
    ) {
        let slot = self.records.entry(observer).or_default();
        match slot.get(&subject) {
            Some(existing) if existing.key() >= record.key() => {}
            _ => {
                slot.insert(subject, record);
            }
        }
    }

    fn observer_version(&self, observer: &UniqueAddress) -> u64 {
        self.records
            .get(observer)
            .and_then(|subjects| subjects.values().map(|r| r.version).max())
            .unwrap_or(0)
    }

    fn set(
        &mut self,
        observer: &UniqueAddress,
        subject: &UniqueAddress,
        status: ReachabilityStatus,
    ) -> bool {
        if observer == subject {
            return false;
        }
        let current = self.record(observer, subject).map(|r| r.status);
        let unchanged = match current {
            Some(existing) => existing == status,
            // No record means reachable.
            None => status == ReachabilityStatus::Reachable,
        };
        if unchanged {
            return false;
        }
        let version = self.observer_version(observer).saturating_add(1);
        self.records
            .entry(observer.clone())
            .or_default()
            .insert(subject.clone(), ReachabilityRecord { status, version });
        true
    }

    /// Records that `observer` suspects `subject`; returns whether anything changed.
    pub fn unreachable(&mut self, observer: &UniqueAddress, subject: &UniqueAddress) -> bool {
        self.set(observer, subject, ReachabilityStatus::Unreachable)
    }

    /// Records that `observer` hears `subject` again; returns whether anything changed.
    pub fn reachable(&mut self, observer: &UniqueAddress, subject: &UniqueAddress) -> bool {
        self.set(observer, subject, ReachabilityStatus::Reachable)
    }

    /// Whether some observer accepted by `counts` currently records `subject` unreachable.
    pub fn is_unreachable_by_any(
        &self,
        subject: &UniqueAddress,
        mut counts: impl FnMut(&UniqueAddress) -> bool,
    ) -> bool {
        self.records.iter().any(|(observer, subjects)| {
            counts(observer)
                && subjects
                    .get(subject)
                    .is_some_and(|r| r.status == ReachabilityStatus::Unreachable)
        })
    }

    /// The observers accepted by `counts` that record `subject` unreachable.
    pub fn observers_of(
        &self,
        subject: &UniqueAddress,
        mut counts: impl FnMut(&UniqueAddress) -> bool,
    ) -> BTreeSet<UniqueAddress> {
        self.records
            .iter()
            .filter(|(observer, subjects)| {
                counts(observer)
                    && subjects
                        .get(subject)
                        .is_some_and(|r| r.status == ReachabilityStatus::Unreachable)
            })
            .map(|(observer, _)| observer.clone())
            .collect()
    }

    /// The record-wise join of both tables.
    pub fn merged(&self, other: &Reachability) -> Reachability {
        let mut out = self.clone();
        for (observer, subject, record) in other.records() {
            out.insert(observer.clone(), subject.clone(), record);
        }
        out
    }

    /// Drops every record whose observer or subject is in `nodes`.
    pub fn remove_nodes(&mut self, nodes: &BTreeSet<UniqueAddress>) {
        self.records.retain(|observer, _| !nodes.contains(observer));
        for subjects in self.records.values_mut() {
            subjects.retain(|subject, _| !nodes.contains(subject));
        }
        self.records.retain(|_, subjects| !subjects.is_empty());
    }
}
