//! Test time: the default timeouts and the time factor that scales them on slow machines
//! (Akka's time dilation).
//!
//! Every default in this crate goes through [`dilated`], which multiplies it by the factor
//! read once from the environment variable [`TIME_FACTOR_ENV`]. Durations passed explicitly
//! are used as given; wrap them in [`dilated`] to scale them too.

use std::sync::OnceLock;
use std::time::Duration;

use thiserror::Error;

/// How long an expectation waits when no timeout is given: 3 s. Long enough for a loaded
/// 2-core CI machine to schedule a few hundred actors, short enough that a missing message
/// fails the test quickly. Under a paused tokio clock it costs no wall time at all.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long [`TestProbe::expect_no_msg_default`](crate::TestProbe::expect_no_msg_default)
/// watches for silence: 100 ms. A longer quiet period catches later stray messages but
/// slows every test on a real clock.
pub const DEFAULT_NO_MSG_DURATION: Duration = Duration::from_millis(100);

/// How often [`await_assert_default`](crate::await_assert_default) re-checks: 10 ms. Shorter
/// reacts sooner but burns CPU that the actors under test need on a 2-core machine.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The environment variable holding the time factor: a positive decimal number such as
/// `2.5`. Unset means `1.0`.
pub const TIME_FACTOR_ENV: &str = "ACTOR_TEST_TIME_FACTOR";

/// Why a time factor was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TimeFactorError {
    /// The value is not a decimal number.
    #[error("{TIME_FACTOR_ENV}={value:?} is not a number")]
    NotANumber {
        /// The rejected text.
        value: String,
    },
    /// The value is zero, negative, infinite or NaN.
    #[error("{TIME_FACTOR_ENV}={value} must be a finite number greater than zero")]
    NotPositive {
        /// The rejected factor.
        value: f64,
    },
}

/// Parses a time factor as found in [`TIME_FACTOR_ENV`].
///
/// # Errors
/// [`TimeFactorError::NotANumber`] or [`TimeFactorError::NotPositive`], carrying the value.
///
/// # Examples
/// ```
/// use actor_testkit::parse_time_factor;
/// assert_eq!(parse_time_factor(" 2.5 "), Ok(2.5));
/// assert!(parse_time_factor("0").is_err());
/// assert!(parse_time_factor("fast").is_err());
/// ```
pub fn parse_time_factor(raw: &str) -> Result<f64, TimeFactorError> {
    let value: f64 = raw
        .trim()
        .parse()
        .map_err(|_| TimeFactorError::NotANumber {
            value: raw.to_owned(),
        })?;
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(TimeFactorError::NotPositive { value })
    }
}

/// The factor every default duration is multiplied by, read once from [`TIME_FACTOR_ENV`].
/// An invalid value is reported on stderr and ignored (factor `1.0`).
pub fn time_factor() -> f64 {
    static FACTOR: OnceLock<f64> = OnceLock::new();
    *FACTOR.get_or_init(|| match std::env::var(TIME_FACTOR_ENV) {
        Err(_) => 1.0,
        Ok(raw) => match parse_time_factor(&raw) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("actor-testkit: {e}; using 1.0");
                1.0
            }
        },
    })
}

/// `duration` scaled by [`time_factor`].
pub fn dilated(duration: Duration) -> Duration {
    scale(duration, time_factor())
}

/// `duration` scaled by `factor`, saturating instead of overflowing.
pub(crate) fn scale(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// [`DEFAULT_TIMEOUT`] scaled by [`time_factor`].
pub fn default_timeout() -> Duration {
    dilated(DEFAULT_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_positive_numbers_only() {
        assert_eq!(parse_time_factor("1"), Ok(1.0));
        assert_eq!(parse_time_factor("0.5"), Ok(0.5));
        assert_eq!(
            parse_time_factor("x"),
            Err(TimeFactorError::NotANumber { value: "x".into() })
        );
        assert_eq!(
            parse_time_factor("-2"),
            Err(TimeFactorError::NotPositive { value: -2.0 })
        );
        assert!(matches!(
            parse_time_factor("inf"),
            Err(TimeFactorError::NotPositive { .. })
        ));
        assert!(matches!(
            parse_time_factor("NaN"),
            Err(TimeFactorError::NotPositive { .. })
        ));
    }

    #[test]
    fn scaling_multiplies_and_saturates() {
        assert_eq!(scale(Duration::from_secs(3), 2.0), Duration::from_secs(6));
        assert_eq!(
            scale(Duration::from_millis(100), 0.5),
            Duration::from_millis(50)
        );
        assert_eq!(scale(Duration::MAX, 4.0), Duration::MAX);
    }
}
