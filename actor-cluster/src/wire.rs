//! The wire codec: one versioned [`Envelope`] (serde + postcard) and typed user payloads.
//!
//! A frame is one byte of [`WIRE_VERSION`] followed by the postcard encoding of an
//! [`Envelope`]. User messages carry their [`RemoteMessage::MANIFEST`]; since postcard is not
//! self-describing, [`decode_message`] refuses a payload whose manifest is not the expected
//! type's, instead of decoding it into a valid but different value.
//!
//! For the hot path, [`encode_user`] writes a user message straight into a frame and
//! [`decode_ref`] reads a borrowed [`EnvelopeRef`] (no copies of paths or payload).
//!
//! # Examples
//!
//! ```
//! use actor_cluster::wire::{self, Envelope, RemoteMessage, WireError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Ping(u32);
//! impl RemoteMessage for Ping {
//!     const MANIFEST: &'static str = "example.Ping";
//! }
//!
//! let env = wire::user_envelope("actor://sys@127.0.0.1:2552/user/pong", None, &Ping(7)).unwrap();
//! let frame = wire::encode(&env).unwrap();
//! let Envelope::User { manifest, payload, .. } = wire::decode(&frame).unwrap() else { panic!() };
//! assert_eq!(wire::decode_message::<Ping>(&manifest, &payload).unwrap(), Ping(7));
//! assert!(matches!(
//!     wire::decode_message::<Ping>("example.Other", &payload),
//!     Err(WireError::ManifestMismatch { .. })
//! ));
//! ```

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The envelope format version carried in the first byte of every frame.
pub const WIRE_VERSION: u8 = 1;

/// Initial buffer size when encoding an envelope: 256 bytes.
///
/// Fits a typical user envelope (paths, manifest, a small payload) without regrowing; larger
/// envelopes grow the buffer as needed.
pub const ENCODE_CAPACITY_HINT: usize = 256;

/// Errors of encoding and decoding frames and payloads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame has no bytes at all.
    #[error("empty frame")]
    Empty,
    /// The frame's version byte is not [`WIRE_VERSION`].
    #[error("unsupported wire version {actual} (expected {expected})")]
    UnsupportedVersion {
        /// The version this build reads.
        expected: u8,
        /// The version in the frame.
        actual: u8,
    },
    /// The bytes are not a valid encoding.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded (envelope or a manifest).
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// Bytes left over after a complete value.
    #[error("{count} trailing bytes after the {what}")]
    TrailingBytes {
        /// What was decoded.
        what: String,
        /// How many bytes were left.
        count: usize,
    },
    /// The payload's manifest is not the expected message type's.
    #[error("manifest mismatch: expected {expected:?}, got {actual:?}")]
    ManifestMismatch {
        /// The manifest of the type decoding.
        expected: String,
        /// The manifest in the envelope.
        actual: String,
    },
    /// A value could not be encoded.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The encoder's message.
        reason: String,
    },
}

/// A system message of remote death-watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemMessage {
    /// `watcher` starts watching `watchee` (both actor paths).
    Watch {
        /// The watched actor's path.
        watchee: String,
        /// The watching actor's path.
        watcher: String,
    },
    /// `watcher` stops watching `watchee`.
    Unwatch {
        /// The watched actor's path.
        watchee: String,
        /// The watching actor's path.
        watcher: String,
    },
    /// `actor` has terminated.
    Terminated {
        /// The terminated actor's path.
        actor: String,
        /// Whether the actor existed (false: it was already gone when watched).
        existence_confirmed: bool,
        /// Whether the termination is inferred from the loss of its node.
        address_terminated: bool,
    },
}

/// Everything that crosses the wire between two nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Envelope {
    /// A user message for an actor.
    User {
        /// The recipient's actor path.
        recipient: String,
        /// The sender's actor path, if any.
        sender: Option<String>,
        /// The payload type's [`RemoteMessage::MANIFEST`].
        manifest: String,
        /// The postcard-encoded message.
        payload: Bytes,
    },
    /// A numbered system message, resent until acknowledged (see
    /// [`crate::system_delivery`]).
    System {
        /// The sequence number (from 1, per association).
        seq: u64,
        /// The lowest sequence number the sender still holds; a receiver expecting less
        /// has lost messages for good.
        first_unacked: u64,
        /// The message.
        msg: SystemMessage,
    },
    /// Cumulative acknowledgement of system messages up to and including `up_to`.
    SystemAck {
        /// The highest sequence number delivered in order.
        up_to: u64,
    },
    /// An opaque message of the membership protocol.
    Membership(Bytes),
}

/// A borrowed view of an [`Envelope`], decoded without copying strings or payloads out of
/// the frame: the hot path of inbound routing. Same wire layout as [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvelopeRef<'a> {
    /// A user message for an actor.
    User {
        /// The recipient's actor path.
        recipient: &'a str,
        /// The sender's actor path, if any.
        sender: Option<&'a str>,
        /// The payload type's [`RemoteMessage::MANIFEST`].
        manifest: &'a str,
        /// The postcard-encoded message.
        #[serde(serialize_with = "as_bytes")]
        payload: &'a [u8],
    },
    /// A numbered system message.
    System {
        /// The sequence number.
        seq: u64,
        /// The lowest sequence number the sender still holds.
        first_unacked: u64,
        /// The message.
        msg: SystemMessage,
    },
    /// Cumulative acknowledgement of system messages.
    SystemAck {
        /// The highest sequence number delivered in order.
        up_to: u64,
    },
    /// An opaque message of the membership protocol.
    Membership(#[serde(serialize_with = "as_bytes")] &'a [u8]),
}

fn as_bytes<S: serde::Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// A message type that can cross nodes: serde plus a stable manifest name.
///
/// The manifest must stay the same across versions of a program and be unique among the
/// message types one actor may receive; the type's Rust path is a fine choice.
pub trait RemoteMessage: Serialize + DeserializeOwned + Send + 'static {
    /// The stable name of this message type on the wire.
    const MANIFEST: &'static str;
}

/// Encodes an envelope as a frame: the version byte then postcard.
///
/// # Errors
///
/// [`WireError::Encode`] if postcard fails.
pub fn encode(envelope: &Envelope) -> Result<Bytes, WireError> {
    let mut buf = Vec::with_capacity(ENCODE_CAPACITY_HINT);
    buf.push(WIRE_VERSION);
    postcard::to_extend(envelope, buf)
        .map(Bytes::from)
        .map_err(|e| WireError::Encode {
            what: "envelope".to_owned(),
            reason: e.to_string(),
        })
}

/// Decodes a frame into an envelope, checking the version byte.
///
/// # Errors
///
/// [`WireError::Empty`], [`WireError::UnsupportedVersion`], [`WireError::Malformed`] or
/// [`WireError::TrailingBytes`].
pub fn decode(frame: &[u8]) -> Result<Envelope, WireError> {
    let (&version, body) = frame.split_first().ok_or(WireError::Empty)?;
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion {
            expected: WIRE_VERSION,
            actual: version,
        });
    }
    decode_exact(body, "envelope")
}

/// Decodes a frame into a borrowed [`EnvelopeRef`], checking the version byte.
///
/// # Errors
///
/// As [`decode`].
pub fn decode_ref(frame: &[u8]) -> Result<EnvelopeRef<'_>, WireError> {
    let (&version, body) = frame.split_first().ok_or(WireError::Empty)?;
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion {
            expected: WIRE_VERSION,
            actual: version,
        });
    }
    let (value, rest) = postcard::take_from_bytes(body).map_err(|e| WireError::Malformed {
        what: "envelope".to_owned(),
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes {
            what: "envelope".to_owned(),
            count: rest.len(),
        });
    }
    Ok(value)
}

/// Encodes a user message to `recipient` straight into a frame, without building an owned
/// [`Envelope`] first.
///
/// # Errors
///
/// [`WireError::Encode`] if the message cannot be encoded.
pub fn encode_user<M: RemoteMessage>(
    recipient: &str,
    sender: Option<&str>,
    message: &M,
) -> Result<Bytes, WireError> {
    let payload = postcard::to_stdvec(message).map_err(|e| WireError::Encode {
        what: M::MANIFEST.to_owned(),
        reason: e.to_string(),
    })?;
    let envelope = EnvelopeRef::User {
        recipient,
        sender,
        manifest: M::MANIFEST,
        payload: &payload,
    };
    let mut buf = Vec::with_capacity(ENCODE_CAPACITY_HINT.max(payload.len() + 64));
    buf.push(WIRE_VERSION);
    postcard::to_extend(&envelope, buf)
        .map(Bytes::from)
        .map_err(|e| WireError::Encode {
            what: "envelope".to_owned(),
            reason: e.to_string(),
        })
}

fn decode_exact<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, WireError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| WireError::Malformed {
        what: what.to_owned(),
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes {
            what: what.to_owned(),
            count: rest.len(),
        });
    }
    Ok(value)
}

/// Encodes a message payload with postcard.
///
/// # Errors
///
/// [`WireError::Encode`] if postcard fails.
pub fn encode_message<M: RemoteMessage>(message: &M) -> Result<Bytes, WireError> {
    postcard::to_stdvec(message)
        .map(Bytes::from)
        .map_err(|e| WireError::Encode {
            what: M::MANIFEST.to_owned(),
            reason: e.to_string(),
        })
}

/// Decodes a payload into `M`, refusing a manifest that is not `M::MANIFEST`.
///
/// # Errors
///
/// [`WireError::ManifestMismatch`] naming both manifests, [`WireError::Malformed`] or
/// [`WireError::TrailingBytes`] for bytes that are not an `M`.
pub fn decode_message<M: RemoteMessage>(manifest: &str, payload: &[u8]) -> Result<M, WireError> {
    if manifest != M::MANIFEST {
        return Err(WireError::ManifestMismatch {
            expected: M::MANIFEST.to_owned(),
            actual: manifest.to_owned(),
        });
    }
    decode_exact(payload, M::MANIFEST)
}

/// Builds the user envelope carrying `message` to `recipient`.
///
/// # Errors
///
/// [`WireError::Encode`] if the message cannot be encoded.
pub fn user_envelope<M: RemoteMessage>(
    recipient: impl Into<String>,
    sender: Option<String>,
    message: &M,
) -> Result<Envelope, WireError> {
    Ok(Envelope::User {
        recipient: recipient.into(),
        sender,
        manifest: M::MANIFEST.to_owned(),
        payload: encode_message(message)?,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct A(u64, String);
    impl RemoteMessage for A {
        const MANIFEST: &'static str = "test.A";
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct B(u64, String);
    impl RemoteMessage for B {
        const MANIFEST: &'static str = "test.B";
    }

    #[test]
    fn every_variant_round_trips() {
        let envelopes = [
            user_envelope("p", Some("s".into()), &A(1, "x".into())).unwrap(),
            Envelope::System {
                seq: 3,
                first_unacked: 2,
                msg: SystemMessage::Watch {
                    watchee: "a".into(),
                    watcher: "b".into(),
                },
            },
            Envelope::System {
                seq: 4,
                first_unacked: 2,
                msg: SystemMessage::Terminated {
                    actor: "a".into(),
                    existence_confirmed: true,
                    address_terminated: false,
                },
            },
            Envelope::SystemAck { up_to: 9 },
            Envelope::Membership(Bytes::from_static(b"gossip")),
        ];
        for env in envelopes {
            assert_eq!(decode(&encode(&env).unwrap()).unwrap(), env);
        }
    }

    #[test]
    fn version_and_manifest_are_checked() {
        let mut frame = encode(&Envelope::SystemAck { up_to: 1 }).unwrap().to_vec();
        frame[0] = WIRE_VERSION + 1;
        assert_eq!(
            decode(&frame),
            Err(WireError::UnsupportedVersion {
                expected: WIRE_VERSION,
                actual: WIRE_VERSION + 1
            })
        );
        assert_eq!(decode(&[]), Err(WireError::Empty));
        // Same shape, different type: decodes fine by layout, refused by manifest.
        let payload = encode_message(&A(5, "five".into())).unwrap();
        assert_eq!(
            decode_message::<B>(A::MANIFEST, &payload),
            Err(WireError::ManifestMismatch {
                expected: "test.B".into(),
                actual: "test.A".into()
            })
        );
        let mut long = payload.to_vec();
        long.push(0);
        assert!(matches!(
            decode_message::<A>(A::MANIFEST, &long),
            Err(WireError::TrailingBytes { count: 1, .. })
        ));
    }

    #[test]
    fn borrowed_and_owned_envelopes_share_one_layout() {
        let owned = [
            user_envelope("r", Some("s".into()), &A(1, "x".into())).unwrap(),
            user_envelope("r", None, &A(2, String::new())).unwrap(),
            Envelope::System {
                seq: 7,
                first_unacked: 3,
                msg: SystemMessage::Unwatch {
                    watchee: "a".into(),
                    watcher: "b".into(),
                },
            },
            Envelope::SystemAck { up_to: 4 },
            Envelope::Membership(Bytes::from_static(b"m")),
        ];
        for env in owned {
            let frame = encode(&env).unwrap();
            let borrowed = decode_ref(&frame).unwrap();
            // Re-encoding the borrowed view gives the same bytes.
            let mut again = vec![WIRE_VERSION];
            again.extend(postcard::to_stdvec(&borrowed).unwrap());
            assert_eq!(again, frame.to_vec(), "{env:?}");
        }
        let frame = encode_user("actor://s@h:1/user/x", Some("y"), &A(9, "nine".into())).unwrap();
        let Envelope::User {
            recipient,
            sender,
            manifest,
            payload,
        } = decode(&frame).unwrap()
        else {
            panic!("not a user envelope")
        };
        assert_eq!(
            (recipient.as_str(), sender.as_deref()),
            ("actor://s@h:1/user/x", Some("y"))
        );
        assert_eq!(
            decode_message::<A>(&manifest, &payload).unwrap(),
            A(9, "nine".into())
        );
        let EnvelopeRef::User { payload, .. } = decode_ref(&frame).unwrap() else {
            panic!("not a user envelope")
        };
        assert_eq!(
            decode_message::<A>(A::MANIFEST, payload).unwrap(),
            A(9, "nine".into())
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            let mut versioned = vec![WIRE_VERSION];
            versioned.extend_from_slice(&bytes);
            let _ = decode(&versioned);
            let _ = decode_ref(&versioned);
            let _ = decode_message::<A>(A::MANIFEST, &bytes);
        }

        #[test]
        fn user_payloads_round_trip(n in any::<u64>(), s in ".{0,40}") {
            let env = user_envelope("actor://s@h:1/user/x", None, &A(n, s.clone())).unwrap();
            let Envelope::User { manifest, payload, .. } = decode(&encode(&env).unwrap()).unwrap() else {
                panic!("not a user envelope");
            };
            prop_assert_eq!(decode_message::<A>(&manifest, &payload).unwrap(), A(n, s));
        }
    }
}
