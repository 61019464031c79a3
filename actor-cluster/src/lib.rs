//! Transports and wire codec for clustered actors.
#![deny(missing_docs)]

mod address;
mod channel;
mod fault;
mod in_memory;
mod mesh;
pub mod system_delivery;
pub mod tcp;
pub mod transport;
pub mod wire;

pub use address::{Address, AddressError};
pub use channel::{ChannelMesh, ChannelTransport};
pub use fault::{Direction, FaultError, FaultInjector, LinkRule};
pub use in_memory::{DEFAULT_FAULT_SEED, InMemoryHub, InMemoryTransport};
pub use mesh::BindError;
pub use tcp::TcpTransport;
pub use transport::{
    BoxFuture, DEFAULT_MAX_FRAME_SIZE, DisconnectReason, DropReason, InboundFrame, RejectReason,
    Transport, TransportError, TransportEvent,
};
