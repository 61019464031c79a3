//! Joining through seed nodes, as an explicit state machine over explicit instants.
//!
//! A starting node asks every seed node `InitJoin`; a seed that is already a cluster member
//! answers `InitJoinAck`, and the node then sends `Join` to the first one that answered and
//! waits for `Welcome`. When all nodes get the same seed list, only the **first** seed may
//! form a cluster by itself, and only after [`DEFAULT_SEED_NODE_TIMEOUT`] without an answer
//! from the others: two seeds starting together therefore never form two islands. A node
//! whose seed list holds only itself (or nothing) forms a cluster of one at once.

use std::time::Duration;

use tokio::time::Instant;

use crate::Address;

/// Default time the first seed waits for another seed's `InitJoinAck` before forming the
/// cluster by itself: 5 s.
///
/// Longer gives the other seeds more time to start (fewer accidental restarts of the first
/// seed as a new cluster); shorter lets a lone first seed start serving sooner.
pub const DEFAULT_SEED_NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default interval at which `InitJoin` is sent again while no seed has answered: 1 s.
pub const DEFAULT_INIT_JOIN_RESEND_INTERVAL: Duration = Duration::from_secs(1);

/// Default wait for `Welcome` after `Join` before starting over with `InitJoin`: 10 s.
///
/// Covers a seed that acknowledged but then crashed, or a lost `Join`.
pub const DEFAULT_RETRY_UNSUCCESSFUL_JOIN_AFTER: Duration = Duration::from_secs(10);

/// Timing of the seed-join process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedJoinSettings {
    /// [`DEFAULT_SEED_NODE_TIMEOUT`].
    pub seed_node_timeout: Duration,
    /// [`DEFAULT_INIT_JOIN_RESEND_INTERVAL`].
    pub resend_interval: Duration,
    /// [`DEFAULT_RETRY_UNSUCCESSFUL_JOIN_AFTER`].
    pub retry_unsuccessful_join_after: Duration,
}

impl Default for SeedJoinSettings {
    fn default() -> Self {
        Self {
            seed_node_timeout: DEFAULT_SEED_NODE_TIMEOUT,
            resend_interval: DEFAULT_INIT_JOIN_RESEND_INTERVAL,
            retry_unsuccessful_join_after: DEFAULT_RETRY_UNSUCCESSFUL_JOIN_AFTER,
        }
    }
}

/// An input of the seed-join process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedJoinEvent {
    /// Time passed (the caller's timer fired at or after [`SeedJoin::next_deadline`]).
    Tick,
    /// A seed that is a cluster member answered `InitJoin`.
    InitJoinAck {
        /// The seed.
        from: Address,
    },
    /// A seed that is not (yet) a cluster member answered `InitJoin`.
    InitJoinNack {
        /// The seed.
        from: Address,
    },
    /// The cluster accepted our `Join`.
    Welcome {
        /// The node that welcomed us.
        from: Address,
    },
}

/// An output of the seed-join process, for the caller to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedJoinAction {
    /// Send `InitJoin` to these seeds.
    SendInitJoin {
        /// The seeds to ask (never ourselves).
        to: Vec<Address>,
    },
    /// Send `Join` to this member.
    SendJoin {
        /// The seed that acknowledged.
        to: Address,
    },
    /// Form a new cluster with ourselves as the only member.
    JoinSelf,
}

/// Where the seed-join process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedJoinState {
    /// Asking the seeds; `form_alone_at` is set only on the first seed.
    Discovering {
        /// When `InitJoin` is sent again.
        resend_at: Instant,
        /// When the first seed gives up waiting and forms the cluster.
        form_alone_at: Option<Instant>,
    },
    /// `Join` sent; waiting for `Welcome`.
    AwaitingWelcome {
        /// When to start over.
        retry_at: Instant,
    },
    /// Joined (or formed) a cluster; the process is over.
    Done,
}

/// The seed-join process of one node.
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
/// use actor_cluster::membership::{SeedJoin, SeedJoinAction, SeedJoinEvent, SeedJoinSettings};
/// use tokio::time::Instant;
///
/// let me = Address::logical("sys", "b")?;
/// let seeds = vec![Address::logical("sys", "a")?, me.clone()];
/// let t0 = Instant::now();
/// let (mut join, actions) = SeedJoin::start(me, seeds.clone(), SeedJoinSettings::default(), t0);
/// assert_eq!(actions, vec![SeedJoinAction::SendInitJoin { to: vec![seeds[0].clone()] }]);
/// let actions = join.on_event(t0, SeedJoinEvent::InitJoinAck { from: seeds[0].clone() });
/// assert_eq!(actions, vec![SeedJoinAction::SendJoin { to: seeds[0].clone() }]);
/// join.on_event(t0, SeedJoinEvent::Welcome { from: seeds[0].clone() });
/// assert!(join.is_done());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedJoin {
    others: Vec<Address>,
    first_seed: bool,
    settings: SeedJoinSettings,
    state: SeedJoinState,
}

impl SeedJoin {
    /// Starts the process at `at` and returns the first actions.
    ///
    /// `seeds` is the configured seed list (order matters: its first entry is the first
    /// seed; duplicates are ignored).
    pub fn start(
        self_address: Address,
        seeds: Vec<Address>,
        settings: SeedJoinSettings,
        at: Instant,
    ) -> (Self, Vec<SeedJoinAction>) {
        let first_seed = seeds.first() == Some(&self_address);
        let mut others: Vec<Address> = Vec::new();
        for seed in seeds {
            if seed != self_address && !others.contains(&seed) {
                others.push(seed);
            }
        }
        let mut process = Self {
            others,
            first_seed,
            settings,
            state: SeedJoinState::Done,
        };
        if process.others.is_empty() {
            return (process, vec![SeedJoinAction::JoinSelf]);
        }
        let actions = process.discover(at);
        (process, actions)
    }

    fn discover(&mut self, at: Instant) -> Vec<SeedJoinAction> {
        self.state = SeedJoinState::Discovering {
            resend_at: at + self.settings.resend_interval,
            form_alone_at: self
                .first_seed
                .then(|| at + self.settings.seed_node_timeout),
        };
        vec![SeedJoinAction::SendInitJoin {
            to: self.others.clone(),
        }]
    }

    /// The current state.
    pub fn state(&self) -> SeedJoinState {
        self.state
    }

    /// Whether the node has joined or formed a cluster.
    pub fn is_done(&self) -> bool {
        self.state == SeedJoinState::Done
    }

    /// When the caller should deliver [`SeedJoinEvent::Tick`] next; `None` when done.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            SeedJoinState::Discovering {
                resend_at,
                form_alone_at,
            } => Some(form_alone_at.map_or(resend_at, |f| f.min(resend_at))),
            SeedJoinState::AwaitingWelcome { retry_at } => Some(retry_at),
            SeedJoinState::Done => None,
        }
    }

    /// Feeds one event at `at` and returns the actions to perform.
    ///
    /// Answers from nodes that are not seeds, and events that do not fit the state, are
    /// ignored.
    pub fn on_event(&mut self, at: Instant, event: SeedJoinEvent) -> Vec<SeedJoinAction> {
        match (self.state, event) {
            (SeedJoinState::Done, _) => Vec::new(),
            (_, SeedJoinEvent::Welcome { .. }) => {
                self.state = SeedJoinState::Done;
                Vec::new()
            }
            (
                SeedJoinState::Discovering {
                    resend_at,
                    form_alone_at,
                },
                SeedJoinEvent::Tick,
            ) => {
                if form_alone_at.is_some_and(|f| at >= f) {
                    self.state = SeedJoinState::Done;
                    vec![SeedJoinAction::JoinSelf]
                } else if at >= resend_at {
                    self.state = SeedJoinState::Discovering {
                        resend_at: at + self.settings.resend_interval,
                        form_alone_at,
                    };
                    vec![SeedJoinAction::SendInitJoin {
                        to: self.others.clone(),
                    }]
                } else {
                    Vec::new()
                }
            }
            (SeedJoinState::Discovering { .. }, SeedJoinEvent::InitJoinAck { from })
                if self.others.contains(&from) =>
            {
                self.state = SeedJoinState::AwaitingWelcome {
                    retry_at: at + self.settings.retry_unsuccessful_join_after,
                };
                vec![SeedJoinAction::SendJoin { to: from }]
            }
            (SeedJoinState::AwaitingWelcome { retry_at }, SeedJoinEvent::Tick)
                if at >= retry_at =>
            {
                self.discover(at)
            }
            _ => Vec::new(),
        }
    }
}
