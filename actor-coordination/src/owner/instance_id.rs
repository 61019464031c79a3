//! Instance ids: unique per join, so two starts of one program (or two joins in one process)
//! are never confused with each other.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A fresh id: `<pid>-<start time in ns, hex>-<random, hex>`.
///
/// The random part comes from the standard library's per-process random hash keys, mixed with a
/// counter, so it differs between processes and between calls without an RNG dependency.
pub(crate) fn fresh() -> String {
    let pid = std::process::id();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let random = RandomState::new().hash_one(SEQUENCE.fetch_add(1, Ordering::Relaxed));
    format!("{pid}-{nanos:x}-{random:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_differ_and_have_no_whitespace() {
        let a = super::fresh();
        let b = super::fresh();
        assert_ne!(a, b);
        assert!(!a.chars().any(char::is_whitespace));
        assert!(a.starts_with(&format!("{}-", std::process::id())));
    }
}
