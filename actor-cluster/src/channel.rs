//! [`ChannelTransport`]: a flume mesh between threads that each run their own tokio runtime.
//!
//! A multi-node harness runs one thread, one runtime and one actor system per node, all bound
//! to one [`ChannelMesh`]. The mesh handle is `Send + Sync + Clone`, so a conductor on any
//! thread injects faults (blackhole, heal, delay, drop, crash) while the nodes run. It shares
//! its engine with [`crate::InMemoryTransport`]; a delayed frame waits in a task on the
//! sender's runtime, so frames in flight from a node whose runtime stopped are lost, as on a
//! real network.

use std::sync::Arc;

use crate::address::Address;
use crate::mesh::{BindError, MeshCore, MeshTransport};
use crate::mesh::{delegate_fault_injector, delegate_mesh_transport};
use crate::transport::DEFAULT_MAX_FRAME_SIZE;

/// The conductor's handle on a mesh of threads; cloning shares the same mesh.
///
/// # Examples
///
/// ```
/// use actor_cluster::{Address, ChannelMesh, Direction, FaultInjector, Transport};
/// use bytes::Bytes;
///
/// let mesh = ChannelMesh::new(42);
/// let b_addr = Address::logical("sys", "b").unwrap();
/// let (ready_tx, ready_rx) = std::sync::mpsc::channel();
/// let node_b = {
///     let mesh = mesh.clone();
///     let b_addr = b_addr.clone();
///     std::thread::spawn(move || {
///         let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
///         rt.block_on(async move {
///             let b = mesh.bind(b_addr).unwrap();
///             ready_tx.send(()).unwrap();
///             b.inbound().recv_async().await.unwrap().frame
///         })
///     })
/// };
/// ready_rx.recv().unwrap();
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// rt.block_on(async {
///     let a = mesh.bind(Address::logical("sys", "a").unwrap()).unwrap();
///     mesh.delay(a.local_address(), &b_addr, Direction::Send, std::time::Duration::from_millis(1));
///     a.send(&b_addr, Bytes::from_static(b"across threads")).unwrap();
///     let got = tokio::task::spawn_blocking(move || node_b.join().unwrap()).await.unwrap();
///     assert_eq!(got, "across threads");
/// });
/// ```
#[derive(Clone)]
pub struct ChannelMesh {
    core: Arc<MeshCore>,
}

impl ChannelMesh {
    /// Creates a mesh whose random drops and uids come from `seed`, with
    /// [`DEFAULT_MAX_FRAME_SIZE`].
    pub fn new(seed: u64) -> Self {
        Self::with_max_frame_size(seed, DEFAULT_MAX_FRAME_SIZE)
    }

    /// Creates a mesh with a given seed and maximum frame size in bytes.
    pub fn with_max_frame_size(seed: u64, max_frame_size: usize) -> Self {
        Self {
            core: MeshCore::new(seed, max_frame_size),
        }
    }

    /// Binds a node at `address`; call it on the node's own runtime, which runs its delays.
    ///
    /// # Errors
    ///
    /// [`BindError::AddressInUse`] if a live node holds the address, [`BindError::NoRuntime`]
    /// outside a tokio runtime.
    pub fn bind(&self, address: Address) -> Result<Arc<ChannelTransport>, BindError> {
        Ok(Arc::new(ChannelTransport(self.core.bind(address)?)))
    }
}

delegate_fault_injector!(ChannelMesh);

/// A node bound to a [`ChannelMesh`]; dropping it shuts it down.
pub struct ChannelTransport(MeshTransport);

delegate_mesh_transport!(ChannelTransport);
