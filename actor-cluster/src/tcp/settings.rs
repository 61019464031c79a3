//! [`TcpSettings`]: configuration of a [`super::TcpTransport`], validated on bind.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::address::Address;
use crate::transport::DEFAULT_MAX_FRAME_SIZE;

/// Default capacity of each peer's outbound queue, in frames.
///
/// Absorbs bursts while a connection is being (re)established; a larger queue hides a slow
/// peer longer and holds more memory, a smaller one overflows (and reports) sooner.
pub const DEFAULT_OUTBOUND_QUEUE_CAPACITY: usize = 16 * 1024;

/// Default capacity of the inbound frame channel, in frames.
///
/// When it is full, connections stop reading and TCP pushes back on the senders.
pub const DEFAULT_INBOUND_QUEUE_CAPACITY: usize = 16 * 1024;

/// Default time allowed for a handshake to complete: 5 s.
///
/// Long enough for a loaded peer; a stalled or hostile connection holds a task this long.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time allowed for a TCP connect: 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default first reconnect delay: 100 ms.
///
/// Short so a restarted peer is reached quickly; doubled after each failure.
pub const DEFAULT_RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// Default upper bound of the reconnect delay: 5 s.
///
/// Caps the wait after many failures; lower reconnects sooner but hammers a dead address.
pub const DEFAULT_RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Default factor the reconnect delay grows by after each failed attempt.
pub const RECONNECT_BACKOFF_FACTOR: u32 = 2;

/// Default number of consecutive failed connection attempts before the association fails.
///
/// With the default backoff, about 25 s of trying; queued frames are then dropped and
/// reported, and the next send starts afresh.
pub const DEFAULT_MAX_RECONNECT_ATTEMPTS: u32 = 8;

/// Default number of bytes coalesced into one socket write: 64 KiB.
///
/// Frames waiting in the queue are drained into one buffer up to this size and written with a
/// single `write_all`; bigger means fewer syscalls, smaller means lower latency per burst.
pub const DEFAULT_WRITE_COALESCE_BYTES: usize = 64 * 1024;

/// Default limit of inbound connections still in their handshake: 128.
///
/// Bounds the memory and tasks unauthenticated clients can hold; further connections are
/// closed at once until a slot frees (a handshake completes, fails or times out). A hostile
/// client can fill the slots for up to the handshake timeout, delaying legitimate peers.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 128;

/// Errors of invalid settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcpSettingsError {
    /// The system name is not `[a-zA-Z0-9-_]+`.
    #[error("invalid actor system name {name:?}")]
    InvalidSystemName {
        /// The rejected name.
        name: String,
    },
    /// A shared secret must not be empty (use `insecure_no_auth` to run without one).
    #[error("the shared secret is empty; use TcpSettings::insecure_no_auth to run without one")]
    EmptySecret,
    /// The maximum frame size must be in `1..=u32::MAX`.
    #[error("max frame size {size} is outside 1..={}", u32::MAX)]
    InvalidMaxFrameSize {
        /// The rejected size.
        size: usize,
    },
    /// A queue capacity of zero.
    #[error("{queue} queue capacity must be at least 1")]
    ZeroCapacity {
        /// Which queue.
        queue: &'static str,
    },
    /// The backoff bounds are zero or reversed.
    #[error("reconnect backoff must satisfy 0 < min ({min:?}) <= max ({max:?})")]
    InvalidBackoff {
        /// The minimum.
        min: Duration,
        /// The maximum.
        max: Duration,
    },
    /// A zero timeout or attempt count.
    #[error("{what} must be non-zero")]
    Zero {
        /// Which setting.
        what: &'static str,
    },
}

/// Called with the destination and the frame when a peer's outbound queue is full; the
/// remoting layer routes the frame to dead letters.
#[derive(Clone)]
pub struct OverflowHandler(pub Arc<OverflowFn>);

/// The signature of an [`OverflowHandler`]: destination and refused frame.
pub type OverflowFn = dyn Fn(&Address, Bytes) + Send + Sync;

impl fmt::Debug for OverflowHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OverflowHandler(..)")
    }
}

/// How peers prove they belong to the cluster.
#[derive(Clone)]
pub enum Auth {
    /// Challenge-response HMAC-SHA256 over a shared secret.
    SharedSecret(Vec<u8>),
    /// No authentication: anyone who can reach the port can inject frames. Only for tests or
    /// networks that are trusted end to end.
    InsecureNoAuth,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SharedSecret(_) => f.write_str("SharedSecret(<redacted>)"),
            Self::InsecureNoAuth => f.write_str("InsecureNoAuth"),
        }
    }
}

/// Settings of a TCP transport; build with [`TcpSettings::with_secret`] or the explicit
/// [`TcpSettings::insecure_no_auth`], adjust with the builder methods.
///
/// # Examples
///
/// ```
/// use actor_cluster::tcp::TcpSettings;
///
/// let settings = TcpSettings::with_secret("orders", "127.0.0.1:0".parse().unwrap(), "s3cret")
///     .max_frame_size(64 * 1024);
/// assert!(settings.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct TcpSettings {
    pub(crate) system: String,
    pub(crate) bind: SocketAddr,
    pub(crate) auth: Auth,
    pub(crate) max_frame_size: usize,
    pub(crate) outbound_queue_capacity: usize,
    pub(crate) inbound_queue_capacity: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) max_reconnect_attempts: u32,
    pub(crate) write_coalesce_bytes: usize,
    pub(crate) max_pending_handshakes: usize,
    pub(crate) on_overflow: Option<OverflowHandler>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsSettings>,
}

impl TcpSettings {
    fn base(system: impl Into<String>, bind: SocketAddr, auth: Auth) -> Self {
        Self {
            system: system.into(),
            bind,
            auth,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            outbound_queue_capacity: DEFAULT_OUTBOUND_QUEUE_CAPACITY,
            inbound_queue_capacity: DEFAULT_INBOUND_QUEUE_CAPACITY,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            backoff_min: DEFAULT_RECONNECT_BACKOFF_MIN,
            backoff_max: DEFAULT_RECONNECT_BACKOFF_MAX,
            max_reconnect_attempts: DEFAULT_MAX_RECONNECT_ATTEMPTS,
            write_coalesce_bytes: DEFAULT_WRITE_COALESCE_BYTES,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            on_overflow: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Settings for system `system` listening on `bind`, authenticating peers by `secret`.
    pub fn with_secret(
        system: impl Into<String>,
        bind: SocketAddr,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        Self::base(system, bind, Auth::SharedSecret(secret.into()))
    }

    /// Settings with NO authentication: any process that reaches the port can send frames
    /// as any address. An explicit choice for tests and trusted networks.
    pub fn insecure_no_auth(system: impl Into<String>, bind: SocketAddr) -> Self {
        Self::base(system, bind, Auth::InsecureNoAuth)
    }

    /// Sets the maximum frame size in bytes (default [`DEFAULT_MAX_FRAME_SIZE`]).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets the per-peer outbound queue capacity (default [`DEFAULT_OUTBOUND_QUEUE_CAPACITY`]).
    pub fn outbound_queue_capacity(mut self, frames: usize) -> Self {
        self.outbound_queue_capacity = frames;
        self
    }

    /// Sets the inbound channel capacity (default [`DEFAULT_INBOUND_QUEUE_CAPACITY`]).
    pub fn inbound_queue_capacity(mut self, frames: usize) -> Self {
        self.inbound_queue_capacity = frames;
        self
    }

    /// Sets the handshake timeout (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets the connect timeout (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the reconnect backoff bounds (defaults [`DEFAULT_RECONNECT_BACKOFF_MIN`],
    /// [`DEFAULT_RECONNECT_BACKOFF_MAX`]).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max;
        self
    }

    /// Sets how many failed attempts end the association (default
    /// [`DEFAULT_MAX_RECONNECT_ATTEMPTS`]).
    pub fn max_reconnect_attempts(mut self, attempts: u32) -> Self {
        self.max_reconnect_attempts = attempts;
        self
    }

    /// Sets the coalescing buffer size in bytes (default [`DEFAULT_WRITE_COALESCE_BYTES`]).
    pub fn write_coalesce_bytes(mut self, bytes: usize) -> Self {
        self.write_coalesce_bytes = bytes;
        self
    }

    /// Sets how many inbound handshakes may be in progress at once (default
    /// [`DEFAULT_MAX_PENDING_HANDSHAKES`]).
    pub fn max_pending_handshakes(mut self, connections: usize) -> Self {
        self.max_pending_handshakes = connections;
        self
    }

    /// Sets a callback receiving each frame refused because its peer's queue is full (the
    /// send also fails with `QueueFull`). Keep it short: it runs inside `send`.
    pub fn on_overflow(
        mut self,
        handler: impl Fn(&Address, Bytes) + Send + Sync + 'static,
    ) -> Self {
        self.on_overflow = Some(OverflowHandler(Arc::new(handler)));
        self
    }

    /// Runs every connection over TLS (feature `tls`); the shared-secret handshake still
    /// runs inside it.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsSettings) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// The first invalid setting as a [`TcpSettingsError`].
    pub fn validate(&self) -> Result<(), TcpSettingsError> {
        if crate::Address::new(self.system.clone(), "h", 0).is_err() {
            return Err(TcpSettingsError::InvalidSystemName {
                name: self.system.clone(),
            });
        }
        if let Auth::SharedSecret(secret) = &self.auth
            && secret.is_empty()
        {
            return Err(TcpSettingsError::EmptySecret);
        }
        if self.max_frame_size == 0 || self.max_frame_size > u32::MAX as usize {
            return Err(TcpSettingsError::InvalidMaxFrameSize {
                size: self.max_frame_size,
            });
        }
        if self.outbound_queue_capacity == 0 {
            return Err(TcpSettingsError::ZeroCapacity { queue: "outbound" });
        }
        if self.inbound_queue_capacity == 0 {
            return Err(TcpSettingsError::ZeroCapacity { queue: "inbound" });
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return Err(TcpSettingsError::InvalidBackoff {
                min: self.backoff_min,
                max: self.backoff_max,
            });
        }
        for (what, zero) in [
            ("handshake timeout", self.handshake_timeout.is_zero()),
            ("connect timeout", self.connect_timeout.is_zero()),
            ("max reconnect attempts", self.max_reconnect_attempts == 0),
            ("write coalesce bytes", self.write_coalesce_bytes == 0),
            ("max pending handshakes", self.max_pending_handshakes == 0),
        ] {
            if zero {
                return Err(TcpSettingsError::Zero { what });
            }
        }
        Ok(())
    }

    pub(crate) fn secret(&self) -> Option<&[u8]> {
        match &self.auth {
            Auth::SharedSecret(s) => Some(s),
            Auth::InsecureNoAuth => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_setting() {
        let bind = "127.0.0.1:0".parse().unwrap();
        assert_eq!(
            TcpSettings::with_secret("s", bind, "").validate(),
            Err(TcpSettingsError::EmptySecret)
        );
        assert_eq!(
            TcpSettings::insecure_no_auth("s", bind)
                .max_frame_size(0)
                .validate(),
            Err(TcpSettingsError::InvalidMaxFrameSize { size: 0 })
        );
        assert!(matches!(
            TcpSettings::insecure_no_auth("s", bind)
                .reconnect_backoff(Duration::from_secs(2), Duration::from_secs(1))
                .validate(),
            Err(TcpSettingsError::InvalidBackoff { .. })
        ));
        assert!(matches!(
            TcpSettings::insecure_no_auth("bad name", bind).validate(),
            Err(TcpSettingsError::InvalidSystemName { .. })
        ));
        assert!(format!("{:?}", TcpSettings::with_secret("s", bind, "x")).contains("redacted"));
    }
}

/// Errors building [`TlsSettings`].
#[cfg(feature = "tls")]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A PEM input holds no usable certificate or key.
    #[error("cannot read {what} from PEM: {reason}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The server name is not a valid DNS name or IP address.
    #[error("invalid TLS server name {name:?}")]
    InvalidServerName {
        /// The rejected name.
        name: String,
    },
    /// rustls refused the configuration.
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

/// TLS for a [`TcpTransport`](super::TcpTransport): rustls configurations for both roles and
/// the name every node's certificate carries (one cluster name, since peers are dialled by IP).
#[cfg(feature = "tls")]
#[derive(Clone)]
pub struct TlsSettings {
    /// Configuration when accepting.
    pub server: Arc<tokio_rustls::rustls::ServerConfig>,
    /// Configuration when dialling.
    pub client: Arc<tokio_rustls::rustls::ClientConfig>,
    /// The name checked in the accepting node's certificate.
    pub server_name: tokio_rustls::rustls::pki_types::ServerName<'static>,
}

#[cfg(feature = "tls")]
impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "tls")]
impl TlsSettings {
    /// Mutual TLS from PEM: the cluster CA, this node's certificate chain and private key,
    /// and the name in every node's certificate. Uses the ring provider.
    ///
    /// # Errors
    ///
    /// [`TlsError::Pem`] for unreadable PEM, [`TlsError::InvalidServerName`],
    /// [`TlsError::Config`] when rustls refuses the certificates.
    pub fn mutual_from_pem(
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
        server_name: &str,
    ) -> Result<Self, TlsError> {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        use tokio_rustls::rustls::server::WebPkiClientVerifier;
        use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig, crypto};

        let pem = |what: &'static str| {
            move |e: tokio_rustls::rustls::pki_types::pem::Error| TlsError::Pem {
                what,
                reason: e.to_string(),
            }
        };
        let config = |e: tokio_rustls::rustls::Error| TlsError::Config(e.to_string());
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem) {
            roots
                .add(ca.map_err(pem("CA certificate"))?)
                .map_err(config)?;
        }
        if roots.is_empty() {
            return Err(TlsError::Pem {
                what: "CA certificate",
                reason: "no certificate found".to_owned(),
            });
        }
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(pem("certificate chain"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(pem("private key"))?;
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            TlsError::InvalidServerName {
                name: server_name.to_owned(),
            }
        })?;
        let provider = Arc::new(crypto::ring::default_provider());
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config)?;
        Ok(Self {
            server: Arc::new(server),
            client: Arc::new(client),
            server_name,
        })
    }
}
