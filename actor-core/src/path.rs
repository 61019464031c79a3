//! Actor paths (`actor://<system>[@host:port]/user/a/b`), node addresses and actor identities.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use thiserror::Error;

/// The scheme every actor path starts with.
pub const PATH_SCHEME: &str = "actor://";

/// A typed error for an invalid actor name, system name or path.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    /// The string does not start with [`PATH_SCHEME`].
    #[error("actor path {path:?} must start with {PATH_SCHEME:?}")]
    MissingScheme {
        /// The rejected path.
        path: String,
    },
    /// The system name is empty or has characters outside `[a-zA-Z0-9-_]`.
    #[error("invalid actor system name {name:?}: use one or more of [a-zA-Z0-9-_]")]
    InvalidSystemName {
        /// The rejected name.
        name: String,
    },
    /// The `host:port` part of a remote address is malformed.
    #[error("invalid address {address:?} in actor path: expected <system>@<host>:<port>")]
    InvalidAddress {
        /// The rejected address part.
        address: String,
    },
    /// An actor name is empty, contains `/` or another reserved character, or starts with `$`.
    #[error(
        "invalid actor name {name:?}: use [a-zA-Z0-9] and -_.*+:@&=,!~'; and do not start with '$'"
    )]
    InvalidActorName {
        /// The rejected name.
        name: String,
    },
}

/// Checks a system name: one or more of `[a-zA-Z0-9-_]`.
///
/// # Errors
/// [`PathError::InvalidSystemName`] naming the rejected string.
pub fn validate_system_name(name: &str) -> Result<(), PathError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PathError::InvalidSystemName {
            name: name.to_owned(),
        })
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.*+:@&=,!~';$".contains(c)
}

/// Checks a user-chosen actor name: non-empty, no `/`, not starting with `$` (reserved for
/// generated names).
///
/// # Errors
/// [`PathError::InvalidActorName`] naming the rejected string.
pub fn validate_actor_name(name: &str) -> Result<(), PathError> {
    if name.is_empty() || name.starts_with('$') || !name.chars().all(is_name_char) {
        return Err(PathError::InvalidActorName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Where an actor system lives: its name, plus `host:port` once it is reachable remotely.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    system: Arc<str>,
    host_port: Option<(Arc<str>, u16)>,
}

impl Address {
    /// A local address (no host): `actor://<system>`.
    pub fn local(system: &str) -> Self {
        Address {
            system: system.into(),
            host_port: None,
        }
    }

    /// A remote address: `actor://<system>@<host>:<port>`.
    pub fn remote(system: &str, host: &str, port: u16) -> Self {
        Address {
            system: system.into(),
            host_port: Some((host.into(), port)),
        }
    }

    /// The actor system's name.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The host, for a remote address.
    pub fn host(&self) -> Option<&str> {
        self.host_port.as_ref().map(|(h, _)| &**h)
    }

    /// The port, for a remote address.
    pub fn port(&self) -> Option<u16> {
        self.host_port.as_ref().map(|(_, p)| *p)
    }

    /// Whether this address names no host (an address inside one process).
    pub fn is_local(&self) -> bool {
        self.host_port.is_none()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PATH_SCHEME}{}", self.system)?;
        if let Some((h, p)) = &self.host_port {
            write!(f, "@{h}:{p}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

struct PathNode {
    address: Arc<Address>,
    parent: Option<ActorPath>,
    name: CompactName,
}

/// Longest name kept inside the path node itself (most names are short).
const INLINE_NAME_LEN: usize = 22;

/// An actor name stored inline when short, so a path node is one allocation.
enum CompactName {
    Inline {
        len: u8,
        bytes: [u8; INLINE_NAME_LEN],
    },
    Heap(Box<str>),
}

impl CompactName {
    fn new(name: &str) -> Self {
        if name.len() <= INLINE_NAME_LEN {
            let mut bytes = [0u8; INLINE_NAME_LEN];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            CompactName::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            CompactName::Heap(name.into())
        }
    }

    /// The name's bytes, without the UTF-8 check (byte order is the `str` order).
    /// A name from ASCII bytes the runtime generated; non-ASCII bytes are replaced by `_`, so
    /// the name stays valid UTF-8 without a UTF-8 check on the spawn path.
    fn from_ascii(name: &[u8]) -> Self {
        if name.len() <= INLINE_NAME_LEN {
            let mut bytes = [0u8; INLINE_NAME_LEN];
            for (dst, &b) in bytes.iter_mut().zip(name) {
                *dst = if b.is_ascii() { b } else { b'_' };
            }
            CompactName::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            CompactName::new(&String::from_utf8_lossy(name))
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            CompactName::Inline { len, bytes } => &bytes[..*len as usize],
            CompactName::Heap(s) => s.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // the bytes were copied from a `&str`: valid UTF-8, so this never falls back
            CompactName::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default()
            }
            CompactName::Heap(s) => s,
        }
    }
}

/// The location of an actor in its system's tree, e.g. `actor://shop/user/orders/o-17`.
///
/// Cheap to clone (one `Arc`). A path names a place, not an incarnation: an actor restarted
/// under the same name after it stopped has the same path but a new uid (see [`ActorId`]).
#[derive(Clone)]
pub struct ActorPath(Arc<PathNode>);

impl ActorPath {
    /// The root path of an address (`actor://<system>/`).
    pub fn root(address: Address) -> Self {
        ActorPath(Arc::new(PathNode {
            address: Arc::new(address),
            parent: None,
            name: CompactName::new(""),
        }))
    }

    /// The path of a child named `name` below this one. The name is not validated here.
    pub fn child(&self, name: &str) -> Self {
        ActorPath(Arc::new(PathNode {
            address: self.0.address.clone(),
            parent: Some(self.clone()),
            name: CompactName::new(name),
        }))
    }

    /// The path of a child whose name the runtime generated (ASCII, not validated).
    pub(crate) fn generated_child(&self, name: &[u8]) -> Self {
        ActorPath(Arc::new(PathNode {
            address: self.0.address.clone(),
            parent: Some(self.clone()),
            name: CompactName::from_ascii(name),
        }))
    }

    /// Parses `actor://<system>[@host:port]/seg/seg/...`.
    ///
    /// # Errors
    /// A [`PathError`] saying which part is malformed.
    ///
    /// # Examples
    /// ```
    /// use actor_core::ActorPath;
    /// let p = ActorPath::parse("actor://shop@10.0.0.1:2552/user/orders").unwrap();
    /// assert_eq!(p.name(), "orders");
    /// assert_eq!(p.address().port(), Some(2552));
    /// assert_eq!(p.to_string(), "actor://shop@10.0.0.1:2552/user/orders");
    /// ```
    pub fn parse(s: &str) -> Result<Self, PathError> {
        let rest = s
            .strip_prefix(PATH_SCHEME)
            .ok_or_else(|| PathError::MissingScheme { path: s.to_owned() })?;
        let (addr, elems) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let address = match addr.split_once('@') {
            None => {
                validate_system_name(addr)?;
                Address::local(addr)
            }
            Some((sys, hp)) => {
                validate_system_name(sys)?;
                let bad = || PathError::InvalidAddress {
                    address: addr.to_owned(),
                };
                let (host, port) = hp.rsplit_once(':').ok_or_else(bad)?;
                let port: u16 = port.parse().map_err(|_| bad())?;
                if host.is_empty() {
                    return Err(bad());
                }
                Address::remote(sys, host, port)
            }
        };
        let mut path = ActorPath::root(address);
        for seg in elems.split('/').filter(|s| !s.is_empty()) {
            if !seg.chars().all(is_name_char) {
                return Err(PathError::InvalidActorName {
                    name: seg.to_owned(),
                });
            }
            path = path.child(seg);
        }
        Ok(path)
    }

    /// The address of the system this path belongs to.
    pub fn address(&self) -> &Address {
        &self.0.address
    }

    /// The last element (the actor's name); empty for the root.
    pub fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// The name's bytes (compared without a UTF-8 check on hot paths).
    pub(crate) fn name_bytes(&self) -> &[u8] {
        self.0.name.as_bytes()
    }

    /// The parent path, `None` for the root.
    pub fn parent(&self) -> Option<&ActorPath> {
        self.0.parent.as_ref()
    }

    /// The elements below the root, outermost first (`["user", "a", "b"]`).
    pub fn elements(&self) -> Vec<&str> {
        let mut v = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            if p.0.parent.is_some() {
                v.push(p.name());
            }
            cur = p.0.parent.as_ref();
        }
        v.reverse();
        v
    }

    /// This path with another address (used when a local path is shown to remote nodes).
    pub fn with_address(&self, address: Address) -> ActorPath {
        let mut p = ActorPath::root(address);
        for e in self.elements() {
            p = p.child(e);
        }
        p
    }
}

impl PartialEq for ActorPath {
    fn eq(&self, other: &Self) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        self.name() == other.name()
            && match (&self.0.parent, &other.0.parent) {
                (Some(a), Some(b)) => a == b,
                (None, None) => *self.0.address == *other.0.address,
                _ => false,
            }
    }
}

impl Eq for ActorPath {}

impl Hash for ActorPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.address.hash(state);
        for e in self.elements() {
            e.hash(state);
        }
    }
}

impl PartialOrd for ActorPath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ActorPath {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.address(), self.elements()).cmp(&(other.address(), other.elements()))
    }
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.address)?;
        let elems = self.elements();
        if elems.is_empty() {
            return f.write_str("/");
        }
        for e in elems {
            write!(f, "/{e}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for ActorPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActorPath::parse(s)
    }
}

/// One incarnation of an actor: its path plus a uid unique within its system.
///
/// Two refs are equal when they point at the same incarnation: a successor spawned under the
/// same name gets a new uid, so a stale ref is never confused with it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId {
    path: ActorPath,
    uid: u64,
}

impl ActorId {
    /// An id from a path and an incarnation uid.
    pub fn new(path: ActorPath, uid: u64) -> Self {
        ActorId { path, uid }
    }

    /// The actor's path.
    pub fn path(&self) -> &ActorPath {
        &self.path
    }

    /// The incarnation uid.
    pub fn uid(&self) -> u64 {
        self.uid
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.path, self.uid)
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_local_and_remote() {
        for s in [
            "actor://sys/user/a/b",
            "actor://sys@127.0.0.1:2552/user/a",
            "actor://sys/",
        ] {
            assert_eq!(ActorPath::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            ActorPath::parse("actor://sys").unwrap().to_string(),
            "actor://sys/"
        );
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert!(matches!(
            ActorPath::parse("akka://sys/user"),
            Err(PathError::MissingScheme { .. })
        ));
        assert!(matches!(
            ActorPath::parse("actor://s s/user"),
            Err(PathError::InvalidSystemName { .. })
        ));
        assert!(matches!(
            ActorPath::parse("actor://sys@host/user"),
            Err(PathError::InvalidAddress { .. })
        ));
        assert!(matches!(
            ActorPath::parse("actor://sys@host:99999/user"),
            Err(PathError::InvalidAddress { .. })
        ));
        assert!(matches!(
            ActorPath::parse("actor://sys/user/a b"),
            Err(PathError::InvalidActorName { .. })
        ));
    }

    #[test]
    fn equality_is_structural() {
        let a = ActorPath::root(Address::local("s"))
            .child("user")
            .child("x");
        let b = ActorPath::parse("actor://s/user/x").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, ActorPath::parse("actor://t/user/x").unwrap());
        assert_eq!(a.elements(), vec!["user", "x"]);
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_actor_name("worker-1").is_ok());
        assert!(validate_actor_name("").is_err());
        assert!(validate_actor_name("$gen").is_err());
        assert!(validate_actor_name("a/b").is_err());
        assert!(validate_system_name("my_sys-1").is_ok());
        assert!(validate_system_name("my.sys").is_err());
    }
}
