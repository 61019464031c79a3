//! The coordinator's side of moving one shard, as a state machine: every region acknowledges
//! that it stopped routing to the shard, then the old home stops the shard's entities and
//! confirms, and only then is the shard free to start elsewhere.
//!
//! [`HandOff::on_event`] is pure; the coordinator sends the messages its actions name.

use std::collections::BTreeSet;

/// Where a hand-off stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOffState {
    /// `BeginHandOff` went to every region; these have not acknowledged yet.
    CollectingAcks {
        /// Region keys still to acknowledge.
        waiting: BTreeSet<String>,
    },
    /// Every region stopped routing to the shard; the old home is stopping it.
    Stopping,
    /// The old home confirmed (or died): the shard is free.
    Completed,
    /// The hand-off timed out; the shard stays where it was.
    Aborted,
}

/// What happened to a hand-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOffEvent {
    /// A region acknowledged `BeginHandOff`.
    Ack(String),
    /// A region terminated (its node left or was downed).
    RegionGone(String),
    /// The old home stopped the shard and released its lock.
    Stopped,
    /// The hand-off timeout passed.
    TimedOut,
}

/// What the coordinator must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOffAction {
    /// Send `HandOff` to the old home.
    SendHandOff,
    /// Forget the old home: the shard is unallocated and may be allocated again.
    Complete,
    /// Keep the shard at the old home; regions will ask for its home again.
    Abort,
}

/// One shard's move away from region `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    /// The shard moving.
    pub shard: u32,
    /// The key of the region it is leaving.
    pub from: String,
    /// Where the move stands.
    pub state: HandOffState,
}

impl HandOff {
    /// A hand-off waiting for the acknowledgements of `regions` (every region and proxy the
    /// coordinator knows, the old home included). With none to wait for it goes straight to
    /// stopping: the first action is then [`HandOffAction::SendHandOff`].
    pub fn begin(
        shard: u32,
        from: String,
        regions: BTreeSet<String>,
    ) -> (Self, Vec<HandOffAction>) {
        let hand_off = Self {
            shard,
            from,
            state: HandOffState::CollectingAcks {
                waiting: BTreeSet::new(),
            },
        };
        if regions.is_empty() {
            return (
                Self {
                    state: HandOffState::Stopping,
                    ..hand_off
                },
                vec![HandOffAction::SendHandOff],
            );
        }
        (
            Self {
                state: HandOffState::CollectingAcks { waiting: regions },
                ..hand_off
            },
            Vec::new(),
        )
    }

    /// Whether the hand-off has ended (completed or aborted).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, HandOffState::Completed | HandOffState::Aborted)
    }

    /// Applies `event`; returns the actions to carry out. Finished hand-offs ignore events.
    pub fn on_event(&mut self, event: HandOffEvent) -> Vec<HandOffAction> {
        let (state, actions) = transition(&self.from, &self.state, event);
        self.state = state;
        actions
    }
}

fn transition(
    from: &str,
    state: &HandOffState,
    event: HandOffEvent,
) -> (HandOffState, Vec<HandOffAction>) {
    use HandOffAction as A;
    use HandOffEvent as E;
    use HandOffState as S;
    match (state, event) {
        (S::Completed | S::Aborted, _) => (state.clone(), Vec::new()),
        // The old home died: nothing of the shard runs there any more (its lock still
        // guards the shard until it expires).
        (S::CollectingAcks { .. } | S::Stopping, E::RegionGone(region)) if region == from => {
            (S::Completed, vec![A::Complete])
        }
        (S::CollectingAcks { waiting }, E::Ack(region) | E::RegionGone(region)) => {
            let mut waiting = waiting.clone();
            waiting.remove(&region);
            if waiting.is_empty() {
                (S::Stopping, vec![A::SendHandOff])
            } else {
                (S::CollectingAcks { waiting }, Vec::new())
            }
        }
        (S::Stopping, E::Stopped) => (S::Completed, vec![A::Complete]),
        (S::CollectingAcks { .. } | S::Stopping, E::TimedOut) => (S::Aborted, vec![A::Abort]),
        // A stop report before every ack, late acks, other regions dying: no change.
        (S::CollectingAcks { .. } | S::Stopping, _) => (state.clone(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> BTreeSet<String> {
        k.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn acks_then_stop_complete_the_hand_off() {
        let (mut h, first) = HandOff::begin(3, "a".into(), keys(&["a", "b"]));
        assert!(first.is_empty());
        assert!(h.on_event(HandOffEvent::Ack("a".into())).is_empty());
        // A stop report cannot come before the old home was told to stop.
        assert!(h.on_event(HandOffEvent::Stopped).is_empty());
        assert_eq!(
            h.on_event(HandOffEvent::Ack("b".into())),
            vec![HandOffAction::SendHandOff]
        );
        assert_eq!(h.state, HandOffState::Stopping);
        assert!(h.on_event(HandOffEvent::Ack("b".into())).is_empty());
        assert_eq!(
            h.on_event(HandOffEvent::Stopped),
            vec![HandOffAction::Complete]
        );
        assert!(h.is_finished());
        assert!(h.on_event(HandOffEvent::TimedOut).is_empty());
    }

    #[test]
    fn no_regions_goes_straight_to_stopping() {
        let (h, first) = HandOff::begin(1, "a".into(), BTreeSet::new());
        assert_eq!(first, vec![HandOffAction::SendHandOff]);
        assert_eq!(h.state, HandOffState::Stopping);
    }

    #[test]
    fn a_dead_bystander_counts_as_an_ack_a_dead_home_completes() {
        let (mut h, _) = HandOff::begin(1, "a".into(), keys(&["a", "b", "c"]));
        assert!(h.on_event(HandOffEvent::RegionGone("c".into())).is_empty());
        assert!(h.on_event(HandOffEvent::Ack("b".into())).is_empty());
        assert_eq!(
            h.on_event(HandOffEvent::RegionGone("a".into())),
            vec![HandOffAction::Complete]
        );
        let (mut h, _) = HandOff::begin(1, "a".into(), keys(&["a"]));
        h.on_event(HandOffEvent::Ack("a".into()));
        assert_eq!(
            h.on_event(HandOffEvent::RegionGone("a".into())),
            vec![HandOffAction::Complete]
        );
    }

    #[test]
    fn timeout_aborts_in_every_open_state() {
        let (mut h, _) = HandOff::begin(1, "a".into(), keys(&["a"]));
        assert_eq!(
            h.on_event(HandOffEvent::TimedOut),
            vec![HandOffAction::Abort]
        );
        assert_eq!(h.state, HandOffState::Aborted);
        let (mut h, _) = HandOff::begin(1, "a".into(), BTreeSet::new());
        assert_eq!(
            h.on_event(HandOffEvent::TimedOut),
            vec![HandOffAction::Abort]
        );
        assert!(h.on_event(HandOffEvent::Stopped).is_empty());
    }
}
