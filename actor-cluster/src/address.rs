//! Node addresses: `system@host:port`, the unit every transport sends frames to.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Errors raised when an [`Address`] is built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The system name is empty or holds a character outside `[a-zA-Z0-9-_]`.
    #[error("invalid actor system name {name:?}: expected one or more of [a-zA-Z0-9-_]")]
    InvalidSystemName {
        /// The rejected name.
        name: String,
    },
    /// The host is empty or holds one of `@`, `:`, `/` or whitespace.
    #[error("invalid host {host:?}: must be non-empty without '@', ':', '/' or whitespace")]
    InvalidHost {
        /// The rejected host.
        host: String,
    },
    /// The text is not of the form `system@host:port`.
    #[error("cannot parse address {text:?}: expected system@host:port")]
    Unparsable {
        /// The rejected text.
        text: String,
    },
}

/// The address of one node: an actor system name plus a host and port.
///
/// In-process transports use a logical node name as host and port 0
/// ([`Address::logical`]). The display form `system@host:port` is the authority part of a
/// remote actor path (`actor://system@host:port/user/...`).
///
/// # Examples
///
/// ```
/// use actor_cluster::Address;
///
/// let a = Address::new("orders", "127.0.0.1", 2552).unwrap();
/// assert_eq!(a.to_string(), "orders@127.0.0.1:2552");
/// assert_eq!("orders@127.0.0.1:2552".parse::<Address>().unwrap(), a);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    // `Arc<str>`: an address is cloned into every inbound frame, so cloning must not allocate.
    system: Arc<str>,
    host: Arc<str>,
    port: u16,
}

fn valid_system(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && !host
            .chars()
            .any(|c| c == '@' || c == ':' || c == '/' || c.is_whitespace())
}

impl Address {
    /// Builds an address from a system name, a host and a port.
    ///
    /// # Errors
    ///
    /// [`AddressError::InvalidSystemName`] or [`AddressError::InvalidHost`] when a part is
    /// malformed (IPv6 literal hosts are not supported).
    pub fn new(
        system: impl Into<String>,
        host: impl Into<String>,
        port: u16,
    ) -> Result<Self, AddressError> {
        let system = system.into();
        let host = host.into();
        if !valid_system(&system) {
            return Err(AddressError::InvalidSystemName { name: system });
        }
        if !valid_host(&host) {
            return Err(AddressError::InvalidHost { host });
        }
        Ok(Self {
            system: system.into(),
            host: host.into(),
            port,
        })
    }

    /// Builds the address of an in-process node: `system@node:0`.
    ///
    /// # Errors
    ///
    /// As [`Address::new`].
    pub fn logical(
        system: impl Into<String>,
        node: impl Into<String>,
    ) -> Result<Self, AddressError> {
        Self::new(system, node, 0)
    }

    /// Builds the address of a node listening on a socket address.
    ///
    /// # Errors
    ///
    /// [`AddressError::InvalidSystemName`] when the system name is malformed, or
    /// [`AddressError::InvalidHost`] for an IPv6 socket address.
    pub fn from_socket(
        system: impl Into<String>,
        socket: SocketAddr,
    ) -> Result<Self, AddressError> {
        Self::new(system, socket.ip().to_string(), socket.port())
    }

    /// The actor system name.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The host (an IP literal, a DNS name, or a logical node name).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (0 for logical in-process addresses).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address when the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.system, self.host, self.port)
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unparsable = || AddressError::Unparsable {
            text: text.to_owned(),
        };
        let (system, rest) = text.split_once('@').ok_or_else(unparsable)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(unparsable)?;
        let port = port.parse::<u16>().map_err(|_| unparsable())?;
        Self::new(system, host, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_parts() {
        assert!(matches!(
            Address::new("a b", "h", 1),
            Err(AddressError::InvalidSystemName { .. })
        ));
        assert!(matches!(
            Address::new("a", "h:1", 1),
            Err(AddressError::InvalidHost { .. })
        ));
        assert!(matches!(
            "nohost".parse::<Address>(),
            Err(AddressError::Unparsable { .. })
        ));
        assert!(matches!(
            "s@h:99999".parse::<Address>(),
            Err(AddressError::Unparsable { .. })
        ));
    }

    #[test]
    fn serde_round_trip() {
        let a = Address::new("sys", "10.0.0.1", 2552).unwrap();
        let bytes = postcard::to_stdvec(&a).unwrap();
        assert_eq!(postcard::from_bytes::<Address>(&bytes).unwrap(), a);
    }

    #[test]
    fn socket_round_trip() {
        let sock: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let a = Address::from_socket("sys", sock).unwrap();
        assert_eq!(a.socket_addr(), Some(sock));
        assert_eq!(
            Address::logical("sys", "node-a").unwrap().socket_addr(),
            None
        );
    }
}
