//! Length-prefixed framing: a big-endian `u32` length, then that many bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Size of the length prefix in bytes.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Errors raised while decoding frames from a stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The announced length exceeds the limit; the connection is closed.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced length.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {got} of {expected} bytes")]
    Truncated {
        /// Bytes the frame needed (prefix included).
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// An I/O error on the socket.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encoder and decoder of length-prefixed frames with a maximum length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    pub(crate) fn new(max: usize) -> Self {
        Self { max }
    }

    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }
}

/// Appends one frame (prefix + payload) to `buf`; the caller checked the length fits a u32.
pub(crate) fn put_frame(buf: &mut BytesMut, frame: &[u8]) {
    buf.reserve(LENGTH_PREFIX_BYTES + frame.len());
    buf.put_u32(frame.len() as u32);
    buf.put_slice(frame);
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if src.len() < LENGTH_PREFIX_BYTES {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge {
                size: len,
                limit: self.max,
            });
        }
        let total = LENGTH_PREFIX_BYTES + len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX_BYTES);
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => {
                let expected = if src.len() >= LENGTH_PREFIX_BYTES {
                    LENGTH_PREFIX_BYTES
                        + u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize
                } else {
                    LENGTH_PREFIX_BYTES
                };
                Err(FrameError::Truncated {
                    expected,
                    got: src.len(),
                })
            }
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        if frame.len() > self.max {
            return Err(FrameError::TooLarge {
                size: frame.len(),
                limit: self.max,
            });
        }
        put_frame(dst, &frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// However the stream is cut into reads, the same frames come out, in order.
        #[test]
        fn any_chunking_decodes_the_same_frames(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20),
            cuts in proptest::collection::vec(1usize..40, 1..50),
        ) {
            let mut wire = BytesMut::new();
            for frame in &frames {
                put_frame(&mut wire, frame);
            }
            let mut codec = FrameCodec::new(64);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut cuts = cuts.into_iter().cycle();
            while !wire.is_empty() {
                let n = cuts.next().unwrap_or(1).min(wire.len());
                buf.extend_from_slice(&wire.split_to(n));
                while let Some(frame) = codec.decode(&mut buf).unwrap() {
                    out.push(frame.to_vec());
                }
            }
            prop_assert!(codec.decode_eof(&mut buf).unwrap().is_none());
            prop_assert_eq!(out, frames);
        }

        /// Arbitrary bytes give frames or a typed error, never a panic.
        #[test]
        fn random_streams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut codec = FrameCodec::new(128);
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
                prop_assert!(frame.len() <= 128);
            }
        }
    }

    #[test]
    fn decodes_split_and_rejects() {
        let mut codec = FrameCodec::new(8);
        let mut buf = BytesMut::new();
        put_frame(&mut buf, b"abc");
        put_frame(&mut buf, b"de");
        let mut part = buf.split_to(5);
        assert!(codec.decode(&mut part).unwrap().is_none());
        part.unsplit(buf);
        assert_eq!(&codec.decode(&mut part).unwrap().unwrap()[..], b"abc");
        assert_eq!(&codec.decode(&mut part).unwrap().unwrap()[..], b"de");
        let mut big = BytesMut::from(&[0u8, 0, 0, 9][..]);
        assert!(matches!(
            codec.decode(&mut big),
            Err(FrameError::TooLarge { size: 9, limit: 8 })
        ));
        let mut cut = BytesMut::from(&[0u8, 0, 0, 5, 1][..]);
        assert!(matches!(
            codec.decode_eof(&mut cut),
            Err(FrameError::Truncated {
                expected: 9,
                got: 5
            })
        ));
    }
}
