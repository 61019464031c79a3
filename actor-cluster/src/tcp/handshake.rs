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
//!
//! Each side is an explicit state machine with a pure transition ([`client_step`],
//! [`server_step`]); the transport only reads a frame, applies the transition, and writes
//! the output, so every outcome is tested here without sockets.

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
    /// The TLS handshake failed (feature `tls`).
    #[error("tls handshake failed: {0}")]
    Tls(String),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl HandshakeError {
    /// Whether the listening side answers [`ServerMessage::Refused`] before closing (the
    /// peer is a node of this protocol that deserves a reason), rather than just closing.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::VersionMismatch { .. } | Self::SecretMismatch { .. } | Self::AuthenticationFailed
        )
    }
}

/// States of the connecting side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientState {
    /// The hello was sent; the challenge is awaited.
    AwaitChallenge {
        /// The nonce sent in the hello.
        client_nonce: Nonce,
        /// Our uid, as sent in the hello.
        client_uid: u64,
    },
    /// Our proof was sent; the verdict is awaited.
    AwaitVerdict {
        /// The server's uid from its challenge.
        server_uid: u64,
    },
    /// The server accepted: data frames may be sent.
    Accepted {
        /// The server's incarnation uid.
        server_uid: u64,
    },
}

/// The connecting side's transition: consumes one server message, returns the next state
/// and the proof to send, if any.
///
/// # Errors
///
/// [`HandshakeError::WrongSystem`] when the server is another system,
/// [`HandshakeError::AuthenticationFailed`] / [`HandshakeError::SecretMismatch`] for a bad
/// server proof, [`HandshakeError::Refused`] when the server refused, and
/// [`HandshakeError::Malformed`] for a message out of order.
pub fn client_step(
    state: ClientState,
    message: ServerMessage,
    secret: Option<&[u8]>,
    expected_system: &str,
) -> Result<(ClientState, Option<ClientProof>), HandshakeError> {
    match (state, message) {
        (_, ServerMessage::Refused { reason }) => Err(HandshakeError::Refused { reason }),
        (
            ClientState::AwaitChallenge {
                client_nonce,
                client_uid,
            },
            ServerMessage::Challenge {
                system,
                uid,
                nonce,
                proof,
            },
        ) => {
            if system != expected_system {
                return Err(HandshakeError::WrongSystem {
                    expected: expected_system.to_owned(),
                    actual: system,
                });
            }
            let transcript = Transcript {
                client_nonce,
                server_nonce: nonce,
                client_uid,
                server_uid: uid,
            };
            verify_server(secret, &transcript, proof.as_ref())?;
            let proof = secret.and_then(|s| client_proof(s, &transcript));
            Ok((
                ClientState::AwaitVerdict { server_uid: uid },
                Some(ClientProof { proof }),
            ))
        }
        (ClientState::AwaitVerdict { server_uid }, ServerMessage::Accepted) => {
            Ok((ClientState::Accepted { server_uid }, None))
        }
        (state, _) => Err(HandshakeError::Malformed(format!(
            "unexpected server message in state {}",
            match state {
                ClientState::AwaitChallenge { .. } => "await-challenge",
                ClientState::AwaitVerdict { .. } => "await-verdict",
                ClientState::Accepted { .. } => "accepted",
            }
        ))),
    }
}

/// States of the listening side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    /// Nothing received yet.
    AwaitHello,
    /// The challenge was sent; the client's proof is awaited.
    AwaitProof {
        /// The client's hello.
        hello: Hello,
        /// What both proofs cover.
        transcript: Transcript,
    },
    /// The client is authenticated: data frames follow.
    Accepted {
        /// The client's hello (its address and uid).
        hello: Hello,
    },
}

/// What the listening side knows about itself.
#[derive(Debug, Clone, Copy)]
pub struct ServerIdentity<'a> {
    /// Our actor system name.
    pub system: &'a str,
    /// Our incarnation uid.
    pub uid: u64,
    /// Our shared secret, `None` in insecure mode.
    pub secret: Option<&'a [u8]>,
}

/// The listening side's transition: consumes one frame, returns the next state and the reply
/// to send. On an error whose [`HandshakeError::is_refusal`] holds, the caller sends
/// [`ServerMessage::Refused`] before closing.
///
/// `fresh_nonce` is used only when the frame is the hello.
///
/// # Errors
///
/// [`HandshakeError::BadMagic`], [`HandshakeError::VersionMismatch`],
/// [`HandshakeError::Malformed`], [`HandshakeError::SecretMismatch`],
/// [`HandshakeError::AuthenticationFailed`].
pub fn server_step(
    state: ServerState,
    frame: &[u8],
    me: ServerIdentity<'_>,
    fresh_nonce: Nonce,
) -> Result<(ServerState, ServerMessage), HandshakeError> {
    match state {
        ServerState::AwaitHello => {
            let hello = decode_hello(frame)?;
            if me.secret.is_some() != hello.authenticated {
                return Err(HandshakeError::SecretMismatch {
                    local_requires: me.secret.is_some(),
                });
            }
            let transcript = Transcript {
                client_nonce: hello.nonce,
                server_nonce: fresh_nonce,
                client_uid: hello.uid,
                server_uid: me.uid,
            };
            let challenge = ServerMessage::Challenge {
                system: me.system.to_owned(),
                uid: me.uid,
                nonce: fresh_nonce,
                proof: me.secret.and_then(|s| server_proof(s, &transcript)),
            };
            Ok((ServerState::AwaitProof { hello, transcript }, challenge))
        }
        ServerState::AwaitProof { hello, transcript } => {
            let reply: ClientProof = decode(frame)?;
            verify_client(me.secret, &transcript, reply.proof.as_ref())?;
            Ok((ServerState::Accepted { hello }, ServerMessage::Accepted))
        }
        ServerState::Accepted { .. } => Err(HandshakeError::Malformed(
            "handshake frame after acceptance".to_owned(),
        )),
    }
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

    fn hello(secret: bool) -> Hello {
        Hello {
            system: "sys".into(),
            host: "127.0.0.1".into(),
            port: 1,
            uid: 10,
            nonce: [5; 32],
            authenticated: secret,
        }
    }

    /// Runs both transitions against each other, as the sockets would.
    fn run(
        client_secret: Option<&[u8]>,
        server_secret: Option<&[u8]>,
        server_system: &str,
    ) -> (Result<u64, HandshakeError>, Result<Hello, HandshakeError>) {
        let me = ServerIdentity {
            system: server_system,
            uid: 20,
            secret: server_secret,
        };
        let hello = hello(client_secret.is_some());
        let frame = encode_hello(PROTOCOL_VERSION, &hello).unwrap();
        let (server, challenge) = match server_step(ServerState::AwaitHello, &frame, me, [6; 32]) {
            Ok(step) => step,
            Err(e) => return (Err(HandshakeError::Closed), Err(e)),
        };
        let client = ClientState::AwaitChallenge {
            client_nonce: hello.nonce,
            client_uid: hello.uid,
        };
        let (client, proof) = match client_step(client, challenge, client_secret, "sys") {
            Ok(step) => step,
            Err(e) => return (Err(e), Err(HandshakeError::Closed)),
        };
        let proof = encode(&proof.unwrap()).unwrap();
        let (server, verdict) = match server_step(server, &proof, me, [0; 32]) {
            Ok(step) => step,
            Err(e) => return (Err(HandshakeError::Closed), Err(e)),
        };
        let ServerState::Accepted { hello } = server else {
            panic!("server not accepted: {server:?}")
        };
        let (client, none) = client_step(client, verdict, client_secret, "sys").unwrap();
        assert!(none.is_none());
        let ClientState::Accepted { server_uid } = client else {
            panic!("client not accepted: {client:?}")
        };
        (Ok(server_uid), Ok(hello))
    }

    #[test]
    fn state_machines_agree_on_every_secret_combination() {
        assert_eq!(run(Some(b"k"), Some(b"k"), "sys").0, Ok(20));
        assert_eq!(run(None, None, "sys").1.map(|h| h.uid), Ok(10));
        // The client catches a server with another secret first.
        assert_eq!(
            run(Some(b"k"), Some(b"other"), "sys").0,
            Err(HandshakeError::AuthenticationFailed)
        );
        let (_, server) = run(None, Some(b"k"), "sys");
        assert_eq!(
            server,
            Err(HandshakeError::SecretMismatch {
                local_requires: true
            })
        );
        assert!(server.unwrap_err().is_refusal());
        let (_, server) = run(Some(b"k"), None, "sys");
        assert_eq!(
            server,
            Err(HandshakeError::SecretMismatch {
                local_requires: false
            })
        );
        assert!(matches!(
            run(None, None, "elsewhere").0,
            Err(HandshakeError::WrongSystem { .. })
        ));
    }

    #[test]
    fn server_refuses_a_forged_client_proof_and_out_of_order_frames() {
        let me = ServerIdentity {
            system: "sys",
            uid: 20,
            secret: Some(b"k"),
        };
        let frame = encode_hello(PROTOCOL_VERSION, &hello(true)).unwrap();
        let (server, _) = server_step(ServerState::AwaitHello, &frame, me, [6; 32]).unwrap();
        let forged = encode(&ClientProof {
            proof: Some([0; 32]),
        })
        .unwrap();
        let error = server_step(server.clone(), &forged, me, [0; 32]).unwrap_err();
        assert_eq!(error, HandshakeError::AuthenticationFailed);
        assert!(error.is_refusal());
        // A second hello where a proof belongs is malformed, not a panic.
        assert!(matches!(
            server_step(server, &frame, me, [0; 32]),
            Err(HandshakeError::Malformed(_))
        ));
        let client = ClientState::AwaitVerdict { server_uid: 1 };
        assert!(matches!(
            client_step(
                client,
                ServerMessage::Refused {
                    reason: "no".into()
                },
                None,
                "sys"
            ),
            Err(HandshakeError::Refused { .. })
        ));
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
