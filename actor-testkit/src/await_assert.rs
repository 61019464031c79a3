//! [`await_assert`]: re-check a condition until it holds or a deadline passes, instead of
//! sleeping for a guessed time.

use std::fmt::Debug;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::time::Instant;

use crate::time::{DEFAULT_POLL_INTERVAL, default_timeout, dilated};

/// What a check passed to [`await_assert`] returns: `bool`, or a `Result` whose error says
/// what is still wrong.
pub trait AssertOutcome {
    /// What `await_assert` returns once the check passes.
    type Output;

    /// `Ok` when the check passed; otherwise a description of the failure.
    fn into_outcome(self) -> Result<Self::Output, String>;
}

impl AssertOutcome for bool {
    type Output = ();

    fn into_outcome(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition was false".to_owned())
        }
    }
}

impl<T, E: Debug> AssertOutcome for Result<T, E> {
    type Output = T;

    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Runs `check` now and then every `interval` until it passes, and returns its output; panics
/// when it still fails after `max`.
///
/// Time goes through `tokio::time`, so under a paused clock the waiting costs no wall time.
///
/// # Panics
/// When `check` has not passed within `max`; the message names the caller's location, the
/// time waited, the number of attempts and the last failure.
///
/// # Examples
/// ```
/// use actor_testkit::await_assert;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let count = Arc::new(AtomicU32::new(0));
/// let c = count.clone();
/// tokio::spawn(async move { for _ in 0..3 { c.fetch_add(1, Ordering::SeqCst); tokio::task::yield_now().await; } });
/// await_assert(
///     || match count.load(Ordering::SeqCst) { 3 => Ok(()), n => Err(format!("count is {n}")) },
///     Duration::from_secs(1),
///     Duration::from_millis(1),
/// )
/// .await;
/// # }
/// ```
#[track_caller]
pub fn await_assert<F, R>(
    check: F,
    max: Duration,
    interval: Duration,
) -> impl Future<Output = R::Output>
where
    F: FnMut() -> R,
    R: AssertOutcome,
{
    let caller = Location::caller();
    poll_until(check, max, interval, caller)
}

/// [`await_assert`] with the dilated [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT) and
/// [`DEFAULT_POLL_INTERVAL`].
///
/// # Panics
/// As [`await_assert`].
#[track_caller]
pub fn await_assert_default<F, R>(check: F) -> impl Future<Output = R::Output>
where
    F: FnMut() -> R,
    R: AssertOutcome,
{
    let caller = Location::caller();
    poll_until(
        check,
        default_timeout(),
        dilated(DEFAULT_POLL_INTERVAL),
        caller,
    )
}

pub(crate) async fn poll_until<F, R>(
    mut check: F,
    max: Duration,
    interval: Duration,
    caller: &'static Location<'static>,
) -> R::Output
where
    F: FnMut() -> R,
    R: AssertOutcome,
{
    let start = Instant::now();
    let deadline = start + max;
    // a zero interval would spin without letting the actors under test run
    let interval = interval.max(Duration::from_micros(100));
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        let last = match check().into_outcome() {
            Ok(v) => return v,
            Err(e) => e,
        };
        let now = Instant::now();
        if now >= deadline {
            panic!(
                "await_assert at {caller}: still failing after {:?} ({attempts} attempts, max {max:?}): {last}",
                now - start
            );
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}
