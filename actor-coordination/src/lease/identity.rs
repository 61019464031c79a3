//! Lease owner identity: who holds a lease, including the holder's incarnation.

use std::fmt;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The identity of a lease holder: a stable id plus the incarnation of the process behind it.
///
/// Two owners are the same only if both parts are equal, so a process that restarts (and so gets
/// a new incarnation) is a *new* owner: it does not inherit the holding of its predecessor, and
/// re-acquiring after a restart increments the fencing token. For a cluster node the id is its
/// address and the incarnation its uid ([`LeaseOwner::for_node`]).
///
/// # Examples
///
/// ```
/// use actor_coordination::lease::LeaseOwner;
///
/// let before = LeaseOwner::for_node("127.0.0.1:2552", 7);
/// let after = LeaseOwner::for_node("127.0.0.1:2552", 8);
/// assert_ne!(before, after);
/// assert_eq!(before.to_string(), "127.0.0.1:2552#7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseOwner {
    id: String,
    incarnation: u64,
}

impl LeaseOwner {
    /// Creates an owner from an id and an incarnation number.
    ///
    /// The id is validated when the [`LeaseSettings`](super::LeaseSettings) are built (an empty
    /// id is an error there).
    pub fn new(id: impl Into<String>, incarnation: u64) -> Self {
        LeaseOwner {
            id: id.into(),
            incarnation,
        }
    }

    /// Creates the owner identity of a cluster node: its address and its uid.
    pub fn for_node(address: impl fmt::Display, uid: u64) -> Self {
        LeaseOwner::new(address.to_string(), uid)
    }

    /// Creates an owner for this process: `id` plus an incarnation drawn once per process start
    /// (from the start time and the process id), so a restarted process is a new owner.
    pub fn for_this_process(id: impl Into<String>) -> Self {
        static INCARNATION: OnceLock<u64> = OnceLock::new();
        let incarnation = *INCARNATION.get_or_init(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        });
        LeaseOwner::new(id, incarnation)
    }

    /// Returns the stable part of the identity (for a node, its address).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Returns the incarnation (for a node, its uid).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }
}

/// Formats as `id#incarnation`; the last `#` separates the two, so the form is unambiguous.
impl fmt::Display for LeaseOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.id, self.incarnation)
    }
}
