//! The hot-path encoder of remote tells: one allocation per message.
//!
//! The payload is encoded into a reused per-thread scratch buffer, then the frame (version
//! byte plus a [`wire::EnvelopeRef::User`], the same layout as [`wire::Envelope::User`]) is
//! written into a buffer of exactly the frame's size, so turning it into `Bytes` needs no
//! second allocation. Also a small fast hasher for the dispatcher's maps, whose
//! keys are recipient paths from the node's own peers.

use std::cell::RefCell;
use std::hash::{BuildHasherDefault, Hasher};

use bytes::Bytes;

use crate::wire::{EnvelopeRef, RemoteMessage, WIRE_VERSION, WireError};

/// Scratch buffers above this capacity are not kept for the next message (bytes).
const MAX_KEPT_SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The length of `n` as a postcard varint.
fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - n.max(1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn encode_error(what: &str, e: postcard::Error) -> WireError {
    WireError::Encode {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

/// Encodes a user message to `recipient` as a frame.
///
/// # Errors
/// [`WireError::Encode`] if the message cannot be encoded.
pub(crate) fn encode_user<M: RemoteMessage>(recipient: &str, msg: &M) -> Result<Bytes, WireError> {
    // Taken out of the slot, so that a nested encode on this thread (none is expected) would
    // simply use a fresh buffer.
    let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    scratch.clear();
    let result = encode_with(recipient, msg, &mut scratch);
    if scratch.capacity() <= MAX_KEPT_SCRATCH {
        SCRATCH.with(|s| *s.borrow_mut() = scratch);
    }
    result
}

fn encode_with<M: RemoteMessage>(
    recipient: &str,
    msg: &M,
    scratch: &mut Vec<u8>,
) -> Result<Bytes, WireError> {
    let payload = postcard::to_extend(msg, std::mem::take(scratch))
        .map_err(|e| encode_error(M::MANIFEST, e))?;
    let size = 1 // version
        + 1 // variant index of User
        + varint_len(recipient.len()) + recipient.len()
        + 1 // sender: None
        + varint_len(M::MANIFEST.len()) + M::MANIFEST.len()
        + varint_len(payload.len()) + payload.len();
    let mut frame = Vec::with_capacity(size);
    frame.push(WIRE_VERSION);
    let envelope = EnvelopeRef::User {
        recipient,
        sender: None,
        manifest: M::MANIFEST,
        payload: &payload,
    };
    let frame = postcard::to_extend(&envelope, frame).map_err(|e| encode_error("envelope", e));
    *scratch = payload;
    let frame = frame?;
    debug_assert_eq!(frame.len(), size, "frame size estimate");
    Ok(Bytes::from(frame))
}

/// A word-at-a-time multiplicative hash (the Fx scheme): fast for the short keys of the
/// dispatcher's maps. Not DoS-resistant: the recipient cache it serves only holds paths of
/// live local actors and is cleared at its capacity, which bounds any collision chain.
#[derive(Clone, Copy, Default)]
pub(crate) struct FastHash(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHash {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A `HashMap` hasher builder using [`FastHash`].
pub(crate) type FastHashBuild = BuildHasherDefault<FastHash>;

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::wire::{self, Envelope};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Blob(Vec<u8>, String);
    impl RemoteMessage for Blob {
        const MANIFEST: &'static str = "codec.Blob";
    }

    #[test]
    fn frames_decode_as_user_envelopes_of_every_size() {
        for (n, path_len) in [
            (0, 1),
            (1, 10),
            (100, 60),
            (127, 127),
            (128, 128),
            (20_000, 300),
        ] {
            let recipient = "p".repeat(path_len);
            let msg = Blob(vec![9; n], "x".repeat(n % 200));
            let frame = encode_user(&recipient, &msg).unwrap();
            let Envelope::User {
                recipient: r,
                sender,
                manifest,
                payload,
            } = wire::decode(&frame).unwrap()
            else {
                panic!("not a user envelope");
            };
            assert_eq!(
                (r.as_str(), sender, manifest.as_str()),
                (recipient.as_str(), None, Blob::MANIFEST)
            );
            assert_eq!(
                wire::decode_message::<Blob>(&manifest, &payload).unwrap(),
                msg
            );
        }
    }

    #[test]
    fn varint_lengths() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_383), 2);
        assert_eq!(varint_len(16_384), 3);
    }
}
