//! The shard coordinator of one entity type: an ordinary actor, run as a cluster singleton
//! (or spawned directly on one node). It decides where shards live, runs rebalances and
//! hand-offs, and notices dead regions.
//!
//! The lock table in runner storage is the truth of where a shard runs: a new coordinator
//! (after the singleton moved) first reads [`RunnerStorage::list_locks`] and maps each locked
//! shard to the region of the runner holding it once that region registers, so nothing is
//! lost when the coordinator moves. Shards locked by runners that do not register within one
//! lock ttl are treated as free (their locks have expired by then, or the new home's acquire
//! waits until they do).
//!
//! The lock table is read once, so a shard whose lock is taken just after that read (its
//! `HostShard` came from the previous coordinator) is not in it. Two things close that gap:
//! - every region registers again when the coordinator moved, reporting the shards it hosts
//!   (running or still acquiring); a reported shard nobody else is known to host is the
//!   reporting region's;
//! - a region whose shard is refused its lock [`REFUSALS_BEFORE_REPORT`] times in a row
//!   reports it ([`CoordinatorMsg::ShardLockRefused`]); the coordinator reads the lock's
//!   holder again and re-homes the shard to the holder's region, telling the reporter. So a
//!   shard given to a second region converges on the one region that holds its lock, and
//!   every message for it reaches that home. Reports are answered from one lock-table read
//!   at a time (after a crash every shard of the dead node is refused until its lock
//!   expires, which must not turn into one read per shard and report).
//!
//! With remember-entities the coordinator also keeps every shard's remembered entity ids,
//! as the hosting regions report them (each change, and the whole set after every
//! registration), and gives them to the shard's next home, also when its region crashed.
//!
//! [`REFUSALS_BEFORE_REPORT`]: super::REFUSALS_BEFORE_REPORT
//! [`REMEMBER_CHUNK_BYTES`]: super::REMEMBER_CHUNK_BYTES
//! [`RunnerStorage::list_locks`]: actor_coordination::runner_storage::RunnerStorage::list_locks

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actor_coordination::runner_storage::RunnerStorage;
use actor_core::{Actor, ActorRef, ActorResult, Context, Props};

use super::allocation::{Allocation, ShardAllocationStrategy};
use super::hand_off::{HandOff, HandOffAction, HandOffEvent, HandOffState};
use super::protocol::{CoordinatorMsg, RegionCtl, ShardDistribution, ShardMapChanged, chunk_ids};
use super::settings::REMEMBER_CHUNK_BYTES;
use super::storage_call;

/// What a coordinator is built from.
#[derive(Clone)]
pub struct CoordinatorSettings {
    /// The entity type (also the shard group in the lock table).
    pub type_name: String,
    /// The lock table.
    pub storage: Arc<dyn RunnerStorage>,
    /// Where shards go.
    pub strategy: Arc<dyn ShardAllocationStrategy>,
    /// Interval of the periodic rebalance.
    pub rebalance_interval: Duration,
    /// Longest a hand-off may take.
    pub hand_off_timeout: Duration,
    /// Retry interval (reading the lock table).
    pub retry_interval: Duration,
    /// The storage's lock ttl: how long locked shards wait for their holder to register.
    pub lock_ttl: Duration,
    /// Regions that must be registered before the first allocation.
    pub min_regions: usize,
    /// The number of shards: shard numbers from peers at or above it are refused.
    pub number_of_shards: u32,
}

impl std::fmt::Debug for CoordinatorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorSettings")
            .field("type_name", &self.type_name)
            .field("rebalance_interval", &self.rebalance_interval)
            .field("hand_off_timeout", &self.hand_off_timeout)
            .finish_non_exhaustive()
    }
}

struct RegionEntry {
    ctl: ActorRef<RegionCtl>,
    runner: String,
    shutting_down: bool,
}

/// The coordinator actor; its props come from [`ShardCoordinator::props`].
pub struct ShardCoordinator {
    settings: CoordinatorSettings,
    rebuilt: bool,
    regions: BTreeMap<String, RegionEntry>,
    proxies: BTreeMap<String, ActorRef<RegionCtl>>,
    shards: BTreeMap<u32, String>,
    /// Locked in storage by a runner whose region has not registered (yet).
    orphans: BTreeMap<u32, String>,
    hand_offs: BTreeMap<u32, HandOff>,
    /// Home requests waiting for a hand-off or an orphan to resolve.
    deferred: BTreeMap<u32, Vec<ActorRef<RegionCtl>>>,
    /// Remembered entities per shard (remember-entities), kept as regions report them, so
    /// they outlive a crashed region.
    remembered: BTreeMap<u32, BTreeSet<String>>,
    /// Whether `min_regions` was reached once (later departures do not stop allocation).
    started_allocating: bool,
    /// Shards reported refused (with every region that reported them, once each), waiting
    /// for a lock-table read.
    refused: BTreeMap<u32, Vec<ActorRef<RegionCtl>>>,
    /// The refused shards the lock-table read under way answers.
    reading_holders: Option<BTreeMap<u32, Vec<ActorRef<RegionCtl>>>>,
}

impl ShardCoordinator {
    /// The coordinator's props (hand them to the singleton manager, or spawn them on one
    /// node).
    pub fn props(settings: CoordinatorSettings) -> Props<Self> {
        Props::new(move || ShardCoordinator {
            settings: settings.clone(),
            rebuilt: false,
            regions: BTreeMap::new(),
            proxies: BTreeMap::new(),
            shards: BTreeMap::new(),
            orphans: BTreeMap::new(),
            hand_offs: BTreeMap::new(),
            deferred: BTreeMap::new(),
            remembered: BTreeMap::new(),
            started_allocating: false,
            refused: BTreeMap::new(),
            reading_holders: None,
        })
    }

    /// Reads this type's live locks (shard number, holder runner id), bounded by the lock
    /// ttl.
    fn group_locks(
        &self,
    ) -> impl Future<Output = Result<Vec<(u32, String)>, String>> + Send + 'static {
        let storage = self.settings.storage.clone();
        let group = self.settings.type_name.clone();
        let bound = self.settings.lock_ttl;
        async move {
            storage_call::bounded("list_locks", bound, storage.list_locks())
                .await
                .map(|locks| {
                    locks
                        .into_iter()
                        .filter(|l| l.shard.group() == group)
                        .map(|l| (l.shard.number(), l.holder.to_string()))
                        .collect()
                })
                .map_err(|e| e.to_string())
        }
    }

    fn read_locks(&self, ctx: &mut Context<Self>) {
        ctx.pipe_to_self(self.group_locks(), |locks| CoordinatorMsg::LocksListed {
            locks,
        });
    }

    /// Reads the lock table for the refused shards reported so far, unless a read is under
    /// way (its answer then starts the next one): at most one read at a time, however many
    /// shards are refused (after a crash every shard of the dead node is, until its locks
    /// expire).
    fn read_holders(&mut self, ctx: &mut Context<Self>) {
        if self.reading_holders.is_some() || self.refused.is_empty() {
            return;
        }
        self.reading_holders = Some(std::mem::take(&mut self.refused));
        ctx.pipe_to_self(self.group_locks(), |locks| {
            CoordinatorMsg::LockHoldersRead { locks }
        });
    }

    /// Re-homes `shard` to the region whose runner holds its lock (read after the
    /// `reporters`' acquires were refused), and tells the reporters where it lives.
    fn rehome_to_holder(
        &mut self,
        shard: u32,
        reporters: Vec<ActorRef<RegionCtl>>,
        holder: &str,
        ctx: &mut Context<Self>,
    ) {
        if self.hand_offs.contains_key(&shard) {
            // Moving already: the hand-off decides its next home.
            return;
        }
        let Some((key, home)) = self
            .regions
            .iter()
            .find(|(_, r)| r.runner == holder)
            .map(|(k, r)| (k.clone(), r.ctl.clone()))
        else {
            // The holder has no region here (yet): its lock expires, or it registers and
            // claims the shard.
            tracing::debug!(
                shard,
                holder,
                "refused shard held by an unregistered runner"
            );
            return;
        };
        if self.shards.get(&shard) != Some(&key) {
            tracing::warn!(
                shard,
                from = ?self.shards.get(&shard),
                to = %key,
                type_name = %self.settings.type_name,
                "shard re-homed to the region holding its lock"
            );
            self.orphans.remove(&shard);
            self.shards.insert(shard, key.clone());
            self.host(&home, shard);
            self.publish(ctx);
            self.move_off_if_leaving(shard, &key, ctx);
        }
        for reporter in reporters {
            if reporter.path() != home.path() {
                reporter.tell(RegionCtl::ShardHome {
                    shard,
                    home: home.clone(),
                });
            }
        }
        self.answer_deferred(shard, ctx);
    }

    /// Merges the shards a registering region reports hosting: one that nobody else is known
    /// to host (or that the lock table gives to this region's runner) is this region's. One
    /// allocated to another region, locked by another runner or being handed off stays as it
    /// is: whichever side is wrong has its lock refused and is reconciled through
    /// [`CoordinatorMsg::ShardLockRefused`].
    fn merge_hosted(&mut self, key: &str, runner: &str, hosted: Vec<u32>, ctx: &mut Context<Self>) {
        for shard in hosted {
            if self.hand_offs.contains_key(&shard)
                || self.orphans.get(&shard).is_some_and(|h| h != runner)
            {
                continue;
            }
            match self.shards.get(&shard) {
                Some(home) if home != key => {
                    tracing::warn!(
                        shard,
                        reported_by = key,
                        allocated_to = %home,
                        "a region reports a shard allocated elsewhere; the lock decides"
                    );
                    continue;
                }
                Some(_) => {}
                None => {
                    self.shards.insert(shard, key.to_owned());
                }
            }
            self.orphans.remove(&shard);
            self.answer_deferred(shard, ctx);
            self.move_off_if_leaving(shard, key, ctx);
        }
    }

    /// A shard found at a region that is leaving (it was not among the shards its graceful
    /// shutdown moved away) is moved away too, so the shutdown can finish.
    fn move_off_if_leaving(&mut self, shard: u32, key: &str, ctx: &mut Context<Self>) {
        if self.regions.get(key).is_some_and(|r| r.shutting_down) {
            self.begin_hand_off(shard, ctx);
        }
    }

    /// Tells `home` to host `shard`, with the shard's remembered entities (cut into messages
    /// of at most [`REMEMBER_CHUNK_BYTES`] of ids).
    fn host(&self, home: &ActorRef<RegionCtl>, shard: u32) {
        let mut chunks = self
            .remembered
            .get(&shard)
            .map(|set| chunk_ids(set, REMEMBER_CHUNK_BYTES))
            .unwrap_or_default()
            .into_iter();
        home.tell(RegionCtl::HostShard {
            shard,
            entities: chunks.next().unwrap_or_default(),
        });
        for entities in chunks {
            home.tell(RegionCtl::RememberEntities { shard, entities });
        }
    }

    fn distribution(&self) -> ShardDistribution {
        let mut regions: BTreeMap<String, BTreeSet<u32>> = self
            .regions
            .keys()
            .map(|k| (k.clone(), BTreeSet::new()))
            .collect();
        for (shard, key) in &self.shards {
            regions.entry(key.clone()).or_default().insert(*shard);
        }
        ShardDistribution {
            regions,
            handing_off: self.hand_offs.keys().copied().collect(),
        }
    }

    /// The allocation among regions that may take shards.
    fn eligible(&self) -> Allocation {
        let mut current: Allocation = self
            .regions
            .iter()
            .filter(|(_, r)| !r.shutting_down)
            .map(|(k, _)| (k.clone(), BTreeSet::new()))
            .collect();
        for (shard, key) in &self.shards {
            if let Some(set) = current.get_mut(key) {
                set.insert(*shard);
            }
        }
        current
    }

    fn publish(&self, ctx: &Context<Self>) {
        ctx.system().event_stream().publish(ShardMapChanged {
            type_name: self.settings.type_name.clone(),
            distribution: self.distribution(),
        });
    }

    fn all_region_refs(&self) -> Vec<(String, ActorRef<RegionCtl>)> {
        self.regions
            .iter()
            .map(|(k, r)| (k.clone(), r.ctl.clone()))
            .chain(self.proxies.iter().map(|(k, r)| (k.clone(), r.clone())))
            .collect()
    }

    /// Allocates `shard` (if some region may take it) and tells its new home.
    fn allocate(&mut self, shard: u32, ctx: &Context<Self>) -> Option<ActorRef<RegionCtl>> {
        if let Some(key) = self.shards.get(&shard) {
            return self.regions.get(key).map(|r| r.ctl.clone());
        }
        if !self.started_allocating {
            if self.regions.len() < self.settings.min_regions {
                return None;
            }
            self.started_allocating = true;
        }
        let key = self.settings.strategy.allocate(shard, &self.eligible())?;
        let home = self.regions.get(&key)?.ctl.clone();
        self.shards.insert(shard, key);
        self.host(&home, shard);
        self.publish(ctx);
        Some(home)
    }

    /// Keeps `region`'s question for `shard` until its home is known (once per region: a
    /// region asks again every retry interval while it waits).
    fn defer(&mut self, shard: u32, region: ActorRef<RegionCtl>) {
        add_once(self.deferred.entry(shard).or_default(), region);
    }

    fn answer_deferred(&mut self, shard: u32, ctx: &Context<Self>) {
        let Some(waiting) = self.deferred.remove(&shard) else {
            return;
        };
        if let Some(home) = self.allocate(shard, ctx) {
            for region in waiting {
                region.tell(RegionCtl::ShardHome {
                    shard,
                    home: home.clone(),
                });
            }
        }
    }

    fn begin_hand_off(&mut self, shard: u32, ctx: &mut Context<Self>) {
        if self.hand_offs.contains_key(&shard) {
            return;
        }
        let Some(from) = self.shards.get(&shard).cloned() else {
            return;
        };
        let everyone = self.all_region_refs();
        for (_, region) in &everyone {
            region.tell(RegionCtl::BeginHandOff { shard });
        }
        let keys = everyone.into_iter().map(|(k, _)| k).collect();
        let (hand_off, actions) = HandOff::begin(shard, from, keys);
        self.hand_offs.insert(shard, hand_off);
        ctx.start_single_timer(
            format!("hand-off-{shard}"),
            self.settings.hand_off_timeout,
            CoordinatorMsg::HandOffTimeout { shard },
        );
        self.run_hand_off_actions(shard, actions, ctx);
        self.publish(ctx);
    }

    fn hand_off_event(&mut self, shard: u32, event: HandOffEvent, ctx: &mut Context<Self>) {
        let Some(hand_off) = self.hand_offs.get_mut(&shard) else {
            return;
        };
        let actions = hand_off.on_event(event);
        self.run_hand_off_actions(shard, actions, ctx);
    }

    fn run_hand_off_actions(
        &mut self,
        shard: u32,
        actions: Vec<HandOffAction>,
        ctx: &mut Context<Self>,
    ) {
        for action in actions {
            let Some(hand_off) = self.hand_offs.get(&shard) else {
                return;
            };
            let from = hand_off.from.clone();
            match action {
                HandOffAction::SendHandOff => {
                    if let Some(region) = self.regions.get(&from) {
                        region.ctl.tell(RegionCtl::HandOff { shard });
                    }
                }
                HandOffAction::Complete | HandOffAction::Abort => {
                    self.hand_offs.remove(&shard);
                    ctx.cancel_timer(format!("hand-off-{shard}"));
                    if action == HandOffAction::Abort
                        && self.shards.get(&shard) == Some(&from)
                        && let Some(region) = self.regions.get(&from)
                    {
                        // It stays at its old home, which may have stopped it already (told
                        // to hand off, its entities slow to stop) and dropped its remembered
                        // entities: host it there again, with them.
                        self.host(&region.ctl, shard);
                    }
                    if action == HandOffAction::Complete {
                        if self.shards.get(&shard) == Some(&from) {
                            self.shards.remove(&shard);
                        }
                        // Start it at its new home at once, so the move completes without
                        // waiting for the next message.
                        self.deferred.entry(shard).or_default();
                    }
                    self.answer_deferred(shard, ctx);
                    self.finish_shutdown_of(&from);
                    self.publish(ctx);
                }
            }
        }
    }

    /// A leaving region with no shards and no hand-off left is done.
    fn finish_shutdown_of(&mut self, key: &str) {
        let Some(region) = self.regions.get(key) else {
            return;
        };
        if !region.shutting_down
            || self.shards.values().any(|k| k == key)
            || self.hand_offs.values().any(|h| h.from == key)
        {
            return;
        }
        if let Some(region) = self.regions.remove(key) {
            region.ctl.tell(RegionCtl::ShutdownDone);
        }
    }

    fn region_gone(&mut self, key: &str, ctx: &mut Context<Self>) {
        let runner = match self.regions.remove(key) {
            Some(entry) => entry.runner,
            None if self.proxies.remove(key).is_some() => "proxy".to_owned(),
            None => return,
        };
        tracing::info!(
            region = key,
            runner,
            type_name = %self.settings.type_name,
            "region terminated"
        );
        let lost: Vec<u32> = self
            .shards
            .iter()
            .filter(|(_, k)| k.as_str() == key)
            .map(|(s, _)| *s)
            .collect();
        for shard in &lost {
            self.shards.remove(shard);
        }
        let moving: Vec<u32> = self.hand_offs.keys().copied().collect();
        for shard in moving {
            self.hand_off_event(shard, HandOffEvent::RegionGone(key.to_owned()), ctx);
        }
        for (_, region) in self.all_region_refs() {
            region.tell(RegionCtl::RegionTerminated {
                region: key.to_owned(),
            });
        }
        // Re-home the lost shards at once; their new homes acquire the locks once the dead
        // runner's locks expire.
        for shard in lost {
            self.deferred.entry(shard).or_default();
            self.answer_deferred(shard, ctx);
        }
        self.publish(ctx);
    }

    fn rebalance(&mut self, ctx: &mut Context<Self>) {
        let in_progress: BTreeSet<u32> = self.hand_offs.keys().copied().collect();
        let moving = self
            .settings
            .strategy
            .rebalance(&self.eligible(), &in_progress);
        for shard in moving {
            self.begin_hand_off(shard, ctx);
        }
    }

    /// The shard a message from a peer names, if it names one outside `0..number_of_shards`
    /// (a buggy region, or a custom extractor breaking its contract).
    fn out_of_range(&self, msg: &CoordinatorMsg) -> Option<u32> {
        let shard = match msg {
            CoordinatorMsg::GetShardHome { shard, .. }
            | CoordinatorMsg::BeginHandOffAck { shard, .. }
            | CoordinatorMsg::ShardStopped { shard }
            | CoordinatorMsg::ShardLockRefused { shard, .. }
            | CoordinatorMsg::EntitiesChanged { shard, .. } => *shard,
            _ => return None,
        };
        (shard >= self.settings.number_of_shards).then_some(shard)
    }

    fn on_msg(&mut self, mut msg: CoordinatorMsg, ctx: &mut Context<Self>) {
        if let Some(shard) = self.out_of_range(&msg) {
            tracing::warn!(
                shard,
                number_of_shards = self.settings.number_of_shards,
                type_name = %self.settings.type_name,
                "message for a shard out of range ignored"
            );
            return;
        }
        if let CoordinatorMsg::Register { hosted, .. } = &mut msg {
            let n = self.settings.number_of_shards;
            hosted.retain(|shard| *shard < n);
        }
        match msg {
            CoordinatorMsg::Register {
                region,
                runner,
                proxy,
                hosted,
            } => {
                let key = region.path().to_string();
                region.tell(RegionCtl::Registered {
                    coordinator: ctx.myself().clone(),
                });
                if proxy {
                    if let std::collections::btree_map::Entry::Vacant(entry) =
                        self.proxies.entry(key.clone())
                    {
                        ctx.watch_with(&region, CoordinatorMsg::RegionTerminated { region: key });
                        entry.insert(region);
                    }
                    return;
                }
                match self.regions.get(&key) {
                    Some(entry) if entry.runner == runner => {
                        // Registered again (the retry, or after this coordinator started):
                        // what it hosts now still counts.
                        self.merge_hosted(&key, &runner, hosted, ctx);
                        self.publish(ctx);
                        return;
                    }
                    Some(entry) => {
                        // The node restarted at the same address (a new incarnation) before
                        // the old region's death was noticed: the old region is gone, its
                        // shards are re-homed, and the new one registers in its place.
                        tracing::info!(
                            region = %key,
                            old = %entry.runner,
                            new = %runner,
                            "region re-registered with a new incarnation"
                        );
                        let old = entry.ctl.clone();
                        ctx.unwatch(&old);
                        self.region_gone(&key, ctx);
                    }
                    None => {}
                }
                ctx.watch_with(
                    &region,
                    CoordinatorMsg::RegionTerminated {
                        region: key.clone(),
                    },
                );
                let claimed: Vec<u32> = self
                    .orphans
                    .iter()
                    .filter(|(_, holder)| **holder == runner)
                    .map(|(s, _)| *s)
                    .collect();
                self.regions.insert(
                    key.clone(),
                    RegionEntry {
                        ctl: region,
                        runner: runner.clone(),
                        shutting_down: false,
                    },
                );
                for shard in claimed {
                    self.orphans.remove(&shard);
                    self.shards.insert(shard, key.clone());
                    self.answer_deferred(shard, ctx);
                }
                self.merge_hosted(&key, &runner, hosted, ctx);
                // Shards nobody could take before (no region) can go here now.
                let waiting: Vec<u32> = self
                    .deferred
                    .keys()
                    .filter(|s| !self.orphans.contains_key(s) && !self.hand_offs.contains_key(s))
                    .copied()
                    .collect();
                for shard in waiting {
                    self.answer_deferred(shard, ctx);
                }
                self.publish(ctx);
                self.rebalance(ctx);
            }
            CoordinatorMsg::GetShardHome { shard, region } => {
                if self.hand_offs.contains_key(&shard) || self.orphans.contains_key(&shard) {
                    self.defer(shard, region);
                    return;
                }
                match self.allocate(shard, ctx) {
                    Some(home) => region.tell(RegionCtl::ShardHome { shard, home }),
                    None => self.defer(shard, region),
                }
            }
            CoordinatorMsg::BeginHandOffAck { shard, region } => {
                self.hand_off_event(shard, HandOffEvent::Ack(region), ctx);
            }
            CoordinatorMsg::ShardStopped { shard } => {
                // A late report of a hand-off that was aborted (or never asked for) changes
                // nothing.
                if self
                    .hand_offs
                    .get(&shard)
                    .is_some_and(|h| h.state == HandOffState::Stopping)
                {
                    self.hand_off_event(shard, HandOffEvent::Stopped, ctx);
                }
            }
            CoordinatorMsg::EntitiesChanged {
                shard,
                region,
                started,
                stopped,
            } => {
                if self.shards.get(&shard) == Some(&region) {
                    let set = self.remembered.entry(shard).or_default();
                    set.extend(started);
                    for id in &stopped {
                        set.remove(id);
                    }
                    if set.is_empty() {
                        self.remembered.remove(&shard);
                    }
                }
            }
            CoordinatorMsg::GracefulShutdown { region } => {
                let key = region.path().to_string();
                let Some(entry) = self.regions.get_mut(&key) else {
                    region.tell(RegionCtl::ShutdownDone);
                    return;
                };
                entry.shutting_down = true;
                let shards: Vec<u32> = self
                    .shards
                    .iter()
                    .filter(|(_, k)| **k == key)
                    .map(|(s, _)| *s)
                    .collect();
                for shard in shards {
                    self.begin_hand_off(shard, ctx);
                }
                self.finish_shutdown_of(&key);
            }
            CoordinatorMsg::GetDistribution { reply } => {
                reply.reply(self.distribution());
            }
            CoordinatorMsg::RegionTerminated { region } => self.region_gone(&region, ctx),
            CoordinatorMsg::Rebalance => {
                self.rebalance(ctx);
                ctx.start_single_timer(
                    "rebalance",
                    self.settings.rebalance_interval,
                    CoordinatorMsg::Rebalance,
                );
            }
            CoordinatorMsg::HandOffTimeout { shard } => {
                tracing::warn!(shard, type_name = %self.settings.type_name, "hand-off timed out");
                self.hand_off_event(shard, HandOffEvent::TimedOut, ctx);
            }
            CoordinatorMsg::OrphansExpired => {
                let orphans: Vec<u32> = std::mem::take(&mut self.orphans).into_keys().collect();
                for shard in orphans {
                    self.answer_deferred(shard, ctx);
                }
            }
            CoordinatorMsg::ShardLockRefused { shard, region } => {
                if !self.hand_offs.contains_key(&shard) {
                    add_once(self.refused.entry(shard).or_default(), region);
                    self.read_holders(ctx);
                }
            }
            CoordinatorMsg::LockHoldersRead { locks } => {
                let asked = self.reading_holders.take().unwrap_or_default();
                match locks {
                    Ok(locks) => {
                        let holders: BTreeMap<u32, String> = locks.into_iter().collect();
                        for (shard, reporters) in asked {
                            // A free lock: the refused regions take it on their next try.
                            if let Some(holder) = holders.get(&shard) {
                                self.rehome_to_holder(shard, reporters, holder, ctx);
                            }
                        }
                    }
                    Err(error) => {
                        // The regions report again while they are refused.
                        tracing::warn!(%error, "could not read the locks of refused shards");
                    }
                }
                self.read_holders(ctx);
            }
            CoordinatorMsg::LocksListed { .. } => {}
        }
    }
}

/// Adds `region` to `regions` unless a region with its path is there already.
fn add_once(regions: &mut Vec<ActorRef<RegionCtl>>, region: ActorRef<RegionCtl>) {
    if !regions.iter().any(|r| r.path() == region.path()) {
        regions.push(region);
    }
}

impl Actor for ShardCoordinator {
    type Msg = CoordinatorMsg;

    async fn started(&mut self, ctx: &mut Context<Self>) -> ActorResult {
        self.read_locks(ctx);
        Ok(())
    }

    async fn handle(&mut self, msg: CoordinatorMsg, ctx: &mut Context<Self>) -> ActorResult {
        if let CoordinatorMsg::LocksListed { locks } = msg {
            if self.rebuilt {
                return Ok(());
            }
            match locks {
                Ok(locks) => {
                    self.orphans = locks.into_iter().collect();
                    // Shards are locked: the cluster was serving before this coordinator
                    // (it moved), so `min_regions` was reached already.
                    self.started_allocating |= !self.orphans.is_empty();
                    self.rebuilt = true;
                    if !self.orphans.is_empty() {
                        ctx.start_single_timer(
                            "orphans",
                            self.settings.lock_ttl,
                            CoordinatorMsg::OrphansExpired,
                        );
                    }
                    ctx.start_single_timer(
                        "rebalance",
                        self.settings.rebalance_interval,
                        CoordinatorMsg::Rebalance,
                    );
                    ctx.unstash_all();
                }
                Err(error) => {
                    tracing::warn!(%error, "coordinator could not read the lock table; retrying");
                    let storage_retry = self.settings.retry_interval;
                    ctx.start_single_timer("read-locks", storage_retry, CoordinatorMsg::Rebalance);
                }
            }
            return Ok(());
        }
        if !self.rebuilt {
            if matches!(msg, CoordinatorMsg::Rebalance) {
                // The retry of the lock-table read.
                self.read_locks(ctx);
            } else if ctx.stash(msg).is_err() {
                tracing::warn!("coordinator stash full while rebuilding: message dropped");
            }
            return Ok(());
        }
        self.on_msg(msg, ctx);
        Ok(())
    }
}
