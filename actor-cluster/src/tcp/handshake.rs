//! The TCP handshake: protocol version, system name, node uid and a shared-secret proof.
//!
//! The connecting side (client) opens with a [`Hello`] frame: the [`MAGIC`] bytes, the
//! protocol version byte, then the postcard-encoded hello carrying its address, uid and a
//! fresh nonce. The listening side answers [`ServerMessage::Challenge`] with its own nonce and
//! an HMAC-SHA256 proof over both nonces and both uids; the client checks it and answers
//! [`ClientProof`] with its own proof (a different label, so one proof cannot be replayed as
//! the other). The server answers [`ServerMessage::Accepted`] or [`ServerMessage::Refused`].
//! With no secret on both sides the proofs are `None`: the explicit insecure mode. A side with
//! a secret refuses a side without one. After acceptance only the client writes on the
//! connection (one connection per direction), so a peer address maps to one writer.
//!
//! Every handshake frame is length-prefixed like data frames and at most
//! [`HANDSHAKE_MAX_FRAME`] bytes.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The transport protocol version this build speaks; a peer with another one is refused.
pub const PROTOCOL_VERSION: u8 = 1;

/// The first four bytes of a hello frame.
pub const MAGIC: [u8; 4] = *b"ACTR";

/// Largest handshake frame in bytes; a longer one closes the connection.
pub const HANDSHAKE_MAX_FRAME: usize = 1024;

/// A random challenge value.
pub type Nonce = [u8; 32];

/// An HMAC-SHA256 proof of the shared secret.
pub type Proof = [u8; 32];

const SERVER_LABEL: &[u8] = b"actor-cluster server proof v1";
const CLIENT_LABEL: &[u8] = b"actor-cluster client proof v1";

/// Errors of the handshake, on either side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The frame does not start with [`MAGIC`].
    #[error("not a handshake of this protocol (bad magic bytes)")]
    BadMagic,
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u8,
        /// The peer's version.
        theirs: u8,
    },
    /// A handshake message could not be decoded.
    #[error("malformed handshake message: {0}")]
    Malformed(String),
    /// The peer's proof of the shared secret is wrong.
    #[error("authentication failed: wrong shared secret")]
    AuthenticationFailed,
    /// One side has a secret and the other has none.
    #[error("shared-secret mismatch (this node requires a secret: {local_requires})")]
    SecretMismatch {
        /// Whether this node has a secret.
        local_requires: bool,
    },
    /// The server answered with a different system name than the address asked for.
    #[error("connected to system {actual:?} but expected {expected:?}")]
    WrongSystem {
        /// The system name in the address we dialled.
        expected: String,
        /// The system name the server announced.
        actual: String,
    },
    /// The peer refused the handshake.
    #[error("refused by peer: {reason}")]
    Refused {
        /// The reason the peer gave.
        reason: String,
    },
    /// The handshake did not finish in time.
    #[error("handshake timed out")]
    Timeout,
    /// The connection closed during the handshake.
    #[error("connection closed during the handshake")]
    Closed,
    /// An I/O or framing error.
    #[error("i/o error during the handshake: {0}")]
    Io(String),
}

/// The client's opening message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The client's actor system name.
    pub system: String,
    /// The host the client listens on.
    pub host: String,
    /// The port the client listens on.
    pub port: u16,
    /// The client's incarnation uid.
    pub uid: u64,
    /// The client's challenge for the server.
    pub nonce: Nonce,
    /// Whether the client has a shared secret.
    pub authenticated: bool,
}

/// Messages from the listening side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The server's identity, challenge and proof.
    Challenge {
        /// The server's actor system name.
        system: String,
        /// The server's incarnation uid.
        uid: u64,
        /// The server's challenge for the client.
        nonce: Nonce,
        /// HMAC over both nonces and uids, `None` in insecure mode.
        proof: Option<Proof>,
    },
    /// The client's proof was accepted; data frames may follow.
    Accepted,
    /// The handshake was refused; the server closes the connection.
    Refused {
        /// Why.
        reason: String,
    },
}

/// The client's answer to the challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProof {
    /// HMAC over both nonces and uids, `None` in insecure mode.
    pub proof: Option<Proof>,
}

/// Encodes a hello frame body: magic, version byte, postcard hello.
///
/// # Errors
///
/// [`HandshakeError::Malformed`] if postcard fails to encode.
pub fn encode_hello(version: u8, hello: &Hello) -> Result<Bytes, HandshakeError> {
    let body = postcard::to_stdvec(hello).map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(MAGIC.len() + 1 + body.len());
    buf.put_slice(&MAGIC);
    buf.put_u8(version);
    buf.put_slice(&body);
    Ok(buf.freeze())
}

/// Decodes a hello frame body, checking magic bytes and version.
///
/// # Errors
///
/// [`HandshakeError::BadMagic`], [`HandshakeError::VersionMismatch`] or
/// [`HandshakeError::Malformed`].
pub fn decode_hello(frame: &[u8]) -> Result<Hello, HandshakeError> {
    if frame.len() < MAGIC.len() + 1 || frame[..MAGIC.len()] != MAGIC {
        return Err(HandshakeError::BadMagic);
    }
    let version = frame[MAGIC.len()];
    if version != PROTOCOL_VERSION {
        return Err(HandshakeError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: version,
        });
    }
    postcard::from_bytes(&frame[MAGIC.len() + 1..])
        .map_err(|e| HandshakeError::Malformed(e.to_string()))
}

/// Encodes any later handshake message with postcard.
///
/// # Errors
///
/// [`HandshakeError::Malformed`] if postcard fails to encode.
pub fn encode<T: Serialize>(message: &T) -> Result<Bytes, HandshakeError> {
    postcard::to_stdvec(message)
        .map(Bytes::from)
        .map_err(|e| HandshakeError::Malformed(e.to_string()))
}

/// Decodes a later handshake message.
///
/// # Errors
///
/// [`HandshakeError::Malformed`] when the bytes are not a `T`.
pub fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, HandshakeError> {
    postcard::from_bytes(frame).map_err(|e| HandshakeError::Malformed(e.to_string()))
}

/// The transcript both proofs cover.
#[derive(Debug, Clone, Copy)]
pub struct Transcript {
    /// The client's nonce.
    pub client_nonce: Nonce,
    /// The server's nonce.
    pub server_nonce: Nonce,
    /// The client's uid.
    pub client_uid: u64,
    /// The server's uid.
    pub server_uid: u64,
}

fn mac(secret: &[u8], label: &[u8], t: &Transcript) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    mac.update(label);
    mac.update(&t.client_nonce);
    mac.update(&t.server_nonce);
    mac.update(&t.client_uid.to_be_bytes());
    mac.update(&t.server_uid.to_be_bytes());
    Some(mac)
}

/// The server's proof of the secret over the transcript.
pub fn server_proof(secret: &[u8], transcript: &Transcript) -> Option<Proof> {
    mac(secret, SERVER_LABEL, transcript).map(|m| m.finalize().into_bytes().into())
}

/// The client's proof of the secret over the transcript.
pub fn client_proof(secret: &[u8], transcript: &Transcript) -> Option<Proof> {
    mac(secret, CLIENT_LABEL, transcript).map(|m| m.finalize().into_bytes().into())
}

fn verify(
    secret: Option<&[u8]>,
    label: &[u8],
    t: &Transcript,
    proof: Option<&Proof>,
) -> Result<(), HandshakeError> {
    match (secret, proof) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(HandshakeError::SecretMismatch {
            local_requires: true,
        }),
        (None, Some(_)) => Err(HandshakeError::SecretMismatch {
            local_requires: false,
        }),
        (Some(secret), Some(proof)) => {
            let m = mac(secret, label, t).ok_or(HandshakeError::AuthenticationFailed)?;
            // Constant-time comparison.
            m.verify_slice(proof)
                .map_err(|_| HandshakeError::AuthenticationFailed)
        }
    }
}

/// Checks the server's proof (client side).
///
/// # Errors
///
/// [`HandshakeError::AuthenticationFailed`] for a wrong proof,
/// [`HandshakeError::SecretMismatch`] when only one side has a secret.
pub fn verify_server(
    secret: Option<&[u8]>,
    t: &Transcript,
    proof: Option<&Proof>,
) -> Result<(), HandshakeError> {
    verify(secret, SERVER_LABEL, t, proof)
}

/// Checks the client's proof (server side).
///
/// # Errors
///
/// As [`verify_server`].
pub fn verify_client(
    secret: Option<&[u8]>,
    t: &Transcript,
    proof: Option<&Proof>,
) -> Result<(), HandshakeError> {
    verify(secret, CLIENT_LABEL, t, proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript() -> Transcript {
        Transcript {
            client_nonce: [1; 32],
            server_nonce: [2; 32],
            client_uid: 3,
            server_uid: 4,
        }
    }

    #[test]
    fn proofs_verify_only_with_the_same_secret_and_label() {
        let t = transcript();
        let sp = server_proof(b"s3cret", &t);
        assert!(verify_server(Some(b"s3cret"), &t, sp.as_ref()).is_ok());
        assert_eq!(
            verify_server(Some(b"other"), &t, sp.as_ref()),
            Err(HandshakeError::AuthenticationFailed)
        );
        // A server proof is not a valid client proof.
        assert_eq!(
            verify_client(Some(b"s3cret"), &t, sp.as_ref()),
            Err(HandshakeError::AuthenticationFailed)
        );
        assert_eq!(
            verify_client(Some(b"s3cret"), &t, None),
            Err(HandshakeError::SecretMismatch {
                local_requires: true
            })
        );
        assert!(verify_client(None, &t, None).is_ok());
    }

    #[test]
    fn hello_checks_magic_and_version() {
        let hello = Hello {
            system: "s".into(),
            host: "127.0.0.1".into(),
            port: 1,
            uid: 9,
            nonce: [0; 32],
            authenticated: false,
        };
        let frame = encode_hello(PROTOCOL_VERSION, &hello).unwrap();
        assert_eq!(decode_hello(&frame).unwrap(), hello);
        let old = encode_hello(PROTOCOL_VERSION + 1, &hello).unwrap();
        assert_eq!(
            decode_hello(&old),
            Err(HandshakeError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: PROTOCOL_VERSION + 1
            })
        );
        assert_eq!(
            decode_hello(b"GET / HTTP/1.1"),
            Err(HandshakeError::BadMagic)
        );
        assert!(matches!(
            decode_hello(&frame[..8]),
            Err(HandshakeError::Malformed(_))
        ));
    }
}
