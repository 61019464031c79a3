//! Exponential reconnect backoff: `min`, then times [`RECONNECT_BACKOFF_FACTOR`] after each
//! failure, capped at `max`.

use std::time::Duration;

use super::settings::RECONNECT_BACKOFF_FACTOR;

/// The delays between connection attempts of one association.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self { next: min, max }
    }

    /// The delay before the next attempt; grows for the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * RECONNECT_BACKOFF_FACTOR).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(1000));
        let delays: Vec<_> = (0..6).map(|_| backoff.next_delay()).collect();
        assert_eq!(
            delays,
            vec![ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
    }
}
