//! Settings of a file-ownership election, validated before any file is touched.

use std::path::PathBuf;
use std::time::Duration;

use super::OwnerError;

/// Default lease duration of an owner record.
///
/// A follower that reads the record treats the owner as gone once this much time passed since
/// the last renewal. Shorter makes stale endpoint information visible sooner; longer tolerates
/// longer stalls (disk hiccups, a loaded machine) before the owner fences itself.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// Default interval at which a follower waiting for ownership retries the lock file.
///
/// Taking the lock is a single non-blocking system call, so polling often is cheap; the value
/// bounds how long a clean hand-over or an owner's death stays unnoticed by a waiting follower.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Smallest accepted ttl: below this, scheduling noise alone would make owners lose the lease.
pub const MIN_TTL: Duration = Duration::from_millis(30);

/// Settings for [`join`](super::join): where the lease lives and how it is renewed.
///
/// The renewal interval defaults to a third of the ttl. Validation happens in
/// [`OwnerConfig::validate`], which [`join`](super::join) calls before touching any file.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_coordination::owner::OwnerConfig;
///
/// let config = OwnerConfig::new("/tmp/example.lease")
///     .with_ttl(Duration::from_secs(3))
///     .with_endpoint("127.0.0.1:4000");
/// assert_eq!(config.effective_renew_interval(), Duration::from_secs(1));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerConfig {
    /// The lease record file; one owner per path. The lock file sits beside it
    /// (`<lease_path>.lock`).
    pub lease_path: PathBuf,
    /// How long a renewal keeps the record live.
    pub ttl: Duration,
    /// How often the owner renews; `None` means a third of the ttl.
    pub renew_interval: Option<Duration>,
    /// How often a waiting follower retries the lock.
    pub poll_interval: Duration,
    /// Endpoint advertised to followers through the record (for example `127.0.0.1:4000`).
    pub endpoint: Option<String>,
}

impl OwnerConfig {
    /// Creates settings for the lease at `lease_path` with the default ttl and intervals.
    pub fn new(lease_path: impl Into<PathBuf>) -> Self {
        Self {
            lease_path: lease_path.into(),
            ttl: DEFAULT_TTL,
            renew_interval: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
            endpoint: None,
        }
    }

    /// Sets the lease duration.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the renewal interval (must be below half the ttl).
    pub fn with_renew_interval(mut self, interval: Duration) -> Self {
        self.renew_interval = Some(interval);
        self
    }

    /// Sets how often a waiting follower retries the lock.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the endpoint advertised to followers.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The renewal interval in effect: the configured one, or a third of the ttl.
    pub fn effective_renew_interval(&self) -> Duration {
        self.renew_interval.unwrap_or(self.ttl / 3)
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`OwnerError::InvalidConfig`] naming the field when the lease path has no file name, the
    /// ttl is below [`MIN_TTL`], the renewal interval is zero or not below half the ttl, the poll
    /// interval is zero, or the endpoint is empty or contains a control character.
    pub fn validate(&self) -> Result<(), OwnerError> {
        let invalid =
            |field: &'static str, reason: String| OwnerError::InvalidConfig { field, reason };
        if self.lease_path.file_name().is_none() {
            return Err(invalid(
                "lease_path",
                format!("{} does not name a file", self.lease_path.display()),
            ));
        }
        if self.ttl < MIN_TTL {
            return Err(invalid(
                "ttl",
                format!("{:?} is below the minimum {:?}", self.ttl, MIN_TTL),
            ));
        }
        let renew = self.effective_renew_interval();
        if renew.is_zero() || renew >= self.ttl / 2 {
            return Err(invalid(
                "renew_interval",
                format!(
                    "{renew:?} must be above zero and below half the ttl ({:?})",
                    self.ttl / 2
                ),
            ));
        }
        if self.poll_interval.is_zero() {
            return Err(invalid("poll_interval", "must be above zero".to_owned()));
        }
        if let Some(endpoint) = &self.endpoint {
            if endpoint.is_empty() {
                return Err(invalid(
                    "endpoint",
                    "is empty (use None for no endpoint)".to_owned(),
                ));
            }
            if endpoint.chars().any(char::is_control) {
                return Err(invalid(
                    "endpoint",
                    format!("{endpoint:?} contains a control character"),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        let mut name = self.lease_path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_renew_is_a_third_of_ttl() {
        let config = OwnerConfig::new("/tmp/x.lease");
        assert!(config.validate().is_ok());
        assert_eq!(config.effective_renew_interval(), DEFAULT_TTL / 3);
        assert_eq!(config.lock_path(), PathBuf::from("/tmp/x.lease.lock"));
    }

    #[test]
    fn invalid_settings_name_the_field() {
        let field = |c: OwnerConfig| match c.validate() {
            Err(OwnerError::InvalidConfig { field, .. }) => field,
            other => panic!("expected invalid config, got {other:?}"),
        };
        assert_eq!(field(OwnerConfig::new("/")), "lease_path");
        assert_eq!(
            field(OwnerConfig::new("/tmp/a").with_ttl(Duration::ZERO)),
            "ttl"
        );
        let half = OwnerConfig::new("/tmp/a")
            .with_ttl(Duration::from_secs(1))
            .with_renew_interval(Duration::from_millis(500));
        assert_eq!(field(half), "renew_interval");
        assert_eq!(
            field(OwnerConfig::new("/tmp/a").with_poll_interval(Duration::ZERO)),
            "poll_interval"
        );
        assert_eq!(
            field(OwnerConfig::new("/tmp/a").with_endpoint("")),
            "endpoint"
        );
        assert_eq!(
            field(OwnerConfig::new("/tmp/a").with_endpoint("a\nb")),
            "endpoint"
        );
    }
}
