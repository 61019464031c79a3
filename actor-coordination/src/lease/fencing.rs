//! Fencing tokens: numbers that order the holdings of one lease.

use std::fmt;

/// A number that grows every time a lease changes hands, and survives release.
///
/// A resource guarded by a lease remembers the highest token it has seen and rejects requests
/// carrying a lower one, so a holder that lost the lease without noticing cannot overwrite the
/// work of its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// Creates a token from its numeric value.
    pub const fn new(value: u64) -> Self {
        FencingToken(value)
    }

    /// Returns the numeric value.
    pub const fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
