//! Fault injection between two addresses for the in-process transports.
//!
//! A [`LinkRule`] applies to one direction of one pair of addresses. Rules are kept in an
//! ordered map and random drops come from a seeded ChaCha generator, so a run with the same
//! seed and the same sequence of sends drops the same frames.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::address::Address;

/// Errors raised by fault-injection controls.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// A drop probability outside `0.0..=1.0` (or NaN).
    #[error("drop probability {probability} is outside 0.0..=1.0")]
    InvalidProbability {
        /// The rejected probability.
        probability: f64,
    },
}

/// Which direction(s) between `a` and `b` a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both `a -> b` and `b -> a`.
    Both,
    /// Only frames sent by `a` to `b`.
    Send,
    /// Only frames sent by `b` to `a`.
    Receive,
}

/// The faults applied to frames going one way between two addresses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkRule {
    /// Every frame is silently discarded.
    pub blackhole: bool,
    /// Every frame is delivered this much later (order on the link is kept).
    pub delay: Duration,
    /// Each frame is discarded with this probability (seeded RNG).
    pub drop_probability: f64,
}

/// What happens to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Discard it.
    Drop,
    /// Deliver it after the delay (zero: at once).
    Deliver(Duration),
}

/// Controls faults between addresses; implemented by [`crate::InMemoryHub`] and
/// [`crate::ChannelMesh`], callable from any thread.
pub trait FaultInjector {
    /// Discards every frame between `a` and `b` in `direction`.
    fn blackhole(&self, a: &Address, b: &Address, direction: Direction);

    /// Removes every fault between `a` and `b` in `direction` (heals the link).
    fn pass_through(&self, a: &Address, b: &Address, direction: Direction);

    /// Delays every frame between `a` and `b` in `direction` by `delay` (via `tokio::time`).
    fn delay(&self, a: &Address, b: &Address, direction: Direction, delay: Duration);

    /// Discards each frame between `a` and `b` in `direction` with `probability`.
    ///
    /// # Errors
    ///
    /// [`FaultError::InvalidProbability`] outside `0.0..=1.0`.
    fn drop_with_probability(
        &self,
        a: &Address,
        b: &Address,
        direction: Direction,
        probability: f64,
    ) -> Result<(), FaultError>;

    /// Crashes the node bound at `address`: its frames vanish, its peers see it disconnected,
    /// and the address may be bound again (a new incarnation). Returns whether a node was bound.
    fn crash(&self, address: &Address) -> bool;

    /// The rule currently applied to frames sent by `from` to `to`.
    fn link_rule(&self, from: &Address, to: &Address) -> LinkRule;
}

/// The fault rules of a hub plus its seeded RNG.
#[derive(Debug)]
pub(crate) struct FaultTable {
    rules: BTreeMap<(Address, Address), LinkRule>,
    rng: ChaCha8Rng,
}

impl FaultTable {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rules: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A fresh non-zero incarnation uid from the seeded RNG.
    pub(crate) fn next_uid(&mut self) -> u64 {
        self.rng.random_range(1..=u64::MAX)
    }

    fn directed(a: &Address, b: &Address, direction: Direction) -> Vec<(Address, Address)> {
        let ab = (a.clone(), b.clone());
        let ba = (b.clone(), a.clone());
        match direction {
            Direction::Both => vec![ab, ba],
            Direction::Send => vec![ab],
            Direction::Receive => vec![ba],
        }
    }

    pub(crate) fn update(
        &mut self,
        a: &Address,
        b: &Address,
        direction: Direction,
        change: impl Fn(&mut LinkRule),
    ) {
        for key in Self::directed(a, b, direction) {
            let rule = self.rules.entry(key.clone()).or_default();
            change(rule);
            if *rule == LinkRule::default() {
                self.rules.remove(&key);
            }
        }
    }

    pub(crate) fn rule(&self, from: &Address, to: &Address) -> LinkRule {
        self.rules
            .get(&(from.clone(), to.clone()))
            .copied()
            .unwrap_or_default()
    }

    /// Decides the fate of one frame from `from` to `to`.
    pub(crate) fn verdict(&mut self, from: &Address, to: &Address) -> Verdict {
        if self.rules.is_empty() {
            return Verdict::Deliver(Duration::ZERO);
        }
        let Some(rule) = self.rules.get(&(from.clone(), to.clone())).copied() else {
            return Verdict::Deliver(Duration::ZERO);
        };
        if rule.blackhole {
            return Verdict::Drop;
        }
        if rule.drop_probability > 0.0 && self.rng.random_bool(rule.drop_probability) {
            return Verdict::Drop;
        }
        Verdict::Deliver(rule.delay)
    }
}

/// Validates a drop probability.
pub(crate) fn check_probability(probability: f64) -> Result<(), FaultError> {
    if (0.0..=1.0).contains(&probability) {
        Ok(())
    } else {
        Err(FaultError::InvalidProbability { probability })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: &str) -> Address {
        Address::logical("sys", n).unwrap()
    }

    #[test]
    fn directions_and_heal() {
        let (a, b) = (addr("a"), addr("b"));
        let mut t = FaultTable::new(1);
        t.update(&a, &b, Direction::Send, |r| r.blackhole = true);
        assert_eq!(t.verdict(&a, &b), Verdict::Drop);
        assert_eq!(t.verdict(&b, &a), Verdict::Deliver(Duration::ZERO));
        t.update(&a, &b, Direction::Receive, |r| {
            r.delay = Duration::from_millis(5)
        });
        assert_eq!(
            t.verdict(&b, &a),
            Verdict::Deliver(Duration::from_millis(5))
        );
        t.update(&a, &b, Direction::Both, |r| *r = LinkRule::default());
        assert!(t.rules.is_empty());
    }

    #[test]
    fn seeded_drops_replay() {
        let (a, b) = (addr("a"), addr("b"));
        let run = |seed| {
            let mut t = FaultTable::new(seed);
            t.update(&a, &b, Direction::Send, |r| r.drop_probability = 0.5);
            (0..64)
                .map(|_| t.verdict(&a, &b) == Verdict::Drop)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let drops = run(7).iter().filter(|d| **d).count();
        assert!(drops > 10 && drops < 54, "{drops} drops of 64");
        assert!(check_probability(1.5).is_err());
        assert!(check_probability(f64::NAN).is_err());
    }
}
