//! [`InMemoryTransport`]: nodes in one process wired through a shared [`InMemoryHub`].
//!
//! Built for tests on a paused tokio clock: delivery with no fault is immediate (a flume
//! send), delays go through `tokio::time`, random drops come from a seeded RNG, so a test
//! with one seed replays exactly.

use std::sync::Arc;

use crate::address::Address;
use crate::mesh::{BindError, MeshCore, MeshTransport};
use crate::mesh::{delegate_fault_injector, delegate_mesh_transport};
use crate::transport::{DEFAULT_MAX_FRAME_SIZE, FrameObserver, TrafficCounts};

/// Default seed of a hub's fault RNG (random drops and node uids).
///
/// A fixed seed keeps tests reproducible; pass another to [`InMemoryHub::with_options`] to
/// explore other interleavings.
pub const DEFAULT_FAULT_SEED: u64 = 0x5EED;

/// An in-process hub that nodes bind to; cloning shares the same hub.
///
/// Implements [`crate::FaultInjector`] for blackhole, heal, delay, random drop and crash
/// between addresses.
#[derive(Clone)]
pub struct InMemoryHub {
    core: Arc<MeshCore>,
}

impl Default for InMemoryHub {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryHub {
    /// Creates a hub with [`DEFAULT_FAULT_SEED`] and [`DEFAULT_MAX_FRAME_SIZE`].
    pub fn new() -> Self {
        Self::with_options(DEFAULT_FAULT_SEED, DEFAULT_MAX_FRAME_SIZE)
    }

    /// Creates a hub with a given RNG seed and maximum frame size in bytes.
    pub fn with_options(seed: u64, max_frame_size: usize) -> Self {
        Self {
            core: MeshCore::new(seed, max_frame_size),
        }
    }

    /// Binds a new node (a new incarnation with a fresh uid) at `address`.
    ///
    /// # Errors
    ///
    /// [`BindError::AddressInUse`] if a live node holds the address, [`BindError::NoRuntime`]
    /// outside a tokio runtime.
    pub fn bind(&self, address: Address) -> Result<Arc<InMemoryTransport>, BindError> {
        Ok(Arc::new(InMemoryTransport(self.core.bind(address)?)))
    }

    /// Frames and bytes delivered through this hub so far, between all nodes (frames a
    /// fault blackholed or dropped are not counted; delayed ones are, when sent).
    ///
    /// # Examples
    ///
    /// ```
    /// use actor_cluster::{Address, InMemoryHub, Transport};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let hub = InMemoryHub::new();
    /// let a = hub.bind(Address::logical("sys", "a").unwrap()).unwrap();
    /// let b = hub.bind(Address::logical("sys", "b").unwrap()).unwrap();
    /// let before = hub.traffic();
    /// a.send(b.local_address(), bytes::Bytes::from_static(b"hello")).unwrap();
    /// let sent = hub.traffic().since(&before);
    /// assert_eq!((sent.frames, sent.bytes), (1, 5));
    /// # }
    /// ```
    pub fn traffic(&self) -> TrafficCounts {
        self.core.traffic()
    }

    /// Installs a callback that sees every frame the hub delivers (sender, receiver,
    /// frame), e.g. to break traffic down by message type; `None` removes it. It runs under
    /// the hub's lock, so it must be quick and must not call into the hub.
    pub fn observe_frames(&self, observer: Option<FrameObserver>) {
        self.core.observe_frames(observer);
    }
}

delegate_fault_injector!(InMemoryHub);

/// A node bound to an [`InMemoryHub`]; dropping it shuts it down.
///
/// # Examples
///
/// ```
/// use actor_cluster::{Address, InMemoryHub, Transport};
/// use bytes::Bytes;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hub = InMemoryHub::new();
/// let a = hub.bind(Address::logical("sys", "a").unwrap()).unwrap();
/// let b = hub.bind(Address::logical("sys", "b").unwrap()).unwrap();
/// a.send(b.local_address(), Bytes::from_static(b"hi")).unwrap();
/// let got = b.inbound().recv_async().await.unwrap();
/// assert_eq!(&got.from, a.local_address());
/// assert_eq!(got.frame, "hi");
/// # }
/// ```
pub struct InMemoryTransport(MeshTransport);

delegate_mesh_transport!(InMemoryTransport);
