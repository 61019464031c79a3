//! Settings of the singleton manager and proxy, their defaults, and their validation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actor_coordination::lease::Lease;

use super::SingletonError;

/// Default pause between two lease acquire attempts: 5 s. Shorter retries take the lease
/// sooner after its holder lets go, at the price of more load on the lease backend.
pub const DEFAULT_ACQUIRE_RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// Default pause between two `HandOverToMe` requests to a leaving host: 1 s. Shorter means a
/// faster hand-over when a request is lost, more messages while the old host is busy stopping.
pub const DEFAULT_HAND_OVER_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Default number of `HandOverToMe` requests before the new host stops asking and waits for
/// the old host's removal: 15. The new host never starts on a timeout alone, so more retries
/// only shorten the wait when the old host answers late.
pub const DEFAULT_MAX_HAND_OVER_RETRIES: u32 = 15;

/// Default pause between two attempts to spawn the singleton when the name is still taken by
/// a stopping predecessor: 100 ms.
pub const DEFAULT_SPAWN_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Default removal margin: 5 s. After an older member that may have run the singleton is
/// removed **without having confirmed** the hand-over to this node (it was downed, or it
/// left but its singleton was still stopping when the membership removed it), the new host
/// waits this long before starting. Removal is not proof that the old instance stopped: a
/// downed node on the far side of a partition stops only once its own downing decision
/// runs, and a graceful leave does not wait for the singleton's `stopped` hook. The margin
/// should cover the time a singleton needs to stop plus the gap between the two sides'
/// downing decisions. Longer is safer and makes failover after a crash that much slower;
/// `Duration::ZERO` turns it off (safe only with a lease, or a singleton that stops within
/// the removal time). Akka calls the same idea `down-removal-margin`.
pub const DEFAULT_REMOVAL_MARGIN: Duration = Duration::from_secs(5);

/// How many of the lease's own operation timeouts
/// ([`LeaseSettings::operation_timeout`](actor_coordination::lease::LeaseSettings::operation_timeout))
/// the manager waits for one lease call (acquire or release) before it gives up on it: 2.
///
/// The built-in leases bound each call by their operation timeout, and a release may first
/// wait behind one acquire of the same lease object: two timeouts cover both, so this bound
/// only ever cuts off a lease implementation that hangs. Without it a hung call would keep
/// the manager waiting for its answer for ever (no acquire after a hung release, no retry
/// after a hung acquire, and a graceful leave held for the whole exit blocker timeout). A
/// call given up on is dropped (cancelled) and handled as failed: a refused acquire (retried
/// after the acquire interval) or a failed release (a holding the lease object still reports
/// is then released again: once at once, then once per acquire interval). Larger tolerates
/// slower backends; smaller frees a stuck manager sooner.
pub const LEASE_CALL_TIMEOUT_FACTOR: u32 = 2;

/// Default pause between two attempts of the proxy to learn where the singleton runs: 1 s.
/// Shorter finds a moved singleton sooner (messages wait less in the buffer) at the price of
/// more identify requests while no singleton runs.
pub const DEFAULT_IDENTIFY_INTERVAL: Duration = Duration::from_secs(1);

/// Default number of messages a proxy buffers while no singleton is known: 1000. When full,
/// the oldest buffered message goes to dead letters.
pub const DEFAULT_BUFFER_SIZE: usize = 1000;

/// The largest proxy buffer accepted (1 000 000 messages).
pub const MAX_BUFFER_SIZE: usize = 1_000_000;

fn check_interval(name: &'static str, value: Duration) -> Result<(), SingletonError> {
    if value.is_zero() {
        Err(SingletonError::InvalidSetting {
            setting: name,
            reason: "must be greater than zero".into(),
        })
    } else {
        Ok(())
    }
}

/// Settings of a [`ClusterSingletonManager`](super::ClusterSingletonManager).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actor_cluster::singleton::SingletonSettings;
///
/// let settings = SingletonSettings::new("job-scheduler")
///     .with_role("control-plane")
///     .with_acquire_retry_interval(Duration::from_secs(1));
/// assert!(settings.validate().is_ok());
/// assert!(SingletonSettings::new("no spaces").validate().is_err());
/// ```
#[derive(Clone)]
pub struct SingletonSettings {
    /// The singleton's logical name: the child's name and part of the manager's name.
    pub type_name: String,
    /// Only members with this role host the singleton (`None`: every member).
    pub role: Option<String>,
    /// The lease the host must hold while its singleton runs (`None`: no lease).
    pub lease: Option<Arc<dyn Lease>>,
    /// Pause between lease acquire attempts ([`DEFAULT_ACQUIRE_RETRY_INTERVAL`]).
    pub acquire_retry_interval: Duration,
    /// Pause between hand-over requests ([`DEFAULT_HAND_OVER_RETRY_INTERVAL`]).
    pub hand_over_retry_interval: Duration,
    /// Hand-over requests before waiting for removal ([`DEFAULT_MAX_HAND_OVER_RETRIES`]).
    pub max_hand_over_retries: u32,
    /// Pause before spawning again when the child's name is still taken
    /// ([`DEFAULT_SPAWN_RETRY_INTERVAL`]).
    pub spawn_retry_interval: Duration,
    /// How long a new host waits after the removal of an older member that may have run
    /// the singleton and did not confirm the hand-over ([`DEFAULT_REMOVAL_MARGIN`]; zero:
    /// off).
    pub removal_margin: Duration,
}

impl fmt::Debug for SingletonSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingletonSettings")
            .field("type_name", &self.type_name)
            .field("role", &self.role)
            .field("lease", &self.lease.as_ref().map(|l| l.settings().name()))
            .field("acquire_retry_interval", &self.acquire_retry_interval)
            .field("hand_over_retry_interval", &self.hand_over_retry_interval)
            .field("max_hand_over_retries", &self.max_hand_over_retries)
            .field("spawn_retry_interval", &self.spawn_retry_interval)
            .field("removal_margin", &self.removal_margin)
            .finish()
    }
}

impl SingletonSettings {
    /// Settings for the singleton `type_name` with every default.
    pub fn new(type_name: impl Into<String>) -> Self {
        SingletonSettings {
            type_name: type_name.into(),
            role: None,
            lease: None,
            acquire_retry_interval: DEFAULT_ACQUIRE_RETRY_INTERVAL,
            hand_over_retry_interval: DEFAULT_HAND_OVER_RETRY_INTERVAL,
            max_hand_over_retries: DEFAULT_MAX_HAND_OVER_RETRIES,
            spawn_retry_interval: DEFAULT_SPAWN_RETRY_INTERVAL,
            removal_margin: DEFAULT_REMOVAL_MARGIN,
        }
    }

    /// Restricts the singleton to members with `role`.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Gates the singleton on `lease`, whose owner must be this node
    /// ([`lease_owner`](super::lease_owner)).
    pub fn with_lease(mut self, lease: Arc<dyn Lease>) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Sets the pause between lease acquire attempts.
    pub fn with_acquire_retry_interval(mut self, interval: Duration) -> Self {
        self.acquire_retry_interval = interval;
        self
    }

    /// Sets the pause between hand-over requests.
    pub fn with_hand_over_retry_interval(mut self, interval: Duration) -> Self {
        self.hand_over_retry_interval = interval;
        self
    }

    /// Sets how many hand-over requests are sent before waiting for the old host's removal
    /// (at least 1; the first request counts).
    pub fn with_max_hand_over_retries(mut self, retries: u32) -> Self {
        self.max_hand_over_retries = retries;
        self
    }

    /// Sets the pause before spawning again when the child's name is still taken.
    pub fn with_spawn_retry_interval(mut self, interval: Duration) -> Self {
        self.spawn_retry_interval = interval;
        self
    }

    /// Sets how long a new host waits after the removal of an older member that did not
    /// confirm the hand-over ([`DEFAULT_REMOVAL_MARGIN`]); `Duration::ZERO` turns it off.
    pub fn with_removal_margin(mut self, margin: Duration) -> Self {
        self.removal_margin = margin;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`SingletonError::InvalidTypeName`] for a type name that is not a valid actor name,
    /// [`SingletonError::InvalidSetting`] for a zero interval, an empty role, or
    /// `max_hand_over_retries` of 0.
    pub fn validate(&self) -> Result<(), SingletonError> {
        validate_type_name(&self.type_name)?;
        if self.role.as_deref() == Some("") {
            return Err(SingletonError::InvalidSetting {
                setting: "role",
                reason: "must not be empty".into(),
            });
        }
        check_interval("acquire_retry_interval", self.acquire_retry_interval)?;
        check_interval("hand_over_retry_interval", self.hand_over_retry_interval)?;
        check_interval("spawn_retry_interval", self.spawn_retry_interval)?;
        if self.max_hand_over_retries == 0 {
            return Err(SingletonError::InvalidSetting {
                setting: "max_hand_over_retries",
                reason: "must be at least 1 (the first request counts)".into(),
            });
        }
        Ok(())
    }
}

/// Settings of a [`ClusterSingletonProxy`](super::ClusterSingletonProxy).
///
/// # Examples
///
/// ```
/// use actor_cluster::singleton::ProxySettings;
///
/// assert!(ProxySettings::new("job-scheduler").with_buffer_size(10).validate().is_ok());
/// assert!(ProxySettings::new("job-scheduler").with_buffer_size(0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// The singleton's logical name (as given to its manager).
    pub type_name: String,
    /// The role the singleton is restricted to (as given to its manager).
    pub role: Option<String>,
    /// Messages kept while no singleton is known ([`DEFAULT_BUFFER_SIZE`]).
    pub buffer_size: usize,
    /// Pause between attempts to locate the singleton ([`DEFAULT_IDENTIFY_INTERVAL`]).
    pub identify_interval: Duration,
}

impl ProxySettings {
    /// Settings for a proxy to the singleton `type_name` with every default.
    pub fn new(type_name: impl Into<String>) -> Self {
        ProxySettings {
            type_name: type_name.into(),
            role: None,
            buffer_size: DEFAULT_BUFFER_SIZE,
            identify_interval: DEFAULT_IDENTIFY_INTERVAL,
        }
    }

    /// The singleton runs on members with `role` only.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Sets how many messages are buffered while no singleton is known.
    pub fn with_buffer_size(mut self, size: usize) -> Self {
        self.buffer_size = size;
        self
    }

    /// Sets the pause between attempts to locate the singleton.
    pub fn with_identify_interval(mut self, interval: Duration) -> Self {
        self.identify_interval = interval;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`SingletonError::InvalidTypeName`], or [`SingletonError::InvalidSetting`] for a
    /// buffer size of 0 or above [`MAX_BUFFER_SIZE`], a zero interval, an empty role.
    pub fn validate(&self) -> Result<(), SingletonError> {
        validate_type_name(&self.type_name)?;
        if self.role.as_deref() == Some("") {
            return Err(SingletonError::InvalidSetting {
                setting: "role",
                reason: "must not be empty".into(),
            });
        }
        if self.buffer_size == 0 || self.buffer_size > MAX_BUFFER_SIZE {
            return Err(SingletonError::InvalidSetting {
                setting: "buffer_size",
                reason: format!("{} is outside 1..={MAX_BUFFER_SIZE}", self.buffer_size),
            });
        }
        check_interval("identify_interval", self.identify_interval)
    }
}

fn validate_type_name(type_name: &str) -> Result<(), SingletonError> {
    actor_core::validate_actor_name(type_name).map_err(|e| SingletonError::InvalidTypeName {
        type_name: type_name.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_hand_over_retries_are_refused_not_silently_raised() {
        let err = SingletonSettings::new("s")
            .with_max_hand_over_retries(0)
            .validate()
            .expect_err("zero retries");
        assert!(
            matches!(
                err,
                SingletonError::InvalidSetting {
                    setting: "max_hand_over_retries",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            SingletonSettings::new("s")
                .with_max_hand_over_retries(1)
                .with_removal_margin(Duration::ZERO)
                .with_spawn_retry_interval(Duration::from_millis(5))
                .validate()
                .is_ok()
        );
    }
}
