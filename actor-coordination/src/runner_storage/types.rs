//! The values runner storage deals in (addresses, runners, incarnations, shard ids, machine
//! ids, locks) and their string forms, used by [`EncodedRunnerStorage`](super::EncodedRunnerStorage).
//!
//! String forms: address `host:port`, runner id `host:port#incarnation`, runner
//! `host:port#incarnation;weight;group,group`, shard id `group:number`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::RunnerStorageError;

/// Shard group used when none is given.
pub const DEFAULT_SHARD_GROUP: &str = "default";

/// Longest accepted host or group name, in bytes: keeps keys small in every backend.
pub const MAX_NAME_LEN: usize = 255;

fn invalid(what: &'static str, value: &str, reason: &'static str) -> RunnerStorageError {
    RunnerStorageError::Invalid {
        what,
        value: value.chars().take(80).collect(),
        reason,
    }
}

/// Checks a group name: `[A-Za-z0-9_.-]+`, at most [`MAX_NAME_LEN`] bytes.
fn check_group(group: &str) -> Result<(), RunnerStorageError> {
    if group.is_empty() || group.len() > MAX_NAME_LEN {
        return Err(invalid("shard group", group, "must be 1 to 255 bytes"));
    }
    if !group
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(invalid(
            "shard group",
            group,
            "may only hold [A-Za-z0-9_.-]",
        ));
    }
    Ok(())
}

/// Where a runner listens: host and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunnerAddress {
    host: String,
    port: u16,
}

impl RunnerAddress {
    /// Creates an address.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::Invalid`] when the host is empty, longer than [`MAX_NAME_LEN`], or
    /// holds whitespace, a control character or one of `#;,` (reserved by the string forms).
    pub fn new(host: impl Into<String>, port: u16) -> Result<Self, RunnerStorageError> {
        let host = host.into();
        if host.is_empty() || host.len() > MAX_NAME_LEN {
            return Err(invalid("host", &host, "must be 1 to 255 bytes"));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '#' | ';' | ','))
        {
            return Err(invalid(
                "host",
                &host,
                "may not hold whitespace, control characters or #;,",
            ));
        }
        Ok(Self { host, port })
    }

    /// The host name or IP address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for RunnerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for RunnerAddress {
    type Err = RunnerStorageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| invalid("address", s, "expected host:port"))?;
        let port = port
            .parse()
            .map_err(|_| invalid("address", s, "port is not a number in 0..=65535"))?;
        Self::new(host, port)
    }
}

/// One incarnation of a runner: its address plus the uid it drew at start.
///
/// Shard locks belong to a `RunnerId`, so a runner restarted at the same address (a new
/// incarnation) does not inherit the locks of its previous life.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunnerId {
    /// Where the runner listens.
    pub address: RunnerAddress,
    /// Unique per process start (for example a random `u64`).
    pub incarnation: u64,
}

impl RunnerId {
    /// Creates a runner id.
    pub fn new(address: RunnerAddress, incarnation: u64) -> Self {
        Self {
            address,
            incarnation,
        }
    }
}

impl fmt::Display for RunnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.address, self.incarnation)
    }
}

impl FromStr for RunnerId {
    type Err = RunnerStorageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (address, incarnation) = s
            .rsplit_once('#')
            .ok_or_else(|| invalid("runner id", s, "expected host:port#incarnation"))?;
        let incarnation = incarnation
            .parse()
            .map_err(|_| invalid("runner id", s, "incarnation is not a u64"))?;
        Ok(Self {
            address: address.parse()?,
            incarnation,
        })
    }
}

/// A runner as registered: its id, the shard groups it serves and its relative weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// Address and incarnation.
    pub id: RunnerId,
    /// Shard groups this runner hosts (each `[A-Za-z0-9_.-]+`).
    pub groups: Vec<String>,
    /// Relative share of shards this runner should get (1 = normal).
    pub weight: u32,
}

impl Runner {
    /// A runner in the [`DEFAULT_SHARD_GROUP`] with weight 1.
    pub fn new(address: RunnerAddress, incarnation: u64) -> Self {
        Self {
            id: RunnerId::new(address, incarnation),
            groups: vec![DEFAULT_SHARD_GROUP.to_owned()],
            weight: 1,
        }
    }

    /// Replaces the groups.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::Invalid`] naming the first invalid group.
    pub fn with_groups<I, S>(mut self, groups: I) -> Result<Self, RunnerStorageError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        for group in &groups {
            check_group(group)?;
        }
        self.groups = groups;
        Ok(self)
    }

    /// Sets the weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The runner's address.
    pub fn address(&self) -> &RunnerAddress {
        &self.id.address
    }

    /// Encodes the runner as `host:port#incarnation;weight;group,group`.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::Invalid`] when a group name is invalid (the fields are public, so
    /// this is checked again here).
    pub fn encode(&self) -> Result<String, RunnerStorageError> {
        for group in &self.groups {
            check_group(group)?;
        }
        Ok(format!(
            "{};{};{}",
            self.id,
            self.weight,
            self.groups.join(",")
        ))
    }

    /// Decodes [`Runner::encode`]'s form.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::Invalid`] saying which part does not parse.
    pub fn decode(s: &str) -> Result<Self, RunnerStorageError> {
        let mut parts = s.splitn(3, ';');
        let (Some(id), Some(weight), Some(groups)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("runner", s, "expected id;weight;groups"));
        };
        let weight = weight
            .parse()
            .map_err(|_| invalid("runner", s, "weight is not a u32"))?;
        let groups: Vec<String> = if groups.is_empty() {
            Vec::new()
        } else {
            groups.split(',').map(str::to_owned).collect()
        };
        for group in &groups {
            check_group(group)?;
        }
        Ok(Self {
            id: id.parse()?,
            groups,
            weight,
        })
    }
}

/// A shard: a group and a number within it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId {
    group: String,
    number: u32,
}

impl ShardId {
    /// Creates a shard id.
    ///
    /// # Errors
    ///
    /// [`RunnerStorageError::Invalid`] when the group is not `[A-Za-z0-9_.-]+` of at most
    /// [`MAX_NAME_LEN`] bytes.
    pub fn new(group: impl Into<String>, number: u32) -> Result<Self, RunnerStorageError> {
        let group = group.into();
        check_group(&group)?;
        Ok(Self { group, number })
    }

    /// Shard `number` of the [`DEFAULT_SHARD_GROUP`].
    pub fn default_group(number: u32) -> Self {
        Self {
            group: DEFAULT_SHARD_GROUP.to_owned(),
            number,
        }
    }

    /// The shard group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The shard number within its group.
    pub fn number(&self) -> u32 {
        self.number
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.group, self.number)
    }
}

impl FromStr for ShardId {
    type Err = RunnerStorageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (group, number) = s
            .rsplit_once(':')
            .ok_or_else(|| invalid("shard id", s, "expected group:number"))?;
        let number = number
            .parse()
            .map_err(|_| invalid("shard id", s, "number is not a u32"))?;
        Self::new(group, number)
    }
}

/// The id a registered runner receives, unique among registered runners (for example to
/// seed a snowflake id generator). Stable across re-registrations at the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(pub u32);

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A live shard lock: which runner incarnation holds which shard, and for how much longer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLock {
    /// The locked shard.
    pub shard: ShardId,
    /// The incarnation holding it.
    pub holder: RunnerId,
    /// Time left until the lock expires, on the storage's clock.
    pub expires_in: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_round_trip() {
        let address = RunnerAddress::new("10.0.0.1", 9000).expect("address");
        assert_eq!(address.to_string(), "10.0.0.1:9000");
        assert_eq!(
            "10.0.0.1:9000".parse::<RunnerAddress>().expect("parse"),
            address
        );
        let ipv6 = "[::1]:80".parse::<RunnerAddress>().expect("ipv6");
        assert_eq!((ipv6.host(), ipv6.port()), ("[::1]", 80));

        let runner = Runner::new(address, u64::MAX)
            .with_weight(3)
            .with_groups(["a", "b-2"])
            .expect("groups");
        let encoded = runner.encode().expect("encode");
        assert_eq!(encoded, "10.0.0.1:9000#18446744073709551615;3;a,b-2");
        assert_eq!(Runner::decode(&encoded).expect("decode"), runner);
        assert_eq!(
            runner.id.to_string().parse::<RunnerId>().expect("id"),
            runner.id
        );

        let shard = ShardId::new("orders", 7).expect("shard");
        assert_eq!(shard.to_string(), "orders:7");
        assert_eq!("orders:7".parse::<ShardId>().expect("parse"), shard);
    }

    #[test]
    fn bad_strings_are_typed_errors() {
        for bad in ["", "host", "host:x", "host:70000", ":80", "a b:1", "a#b:1"] {
            assert!(
                matches!(
                    bad.parse::<RunnerAddress>(),
                    Err(RunnerStorageError::Invalid { .. })
                ),
                "{bad}"
            );
        }
        for bad in ["", "h:1", "h:1#x", "#1"] {
            assert!(bad.parse::<RunnerId>().is_err(), "{bad}");
        }
        for bad in ["", "g", "g:-1", ":1", "a b:1", "x:1:2"] {
            assert!(bad.parse::<ShardId>().is_err(), "{bad}");
        }
        for bad in ["", "h:1#1", "h:1#1;x;a", "h:1#1;1;a b"] {
            assert!(Runner::decode(bad).is_err(), "{bad}");
        }
        let mut runner = Runner::new(RunnerAddress::new("h", 1).expect("address"), 1);
        runner.groups.push("bad,group".to_owned());
        assert!(runner.encode().is_err());
    }
}
