//! The owner record: a small text file, replaced atomically, that tells followers who owns the
//! lease, under which epoch, where to reach it and until when the information is fresh.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First line of every record; a file without it is not ours (or is from another version).
const HEADER: &str = "actor-coordination owner record v1";
/// Last line of every record; its absence means the file was truncated.
const TRAILER: &str = "end";

/// What the record says about the current owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRecord {
    /// Instance id of the owner that wrote the record.
    pub instance_id: String,
    /// Grows by at least one on every change of owner; usable as a fencing token.
    pub epoch: u64,
    /// Endpoint the owner advertises, if any.
    pub endpoint: Option<String>,
    /// Wall-clock time after which the record no longer vouches for a live owner.
    pub expires_at: SystemTime,
    /// Whether the owner handed the lease over cleanly.
    pub released: bool,
}

/// Why a record file could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The file is empty.
    #[error("owner record is empty")]
    Empty,
    /// The first line is not the expected header.
    #[error("owner record has an unknown header {found:?}")]
    BadHeader {
        /// The first line found.
        found: String,
    },
    /// The file ends before the trailer line: it was cut short.
    #[error("owner record is truncated")]
    Truncated,
    /// A line does not hold the expected field.
    #[error("owner record lacks field {field}")]
    MissingField {
        /// The field expected at this position.
        field: &'static str,
    },
    /// A field holds a value that does not parse.
    #[error("owner record field {field} has invalid value {value:?}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// The raw value found.
        value: String,
    },
    /// The file is not valid UTF-8.
    #[error("owner record is not valid UTF-8")]
    NotUtf8,
}

impl OwnerRecord {
    /// Whether the record vouches for a live owner at `now`.
    pub fn is_live_at(&self, now: SystemTime) -> bool {
        !self.released && now < self.expires_at
    }

    /// Encodes the record as its file contents.
    pub fn encode(&self) -> String {
        let expires_ms = self
            .expires_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        format!(
            "{HEADER}\ninstance_id={}\nepoch={}\nendpoint={}\nexpires_at_ms={}\nreleased={}\n{TRAILER}\n",
            self.instance_id,
            self.epoch,
            self.endpoint.as_deref().unwrap_or(""),
            expires_ms,
            u8::from(self.released),
        )
    }

    /// Decodes file contents.
    ///
    /// # Errors
    ///
    /// A [`RecordError`] saying what is wrong: empty, unknown header, truncated, a missing or
    /// unparsable field.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.is_empty() {
            return Err(RecordError::Empty);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RecordError::NotUtf8)?;
        let mut lines = text.split('\n');
        let header = lines.next().unwrap_or_default();
        if header != HEADER {
            return Err(RecordError::BadHeader {
                found: header.chars().take(80).collect(),
            });
        }
        let mut field = |name: &'static str| -> Result<&str, RecordError> {
            let line = lines.next().ok_or(RecordError::Truncated)?;
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .ok_or(RecordError::MissingField { field: name })
        };
        let invalid = |field: &'static str, value: &str| RecordError::InvalidField {
            field,
            value: value.chars().take(80).collect(),
        };
        let instance_id = field("instance_id")?;
        if instance_id.is_empty() || instance_id.chars().any(char::is_whitespace) {
            return Err(invalid("instance_id", instance_id));
        }
        let epoch_raw = field("epoch")?;
        let epoch = epoch_raw.parse().map_err(|_| invalid("epoch", epoch_raw))?;
        let endpoint = field("endpoint")?;
        let expires_raw = field("expires_at_ms")?;
        let expires_ms: u64 = expires_raw
            .parse()
            .map_err(|_| invalid("expires_at_ms", expires_raw))?;
        let released_raw = field("released")?;
        let released = match released_raw {
            "0" => false,
            "1" => true,
            other => return Err(invalid("released", other)),
        };
        match lines.next() {
            Some(TRAILER) => {}
            Some(_) | None => return Err(RecordError::Truncated),
        }
        Ok(Self {
            instance_id: instance_id.to_owned(),
            epoch,
            endpoint: (!endpoint.is_empty()).then(|| endpoint.to_owned()),
            expires_at: UNIX_EPOCH + Duration::from_millis(expires_ms),
            released,
        })
    }
}

/// Reads the record at `path`: `Ok(None)` when there is none yet.
pub(crate) fn read(path: &Path) -> io::Result<Option<Result<OwnerRecord, RecordError>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(OwnerRecord::decode(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the record at `path` atomically: write a temporary file, fsync it, rename it over.
///
/// A reader sees either the old or the new record, never a mix.
pub(crate) fn write_atomically(path: &Path, record: &OwnerRecord) -> io::Result<()> {
    let tmp = temp_path(path, &record.instance_id);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(record.encode().as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless but untidy.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_path(path: &Path, instance_id: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp-{instance_id}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OwnerRecord {
        OwnerRecord {
            instance_id: "123-abc-def".to_owned(),
            epoch: 7,
            endpoint: Some("127.0.0.1:4000".to_owned()),
            expires_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            released: false,
        }
    }

    #[test]
    fn round_trips() {
        let record = sample();
        assert_eq!(OwnerRecord::decode(record.encode().as_bytes()), Ok(record));
        let bare = OwnerRecord {
            endpoint: None,
            released: true,
            ..sample()
        };
        assert_eq!(OwnerRecord::decode(bare.encode().as_bytes()), Ok(bare));
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let encoded = sample().encode();
        for cut in 0..encoded.len() - 1 {
            let result = OwnerRecord::decode(&encoded.as_bytes()[..cut]);
            assert!(
                result.is_err(),
                "prefix of {cut} bytes decoded as {result:?}"
            );
        }
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(OwnerRecord::decode(b""), Err(RecordError::Empty));
        assert!(matches!(
            OwnerRecord::decode(b"hello"),
            Err(RecordError::BadHeader { .. })
        ));
        assert_eq!(
            OwnerRecord::decode(&[0xff, 0xfe]),
            Err(RecordError::NotUtf8)
        );
        let bad_epoch = sample().encode().replace("epoch=7", "epoch=x");
        assert!(matches!(
            OwnerRecord::decode(bad_epoch.as_bytes()),
            Err(RecordError::InvalidField { field: "epoch", .. })
        ));
    }

    #[test]
    fn liveness_follows_expiry_and_release() {
        let record = sample();
        assert!(record.is_live_at(record.expires_at - Duration::from_millis(1)));
        assert!(!record.is_live_at(record.expires_at));
        let released = OwnerRecord {
            released: true,
            ..sample()
        };
        assert!(!released.is_live_at(UNIX_EPOCH));
    }
}
