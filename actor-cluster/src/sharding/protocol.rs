//! The messages between regions and the coordinator, and the introspection answers. All of
//! them cross nodes ([`RemoteMessage`]); regions are named by the path of their control actor
//! (the *region key*).

use std::collections::{BTreeMap, BTreeSet};

use actor_core::{ActorRef, ReplyTo};
use serde::{Deserialize, Serialize};

use crate::wire::RemoteMessage;

/// What the coordinator of one entity type receives.
#[derive(Debug, Serialize, Deserialize)]
pub enum CoordinatorMsg {
    /// A region (or, with `proxy`, a proxy that hosts nothing) announces itself; `runner` is
    /// its runner id (`host:port#incarnation`), the holder name of its shard locks. It sends
    /// it again whenever the coordinator moved, with the shards it hosts (also those still
    /// acquiring their lock), so a new coordinator learns of shards locked after it read the
    /// lock table.
    Register {
        /// The region's control actor.
        region: ActorRef<RegionCtl>,
        /// Its runner id.
        runner: String,
        /// A proxy: never allocated a shard.
        proxy: bool,
        /// The shards this region hosts now (running or acquiring their lock). Their
        /// remembered entities follow in [`CoordinatorMsg::EntitiesChanged`] messages once the
        /// registration is answered (kept out of this one message, whose size must stay
        /// far below the transport's frame limit).
        hosted: Vec<u32>,
    },
    /// Where does `shard` live? Answered with [`RegionCtl::ShardHome`] to `region`.
    GetShardHome {
        /// The shard.
        shard: u32,
        /// Who asks.
        region: ActorRef<RegionCtl>,
    },
    /// `region` stopped routing to `shard` (answer to [`RegionCtl::BeginHandOff`]).
    BeginHandOffAck {
        /// The shard.
        shard: u32,
        /// The region key.
        region: String,
    },
    /// The old home stopped `shard` and released its lock (answer to [`RegionCtl::HandOff`]).
    /// Its remembered entities are those the coordinator was told of
    /// ([`CoordinatorMsg::EntitiesChanged`], sent before this).
    ShardStopped {
        /// The shard.
        shard: u32,
    },
    /// `region` leaves: move all its shards away, then answer [`RegionCtl::ShutdownDone`].
    GracefulShutdown {
        /// The region leaving.
        region: ActorRef<RegionCtl>,
    },
    /// Asks for the current allocation.
    GetDistribution {
        /// Where the answer goes.
        reply: ReplyTo<ShardDistribution>,
    },
    /// `region`'s shard could not take its lock
    /// [`REFUSALS_BEFORE_REPORT`](super::REFUSALS_BEFORE_REPORT) times in a row: another
    /// runner holds it. The coordinator reads the lock's holder again and re-homes the shard
    /// to the holder's region (answering `region` with [`RegionCtl::ShardHome`]).
    ShardLockRefused {
        /// The shard.
        shard: u32,
        /// The region whose shard was refused.
        region: ActorRef<RegionCtl>,
    },
    /// `region` started (`started`) or passivated (`stopped`) remembered entities of `shard`
    /// (remember-entities), or reports the ones it remembers after registering (in chunks
    /// of at most [`REMEMBER_CHUNK_BYTES`](super::REMEMBER_CHUNK_BYTES) of ids): the
    /// coordinator keeps every shard's remembered set, so the entities restart at the
    /// shard's next home also when their region crashed.
    EntitiesChanged {
        /// The shard.
        shard: u32,
        /// The region key.
        region: String,
        /// Entity ids now remembered.
        started: Vec<String>,
        /// Entity ids no longer remembered.
        stopped: Vec<String>,
    },
    /// Internal: a watched region terminated. Local only: never sent or accepted over the wire.
    #[serde(skip)]
    RegionTerminated {
        /// The region key.
        region: String,
    },
    /// Internal: the periodic rebalance check. Local only: never sent or accepted over the wire.
    #[serde(skip)]
    Rebalance,
    /// Internal: the lock table read at start (shard number, holder runner id), or the error. Local only: never sent or accepted over the wire.
    #[serde(skip)]
    LocksListed {
        /// The live locks of this type's shard group.
        locks: Result<Vec<(u32, String)>, String>,
    },
    /// Internal: shards still locked by runners that never registered are considered free. Local only: never sent or accepted over the wire.
    #[serde(skip)]
    OrphansExpired,
    /// Internal: the hand-off of `shard` timed out. Local only: never sent or accepted over the wire.
    #[serde(skip)]
    HandOffTimeout {
        /// The shard.
        shard: u32,
    },
    /// Internal: the lock table read to answer [`CoordinatorMsg::ShardLockRefused`] reports
    /// (shard number, holder runner id), or the error. Local only: never sent or accepted
    /// over the wire.
    #[serde(skip)]
    LockHoldersRead {
        /// The live locks of this type's shard group.
        locks: Result<Vec<(u32, String)>, String>,
    },
}

/// Splits `ids` into chunks of at most `limit` bytes of ids each (an id longer than `limit`
/// goes alone), in order: entity lists travel in messages well below the frame limit.
pub(crate) fn chunk_ids<'a>(
    ids: impl IntoIterator<Item = &'a String>,
    limit: usize,
) -> Vec<Vec<String>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<String> = Vec::new();
    let mut bytes = 0;
    for id in ids {
        if bytes + id.len() > limit && !chunk.is_empty() {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += id.len();
        chunk.push(id.clone());
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

impl RemoteMessage for CoordinatorMsg {
    const MANIFEST: &'static str = "sharding.CoordinatorMsg";
}

/// What a region's control actor receives from the coordinator.
#[derive(Debug, Serialize, Deserialize)]
pub enum RegionCtl {
    /// Registration accepted by `coordinator` (the actual coordinator, watched by the region).
    Registered {
        /// The coordinator.
        coordinator: ActorRef<CoordinatorMsg>,
    },
    /// `shard` lives at `home`.
    ShardHome {
        /// The shard.
        shard: u32,
        /// The home region's control actor.
        home: ActorRef<RegionCtl>,
    },
    /// Host `shard` (acquire its lock, start it, and start `entities`). More remembered
    /// entities may follow in [`RegionCtl::RememberEntities`] (a list is cut into messages
    /// of at most [`REMEMBER_CHUNK_BYTES`](super::REMEMBER_CHUNK_BYTES) of ids).
    HostShard {
        /// The shard.
        shard: u32,
        /// Entity ids to start at once (remember-entities).
        entities: Vec<String>,
    },
    /// More remembered entities of `shard` to start (the rest of a [`RegionCtl::HostShard`]'s
    /// list).
    RememberEntities {
        /// The shard.
        shard: u32,
        /// Entity ids to start (remember-entities).
        entities: Vec<String>,
    },
    /// Stop routing to `shard`; buffer its messages; acknowledge.
    BeginHandOff {
        /// The shard.
        shard: u32,
    },
    /// Stop `shard` here (its entities get the stop message), release its lock, report.
    HandOff {
        /// The shard.
        shard: u32,
    },
    /// The region `region` is gone: forget the homes there.
    RegionTerminated {
        /// The region key.
        region: String,
    },
    /// A graceful shutdown finished: every shard moved away.
    ShutdownDone,
}

impl RemoteMessage for RegionCtl {
    const MANIFEST: &'static str = "sharding.RegionCtl";
}

/// The coordinator's view: which region hosts which shards, and which shards are moving.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardDistribution {
    /// Region key to the shards it hosts (every registered region, also with none).
    pub regions: BTreeMap<String, BTreeSet<u32>>,
    /// Shards being handed off.
    pub handing_off: BTreeSet<u32>,
}

impl ShardDistribution {
    /// The total number of allocated shards.
    pub fn shard_count(&self) -> usize {
        self.regions.values().map(BTreeSet::len).sum()
    }

    /// The region key hosting `shard`, if allocated.
    pub fn home_of(&self, shard: u32) -> Option<&str> {
        self.regions
            .iter()
            .find(|(_, shards)| shards.contains(&shard))
            .map(|(key, _)| key.as_str())
    }
}

impl RemoteMessage for ShardDistribution {
    const MANIFEST: &'static str = "sharding.ShardDistribution";
}

/// Published on the coordinator's event stream whenever the allocation changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMapChanged {
    /// The entity type.
    pub type_name: String,
    /// The allocation after the change.
    pub distribution: ShardDistribution,
}

/// One region's local view: the shards it runs and their live entity counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionState {
    /// Shard to the number of entities running in it.
    pub shards: BTreeMap<u32, usize>,
}

impl RegionState {
    /// Entities running in this region.
    pub fn entity_count(&self) -> usize {
        self.shards.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_ids;

    #[test]
    fn entity_lists_are_cut_into_bounded_chunks() {
        let ids: Vec<String> = ["aaaa", "bbbb", "cc", "dddddddddd", "e"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let chunks = chunk_ids(&ids, 8);
        assert_eq!(
            chunks,
            vec![
                vec!["aaaa".to_owned(), "bbbb".to_owned()],
                vec!["cc".to_owned()],
                vec!["dddddddddd".to_owned()],
                vec!["e".to_owned()],
            ]
        );
        assert!(chunk_ids(&Vec::new(), 8).is_empty());
        let all: Vec<String> = chunks.into_iter().flatten().collect();
        assert_eq!(all, ids, "nothing lost or reordered");
    }
}
